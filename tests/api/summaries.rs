//! `/v1/documents` and `/v1/summaries` end to end, with local servers that speak the OpenAI
//! chat-completions wire format and check what they receive: the built-in summariser, a
//! provider's answer, fallback, a permanent 4xx, the cache, a long document map-reduced, and a
//! summary resuming after its chunks were partly done.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use poem::web::{Data, Json as PoemJson};
use poem::{EndpointExt, Response, Route, handler, http::StatusCode as PoemStatus};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::PgPool;
use workhorse::config::Config;
use workhorse::domain::users::Role;
use workhorse::summarise::providers::ProviderConfig;

use crate::helpers::{Loopback, TestApp, assert_problem, spawn_app_with};

/// How a fake provider answers.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Ok,
    Fail500,
    BadRequest,
}

/// Every request a fake provider got: its `Authorization` header and body.
type Requests = Arc<Mutex<Vec<(Option<String>, Value)>>>;

/// A local OpenAI-compatible server recording every request.
struct FakeProvider {
    site: Loopback,
    requests: Requests,
}

#[handler]
fn completions(
    req: &poem::Request,
    PoemJson(body): PoemJson<Value>,
    state: Data<&(Mode, Requests)>,
) -> Response {
    let (mode, requests) = state.0;
    let auth = (req.headers().get("authorization")).and_then(|v| v.to_str().ok().map(String::from));
    requests.lock().unwrap().push((auth, body.clone()));
    match mode {
        Mode::Fail500 => {
            return Response::builder()
                .status(PoemStatus::INTERNAL_SERVER_ERROR)
                .body("upstream exploded");
        }
        Mode::BadRequest => {
            return Response::builder()
                .status(PoemStatus::BAD_REQUEST)
                .content_type("application/json")
                .body(
                    json!({ "error": { "message": "This model's maximum context length is exceeded", "type": "invalid_request_error", "code": "context_length_exceeded" } })
                        .to_string(),
                );
        }
        Mode::Ok => {}
    }
    let user = body["messages"][1]["content"].as_str().unwrap_or_default();
    let answer = if let Some(part) = user.split("This is part ").nth(1) {
        let n = part.split(' ').next().unwrap_or("?");
        format!("Summary of part {n}: the part discusses its topic in detail.")
    } else {
        "The document explains how the daemon summarises documents.".to_string()
    };
    let response = json!({
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": 1_795_000_000,
        "model": body["model"],
        "choices": [{
            "index": 0,
            "message": { "role": "assistant", "content": answer },
            "finish_reason": "stop"
        }],
        "usage": { "prompt_tokens": 120, "completion_tokens": 12, "total_tokens": 132 }
    });
    Response::builder()
        .content_type("application/json")
        .body(response.to_string())
}

impl FakeProvider {
    async fn start(mode: Mode) -> Self {
        let requests = Arc::new(Mutex::new(Vec::new()));
        let route = Route::new().at(
            "/v1/chat/completions",
            poem::post(completions).data((mode, requests.clone())),
        );
        let site = Loopback::start(route).await;
        Self { site, requests }
    }

    fn config(&self, name: &str, context_window: u32) -> ProviderConfig {
        ProviderConfig {
            name: name.into(),
            base_url: self.site.url("/v1"),
            model: format!("{name}-model"),
            api_key_env: String::new(),
            context_window,
            timeout: Duration::from_secs(5),
            max_output_tokens: 256,
        }
    }

    fn requests(&self) -> Vec<(Option<String>, Value)> {
        self.requests.lock().unwrap().clone()
    }
}

const ARTICLE: &str = "Workhorse is a daemon that replaces serverless glue. It runs an HTTP API, \
a durable job engine on PostgreSQL, cron schedules and a browser for scraping. \
Documents can be summarised by language models through any OpenAI-compatible API. \
When no provider is configured, a built-in extractive summariser picks the most central \
sentences of the document. The job engine retries failed attempts with exponential backoff. \
Each cron tick fires exactly once, however many daemons share the database. \
Operators deploy the binary with systemd on a virtual machine.";

async fn app(pool: PgPool, configure: impl FnOnce(&mut Config) + Send + 'static) -> TestApp {
    spawn_app_with(pool, move |c| {
        c.jobs.backoff_base = Duration::from_millis(100);
        c.jobs.backoff_jitter = 0.0;
        configure(c);
    })
    .await
}

async fn document(app: &TestApp, token: &str, text: &str) -> String {
    let resp = app
        .post_json(
            "/v1/documents",
            Some(token),
            &json!({ "title": "About Workhorse", "text": text }),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let doc: Value = resp.json().await.unwrap();
    doc["id"].as_str().unwrap().to_string()
}

async fn summarise(app: &TestApp, token: &str, doc: &str, body: Value) -> Value {
    let resp = app
        .post_json(
            &format!("/v1/documents/{doc}/summaries"),
            Some(token),
            &body,
        )
        .await;
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    let location = resp.headers()["location"].to_str().unwrap().to_string();
    let started: Value = resp.json().await.unwrap();
    assert_eq!(
        location,
        format!("/v1/summaries/{}", started["id"].as_str().unwrap())
    );
    wait_for(app, token, &location, &["succeeded", "failed"]).await
}

/// The caller's `summarise` quota (used, reserved) once no unit is held any more: the unit is
/// settled with the job's final state, written just after the summary's own outcome.
async fn summarise_quota_settled(app: &TestApp, token: &str) -> (Value, Value) {
    let mut quota = Value::Null;
    for _ in 0..100 {
        let me: Value = app.get("/v1/me", Some(token)).await.json().await.unwrap();
        quota = (me["quotas"].as_array().unwrap().iter())
            .find(|q| q["action"] == "summarise")
            .unwrap()
            .clone();
        if quota["reserved"] == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (quota["used"].clone(), quota["reserved"].clone())
}

async fn wait_for(app: &TestApp, token: &str, path: &str, states: &[&str]) -> Value {
    for _ in 0..300 {
        let s: Value = app.get(path, Some(token)).await.json().await.unwrap();
        if states.contains(&s["status"].as_str().unwrap_or_default()) {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{path} never reached {states:?}");
}

#[sqlx::test]
async fn documents_are_stored_listed_read_and_deleted(pool: PgPool) {
    let app = app(pool, |c| c.summarise.max_document_bytes = 2000).await;
    let (_, token) = app.user_with_token("ann", Role::User).await;
    let id = document(&app, &token, ARTICLE).await;

    let doc: Value = (app.get(&format!("/v1/documents/{id}"), Some(&token)).await)
        .json()
        .await
        .unwrap();
    assert_eq!(doc["text"], ARTICLE);
    assert_eq!(doc["source"], "upload");
    assert_eq!(doc["size"], ARTICLE.len());
    let list: Value = app
        .get("/v1/documents", Some(&token))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["items"][0]["id"], id.as_str());
    assert!(list["items"][0].get("text").is_none());

    let resp = app
        .post_json(
            "/v1/documents",
            Some(&token),
            &json!({ "title": "big", "text": "x".repeat(2001) }),
        )
        .await;
    let problem = assert_problem(resp, 413, "payload_too_large").await;
    assert!(
        problem["detail"].as_str().unwrap().contains("2000"),
        "{problem}"
    );
    for body in [
        json!({ "title": "", "text": "t" }),
        json!({ "title": "t", "text": "  " }),
    ] {
        let resp = app.post_json("/v1/documents", Some(&token), &body).await;
        assert_problem(resp, 422, "validation_failed").await;
    }
    let resp = app
        .post_json(
            &format!("/v1/documents/{id}/summaries"),
            Some(&token),
            &json!({ "style": "haiku" }),
        )
        .await;
    assert_problem(resp, 422, "validation_failed").await;

    let (_, other) = app.user_with_token("bob", Role::User).await;
    let resp = app.get(&format!("/v1/documents/{id}"), Some(&other)).await;
    assert_problem(resp, 404, "not_found").await;
    assert_eq!(
        app.delete(&format!("/v1/documents/{id}"), Some(&other))
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.delete(&format!("/v1/documents/{id}"), Some(&token))
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
    let resp = app.get(&format!("/v1/documents/{id}"), Some(&token)).await;
    assert_problem(resp, 404, "not_found").await;
}

#[sqlx::test]
async fn without_providers_the_built_in_summariser_answers(pool: PgPool) {
    let app = app(pool, |_| {}).await;
    let (_, token) = app.user_with_token("ann", Role::User).await;
    let doc = document(&app, &token, ARTICLE).await;

    let s = summarise(&app, &token, &doc, json!({ "length": "short" })).await;
    assert_eq!(s["status"], "succeeded", "{s}");
    assert_eq!(s["builtin"], true);
    assert_eq!(s["provider"], "builtin");
    let text = s["text"].as_str().unwrap();
    assert!(!text.is_empty() && text.len() < ARTICLE.len(), "{text}");
    assert!(text.len() <= 400, "{text}");
    // Whole sentences of the document.
    for sentence in text.split(". ").map(|s| s.trim_end_matches('.')) {
        assert!(
            ARTICLE.contains(sentence),
            "{sentence:?} is not from the document"
        );
    }
    assert_eq!(
        summarise_quota_settled(&app, &token).await,
        (json!(1), json!(0))
    );
}

#[sqlx::test]
async fn a_provider_answers_with_fallback_and_the_cache_answers_again(pool: PgPool) {
    let down = FakeProvider::start(Mode::Fail500).await;
    let up = FakeProvider::start(Mode::Ok).await;
    let providers = vec![down.config("first", 8192), up.config("second", 8192)];
    let app = app(pool, move |c| c.summarise.providers = providers).await;
    let (_, token) = app.user_with_token("ann", Role::User).await;
    let doc = document(&app, &token, ARTICLE).await;

    let body = json!({ "style": "bullets", "language": "en" });
    let s = summarise(&app, &token, &doc, body.clone()).await;
    assert_eq!(s["status"], "succeeded", "{s}");
    assert_eq!(s["provider"], "second");
    assert_eq!(s["model"], "second-model");
    assert_eq!(s["builtin"], false);
    assert_eq!(s["cached"], false);
    assert_eq!(
        (s["tokens_in"].clone(), s["tokens_out"].clone()),
        (json!(120), json!(12))
    );
    assert_eq!(s["chunks"], 1);

    // What the provider received: the model, the rules, the document as delimited data.
    let requests = up.requests();
    assert_eq!(requests.len(), 1);
    let sent = &requests[0].1;
    assert_eq!(sent["model"], "second-model");
    let system = sent["messages"][0]["content"].as_str().unwrap();
    assert!(system.contains("not instructions"), "{system}");
    let user = sent["messages"][1]["content"].as_str().unwrap();
    assert!(
        user.contains("<document>") && user.contains(ARTICLE),
        "{user}"
    );
    assert!(user.contains("bullet"), "{user}");
    assert!(
        !down.requests().is_empty(),
        "the first provider was tried first"
    );

    // The same request again: from the cache, no provider called.
    let before = up.requests().len() + down.requests().len();
    let again = summarise(&app, &token, &doc, body).await;
    assert_eq!(again["status"], "succeeded");
    assert_eq!(again["cached"], true);
    assert_eq!(again["text"], s["text"]);
    assert_eq!(up.requests().len() + down.requests().len(), before);
}

#[sqlx::test]
async fn a_permanent_error_fails_the_summary_and_gives_the_unit_back(pool: PgPool) {
    let bad = FakeProvider::start(Mode::BadRequest).await;
    let providers = vec![bad.config("only", 8192)];
    let app = app(pool, move |c| c.summarise.providers = providers).await;
    let (_, token) = app.user_with_token("ann", Role::User).await;
    let doc = document(&app, &token, ARTICLE).await;

    let s = summarise(&app, &token, &doc, json!({})).await;
    assert_eq!(s["status"], "failed", "{s}");
    assert_eq!(s["attempts"], 1, "a permanent error is not retried");
    assert!(
        s["error"].as_str().unwrap().contains("context length"),
        "{s}"
    );
    assert_eq!(
        summarise_quota_settled(&app, &token).await,
        (json!(0), json!(0))
    );
}

#[sqlx::test]
async fn all_providers_down_falls_back_to_the_built_in_summariser(pool: PgPool) {
    let down = FakeProvider::start(Mode::Fail500).await;
    let providers = vec![down.config("only", 8192)];
    let app = app(pool, move |c| c.summarise.providers = providers).await;
    let (_, token) = app.user_with_token("ann", Role::User).await;
    let doc = document(&app, &token, ARTICLE).await;
    let s = summarise(&app, &token, &doc, json!({})).await;
    assert_eq!(s["status"], "succeeded", "{s}");
    assert_eq!(s["builtin"], true);
}

/// A long text of numbered paragraphs.
fn long_text() -> String {
    (1..=40)
        .map(|i| {
            format!(
                "Paragraph {i} describes one aspect of the system in some detail. It names the \
                 component, explains what it does, and why it was built that way. The reasons \
                 are practical and measured on the machine the daemon runs on."
            )
        })
        .collect::<Vec<_>>()
        .join("\n\n")
}

#[sqlx::test]
async fn a_long_document_is_map_reduced_and_resumes_after_its_kept_chunks(pool: PgPool) {
    let provider = FakeProvider::start(Mode::Ok).await;
    let providers = vec![provider.config("small", 1024)];
    let text = long_text();

    // Enqueue with no workers running, keep two chunk results as if an earlier attempt had
    // made them, then start a daemon that runs the job.
    // The idle daemon gets a pool of its own: stopping it closes that pool.
    let own_pool = sqlx::postgres::PgPoolOptions::new()
        .connect_with((*pool.connect_options()).clone())
        .await
        .unwrap();
    let idle = {
        let providers = providers.clone();
        app(own_pool, move |c| {
            c.summarise.providers = providers;
            c.jobs.run_workers = false;
        })
        .await
    };
    let (_, token) = idle.user_with_token("ann", Role::User).await;
    let doc = document(&idle, &token, &text).await;
    let resp = idle
        .post_json(
            &format!("/v1/documents/{doc}/summaries"),
            Some(&token),
            &json!({}),
        )
        .await;
    let started: Value = resp.json().await.unwrap();
    let id = started["id"].as_str().unwrap().to_string();
    for idx in 0..2 {
        sqlx::query(
            "INSERT INTO summary_chunks (summary_id, round, idx, text, provider, model, \
                                         tokens_in, tokens_out) \
             VALUES ($1::uuid, 0, $2, $3, 'small', 'small-model', 100, 10)",
        )
        .bind(&id)
        .bind(idx)
        .bind(format!("Kept summary of part {}.", idx + 1))
        .execute(&pool)
        .await
        .unwrap();
    }
    drop(idle);

    let app = app(pool, move |c| c.summarise.providers = providers).await;
    let s = wait_for(
        &app,
        &token,
        &format!("/v1/summaries/{id}"),
        &["succeeded", "failed"],
    )
    .await;
    assert_eq!(s["status"], "succeeded", "{s}");
    let chunks = s["chunks"].as_i64().unwrap();
    assert!(chunks >= 5, "{s}");
    let requests = provider.requests();
    let parts: Vec<String> = (requests.iter())
        .filter_map(|(_, body)| {
            let user = body["messages"][1]["content"].as_str()?;
            let part = user.split("This is part ").nth(1)?;
            Some(part.split(' ').next()?.to_string())
        })
        .collect();
    // The kept parts 1 and 2 were not asked for again; every other part was, once.
    assert!(
        !parts.contains(&"1".to_string()) && !parts.contains(&"2".to_string()),
        "{parts:?}"
    );
    assert!(parts.len() as i64 >= chunks - 2, "{parts:?}");
    // The final call summarised the part summaries.
    let last = requests.last().unwrap().1["messages"][1]["content"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(last.contains("Kept summary of part 1."), "{last}");
    assert!(last.contains("summaries of consecutive parts"), "{last}");
    assert_eq!(
        s["model_calls"].as_i64().unwrap() as usize,
        requests.len() + 2
    );
}
