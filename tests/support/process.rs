//! `beacon` as a child process, the way the service runs it: the command (with the test
//! runner's own `BEACON_*` settings removed), its log lines as they come (and all of them
//! kept), and waiting for a line; the configuration sections and the `beacon login` of an
//! appliance wired to the test broker and the fake Microsoft cloud.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc::UnboundedReceiver;

use super::fake_cloud::{FakeCloud, FakeOptions};
use super::kafka::{broker, connection_string, create_topic};
use super::unique;

/// `beacon <args> --config <config>`, as [`beacon_command`] makes it.
pub fn beacon(args: &[&str], config: &Path) -> Command {
    let mut cmd = beacon_command();
    cmd.args(args).arg("--config").arg(config);
    cmd
}

/// The `beacon` binary without arguments: none of the test runner's own `BEACON_*` settings
/// (the `BEACON_TEST_*` ones stay), and ended with the test that starts it. The kernel kills
/// the child when the thread that started it ends (`PR_SET_PDEATHSIG`): a test that panics
/// no longer leaves a `beacon run` behind, still consuming its hub. So start it from the
/// test's own thread or a runtime worker, never from `spawn_blocking` (whose threads end
/// when idle).
pub fn beacon_command() -> Command {
    use std::os::unix::process::CommandExt as _;
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_beacon"));
    for (k, _) in std::env::vars() {
        if k.starts_with("BEACON_") && !k.starts_with("BEACON_TEST_") {
            cmd.env_remove(k);
        }
    }
    // SAFETY: runs in the forked child before exec; prctl is async-signal-safe and changes
    // only the child's own state.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd
}

/// The child's stderr (the log) line by line, and all of it kept.
pub struct Log {
    pub lines: UnboundedReceiver<String>,
    pub all: Arc<Mutex<String>>,
}

impl Log {
    /// Follows `child`'s stderr (which must be piped).
    pub fn follow(child: &mut Child) -> Log {
        let stderr = child.stderr.take().expect("stderr is piped");
        let (tx, lines) = tokio::sync::mpsc::unbounded_channel();
        let all = Arc::new(Mutex::new(String::new()));
        let keep = all.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Ok(mut all) = keep.lock() {
                    all.push_str(&line);
                    all.push('\n');
                }
                let _ = tx.send(line);
            }
        });
        Log { lines, all }
    }

    /// The next line containing `needle`, waiting up to `within`.
    pub async fn wait_for(&mut self, needle: &str, within: Duration) -> String {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            match tokio::time::timeout_at(deadline, self.lines.recv()).await {
                Ok(Some(line)) if line.contains(needle) => return line,
                Ok(Some(_)) => {}
                _ => panic!("no log line containing {needle:?} within {within:?}"),
            }
        }
    }

    /// The next line containing any of `needles`, waiting up to `within`.
    pub async fn wait_for_any(&mut self, needles: &[&str], within: Duration) -> String {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            match tokio::time::timeout_at(deadline, self.lines.recv()).await {
                Ok(Some(line)) if needles.iter().any(|n| line.contains(n)) => return line,
                Ok(Some(_)) => {}
                _ => panic!("no log line containing any of {needles:?} within {within:?}"),
            }
        }
    }

    /// Everything logged so far.
    pub fn text(&self) -> String {
        self.all.lock().map(|a| a.clone()).unwrap_or_default()
    }
}

/// The value of `key=` in a log line (quotes removed).
pub fn field(line: &str, key: &str) -> Option<String> {
    let start = line.find(&format!("{key}="))? + key.len() + 1;
    let rest = &line[start..];
    let value = if let Some(quoted) = rest.strip_prefix('"') {
        quoted.split('"').next()?
    } else {
        rest.split_whitespace().next()?
    };
    Some(value.to_string())
}

/// Sends SIGTERM and waits for the child; returns whether it exited cleanly.
pub async fn terminate(child: Child) -> bool {
    let pid = child.id().to_string();
    let killed = Command::new("kill")
        .arg("-TERM")
        .arg(&pid)
        .status()
        .is_ok_and(|s| s.success());
    let mut child = child;
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .expect("join")
        .expect("wait");
    killed && status.success()
}

/// The `[eventhub]` and `[graph]` sections of an appliance that consumes `hub` on the test
/// broker (a consumer group of its own) and signs in to `cloud`.
pub fn cloud_sections(hub: &str, cloud: &FakeCloud) -> String {
    format!(
        "[eventhub]\nconnection_string = \"{}\"\nbootstrap_override = \"{}\"\nca_file = \"{}\"\nconsumer_group = \"{}\"\n\
         [graph]\nlogin_url = \"{}\"\ngraph_url = \"{}\"\ntenant_id = \"{}\"\nclient_id = \"{}\"\n",
        connection_string(hub).expose(),
        broker().bootstrap,
        broker().ca.display(),
        unique("beacon-group"),
        cloud.login_url(),
        cloud.graph_url(),
        cloud.options().tenant_domain,
        cloud.options().client_id,
    )
}

/// Writes `<dir>/beacon.toml` for appliance `device_id` with its store in `<dir>/data`, reading
/// `hub` through the fake `cloud`; returns (configuration file, data directory).
pub fn write_cloud_config(
    dir: &Path,
    device_id: &str,
    hub: &str,
    cloud: &FakeCloud,
) -> (PathBuf, PathBuf) {
    let data = dir.join("data");
    let config = dir.join("beacon.toml");
    std::fs::write(
        &config,
        format!(
            "device_id = \"{device_id}\"\ndata_dir = \"{}\"\n{}",
            data.display(),
            cloud_sections(hub, cloud)
        ),
    )
    .expect("config");
    (config, data)
}

/// `beacon login` with `config`, its device code approved at the fake sign-in page as the
/// person at the browser would; panics unless the login succeeds.
pub async fn sign_in(config: &Path, cloud: &FakeCloud) {
    let mut login = beacon(&["login"], config)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("beacon login");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        tokio::time::sleep(Duration::from_millis(50)).await;
        if let Some(code) = cloud.pending_user_codes().first() {
            cloud.approve(code);
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "beacon login showed no device code"
        );
    }
    let status = tokio::task::spawn_blocking(move || login.wait())
        .await
        .expect("join")
        .expect("wait");
    assert!(status.success(), "beacon login: {status:?}");
}

/// `beacon run` with `config`, logging at `level`; its log followed.
pub fn run_logged(config: &Path, level: &str) -> (Child, Log) {
    let mut child = beacon(&["run"], config)
        .env("BEACON_LOG", level)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("beacon run");
    let log = Log::follow(&mut child);
    (child, log)
}

/// A new hub (topic) on the test broker with `partitions`, and a fake cloud that publishes
/// its change notifications there (polling for new messages every second).
pub async fn hub_and_cloud(prefix: &str, partitions: i32) -> (String, FakeCloud) {
    hub_and_cloud_with(prefix, partitions, |_| {}).await
}

/// [`hub_and_cloud`] with the fake's options changed by `adjust`.
pub async fn hub_and_cloud_with(
    prefix: &str,
    partitions: i32,
    adjust: impl FnOnce(&mut FakeOptions),
) -> (String, FakeCloud) {
    let hub = unique(prefix);
    create_topic(&hub, partitions).await;
    let mut options = FakeOptions {
        kafka: true,
        poll_interval_secs: 1,
        ..FakeOptions::default()
    };
    adjust(&mut options);
    let cloud = FakeCloud::start(options).await;
    (hub, cloud)
}

/// Sends SIGTERM and waits up to `within` for the child to exit; a child that does not is
/// killed and the test fails (instead of hanging the test binary).
pub async fn sigterm_and_wait(child: &mut Child, within: Duration) -> std::process::ExitStatus {
    let killed = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .expect("kill");
    assert!(killed.success(), "kill -TERM failed");
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status;
        }
        if tokio::time::Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("beacon did not exit within {within:?} of SIGTERM");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A TCP port free on 127.0.0.1 now (for a process that binds it next).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// A desk of `fleet` as a join leaves it: `<dir>/beacon.toml` for box `name` reading `hub`
/// through `cloud` (`graph_lines` added to its `[graph]`), its console over HTTPS on a free
/// port, signed in, holding the fleet's secrets — and `key` as its only rich-notification key
/// when given — and the console users of `support::console`. Returns its configuration file
/// and where the other members reach it.
pub async fn fleet_desk(
    dir: &Path,
    name: &str,
    hub: &str,
    cloud: &FakeCloud,
    fleet: &beacon::graph::fleet::FleetSecrets,
    key: Option<&beacon::graph::crypto::EncryptionKey>,
    graph_lines: &str,
) -> (PathBuf, beacon::graph::fleet::MemberAddress) {
    let (config, data) = write_cloud_config(dir, name, hub, cloud);
    let port = free_port();
    let mut text = std::fs::read_to_string(&config).expect("read");
    text.push_str(&format!(
        "{graph_lines}[web]\nlisten = \"127.0.0.1:{port}\"\nhttps = true\n"
    ));
    std::fs::write(&config, text).expect("write");
    sign_in(&config, cloud).await;
    let store = beacon::store::Store::open(&data).expect("store");
    beacon::graph::client_state::ClientStates::load(&store)
        .expect("states")
        .replace(&store, fleet.clone())
        .expect("fleet secrets");
    if let Some(key) = key {
        for (stored, _) in store
            .secrets_with_prefix(beacon::graph::crypto::KEY_PREFIX)
            .expect("keys")
        {
            store.remove_secret(&stored).expect("the box's own key");
        }
        beacon::app::save_key(&store, key).expect("the fleet's key");
    }
    crate::support::console::add_users(&store);
    drop(store);
    let (cert, _) = beacon::web::tls::certificate_files(None, &data).expect("certificate");
    let sha256 = beacon::outputs::peers::pinned::certificate_sha256(&cert).expect("sha256");
    let address = beacon::graph::fleet::MemberAddress {
        name: name.into(),
        url: format!("https://127.0.0.1:{port}"),
        pin: beacon::web::join_code::pin(&sha256),
    };
    (config, address)
}
