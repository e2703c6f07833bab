//! Byte-exact tests from the seed's server packet tables (section 6) and the notes'
//! client packets. Expected bytes are written out by hand, field by field.
//! Header: magic 02, type (u16), transaction id (u16), content length (u32).
//! Field: id (u16), length (u32), value.

use mig33_proto::*;

/// `packet` encodes to exactly `bytes`, and `bytes` decodes back to `packet`.
fn check(packet: impl Into<Packet>, txn: u16, bytes: &[u8]) {
    let packet = packet.into();
    assert_eq!(packet.encode(txn), bytes, "encoding {packet:?}");
    let decoded = Envelope::decode_bytes(bytes).expect("decodes");
    assert_eq!(decoded.transaction_id, txn);
    assert_eq!(decoded.packet, packet);
    assert!(decoded.extra.is_empty());
}

#[test]
fn table_11_error_message() {
    #[rustfmt::skip]
    let bytes = [
        0x02, 0x00, 0x00, 0x00, 0x07, 0x00, 0x00, 0x00, 0x11, // ERROR (0), txn 7, 17 bytes
        0x00, 0x02, 0x00, 0x00, 0x00, 0x03, b'B', b'a', b'd', // MARK_ERROR, ERROR_LEN 3, "Bad"
        0x00, 0x01, 0x00, 0x00, 0x00, 0x02, 0x00, 0x01,       // MARK_UNKNOWN, UNKNOWN_LEN 2, 00 01
    ];
    let error = ErrorReply {
        text: Some("Bad".into()),
        code: Some(1),
    };
    check(error, 7, &bytes);
}

#[test]
fn table_12_login_notify_is_an_alert() {
    #[rustfmt::skip]
    let bytes = [
        0x02, 0x00, 0x05, 0x00, 0x01, 0x00, 0x00, 0x00, 0x0a,  // ALERT (5), txn 1, 10 bytes
        0x00, 0x02, 0x00, 0x00, 0x00, 0x04, b'B', b'u', b's', b'y', // X1, TEXT_LEN1 4, "Busy"
    ];
    let alert = Alert {
        text: Some("Busy".into()),
        ..Alert::default()
    };
    assert_eq!(alert.display_text(), "Busy");
    assert_eq!(alert.invoker(), None);
    check(alert, 1, &bytes);
}

#[test]
fn table_13_login_bad_resp_is_an_error() {
    #[rustfmt::skip]
    let bytes = [
        0x02, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x0f, // ERROR (0), txn 2, 15 bytes
        0x00, 0x02, 0x00, 0x00, 0x00, 0x01, b'!',             // X1, TEXT_LEN1 1, "!"
        0x00, 0x01, 0x00, 0x00, 0x00, 0x02, 0x00, 0x01,       // X2, X3 = 2, X4 = 00 01
    ];
    let error = ErrorReply {
        text: Some("!".into()),
        code: Some(1),
    };
    check(error, 2, &bytes);
}

#[test]
fn table_14_register_ok_is_an_ok_with_a_message() {
    #[rustfmt::skip]
    let bytes = [
        0x02, 0x00, 0x01, 0x00, 0x03, 0x00, 0x00, 0x00, 0x09, // OK (1), txn 3, 9 bytes
        0x00, 0x01, 0x00, 0x00, 0x00, 0x03, b'H', b'i', b'!', // X1, WELCOMEMSG_LEN 3, "Hi!"
    ];
    let ok = OkReply {
        message: Some("Hi!".into()),
    };
    check(ok, 3, &bytes);
}

#[test]
fn section_6_5_keep_alive_resp() {
    // PING_REPLY (3), the PING's transaction id 0x0042, no content.
    let bytes = [0x02, 0x00, 0x03, 0x00, 0x42, 0x00, 0x00, 0x00, 0x00];
    check(PingReply {}, 0x42, &bytes);
    // And the PING (2) it answers.
    let ping = [0x02, 0x00, 0x02, 0x00, 0x42, 0x00, 0x00, 0x00, 0x00];
    check(Ping {}, 0x42, &ping);
}

#[test]
fn table_15_login_chal() {
    #[rustfmt::skip]
    let bytes = [
        0x02, 0x00, 0xc9, 0x00, 0x01, 0x00, 0x00, 0x00, 0x13,       // LOGIN_CHALLENGE (201), txn 1, 19 bytes
        0x00, 0x02, 0x00, 0x00, 0x00, 0x03, b's', b'1', b'd',       // X1 = 2, TEXT_LEN1 3, X2 "s1d" (session id)
        0x00, 0x01, 0x00, 0x00, 0x00, 0x04, b'c', b'h', b'4', b'l', // X1 = 1, TEXT_LEN2 4, HASH_STRING "ch4l"
    ];
    let challenge = LoginChallenge {
        session_id: Some("s1d".into()),
        challenge: "ch4l".into(),
    };
    check(challenge, 1, &bytes);
}

#[test]
fn table_16_login_ok_motd() {
    #[rustfmt::skip]
    let bytes = [
        0x02, 0x00, 0xcb, 0x00, 0x02, 0x00, 0x00, 0x00, 0x50,             // LOGIN_OK (203), txn 2, 80 bytes
        0x00, 0x0c, 0x00, 0x00, 0x00, 0x03, b'1', b'.', b'0',             // BLOCK_EXCHANGE_RATE, 3, "1.0"
        0x00, 0x0b, 0x00, 0x00, 0x00, 0x03, b'U', b'S', b'D',             // X2, CURRENCY_LEN 3, "USD"
        0x00, 0x0a, 0x00, 0x00, 0x00, 0x07, b'1', b'.', b'2', b'.', b'3', b'.', b'4', // X3, 7, "1.2.3.4"
        0x00, 0x09, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x03,       // X4, X5 = 4, X6 = 3
        0x00, 0x08, 0x00, 0x00, 0x00, 0x01, 0x00,                         // X7, X8 = 1, X9 = 0
        0x00, 0x06, 0x00, 0x00, 0x00, 0x01, 0x00,                         // X10, X11 = 1, X12 = 0
        0x00, 0x03, 0x00, 0x00, 0x00, 0x02, b'H', b'i',                   // X13, MOTD_LEN 2, "Hi"
        0x00, 0x02, 0x00, 0x00, 0x00, 0x01, 0x00,                         // X14, X15 = 1, X16 = 0
        0x00, 0x01, 0x00, 0x00, 0x00, 0x04, b'6', b'0', b'1', b'2',       // X17, MOBILE_NUM_LEN 4, "6012"
    ];
    let ok = LoginOk {
        exchange_rate: Some("1.0".into()),
        currency: Some("USD".into()),
        ip_address: Some("1.2.3.4".into()),
        unknown_9: Some(3),
        unknown_8: Some(0),
        unknown_6: Some(0),
        motd: Some("Hi".into()),
        unknown_2: Some(0),
        mobile_number: Some("6012".into()),
    };
    check(ok, 2, &bytes);
}

#[test]
fn table_16_without_the_optional_blocks() {
    // "Not in all responses": an empty LOGIN_OK is valid.
    let bytes = [0x02, 0x00, 0xcb, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00];
    check(LoginOk::default(), 2, &bytes);
}

#[test]
fn table_17_clist_groups() {
    #[rustfmt::skip]
    let bytes = [
        0x02, 0x01, 0x91, 0x00, 0x04, 0x00, 0x00, 0x00, 0x17,        // GROUP (401), txn 4, 23 bytes
        0x00, 0x02, 0x00, 0x00, 0x00, 0x07,                          // MARK_GROUPNAME, GROUPNAME_LEN 7
        b'F', b'r', b'i', b'e', b'n', b'd', b's',                    // "Friends"
        0x00, 0x01, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x05,  // MARK_ID, ID_LEN 4, ID 5
    ];
    let group = Group {
        name: "Friends".into(),
        group_id: 5,
    };
    check(group, 4, &bytes);
}

fn bob() -> Contact {
    Contact {
        status_message: None,
        flag: Some(0),
        presence: Some(Presence::Available),
        username: "bob".into(),
        display_name: "Bob S".into(),
        group_id: Some(5),
        contact_id: 42,
    }
}

#[test]
fn table_18_clist_buddies_in_the_seed_order() {
    // The seed lists the blocks as 25, 3, 13, 2, 12, 1. Field 3 is read as the display
    // name and field 12 as the username (the notes' reading; see the crate docs).
    #[rustfmt::skip]
    let seed_order = [
        0x02, 0x01, 0x92, 0x00, 0x04, 0x00, 0x00, 0x00, 0x36,       // CONTACT (402), txn 4, 54 bytes
        0x00, 0x19, 0x00, 0x00, 0x00, 0x01, 0x00,                   // MARK_UNKNOWN (25), 1, 00
        0x00, 0x03, 0x00, 0x00, 0x00, 0x05, b'B', b'o', b'b', b' ', b'S', // MARK_USERNAME (3), 5, "Bob S"
        0x00, 0x0d, 0x00, 0x00, 0x00, 0x01, 0x01,                   // MARK_STATUS (13), 1, online
        0x00, 0x02, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x05, // MARK_GROUP_ID, 4, group 5
        0x00, 0x0c, 0x00, 0x00, 0x00, 0x03, b'b', b'o', b'b',       // MARK_BUDDY_NAME (12), 3, "bob"
        0x00, 0x01, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x2a, // MARK_BUDDY_ID, 4, buddy 42
    ];
    let decoded = Envelope::decode_bytes(&seed_order).unwrap();
    assert_eq!(decoded.packet, Packet::Contact(bob()));

    // The encoder writes the same fields in descending id order.
    #[rustfmt::skip]
    let descending = [
        0x02, 0x01, 0x92, 0x00, 0x04, 0x00, 0x00, 0x00, 0x36,       // CONTACT (402), txn 4, 54 bytes
        0x00, 0x19, 0x00, 0x00, 0x00, 0x01, 0x00,                   // 25: flag 0
        0x00, 0x0d, 0x00, 0x00, 0x00, 0x01, 0x01,                   // 13: presence online
        0x00, 0x0c, 0x00, 0x00, 0x00, 0x03, b'b', b'o', b'b',       // 12: username "bob"
        0x00, 0x03, 0x00, 0x00, 0x00, 0x05, b'B', b'o', b'b', b' ', b'S', // 3: display name "Bob S"
        0x00, 0x02, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x05, // 2: group 5
        0x00, 0x01, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x2a, // 1: contact 42
    ];
    check(bob(), 4, &descending);
}

#[test]
fn table_18_with_only_field_3_takes_it_as_the_username() {
    // The seed's own reading (3 = USERNAME) when field 12 is absent.
    #[rustfmt::skip]
    let bytes = [
        0x02, 0x01, 0x92, 0x00, 0x04, 0x00, 0x00, 0x00, 0x13,       // CONTACT (402), txn 4, 19 bytes
        0x00, 0x03, 0x00, 0x00, 0x00, 0x03, b'b', b'o', b'b',       // 3: "bob"
        0x00, 0x01, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x2a, // 1: contact 42
    ];
    let Packet::Contact(c) = Envelope::decode_bytes(&bytes).unwrap().packet else {
        panic!("not a contact");
    };
    assert_eq!(
        (c.username.as_str(), c.display_name.as_str()),
        ("bob", "bob")
    );
    assert_eq!(c.contact_id, 42);
}

#[test]
fn section_6_10_clist_terminator() {
    let bytes = [0x02, 0x01, 0x93, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00]; // GET_CONTACTS_COMPLETE (403)
    check(GetContactsComplete {}, 4, &bytes);
}

#[test]
fn table_19_clist_status_change() {
    #[rustfmt::skip]
    let bytes = [
        0x02, 0x01, 0x94, 0x00, 0x09, 0x00, 0x00, 0x00, 0x11,       // PRESENCE (404), txn 9, 17 bytes
        0x00, 0x02, 0x00, 0x00, 0x00, 0x01, 0x63,                   // MARK_STATUS, 1, 0x63 offline
        0x00, 0x01, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x2a, // MARK_BUDDY_ID, 4, buddy 42
    ];
    let presence = ContactPresence {
        presence: Presence::Offline,
        contact_id: 42,
    };
    check(presence, 9, &bytes);
}

#[test]
fn table_20_recv_msg() {
    #[rustfmt::skip]
    let bytes = [
        0x02, 0x01, 0xf4, 0x00, 0x0a, 0x00, 0x00, 0x00, 0x32,       // MESSAGE (500), txn 10, 50 bytes
        0x00, 0x08, 0x00, 0x00, 0x00, 0x02, b'h', b'i',             // MARK_MSG, MSG_LEN 2, "hi"
        0x00, 0x06, 0x00, 0x00, 0x00, 0x02, 0x00, 0x01,             // MARK_X1, X2_LEN 2, X3 = 1 (plain text)
        0x00, 0x04, 0x00, 0x00, 0x00, 0x05, b'l', b'o', b'b', b'b', b'y', // MARK_DESTINATION, 5, "lobby"
        0x00, 0x03, 0x00, 0x00, 0x00, 0x01, 0x03,                   // MARK_X4, X5_LEN 1, X6 = 3 (chatroom)
        0x00, 0x02, 0x00, 0x00, 0x00, 0x03, b'b', b'o', b'b',       // MARK_USER, USER_LEN 3, "bob"
        0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x01,                   // MARK_X7, X8_LEN 1, X9 = 1 (mig33)
    ];
    let msg = Message::text("bob", DestinationType::Chatroom, "lobby", "hi");
    check(msg, 10, &bytes);
}

#[test]
fn table_21_recv_sys_msg_is_an_alert() {
    #[rustfmt::skip]
    let bytes = [
        0x02, 0x00, 0x05, 0x00, 0x0b, 0x00, 0x00, 0x00, 0x2a,       // ALERT (5), txn 11, 42 bytes
        0x00, 0x05, 0x00, 0x00, 0x00, 0x08,                         // MARK_DATA, DATA_LEN 8
        b'h', b't', b't', b'p', b':', b'/', b'/', b'x',             // "http://x"
        0x00, 0x04, 0x00, 0x00, 0x00, 0x04, b'N', b'e', b'w', b's', // MARK_DESC, 4, "News"
        0x00, 0x02, 0x00, 0x00, 0x00, 0x05, b'm', b'i', b'g', b'3', b'3', // MARK_INVOKER, 5, "mig33"
        0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x01,                   // MARK_UNKNOWN, 1, 01
    ];
    let alert = Alert {
        data: Some("http://x".into()),
        description: Some("News".into()),
        text: Some("mig33".into()),
        kind: Some(1),
    };
    assert_eq!(alert.display_text(), "News");
    assert_eq!(alert.invoker(), Some("mig33"));
    check(alert, 11, &bytes);
}

#[test]
fn client_login_and_login_response() {
    #[rustfmt::skip]
    let login_bytes = [
        0x02, 0x00, 0xc8, 0x00, 0x01, 0x00, 0x00, 0x00, 0x29, // LOGIN (200), txn 1, 41 bytes
        0x00, 0x0f, 0x00, 0x00, 0x00, 0x02, b'e', b'n',       // 15 language "en"
        0x00, 0x09, 0x00, 0x00, 0x00, 0x01, 0x01,             // 9 initial presence: available
        0x00, 0x05, 0x00, 0x00, 0x00, 0x05, b'a', b'l', b'i', b'c', b'e', // 5 username "alice"
        0x00, 0x03, 0x00, 0x00, 0x00, 0x02, 0x00, 0x01,       // 3 client version 1
        0x00, 0x02, 0x00, 0x00, 0x00, 0x01, 0x01,             // 2 client type 1
    ];
    let login = Login {
        language: Some("en".into()),
        initial_presence: Some(Presence::Available),
        username: "alice".into(),
        client_version: Some(1),
        client_type: Some(1),
        ..Login::default()
    };
    check(login, 1, &login_bytes);

    // hashCode("Xy7kQ2" + "secret") = 1992105190 = 0x76bd1ce6 (computed in Python).
    #[rustfmt::skip]
    let response_bytes = [
        0x02, 0x00, 0xca, 0x00, 0x02, 0x00, 0x00, 0x00, 0x0a,       // LOGIN_RESPONSE (202), txn 2, 10 bytes
        0x00, 0x01, 0x00, 0x00, 0x00, 0x04, 0x76, 0xbd, 0x1c, 0xe6, // 1 password hash
    ];
    let response = LoginResponse {
        password_hash: login_hash("Xy7kQ2", "secret"),
    };
    check(response, 2, &response_bytes);
}

#[test]
fn client_chatroom_and_presence_requests() {
    #[rustfmt::skip]
    let join = [
        0x02, 0x02, 0xbf, 0x00, 0x05, 0x00, 0x00, 0x00, 0x0b,       // JOIN_CHATROOM (703), txn 5, 11 bytes
        0x00, 0x01, 0x00, 0x00, 0x00, 0x05, b'l', b'o', b'b', b'b', b'y', // 1 room "lobby"
    ];
    check(
        JoinChatroom {
            name: "lobby".into(),
        },
        5,
        &join,
    );

    #[rustfmt::skip]
    let set_presence = [
        0x02, 0x02, 0x58, 0x00, 0x06, 0x00, 0x00, 0x00, 0x07, // SET_PRESENCE (600), txn 6, 7 bytes
        0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x04,             // 1 presence: away
    ];
    check(
        SetPresence {
            presence: Presence::Away,
        },
        6,
        &set_presence,
    );
}
