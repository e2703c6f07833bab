//! Byte-exact encodings of every packet the spec lays out, written field by field
//! from the spec's tables, decoded back to the same value.

use icq_proto::*;
use std::net::Ipv4Addr;

/// Encodes, compares with the spec bytes, decodes back.
fn client(packet: ClientPacket, seq: u16, uin: u32, expected: &[u8]) {
    let bytes = packet.encode(seq, uin);
    assert_eq!(bytes, expected, "{packet:?}");
    let frame = ClientPacket::decode(expected).unwrap();
    assert_eq!(frame, ClientFrame { seq, uin, packet });
}

fn server(packet: ServerPacket, seq: u16, expected: &[u8]) {
    let bytes = packet.encode(seq);
    assert_eq!(bytes, expected, "{packet:?}");
    assert_eq!(
        ServerPacket::decode(expected).unwrap(),
        ServerFrame { seq, packet }
    );
}

// ---- client -> server ----

#[test]
fn client_ack() {
    #[rustfmt::skip]
    let bytes = [
        0x02, 0x00,             // VERSION
        0x0A, 0x00,             // COMMAND ACK
        0x07, 0x00,             // SEQ_NUM (the server's packet acknowledged)
        0x39, 0x30, 0x00, 0x00, // UIN 12345
    ];
    client(ClientPacket::Ack, 7, 12345, &bytes);
}

#[test]
fn send_message() {
    #[rustfmt::skip]
    let bytes = [
        0x02, 0x00, 0x0E, 0x01, 0x03, 0x00, 0x39, 0x30, 0x00, 0x00, // header, SEND_MESSAGE seq 3 uin 12345
        0x31, 0xD4, 0x00, 0x00, // RECEIVER_UIN 54321
        0x01, 0x00,             // MESSAGE_TYPE text
        0x03, 0x00,             // LENGTH 3 (incl. NUL)
        b'H', b'i', 0x00,       // MESSAGE
    ];
    client(
        ClientPacket::SendMessage {
            to: 54321,
            kind: 1,
            text: "Hi".into(),
        },
        3,
        12345,
        &bytes,
    );
}

#[test]
fn send_message_url_with_fe_separator() {
    #[rustfmt::skip]
    let bytes = [
        0x02, 0x00, 0x0E, 0x01, 0x04, 0x00, 0x39, 0x30, 0x00, 0x00,
        0x31, 0xD4, 0x00, 0x00, // RECEIVER_UIN
        0x04, 0x00,             // MESSAGE_TYPE URL
        0x05, 0x00,             // LENGTH
        b'd', 0xFE, b'u', 0xE9, 0x00, // "d" FE "u" é NUL
    ];
    client(
        ClientPacket::SendMessage {
            to: 54321,
            kind: 4,
            text: "dþué".into(),
        },
        4,
        12345,
        &bytes,
    );
}

#[test]
fn login() {
    #[rustfmt::skip]
    let bytes = [
        0x02, 0x00, 0xE8, 0x03, 0x01, 0x00, 0x39, 0x30, 0x00, 0x00, // header LOGIN seq 1
        0xD2, 0x04, 0x00, 0x00, // PORT 1234
        0x07, 0x00,             // LENGTH
        b's', b'e', b'c', b'r', b'e', b't', 0x00, // PASSWORD
        0x78, 0x00, 0x00, 0x00, // X1
        0x7F, 0x00, 0x00, 0x01, // USER_IP 127.0.0.1
        0x04,                   // X2
        0x01, 0x00, 0x00, 0x00, // STATUS away
        0x02, 0x00, 0x00, 0x00, // X3
        0x01, 0x00,             // LOGIN_SEQ_NUM
        0x00, 0x00, 0x00, 0x00, // X4
        0x18, 0x00, 0x78, 0x00, // X5
    ];
    let login = ClientPacket::Login {
        tcp_port: 1234,
        password: "secret".into(),
        ip: Ipv4Addr::LOCALHOST,
        status: Status::AWAY,
        login_seq: 1,
    };
    client(login.clone(), 1, 12345, &bytes);
    // The other copy of the spec has X5 = 08 00 78 00: accepted too.
    let mut other = bytes.to_vec();
    let n = other.len();
    other[n - 4] = 0x08;
    assert_eq!(ClientPacket::decode(&other).unwrap().packet, login);
}

#[test]
fn contact_list() {
    #[rustfmt::skip]
    let bytes = [
        0x02, 0x00, 0x06, 0x04, 0x02, 0x00, 0x39, 0x30, 0x00, 0x00, // header CONTACT_LIST
        0x02, 0x00,             // NUM_CONTACTS
        0x31, 0xD4, 0x00, 0x00, // UIN 54321
        0x01, 0x00, 0x00, 0x00, // UIN 1
    ];
    client(
        ClientPacket::ContactList {
            uins: vec![54321, 1],
        },
        2,
        12345,
        &bytes,
    );
}

#[test]
fn search_uin() {
    #[rustfmt::skip]
    let bytes = [
        0x02, 0x00, 0x1A, 0x04, 0x05, 0x00, 0x39, 0x30, 0x00, 0x00, // header SEARCH_UIN
        0x09, 0x00,             // SEARCH_SEQ_NUM
        0x31, 0xD4, 0x00, 0x00, // SEARCHED_UIN
    ];
    client(
        ClientPacket::SearchUin {
            search_seq: 9,
            uin: 54321,
        },
        5,
        12345,
        &bytes,
    );
}

#[test]
fn search_user() {
    #[rustfmt::skip]
    let bytes = [
        0x02, 0x00, 0x24, 0x04, 0x05, 0x00, 0x39, 0x30, 0x00, 0x00, // header SEARCH_USER
        0x0A, 0x00,             // SEARCH_SEQ_NUM
        0x04, 0x00, b'b', b'o', b'b', 0x00, // NICK_NAME
        0x01, 0x00, 0x00,       // FIRST_NAME (empty)
        0x01, 0x00, 0x00,       // LAST_NAME (empty)
        0x01, 0x00, 0x00,       // E_MAIL (empty)
    ];
    client(
        ClientPacket::SearchUser {
            search_seq: 10,
            nick: "bob".into(),
            first: String::new(),
            last: String::new(),
            email: String::new(),
        },
        5,
        12345,
        &bytes,
    );
}

#[test]
fn keep_alive() {
    let bytes = [0x02, 0x00, 0x2E, 0x04, 0x08, 0x00, 0x39, 0x30, 0x00, 0x00]; // header only
    client(ClientPacket::KeepAlive, 8, 12345, &bytes);
}

#[test]
fn send_text_code() {
    #[rustfmt::skip]
    let bytes = [
        0x02, 0x00, 0x38, 0x04, 0x09, 0x00, 0x39, 0x30, 0x00, 0x00, // header SEND_TEXT_CODE
        0x0E, 0x00,             // LENGTH 14
        b'B', b'_', b'M', b'E', b'S', b'S', b'A', b'G', b'E', b'_', b'A', b'C', b'K', 0x00,
        0x05, 0x00,             // X1
    ];
    client(
        ClientPacket::SendTextCode {
            text: "B_MESSAGE_ACK".into(),
            x1: 5,
        },
        9,
        12345,
        &bytes,
    );
}

#[test]
fn login_1() {
    let bytes = [0x02, 0x00, 0x4C, 0x04, 0x02, 0x00, 0x39, 0x30, 0x00, 0x00]; // no parameters
    client(ClientPacket::Login1, 2, 12345, &bytes);
}

#[test]
fn info_req() {
    #[rustfmt::skip]
    let bytes = [
        0x02, 0x00, 0x60, 0x04, 0x06, 0x00, 0x39, 0x30, 0x00, 0x00, // header INFO_REQ
        0x03, 0x00,             // INFO_SEQ_NUM
        0x31, 0xD4, 0x00, 0x00, // QUERY_UIN
    ];
    client(
        ClientPacket::InfoReq {
            info_seq: 3,
            uin: 54321,
        },
        6,
        12345,
        &bytes,
    );
}

#[test]
fn ext_info_req() {
    #[rustfmt::skip]
    let bytes = [
        0x02, 0x00, 0x6A, 0x04, 0x06, 0x00, 0x39, 0x30, 0x00, 0x00, // header EXT_INFO_REQ
        0x03, 0x00,             // INFO_SEQ_NUM
        0x31, 0xD4, 0x00, 0x00, // QUERY_UIN
    ];
    client(
        ClientPacket::ExtInfoReq {
            info_seq: 3,
            uin: 54321,
        },
        6,
        12345,
        &bytes,
    );
}

#[test]
fn change_password() {
    #[rustfmt::skip]
    let bytes = [
        0x02, 0x00, 0x9C, 0x04, 0x06, 0x00, 0x39, 0x30, 0x00, 0x00, // header CHANGE_PASSWORD
        0x02, 0x00,             // PASSWORD_SEQ_NUM
        0x04, 0x00, b'n', b'e', b'w', 0x00, // NEW_PASSWORD
    ];
    client(
        ClientPacket::ChangePassword {
            password_seq: 2,
            password: "new".into(),
        },
        6,
        12345,
        &bytes,
    );
}

#[test]
fn status_change() {
    #[rustfmt::skip]
    let bytes = [
        0x02, 0x00, 0xD8, 0x04, 0x06, 0x00, 0x39, 0x30, 0x00, 0x00, // header STATUS_CHANGE
        0x00, 0x01, 0x00, 0x00, // STATUS invisible
    ];
    client(
        ClientPacket::StatusChange {
            status: Status::INVISIBLE,
        },
        6,
        12345,
        &bytes,
    );
    let dnd = [
        0x02, 0x00, 0xD8, 0x04, 0x06, 0x00, 0x39, 0x30, 0x00, 0x00, 0x11, 0x00, 0x00, 0x00,
    ];
    client(
        ClientPacket::StatusChange {
            status: Status::DND,
        },
        6,
        12345,
        &dnd,
    );
}

#[test]
fn login_2() {
    #[rustfmt::skip]
    let bytes = [
        0x02, 0x00, 0x28, 0x05, 0x04, 0x00, 0x39, 0x30, 0x00, 0x00, // header LOGIN_2
        0x00,                   // X1
    ];
    client(ClientPacket::Login2, 4, 12345, &bytes);
}

#[test]
fn client_other_keeps_params() {
    #[rustfmt::skip]
    let bytes = [
        0x02, 0x00, 0x3C, 0x05, 0x04, 0x00, 0x39, 0x30, 0x00, 0x00, // header ADD_TO_LIST
        0x31, 0xD4, 0x00, 0x00, // params kept verbatim
    ];
    client(
        ClientPacket::Other {
            command: client_cmd::ADD_TO_LIST,
            params: vec![0x31, 0xD4, 0, 0],
        },
        4,
        12345,
        &bytes,
    );
}

// ---- server -> client ----

#[test]
fn server_ack() {
    let bytes = [0x02, 0x00, 0x0A, 0x00, 0x01, 0x00]; // VERSION, ACK, SEQ_NUM (client's)
    server(ServerPacket::Ack, 1, &bytes);
}

#[test]
fn login_reply() {
    #[rustfmt::skip]
    let bytes = [
        0x02, 0x00, 0x5A, 0x00, 0x00, 0x00, // header LOGIN_REPLY seq 0
        0x39, 0x30, 0x00, 0x00, // USER_UIN
        0xC0, 0xA8, 0x00, 0x02, // USER_IP 192.168.0.2
        0x01, 0x00,             // LOGIN_SEQ_NUM
        0x01, 0x00, 0x01, 0x00, // X1
        0x18, 0x00, 0x16, 0x00, // X2
        0x8C, 0x00, 0x00, 0x00, // X3
        0x78, 0x00, 0x05, 0x00, // X4
        0x0A, 0x00, 0x05, 0x00, 0x01, 0x00, // X5
    ];
    server(
        ServerPacket::LoginReply {
            uin: 12345,
            ip: Ipv4Addr::new(192, 168, 0, 2),
            login_seq: 1,
        },
        0,
        &bytes,
    );
}

#[test]
fn user_online() {
    #[rustfmt::skip]
    let bytes = [
        0x02, 0x00, 0x6E, 0x00, 0x01, 0x00, // header USER_ONLINE seq 1
        0x31, 0xD4, 0x00, 0x00, // REMOTE_UIN
        0x0A, 0x00, 0x00, 0x01, // REMOTE_IP 10.0.0.1
        0xE8, 0x04, 0x00, 0x00, // REMOTE_PORT 1256
        0xC0, 0xA8, 0x01, 0x05, // REMOTE_REAL_IP 192.168.1.5
        0x04,                   // X1
        0x01, 0x00, 0x00, 0x00, // STATUS away
        0x02, 0x00, 0x00, 0x00, // X2
    ];
    server(
        ServerPacket::UserOnline {
            uin: 54321,
            ip: Ipv4Addr::new(10, 0, 0, 1),
            tcp_port: 1256,
            real_ip: Ipv4Addr::new(192, 168, 1, 5),
            status: Status::AWAY,
        },
        1,
        &bytes,
    );
}

#[test]
fn user_offline() {
    #[rustfmt::skip]
    let bytes = [
        0x02, 0x00, 0x78, 0x00, 0x02, 0x00, // header USER_OFFLINE
        0x31, 0xD4, 0x00, 0x00, // REMOTE_UIN
    ];
    server(ServerPacket::UserOffline { uin: 54321 }, 2, &bytes);
}

#[test]
fn user_found() {
    #[rustfmt::skip]
    let bytes = [
        0x02, 0x00, 0x8C, 0x00, 0x03, 0x00, // header USER_FOUND
        0x0A, 0x00,             // SEARCH_SEQ_NUM
        0x31, 0xD4, 0x00, 0x00, // FOUND_UIN
        0x04, 0x00, b'b', b'o', b'b', 0x00, // NICK_NAME
        0x04, 0x00, b'B', b'o', b'b', 0x00, // FIRST_NAME
        0x02, 0x00, b'S', 0x00, // LAST_NAME
        0x04, 0x00, b'b', b'@', b'x', 0x00, // E_MAIL
        0x01,                   // AUTHORIZE: anyone may add
    ];
    server(
        ServerPacket::UserFound {
            search_seq: 10,
            user: UserRecord {
                uin: 54321,
                nick: "bob".into(),
                first: "Bob".into(),
                last: "S".into(),
                email: "b@x".into(),
                auth_required: false,
            },
        },
        3,
        &bytes,
    );
}

#[test]
fn receive_message() {
    #[rustfmt::skip]
    let bytes = [
        0x02, 0x00, 0xDC, 0x00, 0x04, 0x00, // header RECEIVE_MESSAGE
        0x31, 0xD4, 0x00, 0x00, // REMOTE_UIN
        0xCE, 0x07,             // YEAR 1998
        0x04,                   // MONTH
        0x0C,                   // DAY
        0x11,                   // HOUR
        0x2A,                   // MINUTE
        0x01, 0x00,             // TYPE text
        0x06, 0x00, b'h', b'e', b'l', b'l', b'o', 0x00, // MESSAGE
    ];
    server(
        ServerPacket::ReceiveMessage {
            from: 54321,
            time: MessageTime {
                year: 1998,
                month: 4,
                day: 12,
                hour: 17,
                minute: 42,
            },
            kind: 1,
            text: "hello".into(),
        },
        4,
        &bytes,
    );
}

#[test]
fn receive_you_were_added() {
    #[rustfmt::skip]
    let bytes = [
        0x02, 0x00, 0xDC, 0x00, 0x05, 0x00, // header RECEIVE_MESSAGE
        0x31, 0xD4, 0x00, 0x00, // REMOTE_UIN
        0xCE, 0x07, 0x04, 0x0C, 0x11, 0x2A, // date
        0x0C, 0x00,             // TYPE 'you were added'
        0x0A, 0x00,             // LENGTH 10
        b'b', 0xFE, b'B', 0xFE, b'S', 0xFE, b'e', 0xFE, b'0', 0x00, // nick FE first FE last FE email FE auth
    ];
    let frame = ServerPacket::decode(&bytes).unwrap();
    let ServerPacket::ReceiveMessage { kind, text, .. } = &frame.packet else {
        panic!()
    };
    assert_eq!(
        MessageContent::parse(*kind, text),
        MessageContent::Added {
            nick: "b".into(),
            first: "B".into(),
            last: "S".into(),
            email: "e".into(),
            auth_required: true,
        }
    );
    assert_eq!(frame.encode(), bytes);
}

#[test]
fn end_of_search() {
    #[rustfmt::skip]
    let bytes = [
        0x02, 0x00, 0xA0, 0x00, 0x05, 0x00, // header END_OF_SEARCH
        0x0A, 0x00,             // SEARCH_SEQ_NUM
        0x01,                   // MORE_FOUND
    ];
    server(
        ServerPacket::EndOfSearch {
            search_seq: 10,
            more: true,
        },
        5,
        &bytes,
    );
}

#[test]
fn info_reply() {
    #[rustfmt::skip]
    let bytes = [
        0x02, 0x00, 0x18, 0x01, 0x06, 0x00, // header INFO_REPLY
        0x03, 0x00,             // INFO_SEQ_NUM
        0x31, 0xD4, 0x00, 0x00, // REMOTE_UIN
        0x02, 0x00, b'b', 0x00, // NICK_NAME
        0x01, 0x00, 0x00,       // FIRST_NAME
        0x01, 0x00, 0x00,       // LAST_NAME
        0x01, 0x00, 0x00,       // E_MAIL
        0x00,                   // AUTHORIZE: must authorize
    ];
    server(
        ServerPacket::InfoReply {
            info_seq: 3,
            user: UserRecord {
                uin: 54321,
                nick: "b".into(),
                auth_required: true,
                ..Default::default()
            },
        },
        6,
        &bytes,
    );
}

#[test]
fn ext_info_reply() {
    #[rustfmt::skip]
    let bytes = [
        0x02, 0x00, 0x22, 0x01, 0x07, 0x00, // header EXT_INFO_REPLY
        0x03, 0x00,             // INFO_SEQ_NUM
        0x31, 0xD4, 0x00, 0x00, // REMOTE_UIN
        0x04, 0x00, b'U', b'm', b'e', 0x00, // CITY
        0x2E, 0x00,             // COUNTRY_CODE 46 (Sweden)
        0xFE,                   // COUNTRY_STATUS
        0x01, 0x00, 0x00,       // STATE
        0x15, 0x00,             // AGE 21
        0x02,                   // SEX male
        0x02, 0x00, b'1', 0x00, // PHONE
        0x02, 0x00, b'h', 0x00, // HOME_PAGE
        0x02, 0x00, b'a', 0x00, // ABOUT
    ];
    server(
        ServerPacket::ExtInfoReply {
            info_seq: 3,
            uin: 54321,
            info: ExtInfo {
                city: "Ume".into(),
                country_code: 46,
                country_status: 0xFE,
                state: String::new(),
                age: 21,
                sex: 2,
                phone: "1".into(),
                homepage: "h".into(),
                about: "a".into(),
            },
        },
        7,
        &bytes,
    );
}

#[test]
fn status_update() {
    #[rustfmt::skip]
    let bytes = [
        0x02, 0x00, 0xA4, 0x01, 0x08, 0x00, // header STATUS_UPDATE
        0x31, 0xD4, 0x00, 0x00, // REMOTE_UIN
        0x11, 0x00, 0x00, 0x00, // STATUS DND
    ];
    server(
        ServerPacket::StatusUpdate {
            uin: 54321,
            status: Status::DND,
        },
        8,
        &bytes,
    );
}

#[test]
fn bad_password_and_system_message() {
    server(
        ServerPacket::BadPassword,
        1,
        &[0x02, 0x00, 0x64, 0x00, 0x01, 0x00],
    );
    #[rustfmt::skip]
    let bytes = [
        0x02, 0x00, 0xC2, 0x01, 0x02, 0x00, // header SYSTEM_MESSAGE
        0x03, 0x00, b'h', b'i', 0x00,       // one string (this crate's reading)
    ];
    server(ServerPacket::system_message("hi"), 2, &bytes);
}

// ---- peer to peer ----

#[test]
fn channel_init() {
    #[rustfmt::skip]
    let bytes = [
        0x1A, 0x00,             // LENGTH 26
        0xFF,                   // INIT_IDENT
        0x02, 0x00, 0x00, 0x00, // X1
        0x00, 0x00, 0x00, 0x00, // X2
        0x39, 0x30, 0x00, 0x00, // MY_UIN
        0x0A, 0x00, 0x00, 0x01, // MY_IP
        0xC0, 0xA8, 0x01, 0x05, // MY_IP_REAL
        0x04,                   // X3
        0xE8, 0x04, 0x00, 0x00, // MY_PORT 1256
    ];
    let p = PeerPacket::Init(ChannelInit {
        uin: 12345,
        ip: Ipv4Addr::new(10, 0, 0, 1),
        real_ip: Ipv4Addr::new(192, 168, 1, 5),
        tcp_port: 1256,
    });
    assert_eq!(p.encode(), bytes);
    assert_eq!(PeerPacket::decode(&bytes).unwrap(), p);
}

#[rustfmt::skip]
const CHANNEL_MESSAGE: [u8; 45] = [
    0x2B, 0x00,             // LENGTH 43
    0x39, 0x30, 0x00, 0x00, // UIN
    0x02, 0x00,             // VERSION
    0xEE, 0x07,             // MSG_COMMAND message
    0x00, 0x00,             // X1
    0x39, 0x30, 0x00, 0x00, // UIN_2
    0x01, 0x00,             // TYPE text
    0x04, 0x00, b'H', b'e', b'y', 0x00, // MESSAGE
    0xC0, 0xA8, 0x01, 0x05, // MY_IP_REAL
    0x0A, 0x00, 0x00, 0x01, // MY_IP
    0xE8, 0x04, 0x00, 0x00, // PORT
    0x04,                   // X2
    0x00, 0x00,             // X3
    0x10, 0x00,             // CMD_TYPE new message
    0x00, 0x00, 0xFF, 0xFF, // X4
];

fn me() -> ChannelInit {
    ChannelInit {
        uin: 12345,
        ip: Ipv4Addr::new(10, 0, 0, 1),
        real_ip: Ipv4Addr::new(192, 168, 1, 5),
        tcp_port: 1256,
    }
}

fn channel_message() -> ChannelMessage {
    ChannelMessage {
        uin: 12345,
        command: icq_proto::packet::peer::msg_command::MESSAGE,
        uin2: 12345,
        kind: 1,
        text: "Hey".into(),
        real_ip: me().real_ip,
        ip: me().ip,
        tcp_port: 1256,
        status: 0,
        cmd_type: icq_proto::packet::peer::cmd_type::NEW,
        sequence: 0xFFFF_0000,
    }
}

#[test]
fn channel_message_bytes() {
    let p = PeerPacket::Message(channel_message());
    assert_eq!(p.encode(), CHANNEL_MESSAGE);
    assert_eq!(PeerPacket::decode(&CHANNEL_MESSAGE).unwrap(), p);
}

#[test]
fn channel_ack() {
    #[rustfmt::skip]
    let bytes = [
        0x2A, 0x00,             // LENGTH 42
        0x39, 0x30, 0x00, 0x00, // UIN
        0x02, 0x00,             // VERSION
        0xDA, 0x07,             // MSG_COMMAND ack
        0x00, 0x00,             // X1
        0x39, 0x30, 0x00, 0x00, // UIN_2
        0x01, 0x00,             // TYPE
        0x03, 0x00, b'z', b'z', 0x00, // MESSAGE: auto-response
        0xC0, 0xA8, 0x01, 0x05, // MY_IP_REAL
        0x0A, 0x00, 0x00, 0x01, // MY_IP
        0xE8, 0x04, 0x00, 0x00, // PORT
        0x04,                   // X2
        0x04, 0x00,             // X3: status away
        0x00, 0x00,             // CMD_TYPE auto reply
        0x00, 0x00, 0xFF, 0xFF, // X4 of the acknowledged message
    ];
    let ack = channel_message().ack(&me(), "zz", icq_proto::packet::peer::ack_status::AWAY);
    let p = PeerPacket::Message(ack);
    assert_eq!(p.encode(), bytes);
    assert_eq!(PeerPacket::decode(&bytes).unwrap(), p);
}

#[test]
fn peer_stream_framing() {
    let mut buf = CHANNEL_MESSAGE.to_vec();
    buf.extend_from_slice(&CHANNEL_MESSAGE[..10]);
    assert_eq!(PeerPacket::decode_stream(&buf[..20]).unwrap(), None);
    let (p, used) = PeerPacket::decode_stream(&buf).unwrap().unwrap();
    assert_eq!(used, CHANNEL_MESSAGE.len());
    assert_eq!(p, PeerPacket::Message(channel_message()));
    assert_eq!(PeerPacket::decode_stream(&buf[used..]).unwrap(), None);
    assert!(PeerPacket::decode(&buf).is_err(), "bytes after the frame");
}

// ---- errors ----

#[test]
fn decode_errors_are_typed() {
    assert!(matches!(
        ServerPacket::decode(&[0x02]),
        Err(DecodeError::ShortPacket { .. })
    ));
    assert_eq!(
        ServerPacket::decode(&[0x03, 0x00, 0x0A, 0x00, 0x00, 0x00]),
        Err(DecodeError::WrongVersion(3))
    );
    // A string length beyond the packet.
    let bad = [
        0x02, 0x00, 0x0E, 0x01, 0x01, 0x00, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0xFF, 0xFF, b'a',
    ];
    let err = ClientPacket::decode(&bad).unwrap_err();
    assert!(matches!(
        err,
        DecodeError::BadLength {
            field: "MESSAGE",
            length: 65535,
            available: 1
        }
    ));
    assert_eq!(
        err.to_string(),
        "bad length for MESSAGE: 65535 byte(s) claimed, 1 left"
    );
    // A contact count beyond the packet.
    let bad = [0x02, 0x00, 0x06, 0x04, 0x01, 0x00, 0, 0, 0, 0, 0xFF, 0xFF];
    assert!(matches!(
        ClientPacket::decode(&bad),
        Err(DecodeError::BadLength { .. })
    ));
    assert!(matches!(
        PeerPacket::decode(&[0x02, 0x00, 0x01, 0x02]),
        Err(DecodeError::UnknownPeerPacket { first: 1, .. })
    ));
    assert!(matches!(
        PeerPacket::decode(&[0x09, 0x00, 0xFF]),
        Err(DecodeError::BadLength { .. })
    ));
}

#[test]
fn strings_are_read_liberally() {
    // No trailing NUL, and text after an embedded NUL, are both tolerated.
    let no_nul = [0x02, 0x00, 0x78, 0x00, 0x00, 0x00, 1, 0, 0, 0, 0xFF];
    assert_eq!(
        ServerPacket::decode(&no_nul).unwrap().packet,
        ServerPacket::UserOffline { uin: 1 },
        "trailing bytes ignored"
    );
    let s = [
        0x02, 0x00, 0x38, 0x04, 1, 0, 0, 0, 0, 0, 0x04, 0x00, b'a', 0, b'b', b'c', 5, 0,
    ];
    assert_eq!(
        ClientPacket::decode(&s).unwrap().packet,
        ClientPacket::SendTextCode {
            text: "a".into(),
            x1: 5
        }
    );
}

// ---- authorization and contact-list messages (TYPE 0x0006, 0x0007, 0x0008, 0x0013) ----

/// A client's SEND_MESSAGE of `content`: the body it builds, and the datagram.
fn send_content(content: &MessageContent, seq: u16, expected: &[u8]) {
    let (kind, text) = content.to_wire();
    client(
        ClientPacket::SendMessage {
            to: 54321,
            kind,
            text: text.clone(),
        },
        seq,
        12345,
        expected,
    );
    assert_eq!(&MessageContent::parse(kind, &text), content);
}

#[test]
fn send_authorization_request() {
    #[rustfmt::skip]
    let bytes = [
        0x02, 0x00, 0x0E, 0x01, 0x05, 0x00, 0x39, 0x30, 0x00, 0x00, // SEND_MESSAGE seq 5 uin 12345
        0x31, 0xD4, 0x00, 0x00, // RECEIVER_UIN 54321
        0x06, 0x00,             // MESSAGE_TYPE authorization request
        0x0F, 0x00,             // LENGTH 15
        b'b', 0xFE, b'B', 0xFE, b'S', 0xFE, b'e', 0xFE, b'1', 0xFE, // nick first last email auth
        b'h', b'i', b'\r', b'\n', 0x00, // reason (CR/LF line ends) NUL
    ];
    send_content(
        &MessageContent::AuthRequest {
            nick: "b".into(),
            first: "B".into(),
            last: "S".into(),
            email: "e".into(),
            auth_required: false,
            reason: "hi\n".into(),
        },
        5,
        &bytes,
    );
}

#[test]
fn send_authorization_granted_and_denied() {
    #[rustfmt::skip]
    let granted = [
        0x02, 0x00, 0x0E, 0x01, 0x06, 0x00, 0x39, 0x30, 0x00, 0x00,
        0x31, 0xD4, 0x00, 0x00, // RECEIVER_UIN
        0x08, 0x00,             // MESSAGE_TYPE authorization granted
        0x01, 0x00, 0x00,       // LENGTH 1: the empty text, NUL
    ];
    send_content(
        &MessageContent::AuthGranted {
            text: String::new(),
        },
        6,
        &granted,
    );
    #[rustfmt::skip]
    let denied = [
        0x02, 0x00, 0x0E, 0x01, 0x07, 0x00, 0x39, 0x30, 0x00, 0x00,
        0x31, 0xD4, 0x00, 0x00, // RECEIVER_UIN
        0x07, 0x00,             // MESSAGE_TYPE authorization denied
        0x03, 0x00, b'n', b'o', 0x00, // the reason
    ];
    send_content(
        &MessageContent::AuthDenied {
            reason: "no".into(),
        },
        7,
        &denied,
    );
}

/// Licq's source quotes this RECEIVE_MESSAGE of a contact list as received (a v2
/// header: VERSION 2, DC 00): decoded, typed and encoded back byte for byte.
#[test]
fn receive_contact_list_trace() {
    #[rustfmt::skip]
    let bytes = [
        0x02, 0x00, 0xDC, 0x00, 0x1A, 0x00, // header RECEIVE_MESSAGE seq 26
        0x23, 0x64, 0x84, 0x00, // REMOTE_UIN 8676387
        0xCF, 0x07, 0x06, 0x15, 0x13, 0x2B, // 1999-06-21 19:43
        0x13, 0x00,             // TYPE contact list
        0x1E, 0x00,             // LENGTH 30
        0x32, 0xFE,             // "2"
        0x37, 0x33, 0x39, 0x37, 0x38, 0x35, 0x33, 0xFE, 0x46, 0x6C, 0x75, 0x6E, 0x6B, 0x69, 0xFE, // 7397853 Flunki
        0x37, 0x33, 0x35, 0x37, 0x32, 0x31, 0x39, 0xFE, 0x55, 0x68, 0x75, 0xFE, // 7357219 Uhu
        0x00,
    ];
    let frame = ServerPacket::decode(&bytes).unwrap();
    let ServerPacket::ReceiveMessage {
        from, kind, text, ..
    } = &frame.packet
    else {
        panic!("{frame:?}")
    };
    assert_eq!(*from, 8676387);
    let content = MessageContent::parse(*kind, text);
    assert_eq!(
        content,
        MessageContent::Contacts(vec![(7397853, "Flunki".into()), (7357219, "Uhu".into())])
    );
    assert_eq!(content.to_wire(), (0x13, text.clone()));
    assert_eq!(frame.encode(), bytes);
}
