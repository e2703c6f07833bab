//! What the benchmarks in `tests/benches/` share: their settings from the environment,
//! their runtime, the line that says on what machine they ran.

/// A number from the environment variable `name`, `default` when unset or unreadable.
pub fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The runtime a benchmark's `main` runs in: two workers, as the machine has two cores.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// "N CPUs, load average …": printed with each benchmark's figures (the noise).
pub fn machine() -> String {
    format!(
        "{} CPUs, load average {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    )
}
