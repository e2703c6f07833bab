//! Decode and encode throughput of MESSAGE (500) and CONTACT (402) packets on one
//! core. Run with `cargo bench -p mig33-proto`; prints packets per second (median,
//! min and max over several trials).

use std::hint::black_box;
use std::time::Instant;

use mig33_proto::{Contact, DestinationType, Envelope, Message, Packet, Presence, RawFrame};

const TRIALS: usize = 7;
const PER_TRIAL: usize = 500_000;

fn message() -> Packet {
    Message::text(
        "bob_the_builder",
        DestinationType::Chatroom,
        "mig33 lobby",
        "Hello everyone, how is the weather over there today?",
    )
    .into()
}

fn contact() -> Packet {
    Contact {
        status_message: Some("at work".into()),
        flag: Some(0),
        presence: Some(Presence::Available),
        username: "bob_the_builder".into(),
        display_name: "Bob the Builder".into(),
        group_id: Some(3),
        contact_id: 123_456,
    }
    .into()
}

/// Runs `op` PER_TRIAL times per trial and prints packets/s.
fn measure(label: &str, mut op: impl FnMut()) {
    let mut rates: Vec<f64> = (0..TRIALS)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..PER_TRIAL {
                op();
            }
            PER_TRIAL as f64 / start.elapsed().as_secs_f64()
        })
        .collect();
    rates.sort_by(f64::total_cmp);
    println!(
        "{label:<16} median {:>12.0}/s   min {:>12.0}/s   max {:>12.0}/s   ({TRIALS} trials x {PER_TRIAL})",
        rates[TRIALS / 2],
        rates[0],
        rates[TRIALS - 1]
    );
}

fn bench(name: &str, packet: Packet) {
    let bytes = packet.encode(7);
    println!("{name}: {} bytes per frame", bytes.len());
    measure(&format!("decode {name}"), || {
        let raw = RawFrame::parse(black_box(&bytes)).unwrap();
        black_box(Envelope::decode(&raw).unwrap());
    });
    let mut out = Vec::with_capacity(256);
    measure(&format!("encode {name}"), || {
        out.clear();
        black_box(&packet).encode_into(7, &mut out);
        black_box(&out);
    });
}

fn main() {
    bench("MESSAGE", message());
    bench("CONTACT", contact());
}
