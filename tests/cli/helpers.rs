//! Running the built `workhorse` binary's operator commands against the test's database (no
//! daemon), with a clean environment and a schedules directory of the test's own; and the
//! rows the tests arrange.

use std::process::{Command, Output, Stdio};

use serde_json::{Value, json};
use sqlx::PgPool;
use tempfile::TempDir;
use uuid::Uuid;
use workhorse::store::jobs::{self, NewJob};

/// The binary under test.
pub const WORKHORSE: &str = env!("CARGO_BIN_EXE_workhorse");

/// A schedule of the `echo` kind every test directory holds.
const ECHO_SCHEDULE: &str = r#"
name = "echo-hourly"
cron = "0 0 * * * *"
kind = "echo"
args = { message = "tick" }
description = "An hourly echo."
"#;

/// The CLI pointed at one test database.
pub struct Cli {
    url: String,
    config_dir: TempDir,
    schedules_dir: TempDir,
    data_dir: TempDir,
}

impl Cli {
    /// The CLI for the database `pool` is connected to.
    pub async fn new(pool: &PgPool) -> Self {
        let name: String = sqlx::query_scalar("SELECT current_database()")
            .fetch_one(pool)
            .await
            .unwrap();
        let admin = std::env::var("DATABASE_URL").expect("DATABASE_URL is set for the tests");
        let server = admin.split('?').next().unwrap_or_default();
        let base = server.rsplit_once('/').map_or(server, |(base, _)| base);
        let cli = Self {
            url: format!("{base}/{name}"),
            config_dir: TempDir::new().unwrap(),
            schedules_dir: TempDir::new().unwrap(),
            data_dir: TempDir::new().unwrap(),
        };
        std::fs::write(cli.schedules_dir.path().join("echo.toml"), ECHO_SCHEDULE).unwrap();
        cli
    }

    /// `workhorse <args>` with only this test's configuration.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(WORKHORSE);
        for (key, _) in std::env::vars_os() {
            let key = key.to_string_lossy();
            if key.starts_with("WORKHORSE_")
                || key.starts_with("OTEL_")
                || ["DATABASE_URL", "RUST_LOG", "NOTIFY_SOCKET"].contains(&key.as_ref())
            {
                cmd.env_remove(key.as_ref());
            }
        }
        cmd.args(args)
            .env("WORKHORSE_CONFIG_DIR", self.config_dir.path())
            .env("WORKHORSE_DATA_DIR", self.data_dir.path())
            .env("WORKHORSE_DATABASE__URL", &self.url)
            .env("WORKHORSE_JOBS__SCHEDULES_DIR", self.schedules_dir.path())
            .env("NO_PROXY", "127.0.0.1,localhost")
            .current_dir(self.data_dir.path())
            .stdin(Stdio::null());
        cmd
    }

    /// Run `workhorse <args>` to its end.
    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("running workhorse")
    }

    /// Run `workhorse <args>`, expect exit code `code`, return (stdout, stderr).
    pub fn exits(&self, code: i32, args: &[&str]) -> (String, String) {
        let out = self.run(args);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(
            out.status.code(),
            Some(code),
            "workhorse {args:?}\nstdout:\n{stdout}\nstderr:\n{stderr}"
        );
        (stdout, stderr)
    }

    /// Run `workhorse <args>`, expect success, return stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        self.exits(0, args).0
    }

    /// Run `workhorse --json <args>`, expect success, return stdout parsed.
    pub fn json(&self, args: &[&str]) -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let out = self.ok(&all);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}):\n{out}"))
    }
}

/// Enqueue an `echo` job with `args`, optionally owned by `owner`.
pub async fn echo_job(pool: &PgPool, args: Value, owner: Option<Uuid>) -> Uuid {
    let mut conn = pool.acquire().await.unwrap();
    let job = NewJob {
        owner_id: owner,
        ..NewJob::new("echo", args, 3)
    };
    jobs::enqueue(&mut conn, &job).await.unwrap().id()
}

/// Put job `id` in a finished `state` (dead, cancelled, succeeded) with one failed attempt.
pub async fn finish(pool: &PgPool, id: Uuid, state: &str) {
    let error = json!([{"attempt": 1, "at": "2026-12-05T05:00:00Z", "error": "it broke",
                        "permanent": true}]);
    sqlx::query(
        "UPDATE jobs SET state = $2, attempts = 1, errors = $3, finished_at = now(), \
                dead_reason = CASE WHEN $2 = 'dead' THEN 'permanent error' END \
         WHERE id = $1",
    )
    .bind(id)
    .bind(state)
    .bind(error)
    .execute(pool)
    .await
    .unwrap();
}

/// The stored state of job `id`.
pub async fn job_state(pool: &PgPool, id: Uuid) -> String {
    sqlx::query_scalar("SELECT state FROM jobs WHERE id = $1")
        .bind(id)
        .fetch_one(pool)
        .await
        .unwrap()
}

/// A user with the `user` role on the `free` plan.
pub async fn user(pool: &PgPool, name: &str) -> Uuid {
    sqlx::query_scalar(
        "INSERT INTO users (id, name, role, plan) VALUES (gen_random_uuid(), $1, 'user', 'free') \
         RETURNING id",
    )
    .bind(name)
    .fetch_one(pool)
    .await
    .unwrap()
}
