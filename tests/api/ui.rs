//! The dashboard in real Chromium through chromedriver: sign in with a token, the jobs page
//! lists the signed-in user's jobs and shows a new one without a reload, Retry on a dead job
//! makes a new attempt, another user's job is not found, sign-out ends the session; and over
//! plain HTTP: a form without the CSRF token is refused, a revoked token ends its sessions.

use std::time::Duration;

use fantoccini::Locator;
use serde_json::{Value, json};
use sqlx::PgPool;
use workhorse::domain::users::Role;

use crate::chromedriver::Chromedriver;
use crate::helpers::{TestApp, echo_charges_scrape, eventually, spawn_app_with};
use crate::ui_support::{arrives, client, path, session_cookie, sign_in, source};

const WITHIN: Duration = Duration::from_secs(20);

async fn app(pool: PgPool) -> TestApp {
    spawn_app_with(pool, |c| {
        echo_charges_scrape(c, 100);
        c.jobs.backoff_base = Duration::from_millis(50);
        c.jobs.backoff_jitter = 0.0;
    })
    .await
}

async fn job(app: &TestApp, token: &str, id: &str) -> Value {
    app.get_json(&format!("/v1/jobs/{id}"), token).await
}

async fn dead_job(app: &TestApp, token: &str) -> String {
    let body = json!({"kind": "echo", "args": {"fail_permanently": true}});
    let id = app.enqueue(token, body).await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let dead = eventually(WITHIN, || async {
        job(app, token, &id).await["state"] == "dead"
    })
    .await;
    assert!(dead, "the job died");
    id
}

#[sqlx::test]
async fn a_person_signs_in_watches_their_jobs_live_retries_and_signs_out(pool: PgPool) {
    let app = app(pool).await;
    let (_, alice) = app.user_with_token("alice", Role::User).await;
    let (_, bob) = app.user_with_token("bob", Role::User).await;
    let first = app.enqueue(&alice, json!({"kind": "echo"})).await;
    let bobs = app.enqueue(&bob, json!({"kind": "echo"})).await;
    let dead = dead_job(&app, &alice).await;
    let driver = Chromedriver::start().await;
    let browser = driver.browser().await;

    // Not signed in: the sign-in form.
    browser
        .goto(&app.url("/ui/jobs"))
        .await
        .expect("opening /ui/jobs");
    assert_eq!(path(&browser).await, "/ui/login");
    sign_in(&browser, &app, &alice).await;

    // Her jobs, not bob's.
    browser
        .goto(&app.url("/ui/jobs"))
        .await
        .expect("opening /ui/jobs");
    let page = source(&browser).await;
    assert!(
        page.contains(first["id"].as_str().expect("id")),
        "her job is listed"
    );
    assert!(
        !page.contains(bobs["id"].as_str().expect("id")),
        "bob's is not"
    );

    // A job created after the page loaded appears without a reload.
    let later = app.enqueue(&alice, json!({"kind": "echo"})).await;
    let row = format!("tr[data-id='{}']", later["id"].as_str().expect("id"));
    let appeared = eventually(WITHIN, || async {
        browser.find(Locator::Css(&row)).await.is_ok()
    })
    .await;
    assert!(appeared, "the new job appeared live");
    assert_eq!(path(&browser).await, "/ui/jobs", "no navigation happened");

    // Retry on a dead job makes a new attempt.
    browser
        .goto(&app.url(&format!("/ui/jobs/{dead}")))
        .await
        .expect("the dead job");
    let retry = browser
        .find(Locator::Css("form[action$='/retry'] button"))
        .await
        .expect("Retry");
    retry.click().await.expect("retrying");
    let attempted = eventually(WITHIN, || async {
        job(&app, &alice, &dead).await["errors"]
            .as_array()
            .map_or(0, Vec::len)
            == 2
    })
    .await;
    assert!(attempted, "a second attempt ran");

    // Another user's job is not there for her.
    let bobs_page = format!("/ui/jobs/{}", bobs["id"].as_str().expect("id"));
    browser
        .goto(&app.url(&bobs_page))
        .await
        .expect("bob's job page");
    assert!(source(&browser).await.contains("not found"));

    // Sign out ends the session.
    browser.goto(&app.url("/ui")).await.expect("the overview");
    let sign_out = browser
        .find(Locator::Css("form[action='/ui/logout'] button"))
        .await;
    sign_out
        .expect("Sign out")
        .click()
        .await
        .expect("signing out");
    assert!(arrives(&browser, "/ui/login").await, "signed out");
    browser
        .goto(&app.url("/ui/jobs"))
        .await
        .expect("opening /ui/jobs");
    assert_eq!(path(&browser).await, "/ui/login");
    browser.close().await.expect("closing the browser");
}

#[sqlx::test]
async fn forms_without_the_csrf_token_are_refused_and_revoking_the_token_signs_out(pool: PgPool) {
    let app = app(pool.clone()).await;
    let (_, alice) = app.user_with_token("alice", Role::User).await;
    let dead = dead_job(&app, &alice).await;
    let cookie = session_cookie(&app, &alice).await;
    let client = client();
    let post = |form: Vec<(&'static str, &'static str)>| {
        client
            .post(app.url(&format!("/ui/jobs/{dead}/retry")))
            .header("cookie", &cookie)
            .form(&form)
            .send()
    };
    for form in [vec![], vec![("csrf", "forged")]] {
        let resp = post(form).await.expect("posted");
        assert_eq!(resp.status().as_u16(), 403);
        assert!(resp.text().await.expect("a page").contains("CSRF"));
    }
    assert_eq!(
        job(&app, &alice, &dead).await["state"],
        "dead",
        "nothing happened"
    );

    let bad = client
        .post(app.url("/ui/login"))
        .form(&[("token", "wh_not-a-token")])
        .send()
        .await
        .expect("posted");
    assert_eq!(bad.status().as_u16(), 401);

    let page = client
        .get(app.url("/ui"))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("got");
    assert_eq!(page.status().as_u16(), 200);
    sqlx::query("UPDATE api_tokens SET revoked_at = now()")
        .execute(&pool)
        .await
        .expect("revoked");
    let page = client
        .get(app.url("/ui"))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("got");
    assert_eq!(page.status().as_u16(), 303, "back to the sign-in page");
}

#[poem::handler]
fn always_500() -> poem::Response {
    poem::Response::builder()
        .status(poem::http::StatusCode::INTERNAL_SERVER_ERROR)
        .body("down")
}

#[sqlx::test]
async fn an_admin_runs_a_schedule_tests_a_channel_and_retries_a_dead_delivery(pool: PgPool) {
    let receiver =
        crate::helpers::Loopback::start(poem::Route::new().at("/hook", always_500)).await;
    let app = spawn_app_with(pool, |c| {
        c.egress.allow = vec!["127.0.0.1".into()];
        c.notify.retry_schedule = vec![Duration::from_millis(50)];
        c.notify.retry_jitter = 0.0;
    })
    .await;
    let admin = app.admin_token().await;
    let body =
        json!({"kind": "webhook", "name": "ops hook", "url": receiver.url("/hook"), "topics": []});
    let resp = app.post_json("/v1/channels", Some(&admin), &body).await;
    assert_eq!(resp.status().as_u16(), 201);
    let driver = Chromedriver::start().await;
    let browser = driver.browser().await;
    sign_in(&browser, &app, &admin).await;

    // Run the injector now with other arguments.
    browser
        .goto(&app.url("/ui/schedules"))
        .await
        .expect("schedules");
    let form = "form[action='/ui/schedules/inject/trigger']";
    let args = browser
        .find(Locator::Css(&format!("{form} input[name=args]")))
        .await;
    args.expect("an args field")
        .send_keys("{\"rows\": 3}")
        .await
        .expect("typing");
    let run = browser
        .find(Locator::Css(&format!("{form} button")))
        .await
        .expect("Run now");
    run.click().await.expect("running");
    assert!(arrives(&browser, "/ui/jobs/").await, "on the job's page");
    let page = source(&browser).await;
    assert!(
        page.contains("\"rows\": 3") && page.contains("inject"),
        "the job with its args"
    );

    // Send a test to the channel: its delivery fails twice and is dead; Retry brings it back.
    browser
        .goto(&app.url("/ui/channels"))
        .await
        .expect("channels");
    let test = browser
        .find(Locator::Css("form[action$='/test'] button"))
        .await
        .expect("a test");
    test.click().await.expect("sending a test");
    assert!(
        arrives(&browser, "/ui/deliveries").await,
        "on the deliveries"
    );
    let retry = "form[action$='/retry'] button";
    let dead = eventually(WITHIN, || async {
        browser.find(Locator::Css(retry)).await.is_ok()
    })
    .await;
    assert!(
        dead,
        "the dead delivery shows a Retry button without a reload"
    );
    let deliveries: Value = app.get_json("/v1/deliveries", &admin).await;
    let first = deliveries["items"][0].clone();
    assert_eq!(
        (&first["state"], &first["attempts"]),
        (&json!("dead"), &json!(2))
    );
    browser
        .find(Locator::Css(retry))
        .await
        .expect("Retry")
        .click()
        .await
        .expect("retrying");
    let again = eventually(WITHIN, || async { receiver.hits() >= 3 }).await;
    assert!(again, "the retried delivery was attempted again");
    browser.close().await.expect("closing the browser");
}
