//! What a newcomer reads and follows at the repository's root stays true: the README's
//! links, its Rust version, the files its set-up writes, and the two commands it gives.

use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace root")
        .to_path_buf()
}

fn read(path: &str) -> String {
    std::fs::read_to_string(repo().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The targets of the Markdown links `[text](target)` in `text`.
fn link_targets(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("](") {
        rest = &rest[i + 2..];
        if let Some(end) = rest.find(')') {
            out.push(rest[..end].to_owned());
            rest = &rest[end..];
        }
    }
    out
}

#[test]
fn readme_links_resolve_inside_the_repository() {
    let readme = read("README.md");
    let targets = link_targets(&readme);
    assert!(!targets.is_empty(), "the README links to the architecture");
    for target in targets {
        if target.starts_with("http://") || target.starts_with("https://") {
            continue;
        }
        let path = target.split('#').next().unwrap();
        let resolved = repo().join(path);
        assert!(
            resolved.exists(),
            "README links to {target}, which does not exist"
        );
        let canonical = resolved.canonicalize().unwrap();
        assert!(
            canonical.starts_with(repo().canonicalize().unwrap()),
            "README links to {target}, outside the repository"
        );
    }
}

#[test]
fn readme_names_the_minimum_rust_version() {
    let manifest = read("Cargo.toml");
    let version = manifest
        .lines()
        .find_map(|l| l.strip_prefix("rust-version = "))
        .expect("the workspace declares rust-version")
        .trim_matches('"');
    assert!(
        read("README.md").contains(&format!("Rust {version} or newer")),
        "the README should say \"Rust {version} or newer\""
    );
}

/// Following the README's set-up at the root writes these; none may be committed by
/// mistake, and no tracked file may be overwritten.
#[test]
fn files_the_setup_writes_are_ignored_and_untracked() {
    let ignored = read(".gitignore");
    for entry in ["/config.yaml", "/data/", "/.local"] {
        assert!(
            ignored.lines().any(|l| l.trim() == entry),
            ".gitignore lacks {entry}"
        );
    }
    // The annotated example registration is the root's registration.yaml; the example
    // config has the operator's own generated into data/, so it overwrites nothing tracked.
    assert!(read("registration.yaml").contains("as_token: 0000"));
    assert!(read("config/config.example.yaml").contains("registration: data/registration.yaml"));
    let readme = read("README.md");
    assert!(readme.contains("cp config/config.example.yaml config.yaml"));
    assert!(readme.contains("generate-registration -c config.yaml"));
    assert!(readme.contains("chgrp synapse data/registration.yaml"));
}

#[test]
fn the_readme_commands_exist_and_ci_runs_the_test_command() {
    let readme = read("README.md");
    for command in ["./scripts/demo.sh", "./scripts/test.sh"] {
        assert!(
            readme.contains(&format!("    {command}\n")),
            "README gives {command}"
        );
        let path = repo().join(command);
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(&path).unwrap().permissions(),
        );
        assert!(mode & 0o111 != 0, "{command} is executable");
    }
    let ci = read(".ci/run");
    let commands: Vec<&str> = ci
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter(|l| !l.starts_with("set ") && !l.starts_with("cd "))
        .collect();
    assert_eq!(
        commands,
        ["./scripts/test.sh"],
        "CI runs exactly the README's test command"
    );
}
