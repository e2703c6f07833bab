//! XMPP -> legacy delivery benchmark through a real Prosody (not a test; it stops by
//! itself): one XMPP user sends a burst of chat messages to a mig33 contact of the
//! simulator as fast as the client writes them; the bridge records each one (its inbox)
//! before the network sends it. Prints messages per second end to end, the bridge's CPU
//! per message (from /proc) and the integrity of what arrived (missing, doubled, out of
//! order).
//!
//! Run:
//!
//!     cargo build --release --bins
//!     cargo bench -p e2e-tests --bench xmpp_delivery
//!
//! `BENCH_MESSAGES` (default 2000) sets the burst size.

use std::time::{Duration, Instant};

use e2e_tests::process::cpu_ms;
use e2e_tests::xmpp_bridge::{components, gateway, network_yaml, XmppBridge};
use e2e_tests::{ServerKind, XmppUser};
use legacy_sim::mig33;
use tokio_xmpp::parsers::jid::Jid;

fn user(name: &str, contact: &str) -> mig33::UserConfig {
    mig33::UserConfig {
        username: name.into(),
        password: "pw".into(),
        display_name: None,
        groups: Vec::new(),
        contacts: vec![mig33::ContactConfig {
            username: contact.into(),
            group: None,
            display_name: None,
        }],
    }
}

fn main() {
    let runtime = e2e_tests::bench::runtime();
    runtime.block_on(async {
        let total = e2e_tests::bench::env_number("BENCH_MESSAGES", 2000);
        println!(
            "XMPP -> legacy benchmark: {total} messages, 1 user to 1 mig33 contact, Prosody; \
             {}",
            e2e_tests::bench::machine()
        );
        let sim = mig33::Server::start(mig33::Config {
            listen: "127.0.0.1:0".into(),
            motd: None,
            users: vec![user("m0", "x00"), user("x00", "m0")],
            ..mig33::Config::default()
        })
        .await
        .expect("simulator");
        let server = tokio::task::block_in_place(|| {
            let server = ServerKind::Prosody.start(&components(&["mig33"]))?;
            server.register("alice", "pw-alice")?;
            anyhow::Ok(server)
        })
        .expect("Prosody");
        // Unpaced: this measures the bridge, not the pacing a real server needs.
        let yaml = network_yaml(
            "mig33",
            &sim.addr().to_string(),
            &[
                ("messages_per_second", serde_json::json!(100000.0)),
                ("message_burst", serde_json::json!(100000)),
            ],
        );
        let mut bridge = XmppBridge::configure("bench-xmpp", &*server, &yaml).expect("config");
        let mut alice = XmppUser::connect(&*server, "alice", "pw-alice")
            .await
            .expect("alice connects");
        bridge.spawn_with_rust_log("info").expect("bridge");
        bridge
            .wait_ready(&mut alice, Duration::from_secs(60))
            .await
            .expect("bridge ready");
        let gw: Jid = gateway("mig33").parse().expect("jid");
        alice.register(&gw, "m0", "pw").await.expect("registered");
        let mut contact = mig33::Client::login(sim.addr(), "x00", "pw")
            .await
            .expect("contact logs in");
        let to: Jid = format!("x00@{}", gateway("mig33")).parse().expect("jid");
        // One message first: the conversation is open and warm.
        alice.send_chat(&to, "warm-up").await.expect("send");
        contact
            .wait_message(Duration::from_secs(30))
            .await
            .expect("the warm-up arrives");
        let pid = bridge.pid().expect("running");
        let (cpu0, t0) = (cpu_ms(pid), Instant::now());
        let receiving = tokio::spawn(async move {
            let mut seen = Vec::new();
            while seen.len() < total {
                match contact.wait_message(Duration::from_secs(60)).await {
                    Ok(m) => seen.extend(m.content.strip_prefix("b-").and_then(|n| n.parse::<usize>().ok())),
                    Err(_) => break,
                }
            }
            seen
        });
        for n in 0..total {
            alice.send_chat(&to, &format!("b-{n:06}")).await.expect("send");
        }
        let sent = t0.elapsed();
        let seen = receiving.await.expect("receiver");
        let elapsed = t0.elapsed().as_secs_f64();
        let cpu = cpu_ms(pid) - cpu0;
        let mut sorted = seen.clone();
        sorted.sort_unstable();
        sorted.dedup();
        let missing = total - sorted.len();
        let doubled = seen.len() - sorted.len();
        let reordered = seen.windows(2).filter(|w| w[1] < w[0]).count();
        println!(
            "XMPP -> legacy: {} of {total} in {elapsed:.2} s ({:.0} messages/s; written by the client in {:.2} s), \
             bridge CPU {:.3} ms per message; missing {missing}, doubled {doubled}, out of order {reordered}",
            seen.len(),
            seen.len() as f64 / elapsed,
            sent.as_secs_f64(),
            cpu / total as f64,
        );
        bridge.terminate();
    });
}
