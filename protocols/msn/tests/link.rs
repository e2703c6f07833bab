//! Two [`P2pLink`]s talking to each other through the wire codec (every message goes
//! through `to_payload` and `P2pMessageRef::parse`), and scripted contacts for what a
//! second link would never send (Messenger's direct-connection INVITE, bad input).

use std::sync::Arc;

use msn_proto::p2p::{app_id, flags};
use msn_proto::*;

const ALICE: &str = "alice@example.com";
const BOB: &str = "bob@example.com";

fn link(me: &str, contact: &str, seed: u64) -> P2pLink {
    P2pLink::new(me, contact, seed, LinkLimits::default())
}

/// Moves one message from `from` to `to`; false when `from` had nothing.
fn step(from: &mut P2pLink, to: &mut P2pLink) -> bool {
    let Some(m) = from.poll_transmit() else {
        return false;
    };
    let bytes = m.to_payload();
    let packet = P2pMessageRef::parse(&bytes).expect("a P2P message");
    to.handle(&packet);
    true
}

/// Runs both links until neither has anything to send.
fn run(a: &mut P2pLink, b: &mut P2pLink) {
    for _ in 0..1_000_000 {
        let moved = step(a, b) | step(b, a);
        if !moved {
            return;
        }
    }
    panic!("the links never went quiet");
}

fn events(l: &mut P2pLink) -> Vec<LinkEvent> {
    std::iter::from_fn(|| l.poll_event()).collect()
}

fn data(len: usize, salt: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i.wrapping_mul(31) as u8) ^ salt ^ (i >> 8) as u8)
        .collect()
}

fn offered(evs: &[LinkEvent]) -> (TransferId, String, u64) {
    match evs {
        [LinkEvent::FileOffered {
            transfer,
            name,
            size,
        }] => (*transfer, name.clone(), *size),
        _ => panic!("expected one offer, got {evs:?}"),
    }
}

fn one_file(from: &mut P2pLink, to: &mut P2pLink, name: &str, file: Vec<u8>) {
    let sent = from.send_file(name, Arc::from(file.clone()));
    run(from, to);
    let (offer, got_name, size) = offered(&events(to));
    assert_eq!((got_name.as_str(), size), (name, file.len() as u64));
    assert_eq!(to.transfers(), 1);
    to.accept_file(offer);
    run(from, to);
    assert_eq!(
        events(to),
        vec![LinkEvent::FileReceived {
            transfer: offer,
            name: name.into(),
            data: file,
        }]
    );
    assert_eq!(events(from), vec![LinkEvent::FileSent { transfer: sent }]);
    assert_eq!((from.transfers(), to.transfers()), (0, 0));
}

#[test]
fn a_200_kib_file_goes_both_ways_byte_identical() {
    let mut alice = link(ALICE, BOB, 1);
    let mut bob = link(BOB, ALICE, 2);
    one_file(&mut alice, &mut bob, "holiday.jpg", data(200 * 1024, 7));
    one_file(
        &mut bob,
        &mut alice,
        "r\u{e9}ponse.txt",
        data(200 * 1024 + 17, 9),
    );
    // And an empty file.
    one_file(&mut alice, &mut bob, "empty", Vec::new());
}

#[test]
fn data_chunks_carry_file_flags_footer_and_offsets() {
    let mut alice = link(ALICE, BOB, 3);
    let mut bob = link(BOB, ALICE, 4);
    let file = data(3000, 1);
    alice.send_file("a.bin", Arc::from(file.clone()));
    run(&mut alice, &mut bob);
    let (offer, _, _) = offered(&events(&mut bob));
    bob.accept_file(offer);
    // Bob's 200 OK reaches Alice, whose next messages are her ack and the data.
    while step(&mut bob, &mut alice) {}
    let mut chunks = Vec::new();
    while let Some(m) = alice.poll_transmit() {
        if m.header.session_id != 0 {
            chunks.push(m);
        }
    }
    assert_eq!(chunks.len(), 3);
    let mut offset = 0;
    for c in &chunks {
        assert_eq!(c.header.flags, flags::FILE_DATA);
        assert_eq!(c.app_id, app_id::FILE_TRANSFER);
        assert_eq!(
            c.header.id, chunks[0].header.id,
            "one identifier for all chunks"
        );
        assert_eq!((c.header.offset, c.header.total_size), (offset, 3000));
        assert!(c.body.len() <= p2p::MAX_CHUNK);
        assert_eq!(
            c.body,
            file[offset as usize..offset as usize + c.body.len()]
        );
        offset += c.body.len() as u64;
    }
}

#[test]
fn a_declined_file_ends_both_sides() {
    let mut alice = link(ALICE, BOB, 5);
    let mut bob = link(BOB, ALICE, 6);
    let sent = alice.send_file("x", Arc::from(data(5000, 2)));
    run(&mut alice, &mut bob);
    let (offer, _, _) = offered(&events(&mut bob));
    bob.decline_file(offer);
    run(&mut alice, &mut bob);
    assert_eq!(
        events(&mut alice),
        vec![LinkEvent::FileDeclined { transfer: sent }]
    );
    assert!(events(&mut bob).is_empty());
    assert_eq!((alice.transfers(), bob.transfers()), (0, 0));
}

fn accepted_and_started(
    alice: &mut P2pLink,
    bob: &mut P2pLink,
    len: usize,
) -> (TransferId, TransferId) {
    let sent = alice.send_file("big", Arc::from(data(len, 3)));
    run(alice, bob);
    let (offer, _, _) = offered(&events(bob));
    bob.accept_file(offer);
    // A few chunks only.
    while step(bob, alice) {}
    for _ in 0..10 {
        assert!(step(alice, bob));
    }
    (sent, offer)
}

#[test]
fn cancel_mid_transfer_by_either_side() {
    // The sender gives up: BYE, its stream stops, the receiver fails.
    let mut alice = link(ALICE, BOB, 7);
    let mut bob = link(BOB, ALICE, 8);
    let (sent, offer) = accepted_and_started(&mut alice, &mut bob, 100_000);
    alice.cancel(sent, "deadline");
    assert_eq!(
        events(&mut alice),
        vec![LinkEvent::Failed {
            transfer: sent,
            why: "deadline".into()
        }]
    );
    let mut sent_after = 0;
    while let Some(m) = alice.poll_transmit() {
        sent_after += 1;
        let bytes = m.to_payload();
        bob.handle(&P2pMessageRef::parse(&bytes).unwrap());
    }
    assert!(sent_after <= 2, "only the BYE, no more data ({sent_after})");
    run(&mut alice, &mut bob);
    assert!(
        matches!(&events(&mut bob)[..], [LinkEvent::Failed { transfer, .. }] if *transfer == offer)
    );
    assert_eq!((alice.transfers(), bob.transfers()), (0, 0));

    // The receiver gives up: the sender fails and stops sending.
    let mut alice = link(ALICE, BOB, 9);
    let mut bob = link(BOB, ALICE, 10);
    let (sent, offer) = accepted_and_started(&mut alice, &mut bob, 100_000);
    bob.cancel(offer, "too slow");
    run(&mut alice, &mut bob);
    assert_eq!(
        events(&mut bob),
        vec![LinkEvent::Failed {
            transfer: offer,
            why: "too slow".into()
        }]
    );
    assert!(
        matches!(&events(&mut alice)[..], [LinkEvent::Failed { transfer, .. }] if *transfer == sent)
    );
    assert_eq!((alice.transfers(), bob.transfers()), (0, 0));
    assert!(alice.poll_transmit().is_none());

    // An unanswered offer cancelled is declined.
    let mut alice = link(ALICE, BOB, 11);
    let mut bob = link(BOB, ALICE, 12);
    let sent = alice.send_file("x", Arc::from(data(10, 3)));
    run(&mut alice, &mut bob);
    let (offer, _, _) = offered(&events(&mut bob));
    bob.cancel(offer, "nobody answered");
    run(&mut alice, &mut bob);
    assert_eq!(
        events(&mut alice),
        vec![LinkEvent::FileDeclined { transfer: sent }]
    );
}

fn picture_of(who: &str, len: usize) -> (MsnObject, Arc<[u8]>) {
    let d = data(len, 0x5A);
    (
        MsnObject::for_data(who, 3, "TFR2C.tmp", "me", &d),
        Arc::from(d),
    )
}

#[test]
fn a_picture_is_served_and_fetched_while_a_file_runs() {
    let mut alice = link(ALICE, BOB, 13);
    let mut bob = link(BOB, ALICE, 14);
    let (object, picture) = picture_of(ALICE, 40_000);
    alice.set_picture(Some((object.clone(), picture.clone())));
    let file = data(150_000, 4);
    let sent = alice.send_file("f", Arc::from(file.clone()));
    run(&mut alice, &mut bob);
    let (offer, _, _) = offered(&events(&mut bob));
    bob.accept_file(offer);
    while step(&mut bob, &mut alice) {}
    // The file starts; the fetch begins while it runs.
    for _ in 0..20 {
        step(&mut alice, &mut bob);
    }
    let fetch = bob.fetch_picture(&object);
    // Record, for each of Alice's data chunks, whether it is the picture's (flags
    // 0x20) or the file's (0x01000030).
    let mut kinds = Vec::new();
    for _ in 0..1_000_000 {
        let a = match alice.poll_transmit() {
            Some(m) => {
                if m.header.flags & flags::MSNOBJ_DATA != 0 {
                    kinds.push(m.header.flags == flags::MSNOBJ_DATA);
                }
                let bytes = m.to_payload();
                bob.handle(&P2pMessageRef::parse(&bytes).unwrap());
                true
            }
            None => false,
        };
        if !(step(&mut bob, &mut alice) | a) {
            break;
        }
    }
    let first = kinds.iter().position(|&p| p).expect("picture chunks");
    let last = kinds.iter().rposition(|&p| p).unwrap();
    assert_eq!(kinds[first..=last].iter().filter(|&&p| p).count(), 34);
    assert!(
        kinds[first..last].iter().any(|&p| !p),
        "picture and file chunks interleave"
    );
    let bob_events = events(&mut bob);
    assert!(bob_events.contains(&LinkEvent::PictureFetched {
        transfer: fetch,
        data: picture.to_vec()
    }));
    assert!(bob_events.contains(&LinkEvent::FileReceived {
        transfer: offer,
        name: "f".into(),
        data: file
    }));
    let alice_events = events(&mut alice);
    assert_eq!(alice_events.len(), 2, "{alice_events:?}");
    assert!(alice_events.contains(&LinkEvent::FileSent { transfer: sent }));
    assert!(alice_events
        .iter()
        .any(|e| matches!(e, LinkEvent::PictureServed { .. })));
    assert_eq!((alice.transfers(), bob.transfers()), (0, 0));
}

#[test]
fn pictures_not_ours_are_declined_and_limits_hold() {
    let mut alice = link(ALICE, BOB, 15);
    let mut bob = link(BOB, ALICE, 16);
    let (object, picture) = picture_of(ALICE, 1000);
    // No picture set: 603.
    let fetch = bob.fetch_picture(&object);
    run(&mut alice, &mut bob);
    assert!(
        matches!(&events(&mut bob)[..], [LinkEvent::Failed { transfer, why }] if *transfer == fetch && why.contains("declined"))
    );
    // Another object than ours: 603.
    let (other, _) = picture_of(ALICE, 999);
    alice.set_picture(Some((other, picture.clone())));
    bob.fetch_picture(&object);
    run(&mut alice, &mut bob);
    assert!(matches!(&events(&mut bob)[..], [LinkEvent::Failed { .. }]));
    assert!(events(&mut alice).is_empty());
    // Too big for our limit: ends at once, nothing sent.
    let mut small = P2pLink::new(
        BOB,
        ALICE,
        17,
        LinkLimits {
            max_picture: 500,
            ..LinkLimits::default()
        },
    );
    let t = small.fetch_picture(&object);
    assert!(small.poll_transmit().is_none());
    assert!(
        matches!(&events(&mut small)[..], [LinkEvent::Failed { transfer, .. }] if *transfer == t)
    );
    assert_eq!(small.transfers(), 0);
}

#[test]
fn a_file_over_max_file_or_max_transfers_is_declined_at_once() {
    let mut alice = link(ALICE, BOB, 18);
    let mut bob = P2pLink::new(
        BOB,
        ALICE,
        19,
        LinkLimits {
            max_file: 10_000,
            max_transfers: 2,
            ..LinkLimits::default()
        },
    );
    let big = alice.send_file("big", Arc::from(data(10_001, 0)));
    run(&mut alice, &mut bob);
    assert!(
        events(&mut bob).is_empty(),
        "no offer for a file over max_file"
    );
    assert_eq!(
        events(&mut alice),
        vec![LinkEvent::FileDeclined { transfer: big }]
    );
    // Two offers wait; the third is declined.
    let ids: Vec<_> = (0..3)
        .map(|i| alice.send_file(&format!("f{i}"), Arc::from(data(10, 0))))
        .collect();
    run(&mut alice, &mut bob);
    assert_eq!(events(&mut bob).len(), 2);
    assert_eq!(bob.transfers(), 2);
    assert_eq!(
        events(&mut alice),
        vec![LinkEvent::FileDeclined { transfer: ids[2] }]
    );
}

// --- a scripted contact ------------------------------------------------------------

/// What a contact sends, built with the codec by hand.
struct Contact {
    next_id: u32,
}

impl Contact {
    fn slp(&mut self, m: &SlpMessage) -> P2pMessage {
        let body = m.to_bytes();
        self.msg(0, 0, &body, body.len() as u64, 0, 0)
    }

    fn msg(
        &mut self,
        session: u32,
        fl: u32,
        body: &[u8],
        total: u64,
        offset: u64,
        footer: u32,
    ) -> P2pMessage {
        self.next_id += 1;
        P2pMessage::new(
            ALICE,
            P2pHeader {
                session_id: session,
                id: self.next_id,
                offset,
                total_size: total,
                flags: fl,
                ack_id: self.next_id.wrapping_mul(0x0101_0101),
                ..P2pHeader::default()
            },
            body,
            footer,
        )
    }
}

fn feed(l: &mut P2pLink, m: &P2pMessage) -> Vec<P2pMessage> {
    let bytes = m.to_payload();
    l.handle(&P2pMessageRef::parse(&bytes).expect("P2P"));
    std::iter::from_fn(|| l.poll_transmit()).collect()
}

const CALL: &str = "{7E6A1C2B-4D3F-4A5B-9C8D-0E1F2A3B4C5D}";
const BRANCH: &str = "{0A1B2C3D-4E5F-4061-8273-94A5B6C7D8E9}";
const BRANCH2: &str = "{1B2C3D4E-5F60-4172-8394-A5B6C7D8E9FA}";

fn file_invite(size: u64) -> SlpMessage {
    let context = FileContext::new("song.mp3", size).to_bytes();
    SlpMessage::file_invite(ALICE, BOB, BRANCH, CALL, 4_242, &context)
}

#[test]
fn messengers_direct_connection_invite_gets_not_listening_byte_for_byte() {
    let mut alice = link(ALICE, BOB, 20);
    let mut bob = Contact { next_id: 100 };
    let file = data(5000, 8);
    let invite = bob.slp(&file_invite(5000));
    let out = feed(&mut alice, &invite);
    assert_eq!(out.len(), 1);
    assert!(out[0].header.acknowledges(&invite.header));
    let (offer, name, _) = offered(&events(&mut alice));
    assert_eq!(name, "song.mp3");
    alice.accept_file(offer);
    let ok = std::iter::from_fn(|| alice.poll_transmit()).collect::<Vec<_>>();
    let ok = SlpMessage::parse(&ok[0].body).unwrap();
    assert_eq!((ok.status(), ok.session_id()), (Some(200), Some(4_242)));

    // Messenger 6/7 then tries a direct connection (the body libpurple's got_ok
    // sends when it cannot listen).
    let transreq = SlpMessage::request(
        "INVITE",
        ALICE,
        BOB,
        BRANCH2,
        CALL,
        slp::CONTENT_TYPE_TRANS_REQ,
        &[
            ("Bridges", "TCPv1"),
            ("NetID", "-1280904111"),
            ("Conn-Type", "IP-Restrict-NAT"),
            ("UPnPNat", "false"),
            ("ICF", "false"),
        ],
    );
    let transreq = bob.slp(&transreq);
    let out = feed(&mut alice, &transreq);
    assert_eq!(out.len(), 2, "{out:?}");
    assert!(out[0].header.acknowledges(&transreq.header));
    // Byte for byte what libpurple sends (slpmsg.c `msn_slpmsg_sip_new` with CSeq 1,
    // slp.c `got_invite` body for "direct_connect" off), NUL counted: Content-Length 83
    // as in Kopete's p2p.cpp `P2P_NEGOTIATION` answer.
    let expected = format!(
        "MSNSLP/1.0 200 OK\r\n\
         To: <msnmsgr:{BOB}>\r\n\
         From: <msnmsgr:{ALICE}>\r\n\
         Via: MSNSLP/1.0/TLP ;branch={BRANCH2}\r\n\
         CSeq: 1\r\n\
         Call-ID: {CALL}\r\n\
         Max-Forwards: 0\r\n\
         Content-Type: application/x-msnmsgr-transrespbody\r\n\
         Content-Length: 83\r\n\
         \r\n\
         Bridge: TCPv1\r\n\
         Listening: false\r\n\
         Nonce: {{00000000-0000-0000-0000-000000000000}}\r\n\
         \r\n\0"
    );
    assert_eq!(String::from_utf8_lossy(&out[1].body), expected);
    assert_eq!((out[1].header.session_id, out[1].app_id), (0, 0));

    // The data comes over the switchboard: silence until the last chunk, then one
    // ack of the whole and the receiver's BYE.
    let mut offset = 0;
    let id = bob.next_id + 1;
    let mut last = Vec::new();
    for chunk in file.chunks(p2p::MAX_CHUNK) {
        let mut m = bob.msg(
            4_242,
            flags::FILE_DATA,
            chunk,
            5000,
            offset,
            app_id::FILE_TRANSFER,
        );
        m.header.id = id;
        offset += chunk.len() as u64;
        last = feed(&mut alice, &m);
        if offset < 5000 {
            assert!(last.is_empty());
        }
    }
    assert_eq!(last.len(), 2);
    assert!(
        last[0].header.is_ack() && last[0].header.ack_id == id && last[0].header.ack_size == 5000
    );
    let bye = SlpMessage::parse(&last[1].body).unwrap();
    assert_eq!((bye.method(), bye.call_id.as_str()), (Some("BYE"), CALL));
    assert_eq!(
        events(&mut alice),
        vec![LinkEvent::FileReceived {
            transfer: offer,
            name: "song.mp3".into(),
            data: file
        }]
    );
}

#[test]
fn bad_and_oversized_input_fails_cleanly() {
    let mut alice = link(ALICE, BOB, 21);
    let mut bob = Contact { next_id: 500 };
    feed(&mut alice, &bob.slp(&file_invite(3000)));
    let (offer, _, _) = offered(&events(&mut alice));
    alice.accept_file(offer);
    std::iter::from_fn(|| alice.poll_transmit()).for_each(drop);
    // A total other than the offer: failed, closed with a BYE.
    let out = feed(
        &mut alice,
        &bob.msg(4_242, flags::FILE_DATA, &[1; 10], 1 << 40, 0, 2),
    );
    assert!(out
        .iter()
        .any(|m| SlpMessage::parse(&m.body).is_ok_and(|s| s.method() == Some("BYE"))));
    assert!(matches!(
        &events(&mut alice)[..],
        [LinkEvent::Failed { .. }]
    ));
    assert_eq!(alice.transfers(), 0);

    // A BYE before the end.
    feed(&mut alice, &bob.slp(&file_invite(3000)));
    let (offer, _, _) = offered(&events(&mut alice));
    alice.accept_file(offer);
    feed(
        &mut alice,
        &bob.msg(4_242, flags::FILE_DATA, &[1; 1000], 3000, 0, 2),
    );
    feed(
        &mut alice,
        &bob.slp(&SlpMessage::bye(ALICE, BOB, BRANCH2, CALL)),
    );
    assert!(
        matches!(&events(&mut alice)[..], [LinkEvent::Failed { why, .. }] if why.contains("ended"))
    );

    // Error flags on the session.
    feed(&mut alice, &bob.slp(&file_invite(3000)));
    let (offer, _, _) = offered(&events(&mut alice));
    alice.accept_file(offer);
    feed(&mut alice, &bob.msg(4_242, flags::TLP_ERROR, &[], 0, 0, 0));
    assert!(matches!(
        &events(&mut alice)[..],
        [LinkEvent::Failed { .. }]
    ));

    // A packet for someone else on the switchboard is not ours to ack or act on.
    let mut elsewhere = bob.slp(&file_invite(10));
    elsewhere.destination = "carol@example.com".into();
    assert!(feed(&mut alice, &elsewhere).is_empty());
    assert_eq!(alice.transfers(), 0);

    // An MSNSLP message larger than MAX_SLP_LEN is never stored or acked.
    let out = feed(&mut alice, &bob.msg(0, 0, &[b'A'; 100], 1 << 32, 0, 0));
    assert!(out.is_empty());
    // Garbage MSNSLP is acked and ignored; an INVITE with an unreadable context is
    // declined.
    let garbage = b"\xff\xfe garbage\0";
    let out = feed(
        &mut alice,
        &bob.msg(0, 0, garbage, garbage.len() as u64, 0, 0),
    );
    assert_eq!(out.len(), 1);
    let mut broken = file_invite(10);
    broken.body.retain(|(k, _)| k != "Context");
    broken.body.push(("Context".into(), "!!!".into()));
    let out = feed(&mut alice, &bob.slp(&broken));
    assert_eq!(SlpMessage::parse(&out[1].body).unwrap().status(), Some(603));
    // Unknown EUF-GUIDs are declined too.
    let mut webcam = file_invite(10);
    webcam.body[0].1 = "{4BD96FC0-AB17-4425-A14A-439185962DC8}".into();
    let out = feed(&mut alice, &bob.slp(&webcam));
    assert_eq!(SlpMessage::parse(&out[1].body).unwrap().status(), Some(603));
    assert!(events(&mut alice).is_empty());

    // Random packets: no panic, nothing unbounded.
    let mut x: u64 = 0x1234_5678_9ABC_DEF1;
    let mut rnd = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for _ in 0..5_000 {
        let session = [0, 4_242, rnd() as u32][rnd() as usize % 3];
        let len = (rnd() % 64) as usize;
        let body: Vec<u8> = (0..len).map(|_| rnd() as u8).collect();
        let total = [len as u64, rnd() % 100_000, rnd()][rnd() as usize % 3];
        let offset = if total > len as u64 {
            rnd() % (total - len as u64 + 1)
        } else {
            0
        };
        let fl = [
            0,
            flags::ACK,
            flags::FILE_DATA,
            flags::MSNOBJ_DATA,
            rnd() as u32,
        ][rnd() as usize % 5];
        let m = bob.msg(session, fl, &body, total, offset, rnd() as u32 % 3);
        let bytes = m.to_payload();
        if let Ok(p) = P2pMessageRef::parse(&bytes) {
            alice.handle(&p);
        }
        while alice.poll_transmit().is_some() {}
        while alice.poll_event().is_some() {}
        assert!(alice.transfers() <= LinkLimits::default().max_transfers);
    }
}

/// The documented display-picture flow (PROTOCOL-NOTES "Display picture flow", libpurple
/// `got_sessionreq`/`msn_slpmsg_dataprep_new`/`msn_slpmsg_obj_new`) from both ends: a
/// scripted sender for our fetch, a scripted receiver for our serve.
#[test]
fn picture_flows_step_by_step_against_scripted_contacts() {
    // Fetch: INVITE -> their ack, 200 OK -> our ack, prep -> our ack, data -> one ack
    // and our BYE.
    let (object, picture) = picture_of(BOB, 3000);
    let mut alice = link(ALICE, BOB, 22);
    let fetch = alice.fetch_picture(&object);
    let invite_msg = alice.poll_transmit().unwrap();
    assert!(alice.poll_transmit().is_none());
    let invite = SlpMessage::parse(&invite_msg.body).unwrap();
    assert_eq!(invite.euf_guid(), Some(slp::EUF_GUID_MSNOBJ));
    assert_eq!(invite.app_id(), Some(1));
    let session = invite.session_id().unwrap();
    let mut bob = Contact { next_id: 900 };
    assert!(feed(
        &mut alice,
        &P2pMessage::new(ALICE, invite_msg.header.ack(1), &[], 0)
    )
    .is_empty());
    let ok = bob.slp(&invite.ok());
    let out = feed(&mut alice, &ok);
    assert!(out.len() == 1 && out[0].header.acknowledges(&ok.header));
    let prep = bob.msg(session, 0, &[0; 4], 4, 0, app_id::MSNOBJ);
    let out = feed(&mut alice, &prep);
    assert!(out.len() == 1 && out[0].header.acknowledges(&prep.header));
    let mut offset = 0;
    let id = bob.next_id + 1;
    let mut out = Vec::new();
    for chunk in picture.chunks(p2p::MAX_CHUNK) {
        let mut m = bob.msg(
            session,
            flags::MSNOBJ_DATA,
            chunk,
            3000,
            offset,
            app_id::MSNOBJ,
        );
        m.header.id = id;
        offset += chunk.len() as u64;
        out = feed(&mut alice, &m);
    }
    assert_eq!(out.len(), 2);
    assert!(out[0].header.is_ack() && out[0].header.ack_id == id);
    assert_eq!(
        SlpMessage::parse(&out[1].body).unwrap().method(),
        Some("BYE")
    );
    assert_eq!(
        events(&mut alice),
        vec![LinkEvent::PictureFetched {
            transfer: fetch,
            data: picture.to_vec()
        }]
    );

    // Serve: their INVITE (context with libpurple's trailing NUL) -> our ack, 200 OK,
    // data preparation, data chunks; their ack of the data -> PictureServed.
    let (ours, data) = picture_of(ALICE, 2500);
    alice.set_picture(Some((ours.clone(), data.clone())));
    let mut xml = ours.to_xml().into_bytes();
    xml.push(0);
    let call = "{2B2B2B2B-0000-4000-8000-000000000001}";
    let ask = SlpMessage::request(
        "INVITE",
        ALICE,
        BOB,
        BRANCH,
        call,
        slp::CONTENT_TYPE_SESSION_REQ,
        &[
            ("EUF-GUID", slp::EUF_GUID_MSNOBJ),
            ("SessionID", "777"),
            ("AppID", "1"),
            ("Context", &base64_of(&xml)),
        ],
    );
    let ask = bob.slp(&ask);
    let out = feed(&mut alice, &ask);
    assert!(out[0].header.acknowledges(&ask.header));
    let ok = SlpMessage::parse(&out[1].body).unwrap();
    assert_eq!(
        (ok.status(), ok.session_id(), ok.call_id.as_str()),
        (Some(200), Some(777), call)
    );
    assert_eq!(
        (out[2].header.session_id, out[2].header.flags, out[2].app_id),
        (777, 0, 1)
    );
    assert_eq!(
        (out[2].body.as_slice(), out[2].header.total_size),
        (&[0u8; 4][..], 4)
    );
    let chunks = &out[3..];
    assert_eq!(chunks.len(), 3);
    let served: Vec<u8> = chunks.iter().flat_map(|c| c.body.clone()).collect();
    assert_eq!(served, data.to_vec());
    assert!(chunks.iter().all(|c| c.header.flags == flags::MSNOBJ_DATA
        && c.app_id == app_id::MSNOBJ
        && c.header.session_id == 777));
    // Acking the preparation changes nothing; the data's ack ends it.
    assert!(feed(
        &mut alice,
        &P2pMessage::new(ALICE, out[2].header.ack(2), &[], 0)
    )
    .is_empty());
    assert!(events(&mut alice).is_empty());
    feed(
        &mut alice,
        &P2pMessage::new(ALICE, chunks[2].header.ack(3), &[], 0),
    );
    assert!(matches!(
        &events(&mut alice)[..],
        [LinkEvent::PictureServed { .. }]
    ));
    assert_eq!(alice.transfers(), 0);
}

fn base64_of(bytes: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::new();
    for c in bytes.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                s.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                s.push('=');
            }
        }
    }
    s
}
