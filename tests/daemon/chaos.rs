//! Chaos: 2,000 recorded `echo` jobs while the daemon is SIGKILLed three times and restarted at
//! once. Nothing is lost, only jobs the killed process held run twice, and every killed
//! process's jobs are back in work within 10 s, with the crash and the attempt counted.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use nix::sys::signal::Signal;
use serde_json::{Value, json};
use sqlx::PgConnection;
use uuid::Uuid;
use workhorse::store::jobs;

use crate::helpers::{CONFIGURED_START, Daemon, Sandbox, fresh_database};

/// Jobs in the run.
const JOBS: usize = 2_000;
/// Handler time of each job: with 8 slots the run lasts over 20 s, long enough for three kills
/// that each wait for the previous one's jobs to be rescued (about 7 s).
const SLEEP_MS: u64 = 75;
/// Slots of the `echo` worker.
const CONCURRENCY: &str = "8";
/// The daemon is killed once this many jobs have succeeded and the jobs caught by earlier kills
/// are out of the way (see [`may_kill_again`]).
const KILL_AT: [i64; 3] = [150, 600, 1_050];
/// The guarantee: a killed process's jobs are back in work this soon after the kill.
const RECOVERY: Duration = Duration::from_secs(10);
/// The whole run, kills included, fails the test after this.
const RUN_LIMIT: Duration = Duration::from_secs(90);
/// When the jobs a killed process held are listed: late enough that a claim the server was
/// still committing for the dead connection is in, and well before any of its leases (6 s,
/// renewed every 2 s) can run out.
const SNAPSHOT_AFTER: Duration = Duration::from_millis(500);
/// Text of the error the sweeper records for a rescued attempt.
const RESCUED: &str = "stopped responding";

/// One SIGKILL: when, which engine instance died, and the jobs it held.
struct Kill {
    at: DateTime<Utc>,
    instance: Uuid,
    held: Vec<Uuid>,
}

/// How long one kill's jobs took to come back, measured from the rows.
struct Recovery {
    /// Until the last held job was back in the queue with its crash counted.
    requeued: Duration,
    /// Until the last held job had started again in a live process.
    restarted: Duration,
}

#[tokio::test(flavor = "multi_thread")]
async fn two_thousand_jobs_survive_three_sigkills_and_only_jobs_held_at_a_kill_run_twice() {
    // Arrange: the daemon runs, then the whole backlog arrives in one statement.
    let db = fresh_database().await;
    let sandbox = Sandbox::new();
    let env = [
        ("WORKHORSE_DATABASE__URL", db.url()),
        ("WORKHORSE_JOBS__CONCURRENCY", CONCURRENCY),
    ];
    let mut killed: Vec<Daemon> = Vec::new();
    let mut daemon = sandbox.serve(&env);
    daemon.wait_ready(CONFIGURED_START).await;
    let mut conn = db.connect().await;
    let args = vec![json!({"sleep_ms": SLEEP_MS, "record": true}); JOBS];
    let started = Instant::now();
    let created = jobs::enqueue_many(&mut conn, "echo", 5, &args, &[])
        .await
        .expect("enqueueing the jobs");
    assert_eq!(created, JOBS as u64);

    // Act: kill at each threshold, restart at once, until every job succeeded.
    let mut kills: Vec<Kill> = Vec::new();
    loop {
        let succeeded = count_succeeded(&mut conn).await;
        if succeeded == JOBS as i64 {
            break;
        }
        if let Some(&threshold) = KILL_AT.get(kills.len())
            && succeeded >= threshold
            && may_kill_again(&mut conn, &kills).await
        {
            let (kill, dead) = kill_and_restart(&sandbox, &env, &mut daemon, &mut conn).await;
            kills.push(kill);
            killed.push(dead);
            continue;
        }
        assert!(
            started.elapsed() < RUN_LIMIT,
            "only {succeeded} of {JOBS} jobs succeeded after {RUN_LIMIT:?} ({} kills)",
            kills.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let run_time = started.elapsed();

    // Assert: the figures first, so that a failing run still shows them.
    let mut recoveries = Vec::new();
    for (n, kill) in kills.iter().enumerate() {
        let recovery = recovery_of(&mut conn, kill).await;
        eprintln!(
            "chaos: kill {}: {} jobs held; all back in the queue (crash counted) {:.2} s and all \
             running again {:.2} s after the SIGKILL",
            n + 1,
            kill.held.len(),
            recovery.requeued.as_secs_f64(),
            recovery.restarted.as_secs_f64(),
        );
        recoveries.push(recovery);
    }
    assert_eq!(
        kills.len(),
        KILL_AT.len(),
        "the run ended before every kill"
    );
    let states: Vec<(String, i64)> =
        sqlx::query_as("SELECT state, count(*) FROM jobs GROUP BY state ORDER BY state")
            .fetch_all(&mut conn)
            .await
            .expect("counting jobs by state");
    assert_eq!(states, [("succeeded".to_string(), JOBS as i64)]);
    let (executions, duplicates) = check_executions(&mut conn, &kills).await;
    eprintln!(
        "chaos: {JOBS} jobs succeeded in {:.1} s with {} kills; {executions} executions, \
         {duplicates} of them repeats of jobs held at a kill",
        run_time.as_secs_f64(),
        kills.len()
    );
    // The bound: every job that was running is back in work (running again, its crash
    // counted) within 10 s of the kill. A rescued job keeps its place in the queue.
    for (n, recovery) in recoveries.iter().enumerate() {
        assert!(
            recovery.requeued <= RECOVERY && recovery.restarted <= RECOVERY,
            "kill {}: the held jobs were back in the queue after {:?} and running after {:?}",
            n + 1,
            recovery.requeued,
            recovery.restarted
        );
    }
    let status = daemon.terminate(Duration::from_secs(30)).await;
    assert!(status.success(), "workhorse exited with {status}");
}

async fn count_succeeded(conn: &mut PgConnection) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM jobs WHERE state = 'succeeded'")
        .fetch_one(conn)
        .await
        .expect("counting succeeded jobs")
}

/// Whether no job caught by an earlier kill can be caught again: each was rescued, none is
/// running, and none was rescued within the last second (so none is about to be claimed). A job
/// caught twice would have its first recovery measured from the second one.
async fn may_kill_again(conn: &mut PgConnection, kills: &[Kill]) -> bool {
    let caught: Vec<Uuid> = kills.iter().flat_map(|k| k.held.iter().copied()).collect();
    sqlx::query_scalar(
        "SELECT NOT EXISTS ( \
             SELECT 1 FROM jobs j WHERE j.id = ANY($1) AND (j.state = 'running' OR EXISTS ( \
                 SELECT 1 FROM jsonb_array_elements(j.errors) e \
                 WHERE e->>'error' LIKE '%' || $2 || '%' \
                   AND (e->>'at')::timestamptz > now() - interval '1 second')))",
    )
    .bind(&caught)
    .bind(RESCUED)
    .fetch_one(conn)
    .await
    .expect("checking the jobs caught by earlier kills")
}

/// SIGKILL `daemon`, start its successor at once, and list the jobs the dead one held.
/// Returns the kill and the dead daemon (kept so its log is printed if the test fails).
async fn kill_and_restart(
    sandbox: &Sandbox,
    env: &[(&str, &str)],
    daemon: &mut Daemon,
    conn: &mut PgConnection,
) -> (Kill, Daemon) {
    let instance = daemon
        .instance()
        .expect("the daemon logged its engine instance");
    let at = Utc::now();
    daemon.signal(Signal::SIGKILL);
    daemon.wait_exit(Duration::from_secs(10)).await;
    let dead = std::mem::replace(daemon, sandbox.serve(env));
    tokio::time::sleep(SNAPSHOT_AFTER).await;
    let held: Vec<Uuid> =
        sqlx::query_scalar("SELECT id FROM jobs WHERE state = 'running' AND locked_by = $1")
            .bind(instance)
            .fetch_all(&mut *conn)
            .await
            .expect("listing the jobs the killed daemon held");
    assert!(
        Utc::now() - at < chrono::TimeDelta::seconds(3),
        "listing the held jobs came so late that a lease may have run out"
    );
    assert!(
        !held.is_empty(),
        "the daemon held no job when it was killed"
    );
    daemon.wait_ready(CONFIGURED_START).await;
    (Kill { at, instance, held }, dead)
}

/// When each job `kill` found held was rescued and when it next started, from the sweeper's
/// error entry and the `echo_runs` rows; fails the test if one of them never happened.
async fn recovery_of(conn: &mut PgConnection, kill: &Kill) -> Recovery {
    type Row = (Uuid, Option<DateTime<Utc>>, Option<DateTime<Utc>>);
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT j.id, \
                (SELECT min((e->>'at')::timestamptz) FROM jsonb_array_elements(j.errors) e \
                 WHERE e->>'error' LIKE '%' || $3 || '%' \
                   AND (e->>'at')::timestamptz >= $2), \
                (SELECT min(r.started_at) FROM echo_runs r \
                 WHERE r.job_id = j.id AND r.instance <> $4 AND r.started_at >= $2) \
         FROM jobs j WHERE j.id = ANY($1)",
    )
    .bind(&kill.held)
    .bind(kill.at)
    .bind(RESCUED)
    .bind(kill.instance)
    .fetch_all(conn)
    .await
    .expect("reading when the held jobs came back");
    assert_eq!(rows.len(), kill.held.len(), "held jobs are missing");
    let since_kill = |t: DateTime<Utc>| (t - kill.at).to_std().unwrap_or_default();
    let mut recovery = Recovery {
        requeued: Duration::ZERO,
        restarted: Duration::ZERO,
    };
    for (id, requeued, restarted) in rows {
        let requeued = requeued.unwrap_or_else(|| panic!("job {id} was never rescued"));
        let restarted = restarted.unwrap_or_else(|| panic!("job {id} never started again"));
        recovery.requeued = recovery.requeued.max(since_kill(requeued));
        recovery.restarted = recovery.restarted.max(since_kill(restarted));
    }
    recovery
}

/// Check every job's executions, attempts and crashes against the kills that caught it;
/// returns the number of executions and how many of them were repeats.
async fn check_executions(conn: &mut PgConnection, kills: &[Kill]) -> (i64, i64) {
    let mut caught: HashMap<Uuid, i32> = HashMap::new();
    for id in kills.iter().flat_map(|k| &k.held) {
        *caught.entry(*id).or_default() += 1;
    }
    let rows: Vec<(Uuid, i32, i32, Value, i64)> = sqlx::query_as(
        "SELECT j.id, j.attempts, j.crashes, j.errors, \
                (SELECT count(*) FROM echo_runs r WHERE r.job_id = j.id) \
         FROM jobs j",
    )
    .fetch_all(&mut *conn)
    .await
    .expect("reading every job's executions");
    assert_eq!(rows.len(), JOBS);
    let (mut executions, mut duplicates) = (0, 0);
    for (id, attempts, crashes, errors, runs) in rows {
        let kills_caught = caught.get(&id).copied().unwrap_or(0);
        let errors: Vec<&str> = (errors.as_array().into_iter().flatten())
            .filter_map(|e| e["error"].as_str())
            .collect();
        let rescues = errors.iter().filter(|e| e.contains(RESCUED)).count() as i32;
        assert!(runs >= 1, "job {id} never ran");
        assert!(
            runs <= 1 + kills_caught as i64,
            "job {id} ran {runs} times but was held at {kills_caught} kills"
        );
        assert_eq!(
            (crashes, rescues),
            (kills_caught, kills_caught),
            "job {id}: crashes and rescues must match the kills that caught it ({errors:?})"
        );
        assert_eq!(
            (attempts, errors.len() as i32),
            (1 + kills_caught, kills_caught),
            "job {id}: one attempt per holder and no failures but the kills ({errors:?})"
        );
        executions += runs;
        duplicates += runs - 1;
    }
    let twice: Vec<(Uuid, i32)> = sqlx::query_as(
        "SELECT job_id, attempt FROM echo_runs GROUP BY job_id, attempt HAVING count(*) > 1",
    )
    .fetch_all(&mut *conn)
    .await
    .expect("looking for attempts that ran twice");
    assert!(twice.is_empty(), "attempts executed twice: {twice:?}");
    let recorded: i64 = sqlx::query_scalar("SELECT count(*) FROM echo_runs")
        .fetch_one(&mut *conn)
        .await
        .expect("counting executions");
    assert_eq!(recorded, JOBS as i64 + duplicates);
    assert_eq!(recorded, executions);
    (executions, duplicates)
}
