//! `scripts/demo.sh` as a newcomer runs it: the real script, with its ports moved to free
//! ones and its state in a temporary folder, using the binaries the test command built.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use e2e_tests::bridge::{target_dir, workspace_binary};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Every port the demo uses, as (variable, port): free ones, except where a test says.
struct Ports(Vec<(&'static str, u16)>);

impl Ports {
    fn free() -> Ports {
        let tcp = || {
            TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port()
        };
        let udp = UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        Ports(vec![
            ("RETROBRIDGE_DEMO_SYNAPSE_PORT", tcp()),
            ("RETROBRIDGE_DEMO_BRIDGE_PORT", tcp()),
            ("RETROBRIDGE_DEMO_ICQ_PORT", udp),
            ("RETROBRIDGE_DEMO_MSN_PORT", tcp()),
            ("RETROBRIDGE_DEMO_MSN_SB_PORT", tcp()),
            ("RETROBRIDGE_DEMO_MSN_NS_PORT", tcp()),
            ("RETROBRIDGE_DEMO_MSN_HTTP_PORT", tcp()),
            ("RETROBRIDGE_DEMO_MIG33_PORT", tcp()),
        ])
    }

    fn set(&mut self, variable: &str, port: u16) {
        if let Some(entry) = self.0.iter_mut().find(|(v, _)| *v == variable) {
            entry.1 = port;
        }
    }

    fn get(&self, variable: &str) -> u16 {
        self.0.iter().find(|(v, _)| *v == variable).unwrap().1
    }
}

/// The demo's folder, removed at the end.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("retrobridge-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running `demo.sh` in its own process group, which is killed if the test ends early.
struct Demo {
    child: Child,
    output: PathBuf,
}

impl Demo {
    fn start(ports: &Ports, dir: &Path) -> Demo {
        workspace_binary("retrobridge");
        workspace_binary("legacy-sim");
        let output = dir.join("demo-output.txt");
        let file = std::fs::File::create(&output).unwrap();
        let mut command = Command::new(repo().join("scripts/demo.sh"));
        command
            .env("RETROBRIDGE_DEMO_DIR", dir)
            .env("RETROBRIDGE_DEMO_BIN_DIR", target_dir())
            .env_remove("RETROBRIDGE_DEMO_PORT")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .process_group(0);
        for (variable, port) in &ports.0 {
            command.env(variable, port.to_string());
        }
        Demo {
            child: command.spawn().expect("scripts/demo.sh runs"),
            output,
        }
    }

    fn output(&self) -> String {
        std::fs::read_to_string(&self.output).unwrap_or_default()
    }

    /// Waits for the script to exit; its status.
    fn wait(&mut self, limit: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "demo.sh still running after {limit:?}:\n{}",
                self.output()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn signal(&self, signal: &str, target: String) {
        let _ = Command::new("kill")
            .args([signal, "--", &target])
            .stderr(Stdio::null())
            .status();
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        // The whole group: the script and whatever it started.
        self.signal("-KILL", format!("-{}", self.child.id()));
        let _ = self.child.wait();
    }
}

fn accepts(port: u16) -> bool {
    TcpStream::connect(("127.0.0.1", port)).is_ok()
}

fn synapse_healthy(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut response = String::new();
    stream
        .write_all(b"GET /health HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .is_ok()
        && stream.read_to_string(&mut response).is_ok()
        && response.contains(" 200 ")
}

#[test]
fn a_taken_port_is_named_with_the_variable_that_moves_it() {
    let dir = TempDir::new("demo-taken-port");
    // Held from the moment it is picked: a port let go and taken again could meanwhile
    // go to another process of the test run.
    let taken = UdpSocket::bind("127.0.0.1:0").unwrap();
    let icq = taken.local_addr().unwrap().port();
    let mut ports = Ports::free();
    ports.set("RETROBRIDGE_DEMO_ICQ_PORT", icq);
    let mut demo = Demo::start(&ports, &dir.0);
    let status = demo.wait(Duration::from_secs(60));
    let output = demo.output();
    assert!(!status.success(), "{output}");
    assert!(
        output.contains(&format!(
            "port {icq}/udp, for the ICQ simulator, is already in use"
        )),
        "{output}"
    );
    assert!(
        output.contains("RETROBRIDGE_DEMO_ICQ_PORT=") && output.contains("./scripts/demo.sh"),
        "says how to choose another: {output}"
    );
    assert!(!output.contains("demo is running"), "{output}");
    assert!(
        !output.contains("starting Synapse"),
        "stops before starting anything: {output}"
    );
}

#[test]
fn the_banner_comes_once_everything_is_up_a_stopped_part_comes_back_and_term_stops_it_all() {
    let dir = TempDir::new("demo-run");
    let ports = Ports::free();
    std::fs::write(dir.0.join("bridge.log"), "a line from an earlier run\n").unwrap();
    let mut demo = Demo::start(&ports, &dir.0);

    // Synapse may take two minutes to start on a busy machine.
    let deadline = Instant::now() + Duration::from_secs(300);
    while !demo.output().contains("retrobridge demo is running") {
        if let Some(status) = demo.child.try_wait().unwrap() {
            panic!(
                "demo.sh exited ({status}) without its banner:\n{}",
                demo.output()
            );
        }
        assert!(Instant::now() < deadline, "no banner:\n{}", demo.output());
        std::thread::sleep(Duration::from_millis(200));
    }
    let output = demo.output();

    // Everything the banner promises is up when it is printed.
    let synapse = ports.get("RETROBRIDGE_DEMO_SYNAPSE_PORT");
    assert!(synapse_healthy(synapse), "Synapse is healthy");
    for variable in [
        "RETROBRIDGE_DEMO_BRIDGE_PORT",
        "RETROBRIDGE_DEMO_MSN_PORT",
        "RETROBRIDGE_DEMO_MSN_SB_PORT",
        "RETROBRIDGE_DEMO_MSN_NS_PORT",
        "RETROBRIDGE_DEMO_MSN_HTTP_PORT",
        "RETROBRIDGE_DEMO_MIG33_PORT",
    ] {
        assert!(accepts(ports.get(variable)), "{variable} is listening");
    }
    // With the real ports.
    for expected in [
        format!("Homeserver:  http://127.0.0.1:{synapse}"),
        format!(
            "--server 127.0.0.1:{}",
            ports.get("RETROBRIDGE_DEMO_ICQ_PORT")
        ),
        format!(
            "--server 127.0.0.1:{}",
            ports.get("RETROBRIDGE_DEMO_MSN_PORT")
        ),
        format!(
            "--nexus http://127.0.0.1:{}/rdr/pprdr.asp",
            ports.get("RETROBRIDGE_DEMO_MSN_HTTP_PORT")
        ),
        format!(
            "--server 127.0.0.1:{}",
            ports.get("RETROBRIDGE_DEMO_MIG33_PORT")
        ),
    ] {
        assert!(
            output.contains(&expected),
            "{expected:?} missing:\n{output}"
        );
    }
    // The Synapse log it names is Synapse's log.
    let synapse_log = dir.0.join("synapse.log");
    assert!(
        output.contains(&synapse_log.display().to_string()),
        "{output}"
    );
    let log = std::fs::read_to_string(&synapse_log).unwrap();
    assert!(log.contains("STARTING SERVER"), "{log}");
    // bridge.log is appended to, and holds no colour codes.
    let log = std::fs::read_to_string(dir.0.join("bridge.log")).unwrap();
    assert!(log.starts_with("a line from an earlier run\n"), "{log}");
    assert!(log.contains("retrobridge 0.1.0 starting"), "{log}");
    assert!(!log.contains('\x1b'), "{log:?}");

    // A part that stops is started again: the bridge, killed with -9 as the banner
    // suggests trying, comes back by itself.
    let parts = std::fs::read_to_string(dir.0.join("demo.pids")).unwrap();
    let bridge_pid = parts
        .lines()
        .find_map(|l| l.strip_suffix("\tthe bridge"))
        .unwrap_or_else(|| panic!("the bridge in demo.pids:\n{parts}"))
        .to_owned();
    demo.signal("-KILL", bridge_pid.clone());
    let deadline = Instant::now() + Duration::from_secs(120);
    let bridge_port = ports.get("RETROBRIDGE_DEMO_BRIDGE_PORT");
    while !(demo
        .output()
        .contains("demo: the bridge stopped; starting it again")
        && accepts(bridge_port))
    {
        assert!(
            demo.child.try_wait().unwrap().is_none(),
            "the demo stopped with the bridge:\n{}",
            demo.output()
        );
        assert!(
            Instant::now() < deadline,
            "the bridge not back:\n{}",
            demo.output()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let parts = std::fs::read_to_string(dir.0.join("demo.pids")).unwrap();
    assert!(!parts.contains(&format!("{bridge_pid}\t")), "{parts}");

    // Ctrl-C in a terminal; from another shell, TERM to the pid the banner names: the
    // script stops what it started.
    assert!(output.contains("kill $(cat "), "{output}");
    let pid = std::fs::read_to_string(dir.0.join("demo.pid")).unwrap();
    assert_eq!(pid.trim(), demo.child.id().to_string());
    demo.signal("-TERM", pid.trim().to_owned());
    demo.wait(Duration::from_secs(60));
    assert!(
        demo.output().contains("demo: stopping"),
        "{}",
        demo.output()
    );
    assert!(!accepts(synapse), "Synapse stopped");
    assert!(
        !accepts(ports.get("RETROBRIDGE_DEMO_BRIDGE_PORT")),
        "the bridge stopped"
    );
    assert!(
        !accepts(ports.get("RETROBRIDGE_DEMO_MIG33_PORT")),
        "the simulators stopped"
    );
}
