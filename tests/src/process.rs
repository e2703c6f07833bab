//! A process's CPU time and memory from /proc, for the benchmarks.

/// utime + stime of a process, in milliseconds (0 when it is gone).
pub fn cpu_ms(pid: u32) -> f64 {
    task_cpu_ms(&format!("/proc/{pid}/stat"))
}

/// A `/proc/<pid>/status` field in its unit (kB for memory), 0 when absent.
fn status_field(pid: u32, field: &str) -> f64 {
    status_value(&format!("/proc/{pid}"), field)
}

/// A field of `<dir>/status` (a process's or a thread's), 0 when absent.
fn status_value(dir: &str, field: &str) -> f64 {
    let status = std::fs::read_to_string(format!("{dir}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .unwrap_or(0.0)
}

/// Resident set size in MB (MiB).
pub fn rss_mb(pid: u32) -> f64 {
    status_field(pid, "VmRSS") / 1024.0
}

/// The process's thread count.
pub fn threads(pid: u32) -> usize {
    status_field(pid, "Threads") as usize
}

/// CPU time (ms) and context switches (voluntary + involuntary) of a process's live
/// threads, summed per thread name with its digits dropped (`sled-io-3` -> `sled-io-`),
/// so that a benchmark can show where the time goes and how often threads switch.
pub fn thread_groups(pid: u32) -> std::collections::BTreeMap<String, (f64, u64)> {
    let mut groups = std::collections::BTreeMap::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return groups;
    };
    for task in tasks.flatten() {
        let dir = task.path().display().to_string();
        let name: String = std::fs::read_to_string(format!("{dir}/comm"))
            .unwrap_or_default()
            .trim()
            .chars()
            .filter(|c| !c.is_ascii_digit())
            .collect();
        let switches = status_value(&dir, "voluntary_ctxt_switches")
            + status_value(&dir, "nonvoluntary_ctxt_switches");
        let entry = groups.entry(name).or_insert((0.0, 0));
        entry.0 += task_cpu_ms(&format!("{dir}/stat"));
        entry.1 += switches as u64;
    }
    groups
}

/// utime + stime from a `stat` file, in milliseconds.
fn task_cpu_ms(path: &str) -> f64 {
    let stat = std::fs::read_to_string(path).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 (1-based), 11 and 12 after the ')'.
    (ticks(11) + ticks(12)) * 1000.0 / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A named thread shows as its group, digits dropped, with the switches it made.
    #[test]
    fn thread_groups_name_this_process_threads() {
        std::thread::Builder::new()
            .name("probe-7".into())
            .spawn(|| {
                // Sleeping gives up the CPU: at least one voluntary switch.
                std::thread::sleep(std::time::Duration::from_millis(2));
                let groups = thread_groups(std::process::id());
                let (_, switches) = groups.get("probe-").copied().expect("probe- group");
                assert!(switches > 0, "{groups:?}");
                assert!(!groups.contains_key("probe-7"), "{groups:?}");
            })
            .expect("thread")
            .join()
            .expect("probe");
    }
}
