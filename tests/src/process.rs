//! A process's CPU time and memory from /proc, for the benchmarks.

/// utime + stime of a process, in milliseconds (0 when it is gone).
pub fn cpu_ms(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
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
    let hz = 100.0;
    (ticks(11) + ticks(12)) * 1000.0 / hz
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
