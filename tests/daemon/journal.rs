//! The `journal` log format as systemd runs the daemon: `auto` picks it when `JOURNAL_STREAM`
//! names stderr, every line carries its syslog priority, an explicit format wins, `RUST_LOG`
//! replaces `log.level`, and an invalid `RUST_LOG` stops the start with exit code 2.

use std::time::Duration;

use serde_json::json;

use crate::helpers::{
    CONFIGURED_START, Daemon, Sandbox, create_token, eventually, fresh_database, http,
};

/// `workhorse serve` on a free port against `db_url`, its stderr a (simulated) journal
/// stream, with no `log.format` set unless `env` sets one.
fn serve_into_journal(sandbox: &Sandbox, db_url: &str, env: &[(&str, &str)]) -> Daemon {
    let mut cmd = sandbox.command(&["serve"]);
    cmd.env("WORKHORSE_HTTP__LISTEN", "127.0.0.1:0")
        .env("WORKHORSE_DATABASE__URL", db_url)
        .envs(env.iter().copied());
    Daemon::spawn_into_journal(cmd)
}

/// The lines of `log` that are not empty.
fn lines(log: &str) -> Vec<&str> {
    log.lines().filter(|l| !l.is_empty()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn auto_writes_journal_lines_with_the_priority_of_each_level() {
    // Arrange: a daemon in a journal stream, and a job that panics on its only attempt.
    let db = fresh_database().await;
    let sandbox = Sandbox::new();
    let mut daemon = serve_into_journal(&sandbox, db.url(), &[]);
    daemon.wait_ready(CONFIGURED_START).await;
    let token = create_token(&sandbox, db.url());

    // Act
    let resp = http()
        .post(format!("{}/v1/jobs", daemon.base_url()))
        .bearer_auth(&token)
        .json(&json!({"kind": "echo", "args": {"panic": true}, "max_attempts": 1}))
        .send()
        .await
        .expect("POST /v1/jobs");
    assert_eq!(resp.status(), 202, "POST /v1/jobs");
    eventually(
        Duration::from_secs(20),
        "the attempt's failure logged",
        async || daemon.log().contains("job attempt failed").then_some(()),
    )
    .await;
    assert!(daemon.terminate(Duration::from_secs(30)).await.success());

    // Assert: every line has a priority, and the ones we know have the right one.
    let log = daemon.log();
    let lines = lines(&log);
    let unprefixed: Vec<_> = (lines.iter())
        .filter(|l| {
            !["<3>", "<4>", "<6>", "<7>"]
                .iter()
                .any(|p| l.starts_with(p))
        })
        .collect();
    assert!(
        unprefixed.is_empty(),
        "lines without a priority: {unprefixed:#?}"
    );
    assert!(
        !log.contains('\u{1b}'),
        "ANSI escapes in the journal format"
    );
    let line = |needle: &str| {
        (lines.iter().find(|l| l.contains(needle)))
            .unwrap_or_else(|| panic!("no line with {needle:?} in:\n{log}"))
    };
    assert!(line("workhorse::app: listening").starts_with("<6>INFO "));
    assert!(line("job attempt failed").starts_with("<4>WARN "));
    // A panic is an error, not the default hook's bare text.
    let panicked = line("was asked to panic");
    assert!(panicked.starts_with("<3>ERROR "), "{panicked}");
    assert!(
        panicked.contains(" panic: panicked: echo job "),
        "{panicked}"
    );
    assert!(
        !log.contains("thread '"),
        "the default panic hook's output:\n{log}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_explicit_log_format_wins_over_the_journal_stream() {
    // Arrange
    let db = fresh_database().await;
    let sandbox = Sandbox::new();

    // Act
    let mut daemon = serve_into_journal(&sandbox, db.url(), &[("WORKHORSE_LOG__FORMAT", "json")]);
    daemon.wait_ready(CONFIGURED_START).await;
    assert!(daemon.terminate(Duration::from_secs(30)).await.success());

    // Assert
    let log = daemon.log();
    let not_json: Vec<_> = (lines(&log).into_iter())
        .filter(|l| serde_json::from_str::<serde_json::Value>(l).is_err())
        .collect();
    assert!(
        not_json.is_empty(),
        "lines that are not JSON: {not_json:#?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn rust_log_replaces_the_configured_level() {
    // Arrange: log.level says info; RUST_LOG keeps only warnings, and app's start-up lines.
    let db = fresh_database().await;
    let sandbox = Sandbox::new();
    let env = [
        ("WORKHORSE_LOG__LEVEL", "info"),
        ("RUST_LOG", "warn,workhorse::app=debug"),
    ];
    let mut daemon = serve_into_journal(&sandbox, db.url(), &env);
    daemon.wait_ready(CONFIGURED_START).await;

    // Act: a request that is logged at info by the HTTP layer.
    let resp = http()
        .get(format!("{}/v1/no-such-thing", daemon.base_url()))
        .send()
        .await
        .expect("GET /v1/no-such-thing");
    assert_eq!(resp.status(), 404);
    assert!(daemon.terminate(Duration::from_secs(30)).await.success());

    // Assert
    let log = daemon.log();
    let lines = lines(&log);
    assert!(
        lines
            .iter()
            .any(|l| l.contains("workhorse::app: listening")),
        "{log}"
    );
    let other_info: Vec<_> = (lines.iter())
        .filter(|l| l.starts_with("<6>") || l.starts_with("<7>"))
        .filter(|l| !l.contains("workhorse::app: "))
        .collect();
    assert!(
        other_info.is_empty(),
        "info lines RUST_LOG filters out: {other_info:#?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_invalid_rust_log_is_one_line_and_exit_code_2() {
    // Arrange
    let sandbox = Sandbox::new();

    // Act
    let output = sandbox
        .command(&["serve"])
        .env("RUST_LOG", "workhorse=loud")
        .output()
        .expect("running workhorse serve");

    // Assert
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    // Regression: the parse error's cause chain repeated its text.
    assert_eq!(stderr.matches("expected one of").count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("workhorse: RUST_LOG \"workhorse=loud\" is not a valid tracing filter"),
        "{stderr}"
    );
}
