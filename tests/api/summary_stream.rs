//! `GET /v1/summaries/{id}/stream` against a local server that streams chat completions in
//! OpenAI's wire format: text arrives in pieces while the model is still writing, the pieces
//! add up to the stored summary, a provider failing mid-stream hands over with a restart, and
//! a finished summary answers at once.

use std::time::Duration;

use serde_json::{Value, json};
use sqlx::PgPool;
use workhorse::config::ProviderConfig;
use workhorse::domain::users::Role;

use crate::fake_llm::{Behaviour, FakeLlm};
use crate::helpers::{TestApp, spawn_app_with};
use crate::sse::{Sse, SseStream};

const TEXT: &str = "Workhorse is one daemon for an HTTP API, durable jobs and schedules. \
It scrapes pages in a real browser and summarises documents with language models.";

fn provider(name: &str, llm: &FakeLlm) -> ProviderConfig {
    ProviderConfig {
        name: name.to_owned(),
        base_url: llm.base_url().to_owned(),
        model: format!("model-{name}"),
        api_key_env: String::new(),
        context_window: 8192,
        timeout: Duration::from_secs(20),
        max_output_tokens: 256,
    }
}

async fn app(pool: PgPool, providers: Vec<ProviderConfig>) -> TestApp {
    spawn_app_with(pool, move |c| {
        c.summarise.providers = providers;
        c.summarise.fallback_to_builtin = false;
    })
    .await
}

/// A summary of a new document, requested; returns its id.
async fn request(app: &TestApp, token: &str) -> String {
    let doc: Value = app
        .post_json(
            "/v1/documents",
            Some(token),
            &json!({"title": "About", "text": TEXT}),
        )
        .await
        .json()
        .await
        .expect("a document");
    let doc = doc["id"].as_str().expect("an id");
    let path = format!("/v1/documents/{doc}/summaries");
    let resp = app.post_json(&path, Some(token), &json!({})).await;
    assert_eq!(resp.status().as_u16(), 202);
    let summary: Value = resp.json().await.expect("a summary");
    summary["id"].as_str().expect("an id").to_owned()
}

async fn open(app: &TestApp, token: &str, id: &str) -> SseStream {
    let resp = app
        .get(&format!("/v1/summaries/{id}/stream"), Some(token))
        .await;
    let mut stream = SseStream::new(resp);
    assert_eq!(stream.expect().await.event, "hello");
    stream
}

/// Apply deltas as a client would: a restart drops the text so far.
fn assemble(events: &[Sse]) -> String {
    let mut text = String::new();
    for e in events.iter().filter(|e| e.event == "delta") {
        if e.data["restart"] == true {
            text.clear();
        }
        text.push_str(e.data["text"].as_str().unwrap_or_default());
    }
    text
}

#[sqlx::test]
async fn text_arrives_while_the_model_writes_and_adds_up_to_the_stored_summary(pool: PgPool) {
    let llm = FakeLlm::start(Behaviour::StreamHeld {
        before: vec!["Workhorse is ".into(), "one daemon ".into()],
        after: vec!["for jobs, ".into(), "scrapes and summaries.".into()],
        gap: Duration::from_millis(100),
    })
    .await;
    let app = app(pool, vec![provider("a", &llm)]).await;
    let (_, token) = app.user_with_token("alice", Role::User).await;
    let id = request(&app, &token).await;
    let mut stream = open(&app, &token, &id).await;

    // The model holds the rest of its answer: what arrives now arrived before the end.
    let early = stream
        .until(Duration::from_secs(20), |e| {
            assemble(std::slice::from_ref(e)).contains("daemon")
        })
        .await;
    let early_text: String = early
        .iter()
        .map(|e| assemble(std::slice::from_ref(e)))
        .collect();
    assert!(early_text.contains("Workhorse is"), "{early:?}");
    let now: Value = app.get_json(&format!("/v1/summaries/{id}"), &token).await;
    assert_ne!(
        now["status"], "succeeded",
        "not finished while the model holds"
    );
    llm.release();

    let rest = stream
        .until(Duration::from_secs(20), |e| e.event == "close")
        .await;
    let all: Vec<Sse> = early.into_iter().chain(rest).collect();
    let summary = all
        .iter()
        .find(|e| e.event == "summary")
        .expect("the stored summary");
    let stored = summary.data["summary"]["text"].as_str().expect("its text");
    assert_eq!(assemble(&all), stored);
    assert_eq!(
        stored,
        "Workhorse is one daemon for jobs, scrapes and summaries."
    );
    assert_eq!(
        all.last().map(|e| &e.data["reason"]),
        Some(&json!("finished"))
    );
    let read: Value = app.get_json(&format!("/v1/summaries/{id}"), &token).await;
    assert_eq!(read["text"], stored);

    // Finished: the summary at once.
    let mut again = open(&app, &token, &id).await;
    let first = again.expect().await;
    assert_eq!(
        (first.event.as_str(), &first.data["summary"]["text"]),
        ("summary", &json!(stored))
    );
    // Not another user's.
    let (_, bob) = app.user_with_token("bob", Role::User).await;
    let resp = app
        .get(&format!("/v1/summaries/{id}/stream"), Some(&bob))
        .await;
    assert_eq!(resp.status().as_u16(), 404);
}

#[sqlx::test]
async fn a_provider_failing_mid_stream_hands_over_with_a_restart(pool: PgPool) {
    let first = FakeLlm::start(Behaviour::StreamHeld {
        before: vec!["Half an ".into(), "answer".into()],
        // Never released.
        after: vec![" that never ends.".into()],
        gap: Duration::from_millis(50),
    })
    .await;
    let second = FakeLlm::start(Behaviour::Stream {
        pieces: vec!["The second ".into(), "provider's summary.".into()],
        gap: Duration::from_millis(50),
    })
    .await;
    // The first stops mid-answer: its call times out after the pieces it sent.
    let mut stalls = provider("a", &first);
    stalls.timeout = Duration::from_secs(3);
    let app = app(pool, vec![stalls, provider("b", &second)]).await;
    let (_, token) = app.user_with_token("alice", Role::User).await;
    let id = request(&app, &token).await;
    let mut stream = open(&app, &token, &id).await;
    let early = stream
        .until(Duration::from_secs(20), |e| {
            assemble(std::slice::from_ref(e)).contains("answer")
        })
        .await;
    let rest = stream
        .until(Duration::from_secs(30), |e| e.event == "close")
        .await;
    let all: Vec<Sse> = early.into_iter().chain(rest).collect();
    assert!(
        all.iter().any(|e| e.data["restart"] == true),
        "a restart: {all:?}"
    );
    let summary = all
        .iter()
        .find(|e| e.event == "summary")
        .expect("the stored summary");
    assert_eq!(summary.data["summary"]["provider"], "b");
    let stored = summary.data["summary"]["text"].as_str().expect("text");
    assert_eq!(stored, "The second provider's summary.");
    assert_eq!(assemble(&all), stored);
}
