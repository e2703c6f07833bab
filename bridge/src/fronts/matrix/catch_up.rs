//! Events the homeserver delivers late.
//!
//! Synapse sends an appservice's transactions in order, except around an outage of the
//! appservice: when its recoverer has sent the backlog and is about to mark the
//! appservice up again, a transaction created in that instant stays in its database,
//! and later ones go out directly. The stuck one is sent only after the next failure,
//! behind messages written after it (seen here after `kill -9` of the bridge: a user's
//! message reaching the legacy contact after the next one, or not at all).
//!
//! So for a while after the bridge starts, and after any transaction that carries old
//! events (the homeserver replaying a backlog), the bridge checks the room before
//! handling a user's message: earlier messages it has not been sent yet are fetched and
//! handled first, in timeline order, and recorded so the late copy is dropped as a
//! repeat. When that while ends, the rooms that had messages are looked at once more,
//! for a stuck message that nothing followed. What that look finds goes through the
//! room's queue, which keeps the order events were written in: ahead of a backlog
//! written after it (a login's send pacing can hold one for minutes).

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use matrix_sdk::ruma::EventId;

use super::{room_id, MatrixEvent, MatrixFront};
use crate::fronts::matrix::endpoint::{EventHeader, IncomingEvent};

/// How long the checks stay on after a start or a backlog.
const WINDOW: Duration = Duration::from_secs(30);
/// An event this old in a transaction means the homeserver is replaying a backlog.
const LATE_MS: u64 = 30_000;
/// How far back a room is looked at.
const LOOK_BACK: u32 = 50;
/// Earlier messages are taken only from this long before the one being handled (older
/// ones were handled long ago, and their ids may have been pruned from the records).
const SPAN_MS: u64 = 10 * 60 * 1000;

#[derive(Default)]
pub(crate) struct CatchUp {
    until: Mutex<Option<Instant>>,
    /// Rooms that had messages while checking: looked at again when the window ends.
    rooms: Mutex<HashSet<String>>,
    sweeping: AtomicBool,
}

impl MatrixFront {
    /// Turns the checks on for [`WINDOW`] from now.
    pub(crate) fn expect_late_events(self: &Arc<Self>, why: &str) {
        let until = Instant::now() + WINDOW;
        *self.catch_up.until.lock().expect("catch-up") = Some(until);
        tracing::debug!("checking for late Matrix events for {WINDOW:?}: {why}");
        if !self.catch_up.sweeping.swap(true, Ordering::SeqCst) {
            let front = self.clone();
            tokio::spawn(async move { front.sweep_when_done().await });
        }
    }

    /// A transaction with old events: the homeserver is replaying what it held.
    pub(crate) fn note_transaction(self: &Arc<Self>, events: &[IncomingEvent]) {
        let now = crate::core::now_ms();
        let old = events.iter().filter(|e| !e.ephemeral).any(|e| {
            e.header
                .origin_server_ts
                .is_some_and(|ts| ts + LATE_MS < now)
        });
        if old {
            self.expect_late_events("the homeserver is sending old events");
        }
    }

    /// Whether an event that arrived at `arrived` is checked: one that came while
    /// late events were possible is checked however long it then waited in its room's
    /// queue (a login's send pacing can hold a burst for minutes), so a message stuck
    /// at the homeserver still goes before it.
    fn checking(&self, arrived: Instant) -> bool {
        self.catch_up
            .until
            .lock()
            .expect("catch-up")
            .is_some_and(|until| arrived < until)
    }

    /// Whether an event is a user's message the bridge acts on (not its own echo).
    fn catchable(&self, header: &EventHeader) -> bool {
        header.kind == "m.room.message"
            && header.event_id.is_some()
            && header.sender.as_deref().is_some_and(|s| !self.is_ours(s))
            && self.concerns_us(header)
    }

    /// Called by a room's worker before it handles `event` (which arrived at `arrived`):
    /// when checking, handles the room's earlier messages the homeserver has not
    /// delivered yet.
    pub(crate) async fn handle_late_before(
        self: &Arc<Self>,
        room: &str,
        event: &MatrixEvent,
        arrived: Instant,
    ) {
        if !self.checking(arrived) || event.kind != "m.room.message" {
            return;
        }
        self.catch_up
            .rooms
            .lock()
            .expect("catch-up")
            .insert(room.to_owned());
        let Some(Ok(id)) = event.event_id.as_deref().map(EventId::parse) else {
            return;
        };
        let before = match self
            .matrix
            .events_before(&room_id(room), &id, LOOK_BACK)
            .await
        {
            Ok(events) => events,
            Err(e) => {
                tracing::debug!(%room, "could not look for late events: {e}");
                return;
            }
        };
        let since = event.origin_server_ts.unwrap_or(0).saturating_sub(SPAN_MS);
        self.handle_late(room, before, since).await;
    }

    /// Handles now, in timeline order, the user messages among `events` (oldest first,
    /// from `since_ms` on) the homeserver has not delivered yet.
    async fn handle_late(self: &Arc<Self>, room: &str, events: Vec<serde_json::Value>, since: u64) {
        // All are in the inbox (a crash does not lose them) and recorded before any is
        // handled: a transaction bringing one meanwhile drops it instead of queueing it
        // behind this event.
        let late: Vec<(u64, MatrixEvent)> = self
            .unseen(events, since)
            .into_iter()
            .filter_map(|(late, raw)| Some((self.record_late(&late, &raw)?, late)))
            .collect();
        if late.is_empty() {
            return;
        }
        if let Err(e) = self.store.flush().await {
            tracing::error!("could not record a late event: {e}");
        }
        for (id, late) in late {
            tracing::info!(%room, event = ?late.event_id, "handling a Matrix event the homeserver has not delivered yet");
            self.handle_matrix_event(late).await;
            if let Err(e) = self.store.inbox_done(id) {
                tracing::error!("could not mark a late event handled: {e}");
            }
            self.store.flush_soon();
        }
    }

    /// The user messages among `events` (oldest first) the bridge has not received, from
    /// `since_ms` on.
    fn unseen(
        &self,
        events: Vec<serde_json::Value>,
        since_ms: u64,
    ) -> Vec<(MatrixEvent, serde_json::Value)> {
        events
            .into_iter()
            .filter_map(|raw| {
                let header: EventHeader = serde_json::from_value(raw.clone()).ok()?;
                if !self.catchable(&header) || header.origin_server_ts.unwrap_or(0) < since_ms {
                    return None;
                }
                let id = header.event_id.as_deref()?;
                if self.store.event_seen(id).ok()? {
                    return None;
                }
                Some((serde_json::from_value(raw.clone()).ok()?, raw))
            })
            .collect()
    }

    /// Puts a late event in the inbox and records its id, so the homeserver's late copy
    /// is dropped; `None` when a transaction brought it meanwhile (or on an error).
    fn record_late(&self, late: &MatrixEvent, raw: &serde_json::Value) -> Option<u64> {
        let recorded = serde_json::to_vec(raw)
            .map_err(|e| e.to_string())
            .and_then(|bytes| {
                self.store
                    .inbox_push_new(late.event_id.as_deref(), &bytes, crate::core::now_ms())
                    .map_err(|e| e.to_string())
            });
        recorded.unwrap_or_else(|e| {
            tracing::error!("could not record a late event: {e}");
            None
        })
    }

    /// When the checks end, the rooms that had messages are looked at once more: a
    /// stuck message that nothing followed would wait for the homeserver's next failure.
    async fn sweep_when_done(self: Arc<Self>) {
        loop {
            let until = *self.catch_up.until.lock().expect("catch-up");
            match until {
                Some(until) if Instant::now() < until => {
                    tokio::time::sleep_until(until.into()).await;
                }
                _ => break,
            }
        }
        self.catch_up.sweeping.store(false, Ordering::SeqCst);
        let rooms: Vec<String> = self
            .catch_up
            .rooms
            .lock()
            .expect("catch-up")
            .drain()
            .collect();
        let since = crate::core::now_ms().saturating_sub(SPAN_MS);
        for room in rooms {
            let latest = match self.matrix.latest_events(&room_id(&room), LOOK_BACK).await {
                Ok(events) => events,
                Err(e) => {
                    tracing::debug!(%room, "could not look for late events: {e}");
                    continue;
                }
            };
            for (late, raw) in self.unseen(latest, since) {
                // Through the inbox and the room's queue: in the order written with the
                // room's other events, and handled again after a crash.
                let Some(id) = self.record_late(&late, &raw) else {
                    continue;
                };
                tracing::info!(%room, event = ?late.event_id, "found a Matrix event the homeserver has not delivered yet");
                self.store.flush_soon();
                self.queue_event(&room, id, Instant::now(), late.origin_server_ts);
            }
        }
    }
}
