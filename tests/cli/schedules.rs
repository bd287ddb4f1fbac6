//! `workhorse schedules`: list and trigger.

use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

use crate::helpers::Cli;

#[sqlx::test]
async fn schedules_list_shows_each_schedule_with_its_next_tick(pool: PgPool) {
    let cli = Cli::new(&pool).await;

    let listed = cli.json(&["schedules", "list"]);
    let table = cli.ok(&["schedules", "list"]);

    assert_eq!(listed[0]["name"], "echo-hourly");
    assert_eq!(listed[0]["kind"], "echo");
    assert!(listed[0]["next_run_at"].is_string(), "{listed}");
    assert!(listed[0]["last_run"].is_null());
    assert!(
        table.contains("echo-hourly") && table.contains("in "),
        "{table}"
    );
}

#[sqlx::test]
async fn schedules_trigger_creates_a_job_with_the_overridden_args(pool: PgPool) {
    let cli = Cli::new(&pool).await;

    let triggered = cli.json(&[
        "schedules",
        "trigger",
        "echo-hourly",
        "--args",
        r#"{"sleep_ms": 5}"#,
    ]);
    let text = cli.ok(&["schedules", "trigger", "echo-hourly"]);
    let listed = cli.json(&["schedules", "list"]);

    let id: Uuid = triggered["job_id"].as_str().unwrap().parse().unwrap();
    let args: serde_json::Value = sqlx::query_scalar("SELECT args FROM jobs WHERE id = $1")
        .bind(id)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(args, json!({"message": "tick", "sleep_ms": 5}));
    assert!(
        text.starts_with("schedule echo-hourly: enqueued job "),
        "{text}"
    );
    assert_eq!(listed[0]["last_run"]["manual"], true);
}

#[sqlx::test]
async fn schedules_trigger_names_an_unknown_schedule_and_refuses_bad_args(pool: PgPool) {
    let cli = Cli::new(&pool).await;

    let (_, unknown) = cli.exits(1, &["schedules", "trigger", "nope"]);
    let (_, not_json) = cli.exits(2, &["schedules", "trigger", "echo-hourly", "--args", "{"]);
    let (_, misfit) = cli.exits(
        2,
        &[
            "schedules",
            "trigger",
            "echo-hourly",
            "--args",
            r#"{"bogus": 1}"#,
        ],
    );

    assert!(unknown.contains("schedule \"nope\" not found"), "{unknown}");
    assert!(not_json.contains("not JSON"), "{not_json}");
    assert!(misfit.contains("do not fit job kind echo"), "{misfit}");
}
