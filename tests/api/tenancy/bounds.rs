//! Exploit 7: jumping the shared queue with a huge `priority`, or keeping a failing job alive
//! with a huge `max_attempts`. The plan bounds both; admins are not bound.

use serde_json::json;
use sqlx::PgPool;
use workhorse::domain::users::Role;

use crate::helpers::{assert_problem, echo_charges_scrape, spawn_app_with};

#[sqlx::test]
async fn priority_and_max_attempts_are_bounded_by_the_plan(pool: PgPool) {
    let app = spawn_app_with(pool, |c| {
        echo_charges_scrape(c, 20);
        c.jobs.run_workers = false;
    })
    .await;
    let (_, mallory) = app.user_with_token("mallory", Role::User).await;
    let (_, olivia) = app.user_with_token("olivia", Role::User).await;
    let admin = app.admin_token().await;

    for (field, value, bound) in [
        ("priority", 32767, "max_priority"),
        ("max_attempts", 100, "max_attempts"),
    ] {
        let body = json!({ "kind": "echo", field: value });
        let resp = app.post_json("/v1/jobs", Some(&mallory), &body).await;

        // Regression: any value the column holds was accepted from any user.
        assert_eq!(resp.status().as_u16(), 422, "{field} = {value}");
        let problem = assert_problem(resp, 422, "plan_limit").await;
        assert_eq!(problem["bound"], bound, "{problem}");
        // An admin may.
        app.enqueue(&admin, body).await;
    }
    // Within the free plan's bounds (priority 0, 5 attempts) is fine.
    let body = json!({ "kind": "echo", "priority": 0, "max_attempts": 5 });
    app.enqueue(&olivia, body).await;
    assert_eq!(app.job_count().await, 3, "no refused job was stored");
}
