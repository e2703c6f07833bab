//! Display pictures: MSNObjects in presence, and the sender side of the
//! MSNC display picture flow as a sim client runs it.
//!
//! The receivers here are scripted in the tests with the `msn-proto` codec
//! (`P2pHeader`, `SlpMessage`, `Reassembler`); they share no code with the
//! client's sender (`msn::picture`). Reference bytes are laid out by hand
//! from public sources, never produced by the code under test:
//! * PIDGIN_INVITE: the display picture INVITE from a Pidgin debug log
//!   (antony_css, 2009-02-20), as quoted in msn-proto's tests/slp.rs.
//! * LIBPURPLE_OK: the 200 OK libpurple's `msn_slp_send_ok` answers it with
//!   (addresses swapped, same branch and Call-ID, CSeq 1, the INVITE's
//!   content type, body `SessionID: <id>\r\n\r\n` and a NUL), as in
//!   msn-proto's tests/slp.rs.
//! * Binary headers: field by field from the MSNPiki "MSNC: P2Pv1 binary
//!   headers" table and "MSNC: Display Pictures" (200 OK: session 0, total =
//!   length = text size, flags 0, footer 0; data preparation: the session id,
//!   total = length = 4, flags 0, body 00 00 00 00, footer 00 00 00 01); the
//!   INVITE's identifier bytes 58 A9 18 01 and ack id AB 38 1E 00 are those
//!   of MSNPiki's example INVITE.

use std::time::{Duration, Instant};

use msn_proto::p2p::{self, app_id, flags, MAX_CHUNK};
use msn_proto::slp::{SlpMessage, EUF_GUID_MSNOBJ};
use msn_proto::{
    AckMode, MsnObject, NsConfig, NsEvent, NsSession, P2pHeader, P2pMessage, P2pMessageRef,
    Reassembler, SbEvent, SbSession, Status,
};
use proptest::prelude::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::client::{Client, ClientEvent};
use super::picture::{Picture, PictureServer};
use super::{Config, Server};

pub(super) const T: Duration = Duration::from_secs(10);
pub(super) const ALICE: &str = "alice@hotmail.com";
pub(super) const BOB: &str = "bob@hotmail.com";

const YAML: &str = r#"
dispatch_port: 0
notification_port: 0
switchboard_port: 0
http_port: 0
users:
  - email: alice@hotmail.com
    password: secret
    friendly_name: Alice
    contacts: [{ email: bob@hotmail.com }, { email: carol@hotmail.com }]
  - email: bob@hotmail.com
    password: hunter2
    friendly_name: Bob
    contacts: [{ email: alice@hotmail.com }]
  - email: carol@hotmail.com
    password: pw
    contacts: [{ email: alice@hotmail.com }]
"#;

pub(super) async fn start() -> Server {
    let config: Config = serde_yaml::from_str(YAML).unwrap();
    Server::start(config).await.unwrap()
}

fn deadline() -> tokio::time::Instant {
    tokio::time::Instant::now() + T
}

/// A notification-server session driven directly, to see the raw
/// `NsEvent::Presence { msn_object }` and ask for switchboards.
pub(super) struct RawNs {
    stream: TcpStream,
    ns: NsSession,
}

impl RawNs {
    pub(super) async fn login(s: &Server, email: &str, password: &str) -> RawNs {
        let stream = TcpStream::connect(s.notification_addr()).await.unwrap();
        let mut raw = RawNs {
            stream,
            ns: NsSession::new(NsConfig::new(email), Instant::now()),
        };
        let ev = raw.until(|e| matches!(e, NsEvent::NeedTicket { .. })).await;
        let Some(NsEvent::NeedTicket { policy }) = ev.last() else {
            panic!("{ev:?}")
        };
        let ticket = super::client::passport_login(&s.nexus_url(), email, password, policy)
            .await
            .unwrap();
        raw.ns.ticket(&ticket);
        raw
    }

    /// Runs until an event matches; returns everything seen up to it.
    pub(super) async fn until(&mut self, want: impl Fn(&NsEvent) -> bool) -> Vec<NsEvent> {
        let end = deadline();
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            while let Some(b) = self.ns.poll_transmit() {
                self.stream.write_all(&b).await.unwrap();
            }
            while let Some(e) = self.ns.poll_event() {
                let done = want(&e);
                seen.push(e);
                if done {
                    return seen;
                }
            }
            let n = tokio::time::timeout_at(end, self.stream.read(&mut buf))
                .await
                .unwrap_or_else(|_| panic!("timed out; saw {seen:?}"))
                .unwrap();
            assert!(n > 0, "closed; saw {seen:?}");
            self.ns.handle_input(&buf[..n]);
        }
    }

    /// The next presence of `email`, its MSNObject (URL-decoded XML).
    pub(super) async fn presence_of(&mut self, email: &str) -> (bool, Option<String>) {
        let ev = self
            .until(|e| matches!(e, NsEvent::Presence { email: m, .. } if m == email))
            .await;
        match ev.last() {
            Some(NsEvent::Presence {
                msn_object,
                initial,
                ..
            }) => (*initial, msn_object.clone()),
            other => panic!("{other:?}"),
        }
    }

    /// `XFR SB`: a switchboard address and cookie.
    pub(super) async fn switchboard(&mut self) -> (String, String) {
        self.ns.request_switchboard();
        let ev = self
            .until(|e| matches!(e, NsEvent::Switchboard { .. }))
            .await;
        match ev.last() {
            Some(NsEvent::Switchboard { addr, cookie, .. }) => (addr.clone(), cookie.clone()),
            other => panic!("{other:?}"),
        }
    }
}

/// What a scripted receiver sees on its switchboard.
#[derive(Debug)]
pub(super) enum Seen {
    P2p(P2pMessage),
    Text(String),
}

/// A picture receiver scripted with the codec, on a real switchboard: it
/// opens one with `XFR SB` and `CAL`s the picture's owner.
pub(super) struct Receiver {
    pub(super) me: String,
    pub(super) peer: String,
    pub(super) stream: TcpStream,
    pub(super) sb: SbSession,
    next_id: u32,
}

impl Receiver {
    pub(super) async fn call(ns: &mut RawNs, me: &str, peer: &str) -> Receiver {
        let (addr, cookie) = ns.switchboard().await;
        let stream = TcpStream::connect(addr).await.unwrap();
        let mut sb = SbSession::outgoing(me, &cookie);
        sb.invite(peer);
        let mut r = Receiver {
            me: me.to_string(),
            peer: peer.to_string(),
            stream,
            sb,
            // MSNPiki: the receiver picks a BaseIdentifier for its INVITE and
            // counts up from it.
            next_id: 0x0118_A958,
        };
        r.wait_event(|e| matches!(e, SbEvent::Joined { .. })).await;
        r
    }

    pub(super) fn id(&mut self) -> u32 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    pub(super) async fn flush(&mut self) {
        while let Some(b) = self.sb.poll_transmit() {
            self.stream.write_all(&b).await.unwrap();
        }
    }

    pub(super) async fn read_some(&mut self, end: tokio::time::Instant) {
        let mut buf = [0u8; 8192];
        let n = tokio::time::timeout_at(end, self.stream.read(&mut buf))
            .await
            .expect("timed out waiting on the switchboard")
            .unwrap();
        assert!(n > 0, "switchboard closed");
        self.sb.handle_input(&buf[..n]);
    }

    pub(super) async fn wait_event(&mut self, want: impl Fn(&SbEvent) -> bool) -> SbEvent {
        let end = deadline();
        loop {
            self.flush().await;
            while let Some(e) = self.sb.poll_event() {
                if want(&e) {
                    return e;
                }
            }
            self.read_some(end).await;
        }
    }

    /// The next P2P packet or text message from the peer.
    pub(super) async fn next(&mut self) -> Seen {
        let e = self
            .wait_event(|e| matches!(e, SbEvent::Message { .. }))
            .await;
        let SbEvent::Message { message, from, .. } = e else {
            unreachable!()
        };
        assert_eq!(from, self.peer);
        let payload = message.to_bytes();
        match P2pMessageRef::parse(&payload) {
            Ok(m) => Seen::P2p(m.to_owned()),
            Err(_) => Seen::Text(String::from_utf8_lossy(&message.body).into_owned()),
        }
    }

    pub(super) async fn next_p2p(&mut self) -> P2pMessage {
        match self.next().await {
            Seen::P2p(m) => {
                assert_eq!(m.destination, self.me);
                m
            }
            other => panic!("expected a P2P packet, got {other:?}"),
        }
    }

    /// Sends raw bytes as a P2P `MSG D` payload.
    pub(super) async fn send_payload(&mut self, payload: &[u8]) {
        let m = msn_proto::Message::parse(payload).unwrap();
        self.sb.send_message(&m, AckMode::Data);
        self.flush().await;
    }

    /// Sends a whole message in chunks; returns its header (offset 0,
    /// whole total) for matching its ack.
    pub(super) async fn send(&mut self, base: P2pHeader, body: &[u8], app: u32) -> P2pHeader {
        let dest = self.peer.clone();
        for (h, piece) in p2p::chunks(base, body, MAX_CHUNK) {
            let payload = P2pMessage::new(&dest, h, piece, app).to_payload();
            self.send_payload(&payload).await;
        }
        P2pHeader {
            total_size: body.len() as u64,
            ..base
        }
    }

    pub(super) async fn send_slp(&mut self, slp: &SlpMessage) -> P2pHeader {
        let base = P2pHeader {
            id: self.id(),
            ack_id: 0x001E_38AB,
            ..Default::default()
        };
        self.send(base, &slp.to_bytes(), app_id::NEGOTIATION).await
    }

    /// Acks `h` (a message's last chunk), libpurple's way.
    pub(super) async fn ack(&mut self, h: &P2pHeader) {
        let ack = h.ack(self.id());
        self.send(ack, &[], app_id::NEGOTIATION).await;
    }

    /// Expects the ack of `sent`.
    pub(super) async fn expect_ack(&mut self, sent: &P2pHeader) {
        let m = self.next_p2p().await;
        assert!(
            m.header.acknowledges(sent),
            "not the ack of {sent:?}: {m:?}"
        );
        assert!(m.body.is_empty());
        assert_eq!(m.app_id, app_id::NEGOTIATION);
    }

    /// Reads a whole MSNSLP message (session 0); returns it and the header
    /// of its last chunk.
    pub(super) async fn expect_slp(&mut self) -> (SlpMessage, P2pHeader) {
        let mut r = Reassembler::new(64 * 1024);
        loop {
            let m = self.next_p2p().await;
            assert_eq!((m.header.session_id, m.header.flags, m.app_id), (0, 0, 0));
            if let Some(text) = r.push(&m.header, &m.body).unwrap() {
                return (SlpMessage::parse(&text).unwrap(), m.header);
            }
        }
    }

    fn invite(&self, call_id: &str, session_id: u32, object_xml: &str) -> SlpMessage {
        SlpMessage::picture_invite(
            &self.peer,
            &self.me,
            "{85BAAA5E-42A6-3D03-AB0E-40C35C8B9B2C}",
            call_id,
            session_id,
            object_xml,
        )
    }
}

pub(super) async fn login(s: &Server, email: &str, password: &str) -> Client {
    Client::login(s.dispatch_addr(), &s.nexus_url(), email, password)
        .await
        .unwrap()
}

fn picture_bytes(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
}

/// (a) The MSNObject of a CHG reaches watchers in ILN and NLN, URL-encoded
/// as sent, and a CHG without one clears it.
#[tokio::test]
async fn msn_object_in_iln_and_nln() {
    let s = start().await;
    let alice = login(&s, ALICE, "secret").await;
    let obj = alice.set_display_picture(picture_bytes(5000)).unwrap();
    assert_eq!((obj.creator.as_str(), obj.kind, obj.size), (ALICE, 3, 5000));
    assert!(obj.sha1c_ok());
    // Bob signs in after the CHG: ILN carries the object.
    let mut bob = RawNs::login(&s, BOB, "hunter2").await;
    let (initial, o) = bob.presence_of(ALICE).await;
    assert!(initial);
    assert_eq!(o.as_deref(), Some(obj.to_xml().as_str()));
    // A status change: NLN carries the object again.
    alice.set_status(Status::Away).unwrap();
    let (initial, o) = bob.presence_of(ALICE).await;
    assert!(!initial);
    assert_eq!(o.as_deref(), Some(obj.to_xml().as_str()));
    // A new picture: NLN with the new object.
    let obj2 = alice.set_display_picture(picture_bytes(6000)).unwrap();
    assert_ne!(obj2.sha1d, obj.sha1d);
    let (_, o) = bob.presence_of(ALICE).await;
    assert_eq!(o.as_deref(), Some(obj2.to_xml().as_str()));
    // CHG without an object clears it.
    alice.clear_display_picture().unwrap();
    let (_, o) = bob.presence_of(ALICE).await;
    assert_eq!(o, None);
}

/// (c) A codec-scripted receiver fetches a 20 KiB picture over a switchboard
/// it opened with CAL and gets the exact bytes; every step is checked.
#[tokio::test]
async fn receiver_fetches_picture_over_switchboard() {
    let s = start().await;
    let mut alice = login(&s, ALICE, "secret").await;
    let picture = picture_bytes(20 * 1024);
    let obj = alice.set_display_picture(picture.clone()).unwrap();
    let mut ns = RawNs::login(&s, BOB, "hunter2").await;
    let (_, xml) = ns.presence_of(ALICE).await;
    let xml = xml.unwrap();
    let mut rc = Receiver::call(&mut ns, BOB, ALICE).await;

    // INVITE -> ack.
    let sid = 599_023_529;
    let call_id = "{28CB7B41-7E7A-51D9-B137-32E6AA4D7497}";
    let invite = rc.invite(call_id, sid, &xml);
    let sent = rc.send_slp(&invite).await;
    rc.expect_ack(&sent).await;
    // 200 OK: swapped addresses, same Call-ID and branch, CSeq 1, SessionID.
    let (ok, ok_h) = rc.expect_slp().await;
    assert_eq!(ok.status(), Some(200));
    assert_eq!((ok.to.as_str(), ok.from.as_str()), (BOB, ALICE));
    assert_eq!(
        (ok.call_id.as_str(), ok.branch.as_str()),
        (call_id, invite.branch.as_str())
    );
    assert_eq!(ok.cseq, 1);
    assert_eq!(ok.session_id(), Some(sid));
    rc.ack(&ok_h).await;
    // Data preparation -> ack.
    let prep = rc.next_p2p().await;
    assert_eq!(prep.header.session_id, sid);
    assert_eq!((prep.header.flags, prep.header.total_size), (0, 4));
    assert_eq!(
        (prep.body.as_slice(), prep.app_id),
        (&[0u8; 4][..], app_id::MSNOBJ)
    );
    assert_ne!(prep.header.id, ok_h.id);
    rc.ack(&prep.header).await;
    // Data: chunks of at most 1202 bytes, one identifier, flags 0x20, footer 1.
    let mut r = Reassembler::new(1 << 20);
    let mut offsets = Vec::new();
    let (data, last) = loop {
        let m = rc.next_p2p().await;
        let h = m.header;
        assert_eq!(
            (h.session_id, h.flags, m.app_id),
            (sid, flags::MSNOBJ_DATA, app_id::MSNOBJ)
        );
        assert_eq!(h.total_size, picture.len() as u64);
        assert!(m.body.len() <= MAX_CHUNK);
        assert_ne!(h.id, prep.header.id);
        offsets.push(h.offset);
        if let Some(d) = r.push(&h, &m.body).unwrap() {
            break (d, h);
        }
    };
    assert_eq!(data, picture);
    assert!(obj.matches_data(&data));
    assert_eq!(offsets, (0..18).map(|i| i * 1202).collect::<Vec<u64>>());
    assert_eq!(
        alice.pictures_served(),
        0,
        "served before the data was acked"
    );
    rc.ack(&last).await;
    let ev = alice
        .wait_for(T, |e| matches!(e, ClientEvent::PictureServed { .. }))
        .await;
    assert_eq!(
        ev,
        Some(ClientEvent::PictureServed {
            to: BOB.into(),
            bytes: 20 * 1024
        })
    );
    assert_eq!(alice.pictures_served(), 1);
    // BYE -> ack.
    let bye = SlpMessage::bye(
        ALICE,
        BOB,
        "{A1B2C3D4-0000-1111-2222-333344445555}",
        call_id,
    );
    let sent = rc.send_slp(&bye).await;
    rc.expect_ack(&sent).await;
    // The switchboard's ACKs of Alice's P2P MSGs are not reported as deliveries.
    assert!(alice
        .wait_for(Duration::ZERO, |e| matches!(
            e,
            ClientEvent::Delivered { .. }
        ))
        .await
        .is_none());
}

/// (d) A receiver that never acks the 200 OK gets no data: the transfer is
/// abandoned at the ack timeout, and a late ack does not revive it.
#[tokio::test]
async fn no_ack_no_data() {
    let s = start().await;
    let mut alice = login(&s, ALICE, "secret").await;
    alice.set_picture_ack_timeout(Duration::from_millis(300));
    alice.set_display_picture(picture_bytes(3000)).unwrap();
    let mut ns = RawNs::login(&s, BOB, "hunter2").await;
    let xml = ns.presence_of(ALICE).await.1.unwrap();
    let mut rc = Receiver::call(&mut ns, BOB, ALICE).await;
    let invite = rc.invite("{C0000000-0000-0000-0000-000000000001}", 77, &xml);
    let sent = rc.send_slp(&invite).await;
    rc.expect_ack(&sent).await;
    let (ok, ok_h) = rc.expect_slp().await;
    assert_eq!(ok.status(), Some(200));
    // No ack: Alice gives up.
    let ev = alice
        .wait_for(T, |e| matches!(e, ClientEvent::PictureAbandoned { .. }))
        .await;
    assert_eq!(ev, Some(ClientEvent::PictureAbandoned { to: BOB.into() }));
    // The late ack, then a text as a marker: Alice answers the text, and
    // nothing P2P may come before her answer.
    rc.ack(&ok_h).await;
    rc.sb.send_text("ping", None);
    rc.flush().await;
    let ev = alice
        .wait_for(
            T,
            |e| matches!(e, ClientEvent::Message { text, .. } if text == "ping"),
        )
        .await;
    let Some(ClientEvent::Message { session, .. }) = ev else {
        panic!("{ev:?}")
    };
    alice.send_to_session(session, "pong").unwrap();
    match rc.next().await {
        Seen::Text(t) => assert!(t.contains("pong"), "{t}"),
        other => panic!("data after an unacked 200 OK: {other:?}"),
    }
    assert_eq!(alice.pictures_served(), 0);
}

/// (e) An INVITE for another picture (other SHA1D) is declined; (f) bad
/// packets first do not stop the client from answering it.
#[tokio::test]
async fn wrong_sha1d_is_declined_and_bad_packets_are_ignored() {
    let s = start().await;
    let alice = login(&s, ALICE, "secret").await;
    alice.set_display_picture(picture_bytes(3000)).unwrap();
    let mut ns = RawNs::login(&s, BOB, "hunter2").await;
    let xml = ns.presence_of(ALICE).await.1.unwrap();
    let mut rc = Receiver::call(&mut ns, BOB, ALICE).await;

    // Bad packets, each after the MIME head of a P2P message to Alice.
    let head = format!(
        "MIME-Version: 1.0\r\nContent-Type: application/x-msnmsgrp2p\r\nP2P-Dest: {ALICE}\r\n\r\n"
    );
    let valid_invite = P2pMessage::new(
        ALICE,
        P2pHeader {
            id: 5,
            total_size: 30,
            ..Default::default()
        },
        b"INVITE MSNMSGR:x MSNSLP/1.0\r\n\0",
        0,
    )
    .to_payload();
    let header = |f: &dyn Fn(&mut P2pHeader)| {
        let mut h = P2pHeader {
            id: 9,
            total_size: 4,
            length: 4,
            ..Default::default()
        };
        f(&mut h);
        let mut p = head.clone().into_bytes();
        p.extend_from_slice(&h.to_bytes());
        p.extend_from_slice(&[0xFF; 4]);
        p.extend_from_slice(&[0; 4]);
        p
    };
    let bad: Vec<Vec<u8>> = vec![
        head.clone().into_bytes(),                        // no binary header
        format!("{head}short").into_bytes(),              // shorter than 52 bytes
        header(&|h| h.length = 5),                        // length > body
        header(&|h| h.offset = u64::MAX),                 // offset overflows
        header(&|h| h.total_size = u64::MAX),             // absurd total
        header(&|h| h.total_size = 1 << 40),              // total beyond any limit
        header(&|h| h.flags = flags::ACK),                // ack of nothing
        header(&|h| h.flags = flags::BINARY_ERROR),       // error report, no transfer
        header(&|h| h.session_id = 1234),                 // data for no session
        header(&|_| ()),                                  // SLP that is not text
        valid_invite[..valid_invite.len() - 10].to_vec(), // truncated
        valid_invite.clone(),                             // INVITE without headers
        valid_invite.iter().map(|b| b.wrapping_add(1)).collect(), // garbled
        b"MIME-Version: 1.0\r\nContent-Type: application/x-msnmsgrp2p\r\n\r\n0123".to_vec(),
    ];
    for p in &bad {
        rc.send_payload(p).await;
    }
    // The two that are whole P2P messages (text that is not MSNSLP) get the
    // transport's ack, as every complete message does (libpurple acks before
    // looking at the MSNSLP); nothing else answers any of them.
    for acked in [
        P2pHeader {
            id: 9,
            total_size: 4,
            ..Default::default()
        },
        P2pHeader {
            id: 5,
            total_size: 30,
            ..Default::default()
        },
    ] {
        rc.expect_ack(&acked).await;
    }
    // An INVITE with a Context that is not an MSNObject, then one for a
    // picture Alice does not have: both declined, and nothing else sent.
    let mut garbage = rc.invite("{C0000000-0000-0000-0000-00000000000A}", 5, "x");
    garbage.body.retain(|(k, _)| k != "Context");
    garbage
        .body
        .push(("Context".into(), "!!!not base64".into()));
    for (call_id, invite) in [
        ("{C0000000-0000-0000-0000-00000000000A}", garbage),
        (
            "{C0000000-0000-0000-0000-00000000000B}",
            rc.invite(
                "{C0000000-0000-0000-0000-00000000000B}",
                4242,
                &MsnObject::for_data(ALICE, 3, "TFR2C2.tmp", "", b"another picture").to_xml(),
            ),
        ),
    ] {
        let sent = rc.send_slp(&invite).await;
        rc.expect_ack(&sent).await;
        let (no, _) = rc.expect_slp().await;
        assert_eq!(no.status(), Some(603));
        assert_eq!(no.call_id, call_id);
        assert_eq!((no.to.as_str(), no.from.as_str(), no.cseq), (BOB, ALICE, 1));
        assert_eq!(no.session_id(), invite.session_id());
    }
    assert!(xml.contains(&alice.msn_object().unwrap().sha1d));
    assert_eq!(alice.pictures_served(), 0);
}

// (b) and (f) on the sender alone, with fixed identifiers.

const PEER: &str = "xxxxxxxx@hotmail.com";
const ME: &str = "xxxxxxxx@yahoo.com.hk";
const PIDGIN_CONTEXT: &str = "PG1zbm9iaiBDcmVhdG9yPSJlbmVyZ3lmYWlAaG90bWFpbC5jb20iIFNpemU9IjI0ODEiIFR5cGU9IjMiIExvY2F0aW9uPSIwIiBGcmllbmRseT0iY2dCMEFIRUFiZ0J6QUhrQUFBQT0iIFNIQTFEPSJqaDF3OEhKNTFucGFua2djOFU1RmxyK244eDg9Ii8+";
const PIDGIN_OBJ: &str = r#"<msnobj Creator="energyfai@hotmail.com" Size="2481" Type="3" Location="0" Friendly="cgB0AHEAbgBzAHkAAAA=" SHA1D="jh1w8HJ51npankgc8U5Flr+n8x8="/>"#;

fn pidgin_invite_text() -> Vec<u8> {
    let mut t = format!(
        "INVITE MSNMSGR:{PEER} MSNSLP/1.0\r\n\
To: <msnmsgr:{PEER}>\r\n\
From: <msnmsgr:{ME}>\r\n\
Via: MSNSLP/1.0/TLP ;branch={{85BAAA5E-42A6-3D03-AB0E-40C35C8B9B2C}}\r\n\
CSeq: 0\r\n\
Call-ID: {{28CB7B41-7E7A-51D9-B137-32E6AA4D7497}}\r\n\
Max-Forwards: 0\r\n\
Content-Type: application/x-msnmsgr-sessionreqbody\r\n\
Content-Length: 288\r\n\
\r\n\
EUF-GUID: {{A4268EEC-FEC5-49E5-95C3-F126696BDBF6}}\r\n\
SessionID: 599023529\r\n\
AppID: 1\r\n\
Context: {PIDGIN_CONTEXT}\r\n\
\r\n"
    )
    .into_bytes();
    t.push(0);
    t
}

const LIBPURPLE_OK: &str = "MSNSLP/1.0 200 OK\r\n\
To: <msnmsgr:xxxxxxxx@yahoo.com.hk>\r\n\
From: <msnmsgr:xxxxxxxx@hotmail.com>\r\n\
Via: MSNSLP/1.0/TLP ;branch={85BAAA5E-42A6-3D03-AB0E-40C35C8B9B2C}\r\n\
CSeq: 1\r\n\
Call-ID: {28CB7B41-7E7A-51D9-B137-32E6AA4D7497}\r\n\
Max-Forwards: 0\r\n\
Content-Type: application/x-msnmsgr-sessionreqbody\r\n\
Content-Length: 25\r\n\
\r\n\
SessionID: 599023529\r\n\
\r\n\0";

/// A binary header written field by field (MSNPiki table), little-endian.
#[allow(clippy::too_many_arguments)]
fn hand_header(
    sid: u32,
    id: u32,
    offset: u64,
    total: u64,
    len: u32,
    flags: u32,
    ack_id: u32,
    ack_uid: u32,
    ack_size: u64,
) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&sid.to_le_bytes());
    b.extend_from_slice(&id.to_le_bytes());
    b.extend_from_slice(&offset.to_le_bytes());
    b.extend_from_slice(&total.to_le_bytes());
    b.extend_from_slice(&len.to_le_bytes());
    b.extend_from_slice(&flags.to_le_bytes());
    b.extend_from_slice(&ack_id.to_le_bytes());
    b.extend_from_slice(&ack_uid.to_le_bytes());
    b.extend_from_slice(&ack_size.to_le_bytes());
    b
}

fn mime_head(dest: &str) -> Vec<u8> {
    format!(
        "MIME-Version: 1.0\r\nContent-Type: application/x-msnmsgrp2p\r\nP2P-Dest: {dest}\r\n\r\n"
    )
    .into_bytes()
}

fn fixed_server() -> PictureServer {
    let mut next_ack_id = 0x00AB_CD00u32;
    PictureServer::new(
        PEER,
        0x1000,
        Box::new(move || {
            next_ack_id += 1;
            next_ack_id
        }),
        Duration::from_secs(10),
    )
}

fn pidgin_picture() -> Picture {
    // Only the object is compared (by SHA1D); the bytes are stand-ins.
    Picture {
        object: MsnObject::parse(PIDGIN_OBJ).unwrap(),
        data: std::sync::Arc::new(vec![0x5A; 2481]),
    }
}

/// (b) The 200 OK and the data preparation message are byte for byte what
/// the references say, given fixed identifiers.
#[test]
fn ok_and_data_preparation_bytes() {
    let text = pidgin_invite_text();
    let n = text.len() as u64;
    let mut invite = mime_head(PEER);
    invite.extend(hand_header(
        0,
        0x0118_A958,
        0,
        n,
        n as u32,
        0,
        0x001E_38AB,
        0,
        0,
    ));
    invite.extend_from_slice(&text);
    invite.extend_from_slice(&[0, 0, 0, 0]);
    let picture = pidgin_picture();
    let mut sc = fixed_server();
    let now = Instant::now();
    sc.handle(ME, &invite, Some(&picture), now);

    // 1. The ack of the INVITE (libpurple msn_slplink_send_ack).
    let mut ack = mime_head(ME);
    ack.extend(hand_header(
        0,
        0x1000,
        0,
        n,
        0,
        2,
        0x0118_A958,
        0x001E_38AB,
        n,
    ));
    ack.extend_from_slice(&[0, 0, 0, 0]);
    assert_eq!(sc.poll_transmit().unwrap().to_payload(), ack);

    // 2. The 200 OK.
    let ok_len = LIBPURPLE_OK.len() as u64;
    let mut ok = mime_head(ME);
    ok.extend(hand_header(
        0,
        0x1001,
        0,
        ok_len,
        ok_len as u32,
        0,
        0x00AB_CD01,
        0,
        0,
    ));
    ok.extend_from_slice(LIBPURPLE_OK.as_bytes());
    ok.extend_from_slice(&[0, 0, 0, 0]);
    let got = sc.poll_transmit().unwrap().to_payload();
    assert_eq!(String::from_utf8_lossy(&got), String::from_utf8_lossy(&ok));
    assert_eq!(got, ok);
    assert!(
        sc.poll_transmit().is_none(),
        "nothing before the 200 OK is acked"
    );

    // The receiver's ack of the 200 OK (its next identifier).
    let mut ok_ack = mime_head(PEER);
    ok_ack.extend(hand_header(
        0,
        0x0118_A959,
        0,
        ok_len,
        0,
        2,
        0x1001,
        0x00AB_CD01,
        ok_len,
    ));
    ok_ack.extend_from_slice(&[0, 0, 0, 0]);
    sc.handle(ME, &ok_ack, Some(&picture), now);

    // 3. Data preparation: session id, 4 zero bytes, footer 1.
    let mut prep = mime_head(ME);
    prep.extend(hand_header(
        599_023_529,
        0x1002,
        0,
        4,
        4,
        0,
        0x00AB_CD02,
        0,
        0,
    ));
    prep.extend_from_slice(&[0, 0, 0, 0]);
    prep.extend_from_slice(&[0, 0, 0, 1]);
    assert_eq!(sc.poll_transmit().unwrap().to_payload(), prep);
    assert!(sc.poll_transmit().is_none());

    // Its ack: then the data, 1202 + 1202 + 77 bytes under one identifier.
    let mut prep_ack = mime_head(PEER);
    prep_ack.extend(hand_header(
        599_023_529,
        0x0118_A95A,
        0,
        4,
        0,
        2,
        0x1002,
        0x00AB_CD02,
        4,
    ));
    prep_ack.extend_from_slice(&[0, 0, 0, 0]);
    sc.handle(ME, &prep_ack, Some(&picture), now);
    for (offset, len) in [(0u64, 1202u32), (1202, 1202), (2404, 77)] {
        let mut chunk = mime_head(ME);
        chunk.extend(hand_header(
            599_023_529,
            0x1003,
            offset,
            2481,
            len,
            0x20,
            0x00AB_CD03,
            0,
            0,
        ));
        chunk.extend(std::iter::repeat_n(0x5A, len as usize));
        chunk.extend_from_slice(&[0, 0, 0, 1]);
        assert_eq!(
            sc.poll_transmit().unwrap().to_payload(),
            chunk,
            "chunk at {offset}"
        );
    }
    assert!(sc.poll_transmit().is_none());
    assert!(sc.poll_outcome().is_none());
}

/// (f) Arbitrary and mutated input never panics the sender, and nothing it
/// sends in answer is ever data without the acks.
#[test]
fn sender_survives_table_of_bad_packets() {
    let picture = pidgin_picture();
    let mut sc = fixed_server();
    let now = Instant::now();
    let text = pidgin_invite_text();
    let n = text.len() as u64;
    let mut cases: Vec<Vec<u8>> = vec![Vec::new(), b"\r\n\r\n".to_vec(), mime_head(PEER)];
    for cut in [0, 10, 47, 48, 51, 52] {
        let mut p = mime_head(PEER);
        p.extend(
            hand_header(0, 1, 0, n, n as u32, 0, 2, 0, 0)
                .into_iter()
                .chain(text.iter().copied())
                .take(cut),
        );
        cases.push(p);
    }
    for f in [
        0x1u32,
        0x2,
        0x4,
        0x8,
        0x20,
        0x40,
        0x80,
        0x100,
        0x0100_0030,
        u32::MAX,
    ] {
        let mut p = mime_head(PEER);
        p.extend(hand_header(0, 1, 0, n, n as u32, f, 2, 0, 0));
        p.extend_from_slice(&text);
        p.extend_from_slice(&[0, 0, 0, 0]);
        cases.push(p);
    }
    for p in &cases {
        sc.handle(ME, p, Some(&picture), now);
        sc.handle(ME, p, None, now);
    }
    while let Some(m) = sc.poll_transmit() {
        assert_ne!(m.header.flags, flags::MSNOBJ_DATA, "data sent without acks");
        assert_eq!(m.header.session_id, 0);
    }
    sc.handle_timeout(now + Duration::from_secs(60));
    assert_eq!(sc.next_deadline(), None);
    assert!(EUF_GUID_MSNOBJ.starts_with("{A4268EEC"));
}

proptest! {
    #[test]
    fn sender_never_panics(
        bin in proptest::collection::vec(any::<u8>(), 0..400),
        mutate in proptest::collection::vec((0usize..700, any::<u8>()), 0..6),
        with_head in any::<bool>(),
    ) {
        let picture = pidgin_picture();
        let mut sc = fixed_server();
        let now = Instant::now();
        let mut p = if with_head { mime_head(PEER) } else { Vec::new() };
        p.extend_from_slice(&bin);
        sc.handle(ME, &p, Some(&picture), now);
        // A valid INVITE with a few bytes changed.
        let text = pidgin_invite_text();
        let n = text.len() as u64;
        let mut invite = mime_head(PEER);
        invite.extend(hand_header(0, 1, 0, n, n as u32, 0, 2, 0, 0));
        invite.extend_from_slice(&text);
        invite.extend_from_slice(&[0, 0, 0, 0]);
        for (i, b) in &mutate {
            let len = invite.len();
            invite[i % len] = *b;
        }
        sc.handle(ME, &invite, Some(&picture), now);
        while let Some(m) = sc.poll_transmit() {
            prop_assert_ne!(m.header.flags, flags::MSNOBJ_DATA);
        }
    }
}

/// A switchboard connection spoken by hand, to see the relayed bytes.
struct RawSb {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl RawSb {
    async fn connect(addr: &str, first: &str) -> RawSb {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream.write_all(first.as_bytes()).await.unwrap();
        RawSb {
            stream,
            buf: Vec::new(),
        }
    }

    async fn fill(&mut self, end: tokio::time::Instant) {
        let mut chunk = [0u8; 4096];
        let n = tokio::time::timeout_at(end, self.stream.read(&mut chunk))
            .await
            .expect("timed out")
            .unwrap();
        assert!(n > 0, "closed");
        self.buf.extend_from_slice(&chunk[..n]);
    }

    /// The next line (without CRLF).
    async fn line(&mut self) -> String {
        let end = deadline();
        loop {
            if let Some(i) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line = String::from_utf8(self.buf[..i].to_vec()).unwrap();
                self.buf.drain(..i + 2);
                return line;
            }
            self.fill(end).await;
        }
    }

    async fn line_starting(&mut self, prefix: &str) -> String {
        loop {
            let l = self.line().await;
            if l.starts_with(prefix) {
                return l;
            }
        }
    }

    async fn bytes(&mut self, n: usize) -> Vec<u8> {
        let end = deadline();
        while self.buf.len() < n {
            self.fill(end).await;
        }
        self.buf.drain(..n).collect()
    }

    async fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.unwrap();
    }
}

async fn ring(ns: &mut RawNs) -> (String, String, String) {
    let ev = ns.until(|e| matches!(e, NsEvent::Ring { .. })).await;
    match ev.last() {
        Some(NsEvent::Ring {
            session_id,
            addr,
            cookie,
            ..
        }) => (session_id.clone(), addr.clone(), cookie.clone()),
        other => panic!("{other:?}"),
    }
}

/// The switchboard relays `MSG ... D` P2P payloads byte for byte, only to
/// the participant `P2P-Dest` names, and NAKs one naming nobody present.
#[tokio::test]
async fn switchboard_relays_p2p_byte_exact_to_p2p_dest() {
    let s = start().await;
    let mut alice_ns = RawNs::login(&s, ALICE, "secret").await;
    alice_ns
        .until(|e| matches!(e, NsEvent::StatusChanged { .. }))
        .await;
    let mut carol_ns = RawNs::login(&s, "carol@hotmail.com", "pw").await;
    carol_ns
        .until(|e| matches!(e, NsEvent::StatusChanged { .. }))
        .await;
    let mut bob_ns = RawNs::login(&s, BOB, "hunter2").await;
    let (addr, cookie) = bob_ns.switchboard().await;
    let mut bob = RawSb::connect(&addr, &format!("USR 1 {BOB} {cookie}\r\n")).await;
    bob.line_starting("USR 1 OK").await;
    let mut members = Vec::new();
    for (i, (who, ns)) in [(ALICE, &mut alice_ns), ("carol@hotmail.com", &mut carol_ns)]
        .into_iter()
        .enumerate()
    {
        bob.send(format!("CAL {} {who}\r\n", i + 2).as_bytes())
            .await;
        let (sid, addr, cookie) = ring(ns).await;
        let mut m = RawSb::connect(&addr, &format!("ANS 1 {who} {cookie} {sid}\r\n")).await;
        m.line_starting("ANS 1 OK").await;
        bob.line_starting(&format!("JOI {who}")).await;
        members.push(m);
    }
    let [mut alice, mut carol] = <[RawSb; 2]>::try_from(members).ok().unwrap();

    // Every byte value, CR LF and NUL included, in the binary part.
    let body: Vec<u8> = (0..=255u8)
        .chain(b"\r\n\r\nMSG 1 N 3\r\n".iter().copied())
        .collect();
    let h = P2pHeader {
        id: 7,
        total_size: body.len() as u64,
        ..Default::default()
    };
    let payload = P2pMessage::new(ALICE, h, &body, 0).to_payload();
    let mut msg = format!("MSG 10 D {}\r\n", payload.len()).into_bytes();
    msg.extend_from_slice(&payload);
    bob.send(&msg).await;
    assert_eq!(bob.line().await, "ACK 10");
    let head = alice.line_starting("MSG").await;
    assert_eq!(head, format!("MSG {BOB} Bob {}", payload.len()));
    assert_eq!(alice.bytes(payload.len()).await, payload);

    // Carol got nothing of it: the next thing she sees is this text.
    let text = b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\n\r\nmarker";
    let mut msg = format!("MSG 11 N {}\r\n", text.len()).into_bytes();
    msg.extend_from_slice(text);
    bob.send(&msg).await;
    assert_eq!(carol.line().await, format!("MSG {BOB} Bob {}", text.len()));
    assert_eq!(carol.bytes(text.len()).await, text);
    alice.line_starting("MSG").await;
    alice.bytes(text.len()).await;

    // P2P-Dest naming nobody in the conversation: NAK.
    let payload = P2pMessage::new("dave@hotmail.com", h, &body, 0).to_payload();
    let mut msg = format!("MSG 12 D {}\r\n", payload.len()).into_bytes();
    msg.extend_from_slice(&payload);
    bob.send(&msg).await;
    assert_eq!(bob.line().await, "NAK 12");
}
