//! An XMPP user's legacy password never reaches the bridge's files or its log, not even
//! at trace level: given by in-band registration (XEP-0077) and by the login ad-hoc
//! command (XEP-0050), then the bridge killed with -9 and everything under its database
//! folder and its whole log searched for the password (as the Matrix side's
//! `credentials.rs` does).

use std::time::Duration;

use e2e_tests::prosody::Prosody;
use e2e_tests::secrets;
use e2e_tests::xmpp_bridge::{components, gateway, network_yaml, XmppBridge, START_TIMEOUT};
use e2e_tests::xmpp_user::{body, XmppUser};
use e2e_tests::XmppServer;
use legacy_sim::icq;
use tokio_xmpp::parsers::jid::Jid;

const WAIT: Duration = Duration::from_secs(30);
/// ICQ passwords have at most 8 characters; this one appears nowhere by chance.
const SECRET: &str = "Qz7#kW2v";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xmpp_logins_leave_no_password_in_files_or_trace_log() {
    let prosody = Prosody::start(&components(&["icq"])).expect("Prosody starts");
    prosody
        .register("alice", "alicepw")
        .expect("alice's account");
    let config = format!(
        "listen: \"127.0.0.1:0\"\nusers:\n  - {{ uin: 1001, password: \"{SECRET}\", nick: alice, first: Alice, contacts: [1002] }}\n  - {{ uin: 1002, password: bob2, nick: bobby, first: Bob, contacts: [1001] }}\n"
    );
    let sim = icq::Server::start(serde_yaml::from_str(&config).expect("ICQ config"))
        .await
        .expect("ICQ simulator");
    let mut bridge = XmppBridge::configure(
        "secrets",
        &prosody,
        &network_yaml("icq", &sim.addr().to_string(), &[]),
    )
    .expect("bridge config");
    let mut alice = XmppUser::connect(&prosody, "alice", "alicepw")
        .await
        .expect("alice connects");
    // RUST_LOG=trace: the most the log can ever hold.
    bridge.spawn_with_rust_log("trace").expect("bridge starts");
    bridge
        .wait_ready(&mut alice, START_TIMEOUT)
        .await
        .expect("components up");

    let icq_gateway: Jid = gateway("icq").parse().expect("JID");
    alice
        .register(&icq_gateway, "1001", SECRET)
        .await
        .expect("registration accepted");
    alice
        .wait_message(WAIT, |m| {
            m.from.as_ref() == Some(&icq_gateway)
                && body(m).is_some_and(|b| b.contains("Connected to ICQ as 1001"))
        })
        .await
        .expect("the login connects");
    // The same password through the login command's form (refused: already logged in,
    // but it travels through the bridge all the same).
    let form = alice
        .execute_command(&icq_gateway, "login")
        .await
        .expect("the login form");
    let session = form.attr("sessionid").unwrap_or_default().to_owned();
    alice
        .submit_command(
            &icq_gateway,
            "login",
            &session,
            &[("username", "1001"), ("password", SECRET)],
        )
        .await
        .expect("the login command answers");

    bridge.kill9();
    let log = bridge.log();
    assert!(
        log.contains(" TRACE "),
        "the bridge logged at trace level (else this test proves nothing)"
    );
    let found = secrets::in_log(log.as_bytes(), &[SECRET]);
    assert!(found.is_empty(), "password in the log: {found:#?}");
    let found = secrets::in_files(&bridge.dir.join("db"), &[SECRET]);
    assert!(
        found.is_empty(),
        "password in the database files: {found:#?}"
    );
    assert!(
        !secrets::files_under(&bridge.dir.join("db")).is_empty(),
        "the database folder has files"
    );
}
