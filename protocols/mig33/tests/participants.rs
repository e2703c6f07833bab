//! CHATROOM_PARTICIPANTS byte by byte: the names field is separated by `;` (what this
//! crate writes by default) or `,` (what some servers write); decoding accepts both.

use mig33_proto::*;

/// CHATROOM_PARTICIPANTS (708, `02 C4`), txn 9: field 2 `names`, then field 1 "lobby".
fn frame(names: &[u8]) -> Vec<u8> {
    let content_len = 6 + names.len() + 6 + 5;
    let mut bytes = vec![0x02, 0x02, 0xc4, 0x00, 0x09];
    bytes.extend_from_slice(&(content_len as u32).to_be_bytes());
    bytes.extend_from_slice(&[0x00, 0x02]);
    bytes.extend_from_slice(&(names.len() as u32).to_be_bytes());
    bytes.extend_from_slice(names);
    bytes.extend_from_slice(&[0x00, 0x01, 0x00, 0x00, 0x00, 0x05]);
    bytes.extend_from_slice(b"lobby");
    bytes
}

fn participants(names: &[&str], separator: ListSeparator) -> ChatroomParticipants {
    ChatroomParticipants {
        participants: UsernameList::new(names.iter().map(|n| n.to_string()).collect(), separator),
        name: "lobby".into(),
    }
}

fn decode(bytes: &[u8]) -> ChatroomParticipants {
    match Envelope::decode_bytes(bytes).expect("decodes").packet {
        Packet::ChatroomParticipants(p) => p,
        other => panic!("decoded as {other:?}"),
    }
}

#[test]
fn frame_layout() {
    #[rustfmt::skip]
    let expected = [
        0x02, 0x02, 0xc4, 0x00, 0x09, 0x00, 0x00, 0x00, 0x14, // 708, txn 9, 20 bytes
        0x00, 0x02, 0x00, 0x00, 0x00, 0x03, b'b', b',', b'c', // names "b,c"
        0x00, 0x01, 0x00, 0x00, 0x00, 0x05, b'l', b'o', b'b', b'b', b'y', // room
    ];
    assert_eq!(frame(b"b,c"), expected);
}

#[test]
fn semicolons_are_written_by_default_and_read_back() {
    let packet = participants(&["alice", "bob", "carol"], ListSeparator::default());
    let bytes = frame(b"alice;bob;carol");
    assert_eq!(Packet::from(packet.clone()).encode(9), bytes);
    assert_eq!(decode(&bytes), packet);
}

#[test]
fn commas_are_read_and_can_be_written() {
    let packet = participants(&["bob", "carol"], ListSeparator::Comma);
    let bytes = frame(b"bob,carol");
    assert_eq!(Packet::from(packet.clone()).encode(9), bytes);
    let decoded = decode(&bytes);
    assert_eq!(decoded.participants.names, ["bob", "carol"]);
    assert_eq!(decoded.participants.separator, ListSeparator::Comma);
    assert_eq!(decoded, packet);
}

#[test]
fn spaces_empty_parts_and_mixed_separators_are_tolerated() {
    for (field, names) in [
        (&b" bob , carol "[..], &["bob", "carol"][..]),
        (b"bob,,carol,", &["bob", "carol"]),
        (b";bob; carol;", &["bob", "carol"]),
        (b"alice;bob,carol", &["alice", "bob", "carol"]),
        (b"bob", &["bob"]),
        (b"", &[]),
        (b" , ; ", &[]),
    ] {
        let decoded = decode(&frame(field));
        assert_eq!(
            decoded.participants.names,
            names,
            "{:?}",
            String::from_utf8_lossy(field)
        );
    }
}

#[test]
fn the_separator_only_matters_between_two_names() {
    let one_comma = participants(&["bob"], ListSeparator::Comma);
    let one_semicolon = participants(&["bob"], ListSeparator::Semicolon);
    assert_eq!(one_comma, one_semicolon);
    assert_eq!(
        Packet::from(one_comma).encode(9),
        Packet::from(one_semicolon).encode(9)
    );
    assert_ne!(
        participants(&["bob", "carol"], ListSeparator::Comma),
        participants(&["bob", "carol"], ListSeparator::Semicolon)
    );
}
