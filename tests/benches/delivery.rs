//! End-to-end delivery benchmark through a real Synapse (not a test; it stops by itself).
//!
//! Scenarios, all over mig33 (the simulator runs in this process):
//! 1. legacy -> Matrix, 2 senders to 1 user;
//! 2. legacy -> Matrix, 100 senders to 10 users;
//! 3. Matrix -> legacy, 1 user to 1 contact.
//!
//! Each prints messages per second end to end, the bridge's CPU per message and
//! Synapse's CPU per event (from /proc), the bridge's RSS before and after, and the
//! integrity of what arrived (missing, doubled, out of order per sender).
//!
//!     cargo build --release --bins
//!     cargo bench -p e2e-tests --bench delivery
//!
//! `BENCH_MESSAGES` (default 10000) sets the legacy -> Matrix burst size,
//! `BENCH_MATRIX_MESSAGES` (default 1000) the other direction; `BENCH_ONLY` (`2to1`,
//! `100to10` or `m2l`) runs one scenario; `BENCH_PERF=<dir>` records a profile of the
//! bridge with `perf record` during each measured window (`<dir>/<scenario>.data`);
//! `BENCH_RUST_LOG` replaces the bridge's log filter (its log is in
//! `/tmp/retrobridge-e2e-<pid>-bench-<scenario>/`).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use e2e_tests::bridge::{private_environment, BridgeProcess, BridgeSlot, SlotOptions};
use e2e_tests::process::{cpu_ms, rss_mb, thread_groups};
use e2e_tests::{enc, wait_until, Synapse, TestUser};
use legacy_sim::mig33;
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(120);

struct Meter {
    perf: Option<std::process::Child>,
    bridge: u32,
    synapse: u32,
    started: Instant,
    bridge_cpu: f64,
    synapse_cpu: f64,
    rss_before: f64,
    threads: BTreeMap<String, (f64, u64)>,
}

impl Meter {
    fn start(scenario: &str, bridge: &BridgeProcess, synapse: &Synapse) -> Meter {
        let bridge = bridge.pid().expect("bridge running");
        let synapse = synapse.pid().expect("synapse running");
        let perf = std::env::var("BENCH_PERF").ok().map(|dir| {
            std::process::Command::new("perf")
                .args([
                    "record",
                    "-q",
                    "-F",
                    "499",
                    "--call-graph",
                    "dwarf,16384",
                    "-o",
                ])
                .arg(format!("{dir}/{scenario}.data"))
                .args(["-p", &bridge.to_string()])
                .spawn()
                .expect("perf")
        });
        Meter {
            perf,
            bridge,
            synapse,
            started: Instant::now(),
            bridge_cpu: cpu_ms(bridge),
            synapse_cpu: cpu_ms(synapse),
            rss_before: rss_mb(bridge),
            threads: thread_groups(bridge),
        }
    }

    /// Ends the perf recording, if any (SIGINT: perf writes its file and ends).
    fn stop_perf(&mut self) {
        if let Some(mut perf) = self.perf.take() {
            let _ = std::process::Command::new("kill")
                .args(["-INT", &perf.id().to_string()])
                .status();
            let _ = perf.wait();
        }
    }

    fn report(mut self, what: &str, messages: usize, integrity: (usize, usize, usize)) {
        self.stop_perf();
        let secs = self.started.elapsed().as_secs_f64();
        let bridge = cpu_ms(self.bridge) - self.bridge_cpu;
        let synapse = cpu_ms(self.synapse) - self.synapse_cpu;
        let (missing, doubled, reordered) = integrity;
        println!(
            "{what}: {messages} messages in {secs:.1} s = {:.0} msg/s; bridge CPU {:.3} ms/msg; \
             Synapse CPU {:.1} ms/event; bridge RSS {:.1} -> {:.1} MB; \
             missing {missing}, doubled {doubled}, out of order {reordered}",
            messages as f64 / secs,
            bridge / messages as f64,
            synapse / messages as f64,
            self.rss_before,
            rss_mb(self.bridge),
        );
        // Where the bridge's time goes, per message: threads that exited meanwhile
        // (sled's extra I/O threads) are missing here but counted in the total above.
        let per = messages.max(1) as f64;
        let mut parts = Vec::new();
        for (name, (cpu, switches)) in thread_groups(self.bridge) {
            let (cpu0, switches0) = self.threads.get(&name).copied().unwrap_or_default();
            let (cpu, switches) = (cpu - cpu0, switches.saturating_sub(switches0));
            if cpu > 0.0 || switches > 0 {
                parts.push(format!(
                    "{name} {:.3} ms, {:.1} switches",
                    cpu / per,
                    switches as f64 / per
                ));
            }
        }
        println!("  bridge threads per message: {}", parts.join("; "));
    }
}

impl Drop for Meter {
    /// A scenario that fails (a deadline passed) stops its recording too.
    fn drop(&mut self) {
        self.stop_perf();
    }
}

fn body(e: &Value) -> &str {
    e["content"]["body"].as_str().unwrap_or_default()
}

/// Missing, doubled and out-of-order counts per sender: `seen` holds (sender, number).
fn integrity(
    seen: &[(String, usize)],
    per_sender: usize,
    senders: &[String],
) -> (usize, usize, usize) {
    let (mut missing, mut doubled, mut reordered) = (0, 0, 0);
    for sender in senders {
        let numbers: Vec<usize> = seen
            .iter()
            .filter(|(s, _)| s == sender)
            .map(|(_, n)| *n)
            .collect();
        let mut counts: BTreeMap<usize, usize> = BTreeMap::new();
        for &n in &numbers {
            *counts.entry(n).or_default() += 1;
        }
        missing += (0..per_sender).filter(|n| !counts.contains_key(n)).count();
        doubled += counts.values().map(|c| c - 1).sum::<usize>();
        reordered += numbers.windows(2).filter(|w| w[1] < w[0]).count();
    }
    (missing, doubled, reordered)
}

/// `x-00042` -> ("x", 42)
fn parse(text: &str) -> Option<(String, usize)> {
    let (sender, n) = text.split_once('-')?;
    Some((sender.to_owned(), n.parse().ok()?))
}

fn config(users: &[String]) -> mig33::Config {
    mig33::Config {
        listen: "127.0.0.1:0".into(),
        users: users
            .iter()
            .map(|u| mig33::UserConfig {
                username: u.clone(),
                password: "pw".into(),
                display_name: None,
                groups: Vec::new(),
                contacts: Vec::new(),
            })
            .collect(),
        ..mig33::Config::default()
    }
}

struct Bench {
    synapse: Synapse,
    slot: BridgeSlot,
    bridge: BridgeProcess,
    sim: mig33::Server,
    started: Instant,
}

impl Bench {
    /// Measurements start in steady state: after the bridge's start-up checks for late
    /// homeserver events (30 s after it starts) have ended.
    async fn steady(&self) {
        let steady = self.started + Duration::from_secs(35);
        tokio::time::sleep_until(steady.into()).await;
    }
}

async fn setup(name: &str, users: &[String]) -> Bench {
    let sim = mig33::Server::start(config(users))
        .await
        .expect("simulator");
    let options = SlotOptions {
        networks_yaml: "  mig33:\n    enabled: true\n    server: \"127.0.0.1:1\"\n    ghost_template: \"s0mig33_{id}\"\n".into(),
        everyone: true,
        rust_log: Some(std::env::var("BENCH_RUST_LOG").unwrap_or_else(|_| {
            "info,sled=warn,hyper=warn,matrix_sdk=warn,reqwest=warn".into()
        })),
        ..SlotOptions::default()
    };
    let (synapse, slot) =
        tokio::task::block_in_place(|| private_environment(name, options)).expect("synapse");
    // Unpaced: this measures the bridge's cost per message, not the send pacing a real
    // server needs (the simulator does not limit).
    let networks = slot.network_yaml(
        "mig33",
        &sim.addr().to_string(),
        &[
            ("messages_per_second", serde_json::json!(100000.0)),
            ("message_burst", serde_json::json!(100000)),
        ],
    );
    let bridge =
        tokio::task::block_in_place(|| slot.start_with_networks(&synapse, Some(&networks)))
            .expect("bridge");
    Bench {
        synapse,
        slot,
        bridge,
        sim,
        started: Instant::now(),
    }
}

/// A Matrix user logged in to mig33 as `account`.
async fn matrix_user(b: &Bench, localpart: &str, account: &str) -> (TestUser, String) {
    let user = b
        .synapse
        .register_user(localpart, "pw", false)
        .await
        .expect("register");
    let mgmt = b.slot.management_room(&user).await;
    user.send_text(&mgmt, &format!("login mig33 {account} pw"))
        .await
        .expect("login");
    let bot = b.slot.bot.clone();
    user.wait_for_message(
        &mgmt,
        |e| e["sender"] == bot.as_str() && body(e).contains("Connected to mig33"),
        WAIT,
    )
    .await
    .expect("connected");
    (user, mgmt)
}

/// Waits for the DM invites from these ghosts and joins them; room per ghost.
async fn accept(user: &TestUser, ghosts: &[String]) -> BTreeMap<String, String> {
    let rooms = std::sync::Mutex::new(BTreeMap::new());
    wait_until(WAIT, "DM invites", || async {
        for invite in user.invited_rooms().await? {
            let known = rooms.lock().unwrap().contains_key(&invite.inviter);
            if ghosts.contains(&invite.inviter) && !known {
                user.join(&invite.room_id).await?;
                rooms
                    .lock()
                    .unwrap()
                    .insert(invite.inviter.clone(), invite.room_id);
            }
        }
        let n = rooms.lock().unwrap().len();
        Ok((n == ghosts.len()).then_some(()))
    })
    .await
    .expect("invites");
    rooms.into_inner().unwrap()
}

/// The body of a room's latest message from `sender`, cheaply (one event).
async fn latest(user: &TestUser, room: &str) -> Option<String> {
    let path = format!("/rooms/{}/messages", enc(room));
    let resp = user
        .request(
            reqwest::Method::GET,
            &path,
            &[("dir", "b"), ("limit", "1")],
            None,
        )
        .await
        .ok()?;
    resp["chunk"].get(0).map(|e| body(e).to_owned())
}

/// legacy -> Matrix: `senders` mig33 users send `total` messages, spread evenly over
/// `receivers` Matrix users (sender i writes to receiver i % receivers).
async fn legacy_to_matrix(name: &str, senders: usize, receivers: usize, total: usize) {
    if !wanted(name) {
        return;
    }
    let sender_names: Vec<String> = (0..senders).map(|i| format!("x{i:02}")).collect();
    let account_names: Vec<String> = (0..receivers).map(|i| format!("m{i}")).collect();
    let mut all = sender_names.clone();
    all.extend(account_names.clone());
    let b = setup(name, &all).await;
    eprintln!("{name}: {receivers} Matrix user(s) log in");
    let mut users = Vec::new();
    for (i, account) in account_names.iter().enumerate() {
        users.push(matrix_user(&b, &format!("u{i}"), account).await);
    }
    eprintln!("{name}: {senders} legacy sender(s) log in");
    let mut clients = Vec::new();
    for s in &sender_names {
        clients.push(
            mig33::Client::login(b.sim.addr(), s, "pw")
                .await
                .expect("sender login"),
        );
    }
    // Warm-up: one message per sender creates the portals (not measured).
    for (i, c) in clients.iter().enumerate() {
        c.send_private(&account_names[i % receivers], "warm-up")
            .await
            .expect("send");
    }
    let mut rooms: Vec<BTreeMap<String, String>> = Vec::new();
    for (r, (user, _)) in users.iter().enumerate() {
        let ghosts: Vec<String> = sender_names
            .iter()
            .enumerate()
            .filter(|(i, _)| i % receivers == r)
            .map(|(_, s)| b.slot.ghost("mig33", s))
            .collect();
        rooms.push(accept(user, &ghosts).await);
    }
    let per_sender = total / senders;
    b.steady().await;
    eprintln!("{name}: portals ready; sending {total} messages");
    let meter = Meter::start(name, &b.bridge, &b.synapse);
    let mut tasks = Vec::new();
    for (i, client) in clients.into_iter().enumerate() {
        let to = account_names[i % receivers].clone();
        let name = sender_names[i].clone();
        tasks.push(tokio::spawn(async move {
            let mut last = None;
            for n in 0..per_sender {
                last = Some(
                    client
                        .send_private(&to, &format!("{name}-{n:05}"))
                        .await
                        .expect("send"),
                );
            }
            (client, last)
        }));
    }
    // Each client is kept until the server confirmed its last message: dropping a client
    // ends its connection at once, with the messages it had not written yet (the 2 -> 1
    // scenario used to wait out its deadline for them).
    let mut clients = Vec::new();
    for t in tasks {
        let (mut client, last) = t.await.expect("sender");
        if let Some(id) = last {
            client
                .wait_done(id, Duration::from_secs(60))
                .await
                .expect("the server took the last message");
        }
        clients.push(client);
    }
    eprintln!("{name}: all sent; waiting for them in Matrix");
    // Done when every room's latest message is its sender's last one.
    let last = format!("-{:05}", per_sender - 1);
    wait_until(
        Duration::from_secs(900),
        "every message in Matrix",
        || async {
            for (r, (user, _)) in users.iter().enumerate() {
                for room in rooms[r].values() {
                    if !latest(user, room).await.is_some_and(|b| b.ends_with(&last)) {
                        tokio::time::sleep(Duration::from_millis(500)).await;
                        return Ok(None);
                    }
                }
            }
            Ok(Some(()))
        },
    )
    .await
    .expect("delivery");
    let mut seen = Vec::new();
    for (r, (user, _)) in users.iter().enumerate() {
        for room in rooms[r].values() {
            for e in user.all_messages(room).await.expect("messages") {
                if e["type"] == "m.room.message" {
                    seen.extend(parse(body(&e)));
                }
            }
        }
    }
    meter.report(
        &format!("legacy -> Matrix, {senders} sender(s) to {receivers} user(s)"),
        per_sender * senders,
        integrity(&seen, per_sender, &sender_names),
    );
}

/// Matrix -> legacy: one user sends `total` messages to one mig33 contact.
async fn matrix_to_legacy(total: usize) {
    if !wanted("bench-m2l") {
        return;
    }
    let names = vec!["m0".to_string(), "x00".to_string()];
    let b = setup("bench-m2l", &names).await;
    let (user, mgmt) = matrix_user(&b, "u0", "m0").await;
    let mut contact = mig33::Client::login(b.sim.addr(), "x00", "pw")
        .await
        .expect("contact login");
    user.send_text(&mgmt, "pm mig33 x00").await.expect("pm");
    let rooms = accept(&user, &[b.slot.ghost("mig33", "x00")]).await;
    let room = rooms.values().next().expect("room").clone();
    b.steady().await;
    let meter = Meter::start("bench-m2l", &b.bridge, &b.synapse);
    let receiving = tokio::spawn(async move {
        let mut seen = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(900);
        while seen.len() < total && Instant::now() < deadline {
            if let Ok(m) = contact.wait_message(Duration::from_secs(60)).await {
                seen.extend(parse(&m.content));
            }
        }
        seen
    });
    for n in 0..total {
        user.send_text(&room, &format!("u0-{n:05}"))
            .await
            .expect("send");
    }
    let seen = receiving.await.expect("receiver");
    meter.report(
        "Matrix -> legacy, 1 user to 1 contact",
        total,
        integrity(&seen, total, &["u0".to_string()]),
    );
}

/// Whether `BENCH_ONLY` (if set) names this scenario (`bench-<it>`).
fn wanted(scenario: &str) -> bool {
    std::env::var("BENCH_ONLY").map_or(true, |only| scenario == format!("bench-{only}"))
}

fn main() {
    let runtime = e2e_tests::bench::runtime();
    runtime.block_on(async {
        let total = e2e_tests::bench::env_number("BENCH_MESSAGES", 10_000);
        let matrix_total = e2e_tests::bench::env_number("BENCH_MATRIX_MESSAGES", 1_000);
        println!(
            "delivery benchmark: {total} messages legacy -> Matrix, {matrix_total} Matrix -> legacy; \
             {}",
            e2e_tests::bench::machine()
        );
        legacy_to_matrix("bench-2to1", 2, 1, total).await;
        legacy_to_matrix("bench-100to10", 100, 10, total).await;
        matrix_to_legacy(matrix_total).await;
    });
}
