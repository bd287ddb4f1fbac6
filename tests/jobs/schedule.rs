//! Cron schedules: files are checked at load with errors naming the file; two schedulers on
//! one database fire each tick exactly once; a manual trigger enqueues at once.

use std::sync::Arc;
use std::time::Duration;

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
