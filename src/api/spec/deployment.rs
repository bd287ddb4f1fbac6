//! Sets a deployment configures, listed where the spec has them: the plans a user can be on
//! and the summary providers a request can prefer. The served document is this daemon's, so a
//! client sees exactly the names this daemon accepts; `workhorse openapi` prints the built-in
//! defaults'. With no provider configured, `provider` is not a field at all (the body check then
//! refuses it by name, as it would refuse any name).

use serde_json::{Value, json};

use crate::config::Config;

/// The configured names the spec lists.
#[derive(Debug, Clone, Default)]
pub struct Deployment {
    /// Plan names (`[plans.<name>]`).
    pub plans: Vec<String>,
    /// Summary provider names (`[[summarise.providers]]`), in the configured order.
    pub providers: Vec<String>,
}

impl Deployment {
    /// The sets `config` configures.
    pub fn of(config: &Config) -> Self {
        Self {
            plans: config.plans.keys().cloned().collect(),
            providers: (config.summarise.providers.iter())
                .map(|p| p.name.clone())
                .collect(),
        }
    }
}

/// Fields whose values are the configured plans.
const PLAN_FIELDS: [(&str, &str); 2] = [("CreateUser", "plan"), ("UpdateUser", "plan")];
/// Fields whose values are the configured providers.
const PROVIDER_FIELDS: [(&str, &str); 1] = [("CreateSummary", "provider")];

/// Lists `deployment`'s names as the `enum` of each field that takes one.
pub fn apply(spec: &mut Value, deployment: &Deployment) {
    for (schema, field) in PLAN_FIELDS {
        list(spec, schema, field, &deployment.plans);
    }
    for (schema, field) in PROVIDER_FIELDS {
        list(spec, schema, field, &deployment.providers);
    }
}

fn list(spec: &mut Value, schema: &str, field: &str, names: &[String]) {
    let pointer = format!("/components/schemas/{schema}/properties");
    let Some(properties) = spec.pointer_mut(&pointer).and_then(Value::as_object_mut) else {
        return;
    };
    if names.is_empty() {
        properties.remove(field);
    } else if let Some(property) = properties.get_mut(field).and_then(Value::as_object_mut) {
        property.insert("enum".into(), json!(names));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> Value {
        json!({"components": {"schemas": {
            "CreateUser": {"properties": {"plan": {"type": "string"}}},
            "CreateSummary": {"properties": {"provider": {"type": "string"}, "style": {}}},
        }}})
    }

    #[test]
    fn configured_names_become_the_fields_enums() {
        let mut spec = spec();
        let deployment = Deployment {
            plans: vec!["free".into(), "pro".into()],
            providers: vec!["openai".into()],
        };

        apply(&mut spec, &deployment);

        let schemas = &spec["components"]["schemas"];
        assert_eq!(
            schemas["CreateUser"]["properties"]["plan"]["enum"],
            json!(["free", "pro"])
        );
        assert_eq!(
            schemas["CreateSummary"]["properties"]["provider"]["enum"],
            json!(["openai"])
        );
    }

    #[test]
    fn without_providers_there_is_no_provider_field() {
        let mut spec = spec();

        apply(&mut spec, &Deployment::of(&Config::default()));

        let properties = &spec["components"]["schemas"]["CreateSummary"]["properties"];
        assert!(properties.get("provider").is_none());
        assert!(properties.get("style").is_some());
    }
}
