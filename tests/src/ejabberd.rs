//! A real ejabberd for end-to-end tests: Debian's package (installed by
//! `scripts/setup-xmpp-servers.sh` when missing), started in the foreground by `ejabberdctl`
//! with a config, Mnesia spool, logs and Erlang node name of its own under a temp folder,
//! every port on loopback.
//!
//! - One virtual host, `localhost`, plain-text c2s (no certificate, no STARTTLS), no s2s.
//! - The external components the caller lists, on one `ejabberd_service` listener.
//! - No epmd: the Erlang distribution listens on a fixed loopback port (`ERL_DIST_PORT`),
//!   which `ejabberdctl` (accounts, stop) reaches directly. Two test instances differ in
//!   node name and ports, so they never meet.
//! - Run as root, `ejabberdctl` switches to the `ejabberd` user with `su`, which starts
//!   a session of its own: the Erlang VM is not in the wrapper's process group, so it is
//!   stopped through the pid file ejabberd writes (`EJABBERD_PID_PATH`). The folder is
//!   the `ejabberd` user's for that reason too.
//! - Accounts are made with `ejabberdctl register` (about 1 s: a second VM calls the
//!   running node).

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::xmpp_server::{self, Component, XmppServer, HOST};

/// ejabberd starts in about 2 s here; the margin is for two busy cores. Override with
/// `RETROBRIDGE_EJABBERD_START_TIMEOUT` (seconds).
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// Keeps ejabberd from outliving the test binary: polls the test binary's pid, then stops
/// the VM (by its pid file) and removes the folder. Exits as soon as ejabberd ends by
/// itself or is stopped by a test (leaving the folder for a restart). Args: $1 folder,
/// $2 test binary pid, $3 non-empty to keep the folder. `ejabberdctl`'s pid goes to
/// `$1/run.pid`.
const WRAPPER: &str = r#"
ejabberdctl --config-dir "$1" --config "$1/ejabberd.yml" --ctl-config "$1/ejabberdctl.cfg" \
    --logs "$1/logs" --spool "$1/spool" foreground >>"$1/stdout.log" 2>&1 </dev/null &
cpid=$!
echo "$cpid" >"$1/run.pid"
while kill -0 "$2" 2>/dev/null; do
    kill -0 "$cpid" 2>/dev/null || exit 1
    sleep 0.5
done
vm=$(cat "$1/ejabberd.pid" 2>/dev/null)
[ -n "$vm" ] && kill "$vm" 2>/dev/null
for _ in 1 2 3 4 5 6 7 8 9 10; do
    kill -0 "$cpid" 2>/dev/null || break
    sleep 0.5
done
[ -n "$vm" ] && kill -9 "$vm" 2>/dev/null
kill -9 "$cpid" 2>/dev/null
wait
[ -n "$3" ] || rm -rf "$1"
"#;

/// What a failure shows the end of, in its folder.
const LOGS: [&str; 3] = ["stdout.log", "logs/ejabberd.log", "logs/error.log"];

/// A running ejabberd. Dropping it kills the VM and removes its folder.
pub struct Ejabberd {
    /// Client-to-server port (plain TCP, no TLS) on 127.0.0.1.
    pub c2s_port: u16,
    /// The external components' port on 127.0.0.1.
    pub component_port: u16,
    pub components: Vec<Component>,
    /// Temp folder holding `ejabberd.yml`, `ejabberdctl.cfg`, `inetrc`, `spool/`,
    /// `logs/`, `ejabberd.pid` and `stdout.log`.
    pub dir: PathBuf,
    wrapper: Child,
}

impl Ejabberd {
    /// Installs ejabberd if needed, writes its config with `components`, starts it and
    /// waits until its ports accept connections.
    /// The components must share one secret (see [`config_text`]).
    pub fn start(components: &[Component]) -> anyhow::Result<Ejabberd> {
        Ejabberd::start_with(components, false)
    }

    /// Like [`start`](Self::start), but the components listed under `hosts:` of the
    /// listener, as many ejabberd guides show and as the bridge must not be set up: every
    /// connection then serves every listed domain.
    pub fn start_listing_hosts(components: &[Component]) -> anyhow::Result<Ejabberd> {
        Ejabberd::start_with(components, true)
    }

    fn start_with(components: &[Component], list_hosts: bool) -> anyhow::Result<Ejabberd> {
        let started = Instant::now();
        if components.windows(2).any(|w| w[0].secret != w[1].secret) {
            bail!(
                "the ejabberd of the tests takes components that share one secret: {components:?}"
            );
        }
        ensure_installed()?;
        let dir = xmpp_server::temp_dir("ejabberd")?;
        for sub in ["spool", "logs"] {
            std::fs::create_dir_all(dir.join(sub))?;
        }
        let [c2s_port, component_port, dist_port] = xmpp_server::free_ports()?;
        std::fs::write(
            dir.join("ejabberd.yml"),
            config_text(c2s_port, component_port, components, list_hosts),
        )?;
        std::fs::write(dir.join("ejabberdctl.cfg"), ctl_config(&dir, dist_port))?;
        // Erlang's resolver config: `localhost` from here, never DNS.
        std::fs::write(
            dir.join("inetrc"),
            "{lookup,[\"file\",\"native\"]}.\n{host,{127,0,0,1}, [\"localhost\"]}.\n",
        )?;
        give_to_ejabberd(&dir)?;
        let wrapper = spawn_wrapper(&dir)?;
        let mut ejabberd = Ejabberd {
            c2s_port,
            component_port,
            components: components.to_vec(),
            dir,
            wrapper,
        };
        ejabberd.wait_ready(started)?;
        Ok(ejabberd)
    }

    /// `ejabberdctl <args>` against this node; its output, or an error with it.
    fn ctl(&self, args: &[&str]) -> anyhow::Result<String> {
        let out = Command::new("ejabberdctl")
            .arg("--config-dir")
            .arg(&self.dir)
            .arg("--ctl-config")
            .arg(self.dir.join("ejabberdctl.cfg"))
            .arg("--logs")
            .arg(self.dir.join("logs"))
            .arg("--spool")
            .arg(self.dir.join("spool"))
            .args(args)
            .stdin(Stdio::null())
            .output()
            .context("running ejabberdctl")?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if !out.status.success() {
            bail!("ejabberdctl {} failed ({}): {text}", args[0], out.status);
        }
        Ok(text)
    }

    /// The Erlang VM's pid, from the file ejabberd writes once it runs.
    fn vm_pid(&self) -> Option<u32> {
        std::fs::read_to_string(self.dir.join("ejabberd.pid"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    fn wait_ready(&mut self, started: Instant) -> anyhow::Result<()> {
        let mut ports = vec![self.c2s_port];
        if !self.components.is_empty() {
            ports.push(self.component_port);
        }
        let startup = xmpp_server::Startup {
            name: "ejabberd",
            dir: &self.dir,
            logs: &LOGS,
            ports,
            started,
            timeout: xmpp_server::start_timeout(
                "RETROBRIDGE_EJABBERD_START_TIMEOUT",
                START_TIMEOUT,
            ),
        };
        let pid_file = self.dir.join("ejabberd.pid");
        // Ready once the VM wrote its pid: `stop` needs it.
        startup.wait(&mut self.wrapper, || None, || pid_file.exists())
    }
}

impl XmppServer for Ejabberd {
    fn name(&self) -> &'static str {
        "ejabberd"
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

    fn register(&self, user: &str, password: &str) -> anyhow::Result<()> {
        match self.ctl(&["register", user, HOST, password]) {
            Ok(_) => Ok(()),
            Err(e) if format!("{e:#}").contains("already registered") => self
                .ctl(&["change_password", user, HOST, password])
                .map(drop),
            Err(e) => Err(e),
        }
    }

    /// SIGTERM to the VM (Erlang stops cleanly on it), SIGKILL after 10 s.
    fn stop(&mut self) -> anyhow::Result<()> {
        if self.wrapper.try_wait()?.is_some() {
            return Ok(());
        }
        let vm = self.vm_pid().context("ejabberd wrote no pid file")?;
        xmpp_server::stop_wrapper(&mut self.wrapper, |name| xmpp_server::signal_pid(vm, name))?;
        // A pid file left behind would name a dead (or reused) pid after a restart.
        let _ = std::fs::remove_file(self.dir.join("ejabberd.pid"));
        Ok(())
    }

    fn restart(&mut self) -> anyhow::Result<()> {
        self.stop()?;
        self.wrapper = spawn_wrapper(&self.dir)?;
        self.wait_ready(Instant::now())
    }

    fn log_tail(&self, n: usize) -> String {
        crate::logs::tails(&self.dir, &LOGS, n)
    }
}

impl Drop for Ejabberd {
    fn drop(&mut self) {
        if let Some(vm) = self.vm_pid() {
            let _ = Command::new("kill")
                .args(["-KILL", &vm.to_string()])
                .stderr(Stdio::null())
                .status();
        }
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.wrapper.id())])
            .stderr(Stdio::null())
            .status();
        let _ = self.wrapper.wait();
        if keep_folder() {
            eprintln!("ejabberd's folder kept: {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// `RETROBRIDGE_KEEP_EJABBERD=1` keeps each ejabberd's folder after the test.
fn keep_folder() -> bool {
    std::env::var_os("RETROBRIDGE_KEEP_EJABBERD").is_some_and(|v| !v.is_empty() && v != "0")
}

/// The config: loopback only, plain-text c2s, no s2s, the listed components. Passwords
/// are kept plain so that SCRAM and PLAIN both work without a hashing round.
fn config_text(
    c2s_port: u16,
    component_port: u16,
    components: &[Component],
    list_hosts: bool,
) -> String {
    let mut text = format!(
        "# Written by the end-to-end harness (tests/src/ejabberd.rs).\n\
         hosts:\n  - {HOST}\n\
         loglevel: info\n\
         hide_sensitive_log_data: true\n\
         certfiles: []\n\
         auth_method: internal\n\
         auth_password_format: plain\n\
         # No federation: nothing leaves the machine.\n\
         s2s_access: none\n\
         listen:\n\
         \x20 -\n\
         \x20   port: {c2s_port}\n\
         \x20   ip: \"127.0.0.1\"\n\
         \x20   module: ejabberd_c2s\n\
         \x20   starttls: false\n"
    );
    // One password for the listener, no `hosts:`: a component listed under `hosts:`
    // is served by every connection of that listener (each registers a route to all the
    // listed domains), so the stanzas of icq.localhost came out on msn.localhost's
    // connection. With the listener's password alone, each connection serves the domain
    // it named.
    if let Some(first) = components.first() {
        text += &format!(
            "  -\n    port: {component_port}\n    ip: \"127.0.0.1\"\n    module: ejabberd_service\n    password: {}\n",
            yaml_string(&first.secret)
        );
        if list_hosts {
            text += "    hosts:\n";
            for c in components {
                text += &format!(
                    "      {}:\n        password: {}\n",
                    yaml_string(&c.domain),
                    yaml_string(&c.secret)
                );
            }
        }
    }
    text += "modules:\n\
             \x20 mod_disco: {}\n\
             \x20 mod_roster: {}\n\
             \x20 mod_offline: {}\n\
             \x20 mod_ping: {}\n\
             \x20 mod_time: {}\n\
             \x20 mod_version: {}\n\
             \x20 mod_vcard: {}\n";
    text
}

/// `ejabberdctl`'s settings: this node's name, its distribution on a loopback port
/// without epmd, its pid file. (The resolver config is `<config dir>/inetrc`.)
fn ctl_config(dir: &Path, dist_port: u16) -> String {
    static NODES: AtomicU32 = AtomicU32::new(0);
    let n = NODES.fetch_add(1, Ordering::Relaxed);
    format!(
        "ERLANG_NODE=rbtest{pid}n{n}@localhost\n\
         INET_DIST_INTERFACE=127.0.0.1\n\
         ERL_DIST_PORT={dist_port}\n\
         EJABBERD_PID_PATH={dir}/ejabberd.pid\n",
        pid = std::process::id(),
        dir = dir.display(),
    )
}

/// A double-quoted YAML string.
fn yaml_string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

/// The folder becomes the `ejabberd` user's: `ejabberdctl` runs the VM as that user when
/// started by root.
fn give_to_ejabberd(dir: &Path) -> anyhow::Result<()> {
    let status = Command::new("chown")
        .args(["-R", "ejabberd:ejabberd"])
        .arg(dir)
        .status()
        .context("running chown")?;
    if !status.success() {
        bail!(
            "could not give {} to the ejabberd user ({status}): the ejabberd tests run as root \
             (ejabberdctl runs the server as the ejabberd user)",
            dir.display()
        );
    }
    Ok(())
}

fn spawn_wrapper(dir: &Path) -> anyhow::Result<Child> {
    Command::new("sh")
        .arg("-c")
        .arg(WRAPPER)
        .arg("ejabberd-wrapper")
        .arg(dir)
        .arg(std::process::id().to_string())
        .arg(if keep_folder() { "keep" } else { "" })
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        // Own process group: a Ctrl-C aimed at the test run must not take the wrapper
        // down before it stops the VM.
        .process_group(0)
        .spawn()
        .context("spawning the ejabberd wrapper")
}

/// `ejabberdctl` on the PATH, after running the setup script if it is missing (once per
/// test binary).
fn ensure_installed() -> anyhow::Result<()> {
    static INSTALLED: OnceLock<Result<(), String>> = OnceLock::new();
    INSTALLED
        .get_or_init(|| {
            xmpp_server::install("ejabberd", &["ejabberdctl"]).map_err(|e| format!("{e:#}"))
        })
        .clone()
        .map_err(anyhow::Error::msg)
}
