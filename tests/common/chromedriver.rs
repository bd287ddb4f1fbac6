//! A chromedriver child on a loopback port driving headless Chromium, for tests that look at
//! pages in a real browser (Swagger UI, the dashboard). Included with `#[path]` by the test
//! binaries that need it; stopped, with its browsers, when dropped.

use std::fs::File;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::{Value, json};
use tempfile::TempDir;

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";

/// A running chromedriver.
pub struct Chromedriver {
    child: Child,
    port: u16,
    dir: TempDir,
}

impl Chromedriver {
    /// Start chromedriver and wait until it is ready.
    pub async fn start() -> Self {
        let dir = TempDir::new().expect("creating the chromedriver dir");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let log = File::create(dir.path().join("chromedriver.log")).expect("creating its log");
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("starting chromedriver (apt-get install chromium-driver)");
        let driver = Self { child, port, dir };
        let status = format!("{}/status", driver.url());
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let ready = async {
                let body: Value = reqwest::get(&status).await.ok()?.json().await.ok()?;
                (body["value"]["ready"] == true).then_some(())
            };
            if ready.await.is_some() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver not ready within 20 s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        driver
    }

    /// chromedriver's URL.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Headless Chromium with a fresh profile, no sandbox (we run as root), nothing phoned home.
    pub fn capabilities(&self) -> serde_json::Map<String, Value> {
        let profile = self.dir.path().join("profile");
        let caps = json!({
            "browserName": "chrome",
            "goog:loggingPrefs": {"browser": "ALL"},
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--no-first-run",
                    "--disable-sync",
                    "--no-proxy-server",
                    "--window-size=1280,800",
                    format!("--user-data-dir={}", profile.display()),
                ],
            },
        });
        match caps {
            Value::Object(map) => map,
            _ => unreachable!("capabilities are an object"),
        }
    }

    /// A new browser session.
    pub async fn browser(&self) -> Client {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        ClientBuilder::rustls()
            .expect("a rustls WebDriver client")
            .capabilities(self.capabilities())
            .connect(&self.url())
            .await
            .expect("a Chromium session")
    }
}

impl Drop for Chromedriver {
    fn drop(&mut self) {
        // SIGTERM first: chromedriver then takes its browsers down with it.
        let _ = kill(Pid::from_raw(self.child.id() as i32), Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
