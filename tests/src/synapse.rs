//! A real Synapse homeserver for end-to-end tests, installed by
//! `scripts/setup-synapse.sh` into a private venv and started on a free
//! loopback port with SQLite and (effectively) no rate limits.
//!
//! `Synapse::start` is deliberately synchronous (std only): it is called from
//! `OnceLock` initialisers inside a running current-thread tokio runtime, where
//! neither blocking on nor creating another runtime is possible.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, Context};
use hmac::{Hmac, Mac};
use serde_json::json;
use serde_yaml::{Mapping, Value as Yaml};
use sha1::Sha1;

use crate::matrix_user::{check_status, TestUser};

const SERVER_NAME: &str = "localhost";
/// Startup takes ~5 s on an idle machine but was measured at 38 s on two
/// cores busy compiling; override with `RETROBRIDGE_SYNAPSE_START_TIMEOUT` (secs).
const START_TIMEOUT: Duration = Duration::from_secs(120);

/// Keeps Synapse from outliving the test binary. Rust's test harness has no
/// global teardown (statics are never dropped), so this shell wrapper polls
/// the test binary's pid and kills Synapse once the binary is gone, then
/// removes the temp dir. It exits early if Synapse dies on its own, which
/// `start` notices via `try_wait` (the log is still there to report).
/// Args: $1 python, $2 config, $3 dir, $4 test binary pid. Synapse's pid goes to
/// `$3/synapse.pid` (for tests that stop, restart or freeze it); when Synapse ends on its
/// own (or is stopped by a test) the wrapper exits and leaves the folder for a restart.
const WRAPPER: &str = r#"
"$1" -m synapse.app.homeserver --config-path "$2" >>"$3/stdout.log" 2>&1 </dev/null &
spid=$!
echo "$spid" >"$3/synapse.pid"
while kill -0 "$4" 2>/dev/null; do
    kill -0 "$spid" 2>/dev/null || exit 1
    sleep 0.5
done
kill "$spid" 2>/dev/null
for _ in 1 2 3 4 5 6 7 8 9 10; do
    kill -0 "$spid" 2>/dev/null || break
    sleep 0.5
done
kill -9 "$spid" 2>/dev/null
wait
rm -rf "$3"
"#;

/// A running Synapse. Dropping it kills the process; a `'static` instance
/// (see [`shared_instance`]) is cleaned up by the wrapper instead.
pub struct Synapse {
    /// e.g. `http://127.0.0.1:41234`
    pub base_url: String,
    /// Always `localhost`: user ids look like `@alice:localhost`.
    pub server_name: String,
    pub port: u16,
    /// Temp dir holding config, database and `homeserver.log`.
    pub dir: PathBuf,
    pub registration_shared_secret: String,
    python: PathBuf,
    config: PathBuf,
    wrapper: Child,
}

impl Synapse {
    /// Installs Synapse if needed, then starts it with the given appservice
    /// registration files and waits until `/health` answers `OK`.
    pub fn start(registration_files: &[PathBuf]) -> anyhow::Result<Synapse> {
        let started = Instant::now();
        let python = ensure_installed()?;
        let dir = make_temp_dir()?;
        let port = free_port()?;
        let secret = unique_token("secret");
        let config = dir.join("homeserver.yaml");

        let out = Command::new(&python)
            .args(["-m", "synapse.app.homeserver", "--server-name", SERVER_NAME])
            .arg("--config-path")
            .arg(&config)
            .args(["--generate-config", "--report-stats=no"])
            .current_dir(&dir)
            .output()
            .context("running synapse --generate-config")?;
        if !out.status.success() {
            bail!(
                "synapse --generate-config failed ({}):\n{}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        rewrite_config(&config, &dir, port, &secret, registration_files)?;

        let wrapper = spawn_wrapper(&python, &config, &dir)?;
        let mut synapse = Synapse {
            base_url: format!("http://127.0.0.1:{port}"),
            server_name: SERVER_NAME.to_owned(),
            port,
            dir,
            registration_shared_secret: secret,
            python,
            config,
            wrapper,
        };
        synapse.wait_healthy(started)?;
        Ok(synapse)
    }

    /// Synapse's process id (for signals).
    pub fn pid(&self) -> anyhow::Result<u32> {
        let text =
            std::fs::read_to_string(self.dir.join("synapse.pid")).context("reading synapse.pid")?;
        text.trim().parse().context("synapse.pid")
    }

    fn signal(&self, signal: &str) -> anyhow::Result<()> {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid()?.to_string())
            .status()?;
        anyhow::ensure!(status.success(), "kill -{signal} failed");
        Ok(())
    }

    /// Freezes Synapse (SIGSTOP): it accepts connections but answers nothing.
    pub fn pause(&self) -> anyhow::Result<()> {
        self.signal("STOP")
    }

    /// Lets a frozen Synapse run again (SIGCONT).
    pub fn resume(&self) -> anyhow::Result<()> {
        self.signal("CONT")
    }

    /// Stops Synapse (SIGTERM, then SIGKILL after 30 s) and keeps its database.
    pub fn stop(&mut self) -> anyhow::Result<()> {
        self.signal("TERM")?;
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.wrapper.try_wait()?.is_none() {
            if Instant::now() > deadline {
                let _ = self.signal("KILL");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(())
    }

    /// Starts a stopped Synapse again on the same database and port.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.wrapper = spawn_wrapper(&self.python, &self.config, &self.dir)?;
        self.wait_healthy(Instant::now())
    }

    fn wait_healthy(&mut self, started: Instant) -> anyhow::Result<()> {
        let timeout = std::env::var("RETROBRIDGE_SYNAPSE_START_TIMEOUT")
            .ok()
            .and_then(|s| s.parse().ok())
            .map_or(START_TIMEOUT, Duration::from_secs);
        let deadline = started + timeout;
        loop {
            if let Some(status) = self.wrapper.try_wait()? {
                bail!(
                    "Synapse exited during startup ({status})\n{}",
                    self.log_tail(40)
                );
            }
            if health_ok(self.port) {
                eprintln!(
                    "Synapse ready at {} after {:.1?} (dir {})",
                    self.base_url,
                    started.elapsed(),
                    self.dir.display()
                );
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "Synapse not healthy after {timeout:?}\n{}",
                    self.log_tail(40)
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Last `n` lines of Synapse's stdout/stderr and of its log file.
    pub fn log_tail(&self, n: usize) -> String {
        crate::logs::tails(&self.dir, &["stdout.log", "homeserver.log"], n)
    }

    /// `@localpart:localhost`
    pub fn user_id(&self, localpart: &str) -> String {
        format!("@{localpart}:{}", self.server_name)
    }

    /// Registers a user through the shared-secret admin API and logs it in.
    pub async fn register_user(
        &self,
        localpart: &str,
        password: &str,
        admin: bool,
    ) -> anyhow::Result<TestUser> {
        let client = reqwest::Client::new();
        let url = format!("{}/_synapse/admin/v1/register", self.base_url);
        let resp = check_status(client.get(&url).send().await?).await?;
        let nonce = resp["nonce"].as_str().context("no nonce")?.to_owned();

        let mut mac = Hmac::<Sha1>::new_from_slice(self.registration_shared_secret.as_bytes())?;
        let kind = if admin { "admin" } else { "notadmin" };
        for (i, part) in [nonce.as_str(), localpart, password, kind]
            .iter()
            .enumerate()
        {
            if i > 0 {
                mac.update(b"\0");
            }
            mac.update(part.as_bytes());
        }
        let body = json!({
            "nonce": nonce,
            "username": localpart,
            "password": password,
            "admin": admin,
            "mac": hex::encode(mac.finalize().into_bytes()),
        });
        let resp = check_status(client.post(&url).json(&body).send().await?)
            .await
            .with_context(|| format!("registering {localpart}"))?;
        let user_id = resp["user_id"].as_str().context("no user_id")?;
        let token = resp["access_token"].as_str().context("no access_token")?;
        Ok(TestUser::new(&self.base_url, user_id, token))
    }
}

impl Drop for Synapse {
    fn drop(&mut self) {
        // The wrapper leads its own process group, which Synapse is in.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.wrapper.id())])
            .stderr(Stdio::null())
            .status();
        let _ = self.wrapper.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn spawn_wrapper(python: &Path, config: &Path, dir: &Path) -> anyhow::Result<Child> {
    Command::new("sh")
        .arg("-c")
        .arg(WRAPPER)
        .arg("synapse-wrapper")
        .arg(python)
        .arg(config)
        .arg(dir)
        .arg(std::process::id().to_string())
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        // Own process group: a Ctrl-C or group kill aimed at the test run
        // must not take the wrapper down before it cleans up, and Drop
        // can kill wrapper + Synapse together without knowing Synapse's pid.
        .process_group(0)
        .spawn()
        .context("spawning the synapse wrapper")
}

/// One Synapse per test binary, started on first use. `registration_files`
/// is only called by the first caller. A failed start is remembered, so
/// every test fails with the same error instead of retrying for a minute.
#[track_caller]
pub fn shared_instance(registration_files: impl FnOnce() -> Vec<PathBuf>) -> &'static Synapse {
    static INSTANCE: OnceLock<Result<Synapse, String>> = OnceLock::new();
    let result = INSTANCE
        .get_or_init(|| Synapse::start(&registration_files()).map_err(|e| format!("{e:#}")));
    match result {
        Ok(synapse) => synapse,
        Err(e) => panic!("starting Synapse failed: {e}"),
    }
}

/// The venv's python, after running the setup script if synapse is missing.
fn ensure_installed() -> anyhow::Result<PathBuf> {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .context("tests crate has no parent dir")?;
    let venv = std::env::var_os("RETROBRIDGE_SYNAPSE_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo.join(".local/synapse-venv"));
    let python = venv.join("bin/python");
    let importable = |python: &Path| {
        Command::new(python)
            .args(["-c", "import synapse"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if !importable(&python) {
        let script = repo.join("scripts/setup-synapse.sh");
        // Output goes to the test's stderr so a slow first install is visible.
        let status = Command::new("bash")
            .arg(&script)
            .stdout(Stdio::inherit())
            .status()
            .with_context(|| format!("running {}", script.display()))?;
        if !status.success() || !importable(&python) {
            bail!("{} failed ({status})", script.display());
        }
    }
    Ok(python)
}

fn make_temp_dir() -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(unique_token("retrobridge-synapse"));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

/// Unique enough for temp dir names and a loopback-only shared secret.
fn unique_token(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    format!("{prefix}-{}-{nanos:x}", std::process::id())
}

/// Binds port 0 to let the OS pick; the tiny race until Synapse binds it is
/// acceptable for tests.
fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Raw HTTP/1.0 GET /health, so no async client is needed during startup.
fn health_ok(port: u16) -> bool {
    let attempt = || -> std::io::Result<String> {
        let mut stream = TcpStream::connect(("127.0.0.1", port))?;
        stream.set_read_timeout(Some(Duration::from_secs(2)))?;
        stream.write_all(b"GET /health HTTP/1.0\r\nHost: localhost\r\n\r\n")?;
        let mut response = String::new();
        stream.read_to_string(&mut response)?;
        Ok(response)
    };
    attempt().is_ok_and(|r| r.starts_with("HTTP/1.") && r.contains(" 200 ") && r.ends_with("OK"))
}

/// Replaces the generated defaults with a loopback-only, SQLite-backed,
/// non-federating setup whose rate limits tests never hit.
fn rewrite_config(
    config: &Path,
    dir: &Path,
    port: u16,
    secret: &str,
    registration_files: &[PathBuf],
) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(config)?;
    let mut yaml: Mapping = serde_yaml::from_str(&text).context("parsing generated config")?;

    let log_config = dir.join("log.yaml");
    let log_file = dir.join("homeserver.log");
    std::fs::write(
        &log_config,
        format!(
            "version: 1\n\
             formatters:\n  plain:\n    format: '%(asctime)s %(levelname)s %(name)s: %(message)s'\n\
             handlers:\n  file:\n    class: logging.FileHandler\n    formatter: plain\n    filename: {}\n\
             root:\n  level: WARNING\n  handlers: [file]\n\
             disable_existing_loggers: false\n",
            serde_json::to_string(&log_file)?
        ),
    )?;

    let unlimited = json!({"per_second": 100000, "burst_count": 1000000});
    let files: Vec<String> = registration_files
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let overrides = json!({
        "listeners": [{
            "port": port,
            "bind_addresses": ["127.0.0.1"],
            "type": "http",
            "tls": false,
            "x_forwarded": false,
            "resources": [{"names": ["client"], "compress": false}],
        }],
        "database": {"name": "sqlite3", "args": {"database": dir.join("homeserver.db")}},
        "log_config": log_config,
        "media_store_path": dir.join("media_store"),
        "trusted_key_servers": [],
        "suppress_key_server_warning": true,
        "report_stats": false,
        "enable_metrics": false,
        "app_service_config_files": files,
        "registration_shared_secret": secret,
        // Test passwords need no protection; the default (12 rounds) costs Synapse about
        // a quarter of a second of CPU per registration.
        "bcrypt_rounds": 4,
        "enable_registration": false,
        "use_presence": true,
        "presence": {"enabled": true},
        "rc_message": unlimited,
        "rc_registration": unlimited,
        "rc_login": {"address": unlimited, "account": unlimited, "failed_attempts": unlimited},
        "rc_joins": {"local": unlimited, "remote": unlimited},
        "rc_joins_per_room": unlimited,
        "rc_invites": {"per_room": unlimited, "per_user": unlimited, "per_issuer": unlimited},
        "rc_3pid_validation": unlimited,
        "rc_admin_redaction": unlimited,
        // Newer options; older Synapse versions ignore unknown keys.
        "rc_room_creation": unlimited,
        "rc_presence": {"per_user": unlimited},
    });
    let overrides: Mapping = serde_yaml::to_value(overrides)?
        .as_mapping()
        .cloned()
        .ok_or_else(|| anyhow!("overrides are not a mapping"))?;
    for (k, v) in overrides {
        yaml.insert(k, v);
    }
    std::fs::write(config, serde_yaml::to_string(&Yaml::Mapping(yaml))?)?;
    Ok(())
}
