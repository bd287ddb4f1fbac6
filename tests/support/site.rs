//! The local test site (tests/fixtures/site) served on loopback, counting the requests for
//! each path: navigation, footer, cookie banner, `og:` tags, a button that reveals content, a
//! search form, 30 linked docs pages, a `robots.txt` that disallows `/private/`, and a
//! `sitemap.xml` (with this server's host put in). `/echo` shows the headers it received and
//! the viewport the page sees; `/slow` answers after 3 s.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use poem::http::{HeaderMap, StatusCode};
use poem::listener::{Acceptor, Listener, TcpListener};
use poem::web::{Data, Path};
use poem::{EndpointExt, Response, Route, handler};

type Hits = Arc<Mutex<HashMap<String, usize>>>;

/// The site, served until dropped.
pub struct Site {
    /// Where it listens.
    pub addr: SocketAddr,
    hits: Hits,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Site {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl Site {
    /// Serve the site on a free port of 127.0.0.1.
    pub async fn start() -> Self {
        let hits = Hits::default();
        let app = Route::new()
            .at("/echo", echo)
            .at("/slow", slow)
            .at("/*path", file)
            .data(hits.clone());
        let acceptor = TcpListener::bind("127.0.0.1:0")
            .into_acceptor()
            .await
            .expect("binding the site");
        let addr = *acceptor.local_addr()[0]
            .as_socket_addr()
            .expect("the site's address");
        let server = tokio::spawn(async move {
            let _ = poem::Server::new_with_acceptor(acceptor).run(app).await;
        });
        Self { addr, hits, server }
    }

    /// The absolute URL of `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Requests for each path so far.
    pub fn hits(&self) -> HashMap<String, usize> {
        self.hits.lock().expect("the hit counts").clone()
    }

    /// Requests for every path so far.
    pub fn total_hits(&self) -> usize {
        self.hits().values().sum()
    }
}

fn site_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/site")
}

#[handler]
fn file(Path(path): Path<String>, headers: &HeaderMap, hits: Data<&Hits>) -> Response {
    *hits
        .lock()
        .expect("the hit counts")
        .entry(format!("/{path}"))
        .or_default() += 1;
    let path = match path.is_empty() {
        true => "index.html".to_string(),
        false => path,
    };
    if path.split('/').any(|part| part == "..") {
        return Response::builder().status(StatusCode::BAD_REQUEST).finish();
    }
    let Ok(body) = std::fs::read(site_dir().join(&path)) else {
        return Response::builder().status(StatusCode::NOT_FOUND).finish();
    };
    let host = (headers.get("host").and_then(|h| h.to_str().ok())).unwrap_or("127.0.0.1");
    let body = match path.ends_with(".xml") {
        true => String::from_utf8_lossy(&body)
            .replace("SITE_HOST", host)
            .into_bytes(),
        false => body,
    };
    let kind = match path.rsplit('.').next() {
        Some("html") => "text/html; charset=utf-8",
        Some("xml") => "application/xml",
        Some("svg") => "image/svg+xml",
        _ => "text/plain; charset=utf-8",
    };
    Response::builder().content_type(kind).body(body)
}

/// A page that takes 3 s to answer, linking to the home page.
#[handler]
async fn slow(hits: Data<&Hits>) -> Response {
    *hits
        .lock()
        .expect("the hit counts")
        .entry("/slow".into())
        .or_default() += 1;
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    Response::builder()
        .content_type("text/html; charset=utf-8")
        .body("<html><head><title>Slow</title></head><body><a href=\"/index.html\">Home</a></body></html>")
}

/// Shows the headers and cookies it received, and the viewport and user agent the page sees.
#[handler]
fn echo(headers: &HeaderMap) -> Response {
    let header = |name: &str| {
        (headers.get(name).and_then(|v| v.to_str().ok()))
            .unwrap_or("none")
            .to_string()
    };
    let body = format!(
        "<html><head><title>Echo</title>\
         <meta name=\"viewport\" content=\"width=device-width\"></head><body><main><article>\
         <p id=\"x-test\">x-test={}</p><p id=\"jar\">cookie={}</p>\
         <p id=\"viewport\"></p><div style=\"height: 3000px\">tall</div>\
         <script>document.getElementById('viewport').textContent = \
         'width=' + window.innerWidth + ' ua=' + navigator.userAgent;</script>\
         </article></main></body></html>",
        header("x-test"),
        header("cookie"),
    );
    Response::builder()
        .content_type("text/html; charset=utf-8")
        .body(body)
}
