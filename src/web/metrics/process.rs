//! The standard `process_*` metrics Prometheus' client libraries export (CPU seconds,
//! resident and virtual memory, open and maximum file descriptors, start time), read from
//! Linux's `/proc/self`. The parsing is pure; [`read`] does the reading and gives `None`
//! where `/proc` is not there.

use std::fs;

/// One look at the process.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcessStats {
    /// User and system CPU time.
    pub cpu_seconds: f64,
    pub resident_memory_bytes: u64,
    pub virtual_memory_bytes: u64,
    /// Start time, seconds since the Unix epoch.
    pub start_time_seconds: f64,
    pub open_fds: u64,
    /// The soft limit on open files; `None` when unlimited.
    pub max_fds: Option<u64>,
}

/// The kernel's units for `/proc/self/stat`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Units {
    /// Clock ticks per second (`sysconf(_SC_CLK_TCK)`).
    pub ticks_per_second: f64,
    pub page_bytes: u64,
    /// Boot time, seconds since the Unix epoch (`btime` of `/proc/stat`).
    pub boot_time_seconds: u64,
}

/// Reads `/proc/self`; `None` when it cannot be read or parsed.
pub fn read() -> Option<ProcessStats> {
    let units = Units {
        ticks_per_second: sysconf(libc::_SC_CLK_TCK)? as f64,
        page_bytes: sysconf(libc::_SC_PAGESIZE)?,
        boot_time_seconds: boot_time(&fs::read_to_string("/proc/stat").ok()?)?,
    };
    let stat = parse_stat(&fs::read_to_string("/proc/self/stat").ok()?, units)?;
    let open_fds = fs::read_dir("/proc/self/fd").ok()?.count() as u64;
    let max_fds = fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|limits| max_open_files(&limits));
    Some(ProcessStats {
        open_fds,
        max_fds,
        ..stat
    })
}

fn sysconf(name: libc::c_int) -> Option<u64> {
    // SAFETY: sysconf only reads a configuration value; it has no preconditions.
    let value = unsafe { libc::sysconf(name) };
    u64::try_from(value).ok().filter(|v| *v > 0)
}

/// `btime` of `/proc/stat`.
fn boot_time(proc_stat: &str) -> Option<u64> {
    proc_stat
        .lines()
        .find_map(|line| line.strip_prefix("btime "))
        .and_then(|value| value.trim().parse().ok())
}

/// CPU, memory and start time from `/proc/self/stat` (see proc(5)); file descriptors left
/// at zero for the caller.
fn parse_stat(stat: &str, units: Units) -> Option<ProcessStats> {
    // The command name (field 2) is in parentheses and may itself hold spaces or ')'.
    let after_name = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // proc(5) numbers fields from 1; `fields[0]` is field 3 (state).
    let field = |number: usize| -> Option<u64> { fields.get(number - 3)?.parse().ok() };
    let ticks = |number: usize| field(number).map(|t| t as f64 / units.ticks_per_second);
    Some(ProcessStats {
        cpu_seconds: ticks(14)? + ticks(15)?,
        start_time_seconds: units.boot_time_seconds as f64 + ticks(22)?,
        virtual_memory_bytes: field(23)?,
        resident_memory_bytes: field(24)?.saturating_mul(units.page_bytes),
        open_fds: 0,
        max_fds: None,
    })
}

/// The soft limit of "Max open files" in `/proc/self/limits`; `None` when unlimited.
fn max_open_files(limits: &str) -> Option<u64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const UNITS: Units = Units {
        ticks_per_second: 100.0,
        page_bytes: 4096,
        boot_time_seconds: 1_700_000_000,
    };

    #[test]
    fn stat_fields_become_seconds_and_bytes_even_with_a_parenthesis_in_the_name() {
        // pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt
        // utime stime cutime cstime priority nice threads itrealvalue starttime vsize rss …
        let stat = "4242 (beacon) x) S 1 4242 4242 0 -1 4194560 900 0 0 0 \
                    250 50 0 0 20 0 5 0 12345 104857600 2560 18446744073709551615";
        let stats = parse_stat(stat, UNITS).expect("parses");
        assert_eq!(stats.cpu_seconds, 3.0);
        assert_eq!(stats.start_time_seconds, 1_700_000_123.45);
        assert_eq!(stats.virtual_memory_bytes, 104_857_600);
        assert_eq!(stats.resident_memory_bytes, 2560 * 4096);
    }

    #[test]
    fn a_truncated_stat_is_not_read() {
        assert_eq!(parse_stat("4242 (beacon) S 1 2", UNITS), None);
    }

    #[test]
    fn limits_and_boot_time_are_found() {
        let limits = "Limit                     Soft Limit           Hard Limit           Units     \n\
                      Max processes             95232                95232                processes \n\
                      Max open files            1024                 524288               files     \n";
        assert_eq!(max_open_files(limits), Some(1024));
        let unlimited =
            "Max open files            unlimited            unlimited            files\n";
        assert_eq!(max_open_files(unlimited), None);
        assert_eq!(
            boot_time("cpu  1 2 3\nbtime 1764950000\nprocesses 9\n"),
            Some(1_764_950_000)
        );
    }

    #[test]
    fn this_process_can_be_read() {
        let stats = read().expect("/proc/self on Linux");
        assert!(stats.resident_memory_bytes > 0);
        assert!(stats.open_fds >= 3, "{stats:?}");
        assert!(stats.start_time_seconds > 1_600_000_000.0, "{stats:?}");
    }
}
