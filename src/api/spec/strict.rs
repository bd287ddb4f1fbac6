//! Request body objects are closed: every object schema a request body can reach (through
//! `$ref`, properties, array items and compositions) that lists its properties and says nothing
//! of others gets `additionalProperties: false`. The server refuses an unknown field with 422
//! naming it (`validation::BodySchemas` walks this document), so a generator or fuzzer that
//! reads the spec knows an extra field is an error rather than something ignored.
//!
//! A request string says it holds no NUL character ([`NO_NUL`]); the body check refuses one
//! anywhere in a body.
//!
//! `null` is a value only where it means something: the fields in [`NULLABLE`] (poem-openapi's
//! `MaybeUndefined`, where `null` clears the value) say `nullable: true`; an optional field
//! elsewhere is left out, not sent as `null` (the body check refuses that, naming the field).

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

use crate::api::validation::integer_range;

const REF_PREFIX: &str = "#/components/schemas/";

/// The pattern of a request string with no other: PostgreSQL cannot store NUL, so the body
/// check refuses it (naming the field) and the spec says so.
pub const NO_NUL: &str = r"^[^\u0000]*$";

/// Request fields where `null` means "clear it", as (schema, property).
pub const NULLABLE: [(&str, &str); 2] = [("UpdateUser", "email"), ("UpdateUser", "timezone")];

/// Closes every component schema reachable from a request body, and inline object schemas in
/// the bodies themselves.
pub fn close_request_objects(spec: &mut Value) {
    let mut named = BTreeSet::new();
    let mut inline = Vec::new();
    if let Some(paths) = spec.get("paths").and_then(Value::as_object) {
        for operations in paths.values().filter_map(Value::as_object) {
            for operation in operations.values() {
                let content = operation.pointer("/requestBody/content");
                for media in content.and_then(Value::as_object).into_iter().flatten() {
                    if let Some(schema) = media.1.get("schema") {
                        inline.push(schema.clone());
                    }
                }
            }
        }
    }
    let schemas = spec
        .pointer("/components/schemas")
        .cloned()
        .unwrap_or(Value::Null);
    for schema in &inline {
        collect_refs(schema, &schemas, &mut named);
    }
    if let Some(schemas) = spec
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
    {
        for name in &named {
            if let Some(schema) = schemas.get_mut(name) {
                close(schema);
            }
        }
        for (schema, property) in NULLABLE {
            let field = schemas
                .get_mut(schema)
                .and_then(|s| s.pointer_mut(&format!("/properties/{property}")))
                .and_then(Value::as_object_mut);
            if let Some(field) = field {
                // `nullable` beside a `$ref` is ignored (OpenAPI 3.0 reads nothing beside one),
                // so a referenced type becomes the one choice of a nullable `oneOf`.
                if let Some(reference) = field.remove("$ref") {
                    field.insert("oneOf".into(), json!([{ "$ref": reference }]));
                }
                field.insert("nullable".into(), Value::Bool(true));
            }
        }
    }
    for operation in super::operations_mut(spec) {
        let content = operation.pointer_mut("/requestBody/content");
        for media in content.and_then(Value::as_object_mut).into_iter().flatten() {
            if let Some(schema) = media.1.get_mut("schema") {
                close(schema);
            }
        }
    }
}

/// Adds to `out` every component schema `schema` refers to, directly or through others.
fn collect_refs(schema: &Value, schemas: &Value, out: &mut BTreeSet<String>) {
    match schema {
        Value::Object(map) => {
            if let Some(name) = map
                .get("$ref")
                .and_then(Value::as_str)
                .and_then(|r| r.strip_prefix(REF_PREFIX))
                && out.insert(name.to_string())
                && let Some(target) = schemas.get(name)
            {
                collect_refs(target, schemas, out);
            }
            map.values().for_each(|v| collect_refs(v, schemas, out));
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, schemas, out)),
        _ => {}
    }
}

/// Closes `schema` and the inline object schemas inside it (not those behind a `$ref`: they are
/// closed by name when reachable).
fn close(schema: &mut Value) {
    let Value::Object(map) = schema else {
        return;
    };
    let free_string = map.get("type").and_then(Value::as_str) == Some("string")
        && !["pattern", "enum", "format"]
            .iter()
            .any(|k| map.contains_key(*k));
    if free_string {
        map.insert("pattern".into(), Value::String(NO_NUL.into()));
    }
    bound_integer(map);
    if map.contains_key("properties") && !map.contains_key("additionalProperties") {
        map.insert("additionalProperties".into(), Value::Bool(false));
    }
    for key in ["properties"] {
        if let Some(properties) = map.get_mut(key).and_then(Value::as_object_mut) {
            properties.values_mut().for_each(close);
        }
    }
    for key in ["items", "additionalProperties"] {
        if let Some(inner) = map.get_mut(key) {
            close(inner);
        }
    }
    for key in ["allOf", "oneOf", "anyOf"] {
        if let Some(parts) = map.get_mut(key).and_then(Value::as_array_mut) {
            parts.iter_mut().for_each(close);
        }
    }
}

/// An integer of a sized `format` says its range as `minimum` and `maximum` (where it gives no
/// tighter ones): the body check refuses what is out of it, and fuzzers read only the bounds.
fn bound_integer(map: &mut Map<String, Value>) {
    if map.get("type").and_then(Value::as_str) != Some("integer") {
        return;
    }
    let format = map
        .get("format")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let Some(range) = integer_range(format) else {
        return;
    };
    let number = |n: i128| {
        i64::try_from(n)
            .map(Value::from)
            .or_else(|_| u64::try_from(n).map(Value::from))
            .unwrap_or(Value::Null)
    };
    map.entry("minimum")
        .or_insert_with(|| number(*range.start()));
    map.entry("maximum").or_insert_with(|| number(*range.end()));
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn objects_a_body_reaches_are_closed_and_others_are_not() {
        let mut spec = json!({
            "paths": {"/v1/things": {"post": {"requestBody": {"content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/NewThing"}},
            }}}}},
            "components": {"schemas": {
                "NewThing": {"type": "object", "properties": {
                    "part": {"$ref": "#/components/schemas/Part"},
                    "args": {"type": "object"},
                    "tags": {"type": "object", "additionalProperties": {"type": "string"}},
                }},
                "Part": {"type": "object", "properties": {"n": {"type": "integer"}}},
                "ThingOut": {"type": "object", "properties": {"id": {"type": "string"}}},
            }},
        });

        close_request_objects(&mut spec);

        let schemas = &spec["components"]["schemas"];
        assert_eq!(schemas["NewThing"]["additionalProperties"], false);
        assert_eq!(schemas["Part"]["additionalProperties"], false);
        assert!(schemas["ThingOut"].get("additionalProperties").is_none());
        let properties = &schemas["NewThing"]["properties"];
        assert!(properties["args"].get("additionalProperties").is_none());
        assert_eq!(
            properties["tags"]["additionalProperties"],
            json!({"type": "string", "pattern": NO_NUL})
        );
    }

    #[test]
    fn sized_integers_say_their_range_unless_they_give_a_tighter_one() {
        let mut spec = json!({
            "paths": {"/v1/things": {"post": {"requestBody": {"content": {
                "application/json": {"schema": {"type": "object", "properties": {
                    "priority": {"type": "integer", "format": "int16"},
                    "limit": {"type": "integer", "format": "int64", "minimum": 1},
                }}},
            }}}}},
        });

        close_request_objects(&mut spec);

        let properties = &spec["paths"]["/v1/things"]["post"]["requestBody"]["content"]["application/json"]
            ["schema"]["properties"];
        assert_eq!(properties["priority"]["minimum"], -32768);
        assert_eq!(properties["priority"]["maximum"], 32767);
        assert_eq!(properties["limit"]["minimum"], 1);
        assert_eq!(properties["limit"]["maximum"], i64::MAX);
    }
}
