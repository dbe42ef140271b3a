//! For the web view's tests: `xp ui` started on a free loopback port, a real headless
//! chromium driven through chromedriver (WebDriver), and a plain HTTP/1.1 client that sends
//! paths exactly as given (no normalising of `..`), as an attacker's client would.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder};

use crate::{profile_dir, service_env, TestProject};

/// A running `xp ui`, stopped when dropped.
pub struct UiServer {
    child: Child,
    /// The URL it printed (with `?token=` when it needs one).
    pub url: String,
    /// `http://HOST:PORT`, without path or token.
    pub base: String,
    pub address: SocketAddr,
}

impl UiServer {
    /// `xp ui --port 0 --host HOST` in `project`; waits for the URL it prints.
    pub fn start(project: &TestProject, host: &str) -> UiServer {
        let mut child = project
            .xp(["ui", "--port", "0", "--host", host])
            .command()
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("xp ui starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout is piped"))
            .read_line(&mut line)
            .expect("xp ui prints its URL");
        let url = line.trim().to_owned();
        assert!(url.starts_with("http://"), "xp ui printed {url:?}, not a URL");
        let rest = &url["http://".len()..];
        let authority = &rest[..rest.find('/').unwrap_or(rest.len())];
        let address: SocketAddr = authority.parse().unwrap_or_else(|e| panic!("{authority}: {e}"));
        UiServer {
            child,
            base: format!("http://{authority}"),
            url,
            address,
        }
    }
}

impl Drop for UiServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A free TCP port on 127.0.0.1 (free when asked; taken by the caller right after).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A chromedriver and a headless chromium session through it; both end when dropped (the
/// session should be closed with [`Browser::close`] first).
pub struct Browser {
    pub client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// The text of the first element `css` selects (panics naming `css` when none does).
    pub async fn text_of(&self, css: &str) -> String {
        self.client
            .find(fantoccini::Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"))
            .text()
            .await
            .unwrap()
    }

    /// Clicks the first element `css` selects.
    pub async fn click(&self, css: &str) {
        self.client
            .find(fantoccini::Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"))
            .click()
            .await
            .unwrap_or_else(|e| panic!("clicking {css}: {e}"));
    }

    /// Starts chromedriver on a free loopback port and opens a headless chromium session
    /// (Debian's packages, from `scripts/services.sh start browser`).
    pub async fn start() -> Browser {
        let env = service_env("browser");
        let chromium = env
            .get("XP_TEST_CHROMIUM")
            .cloned()
            .unwrap_or_else(|| "/usr/bin/chromium".into());
        let chromedriver = env
            .get("XP_TEST_CHROMEDRIVER")
            .cloned()
            .unwrap_or_else(|| "/usr/bin/chromedriver".into());
        let port = free_port();
        // A process group of its own, so the browsers it starts end with it (see `Drop`).
        let driver = Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{chromedriver} starts: {e}"));
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not listen on port {port}");
            std::thread::sleep(Duration::from_millis(50));
        }
        let profile = tempfile::tempdir().unwrap();
        let capabilities = serde_json::json!({
            "goog:chromeOptions": {
                "binary": chromium,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--window-size=1440,1200", "--hide-scrollbars", "--no-first-run",
                    "--disable-crash-reporter", "--disable-breakpad",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            }
        });
        let serde_json::Value::Object(capabilities) = capabilities else {
            unreachable!()
        };
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = ClientBuilder::new(connector)
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .unwrap_or_else(|e| panic!("a chromium session through {chromedriver}: {e}"));
        Browser {
            client,
            driver,
            _profile: profile,
        }
    }

    /// Saves a screenshot of the page as `target/ui-screenshots/NAME.png`, for a person to look at.
    pub async fn screenshot(&self, name: &str) {
        let png = self.client.screenshot().await.expect("a screenshot");
        let dir = screenshots_dir();
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
    }

    /// Evaluates `script` (a function body that returns a value) in the page.
    pub async fn eval(&self, script: &str) -> serde_json::Value {
        self.client
            .execute(script, vec![])
            .await
            .unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
    }

    /// Polls `script` until it returns something other than null/false, or panics with `what`.
    pub async fn wait_for(&self, what: &str, timeout: Duration, script: &str) -> serde_json::Value {
        let deadline = Instant::now() + timeout;
        loop {
            let value = self.eval(script).await;
            if !(value.is_null() || value == serde_json::Value::Bool(false)) {
                return value;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn close(self) {
        let _ = self.client.clone().close().await;
    }
}

impl Drop for Browser {
    /// Ends chromedriver's process group and any chromium process of this session's profile,
    /// also when a test failed before closing the session.
    fn drop(&mut self) {
        // SAFETY: kill(2) on the process group this Browser started (its leader's pid).
        unsafe { libc::kill(-(self.driver.id() as libc::pid_t), libc::SIGKILL) };
        let _ = self.driver.wait();
        let profile = self._profile.path().display().to_string();
        for pid in crate::processes_matching(&profile) {
            // SAFETY: kill(2) on a chromium process started with this session's own profile folder.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
        }
    }
}

pub fn screenshots_dir() -> PathBuf {
    profile_dir().parent().expect("target/<profile>").join("ui-screenshots")
}

/// An HTTP response as received.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    /// Header names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
}

/// Sends one request to `address` with `path` written as is, and the given headers (a `Host`
/// header naming `address` unless one is given).
pub fn http(address: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)]) -> Reply {
    let mut stream = TcpStream::connect(address).expect("the server accepts");
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut request = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
    if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("host")) {
        request.push_str(&format!("Host: {address}\r\n"));
    }
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    if method == "POST" {
        request.push_str("Content-Length: 0\r\n");
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("a whole response");
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end in {:?}", String::from_utf8_lossy(&raw)));
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    if headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.contains("chunked"))
    {
        body = dechunk(&body);
    }
    Reply { status, headers, body }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(end) = data.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size = usize::from_str_radix(
            String::from_utf8_lossy(&data[..end]).split(';').next().unwrap().trim(),
            16,
        )
        .unwrap_or(0);
        if size == 0 {
            return out;
        }
        let start = end + 2;
        out.extend_from_slice(&data[start..(start + size).min(data.len())]);
        data = &data[(start + size + 2).min(data.len())..];
    }
}

// ---- fixtures shared by the web view's tests ----

/// A training script: `loss` = scale / (step + 1) for 30 steps, `accuracy` once, and an
/// artifact whose bytes are every byte value then the run's scale.
pub const TRAIN: &str = r#"import os, sys
from xp_logging import log_metric
scale = float(sys.argv[sys.argv.index("--lr") + 1])
for step in range(30):
    log_metric("loss", scale / (step + 1))
    print("step", step, flush=True)
log_metric("accuracy", 0.9)
os.makedirs("outputs", exist_ok=True)
with open("outputs/model.bin", "wb") as f:
    f.write(bytes(range(256)) * 40 + ("scale %s" % scale).encode())
"#;

pub fn model_bytes(scale: &str) -> Vec<u8> {
    let mut bytes: Vec<u8> = (0..=255u8).collect::<Vec<_>>().repeat(40);
    bytes.extend_from_slice(format!("scale {scale}").as_bytes());
    bytes
}

/// Submits `train.py --lr SCALE` and returns the run id.
pub fn train(project: &TestProject, scale: &str) -> String {
    project.xp(["-q", "submit", "train.py", "--lr", scale]).run().success();
    project.last_record()["run_id"].as_str().unwrap().to_owned()
}

/// Waits for the run's log to have `line`, so the script has reached it.
pub fn wait_for_log(project: &TestProject, run: &str, line: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let log = project.xp(["history", "logs", run]).run().stdout;
        if log.contains(line) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the run never printed {line:?}:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Cancels a detached run when dropped, so a test that fails midway leaves no run behind.
pub struct CancelOnDrop<'a> {
    pub project: &'a TestProject,
    pub run: String,
}

impl Drop for CancelOnDrop<'_> {
    fn drop(&mut self) {
        let _ = self.project.xp(["-q", "experiment", "cancel", &self.run]).run();
    }
}
