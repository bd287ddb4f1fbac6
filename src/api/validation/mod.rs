//! Request bodies checked against their operation's schema in the served OpenAPI document before
//! poem-openapi parses them, so a wrong type or a missing field is refused with 422 naming the
//! field by JSON pointer (`/subscription/keys/auth`), and no number or boolean is quietly turned
//! into a string.
//!
//! Why a walk over the spec rather than poem-openapi's own parsing: its `ParseError` drops the
//! field's name on the way up (`Expected input type "string", found null`), and its `String`
//! accepts JSON numbers and booleans by design. The served document already holds every
//! operation's body schema, so one table read from it at start-up covers every JSON body in the
//! API, with no per-handler code and nothing to keep in step by hand. The walk checks only what
//! poem-openapi would otherwise coerce or refuse without a name: types, required fields, fields
//! a closed object (`additionalProperties: false`, see `spec::strict`) does not declare, `enum`
//! values, integer ranges, string lengths and patterns, and the formats poem-openapi parses
//! strictly (`date-time`, `uuid`). Rules across fields or against stored data stay with
//! `work::`.

use std::collections::HashMap;

use poem::Request;
use poem::http::StatusCode;
use poem::http::header::{AUTHORIZATION, CONTENT_TYPE};
use regex::Regex;
use serde_json::Value;

use super::error::{FieldError, Problem};

mod walk;

use walk::find_nul;
pub use walk::integer_range;

/// The JSON body schema of each operation, keyed by upper-case method and path template.
#[derive(Debug, Default)]
pub struct BodySchemas {
    bodies: HashMap<(String, String), Value>,
    schemas: serde_json::Map<String, Value>,
    /// Every `pattern` in the document, compiled once.
    patterns: HashMap<String, Regex>,
}

impl BodySchemas {
    /// The table from an OpenAPI document: every operation with a JSON request body.
    pub fn from_spec(spec: &Value) -> Self {
        let mut bodies = HashMap::new();
        let paths = spec.get("paths").and_then(Value::as_object);
        for (path, operations) in paths.into_iter().flatten() {
            for (method, operation) in operations.as_object().into_iter().flatten() {
                let content = operation
                    .pointer("/requestBody/content")
                    .and_then(Value::as_object);
                let json = content
                    .into_iter()
                    .flatten()
                    .find(|(media, _)| is_json(media))
                    .and_then(|(_, media)| media.get("schema"));
                if let Some(schema) = json {
                    bodies.insert((method.to_ascii_uppercase(), path.clone()), schema.clone());
                }
            }
        }
        let schemas = spec
            .pointer("/components/schemas")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let mut patterns = HashMap::new();
        collect_patterns(spec, &mut patterns);
        Self {
            bodies,
            schemas,
            patterns,
        }
    }

    /// Whether `method` on `template` takes a JSON body.
    pub fn has_body(&self, method: &str, template: &str) -> bool {
        self.bodies
            .contains_key(&(method.to_string(), template.to_string()))
    }

    /// What is wrong with `body` for `method` on `template`: empty when it matches (or the
    /// operation takes no JSON body).
    pub fn check(&self, method: &str, template: &str, body: &Value) -> Vec<FieldError> {
        let mut errors = Vec::new();
        if let Some(schema) = self.bodies.get(&(method.to_string(), template.to_string())) {
            self.walk(schema, body, "", 0, &mut errors);
            if errors.is_empty() {
                find_nul(body, "", 0, &mut errors);
            }
        }
        errors
    }

    /// What is wrong with `value` for `schema` (a schema of the same document).
    pub fn check_against(&self, schema: &Value, value: &Value) -> Vec<FieldError> {
        let mut errors = Vec::new();
        self.walk(schema, value, "", 0, &mut errors);
        errors
    }

    fn resolve<'a>(&'a self, schema: &'a Value) -> &'a Value {
        match schema.get("$ref").and_then(Value::as_str) {
            Some(reference) => reference
                .strip_prefix("#/components/schemas/")
                .and_then(|name| self.schemas.get(name))
                .unwrap_or(&Value::Null),
            None => schema,
        }
    }
}

/// Compiles every `pattern` string in `value` into `out` (a pattern that does not compile is
/// left to poem-openapi, which compiled it first).
fn collect_patterns(value: &Value, out: &mut HashMap<String, Regex>) {
    match value {
        Value::Object(map) => {
            if let Some(pattern) = map.get("pattern").and_then(Value::as_str)
                && !out.contains_key(pattern)
                && let Ok(regex) = Regex::new(pattern)
            {
                out.insert(pattern.to_string(), regex);
            }
            map.values().for_each(|v| collect_patterns(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| collect_patterns(v, out)),
        _ => {}
    }
}

/// The 422 for a request whose JSON body does not match its operation's schema, or `None` to
/// let poem-openapi parse it. The body must already be in memory (the outer layer reads it up
/// to the size limit). Left to poem-openapi, so its answers stay as they were: a body that is
/// not JSON at all (400 with the position), a content type that is not JSON (415), and a
/// request with no credentials to an operation that needs them (401 comes first).
pub async fn refuse_body(
    req: &mut Request,
    schemas: &BodySchemas,
    template: &str,
) -> Option<Problem> {
    let method = req.method().as_str().to_string();
    let json = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(is_json);
    if !json || !req.headers().contains_key(AUTHORIZATION) || !schemas.has_body(&method, template) {
        return None;
    }
    let bytes = req.take_body().into_bytes().await.ok()?;
    let parsed = serde_json::from_slice::<Value>(&bytes);
    req.set_body(bytes);
    let errors = schemas.check(&method, template, &parsed.ok()?);
    (!errors.is_empty()).then(|| {
        Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            summary(&errors),
        )
        .with_errors(errors)
    })
}

/// Whether a media type is JSON (`application/json`, `application/problem+json`, with or
/// without parameters), as poem-openapi's `Json` payload decides.
pub fn is_json(media: &str) -> bool {
    let essence = media.split(';').next().unwrap_or("").trim();
    essence.eq_ignore_ascii_case("application/json") || essence.ends_with("+json")
}

/// One sentence naming every field at fault, for the problem's `detail`.
pub fn summary(errors: &[FieldError]) -> String {
    let parts: Vec<String> = errors.iter().map(|e| e.detail.clone()).collect();
    format!("the request body is not valid: {}", parts.join("; "))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn table() -> BodySchemas {
        let spec = json!({
            "paths": {"/v1/channels": {"post": {"requestBody": {"content": {
                "application/json; charset=utf-8": {"schema": {"$ref": "#/components/schemas/In"}}
            }}}}},
            "components": {"schemas": {
                "In": {"type": "object", "required": ["name"], "properties": {
                    "name": {"type": "string"},
                    "count": {"type": "integer", "format": "uint32"},
                    "at": {"type": "string", "format": "date-time"},
                    "id": {"type": "string", "format": "uuid"},
                    "tags": {"type": "array", "items": {"type": "string"}},
                    "keys": {"allOf": [{"$ref": "#/components/schemas/Keys"}, {"description": "k"}]},
                }},
                "Keys": {"type": "object", "required": ["a/b"], "properties": {
                    "a/b": {"type": "string", "enum": ["x", "y"]}
                }},
            }},
        });
        BodySchemas::from_spec(&spec)
    }

    fn pointers(body: Value) -> Vec<String> {
        table()
            .check("POST", "/v1/channels", &body)
            .into_iter()
            .filter_map(|e| e.pointer)
            .collect()
    }

    #[test]
    fn a_valid_body_has_no_errors() {
        let body = json!({"name": "n", "count": 3, "tags": ["a"], "keys": {"a/b": "x"}, "z": 1});
        assert!(pointers(body).is_empty());
    }

    #[test]
    fn missing_null_and_mistyped_fields_are_named_by_pointer() {
        assert_eq!(pointers(json!({})), ["/name"]);
        assert_eq!(pointers(json!({"name": null})), ["/name"]);
        assert_eq!(pointers(json!({"name": 5})), ["/name"]);
        assert_eq!(pointers(json!({"name": true})), ["/name"]);
        assert_eq!(
            pointers(json!({"name": "n", "tags": ["a", 2]})),
            ["/tags/1"]
        );
        assert_eq!(pointers(json!([1])), [""]);
    }

    #[test]
    fn nested_fields_enums_and_ranges_are_checked() {
        assert_eq!(pointers(json!({"name": "n", "keys": {}})), ["/keys/a~1b"]);
        assert_eq!(
            pointers(json!({"name": "n", "keys": {"a/b": "z"}})),
            ["/keys/a~1b"]
        );
        assert_eq!(pointers(json!({"name": "n", "count": -1})), ["/count"]);
        assert_eq!(pointers(json!({"name": "n", "count": 1.5})), ["/count"]);
        assert_eq!(pointers(json!({"name": "n", "at": "tomorrow"})), ["/at"]);
        assert!(pointers(json!({"name": "n", "at": "2026-01-31T09:00:00+01:00"})).is_empty());
        assert_eq!(pointers(json!({"name": "n", "id": "nope"})), ["/id"]);
    }

    #[test]
    fn only_json_media_types_count() {
        assert!(is_json("application/json; charset=utf-8"));
        assert!(is_json("application/merge-patch+json"));
        assert!(!is_json("text/plain"));
    }
}
