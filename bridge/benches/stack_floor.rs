//! The floor under the bridge's CPU per message: the least work the chosen crates
//! (tokio, sled, reqwest, axum) do to carry one message, with none of the bridge's own
//! code. Compare its figures with the delivery benchmark's.
//!
//! This process (measured; 2 tokio workers like the bridge) does per message what the
//! bridge must do at the least:
//! - legacy -> Matrix: reads a frame from a legacy TCP connection, writes it to a sled
//!   tree and flushes, writes an acknowledgement back; sends it to the homeserver (`PUT
//!   .../send/m.room.message/{txn}`, JSON, bearer token) and reads the event id from the
//!   answer, then removes the entry and records the event id; takes the homeserver's echo
//!   of that event (`PUT /_matrix/app/v1/transactions/{id}`), reads its sender, answers
//!   `{}`.
//! - Matrix -> legacy: takes a transaction of one event, reads it, writes it to a sled
//!   tree and flushes, answers `{}`; writes the body to the legacy connection, reads the
//!   acknowledgement, removes the entry (no flush of its own).
//!
//! A peer process (this binary again, not measured) plays the homeserver (answers at once,
//! sends the echoes, or sends the paced transactions) and the legacy server (sends paced
//! frames, or acknowledges each one).
//!
//!     cargo bench -p retrobridge --bench stack_floor
//!
//! `FLOOR_MESSAGES` (default 600) and `FLOOR_RATE` (messages per second, default 30:
//! the rate Synapse sets in the delivery benchmark) change the shape; `FLOOR_FLUSH=0`
//! leaves out the flushes (no durability), `FLOOR_WORKERS` sets the tokio workers (2),
//! `FLOOR_ONLY` (`l2m` or `m2l`) runs one direction.
//!
//! At a homeserver's pace every message meets parked threads, so much of the cost is
//! waking them (the delivery benchmark's context switches): the figure falls as the rate
//! rises.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::routing::put;
use axum::Router;
use serde_json::value::RawValue;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Notify};

const TOKEN: &str = "floor-token-0123456789abcdef";
/// Set in the peer process: the direction and the measured process's endpoint.
const PEER: &str = "STACK_FLOOR_PEER";

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[derive(Clone, Copy)]
struct Shape {
    total: usize,
    rate: usize,
    flush: bool,
}

impl Shape {
    fn from_env() -> Shape {
        Shape {
            total: env_number("FLOOR_MESSAGES", 600).max(1),
            rate: env_number("FLOOR_RATE", 30).max(1),
            flush: env_number("FLOOR_FLUSH", 1) == 1,
        }
    }
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(env_number("FLOOR_WORKERS", 2))
        .enable_all()
        .build()
        .expect("runtime");
    let shape = Shape::from_env();
    if let Ok(peer) = std::env::var(PEER) {
        let (direction, endpoint) = peer.split_once(' ').expect("direction and endpoint");
        let role = match direction {
            "l2m" => Box::pin(peer_l2m(shape, endpoint.to_owned()))
                as std::pin::Pin<Box<dyn std::future::Future<Output = ()>>>,
            _ => Box::pin(peer_m2l(shape, endpoint.to_owned())),
        };
        // Ends by itself even if the measured process died without killing it.
        let limit = Duration::from_secs((shape.total / shape.rate) as u64 + 180);
        let _ = runtime.block_on(async move { tokio::time::timeout(limit, role).await });
        return;
    }
    let only = std::env::var("FLOOR_ONLY").unwrap_or_default();
    for direction in ["l2m", "m2l"] {
        if only.is_empty() || only == direction {
            runtime.block_on(measure(direction, shape));
        }
    }
}

/// CPU time of this process so far, in ms (utime + stime from /proc).
fn cpu_ms() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .expect("stat")
        .1
        .split_whitespace()
        .collect();
    let tick = |i: usize| fields[i].parse::<f64>().expect("ticks");
    (tick(11) + tick(12)) * 1000.0 / 100.0 // USER_HZ
}

/// What the measured side has done, and when it started (first message in).
struct Progress {
    started: OnceLock<(Instant, f64)>,
    echoes: AtomicUsize,
    delivered: AtomicUsize,
    changed: Notify,
    db: sled::Db,
    /// Matrix -> legacy: the events recorded, for the legacy writer.
    incoming: mpsc::UnboundedSender<u64>,
    flush: bool,
}

impl Progress {
    fn start(&self) {
        self.started.get_or_init(|| (Instant::now(), cpu_ms()));
    }

    fn count(&self, counter: &AtomicUsize) {
        counter.fetch_add(1, Ordering::SeqCst);
        self.changed.notify_one();
    }
}

async fn measure(direction: &str, shape: Shape) {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = sled::open(dir.path().join("db")).expect("sled");
    let (incoming, mut recorded) = mpsc::unbounded_channel::<u64>();
    let progress = Arc::new(Progress {
        started: OnceLock::new(),
        echoes: AtomicUsize::new(0),
        delivered: AtomicUsize::new(0),
        changed: Notify::new(),
        db: db.clone(),
        incoming,
        flush: shape.flush,
    });

    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let endpoint = listener.local_addr().expect("addr");
    let app = Router::new()
        .route("/_matrix/app/v1/transactions/{txn}", put(transaction))
        .with_state(progress.clone());
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let mut peer = tokio::process::Command::new(std::env::current_exe().expect("exe"))
        .env(PEER, format!("{direction} {endpoint}"))
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("peer");
    let mut lines = BufReader::new(peer.stdout.take().expect("stdout")).lines();
    let legacy = lines.next_line().await.expect("peer").expect("legacy port");
    let homeserver = lines.next_line().await.expect("peer").expect("hs port");
    let stream = TcpStream::connect(&legacy).await.expect("legacy");
    stream.set_nodelay(true).expect("nodelay"); // as the bridge's legacy connections

    let worker = if direction == "l2m" {
        tokio::spawn(legacy_to_matrix(
            progress.clone(),
            shape,
            stream,
            homeserver,
        ))
    } else {
        let progress = progress.clone();
        let mut stream = stream;
        tokio::spawn(async move {
            let inbox = progress.db.open_tree("inbox").expect("tree");
            while let Some(seq) = recorded.recv().await {
                let body = inbox.get(seq.to_be_bytes()).expect("get").expect("entry");
                stream.write_all(&frame(&body)).await.expect("frame");
                stream.read_u32().await.expect("ack");
                inbox.remove(seq.to_be_bytes()).expect("remove");
                progress.count(&progress.delivered);
            }
        })
    };

    let expected_echoes = if direction == "l2m" { shape.total } else { 0 };
    let deadline = Instant::now() + Duration::from_secs((shape.total / shape.rate) as u64 + 60);
    while progress.delivered.load(Ordering::SeqCst) < shape.total
        || progress.echoes.load(Ordering::SeqCst) < expected_echoes
    {
        assert!(Instant::now() < deadline, "not all delivered in time");
        let _ = tokio::time::timeout(Duration::from_millis(100), progress.changed.notified()).await;
    }
    let (started, cpu0) = *progress.started.get().expect("started");
    let cpu = cpu_ms() - cpu0;
    let secs = started.elapsed().as_secs_f64();
    let workers = env_number("FLOOR_WORKERS", 2);
    let flushed = if shape.flush { "with" } else { "without" };
    println!(
        "stack floor {direction}, {workers} worker(s), {flushed} flushes: {} messages at \
         {}/s in {secs:.1} s; CPU {:.3} ms/msg",
        shape.total,
        shape.rate,
        cpu / shape.total as f64
    );
    worker.abort();
    server.abort();
    let _ = peer.kill().await;
}

/// Legacy frames in (recorded, acknowledged), sent to the homeserver in order.
async fn legacy_to_matrix(
    progress: Arc<Progress>,
    shape: Shape,
    mut stream: TcpStream,
    homeserver: String,
) {
    let outbox = progress.db.open_tree("outbox").expect("tree");
    let sent = progress.db.open_tree("sent").expect("tree");
    let (queued, mut to_send) = mpsc::unbounded_channel::<u64>();
    let receiver = {
        let (outbox, progress) = (outbox.clone(), progress.clone());
        tokio::spawn(async move {
            for seq in 0..shape.total as u64 {
                let len = stream.read_u32().await.expect("frame") as usize;
                progress.start();
                let mut frame = vec![0; len];
                stream.read_exact(&mut frame).await.expect("frame");
                outbox.insert(seq.to_be_bytes(), frame).expect("insert");
                if progress.flush {
                    outbox.flush_async().await.expect("flush");
                }
                stream.write_u32(seq as u32).await.expect("ack");
                queued.send(seq).expect("sender");
            }
        })
    };
    let http = reqwest::Client::new();
    while let Some(seq) = to_send.recv().await {
        let frame = outbox.get(seq.to_be_bytes()).expect("get").expect("entry");
        let body = serde_json::to_vec(&serde_json::json!({
            "msgtype": "m.text",
            "body": String::from_utf8_lossy(&frame),
        }))
        .expect("json");
        let answer = http
            .put(format!(
                "http://{homeserver}/_matrix/client/v3/rooms/%21room%3Alocalhost/send/m.room.message/t{seq}?user_id=%40ghost%3Alocalhost"
            ))
            .bearer_auth(TOKEN)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("send")
            .bytes()
            .await
            .expect("answer");
        let answer: serde_json::Value = serde_json::from_slice(&answer).expect("json");
        let event_id = answer["event_id"].as_str().expect("event id");
        sent.insert(event_id.as_bytes(), &seq.to_be_bytes())
            .expect("insert");
        outbox.remove(seq.to_be_bytes()).expect("remove");
        progress.count(&progress.delivered);
    }
    receiver.await.expect("receiver");
}

#[derive(serde::Deserialize)]
struct Transaction<'a> {
    #[serde(borrow)]
    events: Vec<&'a RawValue>,
}

#[derive(serde::Deserialize)]
struct EventHeader {
    sender: String,
    event_id: String,
}

/// The appservice endpoint: checks the token, reads each event's header; the ghost's
/// echoes are counted, the others recorded (and flushed) before the answer.
async fn transaction(
    State(progress): State<Arc<Progress>>,
    Path(_txn): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> &'static str {
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    assert_eq!(token, Some(TOKEN), "the peer's token");
    let txn: Transaction = serde_json::from_slice(&body).expect("transaction");
    let inbox = progress.db.open_tree("inbox").expect("tree");
    let mut recorded = Vec::new();
    for event in txn.events {
        let header: EventHeader = serde_json::from_str(event.get()).expect("event");
        if header.sender.starts_with("@ghost") {
            progress.count(&progress.echoes);
            continue;
        }
        progress.start();
        let seq = progress.db.generate_id().expect("id");
        inbox
            .insert(seq.to_be_bytes(), event.get().as_bytes())
            .expect("insert");
        progress
            .db
            .insert(header.event_id.as_bytes(), &seq.to_be_bytes())
            .expect("insert");
        recorded.push(seq);
    }
    if progress.flush && !recorded.is_empty() {
        progress.db.flush_async().await.expect("flush");
    }
    for seq in recorded {
        progress.incoming.send(seq).expect("legacy writer");
    }
    "{}"
}

/// Binds the peer's legacy server and homeserver and tells the measured process where.
async fn peer_listeners() -> (TcpListener, TcpListener) {
    let legacy = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let hs = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    println!("{}", legacy.local_addr().expect("addr"));
    println!("{}", hs.local_addr().expect("addr"));
    (legacy, hs)
}

/// Legacy -> Matrix peer: paced frames in, acknowledgements read; each send answered at
/// once, then echoed to `endpoint` one transaction at a time (as Synapse does).
async fn peer_l2m(shape: Shape, endpoint: String) {
    let (legacy, hs) = peer_listeners().await;
    let (echo, mut echoes) = mpsc::unbounded_channel::<String>();
    let app = Router::new().route(
        "/_matrix/client/v3/rooms/{room}/send/m.room.message/{txn}",
        put(
            move |Path((_room, txn)): Path<(String, String)>, body: Bytes| async move {
                let content: serde_json::Value = serde_json::from_slice(&body).expect("json");
                let event_id = format!("$event-{txn}");
                let event = serde_json::json!({
                    "type": "m.room.message",
                    "room_id": "!room:localhost",
                    "sender": "@ghost:localhost",
                    "event_id": event_id,
                    "origin_server_ts": 1_700_000_000_000u64,
                    "content": content,
                });
                let _ = echo.send(serde_json::json!({ "events": [event] }).to_string());
                axum::Json(serde_json::json!({ "event_id": event_id }))
            },
        ),
    );
    tokio::spawn(async move { axum::serve(hs, app).await });
    tokio::spawn(async move {
        let http = reqwest::Client::new();
        let mut n = 0;
        while let Some(body) = echoes.recv().await {
            n += 1;
            put_transaction(&http, &endpoint, n, body).await;
        }
    });
    let (mut stream, _) = legacy.accept().await.expect("legacy client");
    stream.set_nodelay(true).expect("nodelay");
    let (mut read, mut write) = stream.split();
    let mut ticks = tokio::time::interval(Duration::from_secs_f64(1.0 / shape.rate as f64));
    let acks = async {
        for _ in 0..shape.total {
            read.read_u32().await.expect("ack");
        }
    };
    let frames = async {
        for n in 0..shape.total {
            ticks.tick().await;
            let text = format!("x00-{n:05} a message of ordinary length from a legacy contact");
            write
                .write_all(&frame(text.as_bytes()))
                .await
                .expect("frame");
        }
    };
    tokio::join!(acks, frames);
    std::future::pending::<()>().await; // until the measured process ends it
}

/// Matrix -> legacy peer: paced transactions of one user's message each; every frame
/// the legacy connection gets is acknowledged.
async fn peer_m2l(shape: Shape, endpoint: String) {
    let (legacy, _hs) = peer_listeners().await;
    tokio::spawn(async move {
        let (mut stream, _) = legacy.accept().await.expect("legacy client");
        stream.set_nodelay(true).expect("nodelay");
        loop {
            let Ok(len) = stream.read_u32().await else {
                return;
            };
            let mut frame = vec![0; len as usize];
            stream.read_exact(&mut frame).await.expect("frame");
            stream.write_u32(len).await.expect("ack");
        }
    });
    let http = reqwest::Client::new();
    let mut ticks = tokio::time::interval(Duration::from_secs_f64(1.0 / shape.rate as f64));
    for n in 0..shape.total {
        ticks.tick().await;
        let event = serde_json::json!({
            "type": "m.room.message",
            "room_id": "!room:localhost",
            "sender": "@user:localhost",
            "event_id": format!("$user-{n}"),
            "origin_server_ts": 1_700_000_000_000u64,
            "content": { "msgtype": "m.text", "body": format!("u-{n:05} a message of ordinary length from a Matrix user") },
        });
        let body = serde_json::json!({ "events": [event] }).to_string();
        put_transaction(&http, &endpoint, n, body).await;
    }
    std::future::pending::<()>().await; // until the measured process ends it
}

/// A length-prefixed frame, written at once (as a legacy packet is).
fn frame(body: &[u8]) -> Vec<u8> {
    let mut frame = (body.len() as u32).to_be_bytes().to_vec();
    frame.extend_from_slice(body);
    frame
}

async fn put_transaction(http: &reqwest::Client, endpoint: &str, n: usize, body: String) {
    let answer = http
        .put(format!("http://{endpoint}/_matrix/app/v1/transactions/{n}"))
        .bearer_auth(TOKEN)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("transaction");
    assert!(answer.status().is_success(), "{}", answer.status());
}
