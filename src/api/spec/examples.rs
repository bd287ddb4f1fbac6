//! A request example for every operation that takes a body, so Swagger UI's "Try it out" sends
//! a request the server accepts with one click after *Authorize*, and generated clients' docs
//! show one. A unit test checks each example against its own schema with the same body check
//! the server runs, and that no body goes without one.

use serde_json::{Value, json};

/// The request body example of each operation that takes one.
fn example(operation_id: &str) -> Option<Value> {
    Some(match operation_id {
        "users_create" => json!({"name": "Ada Lovelace", "email": "ada@example.com",
                                 "role": "user", "plan": "free", "timezone": "Europe/London"}),
        "users_update" => json!({"plan": "free", "timezone": null}),
        "tokens_create" => json!({"name": "laptop"}),
        "jobs_create" => json!({"kind": "echo", "args": {"sleep_ms": 100, "message": "hello"},
                                "priority": 0, "max_attempts": 3}),
        "schedules_trigger" => json!({}),
        "scrapes_create" => json!({"url": "https://example.com/", "formats": ["markdown"],
                                   "screenshot": true}),
        "crawls_create" => json!({"url": "https://example.com/", "limit": 10,
                                  "include_paths": ["^/docs/"],
                                  "scrape_options": {"formats": ["markdown"]}}),
        "scrape_batches_create" => json!({"urls": ["https://example.com/", "https://example.org/"],
                                          "scrape_options": {"formats": ["markdown", "links"]}}),
        "map_create" => json!({"url": "https://example.com/", "limit": 100}),
        "documents_create" => json!({"title": "Release notes",
                                     "text": "Workhorse runs jobs, schedules, scrapes and \
                                              summaries in one daemon."}),
        "summaries_create" => json!({"style": "paragraph", "length": "short", "language": "en"}),
        "channels_create" => json!({"kind": "webhook", "name": "ops hook",
                                    "url": "https://hooks.example.com/workhorse",
                                    "topics": ["jobs.failed"]}),
        "channels_update" => json!({"enabled": false}),
        _ => return None,
    })
}

/// Puts each operation's example beside its JSON request body schema.
pub fn add_request_examples(spec: &mut Value) {
    for operation in super::operations_mut(spec) {
        let id = operation.get("operationId").and_then(Value::as_str);
        let Some(example) = id.and_then(example) else {
            continue;
        };
        let content = operation.pointer_mut("/requestBody/content");
        for (media, body) in content.and_then(Value::as_object_mut).into_iter().flatten() {
            if media.starts_with("application/json") {
                body["example"] = example.clone();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::api::validation::BodySchemas;

    use super::*;

    #[test]
    fn every_body_has_an_example_the_server_accepts() {
        let spec: Value = serde_json::from_str(&crate::api::spec_json()).unwrap();
        let bodies = BodySchemas::from_spec(&spec);
        let mut checked = 0;
        for (path, operations) in spec["paths"].as_object().unwrap() {
            for (method, operation) in operations.as_object().unwrap() {
                let Some(content) = operation.pointer("/requestBody/content") else {
                    continue;
                };
                let id = operation["operationId"].as_str().unwrap();
                for (media, body) in content.as_object().unwrap() {
                    let example = body.get("example");
                    assert!(example.is_some(), "{id} ({media}) has no example");
                    let method = method.to_ascii_uppercase();
                    let errors = bodies.check(&method, path, example.unwrap());
                    assert!(errors.is_empty(), "{id}'s example: {errors:?}");
                    checked += 1;
                }
            }
        }
        assert!(checked >= 10, "only {checked} bodies");
    }
}
