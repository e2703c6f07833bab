//! The one loop every network's login runs, and the one rule for reading while the core
//! is backlogged.
//!
//! A login task: take a turn to connect from the network's [`ConnectPacer`], waiting
//! (commands that arrive meanwhile go to [`Session::offline`]; a logout or the last
//! handle dropped ends the task) -> [`Session::connect`] (one connection, from connect
//! to its end) -> on a loss: log it, reset the backoff if the connection had been
//! online, tell the core `Disconnected` once per outage, sleep the backoff, and again.
//! A network supplies the session: how to connect and drive one connection, and what
//! to do with a command while there is none.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use super::backoff::Backoff;
use super::pacing::ConnectPacer;
use crate::core::{CommandReceiver, EventSink, LoginCommand, LoginHandle, NetworkEvent};

/// How one connection ended.
#[derive(Debug, PartialEq, Eq)]
pub enum End {
    /// The login ends without a word from the driver: the user logged out, the core is
    /// gone, or the session told the core already.
    Stop,
    /// The network refused the login for good (wrong password, unknown account): the
    /// core is told `LoginFailed` and the login ends.
    Refused(String),
    /// The network ended the login and trying again would not help (signed in from
    /// another location): the core is told `Disconnected` without a retry; it ends.
    Ended(String),
    /// Lost, or refused for now: tried again after the backoff. `was_online`: the
    /// connection had logged in (the backoff starts over, and this loss is news).
    Lost { reason: String, was_online: bool },
}

/// One login's connection, as a network drives it.
pub trait Session: Send + 'static {
    /// For logs: "ICQ", "MSN", "mig33".
    const NETWORK: &'static str;

    fn events(&self) -> &EventSink;

    fn commands(&mut self) -> &mut CommandReceiver;

    /// A command while there is no connection (other than `Logout`): kept for the next
    /// one, or answered at once.
    fn offline(&mut self, command: LoginCommand);

    /// One connection, from connecting to its end.
    fn connect(&mut self) -> impl Future<Output = End> + Send;

    /// The login ends (after its last connection): fail what is still waiting.
    fn finish(&mut self) {}
}

/// Starts the task of login `id` (the legacy id, for logs), taking its turns to
/// connect from `pacer` (the network's, shared by its logins); `make` gets the
/// receiving end of its commands.
pub fn start<S: Session>(
    id: &str,
    pacer: Arc<ConnectPacer>,
    make: impl FnOnce(CommandReceiver) -> S,
) -> LoginHandle {
    let (handle, commands) = LoginHandle::channel();
    tokio::spawn(drive(id.to_owned(), pacer, make(commands)));
    handle
}

/// Runs a login until it ends (see the module docs).
pub async fn drive<S: Session>(id: String, pacer: Arc<ConnectPacer>, mut session: S) {
    let mut backoff = Backoff::new();
    let mut told_down = false;
    loop {
        let turn = pacer.reserve();
        if !wait_until(&mut session, turn).await {
            break;
        }
        match session.connect().await {
            End::Stop => break,
            End::Refused(reason) => {
                tracing::info!(login = %id, "{} login refused: {reason}", S::NETWORK);
                session.events().emit(NetworkEvent::LoginFailed { reason });
                break;
            }
            End::Ended(reason) => {
                tracing::info!(login = %id, "{} login ended: {reason}", S::NETWORK);
                session.events().emit(NetworkEvent::Disconnected {
                    reason,
                    will_retry: false,
                });
                break;
            }
            End::Lost { reason, was_online } => {
                tracing::info!(login = %id, %reason, "{} connection lost", S::NETWORK);
                if was_online {
                    backoff.reset();
                    told_down = false;
                }
                if !told_down {
                    told_down = true;
                    session.events().emit(NetworkEvent::Disconnected {
                        reason,
                        will_retry: true,
                    });
                }
                if !wait_until(&mut session, Instant::now() + backoff.next_delay()).await {
                    break;
                }
            }
        }
    }
    session.finish();
    tracing::debug!(login = %id, "{} login task ended", S::NETWORK);
}

/// Sleeps until `at` while keeping the commands that arrive; false when the login ends
/// (a logout, every handle dropped, or the core stopped listening).
async fn wait_until<S: Session>(session: &mut S, at: Instant) -> bool {
    let at = tokio::time::Instant::from_std(at);
    loop {
        tokio::select! {
            () = tokio::time::sleep_until(at) => return !session.events().is_closed(),
            command = session.commands().recv() => match command {
                None | Some(LoginCommand::Logout) => return false,
                Some(command) => session.offline(command),
            },
        }
    }
}

/// Resolves when the socket may be read (`Some`, with `readable`'s answer) or, while
/// the core is backlogged, once it can take more (`None`: look again). A core that
/// cannot keep up so stops the reading: TCP slows the server down, and an ICQ server
/// retransmits what was not acknowledged.
pub async fn readable_when_ready<F>(events: &EventSink, readable: F) -> Option<F::Output>
where
    F: Future,
{
    if events.backlogged() {
        events.ready().await;
        None
    } else {
        Some(readable.await)
    }
}
