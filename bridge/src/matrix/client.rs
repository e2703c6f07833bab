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
use matrix_sdk::ruma::api::client::account::register;
use matrix_sdk::ruma::api::client::{
    membership::{invite_user, join_room_by_id, kick_user, leave_room},
    message::send_message_event,
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
    MilliSecondsSinceUnixEpoch, OwnedEventId, OwnedMxcUri, OwnedRoomId, OwnedTransactionId,
    OwnedUserId, RoomId, TransactionId, UInt, UserId,
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

/// Sends `$request` as `$user` (matrix-sdk's send bounds name private traits, so this is a
/// macro over concrete request types rather than a generic function).
macro_rules! send_as {
    ($self:ident, $request:expr, $user:expr) => {
        $self
            .client
            .send(AsUser::new($request, $self.who($user)))
            .await
    };
}

/// Whether an error is the homeserver saying no (as opposed to not answering).
pub fn error_kind(e: &HttpError) -> Option<ErrorKind> {
    e.client_api_error_kind().cloned()
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
}

impl MatrixClient {
    pub async fn new(
        homeserver: &str,
        as_token: &str,
        bot: OwnedUserId,
    ) -> anyhow::Result<MatrixClient> {
        let client = Client::builder().homeserver_url(homeserver).build().await?;
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
        })
    }

    pub fn bot(&self) -> &UserId {
        &self.bot
    }

    fn who<'a>(&self, user: &'a UserId) -> Option<&'a UserId> {
        // The bot is the access token's own user: no assertion needed.
        (user != self.bot).then_some(user)
    }

    /// Waits until the homeserver answers, with exponential backoff (logged).
    pub async fn wait_for_homeserver(&self, give_up_after: Duration) -> anyhow::Result<()> {
        let start = std::time::Instant::now();
        let mut delay = Duration::from_millis(200);
        loop {
            match self.client.server_versions().await {
                Ok(_) => return Ok(()),
                Err(e) if start.elapsed() < give_up_after => {
                    tracing::warn!("homeserver not reachable yet ({e}); retrying in {delay:?}");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(10));
                }
                Err(e) => {
                    anyhow::bail!("the homeserver did not answer within {give_up_after:?}: {e}")
                }
            }
        }
    }

    /// Registers an appservice user; an existing one is fine.
    pub async fn ensure_registered(&self, user: &UserId) -> MatrixResult<()> {
        let mut request = register::v3::Request::new();
        request.username = Some(user.localpart().to_owned());
        request.inhibit_login = true;
        request.login_type = Some(register::LoginType::ApplicationService);
        match self.client.send(WithAppserviceToken(request)).await {
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
            request.power_level_content_override = Some(Raw::from_json(
                serde_json::value::to_raw_value(&serde_json::json!({ "users": users }))
                    .expect("json"),
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
        let content = AnyMessageLikeEventContent::RoomMessage(content);
        let request = send_message_event::v3::Request::new(room.into(), txn_id, &content)
            .map_err(|e| HttpError::IntoHttp(e.into()))?;
        let mut request = AsUser::new(request, self.who(sender));
        request.ts = ts.and_then(UInt::new).map(MilliSecondsSinceUnixEpoch);
        Ok(self.client.send(request).await?.event_id)
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
        match self.client.send(request).await {
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
