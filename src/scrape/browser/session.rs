//! One WebDriver session (one Chromium): the capabilities it is opened with, opening it with a
//! fresh profile and an exact viewport, and closing it.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use fantoccini::wd::Capabilities;
use fantoccini::{Client, ClientBuilder};
use serde_json::{Value, json};
use tracing::Instrument;

use super::driver::Endpoint;
use super::{BrowserConfig, PageError};

/// The flags that work on our machines (see DESIGN.md); window size, profile, proxy and
/// `--no-sandbox` (see `sandbox`) are added per configuration and session.
const CHROMIUM_FLAGS: [&str; 8] = [
    "--headless",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    // WebRTC would otherwise send UDP straight out, past the egress proxy.
    "--force-webrtc-ip-handling-policy=disable_non_proxied_udp",
];
/// A new session takes ~1.5 s here (~6 s with four starting at once on two cores); this only
/// bounds a chromedriver that hangs starting Chromium.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// Ending a session takes ~0.2 s; a dead driver answers (or refuses) at once.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(10);
/// Bounds each `execute` of extraction; navigation has the request's own budget.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(10);

/// An open WebDriver session.
pub(super) struct Session {
    /// The WebDriver session id.
    pub id: String,
    pub client: Client,
    /// The endpoint generation it was opened on.
    pub generation: u64,
    /// Pages loaded (or attempted) on it.
    pub pages: u32,
    /// The page-load timeout last set on it.
    pub page_load_timeout: Option<Duration>,
    /// When it last went back to the pool.
    pub last_used: Instant,
    /// Origins of the pages requested since its state was last cleared.
    pub touched: BTreeSet<String>,
    profile_dir: Option<PathBuf>,
}

impl Session {
    /// Open a session on `endpoint`, with a new `--user-data-dir` under `profile_root` when
    /// given, and fit its viewport to `window`.
    pub async fn open(
        endpoint: &Endpoint,
        capabilities: &Capabilities,
        profile_root: Option<&Path>,
        window: (u32, u32),
    ) -> Result<Session, PageError> {
        let span = tracing::info_span!(
            "webdriver new session",
            webdriver = %endpoint.url,
            session_id = tracing::field::Empty,
        );
        async {
            let profile_dir = profile_root.map(|root| root.join(uuid::Uuid::new_v4().to_string()));
            let mut capabilities = capabilities.clone();
            if let Some(dir) = &profile_dir {
                tokio::fs::create_dir_all(dir).await.map_err(|e| {
                    PageError::DriverUnavailable(format!(
                        "creating the browser profile {}: {e}",
                        dir.display()
                    ))
                })?;
                add_chromium_arg(
                    &mut capabilities,
                    format!("--user-data-dir={}", dir.display()),
                );
            }
            let client = match connect(endpoint, capabilities).await {
                Ok(client) => client,
                Err(e) => {
                    remove_profile(profile_dir.as_deref()).await;
                    return Err(e);
                }
            };
            let id = client
                .session_creation_response()
                .map(|r| r.session_id().to_string())
                .unwrap_or_default();
            tracing::Span::current().record("session_id", id.as_str());
            let session = Session {
                id,
                client,
                generation: endpoint.generation,
                pages: 0,
                page_load_timeout: None,
                last_used: Instant::now(),
                touched: BTreeSet::new(),
                profile_dir,
            };
            if let Err(e) = fit_viewport(&session.client, window).await {
                session.close().await;
                return Err(PageError::DriverUnavailable(format!(
                    "sizing the browser window: {e}"
                )));
            }
            Ok(session)
        }
        .instrument(span)
        .await
    }

    /// Stop a page load that was abandoned mid-way (its scrape was cancelled or timed out):
    /// kill this session's Chromium, found by its own `--user-data-dir`. chromedriver runs a
    /// session's commands one after another, so closing the session would otherwise wait for
    /// the navigation to finish while the browser keeps fetching; killed, the pending command
    /// fails at once, the browser's connections drop, and [`Session::close`] follows. Without
    /// a profile of ours (an external WebDriver) there is nothing to kill.
    pub fn abort(&self) {
        let Some(dir) = &self.profile_dir else {
            return;
        };
        let flag = format!("--user-data-dir={}", dir.display());
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return;
        };
        for entry in entries.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<i32>().ok())
            else {
                continue;
            };
            let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
                continue;
            };
            if cmdline.split(|b| *b == 0).any(|arg| arg == flag.as_bytes()) {
                let pid = nix::unistd::Pid::from_raw(pid);
                let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            }
        }
    }

    /// End the session (DELETE, which quits its Chromium) and remove its profile.
    pub async fn close(self) {
        let span = tracing::info_span!("webdriver close session", session_id = %self.id);
        async {
            match tokio::time::timeout(CLOSE_TIMEOUT, self.client.close()).await {
                Ok(Ok(())) => {}
                // A session of a dead chromedriver cannot be closed; its browser is gone.
                Ok(Err(e)) => tracing::debug!(error = %e, "closing a WebDriver session"),
                Err(_) => tracing::warn!("closing a WebDriver session timed out"),
            }
            remove_profile(self.profile_dir.as_deref()).await;
        }
        .instrument(span)
        .await;
    }
}

async fn connect(endpoint: &Endpoint, capabilities: Capabilities) -> Result<Client, PageError> {
    let connect = async {
        let mut builder = ClientBuilder::rustls().map_err(|e| {
            PageError::DriverUnavailable(format!("building the WebDriver client: {e}"))
        })?;
        builder.capabilities(capabilities);
        builder
            .connect(&endpoint.url)
            .await
            .map_err(|e| PageError::DriverUnavailable(format!("opening a WebDriver session: {e}")))
    };
    tokio::time::timeout(START_TIMEOUT, connect)
        .await
        .unwrap_or_else(|_| {
            Err(PageError::DriverUnavailable(format!(
                "no WebDriver session within {} s",
                START_TIMEOUT.as_secs()
            )))
        })
}

/// What every session asks for: Chromium with our flags, the window, the proxy, and
/// `--no-sandbox` unless `sandbox`.
pub(super) fn capabilities(config: &BrowserConfig, sandbox: bool) -> anyhow::Result<Capabilities> {
    let (width, height) = config.window;
    let mut args: Vec<String> = CHROMIUM_FLAGS.iter().map(|f| f.to_string()).collect();
    if !sandbox {
        args.push("--no-sandbox".into());
    }
    args.push(format!("--window-size={width},{height}"));
    if let Some(proxy) = config.proxy {
        args.push(format!("--proxy-server=http://{proxy}"));
        // Chromium sends loopback requests past any proxy unless told otherwise; the egress
        // proxy must see every request.
        args.push("--proxy-bypass-list=<-loopback>".into());
    }
    let mut chrome = json!({ "args": args });
    // The path is on this machine: meaningless to an external WebDriver.
    if let (Some(binary), None) = (&config.chromium, &config.webdriver_url) {
        chrome["binary"] = json!(binary);
    }
    let capabilities = json!({
        "browserName": "chrome",
        "pageLoadStrategy": "normal",
        "timeouts": {
            "implicit": 0,
            "pageLoad": 30_000,
            "script": u64::try_from(SCRIPT_TIMEOUT.as_millis())?,
        },
        "goog:chromeOptions": chrome,
    });
    match capabilities {
        Value::Object(map) => Ok(map),
        _ => anyhow::bail!("capabilities are not a JSON object"),
    }
}

fn add_chromium_arg(capabilities: &mut Capabilities, arg: String) {
    if let Some(Value::Array(args)) = capabilities
        .get_mut("goog:chromeOptions")
        .and_then(|o| o.get_mut("args"))
    {
        args.push(Value::String(arg));
    }
}

/// Headless Chromium's window still counts some browser UI (1280×800 gives a 1280×657
/// viewport): grow the window so the viewport, and so the screenshot, is exactly `window`.
async fn fit_viewport(
    client: &Client,
    (width, height): (u32, u32),
) -> Result<(), fantoccini::error::CmdError> {
    let chrome = client
        .execute(
            "return [window.outerWidth - window.innerWidth, \
                     window.outerHeight - window.innerHeight];",
            vec![],
        )
        .await?;
    let extra = |i: usize| {
        chrome
            .get(i)
            .and_then(Value::as_u64)
            .and_then(|v| u32::try_from(v).ok())
            .unwrap_or(0)
    };
    let (dx, dy) = (extra(0), extra(1));
    if dx > 0 || dy > 0 {
        client.set_window_size(width + dx, height + dy).await?;
    }
    Ok(())
}

async fn remove_profile(dir: Option<&Path>) {
    if let Some(dir) = dir {
        remove_dir(dir).await;
    }
}

/// Remove a profile directory; Chromium may still be writing as it exits, so retry once.
pub(super) async fn remove_dir(dir: &Path) {
    for attempt in 0..2 {
        match tokio::fs::remove_dir_all(dir).await {
            Ok(()) => return,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
            Err(e) if attempt == 1 => {
                tracing::warn!(error = %e, dir = %dir.display(), "removing a browser profile");
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_applies_to_loopback_and_binary_only_to_our_chromedriver() {
        let config = BrowserConfig {
            chromium: Some("/usr/bin/chromium".into()),
            proxy: Some("127.0.0.1:3128".parse().expect("an address")),
            window: (1024, 640),
            ..BrowserConfig::default()
        };

        let ours = capabilities(&config, true).expect("capabilities");
        let external = capabilities(
            &BrowserConfig {
                webdriver_url: Some("http://grid:4444".into()),
                ..config
            },
            true,
        )
        .expect("capabilities");

        let options = &ours["goog:chromeOptions"];
        let args: Vec<&str> = options["args"]
            .as_array()
            .expect("args")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert!(args.contains(&"--headless"));
        assert!(args.contains(&"--window-size=1024,640"));
        assert!(args.contains(&"--proxy-server=http://127.0.0.1:3128"));
        assert!(args.contains(&"--proxy-bypass-list=<-loopback>"));
        assert!(args.contains(&"--force-webrtc-ip-handling-policy=disable_non_proxied_udp"));
        assert_eq!(options["binary"], "/usr/bin/chromium");
        assert!(external["goog:chromeOptions"].get("binary").is_none());
    }

    #[test]
    fn no_sandbox_is_passed_exactly_when_the_sandbox_is_off() {
        let args = |sandbox| {
            let caps = capabilities(&BrowserConfig::default(), sandbox).expect("capabilities");
            let args = caps["goog:chromeOptions"]["args"].as_array().cloned();
            args.expect("args")
        };

        assert!(!args(true).contains(&json!("--no-sandbox")));
        assert!(args(false).contains(&json!("--no-sandbox")));
    }
}
