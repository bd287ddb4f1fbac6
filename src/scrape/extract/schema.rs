//! The JSON Schema subset an extraction's answer is held to, and the check itself: `type`
//! (one or a list), `properties`, `required`, `additionalProperties` (boolean or a schema),
//! `items`, `enum`, `const`, `minimum` / `maximum`, `minLength` / `maxLength`, `minItems` /
//! `maxItems`, with `title`, `description`, `default` and `examples` as annotations. A schema
//! using anything else is refused when the scrape is requested, naming the keyword, rather than
//! half-checked.

use serde_json::{Map, Value};

/// Keywords the check understands.
const KEYWORDS: [&str; 18] = [
    "type",
    "properties",
    "required",
    "additionalProperties",
    "items",
    "enum",
    "const",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "title",
    "description",
    "default",
    "examples",
    "$schema",
];
const TYPES: [&str; 7] = [
    "object", "array", "string", "number", "integer", "boolean", "null",
];
/// Deepest nesting a schema may have.
const MAX_DEPTH: usize = 16;

/// Whether `schema` is one this check can hold an answer to; else why not, with its pointer.
pub fn supported(schema: &Value) -> Result<(), String> {
    check_node(schema, "", 0)
}

fn check_node(schema: &Value, at: &str, depth: usize) -> Result<(), String> {
    let Some(map) = schema.as_object() else {
        return Err(format!("{} must be a JSON Schema object", shown(at)));
    };
    if depth > MAX_DEPTH {
        return Err(format!("the schema nests deeper than {MAX_DEPTH} levels"));
    }
    if let Some(key) = map.keys().find(|k| !KEYWORDS.contains(&k.as_str())) {
        return Err(format!(
            "{}: keyword `{key}` is not supported (supported: {})",
            shown(at),
            KEYWORDS.join(", ")
        ));
    }
    for number in ["minimum", "maximum"] {
        if map.get(number).is_some_and(|n| !n.is_number()) {
            return Err(format!("{}/{number} must be a number", shown(at)));
        }
    }
    for count in ["minLength", "maxLength", "minItems", "maxItems"] {
        if map.get(count).is_some_and(|n| n.as_u64().is_none()) {
            return Err(format!(
                "{}/{count} must be a non-negative integer",
                shown(at)
            ));
        }
    }
    if map
        .get("enum")
        .is_some_and(|e| e.as_array().is_none_or(|e| e.is_empty()))
    {
        return Err(format!("{}/enum must be a non-empty list", shown(at)));
    }
    if let Some(kind) = map.get("type") {
        let kinds: Vec<&Value> = match kind {
            Value::Array(list) => list.iter().collect(),
            other => vec![other],
        };
        if kinds.is_empty()
            || kinds
                .iter()
                .any(|k| !k.as_str().is_some_and(|k| TYPES.contains(&k)))
        {
            return Err(format!(
                "{}/type must name JSON types ({})",
                shown(at),
                TYPES.join(", ")
            ));
        }
    }
    if let Some(properties) = map.get("properties") {
        let Some(properties) = properties.as_object() else {
            return Err(format!("{}/properties must be an object", shown(at)));
        };
        for (name, property) in properties {
            check_node(property, &format!("{at}/properties/{name}"), depth + 1)?;
        }
    }
    if let Some(required) = map.get("required")
        && !required
            .as_array()
            .is_some_and(|r| r.iter().all(Value::is_string))
    {
        return Err(format!("{}/required must be a list of names", shown(at)));
    }
    match map.get("additionalProperties") {
        None | Some(Value::Bool(_)) => {}
        Some(other) => check_node(other, &format!("{at}/additionalProperties"), depth + 1)?,
    }
    if let Some(items) = map.get("items") {
        check_node(items, &format!("{at}/items"), depth + 1)?;
    }
    Ok(())
}

fn shown(at: &str) -> String {
    match at {
        "" => "the schema".into(),
        at => format!("schema {at}"),
    }
}

/// Where `value` departs from `schema`: one line per fault, each with its JSON pointer.
pub fn validate(schema: &Value, value: &Value) -> Vec<String> {
    let mut out = Vec::new();
    walk(schema, value, "", &mut out);
    out
}

fn walk(schema: &Value, value: &Value, at: &str, out: &mut Vec<String>) {
    let Some(map) = schema.as_object() else {
        return;
    };
    let here = if at.is_empty() { "/" } else { at };
    if let Some(kind) = map.get("type") {
        let kinds: Vec<&str> = match kind {
            Value::Array(list) => list.iter().filter_map(Value::as_str).collect(),
            other => other.as_str().into_iter().collect(),
        };
        if !kinds.iter().any(|k| fits(k, value)) {
            out.push(format!(
                "{here} must be {}, not {}",
                kinds.join(" or "),
                type_of(value)
            ));
            return;
        }
    }
    if let Some(allowed) = map.get("enum").and_then(Value::as_array)
        && !allowed.contains(value)
    {
        out.push(format!(
            "{here} must be one of {}",
            Value::Array(allowed.clone())
        ));
    }
    if let Some(constant) = map.get("const")
        && constant != value
    {
        out.push(format!("{here} must be {constant}"));
    }
    let bound = |key| map.get(key).and_then(Value::as_f64);
    match value {
        Value::Number(n) => {
            let n = n.as_f64().unwrap_or_default();
            if bound("minimum").is_some_and(|min| n < min)
                || bound("maximum").is_some_and(|max| n > max)
            {
                out.push(format!("{here} is out of range"));
            }
        }
        Value::String(s) => {
            let length = s.chars().count() as f64;
            if bound("minLength").is_some_and(|min| length < min)
                || bound("maxLength").is_some_and(|max| length > max)
            {
                out.push(format!("{here} has a length out of range"));
            }
        }
        Value::Array(items) => {
            let count = items.len() as f64;
            if bound("minItems").is_some_and(|min| count < min)
                || bound("maxItems").is_some_and(|max| count > max)
            {
                out.push(format!("{here} has a number of items out of range"));
            }
            if let Some(item) = map.get("items") {
                for (i, v) in items.iter().enumerate() {
                    walk(item, v, &format!("{at}/{i}"), out);
                }
            }
        }
        Value::Object(fields) => object(map, fields, at, out),
        _ => {}
    }
}

fn object(map: &Map<String, Value>, fields: &Map<String, Value>, at: &str, out: &mut Vec<String>) {
    let properties = map.get("properties").and_then(Value::as_object);
    for name in map
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(name) = name.as_str()
            && !fields.contains_key(name)
        {
            out.push(format!("{at}/{name} is required"));
        }
    }
    for (name, v) in fields {
        match properties.and_then(|p| p.get(name)) {
            Some(property) => walk(property, v, &format!("{at}/{name}"), out),
            None => match map.get("additionalProperties") {
                Some(Value::Bool(false)) => {
                    out.push(format!("{at}/{name} is not a field of the schema"))
                }
                Some(extra @ Value::Object(_)) => walk(extra, v, &format!("{at}/{name}"), out),
                _ => {}
            },
        }
    }
}

fn fits(kind: &str, value: &Value) -> bool {
    match kind {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "number" => value.is_number(),
        "integer" => value.as_f64().is_some_and(|n| n.fract() == 0.0),
        "boolean" => value.is_boolean(),
        "null" => value.is_null(),
        _ => false,
    }
}

fn type_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn product() -> Value {
        json!({
            "type": "object",
            "properties": {
                "name": {"type": "string", "minLength": 1},
                "price": {"type": ["number", "null"], "minimum": 0},
                "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 3},
                "stock": {"enum": ["in", "out"]},
            },
            "required": ["name", "price"],
            "additionalProperties": false,
        })
    }

    #[test]
    fn an_answer_is_held_to_the_schema_with_pointers() {
        assert!(supported(&product()).is_ok());
        assert!(
            validate(
                &product(),
                &json!({"name": "Kettle", "price": 89.5, "tags": ["a"]})
            )
            .is_empty()
        );
        let faults = validate(
            &product(),
            &json!({"price": "cheap", "tags": [1, "b", "c", "d"], "colour": "red", "stock": "maybe"}),
        );
        let text = faults.join("\n");
        for expected in [
            "/name is required",
            "/price must be number or null",
            "/tags has a number",
            "/tags/0 must be string",
            "/colour is not a field",
            "/stock must be one of",
        ] {
            assert!(text.contains(expected), "{expected} missing from {text}");
        }
    }

    #[test]
    fn unsupported_keywords_are_named() {
        let refused = supported(&json!({"type": "object", "properties": {"a": {"oneOf": []}}}));
        assert!(refused.is_err_and(|e| e.contains("/properties/a") && e.contains("oneOf")));
        assert!(supported(&json!("not a schema")).is_err());
        assert!(supported(&json!({"type": "thing"})).is_err());
        assert!(supported(&json!({"type": []})).is_err());
        assert!(supported(&json!({"minimum": "5"})).is_err());
        assert!(supported(&json!({"maxLength": -1})).is_err());
        assert!(supported(&json!({"enum": "x"})).is_err());
    }
}
