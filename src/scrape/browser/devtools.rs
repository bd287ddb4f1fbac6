//! Chrome DevTools commands through chromedriver's passthrough
//! (`POST /session/{id}/goog/cdp/execute`): clearing state between pages, custom headers,
//! cookies, mobile emulation and full-page screenshots, which WebDriver itself cannot do.

use fantoccini::Client;
use fantoccini::error::CmdError;
use fantoccini::wd::WebDriverCompatibleCommand;
use serde_json::{Value, json};

/// Run one DevTools command on the session's current page; its result object.
pub(super) async fn execute(
    client: &Client,
    cmd: &'static str,
    params: Value,
) -> Result<Value, CmdError> {
    client.issue_cmd(DevTools { cmd, params }).await
}

/// Whether `e` says the WebDriver has no DevTools passthrough (e.g. a Selenium Grid node
/// that is not Chromium).
pub(super) fn unsupported(e: &CmdError) -> bool {
    e.is_unknown_command() || e.is_unknown_method() || e.is_unknown_path()
}

#[derive(Debug)]
struct DevTools {
    cmd: &'static str,
    params: Value,
}

impl WebDriverCompatibleCommand for DevTools {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        // A client always has a session once connected; the error type is fantoccini's.
        let id = session_id.ok_or(url::ParseError::EmptyHost)?;
        base_url.join(&format!("session/{id}/goog/cdp/execute"))
    }

    fn method_and_body(&self, _request_url: &url::Url) -> (http::Method, Option<String>) {
        let body = json!({ "cmd": self.cmd, "params": self.params });
        (http::Method::POST, Some(body.to_string()))
    }
}
