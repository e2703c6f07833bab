//! systemd service notifications (`sd_notify(3)`): `READY=1` once the bridge is fully
//! started, `STOPPING=1` when it begins to shut down, `WATCHDOG=1` keep-alives when the
//! unit has `WatchdogSec=`. Each is one datagram to the unix socket `$NOTIFY_SOCKET`
//! names (a path, or `@name` in the abstract namespace); nothing at all happens when the
//! variable is unset, as when the bridge is not run by systemd.
//!
//! Written here rather than taken from the `sd-notify` crate: that one cannot reach an
//! abstract-namespace socket, and what is needed fits in a few lines of std.

use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::Duration;

/// Where notifications go, read once from the environment at start-up.
#[derive(Clone, Debug, Default)]
pub struct Notifier {
    socket: Option<SocketAddr>,
    watchdog: Option<Duration>,
}

impl Notifier {
    /// From `NOTIFY_SOCKET`, `WATCHDOG_USEC` and `WATCHDOG_PID` (as systemd sets them).
    pub fn from_env() -> Notifier {
        let watchdog_usec = std::env::var("WATCHDOG_USEC").ok();
        let watchdog_pid = std::env::var("WATCHDOG_PID").ok();
        Notifier::from_vars(
            std::env::var_os("NOTIFY_SOCKET").as_deref(),
            watchdog_usec.as_deref(),
            watchdog_pid.as_deref(),
            std::process::id(),
        )
    }

    /// The same from given values: `pid` is this process, which the watchdog must be
    /// meant for when `WATCHDOG_PID` is set.
    pub fn from_vars(
        notify_socket: Option<&OsStr>,
        watchdog_usec: Option<&str>,
        watchdog_pid: Option<&str>,
        pid: u32,
    ) -> Notifier {
        let socket = notify_socket
            .filter(|s| !s.is_empty())
            .and_then(|s| match socket_addr(s) {
                Ok(addr) => Some(addr),
                Err(e) => {
                    tracing::warn!("NOTIFY_SOCKET {s:?} is not usable, not notifying systemd: {e}");
                    None
                }
            });
        let for_us = watchdog_pid.is_none_or(|p| p.trim().parse() == Ok(pid));
        let watchdog = watchdog_usec
            .and_then(|u| u.trim().parse::<u64>().ok())
            .filter(|&u| u > 0 && for_us && socket.is_some())
            .map(Duration::from_micros);
        Notifier { socket, watchdog }
    }

    /// Notifications go to `socket` (a path, or `@name` for the abstract namespace);
    /// watchdog pings every half of `watchdog` when it is set.
    pub fn to(socket: &OsStr, watchdog: Option<Duration>) -> io::Result<Notifier> {
        Ok(Notifier {
            socket: Some(socket_addr(socket)?),
            watchdog,
        })
    }

    /// Whether systemd asked for notifications.
    pub fn enabled(&self) -> bool {
        self.socket.is_some()
    }

    /// How often to send `WATCHDOG=1`: half the watchdog time, as `sd_watchdog_enabled(3)`
    /// advises, so one late ping is not yet a failure.
    pub fn watchdog_interval(&self) -> Option<Duration> {
        self.watchdog.map(|w| w / 2)
    }

    /// Sends `state` (e.g. `READY=1`); `Ok` without doing anything when disabled.
    pub fn send(&self, state: &str) -> io::Result<()> {
        let Some(addr) = &self.socket else {
            return Ok(());
        };
        let socket = UnixDatagram::unbound()?;
        // A full queue blocks the sender; systemd reads at once, but a manager that does
        // not must not hold a runtime thread for long.
        socket.set_write_timeout(Some(Duration::from_secs(1)))?;
        socket.send_to_addr(state.as_bytes(), addr)?;
        Ok(())
    }

    /// Start-up is complete: systemd considers the unit started.
    pub fn ready(&self) {
        self.send_or_warn("READY=1");
    }

    /// Shutting down: systemd shows the unit as deactivating.
    pub fn stopping(&self) {
        self.send_or_warn("STOPPING=1");
    }

    /// Pings the watchdog for as long as the runtime runs its tasks; returns at once when
    /// the unit has no watchdog. A runtime too stuck to run this task misses pings and
    /// systemd restarts the bridge.
    pub async fn watchdog(self) {
        let Some(every) = self.watchdog_interval() else {
            return;
        };
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            self.send_or_warn("WATCHDOG=1");
        }
    }

    fn send_or_warn(&self, state: &str) {
        if let Err(e) = self.send(state) {
            tracing::warn!("could not notify systemd of {state}: {e}");
        }
    }
}

/// `/path` or `@abstract-name`, as systemd writes `NOTIFY_SOCKET`.
fn socket_addr(value: &OsStr) -> io::Result<SocketAddr> {
    let bytes = value.as_bytes();
    match bytes.first() {
        Some(b'@') => abstract_addr(&bytes[1..]),
        Some(b'/') => SocketAddr::from_pathname(value),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "neither an absolute path nor @name",
        )),
    }
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn abstract_addr(name: &[u8]) -> io::Result<SocketAddr> {
    #[cfg(target_os = "android")]
    use std::os::android::net::SocketAddrExt;
    #[cfg(target_os = "linux")]
    use std::os::linux::net::SocketAddrExt;
    SocketAddr::from_abstract_name(name)
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn abstract_addr(_name: &[u8]) -> io::Result<SocketAddr> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "abstract unix sockets exist only on Linux",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsString;

    /// A socket playing systemd's part: what the bridge sent, one datagram each.
    struct Manager {
        socket: tokio::net::UnixDatagram,
    }

    impl Manager {
        fn new(socket: UnixDatagram) -> Manager {
            socket.set_nonblocking(true).unwrap();
            Manager {
                socket: tokio::net::UnixDatagram::from_std(socket).unwrap(),
            }
        }

        async fn recv(&self) -> String {
            let mut buf = [0u8; 512];
            let n = tokio::time::timeout(Duration::from_secs(5), self.socket.recv(&mut buf))
                .await
                .expect("a notification within 5 s")
                .unwrap();
            String::from_utf8(buf[..n].to_vec()).unwrap()
        }

        fn nothing_waiting(&self) -> bool {
            let mut buf = [0u8; 512];
            matches!(self.socket.try_recv(&mut buf), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
        }
    }

    /// Start-up, a few watchdog periods, shutdown: what `app::run` does, in its order.
    /// Runs on tokio's paused clock, so the periods are exact.
    async fn run_like_the_bridge(notifier: Notifier, manager: &Manager) {
        let watchdog = tokio::spawn(notifier.clone().watchdog());
        let mut seen = Vec::new();
        // The watchdog pings from the start (systemd may arm it before READY).
        seen.push(manager.recv().await);
        notifier.ready();
        let started = tokio::time::Instant::now();
        while seen.iter().filter(|s| *s == "WATCHDOG=1").count() < 4 {
            seen.push(manager.recv().await);
        }
        let elapsed = started.elapsed();
        watchdog.abort();
        notifier.stopping();
        seen.push(manager.recv().await);

        assert_eq!(seen.first().map(String::as_str), Some("WATCHDOG=1"));
        assert_eq!(seen[1], "READY=1", "{seen:?}");
        assert_eq!(
            seen[2..],
            ["WATCHDOG=1", "WATCHDOG=1", "WATCHDOG=1", "STOPPING=1"],
            "{seen:?}"
        );
        // Three more pings at half of the 200 ms watchdog time.
        assert_eq!(elapsed, Duration::from_millis(300));
        assert!(manager.nothing_waiting());
    }

    #[tokio::test(start_paused = true)]
    async fn ready_watchdog_and_stopping_reach_a_path_socket_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify.sock");
        let manager = Manager::new(UnixDatagram::bind(&path).unwrap());
        let notifier = Notifier::from_vars(
            Some(path.as_os_str()),
            Some("200000"),
            Some(&std::process::id().to_string()),
            std::process::id(),
        );
        assert!(notifier.enabled());
        assert_eq!(
            notifier.watchdog_interval(),
            Some(Duration::from_millis(100))
        );
        run_like_the_bridge(notifier, &manager).await;
    }

    #[tokio::test(start_paused = true)]
    async fn ready_watchdog_and_stopping_reach_an_abstract_socket_in_order() {
        use std::os::linux::net::SocketAddrExt;
        let name = format!("retrobridge-notify-test-{}", std::process::id());
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let manager = Manager::new(UnixDatagram::bind_addr(&addr).unwrap());
        let notifier = Notifier::from_vars(
            Some(OsStr::new(&format!("@{name}"))),
            Some("200000"),
            None,
            std::process::id(),
        );
        run_like_the_bridge(notifier, &manager).await;
    }

    #[tokio::test]
    async fn nothing_is_sent_without_notify_socket() {
        let notifier = Notifier::from_vars(None, Some("200000"), None, 1);
        assert!(!notifier.enabled());
        assert_eq!(notifier.watchdog_interval(), None);
        notifier.send("READY=1").unwrap();
        notifier.ready();
        notifier.stopping();
        // Returns at once: there is nothing to ping.
        tokio::time::timeout(Duration::from_secs(1), notifier.watchdog())
            .await
            .expect("no watchdog loop without a socket");
        let empty = Notifier::from_vars(Some(OsStr::new("")), None, None, 1);
        assert!(!empty.enabled());
    }

    #[test]
    fn watchdog_only_when_meant_for_this_process_and_positive() {
        let sock = OsString::from("/run/notify");
        let at = |usec: Option<&str>, pid: Option<&str>| {
            Notifier::from_vars(Some(&sock), usec, pid, 42).watchdog_interval()
        };
        assert_eq!(at(Some("30000000"), None), Some(Duration::from_secs(15)));
        assert_eq!(
            at(Some("30000000"), Some("42")),
            Some(Duration::from_secs(15))
        );
        assert_eq!(at(Some("30000000"), Some("41")), None, "another process's");
        assert_eq!(at(Some("0"), None), None);
        assert_eq!(at(Some("soon"), None), None);
        assert_eq!(at(None, None), None);
    }

    #[test]
    fn socket_names_systemd_does_not_write_are_refused() {
        assert!(Notifier::to(OsStr::new("relative/notify"), None).is_err());
        assert!(!Notifier::from_vars(Some(OsStr::new("notify")), None, None, 1).enabled());
        assert!(Notifier::to(OsStr::new("@name"), None).is_ok());
        assert!(Notifier::to(OsStr::new("/run/systemd/notify"), None).is_ok());
    }

    #[test]
    fn a_missing_socket_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let notifier = Notifier::to(dir.path().join("gone.sock").as_os_str(), None).unwrap();
        assert!(notifier.send("READY=1").is_err());
        notifier.ready(); // logs, does not panic
    }
}
