//! Filling the `jobs` table of `bench_scale` fast: one `INSERT … SELECT generate_series` per
//! million rows, with the columns a daemon leaves behind (several kinds and owners, succeeded
//! and a few dead, UUIDv7-like ids in time order, finished_at spread evenly over a window, in
//! order within each statement so that the indexes grow at one end as in a daemon). The
//! filling connection runs with `session_replication_role = replica`, so the table's triggers
//! (the stream's change log) stay out of it: this is set-up, not measured.

use std::time::{Duration, Instant};

use anyhow::Context;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::support::thousands;

/// Rows per INSERT statement.
const CHUNK: u64 = 1_000_000;

/// Finished jobs, and when they finished: from `from_secs` to `to_secs` seconds ago.
pub struct Finished {
    pub n: u64,
    pub from_secs: f64,
    pub to_secs: f64,
}

/// A UUIDv7-shaped id from the millisecond timestamp `t` (SQL), random otherwise.
const V7_ID: &str = "(lpad(to_hex((extract(epoch FROM t.created) * 1000)::bigint), 12, '0') \
     || '7' || substr(t.h, 1, 3) || '8' || substr(t.h, 4, 15))::uuid";

/// A connection whose writes fire no triggers.
async fn filler(pool: &PgPool) -> anyhow::Result<sqlx::pool::PoolConnection<sqlx::Postgres>> {
    let mut conn = pool.acquire().await.context("acquiring a connection")?;
    sqlx::query("SET session_replication_role = replica")
        .execute(&mut *conn)
        .await
        .context("turning triggers off for the fill (needs a superuser)")?;
    Ok(conn)
}

/// Give the connection back as it was.
async fn release(mut conn: sqlx::pool::PoolConnection<sqlx::Postgres>) -> anyhow::Result<()> {
    sqlx::query("RESET session_replication_role")
        .execute(&mut *conn)
        .await
        .context("turning triggers back on")?;
    Ok(())
}

/// Insert `what.n` finished jobs owned by `owners` in turn: scrape, summarise, notify and echo
/// jobs; one in fifty dead after its attempts, the rest succeeded; then ANALYZE.
pub async fn finished(pool: &PgPool, owners: &[Uuid], what: &Finished) -> anyhow::Result<()> {
    let sql = format!(
        "INSERT INTO jobs (id, kind, args, state, attempts, max_attempts, owner_id, result, \
                           dead_reason, errors, run_at, created_at, started_at, finished_at) \
         SELECT {V7_ID}, \
                (ARRAY['scrape', 'summarise', 'notify', 'echo'])[(1 + g % 4)::int], \
                jsonb_build_object('n', g, 'url', 'https://example.com/page/' || g), \
                CASE WHEN g % 50 = 0 THEN 'dead' ELSE 'succeeded' END, \
                CASE WHEN g % 50 = 0 THEN 5 ELSE 1 END, 5, \
                ($2::uuid[])[(1 + g % cardinality($2::uuid[]))::int], \
                CASE WHEN g % 50 = 0 THEN NULL ELSE jsonb_build_object('ok', true) END, \
                CASE WHEN g % 50 = 0 THEN 'the page answered 404' END, \
                CASE WHEN g % 50 = 0 \
                     THEN '[{{\"attempt\": 5, \"error\": \"the page answered 404\"}}]'::jsonb \
                     ELSE '[]'::jsonb END, \
                t.created, t.created, t.created + interval '2 milliseconds', \
                t.created + interval '40 milliseconds' \
         FROM generate_series(1, $1::bigint) AS g, \
              LATERAL (SELECT now() - ($4 - ($4 - $3) * g / $1) * interval '1 second' \
                              AS created, md5(g::text || random()::text) AS h) AS t"
    );
    let mut conn = filler(pool).await?;
    let started = Instant::now();
    let mut done = 0;
    while done < what.n {
        let n = CHUNK.min(what.n - done);
        sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
            .bind(n as i64)
            .bind(owners)
            .bind(what.to_secs)
            .bind(what.from_secs)
            .execute(&mut *conn)
            .await
            .context("filling finished jobs")?;
        done += n;
        eprintln!(
            "  {} finished jobs inserted ({:.0} s)",
            thousands(done as f64),
            started.elapsed().as_secs_f64()
        );
    }
    release(conn).await?;
    analyze(pool).await
}

/// Insert `n` pending jobs of `kind` with `args` (JSON text), due now, owned by `owners` in
/// turn; then ANALYZE. Nothing is notified: an engine started afterwards finds them itself.
pub async fn pending(
    pool: &PgPool,
    owners: &[Uuid],
    kind: &str,
    args: &str,
    n: u64,
) -> anyhow::Result<()> {
    let sql = format!(
        "INSERT INTO jobs (id, kind, args, max_attempts, owner_id, run_at, created_at) \
         SELECT {V7_ID}, $3, $4::jsonb, 5, ($2::uuid[])[(1 + g % cardinality($2::uuid[]))::int], \
                t.created, t.created \
         FROM generate_series(1, $1::bigint) AS g, \
              LATERAL (SELECT now() - interval '1 hour' + g * interval '1 microsecond' \
                              AS created, md5(g::text || random()::text) AS h) AS t"
    );
    let mut conn = filler(pool).await?;
    let mut done = 0;
    while done < n {
        let k = CHUNK.min(n - done);
        sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
            .bind(k as i64)
            .bind(owners)
            .bind(kind)
            .bind(args)
            .execute(&mut *conn)
            .await
            .context("filling pending jobs")?;
        done += k;
    }
    release(conn).await?;
    analyze(pool).await
}

/// Delete the unfinished jobs of `kind` (a fill's), then VACUUM ANALYZE the table.
pub async fn remove(pool: &PgPool, kind: &str) -> anyhow::Result<()> {
    let mut conn = filler(pool).await?;
    sqlx::query("DELETE FROM jobs WHERE kind = $1 AND finished_at IS NULL")
        .bind(kind)
        .execute(&mut *conn)
        .await
        .context("deleting filled jobs")?;
    release(conn).await?;
    sqlx::query("VACUUM ANALYZE jobs")
        .execute(pool)
        .await
        .context("vacuuming jobs")?;
    Ok(())
}

/// Fresh statistics, as autovacuum keeps them on a table in steady use.
pub async fn analyze(pool: &PgPool) -> anyhow::Result<()> {
    sqlx::query("ANALYZE jobs")
        .execute(pool)
        .await
        .context("analyzing jobs")?;
    Ok(())
}

/// The resident set of this process in MiB (VmRSS).
pub fn rss_mib() -> anyhow::Result<f64> {
    Ok(super::support::rss_kib(std::process::id())? as f64 / 1024.0)
}

/// Seconds in `d`, for SQL intervals.
pub fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// Empty the queue and what refers to it.
pub async fn truncate(conn: &mut PgConnection) -> anyhow::Result<()> {
    sqlx::query("TRUNCATE jobs, echo_runs, quota_charges, stream_changes CASCADE")
        .execute(conn)
        .await
        .context("truncating jobs")?;
    Ok(())
}
