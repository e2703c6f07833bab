//! Peer-to-peer TCP packets. Every frame starts with a u16 length that excludes
//! itself. CHANNEL_ACK is a CHANNEL_MESSAGE with MSG_COMMAND 0x07DA (PROTOCOL-NOTES).

use super::VERSION;
use crate::error::DecodeError;
use crate::wire::{put_ip, put_str, put_u16, put_u32, put_u8, Reader};
use std::net::Ipv4Addr;

/// MSG_COMMAND values.
pub mod msg_command {
    /// A message (CHANNEL_MESSAGE).
    pub const MESSAGE: u16 = 0x07EE;
    /// The acknowledgement of a message (CHANNEL_ACK).
    pub const ACK: u16 = 0x07DA;
    /// Cancels a message.
    pub const CANCEL: u16 = 0x07D0;
}

/// CMD_TYPE values.
pub mod cmd_type {
    /// A new, user-initiated message.
    pub const NEW: u16 = 0x0010;
    /// An auto reply / acknowledgement.
    pub const AUTO_REPLY: u16 = 0x0000;
}

/// Status of a CHANNEL_ACK (in the X3 position).
pub mod ack_status {
    pub const ACCEPTED: u16 = 0x0000;
    pub const REFUSED: u16 = 0x0001;
    pub const AWAY: u16 = 0x0004;
    pub const OCCUPIED: u16 = 0x0009;
    pub const DND: u16 = 0x000A;
    pub const NOT_AVAILABLE: u16 = 0x000E;
}

/// CHANNEL_INIT: opens a peer connection (26-byte body).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelInit {
    pub uin: u32,
    pub ip: Ipv4Addr,
    pub real_ip: Ipv4Addr,
    pub tcp_port: u32,
}

/// CHANNEL_MESSAGE, and (with another `command`) its acknowledgement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelMessage {
    pub uin: u32,
    /// MSG_COMMAND, see [`msg_command`].
    pub command: u16,
    /// UIN_2 (the sender's UIN again).
    pub uin2: u32,
    /// TYPE, as in RECEIVE_MESSAGE.
    pub kind: u16,
    /// The message; in an acknowledgement, the auto-response (empty unless away).
    pub text: String,
    pub real_ip: Ipv4Addr,
    pub ip: Ipv4Addr,
    pub tcp_port: u32,
    /// X3: 0 in messages; in an acknowledgement, see [`ack_status`].
    pub status: u16,
    /// See [`cmd_type`].
    pub cmd_type: u16,
    /// X4: pairs an acknowledgement with its message.
    pub sequence: u32,
}

impl ChannelMessage {
    /// The acknowledgement of `self` from `me`.
    pub fn ack(&self, me: &ChannelInit, auto_response: &str, status: u16) -> ChannelMessage {
        ChannelMessage {
            uin: me.uin,
            command: msg_command::ACK,
            uin2: me.uin,
            kind: self.kind,
            text: auto_response.to_string(),
            real_ip: me.real_ip,
            ip: me.ip,
            tcp_port: me.tcp_port,
            status,
            cmd_type: cmd_type::AUTO_REPLY,
            sequence: self.sequence,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerPacket {
    Init(ChannelInit),
    Message(ChannelMessage),
}

impl PeerPacket {
    /// The frame, length prefix included.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(48);
        put_u16(&mut out, 0); // LENGTH, filled in below
        match self {
            PeerPacket::Init(init) => {
                put_u8(&mut out, 0xFF); // INIT_IDENT
                put_u32(&mut out, 0x0000_0002); // X1
                put_u32(&mut out, 0); // X2
                put_u32(&mut out, init.uin);
                put_ip(&mut out, init.ip);
                put_ip(&mut out, init.real_ip);
                put_u8(&mut out, 0x04); // X3
                put_u32(&mut out, init.tcp_port);
            }
            PeerPacket::Message(m) => {
                put_u32(&mut out, m.uin);
                put_u16(&mut out, VERSION);
                put_u16(&mut out, m.command);
                put_u16(&mut out, 0); // X1
                put_u32(&mut out, m.uin2);
                put_u16(&mut out, m.kind);
                put_str(&mut out, &m.text);
                put_ip(&mut out, m.real_ip);
                put_ip(&mut out, m.ip);
                put_u32(&mut out, m.tcp_port);
                put_u8(&mut out, 0x04); // X2
                put_u16(&mut out, m.status);
                put_u16(&mut out, m.cmd_type);
                put_u32(&mut out, m.sequence);
            }
        }
        // A frame that does not fit the u16 length is cut (only possible with a
        // message text near 64 KiB, which sessions never build).
        let body = (out.len() - 2).min(usize::from(u16::MAX));
        out.truncate(body + 2);
        out[..2].copy_from_slice(&(body as u16).to_le_bytes());
        out
    }

    /// Decodes exactly one frame (length prefix included). Bytes after the frame
    /// are an error here; use [`PeerPacket::decode_stream`] for a TCP buffer.
    pub fn decode(frame: &[u8]) -> Result<PeerPacket, DecodeError> {
        match Self::decode_stream(frame)? {
            Some((packet, used)) if used == frame.len() => Ok(packet),
            Some((_, used)) => Err(DecodeError::BadLength {
                field: "LENGTH",
                length: used - 2,
                available: frame.len() - 2,
            }),
            None => {
                let mut r = Reader::new(frame);
                let len = usize::from(r.u16("LENGTH")?);
                Err(DecodeError::BadLength {
                    field: "LENGTH",
                    length: len,
                    available: r.remaining(),
                })
            }
        }
    }

    /// Decodes the first frame of a TCP receive buffer: `Ok(None)` until the whole
    /// frame has arrived, then the packet and how many bytes it used.
    pub fn decode_stream(buf: &[u8]) -> Result<Option<(PeerPacket, usize)>, DecodeError> {
        if buf.len() < 2 {
            return Ok(None);
        }
        let len = usize::from(u16::from_le_bytes([buf[0], buf[1]]));
        if buf.len() < 2 + len {
            return Ok(None);
        }
        let body = &buf[2..2 + len];
        Ok(Some((Self::decode_body(body)?, 2 + len)))
    }

    fn decode_body(body: &[u8]) -> Result<PeerPacket, DecodeError> {
        // A message has VERSION right after the UIN; an init starts with FF.
        if body.len() >= 8 && body[4..6] == VERSION.to_le_bytes() {
            return Self::decode_message(body).map(PeerPacket::Message);
        }
        let mut r = Reader::new(body);
        let first = r.u8("INIT_IDENT")?;
        if first != 0xFF {
            let command = body
                .get(6..8)
                .map_or(0, |c| u16::from_le_bytes([c[0], c[1]]));
            return Err(DecodeError::UnknownPeerPacket { first, command });
        }
        r.skip(4, "X1")?;
        r.skip(4, "X2")?;
        let uin = r.u32("MY_UIN")?;
        let ip = r.ip("MY_IP")?;
        let real_ip = r.ip("MY_IP_REAL")?;
        r.skip(1, "X3")?;
        let tcp_port = r.u32("MY_PORT")?;
        Ok(PeerPacket::Init(ChannelInit {
            uin,
            ip,
            real_ip,
            tcp_port,
        }))
    }

    fn decode_message(body: &[u8]) -> Result<ChannelMessage, DecodeError> {
        let mut r = Reader::new(body);
        let uin = r.u32("UIN")?;
        r.skip(2, "VERSION")?;
        let command = r.u16("MSG_COMMAND")?;
        r.skip(2, "X1")?;
        let uin2 = r.u32("UIN_2")?;
        let kind = r.u16("TYPE")?;
        let text = r.string("MESSAGE")?;
        let real_ip = r.ip("MY_IP_REAL")?;
        let ip = r.ip("MY_IP")?;
        let tcp_port = r.u32("PORT")?;
        r.skip(1, "X2")?;
        Ok(ChannelMessage {
            uin,
            command,
            uin2,
            kind,
            text,
            real_ip,
            ip,
            tcp_port,
            status: r.u16("X3")?,
            cmd_type: r.u16("CMD_TYPE")?,
            sequence: r.u32("X4")?,
        })
    }
}
