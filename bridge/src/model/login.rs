//! One login (a user's account on a legacy network): its credentials, the commands the
//! core sends it, the events it reports, and the handle that carries them.

use std::fmt;

use tokio::sync::{mpsc, oneshot};

use super::{
    AuthorizationRequest, Avatar, ChatId, Contact, FileData, FormattedText, Group, LegacyId,
    Lookup, MessageKind, NetworkId, Presence, PresenceState, Profile, RoomListing,
};

/// Credentials for one login, and what the bridge remembers of it. `Debug` never shows
/// the password.
#[derive(Clone)]
pub struct LoginCredentials {
    pub id: LegacyId,
    pub password: String,
    /// The contact list stored from earlier sessions (for networks such as ICQ v2 whose
    /// client sends its contact list at login). Empty on a first login.
    pub contacts: Vec<Contact>,
    /// These credentials were accepted before (a stored login that connected once): a
    /// server that stays silent is then an outage to wait out, not a refused password.
    pub proven: bool,
    /// The status the user last set: the login shows it from its first moment online.
    pub presence: PresenceState,
}

impl fmt::Debug for LoginCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoginCredentials")
            .field("id", &self.id)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// A successful send: the network's id for the message, if it has one.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Delivery {
    pub legacy_id: Option<String>,
    /// Things the user should know although the message went out (e.g. characters the
    /// legacy charset could not hold were replaced, text was split in N parts).
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    #[error("{0} does not support this")]
    Unsupported(&'static str),
    /// The network (or the login) refused it; the text says why.
    #[error("{0}")]
    Rejected(String),
    #[error("the login has ended")]
    LoginGone,
    /// The user has no login on the network (its display name).
    #[error("you are not logged in to {0}")]
    NotLoggedIn(&'static str),
}

pub type Reply<T> = oneshot::Sender<Result<T, SendError>>;

/// What the core asks a login to do.
#[derive(Debug)]
pub enum LoginCommand {
    SendText {
        chat: ChatId,
        text: FormattedText,
        reply: Reply<Delivery>,
    },
    SetPresence {
        presence: Presence,
        reply: Reply<()>,
    },
    Typing {
        chat: ChatId,
        typing: bool,
    },
    /// A file to the conversation's contact (networks whose capabilities say `files`):
    /// offered as a transfer; when the contact declines or cannot take it, `fallback`
    /// (the text with a link to the file) is sent instead and the reply's warnings say
    /// so. Answered once the contact has the file or the fallback.
    SendFile {
        chat: ChatId,
        file: FileData,
        fallback: FormattedText,
        reply: Reply<Delivery>,
    },
    /// A nudge to the conversation (networks whose capabilities say `nudges`).
    Nudge {
        chat: ChatId,
        reply: Reply<Delivery>,
    },
    JoinRoom {
        room: String,
        reply: Reply<()>,
    },
    LeaveRoom {
        room: String,
        reply: Reply<()>,
    },
    AddContact {
        id: LegacyId,
        group: Option<String>,
        reply: Reply<()>,
    },
    Lookup {
        query: Lookup,
        reply: Reply<Vec<Profile>>,
    },
    /// The chatrooms the server offers (networks with chatrooms).
    ListRooms {
        reply: Reply<Vec<RoomListing>>,
    },
    /// Fetches a contact's picture (networks whose capabilities say `avatars`); the
    /// outcome comes as [`NetworkEvent::AvatarFetched`].
    FetchAvatar {
        who: LegacyId,
        hash: String,
        descriptor: String,
    },
    /// The user's own picture, shown to their contacts (networks whose capabilities say
    /// `avatars`), until another replaces it; `None`: no picture. Kept by the login
    /// across reconnects.
    SetAvatar {
        avatar: Option<Avatar>,
    },
    /// Answers someone's authorization request (networks whose capabilities say
    /// `authorization`): grant lets them add the user, deny refuses.
    AnswerAuthorization {
        id: LegacyId,
        grant: bool,
        reply: Reply<()>,
    },
    Logout,
}

impl LoginCommand {
    /// Answers the command with `error`, whatever it is (one that takes no answer is
    /// dropped).
    pub fn fail(self, error: SendError) {
        match self {
            LoginCommand::SendText { reply, .. }
            | LoginCommand::Nudge { reply, .. }
            | LoginCommand::SendFile { reply, .. } => {
                let _ = reply.send(Err(error));
            }
            LoginCommand::SetPresence { reply, .. }
            | LoginCommand::JoinRoom { reply, .. }
            | LoginCommand::LeaveRoom { reply, .. }
            | LoginCommand::AddContact { reply, .. }
            | LoginCommand::AnswerAuthorization { reply, .. } => {
                let _ = reply.send(Err(error));
            }
            LoginCommand::Lookup { reply, .. } => {
                let _ = reply.send(Err(error));
            }
            LoginCommand::ListRooms { reply } => {
                let _ = reply.send(Err(error));
            }
            LoginCommand::Typing { .. }
            | LoginCommand::FetchAvatar { .. }
            | LoginCommand::SetAvatar { .. }
            | LoginCommand::Logout => {}
        }
    }
}

/// What a login reports, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum NetworkEvent {
    Connected {
        self_profile: Profile,
    },
    Disconnected {
        reason: String,
        will_retry: bool,
    },
    /// Final: the network refused the credentials or the account; the login task ended.
    LoginFailed {
        reason: String,
    },
    /// Full snapshot; the core diffs it against the store.
    ContactList {
        groups: Vec<Group>,
        contacts: Vec<Contact>,
    },
    ContactChanged(Contact),
    Presence {
        who: LegacyId,
        presence: Presence,
    },
    Message {
        chat: ChatId,
        from: LegacyId,
        /// The network's id, for dedupe of re-deliveries.
        id: Option<String>,
        kind: MessageKind,
        text: FormattedText,
        /// Milliseconds since the epoch when the network gives a send time.
        sent_at: Option<u64>,
        /// Stored by the server while the user was offline.
        offline: bool,
        /// Networks without message ids that acknowledge a message to the server only
        /// once it is on disk (ICQ): what identifies its text from its sender. Until
        /// [`NetworkEvent::Acknowledged`] says the acknowledgement went out, an offline
        /// copy with the same key is the server delivering it again after a crash, and
        /// is not bridged twice.
        ack_key: Option<String>,
    },
    /// The acknowledgements of the messages with these keys went out to the server.
    Acknowledged {
        keys: Vec<String>,
    },
    Typing {
        chat: ChatId,
        who: LegacyId,
        typing: bool,
    },
    /// A file a contact sent, received whole (the network accepted the offer itself,
    /// within its size limit).
    File {
        chat: ChatId,
        from: LegacyId,
        file: FileData,
    },
    /// The full member list of a chatroom this login is in (after a join, and when it
    /// changes), or of a group conversation (`ChatId::Group`). The login itself may be
    /// listed; the core leaves it out.
    RoomMembers {
        chat: ChatId,
        members: Vec<Contact>,
    },
    /// This login left a chatroom or group conversation (after `LeaveRoom`, or because
    /// the server removed it).
    RoomLeft {
        chat: ChatId,
    },
    /// Something worth telling the user (system messages, alerts, requests).
    Notice {
        text: String,
    },
    /// A contact's picture is the one `hash` names (stable while the picture does not
    /// change); `descriptor` is what the login needs to fetch it
    /// ([`LoginCommand::FetchAvatar`]). Repeated with presence; the core fetches a hash
    /// it does not have once.
    AvatarAnnounced {
        who: LegacyId,
        hash: String,
        descriptor: String,
    },
    /// The answer to [`LoginCommand::FetchAvatar`]: the picture, or why there is none.
    AvatarFetched {
        who: LegacyId,
        hash: String,
        result: Result<Avatar, String>,
    },
    /// Someone added this login to their contact list, and is not on the user's: the
    /// user may want to add them back. Reported whenever the network says so (every
    /// login may repeat it); the core tells the user once per contact.
    AddedBy {
        who: LegacyId,
        name: Option<String>,
    },
    /// Someone asks the user for authorization to add them (ICQ): the user answers with
    /// `LoginCommand::AnswerAuthorization`.
    AuthorizationRequest(AuthorizationRequest),
}

/// Identifies one login: the Matrix user and the network.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LoginKey {
    pub user: String,
    pub network: NetworkId,
}

/// The core's handle on a running login.
///
/// Commands travel boxed: a tokio channel allocates room for 32 of its items when it is
/// made, and an idle login should not hold 32 commands' worth (about 3 KiB) for nothing.
#[derive(Debug, Clone)]
pub struct LoginHandle {
    tx: mpsc::UnboundedSender<Box<LoginCommand>>,
}

/// The receiving end of a login's commands, read by the network's task.
#[derive(Debug)]
pub struct CommandReceiver(mpsc::UnboundedReceiver<Box<LoginCommand>>);

impl CommandReceiver {
    /// The next command; `None` once every handle is gone. Cancel-safe.
    pub async fn recv(&mut self) -> Option<LoginCommand> {
        self.0.recv().await.map(|command| *command)
    }
}

impl LoginHandle {
    /// A handle and the receiving end the network's task reads.
    pub fn channel() -> (LoginHandle, CommandReceiver) {
        let (tx, rx) = mpsc::unbounded_channel();
        (LoginHandle { tx }, CommandReceiver(rx))
    }

    pub fn send(&self, command: LoginCommand) -> Result<(), SendError> {
        self.tx
            .send(Box::new(command))
            .map_err(|_| SendError::LoginGone)
    }

    /// Sends a command that carries a reply and waits for the answer.
    pub async fn request<T>(
        &self,
        make: impl FnOnce(Reply<T>) -> LoginCommand,
    ) -> Result<T, SendError> {
        let (reply, rx) = oneshot::channel();
        self.send(make(reply))?;
        rx.await.map_err(|_| SendError::LoginGone)?
    }
}
