//! Generated clients: openapi-python-client builds a complete client from the served spec (no
//! schema or operation dropped), and that client reads a real job. Skipped, with a `SKIPPED:`
//! line, where the generator is not installed, unless `WORKHORSE_REQUIRE_CLIENTS=1`.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use serde_json::{Value, json};
use tempfile::TempDir;

use crate::helpers::{CONFIGURED_START, Sandbox, create_token, eventually, fresh_database, http};

const GENERATOR: &str = "openapi-python-client";
/// Its Python module: `python3 -m` finds it wherever pip put the script.
const MODULE: &str = "openapi_python_client";
const REQUIRE_ENV: &str = "WORKHORSE_REQUIRE_CLIENTS";
const INSTALL: &str = "python3 -m pip install openapi-python-client==0.29.1";
/// The package the generated client is written as (with `--meta none`, the output directory).
const PACKAGE: &str = "workhorse_client";
/// A PNG screenshot is bytes to a client: without the override the generator omits that
/// response. No post hooks: formatting the generated code (with ruff) proves nothing here.
const CONFIG: &str = "post_hooks: []
content_type_overrides:
  image/png: application/octet-stream
";

/// Whether the generator runs here; prints `SKIPPED:` (or panics when it is required) if not.
fn generator_installed() -> bool {
    let why = match python_module().arg("--version").output() {
        Ok(out) if out.status.success() => return true,
        Ok(out) => format!(
            "{GENERATOR} --version failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ),
        Err(e) => format!("python3 cannot run: {e}"),
    };
    if std::env::var(REQUIRE_ENV).is_ok_and(|v| v == "1") {
        panic!("{why} (and {REQUIRE_ENV}=1); install it with `{INSTALL}`");
    }
    // Straight to the process's stderr: the harness captures `eprintln!` from passing tests.
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED: {why}; install it with `{INSTALL}` to run this test"
    );
    false
}

fn python_module() -> Command {
    let mut command = Command::new("python3");
    command.args(["-m", MODULE]);
    command
}

/// The generator's model file for a component schema: `JobSummaryOut` → `job_summary_out.py`.
fn model_file(schema: &str) -> String {
    let mut out = String::new();
    let chars: Vec<char> = schema.chars().collect();
    for (i, c) in chars.iter().enumerate() {
        let after_lower = i > 0 && (chars[i - 1].is_lowercase() || chars[i - 1].is_ascii_digit());
        let starts_word = i > 0
            && chars[i - 1].is_uppercase()
            && chars.get(i + 1).is_some_and(|n| n.is_lowercase());
        if c.is_uppercase() && (after_lower || starts_word) {
            out.push('_');
        }
        out.extend(c.to_lowercase());
    }
    out + ".py"
}

fn generate(spec: &Value, dir: &Path) -> Output {
    let spec_file = dir.join("spec.json");
    std::fs::write(&spec_file, spec.to_string()).expect("writing the spec");
    let config = dir.join("config.yaml");
    std::fs::write(&config, CONFIG).expect("writing the generator's config");
    python_module()
        .arg("generate")
        .arg("--path")
        .arg(&spec_file)
        .arg("--config")
        .arg(&config)
        .arg("--output-path")
        .arg(dir.join(PACKAGE))
        .args(["--meta", "none", "--fail-on-warning"])
        .output()
        .expect("running openapi-python-client")
}

/// Parses `job` with the generated `JobOut.from_dict` and prints what it read, as JSON.
fn read_with_client(dir: &Path, job: &Value) -> Output {
    let job_file = dir.join("job.json");
    std::fs::write(&job_file, job.to_string()).expect("writing the job");
    let script = format!(
        "import json, sys\n\
         from {PACKAGE}.models import JobOut, JobStateOut\n\
         job = JobOut.from_dict(json.load(open(sys.argv[1])))\n\
         assert isinstance(job.state, JobStateOut), type(job.state)\n\
         print(json.dumps({{'id': str(job.id), 'kind': job.kind, 'state': job.state.value,\n\
                           'attempts': job.attempts, 'created_at': job.created_at.isoformat()}}))\n"
    );
    Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(&job_file)
        .env("PYTHONPATH", dir)
        .output()
        .expect("running python3")
}

#[tokio::test(flavor = "multi_thread")]
async fn openapi_python_client_generates_every_schema_and_its_job_out_reads_a_served_job() {
    if !generator_installed() {
        return;
    }
    // Arrange: a daemon, its spec, and a finished echo job.
    let db = fresh_database().await;
    let sandbox = Sandbox::new();
    let mut daemon = sandbox.serve(&[("WORKHORSE_DATABASE__URL", db.url())]);
    daemon.wait_ready(CONFIGURED_START).await;
    let token = create_token(&sandbox, db.url());
    let base = daemon.base_url();
    let spec: Value = (http().get(format!("{base}/openapi.json")).send().await)
        .expect("GET /openapi.json")
        .json()
        .await
        .expect("/openapi.json is JSON");
    let created: Value = (http().post(format!("{base}/v1/jobs")).bearer_auth(&token))
        .json(&json!({"kind": "echo", "args": {"sleep_ms": 1}}))
        .send()
        .await
        .expect("POST /v1/jobs")
        .json()
        .await
        .expect("the job as JSON");
    let id = created["id"].as_str().expect("the job's id").to_string();
    let job = eventually(
        Duration::from_secs(20),
        "the echo job succeeded",
        async || {
            let response = (http()
                .get(format!("{base}/v1/jobs/{id}"))
                .bearer_auth(&token))
            .send()
            .await
            .ok()?;
            let job: Value = response.json().await.ok()?;
            (job["state"] == "succeeded").then_some(job)
        },
    )
    .await;
    let dir = TempDir::new().expect("creating a temp dir");

    // Act
    let generated = generate(&spec, dir.path());
    let read = read_with_client(dir.path(), &job);

    // Assert: generated without a warning, a model for every component schema, and the job read.
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&generated.stdout),
        String::from_utf8_lossy(&generated.stderr)
    );
    assert!(generated.status.success(), "{GENERATOR}: {log}");
    for sign in [
        "Warning",
        "WARNING",
        "Unable to",
        "removal of",
        "will be omitted",
    ] {
        assert!(!log.contains(sign), "{GENERATOR} said {sign:?}: {log}");
    }
    let models = dir.path().join(PACKAGE).join("models");
    let schemas = spec["components"]["schemas"].as_object().expect("schemas");
    for name in schemas.keys() {
        let file = model_file(name);
        assert!(models.join(&file).is_file(), "{name} has no {file}");
    }
    for file in ["job_out.py", "job_summary_out.py", "job_page.py"] {
        assert!(models.join(file).is_file(), "no {file}");
    }
    assert!(
        read.status.success(),
        "JobOut.from_dict: {}",
        String::from_utf8_lossy(&read.stderr)
    );
    let parsed: Value = serde_json::from_slice(&read.stdout).expect("the script's JSON");
    assert_eq!(parsed["id"], job["id"]);
    assert_eq!(parsed["kind"], "echo");
    assert_eq!(parsed["state"], "succeeded");
    assert_eq!(parsed["attempts"], job["attempts"]);
}
