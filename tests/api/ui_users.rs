//! The users and quotas page in Chromium: a user is refused it (and has no link to it); an
//! admin sees each user's quota bars and **Reset** brings a user's bar back to zero.

use std::time::Duration;

use fantoccini::{Client, Locator};
use serde_json::json;
use sqlx::PgPool;
use workhorse::domain::users::Role;

use crate::chromedriver::Chromedriver;
use crate::helpers::{echo_charges_scrape, eventually, spawn_app_with};
use crate::ui_support::{arrives, console_errors, sign_in, source, visit};

/// The value of `user`'s `scrape` quota bar on the open page, if it has one.
async fn bar(browser: &Client, user: &str) -> Option<String> {
    let meter = format!("tr[data-id='{user}'] meter[data-action='scrape']");
    let meter = browser.find(Locator::Css(&meter)).await.ok()?;
    meter.attr("value").await.ok().flatten()
}

#[sqlx::test]
async fn an_admin_resets_a_users_quota_and_a_user_is_refused_the_page(pool: PgPool) {
    let app = spawn_app_with(pool, |c| echo_charges_scrape(c, 100)).await;
    let (alice_id, alice) = app.user_with_token("alice", Role::User).await;
    for _ in 0..2 {
        app.enqueue(&alice, json!({"kind": "echo"})).await;
    }
    assert_eq!(app.settled_quota(&alice, "scrape").await["used"], 2);
    let driver = Chromedriver::start().await;
    let browser = driver.browser().await;

    // A user: no link to the page, and the API's refusal when she opens it anyway.
    sign_in(&browser, &app, &alice).await;
    let link = browser.find(Locator::Css("nav a[href='/ui/users']")).await;
    assert!(link.is_err(), "no Users link for a user");
    browser
        .goto(&app.url("/ui/users"))
        .await
        .expect("the users page");
    let page = source(&browser).await;
    assert!(page.contains("Forbidden") && page.contains("needs the admin role"));
    assert!(bar(&browser, &alice_id.to_string()).await.is_none());
    // The console shows the refusal: the log is read, and emptied for what follows.
    let errors = console_errors(&browser).await;
    assert!(
        errors
            .iter()
            .any(|e| e["message"].as_str().is_some_and(|m| m.contains("403"))),
        "the refusal on the console: {errors:?}"
    );

    // An admin: her bar at 2 of 100, then Reset.
    browser.delete_all_cookies().await.expect("signed out");
    sign_in(&browser, &app, &app.admin_token().await).await;
    browser
        .find(Locator::Css("nav a[href='/ui/users']"))
        .await
        .expect("a Users link for an admin")
        .click()
        .await
        .expect("opening the users page");
    visit(&browser, &app, "/ui/users", "users").await;
    let user = alice_id.to_string();
    assert_eq!(bar(&browser, &user).await.as_deref(), Some("2"));
    let reset = format!("tr[data-id='{user}'] form[action$='/quotas/reset'] button");
    let reset = browser.find(Locator::Css(&reset)).await.expect("Reset");
    reset.click().await.expect("resetting");
    let dropped = eventually(Duration::from_secs(10), || async {
        bar(&browser, &user).await.as_deref() == Some("0")
    })
    .await;
    assert!(dropped, "her bar dropped to 0");
    assert!(
        arrives(&browser, "/ui/users").await,
        "back on the users page"
    );
    assert_eq!(app.quota(&alice, "scrape").await["used"], 0);
    browser.close().await.expect("closing the browser");
}
