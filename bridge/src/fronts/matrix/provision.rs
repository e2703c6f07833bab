//! The provisioning API: HTTP JSON under `/_retrobridge/provision/v1/` on the appservice
//! listener, for integration managers and web front-ends that manage logins for their
//! users. Off unless the config has `provisioning.shared_secret`.
//!
//! Every request carries the secret (`Authorization: Bearer`, compared in constant time
//! and never logged) and acts for the Matrix user named by the `user_id` query
//! parameter, who needs the same permission as for a management room. The actions are
//! the management room's own ([`crate::core::accounts`]); README.md documents each
//! endpoint.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, delete, get, post, MethodRouter};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::config::{Permission, Secret};
use crate::core::accounts::{self, ActionError, LoginInfo};
use crate::core::Bridge;
use crate::health::Health;

pub const PREFIX: &str = "/_retrobridge/provision/v1";

/// How long `status` waits for the networks (a login still connecting answers later).
const STATUS_WAIT: Duration = Duration::from_secs(30);

#[derive(Clone)]
struct Api {
    bridge: Arc<Bridge>,
    /// SHA-256 of the secret: comparing digests takes the same time whatever the length
    /// of the token sent.
    secret: [u8; 32],
    health: Health,
}

/// The API's routes; merge them into the appservice router (outside its hs_token check).
pub fn router(bridge: Arc<Bridge>, secret: &Secret, health: Health) -> Router {
    let api = Api {
        bridge,
        secret: Sha256::digest(secret.expose().as_bytes()).into(),
        health,
    };
    let path = |p: &str| format!("{PREFIX}{p}");
    Router::new()
        .route(&path("/logins"), only(get(list)))
        .route(&path("/logins/{network}"), only(delete(logout_path)))
        .route(&path("/login"), only(post(login)))
        .route(&path("/logout"), only(post(logout)))
        .route(&path("/status"), only(post(status)))
        .route(
            &path("/{*rest}"),
            any(|| async {
                error(
                    StatusCode::NOT_FOUND,
                    "M_UNRECOGNIZED",
                    "No such provisioning endpoint",
                )
            }),
        )
        .layer(middleware::from_fn_with_state(api.clone(), authenticate))
        .with_state(api)
}

/// A route whose other methods get a JSON 405.
fn only(route: MethodRouter<Api>) -> MethodRouter<Api> {
    route.fallback(|| async {
        error(
            StatusCode::METHOD_NOT_ALLOWED,
            "M_UNRECOGNIZED",
            "This endpoint does not take that method",
        )
    })
}

/// An error answer: `{"errcode": ..., "error": ...}`.
struct ApiError {
    status: StatusCode,
    errcode: &'static str,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, errcode: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            errcode,
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        error(self.status, self.errcode, &self.message)
    }
}

fn error(status: StatusCode, errcode: &str, message: &str) -> Response {
    (
        status,
        Json(json!({ "errcode": errcode, "error": message })),
    )
        .into_response()
}

impl From<ActionError> for ApiError {
    fn from(e: ActionError) -> ApiError {
        let (status, errcode) = match &e {
            ActionError::NoNetwork => (StatusCode::BAD_REQUEST, "M_MISSING_PARAM"),
            ActionError::UnknownNetwork(_) => {
                (StatusCode::BAD_REQUEST, "NET.RETROBRIDGE.UNKNOWN_NETWORK")
            }
            ActionError::Unavailable(_) => (
                StatusCode::BAD_REQUEST,
                "NET.RETROBRIDGE.NETWORK_UNAVAILABLE",
            ),
            ActionError::AlreadyLoggedIn { .. } => {
                (StatusCode::CONFLICT, "NET.RETROBRIDGE.ALREADY_LOGGED_IN")
            }
            ActionError::BadCredentials { .. } => {
                (StatusCode::BAD_REQUEST, "NET.RETROBRIDGE.BAD_CREDENTIALS")
            }
            ActionError::NotLoggedIn(_) | ActionError::NoLogins => {
                (StatusCode::NOT_FOUND, "NET.RETROBRIDGE.NOT_LOGGED_IN")
            }
            ActionError::Network { .. } => {
                (StatusCode::BAD_GATEWAY, "NET.RETROBRIDGE.NETWORK_ERROR")
            }
            ActionError::Storage => (StatusCode::INTERNAL_SERVER_ERROR, "M_UNKNOWN"),
        };
        ApiError::new(status, errcode, e.to_string())
    }
}

async fn authenticate(State(api): State<Api>, request: Request, next: Next) -> Response {
    let token = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let Some(token) = token else {
        return error(
            StatusCode::UNAUTHORIZED,
            "M_MISSING_TOKEN",
            "Missing the provisioning secret (Authorization: Bearer <secret>)",
        );
    };
    let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
    if !bool::from(digest.ct_eq(&api.secret)) {
        tracing::warn!(path = %request.uri().path(), "provisioning request with a wrong secret refused");
        return error(
            StatusCode::UNAUTHORIZED,
            "M_UNKNOWN_TOKEN",
            "Wrong provisioning secret",
        );
    }
    if let Some(reason) = api.health.reason() {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "NET.RETROBRIDGE.NOT_READY",
            &format!("The bridge is starting ({reason}); try again shortly"),
        );
    }
    next.run(request).await
}

#[derive(Deserialize)]
struct UserQuery {
    user_id: Option<String>,
}

/// The Matrix user a request acts for, checked like a management room's owner.
fn user(api: &Api, query: Result<Query<UserQuery>, QueryRejection>) -> Result<String, ApiError> {
    let Query(query) = query.map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "M_INVALID_PARAM",
            format!("Bad query string: {e}"),
        )
    })?;
    let Some(user) = query.user_id else {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "M_MISSING_PARAM",
            "The user_id query parameter is missing (?user_id=@alice:example.org)",
        ));
    };
    if matrix_sdk::ruma::UserId::parse(user.as_str()).is_err() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "M_INVALID_PARAM",
            format!("{user:?} is not a Matrix user id (@name:server)"),
        ));
    }
    if api.bridge.is_ours(&user) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "M_FORBIDDEN",
            format!("{user} is one of the bridge's own users"),
        ));
    }
    if api.bridge.config.permission(&user) == Permission::None {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "M_FORBIDDEN",
            format!("{user} is not allowed to use this bridge"),
        ));
    }
    Ok(user)
}

/// A JSON object body.
fn object(body: &Bytes) -> Result<Map<String, Value>, ApiError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "M_NOT_JSON",
            format!("The body is not JSON: {e}"),
        )
    })?;
    match value {
        Value::Object(map) => Ok(map),
        _ => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "M_BAD_JSON",
            "The body must be a JSON object",
        )),
    }
}

/// A string field of the body, `None` when absent (or null).
fn optional<'a>(body: &'a Map<String, Value>, name: &str) -> Result<Option<&'a str>, ApiError> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "M_BAD_JSON",
            format!("{name} must be a string"),
        )),
    }
}

/// A string field the request needs, not empty.
fn required<'a>(body: &'a Map<String, Value>, name: &str) -> Result<&'a str, ApiError> {
    match optional(body, name)? {
        None => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "M_MISSING_PARAM",
            format!("The field {name} is missing"),
        )),
        Some(s) if s.trim().is_empty() => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "M_INVALID_PARAM",
            format!("The field {name} is empty"),
        )),
        Some(s) => Ok(s),
    }
}

fn login_json(info: &LoginInfo) -> Value {
    let mut out = json!({
        "network": info.network.as_str(),
        "network_name": info.network.display_name(),
        "id": info.id,
        "state": info.status.name(),
    });
    if let Some(reason) = info.status.reason() {
        out["reason"] = json!(reason);
    }
    if let Some(b) = &info.backlog {
        out["waiting"] = json!({
            "events": b.waiting,
            "oldest_seconds": b.oldest.as_secs(),
            "last_error": b.error,
        });
    }
    out
}

/// `GET /logins?user_id=`: the user's logins and their states.
async fn list(
    State(api): State<Api>,
    query: Result<Query<UserQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let user = user(&api, query)?;
    let logins: Vec<Value> = accounts::logins(&api.bridge, &user)
        .iter()
        .map(login_json)
        .collect();
    Ok(Json(json!({ "user_id": user, "logins": logins })).into_response())
}

/// `POST /login?user_id=` `{"network", "id", "password"}`: starts the login; its state
/// is then in `GET /logins`.
async fn login(
    State(api): State<Api>,
    query: Result<Query<UserQuery>, QueryRejection>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let user = user(&api, query)?;
    let body = object(&body)?;
    let network = accounts::parse_network(Some(required(&body, "network")?))?;
    let id = required(&body, "id")?;
    let password = required(&body, "password")?;
    let id = accounts::login(&api.bridge, &user, network, id, password).await?;
    tracing::info!(%user, %network, "provisioning: login started");
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({
            "user_id": user,
            "network": network.as_str(),
            "id": id,
            "state": "connecting",
        })),
    )
        .into_response())
}

/// `POST /logout?user_id=` `{"network"}`.
async fn logout(
    State(api): State<Api>,
    query: Result<Query<UserQuery>, QueryRejection>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let user = user(&api, query)?;
    let body = object(&body)?;
    let network = required(&body, "network")?;
    log_out(&api, &user, network).await
}

/// `DELETE /logins/{network}?user_id=`.
async fn logout_path(
    State(api): State<Api>,
    Path(network): Path<String>,
    query: Result<Query<UserQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let user = user(&api, query)?;
    log_out(&api, &user, &network).await
}

async fn log_out(api: &Api, user: &str, network: &str) -> Result<Response, ApiError> {
    let network = accounts::parse_network(Some(network))?;
    if !accounts::logout(&api.bridge, user, network).await {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "NET.RETROBRIDGE.NOT_LOGGED_IN",
            format!("{user} is not logged in to {}", network.display_name()),
        ));
    }
    tracing::info!(%user, %network, "provisioning: logged out");
    Ok(
        Json(json!({ "user_id": user, "network": network.as_str(), "logged_out": true }))
            .into_response(),
    )
}

/// `POST /status?user_id=` `{"state", "network"?}`: one network, or every running login.
async fn status(
    State(api): State<Api>,
    query: Result<Query<UserQuery>, QueryRejection>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let user = user(&api, query)?;
    let body = object(&body)?;
    let word = required(&body, "state")?;
    let Some(state) = accounts::parse_presence(word) else {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "M_INVALID_PARAM",
            format!("state {word:?} is not one of online, away, dnd, invisible"),
        ));
    };
    let network = optional(&body, "network")?
        .map(|n| accounts::parse_network(Some(n)))
        .transpose()?;
    let results = tokio::time::timeout(
        STATUS_WAIT,
        accounts::set_status(&api.bridge, &user, state, network),
    )
    .await
    .map_err(|_| {
        ApiError::new(
            StatusCode::GATEWAY_TIMEOUT,
            "NET.RETROBRIDGE.NETWORK_TIMEOUT",
            format!(
                "The network has not answered within {} s (a login that is connecting sets the status once connected)",
                STATUS_WAIT.as_secs()
            ),
        )
    })??;
    if network.is_some() {
        // One network asked for: its failure is the request's.
        if let Some((_, Err(e))) = results.first() {
            return Err(e.clone().into());
        }
    }
    let results: Vec<Value> = results
        .into_iter()
        .map(|(network, result)| match result {
            Ok(()) => json!({ "network": network.as_str(), "ok": true }),
            Err(e) => {
                let e = ApiError::from(e);
                json!({ "network": network.as_str(), "ok": false, "errcode": e.errcode, "error": e.message })
            }
        })
        .collect();
    tracing::info!(%user, "provisioning: status set");
    Ok(
        Json(json!({ "user_id": user, "state": word.to_lowercase(), "results": results }))
            .into_response(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    struct Server {
        url: String,
        http: reqwest::Client,
        health: Health,
        _dir: tempfile::TempDir,
    }

    async fn server() -> Server {
        let dir = tempfile::tempdir().unwrap();
        let extra = format!("provisioning: {{shared_secret: '{SECRET}'}}\n");
        let bridge = crate::fronts::matrix::testing::offline_bridge(dir.path(), &extra).await;
        let secret = bridge.config.provisioning_secret().unwrap().clone();
        let health = Health::starting("test");
        health.ready();
        let app = router(bridge, &secret, health.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}{PREFIX}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Server {
            url,
            http: reqwest::Client::new(),
            health,
            _dir: dir,
        }
    }

    impl Server {
        async fn call(
            &self,
            method: reqwest::Method,
            path: &str,
            token: Option<&str>,
            body: Option<&str>,
        ) -> (u16, Value) {
            let mut request = self.http.request(method, format!("{}{path}", self.url));
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            if let Some(body) = body {
                request = request.body(body.to_owned());
            }
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            (status, response.json().await.unwrap_or(Value::Null))
        }

        async fn post(&self, path: &str, body: &str) -> (u16, Value) {
            self.call(reqwest::Method::POST, path, Some(SECRET), Some(body))
                .await
        }
    }

    fn errcode(answer: &(u16, Value)) -> (u16, &str) {
        (answer.0, answer.1["errcode"].as_str().unwrap_or_default())
    }

    #[tokio::test]
    async fn the_secret_is_required_and_compared() {
        let s = server().await;
        let path = "/logins?user_id=@alice:localhost";
        let get = reqwest::Method::GET;
        let none = s.call(get.clone(), path, None, None).await;
        assert_eq!(errcode(&none), (401, "M_MISSING_TOKEN"));
        let wrong = s.call(get.clone(), path, Some("x"), None).await;
        assert_eq!(errcode(&wrong), (401, "M_UNKNOWN_TOKEN"));
        let near = format!("{SECRET}0");
        let wrong = s.call(get.clone(), path, Some(&near), None).await;
        assert_eq!(errcode(&wrong), (401, "M_UNKNOWN_TOKEN"));
        let ok = s.call(get.clone(), path, Some(SECRET), None).await;
        assert_eq!(
            ok,
            (200, json!({ "user_id": "@alice:localhost", "logins": [] }))
        );
        // Unknown paths and methods are answered in JSON, after the secret.
        let unknown = s.call(get.clone(), "/nothing", None, None).await;
        assert_eq!(errcode(&unknown), (401, "M_MISSING_TOKEN"));
        let unknown = s.call(get.clone(), "/nothing", Some(SECRET), None).await;
        assert_eq!(errcode(&unknown), (404, "M_UNRECOGNIZED"));
        let method = s.call(get, "/login", Some(SECRET), None).await;
        assert_eq!(errcode(&method), (405, "M_UNRECOGNIZED"));
    }

    #[tokio::test]
    async fn the_user_needs_permission() {
        let s = server().await;
        let get = |path: &'static str| s.call(reqwest::Method::GET, path, Some(SECRET), None);
        assert_eq!(errcode(&get("/logins").await), (400, "M_MISSING_PARAM"));
        assert_eq!(
            errcode(&get("/logins?user_id=alice").await),
            (400, "M_INVALID_PARAM")
        );
        let stranger = get("/logins?user_id=@eve:localhost").await;
        assert_eq!(errcode(&stranger), (403, "M_FORBIDDEN"));
        assert!(stranger.1["error"]
            .as_str()
            .unwrap()
            .contains("not allowed"));
        let bot = get("/logins?user_id=@retrobridgebot:localhost").await;
        assert_eq!(errcode(&bot), (403, "M_FORBIDDEN"));
        // Percent-encoded, as curl's --data-urlencode writes it.
        let admin = get("/logins?user_id=%40boss%3Alocalhost").await;
        assert_eq!(admin.0, 200, "{admin:?}");
    }

    #[tokio::test]
    async fn bad_bodies_get_clear_errors() {
        let s = server().await;
        let login = "/login?user_id=@alice:localhost";
        assert_eq!(errcode(&s.post(login, "{nope").await), (400, "M_NOT_JSON"));
        assert_eq!(errcode(&s.post(login, "[1]").await), (400, "M_BAD_JSON"));
        let missing = s.post(login, r#"{"network": "mig33", "id": "bob"}"#).await;
        assert_eq!(errcode(&missing), (400, "M_MISSING_PARAM"));
        assert!(missing.1["error"].as_str().unwrap().contains("password"));
        let typed = s
            .post(login, r#"{"network": "mig33", "id": 5, "password": "x"}"#)
            .await;
        assert_eq!(errcode(&typed), (400, "M_BAD_JSON"));
        let unknown = s
            .post(login, r#"{"network": "aim", "id": "bob", "password": "x"}"#)
            .await;
        assert_eq!(errcode(&unknown), (400, "NET.RETROBRIDGE.UNKNOWN_NETWORK"));
        let disabled = s
            .post(login, r#"{"network": "icq", "id": "1", "password": "x"}"#)
            .await;
        assert_eq!(
            errcode(&disabled),
            (400, "NET.RETROBRIDGE.NETWORK_UNAVAILABLE")
        );
        assert_eq!(disabled.1["error"], "ICQ is not enabled on this bridge.");
        let status = s
            .post("/status?user_id=@alice:localhost", r#"{"state": "asleep"}"#)
            .await;
        assert_eq!(errcode(&status), (400, "M_INVALID_PARAM"));
        let status = s
            .post("/status?user_id=@alice:localhost", r#"{"state": "away"}"#)
            .await;
        assert_eq!(errcode(&status), (404, "NET.RETROBRIDGE.NOT_LOGGED_IN"));
        let logout = s
            .post(
                "/logout?user_id=@alice:localhost",
                r#"{"network": "mig33"}"#,
            )
            .await;
        assert_eq!(errcode(&logout), (404, "NET.RETROBRIDGE.NOT_LOGGED_IN"));
        let logout = s
            .call(
                reqwest::Method::DELETE,
                "/logins/aim?user_id=@alice:localhost",
                Some(SECRET),
                None,
            )
            .await;
        assert_eq!(errcode(&logout), (400, "NET.RETROBRIDGE.UNKNOWN_NETWORK"));
    }

    #[tokio::test]
    async fn nothing_is_done_before_the_bridge_is_ready() {
        let s = server().await;
        s.health.not_ready("waiting for the homeserver");
        let answer = s
            .call(
                reqwest::Method::GET,
                "/logins?user_id=@alice:localhost",
                Some(SECRET),
                None,
            )
            .await;
        assert_eq!(errcode(&answer), (503, "NET.RETROBRIDGE.NOT_READY"));
        assert!(answer.1["error"]
            .as_str()
            .unwrap()
            .contains("waiting for the homeserver"));
    }
}
