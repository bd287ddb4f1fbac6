//! Plans at the HTTP edge: the per-user request-rate limit (checked with the bearer token,
//! shared by all of the user's tokens), quota charges for requests that start chargeable work,
//! and the rate-limit headers both add to the response. Admins are not limited.

use std::sync::{Arc, Mutex};

use chrono::Utc;
use poem::http::{HeaderName, HeaderValue, StatusCode};
use poem::{IntoResponse, Request};
use sqlx::PgConnection;

use super::ApiState;
use super::error::{ApiError, Problem};
use crate::domain::quotas::{self, Gcra, LimitState, ceil_secs};
use crate::domain::users::Caller;
use crate::domain::users::Role;
use crate::store;
use crate::store::quotas::Usage;
use crate::work::quotas::Charged;
use crate::work::{WorkError, WorkResult};

/// The limits that applied to a request, collected while it is served; the HTTP layer turns
/// them into headers. One per request, in its extensions.
#[derive(Clone, Default)]
pub struct LimitHeaders(Arc<Mutex<Collected>>);

#[derive(Default)]
struct Collected {
    rate: Option<LimitState>,
    quota: Option<LimitState>,
}

impl LimitHeaders {
    fn update(&self, f: impl FnOnce(&mut Collected)) {
        if let Ok(mut collected) = self.0.lock() {
            f(&mut collected);
        }
    }

    /// The headers for the collected limits: every policy in `RateLimit-Policy` and
    /// `RateLimit`, the quota (else the rate limit) in `X-RateLimit-*`.
    pub fn render(&self) -> Vec<(HeaderName, HeaderValue)> {
        let Ok(collected) = self.0.lock() else {
            return Vec::new();
        };
        let limits: Vec<LimitState> = [&collected.rate, &collected.quota]
            .into_iter()
            .flatten()
            .cloned()
            .collect();
        let Some(primary) = collected.quota.as_ref().or(collected.rate.as_ref()) else {
            return Vec::new();
        };
        (quotas::headers(&limits, primary, Utc::now()).into_iter())
            .filter_map(|(name, value)| {
                Some((
                    HeaderName::from_static(lower(name)?),
                    HeaderValue::from_str(&value).ok()?,
                ))
            })
            .collect()
    }
}

/// The lower-case static name of a header `quotas::headers` produces.
fn lower(name: &str) -> Option<&'static str> {
    Some(match name {
        "RateLimit-Policy" => "ratelimit-policy",
        "RateLimit" => "ratelimit",
        "X-RateLimit-Limit" => "x-ratelimit-limit",
        "X-RateLimit-Remaining" => "x-ratelimit-remaining",
        "X-RateLimit-Reset" => "x-ratelimit-reset",
        _ => return None,
    })
}

fn collected(req: &Request) -> LimitHeaders {
    req.extensions()
        .get::<LimitHeaders>()
        .cloned()
        .unwrap_or_default()
}

/// Count the request against the caller's plan rate; `Err` is the complete 429 response.
pub async fn check_rate(
    req: &Request,
    state: &ApiState,
    conn: &mut PgConnection,
    caller: &Caller,
) -> Result<(), poem::Error> {
    if caller.role == Role::Admin {
        return Ok(());
    }
    let plan = state.config.plan(&caller.plan);
    let gcra = Gcra {
        limit: plan.rate_limit,
        window: plan.rate_window,
    };
    // Per user, not per token: every token of a user draws on the one burst.
    let hit = store::quotas::hit_rate(&mut *conn, caller.user_id, gcra.limit, gcra.window)
        .await
        .map_err(|e| poem::Error::from_response(ApiError::from(e).into_response()))?;
    let now = Utc::now();
    let resets_at = now + chrono::TimeDelta::from_std(hit.ahead).unwrap_or_default();
    let remaining = if hit.allowed {
        gcra.remaining(hit.ahead)
    } else {
        0
    };
    let headers = collected(req);
    headers.update(|c| {
        c.rate = Some(LimitState {
            name: "requests".into(),
            limit: gcra.limit.into(),
            remaining: remaining.into(),
            window: gcra.window,
            resets_at,
        })
    });
    if hit.allowed {
        return Ok(());
    }
    let wait = gcra.retry_after(hit.ahead);
    let retry_after = ceil_secs(chrono::TimeDelta::from_std(wait).unwrap_or_default()).max(1);
    let problem = Problem::new(
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        format!(
            "your tokens together made more than {} requests in {}; try again in {retry_after} s",
            gcra.limit,
            humantime_serde::re::humantime::format_duration(gcra.window)
        ),
    );
    let mut resp = problem.into_http_response();
    resp.headers_mut()
        .insert("retry-after", HeaderValue::from(retry_after));
    Err(poem::Error::from_response(resp))
}

/// Put the quota a use case charged, or refused for, into the response headers; the result
/// goes on unchanged.
pub fn note<T>(
    req: &Request,
    result: WorkResult<T>,
    charged: impl Fn(&T) -> Option<&Charged>,
) -> WorkResult<T> {
    let (usage, limit) = match &result {
        Ok(done) => match charged(done) {
            Some(Charged {
                usage,
                limit: Some(limit),
            }) => (usage, *limit),
            _ => return result,
        },
        Err(WorkError::QuotaSpent { usage, limit, .. }) => (usage, *limit),
        Err(_) => return result,
    };
    let remaining = i64::from(limit) - usage.used - usage.reserved;
    collected(req).update(|c| c.quota = Some(quota_state(usage, limit, remaining)));
    result
}

/// A quota as the headers describe it.
pub fn quota_state(usage: &Usage, limit: u32, remaining: i64) -> LimitState {
    LimitState {
        name: usage.action.clone(),
        limit: limit.into(),
        remaining: remaining.max(0) as u64,
        window: (usage.resets_at - usage.period_start)
            .to_std()
            .unwrap_or_default(),
        resets_at: usage.resets_at,
    }
}
