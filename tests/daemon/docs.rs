//! API docs: Swagger UI rendered by headless Chromium, and the OpenAPI document checked by
//! `openapi-spec-validator` and against `workhorse openapi`.

use std::fs::File;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{ClientBuilder, Locator};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::{Value, json};
use tempfile::TempDir;

use crate::helpers::{
    CONFIGURED_START, Daemon, Sandbox, TestDatabase, eventually, free_port, fresh_database, http,
};

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";
/// Swagger UI renders from inline assets, but Chromium's first start on a busy machine is slow.
const RENDER_TIMEOUT: Duration = Duration::from_secs(30);

/// A chromedriver child on a loopback port, stopped (with its browsers) when dropped.
struct Chromedriver {
    child: Child,
    port: u16,
    dir: TempDir,
}

impl Chromedriver {
    async fn start() -> Self {
        let dir = TempDir::new().expect("creating the chromedriver dir");
        let port = free_port();
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
        eventually(Duration::from_secs(20), "chromedriver ready", async || {
            let response = http().get(&status).send().await.ok()?;
            let body: Value = response.json().await.ok()?;
            (body["value"]["ready"] == true).then_some(())
        })
        .await;
        driver
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Headless Chromium with a fresh profile, no sandbox (we run as root), nothing phoned home.
    fn capabilities(&self) -> serde_json::Map<String, Value> {
        let profile = self.dir.path().join("profile");
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
                    format!("--user-data-dir={}", profile.display()),
                ],
            },
        });
        match caps {
            Value::Object(map) => map,
            _ => unreachable!("capabilities are an object"),
        }
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

/// A ready daemon on a fresh database. The daemon comes last so it is dropped first.
async fn documented_daemon() -> (TestDatabase, Sandbox, Daemon) {
    let db = fresh_database().await;
    let sandbox = Sandbox::new();
    let mut daemon = sandbox.serve(&[("WORKHORSE_DATABASE__URL", db.url())]);
    daemon.wait_ready(CONFIGURED_START).await;
    (db, sandbox, daemon)
}

async fn served_spec(daemon: &Daemon) -> Value {
    http()
        .get(format!("{}/openapi.json", daemon.base_url()))
        .send()
        .await
        .expect("GET /openapi.json")
        .error_for_status()
        .expect("GET /openapi.json succeeds")
        .json()
        .await
        .expect("/openapi.json is JSON")
}

#[tokio::test(flavor = "multi_thread")]
async fn swagger_ui_renders_the_operations_and_the_authorize_button_in_chromium() {
    // Arrange
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let (_db, _sandbox, daemon) = documented_daemon().await;
    let driver = Chromedriver::start().await;
    let browser = ClientBuilder::rustls()
        .expect("a rustls WebDriver client")
        .capabilities(driver.capabilities())
        .connect(&driver.url())
        .await
        .expect("a Chromium session");

    // Act
    browser
        .goto(&format!("{}/docs", daemon.base_url()))
        .await
        .expect("opening /docs");
    let paths = eventually(RENDER_TIMEOUT, "Swagger UI lists /healthz", async || {
        let mut paths = Vec::new();
        for summary in browser.find_all(Locator::Css(".opblock")).await.ok()? {
            let path = summary
                .find(Locator::Css(".opblock-summary-path"))
                .await
                .ok()?;
            paths.push(path.attr("data-path").await.ok()??);
        }
        paths.iter().any(|p| p == "/healthz").then_some(paths)
    })
    .await;
    let authorize = browser.find_all(Locator::Css(".btn.authorize")).await;
    browser.close().await.expect("closing the session");

    // Assert
    for expected in ["/v1/users", "/v1/me", "/healthz", "/readyz"] {
        assert!(
            paths.iter().any(|p| p == expected),
            "{expected} not in {paths:?}"
        );
    }
    assert_eq!(authorize.expect("looking for Authorize").len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_served_openapi_document_passes_openapi_spec_validator() {
    // Arrange
    let (_db, _sandbox, daemon) = documented_daemon().await;
    let spec = served_spec(&daemon).await;
    let dir = TempDir::new().expect("creating a temp dir");
    let file = dir.path().join("openapi.json");
    std::fs::write(&file, spec.to_string()).expect("writing the spec");

    // Act
    let output = Command::new("python3")
        .args(["-m", "openapi_spec_validator"])
        .arg(&file)
        .output()
        .expect("running python3 (pip install openapi-spec-validator)");

    // Assert
    assert!(
        output.status.success(),
        "openapi-spec-validator: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn workhorse_openapi_prints_the_document_the_server_serves() {
    // Arrange
    let (_db, sandbox, daemon) = documented_daemon().await;
    let served = served_spec(&daemon).await;

    // Act
    let output = sandbox
        .command(&["openapi"])
        .output()
        .expect("running workhorse openapi");

    // Assert
    assert!(
        output.status.success(),
        "workhorse openapi: {}",
        output.status
    );
    let printed: Value = serde_json::from_slice(&output.stdout).expect("JSON on stdout");
    assert_eq!(printed, served);
    let bearer = &served["components"]["securitySchemes"]["BearerAuth"];
    assert_eq!(bearer["type"], "http");
    assert_eq!(bearer["scheme"], "bearer");
    let paths = served["paths"].as_object().expect("paths");
    for path in [
        "/v1/users",
        "/v1/me",
        "/v1/users/{id}/tokens",
        "/v1/tokens/{id}",
        "/healthz",
        "/readyz",
    ] {
        assert!(paths.contains_key(path), "{path} is not documented");
    }
}
