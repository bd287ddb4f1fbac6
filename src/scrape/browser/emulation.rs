//! A page's request options, set through DevTools before navigation: extra request headers,
//! cookies for the page's site (a `Cookie` header becomes cookies, so it is not sent to every
//! third-party host the page loads from), and a phone's viewport, pixel ratio, touch and user
//! agent. A session changed this way is closed after its page rather than reused.

use std::time::Duration;

use fantoccini::Client;
use serde_json::{Map, Value, json};
use url::Url;

use super::page::{Failure, classify};
use super::{PageError, devtools};

/// What a page load may set besides the URL.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PageOptions {
    /// Request headers; `Cookie` is set as cookies of the page's address.
    pub headers: Vec<(String, String)>,
    /// Emulate a phone ([`MOBILE_VIEWPORT`], touch, a mobile user agent).
    pub mobile: bool,
    /// Wait this long after the load (and the selector) before the actions and the capture.
    pub wait: Duration,
    /// Steps run before the capture.
    pub actions: Vec<super::actions::Step>,
    /// The final screenshot covers the whole page, not the viewport.
    pub full_page: bool,
}

impl PageOptions {
    /// Whether the options change the session beyond what clearing between pages undoes.
    pub fn alter_session(&self) -> bool {
        self.mobile || !self.headers.is_empty()
    }
}

/// The viewport of `mobile`: a common phone's CSS pixels, width and height, and pixel ratio.
pub const MOBILE_VIEWPORT: (u32, u32, u32) = (390, 844, 3);

/// Set `options`' headers, cookies and emulation on the session, for a load of `url`.
pub(super) async fn apply(
    client: &Client,
    url: &Url,
    options: &PageOptions,
) -> Result<(), Failure> {
    let mut extra = Map::new();
    let mut cookies = Vec::new();
    for (name, value) in &options.headers {
        match name.eq_ignore_ascii_case("cookie") {
            true => cookies.extend(cookie_pairs(value)),
            false => {
                extra.insert(name.clone(), Value::String(value.clone()));
            }
        }
    }
    if !extra.is_empty() {
        cdp(client, "Network.enable", json!({})).await?;
        cdp(
            client,
            "Network.setExtraHTTPHeaders",
            json!({ "headers": extra }),
        )
        .await?;
    }
    for (name, value) in cookies {
        let params = json!({ "name": name, "value": value, "url": url.as_str() });
        cdp(client, "Network.setCookie", params).await?;
    }
    if options.mobile {
        let (width, height, ratio) = MOBILE_VIEWPORT;
        let metrics = json!({
            "width": width, "height": height, "deviceScaleFactor": ratio, "mobile": true,
        });
        cdp(client, "Emulation.setDeviceMetricsOverride", metrics).await?;
        cdp(
            client,
            "Emulation.setTouchEmulationEnabled",
            json!({ "enabled": true, "maxTouchPoints": 5 }),
        )
        .await?;
        let desktop = client
            .execute("return navigator.userAgent;", vec![])
            .await
            .map_err(|e| classify(e, "reading the user agent"))?;
        let desktop = desktop.as_str().unwrap_or_default();
        let ua = mobile_user_agent(desktop);
        cdp(
            client,
            "Emulation.setUserAgentOverride",
            json!({ "userAgent": ua }),
        )
        .await?;
    }
    Ok(())
}

async fn cdp(client: &Client, cmd: &'static str, params: Value) -> Result<(), Failure> {
    match devtools::execute(client, cmd, params).await {
        Ok(_) => Ok(()),
        Err(e) if devtools::unsupported(&e) => Err(Failure::keep(PageError::NavigationFailed(
            "request headers and mobile emulation need Chromium's DevTools, which this \
             WebDriver lacks"
                .into(),
        ))),
        Err(e) => Err(classify(e, cmd)),
    }
}

/// `a=1; b=2` as pairs; pieces without `=` are skipped.
pub fn cookie_pairs(header: &str) -> Vec<(String, String)> {
    header
        .split(';')
        .filter_map(|piece| piece.split_once('='))
        .map(|(name, value)| (name.trim().to_string(), value.trim().to_string()))
        .filter(|(name, _)| !name.is_empty())
        .collect()
}

/// Chromium's desktop user agent as its Android build would say it.
fn mobile_user_agent(desktop: &str) -> String {
    let platform = match (desktop.find('('), desktop.find(')')) {
        (Some(open), Some(close)) if open < close => {
            format!(
                "{}(Linux; Android 14; Pixel 8){}",
                &desktop[..open],
                &desktop[close + 1..]
            )
        }
        _ => desktop.to_string(),
    };
    let ua = platform.replace("HeadlessChrome/", "Chrome/");
    match ua.rfind(" Safari/") {
        Some(at) if !ua.contains(" Mobile") => format!("{} Mobile{}", &ua[..at], &ua[at..]),
        _ => ua,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cookie_header_becomes_pairs() {
        assert_eq!(
            cookie_pairs("session=abc; theme = dark;flag; =x"),
            [
                ("session".into(), "abc".into()),
                ("theme".into(), "dark".into())
            ]
        );
    }

    #[test]
    fn the_mobile_user_agent_names_android_and_mobile() {
        let desktop = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) \
                       HeadlessChrome/156.0.0.0 Safari/537.36";
        assert_eq!(
            mobile_user_agent(desktop),
            "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) \
             Chrome/156.0.0.0 Mobile Safari/537.36"
        );
    }
}
