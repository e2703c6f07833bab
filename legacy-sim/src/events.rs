//! The event queue of the scriptable clients: waiting for one kind of event keeps the
//! others for later, so a test can wait for things in any order.

use std::collections::VecDeque;
use std::fmt::Debug;
use std::time::Duration;

use tokio::sync::mpsc;

#[derive(Debug)]
pub struct EventQueue<E> {
    rx: mpsc::UnboundedReceiver<E>,
    backlog: VecDeque<E>,
}

impl<E: Debug> EventQueue<E> {
    pub fn new(rx: mpsc::UnboundedReceiver<E>) -> Self {
        EventQueue {
            rx,
            backlog: VecDeque::new(),
        }
    }

    /// The next event, or `None` after `timeout` or once the sender is gone.
    pub async fn next(&mut self, timeout: Duration) -> Option<E> {
        if let Some(e) = self.backlog.pop_front() {
            return Some(e);
        }
        tokio::time::timeout(timeout, self.rx.recv())
            .await
            .ok()
            .flatten()
    }

    /// The first event (earlier unmatched ones included) satisfying `want` within
    /// `timeout`; the others stay queued.
    pub async fn wait_for(
        &mut self,
        timeout: Duration,
        mut want: impl FnMut(&E) -> bool,
    ) -> Result<E, WaitError> {
        if let Some(i) = self.backlog.iter().position(&mut want) {
            return Ok(self.backlog.remove(i).expect("index from position"));
        }
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some(e)) if want(&e) => return Ok(e),
                Ok(Some(e)) => self.backlog.push_back(e),
                Ok(None) => return Err(WaitError::Closed(format!("{:?}", self.backlog))),
                Err(_) => return Err(WaitError::TimedOut(timeout, format!("{:?}", self.backlog))),
            }
        }
    }
}

/// Why a wait ended without the event; each carries what was seen meanwhile.
#[derive(Debug, thiserror::Error)]
pub enum WaitError {
    #[error("connection closed while waiting (seen: {0})")]
    Closed(String),
    #[error("timed out after {0:?} (seen: {1})")]
    TimedOut(Duration, String),
}
