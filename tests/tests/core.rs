//! End-to-end tests of the appservice core: a real Synapse, the real bridge binary, and
//! test users talking to the bridge's bot through Synapse.

use std::time::Duration;

use e2e_tests::bridge::{environment, BridgeProcess, BridgeSlot, SlotOptions};
use e2e_tests::{wait_until, Synapse, TestUser};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(60);

fn env(slot: usize) -> (&'static Synapse, &'static BridgeSlot) {
    let (synapse, slots) = environment(6, |_| SlotOptions::default());
    (synapse, &slots[slot])
}

fn body(event: &Value) -> &str {
    event["content"]["body"].as_str().unwrap_or_default()
}

fn from_bot<'a>(slot: &'a BridgeSlot, needle: &'a str) -> impl Fn(&Value) -> bool + 'a {
    move |e| e["sender"] == slot.bot.as_str() && body(e).contains(needle)
}

async fn count(user: &TestUser, room: &str, pred: impl Fn(&Value) -> bool) -> usize {
    user.messages(room)
        .await
        .expect("messages")
        .iter()
        .filter(|e| pred(e))
        .count()
}

async fn command(
    user: &TestUser,
    slot: &BridgeSlot,
    room: &str,
    text: &str,
    expect: &str,
) -> Value {
    user.send_text(room, text).await.expect("send");
    user.wait_for_message(room, from_bot(slot, expect), WAIT)
        .await
        .unwrap_or_else(|e| panic!("no answer containing {expect:?} to {text:?}: {e:#}"))
}

/// Starts the slot's bridge and gives alice a management room.
async fn bridge_with_alice(
    slot_index: usize,
) -> (&'static BridgeSlot, BridgeProcess, TestUser, String) {
    let (synapse, slot) = env(slot_index);
    let bridge = slot.start(synapse).expect("bridge starts");
    let alice = synapse
        .register_user(&slot.user_localpart("alice"), "pw", false)
        .await
        .unwrap();
    let room = slot.management_room(&alice).await;
    (slot, bridge, alice, room)
}

#[tokio::test]
async fn management_room_help_ping_list_and_login_errors() {
    let (slot, _bridge, alice, room) = bridge_with_alice(0).await;

    // The welcome holds the list too: wait for a second copy, the answer.
    let per_network = "mig33 (mig33): login, logout, reconnect, status, add, pm, join, leave";
    alice.send_text(&room, "help").await.expect("send");
    e2e_tests::wait_until(WAIT, "the answer to help", || async {
        Ok((count(&alice, &room, from_bot(slot, per_network)).await >= 2).then_some(()))
    })
    .await
    .unwrap();
    let answer = command(
        &alice,
        slot,
        &room,
        "help login",
        "Usage: login <network> <id> <password>",
    )
    .await;
    assert!(body(&answer).contains("I remove your message"), "{answer}");
    command(&alice, slot, &room, "help search", "Networks: icq.").await;
    command(
        &alice,
        slot,
        &room,
        "help frobnicate",
        "no command \"frobnicate\"",
    )
    .await;
    command(&alice, slot, &room, "ping", "Pong").await;
    command(&alice, slot, &room, "list", "You have no logins").await;
    command(
        &alice,
        slot,
        &room,
        "login aim someone secret",
        "Unknown network \"aim\"",
    )
    .await;
    command(&alice, slot, &room, "frobnicate", "Unknown command").await;

    // A network that is not enabled gets a clear reply, and the password is removed.
    let login = alice
        .send_text(&room, "login icq 12345 secret")
        .await
        .unwrap();
    alice
        .wait_for_message(&room, from_bot(slot, "ICQ is not enabled"), WAIT)
        .await
        .unwrap();
    assert!(
        alice.is_redacted(&room, &login).await.unwrap(),
        "the message with the password must be redacted"
    );
    let log = std::fs::read_to_string(slot.log_path()).unwrap();
    assert!(!log.contains("secret"), "the password must never be logged");

    // A direct chat of room version 12 makes the bot a creator with unlimited power: the
    // welcome must not claim it cannot remove messages.
    let welcome = alice
        .messages(&room)
        .await
        .unwrap()
        .into_iter()
        .find(from_bot(slot, "Commands"))
        .expect("welcome");
    assert!(
        !body(&welcome).contains("cannot remove"),
        "{}",
        body(&welcome)
    );
    assert!(
        log.contains("the homeserver reaches the bridge"),
        "the start-up ping succeeds"
    );
    // A normal start and these commands are not errors: nothing at ERROR in the log.
    let errors: Vec<&str> = log.lines().filter(|l| l.contains("ERROR")).collect();
    assert!(
        errors.is_empty(),
        "unexpected ERROR lines:\n{}",
        errors.join("\n")
    );
}

#[tokio::test]
async fn user_without_permission_is_refused() {
    let (synapse, slot) = env(1);
    let _bridge = slot.start(synapse).expect("bridge starts");
    let stranger = synapse
        .register_user(&slot.user_localpart("stranger"), "pw", false)
        .await
        .unwrap();
    let room = stranger
        .create_room(&[&slot.bot], true, None)
        .await
        .unwrap();
    stranger
        .wait_for_message(&room, from_bot(slot, "not allowed"), WAIT)
        .await
        .unwrap();
    e2e_tests::wait_until(WAIT, "the bot to leave the refused room", || async {
        Ok((!stranger.joined_members(&room).await?.contains(&slot.bot)).then_some(()))
    })
    .await
    .unwrap();
    assert_eq!(
        count(&stranger, &room, from_bot(slot, "Commands")).await,
        0,
        "no help for strangers"
    );

    // A permitted user's management room refuses commands from an unpermitted member.
    let alice = synapse
        .register_user(&slot.user_localpart("alice"), "pw", false)
        .await
        .unwrap();
    let managed = slot.management_room(&alice).await;
    alice.invite(&managed, &stranger.user_id).await.unwrap();
    stranger.join(&managed).await.unwrap();
    command(&stranger, slot, &managed, "list", "not allowed").await;
}

/// Sends a transaction straight to the bridge, as the homeserver would.
async fn put_transaction(
    slot: &BridgeSlot,
    txn: &str,
    token: Option<&str>,
    body: String,
) -> (u16, Value) {
    let url = format!("{}/_matrix/app/v1/transactions/{txn}", slot.endpoint());
    let mut request = reqwest::Client::new()
        .put(url)
        .header("content-type", "application/json")
        .body(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("bridge answers");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn transactions_need_the_token_and_are_handled_once() {
    let (slot, _bridge, alice, room) = bridge_with_alice(2).await;
    let ping = |id: &str| {
        json!({ "events": [{
            "type": "m.room.message", "room_id": room, "sender": alice.user_id, "event_id": id,
            "origin_server_ts": 1, "content": { "msgtype": "m.text", "body": "ping" }
        }]})
        .to_string()
    };
    let pongs = || count(&alice, &room, from_bot(slot, "Pong"));

    let (status, body) = put_transaction(slot, "t-missing", None, ping("$a")).await;
    assert_eq!(
        (status, body["errcode"].as_str()),
        (401, Some("M_UNAUTHORIZED"))
    );
    let (status, body) = put_transaction(slot, "t-wrong", Some("not-the-token"), ping("$b")).await;
    assert_eq!(
        (status, body["errcode"].as_str()),
        (403, Some("M_FORBIDDEN"))
    );
    let url = format!(
        "{}/_matrix/app/v1/transactions/t-query?access_token=wrong",
        slot.endpoint()
    );
    let response = reqwest::Client::new()
        .put(url)
        .body(ping("$c"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 403);

    // Malformed bodies are refused and the bridge keeps running.
    let (status, body) =
        put_transaction(slot, "t-bad1", Some(&slot.hs_token), "{not json".into()).await;
    assert_eq!(
        (status, body["errcode"].as_str()),
        (400, Some("M_NOT_JSON"))
    );
    let (status, body) = put_transaction(
        slot,
        "t-bad2",
        Some(&slot.hs_token),
        r#"{"events": 5}"#.into(),
    )
    .await;
    assert_eq!(
        (status, body["errcode"].as_str()),
        (400, Some("M_BAD_JSON"))
    );

    // The same transaction twice: answered twice, handled once.
    for _ in 0..2 {
        let (status, _) = put_transaction(slot, "t-dup", Some(&slot.hs_token), ping("$d")).await;
        assert_eq!(status, 200);
    }
    alice
        .wait_for_message(&room, from_bot(slot, "Pong"), WAIT)
        .await
        .unwrap();
    // The refused transactions, had they been processed, would have answered by now too.
    command(&alice, slot, &room, "list", "no logins").await;
    assert_eq!(
        pongs().await,
        1,
        "one pong for the duplicated transaction, none for the refused ones"
    );

    // The other appservice endpoints.
    let http = reqwest::Client::new();
    let get = |path: String, token: &str| {
        http.get(format!("{}{path}", slot.endpoint()))
            .bearer_auth(token.to_owned())
            .send()
    };
    assert_eq!(
        get(
            "/_matrix/app/v1/users/@nobody:localhost".into(),
            &slot.hs_token
        )
        .await
        .unwrap()
        .status(),
        404
    );
    assert_eq!(
        get(
            format!("/_matrix/app/v1/users/{}", slot.bot),
            &slot.hs_token
        )
        .await
        .unwrap()
        .status(),
        200
    );
    assert_eq!(
        get(format!("/_matrix/app/v1/users/{}", slot.bot), "wrong")
            .await
            .unwrap()
            .status(),
        403
    );
    let ping = http
        .post(format!("{}/_matrix/app/v1/ping", slot.endpoint()))
        .bearer_auth(&slot.hs_token)
        .json(&json!({}));
    assert_eq!(ping.send().await.unwrap().status(), 200);
}

#[tokio::test]
async fn kill9_and_restart_keeps_the_management_room() {
    let (slot, mut bridge, alice, room) = bridge_with_alice(3).await;
    command(&alice, slot, &room, "ping", "Pong").await;
    let rooms_before = alice.joined_rooms().await.unwrap().len();

    bridge.kill9();
    let mut bridge = slot.start(env(3).0).expect("bridge restarts");
    alice.send_text(&room, "ping").await.unwrap();
    e2e_tests::wait_until(WAIT, "a second pong after the restart", || async {
        Ok((count(&alice, &room, from_bot(slot, "Pong")).await >= 2).then_some(()))
    })
    .await
    .unwrap();
    assert_eq!(count(&alice, &room, from_bot(slot, "Pong")).await, 2);
    assert_eq!(
        count(&alice, &room, from_bot(slot, "Commands")).await,
        1,
        "no second welcome"
    );
    assert_eq!(
        alice.joined_rooms().await.unwrap().len(),
        rooms_before,
        "no new rooms"
    );
    assert!(alice
        .joined_members(&room)
        .await
        .unwrap()
        .contains(&slot.bot));

    assert!(
        bridge.terminate(),
        "SIGTERM ends the bridge cleanly:\n{}",
        bridge.log()
    );
    assert!(bridge.log().contains("stopped cleanly"));
}

/// The homeserver has the registration but its URL leads nowhere: the bridge says so
/// plainly at start-up. Then the bridge is given tokens the homeserver does not know: it
/// stops and says the registration must be added to the homeserver.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_url_and_unknown_registration_are_explained() {
    let (synapse, slot) = tokio::task::block_in_place(|| {
        e2e_tests::bridge::private_environment_with("wrong-url", SlotOptions::default(), |slot| {
            let path = slot.registration();
            let text = std::fs::read_to_string(&path)?;
            let wrong = text.replace(&slot.endpoint(), "http://127.0.0.1:9");
            anyhow::ensure!(wrong != text, "the registration names the endpoint");
            std::fs::write(&path, wrong)?;
            Ok(())
        })
    })
    .expect("a Synapse of its own");
    let mut bridge = tokio::task::block_in_place(|| slot.start(&synapse)).expect("bridge starts");
    let log = e2e_tests::wait_until(WAIT, "the ping's verdict", || async {
        let log = bridge.log();
        Ok(log.contains("cannot reach the bridge").then_some(log))
    })
    .await
    .unwrap_or_else(|e| panic!("{e:#}\n{}", bridge.log()));
    let line = log
        .lines()
        .find(|l| l.contains("cannot reach the bridge"))
        .unwrap();
    assert!(
        line.contains("ERROR") && line.contains("appservice.url"),
        "{line}"
    );
    assert!(
        line.contains("M_CONNECTION_FAILED") || line.contains("M_CONNECTION_TIMEOUT"),
        "the homeserver's own reason: {line}"
    );
    assert!(bridge.terminate(), "stops cleanly");

    // New tokens the homeserver never saw.
    let path = slot.registration();
    let text = std::fs::read_to_string(&path).unwrap();
    let registration: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    let old = registration["as_token"].as_str().unwrap();
    std::fs::write(&path, text.replace(old, &"0123456789abcdef".repeat(4))).unwrap();
    let refused = tokio::task::block_in_place(|| slot.start(&synapse));
    let error = format!("{:#}", refused.err().expect("the bridge stops"));
    assert!(
        error.contains("does not know this bridge's registration")
            && error.contains("app_service_config_files"),
        "{error}"
    );
}

/// An encrypted management room: the bridge cannot read it, says so once (with what to
/// do instead), and logs it.
#[tokio::test]
async fn encrypted_management_room_gets_one_clear_notice() {
    let (synapse, slot) = env(4);
    let _bridge = slot.start(synapse).expect("bridge starts");
    let alice = synapse
        .register_user(&slot.user_localpart("alice"), "pw", false)
        .await
        .unwrap();
    let body = json!({
        "preset": "trusted_private_chat",
        "is_direct": true,
        "invite": [slot.bot],
        "initial_state": [{
            "type": "m.room.encryption",
            "state_key": "",
            "content": { "algorithm": "m.megolm.v1.aes-sha2" }
        }]
    });
    let room = alice
        .request(reqwest::Method::POST, "/createRoom", &[], Some(body))
        .await
        .unwrap()["room_id"]
        .as_str()
        .unwrap()
        .to_owned();
    alice
        .wait_for_message(&room, from_bot(slot, "This room is encrypted"), WAIT)
        .await
        .expect("the encrypted-room notice");
    // An encrypted message (what a client sends here): no second notice.
    let encrypted = json!({
        "algorithm": "m.megolm.v1.aes-sha2",
        "ciphertext": "AwgAEnAC",
        "device_id": "TESTDEVICE",
        "sender_key": "c2VuZGVyIGtleQ",
        "session_id": "c2Vzc2lvbg"
    });
    let path = format!(
        "/rooms/{}/send/m.room.encrypted/{}",
        e2e_tests::enc(&room),
        "txn-encrypted-1"
    );
    alice
        .request(reqwest::Method::PUT, &path, &[], Some(encrypted))
        .await
        .unwrap();
    alice.send_text(&room, "ping").await.unwrap();
    // The plain ping after it is answered, so the encrypted event was handled before it.
    alice
        .wait_for_message(&room, from_bot(slot, "Pong"), WAIT)
        .await
        .expect("pong");
    assert_eq!(
        count(&alice, &room, from_bot(slot, "This room is encrypted")).await,
        1,
        "told once"
    );
    let log = std::fs::read_to_string(slot.log_path()).unwrap();
    assert!(log.contains("encrypted room: the bridge cannot read it"));
}

/// A direct chat made as matrix-commander makes it (`private_chat`: the bot has no power)
/// is no place for passwords: the bot opens a management room of its own, where it can
/// remove them, and the first room only points there, using nothing typed in it.
#[tokio::test]
async fn a_room_where_the_bot_cannot_remove_passwords_is_replaced() {
    let (synapse, slot) = env(5);
    let _bridge = slot.start(synapse).expect("bridge starts");
    let alice = synapse
        .register_user(&slot.user_localpart("alice"), "pw", false)
        .await
        .unwrap();
    let dm = alice
        .create_room(&[slot.bot.as_str()], true, None)
        .await
        .unwrap();
    alice
        .wait_for_message(&dm, from_bot(slot, "I opened a management room"), WAIT)
        .await
        .expect("the pointer to the bot's own room");
    let own = alice
        .wait_for_invite(|inviter| inviter == slot.bot.as_str(), WAIT)
        .await
        .expect("an invitation to the bot's room");
    alice.join(&own).await.unwrap();
    alice
        .wait_for_message(&own, from_bot(slot, "Commands"), WAIT)
        .await
        .expect("the welcome in the bot's room");

    // A password typed in the first room is not used, and the user is told.
    alice
        .send_text(&dm, "login icq 12345 secret1")
        .await
        .unwrap();
    alice
        .wait_for_message(&dm, from_bot(slot, "I did not use it"), WAIT)
        .await
        .expect("the warning");
    assert_eq!(
        count_from_bot(&alice, &dm, "not enabled").await,
        0,
        "the command was not run"
    );
    // Someone else in that room gets no answer: the bot does not talk for them, nor
    // show them anyone's room. (alice's next message is answered after bob's.)
    let bob = synapse
        .register_user(&slot.user_localpart("bob"), "pw", false)
        .await
        .unwrap();
    alice.invite(&dm, &bob.user_id).await.unwrap();
    bob.join(&dm).await.unwrap();
    bob.send_text(&dm, "help").await.unwrap();
    alice
        .send_text(&dm, "login icq 12345 secret3")
        .await
        .unwrap();
    wait_until(WAIT, "the second warning", || async {
        Ok((count_from_bot(&alice, &dm, "I did not use it").await >= 2).then_some(()))
    })
    .await
    .unwrap();
    assert_eq!(
        count_from_bot(&alice, &dm, "I opened a management room").await,
        3,
        "the pointer at the invitation and one per message of alice's, none for bob"
    );
    // In the bot's room the password is removed.
    let login = alice
        .send_text(&own, "login icq 12345 secret2")
        .await
        .unwrap();
    alice
        .wait_for_message(&own, from_bot(slot, "ICQ is not enabled"), WAIT)
        .await
        .unwrap();
    assert!(alice.is_redacted(&own, &login).await.unwrap());

    // Another such room makes no second management room: it points to the first.
    let dm2 = alice
        .create_room(&[slot.bot.as_str()], true, None)
        .await
        .unwrap();
    let pointer = alice
        .wait_for_message(&dm2, from_bot(slot, "I opened a management room"), WAIT)
        .await
        .expect("the pointer in the second room");
    assert!(body(&pointer).contains(&own), "{}", body(&pointer));
    let invites = alice.invited_rooms().await.unwrap();
    assert!(
        invites.iter().all(|i| i.inviter != slot.bot.as_str()),
        "a second management room: {:?}",
        invites.iter().map(|i| &i.room_id).collect::<Vec<_>>()
    );
}

async fn count_from_bot(user: &TestUser, room: &str, needle: &str) -> usize {
    user.messages(room)
        .await
        .unwrap()
        .iter()
        .filter(|e| body(e).contains(needle))
        .count()
}
