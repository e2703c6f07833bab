//! The appservice HTTP API the homeserver calls: transactions, user and alias queries, ping.
//!
//! Every request must carry the hs_token (`Authorization: Bearer`, or the legacy
//! `access_token` query parameter), compared in constant time; nothing is looked at before
//! that. The events the bridge has no business with (its own echoes, other rooms) are
//! dropped here; the rest go to the handler, which records them durably before the
//! transaction is acknowledged, so an acknowledged event is never lost and a retried
//! transaction is recognised (by its id and a digest of its content: homeservers restart
//! their transaction ids).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The fields of an event the bridge looks at before deciding whether to keep it.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct EventHeader {
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub room_id: Option<String>,
    #[serde(default)]
    pub sender: Option<String>,
    #[serde(default)]
    pub event_id: Option<String>,
    #[serde(default)]
    pub state_key: Option<String>,
    #[serde(default)]
    pub origin_server_ts: Option<u64>,
}

/// One event of a transaction that the handler wants.
pub struct IncomingEvent {
    pub header: EventHeader,
    /// The event's JSON.
    pub bytes: Vec<u8>,
    /// Ephemeral events (typing, receipts) are not recorded.
    pub ephemeral: bool,
}

/// Why a transaction is not acknowledged now (the homeserver sends it again later).
#[derive(Debug)]
pub enum NotNow {
    /// It could not be recorded.
    Failed(String),
}

/// What the core does with what the homeserver sends.
pub trait AppserviceHandler: Send + Sync + 'static {
    /// A cheap test (no I/O beyond the store) whether an event needs handling; the
    /// others (the bridge's own echoes, rooms it is not in) are never recorded.
    fn wanted(&self, event: &EventHeader) -> bool;

    /// Records and handles a transaction's wanted events. `digest` identifies the
    /// transaction's content: the same id with the same digest is a repeat. Resolves once
    /// the events are durable (the transaction may then be acknowledged).
    fn transaction<'a>(
        &'a self,
        txn_id: &'a str,
        digest: [u8; 32],
        events: Vec<IncomingEvent>,
    ) -> Pin<Box<dyn Future<Output = Result<(), NotNow>> + Send + 'a>>;

    /// Whether `user_id` is one of ours (after making sure it exists on the homeserver).
    fn query_user<'a>(
        &'a self,
        user_id: &'a str,
    ) -> Pin<Box<dyn Future<Output = bool> + Send + 'a>>;
}

#[derive(Clone)]
struct AppState {
    hs_token: Arc<str>,
    handler: Arc<dyn AppserviceHandler>,
}

/// The router for the appservice API (spec paths and the legacy unprefixed ones).
/// With `media`, also the (unauthenticated, signed) links to Matrix files given to
/// legacy contacts.
pub fn router(
    hs_token: &str,
    handler: Arc<dyn AppserviceHandler>,
    media: Option<crate::fronts::matrix::media::MediaLinks>,
) -> Router {
    let state = AppState {
        hs_token: hs_token.into(),
        handler,
    };
    let media_routes = match media {
        Some(links) => Router::new()
            .route(
                // The link is read whole, raw, by `MediaLinks::check`.
                "/_retrobridge/media/{*link}",
                get(crate::fronts::matrix::media::MediaLinks::serve),
            )
            .with_state(links),
        None => Router::new(),
    };
    Router::new()
        .route("/_matrix/app/v1/transactions/{txn_id}", put(transaction))
        .route("/transactions/{txn_id}", put(transaction))
        .route("/_matrix/app/v1/users/{user_id}", get(query_user))
        .route("/users/{user_id}", get(query_user))
        .route("/_matrix/app/v1/rooms/{alias}", get(query_alias))
        .route("/rooms/{alias}", get(query_alias))
        .route("/_matrix/app/v1/ping", post(ping))
        .fallback(|| async {
            error(
                StatusCode::NOT_FOUND,
                "M_UNRECOGNIZED",
                "Unrecognized request",
            )
        })
        .layer(middleware::from_fn_with_state(state.clone(), authenticate))
        .with_state(state)
        .merge(media_routes)
}

fn error(status: StatusCode, errcode: &str, message: &str) -> Response {
    (
        status,
        Json(json!({ "errcode": errcode, "error": message })),
    )
        .into_response()
}

async fn authenticate(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let header_token = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_owned);
    let query_token = request.uri().query().and_then(|q| {
        q.split('&')
            .find_map(|pair| pair.strip_prefix("access_token="))
            .map(str::to_owned)
    });
    let Some(token) = header_token.or(query_token) else {
        return error(
            StatusCode::UNAUTHORIZED,
            "M_UNAUTHORIZED",
            "Missing access token",
        );
    };
    if !bool::from(token.as_bytes().ct_eq(state.hs_token.as_bytes())) {
        tracing::warn!(path = %request.uri().path(), "request with a wrong hs_token refused");
        return error(StatusCode::FORBIDDEN, "M_FORBIDDEN", "Bad access token");
    }
    next.run(request).await
}

#[derive(Deserialize)]
struct Transaction<'a> {
    #[serde(borrow)]
    events: Vec<&'a RawValue>,
    #[serde(borrow, default)]
    ephemeral: Vec<&'a RawValue>,
    #[serde(borrow, default, rename = "de.sorunome.msc2409.ephemeral")]
    ephemeral_unstable: Vec<&'a RawValue>,
}

/// A transaction body that is refused: not JSON, or JSON that is not a transaction.
#[derive(Debug)]
pub struct BadTransaction {
    /// The Matrix error code of the answer: `M_NOT_JSON` or `M_BAD_JSON`.
    pub errcode: &'static str,
    /// What the body is: "not JSON" or "not a transaction".
    pub what: &'static str,
    pub error: serde_json::Error,
}

/// One event of a transaction, as read from the body.
#[derive(Debug)]
pub struct TransactionEvent<'a> {
    /// The fields looked at first, or why the JSON is not an event (it is then skipped).
    pub header: Result<EventHeader, serde_json::Error>,
    /// The event's JSON, as in the body.
    pub json: &'a str,
    /// From the ephemeral list (typing, receipts): not recorded.
    pub ephemeral: bool,
}

/// Reads a transaction's body (the homeserver's, untrusted): its events, then its
/// ephemeral events (the stable list, or the unstable MSC2409 one when the stable one is
/// empty), each with its header. Pure: the `transaction` handler answers with what this
/// returns.
pub fn parse_transaction(body: &[u8]) -> Result<Vec<TransactionEvent<'_>>, BadTransaction> {
    let txn: Transaction = serde_json::from_slice(body).map_err(|error| {
        let (errcode, what) = match error.classify() {
            serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
                ("M_NOT_JSON", "not JSON")
            }
            _ => ("M_BAD_JSON", "not a transaction"),
        };
        BadTransaction {
            errcode,
            what,
            error,
        }
    })?;
    let ephemeral = if txn.ephemeral.is_empty() {
        txn.ephemeral_unstable
    } else {
        txn.ephemeral
    };
    let flagged = txn
        .events
        .iter()
        .map(|e| (e, false))
        .chain(ephemeral.iter().map(|e| (e, true)));
    Ok(flagged
        .map(|(raw, ephemeral)| TransactionEvent {
            header: serde_json::from_str(raw.get()),
            json: raw.get(),
            ephemeral,
        })
        .collect())
}

async fn transaction(
    State(state): State<AppState>,
    Path(txn_id): Path<String>,
    body: Bytes,
) -> Response {
    let read = match parse_transaction(&body) {
        Ok(events) => events,
        Err(BadTransaction {
            errcode,
            what,
            error: e,
        }) => {
            tracing::warn!(%txn_id, "refused a transaction that is {what}: {e}");
            return error(
                StatusCode::BAD_REQUEST,
                errcode,
                &format!("The body is {what}: {e}"),
            );
        }
    };
    let total = read.len();
    let mut events = Vec::new();
    for event in read {
        let header = match event.header {
            Ok(h) => h,
            Err(e) => {
                tracing::debug!(%txn_id, "ignored an event that is not an event: {e}");
                continue;
            }
        };
        if state.handler.wanted(&header) {
            events.push(IncomingEvent {
                header,
                bytes: event.json.as_bytes().to_vec(),
                ephemeral: event.ephemeral,
            });
        }
    }
    tracing::debug!(%txn_id, total, wanted = events.len(), "transaction");
    let digest: [u8; 32] = Sha256::digest(&body).into();
    match state.handler.transaction(&txn_id, digest, events).await {
        Ok(()) => Json(json!({})).into_response(),
        Err(NotNow::Failed(e)) => {
            tracing::error!(%txn_id, "could not record a transaction: {e}");
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "M_UNKNOWN",
                "Could not record the transaction",
            )
        }
    }
}

async fn query_user(State(state): State<AppState>, Path(user_id): Path<String>) -> Response {
    if state.handler.query_user(&user_id).await {
        Json(json!({})).into_response()
    } else {
        error(StatusCode::NOT_FOUND, "M_NOT_FOUND", "No such user")
    }
}

async fn query_alias(Path(_alias): Path<String>) -> Response {
    // The bridge creates rooms itself; it does not provide rooms on demand by alias.
    error(StatusCode::NOT_FOUND, "M_NOT_FOUND", "No such room alias")
}

async fn ping() -> Response {
    Json(json!({})).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_transaction_is_read_event_by_event() {
        let body = br#"{"events": [
            {"type": "m.room.message", "room_id": "!r:hs", "sender": "@a:hs", "origin_server_ts": 5},
            {"type": 7},
            [1, 2]
        ], "ephemeral": [{"type": "m.typing", "room_id": "!r:hs"}],
           "de.sorunome.msc2409.ephemeral": [{"type": "m.receipt"}]}"#;
        let events = parse_transaction(body).unwrap();
        assert_eq!(events.len(), 4);
        let first = events[0].header.as_ref().unwrap();
        assert_eq!(first.kind, "m.room.message");
        assert_eq!(first.room_id.as_deref(), Some("!r:hs"));
        assert_eq!(first.origin_server_ts, Some(5));
        assert!(!events[0].ephemeral);
        assert!(events[0].json.starts_with(r#"{"type": "m.room.message""#));
        // Not events: skipped by the handler, the rest kept.
        assert!(events[1].header.is_err() && events[2].header.is_err());
        assert_eq!(events[2].json, "[1, 2]");
        // The stable ephemeral list wins over the unstable one.
        assert!(events[3].ephemeral);
        assert_eq!(events[3].header.as_ref().unwrap().kind, "m.typing");

        let unstable =
            parse_transaction(br#"{"events": [], "de.sorunome.msc2409.ephemeral": [{}]}"#).unwrap();
        assert_eq!(unstable.len(), 1);
        assert!(unstable[0].ephemeral);
        assert_eq!(unstable[0].header.as_ref().unwrap().kind, "");
    }

    #[test]
    fn a_body_that_is_no_transaction_is_refused() {
        for (body, errcode) in [
            (&b"{\"events\": ["[..], "M_NOT_JSON"),
            (b"not json", "M_NOT_JSON"),
            (b"{\"events\": {}}", "M_BAD_JSON"),
            (b"{}", "M_BAD_JSON"),
            (b"[]", "M_BAD_JSON"),
        ] {
            let refused = parse_transaction(body).unwrap_err();
            assert_eq!(
                refused.errcode,
                errcode,
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }
}
