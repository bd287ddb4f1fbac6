//! Logs: every request is one JSON log line carrying the request id the client was given.

use std::time::Duration;

use crate::helpers::{CONFIGURED_START, Sandbox, fresh_database, http};

#[tokio::test(flavor = "multi_thread")]
async fn an_error_responses_request_id_is_in_the_json_log_line_of_that_request() {
    // Arrange
    let db = fresh_database().await;
    let sandbox = Sandbox::new();
    let mut daemon = sandbox.serve(&[("WORKHORSE_DATABASE__URL", db.url())]);
    daemon.wait_ready(CONFIGURED_START).await;

    // Act
    let resp = http()
        .get(format!("{}/v1/no-such-thing", daemon.base_url()))
        .send()
        .await
        .expect("request sent");
    let request_id = resp.headers()["x-request-id"].to_str().unwrap().to_string();
    let problem: serde_json::Value = resp.json().await.unwrap();
    assert!(daemon.terminate(Duration::from_secs(30)).await.success());

    // Assert
    assert_eq!(problem["request_id"], request_id.as_str());
    let line = daemon
        .log()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|l| {
            l["message"] == "request served" && l["span"]["request_id"] == request_id.as_str()
        })
        .unwrap_or_else(|| {
            panic!(
                "no log line with request id {request_id}:\n{}",
                daemon.log()
            )
        });
    assert_eq!(line["status"], 404, "{line}");
    assert_eq!(line["path"], "/v1/no-such-thing", "{line}");
}
