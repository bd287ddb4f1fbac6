//! A discriminated union's variants named directly.
//!
//! poem-openapi serves each variant of a `#[derive(Union)]` with a discriminator as a schema of
//! its own, `Union_Variant: {allOf: [{properties: {type: {enum: [tag]}}}, {$ref: Variant}]}`,
//! and points the `oneOf` and the discriminator's mapping at it. Once request objects are
//! closed (`strict`), the first part refuses every field but the tag; and generators name the
//! wrapper, not the type. Where the variant object declares the discriminator itself (ours do:
//! a `type` field with its one value), the wrapper says nothing more, so the `oneOf` and the
//! mapping point at the variant and the wrapper goes.

use serde_json::Value;

/// Point every discriminator mapping and `oneOf` at the variants themselves, and drop the
/// wrappers poem-openapi made for them.
pub fn name_variants_directly(spec: &mut Value) {
    let Some(schemas) = spec
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    let mut replaced: Vec<(String, String)> = Vec::new();
    for schema in schemas.values() {
        let Some(property) = schema
            .pointer("/discriminator/propertyName")
            .and_then(Value::as_str)
        else {
            continue;
        };
        let Some(mapping) = schema
            .pointer("/discriminator/mapping")
            .and_then(Value::as_object)
        else {
            continue;
        };
        for target in mapping.values().filter_map(Value::as_str) {
            let Some(name) = target.strip_prefix("#/components/schemas/") else {
                continue;
            };
            if let Some(variant) = wrapped(schemas.get(name), property, schemas) {
                replaced.push((target.to_string(), variant));
            }
        }
    }
    for (wrapper, variant) in &replaced {
        for schema in schemas.values_mut() {
            retarget(schema, wrapper, variant);
        }
    }
    for (wrapper, _) in replaced {
        if let Some(name) = wrapper.strip_prefix("#/components/schemas/") {
            schemas.remove(name);
        }
    }
}

/// The variant `wrapper` wraps, when the wrapper adds nothing but the tag the variant already
/// requires.
fn wrapped(
    wrapper: Option<&Value>,
    property: &str,
    schemas: &serde_json::Map<String, Value>,
) -> Option<String> {
    let parts = wrapper?.get("allOf")?.as_array()?;
    let [tag, reference] = parts.as_slice() else {
        return None;
    };
    let tag_properties = tag.get("properties")?.as_object()?;
    if tag_properties.len() != 1 || !tag_properties.contains_key(property) {
        return None;
    }
    let target = reference.get("$ref")?.as_str()?;
    let variant = schemas.get(target.strip_prefix("#/components/schemas/")?)?;
    let required = variant.get("required")?.as_array()?;
    let declares = variant
        .pointer(&format!("/properties/{property}"))
        .is_some();
    (declares && required.iter().any(|r| r == property)).then(|| target.to_string())
}

fn retarget(schema: &mut Value, wrapper: &str, variant: &str) {
    if let Some(one_of) = schema.get_mut("oneOf").and_then(Value::as_array_mut) {
        for choice in one_of {
            if choice.get("$ref").and_then(Value::as_str) == Some(wrapper) {
                choice["$ref"] = Value::from(variant);
            }
        }
    }
    if let Some(mapping) = schema
        .pointer_mut("/discriminator/mapping")
        .and_then(Value::as_object_mut)
    {
        for target in mapping.values_mut() {
            if target.as_str() == Some(wrapper) {
                *target = Value::from(variant);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn wrappers_that_only_add_the_tag_are_replaced_by_their_variant() {
        let mut spec = json!({"components": {"schemas": {
            "Step": {
                "oneOf": [{"$ref": "#/components/schemas/Step_Click"}],
                "discriminator": {"propertyName": "type",
                    "mapping": {"click": "#/components/schemas/Step_Click"}},
            },
            "Step_Click": {"allOf": [
                {"type": "object", "properties": {"type": {"enum": ["click"]}}},
                {"$ref": "#/components/schemas/Click"},
            ]},
            "Click": {"type": "object", "required": ["type", "selector"],
                "properties": {"type": {"enum": ["click"]}, "selector": {"type": "string"}}},
        }}});
        name_variants_directly(&mut spec);
        let schemas = &spec["components"]["schemas"];
        assert_eq!(
            schemas["Step"]["oneOf"][0]["$ref"],
            "#/components/schemas/Click"
        );
        assert_eq!(
            schemas["Step"]["discriminator"]["mapping"]["click"],
            "#/components/schemas/Click"
        );
        assert!(schemas.get("Step_Click").is_none());
    }

    #[test]
    fn a_variant_without_the_tag_keeps_its_wrapper() {
        let mut spec = json!({"components": {"schemas": {
            "Step": {"oneOf": [{"$ref": "#/components/schemas/Step_Click"}],
                "discriminator": {"propertyName": "type",
                    "mapping": {"click": "#/components/schemas/Step_Click"}}},
            "Step_Click": {"allOf": [
                {"type": "object", "properties": {"type": {"enum": ["click"]}}},
                {"$ref": "#/components/schemas/Click"},
            ]},
            "Click": {"type": "object", "properties": {"selector": {"type": "string"}}},
        }}});
        let before = spec.clone();
        name_variants_directly(&mut spec);
        assert_eq!(spec, before);
    }
}
