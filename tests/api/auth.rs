//! Authentication and ownership: 401 without a valid token, 403 for admin-only operations,
//! 404 (never 403) for other users' objects, token revocation, and the token cache (changes
//! made anywhere apply at once; it serves only while it hears about them).

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::postgres::PgPoolOptions;
use sqlx::{Connection, PgConnection, PgPool};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;
use workhorse::api::token_cache::TokenCache;
use workhorse::domain::users::{Caller, Role};

use crate::helpers::{TestApp, assert_problem, spawn_app};

#[path = "../support/pg_proxy.rs"]
mod pg_proxy;

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

/// Whether `check` holds within `within`, polled every 20 ms.
async fn eventually<F: std::future::Future<Output = bool>>(
    within: Duration,
    mut check: impl FnMut() -> F,
) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    while !check().await {
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    true
}

/// Wait until the daemon's token cache listens (and so serves).
async fn token_cache_listens(pool: &PgPool) {
    let listening = || async {
        sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM pg_stat_activity \
             WHERE datname = current_database() AND query LIKE 'LISTEN%workhorse_auth%'",
        )
        .fetch_one(pool)
        .await
        .unwrap()
            > 0
    };
    assert!(eventually(Duration::from_secs(10), listening).await);
    // LISTEN has started; the cache turns on once it returns.
    tokio::time::sleep(Duration::from_millis(200)).await;
}

/// The status of `GET /v1/users`, which only admins may list.
async fn users_list_status(app: &TestApp, token: &str) -> StatusCode {
    app.get("/v1/users", Some(token)).await.status()
}

#[sqlx::test]
async fn a_token_revoked_or_a_role_changed_elsewhere_applies_at_once(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    let (ada, token) = app.user_with_token("ada", Role::User).await;
    token_cache_listens(&pool).await;
    // The first request fills the cache, the second is served from it.
    for _ in 0..2 {
        assert_eq!(users_list_status(&app, &token).await, StatusCode::FORBIDDEN);
    }
    // Another process (the CLI, another daemon) changes the role, then revokes the token.
    let mut other = PgConnection::connect_with(&pool.connect_options())
        .await
        .unwrap();

    sqlx::query("UPDATE users SET role = 'admin' WHERE id = $1")
        .bind(ada)
        .execute(&mut other)
        .await
        .unwrap();
    let admin = || async { users_list_status(&app, &token).await == StatusCode::OK };
    assert!(
        eventually(Duration::from_secs(1), admin).await,
        "the new role did not apply within a second"
    );
    sqlx::query("UPDATE api_tokens SET revoked_at = now() WHERE user_id = $1")
        .bind(ada)
        .execute(&mut other)
        .await
        .unwrap();
    let refused = || async { app.get("/v1/me", Some(&token)).await.status() == 401 };
    assert!(
        eventually(Duration::from_secs(1), refused).await,
        "the revoked token still worked after a second"
    );
}

#[sqlx::test]
async fn a_cached_caller_is_served_without_a_lookup_until_this_daemon_changes_it(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    let admin = app.admin_token().await;
    let (ada, token) = app.user_with_token("ada", Role::User).await;
    token_cache_listens(&pool).await;
    assert_eq!(users_list_status(&app, &token).await, StatusCode::FORBIDDEN);

    // Without the trigger's notice, a change made behind the daemon's back is not seen...
    sqlx::query("ALTER TABLE users DISABLE TRIGGER users_auth_changed")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("UPDATE users SET role = 'admin' WHERE id = $1")
        .bind(ada)
        .execute(&pool)
        .await
        .unwrap();
    for _ in 0..3 {
        assert_eq!(users_list_status(&app, &token).await, StatusCode::FORBIDDEN);
    }
    // ...but one made through this daemon's API applies to the next request.
    let path = format!("/v1/users/{ada}");
    let resp = app
        .patch_json(&path, &admin, &json!({"plan": "free"}))
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(users_list_status(&app, &token).await, StatusCode::OK);
}

#[sqlx::test]
async fn the_token_cache_serves_only_while_its_listener_is_connected(pool: PgPool) {
    let options = pool.connect_options();
    let upstream = tokio::net::lookup_host((options.get_host(), options.get_port()))
        .await
        .unwrap()
        .next()
        .unwrap();
    let proxy = pg_proxy::PgProxy::start(upstream).await;
    let through = PgPoolOptions::new()
        .connect_lazy_with((*options).clone().host("127.0.0.1").port(proxy.addr.port()));
    let cache = TokenCache::new();
    let stop = CancellationToken::new();
    tokio::spawn(cache.clone().listen(through, stop.clone()));
    let caller = Caller {
        user_id: Uuid::now_v7(),
        role: Role::User,
        token_id: Some(Uuid::now_v7()),
        plan: "free".into(),
    };
    let cached = |cache: &TokenCache| {
        cache.insert(cache.generation(), b"hash".to_vec(), caller.clone());
        cache.get(b"hash")
    };
    assert_eq!(cached(&cache), None, "no listener yet: nothing is served");
    let live = || async { cache.is_live() };
    assert!(eventually(Duration::from_secs(10), live).await);
    assert_eq!(cached(&cache), Some(caller.clone()));

    // A notice from any connection empties it.
    sqlx::query("SELECT pg_notify('workhorse_auth', '')")
        .execute(&pool)
        .await
        .unwrap();
    let emptied = || async { cache.get(b"hash").is_none() };
    assert!(eventually(Duration::from_secs(1), emptied).await);
    // A lookup that raced a clear is not inserted.
    let generation = cache.generation();
    cache.clear();
    cache.insert(generation, b"hash".to_vec(), caller.clone());
    assert_eq!(cache.get(b"hash"), None);

    // The connection is lost: nothing is served until the listener is back.
    assert_eq!(cached(&cache), Some(caller.clone()));
    proxy.down();
    let lost = || async { !cache.is_live() };
    assert!(eventually(Duration::from_secs(5), lost).await);
    assert_eq!(cached(&cache), None);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(cached(&cache), None);
    proxy.up();
    assert!(eventually(Duration::from_secs(15), live).await);
    assert_eq!(cache.get(b"hash"), None, "a reconnected cache starts empty");
    assert_eq!(cached(&cache), Some(caller.clone()));
    stop.cancel();
}
