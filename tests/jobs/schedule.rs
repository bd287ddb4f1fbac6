//! Cron schedules: files are checked at load with errors naming the file; two schedulers on
//! one database fire each tick exactly once; a manual trigger enqueues at once; a start catches
//! up the latest missed tick of a `catch_up` schedule, once.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, DurationRound, TimeDelta, Timelike, Utc};
use sqlx::PgPool;
use workhorse::config::JobsConfig;
use workhorse::jobs::schedule::{self, Scheduler};
use workhorse::store::schedules;

fn dir_with(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    dir
}

fn catalog(pool: &PgPool) -> workhorse::engine::Catalog {
    workhorse::jobs::registry(pool).catalog()
}

const EVERY_SECOND: &str = r#"
name = "every-second"
cron = "* * * * * *"
kind = "echo"
args = { record = true }
"#;

#[sqlx::test]
async fn schedule_files_are_checked_and_errors_name_the_file_and_key(pool: PgPool) {
    let catalog = catalog(&pool);
    let ok = dir_with(&[
        ("a.toml", EVERY_SECOND),
        (
            "b.toml",
            "name = \"nightly\"\ncron = \"0 3 * * *\"\ntimezone = \"Europe/Berlin\"\n\
             kind = \"echo\"\nenabled = false\n",
        ),
        ("README.md", "not a schedule"),
    ]);
    let loaded = schedule::load(ok.path(), &catalog).unwrap();
    let names: Vec<_> = loaded
        .iter()
        .map(|s| (s.name.as_str(), s.enabled))
        .collect();
    assert_eq!(names, [("every-second", true), ("nightly", false)]);

    let missing = ok.path().join("nope");
    assert!(schedule::load(&missing, &catalog).unwrap().is_empty());

    for (text, expected) in [
        (
            "name = \"x\"\ncron = \"0 3 * * *\"\nkind = \"nope\"\n",
            "`kind` = \"nope\"",
        ),
        (
            "name = \"x\"\ncron = \"0 3 * * *\"\nkind = \"echo\"\nargs = { sleep_ms = \"x\" }\n",
            "`args` do not fit job kind `echo`",
        ),
        (
            "name = \"x\"\ncron = \"every day\"\nkind = \"echo\"\n",
            "`cron`",
        ),
        (
            "name = \"x\"\ncron = \"0 3 * * *\"\nkind = \"echo\"\ncolour = 1\n",
            "colour",
        ),
    ] {
        let bad = dir_with(&[("bad.toml", text)]);
        let error = format!("{:#}", schedule::load(bad.path(), &catalog).unwrap_err());
        assert!(error.contains("bad.toml"), "{error}");
        assert!(error.contains(expected), "{error}");
    }
    let twice = dir_with(&[("a.toml", EVERY_SECOND), ("b.toml", EVERY_SECOND)]);
    let error = format!("{:#}", schedule::load(twice.path(), &catalog).unwrap_err());
    assert!(error.contains("used twice"), "{error}");
}

#[sqlx::test]
async fn two_schedulers_on_one_database_fire_each_tick_exactly_once(pool: PgPool) {
    let dir = dir_with(&[("a.toml", EVERY_SECOND)]);
    let loaded = Arc::new(schedule::load(dir.path(), &catalog(&pool)).unwrap());
    let config = JobsConfig::default();
    let a = Scheduler::start(pool.clone(), loaded.clone(), &config)
        .await
        .unwrap();
    let b = Scheduler::start(pool.clone(), loaded.clone(), &config)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(3500)).await;
    a.shutdown().await;
    b.shutdown().await;

    let (ticks, distinct_ticks): (i64, i64) =
        sqlx::query_as("SELECT count(*), count(DISTINCT tick) FROM schedule_ticks")
            .fetch_one(&pool)
            .await
            .unwrap();
    let (jobs, distinct_keys): (i64, i64) =
        sqlx::query_as("SELECT count(*), count(DISTINCT dedup_key) FROM jobs WHERE kind = 'echo'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(ticks >= 2, "only {ticks} ticks in 3.5 s");
    assert_eq!(ticks, distinct_ticks);
    assert_eq!((jobs, distinct_keys), (ticks, ticks), "one job per tick");
    let linked: Vec<(chrono::DateTime<chrono::Utc>, Option<String>)> = sqlx::query_as(
        "SELECT t.tick, j.dedup_key FROM schedule_ticks t LEFT JOIN jobs j ON j.id = t.job_id",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    for (tick, key) in linked {
        assert_eq!(tick.timestamp_subsec_nanos(), 0, "ticks are whole seconds");
        assert_eq!(
            key,
            Some(format!("cron:every-second:{}", tick.to_rfc3339()))
        );
    }
}

#[sqlx::test]
async fn a_manual_trigger_enqueues_at_once_and_shows_as_the_last_run(pool: PgPool) {
    let dir = dir_with(&[(
        "a.toml",
        EVERY_SECOND.replace("* * * * * *", "0 3 * * *").as_str(),
    )]);
    let loaded = schedule::load(dir.path(), &catalog(&pool)).unwrap();
    let id = schedule::trigger(&pool, &loaded[0], &JobsConfig::default())
        .await
        .unwrap();
    let last = schedules::last_ticks(&pool).await.unwrap();
    assert_eq!(last.len(), 1);
    assert_eq!((last[0].job_id, last[0].manual), (Some(id), true));
    assert_eq!(last[0].job_state.as_deref(), Some("pending"));
}

const EVERY_MINUTE_CATCH_UP: &str = r#"
name = "every-minute"
cron = "* * * * *"
kind = "echo"
catch_up = true
"#;

/// The latest minute tick, at least 5 s before the next one, so that a test's start-up stays
/// within this minute.
async fn latest_minute_tick() -> DateTime<Utc> {
    let now = Utc::now();
    if now.second() >= 55 {
        let to_next_minute = u64::from(60 - now.second()) * 1000;
        tokio::time::sleep(Duration::from_millis(to_next_minute + 100)).await;
    }
    Utc::now().duration_trunc(TimeDelta::minutes(1)).unwrap()
}

async fn record_tick(pool: &PgPool, schedule: &str, tick: DateTime<Utc>, manual: bool) {
    sqlx::query("INSERT INTO schedule_ticks (schedule, tick, manual) VALUES ($1, $2, $3)")
        .bind(schedule)
        .bind(tick)
        .bind(manual)
        .execute(pool)
        .await
        .unwrap();
}

async fn ticks(pool: &PgPool) -> Vec<(DateTime<Utc>, bool)> {
    sqlx::query_as("SELECT tick, manual FROM schedule_ticks ORDER BY tick")
        .fetch_all(pool)
        .await
        .unwrap()
}

async fn job_keys(pool: &PgPool) -> Vec<Option<String>> {
    sqlx::query_scalar("SELECT dedup_key FROM jobs ORDER BY created_at")
        .fetch_all(pool)
        .await
        .unwrap()
}

async fn start_and_stop(pool: &PgPool, schedule_file: &str) {
    let dir = dir_with(&[("a.toml", schedule_file)]);
    let loaded = Arc::new(schedule::load(dir.path(), &catalog(pool)).unwrap());
    let scheduler = Scheduler::start(pool.clone(), loaded, &JobsConfig::default())
        .await
        .unwrap();
    scheduler.shutdown().await;
}

#[sqlx::test]
async fn a_start_catches_up_only_the_latest_missed_tick(pool: PgPool) {
    let latest = latest_minute_tick().await;
    let last = latest - TimeDelta::minutes(5);
    record_tick(&pool, "every-minute", last, false).await;
    // An admin's trigger since then is not a scheduled tick and does not stop the catch-up.
    let trigger = latest - TimeDelta::seconds(90) + TimeDelta::milliseconds(250);
    record_tick(&pool, "every-minute", trigger, true).await;

    start_and_stop(&pool, EVERY_MINUTE_CATCH_UP).await;

    assert_eq!(
        ticks(&pool).await,
        [(last, false), (trigger, true), (latest, false)]
    );
    assert_eq!(
        job_keys(&pool).await,
        [Some(format!("cron:every-minute:{}", latest.to_rfc3339()))]
    );
}

#[sqlx::test]
async fn a_start_without_catch_up_fires_no_missed_tick(pool: PgPool) {
    let latest = latest_minute_tick().await;
    let last = latest - TimeDelta::minutes(5);
    record_tick(&pool, "every-minute", last, false).await;

    start_and_stop(&pool, &EVERY_MINUTE_CATCH_UP.replace("true", "false")).await;

    assert_eq!(ticks(&pool).await, [(last, false)]);
    assert!(job_keys(&pool).await.is_empty());
}

#[sqlx::test]
async fn a_catch_up_schedule_that_never_fired_has_missed_nothing(pool: PgPool) {
    latest_minute_tick().await;

    start_and_stop(&pool, EVERY_MINUTE_CATCH_UP).await;

    assert!(ticks(&pool).await.is_empty());
    assert!(job_keys(&pool).await.is_empty());
}

#[sqlx::test]
async fn two_schedulers_starting_together_catch_up_the_missed_tick_once(pool: PgPool) {
    let latest = latest_minute_tick().await;
    let last = latest - TimeDelta::minutes(5);
    record_tick(&pool, "every-minute", last, false).await;
    let dir = dir_with(&[("a.toml", EVERY_MINUTE_CATCH_UP)]);
    let loaded = Arc::new(schedule::load(dir.path(), &catalog(&pool)).unwrap());
    let config = JobsConfig::default();

    let (a, b) = tokio::join!(
        Scheduler::start(pool.clone(), loaded.clone(), &config),
        Scheduler::start(pool.clone(), loaded.clone(), &config),
    );
    a.unwrap().shutdown().await;
    b.unwrap().shutdown().await;

    assert_eq!(ticks(&pool).await, [(last, false), (latest, false)]);
    assert_eq!(
        job_keys(&pool).await,
        [Some(format!("cron:every-minute:{}", latest.to_rfc3339()))]
    );
}

#[sqlx::test]
async fn pruning_keeps_each_schedules_last_scheduled_tick(pool: PgPool) {
    let day = TimeDelta::days(1);
    let now = Utc::now().duration_trunc(TimeDelta::seconds(1)).unwrap();
    for (schedule, tick, manual) in [
        ("weekly", now - day * 14, false),
        ("weekly", now - day * 10, true),
        ("weekly", now - day * 7, false),
        ("weekly", now - day * 6, true),
        ("monthly", now - day * 30, false),
    ] {
        sqlx::query(
            "INSERT INTO schedule_ticks (schedule, tick, manual, fired_at) VALUES ($1, $2, $3, $2)",
        )
        .bind(schedule)
        .bind(tick)
        .bind(manual)
        .execute(&pool)
        .await
        .unwrap();
    }

    let pruned = schedules::prune(&pool, Duration::from_secs(86_400))
        .await
        .unwrap();

    assert_eq!(pruned, 3, "the old weekly ticks, scheduled and manual");
    let kept: Vec<(String, DateTime<Utc>)> =
        sqlx::query_as("SELECT schedule, tick FROM schedule_ticks ORDER BY tick")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(
        kept,
        [
            ("monthly".to_string(), now - day * 30),
            ("weekly".to_string(), now - day * 7),
        ]
    );
}
