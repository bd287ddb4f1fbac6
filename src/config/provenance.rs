//! Where each configuration value came from: one-line errors naming the key, its source and
//! what is expected, and `workhorse config`'s listing of every key (secrets redacted).

use figment::value::{Tag, Value};
use figment::{Figment, Metadata};

use super::{Config, ConfigError, ENV_PREFIX, Loaded, absolute, expectation, redact_url};

/// The error for a bad value at `key`, naming the value (unless secret), where it came from
/// and what is expected.
pub(super) fn bad_value(figment: &Figment, key: &str) -> ConfigError {
    // The URL may carry a password: name the key and source, not the value.
    let value = match figment.find_value(key) {
        Ok(v) if !SECRET_KEYS.contains(&key) => format!("= {} ", render(&v)),
        _ => String::new(),
    };
    ConfigError(format!(
        "config error: `{key}` {value}(from {}): expected {}",
        source_of(figment, key),
        expectation(key).unwrap_or("a valid value")
    ))
}

/// Turn figment's error into one line naming the key, where its value came from, and what is
/// expected.
pub(super) fn describe(figment: &Figment, error: figment::Error) -> ConfigError {
    let key = error.path.join(".");
    let source = error
        .metadata
        .as_ref()
        .map(|m| describe_source(m, &key))
        .unwrap_or_else(|| "built-in defaults".into());
    let value = figment
        .find_value(&key)
        .map(|v| format!("= {} ", render(&v)))
        .unwrap_or_default();
    let expected = match &error.kind {
        figment::error::Kind::UnknownField(field, _) => {
            // figment's path already ends with the unknown field.
            let key = if key.is_empty() { field.clone() } else { key };
            return ConfigError(format!(
                "config error: unknown key `{key}` (from {source}): expected one of the keys \
                 `workhorse config` lists"
            ));
        }
        _ if let Some(expected) = expectation(&key) => expected.to_string(),
        figment::error::Kind::InvalidType(_, expected)
        | figment::error::Kind::InvalidValue(_, expected) => expected.clone(),
        other => other.to_string(),
    };
    let key = if key.is_empty() { "<root>".into() } else { key };
    ConfigError(format!(
        "config error: `{key}` {value}(from {source}): expected {expected}"
    ))
}

fn describe_source(meta: &Metadata, key: &str) -> String {
    if matches!(meta.source, Some(figment::Source::Code(_))) {
        return "built-in defaults".into();
    }
    if meta.name.contains("environment") {
        let var = key
            .split('.')
            .map(str::to_uppercase)
            .collect::<Vec<_>>()
            .join("__");
        return format!("environment variable {ENV_PREFIX}{var}");
    }
    match &meta.source {
        // figment shows files relative to the working directory; operators want the real path.
        Some(figment::Source::File(path)) => format!("{} {}", meta.name, absolute(path).display()),
        Some(source) => format!("{} {source}", meta.name),
        None => meta.name.to_string(),
    }
}

fn source_of(figment: &Figment, key: &str) -> String {
    figment
        .find_metadata(key)
        .map(|m| describe_source(m, key))
        .unwrap_or_else(|| "built-in defaults".into())
}

fn render(value: &Value) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| format!("{value:?}"))
}

/// Keys whose values are secrets and are shown redacted.
const SECRET_KEYS: [&str; 2] = ["database.url", "telemetry.otlp_headers"];

impl Loaded {
    /// Every effective key with its value (secrets redacted) and the source it came from, one per
    /// line, as `workhorse config` prints them.
    pub fn explain(&self) -> Vec<(String, String, String)> {
        let mut rows = Vec::new();
        let top_keys = match serde_json::to_value(Config::default()) {
            Ok(serde_json::Value::Object(map)) => map.keys().cloned().collect(),
            _ => Vec::new(),
        };
        for key in top_keys {
            if let Ok(value) = self.figment.find_value(&key) {
                walk(&self.figment, &key, &value, &mut rows);
            }
        }
        rows
    }
}

fn walk(figment: &Figment, key: &str, value: &Value, rows: &mut Vec<(String, String, String)>) {
    if let Value::Dict(_, dict) = value
        && !dict.is_empty()
        && !SECRET_KEYS.contains(&key)
    {
        for (k, v) in dict {
            let child = if key.is_empty() {
                k.clone()
            } else {
                format!("{key}.{k}")
            };
            walk(figment, &child, v, rows);
        }
        return;
    }
    let shown = if SECRET_KEYS.contains(&key) {
        redact(key, value)
    } else {
        render(value)
    };
    rows.push((
        key.to_string(),
        shown,
        provenance(figment, key, value.tag()),
    ));
}

fn provenance(figment: &Figment, key: &str, tag: Tag) -> String {
    figment
        .get_metadata(tag)
        .map(|m| describe_source(m, key))
        .unwrap_or_else(|| "built-in defaults".into())
}

fn redact(key: &str, value: &Value) -> String {
    match value {
        Value::String(_, s) if s.is_empty() => "\"\"".into(),
        Value::String(_, s) if key == "database.url" => format!("{:?}", redact_url(s)),
        Value::Dict(_, d) if d.is_empty() => "{}".into(),
        Value::Dict(_, d) => format!(
            "{{ {} }}",
            d.keys()
                .map(|k| format!("{k} = \"<redacted>\""))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        _ => "\"<redacted>\"".into(),
    }
}
