//! The appservice HTTP API the homeserver calls: transactions, user and alias queries, ping.
//!
//! Every request must carry the hs_token (`Authorization: Bearer`, or the legacy
//! `access_token` query parameter), compared in constant time; nothing is looked at before
//! that. A transaction is recorded in the store together with its events and flushed to
//! disk before it is acknowledged, so a retried transaction is recognised (also after a
//! restart) and an acknowledged one is never lost.

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
use subtle::ConstantTimeEq;

use crate::store::Store;

/// What the core does with what the homeserver sends.
pub trait AppserviceHandler: Send + Sync + 'static {
    /// Events that were recorded durably, with their inbox ids, in transaction order.
    /// The handler marks each done in the store once it has processed it.
    fn events_accepted(&self, events: Vec<(u64, Vec<u8>)>);

    /// Whether `user_id` is one of ours (after making sure it exists on the homeserver).
    fn query_user<'a>(
        &'a self,
        user_id: &'a str,
    ) -> Pin<Box<dyn Future<Output = bool> + Send + 'a>>;
}

#[derive(Clone)]
struct AppState {
    hs_token: Arc<str>,
    store: Store,
    handler: Arc<dyn AppserviceHandler>,
}

/// The router for the appservice API (spec paths and the legacy unprefixed ones).
pub fn router(hs_token: &str, store: Store, handler: Arc<dyn AppserviceHandler>) -> Router {
    let state = AppState {
        hs_token: hs_token.into(),
        store,
        handler,
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

async fn transaction(
    State(state): State<AppState>,
    Path(txn_id): Path<String>,
    body: Bytes,
) -> Response {
    let txn: Transaction = match serde_json::from_slice(&body) {
        Ok(t) => t,
        Err(e) => {
            let (code, what) = match e.classify() {
                serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
                    ("M_NOT_JSON", "not JSON")
                }
                _ => ("M_BAD_JSON", "not a transaction"),
            };
            tracing::warn!(%txn_id, "refused a transaction that is {what}: {e}");
            return error(
                StatusCode::BAD_REQUEST,
                code,
                &format!("The body is {what}: {e}"),
            );
        }
    };
    let ephemeral = if txn.ephemeral.is_empty() {
        txn.ephemeral_unstable
    } else {
        txn.ephemeral
    };
    let events: Vec<Vec<u8>> = txn
        .events
        .iter()
        .chain(ephemeral.iter())
        .map(|e| e.get().as_bytes().to_vec())
        .collect();
    let accepted = match state.store.accept_transaction(&txn_id, &events) {
        Ok(a) => a,
        Err(e) => {
            tracing::error!(%txn_id, "could not record a transaction: {e}");
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "M_UNKNOWN",
                "Could not record the transaction",
            );
        }
    };
    let Some(ids) = accepted else {
        tracing::debug!(%txn_id, "transaction seen before; not processed again");
        return Json(json!({})).into_response();
    };
    if let Err(e) = state.store.flush().await {
        tracing::error!(%txn_id, "could not flush the store: {e}");
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "M_UNKNOWN",
            "Could not record the transaction",
        );
    }
    state
        .handler
        .events_accepted(ids.into_iter().zip(events).collect());
    Json(json!({})).into_response()
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
