//! Tenant safety (issue 12): one test per exploit an ordinary free-plan user could try against
//! another user or the operator, each asserting the fixed behaviour through the public HTTP API
//! with real PostgreSQL, real loopback servers and real Chromium.

mod bounds;
mod cancel;
mod caps;
mod egress;
mod limits;
mod ownership;
mod secrets;

use std::time::Duration;

use serde_json::Value;

use crate::helpers::TestApp;

/// How long a test waits for work that should happen (a job, a delivery) before it gives up.
const PATIENCE: Duration = Duration::from_secs(15);

/// Poll the JSON at `path` until `done` holds for it (within [`PATIENCE`]); returns the last.
async fn poll_json(app: &TestApp, path: &str, token: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let value = app.get_json(path, token).await;
        if done(&value) || tokio::time::Instant::now() >= deadline {
            return value;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Whether a job, scrape or summary status is final.
fn finished(value: &Value) -> bool {
    let status = value.get("status").or_else(|| value.get("state"));
    matches!(
        status.and_then(Value::as_str),
        Some("succeeded" | "failed" | "cancelled" | "dead")
    )
}
