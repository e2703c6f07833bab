//! Sans-IO mig33 protocol: framing, typed packets in both directions, the login
//! hash, and client and server session state machines. No sockets, no clock, no
//! async runtime: the caller moves bytes and time in and out.
//!
//! # Layers
//!
//! * [`frame`]: the 9-byte header (magic `0x02`, u16 type, u16 transaction id,
//!   u32 content length, big-endian) and fields (u16 id, u32 length, value).
//!   [`RawFrame`] borrows a frame from a buffer; [`Frame`] owns its fields in wire
//!   order and re-encodes byte-exact; [`FrameDecoder`] reassembles frames from a TCP
//!   stream (`feed`, then `next_frame` / `next_raw` until `None`). Content and field
//!   lengths over [`MAX_CONTENT_LEN`] (358400) are rejected from the header alone,
//!   before anything is allocated; buffers only ever hold bytes actually received.
//! * [`packet`]: one struct per packet type and the [`Packet`] enum over all of
//!   them. [`Envelope`] is a typed frame: transaction id, packet, and the unknown
//!   fields, kept so that they round-trip. Decoders accept fields in any order
//!   (a repeated field keeps its last value), integers of 1 to 4 bytes when the value
//!   fits, and invalid UTF-8 as U+FFFD; missing required fields are an error.
//!   Encoders write fields in descending id order, as real clients do.
//! * [`login_hash`]: Java's `String.hashCode()` of challenge + password.
//! * [`client::ClientSession`] and [`server::ServerSession`]: the session machines.
//!
//! # Driving a session
//!
//! ```
//! use std::time::Instant;
//! use mig33_proto::{ClientConfig, ClientEvent, ClientSession};
//!
//! let mut client = ClientSession::new(ClientConfig::new("alice", "secret"));
//! client.handle_timeout(Instant::now()); // starts the keepalive clock
//! // loop {
//! //     write client.poll_transmit() to the socket while it returns Some;
//! //     handle every client.poll_event();
//! //     wait for socket bytes (-> client.handle_input(&bytes)) or for
//! //     client.poll_timeout() (-> client.handle_timeout(now));
//! //     call commands: client.send_private("bob", "hi"), client.join_chatroom("lobby"), ...
//! // }
//! let login = client.poll_transmit().unwrap(); // LOGIN is queued at once
//! assert_eq!(login[0], mig33_proto::MAGIC);
//! ```
//!
//! The client logs in (LOGIN -> LOGIN_CHALLENGE -> LOGIN_RESPONSE -> LOGIN_OK or
//! ERROR), then sends GET_CONTACTS and reports [`ClientEvent::ContactList`] when
//! GET_CONTACTS_COMPLETE arrives. Commands return a [`RequestId`] (the transaction
//! id); an OK or ERROR carrying it is reported as [`ClientEvent::RequestDone`] with
//! the original [`Request`]. PRESENCE pushes, MESSAGE (private, group chat and
//! chatroom), CHATROOM_PARTICIPANTS and ALERT become events. PING goes out every
//! [`ClientConfig::keepalive`] (60 s) once logged in; when nothing has been received
//! for two intervals after a PING (or after the LOGIN), the session closes with
//! [`CloseReason::Timeout`]. Any received frame counts as an answer.
//!
//! The server machine answers PING itself, runs the login handshake with a
//! challenge the caller supplies, reports [`ServerEvent::LoginAttempt`] (the
//! application compares the hash with [`ServerSession::expected_hash`] and calls
//! `accept_login` or `reject_login`), and reports every later request as
//! [`ServerEvent::Request`] to be answered with `reply`, `reply_ok`, `reply_error`
//! or `send_contact_list`; `push` sends unsolicited packets with the server's own
//! transaction numbering. It overwrites a MESSAGE's source with the logged-in
//! username and closes idle connections (300 s by default).
//!
//! # Type codes and sources
//!
//! The notes' type table is the reference; the seed (section 6 of an analysis of
//! the server packets) names packets differently:
//!
//! | code | packet | seed name |
//! | --- | --- | --- |
//! | 0 | [`ErrorReply`] | ERROR_MESSAGE (table 11), LOGIN_BAD_RESP (table 13) |
//! | 1 | [`OkReply`] | REGISTER_OK (table 14) - guess, see below |
//! | 2 / 3 | [`Ping`] / [`PingReply`] | KEEP_ALIVE / KEEP_ALIVE_RESP (6.5) |
//! | 5 | [`Alert`] | RECV_SYS_MSG (table 21), LOGIN_NOTIFY (table 12) - unverified |
//! | 101 | [`Registration`] | REGISTER |
//! | 200 | [`Login`] | |
//! | 201 | [`LoginChallenge`] | LOGIN_CHAL (table 15) |
//! | 202 | [`LoginResponse`] | LOGIN_RESP |
//! | 203 | [`LoginOk`] | LOGIN_OK / MOTD (table 16) |
//! | 300 | [`Logout`] | |
//! | 400 | [`GetContacts`] | |
//! | 401 | [`Group`] | CLIST_GROUPS (table 17) |
//! | 402 | [`Contact`] | CLIST_BUDDIES (table 18) |
//! | 403 | [`GetContactsComplete`] | CLIST_TERMINATOR (6.10) |
//! | 404 | [`ContactPresence`] | CLIST_STATUS_CHANGE (table 19) |
//! | 405 / 406 | [`AddContact`] / [`RemoveContact`] | |
//! | 500 | [`Message`] | RECV_MSG (table 20); clients send it too |
//! | 600 | [`SetPresence`] | |
//! | 700 / 701 / 702 | [`GetChatrooms`] / [`Chatroom`] / [`GetChatroomsComplete`] | |
//! | 703 / 704 | [`JoinChatroom`] / [`LeaveChatroom`] | |
//! | 707 / 708 | [`GetChatroomParticipants`] / [`ChatroomParticipants`] | |
//!
//! Readings and guesses:
//!
//! * The seed's "markers" (`MARK_*`, `X1`, ...) are field ids, followed by the u32
//!   field length and the value. Its tables mostly list fields in descending id
//!   order, the order real clients write; table 18 does not (25, 3, 13, 2, 12, 1),
//!   which decoders accept like any other order.
//! * ERROR: field 2 is the text, field 1 the u16 code (always 1 in the seed; this
//!   crate's server sends 1). LOGIN_BAD_RESP has the same layout, so it is ERROR.
//! * LOGIN_CHAL: field 1 is the HASH_STRING (the challenge), field 2 the seed's
//!   "unknown random string", read as the notes' session id.
//! * LOGIN_OK: every field optional. Table 16 garbles its last block ("2 bytes 00"
//!   then "1 byte 00 01"): read as field 2 with a one-byte value 0, then field 1 (the
//!   mobile number). Fields 2, 6, 8 (u8) and 9 (i32) are unknown and kept as
//!   `unknown_*` with the seed's widths; 3 is the MOTD, 10 an IP address,
//!   11 the currency, 12 the exchange rate.
//! * CONTACT: the seed labels field 3 USERNAME and field 12 "the buddy's name again";
//!   the notes say 3 is the display name and 12 the username. This crate follows the
//!   notes (they come from live traces; a display name defaulting to the username
//!   would explain the seed's labels) and encodes both fields. When decoding, a
//!   missing field 12 falls back to field 3 as the username (the seed's reading),
//!   and a missing field 3 makes the display name equal the username.
//!   Fields 13 (presence), 25 (flag, u8) and 27 (status message) as in the notes.
//! * ALERT (5): both RECV_SYS_MSG (5 data/URL, 4 description, 2 invoker, 1 = 1) and
//!   LOGIN_NOTIFY (2 notice text only) decode to [`Alert`]; field 2 is the text when
//!   there is no description, and the invoker otherwise ([`Alert::display_text`]).
//!   This crate's server sends the RECV_SYS_MSG form.
//! * REGISTER_OK: read as OK (1) with an optional welcome message in field 1. The
//!   REGISTRATION (101) request fields (1 username, 2 password, 3 mobile number)
//!   are guesses.
//! * MESSAGE: field 1 message type (u8, 1 = mig33), 2 source username, 3 destination
//!   type (u8: 1 private, 2 group chat, 3 chatroom), 4 destination, 6 content type
//!   (u16, 1 = plain text), 8 UTF-8 content; the seed and the notes agree. A client
//!   may omit the source (decoded as empty).
//! * Guessed field ids where neither source shows any: ADD_CONTACT (12 username,
//!   3 display name, 2 group id, borrowed from CONTACT), REMOVE_CONTACT (1 contact
//!   id), CHATROOM (1 name, 2 description, 3 participant count u16),
//!   JOIN/LEAVE_CHATROOM and GET_CHATROOM_PARTICIPANTS (1 room name, from the
//!   notes), CHATROOM_PARTICIPANTS (1 room name, 2 usernames separated by `;`, or
//!   by `,` as some servers write: decoding accepts both, see [`UsernameList`]).
//! * Replies reuse the request's transaction id (GROUP/CONTACT/COMPLETE answer
//!   GET_CONTACTS with its id); server pushes use the server's own counter. While a
//!   contact list is being fetched, GROUP and CONTACT packets with any id are taken
//!   as part of it.
//! * Presence values: 1 available, 2 roaming, 3 busy, 4 away, 99 offline; other
//!   values are kept as `Other`.

pub mod client;
mod error;
pub mod frame;
mod hash;
pub mod packet;
pub mod server;
mod values;

pub use client::{
    ClientConfig, ClientEvent, ClientSession, CloseReason, CommandError, Request, RequestId,
    ServerError, MAX_LISTED_ROOMS,
};
pub use error::DecodeError;
pub use frame::{
    Field, Frame, FrameDecoder, Header, RawFrame, HEADER_LEN, MAGIC, MAX_CONTENT_LEN, MAX_FIELD_LEN,
};
pub use hash::login_hash;
pub use packet::*;
pub use server::{ClientRequest, ServerCloseReason, ServerEvent, ServerSession};
pub use values::{DestinationType, FieldValue, ListSeparator, Presence, UsernameList};
