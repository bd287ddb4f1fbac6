//! Streamed summaries: a provider's text reaches the sink while the model is still answering,
//! a provider failing mid-stream is followed by a restart and the next one, and a summarise
//! job sends its text to `workhorse_tokens` before it stores the summary, the built-in
//! summariser sentence by sentence.

use std::time::{Duration, Instant};

use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tracing_subscriber::layer::SubscriberExt;
use uuid::Uuid;
use workhorse::config::Config;
use workhorse::engine::Engine;
use workhorse::health::Health;
use workhorse::jobs::{Kinds, registry_for};
use workhorse::store::documents;
use workhorse::summarise::providers::{Piece, ProviderConfig};
use workhorse::summarise::stream::{TOKENS_CHANNEL, TokenPiece};
use workhorse::summarise::summariser::{SummaryOptions, builtin_streaming};

use crate::cancel::request_summary;
use crate::fake_llm::{Behaviour, FakeLlm};
use crate::providers::{Calls, MINUTE, provider, providers, request};
use crate::rows::{self, user};

fn strings(pieces: &[&str]) -> Vec<String> {
    pieces.iter().map(|p| (*p).to_owned()).collect()
}

/// A provider given the time to stream (the shared helper's 300 ms is for one whole answer).
fn streaming(name: &str, llm: &FakeLlm) -> ProviderConfig {
    ProviderConfig {
        timeout: Duration::from_secs(10),
        ..provider(name, llm)
    }
}

#[tokio::test]
async fn pieces_reach_the_sink_while_the_model_is_still_answering() {
    // Arrange: the model sends two pieces, then holds the rest until the test lets it go on,
    // which it does on the first piece: a call that handed on its text only at the end would
    // wait for the hold until its timeout.
    let a = FakeLlm::start(Behaviour::StreamHeld {
        before: strings(&["The cat ", "sat "]),
        after: strings(&["on the mat."]),
        gap: Duration::from_millis(200),
    })
    .await;
    let providers = providers(vec![streaming("A", &a)], MINUTE);
    let mut pieces: Vec<(Instant, Piece)> = Vec::new();

    // Act
    let answer = providers
        .complete_streaming(&request("The cat sat on the mat all day."), &mut |piece| {
            if pieces.is_empty() {
                a.release();
            }
            pieces.push((Instant::now(), piece));
        })
        .await
        .expect("an answer");
    let returned = Instant::now();

    // Assert: every piece, in order and trimmed as the answer is, before the call returned.
    let got: Vec<Piece> = pieces.iter().map(|(_, p)| p.clone()).collect();
    let want = ["The cat", " sat", " on the mat."].map(|t| Piece::Text(t.to_owned()));
    assert_eq!(got, want);
    assert!(pieces.iter().all(|(at, _)| *at <= returned));
    assert!(pieces.windows(2).all(|w| w[0].0 <= w[1].0));
    assert_eq!(answer.text, "The cat sat on the mat.");
    assert_eq!(
        (answer.provider.as_str(), answer.model.as_str()),
        ("A", "model-a")
    );
    assert_eq!((answer.tokens_in, answer.tokens_out), (120, 17));
    let sent = &a.received()[0].body;
    assert_eq!(sent["stream"], true);
    assert_eq!(sent["stream_options"]["include_usage"], true);
}

fn collect(pieces: &mut Vec<Piece>) -> impl FnMut(Piece) + Send + '_ {
    move |piece| pieces.push(piece)
}

#[tokio::test]
async fn a_provider_dropping_mid_stream_is_followed_by_a_restart_and_the_next_ones_text() {
    let a = FakeLlm::start(Behaviour::StreamThenDrop(strings(&[
        "Half of ",
        "an answer",
    ])))
    .await;
    let b = FakeLlm::start(Behaviour::Stream {
        pieces: strings(&["The cat ", "sat."]),
        gap: Duration::from_millis(20),
    })
    .await;
    let providers = providers(vec![streaming("A", &a), streaming("B", &b)], MINUTE);
    let mut pieces = Vec::new();

    let answer = providers
        .complete_streaming(&request("The cat sat."), &mut collect(&mut pieces))
        .await
        .expect("an answer");

    let text = |t: &str| Piece::Text(t.to_owned());
    assert_eq!(
        pieces,
        [
            text("Half of"),
            text(" an answer"),
            Piece::Restart,
            text("The cat"),
            text(" sat.")
        ]
    );
    assert_eq!(answer.text, "The cat sat.");
    assert_eq!(answer.provider, "B");
    assert_eq!(answer.skipped[0].0, "A", "{:?}", answer.skipped);
    assert!(
        providers.back_in().is_some(),
        "a dropped stream cools A down"
    );
}

#[tokio::test]
async fn a_streamed_answer_failing_the_checks_is_restarted_on_the_next_provider() {
    for (behaviour, reason) in [
        (
            Behaviour::Answer("I'm sorry, but I can't help with that.".into()),
            "refusal",
        ),
        (Behaviour::Truncated("The cat sat".into()), "cut off"),
        (Behaviour::Answer("word ".repeat(60)), "more than 240"),
    ] {
        let a = FakeLlm::start(behaviour.clone()).await;
        let b = FakeLlm::start(Behaviour::Answer("Summary from B.".into())).await;
        let providers = providers(vec![streaming("A", &a), streaming("B", &b)], MINUTE);
        let mut pieces = Vec::new();

        let answer = providers
            .complete_streaming(&request("Some text."), &mut collect(&mut pieces))
            .await
            .expect("an answer");

        let restart = pieces.iter().position(|p| *p == Piece::Restart);
        assert_eq!(restart, Some(pieces.len() - 2), "{behaviour:?}: {pieces:?}");
        assert_eq!(pieces.last(), Some(&Piece::Text("Summary from B.".into())));
        assert!(answer.skipped[0].1.contains(reason), "{:?}", answer.skipped);
        assert_eq!(providers.back_in(), None, "a bad answer cools nobody down");
    }
}

#[tokio::test]
async fn a_provider_failing_before_its_first_token_needs_no_restart() {
    let a = FakeLlm::start(Behaviour::ServerError).await;
    let b = FakeLlm::start(Behaviour::Stream {
        pieces: strings(&["Summary ", "from B."]),
        gap: Duration::ZERO,
    })
    .await;
    let providers = providers(vec![streaming("A", &a), streaming("B", &b)], MINUTE);
    let mut pieces = Vec::new();

    let answer = providers
        .complete_streaming(&request("Some text."), &mut collect(&mut pieces))
        .await
        .expect("an answer");

    assert_eq!(
        pieces,
        ["Summary", " from B."].map(|t| Piece::Text(t.to_owned()))
    );
    assert_eq!(answer.text, "Summary from B.");
    assert!(answer.skipped[0].1.contains("500"), "{:?}", answer.skipped);
    assert_eq!(a.received()[0].body["stream"], true);
}

#[test]
fn the_builtin_summary_streams_one_piece_per_sentence_adding_up_to_it() {
    let text = "The harbour reopened on Monday after nine days of repairs. Ferries ran on time. \
                The mayor thanked the crews who worked through the storm. Traffic was light.";
    for style in ["paragraph", "bullets"] {
        let options = SummaryOptions {
            style: style.into(),
            length: "long".into(),
            language: None,
            provider: None,
        };
        let mut pieces = Vec::new();

        let done = builtin_streaming(text, &options, &mut collect(&mut pieces));

        let texts: Vec<String> = (pieces.iter())
            .map(|p| match p {
                Piece::Text(t) => t.clone(),
                Piece::Restart => panic!("a restart from the built-in summariser"),
            })
            .collect();
        assert_eq!(texts.concat(), done.text, "{style}");
        // One sentence per piece: each sentence here has the only full stop.
        assert!(texts.len() >= 2, "{style}: {texts:?}");
        assert_eq!(texts.len(), done.text.matches('.').count(), "{texts:?}");
        assert!(
            texts.iter().all(|t| t.trim_end().ends_with('.')),
            "{texts:?}"
        );
    }
}

#[tokio::test]
async fn a_streamed_call_records_the_usage_of_its_last_chunk_on_its_span() {
    let calls = Calls::default();
    let _subscriber =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(calls.clone()));
    let _second = tracing::Dispatch::new(tracing_subscriber::registry());
    let a = FakeLlm::start(Behaviour::Stream {
        pieces: vec!["Summary ".to_owned(), "from A.".to_owned()],
        gap: Duration::ZERO,
    })
    .await;
    let providers = providers(vec![provider("A", &a)], MINUTE);

    let answer = providers
        .complete_streaming(&request("Some text."), &mut |_| {})
        .await
        .expect("an answer");

    assert_eq!((answer.tokens_in, answer.tokens_out), (120, 17));
    let spans = calls.0.lock().expect("the span log");
    let span = spans.values().next().expect("an llm call span");
    assert_eq!(span["otel.name"], "chat model-a");
    assert_eq!(span["http.response.status_code"], "200");
    assert_eq!(span["gen_ai.response.model"], "model-a");
    assert_eq!(span["gen_ai.usage.input_tokens"], "120");
    assert_eq!(span["gen_ai.usage.output_tokens"], "17");
    assert!(!span.contains_key("error.type"), "{span:?}");
}

async fn start(pool: &PgPool, providers: Vec<ProviderConfig>) -> (Engine, Kinds) {
    let mut config = Config::default();
    config.summarise.providers = providers;
    config.summarise.fallback_to_builtin = false;
    let kinds = Kinds::new(&config).unwrap();
    let registry = registry_for(pool, &kinds);
    crate::sequencer::start(pool);
    let engine = Engine::start(pool.clone(), &config.jobs, registry, Health::default());
    (engine.await.unwrap(), kinds)
}

/// A listener on the tokens channel, opened before anything is enqueued.
async fn listen(pool: &PgPool) -> PgListener {
    let mut listener = PgListener::connect_with(pool).await.unwrap();
    listener.listen(TOKENS_CHANNEL).await.unwrap();
    listener
}

/// The next piece of `summary` (other tests' pieces skipped), or `None` after `within`.
async fn next_piece(
    listener: &mut PgListener,
    summary: Uuid,
    within: Duration,
) -> Option<TokenPiece> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let note = tokio::time::timeout_at(deadline, listener.recv())
            .await
            .ok()?;
        let piece: TokenPiece = serde_json::from_str(note.unwrap().payload()).unwrap();
        if piece.summary == summary {
            return Some(piece);
        }
    }
}

/// The text the pieces make, checking that each continues where the text stands.
fn apply(pieces: &[TokenPiece]) -> String {
    let mut text = String::new();
    for (seq, piece) in pieces.iter().enumerate() {
        assert_eq!(piece.seq, seq as u64, "{pieces:?}");
        if piece.restart {
            text.clear();
        }
        assert_eq!(piece.offset as usize, text.chars().count(), "{pieces:?}");
        text.push_str(&piece.text);
    }
    text
}

async fn stored_text(pool: &PgPool, summary: Uuid) -> Option<String> {
    sqlx::query_scalar("SELECT text FROM summaries WHERE id = $1")
        .bind(summary)
        .fetch_one(pool)
        .await
        .unwrap()
}

/// Pieces until they add up to `text` (what was sent before the job ended is already on its
/// way), failing after a few seconds of silence.
async fn pieces_up_to(
    listener: &mut PgListener,
    summary: Uuid,
    mut pieces: Vec<TokenPiece>,
    text: &str,
) -> Vec<TokenPiece> {
    while apply(&pieces) != text {
        let piece = next_piece(listener, summary, Duration::from_secs(5)).await;
        let piece = piece.unwrap_or_else(|| panic!("{pieces:?} do not add up to {text:?}"));
        pieces.push(piece);
    }
    pieces
}

#[sqlx::test]
async fn a_summarise_job_sends_its_text_as_the_model_streams_it_then_stores_it(pool: PgPool) {
    // Arrange: a model that streams three pieces and then holds the last until released.
    let llm = FakeLlm::start(Behaviour::StreamHeld {
        before: strings(&["The harbour ", "reopened ", "on Monday "]),
        after: strings(&["after repairs."]),
        gap: Duration::from_millis(200),
    })
    .await;
    let mut listener = listen(&pool).await;
    let (engine, _kinds) = start(&pool, vec![streaming("A", &llm)]).await;
    let owner = user(&pool).await;
    let text = "The harbour reopened on Monday after nine days of repairs.";
    let doc = documents::insert(&pool, owner, "Harbour", text)
        .await
        .unwrap()
        .id;

    // Act: two notifications while the model holds its answer, then let it finish.
    let (summary_id, job_id) = request_summary(&pool, owner, doc).await;
    let mut early = Vec::new();
    while early.len() < 2 {
        let piece = next_piece(&mut listener, summary_id, Duration::from_secs(20)).await;
        early.push(piece.expect("pieces while the model is still answering"));
    }
    let unfinished = !rows::has_ended(&pool, job_id).await;
    let text_then = stored_text(&pool, summary_id).await;
    llm.release();
    let job = rows::wait_for(&pool, job_id, rows::FINISHED, Duration::from_secs(30)).await;

    // Assert: the early pieces came before the job ended, and all of them make the summary.
    assert!(unfinished && text_then.is_none(), "{early:?}");
    assert_eq!(job.state, "succeeded", "{job:?}");
    let stored = stored_text(&pool, summary_id)
        .await
        .expect("the summary's text");
    assert_eq!(stored, "The harbour reopened on Monday after repairs.");
    let pieces = pieces_up_to(&mut listener, summary_id, early, &stored).await;
    assert!(
        pieces.iter().all(|p| p.owner == owner && p.attempt == 1),
        "{pieces:?}"
    );
    assert!(!pieces.iter().any(|p| p.restart), "{pieces:?}");
    engine.shutdown(Duration::from_secs(5)).await;
}

#[sqlx::test]
async fn the_builtin_summariser_sends_sentences_adding_up_to_the_stored_summary(pool: PgPool) {
    let mut listener = listen(&pool).await;
    let (engine, _kinds) = start(&pool, Vec::new()).await;
    let owner = user(&pool).await;
    let text = "The harbour reopened on Monday after nine days of repairs. Ferries ran on time \
                again. The mayor thanked the crews who had worked through the storm.";
    let doc = documents::insert(&pool, owner, "Harbour", text)
        .await
        .unwrap()
        .id;

    let (summary_id, job_id) = request_summary(&pool, owner, doc).await;
    let job = rows::wait_for(&pool, job_id, rows::FINISHED, Duration::from_secs(30)).await;

    assert_eq!(job.state, "succeeded", "{job:?}");
    let stored = stored_text(&pool, summary_id)
        .await
        .expect("the summary's text");
    let pieces = pieces_up_to(&mut listener, summary_id, Vec::new(), &stored).await;
    assert!(!pieces.is_empty());
    assert!(pieces.iter().all(|p| p.owner == owner), "{pieces:?}");
    engine.shutdown(Duration::from_secs(5)).await;
}
