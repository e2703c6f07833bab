//! File transfer benchmark through a real Synapse (not a test; it stops by itself): the
//! time and the bridge's CPU to move a 1 MiB file each way between a Matrix user and an
//! MSN contact of the simulator (MSNSLP, the data relayed through the switchboard).
//!
//! * MSN -> Matrix: from the contact's first P2P message to the `m.file` event in the
//!   room (the bridge reassembles, stores, uploads as the ghost and sends the event);
//! * Matrix -> MSN: from the `m.file` event sent (the file uploaded before) to the
//!   contact's client holding every byte (the bridge downloads, offers, sends chunks).
//!
//! Run:
//!
//!     cargo build --release --bins
//!     cargo bench -p e2e-tests --bench files
//!
//! `BENCH_FILE_ROUNDS` (default 20) sets the transfers each way, `BENCH_FILE_KIB` (default
//! 1024) the size. Prints each round, the median time and the mean CPU (the kernel counts
//! CPU in 10 ms ticks), with the load average.

use std::time::{Duration, Instant};

use e2e_tests::bridge::{private_environment, SlotOptions};
use e2e_tests::process::cpu_ms;
use e2e_tests::TestUser;
use legacy_sim::msn::{Client, ClientEvent, Config, ContactConfig, Server, UserConfig};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(120);
const ME: &str = "me@example.com";

fn user(email: &str, contact: &str) -> UserConfig {
    UserConfig {
        email: email.into(),
        password: "pw".into(),
        friendly_name: None,
        groups: Vec::new(),
        contacts: vec![ContactConfig {
            email: contact.into(),
            nick: None,
            lists: vec!["FL".into(), "AL".into()],
            groups: Vec::new(),
        }],
        login_redirect: false,
    }
}

fn file_bytes(len: usize, round: usize) -> Vec<u8> {
    (0..len)
        .map(|i| ((i as u32).wrapping_mul(2_654_435_761) >> 24) as u8 ^ round as u8)
        .collect()
}

/// (milliseconds, bridge CPU milliseconds) of one transfer.
type Sample = (f64, f64);

fn report(what: &str, kib: usize, samples: &mut [Sample]) {
    for (i, (ms, cpu)) in samples.iter().enumerate() {
        println!(
            "  {what} round {}: {ms:.0} ms, bridge CPU {cpu:.0} ms",
            i + 1
        );
    }
    samples.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (ms, _) = samples[samples.len() / 2];
    // The kernel counts CPU in 10 ms ticks: the mean over the rounds says more.
    let cpu = samples.iter().map(|s| s.1).sum::<f64>() / samples.len() as f64;
    println!(
        "{what}, {kib} KiB: median {ms:.0} ms ({:.2} MiB/s), bridge CPU mean {cpu:.1} ms \
         ({:.1} ms per MiB); {} rounds, min {:.0} ms, max {:.0} ms",
        kib as f64 / 1024.0 / (ms / 1000.0),
        cpu / (kib as f64 / 1024.0),
        samples.len(),
        samples.first().map_or(0.0, |s| s.0),
        samples.last().map_or(0.0, |s| s.0),
    );
}

async fn wait_event(user: &TestUser, room: &str, want: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + WAIT;
    loop {
        // Only the latest events: polled often, this is the clock of the measurement.
        if let Ok(events) = user.messages(room).await {
            if let Some(e) = events.into_iter().find(|e| want(e)) {
                return e;
            }
        }
        assert!(Instant::now() < deadline, "timed out waiting in {room}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn main() {
    let runtime = e2e_tests::bench::runtime();
    runtime.block_on(async {
        let rounds = e2e_tests::bench::env_number("BENCH_FILE_ROUNDS", 20).max(1);
        let kib = e2e_tests::bench::env_number("BENCH_FILE_KIB", 1024).max(1);
        println!(
            "file benchmark: {rounds} x {kib} KiB each way over MSN (MSNSLP through the switchboard); \
             {}",
            e2e_tests::bench::machine()
        );
        let sim = Server::start(Config {
            dispatch_port: 0,
            notification_port: 0,
            switchboard_port: 0,
            http_port: 0,
            users: vec![user(ME, "alice@example.com"), user("alice@example.com", ME)],
            ..Config::default()
        })
        .await
        .expect("simulator");
        let options = SlotOptions {
            networks_yaml: "  msn:\n    enabled: true\n    server: \"127.0.0.1:1\"\n    ghost_template: \"s0msn_{id}\"\n".into(),
            everyone: true,
            rust_log: Some("info,sled=warn,hyper=warn,matrix_sdk=warn,reqwest=warn".into()),
            ..SlotOptions::default()
        };
        let (synapse, slot) =
            tokio::task::block_in_place(|| private_environment("bench-files", options))
                .expect("synapse");
        let networks = slot.network_yaml(
            "msn",
            &sim.dispatch_addr().to_string(),
            &[("nexus_url", json!(sim.nexus_url()))],
        );
        let bridge =
            tokio::task::block_in_place(|| slot.start_with_networks(&synapse, Some(&networks)))
                .expect("bridge");
        let pid = bridge.pid().expect("bridge running");
        let user = synapse
            .register_user("u0", "pw", false)
            .await
            .expect("register");
        let mgmt = slot.management_room(&user).await;
        user.send_text(&mgmt, &format!("login msn {ME} pw"))
            .await
            .expect("login");
        let bot = slot.bot.clone();
        wait_event(&user, &mgmt, |e| {
            e["sender"] == bot.as_str()
                && e["content"]["body"]
                    .as_str()
                    .is_some_and(|b| b.contains("Connected to MSN"))
        })
        .await;
        let mut alice = Client::login(sim.dispatch_addr(), &sim.nexus_url(), "alice@example.com", "pw")
            .await
            .expect("contact logs in");
        alice.send_message(ME, "hello").await.expect("hello");
        let ghost = slot.ghost("msn", "alice=40example.com");
        let room = e2e_tests::wait_until(WAIT, "the DM invite", || async {
            Ok(user
                .invited_rooms()
                .await?
                .into_iter()
                .find(|i| i.inviter == ghost)
                .map(|i| i.room_id))
        })
        .await
        .expect("invite");
        user.join(&room).await.expect("join");

        let len = kib * 1024;
        let mut samples = Vec::new();
        for round in 0..rounds {
            let name = format!("in-{round}.bin");
            let data = file_bytes(len, round);
            let (cpu0, t0) = (cpu_ms(pid), Instant::now());
            alice.send_file(ME, &name, data.clone()).await.expect("send");
            let event = wait_event(&user, &room, |e| e["content"]["body"] == name.as_str()).await;
            samples.push((t0.elapsed().as_secs_f64() * 1000.0, cpu_ms(pid) - cpu0));
            if round == 0 {
                let url = event["content"]["url"].as_str().expect("url");
                assert!(user.download(url).await.expect("download") == data, "bytes differ");
            }
        }
        report("MSN -> Matrix", kib, &mut samples);

        let mut samples = Vec::new();
        for round in 0..rounds {
            let name = format!("out-{round}.bin");
            let data = file_bytes(len, round + 100);
            let url = user
                .upload(data.clone(), "application/octet-stream", &name)
                .await
                .expect("upload");
            let (cpu0, t0) = (cpu_ms(pid), Instant::now());
            user.send_message(&room, json!({"msgtype": "m.file", "body": name, "url": url}))
                .await
                .expect("send");
            let got = alice
                .wait_for(WAIT, |e| matches!(e, ClientEvent::FileReceived { name: n, .. } if *n == name))
                .await
                .expect("alice receives the file");
            samples.push((t0.elapsed().as_secs_f64() * 1000.0, cpu_ms(pid) - cpu0));
            let ClientEvent::FileReceived { data: received, .. } = got else {
                unreachable!()
            };
            assert!(received == data, "bytes differ");
        }
        report("Matrix -> MSN", kib, &mut samples);
        drop(bridge);
    });
}
