//! The queue's statements keep their plan whatever the statistics say: a claim right after a
//! bulk insert, while the statistics still describe the table as it was, reads its index in
//! order and stops at its limit instead of sorting the kind's whole backlog; pruning walks the
//! finished jobs' index oldest first instead of scanning the table.

use std::time::Duration;

use sqlx::{PgConnection, PgPool};
use uuid::Uuid;
use workhorse::store::jobs;

/// Index entries read from `jobs`' indexes so far, as the statistics system counts them.
async fn index_entries_read(conn: &mut PgConnection) -> i64 {
    sqlx::query_scalar(
        "SELECT coalesce(sum(idx_tup_read), 0)::bigint FROM pg_stat_user_indexes \
         WHERE relname = 'jobs'",
    )
    .fetch_one(conn)
    .await
    .unwrap()
}

/// Make this session's counters visible to the next reader: they are flushed when it goes
/// idle after the next transaction.
async fn flush_stats(conn: &mut PgConnection) {
    sqlx::query("SELECT pg_stat_force_next_flush()")
        .execute(&mut *conn)
        .await
        .unwrap();
    sqlx::query("SELECT 1").execute(&mut *conn).await.unwrap();
}

#[sqlx::test]
async fn a_claim_after_a_bulk_insert_reads_only_what_it_takes(pool: PgPool) {
    let mut conn = pool.acquire().await.unwrap();
    // Statistics taken when the table held only finished jobs of another kind, kept through
    // a purge (ANALYZE of an empty table keeps the old column statistics); then a backlog of a
    // new kind arrives in one statement. The planner believes the kind has one due job.
    for statement in [
        "INSERT INTO jobs (id, kind, args, max_attempts, state, finished_at) \
         SELECT gen_random_uuid(), 'echo', '{}', 5, 'succeeded', now() \
         FROM generate_series(1, 20000)",
        "ANALYZE jobs",
        "TRUNCATE jobs CASCADE",
        "VACUUM ANALYZE jobs",
    ] {
        sqlx::query(statement).execute(&mut *conn).await.unwrap();
    }
    // The kinds' names and random ids are what tips this planner's near-tie to the sort
    // (found by trying; `echo` then `notify` is also the order a real installation sees).
    sqlx::query(
        "INSERT INTO jobs (id, kind, args, max_attempts) \
         SELECT gen_random_uuid(), 'notify', '{}', 5 FROM generate_series(1, 20000)",
    )
    .execute(&mut *conn)
    .await
    .unwrap();
    flush_stats(&mut conn).await;
    let mut reader = pool.acquire().await.unwrap();
    let before = index_entries_read(&mut reader).await;

    let claimed = jobs::claim(
        &mut *conn,
        "notify",
        Uuid::now_v7(),
        10,
        Duration::from_secs(30),
    )
    .await
    .unwrap();
    assert_eq!(claimed.len(), 10);
    flush_stats(&mut conn).await;
    let read = index_entries_read(&mut reader).await - before;
    // Ten entries of the claim index and ten of the primary key, give or take; a sort of the
    // backlog reads all 20,000 first.
    assert!(
        read < 1_000,
        "the claim read {read} index entries to take 10 jobs"
    );
}

/// Sequential scans of `jobs` so far.
async fn table_scans(conn: &mut PgConnection) -> i64 {
    sqlx::query_scalar("SELECT seq_scan FROM pg_stat_user_tables WHERE relname = 'jobs'")
        .fetch_one(conn)
        .await
        .unwrap()
}

#[sqlx::test]
async fn pruning_walks_the_finished_index_oldest_first_without_scanning_the_table(pool: PgPool) {
    let mut conn = pool.acquire().await.unwrap();
    // 20,000 jobs finished a month ago, in the order they finished, and fresh statistics:
    // every one matches, so a plain LIMIT is cheapest read from the table's start.
    for statement in [
        "INSERT INTO jobs (id, kind, args, max_attempts, state, finished_at) \
         SELECT gen_random_uuid(), 'echo', jsonb_build_object('n', g), 5, 'succeeded', \
                now() - interval '30 days' + g * interval '1 second' \
         FROM generate_series(1, 20000) AS g",
        "VACUUM ANALYZE jobs",
    ] {
        sqlx::query(statement).execute(&mut *conn).await.unwrap();
    }
    flush_stats(&mut conn).await;
    let mut reader = pool.acquire().await.unwrap();
    let scans = table_scans(&mut reader).await;

    let retention = Duration::from_secs(7 * 24 * 3600);
    for _ in 0..3 {
        let deleted = jobs::prune(&mut *conn, retention, 1000).await.unwrap();
        assert_eq!(deleted, 1000);
    }
    flush_stats(&mut conn).await;

    assert_eq!(
        table_scans(&mut reader).await,
        scans,
        "pruning read the whole table instead of its index"
    );
    // Oldest first: what is left starts right after the 3,000 deleted.
    let oldest: i64 = sqlx::query_scalar("SELECT min((args ->> 'n')::bigint) FROM jobs")
        .fetch_one(&mut *reader)
        .await
        .unwrap();
    assert_eq!(oldest, 3001);
}
