//! What every body and answer carries on the wire, said once: JSON bodies are keyed
//! `application/json` (poem-openapi writes `application/json; charset=utf-8`, a parameter JSON
//! does not have, and which some generators' helper types do not recognise as JSON), and every
//! answer carries the `x-request-id` header the middleware sets (the problem's `request_id`).

use serde_json::{Map, Value, json};

const POEM_JSON: &str = "application/json; charset=utf-8";

/// Renames JSON media keys and declares `x-request-id` on every answer.
pub fn plain_json_and_request_ids(spec: &mut Value) {
    for operation in super::operations_mut(spec) {
        if let Some(content) = operation
            .pointer_mut("/requestBody/content")
            .and_then(Value::as_object_mut)
        {
            rename_json(content);
        }
        let responses = operation
            .get_mut("responses")
            .and_then(Value::as_object_mut);
        for response in responses.into_iter().flat_map(|r| r.values_mut()) {
            let Some(response) = response.as_object_mut() else {
                continue;
            };
            if let Some(content) = response.get_mut("content").and_then(Value::as_object_mut) {
                rename_json(content);
            }
            let headers = response
                .entry("headers")
                .or_insert_with(|| Value::Object(Map::new()));
            if let Some(headers) = headers.as_object_mut() {
                headers.insert("x-request-id".into(), request_id());
            }
        }
    }
}

fn rename_json(content: &mut Map<String, Value>) {
    if let Some(media) = content.remove(POEM_JSON) {
        content.insert("application/json".into(), media);
    }
}

fn request_id() -> Value {
    json!({
        "description": "The request's id: the caller's own `x-request-id` if it sent a usable \
            one, else a new one; also in problem bodies and in the daemon's logs.",
        "required": true,
        "schema": {"type": "string"},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_is_keyed_plainly_and_every_answer_has_a_request_id() {
        let mut spec = json!({"paths": {"/v1/jobs": {"post": {
            "requestBody": {"content": {POEM_JSON: {"schema": {}}}},
            "responses": {
                "202": {"content": {POEM_JSON: {"schema": {}}}},
                "422": {"content": {"application/problem+json": {"schema": {}}}},
            },
        }}}});

        plain_json_and_request_ids(&mut spec);

        let post = &spec["paths"]["/v1/jobs"]["post"];
        assert!(post["requestBody"]["content"]["application/json"].is_object());
        assert!(post["responses"]["202"]["content"]["application/json"].is_object());
        for status in ["202", "422"] {
            assert_eq!(
                post["responses"][status]["headers"]["x-request-id"]["required"],
                true
            );
        }
    }
}
