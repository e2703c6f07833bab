//! Files (MSNSLP and MSNFTP) and display picture fetches of the sim client.
//!
//! Reference bytes are written by hand from public sources, not produced by
//! the code under test:
//! * MSNFTP invitation layout: hypothetic.org "MSN Instant Messenger
//!   Protocol" v1 "File Transfer" page (captured `MSG 4 N 277` INVITE, the
//!   receiver's ACCEPT with `Request-Data: IP-Address:`, the sender's ACCEPT
//!   with `IP-Address`/`Port`/`AuthCookie`), plus `Connectivity: N`.
//! * MSNFTP session: the msnp-wiki "msnftp" page example (`VER MSNFTP`,
//!   `USR example@hotmail.com 123456` -> `FIL 11`, `TFR` -> `00 0b 00 68 65
//!   6c 6c 6f 20 77 6f 72 6c 64`, `BYE 16777989`).
//! * The transreqbody answer without a listener: libpurple `slp.c`
//!   `got_invite` (`Bridge: TCPv1`, `Listening: false`, zero `Nonce`).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use msn_proto::p2p::{app_id, flags, MAX_CHUNK};
use msn_proto::slp::{SlpMessage, CONTENT_TYPE_TRANS_REQ, EUF_GUID_FILE};
use msn_proto::{AckMode, FileContext, P2pHeader, P2pMessage, Reassembler};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::client::ClientEvent;
use super::files::{FileOutcome, FilePolicy, FileTransfers};
use super::msnftp::{self, FtpResult, Invitation, MsnftpSender};
use super::picture_tests::{login, start, RawNs, Receiver, Seen, ALICE, BOB, T};

fn file_bytes(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 + i / 977) as u8).collect()
}

// ---------------------------------------------------------------- MSNFTP

#[test]
fn msnftp_invitation_texts_as_captured() {
    let m = msnftp::invite(33267, "readme.txt", 60904);
    let expected = "MIME-Version: 1.0\r\n\
        Content-Type: text/x-msmsgsinvite; charset=UTF-8\r\n\
        \r\n\
        Application-Name: File Transfer\r\n\
        Application-GUID: {5D3E02AB-6190-11d3-BBBB-00C04F795683}\r\n\
        Invitation-Command: INVITE\r\n\
        Invitation-Cookie: 33267\r\n\
        Application-File: readme.txt\r\n\
        Application-FileSize: 60904\r\n\
        Connectivity: N\r\n\
        \r\n";
    assert_eq!(String::from_utf8(m.to_bytes()).unwrap(), expected);
    let a = msnftp::accept(33267, "10.44.102.65", 6891, 93301);
    let expected = "MIME-Version: 1.0\r\n\
        Content-Type: text/x-msmsgsinvite; charset=UTF-8\r\n\
        \r\n\
        Invitation-Command: ACCEPT\r\n\
        Invitation-Cookie: 33267\r\n\
        IP-Address: 10.44.102.65\r\n\
        Port: 6891\r\n\
        AuthCookie: 93301\r\n\
        Launch-Application: FALSE\r\n\
        Request-Data: IP-Address:\r\n\
        \r\n";
    assert_eq!(String::from_utf8(a.to_bytes()).unwrap(), expected);
    let reject = Invitation::parse(
        b"Invitation-Command: CANCEL\r\nInvitation-Cookie: 33267\r\nCancel-Code: REJECT\r\n\r\n",
    )
    .unwrap();
    assert_eq!((reject.command.as_str(), reject.cookie), ("CANCEL", 33267));
    assert_eq!(reject.field("cancel-code"), Some("REJECT"));
    assert!(Invitation::parse(b"Invitation-Command: ACCEPT\r\n").is_none());
    assert!(Invitation::parse(&[0xFF; 20]).is_none());
}

fn drain(s: &mut MsnftpSender) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(b) = s.poll_transmit() {
        out.extend(b);
    }
    out
}

#[test]
fn msnftp_session_as_documented() {
    let mut s = MsnftpSender::new(
        "example@hotmail.com",
        123456,
        Arc::new(b"hello world".to_vec()),
    );
    s.handle_input(b"VER MSNFTP\r\n");
    assert_eq!(drain(&mut s), b"VER MSNFTP\r\n");
    // Split across reads.
    s.handle_input(b"USR example@hotmail.com 12");
    assert_eq!(drain(&mut s), b"");
    s.handle_input(b"3456\r\n");
    assert_eq!(drain(&mut s), b"FIL 11\r\n");
    s.handle_input(b"TFR\r\n");
    assert_eq!(
        drain(&mut s),
        [0x00, 0x0b, 0x00, 0x68, 0x65, 0x6c, 0x6c, 0x6f, 0x20, 0x77, 0x6f, 0x72, 0x6c, 0x64]
    );
    assert_eq!(s.result(), None);
    s.handle_input(b"BYE 16777989\r\n");
    assert_eq!(s.result(), Some(&FtpResult::Sent));
}

#[test]
fn msnftp_blocks_wrong_cookie_and_cancel() {
    let data = Arc::new(file_bytes(5000));
    let mut s = MsnftpSender::new(BOB, 7, data.clone());
    s.handle_input(b"VER MSNFTP\r\nUSR bob@hotmail.com 7\r\nTFR\r\n");
    let out = drain(&mut s);
    let mut rest = &out[b"VER MSNFTP\r\nFIL 5000\r\n".len()..];
    let mut got = Vec::new();
    while !rest.is_empty() {
        assert_eq!(rest[0], 0);
        let n = u16::from_le_bytes([rest[1], rest[2]]) as usize;
        assert!(n <= 2045);
        got.extend_from_slice(&rest[3..3 + n]);
        rest = &rest[3 + n..];
    }
    assert_eq!(got, *data);

    let mut s = MsnftpSender::new(BOB, 7, data.clone());
    s.handle_input(b"VER MSNFTP\r\nUSR bob@hotmail.com 8\r\n");
    assert_eq!(drain(&mut s), b"VER MSNFTP\r\n");
    assert!(matches!(s.result(), Some(FtpResult::Failed(_))));

    let mut s = MsnftpSender::new(BOB, 7, data.clone());
    s.handle_input(b"VER MSNFTP\r\nUSR bob@hotmail.com 7\r\nTFR\r\nCCL\r\n");
    assert!(matches!(s.result(), Some(FtpResult::Failed(_))));

    let mut s = MsnftpSender::new(BOB, 7, data);
    s.handle_input(&[b'A'; 5000]);
    assert!(matches!(s.result(), Some(FtpResult::Failed(_))));
}

/// Bob (scripted from the documents) calls Alice; Alice offers a file by
/// MSNFTP; Bob accepts, connects to the address Alice gives and fetches it.
/// `cookie_delta` != 0 gives a wrong AuthCookie, which Alice refuses.
async fn msnftp_flow(len: usize, cookie_delta: u32) -> (Vec<u8>, Option<ClientEvent>) {
    let s = start().await;
    let mut alice = login(&s, ALICE, "secret").await;
    alice.set_picture_ack_timeout(Duration::from_secs(3));
    let mut ns = RawNs::login(&s, BOB, "hunter2").await;
    ns.presence_of(ALICE).await;
    let mut rc = Receiver::call(&mut ns, BOB, ALICE).await;
    let data = file_bytes(len);
    alice
        .send_file_msnftp(BOB, "big.bin", data.clone())
        .await
        .unwrap();
    let Seen::Text(invite) = rc.next().await else {
        panic!("expected the invitation")
    };
    let inv = Invitation::parse(invite.as_bytes()).unwrap();
    assert_eq!(inv.command, "INVITE");
    assert_eq!(inv.field("Application-Name"), Some("File Transfer"));
    assert_eq!(inv.field("Application-File"), Some("big.bin"));
    assert_eq!(
        inv.field("Application-FileSize"),
        Some(len.to_string().as_str())
    );
    let accept = format!(
        "Invitation-Command: ACCEPT\r\nInvitation-Cookie: {}\r\nLaunch-Application: FALSE\r\nRequest-Data: IP-Address:\r\n\r\n",
        inv.cookie
    );
    let m = msn_proto::Message {
        headers: vec![
            ("MIME-Version".into(), "1.0".into()),
            ("Content-Type".into(), msnftp::CONTENT_TYPE_INVITE.into()),
        ],
        body: accept.into_bytes(),
    };
    rc.sb.send_message(&m, AckMode::NakOnly);
    rc.flush().await;
    let Seen::Text(reply) = rc.next().await else {
        panic!("expected Alice's ACCEPT")
    };
    let reply = Invitation::parse(reply.as_bytes()).unwrap();
    assert_eq!(
        (reply.command.as_str(), reply.cookie),
        ("ACCEPT", inv.cookie)
    );
    assert_eq!(reply.field("IP-Address"), Some("127.0.0.1"));
    let port: u16 = reply.field("Port").unwrap().parse().unwrap();
    let auth: u32 = reply.field("AuthCookie").unwrap().parse().unwrap();
    let mut c = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let mut got = Vec::new();
    let mut input = Vec::new();
    let mut buf = vec![0u8; 8192];
    c.write_all(b"VER MSNFTP\r\n").await.unwrap();
    let line = |input: &mut Vec<u8>| -> Option<String> {
        let at = input.iter().position(|&b| b == b'\n')?;
        let l: Vec<u8> = input.drain(..=at).collect();
        Some(String::from_utf8(l).unwrap().trim_end().to_string())
    };
    let mut stage = 0;
    let end = tokio::time::Instant::now() + T;
    loop {
        let n = tokio::time::timeout_at(end, c.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        if n == 0 {
            break;
        }
        input.extend_from_slice(&buf[..n]);
        loop {
            match stage {
                0 => {
                    let Some(l) = line(&mut input) else { break };
                    assert_eq!(l, "VER MSNFTP");
                    c.write_all(
                        format!("USR {BOB} {}\r\n", auth.wrapping_add(cookie_delta)).as_bytes(),
                    )
                    .await
                    .unwrap();
                    stage = 1;
                }
                1 => {
                    let Some(l) = line(&mut input) else { break };
                    assert_eq!(l, format!("FIL {len}"));
                    c.write_all(b"TFR\r\n").await.unwrap();
                    stage = 2;
                }
                _ => {
                    if input.len() < 3 {
                        break;
                    }
                    assert_eq!(input[0], 0, "a data block");
                    let n = u16::from_le_bytes([input[1], input[2]]) as usize;
                    assert!(n <= msnftp::MAX_BLOCK);
                    if input.len() < 3 + n {
                        break;
                    }
                    got.extend_from_slice(&input[3..3 + n]);
                    input.drain(..3 + n);
                    if got.len() == len {
                        c.write_all(b"BYE 16777989\r\n").await.unwrap();
                    }
                }
            }
        }
    }
    let ev = alice
        .wait_for(T, |e| {
            matches!(
                e,
                ClientEvent::FileSent { .. } | ClientEvent::FileFailed { .. }
            )
        })
        .await;
    assert_eq!(got.is_empty(), cookie_delta != 0);
    if cookie_delta == 0 {
        assert_eq!(got, data);
    }
    (got, ev)
}

#[tokio::test]
async fn msnftp_200k_to_a_documented_receiver() {
    let (_, ev) = msnftp_flow(200 * 1024, 0).await;
    assert_eq!(
        ev,
        Some(ClientEvent::FileSent {
            to: BOB.into(),
            name: "big.bin".into(),
            bytes: 200 * 1024
        })
    );
}

#[tokio::test]
async fn msnftp_wrong_auth_cookie_is_refused() {
    let (got, ev) = msnftp_flow(3000, 1).await;
    assert!(got.is_empty());
    assert!(
        matches!(ev, Some(ClientEvent::FileFailed { ref to, .. }) if to == BOB),
        "{ev:?}"
    );
}

// ---------------------------------------------------------------- MSNSLP, sans-IO

fn machine(me: &str) -> FileTransfers {
    let n = Arc::new(Mutex::new(0x100u32));
    FileTransfers::new(
        me,
        1000,
        Box::new(move || {
            let mut n = n.lock().unwrap();
            *n += 1;
            *n
        }),
        Duration::from_secs(5),
    )
}

fn payload(to: &str, h: P2pHeader, body: &[u8], app: u32) -> Vec<u8> {
    P2pMessage::new(to, h, body, app).to_payload()
}

fn out(m: &mut FileTransfers) -> Vec<P2pMessage> {
    std::iter::from_fn(|| m.poll_transmit()).collect()
}

fn slp_of(msgs: &[P2pMessage]) -> SlpMessage {
    let mut r = Reassembler::new(1 << 16);
    for m in msgs.iter().filter(|m| !m.header.is_ack()) {
        if let Some(t) = r.push(&m.header, &m.body).unwrap() {
            return SlpMessage::parse(&t).unwrap();
        }
    }
    panic!("no MSNSLP message in {msgs:?}")
}

/// Moves everything one machine sends into the other; returns what the
/// second passed on to the picture server.
fn pump(a: &mut FileTransfers, a_name: &str, b: &mut FileTransfers, now: Instant) -> usize {
    let mut passed = 0;
    for m in out(a) {
        passed += b.handle(a_name, &m.to_payload(), now).len();
    }
    passed
}

#[test]
fn receiver_answers_transreq_without_listening_and_closes_with_bye() {
    let now = Instant::now();
    let mut rc = machine(BOB);
    let ctx = FileContext::new("a.txt", 3000).to_bytes();
    let invite = SlpMessage::file_invite(
        BOB,
        ALICE,
        "{11111111-1111-1111-1111-111111111111}",
        "{22222222-2222-2222-2222-222222222222}",
        77,
        &ctx,
    );
    let ih = P2pHeader {
        id: 500,
        ack_id: 9,
        total_size: invite.to_bytes().len() as u64,
        length: invite.to_bytes().len() as u32,
        ..Default::default()
    };
    rc.handle(ALICE, &payload(BOB, ih, &invite.to_bytes(), 0), now);
    let sent = out(&mut rc);
    assert!(sent[0].header.acknowledges(&ih));
    let ok = slp_of(&sent);
    assert_eq!(
        (ok.status(), ok.cseq, ok.session_id()),
        (Some(200), 1, Some(77))
    );
    // The direct-connection offer, same Call-ID.
    let offer = SlpMessage::request(
        "INVITE",
        BOB,
        ALICE,
        "{33333333-3333-3333-3333-333333333333}",
        "{22222222-2222-2222-2222-222222222222}",
        CONTENT_TYPE_TRANS_REQ,
        &[
            ("Bridges", "TCPv1"),
            ("NetID", "0"),
            ("Conn-Type", "Firewall"),
            ("UPnPNat", "false"),
            ("ICF", "false"),
        ],
    );
    let bytes = offer.to_bytes();
    let oh = P2pHeader {
        id: 501,
        ack_id: 10,
        total_size: bytes.len() as u64,
        length: bytes.len() as u32,
        ..Default::default()
    };
    rc.handle(ALICE, &payload(BOB, oh, &bytes, 0), now);
    let sent = out(&mut rc);
    assert!(sent[0].header.acknowledges(&oh));
    let answer = &sent[1];
    let text = String::from_utf8(answer.body.clone()).unwrap();
    assert!(text.starts_with("MSNSLP/1.0 200 OK\r\n"), "{text}");
    assert!(text.contains("Content-Type: application/x-msnmsgr-transreqbody\r\n"));
    assert!(text.ends_with(
        "\r\n\r\nBridge: TCPv1\r\nListening: false\r\nNonce: {00000000-0000-0000-0000-000000000000}\r\n\r\n\0"
    ));
    // The data: two chunks, flags 0x01000030, footer 2.
    let data = file_bytes(3000);
    for (i, (off, len)) in [(0u64, 1202usize), (1202, 1798)].into_iter().enumerate() {
        let h = P2pHeader {
            session_id: 77,
            id: 502,
            offset: off,
            total_size: 3000,
            length: len as u32,
            flags: flags::FILE_DATA,
            ack_id: 11,
            ..Default::default()
        };
        rc.handle(
            ALICE,
            &payload(BOB, h, &data[off as usize..off as usize + len], 2),
            now,
        );
        let sent = out(&mut rc);
        if i == 0 {
            assert!(sent.is_empty(), "only the whole message is acked");
            continue;
        }
        let ack = sent[0].header;
        assert_eq!(
            (
                ack.session_id,
                ack.flags,
                ack.ack_id,
                ack.ack_unique_id,
                ack.ack_size
            ),
            (77, flags::ACK, 502, 11, 3000)
        );
        let bye = slp_of(&sent[1..]);
        assert_eq!(bye.method(), Some("BYE"));
        assert_eq!((bye.to.as_str(), bye.from.as_str()), (ALICE, BOB));
        assert_eq!(bye.call_id, "{22222222-2222-2222-2222-222222222222}");
    }
    assert_eq!(
        rc.poll_outcome(),
        Some(FileOutcome::Received {
            from: ALICE.into(),
            name: "a.txt".into(),
            data
        })
    );
}

#[test]
fn sender_invite_transreq_and_data_shapes() {
    let now = Instant::now();
    let mut sc = machine(ALICE);
    let mut rc = machine(BOB);
    let data = Arc::new(file_bytes(5000));
    sc.send_file(BOB, "b.bin", data.clone(), now);
    let sent = out(&mut sc);
    let invite = slp_of(&sent);
    assert_eq!(invite.euf_guid(), Some(EUF_GUID_FILE));
    assert_eq!((invite.app_id(), invite.cseq), (Some(2), 0));
    let ctx = FileContext::parse(&invite.context().unwrap().unwrap()).unwrap();
    assert_eq!(
        (ctx.version, ctx.file_size, ctx.name.as_str()),
        (2, 5000, "b.bin")
    );
    assert_eq!(invite.context().unwrap().unwrap().len(), 574);
    for m in sent {
        assert_eq!(rc.handle(ALICE, &m.to_payload(), now).len(), 0);
    }
    // Bob: ack + 200 OK.
    pump(&mut rc, BOB, &mut sc, now);
    // Alice: ack of the 200 OK, then the transreq INVITE.
    let sent = out(&mut sc);
    let offer = slp_of(&sent);
    assert_eq!(offer.content_type, CONTENT_TYPE_TRANS_REQ);
    assert_eq!(offer.call_id, invite.call_id);
    assert_ne!(offer.branch, invite.branch);
    for (k, v) in [
        ("Bridges", "TCPv1"),
        ("Conn-Type", "Firewall"),
        ("UPnPNat", "false"),
        ("ICF", "false"),
    ] {
        assert_eq!(offer.field(k), Some(v));
    }
    assert!(offer.field("NetID").is_some());
    for m in sent {
        rc.handle(ALICE, &m.to_payload(), now);
    }
    pump(&mut rc, BOB, &mut sc, now);
    let sent = out(&mut sc);
    let chunks: Vec<_> = sent
        .iter()
        .filter(|m| m.header.flags == flags::FILE_DATA)
        .collect();
    assert_eq!(chunks.len(), 5);
    let id = chunks[0].header.id;
    for c in &chunks {
        assert!(c.body.len() <= MAX_CHUNK);
        assert_eq!((c.header.id, c.app_id), (id, app_id::FILE_TRANSFER));
        assert_eq!(c.header.session_id, invite.session_id().unwrap());
    }
    assert_eq!(sc.poll_outcome(), None, "sent before the ack");
    for m in sent {
        rc.handle(ALICE, &m.to_payload(), now);
    }
    pump(&mut rc, BOB, &mut sc, now);
    assert_eq!(
        sc.poll_outcome(),
        Some(FileOutcome::Sent {
            to: BOB.into(),
            name: "b.bin".into(),
            bytes: 5000
        })
    );
    assert!(matches!(rc.poll_outcome(), Some(FileOutcome::Received { data: d, .. }) if d == *data));
    // The BYE is acked; nothing is left running.
    pump(&mut sc, ALICE, &mut rc, now);
    assert_eq!(sc.next_deadline(), None);
    assert_eq!(rc.next_deadline(), None);
}

#[test]
fn timeouts_fail_and_garbage_is_ignored() {
    let now = Instant::now();
    let mut sc = machine(ALICE);
    sc.send_file(BOB, "c.bin", Arc::new(vec![1; 10]), now);
    out(&mut sc);
    for junk in [&b""[..], b"garbage", &[0xFF; 300]] {
        assert!(sc.handle(BOB, junk, now).is_empty());
    }
    sc.handle_timeout(now + Duration::from_secs(6));
    assert!(matches!(
        sc.poll_outcome(),
        Some(FileOutcome::Failed { ref to, .. }) if to == BOB
    ));
    // A picture INVITE is not ours: its packets go to the picture server.
    let inv = SlpMessage::picture_invite(ALICE, BOB, "{A}", "{B}", 5, "<msnobj/>");
    let b = inv.to_bytes();
    let h = P2pHeader {
        id: 1,
        total_size: b.len() as u64,
        length: b.len() as u32,
        ..Default::default()
    };
    assert_eq!(sc.handle(BOB, &payload(ALICE, h, &b, 0), now).len(), 1);
    assert!(out(&mut sc).is_empty());
}

// ---------------------------------------------------------------- between two sim clients

async fn slp_between_clients(transreq: bool, policy: FilePolicy) -> (ClientEvent, Vec<u8>) {
    let s = start().await;
    let mut alice = login(&s, ALICE, "secret").await;
    let mut bob = login(&s, BOB, "hunter2").await;
    alice.set_send_transreq(transreq);
    bob.set_file_policy(policy);
    let data = file_bytes(200 * 1024);
    alice
        .send_file(BOB, "photo.jpg", data.clone())
        .await
        .unwrap();
    let ev = alice
        .wait_for(T, |e| {
            matches!(
                e,
                ClientEvent::FileSent { .. }
                    | ClientEvent::FileDeclined { .. }
                    | ClientEvent::FileFailed { .. }
            )
        })
        .await
        .expect("no outcome");
    if policy == FilePolicy::Accept {
        let got = bob
            .wait_for(T, |e| matches!(e, ClientEvent::FileReceived { .. }))
            .await;
        assert_eq!(
            got,
            Some(ClientEvent::FileReceived {
                from: ALICE.into(),
                name: "photo.jpg".into(),
                data: data.clone()
            })
        );
        let kept = bob.files_received();
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].data, data);
    } else {
        assert!(bob.files_received().is_empty());
    }
    (ev, data)
}

#[tokio::test]
async fn slp_200k_with_direct_connection_offer() {
    let (ev, _) = slp_between_clients(true, FilePolicy::Accept).await;
    assert_eq!(
        ev,
        ClientEvent::FileSent {
            to: BOB.into(),
            name: "photo.jpg".into(),
            bytes: 200 * 1024
        }
    );
}

#[tokio::test]
async fn slp_200k_without_direct_connection_offer() {
    let (ev, _) = slp_between_clients(false, FilePolicy::Accept).await;
    assert!(matches!(ev, ClientEvent::FileSent { bytes, .. } if bytes == 200 * 1024));
}

#[tokio::test]
async fn slp_declined() {
    let (ev, _) = slp_between_clients(true, FilePolicy::Decline).await;
    assert_eq!(
        ev,
        ClientEvent::FileDeclined {
            to: BOB.into(),
            name: "photo.jpg".into()
        }
    );
}

#[tokio::test]
async fn picture_fetched_between_two_sim_clients() {
    let s = start().await;
    let mut alice = login(&s, ALICE, "secret").await;
    let bob = login(&s, BOB, "hunter2").await;
    let picture = file_bytes(10_000);
    let obj = alice.set_display_picture(picture.clone()).unwrap();
    let end = Instant::now() + T;
    while bob.display_picture_of(ALICE).is_none() {
        assert!(Instant::now() < end, "no MSNObject announced");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(bob.display_picture_of(ALICE).unwrap().sha1d, obj.sha1d);
    assert!(bob.display_picture_of("nobody@hotmail.com").is_none());
    let got = bob.fetch_display_picture(ALICE).await.unwrap();
    assert_eq!(got, picture);
    let served = alice
        .wait_for(T, |e| matches!(e, ClientEvent::PictureServed { .. }))
        .await;
    assert_eq!(
        served,
        Some(ClientEvent::PictureServed {
            to: BOB.into(),
            bytes: 10_000
        })
    );
    assert!(bob
        .fetch_display_picture("nobody@hotmail.com")
        .await
        .is_err());
}
