//! The error statuses each operation can answer, so a client generator types only those and a
//! fuzzer can tell an undocumented answer from a documented one.
//!
//! poem-openapi lists every variant of [`ApiError`](crate::api::error::ApiError) on every
//! operation. Most statuses follow from the operation's shape, read from the document itself:
//! 401 and 429 (the rate limit) where a token is needed; 400 and 422 where there are parameters
//! or a body; 404 where the path names a resource; 413 and 415 where there is a body; 500 and
//! 503 (no database connection) everywhere but the liveness probe. 403 and 409 come from rules
//! in `work::` (admin only, plan bounds, quotas, conflicting state, a reused idempotency key)
//! and are listed by operation in [`EXTRA`]; a unit test keeps that list to real operations,
//! and the schemathesis run in the test suite fails on any status an operation answers that is
//! not listed.

use serde_json::{Map, Value, json};

/// Every status [`ApiError`](crate::api::error::ApiError) can answer, plus 415 (poem's own
/// answer to a body that is not JSON).
const ERROR_STATUSES: [&str; 11] = [
    "400", "401", "403", "404", "409", "413", "415", "422", "429", "500", "503",
];

/// Operations that can answer 403 (admin only, a plan bound, an action the plan does not
/// include) or 409 (the object's state, a taken e-mail, an idempotency key reused with another
/// request), beyond what their shape says.
pub const EXTRA: &[(&str, &[&str])] = &[
    ("channels_create", &["403"]),
    ("channels_test", &["409"]),
    ("crawls_cancel", &["409"]),
    ("crawls_create", &["403", "409"]),
    ("deliveries_retry", &["409"]),
    ("documents_create", &["403", "409"]),
    ("events_stream", &["403"]),
    ("events_tickets_create", &["403"]),
    ("jobs_cancel", &["409"]),
    ("jobs_create", &["403", "409"]),
    ("jobs_retry", &["403", "409"]),
    ("schedules_trigger", &["403"]),
    ("scrape_batches_create", &["403", "409"]),
    ("scrapes_action_screenshot_get", &["409"]),
    ("scrapes_create", &["403", "409"]),
    ("scrapes_screenshot_get", &["409"]),
    ("summaries_create", &["403", "409"]),
    ("tokens_create", &["403"]),
    ("users_create", &["403", "409"]),
    ("users_list", &["403"]),
    ("users_quotas_reset", &["403"]),
    ("users_update", &["403", "409"]),
];

/// Removes from each operation's responses the error statuses it cannot answer, and adds 415
/// (with the problem body) to each operation that takes a body.
pub fn narrow(spec: &mut Value) {
    let problem = spec
        .pointer("/components/schemas/Problem")
        .is_some()
        .then(|| json!({"$ref": "#/components/schemas/Problem"}));
    let Some(paths) = spec.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for (path, operations) in paths.iter_mut() {
        let Some(operations) = operations.as_object_mut() else {
            continue;
        };
        for operation in operations.values_mut() {
            let Some(operation) = operation.as_object_mut() else {
                continue;
            };
            let allowed = allowed(path, operation);
            let has_body = operation.contains_key("requestBody");
            let Some(responses) = operation
                .get_mut("responses")
                .and_then(Value::as_object_mut)
            else {
                continue;
            };
            responses.retain(|status, _| {
                !ERROR_STATUSES.contains(&status.as_str()) || allowed.contains(&status.as_str())
            });
            if has_body && let Some(problem) = &problem {
                responses.insert("415".into(), unsupported_media_type(problem));
            }
        }
    }
}

/// The error statuses `operation` at `path` can answer.
fn allowed(path: &str, operation: &Map<String, Value>) -> Vec<&'static str> {
    let id = operation.get("operationId").and_then(Value::as_str);
    if id == Some("liveness_get") {
        return Vec::new();
    }
    let secured = operation
        .get("security")
        .and_then(Value::as_array)
        .is_some_and(|s| !s.is_empty());
    let has_body = operation.contains_key("requestBody");
    let parameters = operation
        .get("parameters")
        .and_then(Value::as_array)
        .is_some_and(|p| !p.is_empty());
    let mut out = vec!["500", "503"];
    if secured {
        out.extend(["401", "429"]);
    }
    if parameters || has_body {
        out.extend(["400", "422"]);
    }
    if path.contains('{') {
        out.push("404");
    }
    if has_body {
        out.extend(["413", "415"]);
    }
    let extra = EXTRA.iter().find(|(name, _)| Some(*name) == id);
    out.extend(extra.into_iter().flat_map(|(_, statuses)| statuses.iter()));
    out
}

fn unsupported_media_type(problem: &Value) -> Value {
    json!({
        "description": "The body is not JSON: send it with `Content-Type: application/json`.",
        "content": {"application/problem+json": {"schema": problem}},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_errors() -> Value {
        let mut responses = Map::new();
        responses.insert("200".into(), json!({"description": "ok"}));
        for status in ERROR_STATUSES.iter().filter(|s| **s != "415") {
            responses.insert((*status).into(), json!({"description": status}));
        }
        Value::Object(responses)
    }

    fn statuses(spec: &Value, path: &str, method: &str) -> Vec<String> {
        let responses = &spec["paths"][path][method]["responses"];
        let mut keys: Vec<String> = responses.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        keys
    }

    #[test]
    fn a_read_of_one_resource_lists_only_what_it_can_answer() {
        let mut spec = json!({"paths": {"/v1/jobs/{id}": {"get": {
            "operationId": "jobs_get",
            "security": [{"BearerAuth": []}],
            "parameters": [{"name": "id", "in": "path"}],
            "responses": all_errors(),
        }}}});

        narrow(&mut spec);

        assert_eq!(
            statuses(&spec, "/v1/jobs/{id}", "get"),
            ["200", "400", "401", "404", "422", "429", "500", "503"]
        );
    }

    #[test]
    fn a_create_with_a_body_gets_415_and_its_rules_statuses() {
        let mut spec = json!({
            "components": {"schemas": {"Problem": {"type": "object"}}},
            "paths": {"/v1/jobs": {"post": {
                "operationId": "jobs_create",
                "security": [{"BearerAuth": []}],
                "requestBody": {"content": {}},
                "responses": all_errors(),
            }}},
        });

        narrow(&mut spec);

        assert_eq!(
            statuses(&spec, "/v1/jobs", "post"),
            [
                "200", "400", "401", "403", "409", "413", "415", "422", "429", "500", "503"
            ]
        );
        assert_eq!(
            spec["paths"]["/v1/jobs"]["post"]["responses"]["415"]["content"]["application/problem+json"]
                ["schema"]["$ref"],
            "#/components/schemas/Problem"
        );
    }

    #[test]
    fn every_operation_named_in_extra_is_served() {
        let spec: Value = serde_json::from_str(&crate::api::spec_json()).unwrap();
        let mut served = Vec::new();
        for operations in spec["paths"].as_object().unwrap().values() {
            for operation in operations.as_object().unwrap().values() {
                served.extend(operation["operationId"].as_str().map(str::to_string));
            }
        }
        for (name, _) in EXTRA {
            assert!(
                served.iter().any(|s| s == name),
                "{name} is not an operation"
            );
        }
    }
}
