//! The dashboard's live stream over plain HTTP: a page carries the stream's number from when it
//! was read (`data-seq`), and `/ui/events?since=` that number announces a change made before
//! the stream opened; a reconnect with `Last-Event-ID` resumes after the last message, only the
//! signed-in user's jobs are named, and a page whose missed events are gone is told to refresh
//! everything.

use std::time::Duration;

use serde_json::{Value, json};
use sqlx::PgPool;
use workhorse::domain::users::Role;

use crate::helpers::{TestApp, assert_problem, echo_charges_scrape, eventually, spawn_app_with};
use crate::sse::SseStream;
use crate::ui_support::{client, page, session_cookie};

const WITHIN: Duration = Duration::from_secs(20);

/// The `data-seq` of the page at `path`.
async fn page_seq(app: &TestApp, cookie: &str, path: &str) -> i64 {
    let page = page(app, cookie, path).await;
    let at = page
        .find("data-seq=\"")
        .expect("the page names its stream position")
        + 10;
    page[at..]
        .split('"')
        .next()
        .and_then(|n| n.parse().ok())
        .expect("a number")
}

/// `/ui/events` with the session `cookie`, the query `query` and an optional `Last-Event-ID`.
async fn events(app: &TestApp, cookie: &str, query: &str, last: Option<i64>) -> SseStream {
    let mut req = client()
        .get(app.url(&format!("/ui/events{query}")))
        .header("cookie", cookie);
    if let Some(id) = last {
        req = req.header("last-event-id", id.to_string());
    }
    SseStream::new(req.send().await.expect("opened the stream"))
}

/// An echo job of `token`'s, run to the end.
async fn finished_job(app: &TestApp, token: &str) -> String {
    let id = app
        .enqueue(token, json!({"kind": "echo", "args": {}}))
        .await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let done = eventually(WITHIN, || async {
        app.get_json(&format!("/v1/jobs/{id}"), token).await["state"] == "succeeded"
    })
    .await;
    assert!(done, "job {id} succeeded");
    id
}

/// The ids a `changed` message names.
fn named(data: &Value) -> Vec<String> {
    data["jobs"]
        .as_array()
        .expect("a list of jobs")
        .iter()
        .filter_map(|j| j.as_str().map(str::to_owned))
        .collect()
}

#[sqlx::test]
async fn a_change_made_before_the_stream_opened_is_announced_once_and_only_to_its_owner(
    pool: PgPool,
) {
    let app = spawn_app_with(pool, |c| echo_charges_scrape(c, 100)).await;
    let (_, alice) = app.user_with_token("alice", Role::User).await;
    let (_, bob) = app.user_with_token("bob", Role::User).await;
    let alice_cookie = session_cookie(&app, &alice).await;
    let bob_cookie = session_cookie(&app, &bob).await;
    let seq = page_seq(&app, &alice_cookie, "/ui/jobs").await;
    let bob_seq = page_seq(&app, &bob_cookie, "/ui/jobs").await;

    // The job runs to the end while neither page has its stream open.
    let job = finished_job(&app, &alice).await;
    let mut alice_stream = events(&app, &alice_cookie, &format!("?since={seq}"), None).await;
    let changed = alice_stream.expect().await;
    assert_eq!(changed.event, "changed", "{changed:?}");
    assert!(named(&changed.data).contains(&job), "{changed:?}");
    assert_eq!(changed.data["truncated"], false, "{changed:?}");
    let last = changed
        .id
        .expect("a changed message carries the last number it covers");
    assert!(last > seq, "{last} after {seq}");

    // Bob's page, read at the same time, is not told about Alice's job.
    let mut bob_stream = events(&app, &bob_cookie, &format!("?since={bob_seq}"), None).await;
    let quiet = bob_stream.next(Duration::from_millis(1500)).await;
    assert!(quiet.is_none(), "bob was told {quiet:?}");

    // A reconnect resumes after the last message: the job is not announced again, the next
    // one is; Last-Event-ID wins over the URL's older `since`, as a browser sends both.
    let mut again = events(&app, &alice_cookie, &format!("?since={seq}"), Some(last)).await;
    let next = finished_job(&app, &alice).await;
    let changed = again.expect().await;
    let ids = named(&changed.data);
    assert!(ids.contains(&next) && !ids.contains(&job), "{changed:?}");

    // A stream opened without a position starts from now: the old job is not announced.
    let mut fresh = events(&app, &alice_cookie, "", None).await;
    let quiet = fresh.next(Duration::from_millis(1500)).await;
    assert!(
        quiet.is_none(),
        "a stream without a position was told {quiet:?}"
    );
}

#[sqlx::test]
async fn a_page_whose_missed_events_are_gone_is_told_to_refresh_everything(pool: PgPool) {
    let app = spawn_app_with(pool, |c| echo_charges_scrape(c, 100)).await;
    let (_, alice) = app.user_with_token("alice", Role::User).await;
    let cookie = session_cookie(&app, &alice).await;
    let seq = page_seq(&app, &cookie, "/ui/jobs").await;
    finished_job(&app, &alice).await;
    // Retention removed what the page missed.
    sqlx::query("DELETE FROM stream_changes")
        .execute(&app.pool)
        .await
        .expect("pruned");
    let mut stream = events(&app, &cookie, &format!("?since={seq}"), None).await;
    let changed = stream.expect().await;
    assert_eq!(changed.event, "changed", "{changed:?}");
    assert_eq!(changed.data["truncated"], true, "{changed:?}");

    // A position that is not a number is refused.
    let resp = client()
        .get(app.url("/ui/events?since=soon"))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("answered");
    let problem = assert_problem(resp, 400, "invalid_request").await;
    assert!(problem["detail"].to_string().contains("since"), "{problem}");
}
