//! `workhorse deliveries`: list by state, retry a dead one.

use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;
use workhorse::store::notifications::{self, NewEvent};

use crate::helpers::{Cli, job_state, user};

/// A webhook delivery that gave up, with its dead `notify` job: (delivery, job).
async fn dead_delivery(pool: &PgPool) -> (Uuid, Uuid) {
    let owner = user(pool, "ada").await;
    let mut conn = pool.acquire().await.unwrap();
    let target = json!({"url": "http://127.0.0.1:9/hook"});
    let channel =
        notifications::insert_channel(&mut conn, owner, "webhook", "hook", &target, None, &[])
            .await
            .unwrap();
    let event = NewEvent {
        topic: "channel.test".into(),
        owner_id: Some(owner),
        payload: json!({}),
        only_channel: Some(channel.id),
        all_owner_channels: false,
        max_attempts: 3,
    };
    let (_, deliveries) = notifications::publish(&mut conn, &event).await.unwrap();
    let (delivery, job): (Uuid, Uuid) = sqlx::query_as(
        "UPDATE deliveries SET state = 'dead', attempts = 3, last_error = 'connection refused' \
         WHERE id = $1 RETURNING id, job_id",
    )
    .bind(deliveries[0])
    .fetch_one(&mut *conn)
    .await
    .unwrap();
    sqlx::query("UPDATE jobs SET state = 'dead', finished_at = now() WHERE id = $1")
        .bind(job)
        .execute(&mut *conn)
        .await
        .unwrap();
    (delivery, job)
}

#[sqlx::test]
async fn deliveries_list_dead_shows_the_dead_delivery(pool: PgPool) {
    let cli = Cli::new(&pool).await;
    let (delivery, _) = dead_delivery(&pool).await;

    let dead = cli.json(&["deliveries", "list", "--state", "dead"]);
    let pending = cli.json(&["deliveries", "list", "--state", "pending"]);
    let table = cli.ok(&["deliveries", "list", "--state", "dead"]);

    assert_eq!(dead[0]["id"], delivery.to_string());
    assert_eq!(dead[0]["last_error"], "connection refused");
    assert_eq!(pending, json!([]));
    assert!(
        table.contains("connection refused") && table.contains("dead"),
        "{table}"
    );
}

#[sqlx::test]
async fn deliveries_retry_puts_the_delivery_and_its_job_back(pool: PgPool) {
    let cli = Cli::new(&pool).await;
    let (delivery, job) = dead_delivery(&pool).await;

    let retried = cli.json(&["deliveries", "retry", &delivery.to_string()]);
    let (_, again) = cli.exits(1, &["deliveries", "retry", &delivery.to_string()]);

    let state: String = sqlx::query_scalar("SELECT state FROM deliveries WHERE id = $1")
        .bind(delivery)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(
        retried[0],
        json!({"id": delivery, "ok": true, "state": "pending"})
    );
    assert_eq!(state, "pending");
    assert_eq!(job_state(&pool, job).await, "pending");
    assert!(
        again.contains("only dead deliveries can be retried"),
        "{again}"
    );
}
