//! `/ui`: the overview. Everyone: their quotas, their jobs by state, what finished in the last
//! hour (a small chart) and how late jobs started. Admins also: the live queue of each kind,
//! the daemon instances, the schedules' next and last runs, dead deliveries.

use chrono::{Duration, Utc};
use maud::{Markup, html};
use poem::handler;
use poem::web::Data;

use super::extract::PageResult;
use super::layout::{self, time};
use super::session::Session;
use crate::api::ApiState;
use crate::store;
use crate::store::overview::Bucket;
use crate::work;

#[handler]
pub async fn overview(session: Session, state: Data<&ApiState>) -> PageResult {
    let caller = &session.caller;
    let read = async {
        let mut conn = state.pool.acquire().await?;
        let user = store::users::find_user(&mut conn, caller.user_id).await?;
        let quotas = match &user {
            Some(user) => {
                work::quotas::standing(&mut conn, &state.config, user)
                    .await?
                    .0
            }
            None => Vec::new(),
        };
        let owner = caller.owner_filter();
        let (buckets, lateness) = store::overview::last_hour(&mut conn, owner).await?;
        let by_state = match owner {
            Some(_) => store::jobs::count_by_state(&mut *conn, owner).await?,
            None => Vec::new(),
        };
        let operator = match caller.is_admin() {
            true => Some(work::overview::status(&mut conn, caller, &state.schedules).await?),
            false => None,
        };
        anyhow::Ok((quotas, buckets, lateness, by_state, operator))
    };
    let (quotas, buckets, lateness, by_state, operator) = read.await?;
    let body = html! {
        h1 { "Overview" }
        @if !quotas.is_empty() {
            h2 { "Your quotas today" }
            div.cards { @for q in &quotas {
                div.card {
                    span.muted { (q.action) }
                    (layout::quota(q))
                    span.muted { "resets " (time(Some(q.resets_at))) }
                }
            } }
        }
        h2 { "Finished in the last hour" }
        (chart(&buckets))
        p.muted {
            @match lateness {
                Some((p50, p95)) => { "Lateness (start after due): p50 " (format!("{:.0}", p50 * 1000.0)) " ms, p95 " (format!("{:.0}", p95 * 1000.0)) " ms." }
                None => { "No job finished in the last hour." }
            }
            " From the most recent " (store::overview::SAMPLE) " finished jobs at most."
        }
        @if !by_state.is_empty() {
            h2 { "Your jobs" }
            div.cards { @for (name, n) in &by_state {
                a.card href=(format!("/ui/jobs?state={name}")) { b { (n) } (layout::state(name)) }
            } }
        }
        @if let Some(o) = operator {
            h2 { "Queues" }
            div.scroll { table {
                thead { tr { th scope="col" { "Kind" } th scope="col" { "Waiting" } th scope="col" { "Later" }
                    th scope="col" { "Running" } th scope="col" { "Oldest due" } } }
                tbody {
                    @if o.queues.is_empty() { tr { td colspan="5" .muted { "No live jobs." } } }
                    @for q in &o.queues { tr {
                        td { a href=(format!("/ui/jobs?kind={}", q.kind)) { (q.kind) } }
                        td { (q.waiting) } td { (q.later) } td { (q.running) }
                        td { (time(q.oldest_due)) }
                    } }
                }
            } }
            h2 { "Daemon instances running jobs" }
            @if o.instances.is_empty() { p.muted { "None is running a job right now." } }
            ul { @for i in &o.instances { li { span.mono { (i.instance) } ": " (i.running) " running" } } }
            h2 { "Schedules" }
            div.scroll { table {
                thead { tr { th scope="col" { "Schedule" } th scope="col" { "Cron" } th scope="col" { "Next" } th scope="col" { "Last" } } }
                tbody { @for s in &o.schedules { tr {
                    td { (s.schedule.name) }
                    td.mono { (s.schedule.cron_expr) }
                    td { (time(s.next_run_at)) }
                    td { @if let Some(last) = &s.last_run {
                        (time(Some(last.fired_at)))
                        @if let Some(st) = last.job_state { " " (layout::state(st)) }
                    } }
                } } }
            } }
            p { "Dead deliveries: " b { (o.dead_deliveries) } }
        }
    };
    Ok(layout::page("Overview", &session, body))
}

/// Succeeded (bottom) and failed (top) jobs per five minutes, as an inline SVG.
fn chart(buckets: &[Bucket]) -> Markup {
    let now = Utc::now();
    let start = now - Duration::hours(1);
    // Buckets start at the database's `now() - 1 hour`, a moment before ours: the nearest
    // slot is theirs.
    let mut slots = [(0i64, 0i64); 12];
    for b in buckets {
        let at = (b.start - start).num_seconds() as f64 / 300.0;
        let i = (at.round().max(0.0) as usize).min(11);
        slots[i].0 += b.succeeded;
        slots[i].1 += b.failed;
    }
    let max = slots.iter().map(|(s, f)| s + f).max().unwrap_or(0).max(1) as f64;
    let total: (i64, i64) = slots.iter().fold((0, 0), |a, s| (a.0 + s.0, a.1 + s.1));
    let label = format!(
        "{} succeeded and {} failed in the last hour, by five minutes",
        total.0, total.1
    );
    html! {
        figure {
            svg width="100%" height="90" viewBox="0 0 480 90" role="img" aria-label=(label) {
                @for (i, (ok, bad)) in slots.iter().enumerate() {
                    @let x = i as f64 * 40.0 + 4.0;
                    @let ok_h = *ok as f64 / max * 80.0;
                    @let bad_h = *bad as f64 / max * 80.0;
                    rect x=(x) y=(85.0 - ok_h) width="32" height=(ok_h) fill="#19703a" {}
                    rect x=(x) y=(85.0 - ok_h - bad_h) width="32" height=(bad_h) fill="#b3261e" {}
                }
                line x1="0" y1="85.5" x2="480" y2="85.5" stroke="#d9dde5" {}
            }
            figcaption.muted { (label) " (green: succeeded, red: dead or cancelled)." }
        }
    }
}
