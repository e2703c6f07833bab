//! The `retrobridge` command as an operator meets it: the built binary, run on files in a
//! temporary folder. No homeserver needed.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn bin() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_retrobridge"));
    command.env_remove("RUST_LOG").stdin(Stdio::null());
    command
}

fn repo_file(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path)
}

/// A config in `dir` whose homeserver never answers (nothing listens on port 1).
fn write_config(dir: &Path, extra_icq_options: &str) -> PathBuf {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let text = format!(
        "homeserver: {{ address: \"http://127.0.0.1:1\", domain: localhost }}\n\
         appservice: {{ port: {port}, url: \"http://127.0.0.1:{port}\" }}\n\
         database: {{ path: db }}\n\
         networks:\n  icq:\n    enabled: true\n    server: 127.0.0.1:4000\n{extra_icq_options}\
         logging: {{ level: info }}\n"
    );
    let path = dir.join("config.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Waits for `child` to exit, killing it after `limit`.
fn wait_output(mut child: Child, limit: Duration) -> Output {
    let deadline = Instant::now() + limit;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!(
                "still running after {limit:?}: {:?}",
                child.wait_with_output()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

fn tokens(registration: &Path) -> (String, String) {
    let reg: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(registration).unwrap()).unwrap();
    (
        reg["as_token"].as_str().unwrap().to_owned(),
        reg["hs_token"].as_str().unwrap().to_owned(),
    )
}

#[test]
fn generate_registration_never_overwrites_without_force() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "");
    let registration = dir.path().join("registration.yaml");

    let out = bin()
        .args(["generate-registration", "-c"])
        .arg(&config)
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("restart the homeserver"), "{stdout}");
    assert!(stdout.contains("chgrp"), "{stdout}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&registration)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o640, "the homeserver's group may read it");
    }
    let first = tokens(&registration);

    let out = bin()
        .args(["generate-registration", "-c"])
        .arg(&config)
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert!(!out.status.success(), "refused: {stdout}{stderr}");
    assert!(stderr.contains("already exists"), "{stderr}");
    assert!(stderr.contains("--force"), "{stderr}");
    assert!(stderr.contains("restart the homeserver"), "{stderr}");
    assert_eq!(tokens(&registration), first, "the file is untouched");

    let out = bin()
        .args(["generate-registration", "--force", "-c"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(out.status.success(), "{:?}", text(&out));
    assert_ne!(tokens(&registration), first, "fresh tokens");
}

/// Every paragraph of the operator's documentation that says how readable the
/// registration is says what `generate-registration` does (mode 0640, above): none
/// promises "owner only".
#[test]
fn the_documentation_states_the_registration_mode_it_gets() {
    for doc in [
        "README.md",
        "deploy/docker-compose.yml",
        "config/config.example.yaml",
    ] {
        let text = std::fs::read_to_string(repo_file(doc)).unwrap();
        // README paragraphs and list items; comment blocks in the YAML files.
        let paragraphs = text.split("\n\n").flat_map(|p| p.split("\n- "));
        for paragraph in paragraphs {
            let flat = paragraph.replace(['\n', '#'], " ").to_lowercase();
            if !flat.contains("registration") {
                continue;
            }
            let claims_mode = flat.contains("owner only")
                || flat.contains("owner-only")
                || flat.contains("mode 0");
            if claims_mode {
                assert!(
                    !flat.contains("owner only") && !flat.contains("owner-only"),
                    "{doc} promises an owner-only registration: {paragraph}"
                );
                assert!(flat.contains("0640"), "{doc}: {paragraph}");
            }
        }
    }
}

/// The example registration's placeholder tokens: `run` refuses them, says so once, with
/// one version line, and no colour codes since its output is not a terminal.
#[test]
fn run_refuses_placeholder_tokens_plainly() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "");
    std::fs::copy(
        repo_file("registration.yaml"),
        dir.path().join("registration.yaml"),
    )
    .unwrap();
    let child = bin()
        .args(["run", "-c"])
        .arg(&config)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = wait_output(child, Duration::from_secs(30));
    let (stdout, stderr) = text(&out);
    let all = format!("{stdout}{stderr}");
    assert!(!out.status.success(), "{all}");
    let version = format!("retrobridge {} starting", env!("CARGO_PKG_VERSION"));
    assert_eq!(all.matches(&version).count(), 1, "{all}");
    assert_eq!(all.matches("placeholders").count(), 1, "said once: {all}");
    assert!(all.contains("generate-registration"), "{all}");
    assert!(!all.contains('\x1b'), "no ANSI colour codes: {all:?}");
}

#[test]
fn check_config_refuses_the_unedited_example() {
    let out = bin()
        .args(["check-config", "-c"])
        .arg(repo_file("config/config.example.yaml"))
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stdout}{stderr}");
    assert!(stderr.contains("homeserver.domain"), "{stderr}");
    assert!(stderr.contains("example.org"), "{stderr}");
}

#[test]
fn check_config_names_a_bad_network_option() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        "    options:\n      probe_interval_secs: \"2\"\n",
    );
    let out = bin()
        .args(["check-config", "-c"])
        .arg(&config)
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stdout}{stderr}");
    assert!(
        stderr.contains("networks.icq.options.probe_interval_secs (line 9)"),
        "{stderr}"
    );

    let config = write_config(dir.path(), "    options:\n      probe_interval_secs: 2\n");
    let out = bin()
        .args(["check-config", "-c"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(out.status.success(), "{:?}", text(&out));
}

#[test]
fn a_second_bridge_on_the_same_database_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "");
    let out = bin()
        .args(["generate-registration", "-c"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(out.status.success(), "{:?}", text(&out));

    // The first one opens the database, then waits for a homeserver that never answers.
    let log = dir.path().join("first.log");
    let mut first = bin()
        .args(["run", "-c"])
        .arg(&config)
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !std::fs::read_to_string(&log)
        .unwrap()
        .contains("waiting for the homeserver")
    {
        if let Some(status) = first.try_wait().unwrap() {
            panic!(
                "the first bridge exited ({status}): {}",
                std::fs::read_to_string(&log).unwrap()
            );
        }
        assert!(Instant::now() < deadline, "the first bridge did not start");
        std::thread::sleep(Duration::from_millis(50));
    }

    let second = bin()
        .args(["run", "-c"])
        .arg(&config)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = wait_output(second, Duration::from_secs(30));
    let _ = first.kill();
    let _ = first.wait();
    let (stdout, stderr) = text(&out);
    assert!(!out.status.success(), "{stdout}{stderr}");
    let db = dir.path().join("db");
    assert!(
        stdout.contains(&format!(
            "another retrobridge is running on {}",
            db.display()
        )),
        "{stdout}{stderr}"
    );
}
