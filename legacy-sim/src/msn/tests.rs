use std::time::Duration;

use msn_proto::Status;

use super::client::{Client, ClientEvent};
use super::{Config, Server};

const T: Duration = Duration::from_secs(10);

const YAML: &str = r#"
dispatch_port: 0
notification_port: 0
switchboard_port: 0
http_port: 0
challenges: true
users:
  - email: alice@hotmail.com
    password: secret
    friendly_name: Alice A
    groups: [{ id: 1, name: Friends }]
    contacts:
      - { email: bob@hotmail.com, groups: [1] }
      - { email: carol@hotmail.com }
  - email: bob@hotmail.com
    password: hunter2
    friendly_name: Bob
    contacts: [{ email: alice@hotmail.com }, { email: carol@hotmail.com }]
  - email: carol@hotmail.com
    password: pw
    login_redirect: true
    contacts: [{ email: alice@hotmail.com }]
"#;

async fn start() -> Server {
    let config: Config = serde_yaml::from_str(YAML).unwrap();
    Server::start(config).await.unwrap()
}

async fn login(s: &Server, email: &str, password: &str) -> Client {
    Client::login(s.dispatch_addr(), &s.nexus_url(), email, password)
        .await
        .unwrap()
}

#[tokio::test]
async fn presence_and_messages_both_ways() {
    let s = start().await;
    let mut alice = login(&s, "alice@hotmail.com", "secret").await;
    assert_eq!(alice.friendly_name(), "Alice A");
    assert_eq!(alice.groups().len(), 2);
    assert!(alice
        .contacts()
        .iter()
        .any(|c| c.email == "bob@hotmail.com" && c.groups == [1]));
    let mut bob = login(&s, "bob@hotmail.com", "hunter2").await;
    assert!(
        alice
            .wait_for_presence("bob@hotmail.com", Status::Online, T)
            .await
    );
    // Bob saw Alice already online at sign-in (ILN).
    assert!(
        bob.wait_for_presence("alice@hotmail.com", Status::Online, T)
            .await
    );

    bob.set_status(Status::Away).unwrap();
    assert!(
        alice
            .wait_for_presence("bob@hotmail.com", Status::Away, T)
            .await
    );

    alice
        .send_message("bob@hotmail.com", "hello bob")
        .await
        .unwrap();
    assert_eq!(
        bob.wait_for_message("alice@hotmail.com", T)
            .await
            .as_deref(),
        Some("hello bob")
    );
    assert!(alice
        .wait_for(T, |e| matches!(e, ClientEvent::Delivered { .. }))
        .await
        .is_some());
    // Bob answers on the switchboard he was invited to.
    bob.send_message("alice@hotmail.com", "hi alice ✓")
        .await
        .unwrap();
    assert_eq!(
        alice
            .wait_for_message("bob@hotmail.com", T)
            .await
            .as_deref(),
        Some("hi alice ✓")
    );
    alice.send_typing("bob@hotmail.com").await.unwrap();
    assert!(bob
        .wait_for(
            T,
            |e| matches!(e, ClientEvent::Typing { from, .. } if from == "alice@hotmail.com")
        )
        .await
        .is_some());
    // A long text arrives whole, in several payloads.
    let long = "x".repeat(4000);
    alice.send_message("bob@hotmail.com", &long).await.unwrap();
    let mut got = String::new();
    while got.len() < long.len() {
        got.push_str(&bob.wait_for_message("alice@hotmail.com", T).await.unwrap());
    }
    assert_eq!(got, long);

    bob.logout().await;
    assert!(
        alice
            .wait_for_presence("bob@hotmail.com", Status::Offline, T)
            .await
    );
}

#[tokio::test]
async fn bad_password_is_refused() {
    let s = start().await;
    let err = Client::login(
        s.dispatch_addr(),
        &s.nexus_url(),
        "alice@hotmail.com",
        "wrong",
    )
    .await
    .err()
    .unwrap();
    assert!(err.to_string().contains("email or password"), "{err}");
    assert!(!s.is_online("alice@hotmail.com"));
}

#[tokio::test]
async fn third_user_joins_and_offline_call_fails() {
    let s = start().await;
    let mut alice = login(&s, "alice@hotmail.com", "secret").await;
    let mut bob = login(&s, "bob@hotmail.com", "hunter2").await;
    // Carol is offline: the call fails with 217 and the text is reported undelivered.
    alice
        .send_message("carol@hotmail.com", "anyone?")
        .await
        .unwrap();
    let failed = alice
        .wait_for(T, |e| matches!(e, ClientEvent::DeliveryFailed { .. }))
        .await;
    assert!(
        matches!(&failed, Some(ClientEvent::DeliveryFailed { error: Some(e), .. }) if e.code == 217),
        "{failed:?}"
    );

    // Carol's login goes through a Passport 302.
    let mut carol = login(&s, "carol@hotmail.com", "pw").await;
    assert!(
        alice
            .wait_for_presence("carol@hotmail.com", Status::Online, T)
            .await
    );

    let session = alice
        .send_message("bob@hotmail.com", "first")
        .await
        .unwrap();
    assert_eq!(
        bob.wait_for_message("alice@hotmail.com", T)
            .await
            .as_deref(),
        Some("first")
    );
    alice
        .invite("bob@hotmail.com", "carol@hotmail.com")
        .unwrap();
    assert!(alice
        .wait_for(
            T,
            |e| matches!(e, ClientEvent::Joined { email, .. } if email == "carol@hotmail.com")
        )
        .await
        .is_some());
    assert!(bob
        .wait_for(
            T,
            |e| matches!(e, ClientEvent::Joined { email, .. } if email == "carol@hotmail.com")
        )
        .await
        .is_some());
    let mut members = alice.session_members(session);
    members.sort();
    assert_eq!(members, ["bob@hotmail.com", "carol@hotmail.com"]);

    alice.send_to_session(session, "hello both").unwrap();
    assert_eq!(
        bob.wait_for_message("alice@hotmail.com", T)
            .await
            .as_deref(),
        Some("hello both")
    );
    assert_eq!(
        carol
            .wait_for_message("alice@hotmail.com", T)
            .await
            .as_deref(),
        Some("hello both")
    );
    carol.logout().await;
    assert!(alice
        .wait_for(
            T,
            |e| matches!(e, ClientEvent::Left { email, .. } if email == "carol@hotmail.com")
        )
        .await
        .is_some());
}

#[tokio::test]
async fn contact_list_changes_and_restart() {
    let mut s = start().await;
    let mut bob = login(&s, "bob@hotmail.com", "hunter2").await;
    let mut carol = login(&s, "carol@hotmail.com", "pw").await;
    carol.add_contact("bob@hotmail.com").unwrap();
    assert!(bob
        .wait_for(
            T,
            |e| matches!(e, ClientEvent::AddedBy { email, .. } if email == "carol@hotmail.com")
        )
        .await
        .is_some());
    assert!(
        carol
            .wait_for_presence("bob@hotmail.com", Status::Online, T)
            .await
    );
    bob.set_friendly_name("Bobby").unwrap();
    assert!(carol
        .wait_for(
            T,
            |e| matches!(e, ClientEvent::Presence { friendly_name: Some(n), .. } if n == "Bobby")
        )
        .await
        .is_some());

    s.restart().await.unwrap();
    assert!(bob
        .wait_for(T, |e| matches!(e, ClientEvent::Disconnected { .. }))
        .await
        .is_some());
    let bob = login(&s, "bob@hotmail.com", "hunter2").await;
    assert_eq!(
        bob.friendly_name(),
        "Bobby",
        "lists and names survive a restart"
    );
    assert!(bob
        .contacts()
        .iter()
        .any(|c| c.email == "carol@hotmail.com" && c.lists.contains(msn_proto::List::Reverse)));
}

#[tokio::test]
async fn bare_dalogin_form_and_cli_send() {
    let mut config: Config = serde_yaml::from_str(YAML).unwrap();
    config.dalogin_full_url = false;
    config.challenges = false;
    let s = Server::start(config).await.unwrap();
    let mut bob = login(&s, "bob@hotmail.com", "hunter2").await;
    let args = [
        "--server",
        &s.dispatch_addr().to_string(),
        "--nexus",
        &s.nexus_url(),
        "--email",
        "alice@hotmail.com",
        "--password",
        "secret",
        "send",
        "bob@hotmail.com",
        "from the command line",
    ]
    .map(String::from)
    .to_vec();
    super::client_cli(args).await.unwrap();
    assert_eq!(
        bob.wait_for_message("alice@hotmail.com", T)
            .await
            .as_deref(),
        Some("from the command line")
    );
    assert!(super::client_cli(vec!["--bogus".into()]).await.is_err());
}
