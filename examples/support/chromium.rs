//! Headless Chromium through a chromedriver child, for benchmarks that load pages in a real
//! browser: started on a loopback port with the same flags as the tests'
//! (tests/common/chromedriver.rs), errors returned instead of panics, stopped with its browsers
//! when dropped. Also chromedriver's Chrome DevTools command, and signing in to the dashboard.

#![allow(dead_code)]

use std::fs::File;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder, Locator};
use http::Method;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::{Value, json};
use tempfile::TempDir;
use url::{ParseError, Url};

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";
/// How long chromedriver may take to be ready.
const READY: Duration = Duration::from_secs(20);

/// A running chromedriver.
pub struct Chromedriver {
    child: Child,
    port: u16,
    dir: TempDir,
}

impl Chromedriver {
    /// Start chromedriver and wait until it is ready.
    pub async fn start() -> anyhow::Result<Self> {
        let dir = TempDir::new().context("creating the chromedriver dir")?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .context("finding a free port")?
            .port();
        let log = File::create(dir.path().join("chromedriver.log")).context("creating its log")?;
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("starting chromedriver (apt-get install chromium-driver)")?;
        let driver = Self { child, port, dir };
        let status = format!("{}/status", driver.url());
        let deadline = Instant::now() + READY;
        loop {
            let ready = async {
                let body: Value = reqwest::get(&status).await.ok()?.json().await.ok()?;
                (body["value"]["ready"] == true).then_some(())
            };
            if ready.await.is_some() {
                return Ok(driver);
            }
            if Instant::now() >= deadline {
                bail!("chromedriver not ready within {READY:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// A new headless Chromium session with a fresh profile (empty cache), no sandbox, nothing
    /// phoned home, 1280×800.
    pub async fn browser(&self, name: &str) -> anyhow::Result<Client> {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let profile = self.dir.path().join(name);
        let caps = json!({
            "browserName": "chrome",
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
        let Value::Object(caps) = caps else {
            bail!("capabilities must be an object");
        };
        ClientBuilder::rustls()
            .context("a rustls WebDriver client")?
            .capabilities(caps)
            .connect(&self.url())
            .await
            .context("opening a Chromium session")
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

/// A Chrome DevTools Protocol command, through chromedriver's `goog/cdp/execute`.
#[derive(Debug)]
struct Cdp {
    body: Value,
}

impl WebDriverCompatibleCommand for Cdp {
    fn endpoint(&self, base: &Url, session_id: Option<&str>) -> Result<Url, ParseError> {
        let session = session_id.unwrap_or_default();
        base.join(&format!("session/{session}/goog/cdp/execute"))
    }

    fn method_and_body(&self, _url: &Url) -> (Method, Option<String>) {
        (Method::POST, Some(self.body.to_string()))
    }
}

/// Run the DevTools command `cmd` with `params` in `browser`.
pub async fn cdp(browser: &Client, cmd: &str, params: Value) -> anyhow::Result<Value> {
    let command = Cdp {
        body: json!({"cmd": cmd, "params": params}),
    };
    (browser.issue_cmd(command).await).with_context(|| format!("running {cmd}"))
}

/// Sign in to the dashboard at `base` through its form with `token`; waits for the overview.
pub async fn sign_in(browser: &Client, base: &str, token: &str) -> anyhow::Result<()> {
    browser
        .goto(&format!("{base}/ui/login"))
        .await
        .context("opening the sign-in page")?;
    let field = browser.find(Locator::Css("input[name=token]")).await;
    field.context("a token field")?.send_keys(token).await?;
    let submit = browser.find(Locator::Css("button[type=submit]")).await;
    submit.context("a sign-in button")?.click().await?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if (browser.current_url().await).is_ok_and(|u| u.path() == "/ui") {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("signing in did not reach /ui within 10 s")
}
