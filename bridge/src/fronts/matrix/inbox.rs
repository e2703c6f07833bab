//! Matrix -> legacy: what the homeserver sends is recorded in the store's inbox, then
//! handled in order per room; an event leaves the inbox only once handled (for a message:
//! once the legacy network accepted it), so what a crash interrupted is handled again
//! after the restart.
//!
//! The in-memory room queues hold only inbox ids (the events are on disk), so a backlog
//! costs a few bytes per event. Each room has at most one worker, which ends when its
//! queue is empty.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use super::{MatrixEvent, MatrixFront};
use crate::fronts::matrix::endpoint::{AppserviceHandler, EventHeader, IncomingEvent, NotNow};
use crate::store::{self, Accepted};

pub(crate) use crate::fronts::queues::KeyedQueues as RoomQueues;

impl MatrixFront {
    /// Handles what was recorded before the last stop, then lets new transactions be
    /// handled as they come. Call once the logins are restored, so that a replayed
    /// message finds its login (it waits in the login until connected).
    pub async fn start_inbox(self: &Arc<Self>) -> anyhow::Result<()> {
        let mut started = self.inbox_started.lock().await;
        let pending = self.store.inbox_pending()?;
        if !pending.is_empty() {
            tracing::info!(
                "handling {} Matrix event(s) accepted before the last stop",
                pending.len()
            );
        }
        // Their arrival before the stop is unknown: latency counts from the replay.
        let arrived = Instant::now();
        for (id, bytes) in pending {
            match serde_json::from_slice::<EventHeader>(&bytes) {
                Ok(EventHeader {
                    room_id: Some(room),
                    origin_server_ts,
                    ..
                }) => self.queue_event(&room, id, arrived, origin_server_ts),
                _ => {
                    if let Err(e) = self.store.inbox_done(id) {
                        tracing::error!("could not mark a Matrix event handled: {e}");
                    }
                    self.store.flush_soon();
                }
            }
        }
        *started = true;
        // The homeserver may hold events it will send late (see `catch_up`).
        self.expect_late_events("the bridge started");
        Ok(())
    }

    /// Call before the endpoint takes transactions: see
    /// [`store::Store::claim_pending_events`].
    pub fn claim_pending_events(&self) -> anyhow::Result<()> {
        let (claimed, dropped) = self.store.claim_pending_events(
            |bytes| serde_json::from_slice::<EventHeader>(bytes).ok()?.event_id,
            crate::core::now_ms(),
        )?;
        if claimed > 0 {
            tracing::info!(
                "recorded the ids of {claimed} Matrix event(s) waiting since the last stop"
            );
        }
        if dropped > 0 {
            tracing::warn!(
                "dropped {dropped} Matrix event(s) a crash left twice in the inbox (the first copy is kept)"
            );
        }
        Ok(())
    }

    /// Queues an inbox event for its room's worker, in the order the events were written
    /// (`written_ms`, the homeserver's timestamp): one the homeserver delivers late goes
    /// ahead of the later ones still waiting.
    pub(crate) fn queue_event(
        self: &Arc<Self>,
        room: &str,
        id: u64,
        arrived: Instant,
        written_ms: Option<u64>,
    ) {
        if self.room_queues.push_written(room, id, arrived, written_ms) {
            crate::fronts::queues::spawn_worker(self, room);
        }
    }

    /// Cheap test (store lookups only) whether an event needs handling.
    pub(crate) fn concerns_us(&self, event: &EventHeader) -> bool {
        let Some(room) = &event.room_id else {
            return false;
        };
        let member = event.kind == "m.room.member";
        if !member && event.sender.as_deref().is_some_and(|s| self.is_ours(s)) {
            return false; // our own echoes
        }
        if member && event.state_key.as_deref().is_some_and(|s| self.is_ours(s)) {
            return true;
        }
        self.store.management_owner(room).ok().flatten().is_some()
            || self.store.portal_by_room(room).ok().flatten().is_some()
            || super::management::was_moved(&self.store, room)
    }

    async fn record_transaction(
        self: &Arc<Self>,
        txn_id: &str,
        digest: [u8; 32],
        events: Vec<IncomingEvent>,
    ) -> Result<(), NotNow> {
        let arrived = Instant::now();
        crate::metrics::transaction_received();
        // Serialised with `start_inbox`: an event is queued either by the start-up
        // replay or here, never by both.
        let started = self.inbox_started.lock().await;
        self.note_transaction(&events);
        let persistent: Vec<&IncomingEvent> = events.iter().filter(|e| !e.ephemeral).collect();
        let records: Vec<store::IncomingEvent<'_>> = persistent
            .iter()
            .map(|e| store::IncomingEvent {
                event_id: e.header.event_id.as_deref(),
                bytes: &e.bytes,
            })
            .collect();
        let now = crate::core::now_ms();
        // Most transactions are only the bridge's own echoes: with nothing to keep, there
        // is nothing to write (a repeat is filtered the same way again).
        let accepted = if records.is_empty() {
            Accepted::New(Vec::new())
        } else {
            self.store
                .accept_transaction(txn_id, &digest, &records, now)
                .map_err(|e| NotNow::Failed(e.to_string()))?
        };
        let Accepted::New(ids) = accepted else {
            tracing::debug!(%txn_id, "transaction seen before; not handled again");
            crate::metrics::transaction_handled(true, 0, 0);
            return Ok(());
        };
        crate::metrics::transaction_handled(
            false,
            ids.len(),
            persistent.len().saturating_sub(ids.len()),
        );
        if !ids.is_empty() {
            self.store
                .flush()
                .await
                .map_err(|e| NotNow::Failed(e.to_string()))?;
        }
        tracing::debug!(%txn_id, recorded = ids.len(), started = *started, "transaction recorded");
        if *started {
            for (id, index) in ids {
                let header = &persistent[index].header;
                if let Some(room) = &header.room_id {
                    self.queue_event(room, id, arrived, header.origin_server_ts);
                }
            }
            for event in events.iter().filter(|e| e.ephemeral) {
                if let Ok(event) = serde_json::from_slice::<MatrixEvent>(&event.bytes) {
                    self.handle_ephemeral(event);
                }
            }
        }
        Ok(())
    }
}

impl crate::fronts::queues::Inbox for MatrixFront {
    const WHAT: &'static str = "Matrix event";

    fn queues(&self) -> &RoomQueues {
        &self.room_queues
    }

    fn store(&self) -> &store::Store {
        &self.store
    }

    fn get(&self, id: u64) -> store::Result<Option<Vec<u8>>> {
        self.store.inbox_get(id)
    }

    fn done(&self, id: u64) -> store::Result<()> {
        self.store.inbox_done(id)
    }

    async fn handle(self: &Arc<Self>, room: &str, bytes: Vec<u8>, arrived: Instant) {
        match serde_json::from_slice::<MatrixEvent>(&bytes) {
            Ok(event) => {
                self.handle_late_before(room, &event, arrived).await;
                tracing::debug!(%room, event = ?event.event_id, kind = %event.kind, "handling");
                let handling = self.handle_matrix_event(event);
                crate::metrics::handling_event(arrived, handling).await
            }
            Err(e) => tracing::warn!(%room, "dropped a Matrix event that is not an event: {e}"),
        }
    }
}

impl AppserviceHandler for Arc<MatrixFront> {
    fn wanted(&self, event: &EventHeader) -> bool {
        let wanted = self.concerns_us(event);
        if !wanted {
            crate::metrics::event_not_ours();
        }
        wanted
    }

    fn transaction<'a>(
        &'a self,
        txn_id: &'a str,
        digest: [u8; 32],
        events: Vec<IncomingEvent>,
    ) -> Pin<Box<dyn Future<Output = Result<(), NotNow>> + Send + 'a>> {
        Box::pin(self.record_transaction(txn_id, digest, events))
    }

    fn query_user<'a>(
        &'a self,
        user_id: &'a str,
    ) -> Pin<Box<dyn Future<Output = bool> + Send + 'a>> {
        Box::pin(async move {
            if !self.is_ours(user_id) {
                return false;
            }
            match matrix_sdk::ruma::UserId::parse(user_id) {
                Ok(user) => super::portals::ensure_ghost_registered(self, &user)
                    .await
                    .is_ok(),
                Err(_) => false,
            }
        })
    }
}
