//! Client-server calls as the bot or as a ghost.
//!
//! matrix-sdk has no appservice mode, so the client is the bot with a session restored
//! from the as_token, and every call made for a ghost goes through [`AsUser`], which adds
//! the appservice `user_id` identity assertion (and optionally the `ts` timestamp
//! massaging parameter) to the request's URL.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use matrix_sdk::authentication::matrix::MatrixSession;
use matrix_sdk::config::RequestConfig;
use matrix_sdk::ruma::api::client::account::register;
use matrix_sdk::ruma::api::client::{
    context::get_context,
    media::create_content,
    membership::{invite_user, join_room_by_id, kick_user, leave_room},
    message::{get_message_events, send_message_event},
    presence::set_presence,
    profile::set_profile_field,
    redact::redact_event,
    room::create_room,
    state::{get_state_event_for_key, send_state_event},
    typing::create_typing_event,
};
use matrix_sdk::ruma::api::error::ErrorKind;
use matrix_sdk::ruma::api::{
    auth_scheme::{AuthScheme, SendAccessToken},
    error::IntoHttpError,
    path_builder::PathBuilder,
    AppserviceUserIdentity, Metadata, OutgoingRequest,
};
use matrix_sdk::ruma::events::room::message::RoomMessageEventContent;
use matrix_sdk::ruma::events::{AnyMessageLikeEventContent, AnyStateEventContent, StateEventType};
use matrix_sdk::ruma::presence::PresenceState;
use matrix_sdk::ruma::profile::ProfileFieldValue;
use matrix_sdk::ruma::serde::Raw;
use matrix_sdk::ruma::{
    EventId, MilliSecondsSinceUnixEpoch, OwnedEventId, OwnedMxcUri, OwnedRoomId,
    OwnedTransactionId, OwnedUserId, RoomId, TransactionId, UInt, UserId,
};
use matrix_sdk::{Client, HttpError, SessionMeta, SessionTokens};

use ruma::exports::bytes::BufMut;
use ruma::exports::http;

/// A request sent for a particular user of the appservice (ghost or bot).
#[derive(Debug, Clone)]
pub struct AsUser<R> {
    inner: R,
    user_id: Option<OwnedUserId>,
    ts: Option<MilliSecondsSinceUnixEpoch>,
}

impl<R> AsUser<R> {
    pub fn new(inner: R, user_id: Option<&UserId>) -> Self {
        AsUser {
            inner,
            user_id: user_id.map(Into::into),
            ts: None,
        }
    }
}

impl<R: Metadata> Metadata for AsUser<R> {
    const METHOD: http::Method = R::METHOD;
    const RATE_LIMITED: bool = R::RATE_LIMITED;
    type Authentication = R::Authentication;
    type PathBuilder = R::PathBuilder;
    const PATH_BUILDER: Self::PathBuilder = R::PATH_BUILDER;
}

impl<R: OutgoingRequest> OutgoingRequest for AsUser<R> {
    type EndpointError = R::EndpointError;
    type IncomingResponse = R::IncomingResponse;

    fn try_into_http_request<T: Default + BufMut + AsRef<[u8]>>(
        self,
        base_url: &str,
        authentication_input: <Self::Authentication as AuthScheme>::Input<'_>,
        path_builder_input: <Self::PathBuilder as PathBuilder>::Input<'_>,
    ) -> Result<http::Request<T>, IntoHttpError> {
        let mut request =
            self.inner
                .try_into_http_request(base_url, authentication_input, path_builder_input)?;
        if let Some(user_id) = &self.user_id {
            AppserviceUserIdentity::new(user_id).maybe_add_to_uri(request.uri_mut())?;
        }
        if let Some(ts) = self.ts {
            let uri = request.uri().to_string();
            let sep = if uri.contains('?') { '&' } else { '?' };
            *request.uri_mut() = format!("{uri}{sep}ts={}", ts.get())
                .parse()
                .map_err(|e: http::uri::InvalidUri| IntoHttpError::from(http::Error::from(e)))?;
        }
        Ok(request)
    }
}

/// Sends the as_token on endpoints where it is optional (registration): matrix-sdk only
/// sends tokens where they are required.
#[derive(Debug, Clone)]
pub struct WithAppserviceToken<R>(pub R);

impl<R: Metadata> Metadata for WithAppserviceToken<R> {
    const METHOD: http::Method = R::METHOD;
    const RATE_LIMITED: bool = R::RATE_LIMITED;
    type Authentication = R::Authentication;
    type PathBuilder = R::PathBuilder;
    const PATH_BUILDER: Self::PathBuilder = R::PATH_BUILDER;
}

impl<R> OutgoingRequest for WithAppserviceToken<R>
where
    R: OutgoingRequest,
    for<'a> R::Authentication: AuthScheme<Input<'a> = SendAccessToken<'a>>,
{
    type EndpointError = R::EndpointError;
    type IncomingResponse = R::IncomingResponse;

    fn try_into_http_request<T: Default + BufMut + AsRef<[u8]>>(
        self,
        base_url: &str,
        authentication_input: SendAccessToken<'_>,
        path_builder_input: <Self::PathBuilder as PathBuilder>::Input<'_>,
    ) -> Result<http::Request<T>, IntoHttpError> {
        let token = match authentication_input {
            SendAccessToken::IfRequired(t) => SendAccessToken::Appservice(t),
            other => other,
        };
        self.0
            .try_into_http_request(base_url, token, path_builder_input)
    }
}

pub type MatrixResult<T> = Result<T, HttpError>;

/// Sends `$request` to the homeserver: every request goes through here (or
/// [`observed!`]), counted and timed per endpoint kind for the metrics. (matrix-sdk's
/// send bounds name private traits, so these are macros over concrete request types
/// rather than generic functions.)
macro_rules! send {
    ($self:ident, $request:expr) => {{
        let request = $request;
        let kind = crate::metrics::endpoint_kind(&request);
        let _turn = $self.turn().await;
        observed!(kind, $self.client.send(request))
    }};
}

/// Awaits a homeserver call of endpoint `$kind`, recording it in the metrics.
macro_rules! observed {
    ($kind:expr, $call:expr) => {{
        let started = std::time::Instant::now();
        let result = $call.await;
        crate::metrics::homeserver_request(
            $kind,
            started.elapsed(),
            result
                .as_ref()
                .err()
                .map($crate::fronts::matrix::client::error_class),
        );
        result
    }};
}

/// Sends `$request` as `$user`.
macro_rules! send_as {
    ($self:ident, $request:expr, $user:expr) => {
        send!($self, AsUser::new($request, $self.who($user)))
    };
}

/// Whether an error is the homeserver saying no (as opposed to not answering).
pub fn error_kind(e: &HttpError) -> Option<ErrorKind> {
    e.client_api_error_kind().cloned()
}

/// The content key carrying an outbox entry's transaction id in the events the bridge
/// sends, so that after a homeserver restart (which forgets transaction ids of
/// appservice users) a send whose outcome is unknown can be found instead of repeated.
pub const TXN_MARKER: &str = "net.retrobridge.txn_id";

/// Marks a legacy contact's nudge (an `m.emote`, "nudged you"); a user's `/me nudges`
/// in a portal is the nudge the other way.
pub const NUDGE_MARKER: &str = "net.retrobridge.nudge";

pub use crate::core::front::{Failure, FailureKind};

/// Every message the bridge sends says whom it mentions (nobody, so far): with the key
/// present, homeservers and clients ignore the old body-based rules, so `@room` or a
/// user's name in a legacy contact's text pings nobody (MSC3952, Matrix 1.7).
pub const MENTIONS: &str = "m.mentions";

/// Sorts a homeserver error into transient, too large or permanent.
pub fn classify(e: &HttpError) -> Failure {
    if let Some(api) = e.as_client_api_error() {
        let status = api.status_code.as_u16();
        let kind = api.error_kind();
        let errcode = kind.map(|k| k.errcode().to_string());
        let failure = |kind, uncertain| Failure {
            kind,
            uncertain,
            code: errcode.clone(),
            message: api.to_string(),
        };
        return match kind {
            Some(ErrorKind::LimitExceeded(data)) => {
                let retry_after = data.retry_after.as_ref().map(|r| match r {
                    ruma::api::error::RetryAfter::Delay(d) => *d,
                    ruma::api::error::RetryAfter::DateTime(t) => t
                        .duration_since(std::time::SystemTime::now())
                        .unwrap_or_default(),
                });
                failure(FailureKind::Transient { retry_after }, false)
            }
            Some(ErrorKind::TooLarge) => failure(FailureKind::TooLarge, false),
            _ if status == 413 => failure(FailureKind::TooLarge, false),
            _ if status == 429 => failure(FailureKind::Transient { retry_after: None }, false),
            // 5xx: the homeserver (or a proxy in front of it) failed; it may have acted.
            _ if status >= 500 => failure(FailureKind::Transient { retry_after: None }, true),
            _ => failure(FailureKind::Permanent, false),
        };
    }
    match e {
        HttpError::Reqwest(r) => Failure {
            kind: FailureKind::Transient { retry_after: None },
            // A refused or failed connection never reached the homeserver.
            uncertain: !r.is_connect(),
            code: None,
            message: format!("the homeserver is unreachable: {}", error_chain(r)),
        },
        // An answer that is not what the endpoint returns: asking again will not help.
        other => Failure::permanent(other.to_string()),
    }
}

/// An error with its causes ("error sending request: connection refused").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let line = cause.to_string();
        if !text.contains(&line) {
            text.push_str(": ");
            text.push_str(&line);
        }
        source = cause.source();
    }
    text
}

/// Options for a room the bridge creates.
#[derive(Debug, Default, Clone)]
pub struct NewRoom {
    pub name: Option<String>,
    pub topic: Option<String>,
    pub invite: Vec<OwnedUserId>,
    pub is_direct: bool,
    /// Extra power levels (user id -> level) on top of the creator's 100.
    pub power_users: Vec<(OwnedUserId, i64)>,
    /// The power needed to invite (the preset's 0 when `None`).
    pub invite_level: Option<i64>,
    /// Create a space instead of a room.
    pub space: bool,
    pub initial_state: Vec<serde_json::Value>,
}

/// The bot's client; `as_user` turns any call into a ghost's.
#[derive(Clone, Debug)]
pub struct MatrixClient {
    client: Client,
    bot: OwnedUserId,
    /// The homeserver refuses the creator in power-level overrides (room version 12+).
    creator_power_refused: Arc<AtomicBool>,
    /// Every request's time limit.
    timeout: Duration,
    /// Requests under way: at most [`MAX_IN_FLIGHT`].
    in_flight: Arc<tokio::sync::Semaphore>,
}

/// Requests to the homeserver under way at once. Each is a connection: without a bound,
/// thousands of logins coming up together (each with contacts to invite, join and set
/// present) opened one per request, past the process's open-files limit, and a
/// homeserver sees them all at once. The others wait their turn (still bounded by
/// `homeserver.request_timeout_seconds` once sent).
pub const MAX_IN_FLIGHT: usize = 64;

impl MatrixClient {
    /// `timeout` bounds every request: a homeserver that hangs must not hang the bridge
    /// (the callers retry what matters, with transaction ids where the API has them).
    pub async fn new(
        homeserver: &str,
        as_token: &str,
        bot: OwnedUserId,
        timeout: Duration,
    ) -> anyhow::Result<MatrixClient> {
        // Retries are the callers' business: they know what is idempotent and what the
        // user should hear about (matrix-sdk would retry 5xx for 15 minutes, silently).
        let config = RequestConfig::new().disable_retry().timeout(timeout);
        let client = Client::builder()
            .homeserver_url(homeserver)
            .request_config(config)
            .build()
            .await?;
        let session = MatrixSession {
            meta: SessionMeta {
                user_id: bot.clone(),
                device_id: "RETROBRIDGE".into(),
            },
            tokens: SessionTokens {
                access_token: as_token.into(),
                refresh_token: None,
            },
        };
        client
            .matrix_auth()
            .restore_session(session, Default::default())
            .await?;
        Ok(MatrixClient {
            client,
            bot,
            creator_power_refused: Arc::default(),
            timeout,
            in_flight: Arc::new(tokio::sync::Semaphore::new(MAX_IN_FLIGHT)),
        })
    }

    /// Waits for a request's turn (see [`MAX_IN_FLIGHT`]).
    async fn turn(&self) -> tokio::sync::SemaphorePermit<'_> {
        self.in_flight.acquire().await.expect("never closed")
    }

    pub fn bot(&self) -> &UserId {
        &self.bot
    }

    fn who<'a>(&self, user: &'a UserId) -> Option<&'a UserId> {
        // The bot is the access token's own user: no assertion needed.
        (user != self.bot).then_some(user)
    }

    /// Waits until the homeserver answers, with exponential backoff (logged).
    /// Waits until the homeserver answers (`/versions`, which needs no token), with
    /// exponential backoff (logged). Whether it knows the bridge's token shows next.
    pub async fn wait_for_homeserver(&self, give_up_after: Duration) -> anyhow::Result<()> {
        let start = std::time::Instant::now();
        let mut delay = Duration::from_millis(200);
        let url = format!(
            "{}/_matrix/client/versions",
            self.client.homeserver().as_str().trim_end_matches('/')
        );
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()?;
        loop {
            let e = match http.get(&url).send().await {
                Ok(_) => return Ok(()),
                Err(e) => e,
            };
            if start.elapsed() >= give_up_after {
                anyhow::bail!("the homeserver did not answer within {give_up_after:?}: {e}");
            }
            tracing::warn!(
                "homeserver not reachable yet ({}); retrying in {delay:?}",
                error_chain(&e)
            );
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(10));
        }
    }

    /// Registers an appservice user; an existing one is fine.
    pub async fn ensure_registered(&self, user: &UserId) -> MatrixResult<()> {
        let mut request = register::v3::Request::new();
        request.username = Some(user.localpart().to_owned());
        request.inhibit_login = true;
        request.login_type = Some(register::LoginType::ApplicationService);
        match send!(self, WithAppserviceToken(request)) {
            Ok(_) => Ok(()),
            Err(e) if matches!(error_kind(&e), Some(ErrorKind::UserInUse)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    pub async fn set_display_name(&self, user: &UserId, name: &str) -> MatrixResult<()> {
        let request = set_profile_field::v3::Request::new(
            user.into(),
            ProfileFieldValue::DisplayName(name.into()),
        );
        send_as!(self, request, user).map(drop)
    }

    /// Uploads a file to the media repository as `user`; its `mxc://` address.
    pub async fn upload(
        &self,
        user: &UserId,
        data: Vec<u8>,
        content_type: &str,
        filename: &str,
    ) -> MatrixResult<OwnedMxcUri> {
        let mut request = create_content::v3::Request::new(data);
        request.content_type = Some(content_type.to_owned());
        request.filename = Some(filename.to_owned());
        send_as!(self, request, user).map(|r| r.content_uri)
    }

    /// A user's avatar (`mxc://`), `None` when they have none.
    pub async fn avatar_url_of(&self, user: &UserId) -> MatrixResult<Option<OwnedMxcUri>> {
        use matrix_sdk::ruma::api::client::profile::{get_profile_field, AvatarUrl};
        let request = get_profile_field::v3::Request::new_static::<AvatarUrl>(user.into());
        match send!(self, request) {
            Ok(response) => Ok(response.value),
            Err(e) if matches!(error_kind(&e), Some(ErrorKind::NotFound)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub async fn set_avatar_url(&self, user: &UserId, url: OwnedMxcUri) -> MatrixResult<()> {
        let request =
            set_profile_field::v3::Request::new(user.into(), ProfileFieldValue::AvatarUrl(url));
        send_as!(self, request, user).map(drop)
    }

    pub async fn create_room(
        &self,
        creator: &UserId,
        options: NewRoom,
    ) -> MatrixResult<OwnedRoomId> {
        // Rooms of version 12 and later give their creator unlimited power and refuse
        // a power-levels `users` entry for them; older versions need the entry (the
        // override replaces the preset's `users`). Try with it, and without on that refusal.
        // The homeserver's answer is remembered, so only the first room pays for a retry.
        use std::sync::atomic::Ordering::Relaxed;
        let with_creator = !self.creator_power_refused.load(Relaxed);
        let first = self
            .create_room_once(creator, options.clone(), with_creator)
            .await;
        let result = match first {
            Err(e)
                if with_creator && e.to_string().contains("must not appear in content.users") =>
            {
                tracing::debug!(%creator, "creating the room again without the creator's power level");
                self.creator_power_refused.store(true, Relaxed);
                self.create_room_once(creator, options, false).await
            }
            other => other,
        };
        tracing::debug!(%creator, ?result, "room created");
        result
    }

    async fn create_room_once(
        &self,
        creator: &UserId,
        options: NewRoom,
        creator_in_users: bool,
    ) -> MatrixResult<OwnedRoomId> {
        let mut request = create_room::v3::Request::new();
        request.name = options.name;
        request.topic = options.topic;
        request.invite = options.invite;
        request.is_direct = options.is_direct;
        request.preset = Some(create_room::v3::RoomPreset::PrivateChat);
        let mut power = serde_json::Map::new();
        if !options.power_users.is_empty() {
            let mut users = serde_json::Map::new();
            if creator_in_users {
                users.insert(creator.to_string(), 100.into());
            }
            for (u, level) in options.power_users {
                if creator_in_users || u.as_str() != creator.as_str() {
                    users.insert(u.to_string(), level.into());
                }
            }
            power.insert("users".into(), users.into());
        }
        if let Some(level) = options.invite_level {
            power.insert("invite".into(), level.into());
        }
        if !power.is_empty() {
            request.power_level_content_override = Some(Raw::from_json(
                serde_json::value::to_raw_value(&power).expect("json"),
            ));
        }
        if options.space {
            request.creation_content = Some(Raw::from_json(
                serde_json::value::to_raw_value(&serde_json::json!({ "type": "m.space" }))
                    .expect("json"),
            ));
        }
        request.initial_state = options
            .initial_state
            .into_iter()
            .map(|s| Raw::from_json(serde_json::value::to_raw_value(&s).expect("json")))
            .collect();
        Ok(send_as!(self, request, creator)?.room_id)
    }

    pub async fn invite(
        &self,
        inviter: &UserId,
        room: &RoomId,
        invitee: &UserId,
    ) -> MatrixResult<()> {
        let recipient = invite_user::v3::InviteUserId::new(invitee.into()).into();
        send_as!(
            self,
            invite_user::v3::Request::new(room.into(), recipient),
            inviter
        )
        .map(drop)
    }

    pub async fn join(&self, user: &UserId, room: &RoomId) -> MatrixResult<()> {
        send_as!(self, join_room_by_id::v3::Request::new(room.into()), user).map(drop)
    }

    pub async fn kick(
        &self,
        by: &UserId,
        room: &RoomId,
        user: &UserId,
        reason: &str,
    ) -> MatrixResult<()> {
        let mut request = kick_user::v3::Request::new(room.into(), user.into());
        request.reason = Some(reason.into());
        send_as!(self, request, by).map(drop)
    }

    pub async fn leave(&self, user: &UserId, room: &RoomId) -> MatrixResult<()> {
        send_as!(self, leave_room::v3::Request::new(room.into()), user).map(drop)
    }

    /// Sends a message; `txn_id` makes retries idempotent; `ts` back-dates it.
    pub async fn send_message(
        &self,
        sender: &UserId,
        room: &RoomId,
        content: RoomMessageEventContent,
        txn_id: Option<&TransactionId>,
        ts: Option<u64>,
    ) -> MatrixResult<OwnedEventId> {
        let txn_id: OwnedTransactionId = txn_id.map(Into::into).unwrap_or_else(TransactionId::new);
        let mut content = content;
        // Explicitly nobody mentioned: see [`MENTIONS`].
        content
            .mentions
            .get_or_insert_with(matrix_sdk::ruma::events::Mentions::new);
        let content = AnyMessageLikeEventContent::RoomMessage(content);
        let request = send_message_event::v3::Request::new(room.into(), txn_id, &content)
            .map_err(|e| HttpError::IntoHttp(e.into()))?;
        let mut request = AsUser::new(request, self.who(sender));
        request.ts = ts.and_then(UInt::new).map(MilliSecondsSinceUnixEpoch);
        Ok(send!(self, request)?.event_id)
    }

    /// Sends an `m.room.message` whose content is given as JSON (with extra keys such as
    /// [`TXN_MARKER`], and [`MENTIONS`], which every message carries); `txn_id` makes
    /// retries idempotent; `ts` back-dates it.
    pub async fn send_message_json(
        &self,
        sender: &UserId,
        room: &RoomId,
        content: &serde_json::Value,
        txn_id: &str,
        ts: Option<u64>,
    ) -> MatrixResult<OwnedEventId> {
        // The bridge's busiest request, sent on matrix-sdk's HTTP client directly: the
        // SDK's request machinery costs more CPU than the rest of a message's bridging.
        // The answer is read with ruma's own response type, so errors are the same.
        let mut url = format!(
            "{}/_matrix/client/v3/rooms/{}/send/m.room.message/{}",
            self.client.homeserver().as_str().trim_end_matches('/'),
            percent_encode(room.as_str()),
            percent_encode(txn_id)
        );
        let mut sep = '?';
        if let Some(user) = self.who(sender) {
            url.push_str(&format!("{sep}user_id={}", percent_encode(user.as_str())));
            sep = '&';
        }
        if let Some(ts) = ts {
            url.push_str(&format!("{sep}ts={ts}"));
        }
        debug_assert!(content.get(MENTIONS).is_some(), "says whom it mentions");
        let body = serde_json::to_vec(content).expect("json");
        let started = std::time::Instant::now();
        let result = self.put_json(url, body).await.and_then(|response| {
            use ruma::api::IncomingResponse;
            send_message_event::v3::Response::try_from_http_response(response)
                .map(|r| r.event_id)
                .map_err(HttpError::from)
        });
        crate::metrics::homeserver_request(
            "send_message_event",
            started.elapsed(),
            result.as_ref().err().map(error_class),
        );
        result
    }

    /// `PUT` with a JSON body and the bot's token; the answer as an `http::Response` for
    /// ruma's response types.
    async fn put_json(&self, url: String, body: Vec<u8>) -> MatrixResult<http::Response<Vec<u8>>> {
        let token = self.client.access_token().unwrap_or_default();
        let _turn = self.turn().await;
        let response = self
            .client
            .http_client()
            .put(url)
            .bearer_auth(token)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .timeout(self.timeout)
            .body(body)
            .send()
            .await?;
        let mut answer = http::Response::builder().status(response.status().as_u16());
        for (name, value) in response.headers() {
            answer = answer.header(name.as_str(), value.as_bytes());
        }
        let bytes = response.bytes().await?;
        answer
            .body(bytes.to_vec())
            .map_err(|e| HttpError::IntoHttp(IntoHttpError::from(e)))
    }

    /// The event `sender` sent in `room` with [`TXN_MARKER`] `txn_id`, among the room's
    /// latest `limit` events (looked at as `sender`, who is a member).
    pub async fn find_sent(
        &self,
        sender: &UserId,
        room: &RoomId,
        txn_id: &str,
        limit: u32,
    ) -> MatrixResult<Option<OwnedEventId>> {
        let mut request = get_message_events::v3::Request::backward(room.into());
        request.limit = UInt::from(limit);
        let response = send_as!(self, request, sender)?;
        for raw in response.chunk {
            let Ok(event) = raw.deserialize_as::<serde_json::Value>() else {
                continue;
            };
            if event["sender"] == sender.as_str() && event["content"][TXN_MARKER] == txn_id {
                if let Some(id) = event["event_id"].as_str() {
                    return Ok(OwnedEventId::try_from(id).ok());
                }
            }
        }
        Ok(None)
    }

    /// The latest `limit` events of `room`, oldest first (as the bot, a member).
    pub async fn latest_events(
        &self,
        room: &RoomId,
        limit: u32,
    ) -> MatrixResult<Vec<serde_json::Value>> {
        let mut request = get_message_events::v3::Request::backward(room.into());
        request.limit = UInt::from(limit);
        let response = send!(self, request)?;
        let mut events: Vec<serde_json::Value> = response
            .chunk
            .iter()
            .filter_map(|e| e.deserialize_as::<serde_json::Value>().ok())
            .collect();
        events.reverse();
        Ok(events)
    }

    /// Up to `limit` events just before `event` in `room`, oldest first (`/context`, as
    /// the bot, which must be in the room).
    pub async fn events_before(
        &self,
        room: &RoomId,
        event: &EventId,
        limit: u32,
    ) -> MatrixResult<Vec<serde_json::Value>> {
        let mut request = get_context::v3::Request::new(room.into(), event.into());
        request.limit = UInt::from(limit);
        let response = send!(self, request)?;
        let mut events: Vec<serde_json::Value> = response
            .events_before
            .iter()
            .filter_map(|e| e.deserialize_as::<serde_json::Value>().ok())
            .collect();
        events.reverse();
        Ok(events)
    }

    /// Asks the homeserver to call the bridge's ping endpoint (it also retries the
    /// transactions it holds for us at once). Returns the round trip it measured, or
    /// the homeserver's reason (`M_CONNECTION_FAILED: ...`). Sent by hand: the endpoint
    /// takes the appservice token, which matrix-sdk does not send for it.
    pub async fn ping_appservice(&self, appservice_id: &str) -> Result<Duration, String> {
        let url = format!(
            "{}/_matrix/client/v1/appservice/{}/ping",
            self.client.homeserver().as_str().trim_end_matches('/'),
            percent_encode(appservice_id)
        );
        let token = self.client.access_token().unwrap_or_default();
        let response = reqwest::Client::new()
            .post(url)
            .bearer_auth(token)
            .json(&serde_json::json!({ "transaction_id": TransactionId::new().to_string() }))
            .send()
            .await
            .map_err(|e| error_chain(&e))?;
        let status = response.status();
        let body: serde_json::Value = response.json().await.unwrap_or_default();
        if status.is_success() {
            let ms = body["duration_ms"].as_u64().unwrap_or_default();
            return Ok(Duration::from_millis(ms));
        }
        Err(format!(
            "{} {}: {}",
            status.as_u16(),
            body["errcode"].as_str().unwrap_or("no error code"),
            body["error"].as_str().unwrap_or("no reason given")
        ))
    }

    pub async fn redact(
        &self,
        user: &UserId,
        room: &RoomId,
        event: OwnedEventId,
        reason: &str,
    ) -> MatrixResult<()> {
        let mut request = redact_event::v3::Request::new(room.into(), event, TransactionId::new());
        request.reason = Some(reason.into());
        send_as!(self, request, user).map(drop)
    }

    pub async fn set_presence(
        &self,
        user: &UserId,
        state: PresenceState,
        status: Option<String>,
    ) -> MatrixResult<()> {
        let mut request = set_presence::v3::Request::new(user.into(), state);
        request.status_msg = status;
        send_as!(self, request, user).map(drop)
    }

    pub async fn set_typing(&self, user: &UserId, room: &RoomId, typing: bool) -> MatrixResult<()> {
        use create_typing_event::v3::Typing;
        let state = if typing {
            Typing::Yes(create_typing_event::v3::TypingInfo::new(
                Duration::from_secs(30),
            ))
        } else {
            Typing::No
        };
        send_as!(
            self,
            create_typing_event::v3::Request::new(user.into(), room.into(), state),
            user
        )
        .map(drop)
    }

    /// A state event's content as JSON, or `None` if the room has none.
    pub async fn state(
        &self,
        room: &RoomId,
        event_type: &str,
        state_key: &str,
    ) -> MatrixResult<Option<serde_json::Value>> {
        let request = get_state_event_for_key::v3::Request::new(
            room.into(),
            StateEventType::from(event_type),
            state_key.into(),
        );
        match send!(self, request) {
            Ok(r) => Ok(serde_json::from_str(r.event_or_content.get()).ok()),
            Err(e) if matches!(error_kind(&e), Some(ErrorKind::NotFound)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// A state event in full (sender included), or `None` if the room has none.
    pub async fn state_event(
        &self,
        room: &RoomId,
        event_type: &str,
        state_key: &str,
    ) -> MatrixResult<Option<serde_json::Value>> {
        let mut request = get_state_event_for_key::v3::Request::new(
            room.into(),
            StateEventType::from(event_type),
            state_key.into(),
        );
        request.format = get_state_event_for_key::v3::StateEventFormat::Event;
        match send!(self, request) {
            Ok(r) => Ok(serde_json::from_str(r.event_or_content.get()).ok()),
            Err(e) if matches!(error_kind(&e), Some(ErrorKind::NotFound)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub async fn send_state(
        &self,
        user: &UserId,
        room: &RoomId,
        event_type: &str,
        state_key: &str,
        content: serde_json::Value,
    ) -> MatrixResult<()> {
        let raw: Raw<AnyStateEventContent> =
            Raw::from_json(serde_json::value::to_raw_value(&content).expect("json"));
        let request = send_state_event::v3::Request::new_raw(
            room.into(),
            event_type.into(),
            state_key.into(),
            raw,
        );
        send_as!(self, request, user).map(drop)
    }
}

/// A path segment, percent-encoded (appservice ids are simple, but not guaranteed so).
fn percent_encode(segment: &str) -> String {
    segment
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// A bounded name for what went wrong with a homeserver request, for the metrics.
pub fn error_class(e: &matrix_sdk::HttpError) -> &'static str {
    if let Some(api) = e.as_client_api_error() {
        return match api.status_code.as_u16() {
            413 => "too_large",
            429 => "rate_limited",
            s if s >= 500 => "server",
            _ if matches!(
                api.error_kind(),
                Some(matrix_sdk::ruma::api::error::ErrorKind::TooLarge)
            ) =>
            {
                "too_large"
            }
            _ => "refused",
        };
    }
    match e {
        matrix_sdk::HttpError::Reqwest(_) => "unreachable",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::AsUser;
    use matrix_sdk::ruma::api::client::{membership::join_room_by_id, message::send_message_event};

    #[test]
    fn endpoint_kinds_are_the_request_modules() {
        assert_eq!(
            crate::metrics::kind_of::<send_message_event::v3::Request>(),
            "send_message_event"
        );
        assert_eq!(
            crate::metrics::kind_of::<AsUser<join_room_by_id::v3::Request>>(),
            "join_room_by_id"
        );
        assert_eq!(crate::metrics::kind_of::<String>(), "other");
    }

    /// However many requests are made at once, the homeserver sees at most
    /// `MAX_IN_FLIGHT` of them (and connections) at a time, and every one is answered.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn at_most_max_in_flight_requests_reach_the_homeserver_at_once() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::sync::Arc;

        #[derive(Default)]
        struct Seen {
            now: AtomicUsize,
            most: AtomicUsize,
            answered: AtomicUsize,
        }
        let seen = Arc::new(Seen::default());
        let counting = seen.clone();
        // matrix-sdk asks for the versions first (not counted).
        let versions = || async { axum::Json(serde_json::json!({"versions": ["v1.11"]})) };
        let app = axum::Router::new()
            .route("/_matrix/client/versions", axum::routing::get(versions))
            .fallback(move || {
                let seen = counting.clone();
                async move {
                    let now = seen.now.fetch_add(1, Ordering::SeqCst) + 1;
                    seen.most.fetch_max(now, Ordering::SeqCst);
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                    seen.now.fetch_sub(1, Ordering::SeqCst);
                    seen.answered.fetch_add(1, Ordering::SeqCst);
                    (
                        axum::http::StatusCode::NOT_FOUND,
                        axum::Json(serde_json::json!({"errcode": "M_NOT_FOUND", "error": "none"})),
                    )
                }
            });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        let client = super::MatrixClient::new(
            &url,
            "as-token",
            "@bot:localhost".try_into().unwrap(),
            std::time::Duration::from_secs(30),
        )
        .await
        .unwrap();
        let room: matrix_sdk::ruma::OwnedRoomId = "!r:localhost".try_into().unwrap();
        let requests = 3 * super::MAX_IN_FLIGHT;
        let mut all = tokio::task::JoinSet::new();
        for i in 0..requests {
            let (client, room) = (client.clone(), room.clone());
            all.spawn(async move {
                client
                    .state_event(&room, "m.room.name", &i.to_string())
                    .await
            });
        }
        while let Some(answer) = all.join_next().await {
            assert_eq!(answer.unwrap().unwrap(), None, "404 is no such state");
        }
        assert_eq!(seen.answered.load(Ordering::SeqCst), requests);
        let most = seen.most.load(Ordering::SeqCst);
        assert!(
            most <= super::MAX_IN_FLIGHT,
            "{most} requests at once, more than {}",
            super::MAX_IN_FLIGHT
        );
    }
}
