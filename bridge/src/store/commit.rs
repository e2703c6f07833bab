//! Group commit: many writers wait for one `fsync`.
//!
//! sled keeps writes in memory until it is flushed. Everything that tells the outside
//! world "I have it" (an appservice transaction's 200, a legacy ACK) must wait until the
//! write is on disk, but one flush per message makes the disk and sled's thread pool the
//! bottleneck. Writers therefore ask this committer for durability: one thread flushes
//! the database for every request made before the flush began, so a burst of N requests
//! costs one or two flushes instead of N.
//!
//! Marks that only save repeated work after a crash (an event handled) need not be on
//! disk at once: [`Committer::later`] numbers such a write without waking anyone, so it
//! rides on the next flush somebody needs anyway (in a burst, the next transaction's),
//! and the thread flushes it by itself after [`LATER`] when nobody did.

use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::{Duration, Instant};

use tokio::sync::watch;

/// How long a write asked for with [`Committer::later`] may wait for a flush.
pub(super) const LATER: Duration = Duration::from_millis(100);

/// What the committer thread and the writers share.
pub(super) struct Committer {
    state: Mutex<State>,
    wake: Condvar,
    /// The number of the newest request covered by the last finished flush, and that
    /// flush's error if it failed.
    done: watch::Sender<(u64, Option<String>)>,
}

#[derive(Default)]
struct State {
    /// Numbers given out so far (each request or later-write gets the next one).
    requested: u64,
    /// The newest number somebody is waiting for (flushed at once).
    wanted: u64,
    /// When the oldest write not yet covered was numbered by [`Committer::later`].
    later_since: Option<Instant>,
    /// The database is gone: the thread ends.
    closed: bool,
}

impl Committer {
    /// Starts the committer thread for `db`. The thread holds only a weak reference, so
    /// the database closes when the last [`super::Store`] is dropped (see [`Self::close`]).
    pub(super) fn start(db: Weak<sled::Db>) -> std::io::Result<Arc<Committer>> {
        let committer = Arc::new(Committer {
            state: Mutex::default(),
            wake: Condvar::new(),
            done: watch::Sender::new((0, None)),
        });
        let shared = committer.clone();
        std::thread::Builder::new()
            .name("store-commit".into())
            .spawn(move || shared.run(db))?;
        Ok(committer)
    }

    fn run(&self, db: Weak<sled::Db>) {
        let mut flushed = 0;
        loop {
            let target = {
                let mut state = self.state.lock().expect("commit state");
                loop {
                    if state.closed {
                        return;
                    }
                    if state.wanted > flushed {
                        break;
                    }
                    match state.later_since {
                        Some(since) if state.requested > flushed => {
                            let left = LATER.saturating_sub(since.elapsed());
                            if left.is_zero() {
                                break;
                            }
                            state = self.wake.wait_timeout(state, left).expect("commit state").0;
                        }
                        _ => state = self.wake.wait(state).expect("commit state"),
                    }
                }
                state.later_since = None;
                state.requested
            };
            // Every write numbered up to `target` was made before this flush started, so
            // this flush covers it.
            let error = match db.upgrade() {
                Some(db) => db.flush().err().map(|e| e.to_string()),
                None => return,
            };
            flushed = target;
            self.done.send_replace((target, error));
        }
    }

    /// Asks for a flush and returns the request's number (nobody has to wait for it).
    pub(super) fn request(&self) -> u64 {
        let mut state = self.state.lock().expect("commit state");
        state.requested += 1;
        state.wanted = state.requested;
        self.wake.notify_one();
        state.requested
    }

    /// Numbers the writes made so far for a flush within [`LATER`], without asking for
    /// one now; [`Self::settle`] makes sure of it sooner.
    pub(super) fn later(&self) -> u64 {
        let mut state = self.state.lock().expect("commit state");
        state.requested += 1;
        if state.later_since.is_none() {
            state.later_since = Some(Instant::now());
            // The thread starts counting down.
            self.wake.notify_one();
        }
        state.requested
    }

    /// Waits until everything written before this call is on disk.
    pub(super) async fn wait(&self) -> Result<(), String> {
        let mut done = self.done.subscribe();
        let ticket = self.request();
        let result = done.wait_for(|(n, _)| *n >= ticket).await;
        match result {
            Ok(d) => match &d.1 {
                None => Ok(()),
                Some(e) => Err(e.clone()),
            },
            Err(_) => Err("the database is closed".into()),
        }
    }

    /// Waits until the writes numbered `ticket` (by [`Self::later`]) are on disk: at once
    /// when a flush since covered them, else with a flush of its own.
    pub(super) async fn settle(&self, ticket: u64) -> Result<(), String> {
        if matches!(&*self.done.borrow(), (n, None) if *n >= ticket) {
            return Ok(());
        }
        self.wait().await
    }

    /// Ends the thread (the database is being dropped).
    pub(super) fn close(&self) {
        self.state.lock().expect("commit state").closed = true;
        self.wake.notify_one();
    }

    /// The number of the newest write on disk (tests).
    #[cfg(test)]
    pub(super) fn flushed(&self) -> u64 {
        self.done.borrow().0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn committer() -> (Arc<sled::Db>, Arc<Committer>) {
        let db = Arc::new(sled::Config::new().temporary(true).open().expect("sled"));
        let committer = Committer::start(Arc::downgrade(&db)).expect("thread");
        (db, committer)
    }

    /// A write numbered for later reaches the disk by itself, and one that a flush
    /// somebody needed has covered costs no flush of its own.
    #[tokio::test]
    async fn later_writes_ride_on_the_next_flush() {
        let (_db, committer) = committer();
        let alone = committer.later();
        let deadline = Instant::now() + Duration::from_secs(10);
        while committer.flushed() < alone {
            assert!(Instant::now() < deadline, "a later write was never flushed");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }

        let carried = committer.later();
        committer.wait().await.expect("flush");
        let flushed = committer.flushed();
        assert!(flushed >= carried);
        committer.settle(carried).await.expect("settled");
        assert_eq!(
            committer.flushed(),
            flushed,
            "no second flush for a covered write"
        );

        let uncovered = committer.later();
        committer.settle(uncovered).await.expect("settled");
        assert!(committer.flushed() >= uncovered);
        committer.close();
    }
}
