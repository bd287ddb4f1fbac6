//! The arguments of each job kind, as schemas: what `POST /v1/jobs` takes in `args` for a
//! kind. The kinds read their arguments with serde (`deny_unknown_fields`); the tests below hold
//! each schema to its type, so a field added to one and not the other fails.

use serde_json::{Value, json};

use crate::domain::jobs::kinds;
use crate::jobs::echo::MAX_SLEEP_MS;
use crate::jobs::inject::MAX_ROWS;

/// Each kind with the name of its arguments' schema and the schema.
pub fn schemas() -> Vec<(&'static str, &'static str, Value)> {
    vec![
        (
            kinds::CRAWL,
            "CrawlArgs",
            id_of("CrawlArgs", "crawl_id", "The crawl to take a step further."),
        ),
        (kinds::ECHO, "EchoArgs", echo()),
        (kinds::INJECT, "InjectArgs", inject()),
        (
            kinds::NOTIFY,
            "NotifyArgs",
            id_of("NotifyArgs", "delivery_id", "The delivery to carry out."),
        ),
        (kinds::QUOTA_RESET, "QuotaResetArgs", quota_reset()),
        (
            kinds::SCRAPE,
            "ScrapeArgs",
            id_of("ScrapeArgs", "scrape_id", "The scrape to do."),
        ),
        (
            kinds::SUMMARISE,
            "SummariseArgs",
            id_of("SummariseArgs", "summary_id", "The summary to make."),
        ),
    ]
}

fn echo() -> Value {
    json!({
        "type": "object",
        "title": "EchoArgs",
        "description": "What an `echo` job does; every field is optional.",
        "additionalProperties": false,
        "properties": {
            "sleep_ms": {"type": "integer", "format": "int64", "minimum": 0,
                         "maximum": MAX_SLEEP_MS, "description": "Wait this long first."},
            "fail_attempts": {"type": "integer", "format": "int64", "minimum": 0,
                              "maximum": u32::MAX,
                              "description": "Fail the first this many attempts."},
            "fail_permanently": {"type": "boolean",
                                 "description": "Fail with a permanent error (no retries)."},
            "panic": {"type": "boolean", "description": "Panic instead of returning."},
            "record": {"type": "boolean",
                       "description": "Record each execution in `echo_runs`."},
            "message": {"description": "Returned in the result, any JSON value."},
        },
    })
}

fn inject() -> Value {
    json!({
        "type": "object",
        "title": "InjectArgs",
        "description": "Sample transactions for the `inject` job to insert.",
        "additionalProperties": false,
        "required": ["rows", "client_id"],
        "properties": {
            "rows": {"type": "integer", "format": "int64", "minimum": 1, "maximum": MAX_ROWS,
                     "description": "Rows to insert."},
            "client_id": {"type": "string", "pattern": super::strict::NO_NUL,
                          "description": "Stamped on every row."},
            "dataset": {"type": "string", "pattern": super::strict::NO_NUL,
                        "description": "A CSV file name in `jobs/data/` (default \
                                        `transactions.csv`)."},
        },
    })
}

fn quota_reset() -> Value {
    json!({
        "type": "object",
        "title": "QuotaResetArgs",
        "description": "The `quota_reset` job takes no arguments.",
        "additionalProperties": false,
        "properties": {},
    })
}

fn id_of(name: &str, field: &str, description: &str) -> Value {
    json!({
        "type": "object",
        "title": name,
        "description": format!("{description} Enqueued by the use case that makes it; admins \
                                may enqueue one by hand."),
        "additionalProperties": false,
        "required": [field],
        "properties": {field: {"type": "string", "format": "uuid", "description": description}},
    })
}

#[cfg(test)]
mod tests {
    use serde::de::DeserializeOwned;

    use super::*;
    use crate::crawl::job::CrawlArgs;
    use crate::jobs::echo::EchoArgs;
    use crate::jobs::inject::InjectArgs;
    use crate::jobs::quota_reset::QuotaResetArgs;
    use crate::notify::job::NotifyArgs;
    use crate::scrape::job::ScrapeArgs;
    use crate::summarise::job::SummariseArgs;

    /// A value of every property at its largest, as the schema allows.
    fn every_field(schema: &Value) -> Value {
        let mut body = serde_json::Map::new();
        for (name, field) in schema["properties"].as_object().into_iter().flatten() {
            let value = match (field["type"].as_str(), field["format"].as_str()) {
                (Some("integer"), _) => field["maximum"].clone(),
                (Some("boolean"), _) => json!(true),
                (Some("string"), Some("uuid")) => json!("01a248a3-f692-74ca-a9c9-884ba3a7ec63"),
                (Some("string"), _) => json!("transactions.csv"),
                _ => json!({"any": ["value"]}),
            };
            body.insert(name.clone(), value);
        }
        Value::Object(body)
    }

    fn fits<T: DeserializeOwned>(name: &str) {
        let (_, _, schema) = schemas()
            .into_iter()
            .find(|(_, n, _)| *n == name)
            .expect("the schema");
        let full = every_field(&schema);
        if let Err(e) = serde_json::from_value::<T>(full.clone()) {
            panic!("{name}: {full} fits the schema but not the type: {e}");
        }
        let mut required = serde_json::Map::new();
        for field in schema["required"].as_array().into_iter().flatten() {
            let field = field.as_str().expect("a name");
            required.insert(field.into(), full[field].clone());
        }
        assert!(
            serde_json::from_value::<T>(Value::Object(required)).is_ok(),
            "{name}"
        );
        let mut unknown = full.clone();
        unknown["not_a_field"] = json!(1);
        assert!(serde_json::from_value::<T>(unknown).is_err(), "{name}");
        for (field, limit) in schema["properties"].as_object().into_iter().flatten() {
            if let Some(max) = limit["maximum"].as_u64() {
                let mut over = full.clone();
                over[field] = json!(max + 1);
                assert!(serde_json::from_value::<T>(over).is_err(), "{name}.{field}");
            }
        }
    }

    #[test]
    fn each_schema_takes_what_its_kind_reads_and_no_more() {
        fits::<EchoArgs>("EchoArgs");
        fits::<InjectArgs>("InjectArgs");
        fits::<NotifyArgs>("NotifyArgs");
        fits::<QuotaResetArgs>("QuotaResetArgs");
        fits::<ScrapeArgs>("ScrapeArgs");
        fits::<CrawlArgs>("CrawlArgs");
        fits::<SummariseArgs>("SummariseArgs");
    }

    #[test]
    fn every_kind_has_a_schema() {
        let kinds: Vec<&str> = schemas().iter().map(|(kind, _, _)| *kind).collect();
        assert_eq!(kinds, crate::jobs::NAMES);
    }
}
