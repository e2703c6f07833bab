//! UDP packets between client and server, and TCP packets between peers.

pub mod client;
pub mod peer;
pub mod server;

use crate::error::DecodeError;
use crate::wire::Reader;

/// The VERSION field of every packet.
pub const VERSION: u16 = 0x0002;

/// Reads and checks VERSION, then COMMAND and SEQ_NUM.
pub(crate) fn read_header(r: &mut Reader<'_>) -> Result<(u16, u16), DecodeError> {
    let version = r.u16("VERSION")?;
    if version != VERSION {
        return Err(DecodeError::WrongVersion(version));
    }
    Ok((r.u16("COMMAND")?, r.u16("SEQ_NUM")?))
}

/// COMMAND codes sent by the client. Those after `LOGIN_2` are listed by the spec
/// without a layout and travel as [`ClientPacket::Other`](client::ClientPacket::Other).
pub mod client_cmd {
    pub const ACK: u16 = 0x000A;
    pub const SEND_MESSAGE: u16 = 0x010E;
    pub const LOGIN: u16 = 0x03E8;
    pub const CONTACT_LIST: u16 = 0x0406;
    pub const SEARCH_UIN: u16 = 0x041A;
    pub const SEARCH_USER: u16 = 0x0424;
    pub const KEEP_ALIVE: u16 = 0x042E;
    pub const SEND_TEXT_CODE: u16 = 0x0438;
    pub const LOGIN_1: u16 = 0x044C;
    pub const INFO_REQ: u16 = 0x0460;
    pub const EXT_INFO_REQ: u16 = 0x046A;
    pub const CHANGE_PASSWORD: u16 = 0x049C;
    pub const STATUS_CHANGE: u16 = 0x04D8;
    pub const LOGIN_2: u16 = 0x0528;
    pub const UPDATE_INFO: u16 = 0x050A;
    pub const UPDATE_EXT_INFO: u16 = 0x04B0;
    /// Parameters (not in the spec; as later protocol versions): the UIN, u32.
    pub const ADD_TO_LIST: u16 = 0x053C;
    /// Also MSG_TO_NEW_USER: the spec gives both names the same code.
    pub const REQ_ADD_TO_LIST: u16 = 0x0456;
    pub const QUERY_SERVERS: u16 = 0x04BA;
    pub const QUERY_ADDONS: u16 = 0x04C4;
    pub const NEW_USER_1: u16 = 0x04EC;
    pub const NEW_USER_REG: u16 = 0x03FC;
    pub const NEW_USER_INFO: u16 = 0x04A6;
    pub const CMD_X1: u16 = 0x0442;
}

/// COMMAND codes sent by the server. Those after `STATUS_UPDATE` have no layout in
/// the spec and travel as [`ServerPacket::Other`](server::ServerPacket::Other).
pub mod server_cmd {
    pub const ACK: u16 = 0x000A;
    pub const LOGIN_REPLY: u16 = 0x005A;
    pub const USER_ONLINE: u16 = 0x006E;
    pub const USER_OFFLINE: u16 = 0x0078;
    pub const USER_FOUND: u16 = 0x008C;
    pub const RECEIVE_MESSAGE: u16 = 0x00DC;
    pub const END_OF_SEARCH: u16 = 0x00A0;
    pub const INFO_REPLY: u16 = 0x0118;
    pub const EXT_INFO_REPLY: u16 = 0x0122;
    pub const STATUS_UPDATE: u16 = 0x01A4;
    /// Not in the v2 spec: the wrong-password reply of later protocol versions
    /// (no parameters).
    pub const BAD_PASSWORD: u16 = 0x0064;
    /// Not in the v2 spec (later versions): server busy, try again later.
    pub const TRY_AGAIN: u16 = 0x00FA;
    /// Not in the v2 spec (later versions): the server does not know this session;
    /// the client must log in again.
    pub const NOT_CONNECTED: u16 = 0x00F0;
    /// Not in the v2 spec (later versions): the server ends the session.
    pub const GO_AWAY: u16 = 0x0028;
    pub const REPLY_X1: u16 = 0x021C;
    pub const REPLY_X2: u16 = 0x00E6;
    pub const UPDATE_REPLY: u16 = 0x01E0;
    pub const UPDATE_EXT_REPLY: u16 = 0x00C8;
    pub const NEW_USER_UIN: u16 = 0x0046;
    pub const NEW_USER_REPLY: u16 = 0x00B4;
    pub const QUERY_REPLY: u16 = 0x0082;
    /// Parameters are undescribed; this crate reads and writes one string.
    pub const SYSTEM_MESSAGE: u16 = 0x01C2;
}
