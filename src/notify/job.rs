//! `notify`: carry out one delivery of the outbox: a signed webhook, an FCM message or a Web
//! Push message. Failed attempts follow `notify.retry_schedule` (with jitter); the delivery is
//! dead after the last one. A channel the provider says is gone is turned off, not retried.
//! How one attempt goes, per channel kind, is in `attempt.rs`.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, anyhow};
use chrono::Utc;
use serde::Deserialize;
use serde_json::{Value, json};
use sqlx::PgPool;
use tokio::sync::OnceCell;
use tracing::Instrument;
use uuid::Uuid;

use super::attempt::Attempt;
use super::fcm::{FcmSender, ServiceAccount};
use super::record::Recorder;
use super::webpush::VapidKeys;
use crate::config::NotifyConfig;
use crate::egress::{EgressPolicy, OutboundClient};
use crate::engine::{Job, JobError, JobKind};
use crate::metrics::Metrics;
use crate::store;
use crate::store::outbox::Attempted;

/// Senders for every channel kind, and the retry schedule.
pub struct Notifier {
    pub(super) config: NotifyConfig,
    /// Webhooks and Web Push: built once, so every delivery shares its connection pool and TLS
    /// configuration, and every one is checked against the egress policy.
    pub(super) outbound: OutboundClient,
    /// FCM's configured endpoints (an operator's choice, not a user's) take no egress check.
    pub(super) fcm: Option<FcmSender>,
    vapid: OnceCell<VapidKeys>,
    /// Where delivery outcomes are counted.
    metrics: Metrics,
}

impl Notifier {
    /// Senders as configured; the FCM service account is read now.
    pub fn new(
        config: &NotifyConfig,
        allow: &[String],
        metrics: Metrics,
    ) -> anyhow::Result<Arc<Self>> {
        let policy = EgressPolicy::new(allow).map_err(anyhow::Error::msg)?;
        let outbound = OutboundClient::new(Arc::new(policy), config.timeout)?;
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .build()
            .context("building the HTTP client for FCM")?;
        let fcm = match config.fcm_service_account.as_os_str().is_empty() {
            true => None,
            false => {
                let path = &config.fcm_service_account;
                let json = std::fs::read_to_string(path)
                    .with_context(|| format!("reading notify.fcm_service_account {path:?}"))?;
                let account = ServiceAccount::from_json(&json)
                    .map_err(|e| anyhow!("notify.fcm_service_account {path:?}: {e}"))?;
                let token_uri = Some(config.fcm_token_uri.as_str()).filter(|u| !u.is_empty());
                Some(
                    FcmSender::new(account, &config.fcm_base, token_uri, http.clone())
                        .map_err(|e| anyhow!("notify.fcm_service_account: {e}"))?,
                )
            }
        };
        Ok(Arc::new(Self {
            config: config.clone(),
            outbound,
            fcm,
            vapid: OnceCell::new(),
            metrics,
        }))
    }

    /// Whether FCM channels can be served.
    pub fn has_fcm(&self) -> bool {
        self.fcm.is_some()
    }

    /// The egress policy webhooks and Web Push endpoints obey.
    pub fn policy(&self) -> &EgressPolicy {
        self.outbound.policy()
    }

    /// Attempts a delivery gets: one, then one per step of the schedule.
    pub fn max_attempts(&self) -> i32 {
        self.config.max_attempts()
    }

    /// The notification settings (attempts per delivery, for publishing events).
    pub fn config(&self) -> &NotifyConfig {
        &self.config
    }

    /// The installation's VAPID keys (the first daemon creates them in the database).
    pub async fn vapid(&self, pool: &PgPool) -> anyhow::Result<&VapidKeys> {
        self.vapid
            .get_or_try_init(|| async {
                let generated = VapidKeys::generate().private_bytes();
                let stored = store::notifications::vapid_private_key(pool, &generated).await?;
                VapidKeys::from_private_bytes(&stored)
                    .map_err(|e| anyhow!("the stored VAPID key: {e}"))
            })
            .await
    }

    /// The wait before attempt `attempt + 1`, with jitter.
    fn wait_after(&self, attempt: i32) -> Duration {
        let schedule = &self.config.retry_schedule;
        let base = schedule
            .get((attempt.max(1) - 1) as usize)
            .or(schedule.last())
            .copied()
            .unwrap_or(Duration::from_secs(60));
        let jitter = self.config.retry_jitter * (rand::random::<f64>() * 2.0 - 1.0);
        base.mul_f64((1.0 + jitter).max(0.0))
    }
}

/// The `notify` job's arguments.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyArgs {
    /// The delivery to carry out.
    pub delivery_id: Uuid,
}

/// The `notify` kind.
pub struct NotifyKind {
    /// The outbox.
    pool: PgPool,
    /// The senders.
    notifier: Arc<Notifier>,
    /// Where attempts are written, many to a statement.
    recorder: Recorder,
}

impl NotifyKind {
    /// The kind, working the outbox in `pool`.
    pub fn new(pool: PgPool, notifier: Arc<Notifier>) -> Self {
        let recorder = Recorder::new(pool.clone());
        Self {
            pool,
            notifier,
            recorder,
        }
    }

    /// Record an attempt of delivery `id`.
    async fn record(
        &self,
        id: Uuid,
        attempt: i32,
        status: Option<i32>,
        error: Option<&str>,
        state: &'static str,
        next_attempt_at: Option<chrono::DateTime<Utc>>,
    ) -> anyhow::Result<()> {
        self.recorder
            .record(Attempted {
                id,
                attempt,
                status,
                error: error.map(str::to_string),
                state,
                next_attempt_at,
            })
            .await
    }
}

impl JobKind for NotifyKind {
    const NAME: &'static str = crate::domain::jobs::kinds::NOTIFY;
    type Args = NotifyArgs;

    async fn run(&self, job: Job<NotifyArgs>) -> Result<Value, JobError> {
        let id = job.args.delivery_id;
        // A channel's deletion removes its deliveries: a delivery found has its channel.
        let Some((delivery, channel)) =
            store::outbox::find_outgoing(&self.pool, id, job.owner_id).await?
        else {
            return Err(JobError::permanent(anyhow!(
                "delivery {id} no longer exists (or its channel was deleted)"
            )));
        };
        if delivery.state == "delivered" {
            return Ok(json!({ "delivery_id": id, "state": "delivered" }));
        }
        let span = tracing::info_span!(
            "notify delivery",
            delivery.id = %id,
            channel.id = %channel.id,
            channel.kind = channel.kind,
            event.topic = delivery.topic,
            attempt = job.attempt,
            http.response.status_code = tracing::field::Empty,
            outcome = tracing::field::Empty,
        );
        if !channel.enabled {
            let reason = channel.disabled_reason.as_deref().unwrap_or("turned off");
            let error = format!("the channel is disabled: {reason}");
            self.record(id, job.attempt, None, Some(&error), "dead", None)
                .instrument(span.clone())
                .await?;
            span.record("outcome", "dead");
            self.notifier.metrics.delivery(&channel.kind, "dead");
            return Err(JobError::permanent(anyhow!(error)));
        }
        let attempt = {
            let send = self.notifier.attempt(&self.pool, &delivery, &channel);
            // A cancelled delivery stops waiting for the receiver; whether the request reached
            // it is unknown, as with any dropped connection, and nothing is recorded.
            tokio::select! {
                attempt = send.instrument(span.clone()) => attempt,
                () = job.cancel.cancelled() => return Err(JobError::Cancelled),
            }
        };
        let last = job.attempt >= job.max_attempts;
        let outcome = match &attempt {
            Attempt::Delivered(_) => "delivered",
            Attempt::Transient { .. } if !last => "failed",
            _ => "dead",
        };
        self.notifier.metrics.delivery(&channel.kind, outcome);
        match attempt {
            Attempt::Delivered(status) => {
                span.record("http.response.status_code", i64::from(status));
                span.record("outcome", "delivered");
                self.record(
                    id,
                    job.attempt,
                    Some(i32::from(status)),
                    None,
                    "delivered",
                    None,
                )
                .await?;
                Ok(json!({ "delivery_id": id, "status": status }))
            }
            Attempt::Transient {
                status,
                error,
                after,
            } => {
                let wait = self
                    .notifier
                    .wait_after(job.attempt)
                    .max(after.unwrap_or_default());
                let (state, next) = match last {
                    true => ("dead", None),
                    false => (
                        "pending",
                        Some(Utc::now() + chrono::TimeDelta::from_std(wait).unwrap_or_default()),
                    ),
                };
                span.record("outcome", state);
                self.record(
                    id,
                    job.attempt,
                    status.map(i32::from),
                    Some(&error),
                    state,
                    next,
                )
                .await?;
                Err(JobError::RetryIn(wait, anyhow!(error)))
            }
            Attempt::Permanent {
                status,
                error,
                gone,
            } => {
                span.record("outcome", "dead");
                let mut tx = self.pool.begin().await?;
                if gone {
                    store::notifications::set_enabled(&mut *tx, channel.id, Some(&error)).await?;
                }
                let attempted = Attempted {
                    id,
                    attempt: job.attempt,
                    status: status.map(i32::from),
                    error: Some(error.clone()),
                    state: "dead",
                    next_attempt_at: None,
                };
                store::outbox::record_attempts(&mut *tx, &[attempted]).await?;
                tx.commit().await?;
                Err(JobError::permanent(anyhow!(error)))
            }
        }
    }
}
