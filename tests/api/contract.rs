//! The contract client generators rely on, read from the served `/openapi.json`: a stable,
//! unique `resource_verb` operationId and one declared tag per operation, and a 405 that names
//! in `Allow` exactly the methods the spec gives its path.

use std::collections::{BTreeSet, HashSet};

use reqwest::Method;
use serde_json::Value;
use sqlx::PgPool;

use crate::helpers::{TestApp, assert_problem, spawn_app};

/// Methods an OpenAPI path item can hold, in the order `Allow` lists them.
const METHODS: [&str; 8] = [
    "get", "head", "post", "put", "patch", "delete", "options", "trace",
];

async fn spec(app: &TestApp) -> Value {
    let resp = app.get("/openapi.json", None).await;
    assert_eq!(resp.status().as_u16(), 200);
    resp.json().await.expect("the spec is JSON")
}

/// Every (path, method, operation) of the spec.
fn operations(spec: &Value) -> Vec<(String, String, Value)> {
    let paths = spec["paths"].as_object().expect("paths is an object");
    let mut all = Vec::new();
    for (path, item) in paths {
        for method in METHODS {
            if let Some(operation) = item.get(method) {
                all.push((path.clone(), method.to_string(), operation.clone()));
            }
        }
    }
    all
}

/// `^[a-z]+(_[a-z]+)+$`, without a regex engine.
fn is_resource_verb(id: &str) -> bool {
    let parts: Vec<&str> = id.split('_').collect();
    parts.len() >= 2
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
}

/// The `Allow` value the daemon should send for a path item: its methods upper-cased, with
/// `HEAD` beside `GET` (poem answers `HEAD` wherever it serves `GET`).
fn expected_allow(item: &Value) -> String {
    let served = |m: &str| item.get(m).is_some();
    METHODS
        .into_iter()
        .filter(|m| served(m) || (*m == "head" && served("get")))
        .map(str::to_ascii_uppercase)
        .collect::<Vec<_>>()
        .join(", ")
}

/// A concrete path for a template; routing answers 405 before any parameter is parsed.
fn concrete(template: &str) -> String {
    template
        .split('/')
        .map(|segment| match segment.starts_with('{') {
            true => "0193a000-0000-7000-8000-000000000000",
            false => segment,
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[test]
fn resource_verb_accepts_only_lowercase_words_joined_by_underscores() {
    assert!(is_resource_verb("jobs_list"));
    assert!(is_resource_verb("users_quotas_reset"));
    for bad in [
        "jobs",
        "jobsList",
        "jobs__list",
        "_jobs_list",
        "jobs_list_",
        "jobs-list",
    ] {
        assert!(!is_resource_verb(bad), "{bad}");
    }
}

#[sqlx::test]
async fn every_operation_has_a_unique_resource_verb_operation_id(pool: PgPool) {
    let app = spawn_app(pool).await;
    let spec = spec(&app).await;

    let mut seen = HashSet::new();
    let operations = operations(&spec);
    for (path, method, operation) in &operations {
        let id = operation["operationId"]
            .as_str()
            .unwrap_or_else(|| panic!("{method} {path} has no operationId"));
        assert!(
            is_resource_verb(id),
            "{method} {path}: {id:?} is not resource_verb"
        );
        assert!(seen.insert(id.to_string()), "{id} is used twice");
    }
    assert!(operations.len() >= 40, "{} operations", operations.len());
    for id in [
        "jobs_list",
        "jobs_cancel",
        "scrapes_create",
        "users_quotas_reset",
    ] {
        assert!(seen.contains(id), "{id} is missing");
    }
}

#[sqlx::test]
async fn every_operation_has_exactly_one_tag_declared_at_the_top(pool: PgPool) {
    let app = spawn_app(pool).await;
    let spec = spec(&app).await;
    let declared: BTreeSet<&str> = spec["tags"]
        .as_array()
        .expect("top-level tags")
        .iter()
        .filter_map(|tag| tag["name"].as_str())
        .collect();

    let mut used = BTreeSet::new();
    for (path, method, operation) in operations(&spec) {
        let tags = operation["tags"].as_array().cloned().unwrap_or_default();
        assert_eq!(tags.len(), 1, "{method} {path} has tags {tags:?}");
        let tag = tags[0].as_str().expect("a tag is a string").to_string();
        assert!(
            declared.contains(tag.as_str()),
            "{method} {path}: {tag} undeclared"
        );
        used.insert(tag);
    }
    // Every declared tag groups something.
    assert_eq!(
        used.iter().map(String::as_str).collect::<BTreeSet<_>>(),
        declared
    );
}

#[sqlx::test]
async fn a_wrong_method_answers_405_with_allow_listing_the_spec_methods(pool: PgPool) {
    let app = spawn_app(pool).await;
    let spec = spec(&app).await;
    let paths = spec["paths"].as_object().expect("paths");

    // PUT is served nowhere, so every path answers it with 405; a few other wrong methods too,
    // among them paths with a parameter.
    let mut cases: Vec<(Method, &str)> = paths.keys().map(|p| (Method::PUT, p.as_str())).collect();
    cases.extend([
        (Method::DELETE, "/v1/jobs"),
        (Method::DELETE, "/v1/jobs/{id}"),
        (Method::GET, "/v1/jobs/{id}/cancel"),
        (Method::PATCH, "/v1/users/{id}/tokens"),
        (Method::POST, "/healthz"),
    ]);
    for (method, template) in cases {
        let item = &spec["paths"][template];
        assert!(item.is_object(), "{template} is not in the spec");
        let resp = app
            .request(method.clone(), &concrete(template), None)
            .send()
            .await
            .expect("request sent");
        let allow = resp
            .headers()
            .get("allow")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);

        assert_eq!(
            allow.as_deref(),
            Some(expected_allow(item).as_str()),
            "{method} {template}"
        );
        assert_problem(resp, 405, "method_not_allowed").await;
    }
}

#[sqlx::test]
async fn the_spec_and_metrics_are_read_only(pool: PgPool) {
    let app = spawn_app(pool).await;
    let admin = app.admin_token().await;
    for (method, path) in [
        (Method::POST, "/openapi.json"),
        (Method::DELETE, "/openapi.json"),
        (Method::POST, "/metrics"),
        (Method::PUT, "/metrics"),
    ] {
        let resp = app
            .request(method.clone(), path, Some(&admin))
            .send()
            .await
            .expect("request sent");
        let allow = resp.headers().get("allow").cloned();
        assert_eq!(
            allow.as_ref().and_then(|v| v.to_str().ok()),
            Some("GET, HEAD"),
            "{method} {path}"
        );
        assert_problem(resp, 405, "method_not_allowed").await;
    }
    for path in ["/openapi.json", "/metrics"] {
        for method in [Method::GET, Method::HEAD] {
            let resp = app
                .request(method.clone(), path, Some(&admin))
                .send()
                .await
                .expect("request sent");
            assert_eq!(resp.status().as_u16(), 200, "{method} {path}");
        }
    }
}

#[sqlx::test]
async fn every_method_allow_lists_is_routed(pool: PgPool) {
    let app = spawn_app(pool).await;
    let spec = spec(&app).await;

    // Unauthenticated, so nothing changes; what matters is that routing accepts the method.
    for (template, item) in spec["paths"].as_object().expect("paths") {
        for method in expected_allow(item).split(", ") {
            let method = Method::from_bytes(method.as_bytes()).expect("a method");
            let resp = app
                .request(method.clone(), &concrete(template), None)
                .send()
                .await
                .expect("request sent");
            assert_ne!(resp.status().as_u16(), 405, "{method} {template}");
        }
    }
}
