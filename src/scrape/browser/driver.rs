//! The WebDriver endpoint: an external URL as configured, or a chromedriver child process we
//! start on a free loopback port, watch, and start again (with backoff) when it exits.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use tokio::sync::{Mutex, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::{BrowserConfig, PageError};

/// chromedriver answers `/status` within ~0.3 s here; a loaded machine gets more.
const READY_TIMEOUT: Duration = Duration::from_secs(20);
const READY_POLL: Duration = Duration::from_millis(50);
/// First wait before a restart, doubled after each quick failure up to the maximum.
const MIN_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// A chromedriver that ran this long before dying gets the short backoff again.
const STABLE_AFTER: Duration = Duration::from_secs(30);
/// chromedriver quits at once on SIGTERM; this only bounds a wedged one.
const TERM_GRACE: Duration = Duration::from_secs(3);

/// Where sessions are opened; `generation` changes whenever chromedriver is restarted, which
/// makes every older session dead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Endpoint {
    pub url: String,
    pub generation: u64,
}

/// The WebDriver in use: fixed, or a supervised chromedriver.
pub(super) struct Driver {
    endpoints: watch::Receiver<Option<Endpoint>>,
    // Keeps the channel open for an external URL; the supervisor owns it otherwise.
    _fixed: Option<watch::Sender<Option<Endpoint>>>,
    supervisor: Option<Supervisor>,
}

struct Supervisor {
    state: Arc<State>,
    stop: CancellationToken,
    task: Mutex<Option<JoinHandle<()>>>,
}

#[derive(Default)]
struct State {
    pid: AtomicU32,
    restarts: AtomicU64,
}

impl Driver {
    /// Use the configured WebDriver, or start chromedriver and wait until it is ready.
    pub async fn start(config: &BrowserConfig, stop: CancellationToken) -> anyhow::Result<Self> {
        if let Some(url) = &config.webdriver_url {
            url::Url::parse(url).with_context(|| format!("webdriver_url {url:?} is no URL"))?;
            let endpoint = Endpoint {
                url: url.clone(),
                generation: 0,
            };
            let (tx, rx) = watch::channel(Some(endpoint));
            return Ok(Self {
                endpoints: rx,
                _fixed: Some(tx),
                supervisor: None,
            });
        }
        let binary = config.chromedriver.clone();
        let (child, endpoint) = launch(&binary, 1).await?;
        let state = Arc::new(State::default());
        state.pid.store(child.id().unwrap_or(0), Ordering::Relaxed);
        let (tx, rx) = watch::channel(Some(endpoint));
        let task = tokio::spawn(supervise(binary, child, tx, state.clone(), stop.clone()));
        Ok(Self {
            endpoints: rx,
            _fixed: None,
            supervisor: Some(Supervisor {
                state,
                stop,
                task: Mutex::new(Some(task)),
            }),
        })
    }

    /// Changes of the endpoint: `None` while chromedriver is being restarted or stopped.
    pub fn endpoints(&self) -> watch::Receiver<Option<Endpoint>> {
        self.endpoints.clone()
    }

    /// The endpoint to open a session on, waiting up to `wait` for a restart to finish.
    pub async fn endpoint(&self, wait: Duration) -> Result<Endpoint, PageError> {
        let mut rx = self.endpoints.clone();
        match tokio::time::timeout(wait, rx.wait_for(Option::is_some)).await {
            Ok(Ok(endpoint)) => endpoint.clone().ok_or_else(stopped),
            Ok(Err(_)) => Err(stopped()),
            Err(_) => Err(PageError::DriverUnavailable(format!(
                "chromedriver has not come back within {} s",
                wait.as_secs()
            ))),
        }
    }

    /// chromedriver's process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        let supervisor = self.supervisor.as_ref()?;
        Some(supervisor.state.pid.load(Ordering::Relaxed)).filter(|pid| *pid != 0)
    }

    /// How often chromedriver was started again after it died.
    pub fn restarts(&self) -> u64 {
        self.supervisor
            .as_ref()
            .map_or(0, |s| s.state.restarts.load(Ordering::Relaxed))
    }

    /// Stop chromedriver and whatever browsers it left behind; waits until they are gone.
    pub async fn stop(&self) {
        let Some(supervisor) = &self.supervisor else {
            return;
        };
        supervisor.stop.cancel();
        if let Some(task) = supervisor.task.lock().await.take()
            && let Err(e) = task.await
        {
            tracing::error!(error = %e, "the chromedriver supervisor failed");
        }
    }
}

fn stopped() -> PageError {
    PageError::DriverUnavailable("the browser is shut down".into())
}

/// Watch chromedriver; when it exits, kill the browsers it left and start a new one.
async fn supervise(
    binary: PathBuf,
    mut child: Child,
    tx: watch::Sender<Option<Endpoint>>,
    state: Arc<State>,
    stop: CancellationToken,
) {
    let mut generation = 1;
    let mut backoff = MIN_BACKOFF;
    loop {
        let started = Instant::now();
        // If this task is dropped with the runtime, the browsers still go.
        let group = GroupGuard(child.id());
        tokio::select! {
            status = child.wait() => {
                tx.send_replace(None);
                state.pid.store(0, Ordering::Relaxed);
                drop(group);
                if started.elapsed() > STABLE_AFTER {
                    backoff = MIN_BACKOFF;
                }
                tracing::warn!(?status, ?backoff, "chromedriver exited; restarting it");
            }
            () = stop.cancelled() => {
                tx.send_replace(None);
                terminate(&mut child).await;
                let pgid = group.0;
                drop(group);
                // SIGKILL is delivered, not done, when killpg returns: shutting down waits
                // until the browsers are gone.
                if let Some(pgid) = pgid {
                    wait_group_gone(pgid, GROUP_GONE_WITHIN).await;
                }
                state.pid.store(0, Ordering::Relaxed);
                return;
            }
        }
        child = loop {
            tokio::select! {
                () = tokio::time::sleep(backoff) => {}
                () = stop.cancelled() => return,
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
            generation += 1;
            let launched = tokio::select! {
                launched = launch(&binary, generation) => launched,
                () = stop.cancelled() => return,
            };
            match launched {
                Ok((child, endpoint)) => {
                    state.pid.store(child.id().unwrap_or(0), Ordering::Relaxed);
                    state.restarts.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(url = %endpoint.url, generation, "chromedriver restarted");
                    tx.send_replace(Some(endpoint));
                    break child;
                }
                Err(e) => tracing::error!(error = format!("{e:#}"), "restarting chromedriver"),
            }
        };
    }
}

/// Kills chromedriver's process group when dropped: the Chromium processes it started stay in
/// that group and outlive chromedriver otherwise (they even survive its SIGTERM).
struct GroupGuard(Option<u32>);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(pid) = self.0.and_then(|pid| i32::try_from(pid).ok()) {
            let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
}

/// How long a shutdown waits for Chromium's processes to be gone after their SIGKILL.
const GROUP_GONE_WITHIN: Duration = Duration::from_secs(2);

/// Wait until no live process (zombies aside) is left in process group `pgid`, or `within`.
async fn wait_group_gone(pgid: u32, within: Duration) {
    let deadline = Instant::now() + within;
    while group_alive(pgid) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Whether a live process of group `pgid` is left, read from `/proc` (a zombie, which only
/// waits for its parent to reap it, is not live).
fn group_alive(pgid: u32) -> bool {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return false;
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .any(|pid| {
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                return false;
            };
            // The command may hold spaces and parentheses: the fields follow the last ')'.
            let mut fields = stat
                .get(stat.rfind(')').map_or(0, |at| at + 2)..)
                .unwrap_or("")
                .split(' ');
            let live = fields.next().is_some_and(|state| state != "Z");
            live && fields.nth(1).and_then(|g| g.parse::<u32>().ok()) == Some(pgid)
        })
}

/// SIGTERM, then SIGKILL if it lingers; reaps the process.
async fn terminate(child: &mut Child) {
    if let Some(pid) = child.id().and_then(|pid| i32::try_from(pid).ok()) {
        let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
        if tokio::time::timeout(TERM_GRACE, child.wait()).await.is_ok() {
            return;
        }
        tracing::warn!("chromedriver ignored SIGTERM; killing it");
    }
    let _ = child.kill().await;
}

/// Start chromedriver on a free loopback port in its own process group and wait for `/status`.
async fn launch(binary: &Path, generation: u64) -> anyhow::Result<(Child, Endpoint)> {
    // Another process may take the port between here and chromedriver's bind; then it exits
    // at once and the supervisor tries another one.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .context("finding a free port for chromedriver")?
        .port();
    let mut cmd = Command::new(binary);
    cmd.arg(format!("--port={port}"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    // If the daemon dies, chromedriver is told to go too.
    unsafe {
        cmd.pre_exec(|| {
            nix::sys::prctl::set_pdeathsig(Signal::SIGTERM).map_err(std::io::Error::from)
        });
    }
    let mut child = cmd.spawn().with_context(|| {
        format!(
            "starting {}: install chromedriver (apt-get install chromium-driver) or configure \
             an external WebDriver URL",
            binary.display()
        )
    })?;
    if let Some(out) = child.stdout.take() {
        tokio::spawn(forward_output(out));
    }
    if let Some(err) = child.stderr.take() {
        tokio::spawn(forward_output(err));
    }
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        if let Some(status) = child.try_wait().context("watching chromedriver")? {
            bail!("chromedriver exited with {status} before it was ready");
        }
        if is_ready(port).await {
            break;
        }
        if Instant::now() > deadline {
            bail!("chromedriver was not ready within {READY_TIMEOUT:?}");
        }
        tokio::time::sleep(READY_POLL).await;
    }
    tracing::debug!(port, pid = child.id(), generation, "chromedriver is ready");
    let url = format!("http://127.0.0.1:{port}");
    Ok((child, Endpoint { url, generation }))
}

/// chromedriver's (and its browsers') output, as debug logs.
async fn forward_output(stream: impl AsyncRead + Unpin) {
    let mut lines = BufReader::new(stream).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        tracing::debug!(target: "chromedriver", "{line}");
    }
}

/// `GET /status` says `"ready": true`. chromedriver refuses HTTP/1.0 and keeps the connection
/// open despite `Connection: close`, so read only until the answer is in.
async fn is_ready(port: u16) -> bool {
    let exchange = async {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).await?;
        stream
            .write_all(b"GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            .await?;
        let mut response = Vec::new();
        let mut chunk = [0u8; 1024];
        loop {
            let n = stream.read(&mut chunk).await?;
            response.extend_from_slice(&chunk[..n]);
            let text = String::from_utf8_lossy(&response).replace(' ', "");
            if n == 0 || text.contains("\"ready\":") {
                return Ok::<_, std::io::Error>(text.contains("\"ready\":true"));
            }
        }
    };
    matches!(
        tokio::time::timeout(Duration::from_secs(1), exchange).await,
        Ok(Ok(true))
    )
}
