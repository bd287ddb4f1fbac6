//! Structured extraction (`formats: ["json"]`) end to end: a page of the local site rendered in
//! real Chromium, its main content sent to a local stand-in for an OpenAI-compatible API that
//! speaks the chat-completions wire format and records what it gets, the answer held to the
//! caller's schema (one retry with the faults, then `extraction_invalid`), and a 422 at once
//! where no provider is configured.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::PgPool;
use workhorse::domain::users::Role;
use workhorse::summarise::providers::ProviderConfig;

use crate::fake_llm::{Behaviour, FakeLlm};
use crate::helpers::{TestApp, spawn_app_with};
use crate::site::Site;

async fn app(pool: PgPool, llm: Option<&FakeLlm>) -> TestApp {
    let provider = llm.map(|llm| ProviderConfig {
        name: "fake".into(),
        base_url: llm.base_url().to_string(),
        model: "fake-model".into(),
        api_key_env: String::new(),
        context_window: 32_768,
        timeout: Duration::from_secs(5),
        max_output_tokens: 512,
    });
    spawn_app_with(pool, move |c| {
        c.egress.allow = vec!["127.0.0.1".into()];
        c.scrape.pool_size = 2;
        c.summarise.providers = provider.into_iter().collect();
    })
    .await
}

fn schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "founded_by": {"type": "string"},
            "loaves_before_sunrise": {"type": "integer", "minimum": 0},
        },
        "required": ["founded_by", "loaves_before_sunrise"],
        "additionalProperties": false,
    })
}

async fn extract(app: &TestApp, token: &str, site: &Site) -> Value {
    let body = json!({
        "url": site.url("/index.html"),
        "formats": ["json"],
        "json_options": {"schema": schema(), "prompt": "Who founded the cooperative?"},
    });
    let resp = app
        .post_json("/v1/scrapes?wait=40s", Some(token), &body)
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    resp.json().await.unwrap()
}

#[sqlx::test]
async fn the_page_goes_to_the_provider_and_the_answer_is_kept_typed(pool: PgPool) {
    let site = Site::start().await;
    let answer = r#"{"founded_by": "Odile Ferrant", "loaves_before_sunrise": 400}"#;
    let llm = FakeLlm::start(Behaviour::Answer(answer.into())).await;
    let app = app(pool, Some(&llm)).await;
    let (_, token) = app.user_with_token("ann", Role::User).await;

    let s = extract(&app, &token, &site).await;

    assert_eq!(s["status"], "succeeded", "{s}");
    assert_eq!(
        s["content"]["json"],
        json!({"founded_by": "Odile Ferrant", "loaves_before_sunrise": 400})
    );
    let got = llm.received();
    assert_eq!(got.len(), 1);
    let user = got[0].message("user");
    assert!(
        user.contains("four hundred loaves before sunrise"),
        "the page's text is sent: {user}"
    );
    assert!(
        !user.contains("We use cookies"),
        "the main content only: {user}"
    );
    assert!(
        user.contains("\"loaves_before_sunrise\"") && user.contains("Who founded"),
        "{user}"
    );
    assert!(
        got[0].message("system").contains("JSON"),
        "extraction rules"
    );
    let format = &got[0].body["response_format"];
    assert_eq!(format["type"], "json_schema", "{format}");
    assert_eq!(format["json_schema"]["schema"], schema());
}

#[sqlx::test]
async fn a_wrong_answer_is_sent_back_once_with_its_faults(pool: PgPool) {
    let site = Site::start().await;
    let wrong = r#"{"founded_by": "Odile Ferrant", "loaves_before_sunrise": "many"}"#;
    let right = r#"{"founded_by": "Odile Ferrant", "loaves_before_sunrise": 400}"#;
    let llm = FakeLlm::start(Behaviour::Answers(vec![wrong.into(), right.into()])).await;
    let app = app(pool, Some(&llm)).await;
    let (_, token) = app.user_with_token("ann", Role::User).await;

    let s = extract(&app, &token, &site).await;

    assert_eq!(s["status"], "succeeded", "{s}");
    assert_eq!(s["content"]["json"]["loaves_before_sunrise"], 400);
    let got = llm.received();
    assert_eq!(got.len(), 2);
    let retry = got[1].message("user");
    assert!(
        retry.contains("/loaves_before_sunrise must be integer"),
        "the fault is named: {retry}"
    );
}

#[sqlx::test]
async fn two_wrong_answers_fail_the_scrape_as_extraction_invalid(pool: PgPool) {
    let site = Site::start().await;
    let llm = FakeLlm::start(Behaviour::Answer("Odile Ferrant founded it.".into())).await;
    let app = app(pool, Some(&llm)).await;
    let (_, token) = app.user_with_token("ann", Role::User).await;

    let s = extract(&app, &token, &site).await;

    assert_eq!(s["status"], "failed", "{s}");
    assert_eq!(s["error_kind"], "extraction_invalid");
    assert_eq!(llm.count(), 2, "one retry, then no more");
    assert_eq!(s["attempts"], 1, "not retried as a job");
    assert_eq!(
        app.settled_quota(&token, "scrape").await["used"],
        0,
        "the unit is given back"
    );
}

#[sqlx::test]
async fn without_a_provider_the_json_format_is_refused_at_once(pool: PgPool) {
    let app = app(pool, None).await;
    let (_, token) = app.user_with_token("ann", Role::User).await;

    let body = json!({ "url": "http://127.0.0.1:9/", "formats": ["json"], "json_options": {"schema": schema()} });
    let resp = app.post_json("/v1/scrapes", Some(&token), &body).await;

    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let problem: Value = resp.json().await.unwrap();
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("model provider"),
        "{problem}"
    );
    let unsupported =
        json!({ "url": "http://127.0.0.1:9/", "json_options": {"schema": {"oneOf": []}} });
    let resp = app
        .post_json("/v1/scrapes", Some(&token), &unsupported)
        .await;
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(app.settled_quota(&token, "scrape").await["used"], 0);
}
