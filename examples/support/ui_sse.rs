//! The dashboard's side of `bench_dashboard` over plain HTTP: signing in for a session cookie,
//! and browsers' live streams (`GET /ui/events` with a session cookie each) that count the
//! `changed` messages and the bytes they receive, with when each message arrived.

use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use reqwest::redirect::Policy;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// How long a stream may take to answer.
const OPEN_TIMEOUT: Duration = Duration::from_secs(30);

/// An HTTP client that shows redirects instead of following them.
pub fn client() -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .redirect(Policy::none())
        .http1_only()
        .tcp_nodelay(true)
        .build()
        .context("building the HTTP client")
}

/// Sign in at `base` with `token` through `POST /ui/login`; returns the session cookie
/// (`wh_session=…`).
pub async fn session_cookie(
    http: &reqwest::Client,
    base: &str,
    token: &str,
) -> anyhow::Result<String> {
    let resp = (http.post(format!("{base}/ui/login")))
        .form(&[("token", token)])
        .send()
        .await
        .context("signing in")?;
    ensure!(
        resp.status() == reqwest::StatusCode::SEE_OTHER,
        "signing in answered {}",
        resp.status()
    );
    let cookie = resp
        .headers()
        .get("set-cookie")
        .context("no session cookie")?;
    let cookie = cookie
        .to_str()
        .context("a session cookie that is not text")?;
    Ok(cookie.split(';').next().unwrap_or_default().to_owned())
}

/// What one stream received.
#[derive(Default)]
pub struct StreamStats {
    /// `changed` messages.
    pub messages: u64,
    /// Bytes of the response body (messages and keep-alives).
    pub bytes: u64,
    /// When each message's end arrived, from the streams' epoch.
    pub at: Vec<Duration>,
    /// How the stream ended before it was closed, if it did.
    pub ended: Option<String>,
}

/// Open dashboard streams, each reading until [`Streams::close`].
pub struct Streams {
    stop: CancellationToken,
    tasks: Vec<JoinHandle<StreamStats>>,
}

impl Streams {
    /// Open a stream at `base` per cookie; returns once every one has been answered.
    pub async fn open(base: &str, cookies: &[String]) -> anyhow::Result<Self> {
        let http = client()?;
        let stop = CancellationToken::new();
        let epoch = Instant::now();
        let mut tasks = Vec::with_capacity(cookies.len());
        for cookie in cookies {
            let send = http
                .get(format!("{base}/ui/events"))
                .header("cookie", cookie)
                .send();
            let resp = match tokio::time::timeout(OPEN_TIMEOUT, send).await {
                Ok(resp) => resp.context("opening /ui/events")?,
                Err(_) => bail!("/ui/events did not answer within {OPEN_TIMEOUT:?}"),
            };
            ensure!(
                resp.status() == reqwest::StatusCode::OK,
                "/ui/events answered {}",
                resp.status()
            );
            tasks.push(tokio::spawn(read(resp, epoch, stop.clone())));
        }
        Ok(Self { stop, tasks })
    }

    /// Stop every stream and collect what each received.
    pub async fn close(self) -> Vec<StreamStats> {
        self.stop.cancel();
        let mut stats = Vec::with_capacity(self.tasks.len());
        for task in self.tasks {
            stats.push(task.await.unwrap_or_else(|e| StreamStats {
                ended: Some(format!("task failed: {e}")),
                ..StreamStats::default()
            }));
        }
        stats
    }
}

async fn read(mut resp: reqwest::Response, epoch: Instant, stop: CancellationToken) -> StreamStats {
    let mut stats = StreamStats::default();
    let mut pending = Vec::new();
    loop {
        let chunk = tokio::select! {
            chunk = resp.chunk() => chunk,
            _ = stop.cancelled() => break,
        };
        let bytes = match chunk {
            Ok(Some(bytes)) => bytes,
            Ok(None) => {
                stats.ended = Some("ended".into());
                break;
            }
            Err(e) => {
                stats.ended = Some(format!("read failed: {e}"));
                break;
            }
        };
        stats.bytes += bytes.len() as u64;
        pending.extend_from_slice(&bytes);
        // Frames end with a blank line; count the complete `changed` ones.
        while let Some(end) = pending.windows(2).position(|w| w == b"\n\n") {
            if pending[..end].starts_with(b"event: changed\n") {
                stats.messages += 1;
                stats.at.push(epoch.elapsed());
            }
            pending.drain(..end + 2);
        }
    }
    stats
}
