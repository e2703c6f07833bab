//! End-to-end tests of the credentials at rest: a real Synapse, the ICQ, MSN and mig33
//! simulators in this process, the real bridge binary (at trace level), and the bytes of
//! every file the bridge wrote.
//!
//! Slot 0 logs in on all three networks, is killed with SIGKILL, and its files and log
//! are searched for the passwords; slot 1 is started with a wrong key and without its key
//! file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use e2e_tests::bridge::{environment, BridgeProcess, BridgeSlot, SlotOptions};
use e2e_tests::{wait_until, Synapse, TestUser};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(60);

// Distinctive, so that finding one anywhere is not a coincidence.
const ICQ_UIN: u32 = 1001;
const ICQ_PW: &str = "Qz8wK3vT"; // ICQ v2: at most 8 characters
const MSN_ID: &str = "me@example.com";
const MSN_PW: &str = "Msn-Pass-4471x";
const MIG33_ID: &str = "alice";
const MIG33_PW: &str = "Mig33-Pass-9k2w";

/// Every slot enables the three networks (the registration's namespaces come from
/// them); each test points them at its own simulators. Slot 0 logs everything.
fn options(i: usize) -> SlotOptions {
    let networks = ["icq", "msn", "mig33"]
        .iter()
        .map(|n| {
            format!(
                "  {n}:\n    enabled: true\n    server: \"127.0.0.1:1\"\n    ghost_template: \"s{i}{n}_{{id}}\"\n"
            )
        })
        .collect();
    SlotOptions {
        networks_yaml: networks,
        rust_log: (i == 0).then(|| "trace".to_owned()),
        ..SlotOptions::default()
    }
}

/// The three simulators, each with the bridged account and one contact.
struct Simulators {
    icq: legacy_sim::icq::Server,
    msn: legacy_sim::msn::Server,
    mig33: legacy_sim::mig33::Server,
}

impl Simulators {
    async fn start() -> Simulators {
        let icq: legacy_sim::icq::Config = serde_yaml::from_str(&format!(
            "listen: \"127.0.0.1:0\"\nusers:\n  - {{ uin: {ICQ_UIN}, password: {ICQ_PW}, nick: alice, contacts: [1002] }}\n  - {{ uin: 1002, password: bob2, nick: bob, contacts: [{ICQ_UIN}] }}\n"
        ))
        .expect("ICQ simulator config");
        let msn_user = |email: &str, password: &str, contact: &str| legacy_sim::msn::UserConfig {
            email: email.into(),
            password: password.into(),
            friendly_name: None,
            groups: Vec::new(),
            contacts: vec![legacy_sim::msn::ContactConfig {
                email: contact.into(),
                nick: None,
                lists: vec!["FL".into(), "AL".into()],
                groups: Vec::new(),
            }],
            login_redirect: false,
        };
        let msn = legacy_sim::msn::Config {
            dispatch_port: 0,
            notification_port: 0,
            switchboard_port: 0,
            http_port: 0,
            users: vec![
                msn_user(MSN_ID, MSN_PW, "bob@example.com"),
                msn_user("bob@example.com", "bobpw", MSN_ID),
            ],
            ..legacy_sim::msn::Config::default()
        };
        let mig33_user = |name: &str, password: &str| legacy_sim::mig33::UserConfig {
            username: name.into(),
            password: password.into(),
            display_name: None,
            groups: Vec::new(),
            contacts: Vec::new(),
        };
        let mig33 = legacy_sim::mig33::Config {
            listen: "127.0.0.1:0".into(),
            motd: None,
            users: vec![mig33_user(MIG33_ID, MIG33_PW), mig33_user("bob", "bobpw")],
            chatrooms: Vec::new(),
            participant_separator: legacy_sim::mig33::ParticipantSeparator::Semicolon,
            flood_limit: None,
        };
        Simulators {
            icq: legacy_sim::icq::Server::start(icq)
                .await
                .expect("ICQ simulator"),
            msn: legacy_sim::msn::Server::start(msn)
                .await
                .expect("MSN simulator"),
            mig33: legacy_sim::mig33::Server::start(mig33)
                .await
                .expect("mig33 simulator"),
        }
    }

    fn networks_yaml(&self, slot: &BridgeSlot) -> String {
        let nexus = serde_json::json!(self.msn.nexus_url());
        [
            slot.network_yaml(
                "icq",
                &self.icq.addr().to_string(),
                &[("probe_interval_secs", serde_json::json!(2))],
            ),
            slot.network_yaml(
                "msn",
                &self.msn.dispatch_addr().to_string(),
                &[("nexus_url", nexus)],
            ),
            slot.network_yaml("mig33", &self.mig33.addr().to_string(), &[]),
        ]
        .concat()
    }

    /// Whether each simulator has the bridged account logged in (ICQ, MSN, mig33).
    async fn online(&self) -> [bool; 3] {
        [
            self.icq.online_users().await.contains(&ICQ_UIN),
            self.msn.is_online(MSN_ID),
            self.mig33.online_users().iter().any(|u| u == MIG33_ID),
        ]
    }

    async fn wait_online(&self, want: [bool; 3], what: &str) {
        wait_until(WAIT, what, || async {
            Ok((self.online().await == want).then_some(()))
        })
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    }
}

fn start_bridge(synapse: &Synapse, slot: &BridgeSlot, sims: &Simulators) -> BridgeProcess {
    slot.start_with_networks(synapse, Some(&sims.networks_yaml(slot)))
        .expect("bridge starts")
}

fn body(event: &Value) -> &str {
    event["content"]["body"].as_str().unwrap_or_default()
}

async fn command(user: &TestUser, slot: &BridgeSlot, room: &str, text: &str, expect: &str) {
    user.send_text(room, text).await.expect("send");
    user.wait_for_message(
        room,
        |e| e["sender"] == slot.bot.as_str() && body(e).contains(expect),
        WAIT,
    )
    .await
    .unwrap_or_else(|e| panic!("no bot message containing {expect:?}: {e:#}"));
}

const CONNECTED: [&str; 3] = [
    "Connected to ICQ as 1001",
    "Connected to MSN Messenger as me@example.com",
    "Connected to mig33 as alice",
];

async fn log_in_everywhere(user: &TestUser, slot: &BridgeSlot, room: &str) {
    let commands = [
        format!("login icq {ICQ_UIN} {ICQ_PW}"),
        format!("login msn {MSN_ID} {MSN_PW}"),
        format!("login mig33 {MIG33_ID} {MIG33_PW}"),
    ];
    for (text, expect) in commands.iter().zip(CONNECTED) {
        command(user, slot, room, text, expect).await;
    }
}

/// The encodings of `secret` a file could plausibly hold it in.
fn encodings(secret: &str) -> Vec<(&'static str, Vec<u8>)> {
    let utf16 = |le: bool| -> Vec<u8> {
        secret
            .encode_utf16()
            .flat_map(|u| if le { u.to_le_bytes() } else { u.to_be_bytes() })
            .collect()
    };
    let hex: String = secret.bytes().map(|b| format!("{b:02x}")).collect();
    // How Rust prints bytes (`{:?}` of a byte slice: sled logs values so at trace).
    let debug = format!("{:?}", secret.as_bytes());
    vec![
        ("UTF-8", secret.as_bytes().to_vec()),
        ("UTF-16LE", utf16(true)),
        ("UTF-16BE", utf16(false)),
        ("hex", hex.clone().into_bytes()),
        ("HEX", hex.to_uppercase().into_bytes()),
        (
            "bytes printed",
            debug.trim_matches(['[', ']']).as_bytes().to_vec(),
        ),
    ]
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read folder") {
        let entry = entry.expect("folder entry");
        if entry.file_type().expect("file type").is_dir() {
            files.extend(files_under(&entry.path()));
        } else {
            files.push(entry.path());
        }
    }
    files
}

/// Every (file, password, encoding) found under `dir`.
fn passwords_in_files(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    for file in files_under(dir) {
        let bytes = std::fs::read(&file).expect("read file");
        for secret in [ICQ_PW, MSN_PW, MIG33_PW] {
            for (encoding, needle) in encodings(secret) {
                if find(&bytes, &needle).is_some() {
                    found.push(format!("{secret} ({encoding}) in {}", file.display()));
                }
            }
        }
    }
    found
}

fn passwords_in_log(log: &[u8]) -> Vec<String> {
    let mut found = Vec::new();
    for secret in [ICQ_PW, MSN_PW, MIG33_PW] {
        for (encoding, needle) in encodings(secret) {
            if let Some(at) = find(log, &needle) {
                let line_start = log[..at]
                    .iter()
                    .rposition(|&b| b == b'\n')
                    .map_or(0, |p| p + 1);
                let line_end = log[at..]
                    .iter()
                    .position(|&b| b == b'\n')
                    .map_or(log.len(), |p| at + p);
                found.push(format!(
                    "{secret} ({encoding}): {}",
                    String::from_utf8_lossy(&log[line_start..line_end])
                ));
            }
        }
    }
    found
}

fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    files_under(dir)
        .into_iter()
        .map(|f| {
            let bytes = std::fs::read(&f).expect("read file");
            (f, bytes)
        })
        .collect()
}

fn key_file(slot: &BridgeSlot) -> PathBuf {
    slot.dir.join("db.key")
}

#[tokio::test(flavor = "multi_thread")]
async fn no_password_in_any_file_or_the_trace_log_after_a_kill_and_the_logins_come_back() {
    let (synapse, slots) = environment(2, options);
    let slot = &slots[0];
    let sims = Simulators::start().await;
    let mut bridge = start_bridge(synapse, slot, &sims);
    let user = synapse
        .register_user(&slot.user_localpart("alice"), "pw", false)
        .await
        .expect("register");
    let room = slot.management_room(&user).await;
    log_in_everywhere(&user, slot, &room).await;
    sims.wait_online([true; 3], "the three logins").await;

    bridge.kill9();
    let db = slot.dir.join("db");
    let files = files_under(&db);
    assert!(
        files
            .iter()
            .any(|f| f.file_name().is_some_and(|n| n == "db")),
        "the scan covers sled's files: {files:?}"
    );
    let found = passwords_in_files(&db);
    assert!(found.is_empty(), "passwords in the database: {found:#?}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(key_file(slot))
            .expect("the key file was created")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "the key file is the owner's only");
    }

    // The log holds everything down to trace level (sled's own writes included) and
    // no password.
    let log = std::fs::read(slot.log_path()).expect("bridge log");
    let text = String::from_utf8_lossy(&log);
    for library in ["sled", "matrix_sdk"] {
        assert!(
            text.lines()
                .any(|l| l.contains("TRACE") && l.contains(library)),
            "the log has no trace line from {library}: the test would prove nothing"
        );
    }
    let found = passwords_in_log(&log);
    assert!(found.is_empty(), "passwords in the log: {found:#?}");

    // The stored logins come back with the key: the simulators see them log in again.
    sims.wait_online([true, false, false], "MSN and mig33 to notice the kill")
        .await;
    assert!(sims.icq.forget_session(ICQ_UIN).await, "1001 was logged in");
    let _bridge = start_bridge(synapse, slot, &sims);
    // (They come back quietly: no second "Connected" notice, see tests/restart.rs.)
    sims.wait_online([true; 3], "the three logins to come back")
        .await;
    let found = passwords_in_files(&db);
    assert!(
        found.is_empty(),
        "passwords in the database after the restart: {found:#?}"
    );
    let log = std::fs::read(slot.log_path()).expect("bridge log");
    let found = passwords_in_log(&log);
    assert!(
        found.is_empty(),
        "passwords in the log after the restart: {found:#?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_or_missing_key_stops_the_start_and_changes_nothing() {
    let (synapse, slots) = environment(2, options);
    let slot = &slots[1];
    let sims = Simulators::start().await;
    let mut bridge = start_bridge(synapse, slot, &sims);
    let user = synapse
        .register_user(&slot.user_localpart("alice"), "pw", false)
        .await
        .expect("register");
    let room = slot.management_room(&user).await;
    command(
        &user,
        slot,
        &room,
        &format!("login icq {ICQ_UIN} {ICQ_PW}"),
        CONNECTED[0],
    )
    .await;
    assert!(bridge.terminate(), "the bridge stops cleanly");
    let db = slot.dir.join("db");
    let before = snapshot(&db);
    let key = std::fs::read(key_file(slot)).expect("the key file");

    let refused = |env: &[(&str, &std::ffi::OsStr)], expect: &str| {
        let start = std::fs::metadata(slot.log_path()).map_or(0, |m| m.len() as usize);
        let mut process = slot.spawn_with_env(synapse, env).expect("spawn");
        let status = process
            .wait_exit(Duration::from_secs(30))
            .expect("the bridge exits by itself");
        let log = std::fs::read(slot.log_path()).expect("log");
        let new = String::from_utf8_lossy(&log[start.min(log.len())..]).into_owned();
        assert!(!status.success(), "it failed: {status}\n{new}");
        assert!(new.contains(expect), "the log says {expect:?}:\n{new}");
        assert!(
            !new.contains(&format!("bot {} ready", slot.bot)),
            "it got nowhere near serving:\n{new}"
        );
    };

    // Another key, from the environment.
    let wrong = "ab".repeat(32);
    refused(
        &[("RETROBRIDGE_DATABASE_KEY", wrong.as_ref())],
        "is not the key this database was encrypted with",
    );
    assert!(snapshot(&db) == before, "the database changed");
    assert_eq!(
        std::fs::read(key_file(slot)).unwrap(),
        key,
        "the key file changed"
    );

    // No key at all: the key file moved away.
    let aside = slot.dir.join("kept.key");
    std::fs::rename(key_file(slot), &aside).unwrap();
    refused(&[], "its key is missing");
    assert!(
        !key_file(slot).exists(),
        "no new key is made for an encrypted database"
    );
    assert!(snapshot(&db) == before, "the database changed");

    // The right key again: the login comes back.
    std::fs::rename(&aside, key_file(slot)).unwrap();
    sims.icq.forget_session(ICQ_UIN).await;
    let _bridge = start_bridge(synapse, slot, &sims);
    sims.wait_online([true, false, false], "the ICQ login to come back")
        .await;
}
