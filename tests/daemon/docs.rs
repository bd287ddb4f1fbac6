//! API docs: Swagger UI rendered by headless Chromium, and the OpenAPI document checked by
//! `openapi-spec-validator` and against `workhorse openapi`.

use std::process::Command;
use std::time::Duration;

use fantoccini::Locator;
use serde_json::Value;
use tempfile::TempDir;

use crate::chromedriver::Chromedriver;
use crate::helpers::{
    CONFIGURED_START, Daemon, Sandbox, TestDatabase, eventually, fresh_database, http,
};

/// Swagger UI renders from inline assets, but Chromium's first start on a busy machine is slow.
const RENDER_TIMEOUT: Duration = Duration::from_secs(30);

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
    let (_db, _sandbox, daemon) = documented_daemon().await;
    let driver = Chromedriver::start().await;
    let browser = driver.browser().await;

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
