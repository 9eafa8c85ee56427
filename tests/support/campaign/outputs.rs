//! The appliance's outputs under the campaign's control: a Mosquitto of its own (the
//! `[mqtt]` output; `mqtt_support::PrivateBroker`, stoppable and restartable on the same
//! port) and an SMTP server of its own (`scripts/smtp-sink.py` under the test environment's
//! aiosmtpd, the `[notify]` e-mail channel), which it can stop and start again on the same
//! port while the messages it received stay readable in its directory.

// Shared by the campaign, notify_run and notify_email; each uses part of it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;

/// The one e-mail recipient of every call.
pub const RECIPIENT: &str = "desk@campaign.test";

/// `scripts/smtp-sink.py` on a port that stays the same over stops and starts.
pub struct SmtpSink {
    pub port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
    /// Extra arguments of the sink (STARTTLS certificate, a required login).
    options: Vec<String>,
}

impl SmtpSink {
    /// Starts the sink on a free port.
    pub fn start() -> SmtpSink {
        SmtpSink::start_with(&[])
    }

    /// Starts the sink with `options` (`--cert F --key F`, `--user U --password P`).
    pub fn start_with(options: &[&str]) -> SmtpSink {
        let mut sink = SmtpSink {
            port: 0,
            dir: tempfile::tempdir().expect("sink dir"),
            child: None,
            options: options.iter().map(|o| o.to_string()).collect(),
        };
        sink.resume();
        sink
    }

    /// Starts the sink (again, on the same port once it has one) and waits until it listens.
    pub fn resume(&mut self) {
        if self.child.is_some() {
            return;
        }
        let python = std::env::var("BEACON_TEST_SMTP_PYTHON")
            .expect("BEACON_TEST_SMTP_PYTHON: run eval \"$(scripts/test-env)\" first");
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/smtp-sink.py");
        let mut command = Command::new(python);
        command
            .arg(script)
            .arg("--dir")
            .arg(self.dir.path())
            .args(&self.options);
        if self.port != 0 {
            command.arg("--port").arg(self.port.to_string());
        }
        // stdin stays open (the sink stops when it closes); stdout carries the port.
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start smtp-sink.py");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("the sink's port line");
        let port: u16 = line.trim().parse().unwrap_or_else(|_| {
            let _ = child.kill();
            let _ = child.wait();
            panic!("smtp-sink.py did not start (printed {line:?})")
        });
        assert!(
            self.port == 0 || port == self.port,
            "smtp-sink.py came back on {port}, not {}",
            self.port
        );
        self.port = port;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "smtp-sink.py did not listen on {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the sink: connections are refused until [`SmtpSink::resume`].
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Every message received so far (over every start), headers unfolded and the body
    /// decoded, in arrival order.
    pub fn messages(&self) -> Vec<String> {
        self.raw_messages()
            .iter()
            .map(|raw| readable(raw))
            .collect()
    }

    /// Every message received so far, as the server stored it, in arrival order.
    pub fn raw_messages(&self) -> Vec<String> {
        let mut files: Vec<(u32, PathBuf)> = std::fs::read_dir(self.dir.path())
            .map(|dir| {
                dir.flatten()
                    .filter_map(|e| {
                        let name = e.file_name().to_string_lossy().into_owned();
                        let n = name.strip_suffix(".eml")?.parse().ok()?;
                        Some((n, e.path()))
                    })
                    .collect()
            })
            .unwrap_or_default();
        files.sort();
        files
            .into_iter()
            .filter_map(|(_, path)| std::fs::read_to_string(path).ok())
            .collect()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A message as text to search: unfolded headers, then the body decoded from
/// quoted-printable or base64 when it says so.
fn readable(raw: &str) -> String {
    let raw = raw.replace("\r\n", "\n");
    let (head, body) = raw.split_once("\n\n").unwrap_or((&raw, ""));
    let head = head.replace("\n ", " ").replace("\n\t", " ");
    let encoding = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case("content-transfer-encoding")
                .then(|| v.trim().to_ascii_lowercase())
        })
        .unwrap_or_default();
    let body = match encoding.as_str() {
        "quoted-printable" => quoted_printable(body),
        "base64" => base64::engine::general_purpose::STANDARD
            .decode(body.split_whitespace().collect::<String>())
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_else(|_| body.to_string()),
        _ => body.to_string(),
    };
    format!("{head}\n\n{body}")
}

fn quoted_printable(text: &str) -> String {
    let joined = text.replace("=\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'=' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
            if let Ok(b) = u8::from_str_radix(hex, 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
