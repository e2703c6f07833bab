//! Throughput of the appservice transaction endpoint: transactions of 100
//! `m.room.message` events each, pushed over loopback HTTP one at a time (as Synapse
//! sends them). Half the events are in rooms of the bridge (recorded, flushed before the
//! answer, and handled by the real core), half are the bridge's own echoes (dropped
//! before anything is written).
//!
//! `cargo bench -p retrobridge --bench transactions`

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use matrix_sdk::ruma::UserId;
use retrobridge::config::LoadedConfig;
use retrobridge::core::Bridge;
use retrobridge::fronts::matrix::client::MatrixClient;
use retrobridge::fronts::matrix::endpoint;
use retrobridge::fronts::matrix::MatrixFront;
use retrobridge::store::{KeySource, Store};

const EVENTS_PER_TXN: usize = 100;
const TXNS_PER_RUN: usize = 300;
const RUNS: usize = 5;
const TOKEN: &str = "bench-hs-token-0123456789abcdef0123456789abcdef";

fn transaction(run: usize, txn: usize) -> String {
    let events: Vec<serde_json::Value> = (0..EVENTS_PER_TXN)
        .map(|i| {
            serde_json::json!({
                "type": "m.room.message",
                "room_id": format!("!room{}:localhost", i % 10),
                // Even: a user in their management room; odd: a ghost's echo.
                "sender": if i % 2 == 0 { "@someone:localhost" } else { "@icq_1:localhost" },
                "event_id": format!("$r{run}t{txn}e{i}"),
                "origin_server_ts": 1_700_000_000_000u64 + i as u64,
                "content": { "msgtype": "m.text", "body": format!("message {i} of transaction {txn}, with some ordinary text") }
            })
        })
        .collect();
    serde_json::json!({ "events": events }).to_string()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = LoadedConfig::parse(
        "homeserver: {address: 'http://127.0.0.1:9', domain: localhost}\n\
         appservice: {port: 29330, url: 'http://127.0.0.1:29330'}\n\
         database: {path: db}\n\
         networks: {icq: {enabled: true, server: '127.0.0.1:9'}}\n",
        Path::new("bench.yaml"),
    )
    .expect("config");
    let store = Store::open(
        &dir.path().join("db"),
        &KeySource::file(&dir.path().join("db.key")),
    )
    .expect("store");
    let bot = UserId::parse("@retrobridgebot:localhost").expect("user id");
    let matrix = MatrixClient::new("http://127.0.0.1:9", TOKEN, bot, Duration::from_secs(5))
        .await
        .expect("client");
    for room in 0..10 {
        store
            .set_management_room(
                &format!("@someone{room}:localhost"),
                &format!("!room{room}:localhost"),
            )
            .expect("management room");
    }
    let bridge = Bridge::new(config, store.clone(), Vec::new());
    let front = MatrixFront::new(bridge.clone(), matrix, None);
    bridge.set_fronts(vec![front.clone()]);
    front.start_inbox().await.expect("inbox");
    let app = endpoint::router(TOKEN, Arc::new(front), None);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });

    let http = reqwest::Client::new();
    println!(
        "{RUNS} runs of {TXNS_PER_RUN} transactions x {EVENTS_PER_TXN} events, sequential, flushed to disk before each answer"
    );
    let mut rates = Vec::new();
    for run in 0..RUNS {
        let bodies: Vec<String> = (0..TXNS_PER_RUN).map(|t| transaction(run, t)).collect();
        let mut latencies = Vec::with_capacity(TXNS_PER_RUN);
        let start = Instant::now();
        for (t, body) in bodies.into_iter().enumerate() {
            let sent = Instant::now();
            let response = http
                .put(format!(
                    "http://{addr}/_matrix/app/v1/transactions/r{run}t{t}"
                ))
                .bearer_auth(TOKEN)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .expect("request");
            assert!(
                response.status().is_success(),
                "status {}",
                response.status()
            );
            latencies.push(sent.elapsed());
        }
        let elapsed = start.elapsed();
        latencies.sort();
        let rate = (TXNS_PER_RUN * EVENTS_PER_TXN) as f64 / elapsed.as_secs_f64();
        rates.push(rate);
        println!(
            "run {run}: {rate:>9.0} events/s   p50 {:>7.2} ms   p99 {:>7.2} ms per transaction",
            ms(latencies[latencies.len() / 2]),
            ms(latencies[latencies.len() * 99 / 100])
        );
    }
    rates.sort_by(f64::total_cmp);
    println!(
        "events/s: median {:.0}, min {:.0}, max {:.0} (spread shows the machine's noise)",
        rates[RUNS / 2],
        rates[0],
        rates[RUNS - 1]
    );
    // Every recorded event is handled (the bot's replies fail fast: no homeserver).
    tokio::time::sleep(Duration::from_secs(2)).await;
    println!(
        "inbox left over: {} event(s)",
        store.inbox_pending().expect("inbox").len()
    );
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
