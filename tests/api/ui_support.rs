//! What the dashboard tests share: signing in (in Chromium, or over HTTP for a cookie), opening
//! a page and checking it rendered without console errors, reading Chromium's console through
//! chromedriver's log endpoint, and emulating a phone's screen.

use std::time::Duration;

use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, Locator};
use http::Method;
use reqwest::redirect::Policy;
use serde_json::{Value, json};
use url::{ParseError, Url};

use crate::helpers::{TestApp, eventually};

/// A WebDriver command chromedriver adds to the standard: `path` under the session.
#[derive(Debug)]
struct Vendor {
    method: Method,
    path: &'static str,
    body: Value,
}

impl WebDriverCompatibleCommand for Vendor {
    fn endpoint(&self, base: &Url, session_id: Option<&str>) -> Result<Url, ParseError> {
        let session = session_id.unwrap_or_default();
        base.join(&format!("session/{session}/{}", self.path))
    }

    fn method_and_body(&self, _url: &Url) -> (Method, Option<String>) {
        (self.method.clone(), Some(self.body.to_string()))
    }
}

/// The browser console's errors (level `SEVERE`) since the last call: chromedriver hands each
/// entry out once, to a session that asked for them with the `goog:loggingPrefs` capability.
pub async fn console_errors(browser: &Client) -> Vec<Value> {
    let log = Vendor {
        method: Method::POST,
        path: "se/log",
        body: json!({"type": "browser"}),
    };
    let entries = browser.issue_cmd(log).await.expect("the browser's log");
    let entries = entries.as_array().cloned().unwrap_or_default();
    entries
        .into_iter()
        .filter(|e| e["level"] == "SEVERE")
        .collect()
}

/// Lay pages out on a phone's screen, 390×844 CSS pixels (from now on, in this session).
pub async fn phone(browser: &Client) {
    let emulate = Vendor {
        method: Method::POST,
        path: "goog/cdp/execute",
        body: json!({
            "cmd": "Emulation.setDeviceMetricsOverride",
            "params": {"width": 390, "height": 844, "deviceScaleFactor": 1, "mobile": false},
        }),
    };
    browser.issue_cmd(emulate).await.expect("a phone's screen");
}

/// How the open page fits the screen: the window's width, the document's, and whether every
/// navigation link is shown inside the window.
pub async fn fit(browser: &Client) -> (u64, u64, bool) {
    let measured = browser
        .execute(
            "const w = window.innerWidth; \
             const links = Array.from(document.querySelectorAll('header nav a')); \
             const shown = links.length > 0 && links.every(a => { \
               const r = a.getBoundingClientRect(); \
               return r.width > 0 && r.height > 0 && r.left >= 0 && r.right <= w; }); \
             return [w, document.documentElement.scrollWidth, shown];",
            vec![],
        )
        .await
        .expect("measured");
    (
        measured[0].as_u64().expect("a width"),
        measured[1].as_u64().expect("a width"),
        measured[2] == true,
    )
}

/// The path of the open page.
pub async fn path(browser: &Client) -> String {
    let url = browser.current_url().await.expect("a URL");
    url.path().to_owned()
}

/// Wait (10 s at most) until the browser is on a page whose path starts with `prefix`, and
/// say whether it got there: a click on a form's button returns before the page it posts to
/// has loaded.
pub async fn arrives(browser: &Client, prefix: &str) -> bool {
    eventually(Duration::from_secs(10), || async {
        (browser.current_url().await).is_ok_and(|u| u.path().starts_with(prefix))
    })
    .await
}

/// The open page's HTML.
pub async fn source(browser: &Client) -> String {
    browser.source().await.expect("the page source")
}

/// Sign in through the form with `token`; lands on the overview.
pub async fn sign_in(browser: &Client, app: &TestApp, token: &str) {
    browser
        .goto(&app.url("/ui/login"))
        .await
        .expect("the sign-in page");
    let field = browser.find(Locator::Css("input[name=token]")).await;
    let field = field.expect("a token field");
    field.send_keys(token).await.expect("typing the token");
    let submit = browser.find(Locator::Css("button[type=submit]")).await;
    submit.expect("a button").click().await.expect("signing in");
    let signed_in = eventually(Duration::from_secs(10), || async {
        browser.current_url().await.is_ok_and(|u| u.path() == "/ui")
    })
    .await;
    assert!(signed_in, "signed in");
}

/// Open `path`, check it rendered (its `h1`) with nothing on the console's error level, and
/// keep a screenshot named `name` when `WORKHORSE_UI_SCREENSHOTS` names a directory.
pub async fn visit(browser: &Client, app: &TestApp, path: &str, name: &str) {
    let started = std::time::Instant::now();
    browser
        .goto(&app.url(path))
        .await
        .expect("opening the page");
    // Regression: streams of pages left behind held the browser's connections, and every
    // few pages the next one waited a minute for a free one.
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(10),
        "{path} took {took:?} to load"
    );
    browser
        .find(Locator::Css("main h1"))
        .await
        .unwrap_or_else(|_| panic!("a heading on {path}"));
    let png = browser.screenshot().await.expect("a screenshot");
    assert_eq!(&png[..4], b"\x89PNG");
    if let Ok(dir) = std::env::var("WORKHORSE_UI_SCREENSHOTS") {
        std::fs::write(format!("{dir}/{name}.png"), png).expect("saving the screenshot");
    }
    let errors = console_errors(browser).await;
    assert!(errors.is_empty(), "console errors on {path}: {errors:?}");
}

/// An HTTP client that shows redirects instead of following them.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .expect("client")
}

/// Sign in over HTTP; returns the session cookie (`wh_session=…`) after checking its
/// attributes.
pub async fn session_cookie(app: &TestApp, token: &str) -> String {
    let resp = client()
        .post(app.url("/ui/login"))
        .form(&[("token", token)])
        .send()
        .await
        .expect("signing in");
    assert_eq!(resp.status().as_u16(), 303);
    let cookie = resp.headers()["set-cookie"]
        .to_str()
        .expect("a cookie")
        .to_owned();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    cookie.split(';').next().expect("name=value").to_owned()
}

/// The page at `path`, fetched with the session `cookie`.
pub async fn page(app: &TestApp, cookie: &str, path: &str) -> String {
    client()
        .get(app.url(path))
        .header("cookie", cookie)
        .send()
        .await
        .expect("got the page")
        .text()
        .await
        .expect("a page")
}

/// The CSRF token on the page at `path`, read from its first form.
pub async fn csrf(app: &TestApp, cookie: &str, path: &str) -> String {
    let page = page(app, cookie, path).await;
    let at = page.find("name=\"csrf\" value=\"").expect("a CSRF field") + 19;
    page[at..].split('"').next().expect("a value").to_owned()
}
