//! A headless Chromium driven over WebDriver (Debian's `chromium` + `chromium-driver`,
//! installed by `scripts/test-env`): chromedriver on a free port per browser, plain WebDriver
//! JSON over reqwest (no extra crate). Screenshots go to `$BEACON_SCREENSHOTS/<name>.png`
//! when that variable is set.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine;
use serde_json::{json, Value};

/// The W3C element key.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// One browser (chromedriver process + session). Ends both when dropped.
pub struct Browser {
    driver: Child,
    base: String,
    http: reqwest::Client,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl Browser {
    /// Starts chromedriver and a headless Chromium (certificate errors ignored: the console's
    /// certificate is self-signed).
    pub async fn start() -> Browser {
        let port = free_port();
        // A process group of its own, so that dropping the browser (also when a test panics)
        // ends chromedriver and the Chromium processes it started.
        let driver = Command::new("chromedriver")
            .process_group(0)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver (run scripts/test-env to install chromium-driver)");
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .expect("client");
        let root = format!("http://127.0.0.1:{port}");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let ready = http
                .get(format!("{root}/status"))
                .send()
                .await
                .ok()
                .and_then(|r| r.status().is_success().then_some(()));
            if ready.is_some() {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "chromedriver did not start"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let answer: Value = http
            .post(format!("{root}/session"))
            .json(&json!({"capabilities": {"alwaysMatch": {
                "browserName": "chrome",
                "acceptInsecureCerts": true,
                "goog:chromeOptions": {
                    "binary": "/usr/bin/chromium",
                    "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                             "--disable-dev-shm-usage", "--window-size=1280,1000",
                             "--ignore-certificate-errors"]
                }
            }}}))
            .send()
            .await
            .expect("new session")
            .json()
            .await
            .expect("session answer");
        let id = answer["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {answer}"))
            .to_string();
        Browser {
            driver,
            base: format!("{root}/session/{id}"),
            http,
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let answer: Value = request
            .send()
            .await
            .expect("webdriver")
            .json()
            .await
            .expect("webdriver answer");
        answer["value"].clone()
    }

    /// Opens `url` and waits for the page to load.
    pub async fn goto(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", Some(json!({ "url": url })))
            .await;
    }

    pub async fn current_url(&self) -> String {
        self.call(reqwest::Method::GET, "/url", None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// The first element matching `css`, if any (no waiting).
    pub async fn find(&self, css: &str) -> Option<String> {
        let value = self
            .call(
                reqwest::Method::POST,
                "/element",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await;
        value[ELEMENT].as_str().map(str::to_string)
    }

    /// Waits up to `timeout` for an element matching `css`.
    pub async fn wait_for(&self, css: &str, timeout: Duration) -> String {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(element) = self.find(css).await {
                return element;
            }
            if tokio::time::Instant::now() >= deadline {
                panic!(
                    "no element {css} within {timeout:?} on {}: {}",
                    self.current_url().await,
                    self.page_text().await
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits up to `timeout` until the text of `css` contains `needle`; returns the text.
    pub async fn wait_for_text(&self, css: &str, needle: &str, timeout: Duration) -> String {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(element) = self.find(css).await {
                let text = self.text(&element).await;
                if text.contains(needle) {
                    return text;
                }
            }
            if tokio::time::Instant::now() >= deadline {
                panic!(
                    "{css} did not show {needle:?} within {timeout:?}: {}",
                    self.page_text().await
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn text(&self, element: &str) -> String {
        self.call(
            reqwest::Method::GET,
            &format!("/element/{element}/text"),
            None,
        )
        .await
        .as_str()
        .unwrap_or_default()
        .to_string()
    }

    pub async fn attribute(&self, element: &str, name: &str) -> Option<String> {
        self.call(
            reqwest::Method::GET,
            &format!("/element/{element}/attribute/{name}"),
            None,
        )
        .await
        .as_str()
        .map(str::to_string)
    }

    /// Runs `script` in the page (a function body; `return` gives the answer).
    pub async fn execute(&self, script: &str) -> Value {
        self.call(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({ "script": script, "args": [] })),
        )
        .await
    }

    /// A DOM property of the element (`value` of a field as the user left it).
    pub async fn property(&self, element: &str, name: &str) -> Option<String> {
        self.call(
            reqwest::Method::GET,
            &format!("/element/{element}/property/{name}"),
            None,
        )
        .await
        .as_str()
        .map(str::to_string)
    }

    /// The element's box on the page in CSS pixels: (x, y, width, height).
    pub async fn rect(&self, element: &str) -> (f64, f64, f64, f64) {
        let value = self
            .call(
                reqwest::Method::GET,
                &format!("/element/{element}/rect"),
                None,
            )
            .await;
        let number = |key: &str| value[key].as_f64().unwrap_or(f64::NAN);
        (number("x"), number("y"), number("width"), number("height"))
    }

    /// Chooses the file at `path` in the file input `css` (as a user picking it).
    pub async fn choose_file(&self, css: &str, path: &std::path::Path) {
        let element = self.wait_for(css, Duration::from_secs(10)).await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{element}/value"),
            Some(json!({ "text": path.to_string_lossy() })),
        )
        .await;
    }

    /// The visible text of the whole page.
    pub async fn page_text(&self) -> String {
        match self.find("body").await {
            Some(body) => self.text(&body).await,
            None => String::new(),
        }
    }

    /// The page's HTML as the browser holds it now.
    pub async fn source(&self) -> String {
        self.call(reqwest::Method::GET, "/source", None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Clears the field `css` and types `text` into it.
    pub async fn fill(&self, css: &str, text: &str) {
        let element = self.wait_for(css, Duration::from_secs(10)).await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{element}/clear"),
            Some(json!({})),
        )
        .await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{element}/value"),
            Some(json!({ "text": text })),
        )
        .await;
    }

    /// Clicks the element `css` (waiting for it).
    /// Clicks the element `css` once it is there. A live page can replace the element between
    /// finding and clicking it (WebDriver then answers "stale element reference" and nothing
    /// was clicked): found again and clicked again, for up to 10 s, then the test fails with
    /// WebDriver's answer.
    pub async fn click_on(&self, css: &str) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let element = self.wait_for(css, Duration::from_secs(10)).await;
            let answer = self
                .call(
                    reqwest::Method::POST,
                    &format!("/element/{element}/click"),
                    Some(json!({})),
                )
                .await;
            let Some(error) = answer.get("error") else {
                return;
            };
            if tokio::time::Instant::now() >= deadline {
                panic!("clicking {css} failed: {error} ({answer})");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// An open JavaScript alert's text, if one is open (hostile content would open one).
    pub async fn alert_text(&self) -> Option<String> {
        let value = self.call(reqwest::Method::GET, "/alert/text", None).await;
        value.as_str().map(str::to_string)
    }

    /// Saves a screenshot as `<name>.png` in `$BEACON_SCREENSHOTS` (when set).
    pub async fn screenshot(&self, name: &str) {
        let Some(dir) = std::env::var_os("BEACON_SCREENSHOTS").map(PathBuf::from) else {
            return;
        };
        let value = self.call(reqwest::Method::GET, "/screenshot", None).await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(value.as_str().unwrap_or_default())
            .expect("screenshot");
        std::fs::create_dir_all(&dir).expect("screenshot dir");
        std::fs::write(dir.join(format!("{name}.png")), png).expect("screenshot");
    }
}

impl Browser {
    /// Ends the session (closes Chromium) and chromedriver.
    pub async fn quit(self) {
        let _ = self.http.delete(&self.base).send().await;
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // `--` before the negative pid: procps' kill reads `-KILL -1234` as signal options and
        // sent SIGKILL to group -1 (every process this user may signal).
        let _ = Command::new("kill")
            .args(["-s", "KILL", "--"])
            .arg(format!("-{}", self.driver.id()))
            .stderr(Stdio::null())
            .status();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
