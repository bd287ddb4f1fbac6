//! Generated clients: openapi-python-client (`python.rs`) and openapi-typescript with
//! openapi-fetch (`typescript.rs`) each build a client from the served spec, fail on any schema
//! they drop, and run the same journey against a daemon (`tests/clients/`). Here: the daemon the
//! journeys run against, how a missing generator is skipped, and the check of what a journey
//! printed, shared by both.

mod python;
mod typescript;

use std::collections::BTreeSet;
use std::io::Write;
use std::process::{Command, Output};

use serde_json::Value;

use crate::helpers::{
    CONFIGURED_START, Daemon, Sandbox, TestDatabase, create_token, fresh_database, http,
};

/// Where the journeys and the TypeScript project live.
const CLIENTS_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients");

/// Users may enqueue only the kinds that charge a quota of their plan, so `echo` charges one of
/// its own here; the journeys poll, so the plan's request rate is out of their way.
const JOURNEY_CONFIG: &str = "[jobs.kinds.echo]
quota = \"echo\"

[plans.free]
quotas = { echo = 1000 }
rate_limit = 100000
";

/// Whether a generator whose absence `why` describes may be skipped: prints `SKIPPED:` and
/// returns, unless `require_env` is `1` (as `deploy/test.sh` sets it once the generator is
/// installed), where it fails the test.
fn skip(why: &str, require_env: &str, install: &str) {
    if std::env::var(require_env).is_ok_and(|v| v == "1") {
        panic!("{why} (and {require_env}=1); install it with `{install}`");
    }
    // Straight to the process's stderr: the harness captures `eprintln!` from passing tests.
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED: {why}; install it with `{install}` to run this test"
    );
}

/// A daemon configured for the journeys, an admin token, and the spec it serves.
struct Journey {
    daemon: Daemon,
    _sandbox: Sandbox,
    _db: TestDatabase,
    base: String,
    admin_token: String,
    spec: Value,
}

impl Journey {
    async fn start() -> Self {
        let db = fresh_database().await;
        let sandbox = Sandbox::new();
        sandbox.write_config("default.toml", JOURNEY_CONFIG);
        let mut daemon = sandbox.serve(&[("WORKHORSE_DATABASE__URL", db.url())]);
        daemon.wait_ready(CONFIGURED_START).await;
        let admin_token = create_token(&sandbox, db.url());
        let base = daemon.base_url();
        let spec = Self::fetch(&base, "/openapi.json", None).await;
        Self {
            daemon,
            _sandbox: sandbox,
            _db: db,
            base,
            admin_token,
            spec,
        }
    }

    /// `GET path` as JSON, with `token` if given; fails the test on anything but a 200.
    async fn fetch(base: &str, path: &str, token: Option<&str>) -> Value {
        let mut request = http().get(format!("{base}{path}"));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("a GET");
        assert_eq!(response.status(), 200, "GET {path}");
        response.json().await.expect("a JSON body")
    }

    /// `GET path` as the admin.
    async fn get(&self, path: &str) -> Value {
        Self::fetch(&self.base, path, Some(&self.admin_token)).await
    }

    /// The names of the spec's component schemas.
    fn schema_names(&self) -> Vec<&str> {
        let schemas = self.spec["components"]["schemas"].as_object();
        schemas
            .expect("component schemas")
            .keys()
            .map(String::as_str)
            .collect()
    }

    /// The `operationId` of every operation in the spec.
    fn operation_ids(&self) -> Vec<&str> {
        let paths = self.spec["paths"].as_object().expect("paths");
        let operations = paths
            .values()
            .filter_map(Value::as_object)
            .flat_map(|p| p.values());
        operations
            .filter_map(|op| op["operationId"].as_str())
            .collect()
    }

    /// Runs `command` (a journey, given the base URL and the admin token) and returns the JSON
    /// object it printed last; fails the test with its output if it fails.
    fn run(&self, mut command: Command, what: &str) -> Value {
        let output = command
            .arg(&self.base)
            .arg(&self.admin_token)
            .env("NO_PROXY", "127.0.0.1,localhost")
            .env("no_proxy", "127.0.0.1,localhost")
            .output()
            .unwrap_or_else(|e| panic!("running the {what} journey: {e}"));
        assert!(
            output.status.success(),
            "the {what} journey failed: {}",
            log(&output)
        );
        let stdout = String::from_utf8_lossy(&output.stdout);
        let last = stdout.lines().last().unwrap_or_default();
        serde_json::from_str(last)
            .unwrap_or_else(|e| panic!("the {what} journey printed no JSON ({e}): {stdout}"))
    }

    /// Checks what a journey printed against the daemon's own view, read as the admin.
    async fn check(&self, seen: &Value, message: &str) {
        let user_id = seen["user_id"].as_str().expect("user_id");
        let user = self.get(&format!("/v1/users/{user_id}")).await;
        assert_eq!(user["role"], "user");
        assert_eq!(seen["token_user_id"], user_id);
        let tokens = self.get(&format!("/v1/users/{user_id}/tokens")).await;
        assert_eq!(tokens.as_array().map(Vec::len), Some(1), "{tokens}");

        let echo = self.job(&seen["echo"]["id"]).await;
        assert_eq!(echo["owner_id"], user_id);
        assert_eq!(echo["state"], "succeeded");
        assert_eq!(echo["result"]["message"], message);
        assert_eq!(seen["echo"]["result"], echo["result"]);

        let summary_id = seen["summary"]["id"].as_str().expect("summary id");
        let summary = self.get(&format!("/v1/summaries/{summary_id}")).await;
        assert_eq!(summary["status"], "succeeded");
        assert_eq!(summary["builtin"], true, "no provider is configured");
        assert_eq!(summary["provider"], "builtin");
        assert_eq!(seen["summary"]["job_id"], summary["job_id"]);
        let chars = summary["text"].as_str().map(|t| t.chars().count());
        assert_eq!(
            seen["summary"]["text_chars"].as_u64(),
            chars.map(|n| n as u64)
        );

        // Five jobs, two a page: three pages, each job once, newest first.
        let listed = ids(&seen["list"]["listed"]);
        assert_eq!(listed.len(), 5, "{seen}");
        assert_eq!(listed.iter().collect::<BTreeSet<_>>().len(), 5);
        let mut newest_first = ids(&seen["list"]["created"]);
        newest_first.reverse();
        assert_eq!(
            listed, newest_first,
            "UUIDv7 ids of jobs listed newest first"
        );
        assert_eq!(seen["list"]["pages"], 3);

        let cancelled = self.job(&seen["cancelled"]["id"]).await;
        assert_eq!(cancelled["state"], "cancelled");
        assert_eq!(cancelled["owner_id"], user_id);

        let problem = &seen["problem"];
        assert_eq!(problem["status"], 404);
        assert_eq!(problem["code"], "not_found");
        assert_eq!(problem["content_type"], "application/problem+json");
        let request_id = problem["request_id"].as_str().expect("request_id");
        assert!(
            self.daemon.log().contains(request_id),
            "request {request_id} is not in the daemon's log"
        );
    }

    async fn job(&self, id: &Value) -> Value {
        let id = id.as_str().expect("a job id");
        self.get(&format!("/v1/jobs/{id}")).await
    }
}

fn ids(list: &Value) -> Vec<&str> {
    let list = list.as_array().expect("a list of ids");
    list.iter().map(|id| id.as_str().expect("an id")).collect()
}

/// A process's stdout and stderr, for failure messages.
fn log(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}
