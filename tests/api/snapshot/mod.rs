//! The OpenAPI document the daemon serves against the committed `docs/openapi.json`, so every
//! contract change shows in review as a change to that file. A difference fails with the
//! operations, schemas and pointers that changed; `WORKHORSE_BLESS=1 cargo test --test api
//! snapshot` rewrites the file from the served document instead.

mod diff;

use std::path::PathBuf;

use serde_json::Value;

/// The command that rewrites `docs/openapi.json`.
const BLESS: &str = "WORKHORSE_BLESS=1 cargo test --test api snapshot";

/// The longest diff a failure prints; past it, only the parts that changed are listed.
const MAX_LINES: usize = 40;

fn committed_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/openapi.json")
}

fn blessing() -> bool {
    std::env::var("WORKHORSE_BLESS").as_deref() == Ok("1")
}

/// The document as the file holds it: pretty-printed, with a trailing newline.
fn file_text(spec: &Value) -> String {
    let mut text = serde_json::to_string_pretty(spec).expect("a JSON value serialises");
    text.push('\n');
    text
}

#[test]
fn the_served_openapi_document_matches_docs_openapi_json() {
    // Arrange: `spec_json` is what `/openapi.json` serves with the built-in configuration.
    let served: Value =
        serde_json::from_str(&workhorse::api::spec_json()).expect("spec_json() is JSON");
    let path = committed_path();

    // Act
    if blessing() {
        std::fs::write(&path, file_text(&served))
            .unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
        eprintln!("wrote {}", path.display());
        return;
    }
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}; create it with `{BLESS}`", path.display()));
    let committed: Value = serde_json::from_str(&text).unwrap_or_else(|e| {
        panic!("docs/openapi.json is not JSON ({e}); rewrite it with `{BLESS}`")
    });

    // Assert
    assert!(
        committed == served,
        "the served OpenAPI document differs from docs/openapi.json:\n{}\n\n\
         If the change is intended, rewrite the file with `{BLESS}`, commit it, and note a \
         change that breaks clients in CHANGELOG.md.",
        diff::report(&committed, &served, MAX_LINES)
    );
}
