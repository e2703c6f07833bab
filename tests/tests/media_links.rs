//! End-to-end tests of the links to Matrix files that legacy contacts get, attacked the
//! way a browser (or a hand-written request) would: a real Synapse, the bridge binary
//! talking to it through a recording proxy (so the test sees every request the bridge
//! makes), the mig33 simulator in this process, alice bridged and bob scripted.
//!
//! An uploaded HTML or SVG file must come back as a download under a sandboxing CSP, a
//! PNG inline under the same guards; a link with another name or expiry is refused; an
//! `mxc://` URI outside the spec's grammar gets no link and no request; an expired link
//! says so.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::response::Response;
use e2e_tests::bridge::{environment, BridgeProcess, BridgeSlot, SlotOptions};
use e2e_tests::{wait_until, Synapse, TestUser};
use legacy_sim::mig33::client::Client;
use legacy_sim::mig33::{Config, ContactConfig, ParticipantSeparator, Server, UserConfig};
use mig33_proto::ClientEvent;
use reqwest::header::HeaderMap;
use reqwest::Method;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const WAIT: Duration = Duration::from_secs(60);
const SIM_WAIT: Duration = Duration::from_secs(30);
const SLOTS: usize = 2;
/// Slot 1's links live this long (seconds): its test waits for one to expire.
const SHORT_LIFETIME: u64 = 2;

/// A 1×1 transparent PNG.
const PNG: [u8; 68] = [
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x15, 0xc4,
    0x89, 0x00, 0x00, 0x00, 0x0b, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0x60, 0x00, 0x02, 0x00,
    0x00, 0x05, 0x00, 0x01, 0x7a, 0x5e, 0xab, 0x3f, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44,
    0xae, 0x42, 0x60, 0x82,
];

fn options(i: usize) -> SlotOptions {
    SlotOptions {
        networks_yaml: format!(
            "  mig33:\n    enabled: true\n    server: \"127.0.0.1:1\"\n    ghost_template: \"s{i}mig33_{{id}}\"\n"
        ),
        media_link_lifetime_seconds: (i == 1).then_some(SHORT_LIFETIME),
        ..SlotOptions::default()
    }
}

fn env(slot: usize) -> (&'static Synapse, &'static BridgeSlot) {
    let (synapse, slots) = environment(SLOTS, options);
    (synapse, &slots[slot])
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

// --- the recording proxy ---------------------------------------------------------------

/// A pass-through to Synapse that records `METHOD path` of every request the bridge makes.
struct Tap {
    addr: std::net::SocketAddr,
    seen: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

#[derive(Clone)]
struct TapState {
    upstream: String,
    client: reqwest::Client,
    seen: Arc<Mutex<Vec<String>>>,
}

impl Tap {
    async fn start(upstream: &str) -> Tap {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a port for the proxy");
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let state = TapState {
            upstream: upstream.trim_end_matches('/').to_owned(),
            client: reqwest::Client::new(),
            seen: seen.clone(),
        };
        let app = axum::Router::new().fallback(forward).with_state(state);
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Tap { addr, seen, task }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for Tap {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn forward(State(tap): State<TapState>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let path_and_query = parts
        .uri
        .path_and_query()
        .map_or(parts.uri.path().to_owned(), |p| p.as_str().to_owned());
    tap.seen
        .lock()
        .unwrap()
        .push(format!("{} {}", parts.method, parts.uri.path()));
    let fail = |why: String| {
        Response::builder()
            .status(StatusCode::BAD_GATEWAY)
            .body(Body::from(why))
            .unwrap()
    };
    let body = match axum::body::to_bytes(body, 64 << 20).await {
        Ok(b) => b,
        Err(e) => return fail(e.to_string()),
    };
    let mut upstream = tap.client.request(
        parts.method.clone(),
        format!("{}{path_and_query}", tap.upstream),
    );
    for (name, value) in &parts.headers {
        if name != header::HOST && name != header::CONTENT_LENGTH {
            upstream = upstream.header(name, value);
        }
    }
    let answer = match upstream.body(body).send().await {
        Ok(a) => a,
        Err(e) => return fail(e.to_string()),
    };
    let mut response = Response::builder().status(answer.status());
    if let Some(kind) = answer.headers().get(header::CONTENT_TYPE) {
        response = response.header(header::CONTENT_TYPE, kind);
    }
    match answer.bytes().await {
        Ok(bytes) => response.body(Body::from(bytes)).unwrap(),
        Err(e) => fail(e.to_string()),
    }
}

// --- the chat ----------------------------------------------------------------------------

fn mig33_user(name: &str, contact: &str) -> UserConfig {
    UserConfig {
        username: name.into(),
        password: format!("{name}pw"),
        display_name: None,
        groups: Vec::new(),
        contacts: vec![ContactConfig {
            username: contact.into(),
            group: None,
            display_name: None,
        }],
    }
}

/// alice (bridged, on Matrix) in a DM portal with bob (scripted, on mig33).
struct Chat {
    synapse: &'static Synapse,
    slot: &'static BridgeSlot,
    tap: Tap,
    alice: TestUser,
    bob: Client,
    dm: String,
    _bridge: BridgeProcess,
    _sim: Server,
}

impl Chat {
    async fn open(slot: usize) -> Chat {
        let (synapse, slot) = env(slot);
        let sim = Server::start(Config {
            listen: "127.0.0.1:0".into(),
            motd: None,
            users: vec![mig33_user("alice", "bob"), mig33_user("bob", "alice")],
            chatrooms: Vec::new(),
            participant_separator: ParticipantSeparator::Semicolon,
            flood_limit: None,
        })
        .await
        .expect("mig33 simulator starts");
        let tap = Tap::start(&synapse.base_url).await;
        let networks = slot.network_yaml("mig33", &sim.addr().to_string(), &[]);
        // Blocking while the proxy, on this runtime, serves the bridge's start.
        let bridge = tokio::task::block_in_place(|| slot.start_via(&tap.url(), Some(&networks)))
            .expect("bridge starts");
        let alice = synapse
            .register_user(&slot.user_localpart("alice"), "pw", false)
            .await
            .expect("register alice");
        let room = slot.management_room(&alice).await;
        alice
            .send_text(&room, "login mig33 alice alicepw")
            .await
            .unwrap();
        alice
            .wait_for_message(
                &room,
                |e| {
                    e["sender"] == slot.bot.as_str()
                        && e["content"]["body"]
                            .as_str()
                            .is_some_and(|b| b.contains("Connected to mig33 as alice"))
                },
                WAIT,
            )
            .await
            .expect("alice connected");
        let bob = Client::login(sim.addr(), "bob", "bobpw").await.unwrap();
        bob.send_private("alice", "hi").await.unwrap();
        let ghost = slot.ghost("mig33", "bob");
        let dm = join_invite(&alice, |e| {
            e["type"] == "m.room.member"
                && e["state_key"] == alice.user_id.as_str()
                && e["sender"] == ghost.as_str()
        })
        .await;
        // bob's "hi" in the room: the portal is set up.
        alice
            .wait_for_message(
                &dm,
                |e| e["sender"] == ghost.as_str() && e["content"]["body"] == "hi",
                WAIT,
            )
            .await
            .expect("bob's message in the DM");
        Chat {
            synapse,
            slot,
            tap,
            alice,
            bob,
            dm,
            _bridge: bridge,
            _sim: sim,
        }
    }

    /// Uploads `bytes` as `name` of type `mime` to Synapse's media repository.
    async fn upload(&self, name: &str, mime: &str, bytes: &[u8]) -> String {
        let upload: Value = reqwest::Client::new()
            .post(format!("{}/_matrix/media/v3/upload", self.synapse.base_url))
            .query(&[("filename", name)])
            .bearer_auth(&self.alice.access_token)
            .header("content-type", mime)
            .body(bytes.to_vec())
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        upload["content_uri"]
            .as_str()
            .expect("content uri")
            .to_owned()
    }

    /// alice sends the file at `mxc` as a `msgtype` message; what bob gets.
    async fn send(&mut self, msgtype: &str, name: &str, mxc: &str) -> String {
        let content = json!({
            "msgtype": msgtype,
            "body": name,
            "filename": name,
            "url": mxc,
        });
        self.alice.send_message(&self.dm, content).await.unwrap();
        let what = if msgtype == "m.image" {
            "an image"
        } else {
            "a file"
        };
        let prefix = format!("sent {what}: {name}");
        match self
            .bob
            .wait_for(
                SIM_WAIT,
                |e| matches!(e, ClientEvent::Message(m) if m.content.starts_with(&prefix)),
            )
            .await
            .unwrap_or_else(|e| panic!("bob never got {prefix:?}: {e:#}"))
        {
            ClientEvent::Message(m) => m.content,
            other => panic!("unexpected {other:?}"),
        }
    }

    /// Uploads and sends a file; the link bob gets.
    async fn share(&mut self, msgtype: &str, name: &str, mime: &str, bytes: &[u8]) -> String {
        let mxc = self.upload(name, mime, bytes).await;
        let text = self.send(msgtype, name, &mxc).await;
        let link = text.rsplit(' ').next().unwrap().to_owned();
        let base = format!("{}/_retrobridge/media/", self.slot.endpoint());
        assert!(link.starts_with(&base), "{text}");
        link
    }
}

/// Waits for an invite whose stripped state has an event matching `pred`, joins it and
/// returns its id.
async fn join_invite(user: &TestUser, pred: impl Fn(&Value) -> bool) -> String {
    let filter = r#"{"presence":{"not_types":["*"]},"account_data":{"not_types":["*"]},"room":{"timeline":{"limit":0},"ephemeral":{"not_types":["*"]},"account_data":{"not_types":["*"]}}}"#;
    let mut calls = 0u64;
    let pred = &pred;
    let room = wait_until(WAIT, "a DM invite from bob's ghost", || {
        // Synapse caches a sync response per (user, timeout, filter, ...) for a while:
        // another `timeout` each time gets a fresh one.
        calls += 1;
        let timeout = calls.to_string();
        async move {
            let resp = user
                .request(
                    Method::GET,
                    "/sync",
                    &[("filter", filter), ("timeout", &timeout)],
                    None,
                )
                .await?;
            let Some(rooms) = resp["rooms"]["invite"].as_object() else {
                return Ok(None);
            };
            Ok(rooms.iter().find_map(|(id, room)| {
                room["invite_state"]["events"]
                    .as_array()?
                    .iter()
                    .any(&pred)
                    .then(|| id.clone())
            }))
        }
    })
    .await
    .expect("invite");
    user.join(&room).await.expect("join invited room");
    room
}

// --- what a browser sees -----------------------------------------------------------------

fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

/// Fetches a link: 200, with the guards every file gets; its headers and bytes.
async fn fetch(link: &str) -> (HeaderMap, Vec<u8>) {
    let response = reqwest::get(link).await.unwrap();
    assert_eq!(response.status(), 200, "{link}");
    let headers = response.headers().clone();
    let csp = header(&headers, "content-security-policy");
    assert!(
        csp.contains("sandbox") && csp.contains("default-src 'none'"),
        "{link}: Content-Security-Policy {csp:?}"
    );
    assert_eq!(
        header(&headers, "x-content-type-options"),
        "nosniff",
        "{link}"
    );
    let bytes = response.bytes().await.unwrap().to_vec();
    (headers, bytes)
}

/// The link with `from` replaced by `to` (which must change it).
fn changed(link: &str, from: &str, to: &str) -> String {
    assert!(link.contains(from), "{link} has no {from:?}");
    link.replacen(from, to, 1)
}

fn expiry(link: &str) -> u64 {
    let exp = link
        .split_once("?exp=")
        .and_then(|(_, rest)| rest.split_once('&'))
        .unwrap_or_else(|| panic!("{link} has no exp"))
        .0;
    exp.parse().unwrap()
}

/// A GET sent as written, with no URL normalisation (`%2e%2e` stays): the status line.
async fn raw_get(port: u16, target: &str) -> String {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    stream
        .write_all(
            format!("GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .await
        .unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(WAIT, stream.read_to_end(&mut answer))
        .await
        .expect("an answer")
        .unwrap();
    String::from_utf8_lossy(&answer)
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_are_served_as_a_homeserver_serves_them_and_links_sign_everything() {
    let mut chat = Chat::open(0).await;

    // HTML and SVG run scripts: downloads, sandboxed, never sniffed.
    let html = b"<html><body><script>alert(document.cookie)</script></body></html>";
    let html_link = chat.share("m.file", "page.html", "text/html", html).await;
    let svg = br#"<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><script>alert(2)</script></svg>"#;
    let svg_link = chat
        .share("m.file", "drawing.svg", "image/svg+xml", svg)
        .await;
    for (link, bytes, name) in [
        (&html_link, &html[..], "page.html"),
        (&svg_link, &svg[..], "drawing.svg"),
    ] {
        let (headers, fetched) = fetch(link).await;
        let disposition = header(&headers, "content-disposition");
        assert!(
            disposition.starts_with("attachment;")
                && disposition.contains(&format!("filename=\"{name}\"")),
            "{name}: Content-Disposition {disposition:?}"
        );
        assert_eq!(fetched, bytes, "{name}");
    }

    // A PNG is shown in place, under the same guards.
    let png_link = chat.share("m.image", "dot.png", "image/png", &PNG).await;
    let (headers, fetched) = fetch(&png_link).await;
    assert_eq!(header(&headers, "content-type"), "image/png");
    let disposition = header(&headers, "content-disposition");
    assert!(
        disposition.starts_with("inline;") && disposition.contains("filename=\"dot.png\""),
        "{disposition:?}"
    );
    assert_eq!(fetched, PNG);

    // Quotes and a semicolon in a name stay inside the name (RFC 6266).
    let name = "report \"final\"; v2.txt";
    let text_link = chat
        .share("m.file", name, "text/plain", b"the report")
        .await;
    let (headers, fetched) = fetch(&text_link).await;
    assert_eq!(
        header(&headers, "content-type"),
        "text/plain; charset=utf-8"
    );
    assert_eq!(
        header(&headers, "content-disposition"),
        "inline; filename=\"report _final__ v2.txt\"; filename*=UTF-8''report%20%22final%22%3B%20v2.txt"
    );
    assert_eq!(fetched, b"the report");

    // The signature covers the name and the expiry.
    let exp = expiry(&html_link);
    for forged in [
        changed(&html_link, "/page.html?", "/evil.exe?"),
        changed(
            &html_link,
            "/page.html?",
            "/page.html%22%3B%20filename%3Devil.exe?",
        ),
        changed(
            &html_link,
            &format!("exp={exp}"),
            &format!("exp={}", exp + 1000),
        ),
        changed(
            &html_link,
            &format!("exp={exp}"),
            &format!("exp={}", exp - 1),
        ),
    ] {
        let response = reqwest::get(&forged).await.unwrap();
        assert_eq!(response.status(), 403, "{forged}");
    }
    // The bridge fetched each file once for the fetches that were served, and nothing else.
    let downloads = |seen: Vec<String>| -> Vec<String> {
        seen.into_iter()
            .filter(|r| r.contains("/_matrix/client/v1/media/") || r.contains("config"))
            .collect()
    };
    let served = downloads(chat.tap.seen());
    assert_eq!(served.len(), 4, "{served:?}");
    assert!(
        served
            .iter()
            .all(|r| r.starts_with("GET /_matrix/client/v1/media/download/localhost/")),
        "{served:?}"
    );

    // mxc URIs outside the grammar get no link, and the bridge asks for nothing.
    for bad in ["mxc://../config", "mxc://localhost/../../x"] {
        let text = chat.send("m.file", "config.json", bad).await;
        assert!(
            text.contains("cannot be downloaded") && !text.contains("/_retrobridge/media/"),
            "{bad}: {text}"
        );
    }
    // Nor for one written by hand, `..` encoded so that no client resolves it away.
    let sig = html_link.rsplit_once("&sig=").unwrap().1;
    let status = raw_get(
        chat.slot.port,
        &format!("/_retrobridge/media/%2e%2e/config/x?exp={exp}&sig={sig}"),
    )
    .await;
    assert!(status.starts_with("HTTP/1.1 403"), "{status}");
    assert_eq!(downloads(chat.tap.seen()), served, "no request for them");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_link_is_refused_and_says_so() {
    let mut chat = Chat::open(1).await;
    let link = chat
        .share("m.file", "later.txt", "text/plain", b"too late")
        .await;
    let exp = expiry(&link);
    assert!(
        exp <= unix_now() + SHORT_LIFETIME,
        "the slot's lifetime: {link}"
    );
    // Real time has to pass: the slot's links last SHORT_LIFETIME seconds.
    wait_until(
        Duration::from_secs(SHORT_LIFETIME + 5),
        "the link's expiry",
        || async { Ok((unix_now() >= exp).then_some(())) },
    )
    .await
    .unwrap();
    let response = reqwest::get(&link).await.unwrap();
    assert_eq!(response.status(), 410, "{link}");
    let body = response.text().await.unwrap();
    assert!(body.contains("expired"), "{body}");
    // A later expiry written in does not revive it.
    let revived = changed(&link, &format!("exp={exp}"), &format!("exp={}", exp + 3600));
    assert_eq!(reqwest::get(&revived).await.unwrap().status(), 403);
    assert!(
        !chat
            .tap
            .seen()
            .iter()
            .any(|r| r.contains("/media/download/")),
        "an expired link fetches nothing"
    );
}
