//! Saturation benchmark, legacy -> homeserver (not a test; it stops by itself): how many
//! durable messages per second one bridge process carries when the homeserver is not the
//! limit. The homeserver is a STAND-IN (`scale/standin.rs`: it answers at once and
//! records each message event's body and arrival; named as such in the output), the
//! legacy side the mig33 simulator in this process: `k` contacts send a burst to one
//! bridged user, split evenly, each as fast as its connection takes them. For k = 1, 10
//! and 1,000 conversations it prints messages per second, the bridge's CPU per message,
//! the delay from a contact's send to the stand-in receiving the event (p50, p99, max:
//! the bridge's added latency plus the simulator's relay and loopback TCP), the bridge's
//! RSS, and integrity (missing, doubled, out of order per contact). The other direction:
//! transactions of 1 and of 50 events, one at a time as Synapse sends them, to 1 and to
//! 10 contacts (rooms taken in turn), with the same figures, measured once the bridge's
//! 30-s start-up check for late Matrix events is over. Then the added latency: both
//! directions at a steady pace the bridge keeps up with (200 messages/s, one message
//! per frame or transaction), where the delays are the bridge's and the loopback's,
//! not a queue's.
//!
//! The bridge runs with every durability rule of production (the outbox written and the
//! flushes it needs), its send pacing off (this measures the bridge, not the pace a
//! real server needs). It is pinned to core 0 (`taskset`), this process to core 1, so the
//! CPU figure is per core.
//!
//! Run:
//!
//!     cargo build --release --bins
//!     cargo bench -p scale-bench --bench saturation
//!
//! `BENCH_SAT_MESSAGES` (default 20000) sets the burst, `BENCH_SAT_CONVERSATIONS`
//! (default 1,10,1000) the conversation counts, `BENCH_SAT_MATRIX_MESSAGES` (default
//! 5000), `BENCH_SAT_BATCHES` (default 1,50) and `BENCH_SAT_ROOMS` (default 1,10) the
//! other direction, `BENCH_SAT_STEADY_RATE` (default 200; 0 skips) the steady pace,
//! `BENCH_SAT_LOG` the bridge's log filter.

// The scale benchmark's stand-in; this benchmark uses part of it.
#[allow(dead_code)]
#[path = "scale/standin.rs"]
mod standin;

use std::collections::HashMap;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use e2e_tests::bridge::BridgeProcess;
use e2e_tests::process::{cpu_ms, rss_mb};
use legacy_sim::mig33;
use retrobridge::core::NetworkId;
use retrobridge::store::{KeySource, LoginRecord, Store};

use standin::StandIn;

const USER: &str = "@sat:localhost";
const ACCOUNT: &str = "u0";
const PASSWORD: &str = "pw";
/// The bridge's start-up window for late Matrix events, and a margin.
const CATCH_UP_WINDOW: Duration = Duration::from_secs(32);

fn contact(j: usize) -> String {
    format!("c{j:04}")
}

fn pin(pid: u32, core: u32) {
    let ok = Command::new("taskset")
        .args(["-a", "-cp", &core.to_string(), &pid.to_string()])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        println!("(could not pin process {pid} to core {core}: taskset failed)");
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// The bridge against the stand-in, its login seeded as after a restart; returns once
/// the simulator has the login online.
async fn start_bridge(
    dir: &std::path::Path,
    standin: &StandIn,
    sim: &mig33::Server,
) -> anyhow::Result<(BridgeProcess, u16)> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let networks = format!(
        "  mig33:\n    enabled: true\n    server: \"{}\"\n\
         \x20   options:\n      messages_per_second: 100000.0\n      message_burst: 100000\n",
        sim.addr()
    );
    let config_path = standin.configure_bridge(dir, "sat", port, &networks, "warn")?;
    {
        let store = Store::open(&dir.join("db"), &KeySource::file(&dir.join("db.key")))?;
        store.put_login(&LoginRecord {
            user: USER.into(),
            network: NetworkId::Mig33,
            legacy_id: ACCOUNT.into(),
            password: PASSWORD.into(),
            space_room: Some("!space:localhost".into()),
            stopped: None,
            proven: true,
            presence: None,
        })?;
        store.set_management_room(USER, "!mgmt:localhost")?;
        store.put_last_set(USER, "connection notice mig33", "Connected to mig33 as u0.")?;
        store.flush().await?;
    }
    let bridge = BridgeProcess::run(
        &config_path,
        &dir.join("bridge.log"),
        std::env::var("BENCH_SAT_LOG").ok().as_deref(),
        &[],
    )?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while sim.online_count() == 0 {
        if Instant::now() > deadline {
            bail!(
                "the bridge's login did not reach the simulator:\n{}",
                bridge.log()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok((bridge, port))
}

/// The simulator with the bridged account and `k` contacts.
async fn simulator(k: usize) -> anyhow::Result<mig33::Server> {
    let user = |name: String| mig33::UserConfig {
        username: name,
        password: PASSWORD.into(),
        display_name: None,
        groups: Vec::new(),
        contacts: Vec::new(),
    };
    let mut users = vec![user(ACCOUNT.into())];
    users.extend((0..k).map(|j| user(contact(j))));
    Ok(mig33::Server::start(mig33::Config {
        listen: "127.0.0.1:0".into(),
        users,
        ..mig33::Config::default()
    })
    .await?)
}

/// A fresh folder for one run's bridge.
fn run_dir(name: &str) -> anyhow::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("retrobridge-sat-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// Every contact sends one message, which makes its room; the room of each contact.
async fn warm_up(
    standin: &StandIn,
    senders: &[mig33::Client],
    bridge: &BridgeProcess,
) -> anyhow::Result<HashMap<String, String>> {
    for (j, s) in senders.iter().enumerate() {
        s.send_private(ACCOUNT, &format!("{}-warm", contact(j)))
            .await?;
    }
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut rooms = HashMap::new();
    while rooms.len() < senders.len() && Instant::now() < deadline {
        for (_, room, body) in standin.take_sends() {
            if let Some(who) = body.strip_suffix("-warm") {
                rooms.insert(who.to_owned(), room);
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    if rooms.len() < senders.len() {
        bail!(
            "only {} of {} conversations warmed up:\n{}",
            rooms.len(),
            senders.len(),
            bridge.log()
        );
    }
    // Notices and the like that came with the warm-up are not the burst's.
    let _ = standin.take_sends();
    Ok(rooms)
}

/// One run of the homeserver -> legacy direction.
#[derive(Clone, Copy)]
struct M2l {
    /// Events per transaction.
    batch: usize,
    /// Rooms (each a DM with its own contact) the events go to, in turn.
    rooms: usize,
    /// Messages in all.
    total: usize,
    /// Messages per second at a steady pace; `None`: each transaction as soon as the
    /// previous one was answered (saturation).
    rate: Option<f64>,
}

/// Transactions of `batch` events from the homeserver (this process, with the
/// registration's `hs_token`, one at a time as Synapse sends them) to `rooms` contacts.
async fn run_m2l(run: M2l) -> anyhow::Result<()> {
    let M2l {
        batch,
        rooms: k,
        total,
        rate,
    } = run;
    let pace = rate.map_or("saturation".to_owned(), |r| {
        format!("steady {r:.0} messages/s")
    });
    let label = format!(
        "[STAND-IN homeserver] homeserver -> legacy, transactions of {batch}, {k} room(s), {pace}"
    );
    let sim = simulator(k).await?;
    let standin = StandIn::start().await?;
    let dir = run_dir(&format!("m2l-{batch}-{k}"))?;
    let started = Instant::now();
    let (mut bridge, port) = start_bridge(&dir, &standin, &sim).await?;
    let pid = bridge.pid().context("bridge pid")?;
    pin(pid, 0);
    let mut receivers = Vec::with_capacity(k);
    for j in 0..k {
        receivers.push(mig33::Client::login(sim.addr(), &contact(j), PASSWORD).await?);
    }
    let room_of = warm_up(&standin, &receivers, &bridge).await?;
    let rooms: Vec<String> = (0..k).map(|j| room_of[&contact(j)].clone()).collect();
    // For its first 30 s the bridge looks up each user message's room for earlier ones
    // the homeserver held back (`catch_up.rs`: one `/context` per message); that is
    // start-up, not the steady state this measures.
    tokio::time::sleep_until((started + CATCH_UP_WINDOW).into()).await;
    let registration: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(dir.join("registration.yaml"))?)?;
    let hs_token = registration["hs_token"]
        .as_str()
        .context("hs_token")?
        .to_owned();
    let http = reqwest::Client::new();
    let receiving: Vec<_> = receivers
        .into_iter()
        .map(|mut receiver| {
            let expected = total.div_ceil(k);
            tokio::spawn(async move {
                let mut got = Vec::with_capacity(expected);
                while got.len() < expected {
                    match receiver.wait_message(Duration::from_secs(30)).await {
                        Ok(m) => got.push((Instant::now(), m.content)),
                        Err(_) => break,
                    }
                }
                got
            })
        })
        .collect();
    let _ = standin.take_requests();
    let (cpu0, t0) = (cpu_ms(pid), Instant::now());
    let mut sent_at = HashMap::with_capacity(total);
    let seqs: Vec<usize> = (0..total).collect();
    for (t, chunk) in seqs.chunks(batch).enumerate() {
        if let Some(rate) = rate {
            let due = t0 + Duration::from_secs_f64((t * batch) as f64 / rate);
            tokio::time::sleep_until(due.into()).await;
        }
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_millis() as u64;
        let events: Vec<serde_json::Value> = chunk
            .iter()
            .map(|seq| {
                serde_json::json!({
                    "type": "m.room.message",
                    "room_id": rooms[seq % k],
                    "sender": USER,
                    "event_id": format!("$sat{seq}"),
                    "origin_server_ts": now_ms,
                    "content": { "msgtype": "m.text", "body": format!("m-{seq:06}") },
                })
            })
            .collect();
        let at = Instant::now();
        sent_at.extend(chunk.iter().map(|seq| (format!("m-{seq:06}"), at)));
        let response = http
            .put(format!(
                "http://127.0.0.1:{port}/_matrix/app/v1/transactions/sat{t}"
            ))
            .bearer_auth(&hs_token)
            .json(&serde_json::json!({ "events": events }))
            .send()
            .await?;
        if !response.status().is_success() {
            bail!("transaction {t}: {}", response.status());
        }
    }
    let mut per_room = Vec::with_capacity(k);
    for r in receiving {
        per_room.push(r.await?);
    }
    let cpu = cpu_ms(pid) - cpu0;
    let got: Vec<&(Instant, String)> = per_room.iter().flatten().collect();
    let elapsed = got
        .iter()
        .map(|(at, _)| at.duration_since(t0))
        .max()
        .unwrap_or_default()
        .as_secs_f64();
    let seq_of = |b: &str| b.strip_prefix("m-").and_then(|n| n.parse::<u32>().ok());
    let mut unique: Vec<u32> = got.iter().filter_map(|(_, b)| seq_of(b)).collect();
    let received = unique.len();
    unique.sort_unstable();
    unique.dedup();
    let reordered: usize = per_room
        .iter()
        .map(|room| {
            let order: Vec<u32> = room.iter().filter_map(|(_, b)| seq_of(b)).collect();
            order.windows(2).filter(|w| w[1] < w[0]).count()
        })
        .sum();
    let mut delays: Vec<f64> = got
        .iter()
        .filter_map(|(at, b)| {
            sent_at
                .get(b)
                .map(|s: &Instant| at.duration_since(*s).as_secs_f64() * 1000.0)
        })
        .collect();
    delays.sort_by(f64::total_cmp);
    println!(
        "{label}: {} of {total} messages in {elapsed:.2} s: {:.0} messages/s, bridge CPU \
         {:.3} ms per message ({:.0} messages per CPU-second); delay transaction -> contact \
         p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; bridge RSS {:.0} MB; missing {}, \
         doubled {}, out of order {reordered}",
        got.len(),
        got.len() as f64 / elapsed.max(1e-9),
        cpu / got.len().max(1) as f64,
        got.len() as f64 / (cpu / 1000.0).max(1e-9),
        percentile(&delays, 0.5),
        percentile(&delays, 0.99),
        delays.last().copied().unwrap_or(0.0),
        rss_mb(pid),
        total - unique.len(),
        received - unique.len(),
    );
    println!(
        "{label}: requests to the stand-in homeserver meanwhile: {:?}",
        standin.take_requests()
    );
    if got.len() < total {
        let log = bridge.log();
        let tail: Vec<&str> = log.lines().rev().take(30).collect();
        println!(
            "{label}: bridge log (last lines, newest first):\n{}",
            tail.join("\n")
        );
    }
    if !bridge.terminate() {
        println!("{label}: the bridge did not stop cleanly");
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// `total` messages from `k` contacts: a burst, or at a steady `rate` (messages per
/// second in all).
async fn run(k: usize, total: usize, rate: Option<f64>) -> anyhow::Result<()> {
    let pace = rate.map_or("saturation".to_owned(), |r| {
        format!("steady {r:.0} messages/s")
    });
    let label = format!("[STAND-IN homeserver] legacy -> homeserver, {k} conversation(s), {pace}");
    let per = total.div_ceil(k);
    let sim = simulator(k).await?;
    let standin = StandIn::start().await?;
    let dir = run_dir(&k.to_string())?;
    let (mut bridge, _) = start_bridge(&dir, &standin, &sim).await?;
    let pid = bridge.pid().context("bridge pid")?;
    pin(pid, 0);
    let mut senders = Vec::with_capacity(k);
    for j in 0..k {
        senders.push(mig33::Client::login(sim.addr(), &contact(j), PASSWORD).await?);
    }
    warm_up(&standin, &senders, &bridge).await?;

    let (cpu0, t0) = (cpu_ms(pid), Instant::now());
    let mut tasks = Vec::with_capacity(k);
    for (j, s) in senders.into_iter().enumerate() {
        tasks.push(tokio::spawn(async move {
            let mut sent = Vec::with_capacity(per);
            for seq in 0..per {
                if let Some(rate) = rate {
                    let due = t0 + Duration::from_secs_f64((seq * k + j) as f64 / rate);
                    tokio::time::sleep_until(due.into()).await;
                }
                let body = format!("{}-{seq:06}", contact(j));
                sent.push((body.clone(), Instant::now()));
                if s.send_private(ACCOUNT, &body).await.is_err() {
                    break;
                }
            }
            (s, sent)
        }));
    }
    let mut sent_at: HashMap<String, Instant> = HashMap::with_capacity(per * k);
    let mut clients = Vec::with_capacity(k);
    for t in tasks {
        let (client, sent) = t.await?;
        clients.push(client);
        sent_at.extend(sent);
    }
    let expected = sent_at.len();
    let mut received: Vec<(Instant, String)> = Vec::with_capacity(expected);
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut last_progress = (0, Instant::now());
    while received.len() < expected && Instant::now() < deadline {
        received.extend(
            standin
                .take_sends()
                .into_iter()
                .filter(|(_, _, b)| sent_at.contains_key(b))
                .map(|(at, _, b)| (at, b)),
        );
        if received.len() != last_progress.0 {
            last_progress = (received.len(), Instant::now());
        } else if last_progress.1.elapsed() > Duration::from_secs(30) {
            break; // nothing for 30 s: report what came
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let elapsed = received
        .last()
        .map_or(Duration::ZERO, |(at, _)| at.duration_since(t0))
        .as_secs_f64();
    let cpu = cpu_ms(pid) - cpu0;
    let rss = rss_mb(pid);

    let mut delays: Vec<f64> = received
        .iter()
        .filter_map(|(at, b)| {
            sent_at
                .get(b)
                .map(|s| at.duration_since(*s).as_secs_f64() * 1000.0)
        })
        .collect();
    delays.sort_by(f64::total_cmp);
    let mut seen: HashMap<&str, Vec<u32>> = HashMap::new();
    let mut unique = std::collections::HashSet::new();
    let mut doubled = 0;
    for (_, b) in &received {
        if !unique.insert(b.as_str()) {
            doubled += 1;
        }
        if let Some((who, seq)) = b.split_once('-') {
            seen.entry(who).or_default().push(seq.parse().unwrap_or(0));
        }
    }
    let reordered: usize = seen
        .values()
        .map(|v| v.windows(2).filter(|w| w[1] < w[0]).count())
        .sum();
    let missing = expected - unique.len();
    println!(
        "{label}: {} of {expected} messages in {elapsed:.2} s: {:.0} messages/s, bridge CPU \
         {:.3} ms per message ({:.0} messages per CPU-second); delay contact -> stand-in p50 \
         {:.1} ms, p99 {:.1} ms, max {:.1} ms; bridge RSS {rss:.0} MB; missing {missing}, \
         doubled {doubled}, out of order {reordered}",
        received.len(),
        received.len() as f64 / elapsed.max(1e-9),
        cpu / received.len().max(1) as f64,
        received.len() as f64 / (cpu / 1000.0).max(1e-9),
        percentile(&delays, 0.5),
        percentile(&delays, 0.99),
        delays.last().copied().unwrap_or(0.0),
    );
    drop(clients);
    if !bridge.terminate() {
        println!("{label}: the bridge did not stop cleanly");
    }
    drop(sim);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// A comma-separated list of positive counts from the environment.
fn env_list(name: &str, default: &str) -> Vec<usize> {
    std::env::var(name)
        .unwrap_or_else(|_| default.into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .filter(|n| *n > 0)
        .collect()
}

fn main() -> anyhow::Result<()> {
    let total: usize = std::env::var("BENCH_SAT_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let counts = env_list("BENCH_SAT_CONVERSATIONS", "1,10,1000");
    let matrix_total: usize = std::env::var("BENCH_SAT_MATRIX_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5_000);
    let batches = env_list("BENCH_SAT_BATCHES", "1,50");
    let m2l_rooms = env_list("BENCH_SAT_ROOMS", "1,10");
    let rate: f64 = std::env::var("BENCH_SAT_STEADY_RATE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200.0);
    let steady_total = (rate * 15.0) as usize;
    println!(
        "saturation benchmark: {total} messages legacy -> homeserver, {matrix_total} homeserver -> legacy; {} CPUs (the bridge on \
         core 0, this process on core 1), load average {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
    pin(std::process::id(), 1);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        for k in counts {
            run(k, total, None).await?;
        }
        for &rooms in &m2l_rooms {
            for &batch in &batches {
                run_m2l(M2l {
                    batch,
                    rooms,
                    total: matrix_total,
                    rate: None,
                })
                .await?;
            }
        }
        if rate > 0.0 {
            // Added latency: a pace the bridge keeps up with, one message at a time.
            run(1, steady_total, Some(rate)).await?;
            run_m2l(M2l {
                batch: 1,
                rooms: 1,
                total: steady_total,
                rate: Some(rate),
            })
            .await?;
        }
        anyhow::Ok(())
    })
}
