//! Simulated MSN Messenger (MSNP9) servers and a scriptable MSN client, built
//! on `msn-proto`.
//!
//! Example `msn:` section of the simulator's YAML file:
//!
//! ```yaml
//! msn:
//!   host: 127.0.0.1          # default
//!   dispatch_port: 1863      # default; 0 picks a free port (tests)
//!   notification_port: 1865  # default
//!   switchboard_port: 1864   # default
//!   http_port: 1880          # default: nexus /rdr/pprdr.asp and Passport /login
//!   challenges: false        # true: send CHL now and then and check QRY
//!   dalogin_full_url: true   # false: DALogin=host:port/login (no scheme)
//!   dalogin_https: false     # true: DALogin=https://host:port/login on the plain-HTTP
//!                            # port (escargot's default); a TLS hello gets 400
//!   users:
//!     - email: alice@hotmail.com
//!       password: secret
//!       friendly_name: Alice     # optional, defaults to the email
//!       groups:                  # group 0 "Other Contacts" always exists
//!         - { id: 1, name: Friends }
//!       contacts:
//!         - { email: bob@hotmail.com, lists: [FL, AL], groups: [1] }
//!     - email: bob@hotmail.com
//!       password: hunter2
//!       contacts:
//!         - { email: alice@hotmail.com }   # lists default to [FL, AL]
//!     - email: carol@hotmail.com
//!       password: pw
//!       login_redirect: true     # /login answers 302 to /login2 for her
//! ```
//!
//! Behaviour: the dispatch server answers `USR TWN I` with `XFR NS` to the
//! notification server and closes. The notification server runs `VER`/`CVR`/
//! `USR TWN` with a ticket from the HTTP login endpoint (200 with `from-PP`
//! or 401 `da-status=failed`); a second sign-in of the same user ends the
//! first with `OUT OTH`. `SYN` sends `GTC`, `BLP`, `LSG` and `LST`. `CHG`
//! fans out `NLN`/`FLN` to online users who have the user on their FL (not
//! if blocked); the first `CHG` gets `ILN` for online contacts. `ADD`/`REM`/
//! `REA`/`ADG`/`RMG`/`REG` edit the lists (adding someone to FL puts you on
//! their RL and tells them `ADD 0 RL` if online). `XFR SB` hands out a
//! switchboard cookie; on the switchboard `CAL` answers 217 for offline or
//! hidden users, else `RINGING` and an `RNG` to the callee, who joins with
//! `ANS` (gets `IRO`s; the others get `JOI`). `MSG` goes to every other
//! participant, with `ACK`/`NAK` per its mode (`NAK` when nobody else is
//! there or the payload exceeds 1664 bytes); leaving sends `BYE`.
//! An `application/x-msnmsgrp2p` `MSG` goes only to the participant its
//! `P2P-Dest` names (`NAK` if nobody here), byte for byte.
//!
//! Display pictures (Messenger 6.x): the MSNObject a user sends with `CHG`
//! (fifth parameter) is kept as received and sent as the fifth parameter of
//! the `ILN`/`NLN` lines watchers get; a `CHG` without one clears it. The
//! scriptable [`Client`] can own a picture ([`Client::set_display_picture`])
//! and serves it over any switchboard with the MSNC/MSNSLP sender flow of
//! [`picture`]. It remembers the MSNObjects its contacts announce
//! ([`Client::display_picture_of`]) and fetches them with the receiver side
//! of that flow, checking SHA1D ([`Client::fetch_display_picture`]).
//!
//! Files ([`files`], [`msnftp`]): the client receives files offered by
//! MSNSLP (EUF-GUID `{5D3E02AB-...}`, AppID 2), accepting or declining by
//! [`Client::set_file_policy`], turning down direct-connection offers and
//! taking the data over the switchboard ([`ClientEvent::FileReceived`],
//! [`Client::files_received`]); it sends files by MSNSLP
//! ([`Client::send_file`], with or without Messenger 6.x's direct-connection
//! offer first: [`Client::set_send_transreq`]) and by MSNFTP
//! ([`Client::send_file_msnftp`]: a `text/x-msmsgsinvite` invitation, then
//! one connection served on an ephemeral 127.0.0.1 port). Outcomes:
//! `FileSent`, `FileDeclined`, `FileFailed`. Every step has a timeout.
//! Passwords and tickets are never logged.

pub mod client;
mod config;
mod conn;
pub mod files;
#[cfg(test)]
mod files_tests;
mod http;
pub mod msnftp;
mod ns_server;
pub mod picture;
#[cfg(test)]
mod picture_tests;
mod sb_server;
mod server;
mod state;
#[cfg(test)]
mod tests;

pub use client::{client_cli, run_client, Client, ClientArgs, ClientEvent, ReceivedFile};
pub use config::{Config, ContactConfig, GroupConfig, UserConfig};
pub use files::FilePolicy;
/// Protocol types the client API takes (statuses, text formats).
pub use msn_proto::{Message, MsnObject, Status, TextFormat};
pub use server::Server;
