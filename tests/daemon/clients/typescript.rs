//! openapi-typescript turns the served spec into `schema.d.ts`, and every component schema must
//! come out whole: a check file written from the spec asserts, at the type level, each schema's
//! keys, its required keys and each property's type, so `tsc` fails on a schema dropped or
//! loosened. `tests/clients/typescript/journey.ts`, typed by the generated `paths`, then walks
//! the journey with openapi-fetch. The tools are pinned by that directory's package-lock.json
//! (`npm ci` there); skipped, with a `SKIPPED:` line, where they are not installed, unless
//! `WORKHORSE_REQUIRE_TS_CLIENT=1`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use tempfile::TempDir;

use super::{CLIENTS_DIR, Journey, log, skip};

const REQUIRE_ENV: &str = "WORKHORSE_REQUIRE_TS_CLIENT";
const INSTALL: &str = "npm ci --prefix tests/clients/typescript";
/// The packages the test runs, each installed at the version package.json pins.
const PACKAGES: [&str; 3] = ["openapi-typescript", "openapi-fetch", "typescript"];
/// The files of the project copied beside the generated ones.
const SOURCES: [&str; 3] = ["journey.ts", "tsconfig.json", "package.json"];

fn project() -> PathBuf {
    Path::new(CLIENTS_DIR).join("typescript")
}

/// Whether node and the pinned packages are installed; prints `SKIPPED:` (or panics when they
/// are required) if not.
fn tools_installed() -> bool {
    match missing_tool() {
        None => true,
        Some(why) => {
            skip(&why, REQUIRE_ENV, INSTALL);
            false
        }
    }
}

fn missing_tool() -> Option<String> {
    if let Err(e) = Command::new("node").arg("--version").output() {
        return Some(format!("node cannot run: {e}"));
    }
    let manifest = read_json(&project().join("package.json"));
    for package in PACKAGES {
        let pinned = &manifest["devDependencies"][package];
        let installed = project()
            .join("node_modules")
            .join(package)
            .join("package.json");
        if !installed.is_file() {
            return Some(format!("{package} is not installed"));
        }
        let version = &read_json(&installed)["version"];
        if version != pinned {
            return Some(format!("{package} {version} is installed, not {pinned}"));
        }
    }
    None
}

fn read_json(path: &Path) -> Value {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()))
}

/// One of the project's installed tools, run in `dir`.
fn tool(name: &str, dir: &Path) -> Command {
    let mut command = Command::new(project().join("node_modules/.bin").join(name));
    command.current_dir(dir);
    command
}

/// Copies the project into `dir` (node_modules as a link, found by both tsc and node) and
/// writes the spec and the generator's `schema.d.ts` beside it.
fn generate(spec: &Value, dir: &Path) -> Output {
    for file in SOURCES {
        std::fs::copy(project().join(file), dir.join(file)).expect("copying the project");
    }
    std::os::unix::fs::symlink(project().join("node_modules"), dir.join("node_modules"))
        .expect("linking node_modules");
    std::fs::write(dir.join("spec.json"), spec.to_string()).expect("writing the spec");
    tool("openapi-typescript", dir)
        .args(["spec.json", "--output", "schema.d.ts"])
        .output()
        .expect("running openapi-typescript")
}

/// The TypeScript type a property schema must come out as, where it is one this check knows:
/// a `nullable` one also takes `null`.
fn ts_type(schema: &Value) -> Option<String> {
    let ty = non_null_type(schema)?;
    if schema["nullable"] == true {
        Some(format!("{ty} | null"))
    } else {
        Some(ty)
    }
}

fn non_null_type(schema: &Value) -> Option<String> {
    if let Some(choices) = schema["oneOf"].as_array() {
        let types: Option<Vec<String>> = choices.iter().map(ts_type).collect();
        return Some(types?.join(" | "));
    }
    if let Some(target) = schema["$ref"].as_str() {
        let name = target.rsplit('/').next()?;
        return Some(format!("S[\"{name}\"]"));
    }
    if let Some(values) = schema["enum"].as_array() {
        return Some(
            values
                .iter()
                .map(Value::to_string)
                .collect::<Vec<_>>()
                .join(" | "),
        );
    }
    match schema["type"].as_str() {
        None if schema.get("properties").is_none() => Some("unknown".into()),
        Some("string") => Some("string".into()),
        Some("integer" | "number") => Some("number".into()),
        Some("boolean") => Some("boolean".into()),
        Some("array") => Some(format!("({})[]", ts_type(&schema["items"])?)),
        _ => None,
    }
}

/// A union of string literals, or `never` for none.
fn literals<'a>(names: impl Iterator<Item = &'a str>) -> String {
    let union: Vec<String> = names.map(|n| format!("\"{n}\"")).collect();
    if union.is_empty() {
        "never".into()
    } else {
        union.join(" | ")
    }
}

/// `schemas_check.ts`: one exported constant per assertion, each typed `true` only if the
/// generated type is exactly what the spec says (`Same` tells `any` from everything else).
fn schema_checks(spec: &Value) -> String {
    let mut out = String::from(
        "import type { components } from \"./schema.js\";\n\
         type S = components[\"schemas\"];\n\
         type Same<A, B> =\n  \
           (<T>() => T extends A ? 1 : 2) extends (<T>() => T extends B ? 1 : 2) ? true : false;\n\
         type RequiredKeys<T> =\n  \
           { [K in keyof T]-?: {} extends Pick<T, K> ? never : K }[keyof T];\n",
    );
    let schemas = spec["components"]["schemas"].as_object().expect("schemas");
    for (name, schema) in schemas {
        let id = name.replace(|c: char| !c.is_ascii_alphanumeric(), "_");
        let Some(properties) = schema["properties"].as_object() else {
            let ty = ts_type(schema).unwrap_or_else(|| panic!("{name}: an unknown shape"));
            out += &format!("export const {id}: Same<S[\"{name}\"], {ty}> = true;\n");
            continue;
        };
        if properties.is_empty() {
            // A closed object with no fields: openapi-typescript's `Record<string, never>`.
            out +=
                &format!("export const {id}: Same<S[\"{name}\"], Record<string, never>> = true;\n");
            continue;
        }
        let keys = literals(properties.keys().map(String::as_str));
        out += &format!("export const {id}$keys: Same<keyof S[\"{name}\"], {keys}> = true;\n");
        let required = schema["required"].as_array().into_iter().flatten();
        let required = literals(required.filter_map(Value::as_str));
        out += &format!(
            "export const {id}$required: Same<RequiredKeys<S[\"{name}\"]>, {required}> = true;\n"
        );
        for (property, property_schema) in properties {
            let Some(ty) = ts_type(property_schema) else {
                continue;
            };
            let field = property.replace(|c: char| !c.is_ascii_alphanumeric(), "_");
            out += &format!(
                "export const {id}__{field}: \
                 Same<Exclude<S[\"{name}\"][\"{property}\"], undefined>, {ty}> = true;\n"
            );
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn openapi_typescript_types_every_schema_and_openapi_fetch_walks_the_journey() {
    if !tools_installed() {
        return;
    }
    // Arrange
    let journey = Journey::start().await;
    let dir = TempDir::new().expect("creating a temp dir");

    // Act: generate, check each schema at the type level, compile strictly, run.
    let generated = generate(&journey.spec, dir.path());
    let generated_log = log(&generated);
    let declarations = std::fs::read_to_string(dir.path().join("schema.d.ts")).unwrap_or_default();
    std::fs::write(
        dir.path().join("schemas_check.ts"),
        schema_checks(&journey.spec),
    )
    .expect("writing the schema checks");
    let compiled = tool("tsc", dir.path())
        .args(["--project", "tsconfig.json"])
        .output()
        .expect("running tsc");
    let mut node = Command::new("node");
    node.arg(dir.path().join("out/journey.js"));

    // Assert: no warning, every schema, path and operation present and exactly typed, the
    // journey.
    assert!(
        generated.status.success(),
        "openapi-typescript: {generated_log}"
    );
    let lower = generated_log.to_lowercase();
    for sign in ["warn", "⚠", "error"] {
        assert!(
            !lower.contains(sign),
            "openapi-typescript said {sign:?}: {generated_log}"
        );
    }
    for name in journey.schema_names() {
        assert!(
            declarations.contains(&format!("\n        {name}: ")),
            "components[\"schemas\"] has no {name}"
        );
    }
    for path in journey.spec["paths"].as_object().expect("paths").keys() {
        let declared = format!("\n    \"{path}\": {{");
        assert!(declarations.contains(&declared), "paths has no {path}");
    }
    for id in journey.operation_ids() {
        let declared = format!("\n    {id}: {{");
        assert!(declarations.contains(&declared), "operations has no {id}");
    }
    assert!(compiled.status.success(), "tsc: {}", log(&compiled));
    let seen = journey.run(node, "TypeScript");
    journey.check(&seen, "typescript").await;
}
