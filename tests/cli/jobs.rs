//! `workhorse jobs`: list, show, retry (by id and in a batch), cancel.

use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

use crate::helpers::{Cli, echo_job, finish, job_state, user};

#[sqlx::test]
async fn jobs_list_filters_by_kind_state_and_owner_as_table_and_json(pool: PgPool) {
    let cli = Cli::new(&pool).await;
    let ada = user(&pool, "ada").await;
    let mine = echo_job(&pool, json!({}), Some(ada)).await;
    let dead = echo_job(&pool, json!({}), None).await;
    finish(&pool, dead, "dead").await;

    let all = cli.json(&["jobs", "list"]);
    let dead_only = cli.json(&["jobs", "list", "--state", "dead", "--kind", "echo"]);
    let owned = cli.json(&["jobs", "list", "--owner", &ada.to_string(), "--limit", "5"]);
    let table = cli.ok(&["jobs", "list"]);

    assert_eq!(all.as_array().unwrap().len(), 2);
    assert_eq!(dead_only[0]["id"], dead.to_string());
    assert_eq!(dead_only[0]["state"], "dead");
    assert_eq!(dead_only.as_array().unwrap().len(), 1);
    assert_eq!(owned.as_array().unwrap().len(), 1);
    assert_eq!(owned[0]["id"], mine.to_string());
    assert!(table.starts_with("ID "), "{table}");
    assert!(table.contains(&mine.to_string()) && table.contains("pending"));
}

#[sqlx::test]
async fn jobs_list_refuses_an_unknown_kind_with_usage_exit_code(pool: PgPool) {
    let cli = Cli::new(&pool).await;

    let (_, stderr) = cli.exits(2, &["jobs", "list", "--kind", "nope"]);
    let (_, bad_state) = cli.exits(2, &["jobs", "list", "--state", "sleeping"]);

    assert!(stderr.contains("unknown job kind \"nope\""), "{stderr}");
    assert!(bad_state.contains("sleeping"), "{bad_state}");
}

#[sqlx::test]
async fn jobs_show_prints_args_errors_result_and_trace_id(pool: PgPool) {
    let cli = Cli::new(&pool).await;
    let id = echo_job(&pool, json!({"message": "hello"}), None).await;
    finish(&pool, id, "dead").await;
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    sqlx::query("UPDATE jobs SET trace_context = $2 WHERE id = $1")
        .bind(id)
        .bind(json!({"traceparent": format!("00-{trace}-00f067aa0ba902b7-01")}))
        .execute(&pool)
        .await
        .unwrap();

    let shown = cli.json(&["jobs", "show", &id.to_string()]);
    let text = cli.ok(&["jobs", "show", &id.to_string()]);

    assert_eq!(shown["args"], json!({"message": "hello"}));
    assert_eq!(shown["errors"][0]["error"], "it broke");
    assert_eq!(shown["trace_id"], trace);
    assert_eq!(shown["state"], "dead");
    assert!(
        text.contains("attempt 1 at") && text.contains("it broke"),
        "{text}"
    );
    assert!(text.contains(trace), "{text}");
}

#[sqlx::test]
async fn jobs_show_names_an_unknown_id(pool: PgPool) {
    let cli = Cli::new(&pool).await;
    let id = Uuid::now_v7();

    let (_, stderr) = cli.exits(1, &["jobs", "show", &id.to_string()]);

    assert!(stderr.contains(&format!("job {id} not found")), "{stderr}");
}

#[sqlx::test]
async fn jobs_retry_and_cancel_change_the_rows_and_name_the_ids_that_failed(pool: PgPool) {
    let cli = Cli::new(&pool).await;
    let dead = echo_job(&pool, json!({}), None).await;
    finish(&pool, dead, "dead").await;
    let done = echo_job(&pool, json!({}), None).await;
    finish(&pool, done, "succeeded").await;
    let live = echo_job(&pool, json!({}), None).await;
    let unknown = Uuid::now_v7();

    let (out, _) = cli.exits(
        1,
        &[
            "--json",
            "jobs",
            "retry",
            &dead.to_string(),
            &done.to_string(),
        ],
    );
    let (_, stderr) = cli.exits(
        1,
        &["jobs", "cancel", &live.to_string(), &unknown.to_string()],
    );

    let retried: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(job_state(&pool, dead).await, "pending");
    assert_eq!(job_state(&pool, done).await, "succeeded");
    assert_eq!(job_state(&pool, live).await, "cancelled");
    assert_eq!(
        retried[0],
        json!({"id": dead, "ok": true, "state": "pending"})
    );
    assert_eq!(retried[1]["ok"], false);
    assert!(
        retried[1]["error"]
            .as_str()
            .unwrap()
            .contains("is succeeded")
    );
    assert!(
        stderr.contains(&format!("job {unknown} not found")),
        "{stderr}"
    );
    assert!(stderr.contains("1 of 2 job ids failed"), "{stderr}");
}

#[sqlx::test]
async fn jobs_retry_by_state_and_kind_retries_the_batch_through_the_use_case(pool: PgPool) {
    let cli = Cli::new(&pool).await;
    let mut dead = Vec::new();
    for _ in 0..3 {
        let id = echo_job(&pool, json!({}), None).await;
        finish(&pool, id, "dead").await;
        dead.push(id);
    }
    let cancelled = echo_job(&pool, json!({}), None).await;
    finish(&pool, cancelled, "cancelled").await;

    let out = cli.ok(&[
        "jobs", "retry", "--state", "dead", "--kind", "echo", "--limit", "2",
    ]);
    let rest = cli.json(&["jobs", "retry", "--state", "dead"]);

    assert_eq!(
        out.lines()
            .filter(|l| l.contains("retried (pending)"))
            .count(),
        2,
        "{out}"
    );
    assert_eq!(rest.as_array().unwrap().len(), 1);
    for id in dead {
        assert_eq!(job_state(&pool, id).await, "pending");
    }
    assert_eq!(job_state(&pool, cancelled).await, "cancelled");
}

#[sqlx::test]
async fn jobs_retry_needs_ids_or_a_state(pool: PgPool) {
    let cli = Cli::new(&pool).await;

    let (_, stderr) = cli.exits(2, &["jobs", "retry"]);

    assert!(stderr.contains("<IDS>"), "{stderr}");
}
