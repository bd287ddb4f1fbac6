//! Names for enum values that are not identifiers. Generators turn each value of an enum into a
//! constant; a time zone such as `Etc/GMT+1` or `GMT-0` has no name of its own, and the names
//! they make up collide (`GMT+0`, `GMT-0` and `GMT0` all become `GMT0`, which
//! openapi-python-client refuses). `x-enum-varnames`, which openapi-python-client,
//! openapi-generator and openapi-typescript read, gives every value a distinct name.

use std::collections::HashSet;

use serde_json::{Value, json};

/// Adds `x-enum-varnames` to every string enum in the components whose values are not all
/// plain identifiers.
pub fn name_enum_values(spec: &mut Value) {
    let Some(schemas) = spec
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    for schema in schemas.values_mut() {
        let Some(values) = schema.get("enum").and_then(Value::as_array) else {
            continue;
        };
        let values: Vec<&str> = values.iter().filter_map(Value::as_str).collect();
        if values.iter().all(|v| is_identifier(v)) {
            continue;
        }
        let names = var_names(&values);
        schema["x-enum-varnames"] = json!(names);
    }
}

fn is_identifier(value: &str) -> bool {
    let mut chars = value.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// An upper-case name for each value: `+` and `-` before a digit are spelled out (`Etc/GMT+1`
/// is `ETC_GMT_PLUS_1`), every other run of non-alphanumerics is one `_`, and a name already
/// taken gets the value's position appended.
fn var_names(values: &[&str]) -> Vec<String> {
    let mut taken = HashSet::new();
    values
        .iter()
        .enumerate()
        .map(|(i, value)| {
            let base = spelled(value);
            let name = if taken.contains(&base) {
                format!("{base}_{i}")
            } else {
                base
            };
            taken.insert(name.clone());
            name
        })
        .collect()
}

fn spelled(value: &str) -> String {
    let mut words: Vec<String> = vec![String::new()];
    let chars: Vec<char> = value.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        let before_digit = chars.get(i + 1).is_some_and(char::is_ascii_digit);
        match c {
            '+' if before_digit => words.extend(["PLUS".into(), String::new()]),
            '-' if before_digit => words.extend(["MINUS".into(), String::new()]),
            c if c.is_ascii_alphanumeric() => {
                if let Some(word) = words.last_mut() {
                    word.push(c.to_ascii_uppercase());
                }
            }
            _ => words.push(String::new()),
        }
    }
    let name = words
        .into_iter()
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join("_");
    match name.chars().next() {
        Some(c) if c.is_ascii_alphabetic() => name,
        _ => format!("VALUE_{name}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zones_get_distinct_names_and_identifiers_are_left_alone() {
        let mut spec = json!({"components": {"schemas": {
            "TimeZone": {"type": "string", "enum": ["GMT+0", "GMT-0", "GMT0", "Etc/GMT+1", "UTC"]},
            "JobState": {"type": "string", "enum": ["pending", "dead_letter"]},
        }}});

        name_enum_values(&mut spec);

        let schemas = &spec["components"]["schemas"];
        assert_eq!(
            schemas["TimeZone"]["x-enum-varnames"],
            json!(["GMT_PLUS_0", "GMT_MINUS_0", "GMT0", "ETC_GMT_PLUS_1", "UTC"])
        );
        assert!(schemas["JobState"].get("x-enum-varnames").is_none());
    }

    #[test]
    fn every_zone_the_daemon_knows_has_its_own_name() {
        let zones: Vec<&str> = chrono_tz::TZ_VARIANTS.iter().map(|tz| tz.name()).collect();
        let names = var_names(&zones);
        let distinct: HashSet<&String> = names.iter().collect();
        assert_eq!(distinct.len(), zones.len());
        assert!(
            names
                .iter()
                .all(|n| n.starts_with(|c: char| c.is_ascii_uppercase()))
        );
    }
}
