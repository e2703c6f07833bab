//! A process's CPU time and memory from /proc, for the benchmarks.

/// utime + stime of a process, in milliseconds (0 when it is gone).
pub fn cpu_ms(pid: u32) -> f64 {
    task_cpu_ms(&format!("/proc/{pid}/stat"))
}

/// A `/proc/<pid>/status` field in its unit (kB for memory), 0 when absent.
fn status_field(pid: u32, field: &str) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
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
        let tid: u32 = match task.file_name().to_str().and_then(|t| t.parse().ok()) {
            Some(t) => t,
            None => continue,
        };
        let dir = format!("/proc/{pid}/task/{tid}");
        let name: String = std::fs::read_to_string(format!("{dir}/comm"))
            .unwrap_or_default()
            .trim()
            .chars()
            .filter(|c| !c.is_ascii_digit())
            .collect();
        let status = std::fs::read_to_string(format!("{dir}/status")).unwrap_or_default();
        let switches: u64 = status
            .lines()
            .filter_map(|l| {
                l.strip_prefix("voluntary_ctxt_switches:")
                    .or_else(|| l.strip_prefix("nonvoluntary_ctxt_switches:"))
            })
            .filter_map(|v| v.trim().parse::<u64>().ok())
            .sum();
        let entry = groups.entry(name).or_insert((0.0, 0));
        entry.0 += task_cpu_ms(&format!("{dir}/stat"));
        entry.1 += switches;
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
