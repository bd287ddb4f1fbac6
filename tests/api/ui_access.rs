//! Who may see and do what on the dashboard, over plain HTTP: another user's summary and
//! document are not found, the users page and a quota reset need an admin and the CSRF token,
//! and every route of the dashboard's table is served, behind a session.

use std::time::Duration;

use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;
use workhorse::domain::users::Role;

use crate::helpers::{TestApp, echo_charges_scrape, eventually, spawn_app_with};
use crate::ui_support::{client, csrf, session_cookie};

const WITHIN: Duration = Duration::from_secs(20);

async fn app(pool: PgPool) -> TestApp {
    spawn_app_with(pool, |c| echo_charges_scrape(c, 100)).await
}

/// GET `path` with the session `cookie`: the status and the page.
async fn get(app: &TestApp, cookie: &str, path: &str) -> (u16, String) {
    let resp = client()
        .get(app.url(path))
        .header("cookie", cookie)
        .send()
        .await
        .expect("got");
    let status = resp.status().as_u16();
    (status, resp.text().await.expect("a page"))
}

/// A document of `token`'s and its summary by the built-in summariser, once made.
async fn summary(app: &TestApp, token: &str) -> (String, String) {
    let body = json!({"title": "Field notes", "text": "The river rose overnight. \
        The bridge held. Crews cleared the road by noon."});
    let resp = app.post_json("/v1/documents", Some(token), &body).await;
    assert_eq!(resp.status().as_u16(), 201);
    let document: Value = resp.json().await.expect("a document");
    let document = document["id"].as_str().expect("id").to_owned();
    let path = format!("/v1/documents/{document}/summaries");
    let resp = app.post_json(&path, Some(token), &json!({})).await;
    assert_eq!(resp.status().as_u16(), 202);
    let started: Value = resp.json().await.expect("a summary");
    let id = started["id"].as_str().expect("id").to_owned();
    let made = eventually(WITHIN, || async {
        let s = app.get_json(&format!("/v1/summaries/{id}"), token).await;
        s["status"] == "succeeded"
    })
    .await;
    assert!(made, "the summary was made");
    (document, id)
}

#[sqlx::test]
async fn another_users_summary_and_document_are_not_found(pool: PgPool) {
    let app = app(pool).await;
    let (_, alice) = app.user_with_token("alice", Role::User).await;
    let (_, bob) = app.user_with_token("bob", Role::User).await;
    let (document, id) = summary(&app, &alice).await;
    let admin = app.admin_token().await;
    let (alice, bob, admin) = (
        session_cookie(&app, &alice).await,
        session_cookie(&app, &bob).await,
        session_cookie(&app, &admin).await,
    );

    for cookie in [&alice, &admin] {
        let (status, page) = get(&app, cookie, &format!("/ui/summaries/{id}")).await;
        assert_eq!(status, 200);
        assert!(page.contains("Field notes") && page.contains("built-in"));
        let (_, list) = get(&app, cookie, "/ui/summaries").await;
        assert!(list.contains(&id), "the summary is listed");
    }
    let (status, page) = get(&app, &bob, &format!("/ui/summaries/{id}")).await;
    assert_eq!(status, 404);
    assert!(page.contains(&format!("summary {id} not found")));
    let (status, _) = get(&app, &bob, &format!("/ui/documents/{document}")).await;
    assert_eq!(status, 404);
    for list in ["/ui/summaries", "/ui/documents"] {
        let (status, page) = get(&app, &bob, list).await;
        assert_eq!(status, 200);
        assert!(!page.contains(&id) && !page.contains(&document), "{list}");
    }
}

#[sqlx::test]
async fn resetting_quotas_needs_an_admin_and_the_csrf_token(pool: PgPool) {
    let app = app(pool).await;
    let (alice_id, alice) = app.user_with_token("alice", Role::User).await;
    let job = app.enqueue(&alice, json!({"kind": "echo"})).await;
    assert!(job["id"].is_string(), "{job}");
    let used = || async { app.settled_quota(&alice, "scrape").await["used"].clone() };
    assert_eq!(used().await, 1);
    let admin = session_cookie(&app, &app.admin_token().await).await;
    let user = session_cookie(&app, &alice).await;
    let reset = app.url(&format!("/ui/users/{alice_id}/quotas/reset"));
    let post = |cookie: &str, form: Vec<(&str, String)>| {
        client()
            .post(&reset)
            .header("cookie", cookie)
            .form(&form)
            .send()
    };

    // An admin's form without the token, or with a forged one.
    for form in [vec![], vec![("csrf", "forged".to_string())]] {
        let resp = post(&admin, form).await.expect("posted");
        assert_eq!(resp.status().as_u16(), 403);
        assert!(resp.text().await.expect("a page").contains("CSRF"));
    }
    // A user, with her own valid token: the API's refusal.
    let token = csrf(&app, &user, "/ui").await;
    let resp = post(&user, vec![("csrf", token)]).await.expect("posted");
    assert_eq!(resp.status().as_u16(), 403);
    assert!(
        resp.text()
            .await
            .expect("a page")
            .contains("needs the admin role")
    );
    let (status, page) = get(&app, &user, "/ui/users").await;
    assert_eq!(status, 403);
    assert!(page.contains("needs the admin role"));
    assert_eq!(used().await, 1, "nothing was reset");

    let token = csrf(&app, &admin, "/ui/users").await;
    let resp = post(&admin, vec![("csrf", token)]).await.expect("posted");
    assert_eq!(resp.status().as_u16(), 303);
    assert_eq!(resp.headers()["location"], "/ui/users");
    assert_eq!(used().await, 0, "the admin reset her quota");
}

#[sqlx::test]
async fn every_route_of_the_table_is_served_behind_a_session(pool: PgPool) {
    let app = app(pool).await;
    let any = Uuid::now_v7().to_string();
    for (pattern, methods) in workhorse::ui::ROUTES {
        let path = pattern.replace("{id}", &any).replace("{name}", "inject");
        for method in *methods {
            let method = reqwest::Method::from_bytes(method.as_bytes()).expect("a method");
            let resp = client()
                .request(method.clone(), app.url(&path))
                .form(&[("token", "wh_not-a-token")])
                .send()
                .await
                .expect("answered");
            let status = resp.status().as_u16();
            let open = ["/ui/login", "/ui/assets/ui.js"].contains(pattern);
            let expected: &[u16] = match (open, *pattern) {
                (true, _) => &[200, 401],
                (false, "/ui/events") => &[401],
                (false, _) => &[303],
            };
            assert!(
                expected.contains(&status),
                "{method} {path}: {status}, expected one of {expected:?}"
            );
        }
    }
    let resp = client().get(app.url("/ui/nothing-here")).send().await;
    assert_eq!(resp.expect("answered").status().as_u16(), 404);
}
