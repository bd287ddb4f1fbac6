//! A local site with the pages the browser tests need, test settings, and process checks.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use poem::http::StatusCode;
use poem::listener::{Acceptor, Listener, TcpListener};
use poem::web::Html;
use poem::{Endpoint, EndpointExt, IntoResponse, Response, Route, get, handler};
use tokio::task::JoinHandle;
use url::Url;
use workhorse::scrape::browser::{Browser, BrowserConfig, PageRequest, SandboxMode};

/// A page whose content only appears 300 ms after JavaScript runs.
const LATE: &str = r#"<html><head><title>Late</title></head><body><p>Early text.</p>
<script>setTimeout(() => {
  const div = document.createElement('div');
  div.id = 'late';
  div.textContent = 'Late content';
  document.body.appendChild(div);
}, 300);</script></body></html>"#;

/// Renders what the browser keeps for this origin into a `<p id={id}>`: the cookie, the
/// `who` entries of localStorage and sessionStorage, and the IndexedDB databases.
const RENDER_STATE: &str = r#"<script>
async function render(id) {
  const databases = (await indexedDB.databases()).map((d) => d.name).join(',');
  const p = document.createElement('p');
  p.id = id;
  p.textContent = `cookie=[${document.cookie}] local=[${localStorage.getItem('who')}] ` +
    `session=[${sessionStorage.getItem('who')}] databases=[${databases}]`;
  document.body.appendChild(p);
}
</script>"#;

/// Sets a cookie, localStorage, sessionStorage and an IndexedDB database, then renders them
/// into `#stored`.
const STORE: &str = r#"<script>
document.cookie = 'who=alice; path=/; max-age=3600';
localStorage.setItem('who', 'alice');
sessionStorage.setItem('who', 'alice');
const open = indexedDB.open('alice', 1);
open.onupgradeneeded = () => open.result.createObjectStore('notes');
open.onsuccess = () => { open.result.close(); render('stored'); };
</script>"#;

/// Embeds the home page from `localhost`: the same server, another origin.
const FRAMED: &str = r#"<html><head><title>Framed</title></head><body><p>Framed.</p>
<script>
const frame = document.createElement('iframe');
frame.src = `http://localhost:${location.port}/`;
document.body.appendChild(frame);
</script></body></html>"#;

/// Opens the home page in a second window.
const OPENER: &str = r#"<html><head><title>Opener</title></head><body><p>Opener.</p>
<script>window.open('/', '_blank');</script></body></html>"#;

/// An HTTP server on 127.0.0.1:0 that also answers as a forward proxy (requests in absolute
/// form are routed by their path), remembering every request line's target.
pub struct Site {
    pub addr: SocketAddr,
    seen: Arc<Mutex<Vec<String>>>,
    server: JoinHandle<()>,
}

impl Site {
    pub async fn start() -> Self {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = seen.clone();
        let app = Route::new()
            .at("/", get(home))
            .at("/late", get(late))
            .at("/redirect", get(redirect))
            .at("/target", get(target))
            .at("/slow", get(slow))
            .at("/missing", get(missing))
            .at("/store", get(store))
            .at("/read", get(read))
            .at("/framed", get(framed))
            .at("/opener", get(opener))
            .around(move |ep, req| {
                let record = record.clone();
                async move {
                    record
                        .lock()
                        .expect("the request log")
                        .push(req.uri().to_string());
                    Ok(ep.call(req).await?.into_response())
                }
            });
        let acceptor = TcpListener::bind("127.0.0.1:0")
            .into_acceptor()
            .await
            .expect("binding the test site");
        let addr = *acceptor.local_addr()[0]
            .as_socket_addr()
            .expect("a TCP address");
        let server = tokio::spawn(async move {
            let _ = poem::Server::new_with_acceptor(acceptor).run(app).await;
        });
        Self { addr, seen, server }
    }

    pub fn url(&self, path: &str) -> Url {
        Url::parse(&format!("http://{}{path}", self.addr)).expect("a site URL")
    }

    /// The request targets received so far (absolute URLs when it served as a proxy).
    pub fn seen(&self) -> Vec<String> {
        self.seen.lock().expect("the request log").clone()
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        self.server.abort();
    }
}

#[handler]
fn home() -> Html<&'static str> {
    Html(
        "<html><head><title>Home</title></head><body><h1>Hello</h1><p>A plain page.</p></body></html>",
    )
}

#[handler]
fn late() -> Html<&'static str> {
    Html(LATE)
}

#[handler]
fn redirect() -> Response {
    Response::builder()
        .status(StatusCode::FOUND)
        .header("Location", "/target")
        .finish()
}

#[handler]
fn target() -> Html<&'static str> {
    Html("<html><head><title>Target</title></head><body>You arrived.</body></html>")
}

#[handler]
async fn slow() -> Html<&'static str> {
    tokio::time::sleep(Duration::from_secs(5)).await;
    Html("<html><head><title>Slow</title></head><body>Finally.</body></html>")
}

#[handler]
fn missing() -> Response {
    Html("<html><head><title>Not here</title></head><body>Nothing at this address.</body></html>")
        .with_status(StatusCode::NOT_FOUND)
        .into_response()
}

#[handler]
fn store() -> Html<String> {
    Html(format!(
        "<html><head><title>Store</title>{RENDER_STATE}</head><body>{STORE}</body></html>"
    ))
}

#[handler]
fn read() -> Html<String> {
    Html(format!(
        "<html><head><title>Read</title>{RENDER_STATE}</head>\
         <body><script>render('read');</script></body></html>"
    ))
}

#[handler]
fn framed() -> Html<&'static str> {
    Html(FRAMED)
}

#[handler]
fn opener() -> Html<&'static str> {
    Html(OPENER)
}

/// Start a browser, or fail the test.
pub async fn start(config: BrowserConfig) -> Browser {
    Browser::start(config).await.expect("starting the browser")
}

/// Poll `check` every 50 ms for up to `within`.
pub async fn eventually(within: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if check() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    check()
}

/// Settings for tests: chromedriver and Chromium from Debian, two sessions.
pub fn config() -> BrowserConfig {
    BrowserConfig {
        webdriver_url: None,
        chromedriver: "chromedriver".into(),
        chromium: Some("/usr/bin/chromium".into()),
        pool_size: 2,
        max_pages_per_session: 50,
        idle_timeout: Duration::from_secs(60),
        proxy: None,
        window: (1280, 800),
        sandbox: SandboxMode::Auto,
    }
}

/// A request for `url` with a 10 s budget.
pub fn request(url: Url) -> PageRequest {
    PageRequest {
        timeout: Duration::from_secs(10),
        ..PageRequest::new(url)
    }
}

/// A port nothing listens on.
pub fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// State and process group of a process, from /proc/<pid>/stat.
fn stat(pid: u32) -> Option<(char, u32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    let mut fields = stat.get(stat.rfind(')')? + 2..)?.split(' ');
    let state = fields.next()?.chars().next()?;
    let pgrp = fields.nth(1)?.parse().ok()?;
    Some((state, pgrp))
}

/// Whether `pid` is a live process (zombies are not).
pub fn is_running(pid: u32) -> bool {
    stat(pid).is_some_and(|(state, _)| state != 'Z')
}

/// Live processes in process group `pgid`: chromedriver and the Chromium it started.
pub fn running_in_group(pgid: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| stat(*pid).is_some_and(|(state, group)| group == pgid && state != 'Z'))
        .collect()
}

/// chromedriver behind a forwarding server that answers its DevTools passthrough
/// (`/session/{id}/goog/cdp/…`) with `unknown command`, as a Selenium Grid without it does.
pub struct WebDriverWithoutDevTools {
    pub url: String,
    chromedriver: tokio::process::Child,
    server: JoinHandle<()>,
}

/// Where the forwarding server sends requests.
#[derive(Clone)]
struct Upstream {
    url: String,
    client: reqwest::Client,
}

impl WebDriverWithoutDevTools {
    pub async fn start() -> Self {
        let port = closed_port();
        // Its own process group, so the browsers it starts go with it.
        let chromedriver = tokio::process::Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .expect("starting chromedriver");
        let upstream = Upstream {
            url: format!("http://127.0.0.1:{port}"),
            client: reqwest::Client::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        let status = format!("{}/status", upstream.url);
        while upstream.client.get(&status).send().await.is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let acceptor = TcpListener::bind("127.0.0.1:0")
            .into_acceptor()
            .await
            .expect("binding the forwarding server");
        let addr = *acceptor.local_addr()[0]
            .as_socket_addr()
            .expect("a TCP address");
        let app = Route::new().at("/*path", forward).data(upstream);
        let server = tokio::spawn(async move {
            let _ = poem::Server::new_with_acceptor(acceptor).run(app).await;
        });
        Self {
            url: format!("http://{addr}"),
            chromedriver,
            server,
        }
    }
}

impl Drop for WebDriverWithoutDevTools {
    fn drop(&mut self) {
        self.server.abort();
        if let Some(pid) = self.chromedriver.id() {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

#[handler]
async fn forward(
    req: &poem::Request,
    body: poem::Body,
    upstream: poem::web::Data<&Upstream>,
) -> Response {
    let path = req.uri().path_and_query().map_or("/", |p| p.as_str());
    if path.contains("/goog/cdp/") {
        return Response::builder()
            .status(StatusCode::NOT_FOUND)
            .content_type("application/json")
            .body(r#"{"value":{"error":"unknown command","message":"unknown command","stacktrace":""}}"#);
    }
    let body = body.into_vec().await.expect("a request body");
    let mut request = upstream
        .client
        .request(req.method().clone(), format!("{}{path}", upstream.url));
    if !body.is_empty() {
        request = request
            .header("content-type", "application/json")
            .body(body);
    }
    let answer = request.send().await.expect("chromedriver answers");
    let status = answer.status();
    let content_type = answer
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json")
        .to_string();
    let body = answer.bytes().await.expect("chromedriver's answer");
    Response::builder()
        .status(status)
        .content_type(content_type)
        .body(body.to_vec())
}
