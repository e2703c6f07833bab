//! The `legacy-sim` command's help, as someone trying it first meets it.

use std::process::{Command, Output};

fn legacy_sim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_legacy-sim"))
        .args(args)
        .output()
        .expect("legacy-sim runs")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn help_prints_usage_and_succeeds() {
    for flag in ["--help", "-h", "help"] {
        let out = legacy_sim(&[flag]);
        let text = stdout(&out);
        assert!(out.status.success(), "{flag}: {out:?}");
        assert!(text.contains("Usage: legacy-sim"), "{flag}: {text}");
        for command in ["serve", "icq-client", "msn-client", "mig33-client"] {
            assert!(text.contains(command), "{flag} lists {command}: {text}");
        }
    }
}

#[test]
fn each_command_has_help() {
    for (command, option) in [
        ("serve", "--config"),
        ("icq-client", "--uin"),
        ("msn-client", "--nexus"),
        ("mig33-client", "--user"),
    ] {
        for args in [vec![command, "--help"], vec!["help", command]] {
            let out = legacy_sim(&args);
            let text = stdout(&out);
            assert!(out.status.success(), "{args:?}: {out:?}");
            assert!(
                text.contains(&format!("Usage: legacy-sim {command}")),
                "{args:?}: {text}"
            );
            assert!(text.contains(option), "{args:?}: {text}");
        }
    }
    let out = legacy_sim(&[
        "icq-client",
        "--server",
        "127.0.0.1:1",
        "--uin",
        "1",
        "--password",
        "x",
        "send",
        "--help",
    ]);
    assert!(out.status.success(), "{out:?}");
    assert!(stdout(&out).contains("send <TO> [TEXT]..."), "{out:?}");
}

#[test]
fn no_or_wrong_arguments_show_usage_and_fail() {
    let out = legacy_sim(&[]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Usage: legacy-sim"),
        "{out:?}"
    );
    let out = legacy_sim(&["frobnicate"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("unrecognized subcommand 'frobnicate'"),
        "{stderr}"
    );
}
