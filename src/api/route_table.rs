//! The API's route table, read once from the OpenAPI document poem-openapi generates: each path
//! template and the methods it serves, so spans and metrics are named by route and a 405 can
//! say in `Allow` what the path does serve (RFC 9110), with no hand-kept list to drift.

use serde_json::Value;

/// Methods in the order `Allow` lists them.
const METHOD_ORDER: [&str; 8] = [
    "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE",
];

/// One path template (`/v1/users/{id}`) and the methods the API serves on it.
#[derive(Debug, Clone)]
pub struct RouteEntry {
    segments: Vec<String>,
    /// Upper-case methods in [`METHOD_ORDER`]; `GET, HEAD` for the read-only routes outside
    /// the spec (the docs, the spec, `/metrics`).
    methods: Vec<&'static str>,
}

impl RouteEntry {
    /// The template, e.g. `/v1/users/{id}`.
    pub fn template(&self) -> String {
        format!("/{}", self.segments.join("/"))
    }

    /// The value of an `Allow` header for this path (`GET, HEAD, PATCH`).
    pub fn allow(&self) -> Option<String> {
        (!self.methods.is_empty()).then(|| self.methods.join(", "))
    }

    fn matches(&self, segments: &[&str]) -> bool {
        self.segments.len() == segments.len()
            && self
                .segments
                .iter()
                .zip(segments)
                .all(|(t, s)| t.starts_with('{') || t == s)
    }

    fn parameters(&self) -> usize {
        self.segments.iter().filter(|s| s.starts_with('{')).count()
    }
}

/// The path templates of the API, matched segment by segment.
#[derive(Debug, Default)]
pub struct RouteTable(Vec<RouteEntry>);

impl RouteTable {
    /// The table from the `paths` of an OpenAPI document, plus fixed read-only routes outside
    /// it (`extra`, served for `GET` and `HEAD`).
    pub fn from_spec(spec: &Value, extra: &[&str]) -> Self {
        let mut entries: Vec<RouteEntry> = spec
            .get("paths")
            .and_then(Value::as_object)
            .map(|paths| {
                paths
                    .iter()
                    .map(|(path, operations)| RouteEntry {
                        segments: split(path),
                        methods: methods(operations),
                    })
                    .collect()
            })
            .unwrap_or_default();
        entries.extend(extra.iter().map(|path| RouteEntry {
            segments: split(path),
            methods: vec!["GET", "HEAD"],
        }));
        // Fixed segments win over parameters, as in poem's router: fewer parameters first.
        entries.sort_by_key(RouteEntry::parameters);
        Self(entries)
    }

    /// Add routes served outside the spec (the dashboard), with their methods in `Allow`
    /// order; `HEAD` is added beside `GET`.
    pub fn with(mut self, routes: &[(&str, &[&'static str])]) -> Self {
        self.0.extend(routes.iter().map(|(path, methods)| {
            RouteEntry {
                segments: split(path),
                methods: METHOD_ORDER
                    .into_iter()
                    .filter(|m| methods.contains(m) || (*m == "HEAD" && methods.contains(&"GET")))
                    .collect(),
            }
        }));
        self.0.sort_by_key(RouteEntry::parameters);
        self
    }

    /// The route matching `path`, if any.
    pub fn find(&self, path: &str) -> Option<&RouteEntry> {
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        self.0.iter().find(|entry| entry.matches(&segments))
    }
}

/// The methods of a path item, in `Allow` order. poem answers `HEAD` wherever it serves `GET`
/// (the same headers, no body), so `HEAD` is listed with it.
fn methods(operations: &Value) -> Vec<&'static str> {
    let served = |method: &str| {
        operations
            .as_object()
            .is_some_and(|ops| ops.contains_key(&method.to_ascii_lowercase()))
    };
    METHOD_ORDER
        .into_iter()
        .filter(|m| served(m) || (*m == "HEAD" && served("GET")))
        .collect()
}

fn split(path: &str) -> Vec<String> {
    path.split('/')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> RouteTable {
        let spec = serde_json::json!({"paths": {
            "/v1/users/{id}": {"get": {}, "patch": {}},
            "/v1/users/me": {"get": {}},
            "/v1/jobs/{id}/cancel": {"post": {}},
        }});
        RouteTable::from_spec(&spec, &["/docs"])
    }

    #[test]
    fn routes_prefer_fixed_segments_and_fill_parameters() {
        let routes = table();
        let find = |path| routes.find(path).map(RouteEntry::template);
        assert_eq!(find("/v1/users/me").as_deref(), Some("/v1/users/me"));
        assert_eq!(find("/v1/users/42").as_deref(), Some("/v1/users/{id}"));
        assert_eq!(find("/docs").as_deref(), Some("/docs"));
        assert_eq!(find("/nope"), None);
    }

    #[test]
    fn allow_lists_the_spec_methods_in_order_with_head_beside_get() {
        let routes = table();
        let allow = |path| routes.find(path).and_then(RouteEntry::allow);
        assert_eq!(allow("/v1/users/42").as_deref(), Some("GET, HEAD, PATCH"));
        assert_eq!(allow("/v1/jobs/7/cancel").as_deref(), Some("POST"));
        assert_eq!(allow("/docs").as_deref(), Some("GET, HEAD"));
    }
}
