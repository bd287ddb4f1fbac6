//! `/v1/schedules`: the schedules of `jobs.schedules_dir` with their last and next run, and the
//! admin's manual trigger.

use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use serde_json::Value;
use sqlx::PgPool;
use workhorse::domain::users::Role;

use crate::helpers::{TestApp, assert_problem, spawn_app_with};

/// An app whose schedules are `files` (name, TOML text), written to a fresh directory.
async fn app_with_schedules(pool: PgPool, files: &[(&str, &str)]) -> (TestApp, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    let path = dir.path().to_path_buf();
    let app = spawn_app_with(pool, move |c| c.jobs.schedules_dir = path).await;
    (app, dir)
}

const EVERY_SECOND: &str = r#"
name = "every-second"
cron = "* * * * * *"
kind = "echo"
args = { message = "tick" }
description = "Ticks each second."
"#;

const OFF: &str = r#"
name = "off"
cron = "0 3 * * *"
timezone = "Europe/Berlin"
kind = "echo"
enabled = false
"#;

async fn list(app: &TestApp, token: &str) -> Vec<Value> {
    let resp = app.get("/v1/schedules", Some(token)).await;
    assert_eq!(resp.status(), StatusCode::OK);
    resp.json().await.unwrap()
}

fn time(v: &Value) -> DateTime<Utc> {
    v.as_str().unwrap().parse().unwrap()
}

#[sqlx::test]
async fn lists_schedules_with_next_and_last_run(pool: PgPool) {
    let (app, _dir) = app_with_schedules(pool, &[("a.toml", EVERY_SECOND), ("b.toml", OFF)]).await;
    let (_, token) = app.user_with_token("ann", Role::User).await;

    let schedules = list(&app, &token).await;
    let names: Vec<_> = schedules.iter().map(|s| s["name"].clone()).collect();
    assert_eq!(names, ["every-second", "off"]);
    let on = &schedules[0];
    assert_eq!(on["cron"], "* * * * * *");
    assert_eq!(on["timezone"], "UTC");
    assert_eq!(on["kind"], "echo");
    assert_eq!(on["args"]["message"], "tick");
    assert_eq!(on["enabled"], true);
    assert_eq!(on["description"], "Ticks each second.");
    let next = time(&on["next_run_at"]);
    let ahead = next - Utc::now();
    assert!(ahead <= chrono::Duration::seconds(1), "next run {next}");
    let off = &schedules[1];
    assert_eq!(off["timezone"], "Europe/Berlin");
    assert_eq!(off["enabled"], false);
    assert!(off.get("next_run_at").is_none(), "{off}");
    assert!(off.get("last_run").is_none(), "{off}");

    // The enabled schedule fires: its last run names the job a tick enqueued.
    let mut last = Value::Null;
    for _ in 0..100 {
        last = list(&app, &token).await[0]["last_run"].clone();
        if last["job_state"] == "succeeded" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(last["manual"], false, "{last}");
    assert_eq!(last["job_state"], "succeeded", "{last}");
    assert_eq!(time(&last["tick"]).timestamp_subsec_nanos(), 0, "{last}");
    assert!(time(&last["fired_at"]) >= time(&last["tick"]), "{last}");
    // A user sees the schedule's last run, but the job has no owner, so only admins open it.
    let job_path = format!("/v1/jobs/{}", last["job_id"].as_str().unwrap());
    let admin = app.admin_token().await;
    let job: Value = app.get(&job_path, Some(&admin)).await.json().await.unwrap();
    assert_eq!(job["kind"], "echo");
    assert_eq!(job["result"]["message"], "tick", "{job}");

    let resp = app.get("/v1/schedules", None).await;
    assert_problem(resp, 401, "unauthorized").await;
}

#[sqlx::test]
async fn admins_trigger_a_schedule_now(pool: PgPool) {
    let (app, _dir) = app_with_schedules(pool, &[("off.toml", OFF)]).await;
    let admin = app.admin_token().await;
    let (_, user) = app.user_with_token("ann", Role::User).await;

    // Disabled schedules can be triggered too.
    let resp = app
        .post_json(
            "/v1/schedules/off/trigger",
            Some(&admin),
            &serde_json::json!({}),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    let location = resp.headers()["location"].to_str().unwrap().to_string();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["schedule"], "off");
    assert_eq!(
        location,
        format!("/v1/jobs/{}", body["job_id"].as_str().unwrap())
    );
    let job: Value = app.get(&location, Some(&admin)).await.json().await.unwrap();
    assert_eq!(job["kind"], "echo", "{job}");

    let last = list(&app, &admin).await[0]["last_run"].clone();
    assert_eq!(last["manual"], true, "{last}");
    assert_eq!(last["job_id"], body["job_id"], "{last}");

    // Two triggers are two runs, not one deduplicated job.
    let again = app
        .post_json(
            "/v1/schedules/off/trigger",
            Some(&admin),
            &serde_json::json!({}),
        )
        .await;
    assert_eq!(again.status(), StatusCode::ACCEPTED);
    let again: Value = again.json().await.unwrap();
    assert_ne!(again["job_id"], body["job_id"]);

    let resp = app
        .post_json(
            "/v1/schedules/off/trigger",
            Some(&user),
            &serde_json::json!({}),
        )
        .await;
    assert_problem(resp, 403, "forbidden").await;
    let resp = app
        .post_json(
            "/v1/schedules/nope/trigger",
            Some(&admin),
            &serde_json::json!({}),
        )
        .await;
    let problem = assert_problem(resp, 404, "not_found").await;
    assert!(
        problem["detail"].as_str().unwrap().contains("nope"),
        "{problem}"
    );
}
