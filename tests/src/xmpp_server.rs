//! The XMPP servers the end-to-end tests run the XMPP front against: [`Prosody`] and
//! [`Ejabberd`], both Debian's packages, each started on free loopback ports with a
//! config and data of its own. A test written against [`XmppServer`] runs on either;
//! [`ServerKind::start`] picks one.
//!
//! What differs between them stays in their modules (config syntax, how accounts are
//! made, how the process is run and stopped); what a test may do with a server is here.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

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
