//! The dashboard's page shell, sign-in page and error pages, as typed templates (maud): every
//! value is escaped, and nothing is loaded from outside the binary.

use maud::{DOCTYPE, Markup, PreEscaped, html};
use poem::http::StatusCode;
use poem::web::Html;
use poem::{IntoResponse, Response};
use serde::Deserialize;
use uuid::Uuid;

use super::session::Session;
use crate::work::quotas::Standing;

/// The stylesheet, compiled in.
pub const CSS: &str = include_str!("assets/ui.css");
/// The live-update script, compiled in.
pub const JS: &str = include_str!("assets/ui.js");

/// A page: head, navigation, the signed-in person and the sign-out form, then `body`.
pub fn page(title: &str, session: &Session, body: Markup) -> Response {
    let who = &session.caller;
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                // No icon to fetch: a browser's request for /favicon.ico would only be a 404.
                link rel="icon" href="data:,";
                title { (title) " · Workhorse" }
                style { (PreEscaped(CSS)) }
            }
            // data-seq: where the live view's stream starts, so a change made while the page
            // was on its way is still announced to it.
            body data-seq=(session.stream_seq) {
                header {
                    a.brand href="/ui" { "Workhorse" }
                    nav aria-label="Main" {
                        a href="/ui" { "Overview" }
                        a href="/ui/jobs" { "Jobs" }
                        a href="/ui/scrapes" { "Scrapes" }
                        a href="/ui/summaries" { "Summaries" }
                        a href="/ui/documents" { "Documents" }
                        a href="/ui/schedules" { "Schedules" }
                        a href="/ui/channels" { "Channels" }
                        a href="/ui/deliveries" { "Deliveries" }
                        @if who.is_admin() { a href="/ui/users" { "Users" } }
                    }
                    div.who {
                        span { (who.role.as_str()) " · " (who.plan) }
                        span #live-status .live aria-live="polite" {}
                        form method="post" action="/ui/logout" {
                            input type="hidden" name="csrf" value=(session.csrf);
                            button.secondary type="submit" { "Sign out" }
                        }
                    }
                }
                main { (body) }
                script src="/ui/assets/ui.js" defer {}
            }
        }
    };
    Html(markup.into_string()).into_response()
}

/// The sign-in page, with an error when the last attempt failed.
pub fn login(error: Option<&str>, status: StatusCode) -> Response {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                // No icon to fetch: a browser's request for /favicon.ico would only be a 404.
                link rel="icon" href="data:,";
                title { "Sign in · Workhorse" }
                style { (PreEscaped(CSS)) }
            }
            body {
                main.login {
                    h1 { "Sign in to Workhorse" }
                    @if let Some(error) = error {
                        p.notice role="alert" { (error) }
                    }
                    form method="post" action="/ui/login" {
                        label for="token" { "API token" }
                        input #token type="password" name="token" required
                            autocomplete="current-password" placeholder="wh_…";
                        button type="submit" { "Sign in" }
                    }
                    p.muted { "Paste a token from " code { "POST /v1/users/{id}/tokens" }
                        " or " code { "workhorse admin create-token" } "." }
                }
            }
        }
    };
    Html(markup.into_string())
        .with_status(status)
        .into_response()
}

/// A page that says what went wrong, with `status`.
pub fn error_page(status: StatusCode, message: &str) -> Response {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                // No icon to fetch: a browser's request for /favicon.ico would only be a 404.
                link rel="icon" href="data:,";
                title { (status.as_u16()) " · Workhorse" }
                style { (PreEscaped(CSS)) }
            }
            body { main {
                h1 { (status.canonical_reason().unwrap_or("Error")) }
                p.notice role="alert" { (message) }
                p { a href="/ui" { "Back to the dashboard" } }
            } }
        }
    };
    Html(markup.into_string())
        .with_status(status)
        .into_response()
}

/// Something failed on our side: logged, and a 500 page without details.
pub fn failure(error: &anyhow::Error) -> Response {
    tracing::error!(error = format!("{error:#}"), "a dashboard page failed");
    error_page(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Something failed on the server; it was logged. Try again shortly.",
    )
}

/// A state badge.
pub fn state(name: &str) -> Markup {
    html! { span class=(format!("state state-{name}")) { (name) } }
}

/// A time as the dashboard shows it (UTC), or nothing.
pub fn time(t: Option<chrono::DateTime<chrono::Utc>>) -> String {
    t.map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_default()
}

/// A quota as a bar: the units used and held of the limit, or the count when not limited.
pub fn quota(q: &Standing) -> Markup {
    let taken = q.used + q.reserved;
    html! {
        @match q.limit {
            Some(limit) => {
                b { (taken) " / " (limit) }
                meter min="0" max=(limit) value=(taken) data-action=(q.action)
                    aria-label=(format!("{} quota used", q.action)) {}
            }
            None => { b { (taken) } span.muted { "not limited" } }
        }
    }
}

/// A list's query: `?before=` pages; `?fragment=rows` asks for the table's rows only (what a
/// live page re-fetches).
#[derive(Deserialize, Default)]
pub struct PageQuery {
    pub before: Option<Uuid>,
    fragment: Option<String>,
}

impl PageQuery {
    /// Whether only the table's rows are asked for.
    pub fn rows_only(&self) -> bool {
        self.fragment.as_deref() == Some("rows")
    }
}

/// A detail page's query: `?fragment=detail` asks for the live part only.
#[derive(Deserialize, Default)]
pub struct DetailQuery {
    fragment: Option<String>,
}

impl DetailQuery {
    /// Whether only the live part is asked for.
    pub fn live_part_only(&self) -> bool {
        self.fragment.as_deref() == Some("detail")
    }
}
