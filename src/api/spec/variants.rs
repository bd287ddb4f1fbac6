//! Bodies whose shape depends on their `kind`: a job's `args` and a channel's target. Each is
//! served as a `oneOf` of one closed object per kind with a `discriminator` on `kind`, so
//! generated clients get a type per kind and the body check (which reads the discriminator)
//! names the field a kind is missing or does not take. The Rust side keeps one struct each;
//! the kinds' own checks still run after the body check.

use serde_json::{Map, Value, json};

use super::job_args;

/// A channel kind, its variant's name and the one target field it takes.
const CHANNEL_TARGETS: [(&str, &str, &str); 3] = [
    ("webhook", "CreateWebhookChannel", "url"),
    ("fcm", "CreateFcmChannel", "token"),
    ("webpush", "CreateWebpushChannel", "subscription"),
];

/// Longest FCM registration token the channel check takes.
const MAX_FCM_TOKEN: usize = 4096;

/// Splits `CreateJob` and `CreateChannel` into one variant per kind.
pub fn split_by_kind(spec: &mut Value) {
    let Some(schemas) = spec
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    if let Some(job) = schemas.get("CreateJob").cloned() {
        let mut variants = Vec::new();
        for (kind, args_name, args) in job_args::schemas() {
            let mut variant = only_kind(&job, kind, &format!("A `{kind}` job to enqueue."));
            variant["properties"]["args"] = json!({
                "$ref": format!("#/components/schemas/{args_name}"),
                "description": "Arguments of this kind (default `{}`).",
            });
            if args["required"].as_array().is_some_and(|r| !r.is_empty()) {
                require(&mut variant, "args");
            }
            schemas.insert(args_name.into(), args);
            variants.push((kind, format!("Create{}Job", pascal(kind)), variant));
        }
        replace(schemas, "CreateJob", &job, variants);
    }
    if let Some(channel) = schemas.get("CreateChannel").cloned() {
        let mut variants = Vec::new();
        for (kind, name, target) in CHANNEL_TARGETS {
            let mut variant = only_kind(&channel, kind, &format!("A `{kind}` channel to create."));
            if let Some(properties) = variant["properties"].as_object_mut() {
                properties.retain(|field, _| {
                    field == target || !CHANNEL_TARGETS.iter().any(|(_, _, t)| t == field)
                });
            }
            require(&mut variant, target);
            if target == "token" {
                variant["properties"]["token"]["minLength"] = json!(1);
                variant["properties"]["token"]["maxLength"] = json!(MAX_FCM_TOKEN);
            }
            variants.push((kind, name.to_string(), variant));
        }
        replace(schemas, "CreateChannel", &channel, variants);
    }
}

/// `base` for one kind: `kind` takes that value only.
fn only_kind(base: &Value, kind: &str, description: &str) -> Value {
    let mut variant = base.clone();
    variant["description"] = json!(description);
    variant["properties"]["kind"] = json!({"type": "string", "enum": [kind]});
    variant
}

fn require(variant: &mut Value, field: &str) {
    match variant["required"].as_array_mut() {
        Some(required) => required.push(json!(field)),
        None => variant["required"] = json!([field]),
    }
}

/// Puts the variants in the components and `name` as their `oneOf`.
fn replace(
    schemas: &mut Map<String, Value>,
    name: &str,
    base: &Value,
    variants: Vec<(&str, String, Value)>,
) {
    let mut choices = Vec::new();
    let mut mapping = Map::new();
    for (kind, variant_name, mut variant) in variants {
        variant["title"] = json!(variant_name);
        let reference = format!("#/components/schemas/{variant_name}");
        choices.push(json!({ "$ref": reference }));
        mapping.insert(kind.into(), json!(reference));
        schemas.insert(variant_name, variant);
    }
    schemas.insert(
        name.into(),
        json!({
            "title": name,
            "description": format!("{} Its fields depend on `kind`.", base["description"]
                .as_str()
                .unwrap_or_default()),
            "oneOf": choices,
            "discriminator": {"propertyName": "kind", "mapping": mapping},
        }),
    );
}

/// `quota_reset` → `QuotaReset`.
fn pascal(kind: &str) -> String {
    kind.split('_')
        .map(|word| {
            let mut chars = word.chars();
            chars.next().map_or_else(String::new, |first| {
                first.to_ascii_uppercase().to_string() + chars.as_str()
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::validation::BodySchemas;

    fn spec() -> Value {
        let job = json!({
            "type": "object", "title": "CreateJob", "description": "A job to enqueue.",
            "additionalProperties": false, "required": ["kind"],
            "properties": {"kind": {"type": "string"}, "args": {},
                           "priority": {"type": "integer", "format": "int16"}},
        });
        let channel = json!({
            "type": "object", "title": "CreateChannel", "description": "A channel.",
            "additionalProperties": false, "required": ["kind", "name"],
            "properties": {"kind": {"type": "string"}, "name": {"type": "string"},
                           "url": {"type": "string"}, "token": {"type": "string"},
                           "subscription": {"type": "object"}},
        });
        let mut spec = json!({
            "components": {"schemas": {"CreateJob": job, "CreateChannel": channel}},
            "paths": {
                "/v1/jobs": {"post": {"requestBody": {"content": {"application/json":
                    {"schema": {"$ref": "#/components/schemas/CreateJob"}}}}}},
                "/v1/channels": {"post": {"requestBody": {"content": {"application/json":
                    {"schema": {"$ref": "#/components/schemas/CreateChannel"}}}}}},
            },
        });
        split_by_kind(&mut spec);
        spec
    }

    fn faults(path: &str, body: Value) -> Vec<(String, String)> {
        BodySchemas::from_spec(&spec())
            .check("POST", path, &body)
            .into_iter()
            .map(|e| (e.pointer.unwrap_or_default(), e.detail))
            .collect()
    }

    #[test]
    fn each_kind_is_a_closed_variant_named_by_the_discriminator() {
        let spec = spec();
        let schemas = &spec["components"]["schemas"];
        assert_eq!(
            schemas["CreateJob"]["discriminator"]["mapping"]["quota_reset"],
            "#/components/schemas/CreateQuotaResetJob"
        );
        assert_eq!(
            schemas["CreateScrapeJob"]["required"],
            json!(["kind", "args"])
        );
        assert_eq!(schemas["CreateEchoJob"]["required"], json!(["kind"]));
        let webhook = schemas["CreateWebhookChannel"]["properties"].as_object();
        let fields: Vec<&String> = webhook.into_iter().flat_map(|p| p.keys()).collect();
        assert_eq!(fields, ["kind", "name", "url"]);
    }

    #[test]
    fn the_body_check_follows_the_kind() {
        assert!(faults("/v1/jobs", json!({"kind": "echo", "args": {"sleep_ms": 5}})).is_empty());
        assert!(faults("/v1/jobs", json!({"kind": "quota_reset"})).is_empty());
        let wrong = faults(
            "/v1/jobs",
            json!({"kind": "echo", "args": {"scrape_id": "x"}}),
        );
        assert_eq!(wrong[0].0, "/args/scrape_id");
        assert_eq!(faults("/v1/jobs", json!({"kind": "scrape"}))[0].0, "/args");
        let unknown = faults("/v1/jobs", json!({"kind": "nope"}));
        assert_eq!(unknown[0].0, "/kind");
        assert!(unknown[0].1.contains("echo"), "{unknown:?}");
        assert_eq!(faults("/v1/jobs", json!({}))[0].0, "/kind");
        let token = faults(
            "/v1/channels",
            json!({"kind": "webhook", "name": "n", "token": "t"}),
        );
        let pointers: Vec<&str> = token.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(pointers, ["/url", "/token"]);
    }
}
