//! The dashboard at `/ui`: server-rendered pages (typed maud templates, a stylesheet and a
//! small script compiled into the binary; nothing from a CDN) over the same use cases as the
//! API, signed in with an API token, updated live from the event stream. Guide:
//! docs/dashboard.md.

// Page handlers stop early with the response to send (a redirect to sign in, an error page);
// those are the rare path, so their size does not matter.
#![allow(clippy::result_large_err)]

mod documents;
mod extract;
mod jobs;
mod layout;
mod live;
mod notify;
mod overview;
mod schedules;
mod scrapes;
mod session;
mod summaries;
mod users;

use poem::http::header;
use poem::{IntoResponse, Response, Route, get, handler, post};

pub use session::COOKIE;

/// Every dashboard path (with `{id}` for parameters) and its methods, for the route table
/// (span names, `Allow` on a 405); `routes` serves exactly these.
pub const ROUTES: &[(&str, &[&str])] = &[
    ("/ui", &["GET"]),
    ("/ui/login", &["GET", "POST"]),
    ("/ui/logout", &["POST"]),
    ("/ui/events", &["GET"]),
    ("/ui/jobs", &["GET"]),
    ("/ui/jobs/{id}", &["GET"]),
    ("/ui/jobs/{id}/retry", &["POST"]),
    ("/ui/jobs/{id}/cancel", &["POST"]),
    ("/ui/scrapes", &["GET"]),
    ("/ui/scrapes/{id}", &["GET"]),
    ("/ui/scrapes/{id}/screenshot.png", &["GET"]),
    ("/ui/summaries", &["GET"]),
    ("/ui/summaries/{id}", &["GET"]),
    ("/ui/documents", &["GET"]),
    ("/ui/documents/{id}", &["GET"]),
    ("/ui/schedules", &["GET"]),
    ("/ui/schedules/{name}/trigger", &["POST"]),
    ("/ui/channels", &["GET"]),
    ("/ui/channels/{id}/test", &["POST"]),
    ("/ui/deliveries", &["GET"]),
    ("/ui/deliveries/{id}/retry", &["POST"]),
    ("/ui/users", &["GET"]),
    ("/ui/users/{id}/quotas/reset", &["POST"]),
    ("/ui/assets/ui.js", &["GET"]),
];

/// The dashboard's routes, to nest under `/ui`.
pub fn routes() -> Route {
    Route::new()
        .at("/", get(overview::overview))
        .at("/login", get(session::login_page).post(session::login))
        .at("/logout", post(session::logout))
        .at("/events", get(live::events))
        .at("/jobs", get(jobs::list))
        .at("/jobs/:id", get(jobs::show))
        .at("/jobs/:id/retry", post(jobs::retry))
        .at("/jobs/:id/cancel", post(jobs::cancel))
        .at("/scrapes", get(scrapes::list))
        .at("/scrapes/:id", get(scrapes::show))
        .at("/scrapes/:id/screenshot.png", get(scrapes::screenshot))
        .at("/summaries", get(summaries::list))
        .at("/summaries/:id", get(summaries::show))
        .at("/documents", get(documents::list))
        .at("/documents/:id", get(documents::show))
        .at("/schedules", get(schedules::list))
        .at("/schedules/:name/trigger", post(schedules::trigger))
        .at("/channels", get(notify::channels))
        .at("/channels/:id/test", post(notify::test_channel))
        .at("/deliveries", get(notify::deliveries))
        .at("/deliveries/:id/retry", post(notify::retry_delivery))
        .at("/users", get(users::list))
        .at("/users/:id/quotas/reset", post(users::reset_quotas))
        .at("/assets/ui.js", get(script))
}

#[handler]
fn script() -> Response {
    layout::JS
        .with_content_type("text/javascript; charset=utf-8")
        .with_header(header::CACHE_CONTROL, "max-age=300")
        .into_response()
}
