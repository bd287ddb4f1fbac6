//! The wide fan-out of `bench_notify`: one event published to every webhook channel of one
//! owner (10,000 by default, all subscribed to the topic and pointing at the loopback
//! receiver) while the real `App` runs. Times the publish call (until it returned and
//! committed, every delivery recorded) and until the receiver got every request.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::json;
use sqlx::{Connection, PgPool};
use uuid::Uuid;
use workhorse::notify::webhook;
use workhorse::store::notifications;

use super::receiver::Receiver;
use super::support::figures::figure;
use super::support::{ms, thousands};
use super::{Args, MS_EACH, TOPIC, db_clock, figures, reset, start_app, wait_delivered};

/// Publish one event to `--fanout-wide` channels at `--fanout-concurrency`; returns the row
/// of the table and a note on the times.
pub async fn fanout(
    url: &str,
    pool: &PgPool,
    receiver: &Receiver,
    owner: Uuid,
    args: &Args,
) -> anyhow::Result<(String, String)> {
    let channels = args.size(args.fanout_wide, 10_000, 200);
    let concurrency = args.fanout_concurrency;
    eprintln!("fan-out: 1 event × {channels} channels, notify concurrency {concurrency}");
    reset(pool).await?;
    let mut conn = pool.acquire().await.context("acquiring a connection")?;
    add_channels(&mut conn, owner, receiver, channels).await?;
    let data_dir = tempfile::tempdir().context("creating a data dir")?;
    let app = start_app(url, data_dir.path(), concurrency).await?;
    receiver.reset();
    let outcome = async {
        let started = db_clock(&mut conn).await?;
        let publishing = Instant::now();
        let mut tx = conn.begin().await.context("beginning a transaction")?;
        let event = notifications::NewEvent {
            topic: TOPIC.into(),
            owner_id: Some(owner),
            payload: json!({ "scrape_id": Uuid::now_v7(), "status": "succeeded" }),
            only_channel: None,
            all_owner_channels: false,
            max_attempts: 7,
        };
        let (_, deliveries) = notifications::publish(&mut tx, &event).await?;
        tx.commit().await.context("committing the event")?;
        let publish_secs = publishing.elapsed().as_secs_f64();
        if deliveries.len() != channels {
            bail!(
                "the event went to {} of {channels} channels",
                deliveries.len()
            );
        }
        let deadline = Instant::now() + Duration::from_secs(60) + channels as u32 * MS_EACH;
        while receiver.count() < channels as u64 {
            if Instant::now() > deadline {
                bail!(
                    "the receiver got {} of {channels} requests at the deadline",
                    receiver.count()
                );
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let all_secs = publishing.elapsed().as_secs_f64();
        wait_delivered(pool, channels, deadline).await?;
        let f = figures(
            pool,
            Some(started),
            channels,
            publish_secs,
            receiver.count(),
        )
        .await?;
        anyhow::Ok((f, publish_secs, all_secs))
    }
    .await;
    app.stop().await?;
    let (f, publish_secs, all_secs) = outcome?;
    let what = format!(
        "fan-out: 1 event to {} webhook channels of one owner, notify concurrency {concurrency}",
        thousands(channels as f64)
    );
    figure(
        "notify.fanout_publish_s",
        publish_secs,
        "s",
        &format!("{what}: until publish returned (every delivery recorded)"),
    );
    figure(
        "notify.fanout_all_s",
        all_secs,
        "s",
        &format!("{what}: until the receiver got every request"),
    );
    let row = format!(
        "| fan-out: 1 event × {} channels = {} | {concurrency} | {} | {} | {} | {publish_secs:.2} s | {} |",
        thousands(channels as f64),
        thousands(channels as f64),
        thousands(f.rate),
        ms(f.p50),
        ms(f.p95),
        thousands(f.requests as f64),
    );
    let note = format!(
        "{what}: publish returned after {publish_secs:.2} s, the receiver had every request \
         after {all_secs:.2} s (target ≤ 1 s in all: {}).",
        if all_secs <= 1.0 { "PASS" } else { "FAIL" }
    );
    Ok((row, note))
}

/// `n` webhook channels of `owner` on the topic, to the receiver, in one transaction.
async fn add_channels(
    conn: &mut sqlx::PgConnection,
    owner: Uuid,
    receiver: &Receiver,
    n: usize,
) -> anyhow::Result<()> {
    let mut tx = conn.begin().await.context("beginning a transaction")?;
    let target = json!({ "url": receiver.url() });
    let topics = [TOPIC.to_string()];
    for i in 0..n {
        let secret = webhook::new_secret();
        let name = format!("wide {i}");
        notifications::insert_channel(
            &mut tx,
            owner,
            "webhook",
            &name,
            &target,
            Some(&secret),
            &topics,
        )
        .await?;
    }
    tx.commit().await.context("committing the channels")?;
    Ok(())
}
