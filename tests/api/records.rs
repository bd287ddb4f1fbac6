//! The transactions injector end to end: a triggered run inserts exactly N stamped rows, read
//! back newest first with cursors and as statistics; a repeated run inserts nothing twice; a bad
//! CSV fails naming the line; two daemons on one database make one run per tick.

use std::path::Path;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::PgPool;
use workhorse::domain::users::Role;

use crate::helpers::{TestApp, spawn_app_with};

/// A schedules directory with an `inject` schedule (`cron`, `args`) and the shipped dataset,
/// plus `extra` data files.
fn schedules(cron: &str, args: &str, extra: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let toml = format!("name = \"inject\"\ncron = \"{cron}\"\nkind = \"inject\"\nargs = {args}\n");
    std::fs::write(dir.path().join("inject.toml"), toml).unwrap();
    std::fs::create_dir(dir.path().join("data")).unwrap();
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("jobs/data/transactions.csv");
    std::fs::copy(shipped, dir.path().join("data/transactions.csv")).unwrap();
    for (name, text) in extra {
        std::fs::write(dir.path().join("data").join(name), text).unwrap();
    }
    dir
}

async fn app(pool: PgPool, dir: &Path) -> TestApp {
    let dir = dir.to_path_buf();
    spawn_app_with(pool, move |c| c.jobs.schedules_dir = dir).await
}

/// Trigger `inject` with `args` and wait for its job to end; returns the job.
async fn run(app: &TestApp, admin: &str, args: Value) -> Value {
    let resp = app
        .post_json(
            "/v1/schedules/inject/trigger",
            Some(admin),
            &json!({ "args": args }),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    let location = resp.headers()["location"].to_str().unwrap().to_string();
    for _ in 0..200 {
        let job: Value = app.get(&location, Some(admin)).await.json().await.unwrap();
        if matches!(job["state"].as_str(), Some("succeeded" | "dead")) {
            return job;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the inject run never finished");
}

#[sqlx::test]
async fn a_run_inserts_exactly_n_stamped_rows(pool: PgPool) {
    let dir = schedules("0 0 0 1 1 *", "{ rows = 5, client_id = \"demo\" }", &[]);
    let app = app(pool, dir.path()).await;
    let admin = app.admin_token().await;
    let before = chrono::Utc::now();

    let job = run(&app, &admin, json!({ "rows": 250, "client_id": "acme" })).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    assert_eq!(job["result"]["rows"], 250);
    let (count, min, max): (
        i64,
        chrono::DateTime<chrono::Utc>,
        chrono::DateTime<chrono::Utc>,
    ) = sqlx::query_as(
        "SELECT count(*), min(completed_at), max(completed_at) FROM records \
             WHERE client_id = 'acme'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(count, 250);
    assert!(min >= before && max <= chrono::Utc::now());
    let others: i64 = sqlx::query_scalar("SELECT count(*) FROM records WHERE client_id <> 'acme'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(others, 0);

    // Newest first, in pages, each record once.
    let (_, user) = app.user_with_token("ann", Role::User).await;
    let mut ids = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = "/v1/records?client_id=acme&limit=100".to_string();
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let page: Value = app.get(&path, Some(&user)).await.json().await.unwrap();
        let items = page["items"].as_array().unwrap();
        for pair in items.windows(2) {
            assert!(pair[0]["completed_at"].as_str() >= pair[1]["completed_at"].as_str());
        }
        ids.extend(items.iter().map(|r| r["id"].as_i64().unwrap()));
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 250);
    let first: Value = (app
        .get("/v1/records?client_id=acme&limit=1", Some(&user))
        .await)
        .json()
        .await
        .unwrap();
    let record = &first["items"][0];
    assert_eq!(record["client_id"], "acme");
    assert!(record["amount"].as_str().unwrap().parse::<f64>().is_ok());
    assert!(record["merchant"].as_str().is_some_and(|m| !m.is_empty()));

    let stats: Value = (app
        .get("/v1/records/stats?client_id=acme&window=1h", Some(&user))
        .await)
        .json()
        .await
        .unwrap();
    assert_eq!(stats["count"], 250);
    let per_category: i64 = (stats["categories"].as_array().unwrap().iter())
        .map(|c| c["count"].as_i64().unwrap())
        .sum();
    assert_eq!(per_category, 250);
    let resp = app
        .get("/v1/records/stats?window=forever", Some(&user))
        .await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);

    // Arguments are checked before anything runs.
    let resp = app
        .post_json(
            "/v1/schedules/inject/trigger",
            Some(&admin),
            &json!({ "args": { "rows": 0 } }),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
}

#[sqlx::test]
async fn a_repeated_run_inserts_nothing_twice(pool: PgPool) {
    let dir = schedules("0 0 0 1 1 *", "{ rows = 40, client_id = \"demo\" }", &[]);
    let app = app(pool, dir.path()).await;
    let admin = app.admin_token().await;
    let job = run(&app, &admin, json!({})).await;
    assert_eq!(job["state"], "succeeded");

    // The same job again (as after a crash between its commit and its ack): it finds its run.
    let id = job["id"].as_str().unwrap();
    sqlx::query("UPDATE jobs SET state = 'pending', run_at = now() WHERE id = $1::uuid")
        .bind(id)
        .execute(&app.pool)
        .await
        .unwrap();
    sqlx::query("SELECT pg_notify('workhorse_jobs', 'inject')")
        .execute(&app.pool)
        .await
        .unwrap();
    for _ in 0..100 {
        let state: String = sqlx::query_scalar("SELECT state FROM jobs WHERE id = $1::uuid")
            .bind(id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
        if state == "succeeded" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let job: Value = (app.get(&format!("/v1/jobs/{id}"), Some(&admin)).await)
        .json()
        .await
        .unwrap();
    assert_eq!(job["result"]["repeated"], true, "{job}");
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM records")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(count, 40);
}

#[sqlx::test]
async fn copied_fields_arrive_as_written_and_a_changed_dataset_is_read_again(pool: PgPool) {
    let header = "transaction_id,customer_id,customer_name,merchant,category,amount,currency,\
                  payment_method,country,card_last4,status\n";
    // A tab, a backslash and a quoted comma: what COPY's text format must escape or keep.
    let first =
        format!("{header}t1,c1,\"Doe,\tJane\",Back\\slash \\N,food,12.50,EUR,card,DE,1234,ok\n");
    let dir = schedules(
        "0 0 0 1 1 *",
        "{ rows = 3, client_id = \"demo\", dataset = \"odd.csv\" }",
        &[("odd.csv", first.as_str())],
    );
    let app = app(pool, dir.path()).await;
    let admin = app.admin_token().await;
    let args = json!({ "rows": 3, "client_id": "tab\there", "dataset": "odd.csv" });
    let job = run(&app, &admin, args).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    let rows: Vec<(String, String, String, String)> =
        sqlx::query_as("SELECT client_id, customer_name, merchant, amount::text FROM records")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert_eq!(rows.len(), 3);
    for row in &rows {
        let expected = ("tab\there", "Doe,\tJane", "Back\\slash \\N", "12.50");
        assert_eq!(
            (
                row.0.as_str(),
                row.1.as_str(),
                row.2.as_str(),
                row.3.as_str()
            ),
            expected
        );
    }

    // The file changes: the next run reads the new rows, not the parsed copy of the old.
    let second = format!("{header}t2,c2,Ben,Lidl,groceries,7.25,EUR,card,DE,5678,approved\n");
    std::fs::write(dir.path().join("data/odd.csv"), second).unwrap();
    let args = json!({ "rows": 3, "client_id": "again", "dataset": "odd.csv" });
    let job = run(&app, &admin, args).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    let merchants: Vec<String> =
        sqlx::query_scalar("SELECT DISTINCT merchant FROM records WHERE client_id = 'again'")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert_eq!(merchants, ["Lidl"]);
}

#[sqlx::test]
async fn a_bad_csv_fails_the_run_naming_the_line(pool: PgPool) {
    let bad = "transaction_id,customer_id,customer_name,merchant,category,amount,currency,\
               payment_method,country,card_last4,status\n\
               t1,c1,Ann,Rewe,groceries,12.50,EUR,card,DE,1234,approved\n\
               t2,c2,Ben,Lidl,groceries,twelve,EUR,card,DE,5678,approved\n";
    let dir = schedules(
        "0 0 0 1 1 *",
        "{ rows = 10, client_id = \"demo\", dataset = \"bad.csv\" }",
        &[("bad.csv", bad)],
    );
    let app = app(pool, dir.path()).await;
    let admin = app.admin_token().await;
    let job = run(&app, &admin, json!({})).await;
    assert_eq!(job["state"], "dead", "{job}");
    assert_eq!(job["attempts"], 1, "no retries: {job}");
    let error = job["errors"][0]["error"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        error.contains("bad.csv: line 3: amount \"twelve\""),
        "{job}"
    );
    let (status, rows): (String, i32) =
        sqlx::query_as("SELECT status, rows_inserted FROM injector_runs")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!((status.as_str(), rows), ("failed", 0));
    let records: i64 = sqlx::query_scalar("SELECT count(*) FROM records")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(records, 0);
    let event: Value =
        sqlx::query_scalar("SELECT payload FROM events WHERE topic = 'injector.runs'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(event["status"], "failed");
}

#[sqlx::test]
async fn two_daemons_on_one_database_make_one_run_per_tick(pool: PgPool) {
    let dir = schedules("* * * * * *", "{ rows = 3, client_id = \"demo\" }", &[]);
    let second_pool = sqlx::postgres::PgPoolOptions::new()
        .connect_with((*pool.connect_options()).clone())
        .await
        .unwrap();
    let a = app(pool.clone(), dir.path()).await;
    let b = app(second_pool, dir.path()).await;
    tokio::time::sleep(Duration::from_millis(3500)).await;
    drop(b);
    // Let the last tick's run finish.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // One statement, one snapshot: daemon a keeps ticking while this reads.
    // Regression: three separate counts let a run commit between them.
    let (ticks, runs, records): (i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM schedule_ticks WHERE schedule = 'inject' AND NOT manual), \
                (SELECT count(*) FROM injector_runs), (SELECT count(*) FROM records)",
    )
    .fetch_one(&a.pool)
    .await
    .unwrap();
    assert!(ticks >= 3, "{ticks} ticks");
    assert!(
        runs >= ticks - 1 && runs <= ticks,
        "{runs} runs for {ticks} ticks"
    );
    assert_eq!(records, runs * 3);
}
