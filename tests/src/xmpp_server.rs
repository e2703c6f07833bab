//! The XMPP servers the end-to-end tests run the XMPP front against: [`Prosody`] and
//! [`Ejabberd`], both Debian's packages, each started on free loopback ports with a
//! config and data of its own. A test written against [`XmppServer`] runs on either;
//! [`ServerKind::start`] picks one.
//!
//! What differs between them stays in their modules (config syntax, how accounts are
//! made, how the process is run and stopped); what a test may do with a server is here.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};

use crate::ejabberd::Ejabberd;
use crate::prosody::Prosody;

/// The only virtual host of every test server: accounts are `user@localhost`.
pub const HOST: &str = "localhost";

/// An external component (XEP-0114) declared in the server's config.
#[derive(Clone, Debug)]
pub struct Component {
    /// e.g. `icq.localhost`
    pub domain: String,
    /// The shared secret of the `<handshake>`.
    pub secret: String,
}

impl Component {
    pub fn new(domain: &str, secret: &str) -> Component {
        Component {
            domain: domain.to_owned(),
            secret: secret.to_owned(),
        }
    }
}

/// A running XMPP server of the tests: one host ([`HOST`]), plain-text c2s and the
/// component port on 127.0.0.1, no federation.
pub trait XmppServer: Send + Sync {
    /// "Prosody" or "ejabberd", for messages.
    fn name(&self) -> &'static str;
    /// `127.0.0.1:<c2s port>`
    fn c2s_address(&self) -> String;
    /// `127.0.0.1:<component port>`
    fn component_address(&self) -> String;
    /// The components its config declares.
    fn components(&self) -> &[Component];
    /// Creates the account `user@localhost` (or sets its password, if it exists).
    fn register(&self, user: &str, password: &str) -> anyhow::Result<()>;
    /// Stops the server and keeps its data: every connection is closed.
    fn stop(&mut self) -> anyhow::Result<()>;
    /// Starts it again with the same config, data and ports (stopping it first if it
    /// runs). Accounts, rosters and stored offline messages survive.
    fn restart(&mut self) -> anyhow::Result<()>;
    /// The last `n` lines of its output and logs.
    fn log_tail(&self, n: usize) -> String;

    /// `user@localhost`
    fn jid(&self, user: &str) -> String {
        format!("{user}@{HOST}")
    }
}

/// Which server a test runs against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerKind {
    Prosody,
    Ejabberd,
}

impl ServerKind {
    /// Installs the server if needed, starts it with `components` and waits until it
    /// accepts connections.
    pub fn start(self, components: &[Component]) -> anyhow::Result<Box<dyn XmppServer>> {
        Ok(match self {
            ServerKind::Prosody => Box::new(Prosody::start(components)?),
            ServerKind::Ejabberd => Box::new(Ejabberd::start(components)?),
        })
    }
}

/// Runs `scripts/setup-xmpp-servers.sh <server>` when one of `programs` is missing from
/// the PATH, and checks they are there afterwards. The script's output goes to the test's
/// stderr, so an install (or why it failed) is visible.
pub(crate) fn install(server: &str, programs: &[&str]) -> anyhow::Result<()> {
    let present = || {
        programs.iter().all(|program| {
            Command::new("sh")
                .args(["-c", &format!("command -v {program}")])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
    };
    if present() {
        return Ok(());
    }
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .context("tests crate has no parent dir")?;
    let script = repo.join("scripts/setup-xmpp-servers.sh");
    let status = Command::new("bash")
        .arg(&script)
        .arg(server)
        .stdout(Stdio::inherit())
        .status()
        .with_context(|| format!("running {}", script.display()))?;
    if !status.success() || !present() {
        bail!(
            "{server} is not installed and {} could not install it ({status}); see its output above",
            script.display()
        );
    }
    Ok(())
}

/// A new folder `retrobridge-<name>-<pid>-<time>` under the temp folder.
pub(crate) fn temp_dir(name: &str) -> anyhow::Result<PathBuf> {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    let dir = std::env::temp_dir().join(format!(
        "retrobridge-{name}-{}-{nanos:x}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

/// `N` distinct ports the OS reports free (all held while picking, so they differ);
/// the tiny race until the server binds them is acceptable for tests.
pub(crate) fn free_ports<const N: usize>() -> anyhow::Result<[u16; N]> {
    let listeners = (0..N)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<Vec<_>, _>>()?;
    let mut ports = [0; N];
    for (port, listener) in ports.iter_mut().zip(&listeners) {
        *port = listener.local_addr()?.port();
    }
    Ok(ports)
}

/// Whether something accepts TCP connections on this loopback port.
pub(crate) fn accepts(port: u16) -> bool {
    TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(1)).is_ok()
}

/// `RETROBRIDGE_<SERVER>_START_TIMEOUT` (seconds) when set, else `default`.
pub(crate) fn start_timeout(variable: &str, default: Duration) -> Duration {
    std::env::var(variable)
        .ok()
        .and_then(|s| s.parse().ok())
        .map_or(default, Duration::from_secs)
}

/// How a server started by a wrapper script is waited for.
pub(crate) struct Startup<'a> {
    /// "Prosody", "ejabberd".
    pub name: &'a str,
    /// Its folder: config, data, logs.
    pub dir: &'a Path,
    /// The files a failure shows the end of, relative to `dir`.
    pub logs: &'a [&'a str],
    pub ports: Vec<u16>,
    pub started: Instant,
    pub timeout: Duration,
}

impl Startup<'_> {
    /// Waits until the server listens on every port and `ready` says so too; fails with
    /// the logs' tails when the wrapper exits, `problem` names one, or time is up.
    pub(crate) fn wait(
        &self,
        wrapper: &mut Child,
        problem: impl Fn() -> Option<String>,
        ready: impl Fn() -> bool,
    ) -> anyhow::Result<()> {
        let (name, ports) = (self.name, &self.ports);
        let tail = || crate::logs::tails(self.dir, self.logs, 40);
        let deadline = self.started + self.timeout;
        loop {
            if let Some(status) = wrapper.try_wait()? {
                bail!(
                    "{name} exited during startup ({status}; folder {})\n{}",
                    self.dir.display(),
                    tail()
                );
            }
            if let Some(problem) = problem() {
                bail!("{name}: {problem}\n{}", tail());
            }
            if ports.iter().all(|p| accepts(*p)) && ready() {
                eprintln!(
                    "{name} ready on ports {ports:?} after {:.1?} (dir {})",
                    self.started.elapsed(),
                    self.dir.display()
                );
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "{name}'s ports {ports:?} not open after {:?}\n{}",
                    self.timeout,
                    tail()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Stops a server: `signal("TERM")`, then `signal("KILL")` if its wrapper has not ended
/// after 10 s; returns once the wrapper has ended.
pub(crate) fn stop_wrapper(
    wrapper: &mut Child,
    signal: impl Fn(&str) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    if wrapper.try_wait()?.is_some() {
        return Ok(());
    }
    signal("TERM")?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while wrapper.try_wait()?.is_none() {
        if Instant::now() > deadline {
            let _ = signal("KILL");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

/// `kill -<signal> <pid>`.
pub(crate) fn signal_pid(pid: u32, signal: &str) -> anyhow::Result<()> {
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .stderr(Stdio::null())
        .status()?;
    anyhow::ensure!(status.success(), "kill -{signal} {pid} failed");
    Ok(())
}
