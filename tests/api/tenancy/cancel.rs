//! Exploit 2: cancel a piece of work while it runs, keep what it produced and get the quota
//! unit back. The rule: a unit is given back if and only if nothing of the work is kept.

use std::time::Duration;

use poem::{Response, Route};
use serde_json::{Value, json};
use sqlx::PgPool;
use workhorse::domain::users::Role;
use workhorse::summarise::providers::ProviderConfig;

use super::{PATIENCE, finished, poll_json};
use crate::helpers::{Loopback, TestApp, eventually, spawn_app_with};

/// How long the slow servers take to answer: long enough to cancel during it.
const SLOW: Duration = Duration::from_secs(3);

/// A loopback server whose `path` answers `body` after [`SLOW`].
async fn slow_server(path: &str, content_type: &'static str, body: String) -> Loopback {
    let endpoint = poem::endpoint::make(move |_| {
        let body = body.clone();
        async move {
            tokio::time::sleep(SLOW).await;
            Response::builder().content_type(content_type).body(body)
        }
    });
    Loopback::start(Route::new().at(path, endpoint)).await
}

/// Cancel `job_id` once `server` is answering it, then give the attempt the time to get the
/// answer and store it (a cancelled attempt may also stop waiting: then nothing shows).
async fn cancel_while_answering(
    app: &TestApp,
    token: &str,
    job_id: &str,
    server: &Loopback,
    kept: impl AsyncFn() -> bool,
) {
    let reached = eventually(PATIENCE, || async { server.hits() > 0 }).await;
    assert!(reached, "the work never reached the slow server");
    let resp = app
        .post(&format!("/v1/jobs/{job_id}/cancel"), Some(token))
        .await;
    assert_eq!(resp.status().as_u16(), 200, "cancelling a running job");
    eventually(SLOW + Duration::from_secs(3), || kept()).await;
}

#[sqlx::test]
async fn a_scrape_cancelled_while_running_keeps_no_result_or_keeps_its_unit(pool: PgPool) {
    let page = "<html><head><title>Slow</title></head><body><p>kept after cancel</p></body></html>";
    let site = slow_server("/slow", "text/html; charset=utf-8", page.into()).await;
    let app = spawn_app_with(pool, |c| {
        c.egress.allow = vec!["127.0.0.0/8".into()];
        c.scrape.pool_size = 1;
    })
    .await;
    let (_, token) = app.user_with_token("mallory", Role::User).await;
    let body = json!({ "url": site.url("/slow"), "timeout_ms": 15000 });
    let resp = app.post_json("/v1/scrapes", Some(&token), &body).await;
    assert_eq!(resp.status().as_u16(), 202);
    let scrape: Value = resp.json().await.unwrap();
    let path = format!("/v1/scrapes/{}", scrape["id"].as_str().unwrap());
    let job_id = scrape["job_id"].as_str().unwrap();

    let kept = async || {
        let s = app.get_json(&path, &token).await;
        s.get("content").is_some() || s.get("document_id").is_some()
    };
    cancel_while_answering(&app, &token, job_id, &site, kept).await;

    let scrape = poll_json(&app, &path, &token, finished).await;
    let documents = app.get_json("/v1/documents", &token).await;
    let quota = app.settled_quota(&token, "scrape").await;
    let kept_anything = scrape.get("content").is_some()
        || scrape.get("document_id").is_some()
        || documents["items"].as_array().is_some_and(|d| !d.is_empty());
    // Regression: the attempt stored its page and document after the cancel, and the cancel
    // gave the unit back.
    assert_eq!(
        kept_anything,
        quota["used"] == 1,
        "a unit is given back exactly when nothing is kept: {scrape} {documents} {quota}"
    );
    if !kept_anything {
        assert_eq!(scrape["status"], "cancelled", "{scrape}");
        assert_eq!(quota["used"], 0, "{quota}");
    }
}

/// An OpenAI-compatible chat completion saying `text`.
fn completion(text: &str) -> String {
    json!({
        "id": "chatcmpl-slow", "object": "chat.completion", "created": 1_795_000_000,
        "model": "slow-model",
        "choices": [{ "index": 0, "message": { "role": "assistant", "content": text }, "finish_reason": "stop" }],
        "usage": { "prompt_tokens": 50, "completion_tokens": 8, "total_tokens": 58 }
    })
    .to_string()
}

#[sqlx::test]
async fn a_summary_cancelled_while_running_keeps_no_result_or_keeps_its_unit(pool: PgPool) {
    let answer = completion("The notes describe a slow model and a cancelled request.");
    let provider = slow_server("/v1/chat/completions", "application/json", answer).await;
    let base_url = provider.url("/v1");
    let app = spawn_app_with(pool, move |c| {
        c.egress.allow = vec!["127.0.0.0/8".into()];
        c.summarise.providers = vec![ProviderConfig {
            name: "slow".into(),
            base_url,
            model: "slow-model".into(),
            api_key_env: String::new(),
            context_window: 8000,
            timeout: Duration::from_secs(10),
            max_output_tokens: 256,
        }];
        c.summarise.fallback_to_builtin = false;
    })
    .await;
    let (_, token) = app.user_with_token("mallory", Role::User).await;
    let text = "The first sentence is about notes. The second sentence is about models. \
                The third sentence is about cancelling requests while they run.";
    let doc = json!({ "title": "Notes", "text": text });
    let doc: Value = (app.post_json("/v1/documents", Some(&token), &doc).await)
        .json()
        .await
        .unwrap();
    let path = format!("/v1/documents/{}/summaries", doc["id"].as_str().unwrap());
    let resp = app.post_json(&path, Some(&token), &json!({})).await;
    assert_eq!(resp.status().as_u16(), 202);
    let summary: Value = resp.json().await.unwrap();
    let path = format!("/v1/summaries/{}", summary["id"].as_str().unwrap());
    let job_id = summary["job_id"].as_str().unwrap();

    let kept = async || app.get_json(&path, &token).await.get("text").is_some();
    cancel_while_answering(&app, &token, job_id, &provider, kept).await;

    let summary = poll_json(&app, &path, &token, finished).await;
    let quota = app.settled_quota(&token, "summarise").await;
    let kept_anything = summary.get("text").is_some();
    // Regression: the attempt stored the model's summary after the cancel, and the cancel gave
    // the unit back.
    assert_eq!(
        kept_anything,
        quota["used"] == 1,
        "a unit is given back exactly when nothing is kept: {summary} {quota}"
    );
    if !kept_anything {
        assert_eq!(summary["status"], "cancelled", "{summary}");
    }
}
