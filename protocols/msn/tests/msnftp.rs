//! MSNFTP receiver against the documented exchanges: hypothetic.org "File transfer"
//! and "Invitations", yellows111's msnp-wiki `msnftp` page (its example: `FIL 11`, one
//! block `00 0b 00` + "hello world", `BYE 16777989`), aMSN `ft.tcl` (`acceptFT`,
//! `rejectFT`) for the invitation bodies.

use msn_proto::msnftp::*;

const ME: &str = "example@hotmail.com";

fn drain(r: &mut MsnftpReceive) -> Vec<u8> {
    std::iter::from_fn(|| r.poll_transmit()).flatten().collect()
}

/// The sender's side of the msnp-wiki example, all it sends in order.
fn sender_stream(file: &[u8]) -> Vec<u8> {
    let mut s = b"VER MSNFTP\r\n".to_vec();
    s.extend_from_slice(format!("FIL {}\r\n", file.len()).as_bytes());
    for block in file.chunks(MAX_BLOCK) {
        s.push(0);
        s.extend_from_slice(&(block.len() as u16).to_le_bytes());
        s.extend_from_slice(block);
    }
    s
}

#[test]
fn the_documented_exchange_byte_for_byte() {
    let mut r = MsnftpReceive::new(ME, "123456", 11, 1 << 20);
    assert_eq!(drain(&mut r), b"VER MSNFTP\r\n");
    r.handle_input(b"VER MSNFTP\r\n");
    assert_eq!(drain(&mut r), b"USR example@hotmail.com 123456\r\n");
    r.handle_input(b"FIL 11\r\n");
    assert_eq!(drain(&mut r), b"TFR\r\n");
    assert_eq!(r.outcome(), None);
    r.handle_input(&[
        0x00, 0x0b, 0x00, 0x68, 0x65, 0x6c, 0x6c, 0x6f, 0x20, 0x77, 0x6f, 0x72, 0x6c, 0x64,
    ]);
    assert_eq!(drain(&mut r), b"BYE 16777989\r\n");
    assert_eq!(
        r.outcome(),
        Some(&MsnftpOutcome::Received(b"hello world".to_vec()))
    );
    // The sender's end-of-file marker (`01 00 00` in the wiki's example) and
    // anything after the end are ignored.
    r.handle_input(&[1, 0, 0]);
    assert!(drain(&mut r).is_empty());
    assert_eq!(
        r.outcome(),
        Some(&MsnftpOutcome::Received(b"hello world".to_vec()))
    );
}

fn receive_in_pieces(file: &[u8], cuts: &[usize]) -> (Vec<u8>, Option<MsnftpOutcome>) {
    let stream = sender_stream(file);
    let mut r = MsnftpReceive::new(ME, "99", file.len() as u64, 1 << 20);
    let mut out = drain(&mut r);
    let mut from = 0;
    for &cut in cuts.iter().chain(std::iter::once(&stream.len())) {
        r.handle_input(&stream[from..cut]);
        out.extend(drain(&mut r));
        from = cut;
    }
    (out, r.outcome().cloned())
}

#[test]
fn input_split_at_every_byte_boundary() {
    let file: Vec<u8> = (0..5000u32).map(|i| (i * 13 % 256) as u8).collect();
    let stream_len = sender_stream(&file).len();
    let (whole_out, whole) = receive_in_pieces(&file, &[]);
    assert_eq!(whole, Some(MsnftpOutcome::Received(file.clone())));
    assert_eq!(
        whole_out,
        b"VER MSNFTP\r\nUSR example@hotmail.com 99\r\nTFR\r\nBYE 16777989\r\n"
    );
    for cut in 0..=stream_len {
        assert_eq!(
            receive_in_pieces(&file, &[cut]),
            (whole_out.clone(), whole.clone()),
            "cut at {cut}"
        );
    }
    // One byte at a time.
    let every: Vec<usize> = (1..stream_len).collect();
    assert_eq!(receive_in_pieces(&file, &every), (whole_out, whole));
}

#[test]
fn bad_input_fails_and_cancels() {
    let fails = |input: &[u8], size: u64| {
        let mut r = MsnftpReceive::new(ME, "1", size, 10_000);
        drain(&mut r);
        r.handle_input(input);
        let out = drain(&mut r);
        (r.outcome().cloned(), out)
    };
    // Wrong size, size over what the invitation said.
    let (o, out) = fails(b"VER MSNFTP\r\nFIL 12\r\n", 11);
    assert!(matches!(o, Some(MsnftpOutcome::Failed(_))));
    assert!(out.ends_with(b"CCL\r\n"));
    // The sender cancels: CCL, or a block header whose first byte is not 0.
    let (o, _) = fails(b"VER MSNFTP\r\nCCL\r\n", 11);
    assert!(matches!(o, Some(MsnftpOutcome::Failed(w)) if w.contains("cancelled")));
    let (o, _) = fails(b"VER MSNFTP\r\nFIL 11\r\n\x01\x00\x00", 11);
    assert!(matches!(o, Some(MsnftpOutcome::Failed(w)) if w.contains("cancelled")));
    // A block longer than 2045 bytes, or past the announced size.
    let (o, _) = fails(b"VER MSNFTP\r\nFIL 5000\r\n\x00\xfe\x07", 5000);
    assert!(matches!(o, Some(MsnftpOutcome::Failed(_))));
    let (o, _) = fails(b"VER MSNFTP\r\nFIL 11\r\n\x00\x0c\x00", 11);
    assert!(matches!(o, Some(MsnftpOutcome::Failed(_))));
    // Another protocol, garbage, an endless line.
    let (o, _) = fails(b"VER MSNFTP2\r\n", 11);
    assert!(matches!(o, Some(MsnftpOutcome::Failed(_))));
    let (o, _) = fails(b"\xff\xfe\r\n", 11);
    assert!(matches!(o, Some(MsnftpOutcome::Failed(_))));
    let (o, _) = fails(&[b'A'; 100_000], 11);
    assert!(matches!(o, Some(MsnftpOutcome::Failed(_))));
    // Over the limit: nothing is sent at all.
    let mut r = MsnftpReceive::new(ME, "1", 10_001, 10_000);
    assert!(r.poll_transmit().is_none());
    assert!(matches!(r.outcome(), Some(MsnftpOutcome::Failed(_))));
    // The caller's deadline.
    let mut r = MsnftpReceive::new(ME, "1", 10, 10_000);
    drain(&mut r);
    r.cancel("timeout");
    assert_eq!(drain(&mut r), b"CCL\r\n");
    assert_eq!(r.outcome(), Some(&MsnftpOutcome::Failed("timeout".into())));
    // An empty file ends at FIL.
    let (o, out) = fails(b"VER MSNFTP\r\nFIL 0\r\n", 0);
    assert_eq!(o, Some(MsnftpOutcome::Received(Vec::new())));
    assert_eq!(out, b"USR example@hotmail.com 1\r\nTFR\r\nBYE 16777989\r\n");
}

#[test]
fn invitations_parse_and_ours_are_built_as_amsn_sends_them() {
    // The sender's INVITE as hypothetic.org "Invitations" shows it.
    let invite = b"Application-Name: File Transfer\r\n\
        Application-GUID: {5D3E02AB-6190-11D3-BBBB-00C04F795683}\r\n\
        Invitation-Command: INVITE\r\n\
        Invitation-Cookie: 24452468\r\n\
        Application-File: bigfile.zip\r\n\
        Application-FileSize: 2394894\r\n\
        Connectivity: N\r\n\r\n";
    let i = Invitation::parse(invite).unwrap();
    assert_eq!(i.command(), Some(InvitationCommand::Invite));
    assert!(i.is_file_transfer());
    assert_eq!(i.cookie(), Some(24_452_468));
    assert_eq!(i.file_name(), Some("bigfile.zip"));
    assert_eq!(i.file_size(), Some(2_394_894));
    assert_eq!(i.get("connectivity"), Some("N"));

    let accept = b"Invitation-Command: ACCEPT\r\n\
        Invitation-Cookie: 24452468\r\n\
        IP-Address: 192.168.0.2\r\n\
        Port: 6891\r\n\
        AuthCookie: 1618963\r\n\
        Launch-Application: FALSE\r\n\
        Request-Data: IP-Address:\r\n\r\n";
    let a = Invitation::parse(accept).unwrap();
    assert_eq!(a.command(), Some(InvitationCommand::Accept));
    assert_eq!(a.ip_address(), Some("192.168.0.2".parse().unwrap()));
    assert_eq!(a.port(), Some(6891));
    assert_eq!(a.auth_cookie(), Some("1618963"));

    let c = Invitation::parse(
        b"Invitation-Command: CANCEL\nInvitation-Cookie: 5\nCancel-Code: FTTIMEOUT\n",
    )
    .unwrap();
    assert_eq!(c.command(), Some(InvitationCommand::Cancel));
    assert_eq!(c.cancel_code(), Some("FTTIMEOUT"));

    // Ours, byte for byte as aMSN's acceptFT / rejectFT.
    assert_eq!(
        accept_request(24_452_468),
        b"MIME-Version: 1.0\r\nContent-Type: text/x-msmsgsinvite; charset=UTF-8\r\n\r\n\
          Invitation-Command: ACCEPT\r\nInvitation-Cookie: 24452468\r\n\
          Launch-Application: FALSE\r\nRequest-Data: IP-Address:\r\n\r\n"
    );
    assert_eq!(
        cancel(24_452_468, "REJECT"),
        b"MIME-Version: 1.0\r\nContent-Type: text/x-msmsgsinvite; charset=UTF-8\r\n\r\n\
          Invitation-Command: CANCEL\r\nInvitation-Cookie: 24452468\r\n\
          Cancel-Code: REJECT\r\n\r\n"
    );

    // Bounds: names over 259 characters, huge bodies, bad values.
    let long = format!("Application-File: {}\r\n", "n".repeat(260));
    assert_eq!(
        Invitation::parse(long.as_bytes()),
        Err(MsnftpError::NameTooLong)
    );
    let ok = format!("Application-File: {}\r\n", "\u{e9}".repeat(259));
    assert!(Invitation::parse(ok.as_bytes()).is_ok());
    assert!(Invitation::parse(&vec![b'a'; 10_000]).is_err());
    let bad = Invitation::parse(
        b"Port: 99999\r\nAuthCookie: a b\r\nIP-Address: x\r\nInvitation-Cookie: -1\r\n",
    )
    .unwrap();
    assert_eq!(
        (
            bad.port(),
            bad.auth_cookie(),
            bad.ip_address(),
            bad.cookie()
        ),
        (None, None, None, None)
    );
}
