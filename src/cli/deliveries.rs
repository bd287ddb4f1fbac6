//! `workhorse deliveries`: the notification outbox, and putting dead deliveries back in work,
//! through `work::deliveries`.

use chrono::{DateTime, Utc};
use clap::{Subcommand, ValueEnum};
use serde::Serialize;
use uuid::Uuid;

use super::operator::{Operator, refused};
use super::output::{Outcome, Table, ago, print_json, report};
use crate::store::notifications::Delivery;
use crate::work::deliveries::{self, DeliveryFilter};

/// Deliveries.
#[derive(Debug, Subcommand)]
pub enum DeliveriesCommand {
    /// List deliveries, newest first.
    List {
        /// Only deliveries in this state.
        #[arg(long, value_enum)]
        state: Option<DeliveryState>,
        /// Only deliveries to this channel (id).
        #[arg(long, value_name = "CHANNEL_ID")]
        channel: Option<Uuid>,
        /// At most this many.
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(i64).range(1..=10_000))]
        limit: i64,
    },
    /// Put dead deliveries back in work with a fresh set of attempts.
    Retry {
        /// The deliveries' ids.
        #[arg(required = true)]
        ids: Vec<Uuid>,
    },
}

/// A delivery's state.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum DeliveryState {
    /// Will be attempted (again).
    Pending,
    /// Delivered.
    Delivered,
    /// Gave up.
    Dead,
}

#[derive(Debug, Serialize)]
struct DeliveryView {
    id: Uuid,
    state: String,
    topic: String,
    channel_id: Uuid,
    owner_id: Uuid,
    job_id: Uuid,
    attempts: i32,
    last_status: Option<i32>,
    last_error: Option<String>,
    next_attempt_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    delivered_at: Option<DateTime<Utc>>,
}

impl From<Delivery> for DeliveryView {
    fn from(d: Delivery) -> Self {
        Self {
            id: d.id,
            state: d.state,
            topic: d.topic,
            channel_id: d.channel_id,
            owner_id: d.owner_id,
            job_id: d.job_id,
            attempts: d.attempts,
            last_status: d.last_status,
            last_error: d.last_error,
            next_attempt_at: d.next_attempt_at,
            created_at: d.created_at,
            delivered_at: d.delivered_at,
        }
    }
}

/// Run a `deliveries` command.
pub async fn run(op: &Operator, command: DeliveriesCommand) -> anyhow::Result<()> {
    match command {
        DeliveriesCommand::List {
            state,
            channel,
            limit,
        } => {
            let state = state.map(|s| match s {
                DeliveryState::Pending => "pending",
                DeliveryState::Delivered => "delivered",
                DeliveryState::Dead => "dead",
            });
            let filter = DeliveryFilter {
                state,
                channel,
                before: None,
                limit,
            };
            let rows = deliveries::list(op.pool(), &op.caller, &filter)
                .await
                .map_err(refused)?;
            let views: Vec<DeliveryView> = rows.into_iter().map(DeliveryView::from).collect();
            if op.json {
                return print_json(&views);
            }
            let now = Utc::now();
            let mut table = Table::new(&[
                "ID",
                "STATE",
                "TOPIC",
                "CHANNEL",
                "ATTEMPTS",
                "CREATED",
                "LAST ERROR",
            ]);
            for v in views {
                let error = v.last_error.unwrap_or_default();
                let error: String = error.chars().take(60).collect();
                table.row(vec![
                    v.id.to_string(),
                    v.state,
                    v.topic,
                    v.channel_id.to_string(),
                    v.attempts.to_string(),
                    ago(v.created_at, now),
                    error,
                ]);
            }
            table.print("no deliveries");
            Ok(())
        }
        DeliveriesCommand::Retry { ids } => {
            let mut outcomes = Vec::with_capacity(ids.len());
            for id in ids {
                let mut tx = op.pool().begin().await?;
                let outcome = match deliveries::retry(&mut tx, &op.caller, id).await {
                    Ok(d) => {
                        tx.commit().await?;
                        Outcome::done(id, d.state)
                    }
                    Err(e) => Outcome::failed(id, refused(e)),
                };
                outcomes.push(outcome);
            }
            report(&outcomes, "delivery", "retried", op.json)
        }
    }
}
