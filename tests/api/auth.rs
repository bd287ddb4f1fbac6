//! Authentication and ownership: 401 without a valid token, 403 for admin-only operations,
//! 404 (never 403) for other users' objects, token revocation.

use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::PgPool;
use workhorse::domain::users::Role;

use crate::helpers::{assert_problem, spawn_app};

#[sqlx::test]
async fn me_without_a_token_returns_401_with_www_authenticate(pool: PgPool) {
    let app = spawn_app(pool).await;

    let resp = app.get("/v1/me", None).await;

    assert_eq!(
        resp.headers()
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap()),
        Some("Bearer")
    );
    assert_problem(resp, 401, "unauthorized").await;
}

#[sqlx::test]
async fn malformed_and_unknown_tokens_return_401(pool: PgPool) {
    let app = spawn_app(pool).await;
    let unknown = workhorse::domain::tokens::mint().secret;

    for token in ["garbage", unknown.as_str()] {
        let resp = app.get("/v1/me", Some(token)).await;
        assert_problem(resp, 401, "unauthorized").await;
    }
}

#[sqlx::test]
async fn me_returns_the_owner_of_the_token(pool: PgPool) {
    let app = spawn_app(pool).await;
    let (id, token) = app.user_with_token("ada", Role::User).await;

    let resp = app.get("/v1/me", Some(&token)).await;

    assert_eq!(resp.status(), StatusCode::OK);
    let me: Value = resp.json().await.unwrap();
    assert_eq!(me["id"], id.to_string());
    assert_eq!(me["name"], "ada");
    assert_eq!(me["role"], "user");
    assert_eq!(me["plan"], "free");
}

#[sqlx::test]
async fn admin_creates_a_user_who_then_gets_a_token_shown_once(pool: PgPool) {
    let app = spawn_app(pool).await;
    let admin = app.admin_token().await;

    let resp = app
        .post_json(
            "/v1/users",
            Some(&admin),
            &json!({"name": "bob", "email": "bob@example.com"}),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let location = resp.headers()["location"].to_str().unwrap().to_string();
    let user: Value = resp.json().await.unwrap();
    assert_eq!(
        location,
        format!("/v1/users/{}", user["id"].as_str().unwrap())
    );

    let resp = app
        .post_json(
            &format!("{location}/tokens"),
            Some(&admin),
            &json!({"name": "laptop"}),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let created: Value = resp.json().await.unwrap();
    let token = created["token"].as_str().unwrap().to_string();

    let me: Value = app.get("/v1/me", Some(&token)).await.json().await.unwrap();
    assert_eq!(me["id"], user["id"]);
    let listed: Value = app
        .get(&format!("{location}/tokens"), Some(&token))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert!(
        listed[0].get("token").is_none(),
        "a listed token must not show its secret"
    );
    assert!(token.starts_with(listed[0]["prefix"].as_str().unwrap()));
    assert!(
        listed[0]["last_used_at"].is_string(),
        "using a token records last_used_at"
    );
}

#[sqlx::test]
async fn a_duplicate_email_is_a_409(pool: PgPool) {
    let app = spawn_app(pool).await;
    let admin = app.admin_token().await;
    let body = json!({"name": "bob", "email": "Bob@Example.com"});
    assert_eq!(
        app.post_json("/v1/users", Some(&admin), &body)
            .await
            .status(),
        StatusCode::CREATED
    );

    let resp = app
        .post_json(
            "/v1/users",
            Some(&admin),
            &json!({"name": "b", "email": "bob@example.com"}),
        )
        .await;

    assert_problem(resp, 409, "conflict").await;
}

#[sqlx::test]
async fn a_user_cannot_create_or_list_users(pool: PgPool) {
    let app = spawn_app(pool).await;
    let (_, token) = app.user_with_token("ada", Role::User).await;

    let resp = app
        .post_json("/v1/users", Some(&token), &json!({"name": "eve"}))
        .await;
    assert_problem(resp, 403, "forbidden").await;
    let resp = app.get("/v1/users", Some(&token)).await;
    assert_problem(resp, 403, "forbidden").await;
}

#[sqlx::test]
async fn another_users_objects_are_404_not_403(pool: PgPool) {
    let app = spawn_app(pool).await;
    let (_, ada) = app.user_with_token("ada", Role::User).await;
    let (bob_id, bob) = app.user_with_token("bob", Role::User).await;
    let bob_tokens: Value = app
        .get(&format!("/v1/users/{bob_id}/tokens"), Some(&bob))
        .await
        .json()
        .await
        .unwrap();
    let bob_token_id = bob_tokens[0]["id"].as_str().unwrap().to_string();

    let reads = [
        app.get(&format!("/v1/users/{bob_id}"), Some(&ada)).await,
        app.get(&format!("/v1/users/{bob_id}/tokens"), Some(&ada))
            .await,
        app.post_json(
            &format!("/v1/users/{bob_id}/tokens"),
            Some(&ada),
            &json!({"name": "x"}),
        )
        .await,
        app.delete(&format!("/v1/tokens/{bob_token_id}"), Some(&ada))
            .await,
    ];

    for resp in reads {
        assert_problem(resp, 404, "not_found").await;
    }
    // Bob's token still works: ada's attempt changed nothing.
    assert_eq!(app.get("/v1/me", Some(&bob)).await.status(), StatusCode::OK);
}

#[sqlx::test]
async fn a_revoked_token_is_refused_and_revoking_is_idempotent(pool: PgPool) {
    let app = spawn_app(pool).await;
    let (user_id, token) = app.user_with_token("ada", Role::User).await;
    let listed: Value = app
        .get(&format!("/v1/users/{user_id}/tokens"), Some(&token))
        .await
        .json()
        .await
        .unwrap();
    let token_id = listed[0]["id"].as_str().unwrap().to_string();
    let admin = app.admin_token().await;

    let resp = app
        .delete(&format!("/v1/tokens/{token_id}"), Some(&token))
        .await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);

    assert_problem(app.get("/v1/me", Some(&token)).await, 401, "unauthorized").await;
    let again = app
        .delete(&format!("/v1/tokens/{token_id}"), Some(&admin))
        .await;
    assert_eq!(again.status(), StatusCode::NO_CONTENT);
    let listed: Value = app
        .get(&format!("/v1/users/{user_id}/tokens"), Some(&admin))
        .await
        .json()
        .await
        .unwrap();
    assert!(listed[0]["revoked_at"].is_string());
}

#[sqlx::test]
async fn admins_page_through_users_with_a_cursor(pool: PgPool) {
    let app = spawn_app(pool).await;
    let admin = app.admin_token().await;
    for name in ["a", "b", "c"] {
        app.user_with_token(name, Role::User).await;
    }

    let first: Value = app
        .get("/v1/users?limit=3", Some(&admin))
        .await
        .json()
        .await
        .unwrap();
    let cursor = first["next_cursor"]
        .as_str()
        .expect("a next page")
        .to_string();
    let second: Value = app
        .get(&format!("/v1/users?limit=3&cursor={cursor}"), Some(&admin))
        .await
        .json()
        .await
        .unwrap();

    assert_eq!(first["items"].as_array().unwrap().len(), 3);
    assert_eq!(second["items"].as_array().unwrap().len(), 1);
    assert!(second.get("next_cursor").is_none());
}
