//! A real Prosody XMPP server for end-to-end tests: Debian's package (installed by
//! `scripts/setup-xmpp-servers.sh` when missing), started in the foreground on free loopback
//! ports with a config, data folder, pid file and log of its own under a temp folder.
//!
//! - One virtual host, `localhost`, with plain-text c2s on loopback (no TLS: the
//!   certificates folder is empty) and no s2s.
//! - The external components (XEP-0114) the caller lists, each `Component "<domain>"`
//!   with its `component_secret`, on one component port. A MUC domain served by the
//!   bridge (`conference.localhost`, say) is one more entry.
//! - Accounts are made with `prosodyctl register` ([`Prosody::register`]): it writes the
//!   account file directly, works with the server running or stopped, takes ~0.1 s, and
//!   runs as root because the config says `run_as_root = true`. (In-band registration
//!   would need `allow_registration` and a client round trip for each account.)
//!
//! Like [`crate::synapse`], starting is synchronous (std only), a failed start reports
//! Prosody's log tail, and a shell wrapper kills Prosody once the test binary is gone.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::xmpp_server::{self, XmppServer};
pub use crate::xmpp_server::{Component, HOST};

/// Prosody starts in well under a second; the margin is for two busy cores. Override
/// with `RETROBRIDGE_PROSODY_START_TIMEOUT` (seconds).
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// Keeps Prosody from outliving the test binary (Rust's test harness has no global
/// teardown): polls the test binary's pid, then stops Prosody and removes the folder.
/// Exits as soon as Prosody ends by itself or is stopped by a test (leaving the folder
/// for a restart). Args: $1 config, $2 folder, $3 test binary pid, $4 non-empty to keep
/// the folder. Prosody's pid goes to
/// `$2/run.pid` at once (its own `prosody.pid` appears only once it has started).
const WRAPPER: &str = r#"
prosody --config "$1" -F >>"$2/stdout.log" 2>&1 </dev/null &
ppid=$!
echo "$ppid" >"$2/run.pid"
while kill -0 "$3" 2>/dev/null; do
    kill -0 "$ppid" 2>/dev/null || exit 1
    sleep 0.5
done
kill "$ppid" 2>/dev/null
for _ in 1 2 3 4 5 6 7 8 9 10; do
    kill -0 "$ppid" 2>/dev/null || break
    sleep 0.5
done
kill -9 "$ppid" 2>/dev/null
wait
[ -n "$4" ] || rm -rf "$2"
"#;

/// A running Prosody. Dropping it kills the process and removes its folder; a
/// `'static` instance (see [`shared_instance`]) is cleaned up by the wrapper instead.
pub struct Prosody {
    /// Always [`HOST`].
    pub host: String,
    /// Client-to-server port (plain TCP, no TLS) on 127.0.0.1.
    pub c2s_port: u16,
    /// The external components' port on 127.0.0.1.
    pub component_port: u16,
    pub components: Vec<Component>,
    /// Temp folder holding `prosody.cfg.lua`, `data/`, `certs/`, `prosody.pid`,
    /// `prosody.log` and `stdout.log`.
    pub dir: PathBuf,
    config: PathBuf,
    wrapper: Child,
}

impl Prosody {
    /// Installs Prosody if needed, writes its config with `components`, starts it and
    /// waits until its ports accept connections.
    pub fn start(components: &[Component]) -> anyhow::Result<Prosody> {
        let started = Instant::now();
        ensure_installed()?;
        let dir = xmpp_server::temp_dir("prosody")?;
        std::fs::create_dir_all(dir.join("data"))?;
        // Empty: Prosody logs an error when the folder is missing, and finds no
        // certificate in it, so it offers no TLS.
        std::fs::create_dir_all(dir.join("certs"))?;
        let [c2s_port, component_port] = xmpp_server::free_ports()?;
        let config = dir.join("prosody.cfg.lua");
        std::fs::write(
            &config,
            config_text(&dir, c2s_port, component_port, components),
        )
        .with_context(|| format!("writing {}", config.display()))?;
        let wrapper = spawn_wrapper(&config, &dir)?;
        let mut prosody = Prosody {
            host: HOST.to_owned(),
            c2s_port,
            component_port,
            components: components.to_vec(),
            dir,
            config,
            wrapper,
        };
        prosody.wait_ready(started)?;
        Ok(prosody)
    }

    /// The config file (for tests that want to show or check it).
    pub fn config_path(&self) -> &Path {
        &self.config
    }

    /// Prosody's process id (for signals), while it runs.
    pub fn pid(&self) -> anyhow::Result<u32> {
        let text = std::fs::read_to_string(self.dir.join("run.pid")).context("reading run.pid")?;
        text.trim().parse().context("run.pid")
    }

    fn signal(&self, signal: &str) -> anyhow::Result<()> {
        xmpp_server::signal_pid(self.pid()?, signal)
    }

    /// Freezes Prosody (SIGSTOP): connections stay open, nothing is answered.
    pub fn pause(&self) -> anyhow::Result<()> {
        self.signal("STOP")
    }

    /// Lets a frozen Prosody run again (SIGCONT).
    pub fn resume(&self) -> anyhow::Result<()> {
        self.signal("CONT")
    }

    fn wait_ready(&mut self, started: Instant) -> anyhow::Result<()> {
        // Prosody opens the component port only when it has a component to serve.
        let mut ports = vec![self.c2s_port];
        if !self.components.is_empty() {
            ports.push(self.component_port);
        }
        let startup = xmpp_server::Startup {
            name: "Prosody",
            dir: &self.dir,
            logs: &["stdout.log", "prosody.log"],
            ports,
            started,
            timeout: xmpp_server::start_timeout("RETROBRIDGE_PROSODY_START_TIMEOUT", START_TIMEOUT),
        };
        let log = self.dir.join("prosody.log");
        startup.wait(
            &mut self.wrapper,
            // A port it could not bind is logged, and Prosody goes on without it.
            || {
                let log = std::fs::read_to_string(&log).unwrap_or_default();
                log.contains("Failed to open server port")
                    .then(|| "it could not listen on its ports".to_owned())
            },
            || true,
        )
    }
}

impl XmppServer for Prosody {
    fn name(&self) -> &'static str {
        "Prosody"
    }

    fn c2s_address(&self) -> String {
        format!("127.0.0.1:{}", self.c2s_port)
    }

    fn component_address(&self) -> String {
        format!("127.0.0.1:{}", self.component_port)
    }

    fn components(&self) -> &[Component] {
        &self.components
    }

    /// `prosodyctl register` writes the account file directly (server running or not).
    fn register(&self, user: &str, password: &str) -> anyhow::Result<()> {
        let out = Command::new("prosodyctl")
            .arg("--config")
            .arg(&self.config)
            .args(["register", user, &self.host, password])
            .stdin(Stdio::null())
            .output()
            .context("running prosodyctl register")?;
        if !out.status.success() {
            bail!(
                "prosodyctl register {user} {} failed ({}): {}{}",
                self.host,
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(())
    }

    /// SIGTERM, SIGKILL after 10 s.
    fn stop(&mut self) -> anyhow::Result<()> {
        let pid = match self.wrapper.try_wait()? {
            Some(_) => return Ok(()),
            None => self.pid()?,
        };
        let _ = xmpp_server::signal_pid(pid, "CONT");
        xmpp_server::stop_wrapper(&mut self.wrapper, |name| xmpp_server::signal_pid(pid, name))
    }

    fn restart(&mut self) -> anyhow::Result<()> {
        self.stop()?;
        self.wrapper = spawn_wrapper(&self.config, &self.dir)?;
        self.wait_ready(Instant::now())
    }

    fn log_tail(&self, n: usize) -> String {
        crate::logs::tails(&self.dir, &["stdout.log", "prosody.log"], n)
    }
}

impl Drop for Prosody {
    fn drop(&mut self) {
        // The wrapper leads its own process group, which Prosody is in.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.wrapper.id())])
            .stderr(Stdio::null())
            .status();
        let _ = self.wrapper.wait();
        if keep_folder() {
            eprintln!("Prosody's folder kept: {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// `RETROBRIDGE_KEEP_PROSODY=1` keeps each Prosody's folder (config, data, logs) after
/// the test, to read what happened.
fn keep_folder() -> bool {
    std::env::var_os("RETROBRIDGE_KEEP_PROSODY").is_some_and(|v| !v.is_empty() && v != "0")
}

/// One Prosody per test binary, started on first use with the components the first
/// caller lists. A failed start is remembered, so every test fails with its error.
#[track_caller]
pub fn shared_instance(components: impl FnOnce() -> Vec<Component>) -> &'static Prosody {
    static INSTANCE: OnceLock<Result<Prosody, String>> = OnceLock::new();
    let result =
        INSTANCE.get_or_init(|| Prosody::start(&components()).map_err(|e| format!("{e:#}")));
    match result {
        Ok(prosody) => prosody,
        Err(e) => panic!("starting Prosody failed: {e}"),
    }
}

/// The config: loopback only, plain-text c2s, no s2s, the listed components.
fn config_text(dir: &Path, c2s_port: u16, component_port: u16, components: &[Component]) -> String {
    let path = |name: &str| lua_string(&dir.join(name).to_string_lossy());
    let mut text = format!(
        "-- Written by the end-to-end harness (tests/src/prosody.rs).\n\
         -- Prosody 0.12 refuses to run as root without this (CI runs as root).\n\
         run_as_root = true\n\
         pidfile = {pidfile}\n\
         data_path = {data}\n\
         -- Empty: no TLS (and no error about a missing folder).\n\
         certificates = {certs}\n\
         log = {{ {{ levels = {{ min = \"debug\" }}, to = \"file\", filename = {log} }} }}\n\
         interfaces = {{ \"127.0.0.1\" }}\n\
         local_interfaces = {{ \"127.0.0.1\" }}\n\
         c2s_ports = {{ {c2s_port} }}\n\
         c2s_direct_tls_ports = {{ }}\n\
         legacy_ssl_ports = {{ }}\n\
         component_interfaces = {{ \"127.0.0.1\" }}\n\
         component_ports = {{ {component_port} }}\n\
         -- No federation: nothing leaves the machine.\n\
         modules_disabled = {{ \"s2s\"; \"s2s_auth_certs\" }}\n\
         modules_enabled = {{ \"roster\"; \"saslauth\"; \"disco\"; \"ping\"; \"time\"; \"version\"; \"offline\"; \"vcard\" }}\n\
         -- Plain-text authentication on loopback, without TLS.\n\
         c2s_require_encryption = false\n\
         allow_unencrypted_plain_auth = true\n\
         authentication = \"internal_hashed\"\n\
         storage = \"internal\"\n\
         \n\
         VirtualHost \"{HOST}\"\n",
        pidfile = path("prosody.pid"),
        data = path("data"),
        certs = path("certs"),
        log = path("prosody.log"),
    );
    for component in components {
        text += &format!(
            "\nComponent {}\n    component_secret = {}\n",
            lua_string(&component.domain),
            lua_string(&component.secret)
        );
    }
    text
}

/// A double-quoted Lua string literal.
fn lua_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn spawn_wrapper(config: &Path, dir: &Path) -> anyhow::Result<Child> {
    Command::new("sh")
        .arg("-c")
        .arg(WRAPPER)
        .arg("prosody-wrapper")
        .arg(config)
        .arg(dir)
        .arg(std::process::id().to_string())
        .arg(if keep_folder() { "keep" } else { "" })
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        // Own process group: a Ctrl-C aimed at the test run must not take the wrapper
        // down before it cleans up, and Drop kills wrapper and Prosody together.
        .process_group(0)
        .spawn()
        .context("spawning the prosody wrapper")
}

/// `prosody` and `prosodyctl` on the PATH, after running the setup script if either is
/// missing (once per test binary).
fn ensure_installed() -> anyhow::Result<()> {
    static INSTALLED: OnceLock<Result<(), String>> = OnceLock::new();
    INSTALLED
        .get_or_init(|| {
            xmpp_server::install("prosody", &["prosody", "prosodyctl"])
                .map_err(|e| format!("{e:#}"))
        })
        .clone()
        .map_err(anyhow::Error::msg)
}
