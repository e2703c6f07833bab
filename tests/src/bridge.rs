//! Runs the real `retrobridge` binary against the shared Synapse.
//!
//! Synapse reads appservice registrations only at start-up, so a test binary prepares
//! all its bridge "slots" first (each with its own port, bot and ghost namespaces, config
//! and registration written by `retrobridge generate-registration`), then starts Synapse
//! with all of them; each test runs the bridge of its own slot as a child process.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::matrix_user::TestUser;
use crate::synapse::{shared_instance, Synapse};

/// A directory built next to the test binary (`target/<profile>/`).
pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    // target/<profile>/deps/<test binary>
    exe.parent()
        .and_then(Path::parent)
        .expect("target dir")
        .to_path_buf()
}

/// A binary of the workspace; the test command builds them before the tests run.
pub fn workspace_binary(name: &str) -> PathBuf {
    let path = target_dir().join(name);
    assert!(
        path.exists(),
        "{} is missing: build the binaries first (`cargo build --workspace --bins`, as scripts/test.sh does)",
        path.display()
    );
    path
}

/// What a slot's config says beyond the common parts.
#[derive(Clone, Debug, Default)]
pub struct SlotOptions {
    /// YAML for the `networks:` block, indented by four spaces per entry key
    /// (e.g. `"  icq:\n    enabled: true\n    server: 127.0.0.1:4000\n"`). Empty: none.
    pub networks_yaml: String,
    /// `homeserver.request_timeout_seconds` (the bridge's default when `None`).
    pub request_timeout_seconds: Option<u64>,
    /// Every user of the test homeserver may use the bridge (benchmarks with many users).
    pub everyone: bool,
    /// The bridge's `RUST_LOG` (debug for tests when `None`; benchmarks log less).
    pub rust_log: Option<String>,
    /// Enable the metrics listener on a free port ([`BridgeSlot::metrics_url`]).
    pub metrics: bool,
    /// Enable the provisioning API with this shared secret.
    pub provisioning_secret: Option<String>,
    /// The port the homeserver sends transactions to, when not the bridge's own (a proxy
    /// of the test's in between).
    pub transactions_port: Option<u16>,
    /// `appservice.media_link_lifetime_seconds` (the bridge's default when `None`).
    pub media_link_lifetime_seconds: Option<u64>,
}

/// One bridge instance known to Synapse.
#[derive(Debug)]
pub struct BridgeSlot {
    pub index: usize,
    pub dir: PathBuf,
    pub port: u16,
    /// The metrics listener's port, when [`SlotOptions::metrics`] is set.
    pub metrics_port: Option<u16>,
    /// `@s<index>bot:localhost`
    pub bot: String,
    pub hs_token: String,
    options: SlotOptions,
}

impl BridgeSlot {
    /// Localpart of the only user this slot's bridge serves as `user`.
    pub fn user_localpart(&self, name: &str) -> String {
        format!("s{}{}", self.index, name)
    }

    /// The ghost template prefix used by this slot for `network` (e.g. `s1icq_`).
    pub fn ghost_prefix(&self, network: &str) -> String {
        format!("s{}{network}_", self.index)
    }

    fn config_text(&self, homeserver: &str) -> String {
        let i = self.index;
        let timeout = self
            .options
            .request_timeout_seconds
            .map(|t| format!("  request_timeout_seconds: {t}\n"))
            .unwrap_or_default();
        let everyone = if self.options.everyone {
            "  \"localhost\": user\n"
        } else {
            ""
        };
        let metrics = self
            .metrics_port
            .map(|p| format!("metrics:\n  enabled: true\n  listen: 127.0.0.1:{p}\n"))
            .unwrap_or_default();
        let media_lifetime = self
            .options
            .media_link_lifetime_seconds
            .map(|s| format!("  media_link_lifetime_seconds: {s}\n"))
            .unwrap_or_default();
        let provisioning = self
            .options
            .provisioning_secret
            .as_ref()
            .map(|s| format!("provisioning:\n  shared_secret: \"{s}\"\n"))
            .unwrap_or_default();
        format!(
            "homeserver:\n  address: {homeserver}\n  domain: localhost\n{timeout}\
             appservice:\n  address: 127.0.0.1\n  port: {port}\n  url: http://127.0.0.1:{url_port}\n{media_lifetime}  id: slot{i}\n  \
             registration: registration.yaml\n  bot:\n    localpart: s{i}bot\n    displayname: Bridge bot {i}\n\
             database:\n  path: db\n{metrics}{provisioning}\
             permissions:\n{everyone}  \"@s{i}alice:localhost\": user\n  \"@s{i}bob:localhost\": user\n  \"@s{i}admin:localhost\": admin\n\
             networks:\n{networks}\
             logging:\n  level: debug\n",
            port = self.port,
            url_port = self.options.transactions_port.unwrap_or(self.port),
            networks = if self.options.networks_yaml.is_empty() { "  {}\n".to_owned() } else { self.options.networks_yaml.clone() },
        )
        .replace("networks:\n  {}\n", "networks: {}\n")
    }

    fn prepare(index: usize, root: &Path, options: SlotOptions) -> anyhow::Result<BridgeSlot> {
        let dir = root.join(format!("slot{index}"));
        std::fs::create_dir_all(&dir)?;
        let free_port = || -> std::io::Result<u16> {
            Ok(std::net::TcpListener::bind("127.0.0.1:0")?
                .local_addr()?
                .port())
        };
        let port = free_port()?;
        let metrics_port = if options.metrics {
            Some(free_port()?)
        } else {
            None
        };
        let mut slot = BridgeSlot {
            index,
            dir,
            port,
            metrics_port,
            bot: format!("@s{index}bot:localhost"),
            hs_token: String::new(),
            options,
        };
        // The homeserver's address is not known yet; `start` rewrites it.
        std::fs::write(
            slot.dir.join("config.yaml"),
            slot.config_text("http://127.0.0.1:1"),
        )?;
        let out = Command::new(workspace_binary("retrobridge"))
            .args(["generate-registration", "-c"])
            .arg(slot.dir.join("config.yaml"))
            .output()?;
        if !out.status.success() {
            bail!(
                "generate-registration failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let reg: serde_yaml::Value =
            serde_yaml::from_str(&std::fs::read_to_string(slot.registration())?)?;
        slot.hs_token = reg["hs_token"].as_str().context("hs_token")?.to_owned();
        Ok(slot)
    }

    /// A direct chat with the bot, created as Matrix clients do (`trusted_private_chat`
    /// gives the bot the power to remove password messages); waits for the welcome.
    pub async fn management_room(&self, user: &TestUser) -> String {
        let body = serde_json::json!({ "preset": "trusted_private_chat", "is_direct": true, "invite": [self.bot] });
        let created = user
            .request(reqwest::Method::POST, "/createRoom", &[], Some(body))
            .await;
        let room = created.expect("create room")["room_id"]
            .as_str()
            .expect("room id")
            .to_owned();
        let welcome = |e: &serde_json::Value| {
            e["sender"] == self.bot.as_str()
                && e["content"]["body"]
                    .as_str()
                    .is_some_and(|b| b.contains("Commands"))
        };
        if let Err(e) = user
            .wait_for_message(&room, welcome, Duration::from_secs(60))
            .await
        {
            let log = std::fs::read_to_string(self.log_path()).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(30).collect();
            panic!(
                "no welcome from the bot: {e:#}\nbridge log (newest first):\n{}",
                tail.join("\n")
            );
        }
        room
    }

    pub fn registration(&self) -> PathBuf {
        self.dir.join("registration.yaml")
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.join("config.yaml")
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.join("bridge.log")
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The bridge's `/metrics` URL, when this slot enables metrics.
    pub fn metrics_url(&self) -> Option<String> {
        self.metrics_port
            .map(|p| format!("http://127.0.0.1:{p}/metrics"))
    }

    /// A `networks:` entry for this slot: `network` enabled at `server`, with this slot's
    /// ghost template (`s<index><network>_{id}`) and options, each written with its type
    /// (`json!(2)` is a number, `json!("x")` a string), as the network's options expect.
    pub fn network_yaml(
        &self,
        network: &str,
        server: &str,
        options: &[(&str, serde_json::Value)],
    ) -> String {
        let mut out = format!(
            "  {network}:\n    enabled: true\n    server: \"{server}\"\n    ghost_template: \"{}{{id}}\"\n",
            self.ghost_prefix(network)
        );
        if !options.is_empty() {
            out.push_str("    options:\n");
            for (k, v) in options {
                // A JSON scalar is a YAML flow scalar of the same type.
                out.push_str(&format!("      {k}: {v}\n"));
            }
        }
        out
    }

    /// The Matrix user id of a ghost of this slot (`id` already canonical and simple).
    pub fn ghost(&self, network: &str, id: &str) -> String {
        format!("@{}{id}:localhost", self.ghost_prefix(network))
    }

    /// Starts the bridge binary with extra environment variables (e.g. systemd's
    /// `NOTIFY_SOCKET`) and returns at once, without waiting for it to be ready.
    pub fn spawn_with_env(
        &self,
        synapse: &Synapse,
        env: &[(&str, &std::ffi::OsStr)],
    ) -> anyhow::Result<BridgeProcess> {
        self.spawn(&synapse.base_url, None, env)
    }

    fn spawn(
        &self,
        homeserver_url: &str,
        networks_yaml: Option<&str>,
        env: &[(&str, &std::ffi::OsStr)],
    ) -> anyhow::Result<BridgeProcess> {
        let mut text = self.config_text(homeserver_url);
        if let Some(networks) = networks_yaml {
            let start = text.find("networks:").context("networks key")?;
            let end = text.find("logging:").context("logging key")?;
            text.replace_range(start..end, &format!("networks:\n{networks}"));
        }
        std::fs::write(self.config_path(), text)?;
        BridgeProcess::run(
            &self.config_path(),
            &self.log_path(),
            self.options.rust_log.as_deref(),
            env,
        )
    }

    /// Starts the bridge binary and waits until its bot is ready.
    pub fn start(&self, synapse: &Synapse) -> anyhow::Result<BridgeProcess> {
        self.start_with_networks(synapse, None)
    }

    /// Like [`start`](Self::start), with the `networks:` block replaced (e.g. to point at a
    /// simulator started by the test). Keep the same networks enabled as at preparation:
    /// the registration's namespaces were generated from those.
    pub fn start_with_networks(
        &self,
        synapse: &Synapse,
        networks_yaml: Option<&str>,
    ) -> anyhow::Result<BridgeProcess> {
        self.start_via(&synapse.base_url, networks_yaml)
    }

    /// Like [`start_with_networks`](Self::start_with_networks), with the bridge talking to
    /// the homeserver at `homeserver_url` (a recording proxy in front of Synapse, say).
    pub fn start_via(
        &self,
        homeserver_url: &str,
        networks_yaml: Option<&str>,
    ) -> anyhow::Result<BridgeProcess> {
        let mut process = self.spawn(homeserver_url, networks_yaml, &[])?;
        let start_len = std::fs::metadata(self.log_path())
            .map(|m| m.len())
            .unwrap_or(0);
        let deadline = Instant::now() + Duration::from_secs(60);
        // The bridge's own line: at trace level libraries say "ready" (or "already") too.
        let ready = format!("bot {} ready", self.bot);
        loop {
            let log = std::fs::read(self.log_path()).unwrap_or_default();
            let new =
                String::from_utf8_lossy(&log[(start_len as usize).min(log.len())..]).into_owned();
            if new.contains(&ready) {
                return Ok(process);
            }
            if let Some(status) = process
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                bail!("retrobridge exited with {status} before it was ready:\n{new}");
            }
            if Instant::now() > deadline {
                bail!("retrobridge was not ready within 60 s:\n{new}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// A running bridge; killed (SIGKILL) when dropped.
pub struct BridgeProcess {
    child: Option<Child>,
    log: PathBuf,
}

impl BridgeProcess {
    /// `retrobridge run -c <config>`, its output appended to `log`. The config's log level
    /// applies unless `rust_log` is given (the bridge's own filter keeps the noisy
    /// libraries quiet). Returns at once.
    pub fn run(
        config: &Path,
        log: &Path,
        rust_log: Option<&str>,
        env: &[(&str, &std::ffi::OsStr)],
    ) -> anyhow::Result<BridgeProcess> {
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)?;
        let mut command = Command::new(workspace_binary("retrobridge"));
        command.env_remove("RUST_LOG");
        if let Some(filter) = rust_log {
            command.env("RUST_LOG", filter);
        }
        let child = command
            .args(["run", "-c"])
            .arg(config)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(log_file.try_clone()?)
            .stderr(log_file)
            .spawn()
            .context("starting retrobridge")?;
        Ok(BridgeProcess {
            child: Some(child),
            log: log.to_owned(),
        })
    }

    /// Starts `retrobridge run -c <config>` with its output appended to `log` (the
    /// config's `logging.level` applies: `RUST_LOG` is removed) and returns at once.
    pub fn spawn(config: &Path, log: &Path) -> anyhow::Result<BridgeProcess> {
        BridgeProcess::run(config, log, None, &[])
    }

    /// Whether the process has ended (by itself or after being stopped).
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        match self.child.as_mut() {
            Some(child) => child.try_wait().ok().flatten(),
            None => None,
        }
    }

    /// The bridge's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// `kill -9`: no chance to flush or say goodbye.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM and wait for a clean exit; returns whether it exited successfully.
    pub fn terminate(&mut self) -> bool {
        let Some(mut child) = self.child.take() else {
            return false;
        };
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = child.kill();
        false
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the bridge exits by itself; `None` if it still runs after `timeout`
    /// (it is then left running: dropping the process kills it).
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let child = self.child.as_mut()?;
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

impl Drop for BridgeProcess {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A bridge slot with a Synapse of its own, for tests that stop, restart or freeze the
/// homeserver. `name` keeps the folders of several such tests apart. Blocking: call it
/// from a multi-threaded test runtime inside `tokio::task::block_in_place`.
pub fn private_environment(
    name: &str,
    options: SlotOptions,
) -> anyhow::Result<(Synapse, BridgeSlot)> {
    private_environment_with(name, options, |_| Ok(()))
}

/// [`private_environment`], with a chance to change the slot's files (its registration,
/// say) before Synapse reads them.
pub fn private_environment_with(
    name: &str,
    options: SlotOptions,
    edit: impl FnOnce(&BridgeSlot) -> anyhow::Result<()>,
) -> anyhow::Result<(Synapse, BridgeSlot)> {
    let root = std::env::temp_dir().join(format!("retrobridge-e2e-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let slot = BridgeSlot::prepare(0, &root, options)?;
    edit(&slot)?;
    let synapse = Synapse::start(&[slot.registration()])?;
    Ok((synapse, slot))
}

/// The test binary's Synapse and bridge slots, prepared on first use.
pub fn environment(
    slots: usize,
    options: fn(usize) -> SlotOptions,
) -> (&'static Synapse, &'static [BridgeSlot]) {
    static SLOTS: OnceLock<Vec<BridgeSlot>> = OnceLock::new();
    let prepared = SLOTS.get_or_init(|| {
        let root = std::env::temp_dir().join(format!("retrobridge-e2e-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        (0..slots)
            .map(|i| BridgeSlot::prepare(i, &root, options(i)).expect("preparing a bridge slot"))
            .collect()
    });
    let synapse = shared_instance(|| prepared.iter().map(BridgeSlot::registration).collect());
    (synapse, prepared)
}
