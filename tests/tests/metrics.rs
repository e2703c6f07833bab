//! End-to-end tests of the Prometheus metrics: a real Synapse, the ICQ simulator, the
//! real bridge binary, and `/metrics` scraped over HTTP after traffic both ways.
//!
//! Slot 0 enables metrics on a free port; slot 1 leaves the config's `metrics:` out.

use std::collections::BTreeSet;
use std::time::Duration;

use e2e_tests::bridge::{environment, BridgeProcess, BridgeSlot, SlotOptions};
use e2e_tests::{wait_until, Synapse, TestUser};
use icq_proto::ClientEvent;
use legacy_sim::icq::{client::Client, Config, Server};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(60);
const ICQ_WAIT: Duration = Duration::from_secs(30);

const ME: u32 = 1001;
const ME_PW: &str = "s3cr3tz";
const BOB: u32 = 1002;

fn options(i: usize) -> SlotOptions {
    SlotOptions {
        networks_yaml: format!(
            "  icq:\n    enabled: true\n    server: \"127.0.0.1:9\"\n    ghost_template: \"s{i}icq_{{id}}\"\n"
        ),
        metrics: i == 0,
        ..SlotOptions::default()
    }
}

fn sim_config() -> Config {
    let yaml = format!(
        r#"
listen: "127.0.0.1:0"
users:
  - {{ uin: {ME}, password: {ME_PW}, nick: alice, contacts: [{BOB}] }}
  - {{ uin: {BOB}, password: bob2, nick: bobby, contacts: [{ME}] }}
"#
    );
    serde_yaml::from_str(&yaml).expect("simulator config")
}

fn start_bridge(synapse: &Synapse, slot: &BridgeSlot, server: &Server) -> BridgeProcess {
    // A short probe interval: the bridge notices a stopped server within seconds.
    let yaml = slot.network_yaml(
        "icq",
        &server.addr().to_string(),
        &[("probe_interval_secs", serde_json::json!(2))],
    );
    slot.start_with_networks(synapse, Some(&yaml))
        .expect("bridge starts")
}

fn body(event: &Value) -> &str {
    event["content"]["body"].as_str().unwrap_or_default()
}

async fn bot_says(user: &TestUser, slot: &BridgeSlot, room: &str, needle: &str) {
    user.wait_for_message(
        room,
        |e| e["sender"] == slot.bot.as_str() && body(e).contains(needle),
        WAIT,
    )
    .await
    .unwrap_or_else(|e| panic!("no bot message containing {needle:?}: {e:#}"));
}

/// One scrape of `/metrics`, parsed.
struct Scrape {
    text: String,
}

impl Scrape {
    /// The value of the series `name` whose labels are exactly `labels`.
    fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let want: BTreeSet<(String, String)> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self.series()
            .find(|(n, l, _)| n == name && *l == want)
            .map(|(_, _, v)| v)
    }

    /// Like [`get`](Self::get), 0 for a series not exported (yet).
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.get(name, labels).unwrap_or(0.0)
    }

    /// (name, labels, value) of every sample line.
    fn series(&self) -> impl Iterator<Item = (String, BTreeSet<(String, String)>, f64)> + '_ {
        self.text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .map(|line| {
                let (series, value) = line.rsplit_once(' ').expect("a sample line");
                let value: f64 = value.parse().expect("a sample value");
                let (name, labels) = match series.split_once('{') {
                    Some((name, rest)) => (name, rest.trim_end_matches('}')),
                    None => (series, ""),
                };
                let labels = labels
                    .split(',')
                    .filter(|p| !p.is_empty())
                    .map(|pair| {
                        let (k, v) = pair.split_once('=').expect("label=value");
                        (k.to_owned(), v.trim_matches('"').to_owned())
                    })
                    .collect();
                (name.to_owned(), labels, value)
            })
    }
}

async fn scrape(url: &str) -> anyhow::Result<Scrape> {
    let response = reqwest::get(url).await?.error_for_status()?;
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    anyhow::ensure!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "content type {content_type:?}"
    );
    Ok(Scrape {
        text: response.text().await?,
    })
}

/// Scrapes until `ready` holds for the scrape, then returns that scrape.
async fn scrape_until(url: &str, what: &str, ready: impl Fn(&Scrape) -> bool) -> Scrape {
    let last = std::sync::Mutex::new(String::new());
    wait_until(WAIT, what, || async {
        let s = scrape(url).await?;
        if ready(&s) {
            return Ok(Some(s));
        }
        *last.lock().unwrap() = s.text;
        Ok(None)
    })
    .await
    .unwrap_or_else(|e| panic!("{e:#}\nlast scrape:\n{}", last.lock().unwrap()))
}

/// The TCP ports process `pid` listens on (from /proc: its socket inodes, matched
/// against the kernel's table of listening sockets).
fn listening_ports(pid: u32) -> BTreeSet<u16> {
    let inodes: BTreeSet<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("the bridge's file descriptors")
        .filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
        .filter_map(|target| {
            let target = target.to_string_lossy().into_owned();
            Some(
                target
                    .strip_prefix("socket:[")?
                    .strip_suffix(']')?
                    .to_owned(),
            )
        })
        .collect();
    let mut ports = BTreeSet::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let cols: Vec<&str> = line.split_whitespace().collect();
            // local_address is cols[1] (hex ip:port), st is cols[3] (0A: LISTEN), inode cols[9].
            if cols.len() > 9 && cols[3] == "0A" && inodes.contains(cols[9]) {
                let port = cols[1].rsplit_once(':').expect("ip:port").1;
                ports.insert(u16::from_str_radix(port, 16).expect("hex port"));
            }
        }
    }
    ports
}

const L2M: &[(&str, &str)] = &[("network", "icq"), ("direction", "legacy_to_matrix")];
const M2L: &[(&str, &str)] = &[("network", "icq"), ("direction", "matrix_to_legacy")];

fn logins(s: &Scrape, state: &str) -> Option<f64> {
    s.get(
        "retrobridge_logins",
        &[("network", "icq"), ("state", state)],
    )
}

#[tokio::test]
async fn metrics_count_logins_messages_transactions_requests_and_reconnects() {
    let (synapse, slots) = environment(2, options);
    let slot = &slots[0];
    let url = slot.metrics_url().expect("slot 0 enables metrics");
    let mut server = Server::start(sim_config()).await.expect("ICQ simulator");
    let bridge = start_bridge(synapse, slot, &server);
    let pid = bridge.pid().expect("running");
    let expected: BTreeSet<u16> = [slot.port, slot.metrics_port.unwrap()].into();
    assert_eq!(
        listening_ports(pid),
        expected,
        "appservice and metrics listeners"
    );

    // The enabled network's series exist before any login, at zero.
    let before = scrape(&url).await.expect("metrics answer");
    for state in ["connecting", "connected", "disconnected"] {
        assert_eq!(
            logins(&before, state),
            Some(0.0),
            "{state}\n{}",
            before.text
        );
    }
    assert_eq!(
        before.get("retrobridge_outbox_depth", &[("network", "icq")]),
        Some(0.0)
    );

    let alice = synapse
        .register_user(&slot.user_localpart("alice"), "pw", false)
        .await
        .expect("register alice");
    let mgmt = slot.management_room(&alice).await;
    alice
        .send_text(&mgmt, &format!("login icq {ME} {ME_PW}"))
        .await
        .unwrap();
    bot_says(&alice, slot, &mgmt, "Connected to ICQ as 1001").await;
    let s = scrape_until(&url, "one connected ICQ login", |s| {
        logins(s, "connected") == Some(1.0)
    })
    .await;
    assert_eq!(logins(&s, "connecting"), Some(0.0));
    assert_eq!(logins(&s, "disconnected"), Some(0.0));

    // Legacy -> Matrix: three messages from Bob.
    let mut bob = Client::login(server.addr(), BOB, "bob2")
        .await
        .expect("Bob logs in");
    for i in 1..=3 {
        bob.send_message_acked(ME, &format!("from bob {i}"), ICQ_WAIT)
            .await
            .unwrap();
    }
    let ghost = slot.ghost("icq", &BOB.to_string());
    let room = wait_until(WAIT, "the DM invite from Bob's ghost", || async {
        Ok(alice
            .invited_rooms()
            .await?
            .into_iter()
            .find(|i| i.inviter == ghost)
            .map(|i| i.room_id))
    })
    .await
    .unwrap();
    alice.join(&room).await.unwrap();
    alice
        .wait_for_message(
            &room,
            |e| e["sender"] == ghost.as_str() && body(e).contains("from bob 3"),
            WAIT,
        )
        .await
        .expect("Bob's third message in Matrix");
    scrape_until(&url, "3 messages legacy -> Matrix", |s| {
        s.value("retrobridge_messages_total", L2M) >= 3.0
    })
    .await;

    // Matrix -> legacy: two messages from Alice.
    for i in 1..=2 {
        alice
            .send_text(&room, &format!("from alice {i}"))
            .await
            .unwrap();
        match bob.wait_for_message(ME, ICQ_WAIT).await {
            Some(ClientEvent::Message { text, .. }) => assert_eq!(text, format!("from alice {i}")),
            other => panic!("Bob did not get Alice's message {i}: {other:?}"),
        }
    }
    let s = scrape_until(&url, "2 messages Matrix -> legacy", |s| {
        s.value("retrobridge_messages_total", M2L) >= 2.0
    })
    .await;

    // Exactly what crossed, and one latency observation per message.
    assert_eq!(
        s.value("retrobridge_messages_total", L2M),
        3.0,
        "{}",
        s.text
    );
    assert_eq!(
        s.value("retrobridge_messages_total", M2L),
        2.0,
        "{}",
        s.text
    );
    let count = |labels| s.value("retrobridge_delivery_latency_seconds_count", labels);
    assert_eq!(count(L2M), 3.0, "{}", s.text);
    assert_eq!(count(M2L), 2.0, "{}", s.text);
    assert!(s.value("retrobridge_delivery_latency_seconds_sum", L2M) > 0.0);
    assert!(s.value("retrobridge_delivery_latency_seconds_sum", M2L) > 0.0);
    for labels in [L2M, M2L] {
        assert_eq!(s.get("retrobridge_messages_failed_total", labels), None);
    }
    // Nothing waits once everything arrived.
    assert_eq!(
        s.get("retrobridge_outbox_depth", &[("network", "icq")]),
        Some(0.0)
    );
    assert_eq!(
        s.get(
            "retrobridge_outbox_oldest_age_seconds",
            &[("network", "icq")]
        ),
        Some(0.0)
    );

    // Transactions: Alice's commands and messages were recorded; the echoes of the
    // ghost's and the bot's own messages were dropped unrecorded.
    assert!(s.value("retrobridge_appservice_transactions_total", &[]) > 0.0);
    let events = |outcome| {
        s.value(
            "retrobridge_appservice_events_total",
            &[("outcome", outcome)],
        )
    };
    assert!(
        events("recorded") >= 3.0,
        "login command and 2 messages\n{}",
        s.text
    );
    assert!(
        events("not_ours") >= 3.0,
        "the ghost's 3 messages\n{}",
        s.text
    );

    // Homeserver requests: every request counted and timed, by endpoint kind only.
    let sends = s.value(
        "retrobridge_homeserver_requests_total",
        &[("kind", "send_message_event")],
    );
    assert!(sends >= 3.0, "the ghost's 3 messages at least\n{}", s.text);
    let mut kinds = 0;
    for (name, labels, value) in s.series() {
        if name == "retrobridge_homeserver_requests_total" {
            kinds += 1;
            let kind = labels.iter().next().expect("a kind label").1.clone();
            let timed = s.value(
                "retrobridge_homeserver_request_duration_seconds_count",
                &[("kind", &kind)],
            );
            assert_eq!(timed, value, "{kind}: requests and timings differ");
            assert_ne!(kind, "other", "a request type without a kind\n{}", s.text);
        }
    }
    assert!(
        kinds >= 5,
        "create_room, join, invite, send... \n{}",
        s.text
    );

    // A lost server: the login shows disconnected and one reconnect is counted...
    server.stop().await;
    bot_says(&alice, slot, &mgmt, "Disconnected from ICQ").await;
    let s = scrape_until(&url, "the ICQ login disconnected", |s| {
        logins(s, "disconnected") == Some(1.0)
    })
    .await;
    assert_eq!(logins(&s, "connected"), Some(0.0));
    let reconnects =
        |s: &Scrape| s.value("retrobridge_legacy_reconnects_total", &[("network", "icq")]);
    assert_eq!(reconnects(&s), 1.0, "{}", s.text);
    // ...and after the server is back, connected again, still one outage.
    server.restart().await.expect("server restarts");
    let s = scrape_until(&url, "the ICQ login connected again", |s| {
        logins(s, "connected") == Some(1.0)
    })
    .await;
    assert_eq!(reconnects(&s), 1.0, "{}", s.text);

    // Bounded labels: no user id, room id or legacy id anywhere in the series.
    for (name, labels, _) in s.series() {
        for (k, v) in &labels {
            assert!(
                !v.contains(':') && !v.contains('@') && !v.contains(&ME.to_string()),
                "{name}: label {k}={v:?} looks like an id"
            );
        }
    }
}

#[tokio::test]
async fn metrics_are_off_by_default() {
    let (synapse, slots) = environment(2, options);
    let slot = &slots[1];
    let config = std::fs::read_to_string(slot.config_path()).unwrap();
    assert!(!config.contains("metrics"), "slot 1 has no metrics section");
    let server = Server::start(sim_config()).await.expect("ICQ simulator");
    let bridge = start_bridge(synapse, slot, &server);
    let pid = bridge.pid().expect("running");
    // Only the appservice endpoint listens (no metrics listener on any port).
    assert_eq!(listening_ports(pid), [slot.port].into());
    assert!(
        !bridge.log().contains("metrics on"),
        "the log announces a metrics listener"
    );
}
