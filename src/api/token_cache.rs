//! Who recently seen API tokens belong to, so an authenticated request costs no token lookup.
//! The cache serves only while its listener on `workhorse_auth` is connected: a trigger
//! notifies that channel whenever a token is revoked or a user's role or plan changes (from any
//! process, the CLI included), and every notice and every reconnect empties the cache. Entries
//! live at most a minute besides. The tokens it served are marked used once a minute.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use sqlx::PgPool;
use sqlx::postgres::{PgListener, PgPoolOptions};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::domain::users::Caller;
use crate::store;

/// The channel the `auth_changed` triggers notify (migration `auth_changes_notify`).
pub const CHANNEL: &str = "workhorse_auth";

/// How long an entry serves at most, notice or not.
const TTL: Duration = Duration::from_secs(60);

/// Entries kept at most; a full cache drops its expired entries, then refuses new ones (those
/// requests are looked up, as without a cache).
const MAX_ENTRIES: usize = 100_000;

/// How often the tokens the cache served get their `last_used_at` written: the column is
/// kept to the minute.
const MARK_USED_EVERY: Duration = Duration::from_secs(60);

/// The cache; clones share it.
#[derive(Clone, Default)]
pub struct TokenCache {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    state: Mutex<State>,
    /// Tokens served from the cache since the last `mark_used` pass.
    used: Mutex<HashSet<Uuid>>,
}

#[derive(Default)]
struct State {
    /// Whether the listener is connected; the cache serves only then.
    live: bool,
    /// Bumped by every clear: a lookup that started before a clear is not inserted after it.
    generation: u64,
    /// Token hash → caller and when it was looked up.
    entries: HashMap<Vec<u8>, (Caller, Instant)>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing panics while holding these locks; if something did, the data is still sound.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl TokenCache {
    /// An empty cache that serves nothing until [`TokenCache::listen`] has connected.
    pub fn new() -> Self {
        Self::default()
    }

    /// The caller of the token with this hash, if cached, fresh and the listener is connected.
    pub fn get(&self, hash: &[u8]) -> Option<Caller> {
        let caller = {
            let mut state = lock(&self.inner.state);
            if !state.live {
                return None;
            }
            match state.entries.get(hash) {
                Some((caller, at)) if at.elapsed() < TTL => caller.clone(),
                Some(_) => {
                    state.entries.remove(hash);
                    return None;
                }
                None => return None,
            }
        };
        if let Some(token_id) = caller.token_id {
            lock(&self.inner.used).insert(token_id);
        }
        Some(caller)
    }

    /// The current generation: read it before looking a token up, and pass it to
    /// [`TokenCache::insert`].
    pub fn generation(&self) -> u64 {
        lock(&self.inner.state).generation
    }

    /// Cache what a lookup found, unless the cache was cleared (or the listener lost) since
    /// `generation` was read: the lookup may have read what a notice has since invalidated.
    pub fn insert(&self, generation: u64, hash: Vec<u8>, caller: Caller) {
        let mut state = lock(&self.inner.state);
        if !state.live || state.generation != generation {
            return;
        }
        if state.entries.len() >= MAX_ENTRIES {
            state.entries.retain(|_, (_, at)| at.elapsed() < TTL);
            if state.entries.len() >= MAX_ENTRIES {
                return;
            }
        }
        state.entries.insert(hash, (caller, Instant::now()));
    }

    /// Forget every entry: a token or a user changed. The API calls it right after its own
    /// changes, before the notice comes back.
    pub fn clear(&self) {
        let mut state = lock(&self.inner.state);
        state.generation += 1;
        state.entries.clear();
    }

    /// Whether the cache serves (its listener is connected).
    pub fn is_live(&self) -> bool {
        lock(&self.inner.state).live
    }

    fn set_live(&self, live: bool) {
        let mut state = lock(&self.inner.state);
        state.live = live;
        state.generation += 1;
        state.entries.clear();
    }

    /// Listen on [`CHANNEL`] until `shutdown`, emptying the cache on every notice; reconnect
    /// with a growing pause when the connection is lost. While disconnected the cache serves
    /// nothing (notices may be missed), and it starts empty after each reconnect.
    pub async fn listen(self, pool: PgPool, shutdown: CancellationToken) {
        // Its own connection, beside `pool`'s: a listener holds its connection for good, and
        // the pool's are for requests and jobs.
        let own = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(10))
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_lazy_with((*pool.connect_options()).clone());
        drop(pool);
        let mut failures: u32 = 0;
        while !shutdown.is_cancelled() {
            let connected: Result<PgListener, sqlx::Error> = async {
                let mut listener = PgListener::connect_with(&own).await?;
                // A lost connection comes back here as `Ok(None)`: we reconnect ourselves,
                // so that we know when LISTEN is in force again.
                listener.eager_reconnect(false);
                listener.listen(CHANNEL).await?;
                Ok(listener)
            }
            .await;
            let mut listener = match connected {
                Ok(listener) => listener,
                Err(e) => {
                    failures += 1;
                    if failures == 1 || failures.is_multiple_of(50) {
                        tracing::warn!(error = %e, failures,
                            "listening for token changes failed; every request is looked up");
                    }
                    let wait = Duration::from_millis(100 << failures.min(5));
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => continue,
                        _ = shutdown.cancelled() => break,
                    }
                }
            };
            if failures > 0 {
                tracing::info!(failures, "listening for token changes again");
            }
            failures = 0;
            // After LISTEN: a change committed from now on is noticed.
            self.set_live(true);
            loop {
                let next = tokio::select! {
                    n = listener.try_recv() => n,
                    _ = shutdown.cancelled() => break,
                };
                match next {
                    Ok(Some(_)) => self.clear(),
                    Ok(None) => {
                        tracing::warn!("the token cache's listener lost its connection");
                        break;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "the token cache's listener failed");
                        break;
                    }
                }
            }
            self.set_live(false);
        }
        self.set_live(false);
        own.close().await;
    }

    /// Write `last_used_at` of the tokens served from the cache, once a minute until
    /// `shutdown` (and once more then). Lookups that miss the cache write it themselves.
    pub async fn mark_used(self, pool: PgPool, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(MARK_USED_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            let stopping = tokio::select! {
                _ = tick.tick() => false,
                _ = shutdown.cancelled() => true,
            };
            let ids: Vec<Uuid> = std::mem::take(&mut *lock(&self.inner.used))
                .into_iter()
                .collect();
            if !ids.is_empty() {
                let marked: anyhow::Result<()> = async {
                    let mut conn = pool.acquire().await?;
                    store::tokens::touch(&mut conn, &ids).await
                }
                .await;
                if let Err(e) = marked {
                    // Best effort: the next use marks them again.
                    tracing::warn!(
                        error = format!("{e:#}"),
                        tokens = ids.len(),
                        "recording when tokens were last used failed"
                    );
                }
            }
            if stopping {
                return;
            }
        }
    }
}
