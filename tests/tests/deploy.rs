//! The deployment files: the systemd unit (its keys everywhere, `systemd-analyze verify`
//! where systemd is installed), the bridge's side of `Type=notify` with the real binary
//! and a real Synapse, and the Dockerfile and compose file agreeing with each other and
//! with the config (no Docker engine here to build or run them).

use std::collections::BTreeMap;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use e2e_tests::bridge::{private_environment, workspace_binary, SlotOptions};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("repository root")
        .to_path_buf()
}

fn unit_path() -> PathBuf {
    repo().join("deploy/retrobridge.service")
}

/// Section -> its `key=value` lines in order (a key may repeat: lists accumulate).
type Unit = BTreeMap<String, Vec<(String, String)>>;

fn parse_unit(text: &str) -> Unit {
    let mut unit = Unit::new();
    let mut section = String::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        assert!(
            !line.ends_with('\\'),
            "line {}: keep settings on one line",
            n + 1
        );
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.to_owned();
            continue;
        }
        let (key, value) = line
            .split_once('=')
            .unwrap_or_else(|| panic!("line {}: not key=value: {line}", n + 1));
        assert!(!section.is_empty(), "line {}: outside a section", n + 1);
        unit.entry(section.clone())
            .or_default()
            .push((key.trim().to_owned(), value.trim().to_owned()));
    }
    unit
}

/// The value in effect: the last assignment of `key` in `section`.
fn last<'a>(unit: &'a Unit, section: &str, key: &str) -> Option<&'a str> {
    unit.get(section)?
        .iter()
        .rev()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// A systemd time span such as `30s`, `6min`, `500ms` or `45` (seconds).
fn timespan(value: &str) -> Option<Duration> {
    let digits = value.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let n: u64 = digits.trim().parse().ok()?;
    Some(match value[digits.len()..].trim() {
        "" | "s" | "sec" => Duration::from_secs(n),
        "ms" | "msec" => Duration::from_millis(n),
        "m" | "min" => Duration::from_secs(n * 60),
        "h" | "hr" => Duration::from_secs(n * 3600),
        _ => return None,
    })
}

fn yes(value: Option<&str>) -> bool {
    matches!(value, Some("yes" | "true" | "on" | "1"))
}

/// `systemd-analyze verify` on a copy of the unit whose `ExecStart=` runs the binary
/// just built (verify checks that the program exists). verify exits 0 on unknown keys and
/// bad values and only prints them, so every line it prints about the unit is a problem.
fn verify_problems(unit_text: &str) -> Vec<String> {
    let dir = std::env::temp_dir().join(format!("retrobridge-unit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("retrobridge.service");
    let binary = workspace_binary("retrobridge");
    let text = unit_text.replace("/usr/local/bin/retrobridge", binary.to_str().unwrap());
    std::fs::write(&path, text).unwrap();
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&path)
        .output()
        .expect("running systemd-analyze");
    let printed =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let mut problems: Vec<String> = printed
        .lines()
        .filter(|l| l.contains("retrobridge"))
        .map(str::to_owned)
        .collect();
    if !out.status.success() {
        problems.push(format!("systemd-analyze verify: {}\n{printed}", out.status));
    }
    let _ = std::fs::remove_dir_all(&dir);
    problems
}

fn systemd_analyze_installed() -> bool {
    Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn systemd_unit_is_a_hardened_notify_service_with_a_watchdog() {
    let text = std::fs::read_to_string(unit_path()).unwrap();
    let unit = parse_unit(&text);
    let service = |key: &str| last(&unit, "Service", key);

    assert_eq!(service("Type"), Some("notify"));
    let exec = service("ExecStart").expect("ExecStart");
    assert!(
        exec.starts_with("/usr/local/bin/retrobridge ")
            && exec.ends_with(" run -c /etc/retrobridge/config.yaml"),
        "{exec}"
    );
    // A socket per login: systemd's default soft limit (1,024) would stop the bridge at
    // about a thousand logins, and @resources is filtered (no setrlimit of its own).
    let files: u64 = service("LimitNOFILE")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    assert!(files >= 65_536, "LimitNOFILE={files}");
    let watchdog = timespan(service("WatchdogSec").expect("WatchdogSec")).expect("a time span");
    assert!(watchdog >= Duration::from_secs(10), "{watchdog:?}");
    // A watchdog kill is a failure: it must bring the bridge back.
    assert!(matches!(
        service("Restart"),
        Some("on-failure" | "always" | "on-watchdog")
    ));
    // The bridge waits up to 5 minutes for the homeserver before it is ready.
    let start = timespan(service("TimeoutStartSec").expect("TimeoutStartSec")).unwrap();
    assert!(start > Duration::from_secs(300), "{start:?}");

    // A dedicated user whose state folder holds the database, writable under strict.
    let user = service("User").expect("User");
    assert!(!user.is_empty() && user != "root" && user != "0");
    assert_eq!(service("StateDirectory"), Some("retrobridge"));
    let writable = service("ReadWritePaths").expect("ReadWritePaths");
    assert!(writable
        .split_whitespace()
        .any(|p| p == "/var/lib/retrobridge"));

    // Hardening.
    assert_eq!(service("ProtectSystem"), Some("strict"));
    assert!(
        yes(service("ProtectHome"))
            || matches!(service("ProtectHome"), Some("read-only" | "tmpfs"))
    );
    for key in [
        "NoNewPrivileges",
        "PrivateTmp",
        "PrivateDevices",
        "ProtectKernelTunables",
        "ProtectKernelModules",
        "ProtectControlGroups",
        "RestrictNamespaces",
        "RestrictSUIDSGID",
        "LockPersonality",
        "MemoryDenyWriteExecute",
    ] {
        assert!(yes(service(key)), "{key}=yes");
    }
    assert_eq!(
        service("CapabilityBoundingSet"),
        Some(""),
        "no capabilities"
    );
    // AF_UNIX is sd_notify's socket: without it READY=1 never arrives.
    let families: Vec<&str> = service("RestrictAddressFamilies")
        .expect("RestrictAddressFamilies")
        .split_whitespace()
        .collect();
    assert_eq!(families, ["AF_UNIX", "AF_INET", "AF_INET6"]);
    assert!(service("SystemCallFilter").is_some());

    assert_eq!(
        last(&unit, "Install", "WantedBy"),
        Some("multi-user.target")
    );

    if systemd_analyze_installed() {
        let problems = verify_problems(&text);
        assert!(
            problems.is_empty(),
            "systemd-analyze verify:\n{problems:#?}"
        );
        // The check itself: a mistyped value is reported.
        let broken = text.replace("ProtectSystem=strict", "ProtectSystem=strictly");
        assert!(
            !verify_problems(&broken).is_empty(),
            "verify must report a bad value"
        );
    } else {
        eprintln!(
            "systemd-analyze is not installed: checked the unit's keys only (apt-get install systemd to verify it)"
        );
    }
}

/// Plays systemd's part: binds the notification socket and records what arrives.
struct Manager {
    seen: Arc<Mutex<Vec<String>>>,
}

impl Manager {
    fn bind(path: &Path) -> Manager {
        let _ = std::fs::remove_file(path);
        let socket = UnixDatagram::bind(path).expect("binding the notify socket");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = seen.clone();
        // Ends with the test process (a blocking read on a socket of its own).
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = socket.recv(&mut buf) {
                let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
                record.lock().unwrap().push(msg);
            }
        });
        Manager { seen }
    }

    fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }

    async fn wait_for(&self, what: &str, done: impl Fn(&[String]) -> bool) -> Vec<String> {
        e2e_tests::wait_until(Duration::from_secs(90), what, || async {
            let seen = self.seen();
            Ok(done(&seen).then_some(seen))
        })
        .await
        .unwrap_or_else(|e| panic!("{e:#}; received: {:?}", self.seen()))
    }
}

fn count(seen: &[String], what: &str) -> usize {
    seen.iter().filter(|s| *s == what).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_systemd_ready_comes_once_started_with_watchdog_pings_and_stopping_at_the_end() {
    let options = SlotOptions {
        request_timeout_seconds: Some(2),
        ..SlotOptions::default()
    };
    let (synapse, slot) =
        tokio::task::block_in_place(|| private_environment("notify", options)).unwrap();
    let socket = slot.dir.join("notify.sock");
    let manager = Manager::bind(&socket);

    // The homeserver does not answer: the bridge is not started, but alive.
    synapse.pause().unwrap();
    let mut bridge = slot
        .spawn_with_env(
            &synapse,
            &[
                ("NOTIFY_SOCKET", socket.as_os_str()),
                ("WATCHDOG_USEC", "1000000".as_ref()),
            ],
        )
        .unwrap();
    // It listens before it waits for the homeserver.
    e2e_tests::wait_until(Duration::from_secs(60), "the bridge to listen", || async {
        Ok(std::net::TcpStream::connect(("127.0.0.1", slot.port))
            .is_ok()
            .then_some(()))
    })
    .await
    .unwrap();
    let waiting = manager
        .wait_for("watchdog pings while waiting", |s| {
            count(s, "WATCHDOG=1") >= 4
        })
        .await;
    assert_eq!(
        count(&waiting, "READY=1"),
        0,
        "ready before the homeserver answered: {waiting:?}"
    );

    // Once the homeserver answers, the bridge finishes starting and says so, once.
    synapse.resume().unwrap();
    let started = manager
        .wait_for("READY=1", |s| count(s, "READY=1") == 1)
        .await;
    // What the operator relies on: once systemd says started, the bot is set up.
    let observer = synapse
        .register_user("deploy_observer", "pw", false)
        .await
        .unwrap();
    assert_eq!(
        observer
            .get_displayname(&slot.bot)
            .await
            .unwrap()
            .as_deref(),
        Some("Bridge bot 0")
    );
    let pings_at_ready = count(&started, "WATCHDOG=1");
    manager
        .wait_for("watchdog pings after READY", |s| {
            count(s, "WATCHDOG=1") >= pings_at_ready + 3
        })
        .await;

    // SIGTERM: STOPPING=1, then a clean exit.
    assert!(
        tokio::task::block_in_place(|| bridge.terminate()),
        "clean exit"
    );
    let all = manager
        .wait_for("STOPPING=1", |s| count(s, "STOPPING=1") == 1)
        .await;
    let ready = all.iter().position(|s| s == "READY=1").unwrap();
    let stopping = all.iter().position(|s| s == "STOPPING=1").unwrap();
    assert!(ready < stopping, "{all:?}");
    assert!(
        all.iter()
            .all(|s| matches!(s.as_str(), "READY=1" | "WATCHDOG=1" | "STOPPING=1")),
        "{all:?}"
    );
    assert_eq!(count(&all, "READY=1"), 1);
}

/// `src:dst[:mode]` volume entries of a compose service, as (source, target).
fn mounts(compose: &serde_yaml::Value, service: &str) -> Vec<(String, String)> {
    compose["services"][service]["volumes"]
        .as_sequence()
        .unwrap_or_else(|| panic!("services.{service}.volumes"))
        .iter()
        .map(|v| {
            let mut parts = v.as_str().expect("short volume syntax").split(':');
            let src = parts.next().unwrap().to_owned();
            (src, parts.next().expect("a target").to_owned())
        })
        .collect()
}

/// The folder a path is mounted from in a service, if any mount covers it.
fn mounted_from(mounts: &[(String, String)], path: &str) -> Option<String> {
    mounts
        .iter()
        .find(|(_, target)| path.starts_with(&format!("{target}/")))
        .map(|(src, _)| src.clone())
}

/// The config keys the compose file's step 2 tells the operator to set.
fn documented_container_settings(compose_text: &str) -> Vec<(String, String)> {
    compose_text
        .lines()
        .skip_while(|l| !l.contains("and set in it:"))
        .skip(1)
        .map_while(|l| {
            let (key, value) = l.trim_start_matches('#').trim().split_once(':')?;
            (key.contains('.') && !key.contains(' '))
                .then(|| (key.to_owned(), value.trim().to_owned()))
        })
        .collect()
}

#[test]
fn compose_steps_give_a_valid_config_and_agree_with_the_dockerfile() {
    let compose_text = std::fs::read_to_string(repo().join("deploy/docker-compose.yml")).unwrap();
    let compose: serde_yaml::Value = serde_yaml::from_str(&compose_text).unwrap();
    let dockerfile = std::fs::read_to_string(repo().join("Dockerfile")).unwrap();
    let instruction = |name: &str| -> Vec<&str> {
        dockerfile
            .lines()
            .filter_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
            .collect()
    };

    // Step 2's settings applied to the example config: check-config accepts the result.
    let settings = documented_container_settings(&compose_text);
    assert_eq!(settings.len(), 6, "{settings:?}");
    let mut config: serde_yaml::Value = serde_yaml::from_str(
        &std::fs::read_to_string(repo().join("config/config.example.yaml")).unwrap(),
    )
    .unwrap();
    for (key, value) in &settings {
        let mut at = &mut config;
        for part in key.split('.') {
            at = at
                .get_mut(part)
                .unwrap_or_else(|| panic!("{key} is not a key of config.example.yaml"));
        }
        *at = serde_yaml::Value::String(value.clone());
    }
    let dir = std::env::temp_dir().join(format!("retrobridge-compose-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config_path = dir.join("config.yaml");
    std::fs::write(&config_path, serde_yaml::to_string(&config).unwrap()).unwrap();
    let out = Command::new(workspace_binary("retrobridge"))
        .args(["check-config", "-c"])
        .arg(&config_path)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let setting = |key: &str| {
        settings
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("step 2 sets {key}"))
    };

    // The image runs the config mounted at /config, as a non-root user.
    assert_eq!(
        instruction("CMD"),
        [r#"["run", "-c", "/config/config.yaml"]"#]
    );
    assert_eq!(
        instruction("ENTRYPOINT"),
        [r#"["/usr/local/bin/retrobridge"]"#]
    );
    let user = instruction("USER");
    assert_eq!(user.len(), 1);
    let uid = user[0].split(':').next().unwrap();
    assert!(uid != "0" && uid != "root", "USER {uid}");
    assert!(dockerfile.contains(&format!("--uid {uid} ")));
    assert_eq!(instruction("VOLUME"), [r#"["/data"]"#]);

    // The bridge's service: the config folder, the database and the registration mounted
    // where the config points; the port the homeserver uses is the one exposed.
    let bridge = mounts(&compose, "retrobridge");
    assert!(bridge.iter().any(|(_, t)| t == "/config"), "{bridge:?}");
    assert_eq!(
        mounted_from(&bridge, setting("database.path")).as_deref(),
        Some("retrobridge-data")
    );
    let registration = setting("appservice.registration");
    let shared = mounted_from(&bridge, registration).expect("the registration on a volume");
    let port = setting("appservice.url").rsplit(':').next().unwrap();
    assert_eq!(instruction("EXPOSE"), [port]);
    assert_eq!(
        config["appservice"]["port"].as_u64().unwrap().to_string(),
        port
    );
    assert_eq!(setting("appservice.address"), "0.0.0.0");
    assert!(setting("appservice.url").contains("//retrobridge:"));
    assert!(setting("homeserver.address").starts_with("http://synapse:"));

    // Synapse: the official image, the same registration volume at the path step 4 gives
    // it, and the bridge's uid so that it can read the registration (mode 0640).
    let synapse = &compose["services"]["synapse"];
    assert!(synapse["image"]
        .as_str()
        .unwrap()
        .starts_with("matrixdotorg/synapse:"));
    assert_eq!(
        mounted_from(&mounts(&compose, "synapse"), registration),
        Some(shared)
    );
    assert!(compose_text.contains(&format!("#        - {registration}\n")));
    assert_eq!(synapse["environment"]["UID"].as_str(), Some(uid));
    assert_eq!(synapse["environment"]["GID"].as_str(), Some(uid));
}
