//! `beacon run` as a child process: its configuration file, start, kill -9, SIGTERM, `beacon
//! login` approved in the fake cloud, and its log (stderr) kept in a file per start so that a
//! failed campaign can be read afterwards.

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::support::fake_cloud::FakeCloud;
use crate::support::kafka::connection_string;
use crate::support::process::beacon;

/// Where one appliance lives and what it connects to.
pub struct ApplianceConfig {
    pub data_dir: PathBuf,
    pub hub: String,
    pub group: String,
    pub bootstrap: String,
    pub ca: PathBuf,
    /// Graph and identity of the fake cloud; `None`: rich notifications only, no sign-in.
    pub cloud: Option<(String, String, String, String)>,
    /// Kafka static membership (`group.instance.id`): a restarted appliance takes its old
    /// place in the group at once instead of waiting for the killed member's session to end.
    pub static_membership: bool,
    /// `[mqtt]` to a Mosquitto on 127.0.0.1 at this port (`None`: no MQTT output).
    pub mqtt_port: Option<u16>,
    /// `[notify]` with an e-mail channel to an SMTP server on 127.0.0.1 at this port and one
    /// recipient for every call (`None`: no notifications).
    pub smtp_port: Option<u16>,
}

impl ApplianceConfig {
    pub fn for_cloud(cloud: &FakeCloud) -> Option<(String, String, String, String)> {
        Some((
            cloud.login_url(),
            cloud.graph_url(),
            cloud.options().tenant_domain.clone(),
            cloud.options().client_id.clone(),
        ))
    }

    fn toml(&self) -> String {
        let mut text = format!(
            "device_id = \"campaign\"\ndata_dir = \"{}\"\n[eventhub]\nconnection_string = \"{}\"\nbootstrap_override = \"{}\"\nca_file = \"{}\"\nconsumer_group = \"{}\"\nstatic_membership = {}\n",
            self.data_dir.display(),
            connection_string(&self.hub).expose(),
            self.bootstrap,
            self.ca.display(),
            self.group,
            self.static_membership,
        );
        if let Some((login, graph, tenant, client)) = &self.cloud {
            text.push_str(&format!(
                "[graph]\nlogin_url = \"{login}\"\ngraph_url = \"{graph}\"\ntenant_id = \"{tenant}\"\nclient_id = \"{client}\"\n"
            ));
        }
        if let Some(port) = self.mqtt_port {
            // The broker away for 20 s is the "mqtt" trouble; a short keep-alive notices a
            // silent link soon.
            text.push_str(&format!(
                "[mqtt]\nenabled = true\nhost = \"127.0.0.1\"\nport = {port}\nkeepalive_secs = 10\ntrouble_after_secs = 20\n"
            ));
        }
        if let Some(port) = self.smtp_port {
            // Failing for 20 s is the "notify:email" trouble; retries every 2–5 s so that the
            // outbox drains within seconds of the server's return.
            text.push_str(&format!(
                "[notify]\nsmtp_host = \"127.0.0.1\"\nsmtp_port = {port}\nsmtp_security = \"none\"\nsmtp_from = \"Beacon <beacon@campaign.test>\"\nretry_first_seconds = 2\nretry_max_seconds = 5\nexpire_minutes = 60\ntrouble_after_seconds = 20\ntimeout_seconds = 10\n[[notify.recipients]]\nchannel = \"email\"\nto = \"{}\"\n",
                super::outputs::RECIPIENT
            ));
        }
        text
    }
}

/// One appliance and its current process, if running.
pub struct Beacon {
    pub config_file: PathBuf,
    logs: PathBuf,
    child: Option<Child>,
    starts: u32,
}

impl Beacon {
    /// Writes the configuration beside `logs` (a directory for the log files).
    pub fn new(config: &ApplianceConfig, logs: &Path) -> Beacon {
        std::fs::create_dir_all(logs).expect("log dir");
        let config_file = logs.join("beacon.toml");
        std::fs::write(&config_file, config.toml()).expect("config");
        Beacon {
            config_file,
            logs: logs.to_path_buf(),
            child: None,
            starts: 0,
        }
    }

    /// `beacon login`, approved by the person at the browser (the fake cloud).
    pub async fn login(&self, cloud: &FakeCloud) {
        let mut login = beacon(&["login"], &self.config_file)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("beacon login");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            tokio::time::sleep(Duration::from_millis(50)).await;
            if let Some(code) = cloud.pending_user_codes().first() {
                cloud.approve(code);
                break;
            }
            assert!(Instant::now() < deadline, "beacon login showed no code");
        }
        let status = tokio::task::spawn_blocking(move || login.wait())
            .await
            .expect("join")
            .expect("wait");
        assert!(status.success(), "beacon login failed: {status:?}");
    }

    /// Starts `beacon run`; its log goes to `run-<n>.log`.
    pub fn start(&mut self) {
        assert!(self.child.is_none(), "already running");
        self.starts += 1;
        let log = std::fs::File::create(self.log_path(self.starts)).expect("log file");
        let child = beacon(&["run"], &self.config_file)
            .env("BEACON_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("beacon run");
        self.child = Some(child);
    }

    pub fn log_path(&self, start: u32) -> PathBuf {
        self.logs.join(format!("run-{start}.log"))
    }

    /// The log of the current (or last) start.
    pub fn current_log(&self) -> String {
        std::fs::read_to_string(self.log_path(self.starts)).unwrap_or_default()
    }

    /// Where the log stands now (start number, bytes of that start's log).
    pub fn log_mark(&self) -> (u32, usize) {
        (self.starts, self.current_log().len())
    }

    /// What was logged after `mark`, over every start since.
    pub fn log_since(&self, mark: (u32, usize)) -> String {
        let (start, offset) = mark;
        (start.max(1)..=self.starts)
            .map(|n| {
                let text = std::fs::read_to_string(self.log_path(n)).unwrap_or_default();
                if n == start {
                    text.get(offset..).unwrap_or_default().to_string()
                } else {
                    text
                }
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Every log so far, concatenated (for scanning).
    pub fn all_logs(&self) -> String {
        (1..=self.starts)
            .map(|n| std::fs::read_to_string(self.log_path(n)).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Waits until the current log contains `needle`.
    pub async fn wait_for_log(&self, needle: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.current_log().contains(needle) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    }

    pub fn is_running(&mut self) -> bool {
        match &mut self.child {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// kill -9, and reaps the process.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill(); // SIGKILL
            let _ = child.wait();
        }
    }

    /// SIGTERM and waits for a clean exit; kill -9 after `timeout`. Returns whether it exited
    /// cleanly (status 0) in time.
    pub async fn stop(&mut self, timeout: Duration) -> bool {
        let Some(mut child) = self.child.take() else {
            return true;
        };
        // SAFETY: kill(2) on our own child's pid, which we have not reaped yet.
        unsafe {
            libc::kill(child.id() as i32, libc::SIGTERM);
        }
        let deadline = Instant::now() + timeout;
        loop {
            match child.try_wait() {
                Ok(Some(status)) => return status.success(),
                Ok(None) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(50)).await
                }
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return false;
                }
            }
        }
    }

    pub fn starts(&self) -> u32 {
        self.starts
    }
}

impl Drop for Beacon {
    fn drop(&mut self) {
        self.kill9();
    }
}
