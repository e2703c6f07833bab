//! Property tests: decoders never panic on arbitrary bytes, and generated packets
//! round-trip through encode and decode.

use mig33_proto::*;
use proptest::option::of;
use proptest::prelude::*;

fn text() -> impl Strategy<Value = String> {
    // Any Unicode, including characters outside the BMP.
    any::<String>().prop_map(|s| s.chars().take(40).collect())
}

fn name() -> impl Strategy<Value = String> {
    "[a-z0-9_.]{1,12}"
}

fn presence() -> impl Strategy<Value = Presence> {
    any::<u8>().prop_map(Presence::from_code)
}

fn destination_type() -> impl Strategy<Value = DestinationType> {
    any::<u8>().prop_map(DestinationType::from_code)
}

fn packet() -> impl Strategy<Value = Packet> {
    prop_oneof![
        (of(text()), of(any::<u16>())).prop_map(|(text, code)| ErrorReply { text, code }.into()),
        of(text()).prop_map(|message| OkReply { message }.into()),
        Just(Ping {}.into()),
        Just(PingReply {}.into()),
        (of(text()), of(text()), of(text()), of(any::<u8>())).prop_map(
            |(data, description, text, kind)| Alert {
                data,
                description,
                text,
                kind
            }
            .into()
        ),
        (of(text()), of(text()), of(name())).prop_map(|(mobile_number, password, username)| {
            Registration {
                mobile_number,
                password,
                username,
            }
            .into()
        }),
        (
            (of(text()), of(presence()), of(text()), of(text())),
            (name(), of(any::<u16>()), of(any::<u8>()), of(any::<u16>()))
        )
            .prop_map(
                |(
                    (language, initial_presence, device, user_agent),
                    (username, client_version, client_type, protocol_version),
                )| Login {
                    language,
                    initial_presence,
                    device,
                    user_agent,
                    username,
                    client_version,
                    client_type,
                    protocol_version,
                }
                .into()
            ),
        (of(text()), text()).prop_map(|(session_id, challenge)| LoginChallenge {
            session_id,
            challenge
        }
        .into()),
        any::<i32>().prop_map(|password_hash| LoginResponse { password_hash }.into()),
        (
            (
                of(text()),
                of(text()),
                of(text()),
                of(any::<i32>()),
                of(any::<u8>())
            ),
            (of(any::<u8>()), of(text()), of(any::<u8>()), of(text()))
        )
            .prop_map(
                |(
                    (exchange_rate, currency, ip_address, unknown_9, unknown_8),
                    (unknown_6, motd, unknown_2, mobile_number),
                )| LoginOk {
                    exchange_rate,
                    currency,
                    ip_address,
                    unknown_9,
                    unknown_8,
                    unknown_6,
                    motd,
                    unknown_2,
                    mobile_number,
                }
                .into()
            ),
        Just(Logout {}.into()),
        Just(GetContacts {}.into()),
        (text(), any::<i32>()).prop_map(|(name, group_id)| Group { name, group_id }.into()),
        (
            (of(text()), of(any::<u8>()), of(presence())),
            (name(), text(), of(any::<i32>()), any::<i32>())
        )
            .prop_map(
                |(
                    (status_message, flag, presence),
                    (username, display_name, group_id, contact_id),
                )| {
                    Contact {
                        status_message,
                        flag,
                        presence,
                        username,
                        display_name,
                        group_id,
                        contact_id,
                    }
                    .into()
                }
            ),
        Just(GetContactsComplete {}.into()),
        (presence(), any::<i32>()).prop_map(|(presence, contact_id)| ContactPresence {
            presence,
            contact_id
        }
        .into()),
        (name(), of(text()), of(any::<i32>())).prop_map(|(username, display_name, group_id)| {
            AddContact {
                username,
                display_name,
                group_id,
            }
            .into()
        }),
        any::<i32>().prop_map(|contact_id| RemoveContact { contact_id }.into()),
        (
            text(),
            of(any::<u16>()),
            text(),
            destination_type(),
            name(),
            of(any::<u8>())
        )
            .prop_map(
                |(content, content_type, destination, destination_type, source, message_type)| {
                    Message {
                        content,
                        content_type,
                        destination,
                        destination_type,
                        source,
                        message_type,
                    }
                    .into()
                }
            ),
        presence().prop_map(|presence| SetPresence { presence }.into()),
        Just(GetChatrooms {}.into()),
        (of(any::<u16>()), of(text()), text()).prop_map(
            |(participant_count, description, name)| Chatroom {
                participant_count,
                description,
                name
            }
            .into()
        ),
        Just(GetChatroomsComplete {}.into()),
        text().prop_map(|name| JoinChatroom { name }.into()),
        text().prop_map(|name| LeaveChatroom { name }.into()),
        text().prop_map(|name| GetChatroomParticipants { name }.into()),
        (
            proptest::collection::vec(name(), 0..6),
            any::<bool>(),
            text()
        )
            .prop_map(|(names, comma, name)| {
                let separator = if comma {
                    ListSeparator::Comma
                } else {
                    ListSeparator::Semicolon
                };
                let participants = UsernameList::new(names, separator);
                ChatroomParticipants { participants, name }.into()
            }),
    ]
}

/// Unknown fields: ids no packet uses (all known ids are below 30).
fn extra_fields() -> impl Strategy<Value = Vec<Field>> {
    proptest::collection::vec(
        (
            30u16..=u16::MAX,
            proptest::collection::vec(any::<u8>(), 0..8),
        )
            .prop_map(|(id, value)| Field { id, value }),
        0..3,
    )
}

fn decode_everything(bytes: &[u8]) {
    let _ = Header::parse(bytes);
    let _ = Frame::decode(bytes);
    if let Ok(raw) = RawFrame::parse(bytes) {
        let _ = Envelope::decode(&raw);
        let _ = Packet::decode(&raw);
        for f in raw.fields() {
            if f.is_err() {
                break;
            }
        }
    }
    let mut decoder = FrameDecoder::new();
    decoder.feed(bytes);
    while let Ok(Some(_)) = decoder.next_frame() {}
    let mut client = ClientSession::new(ClientConfig::new("a", "b"));
    client.handle_input(bytes);
    while client.poll_event().is_some() {}
    let mut server = ServerSession::new("c", "s");
    server.handle_input(bytes);
    while server.poll_event().is_some() {}
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        decode_everything(&bytes);
    }

    #[test]
    fn arbitrary_content_behind_a_valid_header_never_panics(
        packet_type in prop_oneof![0u16..=10, 100u16..=110, 199u16..=210, 299u16..=310,
                                   399u16..=410, 499u16..=510, 599u16..=610, 699u16..=710],
        content in proptest::collection::vec(any::<u8>(), 0..120),
    ) {
        let mut bytes = vec![MAGIC];
        bytes.extend_from_slice(&packet_type.to_be_bytes());
        bytes.extend_from_slice(&[0, 1]);
        bytes.extend_from_slice(&(content.len() as u32).to_be_bytes());
        bytes.extend_from_slice(&content);
        decode_everything(&bytes);
    }

    #[test]
    fn packets_round_trip(packet in packet(), txn in any::<u16>(), extra in extra_fields()) {
        let bytes = packet.encode(txn);
        let raw = RawFrame::parse(&bytes).unwrap();
        prop_assert_eq!(raw.content.len() + HEADER_LEN, bytes.len());
        prop_assert_eq!(Packet::decode(&raw).unwrap(), packet.clone());

        // Fields come out in descending id order, as real clients write them.
        let ids: Vec<u16> = raw.fields().map(|f| f.unwrap().0).collect();
        prop_assert!(ids.windows(2).all(|w| w[0] > w[1]), "{:?}", ids);

        // With unknown fields: kept and re-encoded.
        let env = Envelope { transaction_id: txn, packet, extra };
        let decoded = Envelope::decode_bytes(&env.encode()).unwrap();
        prop_assert_eq!(&decoded.packet, &env.packet);
        let mut want = env.extra.clone();
        want.sort_by_key(|f| std::cmp::Reverse(f.id));
        prop_assert_eq!(&decoded.extra, &want);
        prop_assert_eq!(decoded.encode(), env.encode());

        // The generic frame is byte-exact too.
        let frame = Frame::decode(&bytes).unwrap();
        prop_assert_eq!(frame.encode(), bytes);
    }

    #[test]
    fn streams_split_anywhere(packets in proptest::collection::vec(packet(), 1..5), split in 0usize..400) {
        let mut stream = Vec::new();
        for (i, p) in packets.iter().enumerate() {
            p.encode_into(i as u16, &mut stream);
        }
        let split = split.min(stream.len());
        let mut decoder = FrameDecoder::new();
        let mut got = Vec::new();
        for part in [&stream[..split], &stream[split..]] {
            decoder.feed(part);
            while let Some(raw) = decoder.next_raw().unwrap() {
                got.push(Packet::decode(&raw).unwrap());
            }
        }
        prop_assert_eq!(got, packets);
    }
}
