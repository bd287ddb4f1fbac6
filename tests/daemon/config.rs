//! `workhorse config` and config errors: layer precedence, provenance, redaction, exit code 2.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Output;

use crate::helpers::Sandbox;

/// `workhorse <args>` in the sandbox with extra environment, run to completion.
fn run(sandbox: &Sandbox, args: &[&str], env: &[(&str, &str)]) -> Output {
    sandbox
        .command(args)
        .envs(env.iter().copied())
        .output()
        .expect("running workhorse")
}

/// `workhorse config` lines as key → (value, source).
fn parse_config(stdout: &[u8]) -> BTreeMap<String, (String, String)> {
    String::from_utf8_lossy(stdout)
        .lines()
        .map(|line| {
            let (setting, source) = line
                .split_once("  # ")
                .unwrap_or_else(|| panic!("no `# source` in config line {line:?}"));
            let (key, value) = setting
                .trim_end()
                .split_once(" = ")
                .unwrap_or_else(|| panic!("no `key = value` in config line {line:?}"));
            (key.to_string(), (value.to_string(), source.to_string()))
        })
        .collect()
}

/// Whether a source label names the TOML file at `path` (figment may print it relative to the
/// working directory `cwd`).
fn names_file(label: &str, path: &Path, cwd: &Path) -> bool {
    let Some(shown) = label.strip_prefix("TOML file ") else {
        return false;
    };
    let resolved = std::fs::canonicalize(cwd.join(shown));
    resolved.is_ok() && resolved.ok() == std::fs::canonicalize(path).ok()
}

fn entry<'a>(rows: &'a BTreeMap<String, (String, String)>, key: &str) -> &'a (String, String) {
    rows.get(key)
        .unwrap_or_else(|| panic!("`workhorse config` does not list {key}: {rows:#?}"))
}

fn stderr_lines(output: &Output) -> Vec<String> {
    String::from_utf8_lossy(&output.stderr)
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn config_layers_win_in_order_and_each_value_names_its_source() {
    // Arrange: every key is set on the layer that should win and on all layers below it.
    let sandbox = Sandbox::new();
    let default_toml = sandbox.write_config(
        "default.toml",
        "[log]\nlevel = \"debug\"\n\
         [http]\nbody_limit_bytes = 1000\nrequest_timeout = \"11s\"\n\
         [shutdown]\ntimeout = \"7s\"\n",
    );
    let profile_toml = sandbox.write_config(
        "test.toml",
        "[http]\nbody_limit_bytes = 2000\nrequest_timeout = \"12s\"\n\
         [shutdown]\ntimeout = \"8s\"\n",
    );
    sandbox.write_config("other.toml", "[log]\nlevel = \"trace\"\n");
    let extra_dir = tempfile::TempDir::new().unwrap();
    let extra = extra_dir.path().join("workhorse.toml");
    std::fs::write(
        &extra,
        "[http]\nrequest_timeout = \"13s\"\n[shutdown]\ntimeout = \"9s\"\n",
    )
    .unwrap();
    let cwd = sandbox.data_dir();

    // Act
    let output = run(
        &sandbox,
        &[
            "config",
            "--profile",
            "test",
            "--config",
            extra.to_str().unwrap(),
        ],
        &[("WORKHORSE_HTTP__REQUEST_TIMEOUT", "14s")],
    );

    // Assert
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let rows = parse_config(&output.stdout);
    let (value, source) = entry(&rows, "log.level");
    assert_eq!(value, "\"debug\"");
    assert!(
        names_file(source, &default_toml, cwd),
        "log.level from {source}"
    );
    let (value, source) = entry(&rows, "http.body_limit_bytes");
    assert_eq!(value, "2000");
    assert!(
        names_file(source, &profile_toml, cwd),
        "body_limit_bytes from {source}"
    );
    let (value, source) = entry(&rows, "shutdown.timeout");
    assert_eq!(value, "\"9s\"");
    assert!(
        names_file(source, &extra, cwd),
        "shutdown.timeout from {source}"
    );
    let (value, source) = entry(&rows, "http.request_timeout");
    assert_eq!(value, "\"14s\"");
    assert_eq!(
        source,
        "environment variable WORKHORSE_HTTP__REQUEST_TIMEOUT"
    );
}

// Bug: src/config.rs falls back to "built-in defaults" only when figment has no metadata, but
// `Serialized::defaults` has some, so these keys are labelled `workhorse::config::Config
// src/config.rs:218:41` instead.
#[test]
// Regression: defaults were labelled with figment's Serialized metadata, not "built-in defaults".
fn config_labels_keys_set_nowhere_as_built_in_defaults() {
    // Arrange
    let sandbox = Sandbox::new();

    // Act
    let output = run(&sandbox, &["config"], &[]);

    // Assert
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let rows = parse_config(&output.stdout);
    assert_eq!(
        entry(&rows, "http.listen"),
        &(
            "\"127.0.0.1:8080\"".to_string(),
            "built-in defaults".to_string()
        )
    );
    assert_eq!(
        entry(&rows, "shutdown.timeout"),
        &("\"30s\"".to_string(), "built-in defaults".to_string())
    );
}

#[test]
fn config_redacts_the_database_password_and_names_its_variable() {
    // Arrange
    let sandbox = Sandbox::new();

    // Act
    let output = run(
        &sandbox,
        &["config"],
        &[("WORKHORSE_DATABASE__URL", "postgres://u:secret@h/db")],
    );

    // Assert
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(!stdout.contains("secret"), "the password leaked:\n{stdout}");
    let (value, source) = entry(&parse_config(&output.stdout), "database.url").clone();
    assert!(value.contains("<redacted>"), "database.url = {value}");
    assert_eq!(source, "environment variable WORKHORSE_DATABASE__URL");
}

/// Run `workhorse config` expecting the one-line error of a bad value; returns that line.
fn config_error(sandbox: &Sandbox, args: &[&str], env: &[(&str, &str)]) -> String {
    let output = run(sandbox, args, env);
    assert_eq!(
        output.status.code(),
        Some(2),
        "exit status {}",
        output.status
    );
    let lines = stderr_lines(&output);
    assert_eq!(
        lines.len(),
        1,
        "expected exactly one stderr line: {lines:#?}"
    );
    lines.into_iter().next().unwrap_or_default()
}

#[test]
fn a_bad_listen_address_in_the_environment_exits_2_naming_key_variable_and_expectation() {
    // Arrange
    let sandbox = Sandbox::new();

    // Act
    let line = config_error(&sandbox, &["config"], &[("WORKHORSE_HTTP__LISTEN", "abc")]);

    // Assert
    assert!(line.contains("`http.listen`"), "{line}");
    assert!(
        line.contains("environment variable WORKHORSE_HTTP__LISTEN"),
        "{line}"
    );
    assert!(line.contains("expected an address and port"), "{line}");
}

#[test]
fn a_bad_duration_in_a_file_exits_2_naming_key_file_and_expectation() {
    // Arrange
    let sandbox = Sandbox::new();
    sandbox.write_config("test.toml", "[shutdown]\ntimeout = \"soon\"\n");

    // Act
    let line = config_error(&sandbox, &["config", "--profile", "test"], &[]);

    // Assert
    assert!(line.contains("`shutdown.timeout`"), "{line}");
    assert!(line.contains("\"soon\""), "{line}");
    assert!(
        line.contains("TOML file") && line.contains("test.toml"),
        "{line}"
    );
    assert!(line.contains("expected a duration"), "{line}");
}

#[test]
fn a_bad_serve_setting_exits_2_before_anything_starts() {
    // Arrange
    let sandbox = Sandbox::new();

    // Act
    let line = config_error(
        &sandbox,
        &["serve"],
        &[("WORKHORSE_TELEMETRY__SAMPLE_RATIO", "1.5")],
    );

    // Assert
    assert!(line.contains("`telemetry.sample_ratio`"), "{line}");
    assert!(
        line.contains("environment variable WORKHORSE_TELEMETRY__SAMPLE_RATIO"),
        "{line}"
    );
    assert!(line.contains("expected a number from 0.0 to 1.0"), "{line}");
    assert!(!sandbox.data_dir().join("postgres").exists());
}

#[test]
fn no_deliveries_at_once_is_refused_naming_the_key() {
    // Arrange
    let sandbox = Sandbox::new();

    // Act
    let line = config_error(
        &sandbox,
        &["config"],
        &[("WORKHORSE_NOTIFY__CONCURRENCY", "0")],
    );

    // Assert
    assert!(line.contains("`notify.concurrency`"), "{line}");
    assert!(line.contains("expected a whole number from 1"), "{line}");
}

#[test]
fn an_unknown_key_in_a_file_exits_2_naming_key_and_file() {
    // Arrange
    let sandbox = Sandbox::new();
    sandbox.write_config("default.toml", "[http]\nlisten_port = 8080\n");

    // Act
    let line = config_error(&sandbox, &["config"], &[]);

    // Assert
    assert!(line.contains("unknown key `http.listen_port`"), "{line}");
    assert!(
        line.contains("TOML file") && line.contains("default.toml"),
        "{line}"
    );
    assert!(
        line.contains("expected one of the keys `workhorse config` lists"),
        "{line}"
    );
}

#[test]
fn an_unknown_key_in_the_environment_exits_2_naming_key_and_variable() {
    // Arrange
    let sandbox = Sandbox::new();

    // Act
    let line = config_error(&sandbox, &["config"], &[("WORKHORSE_HTTP__LISTN", "1")]);

    // Assert
    assert!(line.contains("unknown key `http.listn`"), "{line}");
    assert!(
        line.contains("environment variable WORKHORSE_HTTP__LISTN"),
        "{line}"
    );
}

#[test]
fn a_missing_config_file_exits_2_naming_the_file() {
    // Arrange
    let sandbox = Sandbox::new();
    let missing = sandbox.config_dir().join("nope.toml");

    // Act
    let line = config_error(
        &sandbox,
        &["config", "--config", missing.to_str().unwrap()],
        &[],
    );

    // Assert
    assert!(line.contains(missing.to_str().unwrap()), "{line}");
    assert!(line.contains("does not exist"), "{line}");
}

#[test]
fn every_subcommand_answers_help_with_exit_0() {
    // Arrange
    let sandbox = Sandbox::new();
    let commands: [&[&str]; 7] = [
        &[],
        &["serve"],
        &["migrate"],
        &["openapi"],
        &["config"],
        &["admin"],
        &["admin", "create-token"],
    ];

    for command in commands {
        // Act
        let args: Vec<&str> = command.iter().copied().chain(["--help"]).collect();
        let output = run(&sandbox, &args, &[]);

        // Assert
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "workhorse {args:?}: {}",
            output.status
        );
        assert!(
            stdout.contains("Usage: workhorse"),
            "workhorse {args:?}:\n{stdout}"
        );
    }
}
