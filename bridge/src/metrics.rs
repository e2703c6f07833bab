//! Prometheus metrics: the registry, every metric's handle, the one-line recording
//! functions the rest of the bridge calls, and the `/metrics` listener.
//!
//! One process-wide registry ([`get`]): there is one bridge per process, and a global
//! lets the Matrix client, the inbox and the outbox record with one line each, without
//! threading a handle through constructors. Recording costs a few atomic operations and
//! happens whether or not the listener is enabled; the listener only serves them.
//!
//! Gauges that describe state (logins, outbox depth) are not maintained event by event:
//! the scrape handler sets them from the core's own bookkeeping just before encoding
//! (the core's `Bridge::refresh_metrics`, called at each scrape), so they cannot drift.
//!
//! Labels are bounded: network, direction, endpoint kind, error class, outcome. Never a
//! user id, a room id or anything else a peer chooses.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get as get_route;
use axum::Router;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Registry, Unit};

use crate::model::NetworkId;
use crate::model::{OutboxEntry, OutboxItem};

/// Which way a message crossed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    LegacyToMatrix,
    MatrixToLegacy,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::LegacyToMatrix => "legacy_to_matrix",
            Direction::MatrixToLegacy => "matrix_to_legacy",
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NetworkLabel {
    pub network: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NetworkState {
    pub network: &'static str,
    pub state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NetworkDirection {
    pub network: &'static str,
    pub direction: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    pub kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindError {
    pub kind: &'static str,
    pub error: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabel {
    pub outcome: &'static str,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;
type SecondsGauge = Gauge<f64, AtomicU64>;

/// The registry and every metric's handle.
pub struct Metrics {
    registry: Registry,
    pub logins: Family<NetworkState, Gauge>,
    pub messages: Family<NetworkDirection, Counter>,
    pub messages_failed: Family<NetworkDirection, Counter>,
    pub delivery_latency: HistogramFamily<NetworkDirection>,
    pub outbox_depth: Family<NetworkLabel, Gauge>,
    pub outbox_oldest: Family<NetworkLabel, SecondsGauge>,
    pub inbox_depth: Gauge,
    pub homeserver_requests: Family<KindLabel, Counter>,
    pub homeserver_errors: Family<KindError, Counter>,
    pub homeserver_latency: HistogramFamily<KindLabel>,
    pub reconnects: Family<NetworkLabel, Counter>,
    pub transactions: Counter,
    pub transaction_repeats: Counter,
    pub events: Family<OutcomeLabel, Counter>,
}

/// 5 ms to about 5.5 min: a delivery is milliseconds when all is well, and minutes
/// while the homeserver or the legacy server is away.
fn delivery_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.005, 2.0, 17))
}

/// 1 ms to about 33 s (requests time out at `homeserver.request_timeout_seconds`).
fn request_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

impl Default for Metrics {
    fn default() -> Self {
        let mut m = Metrics {
            registry: Registry::with_prefix("retrobridge"),
            logins: Family::default(),
            messages: Family::default(),
            messages_failed: Family::default(),
            delivery_latency: Family::new_with_constructor(delivery_buckets),
            outbox_depth: Family::default(),
            outbox_oldest: Family::default(),
            inbox_depth: Gauge::default(),
            homeserver_requests: Family::default(),
            homeserver_errors: Family::default(),
            homeserver_latency: Family::new_with_constructor(request_buckets),
            reconnects: Family::default(),
            transactions: Counter::default(),
            transaction_repeats: Counter::default(),
            events: Family::default(),
        };
        let r = &mut m.registry;
        r.register(
            "logins",
            "Running logins by network and state (connecting, connected, disconnected)",
            m.logins.clone(),
        );
        r.register(
            "messages",
            "Messages bridged: legacy_to_matrix once the homeserver took them, matrix_to_legacy once the network accepted them",
            m.messages.clone(),
        );
        r.register(
            "messages_failed",
            "Messages that could not be bridged: refused by the homeserver, refused by the network, or sent from Matrix without a login",
            m.messages_failed.clone(),
        );
        r.register_with_unit(
            "delivery_latency",
            "From a message's arrival (outbox entry written, or appservice transaction received) to its acceptance on the other side",
            Unit::Seconds,
            m.delivery_latency.clone(),
        );
        r.register(
            "outbox_depth",
            "Legacy events waiting for the homeserver (messages, member lists, notices)",
            m.outbox_depth.clone(),
        );
        r.register_with_unit(
            "outbox_oldest_age",
            "Age of the oldest legacy event waiting for the homeserver",
            Unit::Seconds,
            m.outbox_oldest.clone(),
        );
        r.register(
            "inbox_depth",
            "Matrix events recorded and not yet handled",
            m.inbox_depth.clone(),
        );
        r.register(
            "homeserver_requests",
            "Requests to the homeserver by endpoint kind",
            m.homeserver_requests.clone(),
        );
        r.register(
            "homeserver_request_errors",
            "Failed homeserver requests by endpoint kind and error class (unreachable, rate_limited, server, too_large, refused, other); refused includes expected answers such as M_USER_IN_USE",
            m.homeserver_errors.clone(),
        );
        r.register_with_unit(
            "homeserver_request_duration",
            "Time until the homeserver answered (or the request failed)",
            Unit::Seconds,
            m.homeserver_latency.clone(),
        );
        r.register(
            "legacy_reconnects",
            "Connection losses after which a login reconnects by itself (one per outage, not per attempt)",
            m.reconnects.clone(),
        );
        r.register(
            "appservice_transactions",
            "Appservice transactions received from the homeserver",
            m.transactions.clone(),
        );
        r.register(
            "appservice_transaction_repeats",
            "Transactions received again (same id and content) and not handled twice",
            m.transaction_repeats.clone(),
        );
        r.register(
            "appservice_events",
            "Events of received transactions: recorded, duplicate (event id seen before) or not_ours (dropped unrecorded)",
            m.events.clone(),
        );
        m
    }
}

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::default);

/// The process's metrics.
pub fn get() -> &'static Metrics {
    &METRICS
}

impl Metrics {
    /// The registry in the Prometheus text format (version 0.0.4).
    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }

    fn bridged(&self, network: NetworkId, direction: Direction, latency: Option<Duration>) {
        let labels = NetworkDirection {
            network: network.as_str(),
            direction: direction.as_str(),
        };
        self.messages.get_or_create(&labels).inc();
        if let Some(latency) = latency {
            self.delivery_latency
                .get_or_create(&labels)
                .observe(latency.as_secs_f64());
        }
    }

    fn record_transaction(&self, repeat: bool, recorded: usize, duplicates: usize) {
        if repeat {
            self.transaction_repeats.inc();
            return;
        }
        for (outcome, n) in [("recorded", recorded), ("duplicate", duplicates)] {
            self.events
                .get_or_create(&OutcomeLabel { outcome })
                .inc_by(n as u64);
        }
    }

    fn record_request(&self, kind: &'static str, took: Duration, error: Option<&'static str>) {
        let labels = KindLabel { kind };
        self.homeserver_requests.get_or_create(&labels).inc();
        self.homeserver_latency
            .get_or_create(&labels)
            .observe(took.as_secs_f64());
        if let Some(error) = error {
            self.homeserver_errors
                .get_or_create(&KindError { kind, error })
                .inc();
        }
    }

    fn failed(&self, network: NetworkId, direction: Direction) {
        let labels = NetworkDirection {
            network: network.as_str(),
            direction: direction.as_str(),
        };
        self.messages_failed.get_or_create(&labels).inc();
    }
}

// --- recording, one call per instrumentation point ------------------------------------

/// The homeserver took an outbox entry (counted only for messages).
pub fn delivered_to_matrix(entry: &OutboxEntry) {
    if let OutboxItem::Message { .. } = entry.item {
        let waited = crate::model::now_ms().saturating_sub(entry.received_ms);
        get().bridged(
            entry.network,
            Direction::LegacyToMatrix,
            Some(Duration::from_millis(waited)),
        );
    }
}

/// The homeserver refused an outbox entry for good (counted only for messages).
pub fn refused_by_matrix(entry: &OutboxEntry) {
    if let OutboxItem::Message { .. } = entry.item {
        get().failed(entry.network, Direction::LegacyToMatrix);
    }
}

tokio::task_local! {
    /// When the Matrix event being handled on this task arrived (see [`handling_event`]).
    static EVENT_ARRIVED: Instant;
}

/// Runs the handling of a Matrix event that arrived at `arrived`, so that
/// [`sent_to_legacy`] can measure the latency without the arrival time being passed
/// through every handler.
pub async fn handling_event<F: Future>(arrived: Instant, handling: F) -> F::Output {
    EVENT_ARRIVED.scope(arrived, handling).await
}

/// The network accepted a message from Matrix.
pub fn sent_to_legacy(network: NetworkId) {
    let latency = EVENT_ARRIVED.try_with(Instant::elapsed).ok();
    get().bridged(network, Direction::MatrixToLegacy, latency);
}

/// The network or the login refused a message from Matrix.
pub fn refused_by_legacy(network: NetworkId) {
    get().failed(network, Direction::MatrixToLegacy);
}

/// A login's own event (connection state, contacts...): counts the connection losses
/// the login recovers from by itself (networks report each outage once).
pub fn login_event(network: NetworkId, event: &crate::model::NetworkEvent) {
    if let crate::model::NetworkEvent::Disconnected {
        will_retry: true, ..
    } = event
    {
        get()
            .reconnects
            .get_or_create(&NetworkLabel {
                network: network.as_str(),
            })
            .inc();
    }
}

/// An appservice transaction arrived.
pub fn transaction_received() {
    get().transactions.inc();
}

/// What became of a received transaction: a repeat, or `recorded` new events and
/// `duplicates` whose event ids were seen before.
pub fn transaction_handled(repeat: bool, recorded: usize, duplicates: usize) {
    get().record_transaction(repeat, recorded, duplicates);
}

/// An event of a transaction was dropped as none of the bridge's business.
pub fn event_not_ours() {
    get()
        .events
        .get_or_create(&OutcomeLabel {
            outcome: "not_ours",
        })
        .inc();
}

/// A homeserver request of `kind` ended after `took`; `error`: a bounded name for what
/// went wrong (the front classifies its own errors: `too_large`, `rate_limited`,
/// `server`, `refused`, `unreachable`, `other`).
pub fn homeserver_request(kind: &'static str, took: Duration, error: Option<&'static str>) {
    get().record_request(kind, took, error);
}

/// The endpoint kind of a request type, for the `kind` label (a ruma request:
/// `ruma_client_api::message::send_message_event::v3::Request` -> `send_message_event`)
/// (also inside wrappers such as `AsUser<…>`). Bounded: one value per request type
/// the bridge uses; `other` if the type's name has another shape.
pub fn endpoint_kind<R>(_request: &R) -> &'static str {
    kind_of::<R>()
}

pub fn kind_of<R>() -> &'static str {
    let name = std::any::type_name::<R>();
    let inner = name.rsplit('<').next().unwrap_or(name);
    let inner = inner.trim_end_matches('>');
    let mut parts = inner.rsplit("::");
    match (parts.next(), parts.next(), parts.next()) {
        (Some("Request"), Some(version), Some(kind)) if version.starts_with('v') => kind,
        _ => "other",
    }
}

// --- the listener ----------------------------------------------------------------------

/// Serves `/metrics` on `listen` until `stop` turns true. Binds before returning, so a
/// busy address is a start-up error.
pub async fn serve(
    listen: SocketAddr,
    refresh: impl Fn(&Metrics) + Clone + Send + Sync + 'static,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<tokio::task::JoinHandle<std::io::Result<()>>> {
    use anyhow::Context;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("metrics listener on {listen}"))?;
    tracing::info!("metrics on http://{listen}/metrics");
    let app = Router::new().route(
        "/metrics",
        get_route(move || {
            let refresh = refresh.clone();
            async move {
                refresh(get());
                (
                    [(
                        header::CONTENT_TYPE,
                        prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
                    )],
                    get().encode(),
                )
                    .into_response()
            }
        }),
    );
    Ok(tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stop.wait_for(|s| *s).await;
            })
            .await
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The latency of a message from Matrix is measured from its event's arrival, which
    /// the inbox gives the handling task; outside such a task only the count moves.
    #[tokio::test]
    async fn matrix_to_legacy_latency_comes_from_the_handled_event() {
        let sample = |series: &str| -> f64 {
            let series = format!(
                "retrobridge_{series}{{network=\"mig33\",direction=\"matrix_to_legacy\"}} "
            );
            let text = get().encode();
            text.lines()
                .find_map(|l| l.strip_prefix(series.as_str()))
                .map_or(0.0, |v| v.parse().expect("a number"))
        };
        let observed = || sample("delivery_latency_seconds_count");
        let sent = || sample("messages_total");
        let (observed_before, sent_before) = (observed(), sent());
        let arrived = Instant::now() - Duration::from_millis(50);
        handling_event(arrived, async { sent_to_legacy(NetworkId::Mig33) }).await;
        assert_eq!(observed(), observed_before + 1.0);
        assert!(sample("delivery_latency_seconds_sum") >= 0.05);
        sent_to_legacy(NetworkId::Mig33);
        assert_eq!(observed(), observed_before + 1.0);
        assert_eq!(sent(), sent_before + 2.0);
    }

    #[test]
    fn recorded_values_appear_in_the_text_format() {
        let m = Metrics::default();
        m.bridged(
            NetworkId::Icq,
            Direction::LegacyToMatrix,
            Some(Duration::from_millis(20)),
        );
        m.bridged(NetworkId::Icq, Direction::MatrixToLegacy, None);
        m.failed(NetworkId::Mig33, Direction::MatrixToLegacy);
        m.record_request("send_message_event", Duration::from_millis(3), None);
        m.record_transaction(false, 2, 1);
        m.record_transaction(true, 0, 0);
        let text = m.encode();
        for line in [
            "retrobridge_messages_total{network=\"icq\",direction=\"legacy_to_matrix\"} 1",
            "retrobridge_messages_total{network=\"icq\",direction=\"matrix_to_legacy\"} 1",
            "retrobridge_messages_failed_total{network=\"mig33\",direction=\"matrix_to_legacy\"} 1",
            "retrobridge_delivery_latency_seconds_count{network=\"icq\",direction=\"legacy_to_matrix\"} 1",
            "retrobridge_delivery_latency_seconds_bucket{network=\"icq\",direction=\"legacy_to_matrix\",le=\"0.04\"} 1",
            "retrobridge_homeserver_requests_total{kind=\"send_message_event\"} 1",
            "retrobridge_appservice_transactions_total 0",
            "retrobridge_appservice_transaction_repeats_total 1",
            "retrobridge_appservice_events_total{outcome=\"recorded\"} 2",
            "retrobridge_appservice_events_total{outcome=\"duplicate\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in:\n{text}");
        }
        // No latency without an arrival time: the histogram has only the first one.
        assert!(!text.contains(
            "delivery_latency_seconds_count{network=\"icq\",direction=\"matrix_to_legacy\"}"
        ));
    }
}
