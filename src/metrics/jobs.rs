//! The `workhorse_jobs` gauge's count: one grouped query over the live and dead jobs (served
//! by a partial index, so finished jobs cost nothing), run at most once per `jobs_cache`
//! however many scrapes arrive; the observable gauge reads the last count.

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use sqlx::PgPool;

use crate::store::jobs::{GAUGE_STATES, count_by_kind_and_state};

/// The cached count of jobs by kind and state.
pub struct JobsGauge {
    pool: PgPool,
    window: Duration,
    kinds: Vec<&'static str>,
    /// When the last count ran (successful or not); held across the query so concurrent
    /// scrapes wait for one count instead of each running their own.
    counted: tokio::sync::Mutex<Option<Instant>>,
    counts: Mutex<BTreeMap<(String, String), i64>>,
}

impl JobsGauge {
    /// A gauge over `pool` showing every kind of `kinds` (zeros included), counted at most
    /// once per `window`.
    pub fn new(pool: PgPool, window: Duration, kinds: Vec<&'static str>) -> Self {
        Self {
            pool,
            window,
            kinds,
            counted: tokio::sync::Mutex::new(None),
            counts: Mutex::new(BTreeMap::new()),
        }
    }

    /// Count again if the window passed since the last count. A failed count keeps the
    /// previous numbers until the next window (a scrape must not hammer a sick database).
    pub async fn refresh(&self) {
        let mut counted = self.counted.lock().await;
        if counted.is_some_and(|at| at.elapsed() < self.window) {
            return;
        }
        *counted = Some(Instant::now());
        match count_by_kind_and_state(&self.pool).await {
            Ok(rows) => {
                let counts = rows
                    .into_iter()
                    .map(|(kind, state, n)| ((kind, state), n))
                    .collect();
                *self.counts.lock().unwrap_or_else(PoisonError::into_inner) = counts;
            }
            Err(e) => {
                tracing::warn!(
                    error = format!("{e:#}"),
                    "counting jobs for the metrics failed"
                );
            }
        }
    }

    /// The last count: every known kind in every counted state (zeros included), plus any
    /// other kind found in the table.
    pub fn snapshot(&self) -> Vec<(String, String, i64)> {
        let counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        let mut all: BTreeMap<(String, String), i64> = (self.kinds.iter())
            .flat_map(|k| GAUGE_STATES.map(|s| ((k.to_string(), s.to_string()), 0)))
            .collect();
        all.extend(counts.iter().map(|(k, n)| (k.clone(), *n)));
        all.into_iter().map(|((k, s), n)| (k, s, n)).collect()
    }
}
