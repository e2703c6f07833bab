//! Parse and build throughput of switchboard `MSG` commands (formatted text)
//! and `NLN` lines, on one core. Run with `cargo bench -p msn-proto`.

use std::hint::black_box;
use std::time::Instant;

use msn_proto::{encode_command, parse_command, Message, MessageRef, TextFormat};

const TRIALS: usize = 7;

/// Runs one benchmark unless `MSN_BENCH_FILTER` is set and not part of its name.
fn measure(name: &str, per_trial: usize, mut run: impl FnMut() -> usize) {
    if let Ok(filter) = std::env::var("MSN_BENCH_FILTER") {
        if !name.contains(&filter) {
            return;
        }
    }
    let mut rates = Vec::with_capacity(TRIALS);
    run(); // warm-up
    for _ in 0..TRIALS {
        let start = Instant::now();
        let n = run();
        rates.push(n as f64 / start.elapsed().as_secs_f64());
    }
    rates.sort_by(f64::total_cmp);
    println!(
        "{name:<34} median {:>12.0}/s  min {:>12.0}/s  max {:>12.0}/s  ({per_trial} per trial, {TRIALS} trials)",
        rates[TRIALS / 2],
        rates[0],
        rates[TRIALS - 1]
    );
}

fn main() {
    // MSN_BENCH_N shrinks the run (e.g. under valgrind).
    let n: usize = std::env::var("MSN_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    let format = TextFormat {
        font: "Comic Sans MS".into(),
        bold: true,
        color: 0x0080ff,
        ..TextFormat::default()
    };
    let payload =
        Message::text("Hello there, how are you doing today? 😀", Some(&format)).to_bytes();
    let mut msg_stream = Vec::new();
    for _ in 0..n {
        encode_command(
            &mut msg_stream,
            "MSG",
            None,
            &["alice@hotmail.com", "Alice%20A"],
            Some(&payload),
        );
    }
    let mut nln_stream = Vec::new();
    for _ in 0..n {
        encode_command(
            &mut nln_stream,
            "NLN",
            None,
            &["AWY", "bob@hotmail.com", "Bob%20the%20Builder", "268435492"],
            None,
        );
    }

    measure("parse MSG (command+MIME+format)", n, || {
        let mut buf = &msg_stream[..];
        let mut n = 0;
        while let Ok(Some((cmd, used))) = parse_command(buf) {
            let m = MessageRef::parse(cmd.payload.unwrap_or_default()).unwrap();
            black_box((cmd.param(0), m.format(), m.text()));
            buf = &buf[used..];
            n += 1;
        }
        n
    });
    measure("parse MSG (command framing only)", n, || {
        let mut buf = &msg_stream[..];
        let mut n = 0;
        while let Ok(Some((cmd, used))) = parse_command(buf) {
            black_box((cmd.param(0), cmd.payload));
            buf = &buf[used..];
            n += 1;
        }
        n
    });
    measure("parse NLN", n, || {
        let mut buf = &nln_stream[..];
        let mut n = 0;
        while let Ok(Some((cmd, used))) = parse_command(buf) {
            let mut p = cmd.params();
            black_box((p.next(), p.next(), p.next(), p.next()));
            buf = &buf[used..];
            n += 1;
        }
        n
    });
    let mut out = Vec::with_capacity(msg_stream.len());
    measure("build MSG (format+MIME+command)", n, || {
        out.clear();
        for i in 0..n {
            let body = Message::text(
                black_box("Hello there, how are you doing today? 😀"),
                Some(&format),
            )
            .to_bytes();
            encode_command(&mut out, "MSG", Some(i as u32), &["A"], Some(&body));
        }
        black_box(&out);
        n
    });
    measure("build NLN", n, || {
        out.clear();
        for _ in 0..n {
            encode_command(
                &mut out,
                "NLN",
                None,
                black_box(&["AWY", "bob@hotmail.com", "Bob%20the%20Builder", "268435492"]),
                None,
            );
        }
        black_box(&out);
        n
    });
}
