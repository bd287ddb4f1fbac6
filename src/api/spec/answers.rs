//! A response example for every JSON answer, so Swagger UI and generated clients' docs show what
//! an operation returns with believable values instead of `"string"`. Each example is made from
//! the answer's own schema (so it cannot drift from it) with values chosen by field name; a
//! unit test checks every one against its schema with the server's body check.

use serde_json::{Map, Value, json};

/// How deep an example goes, counting fields, items and references: a scrape page's link is
/// eleven deep (page, items, scrape, content, links, link, url with their references).
const MAX_DEPTH: usize = 12;

/// Optional fields an example of a healthy object leaves out: they say what went wrong.
const LEFT_OUT: [&str; 6] = [
    "error",
    "error_kind",
    "dead_reason",
    "disabled_reason",
    "last_error",
    "secret",
];

/// Flags an example of a healthy object shows as `false`.
const NOT_SET: [&str; 5] = ["limited", "permanent", "cached", "builtin", "panic"];

/// Puts an example beside each 2xx JSON answer's schema.
pub fn add_response_examples(spec: &mut Value) {
    let schemas = spec
        .pointer("/components/schemas")
        .cloned()
        .unwrap_or(Value::Null);
    for operation in super::operations_mut(spec) {
        let responses = operation
            .get_mut("responses")
            .and_then(Value::as_object_mut);
        for (status, response) in responses.into_iter().flatten() {
            if !status.starts_with('2') {
                continue;
            }
            let content = response.get_mut("content").and_then(Value::as_object_mut);
            for (media, body) in content.into_iter().flatten() {
                if media.starts_with("application/json") && body.get("example").is_none() {
                    let example = Example { schemas: &schemas }.of(&body["schema"], "", "", 0);
                    body["example"] = example;
                }
            }
        }
    }
}

struct Example<'a> {
    schemas: &'a Value,
}

impl Example<'_> {
    /// An example of `schema`, the field `field` of the object `owner`.
    fn of(&self, schema: &Value, owner: &str, field: &str, depth: usize) -> Value {
        if depth > MAX_DEPTH {
            return Value::Null;
        }
        if let Some(name) = schema["$ref"].as_str().and_then(|r| r.rsplit('/').next()) {
            let target = &self.schemas[name];
            return self.of(target, name, field, depth + 1);
        }
        if let Some(first) = schema["oneOf"].as_array().and_then(|c| c.first()) {
            return self.of(first, owner, field, depth + 1);
        }
        if let Some(values) = schema["enum"].as_array() {
            let succeeded = values.iter().find(|v| *v == "succeeded");
            return succeeded.or(values.first()).cloned().unwrap_or(Value::Null);
        }
        match schema["type"].as_str() {
            Some("object") => self.object(schema, depth),
            Some("array") if field == "errors" => json!([]),
            Some("array") => json!([self.of(&schema["items"], owner, field, depth + 1)]),
            Some("string") => string(schema, owner, field),
            Some("integer") => integer(schema, field),
            Some("number") => json!(12.5),
            Some("boolean") => json!(!NOT_SET.contains(&field)),
            _ => any(owner, field),
        }
    }

    fn object(&self, schema: &Value, depth: usize) -> Value {
        let owner = schema["title"].as_str().unwrap_or_default();
        let required: Vec<&str> = schema["required"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        let mut out = Map::new();
        for (name, field) in schema["properties"].as_object().into_iter().flatten() {
            if LEFT_OUT.contains(&name.as_str()) && !required.contains(&name.as_str()) {
                continue;
            }
            out.insert(name.clone(), self.of(field, owner, name, depth + 1));
        }
        if out.is_empty()
            && let Some(values) = schema["additionalProperties"].as_object()
        {
            let value = Value::Object(values.clone());
            out.insert("example".into(), self.of(&value, owner, "", depth + 1));
        }
        Value::Object(out)
    }
}

fn string(schema: &Value, owner: &str, field: &str) -> Value {
    match schema["format"].as_str() {
        Some("uuid") => return json!(uuid_for(field)),
        Some("date-time") => return json!("2026-12-04T09:30:00Z"),
        Some("date") => return json!("2026-12-04"),
        _ => {}
    }
    let text = match (owner, field) {
        ("ChannelOut", "name") => "ops hook",
        ("TokenOut" | "NewTokenOut", "name") => "laptop",
        ("ScheduleOut", "name") | (_, "schedule") => "quota_reset",
        ("Check", "name") => "database",
        ("RecordOut", "status") => "settled",
        (_, "status" | "detail" | "code") => "ok",
        (_, "name" | "customer_name") => "Ada Lovelace",
        (_, "email") => "ada@example.com",
        (_, "url" | "final_url" | "source_url") => "https://example.com/",
        (_, "screenshot_url") => "/v1/scrapes/0193a5b2-7c4e-7d21-9f3a-5b8e2c1d4f60/screenshot",
        (_, "title") => "Release notes",
        (_, "text") => "Workhorse runs jobs, schedules, scrapes and summaries in one daemon.",
        (_, "kind" | "action") => "echo",
        (_, "cron") => "0 0 * * *",
        (_, "description") => "Starts new quota periods at each user's midnight.",
        (_, "timezone") => "Europe/London",
        (_, "plan") => "free",
        (_, "provider") => "openai",
        (_, "model") => "gpt-4o-mini",
        (_, "prefix") => "wh_3f9a",
        (_, "token") => "wh_3f9a7c2e5b1d4f60a8e9c7b2d1f0e3a5",
        (_, "ticket") => "tk_8d2f6a1c9e4b7d30",
        (_, "public_key") => "BNcRdreALRFXTkOOUHK1EtK2wtaz5Ry4YfYCA_0QTpQtUbVlUls0VJXg7A8u",
        (_, "dedup_key") => "nightly-report",
        (_, "client_id") => "acme",
        (_, "customer_id") => "c-1042",
        (_, "transaction_id") => "tx-000123",
        (_, "merchant") => "Corner Shop",
        (_, "category") => "groceries",
        (_, "payment_method") => "card",
        (_, "country") => "DE",
        (_, "currency") => "EUR",
        (_, "card_last4") => "4242",
        (_, "amount" | "sum") => "42.50",
        (_, "request_id") => "0193a5b2-7c4e-7d21-9f3a-5b8e2c1d4f61",
        (_, "type") => "about:blank",
        _ => "example",
    };
    json!(text)
}

fn integer(schema: &Value, field: &str) -> Value {
    let n = match field {
        "priority" | "pages_failed" | "crashes" | "reserved" => 0,
        "remaining" => 88,
        "requests" => 12,
        "window_seconds" => 60,
        "http_status" => 200,
        "max_attempts" => 3,
        "tokens_in" => 812,
        "tokens_out" => 96,
        "limit" => 100,
        "used" => 12,
        "status_code" | "last_status" => 200,
        _ => 1,
    };
    let at_least = schema["minimum"].as_f64().unwrap_or(f64::MIN);
    let at_most = schema["maximum"].as_f64().unwrap_or(f64::MAX);
    json!((n as f64).clamp(at_least, at_most) as i64)
}

/// A field of any JSON value.
fn any(owner: &str, field: &str) -> Value {
    match field {
        "options" if owner == "SummaryOut" => {
            json!({"style": "paragraph", "length": "short", "language": "en"})
        }
        "args" => json!({"sleep_ms": 100, "message": "hello"}),
        "result" => json!({"attempt": 1, "message": "hello"}),
        "target" => json!({"url": "https://hooks.example.com/workhorse"}),
        "content" => json!({"markdown": "# Example Domain\n\nThis domain is for examples."}),
        "timings" => json!({"navigate_ms": 412, "wait_ms": 0, "extract_ms": 38}),
        "options" => json!({"wait_for": null, "timeout_ms": 30000, "screenshot": true,
                            "formats": ["markdown"], "summarise": false, "notify": false}),
        _ => json!({}),
    }
}

/// A stable UUID for a field name, so one example's ids differ from each other.
fn uuid_for(field: &str) -> String {
    let hash = field.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    format!("0193a5b2-7c4e-7d21-9f3a-{:012x}", hash & 0xffff_ffff_ffff)
}

#[cfg(test)]
mod tests {
    use crate::api::validation::BodySchemas;

    use super::*;

    #[test]
    fn every_json_answer_has_an_example_that_fits_its_schema() {
        let spec: Value = serde_json::from_str(&crate::api::spec_json()).unwrap();
        let bodies = BodySchemas::from_spec(&spec);
        let mut checked = 0;
        for operations in spec["paths"].as_object().unwrap().values() {
            for operation in operations.as_object().unwrap().values() {
                let id = operation["operationId"].as_str().unwrap();
                for (status, response) in operation["responses"].as_object().unwrap() {
                    let content = response["content"].as_object();
                    for (media, body) in content.into_iter().flatten() {
                        if !status.starts_with('2') || !media.starts_with("application/json") {
                            continue;
                        }
                        let example = &body["example"];
                        assert!(!example.is_null(), "{id} {status} has no example");
                        let errors = bodies.check_against(&body["schema"], example);
                        assert!(errors.is_empty(), "{id} {status}: {errors:?}\n{example}");
                        checked += 1;
                    }
                }
            }
        }
        assert!(checked >= 35, "only {checked} answers");
    }

    #[test]
    fn ids_differ_by_field_and_stay_the_same() {
        assert_ne!(uuid_for("id"), uuid_for("owner_id"));
        assert_eq!(uuid_for("id"), uuid_for("id"));
        assert!(uuid::Uuid::parse_str(&uuid_for("job_id")).is_ok());
    }
}
