//! Server -> client datagrams: `VERSION COMMAND SEQ_NUM PARAMETERS` (no UIN).

use super::{read_header, server_cmd as cmd, VERSION};
use crate::error::DecodeError;
use crate::types::{ExtInfo, MessageTime, Status, UserRecord};
use crate::wire::{put_ip, put_str, put_u16, put_u32, put_u8, Reader};
use std::net::Ipv4Addr;

/// A packet the server sends. Fixed *Unknown* fields are written as the spec gives
/// them and ignored when read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerPacket {
    /// The header's SEQ_NUM is the client packet being acknowledged.
    Ack,
    LoginReply {
        uin: u32,
        ip: Ipv4Addr,
        login_seq: u16,
    },
    UserOnline {
        uin: u32,
        ip: Ipv4Addr,
        tcp_port: u32,
        real_ip: Ipv4Addr,
        status: Status,
    },
    UserOffline {
        uin: u32,
    },
    UserFound {
        search_seq: u16,
        user: UserRecord,
    },
    ReceiveMessage {
        from: u32,
        time: MessageTime,
        /// TYPE, see [`MessageKind`](crate::MessageKind).
        kind: u16,
        text: String,
    },
    EndOfSearch {
        search_seq: u16,
        more: bool,
    },
    /// Same layout as USER_FOUND.
    InfoReply {
        info_seq: u16,
        user: UserRecord,
    },
    ExtInfoReply {
        info_seq: u16,
        uin: u32,
        info: ExtInfo,
    },
    StatusUpdate {
        uin: u32,
        status: Status,
    },
    /// Wrong password (0x0064, from later protocol versions; no parameters).
    BadPassword,
    /// A command without a described layout; `params` are kept verbatim.
    Other {
        command: u16,
        params: Vec<u8>,
    },
}

/// A decoded server datagram: header SEQ_NUM plus the packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerFrame {
    pub seq: u16,
    pub packet: ServerPacket,
}

impl ServerFrame {
    pub fn encode(&self) -> Vec<u8> {
        self.packet.encode(self.seq)
    }
}

impl ServerPacket {
    pub fn command(&self) -> u16 {
        match self {
            ServerPacket::Ack => cmd::ACK,
            ServerPacket::LoginReply { .. } => cmd::LOGIN_REPLY,
            ServerPacket::UserOnline { .. } => cmd::USER_ONLINE,
            ServerPacket::UserOffline { .. } => cmd::USER_OFFLINE,
            ServerPacket::UserFound { .. } => cmd::USER_FOUND,
            ServerPacket::ReceiveMessage { .. } => cmd::RECEIVE_MESSAGE,
            ServerPacket::EndOfSearch { .. } => cmd::END_OF_SEARCH,
            ServerPacket::InfoReply { .. } => cmd::INFO_REPLY,
            ServerPacket::ExtInfoReply { .. } => cmd::EXT_INFO_REPLY,
            ServerPacket::StatusUpdate { .. } => cmd::STATUS_UPDATE,
            ServerPacket::BadPassword => cmd::BAD_PASSWORD,
            ServerPacket::Other { command, .. } => *command,
        }
    }

    /// A SYSTEM_MESSAGE (0x01C2) carrying one string.
    pub fn system_message(text: &str) -> ServerPacket {
        let mut params = Vec::new();
        put_str(&mut params, text);
        ServerPacket::Other {
            command: cmd::SYSTEM_MESSAGE,
            params,
        }
    }

    /// The whole datagram, header included.
    pub fn encode(&self, seq: u16) -> Vec<u8> {
        let mut out = Vec::with_capacity(32);
        put_u16(&mut out, VERSION);
        put_u16(&mut out, self.command());
        put_u16(&mut out, seq);
        self.encode_params(&mut out);
        out
    }

    fn encode_params(&self, out: &mut Vec<u8>) {
        match self {
            ServerPacket::Ack | ServerPacket::BadPassword => {}
            ServerPacket::LoginReply { uin, ip, login_seq } => {
                put_u32(out, *uin);
                put_ip(out, *ip);
                put_u16(out, *login_seq);
                put_u32(out, 0x0001_0001); // X1: 01 00 01 00
                put_u32(out, 0x0016_0018); // X2: 18 00 16 00
                put_u32(out, 0x0000_008C); // X3
                put_u32(out, 0x0005_0078); // X4: 78 00 05 00
                out.extend_from_slice(&[0x0A, 0x00, 0x05, 0x00, 0x01, 0x00]); // X5
            }
            ServerPacket::UserOnline {
                uin,
                ip,
                tcp_port,
                real_ip,
                status,
            } => {
                put_u32(out, *uin);
                put_ip(out, *ip);
                put_u32(out, *tcp_port);
                put_ip(out, *real_ip);
                put_u8(out, 0x04); // X1
                put_u32(out, status.0);
                put_u32(out, 0x0000_0002); // X2
            }
            ServerPacket::UserOffline { uin } => put_u32(out, *uin),
            ServerPacket::UserFound {
                search_seq: seq,
                user,
            }
            | ServerPacket::InfoReply {
                info_seq: seq,
                user,
            } => {
                put_u16(out, *seq);
                put_user(out, user);
            }
            ServerPacket::ReceiveMessage {
                from,
                time,
                kind,
                text,
            } => {
                put_u32(out, *from);
                put_u16(out, time.year);
                put_u8(out, time.month);
                put_u8(out, time.day);
                put_u8(out, time.hour);
                put_u8(out, time.minute);
                put_u16(out, *kind);
                put_str(out, text);
            }
            ServerPacket::EndOfSearch { search_seq, more } => {
                put_u16(out, *search_seq);
                put_u8(out, u8::from(*more));
            }
            ServerPacket::ExtInfoReply {
                info_seq,
                uin,
                info,
            } => {
                put_u16(out, *info_seq);
                put_u32(out, *uin);
                put_str(out, &info.city);
                put_u16(out, info.country_code);
                put_u8(out, info.country_status);
                put_str(out, &info.state);
                put_u16(out, info.age);
                put_u8(out, info.sex);
                put_str(out, &info.phone);
                put_str(out, &info.homepage);
                put_str(out, &info.about);
            }
            ServerPacket::StatusUpdate { uin, status } => {
                put_u32(out, *uin);
                put_u32(out, status.0);
            }
            ServerPacket::Other { params, .. } => out.extend_from_slice(params),
        }
    }

    /// Decodes a whole datagram. Trailing bytes after the known fields are ignored.
    pub fn decode(bytes: &[u8]) -> Result<ServerFrame, DecodeError> {
        let mut r = Reader::new(bytes);
        let (command, seq) = read_header(&mut r)?;
        let packet = match command {
            cmd::ACK => ServerPacket::Ack,
            cmd::LOGIN_REPLY => {
                let uin = r.u32("USER_UIN")?;
                let ip = r.ip("USER_IP")?;
                let login_seq = r.u16("LOGIN_SEQ_NUM")?;
                // X1..X5 carry nothing known; accept any value or none.
                ServerPacket::LoginReply { uin, ip, login_seq }
            }
            cmd::USER_ONLINE => {
                let uin = r.u32("REMOTE_UIN")?;
                let ip = r.ip("REMOTE_IP")?;
                let tcp_port = r.u32("REMOTE_PORT")?;
                let real_ip = r.ip("REMOTE_REAL_IP")?;
                r.skip(1, "X1")?;
                let status = Status(r.u32("STATUS")?);
                ServerPacket::UserOnline {
                    uin,
                    ip,
                    tcp_port,
                    real_ip,
                    status,
                }
            }
            cmd::USER_OFFLINE => ServerPacket::UserOffline {
                uin: r.u32("REMOTE_UIN")?,
            },
            cmd::USER_FOUND => ServerPacket::UserFound {
                search_seq: r.u16("SEARCH_SEQ_NUM")?,
                user: read_user(&mut r)?,
            },
            cmd::RECEIVE_MESSAGE => {
                let from = r.u32("REMOTE_UIN")?;
                let time = MessageTime {
                    year: r.u16("YEAR")?,
                    month: r.u8("MONTH")?,
                    day: r.u8("DAY")?,
                    hour: r.u8("HOUR")?,
                    minute: r.u8("MINUTE")?,
                };
                ServerPacket::ReceiveMessage {
                    from,
                    time,
                    kind: r.u16("TYPE")?,
                    text: r.string("MESSAGE")?,
                }
            }
            cmd::END_OF_SEARCH => ServerPacket::EndOfSearch {
                search_seq: r.u16("SEARCH_SEQ_NUM")?,
                more: r.u8("MORE_FOUND")? != 0,
            },
            cmd::INFO_REPLY => ServerPacket::InfoReply {
                info_seq: r.u16("INFO_SEQ_NUM")?,
                user: read_user(&mut r)?,
            },
            cmd::EXT_INFO_REPLY => ServerPacket::ExtInfoReply {
                info_seq: r.u16("INFO_SEQ_NUM")?,
                uin: r.u32("REMOTE_UIN")?,
                info: ExtInfo {
                    city: r.string("CITY")?,
                    country_code: r.u16("COUNTRY_CODE")?,
                    country_status: r.u8("COUNTRY_STATUS")?,
                    state: r.string("STATE")?,
                    age: r.u16("AGE")?,
                    sex: r.u8("SEX")?,
                    phone: r.string("PHONE")?,
                    homepage: r.string("HOME_PAGE")?,
                    about: r.string("ABOUT")?,
                },
            },
            cmd::STATUS_UPDATE => ServerPacket::StatusUpdate {
                uin: r.u32("REMOTE_UIN")?,
                status: Status(r.u32("STATUS")?),
            },
            cmd::BAD_PASSWORD => ServerPacket::BadPassword,
            command => ServerPacket::Other {
                command,
                params: r.rest().to_vec(),
            },
        };
        Ok(ServerFrame { seq, packet })
    }
}

/// The text of a SYSTEM_MESSAGE's parameters: one string when they hold one,
/// otherwise the raw bytes read as Windows-1252 without NULs (the layout is
/// undescribed, so nothing is thrown away).
pub fn system_message_text(params: &[u8]) -> String {
    let mut r = Reader::new(params);
    match r.string("TEXT") {
        Ok(text) if r.remaining() == 0 => text,
        _ => {
            let kept: Vec<u8> = params.iter().copied().filter(|&b| b != 0).collect();
            crate::text::decode_cp1252(&kept)
        }
    }
}

fn put_user(out: &mut Vec<u8>, user: &UserRecord) {
    put_u32(out, user.uin);
    for s in [&user.nick, &user.first, &user.last, &user.email] {
        put_str(out, s);
    }
    put_u8(out, if user.auth_required { 0x00 } else { 0x01 });
}

fn read_user(r: &mut Reader<'_>) -> Result<UserRecord, DecodeError> {
    Ok(UserRecord {
        uin: r.u32("UIN")?,
        nick: r.string("NICK_NAME")?,
        first: r.string("FIRST_NAME")?,
        last: r.string("LAST_NAME")?,
        email: r.string("E_MAIL")?,
        auth_required: r.u8("AUTHORIZE")? == 0x00,
    })
}
