//! Group commit: many writers wait for one `fsync`.
//!
//! sled keeps writes in memory until it is flushed. Everything that tells the outside
//! world "I have it" (an appservice transaction's 200, a legacy ACK) must wait until the
//! write is on disk, but one flush per message makes the disk and sled's thread pool the
//! bottleneck. Writers therefore ask this committer for durability: one thread flushes
//! the database for every request made before the flush began, so a burst of N requests
//! costs one or two flushes instead of N.

use std::sync::{Arc, Condvar, Mutex, Weak};

use tokio::sync::watch;

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
    /// Requests made so far (each gets the next number).
    requested: u64,
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
                while state.requested == flushed && !state.closed {
                    state = self.wake.wait(state).expect("commit state");
                }
                if state.closed {
                    return;
                }
                state.requested
            };
            // Every request numbered up to `target` was made (after its writes) before
            // this flush started, so this flush covers it.
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
        self.wake.notify_one();
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

    /// Ends the thread (the database is being dropped).
    pub(super) fn close(&self) {
        self.state.lock().expect("commit state").closed = true;
        self.wake.notify_one();
    }
}
