//! The bridge's layers go one way (docs/ARCHITECTURE.md, "Layers"):
//!
//! `model <- {ids, health, notify, limits} <- {config, store, metrics} <- core <- {networks, fronts} <- app`
//!
//! One crate keeps this by test rather than by crate boundaries (see the architecture
//! document for why): every `crate::<module>` path in the code of a module (`use` lines
//! and paths written inline; comments do not count) must name a module of a lower rank.
//! Modules of the same rank do not import each other either: the networks never see a
//! front, the fronts never see a network, the store does not read the config.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Each top-level module of `bridge/src` and its rank.
const RANKS: &[(&str, u8)] = &[
    ("model", 0),
    ("ids", 1),
    ("health", 1),
    ("notify", 1),
    ("limits", 1),
    ("config", 2),
    ("store", 2),
    ("metrics", 2),
    ("core", 3),
    ("networks", 4),
    ("fronts", 4),
    ("app", 5),
    ("main", 6),
];

fn rank(module: &str) -> u8 {
    RANKS
        .iter()
        .find(|(name, _)| *name == module)
        .unwrap_or_else(|| panic!("module {module} has no rank in RANKS: give it one"))
        .1
}

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file belongs to (`core/intake.rs` -> `core`, `app.rs` -> `app`).
fn module_of(src: &Path, file: &Path) -> String {
    let relative = file.strip_prefix(src).expect("under src");
    let first = relative.components().next().expect("a component");
    first
        .as_os_str()
        .to_string_lossy()
        .trim_end_matches(".rs")
        .to_owned()
}

/// The top-level modules a file's code names through `crate::`, with the line.
fn imports(text: &str) -> Vec<(String, usize)> {
    let mut found = Vec::new();
    // `use crate::{a, b::c}` may span lines: read statement by statement.
    let code: String = text
        .lines()
        .map(|line| match line.find("//") {
            Some(i) => &line[..i],
            None => line,
        })
        .collect::<Vec<_>>()
        .join("\n");
    for (i, _) in code.match_indices("crate::") {
        let line = code[..i].matches('\n').count() + 1;
        let rest = &code[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let group = &group[..group.find('}').unwrap_or(group.len())];
            for part in group.split(',') {
                let name: String = part
                    .trim()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    found.push((name, line));
                }
            }
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            found.push((name, line));
        }
    }
    found
}

fn violations(src: &Path) -> BTreeSet<(String, String, String)> {
    let mut files = Vec::new();
    sources(src, &mut files);
    let mut out = BTreeSet::new();
    for file in files {
        let from = module_of(src, &file);
        if from == "lib" {
            continue;
        }
        let text = std::fs::read_to_string(&file).expect("read");
        for (to, line) in imports(&text) {
            if to == from || to == "self" || to == "super" {
                continue;
            }
            if rank(&to) >= rank(&from) {
                let at = format!(
                    "{}:{line}",
                    file.strip_prefix(src).unwrap().to_string_lossy()
                );
                out.insert((from.clone(), to, at));
            }
        }
    }
    out
}

#[test]
fn every_import_goes_down_a_layer() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let found = violations(&src);
    assert!(
        found.is_empty(),
        "imports that go up or sideways (module -> module at file:line):\n{}",
        found
            .iter()
            .map(|(f, t, at)| format!("  {f} -> {t} at {at}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// The check itself: an upward import, inline or grouped, is found; comments are not.
#[test]
fn an_upward_import_is_caught() {
    let dir = tempfile::tempdir().expect("tempdir");
    let src = dir.path();
    std::fs::create_dir_all(src.join("store")).unwrap();
    std::fs::create_dir_all(src.join("model")).unwrap();
    std::fs::write(
        src.join("store/records.rs"),
        "use crate::model::NetworkId;\n// see crate::core::Bridge\nuse crate::{model, fronts::matrix};\n",
    )
    .unwrap();
    std::fs::write(
        src.join("model/mod.rs"),
        "fn f() { let _ = crate::core::now(); }\n",
    )
    .unwrap();
    let found: Vec<_> = violations(src)
        .into_iter()
        .map(|(f, t, at)| format!("{f} -> {t} at {at}"))
        .collect();
    assert_eq!(
        found,
        [
            "model -> core at model/mod.rs:1",
            "store -> fronts at store/records.rs:3"
        ]
    );
}

/// The files the architecture document's map names under `bridge/src/` (see its "The
/// map": a tree by indentation, two spaces a level; a folder's line may list its files in
/// its description; a line of bare file names lists files of the folder it stands in).
fn files_in_the_map(doc: &str) -> BTreeSet<String> {
    let block = doc
        .split("## The map")
        .nth(1)
        .and_then(|rest| rest.split("```").nth(1))
        .expect("a code block under \"## The map\"");
    let is_file = |t: &str| {
        t.ends_with(".rs")
            && t.chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.".contains(c))
    };
    let mut named = BTreeSet::new();
    let mut folders: Vec<(usize, String)> = Vec::new();
    let mut in_src = false;
    // The folder the previous item line stood for, for its continuation lines.
    let mut continued: Option<(usize, String)> = None;
    for line in block.lines().filter(|l| !l.trim().is_empty()) {
        let indent = line.len() - line.trim_start().len();
        let mut words = line.split_whitespace();
        let first = words.next().unwrap_or_default();
        if indent == 0 {
            in_src = first == "bridge/src/";
            folders.clear();
            continue;
        }
        if !in_src {
            continue;
        }
        let level = indent / 2;
        if let Some((item_indent, folder)) = &continued {
            if indent > *item_indent + 2 && !is_file(first) && !first.ends_with('/') {
                for word in line.split_whitespace() {
                    let word = word.trim_matches(|c: char| ",();:".contains(c));
                    if is_file(word) && !folder.is_empty() {
                        named.insert(format!("{folder}{word}"));
                    }
                }
                continue;
            }
        }
        folders.retain(|(l, _)| *l < level);
        let parent: String = folders.iter().map(|(_, f)| f.as_str()).collect();
        if let Some(name) = first.strip_suffix('/') {
            let folder = format!("{parent}{name}/");
            for word in words {
                let word = word.trim_matches(|c: char| ",();:".contains(c));
                if is_file(word) {
                    named.insert(format!("{folder}{word}"));
                }
            }
            folders.push((level, format!("{name}/")));
            continued = Some((indent, folder));
        } else if is_file(first) {
            named.insert(format!("{parent}{first}"));
            let rest: Vec<&str> = words.collect();
            if rest.iter().all(|w| is_file(w)) {
                for word in rest {
                    named.insert(format!("{parent}{word}"));
                }
            }
            continued = Some((indent, String::new()));
        }
    }
    named
}

/// Every file of `bridge/src` is in the architecture's map, and the map names no file
/// that does not exist.
#[test]
fn the_architecture_maps_every_file() {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let src = manifest.join("src");
    let doc = std::fs::read_to_string(manifest.join("../docs/ARCHITECTURE.md")).expect("doc");
    let named = files_in_the_map(&doc);
    let mut files = Vec::new();
    sources(&src, &mut files);
    let actual: BTreeSet<String> = files
        .iter()
        .map(|f| f.strip_prefix(&src).unwrap().to_string_lossy().into_owned())
        .collect();
    let missing: Vec<_> = actual.difference(&named).collect();
    let stale: Vec<_> = named.difference(&actual).collect();
    assert!(
        missing.is_empty() && stale.is_empty(),
        "docs/ARCHITECTURE.md's map lacks {missing:?} and names {stale:?}, which do not exist"
    );
}
