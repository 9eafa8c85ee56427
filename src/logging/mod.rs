//! Where the process's log goes. Under systemd, when stderr is the journal (systemd.exec(5):
//! `$JOURNAL_STREAM` names the device and inode of the stream it connected), each event is
//! sent to journald natively ([`journald`]): with its priority (`journalctl -p err` finds the
//! errors), its fields as journal fields, and no timestamp of ours (the journal keeps its
//! own). Anywhere else — a terminal, a pipe, a file — the plain one-line format on stderr,
//! coloured only on a terminal.

pub mod journald;

use std::os::unix::fs::MetadataExt;

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

/// Installs the process's logger; `BEACON_LOG` filters (`info` by default).
pub fn init() {
    let filter = EnvFilter::try_from_env("BEACON_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let registry = tracing_subscriber::registry().with(filter);
    if stderr_is_the_journal() {
        match journald::JournaldLayer::connect(journald::SOCKET) {
            Ok(journal) => {
                registry.with(journal).init();
                return;
            }
            // The stream is the journal but its socket is not usable: plain text to it, still
            // without our timestamp (the journal stamps each line).
            Err(_) => {
                registry
                    .with(
                        tracing_subscriber::fmt::layer()
                            .without_time()
                            .with_ansi(false)
                            .with_writer(std::io::stderr),
                    )
                    .init();
                return;
            }
        }
    }
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    registry
        .with(
            tracing_subscriber::fmt::layer()
                .with_ansi(ansi)
                .with_writer(std::io::stderr),
        )
        .init();
}

/// Whether this process's stderr is the stream systemd connected to the journal.
pub fn stderr_is_the_journal() -> bool {
    let Ok(named) = std::env::var("JOURNAL_STREAM") else {
        return false;
    };
    let Ok(stderr) = std::fs::metadata("/proc/self/fd/2") else {
        return false;
    };
    names_stream(&named, stderr.dev(), stderr.ino())
}

/// Whether `$JOURNAL_STREAM` (`<device>:<inode>`, decimal) names the file with `device` and
/// `inode`. A stderr redirected elsewhere (a child's `2>file`) keeps the variable but not the
/// stream, and must not be taken for the journal.
pub fn names_stream(journal_stream: &str, device: u64, inode: u64) -> bool {
    let Some((dev, ino)) = journal_stream.trim().split_once(':') else {
        return false;
    };
    dev.parse::<u64>() == Ok(device) && ino.parse::<u64>() == Ok(inode)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_journal_is_the_stream_the_variable_names_only() {
        assert!(names_stream("2049:12345", 2049, 12345));
        assert!(!names_stream("2049:12345", 2049, 12346), "another file");
        assert!(!names_stream("2049", 2049, 12345));
        assert!(!names_stream("x:y", 0, 0));
        assert!(!names_stream("", 0, 0));
    }
}
