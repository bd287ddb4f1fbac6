//! `workhorse users` (list, create, set-plan) and `workhorse tokens revoke`.

use sqlx::PgPool;
use uuid::Uuid;
use workhorse::domain::tokens;
use workhorse::store;

use crate::helpers::{Cli, user};

#[sqlx::test]
async fn users_create_then_list_shows_the_user_as_table_and_json(pool: PgPool) {
    let cli = Cli::new(&pool).await;

    let created = cli.json(&[
        "users",
        "create",
        "--name",
        "Grace",
        "--email",
        "grace@example.com",
        "--plan",
        "pro",
        "--timezone",
        "Europe/Berlin",
    ]);
    let listed = cli.json(&["users", "list"]);
    let table = cli.ok(&["users", "list"]);

    assert_eq!(created["name"], "Grace");
    assert_eq!(created["plan"], "pro");
    assert_eq!(created["role"], "user");
    assert_eq!(created["timezone"], "Europe/Berlin");
    assert_eq!(listed[0]["id"], created["id"]);
    assert!(
        table.contains("grace@example.com") && table.contains("Europe/Berlin"),
        "{table}"
    );
}

#[sqlx::test]
async fn users_create_refuses_an_unknown_plan_and_a_taken_email(pool: PgPool) {
    let cli = Cli::new(&pool).await;
    cli.ok(&["users", "create", "--name", "A", "--email", "a@example.com"]);

    let (_, plan) = cli.exits(2, &["users", "create", "--name", "B", "--plan", "gold"]);
    let (_, taken) = cli.exits(
        1,
        &["users", "create", "--name", "C", "--email", "a@example.com"],
    );

    assert!(plan.contains("unknown plan \"gold\""), "{plan}");
    assert!(taken.contains("already exists"), "{taken}");
}

#[sqlx::test]
async fn users_set_plan_moves_the_user_and_names_an_unknown_one(pool: PgPool) {
    let cli = Cli::new(&pool).await;
    let ada = user(&pool, "ada").await;
    let nobody = Uuid::now_v7();

    let changed = cli.json(&["users", "set-plan", &ada.to_string(), "pro"]);
    let (_, stderr) = cli.exits(1, &["users", "set-plan", &nobody.to_string(), "pro"]);

    let plan: String = sqlx::query_scalar("SELECT plan FROM users WHERE id = $1")
        .bind(ada)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(plan, "pro");
    assert_eq!(changed["plan"], "pro");
    assert!(
        stderr.contains(&format!("user {nobody} not found")),
        "{stderr}"
    );
}

#[sqlx::test]
async fn tokens_revoke_stops_the_token_authenticating(pool: PgPool) {
    let cli = Cli::new(&pool).await;
    let ada = user(&pool, "ada").await;
    let minted = tokens::mint();
    let mut conn = pool.acquire().await.unwrap();
    let token = store::tokens::insert_token(&mut conn, ada, "laptop", &minted)
        .await
        .unwrap();
    assert!(
        store::tokens::authenticate(&mut conn, &minted.hash)
            .await
            .unwrap()
            .is_some()
    );

    let out = cli.ok(&["tokens", "revoke", &token.id.to_string()]);
    let again = cli.json(&["tokens", "revoke", &token.id.to_string()]);

    assert!(out.contains("revoked"), "{out}");
    assert_eq!(again[0]["ok"], true);
    assert!(
        store::tokens::authenticate(&mut conn, &minted.hash)
            .await
            .unwrap()
            .is_none()
    );
}
