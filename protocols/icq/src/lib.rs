//! Sans-IO ICQ protocol version 2 (the 1998 UDP client/server protocol and its
//! peer-to-peer TCP packets): packets, codecs and session state machines.
//!
//! No sockets, no clock, no async: bytes and `Instant`s go in, bytes and events
//! come out, so the bridge and the simulator share one implementation and every
//! behaviour is testable on a virtual clock.
//!
//! # Packets
//!
//! * [`ClientPacket`] (client -> server) and [`ServerPacket`] (server -> client):
//!   one variant per command the spec lays out, `Other { command, params }` for
//!   the rest. `ClientPacket::encode(seq, uin)` / `ServerPacket::encode(seq)` give
//!   the whole datagram; `decode(&[u8])` returns a [`ClientFrame`] / [`ServerFrame`]
//!   (header fields plus packet) or a [`DecodeError`]. Decoders are liberal (any
//!   value in *Unknown* fields, trailing bytes ignored), encoders write the spec's
//!   values. Command codes are in [`client_cmd`] and [`server_cmd`].
//! * [`PeerPacket`]: CHANNEL_INIT and CHANNEL_MESSAGE (whose MSG_COMMAND 0x07DA
//!   makes it the acknowledgement), framed by a u16 length;
//!   [`PeerPacket::decode_stream`] reads frames from a TCP buffer.
//!
//! Text fields are Rust `String`s; on the wire they are Windows-1252
//! ([`encode_cp1252`] / [`decode_cp1252`]; [`Encoded::unrepresentable`] lists what
//! could not be converted, it is never dropped silently). Message bodies are typed
//! by [`MessageContent`] (text, URL, "you were added", authorization request,
//! granted, denied, contact list).
//!
//! # Sessions
//!
//! [`ClientSession`] is one login. Drive it like this:
//!
//! ```
//! use icq_proto::{ClientSession, ClientEvent, LoginOptions};
//! use std::time::Instant;
//!
//! let mut s = ClientSession::new();
//! s.login(1234, "secret", LoginOptions::default(), Instant::now()).unwrap();
//! while let Some(datagram) = s.poll_transmit() {
//!     // socket.send(&datagram)
//! #   let _ = datagram;
//! }
//! // On a datagram: s.handle_datagram(&buf, Instant::now())
//! // At s.poll_timeout():  s.handle_timeout(Instant::now())
//! // After each call: drain poll_transmit() to the socket and poll_event() to the app.
//! while let Some(event) = s.poll_event() {
//!     if let ClientEvent::Message { from, text, .. } = event { println!("{from}: {text}"); }
//! }
//! ```
//!
//! The session ACKs every server packet but ACK (duplicates again, processed
//! once), resends its own after 10 s up to 6 transmissions, then sends
//! B_MESSAGE_ACK; after two such cycles it reports `Disconnected`. It sends
//! KEEP_ALIVE every 120 s. Login: LOGIN -> LOGIN_REPLY, then LOGIN_1, CONTACT_LIST,
//! LOGIN_2. A wrong password is `LoginFailed { reason: WrongPassword }` when the
//! server answers BAD_PASSWORD; a server that ACKs the LOGIN and stays silent shows
//! as `login_acknowledged()` without `LoggedIn`, which the owner judges with its own
//! timeout. `probe(now)` sends an extra KEEP_ALIVE and `awaits_ack(seq)` tells
//! whether it was acknowledged, to notice a server that forgot the session sooner
//! than the retransmission schedule does.
//!
//! [`ServerSession`] is the server's per-client counterpart (SEQ_NUM from 0, ACKs,
//! duplicate detection, retransmission, idle detection) used by the simulator.
//! `take_unacknowledged()` hands out what the client never ACKed (also after the
//! session gave up), for the server to keep undelivered messages.

mod error;
mod message;
pub mod packet;
pub mod session;
mod text;
mod types;
mod wire;

pub use error::{CommandError, DecodeError};
pub use message::{MessageContent, MessageKind, FIELD_SEPARATOR, MAX_LISTED_CONTACTS};
pub use packet::client::{ClientFrame, ClientPacket, SearchQuery};
pub use packet::peer::{ChannelInit, ChannelMessage, PeerPacket};
pub use packet::server::{ServerFrame, ServerPacket};
pub use packet::{client_cmd, server_cmd, VERSION};
pub use session::client::{
    ClientEvent, ClientSession, DisconnectReason, LoginFailure, LoginOptions, SendReceipt,
    SessionState,
};
pub use session::server::ServerSession;
pub use text::{decode_cp1252, encode_cp1252, unrepresentable, Encoded};
pub use types::{ExtInfo, MessageTime, Status, UserRecord};
