//! Opening live event streams and minting stream tickets: who may see what. A user sees only
//! their own events; an admin sees their own unless asking for `all`.

use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use super::{Caller, WorkError, WorkResult};
use crate::domain::stream::{Event, Filter, JOB_ENDS, known_topic};
use crate::domain::tokens;
use crate::store;
use crate::stream::subscription::Request;
use crate::stream::{Hub, Subscription};

/// What a client asks to receive on `/v1/events` or `/v1/ws`.
#[derive(Debug, Clone, Default)]
pub struct StreamQuery {
    /// Event types or families; empty: all.
    pub topics: Vec<String>,
    /// Resources the events must be about; all empty: any.
    pub jobs: Vec<Uuid>,
    /// See `jobs`.
    pub scrapes: Vec<Uuid>,
    /// See `jobs`.
    pub summaries: Vec<Uuid>,
    /// See `jobs`.
    pub crawls: Vec<Uuid>,
    /// Everyone's events (admins only).
    pub all: bool,
}

/// Check `query` for `caller` and turn it into a filter.
pub fn filter(caller: &Caller, query: StreamQuery) -> WorkResult<Filter> {
    if query.all && !caller.is_admin() {
        return Err(WorkError::Forbidden(
            "only admins may stream everyone's events (all=true)".into(),
        ));
    }
    if let Some(bad) = query.topics.iter().find(|t| !known_topic(t)) {
        return Err(WorkError::invalid(
            "topic",
            format!(
                "unknown topic {bad:?}; use an event type (e.g. job.succeeded) or its family \
                 (e.g. job); types: {}",
                crate::domain::stream::TYPES.join(", ")
            ),
        ));
    }
    let resources = query.jobs.len() + query.scrapes.len() + query.summaries.len();
    if query.topics.len() > 64 || resources + query.crawls.len() > 1_000 {
        return Err(WorkError::invalid(
            "topic",
            "at most 64 topics and 1000 resources per stream",
        ));
    }
    Ok(Filter {
        owner: (!query.all).then_some(caller.user_id),
        topics: query.topics,
        jobs: query.jobs,
        scrapes: query.scrapes,
        summaries: query.summaries,
        crawls: query.crawls,
    })
}

/// Where a stream resumes: `Last-Event-ID` / `since` must be a number ≥ 0.
pub fn since(raw: Option<&str>) -> WorkResult<Option<i64>> {
    match raw.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) => s
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .map(Some)
            .ok_or_else(|| {
                WorkError::invalid(
                    "Last-Event-ID",
                    format!("{s:?} is not an event id (a whole number from 0)"),
                )
            }),
    }
}

/// Open the caller's stream of events matching `query`, resuming after `since`.
pub async fn open(
    hub: &Hub,
    caller: &Caller,
    query: StreamQuery,
    since: Option<i64>,
) -> WorkResult<Subscription> {
    let filter = filter(caller, query)?;
    Ok(hub
        .subscribe(Request {
            filter,
            since,
            ..Request::default()
        })
        .await?)
}

/// A job's stream: its current state first, then its changes until it ends.
pub enum JobStream {
    /// The job is running or waiting: live.
    Live(Subscription),
    /// The job had ended when asked: its final state, then nothing.
    Ended {
        /// The last event number.
        head: i64,
        /// The job's final state.
        snapshot: Value,
    },
    /// The job had ended and the client is reconnecting: nothing more will come.
    Over,
}

/// Open the stream of one job the caller can see (404 otherwise).
pub async fn open_job(
    hub: &Hub,
    caller: &Caller,
    id: Uuid,
    since: Option<i64>,
) -> WorkResult<JobStream> {
    let owner = (!caller.is_admin()).then_some(caller.user_id);
    let pool = hub.pool();
    let Some(snapshot) = store::stream::job_snapshot(pool, id, owner).await? else {
        return Err(WorkError::not_found(format!("job {id}")));
    };
    let ended = snapshot["type"]
        .as_str()
        .is_some_and(|t| JOB_ENDS.contains(&t));
    if ended {
        return Ok(match since {
            Some(_) => JobStream::Over,
            None => JobStream::Ended {
                head: store::stream::head(pool).await?,
                snapshot,
            },
        });
    }
    let snapshot = Event::from_stored(0, snapshot).map(|e| e.json);
    let subscription = hub
        .subscribe(Request {
            filter: Filter {
                owner,
                jobs: vec![id],
                ..Filter::default()
            },
            since,
            snapshot,
            until_job_ends: Some(id),
        })
        .await?;
    Ok(JobStream::Live(subscription))
}

/// A new stream ticket for the caller's token, valid for `events.ticket_lifetime`.
pub async fn ticket(hub: &Hub, caller: &Caller) -> WorkResult<(String, DateTime<Utc>)> {
    let Some(token_id) = caller.token_id else {
        return Err(WorkError::Forbidden(
            "stream tickets are minted for API tokens; sign in with one".into(),
        ));
    };
    let lifetime = chrono::Duration::from_std(hub.config().ticket_lifetime)
        .map_err(|e| WorkError::Internal(e.into()))?;
    let expires_at = Utc::now() + lifetime;
    let (secret, hash) = tokens::mint_ticket();
    store::stream::create_ticket(hub.pool(), &hash, token_id, expires_at).await?;
    Ok((secret, expires_at))
}
