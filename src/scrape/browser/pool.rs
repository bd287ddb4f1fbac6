//! The session pool: WebDriver sessions opened on demand up to `pool_size`, handed to one page
//! at a time, cleared and put back for the next page, replaced after `max_pages_per_session`
//! pages, a failure or state that could not be cleared, and closed after `idle_timeout` or at
//! shutdown.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use fantoccini::wd::Capabilities;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::driver::{Driver, Endpoint};
use super::reset::{self, Unclearable};
use super::sandbox;
use super::session::{self, Session};
use super::{BrowserConfig, PageError, PoolStats};

/// Waiting this long for a restarting chromedriver before a load gives up.
const ENDPOINT_WAIT: Duration = Duration::from_secs(15);
/// Busy sessions get this long to finish their page at shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(15);

/// A checked-out session; give it back with [`Lease::checkin`]. Dropped without that (the
/// load was cancelled, e.g. by a job timeout), it closes the session, which may be mid-page.
pub(super) struct Lease {
    pool: Arc<Pool>,
    // Both are `Some` until checkin or drop takes them.
    session: Option<Session>,
    permit: Option<OwnedSemaphorePermit>,
    reused: bool,
    fresh: bool,
}

impl Lease {
    pub fn session(&mut self) -> Option<&mut Session> {
        self.session.as_mut()
    }

    /// Whether the session served an earlier page.
    pub fn reused(&self) -> bool {
        self.reused
    }

    /// Give the session back after a page: keep it for the next one if it is healthy, has
    /// pages left and what the page left in the browser could be cleared, else close it in
    /// the background (still holding its permit, so the pool never runs more than
    /// `pool_size` browsers).
    pub async fn checkin(mut self, healthy: bool, served: bool) {
        let pool = self.pool.clone();
        if served {
            pool.served.fetch_add(1, Ordering::Relaxed);
        }
        let reusable = healthy
            && !self.fresh
            && !pool.closed.load(Ordering::Relaxed)
            && self
                .session
                .as_ref()
                .is_some_and(|s| s.pages < pool.max_pages);
        // Cleared while the lease still holds the session: if this is cancelled, its drop
        // closes the session.
        let keep = reusable && self.clear().await;
        let (Some(mut session), Some(permit)) = (self.session.take(), self.permit.take()) else {
            return;
        };
        if keep {
            session.last_used = Instant::now();
            let mut idle = pool.idle();
            // Checked under the lock: shutdown empties the pool under it after setting `closed`.
            if !pool.closed.load(Ordering::Relaxed) {
                idle.push(session);
                return;
            }
        }
        pool.close_later(session, permit);
    }

    /// Clear the browser state the page left, so the next page (maybe another user's) sees
    /// none of it; `false`: the session must be closed instead.
    async fn clear(&mut self) -> bool {
        if self.pool.no_devtools.load(Ordering::Relaxed) {
            return false;
        }
        let Some(session) = self.session.as_mut() else {
            return false;
        };
        let span = tracing::info_span!("clear browser state", session_id = %session.id);
        match reset::clear(session).instrument(span).await {
            Ok(()) => true,
            Err(Unclearable::NoDevTools(message)) => {
                if !self.pool.no_devtools.swap(true, Ordering::Relaxed) {
                    tracing::info!(
                        %message,
                        "the WebDriver cannot clear browser state between pages: every page \
                         gets a new session"
                    );
                }
                false
            }
            Err(Unclearable::Unreachable(why)) => {
                tracing::debug!(session_id = %session.id, why, "not reusing a browser session");
                false
            }
            Err(e) => {
                tracing::warn!(
                    session_id = %session.id,
                    error = %e,
                    "clearing browser state failed; closing the session"
                );
                false
            }
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let (Some(session), Some(permit)) = (self.session.take(), self.permit.take()) {
            // Dropped mid-page: stop the browser now rather than after its navigation.
            session.abort();
            self.pool.close_later(session, permit);
        }
    }
}

/// Sessions and their counters.
pub(super) struct Pool {
    // One permit per busy (or closing) session: idle sessions hold none, and a session is
    // only opened when no idle one is left, so live sessions never exceed `pool_size`.
    permits: Arc<Semaphore>,
    // Most recently used last: pages go to warm sessions and the rest age out.
    idle: Mutex<Vec<Session>>,
    closed: AtomicBool,
    // Set once the WebDriver turned out to lack the DevTools passthrough (a Selenium Grid):
    // state cannot be cleared, so no session serves a second page.
    no_devtools: AtomicBool,
    live: AtomicUsize,
    created: AtomicU64,
    served: AtomicU64,
    pool_size: usize,
    max_pages: u32,
    idle_timeout: Duration,
    capabilities: Capabilities,
    window: (u32, u32),
    // Per-session `--user-data-dir`s live here, only when we run chromedriver ourselves.
    profile_root: Option<PathBuf>,
}

impl Pool {
    /// An empty pool.
    pub fn new(config: &BrowserConfig) -> anyhow::Result<Self> {
        // Only a chromedriver we run shares our file system.
        let profile_root = config.webdriver_url.is_none().then(|| {
            std::env::temp_dir().join(format!("workhorse-chromium-{}", uuid::Uuid::new_v4()))
        });
        Ok(Self {
            permits: Arc::new(Semaphore::new(config.pool_size)),
            idle: Mutex::new(Vec::new()),
            closed: AtomicBool::new(false),
            no_devtools: AtomicBool::new(false),
            live: AtomicUsize::new(0),
            created: AtomicU64::new(0),
            served: AtomicU64::new(0),
            pool_size: config.pool_size,
            max_pages: config.max_pages_per_session,
            idle_timeout: config.idle_timeout,
            capabilities: session::capabilities(config, sandbox::chosen(config))?,
            window: config.window,
            profile_root,
        })
    }

    /// Counters (chromedriver restarts are the driver's).
    pub fn stats(&self) -> PoolStats {
        PoolStats {
            live_sessions: self.live.load(Ordering::Relaxed),
            idle_sessions: self.idle().len(),
            pages_served: self.served.load(Ordering::Relaxed),
            sessions_created: self.created.load(Ordering::Relaxed),
            chromedriver_restarts: 0,
        }
    }

    /// A session for one page: the most recently used idle one, or a new one (always new for
    /// `fresh`). Waits while all `pool_size` sessions are busy.
    pub async fn checkout(
        self: &Arc<Self>,
        driver: &Driver,
        fresh: bool,
    ) -> Result<Lease, PageError> {
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| PageError::DriverUnavailable("the browser is shut down".into()))?;
        let endpoint = driver.endpoint(ENDPOINT_WAIT).await?;
        if !fresh {
            loop {
                // The guard must be gone before the await below.
                let newest = self.idle().pop();
                let Some(session) = newest else { break };
                if session.generation == endpoint.generation {
                    return Ok(Lease {
                        pool: self.clone(),
                        session: Some(session),
                        permit: Some(permit),
                        reused: true,
                        fresh,
                    });
                }
                // Opened on a chromedriver that has since died.
                self.close(session).await;
            }
        }
        // Only `fresh` requests find idle sessions here: make room for the new one.
        while self.live.load(Ordering::Relaxed) >= self.pool_size {
            let oldest = {
                let mut idle = self.idle();
                (!idle.is_empty()).then(|| idle.remove(0))
            };
            match oldest {
                Some(session) => self.close(session).await,
                None => break,
            }
        }
        let session = self.open(&endpoint).await?;
        Ok(Lease {
            pool: self.clone(),
            session: Some(session),
            permit: Some(permit),
            reused: false,
            fresh,
        })
    }

    /// Refuse new pages, close idle sessions, and wait (a while) for busy ones to come back.
    pub async fn shutdown(&self) {
        self.permits.close();
        let idle = {
            let mut idle = self.idle();
            self.closed.store(true, Ordering::Relaxed);
            std::mem::take(&mut *idle)
        };
        futures::future::join_all(idle.into_iter().map(|s| self.close(s))).await;
        let deadline = Instant::now() + SHUTDOWN_GRACE;
        while self.live.load(Ordering::Relaxed) > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let left = self.live.load(Ordering::Relaxed);
        if left > 0 {
            tracing::warn!(sessions = left, "browser sessions still busy at shutdown");
        }
    }

    /// Remove the directory of the session profiles once every browser is gone.
    pub async fn remove_profiles(&self) {
        if let Some(root) = &self.profile_root {
            session::remove_dir(root).await;
        }
    }

    fn idle(&self) -> MutexGuard<'_, Vec<Session>> {
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Open a session and count it.
    async fn open(&self, endpoint: &Endpoint) -> Result<Session, PageError> {
        let profile_root = self.profile_root.as_deref();
        let session =
            Session::open(endpoint, &self.capabilities, profile_root, self.window).await?;
        self.live.fetch_add(1, Ordering::Relaxed);
        self.created.fetch_add(1, Ordering::Relaxed);
        Ok(session)
    }

    /// Close the session and stop counting it.
    async fn close(&self, session: Session) {
        session.close().await;
        self.live.fetch_sub(1, Ordering::Relaxed);
    }

    /// Close the session in the background, releasing `permit` once it is gone.
    fn close_later(self: &Arc<Self>, session: Session, permit: OwnedSemaphorePermit) {
        let pool = self.clone();
        let close = async move {
            pool.close(session).await;
            drop(permit);
        };
        // Without a runtime (it is being torn down) the client's own drop ends the session.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(close);
        }
    }

    /// Take out idle sessions that waited `idle_timeout` or belong to an older chromedriver.
    fn take_expired(&self, generation: Option<u64>) -> Vec<Session> {
        let mut idle = self.idle();
        let (expired, kept) = std::mem::take(&mut *idle).into_iter().partition(|s| {
            s.last_used.elapsed() >= self.idle_timeout || Some(s.generation) != generation
        });
        *idle = kept;
        expired
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        // Normally removed at shutdown; this covers a browser dropped without one.
        if let Some(root) = &self.profile_root {
            let _ = std::fs::remove_dir_all(root);
        }
    }
}

/// Close idle sessions past `idle_timeout`, and those a chromedriver restart left dead.
pub(super) async fn reap_idle(
    pool: Arc<Pool>,
    endpoints: watch::Receiver<Option<Endpoint>>,
    stop: CancellationToken,
) {
    let period = (pool.idle_timeout / 4).clamp(Duration::from_millis(100), Duration::from_secs(5));
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = stop.cancelled() => return,
        }
        let generation = endpoints.borrow().as_ref().map(|e| e.generation);
        for session in pool.take_expired(generation) {
            tracing::debug!(session_id = %session.id, "closing an idle browser session");
            pool.close(session).await;
        }
    }
}
