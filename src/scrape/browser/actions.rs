//! What a page is made to do before it is captured: clicks, typing, key presses, waits,
//! scrolling and screenshots, run in order, each within its own timeout.

use std::time::Duration;

use fantoccini::error::CmdError;
use fantoccini::key::Key;
use fantoccini::{Client, Locator};
use serde::{Deserialize, Serialize};

use super::PageError;
use super::page::{Failure, classify};
use super::shots;

/// A step's timeout when it names none.
pub const DEFAULT_STEP_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest timeout a step may ask for, and the longest `wait`.
pub const MAX_STEP_TIMEOUT: Duration = Duration::from_secs(30);
/// Steps per page at most.
pub const MAX_ACTIONS: usize = 50;
/// How often an element is looked for.
const POLL: Duration = Duration::from_millis(50);

/// One step before capture.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Action {
    /// Click the first element matching `selector`, waiting for it to appear.
    Click {
        /// CSS selector.
        selector: String,
    },
    /// Type `text` into the first element matching `selector` (focused first).
    Type {
        /// CSS selector.
        selector: String,
        /// The characters to type.
        text: String,
    },
    /// Press a key (`Enter`, `Tab`, `Escape`, `ArrowDown`, … or one character) in the focused
    /// element.
    Press {
        /// The key's name, as [`KEYS`] lists them, or one character.
        key: String,
    },
    /// Wait `ms` milliseconds, or until an element matches `selector`.
    Wait {
        /// Milliseconds to wait.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ms: Option<u32>,
        /// CSS selector to wait for.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        selector: Option<String>,
    },
    /// Scroll one screen down (or `up`), or the element matching `selector` into view.
    Scroll {
        /// `down` (default) or `up`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        direction: Option<String>,
        /// CSS selector to scroll into view.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        selector: Option<String>,
    },
    /// Keep a screenshot of the page as it is now.
    Screenshot {
        /// The whole page rather than the viewport.
        #[serde(default)]
        full_page: bool,
    },
}

/// A step and its timeout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    /// What to do.
    #[serde(flatten)]
    pub action: Action,
    /// Longest the step may take, in milliseconds (default 5,000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u32>,
}

/// Key names `press` accepts, with their WebDriver codes.
pub const KEYS: [(&str, Key); 15] = [
    ("Enter", Key::Enter),
    ("Tab", Key::Tab),
    ("Escape", Key::Escape),
    ("Backspace", Key::Backspace),
    ("Delete", Key::Delete),
    ("Space", Key::Space),
    ("ArrowUp", Key::Up),
    ("ArrowDown", Key::Down),
    ("ArrowLeft", Key::Left),
    ("ArrowRight", Key::Right),
    ("PageUp", Key::PageUp),
    ("PageDown", Key::PageDown),
    ("Home", Key::Home),
    ("End", Key::End),
    ("Insert", Key::Insert),
];

/// The WebDriver code of a key name (case-insensitive) or a single character.
pub fn key_code(name: &str) -> Option<String> {
    if let Some((_, key)) = KEYS.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)) {
        return Some(key.to_string());
    }
    let mut chars = name.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) if !c.is_control() => Some(c.to_string()),
        _ => None,
    }
}

impl Action {
    /// What the step does, for errors: `click \`#more\``.
    pub fn describe(&self) -> String {
        match self {
            Self::Click { selector } => format!("click `{selector}`"),
            Self::Type { selector, .. } => format!("type into `{selector}`"),
            Self::Press { key } => format!("press {key}"),
            Self::Wait {
                selector: Some(s), ..
            } => format!("wait for `{s}`"),
            Self::Wait { ms, .. } => format!("wait {} ms", ms.unwrap_or(0)),
            Self::Scroll {
                selector: Some(s), ..
            } => format!("scroll to `{s}`"),
            Self::Scroll { direction, .. } => {
                format!("scroll {}", direction.as_deref().unwrap_or("down"))
            }
            Self::Screenshot { .. } => "screenshot".into(),
        }
    }
}

/// Run `steps` in order on the page; screenshots they take are pushed on `shots`.
pub(super) async fn run(
    client: &Client,
    steps: &[Step],
    taken: &mut Vec<Vec<u8>>,
) -> Result<(), Failure> {
    for (i, step) in steps.iter().enumerate() {
        let timeout = step
            .timeout_ms
            .map_or(DEFAULT_STEP_TIMEOUT, |ms| Duration::from_millis(ms.into()))
            .min(MAX_STEP_TIMEOUT);
        let what = || format!("step {} ({})", i + 1, step.action.describe());
        // The driver gets a little longer than the step: its own waits end first and say why.
        let grace = timeout + Duration::from_secs(5);
        match tokio::time::timeout(grace, perform(client, &step.action, timeout, taken)).await {
            Ok(Ok(())) => {}
            Ok(Err(StepError::Failed(why))) => {
                return Err(Failure::keep(PageError::ActionFailed(format!(
                    "{}: {why}",
                    what()
                ))));
            }
            Ok(Err(StepError::Driver(e))) => {
                let mut failure = classify(e, &what());
                if let PageError::NavigationFailed(why) = &failure.error {
                    failure.error = PageError::ActionFailed(why.clone());
                }
                return Err(failure);
            }
            Err(_) => {
                return Err(Failure::discard(PageError::ActionFailed(format!(
                    "{}: the browser did not answer within {} ms",
                    what(),
                    grace.as_millis()
                ))));
            }
        }
    }
    Ok(())
}

enum StepError {
    /// The step cannot be done on this page (no such element, not interactable).
    Failed(String),
    /// The WebDriver failed.
    Driver(CmdError),
}

impl From<CmdError> for StepError {
    fn from(e: CmdError) -> Self {
        match &e {
            CmdError::Standard(w) if element_trouble(&w.error) => {
                let message = w.message.lines().next().unwrap_or_default().trim();
                Self::Failed(message.to_string())
            }
            _ if e.is_invalid_selector() => Self::Failed("not a valid CSS selector".into()),
            _ => Self::Driver(e),
        }
    }
}

fn element_trouble(status: &fantoccini::error::ErrorStatus) -> bool {
    use fantoccini::error::ErrorStatus as S;
    matches!(
        status,
        S::NoSuchElement
            | S::ElementNotInteractable
            | S::ElementClickIntercepted
            | S::StaleElementReference
            | S::InvalidElementState
            | S::InvalidSelector
            | S::JavascriptError
            | S::MoveTargetOutOfBounds
    )
}

async fn perform(
    client: &Client,
    action: &Action,
    timeout: Duration,
    taken: &mut Vec<Vec<u8>>,
) -> Result<(), StepError> {
    let find = |selector: &str| {
        let selector = selector.to_string();
        async move {
            let found = client
                .wait()
                .at_most(timeout)
                .every(POLL)
                .for_element(Locator::Css(&selector))
                .await;
            match found {
                Err(CmdError::WaitTimeout) => Err(StepError::Failed(format!(
                    "no element matched within {} ms",
                    timeout.as_millis()
                ))),
                other => Ok(other?),
            }
        }
    };
    match action {
        Action::Click { selector } => find(selector).await?.click().await?,
        Action::Type { selector, text } => {
            let element = find(selector).await?;
            element.click().await?;
            element.send_keys(text).await?;
        }
        Action::Press { key } => {
            let code = key_code(key)
                .ok_or_else(|| StepError::Failed(format!("{key:?} is not a key this knows")))?;
            client.active_element().await?.send_keys(&code).await?;
        }
        Action::Wait {
            selector: Some(selector),
            ..
        } => {
            find(selector).await?;
        }
        Action::Wait { ms, .. } => {
            let wanted = Duration::from_millis(ms.unwrap_or(0).into());
            tokio::time::sleep(wanted.min(MAX_STEP_TIMEOUT)).await;
        }
        Action::Scroll {
            selector: Some(selector),
            ..
        } => {
            let element = find(selector).await?;
            let arg =
                serde_json::to_value(&element).map_err(|e| StepError::Failed(e.to_string()))?;
            client
                .execute("arguments[0].scrollIntoView({block: 'center'});", vec![arg])
                .await?;
        }
        Action::Scroll { direction, .. } => {
            let sign = match direction.as_deref() {
                Some("up") => "-",
                _ => "",
            };
            let script = format!("window.scrollBy(0, {sign}window.innerHeight);");
            client.execute(&script, vec![]).await?;
        }
        Action::Screenshot { full_page } => {
            let png = shots::capture(client, *full_page)
                .await
                .map_err(|e| StepError::Failed(e.to_string()))?;
            taken.push(png);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn steps_read_the_documented_json() {
        let steps: Vec<Step> = serde_json::from_value(json!([
            {"type": "click", "selector": "#more", "timeout_ms": 2000},
            {"type": "type", "selector": "#q", "text": "rye"},
            {"type": "press", "key": "Enter"},
            {"type": "wait", "ms": 500},
            {"type": "scroll", "direction": "up"},
            {"type": "screenshot", "full_page": true},
        ]))
        .expect("steps");
        assert_eq!(steps[0].timeout_ms, Some(2000));
        assert_eq!(
            steps[2].action,
            Action::Press {
                key: "Enter".into()
            }
        );
        assert_eq!(steps[3].action.describe(), "wait 500 ms");
        assert_eq!(steps[5].action, Action::Screenshot { full_page: true });
    }

    #[test]
    fn keys_are_named_or_single_characters() {
        assert_eq!(key_code("enter"), Some(Key::Enter.to_string()));
        assert_eq!(key_code("ArrowDown"), Some(Key::Down.to_string()));
        assert_eq!(key_code("a"), Some("a".into()));
        assert_eq!(key_code("Hyper"), None);
        assert_eq!(key_code(""), None);
        assert_eq!(key_code("\n"), None);
    }
}
