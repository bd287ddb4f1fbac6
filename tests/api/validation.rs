//! Bodies and parameters that do not fit the spec are refused naming the field: a JSON pointer
//! (or the parameter's name) in the problem's `errors` member and in its `detail`, and no
//! number or boolean is quietly accepted as a string.

use reqwest::Method;
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::helpers::{assert_problem, spawn_app};

/// The problem's `errors` as (pointer or parameter, detail) pairs.
fn errors(problem: &Value) -> Vec<(String, String)> {
    problem["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("no errors member: {problem}"))
        .iter()
        .map(|e| {
            let at = e["pointer"].as_str().or(e["parameter"].as_str());
            let detail = e["detail"].as_str().unwrap_or_default();
            (at.unwrap_or_default().to_string(), detail.to_string())
        })
        .collect()
}

fn assert_names(problem: &Value, at: &str) {
    let errors = errors(problem);
    let error = errors.iter().find(|(p, _)| p == at);
    assert!(
        error.is_some_and(|(_, d)| d.contains(at)),
        "{at} in {problem}"
    );
    assert!(
        problem["detail"].as_str().unwrap().contains(at),
        "{problem}"
    );
}

#[sqlx::test]
async fn a_missing_required_field_is_a_422_naming_it(pool: PgPool) {
    let app = spawn_app(pool).await;
    let token = app.admin_token().await;

    for body in [json!({"email": "a@b.co"}), json!({"name": null})] {
        let resp = app.post_json("/v1/users", Some(&token), &body).await;

        let problem = assert_problem(resp, 422, "validation_failed").await;
        assert_names(&problem, "/name");
    }
}

#[sqlx::test]
async fn a_number_or_boolean_for_a_string_field_is_refused_not_coerced(pool: PgPool) {
    // Regression: poem-openapi turned `{"name": 5}` into the name "5".
    let app = spawn_app(pool.clone()).await;
    let token = app.admin_token().await;

    for body in [json!({"name": 5}), json!({"name": true})] {
        let resp = app.post_json("/v1/users", Some(&token), &body).await;

        let problem = assert_problem(resp, 422, "validation_failed").await;
        assert_names(&problem, "/name");
    }
    let users: i64 = sqlx::query_scalar("SELECT count(*) FROM users WHERE name IN ('5', 'true')")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(users, 0);
}

#[sqlx::test]
async fn a_nested_field_is_named_by_its_full_pointer(pool: PgPool) {
    let app = spawn_app(pool).await;
    let token = app.admin_token().await;
    let body = json!({
        "kind": "webpush",
        "name": "phone",
        "subscription": {"endpoint": "https://push.example/x", "keys": {"p256dh": 7}},
    });

    let resp = app.post_json("/v1/channels", Some(&token), &body).await;

    let problem = assert_problem(resp, 422, "validation_failed").await;
    let found: Vec<String> = errors(&problem).into_iter().map(|(p, _)| p).collect();
    assert_eq!(
        found,
        ["/subscription/keys/auth", "/subscription/keys/p256dh"],
        "{problem}"
    );
    assert_names(&problem, "/subscription/keys/auth");
}

#[sqlx::test]
async fn a_wrong_type_or_out_of_range_integer_is_named(pool: PgPool) {
    let app = spawn_app(pool).await;
    let token = app.admin_token().await;

    for body in [
        json!({"kind": "echo", "priority": "high"}),
        json!({"kind": "echo", "priority": 40000}),
        json!({"kind": "echo", "priority": 1.5}),
    ] {
        let resp = app.post_json("/v1/jobs", Some(&token), &body).await;

        let problem = assert_problem(resp, 422, "validation_failed").await;
        assert_names(&problem, "/priority");
    }
}

#[sqlx::test]
async fn a_body_of_the_wrong_shape_is_named_as_the_whole_body(pool: PgPool) {
    let app = spawn_app(pool).await;
    let token = app.admin_token().await;

    let resp = app
        .post_json("/v1/users", Some(&token), &json!([1, 2]))
        .await;

    let problem = assert_problem(resp, 422, "validation_failed").await;
    assert_eq!(errors(&problem)[0].0, "", "{problem}");
}

#[sqlx::test]
async fn a_bad_query_or_path_parameter_is_named(pool: PgPool) {
    let app = spawn_app(pool).await;
    let token = app.admin_token().await;

    for (path, name) in [
        ("/v1/users?limit=abc", "limit"),
        ("/v1/users?limit=100000", "limit"),
        ("/v1/users/not-a-uuid", "id"),
    ] {
        let resp = app.get(path, Some(&token)).await;

        let problem = assert_problem(resp, 400, "invalid_request").await;
        assert_eq!(errors(&problem)[0].0, name, "{problem}");
        assert!(
            problem["detail"].as_str().unwrap().contains(name),
            "{problem}"
        );
    }
}

#[sqlx::test]
async fn unparseable_json_stays_a_400_with_the_position(pool: PgPool) {
    let app = spawn_app(pool).await;
    let token = app.admin_token().await;

    let resp = app
        .request(Method::POST, "/v1/users", Some(&token))
        .header("content-type", "application/json")
        .body(r#"{"name": "a",}"#)
        .send()
        .await
        .unwrap();

    let problem = assert_problem(resp, 400, "invalid_request").await;
    assert!(
        problem["detail"].as_str().unwrap().contains("column"),
        "{problem}"
    );
}

#[sqlx::test]
async fn without_credentials_a_bad_body_is_still_a_401(pool: PgPool) {
    let app = spawn_app(pool).await;

    let resp = app.post_json("/v1/users", None, &json!({"name": 5})).await;

    assert_problem(resp, 401, "unauthorized").await;
}

#[sqlx::test]
async fn with_a_bad_token_a_bad_body_is_a_401_and_runs_nothing(pool: PgPool) {
    let app = spawn_app(pool).await;
    let token = app.admin_token().await;

    for (path, body) in [
        ("/v1/users", json!({"name": 5})),
        ("/v1/jobs", json!({})),
        ("/v1/schedules/quota-reset/trigger", json!({"args": 5})),
    ] {
        let resp = app.post_json(path, Some("wh_not_a_token"), &body).await;
        assert_problem(resp, 401, "unauthorized").await;
    }
    // With a good token the same body is still the 422 naming the field.
    let resp = app
        .post_json("/v1/users", Some(&token), &json!({"name": 5}))
        .await;
    let problem = assert_problem(resp, 422, "validation_failed").await;
    assert_eq!(errors(&problem)[0].0, "/name", "{problem}");
    let users: i64 = sqlx::query_scalar("SELECT count(*) FROM users")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(users, 1, "only the admin exists");
}

#[sqlx::test]
async fn a_value_refused_by_the_rules_names_its_field_or_parameter(pool: PgPool) {
    let app = spawn_app(pool).await;
    let token = app.admin_token().await;

    let resp = app
        .post_json(
            "/v1/users",
            Some(&token),
            &json!({"name": "a", "role": "root"}),
        )
        .await;
    let problem = assert_problem(resp, 422, "validation_failed").await;
    assert_eq!(errors(&problem)[0].0, "/role", "{problem}");

    for (body, pointer) in [
        (json!({"name": "a", "email": "not-an-email"}), "/email"),
        (json!({"name": "  "}), "/name"),
    ] {
        let resp = app.post_json("/v1/users", Some(&token), &body).await;
        let problem = assert_problem(resp, 422, "validation_failed").await;
        assert_eq!(errors(&problem)[0].0, pointer, "{problem}");
    }

    let resp = app
        .get("/v1/records/stats?window=forever", Some(&token))
        .await;
    // Outside the spec's pattern: a malformed parameter, named.
    let problem = assert_problem(resp, 400, "invalid_request").await;
    assert_eq!(errors(&problem)[0].0, "window", "{problem}");

    let resp = app.get("/v1/deliveries?state=lost", Some(&token)).await;
    let problem = assert_problem(resp, 422, "validation_failed").await;
    assert_eq!(errors(&problem)[0].0, "state", "{problem}");
}
