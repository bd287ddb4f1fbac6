//! The walk of a JSON value against a schema of the served document: each fault it finds is a
//! [`FieldError`] at the JSON pointer of the value, worded for a person.

use serde_json::Value;

use super::BodySchemas;
use crate::api::error::FieldError;

/// How deep a body may nest before the walk stops looking (bodies are small documents).
const MAX_DEPTH: usize = 32;

impl BodySchemas {
    pub(super) fn walk(
        &self,
        schema: &Value,
        value: &Value,
        pointer: &str,
        depth: usize,
        out: &mut Vec<FieldError>,
    ) {
        if depth > MAX_DEPTH {
            return;
        }
        let schema = self.resolve(schema);
        for part in schema
            .get("allOf")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            self.walk(part, value, pointer, depth + 1, out);
        }
        if let Some(tag) = schema.pointer("/discriminator/propertyName") {
            self.walk_tagged(
                schema,
                tag.as_str().unwrap_or_default(),
                value,
                pointer,
                depth,
                out,
            );
        } else if let Some(options) = schema
            .get("oneOf")
            .or_else(|| schema.get("anyOf"))
            .and_then(Value::as_array)
        {
            let fits = |option| {
                let mut errors = Vec::new();
                self.walk(option, value, pointer, depth + 1, &mut errors);
                errors.is_empty()
            };
            if let [only] = options.as_slice() {
                self.walk(only, value, pointer, depth + 1, out);
            } else if !options.iter().any(fits) {
                out.push(error(pointer, "does not match any of the allowed shapes"));
            }
        }
        let Some(kind) = schema.get("type").and_then(Value::as_str) else {
            return;
        };
        if value.is_null() {
            if schema.get("nullable") != Some(&Value::Bool(true)) {
                out.push(error(
                    pointer,
                    format!("must be {}, not null", article(kind)),
                ));
            }
            return;
        }
        if !type_fits(kind, value) {
            let found = type_name(value);
            out.push(error(
                pointer,
                format!("must be {}, not {}", article(kind), article(found)),
            ));
            return;
        }
        match value {
            Value::Object(fields) => self.walk_object(schema, fields, pointer, depth, out),
            Value::Array(items) => {
                let bound = |key| schema.get(key).and_then(Value::as_u64);
                let count = items.len() as u64;
                if let Some(min) = bound("minItems").filter(|min| count < *min) {
                    out.push(error(pointer, format!("must have at least {min} items")));
                }
                if let Some(max) = bound("maxItems").filter(|max| count > *max) {
                    out.push(error(
                        pointer,
                        format!("must have at most {max} items, not {count}"),
                    ));
                }
                if let Some(item) = schema.get("items") {
                    for (i, v) in items.iter().enumerate() {
                        self.walk(item, v, &format!("{pointer}/{i}"), depth + 1, out);
                    }
                }
            }
            Value::String(s) => self.walk_string(schema, s, pointer, out),
            Value::Number(n) if kind == "integer" => {
                let format = schema.get("format").and_then(Value::as_str).unwrap_or("");
                if let Some(range) = integer_range(format)
                    && !n.as_i64().is_some_and(|n| range.contains(&i128::from(n)))
                    && !n.as_u64().is_some_and(|n| range.contains(&i128::from(n)))
                {
                    out.push(error(
                        pointer,
                        format!("must be an {format} integer ({range:?}), not {n}"),
                    ));
                } else if let Some(n) = n.as_f64() {
                    let bound = |key| schema.get(key).and_then(Value::as_f64);
                    if let Some(min) = bound("minimum").filter(|min| n < *min) {
                        out.push(error(pointer, format!("must be at least {min}, not {n}")));
                    }
                    if let Some(max) = bound("maximum").filter(|max| n > *max) {
                        out.push(error(pointer, format!("must be at most {max}, not {n}")));
                    }
                }
            }
            _ => {}
        }
    }

    /// A `oneOf` with a discriminator: the variant the tag names, whose own faults are named.
    fn walk_tagged(
        &self,
        schema: &Value,
        tag: &str,
        value: &Value,
        pointer: &str,
        depth: usize,
        out: &mut Vec<FieldError>,
    ) {
        let Some(fields) = value.as_object() else {
            let found = article(type_name(value));
            return out.push(error(pointer, format!("must be an object, not {found}")));
        };
        let mapping = schema
            .pointer("/discriminator/mapping")
            .and_then(Value::as_object);
        let names = || {
            let names: Vec<&str> = mapping
                .into_iter()
                .flatten()
                .map(|(k, _)| k.as_str())
                .collect();
            names.join(", ")
        };
        match fields.get(tag) {
            None | Some(Value::Null) => out.push(error(&child(pointer, tag), "is required")),
            Some(Value::String(name)) => match mapping.and_then(|m| m.get(name)) {
                Some(reference) => {
                    let variant = serde_json::json!({ "$ref": reference });
                    self.walk(&variant, value, pointer, depth + 1, out);
                }
                None => out.push(error(
                    &child(pointer, tag),
                    format!("must be one of {}, not {name:?}", names()),
                )),
            },
            Some(other) => out.push(error(
                &child(pointer, tag),
                format!(
                    "must be a string (one of {}), not {}",
                    names(),
                    article(type_name(other))
                ),
            )),
        }
    }

    fn walk_string(&self, schema: &Value, s: &str, pointer: &str, out: &mut Vec<FieldError>) {
        let format = schema.get("format").and_then(Value::as_str);
        if let Some(expected) = format.and_then(|f| misformatted(f, s)) {
            out.push(error(pointer, format!("must be {expected}, not {s:?}")));
        }
        if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
            && !allowed.iter().any(|a| a.as_str() == Some(s))
        {
            let names: Vec<&str> = allowed.iter().filter_map(Value::as_str).collect();
            let listed = match names.len() {
                ..=20 => names.join(", "),
                n => format!(
                    "the {n} values the spec lists (e.g. {})",
                    names[..3].join(", ")
                ),
            };
            out.push(error(
                pointer,
                format!("must be one of {listed}, not {s:?}"),
            ));
        }
        let length = s.chars().count();
        let bound = |key| schema.get(key).and_then(Value::as_u64);
        if let Some(min) = bound("minLength").filter(|min| (length as u64) < *min) {
            out.push(error(
                pointer,
                format!("must be at least {min} characters long"),
            ));
        }
        if let Some(max) = bound("maxLength").filter(|max| (length as u64) > *max) {
            out.push(error(
                pointer,
                format!("must be at most {max} characters long"),
            ));
        }
        if let Some(pattern) = schema.get("pattern").and_then(Value::as_str)
            && let Some(regex) = self.patterns.get(pattern)
            && !regex.is_match(s)
        {
            out.push(error(pointer, format!("must match the pattern {pattern}")));
        }
    }

    fn walk_object(
        &self,
        schema: &Value,
        fields: &serde_json::Map<String, Value>,
        pointer: &str,
        depth: usize,
        out: &mut Vec<FieldError>,
    ) {
        let required: Vec<&str> = schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        for name in &required {
            if fields.get(*name).is_none_or(Value::is_null) {
                out.push(error(&child(pointer, name), "is required"));
            }
        }
        let properties = schema.get("properties").and_then(Value::as_object);
        let extra = schema.get("additionalProperties").filter(|s| s.is_object());
        let closed = schema.get("additionalProperties") == Some(&Value::Bool(false));
        for (name, value) in fields {
            let declared = properties.and_then(|p| p.get(name));
            if closed && declared.is_none() {
                out.push(error(
                    &child(pointer, name),
                    "is not a field of this object",
                ));
                continue;
            }
            // `null` clears a nullable field (a PATCH); elsewhere an optional field is left out.
            if value.is_null() {
                if required.contains(&name.as_str()) {
                    continue; // already named above as required
                }
                // A field of any JSON value (no `type`, no `$ref`) takes `null` as one of them.
                let typed =
                    declared.is_some_and(|d| d.get("type").is_some() || d.get("$ref").is_some());
                let nullable = declared.and_then(|d| d.get("nullable")) == Some(&Value::Bool(true));
                if typed && !nullable {
                    out.push(error(
                        &child(pointer, name),
                        "must not be null: leave the field out for its default",
                    ));
                }
                continue;
            }
            if let Some(field_schema) = declared.or(extra) {
                self.walk(field_schema, value, &child(pointer, name), depth + 1, out);
            }
        }
    }
}

/// A NUL character anywhere in the body, in a value or a member name: PostgreSQL's text and
/// jsonb cannot hold one, so it is refused here, named, rather than failing in the database.
pub(super) fn find_nul(value: &Value, pointer: &str, depth: usize, out: &mut Vec<FieldError>) {
    if depth > MAX_DEPTH {
        return;
    }
    let refuse = |pointer: &str, out: &mut Vec<FieldError>| {
        out.push(error(pointer, "must not contain a NUL character (U+0000)"));
    };
    match value {
        Value::String(s) if s.contains('\0') => refuse(pointer, out),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                find_nul(item, &format!("{pointer}/{i}"), depth + 1, out);
            }
        }
        Value::Object(fields) => {
            for (name, item) in fields {
                let at = child(pointer, name);
                match name.contains('\0') {
                    true => refuse(&at, out),
                    false => find_nul(item, &at, depth + 1, out),
                }
            }
        }
        _ => {}
    }
}

fn error(pointer: &str, detail: impl Into<String>) -> FieldError {
    FieldError::at_pointer(pointer, detail)
}

/// The pointer of a member, escaped as RFC 6901 says.
fn child(pointer: &str, name: &str) -> String {
    format!("{pointer}/{}", name.replace('~', "~0").replace('/', "~1"))
}

fn type_fits(kind: &str, value: &Value) -> bool {
    match kind {
        "string" => value.is_string(),
        "boolean" => value.is_boolean(),
        "object" => value.is_object(),
        "array" => value.is_array(),
        "number" => value.is_number(),
        "integer" => value.is_i64() || value.is_u64(),
        _ => true,
    }
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_f64() => "number",
        Value::Number(_) => "integer",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn article(kind: &str) -> String {
    match kind {
        "null" => "null".into(),
        k if k.starts_with(['a', 'e', 'i', 'o', 'u']) => format!("an {k}"),
        k => format!("a {k}"),
    }
}

/// What a string of `format` should look like, when `s` does not; only the formats poem-openapi
/// parses strictly (others are free text to it).
fn misformatted(format: &str, s: &str) -> Option<&'static str> {
    let fits = match format {
        "date-time" => s.parse::<chrono::DateTime<chrono::FixedOffset>>().is_ok(),
        "uuid" => uuid::Uuid::parse_str(s).is_ok(),
        _ => true,
    };
    match format {
        _ if fits => None,
        "date-time" => Some("an RFC 3339 date-time like 2026-01-31T09:00:00Z"),
        _ => Some("a UUID"),
    }
}

/// The values an integer `format` holds (`int16`, `uint32`, …), if it is one.
pub fn integer_range(format: &str) -> Option<std::ops::RangeInclusive<i128>> {
    Some(match format {
        "int8" => i128::from(i8::MIN)..=i128::from(i8::MAX),
        "int16" => i128::from(i16::MIN)..=i128::from(i16::MAX),
        "int32" => i128::from(i32::MIN)..=i128::from(i32::MAX),
        "int64" => i128::from(i64::MIN)..=i128::from(i64::MAX),
        "uint8" => 0..=i128::from(u8::MAX),
        "uint16" => 0..=i128::from(u16::MAX),
        "uint32" => 0..=i128::from(u32::MAX),
        "uint64" => 0..=i128::from(u64::MAX),
        _ => return None,
    })
}
