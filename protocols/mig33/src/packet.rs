//! Typed packets: one struct per packet type, the [`Packet`] enum over all of them,
//! and [`Envelope`], a typed frame (transaction id + packet + unknown fields).
//!
//! Each struct lists its fields in descending id order, the order real clients
//! write them and the order the encoders use. See the crate docs for where each
//! field id comes from and which ones are guesses.

use crate::frame::{begin_frame, finish_frame, put_field, Field, FieldIter, RawFrame};
use crate::values::{DestinationType, FieldValue, Presence, UsernameList};
use crate::DecodeError;

/// Packet type codes.
pub mod code {
    pub const ERROR: u16 = 0;
    pub const OK: u16 = 1;
    pub const PING: u16 = 2;
    pub const PING_REPLY: u16 = 3;
    pub const ALERT: u16 = 5;
    pub const REGISTRATION: u16 = 101;
    pub const LOGIN: u16 = 200;
    pub const LOGIN_CHALLENGE: u16 = 201;
    pub const LOGIN_RESPONSE: u16 = 202;
    pub const LOGIN_OK: u16 = 203;
    pub const LOGOUT: u16 = 300;
    pub const GET_CONTACTS: u16 = 400;
    pub const GROUP: u16 = 401;
    pub const CONTACT: u16 = 402;
    pub const GET_CONTACTS_COMPLETE: u16 = 403;
    pub const PRESENCE: u16 = 404;
    pub const ADD_CONTACT: u16 = 405;
    pub const REMOVE_CONTACT: u16 = 406;
    pub const MESSAGE: u16 = 500;
    pub const SET_PRESENCE: u16 = 600;
    pub const GET_CHATROOMS: u16 = 700;
    pub const CHATROOM: u16 = 701;
    pub const GET_CHATROOMS_COMPLETE: u16 = 702;
    pub const JOIN_CHATROOM: u16 = 703;
    pub const LEAVE_CHATROOM: u16 = 704;
    pub const GET_CHATROOM_PARTICIPANTS: u16 = 707;
    pub const CHATROOM_PARTICIPANTS: u16 = 708;
}

/// Writes fields in descending id order, slotting the unknown fields kept from a
/// decoded packet in between the known ones.
pub(crate) struct FieldWriter<'a> {
    out: &'a mut Vec<u8>,
    extra: &'a [Field],
    next_extra: usize,
}

impl FieldWriter<'_> {
    fn put<T: FieldValue>(&mut self, id: u16, value: &T) {
        self.flush_extra_above(id);
        let at = self.out.len();
        self.out.extend_from_slice(&id.to_be_bytes());
        self.out.extend_from_slice(&[0; 4]);
        value.encode(self.out);
        let len = (self.out.len() - at - 6) as u32;
        self.out[at + 2..at + 6].copy_from_slice(&len.to_be_bytes());
    }

    fn flush_extra_above(&mut self, id: u16) {
        while let Some(f) = self.extra.get(self.next_extra) {
            if f.id <= id {
                break;
            }
            put_field(self.out, f.id, &f.value);
            self.next_extra += 1;
        }
    }

    fn finish(&mut self) {
        self.flush_extra_above(0);
        for f in &self.extra[self.next_extra..] {
            put_field(self.out, f.id, &f.value);
        }
        self.next_extra = self.extra.len();
    }
}

fn value<T: FieldValue>(packet_type: u16, field: u16, bytes: &[u8]) -> Result<T, DecodeError> {
    T::decode(bytes).ok_or(DecodeError::BadInteger {
        packet_type,
        field,
        len: bytes.len(),
    })
}

/// Declares a packet struct with its decoder and encoder. Field kinds: `req` (decode
/// fails without it), `opt` (`Option`), `def` (missing means `Default`).
macro_rules! packet {
    (
        $(#[$meta:meta])*
        $name:ident = $code:expr, {
            $( $(#[$fmeta:meta])* $kind:ident $id:literal $field:ident : $ty:ty ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Default)]
        pub struct $name {
            $( $(#[$fmeta])* pub $field: packet!(@ty $kind $ty), )*
        }

        impl $name {
            pub const TYPE: u16 = $code;

            #[allow(unused_mut)]
            fn decode_fields(fields: FieldIter<'_>, extra: &mut Vec<Field>) -> Result<Self, DecodeError> {
                $( let mut $field: Option<$ty> = None; )*
                for f in fields {
                    let (id, bytes) = f?;
                    match id {
                        $( $id => $field = Some(value(Self::TYPE, $id, bytes)?), )*
                        _ => extra.push(Field { id, value: bytes.to_vec() }),
                    }
                }
                Ok(Self { $( $field: packet!(@take $kind $field, $id), )* })
            }

            #[allow(unused_variables)]
            fn encode_fields(&self, w: &mut FieldWriter<'_>) {
                $( packet!(@put $kind w, $id, &self.$field); )*
            }
        }
    };
    (@ty req $ty:ty) => { $ty };
    (@ty def $ty:ty) => { $ty };
    (@ty opt $ty:ty) => { Option<$ty> };
    (@take req $f:ident, $id:literal) => {
        $f.ok_or(DecodeError::MissingField { packet_type: Self::TYPE, field: $id })?
    };
    (@take def $f:ident, $id:literal) => { $f.unwrap_or_default() };
    (@take opt $f:ident, $id:literal) => { $f };
    (@put req $w:ident, $id:literal, $v:expr) => { $w.put($id, $v) };
    (@put def $w:ident, $id:literal, $v:expr) => { $w.put($id, $v) };
    (@put opt $w:ident, $id:literal, $v:expr) => { if let Some(v) = $v { $w.put($id, v) } };
}

packet! {
    /// ERROR (0), also the seed's ERROR_MESSAGE and LOGIN_BAD_RESP: a failed request
    /// (same transaction id) or a refused login.
    ErrorReply = code::ERROR, {
        opt 2 text: String,
        /// The seeds always show 1.
        opt 1 code: u16,
    }
}

packet! {
    /// OK (1): a request succeeded. Also read as the seed's REGISTER_OK, whose
    /// field 1 is a welcome message (a guess).
    OkReply = code::OK, {
        opt 1 message: String,
    }
}

packet! {
    /// PING (2), the seed's KEEP_ALIVE. No fields.
    Ping = code::PING, {}
}

packet! {
    /// PING_REPLY (3), the seed's KEEP_ALIVE_RESP; reuses the PING's transaction id.
    PingReply = code::PING_REPLY, {}
}

packet! {
    /// ALERT (5): a system message. Read as both of the seed's RECV_SYS_MSG (fields
    /// 5, 4, 2, 1) and LOGIN_NOTIFY (field 2 only). See [`Alert::display_text`].
    Alert = code::ALERT, {
        /// RECV_SYS_MSG "data", possibly a URL.
        opt 5 data: String,
        /// RECV_SYS_MSG "description": the message text.
        opt 4 description: String,
        /// RECV_SYS_MSG "invoker" (who caused it), or LOGIN_NOTIFY's notice text.
        opt 2 text: String,
        /// Always 1 in the seed.
        opt 1 kind: u8,
    }
}

impl Alert {
    /// The text to show: the description when present, else field 2, else the data.
    pub fn display_text(&self) -> &str {
        self.description
            .as_deref()
            .or(self.text.as_deref())
            .or(self.data.as_deref())
            .unwrap_or("")
    }

    /// Who caused the alert: field 2, when the description carries the text.
    pub fn invoker(&self) -> Option<&str> {
        self.description.as_ref().and(self.text.as_deref())
    }
}

packet! {
    /// REGISTRATION (101). Field ids are a guess; the seed does not show the request.
    Registration = code::REGISTRATION, {
        opt 3 mobile_number: String,
        opt 2 password: String,
        opt 1 username: String,
    }
}

packet! {
    /// LOGIN (200), client to server.
    Login = code::LOGIN, {
        opt 15 language: String,
        opt 9 initial_presence: Presence,
        opt 8 device: String,
        opt 7 user_agent: String,
        req 5 username: String,
        opt 3 client_version: u16,
        opt 2 client_type: u8,
        opt 1 protocol_version: u16,
    }
}

packet! {
    /// LOGIN_CHALLENGE (201), the seed's LOGIN_CHAL.
    LoginChallenge = code::LOGIN_CHALLENGE, {
        /// The seed's "unknown random string".
        opt 2 session_id: String,
        /// The seed's HASH_STRING, prefixed to the password before hashing.
        req 1 challenge: String,
    }
}

packet! {
    /// LOGIN_RESPONSE (202): see [`crate::login_hash`].
    LoginResponse = code::LOGIN_RESPONSE, {
        req 1 password_hash: i32,
    }
}

packet! {
    /// LOGIN_OK (203), the seed's LOGIN_OK / MOTD. Every field is optional; the
    /// unknown ones keep the seed's observed types.
    LoginOk = code::LOGIN_OK, {
        opt 12 exchange_rate: String,
        opt 11 currency: String,
        opt 10 ip_address: String,
        /// Seed: 4 bytes, value 3.
        opt 9 unknown_9: i32,
        /// Seed: 1 byte, value 0.
        opt 8 unknown_8: u8,
        /// Seed: 1 byte, value 0.
        opt 6 unknown_6: u8,
        opt 3 motd: String,
        /// Seed: 1 byte, value 0 (the seed's table swaps this value and the next id).
        opt 2 unknown_2: u8,
        opt 1 mobile_number: String,
    }
}

packet! {
    /// LOGOUT (300). No fields.
    Logout = code::LOGOUT, {}
}

packet! {
    /// GET_CONTACTS (400): asks for GROUP*, CONTACT*, GET_CONTACTS_COMPLETE.
    GetContacts = code::GET_CONTACTS, {}
}

packet! {
    /// GROUP (401), the seed's CLIST_GROUPS.
    Group = code::GROUP, {
        req 2 name: String,
        req 1 group_id: i32,
    }
}

/// CONTACT (402), the seed's CLIST_BUDDIES. Hand-written rather than declared with
/// the macro because fields 3 and 12 need the fallback described in the crate docs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Contact {
    /// Field 27.
    pub status_message: Option<String>,
    /// Field 25; always 0 in the seed.
    pub flag: Option<u8>,
    /// Field 13.
    pub presence: Option<Presence>,
    /// Field 12 (the notes' username); falls back to field 3 when absent.
    pub username: String,
    /// Field 3 (the notes' display name); falls back to the username when absent.
    pub display_name: String,
    /// Field 2.
    pub group_id: Option<i32>,
    /// Field 1.
    pub contact_id: i32,
}

impl Contact {
    pub const TYPE: u16 = code::CONTACT;

    fn decode_fields(fields: FieldIter<'_>, extra: &mut Vec<Field>) -> Result<Self, DecodeError> {
        let t = Self::TYPE;
        let mut c = Contact::default();
        let (mut contact_id, mut f3, mut f12) = (None, None, None);
        for f in fields {
            let (id, bytes) = f?;
            match id {
                27 => c.status_message = Some(value(t, id, bytes)?),
                25 => c.flag = Some(value(t, id, bytes)?),
                13 => c.presence = Some(value(t, id, bytes)?),
                12 => f12 = Some(value::<String>(t, id, bytes)?),
                3 => f3 = Some(value::<String>(t, id, bytes)?),
                2 => c.group_id = Some(value(t, id, bytes)?),
                1 => contact_id = Some(value(t, id, bytes)?),
                _ => extra.push(Field {
                    id,
                    value: bytes.to_vec(),
                }),
            }
        }
        c.contact_id = contact_id.ok_or(DecodeError::MissingField {
            packet_type: t,
            field: 1,
        })?;
        (c.username, c.display_name) = match (f12, f3) {
            (Some(user), Some(display)) => (user, display),
            (Some(user), None) => (user.clone(), user),
            (None, Some(user)) => (user.clone(), user),
            (None, None) => {
                return Err(DecodeError::MissingField {
                    packet_type: t,
                    field: 12,
                })
            }
        };
        Ok(c)
    }

    fn encode_fields(&self, w: &mut FieldWriter<'_>) {
        if let Some(v) = &self.status_message {
            w.put(27, v);
        }
        if let Some(v) = &self.flag {
            w.put(25, v);
        }
        if let Some(v) = &self.presence {
            w.put(13, v);
        }
        w.put(12, &self.username);
        w.put(3, &self.display_name);
        if let Some(v) = &self.group_id {
            w.put(2, v);
        }
        w.put(1, &self.contact_id);
    }
}

packet! {
    /// GET_CONTACTS_COMPLETE (403), the seed's CLIST_TERMINATOR.
    GetContactsComplete = code::GET_CONTACTS_COMPLETE, {}
}

packet! {
    /// PRESENCE (404), the seed's CLIST_STATUS_CHANGE: a contact's presence changed.
    ContactPresence = code::PRESENCE, {
        req 2 presence: Presence,
        req 1 contact_id: i32,
    }
}

packet! {
    /// ADD_CONTACT (405). Field ids are a guess, borrowed from CONTACT.
    AddContact = code::ADD_CONTACT, {
        req 12 username: String,
        opt 3 display_name: String,
        opt 2 group_id: i32,
    }
}

packet! {
    /// REMOVE_CONTACT (406). Field id is a guess, borrowed from CONTACT.
    RemoveContact = code::REMOVE_CONTACT, {
        req 1 contact_id: i32,
    }
}

packet! {
    /// MESSAGE (500), the seed's RECV_MSG; clients send the same packet.
    Message = code::MESSAGE, {
        /// UTF-8 text.
        req 8 content: String,
        /// 1 = plain text.
        opt 6 content_type: u16,
        /// A username, group chat id or room name, per `destination_type`.
        req 4 destination: String,
        req 3 destination_type: DestinationType,
        /// The sender's username; clients may leave it out (servers fill it in).
        def 2 source: String,
        /// 1 = mig33.
        opt 1 message_type: u8,
    }
}

impl Message {
    /// A plain-text mig33 message, with the fields a real client sends.
    pub fn text(
        source: impl Into<String>,
        destination_type: DestinationType,
        destination: impl Into<String>,
        content: impl Into<String>,
    ) -> Message {
        Message {
            content: content.into(),
            content_type: Some(1),
            destination: destination.into(),
            destination_type,
            source: source.into(),
            message_type: Some(1),
        }
    }
}

packet! {
    /// SET_PRESENCE (600).
    SetPresence = code::SET_PRESENCE, {
        req 1 presence: Presence,
    }
}

packet! {
    /// GET_CHATROOMS (700): asks for CHATROOM*, GET_CHATROOMS_COMPLETE.
    GetChatrooms = code::GET_CHATROOMS, {}
}

packet! {
    /// CHATROOM (701): one room of the list. Field ids are a guess.
    Chatroom = code::CHATROOM, {
        opt 3 participant_count: u16,
        opt 2 description: String,
        req 1 name: String,
    }
}

packet! {
    /// GET_CHATROOMS_COMPLETE (702).
    GetChatroomsComplete = code::GET_CHATROOMS_COMPLETE, {}
}

packet! {
    /// JOIN_CHATROOM (703), answered by OK or ERROR.
    JoinChatroom = code::JOIN_CHATROOM, {
        req 1 name: String,
    }
}

packet! {
    /// LEAVE_CHATROOM (704), answered by OK or ERROR.
    LeaveChatroom = code::LEAVE_CHATROOM, {
        req 1 name: String,
    }
}

packet! {
    /// GET_CHATROOM_PARTICIPANTS (707). Field id is a guess.
    GetChatroomParticipants = code::GET_CHATROOM_PARTICIPANTS, {
        req 1 name: String,
    }
}

packet! {
    /// CHATROOM_PARTICIPANTS (708): the full member list of a room, as a reply to 707
    /// or pushed when someone joins or leaves. Field ids are guesses; the names are
    /// separated by `;` or `,` (see [`UsernameList`]).
    ChatroomParticipants = code::CHATROOM_PARTICIPANTS, {
        def 2 participants: UsernameList,
        req 1 name: String,
    }
}

macro_rules! packets {
    ($( $variant:ident($ty:ident) ),* $(,)?) => {
        /// Every packet this crate knows, in both directions.
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub enum Packet {
            $( $variant($ty), )*
        }

        impl Packet {
            /// The packet type code.
            pub fn packet_type(&self) -> u16 {
                match self {
                    $( Packet::$variant(_) => $ty::TYPE, )*
                }
            }

            fn decode_fields(
                packet_type: u16,
                fields: FieldIter<'_>,
                extra: &mut Vec<Field>,
            ) -> Result<Packet, DecodeError> {
                match packet_type {
                    $( $ty::TYPE => $ty::decode_fields(fields, extra).map(Packet::$variant), )*
                    other => Err(DecodeError::UnknownType(other)),
                }
            }

            fn encode_fields(&self, w: &mut FieldWriter<'_>) {
                match self {
                    $( Packet::$variant(p) => p.encode_fields(w), )*
                }
            }
        }

        $(
            impl From<$ty> for Packet {
                fn from(p: $ty) -> Packet {
                    Packet::$variant(p)
                }
            }
        )*
    };
}

packets! {
    Error(ErrorReply),
    Ok(OkReply),
    Ping(Ping),
    PingReply(PingReply),
    Alert(Alert),
    Registration(Registration),
    Login(Login),
    LoginChallenge(LoginChallenge),
    LoginResponse(LoginResponse),
    LoginOk(LoginOk),
    Logout(Logout),
    GetContacts(GetContacts),
    Group(Group),
    Contact(Contact),
    GetContactsComplete(GetContactsComplete),
    ContactPresence(ContactPresence),
    AddContact(AddContact),
    RemoveContact(RemoveContact),
    Message(Message),
    SetPresence(SetPresence),
    GetChatrooms(GetChatrooms),
    Chatroom(Chatroom),
    GetChatroomsComplete(GetChatroomsComplete),
    JoinChatroom(JoinChatroom),
    LeaveChatroom(LeaveChatroom),
    GetChatroomParticipants(GetChatroomParticipants),
    ChatroomParticipants(ChatroomParticipants),
}

impl Packet {
    /// Decodes the packet in a raw frame, dropping unknown fields.
    pub fn decode(frame: &RawFrame<'_>) -> Result<Packet, DecodeError> {
        Envelope::decode(frame).map(|e| e.packet)
    }

    /// Appends a frame holding this packet to `out`.
    pub fn encode_into(&self, transaction_id: u16, out: &mut Vec<u8>) {
        encode_with_extra(self, transaction_id, &[], out);
    }

    /// A frame holding this packet.
    pub fn encode(&self, transaction_id: u16) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_into(transaction_id, &mut out);
        out
    }
}

fn encode_with_extra(packet: &Packet, transaction_id: u16, extra: &[Field], out: &mut Vec<u8>) {
    let start = begin_frame(out, packet.packet_type(), transaction_id);
    let sorted;
    let extra = if extra.windows(2).all(|w| w[0].id >= w[1].id) {
        extra
    } else {
        let mut v = extra.to_vec();
        v.sort_by_key(|f| std::cmp::Reverse(f.id));
        sorted = v;
        &sorted
    };
    let mut w = FieldWriter {
        out,
        extra,
        next_extra: 0,
    };
    packet.encode_fields(&mut w);
    w.finish();
    finish_frame(out, start);
}

/// A typed frame: transaction id, packet, and the fields the packet does not know,
/// kept so that relaying or re-encoding loses nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    pub transaction_id: u16,
    pub packet: Packet,
    /// Unknown fields in the order received; re-encoded among the known ones in
    /// descending id order.
    pub extra: Vec<Field>,
}

impl Envelope {
    pub fn new(transaction_id: u16, packet: impl Into<Packet>) -> Envelope {
        Envelope {
            transaction_id,
            packet: packet.into(),
            extra: Vec::new(),
        }
    }

    /// Decodes a raw frame into a typed packet. Known fields may come in any order;
    /// a repeated known field keeps its last value.
    pub fn decode(frame: &RawFrame<'_>) -> Result<Envelope, DecodeError> {
        let mut extra = Vec::new();
        let packet = Packet::decode_fields(frame.packet_type, frame.fields(), &mut extra)?;
        Ok(Envelope {
            transaction_id: frame.transaction_id,
            packet,
            extra,
        })
    }

    /// Decodes one whole frame from bytes (trailing bytes ignored).
    pub fn decode_bytes(buf: &[u8]) -> Result<Envelope, DecodeError> {
        Self::decode(&RawFrame::parse(buf)?)
    }

    pub fn encode_into(&self, out: &mut Vec<u8>) {
        encode_with_extra(&self.packet, self.transaction_id, &self.extra, out);
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_into(&mut out);
        out
    }
}
