//! A Kafka-protocol broker of the campaign's own: the test environment's tansu binary and
//! certificates (from `scripts/test-env`'s cache), started the same way — tansu in memory on
//! one port, stunnel (SASL_SSL front) on another — so the campaign can stop and start the
//! broker without disturbing other tests that share the environment's broker on 9093.
//!
//! Both processes are children of the test and are killed by pid when it ends (also when it
//! panics: `Drop`).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The private broker: tansu plus its TLS front.
pub struct PrivateBroker {
    pub bootstrap: String,
    pub ca: PathBuf,
    work: tempfile::TempDir,
    tansu: Child,
    front: Option<Child>,
    front_port: u16,
    backend_port: u16,
    server_pem: PathBuf,
    server_key: PathBuf,
}

/// Where `scripts/test-env` keeps its build and certificates: the CA it exported lives in
/// `<cache>/kafka/ca.pem`, the broker binary in `<cache>/bin/tansu`.
fn environment_files() -> (PathBuf, PathBuf) {
    let ca = PathBuf::from(std::env::var("BEACON_TEST_KAFKA_CA").unwrap_or_else(|_| {
        panic!("BEACON_TEST_KAFKA_CA is not set: run `eval \"$(scripts/test-env)\"` first")
    }));
    let kafka_dir = ca.parent().expect("the CA's directory").to_path_buf();
    let tansu = kafka_dir
        .parent()
        .expect("the cache directory")
        .join("bin/tansu");
    assert!(
        tansu.is_file(),
        "{} is missing: run scripts/test-env",
        tansu.display()
    );
    (kafka_dir, tansu)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn port_open(port: u16) -> bool {
    std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
}

fn wait_for_port(port: u16, open: bool, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while port_open(port) != open {
        assert!(
            Instant::now() < deadline,
            "{what} did not come up on {port}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

impl PrivateBroker {
    pub fn start() -> PrivateBroker {
        let (kafka_dir, tansu_bin) = environment_files();
        let work = tempfile::tempdir().expect("broker work dir");
        let backend_port = free_port();
        let front_port = free_port();
        let tansu = Command::new(&tansu_bin)
            .args([
                "broker",
                "--listener-url",
                &format!("tcp://127.0.0.1:{backend_port}"),
                "--advertised-listener-url",
                &format!("tcp://localhost:{front_port}"),
                "--storage-engine",
                "memory://tansu/",
                "--authentication",
                "--silent",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start tansu");
        let mut broker = PrivateBroker {
            bootstrap: format!("localhost:{front_port}"),
            ca: kafka_dir.join("ca.pem"),
            work,
            tansu,
            front: None,
            front_port,
            backend_port,
            server_pem: kafka_dir.join("server.pem"),
            server_key: kafka_dir.join("server.key"),
        };
        wait_for_port(backend_port, true, "tansu");
        broker.start_front();
        broker
    }

    /// Starts the TLS front (stunnel), as `scripts/test-env` does.
    pub fn start_front(&mut self) {
        if self.front.is_some() {
            return;
        }
        let conf = self.work.path().join("stunnel.conf");
        std::fs::write(
            &conf,
            format!(
                "foreground = yes\npid =\noutput = {}\n[kafka]\naccept = 127.0.0.1:{}\nconnect = 127.0.0.1:{}\ncert = {}\nkey = {}\n",
                self.work.path().join("stunnel.log").display(),
                self.front_port,
                self.backend_port,
                self.server_pem.display(),
                self.server_key.display()
            ),
        )
        .expect("stunnel config");
        let child = Command::new("stunnel4")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start stunnel4");
        self.front = Some(child);
        wait_for_port(self.front_port, true, "stunnel");
    }

    /// Stops the TLS front: clients see the broker gone (connections reset, no new ones).
    pub fn stop_front(&mut self) {
        if let Some(mut child) = self.front.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        wait_for_port(self.front_port, false, "stunnel (stopping)");
    }

    pub fn work_dir(&self) -> &Path {
        self.work.path()
    }
}

impl Drop for PrivateBroker {
    fn drop(&mut self) {
        if let Some(mut child) = self.front.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = self.tansu.kill();
        let _ = self.tansu.wait();
    }
}
