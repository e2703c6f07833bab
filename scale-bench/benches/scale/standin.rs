//! A STAND-IN for the few homeserver endpoints the bridge calls, for the benchmark's
//! largest sizes only (Synapse on this machine cannot register 10,000 users in a
//! reasonable time). It answers at once with plausible JSON, remembers nothing but a
//! room counter, and counts the requests per endpoint so the benchmark can show what
//! the bridge asked for. It is not a homeserver and must never be used by a test.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{Method, StatusCode, Uri};
use axum::Json;
use serde_json::{json, Value};

/// A message event the bridge sent: when its request arrived, its room, its body.
pub type Sent = (std::time::Instant, String, String);

#[derive(Default)]
struct Counters {
    rooms: AtomicU64,
    events: AtomicU64,
    requests: Mutex<BTreeMap<String, u64>>,
    /// Every message event sent: when its request arrived, its room, its body.
    sends: Mutex<Vec<Sent>>,
}

/// A running stand-in; stops when dropped.
pub struct StandIn {
    pub addr: SocketAddr,
    counters: Arc<Counters>,
    task: tokio::task::JoinHandle<()>,
}

impl StandIn {
    pub async fn start() -> std::io::Result<StandIn> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let counters = Arc::new(Counters::default());
        let app = axum::Router::new()
            .fallback(answer)
            .with_state(counters.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(StandIn {
            addr,
            counters,
            task,
        })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The message events sent since the last call, and forgets them.
    #[allow(dead_code)] // the saturation benchmark's; the scale benchmark only counts
    pub fn take_sends(&self) -> Vec<Sent> {
        std::mem::take(&mut *self.counters.sends.lock().unwrap())
    }

    /// Writes the config of a bridge pointed at this stand-in into `dir` (appservice `id`
    /// listening on `port`, bot `<id>bot`, everyone of `localhost` allowed, the
    /// `networks:` entries `networks_yaml`, logging at `level`) and generates its
    /// registration; the config's path.
    pub fn configure_bridge(
        &self,
        dir: &std::path::Path,
        id: &str,
        port: u16,
        networks_yaml: &str,
        level: &str,
    ) -> anyhow::Result<std::path::PathBuf> {
        let config = format!(
            "homeserver:\n  address: {hs}\n  domain: localhost\n\
             appservice:\n  address: 127.0.0.1\n  port: {port}\n  url: http://127.0.0.1:{port}\n  id: {id}\n  \
             registration: registration.yaml\n  bot:\n    localpart: {id}bot\n\
             database:\n  path: db\n\
             permissions:\n  \"localhost\": user\n\
             networks:\n{networks_yaml}\
             logging:\n  level: {level}\n",
            hs = self.url(),
        );
        let config_path = dir.join("config.yaml");
        std::fs::write(&config_path, config)?;
        let out = std::process::Command::new(e2e_tests::bridge::workspace_binary("retrobridge"))
            .args(["generate-registration", "-c"])
            .arg(&config_path)
            .output()?;
        if !out.status.success() {
            anyhow::bail!(
                "generate-registration: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(config_path)
    }

    /// Requests per endpoint since the last call (and forgets them).
    pub fn take_requests(&self) -> BTreeMap<String, u64> {
        std::mem::take(&mut *self.counters.requests.lock().unwrap())
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn ok(body: Value) -> (StatusCode, Json<Value>) {
    (StatusCode::OK, Json(body))
}

fn error(status: StatusCode, errcode: &str) -> (StatusCode, Json<Value>) {
    (
        status,
        Json(json!({ "errcode": errcode, "error": "stand-in homeserver" })),
    )
}

/// Every request: classified by its path, counted, answered.
async fn answer(
    State(counters): State<Arc<Counters>>,
    method: Method,
    uri: Uri,
    body: Bytes,
) -> (StatusCode, Json<Value>) {
    let path = uri.path();
    let parts: Vec<&str> = path
        .trim_start_matches("/_matrix/client/")
        .split('/')
        .collect();
    let get = method == Method::GET;
    let event_id = || {
        let n = counters.events.fetch_add(1, Ordering::Relaxed);
        json!({ "event_id": format!("$standin{n}") })
    };
    let (name, response) = match parts.as_slice() {
        ["versions"] => (
            "versions",
            ok(json!({ "versions": ["v1.1", "v1.5", "v1.8", "v1.11", "v1.12"] })),
        ),
        [_, "register"] => {
            let body: Value = serde_json::from_slice(&body).unwrap_or_default();
            let user = body["username"].as_str().unwrap_or("someone");
            (
                "register",
                ok(json!({ "user_id": format!("@{user}:localhost") })),
            )
        }
        [_, "profile", _, _] if get => {
            ("profile (get)", error(StatusCode::NOT_FOUND, "M_NOT_FOUND"))
        }
        [_, "profile", _, _] => ("profile", ok(json!({}))),
        [_, "createRoom"] => {
            let n = counters.rooms.fetch_add(1, Ordering::Relaxed);
            (
                "createRoom",
                ok(json!({ "room_id": format!("!standin{n}:localhost") })),
            )
        }
        [_, "join", room] => ("join", ok(json!({ "room_id": room }))),
        [_, "rooms", room, "join"] => ("join", ok(json!({ "room_id": room }))),
        [_, "rooms", _, what @ ("invite" | "leave" | "kick")] => (*what, ok(json!({}))),
        [_, "rooms", _, "state", ..] if get => {
            ("state (get)", error(StatusCode::NOT_FOUND, "M_NOT_FOUND"))
        }
        [_, "rooms", _, "state", ..] => ("state", ok(event_id())),
        [_, "rooms", room, "send", ..] => {
            let at = std::time::Instant::now();
            let event: Value = serde_json::from_slice(&body).unwrap_or_default();
            if let Some(text) = event["body"].as_str() {
                // The path has the room id percent-encoded (`%21room%3Aserver`).
                let room = percent_encoding::percent_decode_str(room).decode_utf8_lossy();
                let sent = (at, room.into_owned(), text.to_owned());
                counters.sends.lock().unwrap().push(sent);
            }
            ("send", ok(event_id()))
        }
        [_, "rooms", _, "redact", ..] => ("redact", ok(event_id())),
        [_, "rooms", _, "typing", _] => ("typing", ok(json!({}))),
        [_, "rooms", _, "messages"] => (
            "messages",
            ok(json!({ "chunk": [], "start": "s0", "end": "s0" })),
        ),
        [_, "rooms", _, "context", _] => (
            "context",
            ok(json!({ "events_before": [], "events_after": [], "state": [] })),
        ),
        [_, "rooms", _, "joined_members"] => ("joined_members", ok(json!({ "joined": {} }))),
        [_, "presence", _, "status"] => ("presence", ok(json!({}))),
        ["v1", "appservice", _, "ping"] => ("ping", ok(json!({ "duration_ms": 1 }))),
        _ => ("unknown", error(StatusCode::NOT_FOUND, "M_UNRECOGNIZED")),
    };
    let key = if name == "unknown" {
        format!("unknown {method} {path}")
    } else {
        name.to_owned()
    };
    *counters.requests.lock().unwrap().entry(key).or_default() += 1;
    response
}
