//! Each field's `allOf` wrapper around a single `$ref` unwrapped, so client generators read the
//! field as the referenced type.
//!
//! poem-openapi gives a field of a named type that has a doc comment the schema
//! `{"description", "allOf": [{"$ref"}, {"description"}]}`. openapi-python-client refuses
//! `allOf` of a string (enum) schema ("Cannot take allOf a non-object") and drops the object
//! and everything that refers to it, and turns `allOf` of an object into a copy of that object.
//! `{"$ref", "description"}` says the same: the field's type, and its description kept next to
//! the `$ref` (OpenAPI 3.0 lets tools ignore it there; the type's own description still shows).

use serde_json::{Map, Value};

/// Replaces, anywhere in `value`, a schema that is only a description and an `allOf` of one
/// `$ref` (plus, optionally, a part with nothing but that description) by the `$ref` with the
/// description beside it.
pub fn unwrap_ref_wrappers(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if let Some(unwrapped) = unwrapped(map) {
                *map = unwrapped;
            }
            map.values_mut().for_each(unwrap_ref_wrappers);
        }
        Value::Array(items) => items.iter_mut().for_each(unwrap_ref_wrappers),
        _ => {}
    }
}

fn unwrapped(map: &Map<String, Value>) -> Option<Map<String, Value>> {
    if map.keys().any(|key| key != "allOf" && key != "description") {
        return None;
    }
    let description = map.get("description");
    let parts = map.get("allOf")?.as_array()?;
    let (reference, rest) = parts.split_first()?;
    let target = reference.as_object()?;
    if target.len() != 1 || !target.contains_key("$ref") {
        return None;
    }
    let only_the_description = |part: &Value| {
        part.as_object().is_some_and(|part| {
            part.iter()
                .all(|(key, value)| key == "description" && Some(value) == description)
        })
    };
    if !rest.iter().all(only_the_description) {
        return None;
    }
    let mut out = target.clone();
    if let Some(description) = description {
        out.insert("description".to_string(), description.clone());
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_described_ref_field_loses_its_allof_wrapper_and_keeps_its_description() {
        // Regression: openapi-python-client dropped JobOut over `allOf` of the JobStateOut enum.
        let mut spec = json!({"properties": {"state": {
            "description": "State.",
            "allOf": [{"$ref": "#/components/schemas/JobStateOut"}, {"description": "State."}],
        }}});

        unwrap_ref_wrappers(&mut spec);

        assert_eq!(
            spec,
            json!({"properties": {"state": {
                "$ref": "#/components/schemas/JobStateOut",
                "description": "State.",
            }}})
        );
    }

    #[test]
    fn an_allof_that_adds_more_than_a_description_is_left_alone() {
        let wrapper = json!({
            "description": "d",
            "allOf": [{"$ref": "#/components/schemas/A"}, {"description": "d", "default": 1}],
        });
        let composed = json!({"allOf": [
            {"$ref": "#/components/schemas/A"},
            {"$ref": "#/components/schemas/B"},
        ]});
        let mut spec = json!([wrapper.clone(), composed.clone()]);

        unwrap_ref_wrappers(&mut spec);

        assert_eq!(spec, json!([wrapper, composed]));
    }
}
