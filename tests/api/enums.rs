//! Closed sets in the served `/openapi.json`: every field and parameter whose values are a
//! closed set lists exactly the domain's values as an `enum`, and the daemon refuses a value
//! the spec does not list with a 422 naming the value and the allowed ones.

use serde_json::{Value, json};
use sqlx::PgPool;
use workhorse::domain::jobs::JobState;
use workhorse::domain::topics::Topic;
use workhorse::domain::users::Role;
use workhorse::scrape::job::{ERROR_KINDS, FORMATS};
use workhorse::store::documents;
use workhorse::summarise::summariser::{LENGTHS, STYLES};
use workhorse::work::{channels, deliveries};

use crate::helpers::{TestApp, assert_problem, spawn_app};

async fn spec(app: &TestApp) -> Value {
    let resp = app.get("/openapi.json", None).await;
    assert_eq!(resp.status().as_u16(), 200);
    resp.json().await.expect("the spec is JSON")
}

/// The `enum` a schema lists: inline, behind a `$ref` (also one wrapped in `allOf` beside a
/// description), or of an array's items.
fn enum_of(spec: &Value, schema: &Value) -> Option<Vec<String>> {
    if let Some(values) = schema["enum"].as_array() {
        return Some(
            values
                .iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect(),
        );
    }
    if let Some(reference) = schema["$ref"].as_str() {
        let name = reference.strip_prefix("#/components/schemas/")?;
        return enum_of(spec, &spec["components"]["schemas"][name]);
    }
    if let Some(parts) = schema["allOf"].as_array() {
        return parts.iter().find_map(|part| enum_of(spec, part));
    }
    if schema["type"] == "array" {
        return enum_of(spec, &schema["items"]);
    }
    None
}

/// The schema of `property` in the component `object`.
fn property<'a>(spec: &'a Value, object: &str, property: &str) -> &'a Value {
    let schema = &spec["components"]["schemas"][object]["properties"][property];
    assert!(schema.is_object(), "{object}.{property} is not in the spec");
    schema
}

/// The schema of the query parameter `name` of `GET path`.
fn query_parameter<'a>(spec: &'a Value, path: &str, name: &str) -> &'a Value {
    spec["paths"][path]["get"]["parameters"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["name"] == name && p["in"] == "query"))
        .map(|p| &p["schema"])
        .unwrap_or_else(|| panic!("GET {path} has no query parameter {name}"))
}

fn owned(values: &[&str]) -> Vec<String> {
    values.iter().map(|v| v.to_string()).collect()
}

#[sqlx::test]
async fn every_closed_set_is_an_enum_of_exactly_the_domain_values(pool: PgPool) {
    let app = spawn_app(pool).await;
    let spec = spec(&app).await;
    let job_states = owned(&JobState::ALL.map(JobState::as_str));
    let work_statuses = owned(&JobState::work_statuses());
    let topics = owned(&Topic::names());
    let roles = owned(&Role::ALL.map(Role::as_str));

    let fields: Vec<(&str, &str, Vec<String>)> = vec![
        ("JobOut", "state", job_states.clone()),
        ("JobSummaryOut", "state", job_states.clone()),
        ("LastRunOut", "job_state", job_states.clone()),
        ("ChannelOut", "kind", owned(&channels::KINDS)),
        ("CreateWebhookChannel", "topics", topics.clone()),
        ("UpdateChannel", "topics", topics.clone()),
        ("ChannelOut", "topics", topics.clone()),
        ("DeliveryOut", "topic", topics),
        ("DeliveryOut", "state", owned(&deliveries::STATES)),
        ("CreateSummary", "style", owned(&STYLES)),
        ("CreateSummary", "length", owned(&LENGTHS)),
        ("SummaryOut", "status", work_statuses.clone()),
        ("CreateScrape", "formats", owned(&FORMATS)),
        ("ScrapeOut", "status", work_statuses),
        ("ScrapeOut", "error_kind", owned(&ERROR_KINDS)),
        ("CreateUser", "role", roles.clone()),
        ("UpdateUser", "role", roles.clone()),
        ("UserOut", "role", roles),
        ("DocumentOut", "source", owned(&documents::SOURCES)),
    ];
    for (object, field, expected) in fields {
        let listed = enum_of(&spec, property(&spec, object, field));
        assert_eq!(listed, Some(expected), "{object}.{field}");
    }
    // A body whose shape depends on its kind names exactly the kinds in its discriminator.
    let kinds_of = |object: &str| {
        let mapping = spec["components"]["schemas"][object]["discriminator"]["mapping"].as_object();
        mapping.map(|m| m.keys().cloned().collect::<Vec<_>>())
    };
    let mut channel_kinds = owned(&channels::KINDS);
    channel_kinds.sort();
    assert_eq!(kinds_of("CreateChannel"), Some(channel_kinds));
    assert_eq!(kinds_of("CreateJob"), Some(owned(&workhorse::jobs::NAMES)));

    let parameters = [
        ("/v1/jobs", "state", job_states),
        ("/v1/deliveries", "state", owned(&deliveries::STATES)),
    ];
    for (path, name, expected) in parameters {
        let listed = enum_of(&spec, query_parameter(&spec, path, name));
        assert_eq!(listed, Some(expected), "GET {path}?{name}");
    }
}

/// Asserts `resp` is a 422 whose detail names `value` and `allowed`, one of the listed values.
async fn assert_refused(resp: reqwest::Response, value: &str, allowed: &str) {
    let problem = assert_problem(resp, 422, "validation_failed").await;
    let detail = problem["detail"].as_str().expect("a detail");
    assert!(detail.contains(value), "{detail:?} does not name {value}");
    assert!(
        detail.contains(allowed),
        "{detail:?} does not list {allowed}"
    );
}

#[sqlx::test]
async fn an_unlisted_value_is_a_422_naming_it_and_the_listed_ones(pool: PgPool) {
    let app = spawn_app(pool).await;
    let admin = app.admin_token().await;
    let token = Some(admin.as_str());
    let doc = app
        .post_json(
            "/v1/documents",
            token,
            &json!({ "title": "t", "text": "Some text." }),
        )
        .await;
    assert_eq!(doc.status().as_u16(), 201);
    let doc: Value = doc.json().await.expect("a document");
    let summaries = format!(
        "/v1/documents/{}/summaries",
        doc["id"].as_str().expect("id")
    );

    let jobs = app.get("/v1/jobs?state=exploded", token).await;
    let deliveries = app.get("/v1/deliveries?state=lost", token).await;
    let kind = json!({ "kind": "pigeon", "name": "n" });
    let kind = app.post_json("/v1/channels", token, &kind).await;
    let topic = json!({ "kind": "fcm", "name": "n", "token": "t", "topics": ["gossip"] });
    let topic = app.post_json("/v1/channels", token, &topic).await;
    let style = app
        .post_json(&summaries, token, &json!({ "style": "haiku" }))
        .await;
    let length = app
        .post_json(&summaries, token, &json!({ "length": "epic" }))
        .await;
    let format = json!({ "url": "http://1.1.1.1/", "formats": ["pdf"] });
    let format = app.post_json("/v1/scrapes", token, &format).await;
    let role = json!({ "name": "n", "role": "root" });
    let role = app.post_json("/v1/users", token, &role).await;

    assert_refused(jobs, "exploded", "scheduled").await;
    assert_refused(deliveries, "lost", "delivered").await;
    assert_refused(kind, "pigeon", "webpush").await;
    assert_refused(topic, "gossip", "scrapes.finished").await;
    assert_refused(style, "haiku", "bullets").await;
    assert_refused(length, "epic", "medium").await;
    assert_refused(format, "pdf", "markdown").await;
    assert_refused(role, "root", "admin").await;
}

#[sqlx::test]
async fn a_closed_set_field_refuses_a_number(pool: PgPool) {
    let app = spawn_app(pool).await;
    let admin = app.admin_token().await;

    let resp = app
        .post_json(
            "/v1/channels",
            Some(&admin),
            &json!({ "kind": 5, "name": "n" }),
        )
        .await;

    let status = resp.status().as_u16();
    assert!((400..500).contains(&status), "answered {status}");
}
