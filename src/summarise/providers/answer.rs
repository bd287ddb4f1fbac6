//! What is accepted from a provider: one non-empty text choice, within the length asked for,
//! without the document delimiters, and not a refusal.

use async_openai::types::chat::{CreateChatCompletionResponse, FinishReason};

use super::prompt::has_delimiter;

/// The answer's text if it is a usable summary, else why not.
pub(super) fn check_answer(
    parsed: &CreateChatCompletionResponse,
    max_chars: usize,
) -> Result<String, String> {
    let choice = parsed.choices.first().ok_or("no choices")?;
    check_text(
        choice.message.refusal.as_deref(),
        choice.finish_reason,
        choice.message.content.as_deref().unwrap_or_default(),
        max_chars,
    )
}

/// The same checks on an answer's parts, as a streamed answer is assembled from its chunks:
/// the refusal field, the finish reason and the text.
pub(super) fn check_text(
    refusal: Option<&str>,
    finish_reason: Option<FinishReason>,
    content: &str,
    max_chars: usize,
) -> Result<String, String> {
    if let Some(refusal) = refusal.filter(|r| !r.trim().is_empty()) {
        return Err(format!("refused: {}", refusal.trim()));
    }
    match finish_reason {
        Some(FinishReason::Length) => return Err("cut off at max_output_tokens".to_owned()),
        Some(FinishReason::ContentFilter) => return Err("stopped by a content filter".to_owned()),
        Some(FinishReason::ToolCalls | FinishReason::FunctionCall) => {
            return Err("a tool call instead of text".to_owned());
        }
        Some(FinishReason::Stop) | None => {}
    }
    let text = content.trim();
    if text.is_empty() {
        return Err("empty".to_owned());
    }
    let limit = answer_limit(max_chars);
    let length = text.chars().count();
    if length > limit {
        return Err(format!("{length} characters, more than {limit}"));
    }
    if has_delimiter(text) {
        return Err("it contains the document delimiters".to_owned());
    }
    if is_refusal(text) {
        return Err(format!(
            "a refusal: {}",
            text.chars().take(80).collect::<String>()
        ));
    }
    Ok(text.to_owned())
}

/// Longest answer accepted, in characters, when `max_chars` were asked for.
pub(super) fn answer_limit(max_chars: usize) -> usize {
    max_chars.saturating_add(max_chars / 5)
}

/// Whether the answer opens like a refusal rather than a summary.
fn is_refusal(text: &str) -> bool {
    const OPENINGS: [&str; 8] = [
        "i cannot",
        "i can't",
        "i can not",
        "i'm sorry",
        "i am sorry",
        "i'm unable",
        "i am unable",
        "as an ai",
    ];
    let start: String = text
        .chars()
        .take(40)
        .collect::<String>()
        .to_lowercase()
        .replace('’', "'");
    OPENINGS.iter().any(|opening| start.starts_with(opening))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_recognised_by_their_opening_only() {
        assert!(is_refusal("I’m sorry, but I can't help with that."));
        assert!(is_refusal("I cannot summarise this document."));
        assert!(!is_refusal("The author says I cannot ignore the results."));
    }
}
