//! A deliberately small Matrix client-server API client for test users.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const POLL_INTERVAL: Duration = Duration::from_millis(200);

/// A logged-in Matrix user on the test homeserver.
pub struct TestUser {
    pub user_id: String,
    pub access_token: String,
    pub base_url: String,
    /// Created on first use: a reqwest client belongs to the tokio runtime it
    /// first ran on, and every `#[tokio::test]` has its own runtime.
    client: OnceLock<reqwest::Client>,
}

/// A pending invite seen through `/sync`.
#[derive(Debug, Clone)]
pub struct Invite {
    pub room_id: String,
    /// Sender of our `m.room.member` invite event.
    pub inviter: String,
    pub is_direct: bool,
}

impl TestUser {
    pub fn new(base_url: &str, user_id: &str, access_token: &str) -> TestUser {
        TestUser {
            user_id: user_id.to_owned(),
            access_token: access_token.to_owned(),
            base_url: base_url.trim_end_matches('/').to_owned(),
            client: OnceLock::new(),
        }
    }

    /// Sends a client-server API request (`path` relative to
    /// `/_matrix/client/v3`, segments already encoded with [`enc`]) and
    /// returns the JSON body, failing on any non-2xx status.
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let resp = self.send(method.clone(), path, query, body).await?;
        check_status(resp)
            .await
            .with_context(|| format!("{} {method} {path}", self.user_id))
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<Value>,
    ) -> anyhow::Result<reqwest::Response> {
        // A request never waits forever: tests and benchmarks must stop by themselves.
        let client = self.client.get_or_init(|| {
            reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .expect("an HTTP client")
        });
        let url = format!("{}/_matrix/client/v3{path}", self.base_url);
        let mut req = client
            .request(method, url)
            .bearer_auth(&self.access_token)
            .query(query);
        if let Some(body) = body {
            req = req.json(&body);
        }
        Ok(req.send().await?)
    }

    /// Like `request(GET)` but maps 404 to `None`.
    async fn get_optional(&self, path: &str) -> anyhow::Result<Option<Value>> {
        let resp = self.send(Method::GET, path, &[], None).await?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        Ok(Some(
            check_status(resp)
                .await
                .with_context(|| format!("GET {path}"))?,
        ))
    }

    pub async fn create_room(
        &self,
        invite: &[&str],
        is_direct: bool,
        name: Option<&str>,
    ) -> anyhow::Result<String> {
        let mut body = json!({"preset": "private_chat", "invite": invite, "is_direct": is_direct});
        if let Some(name) = name {
            body["name"] = json!(name);
        }
        let resp = self
            .request(Method::POST, "/createRoom", &[], Some(body))
            .await?;
        str_field(&resp, "room_id")
    }

    pub async fn invite(&self, room_id: &str, user_id: &str) -> anyhow::Result<()> {
        let path = format!("/rooms/{}/invite", enc(room_id));
        let body = json!({"user_id": user_id});
        self.request(Method::POST, &path, &[], Some(body)).await?;
        Ok(())
    }

    /// Joins by room id or alias; returns the room id.
    pub async fn join(&self, room_id_or_alias: &str) -> anyhow::Result<String> {
        let path = format!("/join/{}", enc(room_id_or_alias));
        let resp = self
            .request(Method::POST, &path, &[], Some(json!({})))
            .await?;
        str_field(&resp, "room_id")
    }

    pub async fn leave(&self, room_id: &str) -> anyhow::Result<()> {
        let path = format!("/rooms/{}/leave", enc(room_id));
        self.request(Method::POST, &path, &[], Some(json!({})))
            .await?;
        Ok(())
    }

    /// Sends an `m.text` message; returns the event id.
    pub async fn send_text(&self, room_id: &str, body: &str) -> anyhow::Result<String> {
        self.send_message(room_id, json!({"msgtype": "m.text", "body": body}))
            .await
    }

    /// Sends an arbitrary `m.room.message` content; returns the event id.
    pub async fn send_message(&self, room_id: &str, content: Value) -> anyhow::Result<String> {
        let path = format!("/rooms/{}/send/m.room.message/{}", enc(room_id), txn_id());
        let resp = self.request(Method::PUT, &path, &[], Some(content)).await?;
        str_field(&resp, "event_id")
    }

    pub async fn redact(&self, room_id: &str, event_id: &str) -> anyhow::Result<String> {
        let path = format!(
            "/rooms/{}/redact/{}/{}",
            enc(room_id),
            enc(event_id),
            txn_id()
        );
        let resp = self
            .request(Method::PUT, &path, &[], Some(json!({})))
            .await?;
        str_field(&resp, "event_id")
    }

    /// The last 100 timeline events of a room (all types), oldest first.
    pub async fn messages(&self, room_id: &str) -> anyhow::Result<Vec<Value>> {
        let path = format!("/rooms/{}/messages", enc(room_id));
        let query = [("dir", "b"), ("limit", "100")];
        let resp = self.request(Method::GET, &path, &query, None).await?;
        let mut chunk = resp["chunk"].as_array().cloned().unwrap_or_default();
        chunk.reverse();
        Ok(chunk)
    }

    /// Every timeline event of a room (all pages), oldest first.
    pub async fn all_messages(&self, room_id: &str) -> anyhow::Result<Vec<Value>> {
        let path = format!("/rooms/{}/messages", enc(room_id));
        let mut events = Vec::new();
        let mut from: Option<String> = None;
        loop {
            let mut query = vec![("dir", "b"), ("limit", "1000")];
            if let Some(token) = &from {
                query.push(("from", token));
            }
            let resp = self.request(Method::GET, &path, &query, None).await?;
            let chunk = resp["chunk"].as_array().cloned().unwrap_or_default();
            let end = resp["end"].as_str().map(str::to_owned);
            let done = chunk.is_empty() || end.is_none() || end == from;
            events.extend(chunk);
            if done {
                break;
            }
            from = end;
        }
        events.reverse();
        Ok(events)
    }

    /// Polls [`messages`](Self::messages) until `predicate` matches an event.
    pub async fn wait_for_message(
        &self,
        room_id: &str,
        predicate: impl Fn(&Value) -> bool,
        timeout: Duration,
    ) -> anyhow::Result<Value> {
        let what = format!("a matching message in {room_id} for {}", self.user_id);
        let found = wait_until(timeout, &what, || async {
            Ok(self.messages(room_id).await?.into_iter().find(&predicate))
        })
        .await;
        match found {
            Ok(event) => Ok(event),
            Err(e) => {
                // Show what did arrive, which usually explains the mismatch.
                let seen = match self.messages(room_id).await {
                    Ok(msgs) => msgs.iter().map(summarize).collect::<Vec<_>>().join("\n  "),
                    Err(e) => format!("(could not fetch: {e:#})"),
                };
                Err(e.context(format!("messages seen:\n  {seen}")))
            }
        }
    }

    /// Rooms we are currently invited to (a full `/sync` without timeline).
    /// Each call uses a filter of its own: Synapse caches identical initial `/sync`
    /// responses for a while (`sync_response_cache_duration`), which would hide invites
    /// that arrive after the first call.
    pub async fn invited_rooms(&self) -> anyhow::Result<Vec<Invite>> {
        static NONCE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let nonce = NONCE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let filter = json!({
            "presence": {"not_types": ["*"]},
            "account_data": {"not_types": ["*"]},
            "room": {
                "not_rooms": [format!("!nonce{nonce}:localhost")],
                "timeline": {"limit": 0},
                "state": {"not_types": ["*"]},
                "ephemeral": {"not_types": ["*"]},
                "account_data": {"not_types": ["*"]}
            }
        })
        .to_string();
        let query = [("filter", filter.as_str()), ("timeout", "0")];
        let resp = self.request(Method::GET, "/sync", &query, None).await?;
        let mut invites = Vec::new();
        let Some(rooms) = resp["rooms"]["invite"].as_object() else {
            return Ok(invites);
        };
        for (room_id, room) in rooms {
            let events = room["invite_state"]["events"].as_array();
            let own_member = events.into_iter().flatten().find(|ev| {
                ev["type"] == "m.room.member" && ev["state_key"] == self.user_id.as_str()
            });
            if let Some(ev) = own_member {
                invites.push(Invite {
                    room_id: room_id.clone(),
                    inviter: ev["sender"].as_str().unwrap_or_default().to_owned(),
                    is_direct: ev["content"]["is_direct"].as_bool().unwrap_or(false),
                });
            }
        }
        Ok(invites)
    }

    /// Waits for an invite whose inviter matches; returns its room id.
    pub async fn wait_for_invite(
        &self,
        inviter: impl Fn(&str) -> bool,
        timeout: Duration,
    ) -> anyhow::Result<String> {
        let what = format!("an invite for {}", self.user_id);
        wait_until(timeout, &what, || async {
            let invites = self.invited_rooms().await?;
            Ok(invites
                .into_iter()
                .find(|i| inviter(&i.inviter))
                .map(|i| i.room_id))
        })
        .await
    }

    pub async fn joined_rooms(&self) -> anyhow::Result<Vec<String>> {
        let resp = self
            .request(Method::GET, "/joined_rooms", &[], None)
            .await?;
        Ok(string_array(&resp["joined_rooms"]))
    }

    /// User ids of the room's joined members.
    pub async fn joined_members(&self, room_id: &str) -> anyhow::Result<Vec<String>> {
        let path = format!("/rooms/{}/joined_members", enc(room_id));
        let resp = self.request(Method::GET, &path, &[], None).await?;
        let joined = resp["joined"].as_object().context("no `joined` map")?;
        Ok(joined.keys().cloned().collect())
    }

    /// Content of a state event, or `None` if the room has none.
    pub async fn room_state(
        &self,
        room_id: &str,
        event_type: &str,
        state_key: &str,
    ) -> anyhow::Result<Option<Value>> {
        let path = format!(
            "/rooms/{}/state/{}/{}",
            enc(room_id),
            enc(event_type),
            enc(state_key)
        );
        self.get_optional(&path).await
    }

    /// `{"presence": "online", "last_active_ago": .., "status_msg": ..}`
    pub async fn get_presence(&self, user_id: &str) -> anyhow::Result<Value> {
        let path = format!("/presence/{}/status", enc(user_id));
        self.request(Method::GET, &path, &[], None).await
    }

    /// Sets our own presence (`online`, `unavailable` or `offline`).
    pub async fn set_presence(
        &self,
        presence: &str,
        status_msg: Option<&str>,
    ) -> anyhow::Result<()> {
        let path = format!("/presence/{}/status", enc(&self.user_id));
        let mut body = json!({"presence": presence});
        if let Some(msg) = status_msg {
            body["status_msg"] = json!(msg);
        }
        self.request(Method::PUT, &path, &[], Some(body)).await?;
        Ok(())
    }

    /// `None` if the user has no display name (or does not exist).
    pub async fn get_displayname(&self, user_id: &str) -> anyhow::Result<Option<String>> {
        let path = format!("/profile/{}/displayname", enc(user_id));
        let resp = self.get_optional(&path).await?;
        Ok(resp.and_then(|v| v["displayname"].as_str().map(str::to_owned)))
    }

    /// A user's avatar (`mxc://` address), `None` when they have none.
    pub async fn get_avatar_url(&self, user_id: &str) -> anyhow::Result<Option<String>> {
        let path = format!("/profile/{}/avatar_url", enc(user_id));
        let resp = self.get_optional(&path).await?;
        Ok(resp.and_then(|v| v["avatar_url"].as_str().map(str::to_owned)))
    }

    /// Uploads a file to the media repository; its `mxc://` address.
    pub async fn upload(
        &self,
        data: Vec<u8>,
        content_type: &str,
        name: &str,
    ) -> anyhow::Result<String> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()?;
        let url = format!("{}/_matrix/media/v3/upload", self.base_url);
        let resp = client
            .post(url)
            .query(&[("filename", name)])
            .bearer_auth(&self.access_token)
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .body(data)
            .send()
            .await?;
        anyhow::ensure!(
            resp.status().is_success(),
            "uploading {name}: {}",
            resp.status()
        );
        let body: Value = resp.json().await?;
        body["content_uri"]
            .as_str()
            .map(str::to_owned)
            .context("no content_uri in the upload's answer")
    }

    /// Sets the user's avatar (an `mxc://` address).
    pub async fn set_avatar_url(&self, url: &str) -> anyhow::Result<()> {
        let path = format!("/profile/{}/avatar_url", enc(&self.user_id));
        self.request(Method::PUT, &path, &[], Some(json!({"avatar_url": url})))
            .await?;
        Ok(())
    }

    /// The bytes of an `mxc://server/id` file (authenticated media, Matrix 1.11).
    pub async fn download(&self, mxc: &str) -> anyhow::Result<Vec<u8>> {
        let rest = mxc
            .strip_prefix("mxc://")
            .with_context(|| format!("{mxc} is no mxc:// address"))?;
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()?;
        let url = format!("{}/_matrix/client/v1/media/download/{rest}", self.base_url);
        let resp = client
            .get(url)
            .bearer_auth(&self.access_token)
            .send()
            .await?;
        anyhow::ensure!(
            resp.status().is_success(),
            "downloading {mxc}: {}",
            resp.status()
        );
        Ok(resp.bytes().await?.to_vec())
    }

    pub async fn set_displayname(&self, name: &str) -> anyhow::Result<()> {
        let path = format!("/profile/{}/displayname", enc(&self.user_id));
        let body = json!({"displayname": name});
        self.request(Method::PUT, &path, &[], Some(body)).await?;
        Ok(())
    }

    /// A single event by id.
    pub async fn event(&self, room_id: &str, event_id: &str) -> anyhow::Result<Value> {
        let path = format!("/rooms/{}/event/{}", enc(room_id), enc(event_id));
        self.request(Method::GET, &path, &[], None).await
    }

    /// Redacted events keep their id but lose all content.
    pub async fn is_redacted(&self, room_id: &str, event_id: &str) -> anyhow::Result<bool> {
        let ev = self.event(room_id, event_id).await?;
        Ok(ev["content"].as_object().is_none_or(|c| c.is_empty()))
    }
}

/// Polls `f` every 200 ms until it yields `Some`, or fails after `timeout`
/// with an error naming `what` (and the last error `f` returned, if any).
pub async fn wait_until<F, Fut, T>(timeout: Duration, what: &str, mut f: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<Option<T>>>,
{
    let deadline = Instant::now() + timeout;
    let mut last_err = None;
    loop {
        match f().await {
            Ok(Some(value)) => return Ok(value),
            Ok(None) => {}
            Err(e) => last_err = Some(e),
        }
        if Instant::now() >= deadline {
            match last_err {
                Some(e) => {
                    bail!("timed out after {timeout:?} waiting for {what}; last error: {e:#}")
                }
                None => bail!("timed out after {timeout:?} waiting for {what}"),
            }
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// Percent-encodes one URL path segment (room ids contain `!` and `:`).
pub fn enc(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out += &format!("%{b:02X}");
        }
    }
    out
}

/// Returns the JSON body of a 2xx response, or an error with status and body.
pub(crate) async fn check_status(resp: reqwest::Response) -> anyhow::Result<Value> {
    let status = resp.status();
    let text = resp.text().await?;
    if !status.is_success() {
        bail!("HTTP {status}: {text}");
    }
    serde_json::from_str(&text).with_context(|| format!("non-JSON response: {text}"))
}

/// Transaction ids must be unique per access token; a process-wide counter
/// plus the pid keeps them unique across test binaries too.
fn txn_id() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "t{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

fn str_field(v: &Value, field: &str) -> anyhow::Result<String> {
    v[field]
        .as_str()
        .map(str::to_owned)
        .with_context(|| format!("response has no `{field}`: {v}"))
}

fn string_array(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(str::to_owned))
        .collect()
}

/// `sender: body` (or the event type) for error messages.
fn summarize(ev: &Value) -> String {
    let sender = ev["sender"].as_str().unwrap_or("?");
    match ev["content"]["body"].as_str() {
        Some(body) => format!("{sender}: {body}"),
        None => format!("{sender}: <{}>", ev["type"].as_str().unwrap_or("?")),
    }
}
