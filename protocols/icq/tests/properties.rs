//! Property tests: decoders never panic on arbitrary bytes, and every packet built
//! from arbitrary field values round-trips through encode and decode.

use icq_proto::*;
use proptest::prelude::*;
use std::net::Ipv4Addr;

/// Text that Windows-1252 carries exactly (no NUL).
fn text() -> impl Strategy<Value = String> {
    prop::collection::vec(1u8..=255, 0..24).prop_map(|b| decode_cp1252(&b))
}

fn ip() -> impl Strategy<Value = Ipv4Addr> {
    any::<u32>().prop_map(Ipv4Addr::from)
}

fn status() -> impl Strategy<Value = Status> {
    any::<u32>().prop_map(Status)
}

fn user() -> impl Strategy<Value = UserRecord> {
    (any::<u32>(), text(), text(), text(), text(), any::<bool>()).prop_map(
        |(uin, nick, first, last, email, auth_required)| UserRecord {
            uin,
            nick,
            first,
            last,
            email,
            auth_required,
        },
    )
}

fn time() -> impl Strategy<Value = MessageTime> {
    (
        any::<u16>(),
        any::<u8>(),
        any::<u8>(),
        any::<u8>(),
        any::<u8>(),
    )
        .prop_map(|(year, month, day, hour, minute)| MessageTime {
            year,
            month,
            day,
            hour,
            minute,
        })
}

const CLIENT_TYPED: [u16; 14] = [
    0x000A, 0x010E, 0x03E8, 0x0406, 0x041A, 0x0424, 0x042E, 0x0438, 0x044C, 0x0460, 0x046A, 0x049C,
    0x04D8, 0x0528,
];
const SERVER_TYPED: [u16; 11] = [
    0x000A, 0x005A, 0x006E, 0x0078, 0x008C, 0x00DC, 0x00A0, 0x0118, 0x0122, 0x01A4, 0x0064,
];

fn client_packet() -> impl Strategy<Value = ClientPacket> {
    prop_oneof![
        Just(ClientPacket::Ack),
        (any::<u32>(), any::<u16>(), text())
            .prop_map(|(to, kind, text)| ClientPacket::SendMessage { to, kind, text }),
        (any::<u32>(), text(), ip(), status(), any::<u16>()).prop_map(
            |(tcp_port, password, ip, status, login_seq)| ClientPacket::Login {
                tcp_port,
                password,
                ip,
                status,
                login_seq
            }
        ),
        prop::collection::vec(any::<u32>(), 0..20)
            .prop_map(|uins| ClientPacket::ContactList { uins }),
        (any::<u16>(), any::<u32>())
            .prop_map(|(search_seq, uin)| ClientPacket::SearchUin { search_seq, uin }),
        (any::<u16>(), text(), text(), text(), text()).prop_map(
            |(search_seq, nick, first, last, email)| {
                ClientPacket::SearchUser {
                    search_seq,
                    nick,
                    first,
                    last,
                    email,
                }
            }
        ),
        Just(ClientPacket::KeepAlive),
        (text(), any::<u16>()).prop_map(|(text, x1)| ClientPacket::SendTextCode { text, x1 }),
        Just(ClientPacket::Login1),
        (any::<u16>(), any::<u32>())
            .prop_map(|(info_seq, uin)| ClientPacket::InfoReq { info_seq, uin }),
        (any::<u16>(), any::<u32>())
            .prop_map(|(info_seq, uin)| ClientPacket::ExtInfoReq { info_seq, uin }),
        (any::<u16>(), text()).prop_map(|(password_seq, password)| ClientPacket::ChangePassword {
            password_seq,
            password
        }),
        status().prop_map(|status| ClientPacket::StatusChange { status }),
        Just(ClientPacket::Login2),
        (
            any::<u16>().prop_filter("typed", |c| !CLIENT_TYPED.contains(c)),
            prop::collection::vec(any::<u8>(), 0..32)
        )
            .prop_map(|(command, params)| ClientPacket::Other { command, params }),
    ]
}

fn server_packet() -> impl Strategy<Value = ServerPacket> {
    prop_oneof![
        Just(ServerPacket::Ack),
        (any::<u32>(), ip(), any::<u16>())
            .prop_map(|(uin, ip, login_seq)| ServerPacket::LoginReply { uin, ip, login_seq }),
        (any::<u32>(), ip(), any::<u32>(), ip(), status()).prop_map(
            |(uin, ip, tcp_port, real_ip, status)| {
                ServerPacket::UserOnline {
                    uin,
                    ip,
                    tcp_port,
                    real_ip,
                    status,
                }
            }
        ),
        any::<u32>().prop_map(|uin| ServerPacket::UserOffline { uin }),
        (any::<u16>(), user())
            .prop_map(|(search_seq, user)| ServerPacket::UserFound { search_seq, user }),
        (any::<u32>(), time(), any::<u16>(), text()).prop_map(|(from, time, kind, text)| {
            ServerPacket::ReceiveMessage {
                from,
                time,
                kind,
                text,
            }
        }),
        (any::<u16>(), any::<bool>())
            .prop_map(|(search_seq, more)| ServerPacket::EndOfSearch { search_seq, more }),
        (any::<u16>(), user())
            .prop_map(|(info_seq, user)| ServerPacket::InfoReply { info_seq, user }),
        (
            any::<u16>(),
            any::<u32>(),
            (
                text(),
                any::<u16>(),
                any::<u8>(),
                text(),
                any::<u16>(),
                any::<u8>(),
                text(),
                text(),
                text()
            )
        )
            .prop_map(
                |(
                    info_seq,
                    uin,
                    (city, country_code, country_status, state, age, sex, phone, homepage, about),
                )| {
                    ServerPacket::ExtInfoReply {
                        info_seq,
                        uin,
                        info: ExtInfo {
                            city,
                            country_code,
                            country_status,
                            state,
                            age,
                            sex,
                            phone,
                            homepage,
                            about,
                        },
                    }
                }
            ),
        (any::<u32>(), status())
            .prop_map(|(uin, status)| ServerPacket::StatusUpdate { uin, status }),
        Just(ServerPacket::BadPassword),
        (
            any::<u16>().prop_filter("typed", |c| !SERVER_TYPED.contains(c)),
            prop::collection::vec(any::<u8>(), 0..32)
        )
            .prop_map(|(command, params)| ServerPacket::Other { command, params }),
    ]
}

fn peer_packet() -> impl Strategy<Value = PeerPacket> {
    prop_oneof![
        (any::<u32>(), ip(), ip(), any::<u32>()).prop_map(|(uin, ip, real_ip, tcp_port)| {
            PeerPacket::Init(ChannelInit {
                uin,
                ip,
                real_ip,
                tcp_port,
            })
        }),
        (
            (
                any::<u32>(),
                any::<u16>(),
                any::<u32>(),
                any::<u16>(),
                text()
            ),
            (
                ip(),
                ip(),
                any::<u32>(),
                any::<u16>(),
                any::<u16>(),
                any::<u32>()
            )
        )
            .prop_map(
                |(
                    (uin, command, uin2, kind, text),
                    (real_ip, ip, tcp_port, status, cmd_type, sequence),
                )| {
                    PeerPacket::Message(ChannelMessage {
                        uin,
                        command,
                        uin2,
                        kind,
                        text,
                        real_ip,
                        ip,
                        tcp_port,
                        status,
                        cmd_type,
                        sequence,
                    })
                }
            ),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn decoders_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..96)) {
        let _ = ClientPacket::decode(&bytes);
        let _ = ServerPacket::decode(&bytes);
        let _ = PeerPacket::decode(&bytes);
        let _ = PeerPacket::decode_stream(&bytes);
        let _ = icq_proto::packet::server::system_message_text(&bytes);
    }

    /// Valid headers with random parameters reach every parameter decoder.
    #[test]
    fn parameter_decoders_never_panic(
        command in prop::sample::select(CLIENT_TYPED.iter().chain(SERVER_TYPED.iter()).copied().collect::<Vec<_>>()),
        params in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        let mut c = vec![0x02, 0x00];
        c.extend_from_slice(&command.to_le_bytes());
        c.extend_from_slice(&[1, 0]);
        let mut s = c.clone();
        c.extend_from_slice(&[1, 2, 3, 4]);
        c.extend_from_slice(&params);
        s.extend_from_slice(&params);
        if let Ok(f) = ClientPacket::decode(&c) {
            // Whatever decodes re-encodes to something that decodes the same.
            prop_assert_eq!(ClientPacket::decode(&f.encode()).unwrap(), f);
        }
        if let Ok(f) = ServerPacket::decode(&s) {
            prop_assert_eq!(ServerPacket::decode(&f.encode()).unwrap(), f);
        }
    }

    #[test]
    fn client_packets_round_trip(packet in client_packet(), seq in any::<u16>(), uin in any::<u32>()) {
        let bytes = packet.encode(seq, uin);
        prop_assert_eq!(ClientPacket::decode(&bytes).unwrap(), ClientFrame { seq, uin, packet });
    }

    #[test]
    fn server_packets_round_trip(packet in server_packet(), seq in any::<u16>()) {
        let bytes = packet.encode(seq);
        prop_assert_eq!(ServerPacket::decode(&bytes).unwrap(), ServerFrame { seq, packet });
    }

    #[test]
    fn peer_packets_round_trip(packet in peer_packet()) {
        let bytes = packet.encode();
        prop_assert_eq!(PeerPacket::decode(&bytes).unwrap(), packet.clone());
        prop_assert_eq!(PeerPacket::decode_stream(&bytes).unwrap(), Some((packet, bytes.len())));
    }

    #[test]
    fn message_content_round_trips(kind in prop::sample::select(vec![1u16, 4, 0x0C, 0x99]), body in text()) {
        // Parsing then re-serialising is stable after one normalisation step.
        let once = MessageContent::parse(kind, &body);
        let (k, wire) = once.to_wire();
        prop_assert_eq!(MessageContent::parse(k, &wire), once);
    }

    #[test]
    fn cp1252_reports_every_unrepresentable_char(s in ".{0,40}") {
        let e = encode_cp1252(&s);
        prop_assert_eq!(e.bytes.len(), s.chars().count());
        let bad: Vec<char> = s.chars().filter(|c| decode_cp1252(&encode_cp1252(&c.to_string()).bytes) != c.to_string()).collect();
        prop_assert_eq!(e.unrepresentable, bad);
    }
}
