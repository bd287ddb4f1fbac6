//! `POST /v1/jobs` load from wrk, a separate process: the in-process reqwest clients share the
//! benchmark's two runtime threads with the daemon they load, and on two cores they took about
//! a third of the CPU the requests could have had (docs/benchmarks.md). Used when `wrk` is on
//! PATH (Debian package `wrk`; bench/jobs.sh installs it).

use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail, ensure};

use super::http::HttpFigures;

/// Whether wrk can be run here.
pub fn available() -> bool {
    std::process::Command::new("wrk")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

/// `clients` keep-alive connections from one wrk thread, each sending `body` to `endpoint`
/// with `token` back to back for `duration`. Any answer but 2xx fails the measurement.
pub async fn post(
    endpoint: &str,
    token: &str,
    body: &str,
    clients: usize,
    duration: Duration,
) -> anyhow::Result<HttpFigures> {
    let dir = tempfile::tempdir().context("creating a directory for the wrk script")?;
    let script = dir.path().join("post.lua");
    let lua = format!(
        "wrk.method = \"POST\"\nwrk.body = '{body}'\n\
         wrk.headers[\"Content-Type\"] = \"application/json\"\n\
         wrk.headers[\"Authorization\"] = \"Bearer {token}\"\n"
    );
    std::fs::write(&script, lua).context("writing the wrk script")?;
    let output = tokio::process::Command::new("wrk")
        .args(["-t1", "--latency", "-c", &clients.to_string()])
        .arg("-d")
        .arg(format!("{}s", duration.as_secs().max(1)))
        .arg("-s")
        .arg(&script)
        .arg(endpoint)
        .output()
        .await
        .context("running wrk")?;
    let text = String::from_utf8_lossy(&output.stdout);
    ensure!(
        output.status.success(),
        "wrk failed: {}{}",
        text,
        String::from_utf8_lossy(&output.stderr)
    );
    parse(&text)
}

/// Requests/s, p50 and p99 (ms) from wrk's `--latency` report.
fn parse(report: &str) -> anyhow::Result<HttpFigures> {
    let mut figures = HttpFigures {
        rate: 0.0,
        p50: 0.0,
        p99: 0.0,
        sent: 0,
        from_wrk: true,
    };
    for line in report.lines().map(str::trim) {
        if line.starts_with("Non-2xx") || line.starts_with("Socket errors") {
            bail!("wrk saw failures: {line}\n{report}");
        }
        let mut words = line.split_whitespace();
        match (words.next(), words.next()) {
            (Some("Requests/sec:"), Some(rate)) => figures.rate = rate.parse()?,
            (Some("50%"), Some(p)) => figures.p50 = millis(p)?,
            (Some("99%"), Some(p)) => figures.p99 = millis(p)?,
            (Some(n), Some("requests")) => figures.sent = n.parse()?,
            _ => {}
        }
    }
    ensure!(
        figures.rate > 0.0 && figures.sent > 0,
        "no rate in wrk's report:\n{report}"
    );
    Ok(figures)
}

/// A wrk duration (`850.00us`, `7.53ms`, `1.02s`) in milliseconds.
fn millis(value: &str) -> anyhow::Result<f64> {
    let (number, scale) = if let Some(n) = value.strip_suffix("us") {
        (n, 0.001)
    } else if let Some(n) = value.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = value.strip_suffix('s') {
        (n, 1000.0)
    } else {
        bail!("not a wrk duration: {value}")
    };
    Ok(number.parse::<f64>().context("a wrk duration")? * scale)
}
