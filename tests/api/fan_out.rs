//! Publishing an event: one statement records it, a delivery for every channel it goes to and
//! each delivery's `notify` job, whatever the number of channels.

use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;
use workhorse::domain::users::{NewUser, Role};
use workhorse::store::{self, notifications::NewEvent};

async fn user(pool: &PgPool, name: &str) -> Uuid {
    let mut conn = pool.acquire().await.unwrap();
    let new = NewUser::parse(name, None, Role::User, None).unwrap();
    store::users::insert_user(&mut conn, &new).await.unwrap().id
}

/// `n` webhook channels of `owner` subscribed to `topic`, enabled or not; their ids.
async fn channels(pool: &PgPool, owner: Uuid, n: i32, topic: &str, enabled: bool) -> Vec<Uuid> {
    sqlx::query_scalar(
        "WITH c AS ( \
             INSERT INTO channels (id, owner_id, kind, name, target, enabled) \
             SELECT gen_random_uuid(), $1, 'webhook', 'hook ' || i, \
                    '{\"url\": \"https://example.com/\"}', $4 \
             FROM generate_series(1, $2) AS i RETURNING id \
         ), t AS (INSERT INTO channel_topics SELECT id, $3 FROM c) \
         SELECT id FROM c ORDER BY id",
    )
    .bind(owner)
    .bind(n)
    .bind(topic)
    .bind(enabled)
    .fetch_all(pool)
    .await
    .unwrap()
}

fn event(owner: Option<Uuid>) -> NewEvent {
    NewEvent {
        topic: "scrapes.finished".into(),
        owner_id: owner,
        payload: json!({"scrape_id": "s"}),
        only_channel: None,
        all_owner_channels: false,
        max_attempts: 7,
    }
}

async fn publish(pool: &PgPool, event: &NewEvent) -> (Uuid, Vec<Uuid>) {
    let mut tx = pool.begin().await.unwrap();
    let published = store::notifications::publish(&mut tx, event).await.unwrap();
    tx.commit().await.unwrap();
    published
}

/// A delivery with its job: id, channel, owner; the job's kind, args, owner, attempts, state.
type Row = (Uuid, Uuid, Uuid, String, Value, Option<Uuid>, i32, String);

/// The channels the deliveries of `event_id` went to, checking each delivery's job.
async fn delivered_to(pool: &PgPool, event_id: Uuid, deliveries: &[Uuid]) -> Vec<Uuid> {
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT d.id, d.channel_id, d.owner_id, j.kind, j.args, j.owner_id, \
                    j.max_attempts, j.state \
             FROM deliveries d JOIN jobs j ON j.id = d.job_id \
             WHERE d.event_id = $1 ORDER BY d.id",
    )
    .bind(event_id)
    .fetch_all(pool)
    .await
    .unwrap();
    let ids: Vec<Uuid> = rows.iter().map(|r| r.0).collect();
    assert_eq!(ids, deliveries, "the ids returned, in order, are the rows'");
    for (id, _, owner, kind, args, job_owner, max_attempts, state) in &rows {
        assert_eq!(kind, "notify");
        assert_eq!(args, &json!({ "delivery_id": id }));
        assert_eq!((job_owner, *max_attempts), (&Some(*owner), 7));
        assert_eq!(state, "pending");
    }
    let mut channels: Vec<Uuid> = rows.iter().map(|r| r.1).collect();
    channels.sort();
    channels
}

#[sqlx::test]
async fn one_event_reaches_thousands_of_channels_each_with_its_notify_job(pool: PgPool) {
    let ann = user(&pool, "ann").await;
    let bob = user(&pool, "bob").await;
    let subscribed = channels(&pool, ann, 3000, "scrapes.finished", true).await;
    channels(&pool, ann, 5, "scrapes.finished", false).await;
    let other_topic = channels(&pool, ann, 5, "summaries.finished", true).await;
    let bobs = channels(&pool, bob, 2, "scrapes.finished", true).await;

    let (event_id, deliveries) = publish(&pool, &event(Some(ann))).await;

    assert_eq!(deliveries.len(), 3000);
    assert!(deliveries.windows(2).all(|w| w[0] < w[1]), "ids ascend");
    assert!(deliveries.iter().all(|d| d.get_version_num() == 7));
    assert_eq!(delivered_to(&pool, event_id, &deliveries).await, subscribed);
    let (topic, owner): (String, Option<Uuid>) =
        sqlx::query_as("SELECT topic, owner_id FROM events WHERE id = $1")
            .bind(event_id)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!((topic.as_str(), owner), ("scrapes.finished", Some(ann)));

    // An event about nobody goes to every subscribed channel.
    let (id, deliveries) = publish(&pool, &event(None)).await;
    let mut expected = [subscribed.clone(), bobs.clone()].concat();
    expected.sort();
    assert_eq!(delivered_to(&pool, id, &deliveries).await, expected);

    // A request that asked to be told: every enabled channel of its owner, whatever the topic.
    let all = NewEvent {
        all_owner_channels: true,
        ..event(Some(bob))
    };
    let (id, deliveries) = publish(&pool, &all).await;
    assert_eq!(delivered_to(&pool, id, &deliveries).await, bobs);

    // A channel test: that channel only, subscribed or not.
    let only = NewEvent {
        only_channel: Some(other_topic[0]),
        ..event(Some(ann))
    };
    let (id, deliveries) = publish(&pool, &only).await;
    assert_eq!(delivered_to(&pool, id, &deliveries).await, [other_topic[0]]);

    // No channel: the event is still recorded.
    let none = NewEvent {
        topic: "crawls.finished".into(),
        ..event(Some(ann))
    };
    let (id, deliveries) = publish(&pool, &none).await;
    assert!(deliveries.is_empty());
    let recorded: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE id = $1")
        .bind(id)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(recorded, 1);
}
