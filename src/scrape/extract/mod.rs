//! Structured extraction (`formats: ["json"]`): the page's main content goes to the configured
//! model providers (the summariser's chain, with its fallback and circuit breaker) with the
//! caller's JSON Schema and prompt; the answer is parsed and held to the schema (`schema`), and
//! a wrong answer is sent back once with what was wrong before the scrape fails with
//! `extraction_invalid`.

pub mod schema;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::scrape::options::Invalid;
use crate::summarise::providers::{CompletionRequest, ProviderFailure, Providers, Task};

/// The largest schema, serialised.
pub const MAX_SCHEMA_BYTES: usize = 32 * 1024;
/// The longest prompt.
pub const MAX_PROMPT_CHARS: usize = 4_000;
/// The page text sent at most (a model's context is bounded; the start of a page matters most).
const MAX_DOCUMENT_CHARS: usize = 60_000;
/// The longest answer accepted.
const MAX_ANSWER_CHARS: usize = 20_000;
/// Calls per extraction: the first, and one more with the first answer's faults.
const CALLS: usize = 2;

/// What to extract: a JSON Schema, and what to look for in words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Extraction {
    /// The answer's JSON Schema.
    pub schema: Value,
    /// What to extract, in words (optional).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
}

impl Extraction {
    /// The schema is one the check understands, and both are within bounds.
    pub fn check(&self) -> Result<(), Invalid> {
        let invalid = |why: String| Invalid("json_options", why);
        if self.schema.to_string().len() > MAX_SCHEMA_BYTES {
            return Err(invalid(format!(
                "the schema must be at most {MAX_SCHEMA_BYTES} bytes"
            )));
        }
        schema::supported(&self.schema).map_err(invalid)?;
        if self
            .prompt
            .as_ref()
            .is_some_and(|p| p.chars().count() > MAX_PROMPT_CHARS)
        {
            return Err(invalid(format!(
                "the prompt must be at most {MAX_PROMPT_CHARS} characters"
            )));
        }
        Ok(())
    }
}

/// Why an extraction gave no value.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ExtractError {
    /// The model's answers were not JSON matching the schema, twice.
    #[error("the model's answer did not match the schema: {0}")]
    Invalid(String),
    /// No provider could answer now (all failing or cooling down): try again later.
    #[error("{0}")]
    Unavailable(String),
    /// The providers refused the request for good (e.g. the page is too long for them).
    #[error("{0}")]
    Refused(String),
}

/// The value `document` holds, as `extraction` describes it.
pub async fn extract(
    providers: &Providers,
    document: &str,
    extraction: &Extraction,
) -> Result<Value, ExtractError> {
    let document: String = document.chars().take(MAX_DOCUMENT_CHARS).collect();
    let mut faults: Vec<String> = Vec::new();
    for _ in 0..CALLS {
        let mut instruction = format!(
            "Extract from the document the data this JSON Schema describes, as one JSON value:\n{}",
            extraction.schema
        );
        if let Some(prompt) = extraction
            .prompt
            .as_deref()
            .filter(|p| !p.trim().is_empty())
        {
            instruction.push_str(&format!("\nWhat to extract: {}", prompt.trim()));
        }
        if !faults.is_empty() {
            instruction.push_str(&format!(
                "\nYour previous answer was refused: {}. Answer again with JSON that matches the \
                 schema.",
                faults.join("; ")
            ));
        }
        let request = CompletionRequest {
            system: String::new(),
            document: document.clone(),
            instruction,
            max_chars: MAX_ANSWER_CHARS,
            preferred: None,
            task: Task::Extraction {
                schema: extraction.schema.clone(),
            },
        };
        let answer = providers.complete(&request).await.map_err(|e| match e {
            ProviderFailure::AllUnavailable(_) => ExtractError::Unavailable(e.to_string()),
            ProviderFailure::Permanent(_) => ExtractError::Refused(e.to_string()),
        })?;
        faults = match parse(&answer.text) {
            Ok(value) => {
                let found = schema::validate(&extraction.schema, &value);
                if found.is_empty() {
                    return Ok(value);
                }
                found
            }
            Err(e) => vec![format!("it is not JSON ({e})")],
        };
    }
    Err(ExtractError::Invalid(faults.join("; ")))
}

/// The JSON in an answer, without the code fence some models put around it anyway.
fn parse(text: &str) -> Result<Value, serde_json::Error> {
    let text = text.trim();
    let text = text
        .strip_prefix("```json")
        .or_else(|| text.strip_prefix("```"))
        .and_then(|t| t.strip_suffix("```"))
        .unwrap_or(text);
    serde_json::from_str(text.trim())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn answers_are_read_with_or_without_a_code_fence() {
        assert_eq!(parse("{\"a\": 1}").ok(), Some(json!({"a": 1})));
        assert_eq!(
            parse("```json\n{\"a\": 1}\n```").ok(),
            Some(json!({"a": 1}))
        );
        assert!(parse("The answer is {\"a\": 1}").is_err());
    }

    #[test]
    fn schemas_and_prompts_are_bounded() {
        let ok = Extraction {
            schema: json!({"type": "object"}),
            prompt: Some("the price".into()),
        };
        assert!(ok.check().is_ok());
        let long = Extraction {
            prompt: Some("x".repeat(MAX_PROMPT_CHARS + 1)),
            ..ok.clone()
        };
        assert!(long.check().is_err());
        let odd = Extraction {
            schema: json!({"$ref": "#/x"}),
            prompt: None,
        };
        assert!(odd.check().is_err_and(|e| e.1.contains("$ref")));
    }
}
