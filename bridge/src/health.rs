//! Health endpoints for orchestration (Kubernetes probes, load balancers, scripts), on
//! the appservice listener and unauthenticated, like the media links:
//!
//! - `GET /_retrobridge/live`: 200 whenever the process serves HTTP.
//! - `GET /_retrobridge/ready`: 200 once the bridge has started (the homeserver
//!   answered, the bot is registered, the stored logins were resumed); 503 with the
//!   reason before that and while it shuts down.

use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

/// Whether the bridge is ready, and why not. Cloned handles share the state.
#[derive(Clone, Debug)]
pub struct Health(Arc<Mutex<Option<String>>>);

impl Health {
    /// Not ready yet, for `reason`.
    pub fn starting(reason: impl Into<String>) -> Health {
        Health(Arc::new(Mutex::new(Some(reason.into()))))
    }

    pub fn not_ready(&self, reason: impl Into<String>) {
        *self.0.lock().expect("health lock") = Some(reason.into());
    }

    pub fn ready(&self) {
        *self.0.lock().expect("health lock") = None;
    }

    /// `None` when ready, else why not.
    pub fn reason(&self) -> Option<String> {
        self.0.lock().expect("health lock").clone()
    }
}

pub fn router(health: Health) -> Router {
    Router::new()
        .route("/_retrobridge/live", get(live))
        .route("/_retrobridge/ready", get(ready))
        .with_state(health)
}

async fn live() -> Response {
    Json(json!({ "live": true, "version": env!("CARGO_PKG_VERSION") })).into_response()
}

async fn ready(State(health): State<Health>) -> Response {
    match health.reason() {
        None => Json(json!({ "ready": true })).into_response(),
        Some(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "ready": false, "reason": reason })),
        )
            .into_response(),
    }
}
