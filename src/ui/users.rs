//! `/ui/users` (admins): every user with their role, plan and a bar per daily quota (used and
//! held of the limit), and **Reset** to give one their quotas back now. The same use cases as
//! `GET /v1/users`, `GET /v1/users/{id}/quotas` and `POST /v1/users/{id}/quotas/reset`, so a
//! user who is not an admin gets the API's refusal (403).

use maud::html;
use poem::web::{Data, Path, Query, Redirect};
use poem::{IntoResponse, handler};
use serde::Deserialize;
use uuid::Uuid;

use super::extract::{PageResult, Posted};
use super::layout::{self, page, time};
use super::session::Session;
use crate::api::ApiState;
use crate::work;

const PAGE: i64 = 50;

/// `?after=` pages (users are listed in creation order).
#[derive(Deserialize, Default)]
pub struct ListQuery {
    after: Option<Uuid>,
}

#[handler]
pub async fn list(
    session: Session,
    state: Data<&ApiState>,
    Query(q): Query<ListQuery>,
) -> PageResult {
    let mut conn = state.pool.acquire().await?;
    let mut users = work::users::list(&mut conn, &session.caller, q.after, PAGE + 1).await?;
    let next = crate::api::next_cursor(&mut users, PAGE, |u| u.id);
    let mut standings = Vec::with_capacity(users.len());
    for user in &users {
        standings.push(work::quotas::standing(&mut conn, &state.config, user).await?);
    }
    let body = html! {
        h1 { "Users" }
        p.muted { "Reset gives a user the units used in their current quota periods back; \
                   units held by running jobs stay held, and the periods keep their ends." }
        div.scroll { table {
            thead { tr {
                th scope="col" { "User" } th scope="col" { "Role" } th scope="col" { "Plan" }
                th scope="col" { "Quotas today" } th.optional scope="col" { "Next reset" }
                th scope="col" { "Action" }
            } }
            tbody #users {
                @for (user, (quotas, next_reset)) in users.iter().zip(&standings) {
                    tr data-id=(user.id) {
                        td {
                            (user.name)
                            @if let Some(email) = &user.email { br; span.muted { (email) } }
                            br; span.mono.muted { (user.id) }
                        }
                        td { (user.role.as_str()) }
                        td { (user.plan) }
                        td { div.quotas { @for q in quotas {
                            div.quota { span.muted { (q.action) } (layout::quota(q)) }
                        } } }
                        td.optional { (time(Some(*next_reset))) }
                        td { form method="post" action=(format!("/ui/users/{}/quotas/reset", user.id)) {
                            input type="hidden" name="csrf" value=(session.csrf);
                            button.secondary type="submit"
                                aria-label=(format!("Reset the quotas of {}", user.name)) { "Reset" }
                        } }
                    }
                }
            }
        } }
        @if let Some(next) = next {
            p { a href=(format!("/ui/users?after={next}")) { "More users →" } }
        }
    };
    Ok(page("Users", &session, body))
}

#[handler]
pub async fn reset_quotas(
    Posted { session, .. }: Posted,
    state: Data<&ApiState>,
    Path(id): Path<Uuid>,
) -> PageResult {
    let mut conn = state.pool.acquire().await?;
    work::quotas::reset(&mut conn, &session.caller, id).await?;
    Ok(Redirect::see_other("/ui/users").into_response())
}
