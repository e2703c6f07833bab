//! Checks the harness itself against a real Synapse, with no bridge involved.

use std::path::PathBuf;
use std::time::Duration;

use e2e_tests::{shared_instance, wait_until, Synapse};

const TIMEOUT: Duration = Duration::from_secs(15);

fn synapse() -> &'static Synapse {
    shared_instance(Vec::new)
}

#[tokio::test]
async fn invite_join_and_message() -> anyhow::Result<()> {
    let hs = synapse();
    let alice = hs
        .register_user("selftest_alice", "pw-alice", false)
        .await?;
    let bob = hs.register_user("selftest_bob", "pw-bob", true).await?;
    assert_eq!(alice.user_id, hs.user_id("selftest_alice"));

    let room = alice
        .create_room(&[&bob.user_id], true, Some("selftest"))
        .await?;
    let invited = bob
        .wait_for_invite(|inviter| inviter == alice.user_id, TIMEOUT)
        .await?;
    assert_eq!(invited, room);
    assert!(bob.invited_rooms().await?.iter().any(|i| i.is_direct));

    bob.join(&room).await?;
    assert!(bob.joined_rooms().await?.contains(&room));
    let mut members = alice.joined_members(&room).await?;
    members.sort();
    assert_eq!(members, [alice.user_id.clone(), bob.user_id.clone()]);

    let name = alice.room_state(&room, "m.room.name", "").await?;
    assert_eq!(name.unwrap()["name"], "selftest");
    assert!(alice.room_state(&room, "m.room.topic", "").await?.is_none());

    let event_id = alice.send_text(&room, "hello bob").await?;
    let seen = bob
        .wait_for_message(&room, |ev| ev["content"]["body"] == "hello bob", TIMEOUT)
        .await?;
    assert_eq!(seen["event_id"], event_id.as_str());
    assert_eq!(seen["sender"], alice.user_id.as_str());

    // A failing wait must name what it waited for and list what it saw.
    let err = bob
        .wait_for_message(&room, |ev| ev["content"]["body"] == "nope", Duration::ZERO)
        .await
        .unwrap_err();
    let err = format!("{err:#}");
    assert!(
        err.contains("hello bob") && err.contains("timed out"),
        "{err}"
    );

    assert!(!bob.is_redacted(&room, &event_id).await?);
    alice.redact(&room, &event_id).await?;
    assert!(bob.is_redacted(&room, &event_id).await?);

    bob.leave(&room).await?;
    assert!(!bob.joined_rooms().await?.contains(&room));
    Ok(())
}

#[tokio::test]
async fn presence_and_displayname() -> anyhow::Result<()> {
    let hs = synapse();
    let carol = hs
        .register_user("selftest_carol", "pw-carol", false)
        .await?;
    let dave = hs.register_user("selftest_dave", "pw-dave", false).await?;

    // Registration sets the localpart as the display name.
    assert_eq!(
        dave.get_displayname(&carol.user_id).await?.as_deref(),
        Some("selftest_carol")
    );
    carol.set_displayname("Carol C").await?;
    assert_eq!(
        dave.get_displayname(&carol.user_id).await?.as_deref(),
        Some("Carol C")
    );
    assert_eq!(dave.get_displayname("@nobody:localhost").await?, None);

    // Presence is only visible to users sharing a room.
    let room = carol.create_room(&[&dave.user_id], false, None).await?;
    dave.join(&room).await?;
    carol.set_presence("unavailable", Some("away")).await?;
    let presence = wait_until(TIMEOUT, "carol's presence", || async {
        let p = dave.get_presence(&carol.user_id).await?;
        Ok((p["presence"] == "unavailable").then_some(p))
    })
    .await?;
    assert_eq!(presence["status_msg"], "away");
    Ok(())
}

#[test]
fn failed_start_reports_the_log() {
    let missing = PathBuf::from("/nonexistent/registration.yaml");
    let err = match Synapse::start(&[missing]) {
        Ok(_) => panic!("Synapse started with a missing registration file"),
        Err(e) => format!("{e:#}"),
    };
    assert!(err.contains("exited during startup"), "{err}");
    assert!(err.contains("/nonexistent/registration.yaml"), "{err}");
}
