//! Runs the real `retrobridge` binary as an XMPP-only bridge (no homeserver) against a
//! test [`XmppServer`] (Prosody or ejabberd): one component per enabled network
//! (`icq.localhost`, ...) and the rooms' component (`rooms.localhost`), all with
//! [`SECRET`].
//!
//! ```ignore
//! let server = ServerKind::Prosody.start(&components(&["icq"]))?;
//! let mut bridge = XmppBridge::configure("dm", &*server, &network_yaml("icq", &addr, &[]))?;
//! bridge.start(&mut alice).await?; // spawned, and every component answers disco
//! bridge.terminate();              // SIGTERM, clean exit
//! bridge.start(&mut alice).await?; // same config and database
//! ```
//!
//! The folder (config, database, `bridge.log`) is removed when the bridge is dropped,
//! unless the test is failing (a panic is under way) or `RETROBRIDGE_KEEP_BRIDGE=1`: then
//! its path is printed.

use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use tokio_xmpp::parsers::jid::Jid;

use crate::bridge::BridgeProcess;
use crate::xmpp_server::{Component, XmppServer, HOST};
use crate::xmpp_user::{IqError, XmppUser};

/// The components' shared secret.
pub const SECRET: &str = "retrobridge-test-component-secret";

/// How long [`XmppBridge::start`] waits for every component to answer.
pub const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A network's gateway domain: `icq.localhost`.
pub fn gateway(network: &str) -> String {
    format!("{network}.{HOST}")
}

/// The rooms' component: `rooms.localhost`.
pub fn rooms_domain() -> String {
    format!("rooms.{HOST}")
}

/// The components an XMPP bridge with these networks needs: one per network and
/// the rooms' one.
pub fn components(networks: &[&str]) -> Vec<Component> {
    networks
        .iter()
        .map(|n| gateway(n))
        .chain([rooms_domain()])
        .map(|domain| Component::new(&domain, SECRET))
        .collect()
}

/// A `networks:` entry: `network` enabled at `server`, with its options, each written
/// with its JSON type (`json!(2)` a number, `json!("x")` a string).
pub fn network_yaml(network: &str, server: &str, options: &[(&str, serde_json::Value)]) -> String {
    let mut out = format!("  {network}:\n    enabled: true\n    server: \"{server}\"\n");
    if !options.is_empty() {
        out.push_str("    options:\n");
        for (k, v) in options {
            // A JSON scalar is a YAML flow scalar of the same type.
            out.push_str(&format!("      {k}: {v}\n"));
        }
    }
    out
}

/// An XMPP-only bridge: its folder, config and (while it runs) process.
pub struct XmppBridge {
    /// Holds `config.yaml`, the database `db/` and `bridge.log`.
    pub dir: PathBuf,
    /// The component domains it serves (what [`XmppBridge::wait_ready`] checks).
    pub domains: Vec<String>,
    /// The loopback port of the upload host the bridge fetches shared files from
    /// (`xmpp.file_hosts`): a test serves files there.
    pub upload_port: u16,
    process: Option<BridgeProcess>,
}

impl XmppBridge {
    /// Writes the config for `server` (domain, component port, [`SECRET`]; every user of
    /// `localhost` may use the bridge) with these `networks:` entries, in a new folder
    /// named after `name`. Does not start the bridge.
    pub fn configure(
        name: &str,
        server: &dyn XmppServer,
        networks_yaml: &str,
    ) -> anyhow::Result<XmppBridge> {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        let dir = std::env::temp_dir().join(format!(
            "retrobridge-xmpp-{}-{name}-{nanos:x}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let networks = if networks_yaml.is_empty() {
            " {}\n".to_owned()
        } else {
            format!("\n{networks_yaml}")
        };
        // The file links' listener: files contacts send are served there; and a port
        // for a test's stand-in upload service (XEP-0363), the one host listed.
        let [files_port, upload_port] = crate::xmpp_server::free_ports::<2>()?;
        let config = format!(
            "xmpp:\n  domain: {HOST}\n  component_address: \"{address}\"\n  secret: \"{SECRET}\"\n\
             \x20 file_links:\n    port: {files_port}\n    public_url: \"http://127.0.0.1:{files_port}\"\n\
             \x20 file_hosts: [\"127.0.0.1:{upload_port}\"]\n\
             database:\n  path: db\n\
             permissions:\n  \"xmpp:{HOST}\": user\n\
             networks:{networks}\
             logging:\n  level: debug\n",
            address = server.component_address(),
        );
        std::fs::write(dir.join("config.yaml"), config)?;
        let domains = server
            .components()
            .iter()
            .map(|c| c.domain.clone())
            .collect();
        Ok(XmppBridge {
            dir,
            domains,
            upload_port,
            process: None,
        })
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.join("config.yaml")
    }

    /// The running bridge's process id.
    pub fn pid(&self) -> Option<u32> {
        self.process.as_ref().and_then(BridgeProcess::pid)
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.join("bridge.log")
    }

    /// Starts the binary and returns at once.
    pub fn spawn(&mut self) -> anyhow::Result<()> {
        if self.process.is_some() {
            bail!("the bridge is already running");
        }
        self.process = Some(BridgeProcess::spawn(&self.config_path(), &self.log_path())?);
        Ok(())
    }

    /// Starts the binary with `RUST_LOG` set to `filter` (instead of the config's level)
    /// and returns at once.
    pub fn spawn_with_rust_log(&mut self, filter: &str) -> anyhow::Result<()> {
        if self.process.is_some() {
            bail!("the bridge is already running");
        }
        let process = BridgeProcess::run(&self.config_path(), &self.log_path(), Some(filter), &[])?;
        self.process = Some(process);
        Ok(())
    }

    /// Starts the binary and waits until every component answers `user`'s disco#info.
    pub async fn start(&mut self, user: &mut XmppUser) -> anyhow::Result<()> {
        self.spawn()?;
        self.wait_ready(user, START_TIMEOUT).await
    }

    /// Waits until every component of the bridge answers a disco#info from `user`
    /// (for a component not connected, the server answers with an error), or
    /// fails with the bridge's log tail when it exits or the time is up.
    pub async fn wait_ready(
        &mut self,
        user: &mut XmppUser,
        timeout: Duration,
    ) -> anyhow::Result<()> {
        let started = Instant::now();
        let deadline = started + timeout;
        for domain in self.domains.clone() {
            let to: Jid = Jid::new(&domain).context("component JID")?;
            loop {
                let last = match user.disco_info(&to, None).await {
                    Ok(info) if !info.identities.is_empty() => break,
                    Ok(info) => format!("an answer without identity: {info:?}"),
                    Err(e) => match e.downcast_ref::<IqError>() {
                        Some(e) => format!("{e}"),
                        None => return Err(e.context(format!("disco#info of {domain}"))),
                    },
                };
                if let Some(status) = self.process.as_mut().and_then(BridgeProcess::exited) {
                    self.process = None;
                    bail!(
                        "retrobridge exited ({status}) before {domain} answered\n{}",
                        self.log_tail(40)
                    );
                }
                if Instant::now() > deadline {
                    bail!(
                        "{domain} did not answer disco#info within {timeout:?} (last: {last})\n{}",
                        self.log_tail(40)
                    );
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        eprintln!(
            "bridge ready ({}) after {:.1?} (dir {})",
            self.domains.join(", "),
            started.elapsed(),
            self.dir.display()
        );
        Ok(())
    }

    /// SIGTERM, and a wait for the exit; whether it exited successfully.
    pub fn terminate(&mut self) -> bool {
        self.process.take().is_some_and(|mut p| p.terminate())
    }

    /// `kill -9`.
    pub fn kill9(&mut self) {
        if let Some(mut p) = self.process.take() {
            p.kill9();
        }
    }

    /// The whole log (all runs).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// The last `n` lines of the log.
    pub fn log_tail(&self, n: usize) -> String {
        let title = format!("bridge log {}", self.log_path().display());
        crate::logs::tail(&title, &self.log(), n)
    }
}

impl Drop for XmppBridge {
    fn drop(&mut self) {
        self.kill9();
        let keep =
            std::env::var_os("RETROBRIDGE_KEEP_BRIDGE").is_some_and(|v| !v.is_empty() && v != "0");
        if keep || std::thread::panicking() {
            eprintln!("bridge folder kept: {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
