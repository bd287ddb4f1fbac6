//! A JSON-aware diff of two OpenAPI documents, short enough to read in a failing test: the
//! operations, schemas and other parts that were added, removed or changed, each change named by
//! its JSON pointer (RFC 6901).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

/// The methods an OpenAPI path item can hold.
const METHODS: [&str; 8] = [
    "get", "head", "post", "put", "patch", "delete", "options", "trace",
];

/// Values longer than this are cut in the report.
const SHORT: usize = 60;

/// One difference, at `at` (the pointer's segments, unescaped).
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub at: Vec<String>,
    pub what: What,
}

/// What happened at a pointer.
#[derive(Debug, Clone, PartialEq)]
pub enum What {
    Added(Value),
    Removed(Value),
    Changed { was: Value, now: Value },
}

/// Every difference from `was` to `now`, in pointer order; object key order does not matter.
pub fn changes(was: &Value, now: &Value) -> Vec<Change> {
    let mut out = Vec::new();
    walk(was, now, &mut Vec::new(), &mut out);
    out
}

fn walk(was: &Value, now: &Value, at: &mut Vec<String>, out: &mut Vec<Change>) {
    match (was, now) {
        (Value::Object(a), Value::Object(b)) => {
            let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            for key in keys {
                at.push(key.clone());
                match (a.get(key), b.get(key)) {
                    (Some(x), Some(y)) => walk(x, y, at, out),
                    (Some(x), None) => out.push(change(at, What::Removed(x.clone()))),
                    (None, Some(y)) => out.push(change(at, What::Added(y.clone()))),
                    (None, None) => {}
                }
                at.pop();
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                at.push(i.to_string());
                walk(x, y, at, out);
                at.pop();
            }
        }
        _ if was == now => {}
        _ => out.push(change(
            at,
            What::Changed {
                was: was.clone(),
                now: now.clone(),
            },
        )),
    }
}

fn change(at: &[String], what: What) -> Change {
    Change {
        at: at.to_vec(),
        what,
    }
}

/// `segments` as a JSON pointer: `~` and `/` escaped, each segment after a `/`.
pub fn pointer(segments: &[String]) -> String {
    segments
        .iter()
        .map(|s| format!("/{}", s.replace('~', "~0").replace('/', "~1")))
        .collect()
}

/// The part of the document a change belongs to, in the order the report lists them.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Unit {
    Operation { path: String, method: String },
    Path(String),
    Schema(String),
    Other(String),
}

impl Unit {
    /// The unit of a pointer and how many of its segments name the unit itself.
    fn of(at: &[String]) -> (Unit, usize) {
        match at {
            [p, path, method, ..] if p == "paths" && METHODS.contains(&method.as_str()) => (
                Unit::Operation {
                    path: path.clone(),
                    method: method.clone(),
                },
                3,
            ),
            [p, path, ..] if p == "paths" => (Unit::Path(path.clone()), 2),
            [c, s, name, ..] if c == "components" && s == "schemas" => {
                (Unit::Schema(name.clone()), 3)
            }
            [first, ..] => (Unit::Other(first.clone()), 1),
            [] => (Unit::Other(String::new()), 0),
        }
    }

    fn section(&self) -> &'static str {
        match self {
            Unit::Operation { .. } | Unit::Path(_) => "operations",
            Unit::Schema(_) => "schemas",
            Unit::Other(_) => "other",
        }
    }

    fn label(&self, was: &Value, now: &Value) -> String {
        match self {
            Unit::Operation { path, method } => {
                let id = [now, was].into_iter().find_map(|doc| {
                    doc.get("paths")?.get(path)?.get(method)?["operationId"].as_str()
                });
                let id = id.map(|id| format!(" ({id})")).unwrap_or_default();
                format!("{} {path}{id}", method.to_ascii_uppercase())
            }
            Unit::Path(path) => path.clone(),
            Unit::Schema(name) => name.clone(),
            Unit::Other(key) => pointer(std::slice::from_ref(key)),
        }
    }
}

/// A whole path item added or removed is one change per operation, so each is listed.
fn split_path_items(changes: &[Change]) -> Vec<Change> {
    let mut out = Vec::new();
    for c in changes {
        let whole = match &c.what {
            What::Added(Value::Object(item)) | What::Removed(Value::Object(item))
                if c.at.len() == 2 && c.at[0] == "paths" =>
            {
                Some(item)
            }
            _ => None,
        };
        match whole {
            Some(item) => {
                for (key, value) in item {
                    let what = match c.what {
                        What::Added(_) => What::Added(value.clone()),
                        _ => What::Removed(value.clone()),
                    };
                    let mut at = c.at.clone();
                    at.push(key.clone());
                    out.push(Change { at, what });
                }
            }
            None => out.push(c.clone()),
        }
    }
    out
}

/// The changes from `was` to `now` as at most `max_lines` lines: each operation, schema or other
/// part marked `+` (added), `-` (removed) or `~` (changed), a changed one followed by its
/// pointers (relative to it) when they fit.
pub fn report(was: &Value, now: &Value, max_lines: usize) -> String {
    let changes = split_path_items(&changes(was, now));
    let mut units: BTreeMap<Unit, Vec<(String, &What)>> = BTreeMap::new();
    for c in &changes {
        let (unit, depth) = Unit::of(&c.at);
        let rest = match unit {
            Unit::Other(_) => pointer(&c.at),
            _ => pointer(&c.at[depth..]),
        };
        units.entry(unit).or_default().push((rest, &c.what));
    }

    let mut full = Vec::new();
    let mut summary = Vec::new();
    let mut section = "";
    for (unit, items) in &units {
        if unit.section() != section {
            section = unit.section();
            full.push(format!("{section}:"));
            summary.push(format!("{section}:"));
        }
        let label = unit.label(was, now);
        let (mark, details) = match items.as_slice() {
            [(rest, What::Added(_))] if rest.is_empty() => ("+", false),
            [(rest, What::Removed(_))] if rest.is_empty() => ("-", false),
            _ => ("~", true),
        };
        full.push(format!("  {mark} {label}"));
        match details {
            true => {
                let n = items.len();
                let s = if n == 1 { "" } else { "s" };
                summary.push(format!("  {mark} {label} ({n} change{s})"));
                for (rest, what) in items {
                    full.push(format!("      {rest}: {}", describe(what)));
                }
            }
            false => summary.push(format!("  {mark} {label}")),
        }
    }

    let mut lines = if full.len() <= max_lines {
        full
    } else {
        summary
    };
    if lines.len() > max_lines {
        let more = lines.len() - max_lines.saturating_sub(1);
        lines.truncate(max_lines.saturating_sub(1));
        lines.push(format!("  … and {more} more lines"));
    }
    lines.join("\n")
}

fn describe(what: &What) -> String {
    match what {
        What::Added(v) => format!("added {}", short(v)),
        What::Removed(v) => format!("removed {}", short(v)),
        What::Changed {
            was: Value::Array(a),
            now: Value::Array(b),
        } => {
            let (a, b) = (identities(a), identities(b));
            let gone: Vec<Value> = a.iter().filter(|v| !b.contains(v)).cloned().collect();
            let new: Vec<Value> = b.iter().filter(|v| !a.contains(v)).cloned().collect();
            let list = |vs: Vec<Value>| short(&Value::Array(vs));
            match (gone.is_empty(), new.is_empty()) {
                (true, true) => format!("{} items → {} items", a.len(), b.len()),
                (true, false) => format!("gained {}", list(new)),
                (false, true) => format!("lost {}", list(gone)),
                (false, false) => format!("gained {}, lost {}", list(new), list(gone)),
            }
        }
        What::Changed { was, now } => format!("{} → {}", short(was), short(now)),
    }
}

/// What names each item of an array: a parameter's `name`, a schema's `$ref`, else the item.
fn identities(items: &[Value]) -> Vec<Value> {
    let id = |item: &Value| {
        ["name", "$ref"]
            .into_iter()
            .find_map(|key| item.get(key).filter(|v| v.is_string()))
            .unwrap_or(item)
            .clone()
    };
    items.iter().map(id).collect()
}

/// Compact JSON, cut to [`SHORT`] characters.
fn short(value: &Value) -> String {
    let text = value.to_string();
    match text.char_indices().nth(SHORT) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn doc() -> Value {
        json!({
            "openapi": "3.0.0",
            "info": {"title": "Workhorse", "version": "0.1.0"},
            "paths": {
                "/v1/jobs": {
                    "get": {
                        "operationId": "jobs_list",
                        "parameters": [{"name": "cursor", "schema": {"type": "string"}}]
                    }
                }
            },
            "components": {"schemas": {
                "JobOut": {"type": "object", "required": ["id"]},
                "Gone": {"type": "string"}
            }}
        })
    }

    #[test]
    fn the_same_document_in_another_key_order_has_no_changes() {
        let reordered: Value =
            serde_json::from_str(&serde_json::to_string_pretty(&doc()).unwrap()).unwrap();
        let mut shuffled = json!({});
        for key in ["paths", "components", "info", "openapi"] {
            shuffled[key] = reordered[key].clone();
        }

        assert_eq!(changes(&doc(), &shuffled), vec![]);
    }

    #[test]
    fn pointers_escape_slashes_and_tildes() {
        let at = ["paths".to_string(), "/v1/a~b".to_string()];

        assert_eq!(pointer(&at), "/paths/~1v1~1a~0b");
    }

    #[test]
    fn the_report_names_added_removed_and_changed_parts_by_pointer() {
        let mut now = doc();
        now["paths"]["/v1/jobs/{id}"] = json!({"get": {"operationId": "jobs_get"}});
        now["paths"]["/v1/jobs"]["get"]["parameters"] = json!([
            {"name": "cursor", "schema": {"type": "string"}},
            {"name": "limit", "schema": {"type": "integer"}}
        ]);
        now["paths"]["/v1/jobs"]["get"]["summary"] = json!("List jobs");
        now["components"]["schemas"]["JobOut"]["required"] = json!(["id", "kind"]);
        now["components"]["schemas"]
            .as_object_mut()
            .unwrap()
            .remove("Gone");
        now["info"]["version"] = json!("0.2.0");

        let report = report(&doc(), &now, 40);

        assert_eq!(
            report,
            "operations:\n  \
               ~ GET /v1/jobs (jobs_list)\n      \
                 /parameters: gained [\"limit\"]\n      \
                 /summary: added \"List jobs\"\n  \
               + GET /v1/jobs/{id} (jobs_get)\n\
             schemas:\n  \
               - Gone\n  \
               ~ JobOut\n      \
                 /required: gained [\"kind\"]\n\
             other:\n  \
               ~ /info\n      \
                 /info/version: \"0.1.0\" → \"0.2.0\""
        );
    }

    #[test]
    fn a_long_report_lists_only_the_parts_and_is_cut_to_its_lines() {
        let mut now = doc();
        for i in 0..50 {
            now["components"]["schemas"][format!("S{i:02}")] = json!({"type": "object"});
        }
        now["paths"]["/v1/jobs"]["get"]["summary"] = json!("Jobs");
        now["paths"]["/v1/jobs"]["get"]["description"] = json!("All of them");

        let report = report(&doc(), &now, 10);
        let lines: Vec<&str> = report.lines().collect();

        assert_eq!(lines.len(), 10, "{report}");
        assert_eq!(lines[1], "  ~ GET /v1/jobs (jobs_list) (2 changes)");
        assert_eq!(lines[3], "  + S00");
        assert_eq!(lines[9], "  … and 44 more lines");
    }
}
