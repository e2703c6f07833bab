//! Sans-IO MSN Messenger protocol (MSNP9/MSNP8, TWN login): command framing,
//! MIME messages, Passport 1.4 helpers, and client session machines for the
//! notification server and switchboards. No sockets, no clock, no HTTP.
//!
//! # Layers
//!
//! * **Framing** — [`Command`] (owned) and [`CommandRef`] (borrowed, zero
//!   allocation) model `CMD [TrID] params...\r\n[payload]`. [`Decoder`] is the
//!   streaming decoder (`feed` bytes, `next`/`next_ref` commands). Lines are
//!   limited to [`MAX_LINE`] and payloads to [`MAX_PAYLOAD`], checked before
//!   buffering more. Three-digit replies map to [`ServerError`] with
//!   [`error_description`]; names use [`url_encode`]/[`url_decode`].
//! * **Messages** — [`Message`]/[`MessageRef`] for the MIME payload of `MSG`;
//!   [`TextFormat`] for `X-MMS-IM-Format`; [`split_text`] cuts long text so each
//!   payload fits [`MAX_MSG_PAYLOAD`].
//! * **Passport** — [`passport`] builds the `Authorization` header and reads
//!   `PassportURLs`, `Authentication-Info` and `WWW-Authenticate`.
//! * **Sessions** — [`NsSession`] (notification server) and [`SbSession`]
//!   (switchboard) share one driving pattern:
//!
//! ```text
//! loop {
//!     while let Some(bytes) = s.poll_transmit() { socket.write_all(&bytes) }
//!     while let Some(ev) = s.poll_event() { handle(ev) }
//!     select! {
//!         n = socket.read(&mut buf) => s.handle_input(&buf[..n]),
//!         _ = sleep_until(s.poll_timeout()) => s.handle_timeout(now()),
//!         cmd = requests.recv() => s.set_status(..) / s.send_text(..) / ...
//!     }
//! }
//! ```
//!
//! Login: create [`NsSession::new`] on a connection to the dispatch server. On
//! [`NsEvent::Redirect`], connect to the given address and start a new session.
//! On [`NsEvent::NeedTicket`], do Passport over HTTP and call
//! [`NsSession::ticket`]. The session then reports [`NsEvent::LoggedIn`],
//! synchronises ([`NsEvent::ContactList`]) and sets the initial status.
//! `PNG` goes out every `ping_interval` through `handle_timeout`; `CHL` is
//! answered immediately without waiting for the server's `QRY` reply.
//!
//! Decoding by hand:
//!
//! ```
//! use msn_proto::{Decoder, MessageRef};
//! let mut d = Decoder::new();
//! d.feed(b"MSG alice@hotmail.com Alice 66\r\nMIME-Version: 1.0\r\n");
//! assert!(d.next().is_none()); // payload incomplete
//! d.feed(b"Content-Type: text/plain; charset=UTF-8\r\n\r\nhey!");
//! let cmd = d.next().unwrap().unwrap();
//! assert_eq!((cmd.trid, cmd.param(0)), (None, Some("alice@hotmail.com")));
//! let msg = MessageRef::parse(cmd.payload.as_deref().unwrap()).unwrap();
//! assert_eq!(msg.text(), "hey!");
//! ```
//!
//! * **P2P (MSNC)** — display pictures and file transfers of Messenger 6.x,
//!   carried in switchboard `MSG`s. [`p2p`]: the 48-byte binary header
//!   ([`P2pHeader`], acks as libpurple builds them), whole packets
//!   ([`P2pMessageRef`]/[`P2pMessage`]), [`p2p::chunks`] of at most
//!   [`p2p::MAX_CHUNK`] bytes and a bounded [`Reassembler`]. Errors of every
//!   P2P layer are [`P2pError`]. [`slp`]: the MSNSLP text negotiating a
//!   session ([`SlpMessage`]: INVITE, 200 OK, 603 Decline, 500, BYE, with the
//!   NUL the body length counts). [`MsnObject`] describes a picture
//!   (SHA1D/SHA1C as libpurple computes them); [`FileContext`] is the binary
//!   file descriptor of a file INVITE. [`PictureFetch`]: the receiver's side of
//!   a display-picture transfer, from INVITE to BYE, alone on its switchboard.
//!   [`P2pLink`]: all P2P traffic with one contact on one switchboard (session
//!   0 and its acks owned once), running picture fetches, our picture served,
//!   files received and sent side by side.
//! * **MSNFTP** — [`msnftp`]: the older file transfer (`text/x-msmsgsinvite`
//!   invitations, then `VER MSNFTP`/`USR`/`FIL`/`TFR` and 2,045-byte blocks over
//!   a direct TCP connection), receiver side only.
//! * **Server side** — [`ServerConn`] frames a server's half of a connection;
//!   [`challenge::verify_response`] and the `passport` server helpers serve the
//!   simulator.

mod b64;
mod bytesplit;
pub mod challenge;
mod command;
mod decoder;
mod error;
mod filecontext;
mod format;
pub mod link;
mod mime;
pub mod msnftp;
mod msnobject;
pub mod ns;
pub mod p2p;
pub mod passport;
pub mod picture;
pub mod sb;
mod server;
pub mod slp;
mod split;
mod status;
mod urlenc;

pub use command::{
    encode_command, is_payload_command, line_len, parse_command, Command, CommandRef,
};
pub use decoder::Decoder;
pub use error::{error_description, Error, ServerError, MAX_LINE, MAX_PAYLOAD};
pub use filecontext::{
    FileContext, CONTEXT_LEN_V2, CONTEXT_LEN_V3, FILE_TYPE_NO_PREVIEW, FILE_TYPE_PREVIEW,
    MAX_PREVIEW,
};
pub use format::TextFormat;
pub use link::{LinkEvent, LinkLimits, P2pLink, TransferId};
pub use mime::{
    datacast, Headers, Message, MessageKind, MessageRef, CONTENT_TYPE_DATACAST, CONTENT_TYPE_TEXT,
    CONTENT_TYPE_TYPING,
};
pub use msnobject::{
    encode_friendly, sha1d, MsnObject, FRIENDLY_NONE, MAX_MSNOBJ_LEN, MSNOBJ_TYPE_DISPLAY_PICTURE,
    MSNOBJ_TYPE_EMOTICON,
};
pub use ns::{CloseReason, Contact, Group, NsConfig, NsEvent, NsSession};
pub use p2p::{P2pError, P2pHeader, P2pMessage, P2pMessageRef, Reassembler};
pub use picture::{FetchIds, FetchOutcome, PictureFetch};
pub use sb::{AckMode, SbEvent, SbSession};
pub use server::ServerConn;
pub use slp::{SlpMessage, StartLine};
pub use split::{split_text, MAX_MSG_PAYLOAD};
pub use status::{List, ListBits, Status};
pub use urlenc::{url_decode, url_encode};
