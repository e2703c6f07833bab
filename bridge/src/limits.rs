//! What the operating system lets the process have: open files.
//!
//! Every login is at least one socket (an MSN login one more per open conversation), so
//! a bridge whose open-files limit is below its logins fails to connect the rest
//! ("Too many open files") while the others work. The default soft limit of a shell or
//! a systemd service is 1,024. The bridge does not raise it itself: the systemd unit
//! forbids `setrlimit` (`SystemCallFilter=~@resources`) and sets `LimitNOFILE=` instead;
//! at start-up it says when the logins it resumes will not fit.

/// Descriptors the bridge uses besides its logins' sockets: the database, its listeners,
/// homeserver connections (at most 64 requests at once), XMPP links, threads.
pub const OTHER_FILES: u64 = 200;

/// The soft open-files limit from `/proc/self/limits` (`None` where there is none, or
/// "unlimited").
pub fn open_files() -> Option<u64> {
    parse_open_files(&std::fs::read_to_string("/proc/self/limits").ok()?)
}

fn parse_open_files(limits: &str) -> Option<u64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// A warning when `logins` connections and the bridge's own files do not fit in `limit`.
pub fn too_few_files(logins: u64, limit: u64) -> Option<String> {
    let needed = logins + OTHER_FILES;
    (needed > limit).then(|| {
        format!(
            "{logins} logins to resume, and this process may open only {limit} files: about \
             {needed} are needed (one socket per login). Raise the limit (systemd: \
             LimitNOFILE=; a shell: ulimit -n), or logins past it fail with \"Too many open files\"."
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_soft_limit_is_read_from_proc_self_limits() {
        let limits = "Limit                     Soft Limit           Hard Limit           Units     \n\
                      Max processes             95442                95442                processes \n\
                      Max open files            1024                 524288               files     \n\
                      Max locked memory         8388608              8388608              bytes     \n";
        assert_eq!(parse_open_files(limits), Some(1024));
        let unlimited =
            "Max open files            unlimited            unlimited            files     \n";
        assert_eq!(parse_open_files(unlimited), None);
        assert_eq!(parse_open_files("nothing here"), None);
        // This machine has a limit, and it is readable.
        assert!(open_files().is_some_and(|n| n > 0));
    }

    #[test]
    fn a_warning_only_when_the_logins_do_not_fit() {
        assert_eq!(too_few_files(500, 1024), None);
        let warning = too_few_files(1000, 1024).expect("1,200 files needed");
        assert!(warning.contains("1000 logins") && warning.contains("LimitNOFILE="));
        assert_eq!(too_few_files(60_000, 65_536), None);
    }
}
