//! openapi-python-client builds a complete client from the served spec (no schema or operation
//! dropped, no warning), and `tests/clients/python_journey.py` walks the journey with it.
//! Skipped, with a `SKIPPED:` line, where the generator is not installed, unless
//! `WORKHORSE_REQUIRE_CLIENTS=1`.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;
use tempfile::TempDir;

use super::{CLIENTS_DIR, Journey, log, skip};

const GENERATOR: &str = "openapi-python-client";
/// Its Python module: `python3 -m` finds it wherever pip put the script.
const MODULE: &str = "openapi_python_client";
const REQUIRE_ENV: &str = "WORKHORSE_REQUIRE_CLIENTS";
const INSTALL: &str = "python3 -m pip install openapi-python-client==0.29.1";
/// The package the generated client is written as (with `--meta none`, the output directory).
const PACKAGE: &str = "workhorse_client";
/// A PNG screenshot is bytes to a client: without the override the generator omits that
/// response. No post hooks: formatting the generated code (with ruff) proves nothing here.
const CONFIG: &str = "post_hooks: []
content_type_overrides:
  image/png: application/octet-stream
";

/// Whether the generator runs here; prints `SKIPPED:` (or panics when it is required) if not.
fn generator_installed() -> bool {
    let why = match python_module().arg("--version").output() {
        Ok(out) if out.status.success() => return true,
        Ok(out) => format!(
            "{GENERATOR} --version failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ),
        Err(e) => format!("python3 cannot run: {e}"),
    };
    skip(&why, REQUIRE_ENV, INSTALL);
    false
}

fn python_module() -> Command {
    let mut command = Command::new("python3");
    command.args(["-m", MODULE]);
    command
}

/// The generator's model file for a component schema: `JobSummaryOut` → `job_summary_out.py`.
fn model_file(schema: &str) -> String {
    let mut out = String::new();
    let chars: Vec<char> = schema.chars().collect();
    for (i, c) in chars.iter().enumerate() {
        let after_lower = i > 0 && (chars[i - 1].is_lowercase() || chars[i - 1].is_ascii_digit());
        let starts_word = i > 0
            && chars[i - 1].is_uppercase()
            && chars.get(i + 1).is_some_and(|n| n.is_lowercase());
        if c.is_uppercase() && (after_lower || starts_word) {
            out.push('_');
        }
        out.extend(c.to_lowercase());
    }
    out + ".py"
}

fn generate(spec: &Value, dir: &Path) -> Output {
    let spec_file = dir.join("spec.json");
    std::fs::write(&spec_file, spec.to_string()).expect("writing the spec");
    let config = dir.join("config.yaml");
    std::fs::write(&config, CONFIG).expect("writing the generator's config");
    python_module()
        .arg("generate")
        .arg("--path")
        .arg(&spec_file)
        .arg("--config")
        .arg(&config)
        .arg("--output-path")
        .arg(dir.join(PACKAGE))
        .args(["--meta", "none", "--fail-on-warning"])
        .output()
        .expect("running openapi-python-client")
}

/// The file names of the generated operation modules, one directory per tag under `api`.
fn api_modules(api: &Path) -> Vec<String> {
    let entries = |dir: &Path| std::fs::read_dir(dir).expect("reading the generated api package");
    entries(api)
        .map(|tag| tag.expect("a tag").path())
        .filter(|tag| tag.is_dir())
        .flat_map(|tag| entries(&tag).collect::<Vec<_>>())
        .map(|module| {
            module
                .expect("a module")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect()
}

/// The operations whose JSON body is the component schema `name`.
fn operations_taking<'a>(spec: &'a Value, name: &str) -> Vec<&'a str> {
    let reference = format!("#/components/schemas/{name}");
    let paths = spec["paths"].as_object().expect("paths");
    paths
        .values()
        .filter_map(Value::as_object)
        .flat_map(|p| p.values())
        .filter(|op| {
            op.pointer("/requestBody/content/application~1json/schema/$ref")
                .and_then(Value::as_str)
                == Some(reference.as_str())
        })
        .filter_map(|op| op["operationId"].as_str())
        .collect()
}

/// The schemas with a field of the union `name`, or a list of it.
fn schemas_holding<'a>(spec: &'a Value, name: &str) -> Vec<&'a str> {
    let reference = format!("#/components/schemas/{name}");
    let schemas = spec["components"]["schemas"].as_object().expect("schemas");
    let refers = |field: &Value| {
        [field.get("$ref"), field.pointer("/items/$ref")]
            .into_iter()
            .flatten()
            .any(|r| r.as_str() == Some(reference.as_str()))
    };
    schemas
        .iter()
        .filter(|(_, schema)| {
            (schema["properties"].as_object()).is_some_and(|p| p.values().any(refers))
        })
        .map(|(holder, _)| holder.as_str())
        .collect()
}

/// The generated module of operation `id`, in whichever tag's package it is.
fn module_source(api: &Path, id: &str) -> String {
    let tags = std::fs::read_dir(api).expect("reading the generated api package");
    tags.filter_map(|tag| std::fs::read_to_string(tag.ok()?.path().join(format!("{id}.py"))).ok())
        .next()
        .unwrap_or_else(|| panic!("{id} has no api module"))
}

#[tokio::test(flavor = "multi_thread")]
async fn openapi_python_client_generates_every_schema_and_walks_the_journey() {
    if !generator_installed() {
        return;
    }
    // Arrange
    let journey = Journey::start().await;
    let dir = TempDir::new().expect("creating a temp dir");

    // Act
    let generated = generate(&journey.spec, dir.path());
    let mut script = Command::new("python3");
    script
        .arg(Path::new(CLIENTS_DIR).join("python_journey.py"))
        .env("PYTHONPATH", dir.path());

    // Assert: generated without a warning, a model for every component schema, a module for
    // every operation, the journey.
    let log = log(&generated);
    assert!(generated.status.success(), "{GENERATOR}: {log}");
    for sign in [
        "Warning",
        "WARNING",
        "Unable to",
        "removal of",
        "will be omitted",
    ] {
        assert!(!log.contains(sign), "{GENERATOR} said {sign:?}: {log}");
    }
    let models = dir.path().join(PACKAGE).join("models");
    let api = dir.path().join(PACKAGE).join("api");
    for name in journey.schema_names() {
        let schema = &journey.spec["components"]["schemas"][name];
        if let Some(choices) = schema["oneOf"].as_array() {
            // A union is a type alias, not a model: each choice is a model (checked as a
            // schema of its own), and every operation or model that takes the union (as a
            // body, a field or a list's items) names each choice.
            let mut takers: Vec<(String, String)> = operations_taking(&journey.spec, name)
                .into_iter()
                .map(|id| (id.to_string(), module_source(&api, id)))
                .collect();
            for holder in schemas_holding(&journey.spec, name) {
                let source = std::fs::read_to_string(models.join(model_file(holder)))
                    .unwrap_or_else(|e| panic!("{holder}'s model: {e}"));
                takers.push((holder.to_string(), source));
            }
            assert!(!takers.is_empty(), "nothing takes {name}");
            for (taker, source) in takers {
                for choice in choices.iter().filter_map(|c| c["$ref"].as_str()) {
                    let class = choice.rsplit('/').next().unwrap_or(choice);
                    assert!(
                        source.contains(class),
                        "{taker} does not take {class} ({name})"
                    );
                }
            }
            continue;
        }
        let file = model_file(name);
        assert!(models.join(&file).is_file(), "{name} has no {file}");
    }
    let modules = api_modules(&dir.path().join(PACKAGE).join("api"));
    for id in journey.operation_ids() {
        let module = format!("{id}.py");
        assert!(modules.contains(&module), "{id} has no api module");
    }
    let seen = journey.run(script, "Python");
    journey.check(&seen, "python").await;
}
