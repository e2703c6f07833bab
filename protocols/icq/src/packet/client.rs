//! Client -> server datagrams: `VERSION COMMAND SEQ_NUM UIN PARAMETERS`.

use super::{client_cmd as cmd, read_header, VERSION};
use crate::error::DecodeError;
use crate::types::{Status, UserRecord};
use crate::wire::{put_ip, put_str, put_u16, put_u32, put_u8, Reader};
use std::net::Ipv4Addr;

/// LOGIN's X5 as sent; `08 00 78 00` (the other copy of the spec) is accepted too.
pub const LOGIN_X5: u32 = 0x0078_0018;

/// SEND_TEXT_CODE's X1 for B_USER_DISCONNECTED and B_MESSAGE_ACK.
pub const TEXT_CODE_X1: u16 = 0x0005;

/// A packet the client sends. Fields the spec marks *Unknown* with a fixed value
/// are written as the spec gives them and ignored when read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientPacket {
    /// The header's SEQ_NUM is the server packet being acknowledged.
    Ack,
    SendMessage {
        to: u32,
        /// MESSAGE_TYPE, see [`MessageKind`](crate::MessageKind).
        kind: u16,
        text: String,
    },
    Login {
        tcp_port: u32,
        password: String,
        ip: Ipv4Addr,
        status: Status,
        login_seq: u16,
    },
    ContactList {
        uins: Vec<u32>,
    },
    SearchUin {
        search_seq: u16,
        uin: u32,
    },
    /// Search by name (nick/first/last) or by e-mail (then the others are empty).
    SearchUser {
        search_seq: u16,
        nick: String,
        first: String,
        last: String,
        email: String,
    },
    KeepAlive,
    /// E.g. "B_USER_DISCONNECTED" / "B_MESSAGE_ACK" with X1 = 5.
    SendTextCode {
        text: String,
        x1: u16,
    },
    Login1,
    InfoReq {
        info_seq: u16,
        uin: u32,
    },
    ExtInfoReq {
        info_seq: u16,
        uin: u32,
    },
    ChangePassword {
        password_seq: u16,
        password: String,
    },
    StatusChange {
        status: Status,
    },
    /// Its one parameter X1 is `00`.
    Login2,
    /// A command without a described layout; `params` are kept verbatim.
    Other {
        command: u16,
        params: Vec<u8>,
    },
}

/// A decoded client datagram: header fields plus the packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientFrame {
    pub seq: u16,
    pub uin: u32,
    pub packet: ClientPacket,
}

impl ClientFrame {
    pub fn encode(&self) -> Vec<u8> {
        self.packet.encode(self.seq, self.uin)
    }
}

impl ClientPacket {
    pub fn command(&self) -> u16 {
        match self {
            ClientPacket::Ack => cmd::ACK,
            ClientPacket::SendMessage { .. } => cmd::SEND_MESSAGE,
            ClientPacket::Login { .. } => cmd::LOGIN,
            ClientPacket::ContactList { .. } => cmd::CONTACT_LIST,
            ClientPacket::SearchUin { .. } => cmd::SEARCH_UIN,
            ClientPacket::SearchUser { .. } => cmd::SEARCH_USER,
            ClientPacket::KeepAlive => cmd::KEEP_ALIVE,
            ClientPacket::SendTextCode { .. } => cmd::SEND_TEXT_CODE,
            ClientPacket::Login1 => cmd::LOGIN_1,
            ClientPacket::InfoReq { .. } => cmd::INFO_REQ,
            ClientPacket::ExtInfoReq { .. } => cmd::EXT_INFO_REQ,
            ClientPacket::ChangePassword { .. } => cmd::CHANGE_PASSWORD,
            ClientPacket::StatusChange { .. } => cmd::STATUS_CHANGE,
            ClientPacket::Login2 => cmd::LOGIN_2,
            ClientPacket::Other { command, .. } => *command,
        }
    }

    /// The whole datagram, header included.
    pub fn encode(&self, seq: u16, uin: u32) -> Vec<u8> {
        let mut out = Vec::with_capacity(32);
        put_u16(&mut out, VERSION);
        put_u16(&mut out, self.command());
        put_u16(&mut out, seq);
        put_u32(&mut out, uin);
        self.encode_params(&mut out);
        out
    }

    fn encode_params(&self, out: &mut Vec<u8>) {
        match self {
            ClientPacket::Ack | ClientPacket::KeepAlive | ClientPacket::Login1 => {}
            ClientPacket::SendMessage { to, kind, text } => {
                put_u32(out, *to);
                put_u16(out, *kind);
                put_str(out, text);
            }
            ClientPacket::Login {
                tcp_port,
                password,
                ip,
                status,
                login_seq,
            } => {
                put_u32(out, *tcp_port);
                put_str(out, password);
                put_u32(out, 0x0000_0078); // X1
                put_ip(out, *ip);
                put_u8(out, 0x04); // X2
                put_u32(out, status.0);
                put_u32(out, 0x0000_0002); // X3
                put_u16(out, *login_seq);
                put_u32(out, 0); // X4
                put_u32(out, LOGIN_X5);
            }
            ClientPacket::ContactList { uins } => {
                // NUM_CONTACTS is a u16: a longer list is cut (sessions send at most that).
                let uins = &uins[..uins.len().min(usize::from(u16::MAX))];
                put_u16(out, uins.len() as u16);
                for uin in uins {
                    put_u32(out, *uin);
                }
            }
            ClientPacket::SearchUin { search_seq, uin }
            | ClientPacket::InfoReq {
                info_seq: search_seq,
                uin,
            }
            | ClientPacket::ExtInfoReq {
                info_seq: search_seq,
                uin,
            } => {
                put_u16(out, *search_seq);
                put_u32(out, *uin);
            }
            ClientPacket::SearchUser {
                search_seq,
                nick,
                first,
                last,
                email,
            } => {
                put_u16(out, *search_seq);
                for s in [nick, first, last, email] {
                    put_str(out, s);
                }
            }
            ClientPacket::SendTextCode { text, x1 } => {
                put_str(out, text);
                put_u16(out, *x1);
            }
            ClientPacket::ChangePassword {
                password_seq,
                password,
            } => {
                put_u16(out, *password_seq);
                put_str(out, password);
            }
            ClientPacket::StatusChange { status } => put_u32(out, status.0),
            ClientPacket::Login2 => put_u8(out, 0x00),
            ClientPacket::Other { params, .. } => out.extend_from_slice(params),
        }
    }

    /// Decodes a whole datagram. Trailing bytes after the known fields are ignored.
    pub fn decode(bytes: &[u8]) -> Result<ClientFrame, DecodeError> {
        let mut r = Reader::new(bytes);
        let (command, seq) = read_header(&mut r)?;
        let uin = r.u32("UIN")?;
        let packet = match command {
            cmd::ACK => ClientPacket::Ack,
            cmd::SEND_MESSAGE => ClientPacket::SendMessage {
                to: r.u32("RECEIVER_UIN")?,
                kind: r.u16("MESSAGE_TYPE")?,
                text: r.string("MESSAGE")?,
            },
            cmd::LOGIN => {
                let tcp_port = r.u32("PORT")?;
                let password = r.string("PASSWORD")?;
                r.skip(4, "X1")?;
                let ip = r.ip("USER_IP")?;
                r.skip(1, "X2")?;
                let status = Status(r.u32("STATUS")?);
                r.skip(4, "X3")?;
                let login_seq = r.u16("LOGIN_SEQ_NUM")?;
                // X4 and X5 carry nothing known; accept them missing or with either value.
                ClientPacket::Login {
                    tcp_port,
                    password,
                    ip,
                    status,
                    login_seq,
                }
            }
            cmd::CONTACT_LIST => {
                let n = usize::from(r.u16("NUM_CONTACTS")?);
                if n * 4 > r.remaining() {
                    return Err(DecodeError::BadLength {
                        field: "NUM_CONTACTS",
                        length: n * 4,
                        available: r.remaining(),
                    });
                }
                let mut uins = Vec::with_capacity(n);
                for _ in 0..n {
                    uins.push(r.u32("UIN")?);
                }
                ClientPacket::ContactList { uins }
            }
            cmd::SEARCH_UIN => ClientPacket::SearchUin {
                search_seq: r.u16("SEARCH_SEQ_NUM")?,
                uin: r.u32("SEARCHED_UIN")?,
            },
            cmd::SEARCH_USER => ClientPacket::SearchUser {
                search_seq: r.u16("SEARCH_SEQ_NUM")?,
                nick: r.string("NICK_NAME")?,
                first: r.string("FIRST_NAME")?,
                last: r.string("LAST_NAME")?,
                email: r.string("E_MAIL")?,
            },
            cmd::KEEP_ALIVE => ClientPacket::KeepAlive,
            cmd::SEND_TEXT_CODE => ClientPacket::SendTextCode {
                text: r.string("TEXT_CODE")?,
                x1: r.u16("X1")?,
            },
            cmd::LOGIN_1 => ClientPacket::Login1,
            cmd::INFO_REQ => ClientPacket::InfoReq {
                info_seq: r.u16("INFO_SEQ_NUM")?,
                uin: r.u32("QUERY_UIN")?,
            },
            cmd::EXT_INFO_REQ => ClientPacket::ExtInfoReq {
                info_seq: r.u16("INFO_SEQ_NUM")?,
                uin: r.u32("QUERY_UIN")?,
            },
            cmd::CHANGE_PASSWORD => ClientPacket::ChangePassword {
                password_seq: r.u16("PASSWORD_SEQ_NUM")?,
                password: r.string("NEW_PASSWORD")?,
            },
            cmd::STATUS_CHANGE => ClientPacket::StatusChange {
                status: Status(r.u32("STATUS")?),
            },
            // X1 is always 00; a LOGIN_2 without it is accepted.
            cmd::LOGIN_2 => ClientPacket::Login2,
            command => ClientPacket::Other {
                command,
                params: r.rest().to_vec(),
            },
        };
        Ok(ClientFrame { seq, uin, packet })
    }
}

/// Search criteria for SEARCH_UIN / SEARCH_USER.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SearchQuery {
    Uin(u32),
    /// Any of nick, first and last name (empty means "any").
    Name {
        nick: String,
        first: String,
        last: String,
    },
    Email(String),
}

impl SearchQuery {
    /// Whether a directory record matches (case-insensitive; empty fields match all).
    pub fn matches(&self, user: &UserRecord) -> bool {
        fn eq(want: &str, have: &str) -> bool {
            want.is_empty() || want.eq_ignore_ascii_case(have)
        }
        match self {
            SearchQuery::Uin(uin) => user.uin == *uin,
            SearchQuery::Name { nick, first, last } => {
                !(nick.is_empty() && first.is_empty() && last.is_empty())
                    && eq(nick, &user.nick)
                    && eq(first, &user.first)
                    && eq(last, &user.last)
            }
            SearchQuery::Email(email) => !email.is_empty() && eq(email, &user.email),
        }
    }
}
