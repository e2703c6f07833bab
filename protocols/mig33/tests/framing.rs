//! Framing: limits, streaming, field order, unknown fields.

use mig33_proto::*;

#[test]
fn oversize_content_is_rejected_from_the_header_alone() {
    // 358401 bytes announced, none supplied: the error comes before any allocation.
    let header = [0x02, 0x01, 0xf4, 0x00, 0x01, 0x00, 0x05, 0x78, 0x01];
    assert_eq!(
        RawFrame::parse(&header),
        Err(DecodeError::ContentTooLong(358_401))
    );
    let mut decoder = FrameDecoder::new();
    decoder.feed(&header);
    assert_eq!(
        decoder.next_frame(),
        Err(DecodeError::ContentTooLong(358_401))
    );
    // The stream stays failed: it cannot be resynchronised.
    decoder.feed(&Packet::from(Ping {}).encode(1));
    assert!(decoder.next_frame().is_err());
}

#[test]
fn the_limit_itself_is_allowed() {
    let header = [0x02, 0x01, 0xf4, 0x00, 0x01, 0x00, 0x05, 0x78, 0x00];
    assert_eq!(
        Header::parse(&header).unwrap().unwrap().content_length,
        MAX_CONTENT_LEN
    );
}

#[test]
fn oversize_field_is_rejected() {
    #[rustfmt::skip]
    let bytes = [
        0x02, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x00, 0x06, // OK, 6 bytes
        0x00, 0x01, 0xff, 0xff, 0xff, 0xff,                   // field 1 claims 4 GiB
    ];
    assert_eq!(
        Frame::decode(&bytes),
        Err(DecodeError::FieldTooLong {
            id: 1,
            len: u32::MAX
        })
    );
}

#[test]
fn field_past_the_end_and_stray_bytes_are_errors() {
    #[rustfmt::skip]
    let overrun = [
        0x02, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x00, 0x07,
        0x00, 0x01, 0x00, 0x00, 0x00, 0x02, b'x',             // says 2, has 1
    ];
    assert_eq!(
        Frame::decode(&overrun),
        Err(DecodeError::FieldOverrun { id: 1 })
    );
    let stray = [
        0x02, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x00, 0x02, 0x00, 0x01,
    ];
    assert_eq!(Frame::decode(&stray), Err(DecodeError::TrailingBytes(2)));
}

#[test]
fn bad_magic() {
    assert_eq!(
        RawFrame::parse(&[0x03, 0, 0, 0, 0, 0, 0, 0, 0]),
        Err(DecodeError::BadMagic(3))
    );
}

#[test]
fn streaming_byte_by_byte_and_many_per_read() {
    let mut stream = Vec::new();
    let msg = Message::text("bob", DestinationType::Private, "alice", "hello");
    Packet::from(msg.clone()).encode_into(1, &mut stream);
    Packet::from(Ping {}).encode_into(2, &mut stream);
    Packet::from(msg.clone()).encode_into(3, &mut stream);

    let mut decoder = FrameDecoder::new();
    let mut frames = Vec::new();
    for b in &stream {
        decoder.feed(std::slice::from_ref(b));
        while let Some(f) = decoder.next_frame().unwrap() {
            frames.push(f);
        }
    }
    assert_eq!(
        frames.iter().map(|f| f.transaction_id).collect::<Vec<_>>(),
        [1, 2, 3]
    );
    assert_eq!(decoder.buffered(), 0);

    let mut decoder = FrameDecoder::new();
    decoder.feed(&stream);
    let raw = decoder.next_raw().unwrap().unwrap();
    assert_eq!(Packet::decode(&raw).unwrap(), Packet::Message(msg));
    assert_eq!(decoder.next_raw().unwrap().unwrap().packet_type, 2);
    assert_eq!(decoder.next_raw().unwrap().unwrap().transaction_id, 3);
    assert_eq!(decoder.next_raw().unwrap(), None);
}

#[test]
fn a_bad_field_spoils_only_its_frame() {
    let mut decoder = FrameDecoder::new();
    decoder.feed(&[0x02, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0xff]);
    decoder.feed(&Packet::from(Ping {}).encode(2));
    assert!(decoder.next_frame().is_err());
    assert_eq!(decoder.next_frame().unwrap().unwrap().packet_type, 2);
}

#[test]
fn generic_frames_round_trip_byte_exact() {
    #[rustfmt::skip]
    let bytes = [
        0x02, 0x03, 0xe7, 0x12, 0x34, 0x00, 0x00, 0x00, 0x0f, // unknown type 999, txn 0x1234
        0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x07,             // field 1 first (ascending)
        0x00, 0x63, 0x00, 0x00, 0x00, 0x02, 0xab, 0xcd,       // field 99
    ];
    let frame = Frame::decode(&bytes).unwrap();
    assert_eq!(frame.packet_type, 999);
    assert_eq!(frame.field(99), Some(&[0xab, 0xcd][..]));
    assert_eq!(frame.encode(), bytes);
    assert_eq!(
        Envelope::decode_bytes(&bytes),
        Err(DecodeError::UnknownType(999))
    );
}

#[test]
fn typed_packets_accept_any_order_and_keep_unknown_fields() {
    #[rustfmt::skip]
    let ascending = [
        0x02, 0x01, 0xf4, 0x00, 0x01, 0x00, 0x00, 0x00, 0x2c,       // MESSAGE, 44 bytes
        0x00, 0x02, 0x00, 0x00, 0x00, 0x01, b'b',                   // 2 source
        0x00, 0x03, 0x00, 0x00, 0x00, 0x01, 0x01,                   // 3 private
        0x00, 0x04, 0x00, 0x00, 0x00, 0x01, b'a',                   // 4 destination
        0x00, 0x05, 0x00, 0x00, 0x00, 0x02, 0x01, 0x02,             // 5 unknown
        0x00, 0x08, 0x00, 0x00, 0x00, 0x02, b'h', b'i',             // 8 content
        0x00, 0x1f, 0x00, 0x00, 0x00, 0x01, 0x09,                   // 31 unknown
    ];
    let env = Envelope::decode_bytes(&ascending).unwrap();
    let Packet::Message(m) = &env.packet else {
        panic!("{env:?}")
    };
    assert_eq!(
        (
            m.source.as_str(),
            m.destination.as_str(),
            m.content.as_str()
        ),
        ("b", "a", "hi")
    );
    assert_eq!(m.content_type, None);
    assert_eq!(env.extra.len(), 2);

    // Re-encoded in descending order, unknown fields slotted in by id.
    #[rustfmt::skip]
    let descending = [
        0x02, 0x01, 0xf4, 0x00, 0x01, 0x00, 0x00, 0x00, 0x2c,
        0x00, 0x1f, 0x00, 0x00, 0x00, 0x01, 0x09,
        0x00, 0x08, 0x00, 0x00, 0x00, 0x02, b'h', b'i',
        0x00, 0x05, 0x00, 0x00, 0x00, 0x02, 0x01, 0x02,
        0x00, 0x04, 0x00, 0x00, 0x00, 0x01, b'a',
        0x00, 0x03, 0x00, 0x00, 0x00, 0x01, 0x01,
        0x00, 0x02, 0x00, 0x00, 0x00, 0x01, b'b',
    ];
    assert_eq!(env.encode(), descending);
    let again = Envelope::decode_bytes(&descending).unwrap();
    assert_eq!(again.packet, env.packet);
    let ids = |e: &Envelope| e.extra.iter().map(|f| f.id).collect::<Vec<_>>();
    assert_eq!((ids(&env), ids(&again)), (vec![5, 31], vec![31, 5]));
    assert_eq!(again.encode(), descending);
}

#[test]
fn integers_are_read_liberally() {
    // Presence as a 4-byte integer, contact id as 2 bytes.
    #[rustfmt::skip]
    let bytes = [
        0x02, 0x01, 0x94, 0x00, 0x01, 0x00, 0x00, 0x00, 0x12,
        0x00, 0x02, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x04, // away
        0x00, 0x01, 0x00, 0x00, 0x00, 0x02, 0x01, 0x00,             // 256
    ];
    let expected = ContactPresence {
        presence: Presence::Away,
        contact_id: 256,
    };
    assert_eq!(
        Envelope::decode_bytes(&bytes).unwrap().packet,
        Packet::ContactPresence(expected)
    );
    // But a presence of 300 does not fit a byte.
    #[rustfmt::skip]
    let bad = [
        0x02, 0x02, 0x58, 0x00, 0x01, 0x00, 0x00, 0x00, 0x08,
        0x00, 0x01, 0x00, 0x00, 0x00, 0x02, 0x01, 0x2c,
    ];
    assert!(matches!(
        Envelope::decode_bytes(&bad),
        Err(DecodeError::BadInteger { field: 1, .. })
    ));
}

#[test]
fn missing_required_field() {
    let bytes = [0x02, 0x02, 0xbf, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00]; // JOIN_CHATROOM, empty
    assert_eq!(
        Envelope::decode_bytes(&bytes),
        Err(DecodeError::MissingField {
            packet_type: 703,
            field: 1
        })
    );
}

#[test]
fn invalid_utf8_is_replaced_visibly() {
    #[rustfmt::skip]
    let bytes = [
        0x02, 0x02, 0xbf, 0x00, 0x01, 0x00, 0x00, 0x00, 0x08,
        0x00, 0x01, 0x00, 0x00, 0x00, 0x02, b'a', 0xff,
    ];
    let Packet::JoinChatroom(j) = Envelope::decode_bytes(&bytes).unwrap().packet else {
        panic!()
    };
    assert_eq!(j.name, "a\u{fffd}");
}
