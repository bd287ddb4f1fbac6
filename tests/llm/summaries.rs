//! One answer through `Providers::complete`, then one summary through the API and the job, both
//! from a real llama.cpp server. The 270M base model's text is no summary (it echoes its
//! prompt): these tests check the plumbing (request, parsing, answer checks, usage, storage),
//! not the quality.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::PgPool;
use workhorse::app::{App, Storage};
use workhorse::config::Config;
use workhorse::domain::tokens;
use workhorse::domain::users::{NewUser, Role};
use workhorse::store;
use workhorse::summarise::providers::{CompletionRequest, Providers, Task};

use crate::llama::{self, LlamaServer, MODEL};

const ARTICLE: &str = "The town of Millbrook opened its new public library on Saturday. The \
building replaces a branch that had served the town since 1962 and had run out of room for its \
collection.

The new library has three floors, a children's wing and a reading room that overlooks the river. \
It cost 4.2 million euros, most of it paid by a regional grant, and took two years to build.

The head librarian, Maria Lopez, said the library will open on Sundays for the first time and \
will lend laptops to students. More than two thousand people visited on the opening day.";

/// Longest a summary may take through the job, with every answer at the provider's timeout.
const SUMMARY_DEADLINE: Duration = Duration::from_secs(180);

#[tokio::test]
async fn providers_complete_with_a_real_llama_cpp_server() {
    let Some(model) = llama::model_or_skip().await else {
        return;
    };
    let server = LlamaServer::start(&model).await;
    let providers =
        Providers::new(vec![server.provider("llama")], Duration::from_secs(60)).expect("providers");
    let request = CompletionRequest {
        system: "Write in English.".to_owned(),
        document: ARTICLE.to_owned(),
        instruction: "Summarise the document in two sentences.".to_owned(),
        // Room for whatever the tiny model says within max_output_tokens: a length rejection
        // would test the model, not the plumbing.
        max_chars: 2000,
        preferred: None,
        task: Task::Summary,
    };

    let answer = providers
        .complete(&request)
        .await
        .unwrap_or_else(|e| panic!("{e}; the server's log:\n{}", server.log_tail()));

    eprintln!(
        "llama.cpp answered in {} ms ({} tokens in, {} out) as {:?}: {:?}",
        answer.elapsed_ms, answer.tokens_in, answer.tokens_out, answer.model, answer.text
    );
    assert!(!answer.text.is_empty());
    assert_eq!(answer.provider, "llama");
    assert_eq!(answer.model, MODEL);
    assert!(answer.tokens_in > 0 && answer.tokens_out > 0, "{answer:?}");
    assert!(answer.skipped.is_empty(), "{answer:?}");
}

#[sqlx::test]
async fn a_summary_is_made_by_a_real_llama_cpp_server_through_the_api(pool: PgPool) {
    let Some(model) = llama::model_or_skip().await else {
        return;
    };
    let server = LlamaServer::start(&model).await;
    let data_dir = tempfile::tempdir().expect("temp dir");
    let mut config = Config::default();
    config.http.listen = "127.0.0.1:0".parse().expect("valid address");
    config.data_dir = data_dir.path().to_path_buf();
    config.shutdown.timeout = Duration::from_secs(5);
    config.summarise.providers = vec![server.provider("llama")];
    // A bad answer must show up as a failure with its reason, not as a built-in summary or
    // minutes of retries.
    config.summarise.fallback_to_builtin = false;
    config.jobs.max_attempts = 1;
    let storage = Storage::from_pool(pool.clone())
        .await
        .expect("migrations apply");
    let app = App::with_storage(config, storage)
        .await
        .expect("app builds");
    let base = format!("http://{}", app.local_addr());
    let shutdown = app.shutdown_token();
    let stopped = tokio::spawn(app.run());
    let token = user_token(&pool).await;
    let client = reqwest::Client::new();

    let resp = (client.post(format!("{base}/v1/documents")))
        .bearer_auth(&token)
        .json(&json!({ "title": "Millbrook library", "text": ARTICLE }))
        .send()
        .await
        .expect("request sent");
    assert_eq!(resp.status(), StatusCode::CREATED);
    let doc: Value = resp.json().await.expect("document JSON");
    // `long` (up to 3,000 characters) leaves the length check no say over 256 tokens.
    let resp = (client.post(format!(
        "{base}/v1/documents/{}/summaries",
        doc["id"].as_str().unwrap()
    )))
    .bearer_auth(&token)
    .json(&json!({ "length": "long" }))
    .send()
    .await
    .expect("request sent");
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    let location = resp.headers()["location"].to_str().unwrap().to_owned();
    let started = Instant::now();
    let summary = loop {
        let s: Value = (client.get(format!("{base}{location}")))
            .bearer_auth(&token)
            .send()
            .await
            .expect("request sent")
            .json()
            .await
            .expect("summary JSON");
        if s["status"] == "succeeded" || s["status"] == "failed" {
            break s;
        }
        assert!(started.elapsed() < SUMMARY_DEADLINE, "still {s}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    };

    eprintln!("summary after {:?}: {summary}", started.elapsed());
    assert_eq!(
        summary["status"],
        "succeeded",
        "{summary}; the server's log:\n{}",
        server.log_tail()
    );
    assert_eq!(summary["builtin"], false);
    assert_eq!(summary["provider"], "llama");
    assert_eq!(summary["model"], MODEL);
    assert!(!summary["text"].as_str().unwrap_or_default().is_empty());
    assert!(summary["tokens_in"].as_i64() > Some(0), "{summary}");
    assert!(summary["tokens_out"].as_i64() > Some(0), "{summary}");
    assert_eq!(
        (summary["chunks"].as_i64(), summary["model_calls"].as_i64()),
        (Some(1), Some(1))
    );
    shutdown.cancel();
    let _ = stopped.await;
}

/// A user's bearer token, made straight in the database.
async fn user_token(pool: &PgPool) -> String {
    let mut conn = pool.acquire().await.expect("connection");
    let user = store::users::insert_user(
        &mut conn,
        &NewUser::parse("ann", None, Role::User, None).expect("valid user"),
    )
    .await
    .expect("user inserted");
    let minted = tokens::mint();
    store::tokens::insert_token(&mut conn, user.id, "test", &minted)
        .await
        .expect("token inserted");
    minted.secret
}
