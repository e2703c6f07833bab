//! What a failing test shows of a server's or the bridge's logs: their last lines.

use std::path::Path;

/// `--- <title> (last n lines) ---` and the last `n` lines of `text`.
pub fn tail(title: &str, text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = format!("--- {title} (last {n} lines) ---\n");
    for line in &lines[lines.len().saturating_sub(n)..] {
        out += line;
        out.push('\n');
    }
    out
}

/// [`tail`] of each file `names` in `dir` (a missing file reads as empty).
pub fn tails(dir: &Path, names: &[&str], n: usize) -> String {
    names
        .iter()
        .map(|name| {
            let text = std::fs::read_to_string(dir.join(name)).unwrap_or_default();
            tail(name, &text, n)
        })
        .collect()
}
