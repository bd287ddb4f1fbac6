//! The live stream's cost for `bench_dashboard`: echo jobs of the signed-in user inserted at a
//! fixed rate while the workers run them, first with no browser open, then with browsers
//! holding `/ui/events` open (a session each); the daemon's CPU (and its database backends')
//! from the load's start until the last job finished, what each browser received, and the
//! daemon's RSS.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use sqlx::PgPool;

use super::queue::{SETTLE_TIMEOUT, cancel_live, insert, settle_stream, succeeded, wait_jobs};
use super::support::{self, CpuSnapshot, pct, thousands};
use super::ui_sse::{self, StreamStats, Streams};
use super::{Args, People, pause, row};

/// What one phase measured.
struct Phase {
    jobs: u64,
    load_secs: f64,
    /// From the load's start until no job was left (or [`SETTLE_TIMEOUT`] after it).
    busy_secs: f64,
    done: i64,
    all_done: bool,
    rss_idle_kib: u64,
    rss_peak_kib: u64,
    daemon_cpu_secs: f64,
    /// The database backends' CPU, when /proc shows them.
    backends_cpu_secs: Option<f64>,
    streams: Vec<StreamStats>,
}

/// The phases without and with browsers, as table rows.
pub async fn measure(args: &Args, pool: &PgPool, people: &People) -> anyhow::Result<Vec<String>> {
    let browsers = args.size(args.browsers, 20, 5);
    let rate = args.size(args.rate, 1000.0, 200.0);
    let secs = args.size(args.secs, 20.0, 3.0);
    eprintln!("live stream: {rate} jobs/s for {secs} s, no browser");
    let alone = phase(args, pool, people, &[], rate, secs, "load-alone").await?;
    eprintln!("live stream: signing in {browsers} browsers");
    let http = ui_sse::client()?;
    let mut cookies = Vec::with_capacity(browsers);
    for _ in 0..browsers {
        cookies.push(ui_sse::session_cookie(&http, &people.base, &people.user.token).await?);
    }
    eprintln!("live stream: {rate} jobs/s for {secs} s, {browsers} browsers");
    let crowded = phase(args, pool, people, &cookies, rate, secs, "load-crowded").await?;

    let mib = |kib: u64| format!("{:.1} MiB", kib as f64 / 1024.0);
    let mut rows = Vec::new();
    for (n, p) in [(0, &alone), (browsers, &crowded)] {
        rows.push(row(
            &format!("live: load with {n} browsers"),
            format!(
                "{} echo jobs in {:.1} s = {} jobs/s (asked {}); {}",
                thousands(p.jobs as f64),
                p.load_secs,
                thousands(p.jobs as f64 / p.load_secs),
                thousands(rate),
                match p.all_done {
                    true => format!("all succeeded {:.1} s after the load's start", p.busy_secs),
                    false => format!(
                        "**{} of them succeeded within {} s** after it, the rest cancelled",
                        thousands(p.done as f64),
                        SETTLE_TIMEOUT.as_secs()
                    ),
                }
            ),
        ));
    }
    for (n, p) in [(0, &alone), (browsers, &crowded)] {
        let backends = p.backends_cpu_secs.map_or(String::new(), |b| {
            format!("; PostgreSQL backends {:.0}%", 100.0 * b / p.busy_secs)
        });
        rows.push(row(
            &format!("live: daemon CPU with {n} browsers on `/ui/events`"),
            format!(
                "{:.0}% of one core ({:.1} CPU-s over {:.1} s){backends}",
                100.0 * p.daemon_cpu_secs / p.busy_secs,
                p.daemon_cpu_secs,
                p.busy_secs
            ),
        ));
    }
    let extra = crowded.daemon_cpu_secs - alone.daemon_cpu_secs;
    rows.push(row(
        &format!("live: daemon CPU the {browsers} browsers added"),
        format!(
            "{extra:.2} CPU-s = {:.0} CPU-ms per browser per second of load",
            1000.0 * extra / browsers.max(1) as f64 / crowded.busy_secs
        ),
    ));
    rows.push(row(
        "live: received per browser (min / median / max)",
        received(&crowded.streams),
    ));
    rows.push(row(
        "live: daemon RSS",
        format!(
            "idle {}, with {browsers} idle browsers {}; peak under load {} (no browser) / {} \
             ({browsers} browsers)",
            mib(alone.rss_idle_kib),
            mib(crowded.rss_idle_kib),
            mib(alone.rss_peak_kib),
            mib(crowded.rss_peak_kib)
        ),
    ));
    Ok(rows)
}

/// Messages, bytes, and the highest rate and shortest gap between two messages of the
/// browsers' streams.
fn received(streams: &[StreamStats]) -> String {
    let mut messages: Vec<f64> = streams.iter().map(|s| s.messages as f64).collect();
    let mut bytes: Vec<f64> = streams.iter().map(|s| s.bytes as f64).collect();
    messages.sort_by(f64::total_cmp);
    bytes.sort_by(f64::total_cmp);
    let gaps =
        || (streams.iter()).flat_map(|s| s.at.windows(2).map(|w| (w[1] - w[0]).as_secs_f64()));
    let gap = gaps().fold(f64::INFINITY, f64::min);
    // Messages a second from each stream's first message to its last.
    let rate = (streams.iter())
        .filter_map(|s| {
            let span = (*s.at.last()? - *s.at.first()?).as_secs_f64();
            (span > 0.0).then(|| (s.at.len() - 1) as f64 / span)
        })
        .fold(0.0, f64::max);
    let ended: Vec<&str> = streams.iter().filter_map(|s| s.ended.as_deref()).collect();
    let three = |v: &[f64]| {
        format!(
            "{} / {} / {}",
            thousands(pct(v, 0.0)),
            thousands(pct(v, 50.0)),
            thousands(pct(v, 100.0))
        )
    };
    let mut text = format!(
        "{} `changed` messages, {} bytes; at most {rate:.2} messages/s from a stream's first \
         to its last, the closest two {}",
        three(&messages),
        three(&bytes),
        match gap.is_finite() {
            true => format!("{gap:.2} s apart"),
            false => "-".into(),
        }
    );
    if !ended.is_empty() {
        text += &format!("; **{} streams ended early**: {}", ended.len(), ended[0]);
    }
    text
}

/// Open a stream per cookie, insert echo jobs at `rate` for `secs` and wait for them all.
async fn phase(
    args: &Args,
    pool: &PgPool,
    people: &People,
    cookies: &[String],
    rate: f64,
    secs: f64,
    tag: &str,
) -> anyhow::Result<Phase> {
    let pid = args.daemon_pid;
    let streams = match cookies.is_empty() {
        true => None,
        false => Some(Streams::open(&people.base, cookies).await?),
    };
    pause().await;
    let rss_idle_kib = support::rss_kib(pid)?;
    let peak = Arc::new(AtomicU64::new(rss_idle_kib));
    let sampling = {
        let peak = peak.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(200)).await;
                if let Ok(kib) = support::rss_kib(pid) {
                    peak.fetch_max(kib, Ordering::Relaxed);
                }
            }
        })
    };
    let ticks = || support::proc_ticks(&pid.to_string()).context("reading the daemon's CPU");
    let (cpu0, pg0) = (ticks()?, CpuSnapshot::take(pool).await?);
    let started = Instant::now();
    let mut conn = pool.acquire().await.context("acquiring a connection")?;
    let mut tick = tokio::time::interval(Duration::from_millis(args.every_ms));
    let mut inserted = 0u64;
    let owners = [people.user.id];
    while started.elapsed().as_secs_f64() < secs {
        tick.tick().await;
        let due = (started.elapsed().as_secs_f64().min(secs) * rate) as u64;
        if due > inserted {
            insert(&mut conn, &owners, due - inserted, tag).await?;
            inserted = due;
        }
    }
    drop(conn);
    let load_secs = started.elapsed().as_secs_f64();
    let all_done = wait_jobs(pool, SETTLE_TIMEOUT).await?.is_some();
    let busy_secs = started.elapsed().as_secs_f64();
    let (cpu1, pg1) = (ticks()?, CpuSnapshot::take(pool).await?);
    sampling.abort();
    let done = succeeded(pool, tag).await?.0;
    if !all_done {
        cancel_live(pool).await?;
    }
    settle_stream(pool).await?;
    // The last coalesced message goes out up to a second after the last change.
    pause().await;
    let streams = match streams {
        Some(s) => s.close().await,
        None => Vec::new(),
    };
    Ok(Phase {
        jobs: inserted,
        load_secs,
        busy_secs,
        done,
        all_done,
        rss_idle_kib,
        rss_peak_kib: peak.load(Ordering::Relaxed),
        daemon_cpu_secs: cpu1.saturating_sub(cpu0) as f64 / args.clk_tck as f64,
        backends_cpu_secs: pg0.zip(pg1).map(|(a, b)| b.since(&a).1),
        streams,
    })
}
