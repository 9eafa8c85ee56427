//! Talking to systemd as a `Type=notify` service: `READY=1` once the pipeline runs,
//! `STATUS=…` lines for `systemctl status`, `WATCHDOG=1` while the pipeline turns (see
//! [`watchdog`]) and `STOPPING=1` at shutdown.
//!
//! The notify protocol is one datagram of `KEY=value` lines sent to the `AF_UNIX` socket named
//! by `$NOTIFY_SOCKET` (a path, or `@name` for the abstract namespace), so it is written here
//! rather than taken from a crate: a [`SystemdNotifier`] can then be aimed at any socket without
//! touching the process environment, which is what lets the tests bind a fake socket per test
//! while other tests run in parallel. Outside systemd (no `$NOTIFY_SOCKET`) every call is a
//! no-op. Sending never fails the service: a lost datagram is logged and the watchdog, if
//! any, is what notices.

pub mod watchdog;

use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::time::Duration;

/// Where systemd listens for this service's notifications.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotifyAddress {
    /// A socket file.
    Path(PathBuf),
    /// A Linux abstract-namespace socket (`$NOTIFY_SOCKET` starting with `@`), without the `@`.
    Abstract(Vec<u8>),
}

impl NotifyAddress {
    /// Parses a `$NOTIFY_SOCKET` value; `None` for an empty or relative one (systemd only
    /// ever sets absolute paths or `@` names).
    pub fn parse(value: &str) -> Option<NotifyAddress> {
        if let Some(name) = value.strip_prefix('@') {
            return (!name.is_empty()).then(|| NotifyAddress::Abstract(name.as_bytes().to_vec()));
        }
        value
            .starts_with('/')
            .then(|| NotifyAddress::Path(PathBuf::from(value)))
    }
}

/// Sends service-manager notifications, or nothing when there is no service manager.
#[derive(Debug, Clone, Default)]
pub struct SystemdNotifier {
    address: Option<NotifyAddress>,
}

impl SystemdNotifier {
    /// The notifier systemd asked for through `$NOTIFY_SOCKET` (a no-op one when unset).
    pub fn from_env() -> SystemdNotifier {
        SystemdNotifier {
            address: std::env::var("NOTIFY_SOCKET")
                .ok()
                .and_then(|v| NotifyAddress::parse(&v)),
        }
    }

    /// A notifier aimed at `address` (tests, or a caller that already parsed the variable).
    pub fn to(address: NotifyAddress) -> SystemdNotifier {
        SystemdNotifier {
            address: Some(address),
        }
    }

    /// Whether a service manager is listening.
    pub fn is_active(&self) -> bool {
        self.address.is_some()
    }

    /// The service is up: started and consuming. `status` is shown by `systemctl status`.
    pub fn ready(&self, status: &str) {
        self.send(&format!("READY=1\nSTATUS={}\n", one_line(status)));
    }

    /// A new status line for `systemctl status`.
    pub fn status(&self, status: &str) {
        self.send(&format!("STATUS={}\n", one_line(status)));
    }

    /// The pipeline turned since the last ping: resets systemd's watchdog timer.
    pub fn watchdog(&self) {
        self.send("WATCHDOG=1\n");
    }

    /// The service is shutting down (systemd then waits for the exit, not for the watchdog).
    pub fn stopping(&self) {
        self.send("STOPPING=1\nSTATUS=shutting down\n");
    }

    fn send(&self, message: &str) {
        let Some(address) = &self.address else {
            return;
        };
        if let Err(e) = send_to(address, message.as_bytes()) {
            let state = message.lines().next().unwrap_or_default();
            tracing::warn!(error = %e, state, "could not notify the service manager");
        }
    }
}

fn send_to(address: &NotifyAddress, message: &[u8]) -> std::io::Result<()> {
    let socket = UnixDatagram::unbound()?;
    let sent = match address {
        NotifyAddress::Path(path) => socket.send_to(message, path)?,
        NotifyAddress::Abstract(name) => abstract_send(&socket, name, message)?,
    };
    if sent == message.len() {
        Ok(())
    } else {
        Err(std::io::Error::other("short write"))
    }
}

#[cfg(target_os = "linux")]
fn abstract_send(socket: &UnixDatagram, name: &[u8], message: &[u8]) -> std::io::Result<usize> {
    use std::os::linux::net::SocketAddrExt;
    let address = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
    socket.send_to_addr(message, &address)
}

#[cfg(not(target_os = "linux"))]
fn abstract_send(_socket: &UnixDatagram, _name: &[u8], _message: &[u8]) -> std::io::Result<usize> {
    Err(std::io::Error::other(
        "abstract sockets exist on Linux only",
    ))
}

/// A status text as one line (a newline would start a new `KEY=value` assignment).
fn one_line(text: &str) -> String {
    text.replace(['\n', '\r'], " ")
}

/// The watchdog interval systemd expects pings within (`WatchdogSec=`), from
/// `$WATCHDOG_USEC` and `$WATCHDOG_PID`; `None` when there is no watchdog for this process.
pub fn watchdog_interval_from_env() -> Option<Duration> {
    watchdog_interval(
        std::env::var("WATCHDOG_USEC").ok().as_deref(),
        std::env::var("WATCHDOG_PID").ok().as_deref(),
        std::process::id(),
    )
}

/// Pure part of [`watchdog_interval_from_env`]: the watchdog applies when `usec` is a positive
/// number and `pid` is unset or names this process (`own_pid`).
pub fn watchdog_interval(usec: Option<&str>, pid: Option<&str>, own_pid: u32) -> Option<Duration> {
    let usec: u64 = usec?.trim().parse().ok().filter(|u| *u > 0)?;
    match pid {
        Some(pid) if pid.trim().parse::<u32>().ok() != Some(own_pid) => None,
        _ => Some(Duration::from_micros(usec)),
    }
}
