//! Encode/decode throughput of RECEIVE_MESSAGE and SEND_MESSAGE on one core.
//! Run with `cargo bench -p icq-proto`; prints packets/s (median, min, max).

use icq_proto::{ClientPacket, MessageTime, ServerPacket};
use std::hint::black_box;
use std::time::Instant;

const TRIALS: usize = 7;
const PACKETS_PER_TRIAL: u32 = 500_000;

fn measure(name: &str, mut op: impl FnMut(u32)) {
    for i in 0..PACKETS_PER_TRIAL / 10 {
        op(i); // warm-up
    }
    let mut rates: Vec<f64> = (0..TRIALS)
        .map(|_| {
            let start = Instant::now();
            for i in 0..PACKETS_PER_TRIAL {
                op(i);
            }
            f64::from(PACKETS_PER_TRIAL) / start.elapsed().as_secs_f64()
        })
        .collect();
    rates.sort_by(f64::total_cmp);
    println!(
        "{name:<32} median {:>12.0} packets/s   min {:>12.0}   max {:>12.0}   ({TRIALS} trials x {PACKETS_PER_TRIAL})",
        rates[TRIALS / 2],
        rates[0],
        rates[TRIALS - 1]
    );
}

fn main() {
    let text = "Hi! Are you coming to the party tonight? Bring the CDs, café at 8.";
    let receive = ServerPacket::ReceiveMessage {
        from: 54321,
        time: MessageTime {
            year: 1998,
            month: 4,
            day: 12,
            hour: 17,
            minute: 42,
        },
        kind: 1,
        text: text.into(),
    };
    let send = ClientPacket::SendMessage {
        to: 54321,
        kind: 1,
        text: text.into(),
    };
    let receive_bytes = receive.encode(7);
    let send_bytes = send.encode(7, 12345);
    let ascii_bytes = ServerPacket::ReceiveMessage {
        from: 54321,
        time: MessageTime::default(),
        kind: 1,
        text: "Hi! Are you coming to the party tonight? Bring the CDs.".into(),
    }
    .encode(7);

    measure("decode RECEIVE_MESSAGE (Latin-1)", |_| {
        black_box(ServerPacket::decode(black_box(&receive_bytes)).ok());
    });
    measure("decode RECEIVE_MESSAGE (ASCII)", |_| {
        black_box(ServerPacket::decode(black_box(&ascii_bytes)).ok());
    });
    measure("decode SEND_MESSAGE", |_| {
        black_box(ClientPacket::decode(black_box(&send_bytes)).ok());
    });
    measure("encode RECEIVE_MESSAGE", |i| {
        black_box(black_box(&receive).encode(i as u16));
    });
    measure("encode SEND_MESSAGE", |i| {
        black_box(black_box(&send).encode(i as u16, 12345));
    });
}
