//! Exploits 5 and 6: reaching another user's jobs through a shared dedup key, and another
//! user's summaries and scrapes through the ids a job's arguments name.

use poem::{Response, Route};
use serde_json::{Value, json};
use sqlx::PgPool;
use workhorse::domain::users::Role;

use super::{finished, poll_json};
use crate::helpers::{Loopback, TestApp, echo_charges_scrape, spawn_app_with};

#[sqlx::test]
async fn a_dedup_key_is_scoped_to_its_owner(pool: PgPool) {
    let app = spawn_app_with(pool, |c| {
        echo_charges_scrape(c, 20);
        c.jobs.run_workers = false;
    })
    .await;
    let (_, alice) = app.user_with_token("alice", Role::User).await;
    let (bob_id, bob) = app.user_with_token("bob", Role::User).await;
    let job = |message: &str| json!({ "kind": "echo", "dedup_key": "k", "args": { "sleep_ms": 600000, "message": message } });
    let hers = app.enqueue(&alice, job("alice's private args")).await;

    let resp = app.post_json("/v1/jobs", Some(&bob), &job("bob's")).await;
    let status = resp.status().as_u16();
    let answer = resp.text().await.unwrap();

    // Regression: Bob got Alice's live job (200), args and all, instead of a job of his own.
    assert!(!answer.contains("alice's private args"), "{answer}");
    assert_eq!(status, 202, "{answer}");
    let his: Value = serde_json::from_str(&answer).unwrap();
    assert_ne!(his["id"], hers["id"]);
    assert_eq!(his["owner_id"], bob_id.to_string(), "{his}");
    // Each sees exactly their own job.
    let list = app.get_json("/v1/jobs", &bob).await;
    assert_eq!(list["items"].as_array().map(Vec::len), Some(1), "{list}");
    assert_eq!(list["items"][0]["id"], his["id"]);
}

/// Bob enqueues `kind` naming Alice's object in `args`; returns the status and, when a job was
/// made anyway, that job once it finished.
async fn enqueue_naming(app: &TestApp, bob: &str, kind: &str, args: Value) -> (u16, Value) {
    let body = json!({ "kind": kind, "args": args });
    let resp = app.post_json("/v1/jobs", Some(bob), &body).await;
    let status = resp.status().as_u16();
    let answer: Value = resp.json().await.unwrap_or(Value::Null);
    assert!(status < 500, "{status} {answer}");
    let job = match answer["id"].as_str() {
        Some(id) if status < 300 => poll_json(app, &format!("/v1/jobs/{id}"), bob, finished).await,
        _ => answer,
    };
    (status, job)
}

#[sqlx::test]
async fn a_summarise_job_naming_another_users_summary_is_refused(pool: PgPool) {
    let app = spawn_app_with(pool, |_| {}).await;
    let (_, alice) = app.user_with_token("alice", Role::User).await;
    let (_, bob) = app.user_with_token("bob", Role::User).await;
    let doc = json!({ "title": "Alice's diary", "text": "Alice writes privately. Nobody else reads it." });
    let doc: Value = (app.post_json("/v1/documents", Some(&alice), &doc).await)
        .json()
        .await
        .unwrap();
    let path = format!("/v1/documents/{}/summaries", doc["id"].as_str().unwrap());
    let summary: Value = (app.post_json(&path, Some(&alice), &json!({})).await)
        .json()
        .await
        .unwrap();
    let path = format!("/v1/summaries/{}", summary["id"].as_str().unwrap());
    let before = poll_json(&app, &path, &alice, finished).await;

    let args = json!({ "summary_id": summary["id"] });
    let (status, job) = enqueue_naming(&app, &bob, "summarise", args).await;

    let after = app.get_json(&path, &alice).await;
    assert_eq!(before, after, "Alice's summary changed");
    let seen = job.to_string();
    assert!(!seen.contains(doc["id"].as_str().unwrap()), "{seen}");
    assert!(
        !seen.contains(r#""outcome""#),
        "Bob learnt the outcome: {seen}"
    );
    // Regression: the summarise handler loaded any summary by id, whoever enqueued it.
    assert!((400..500).contains(&status), "{status} {job}");
}

#[sqlx::test]
async fn a_scrape_job_naming_another_users_scrape_is_refused(pool: PgPool) {
    let page = "<html><head><title>Alice's page</title></head><body>private</body></html>";
    let site = Loopback::start(Route::new().at(
        "/page",
        poem::get(poem::endpoint::make_sync(move |_| {
            Response::builder().content_type("text/html").body(page)
        })),
    ))
    .await;
    let app = spawn_app_with(pool, |c| c.egress.allow = vec!["127.0.0.0/8".into()]).await;
    let (_, alice) = app.user_with_token("alice", Role::User).await;
    let (_, bob) = app.user_with_token("bob", Role::User).await;
    let body = json!({ "url": site.url("/page") });
    let resp = app
        .post_json("/v1/scrapes?wait=25s", Some(&alice), &body)
        .await;
    let scrape: Value = resp.json().await.unwrap();
    let path = format!("/v1/scrapes/{}", scrape["id"].as_str().unwrap());
    let before = poll_json(&app, &path, &alice, finished).await;
    assert_eq!(before["status"], "succeeded", "{before}");
    let hits = site.hits();

    let args = json!({ "scrape_id": scrape["id"] });
    let (status, job) = enqueue_naming(&app, &bob, "scrape", args).await;

    let after = app.get_json(&path, &alice).await;
    assert_eq!(before, after, "Alice's scrape changed");
    assert_eq!(site.hits(), hits, "Alice's page was fetched again for Bob");
    let seen = job.to_string();
    assert!(
        !seen.contains(before["document_id"].as_str().unwrap()),
        "{seen}"
    );
    assert!(
        !seen.contains(r#""outcome""#),
        "Bob learnt the outcome: {seen}"
    );
    // Regression: the scrape handler loaded any scrape by id, whoever enqueued it.
    assert!((400..500).contains(&status), "{status} {job}");
}
