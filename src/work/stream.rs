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
            // A WebSocket may widen its filter later: an admin's to everyone's.
            scope: (!caller.is_admin()).then_some(caller.user_id),
            since,
            ..Request::default()
        })
        .await?)
}

/// What a WebSocket is subscribed to: the union of its subscribes less its unsubscribes,
/// checked by the same rules as a stream's query. Nothing before the first subscribe; an
/// empty first subscribe selects every event the caller may see (as `/v1/events` with no
/// query does). An unsubscribe that leaves no topic where there were topics, or no resource
/// where there were resources, selects nothing until the next subscribe, which starts afresh
/// (an empty list would mean "any" and widen the stream instead).
#[derive(Debug, Clone, Default)]
pub struct Selection {
    query: StreamQuery,
    active: bool,
}

impl Selection {
    /// What is selected; `None`: nothing.
    pub fn query(&self) -> Option<&StreamQuery> {
        self.active.then_some(&self.query)
    }

    /// Add `more`'s topics and resources (`all` turns on seeing everyone's) and return the
    /// new filter; unchanged when refused.
    pub fn subscribe(&mut self, caller: &Caller, more: StreamQuery) -> WorkResult<Filter> {
        let mut next = match self.active {
            true => self.query.clone(),
            false => StreamQuery::default(),
        };
        add(&mut next.topics, more.topics);
        add(&mut next.jobs, more.jobs);
        add(&mut next.scrapes, more.scrapes);
        add(&mut next.summaries, more.summaries);
        add(&mut next.crawls, more.crawls);
        next.all |= more.all;
        let checked = filter(caller, next.clone())?;
        self.query = next;
        self.active = true;
        Ok(checked)
    }

    /// Remove `less`'s topics and resources (`all` turns seeing everyone's off) and return
    /// the new filter, `None` when nothing is selected any more; unchanged when refused.
    pub fn unsubscribe(
        &mut self,
        caller: &Caller,
        less: StreamQuery,
    ) -> WorkResult<Option<Filter>> {
        // The same checks of topics and sizes as a subscribe's, so a typo is not ignored.
        filter(
            caller,
            StreamQuery {
                all: false,
                ..less.clone()
            },
        )?;
        if !self.active {
            return Ok(None);
        }
        let mut next = self.query.clone();
        next.topics.retain(|t| !less.topics.contains(t));
        next.jobs.retain(|x| !less.jobs.contains(x));
        next.scrapes.retain(|x| !less.scrapes.contains(x));
        next.summaries.retain(|x| !less.summaries.contains(x));
        next.crawls.retain(|x| !less.crawls.contains(x));
        next.all &= !less.all;
        let emptied = (!self.query.topics.is_empty() && next.topics.is_empty())
            || (resources(&self.query) > 0 && resources(&next) == 0);
        if emptied {
            *self = Self::default();
            return Ok(None);
        }
        let checked = filter(caller, next.clone())?;
        self.query = next;
        Ok(Some(checked))
    }
}

fn add<T: PartialEq>(to: &mut Vec<T>, from: Vec<T>) {
    for x in from {
        if !to.contains(&x) {
            to.push(x);
        }
    }
}

fn resources(query: &StreamQuery) -> usize {
    query.jobs.len() + query.scrapes.len() + query.summaries.len() + query.crawls.len()
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
            scope: owner,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::users::Role;

    fn caller(role: Role) -> Caller {
        Caller {
            user_id: Uuid::new_v4(),
            role,
            token_id: None,
            plan: "free".into(),
        }
    }

    fn topics(names: &[&str]) -> StreamQuery {
        StreamQuery {
            topics: names.iter().map(|t| t.to_string()).collect(),
            ..StreamQuery::default()
        }
    }

    #[test]
    fn a_selection_grows_and_shrinks_and_never_widens_to_all() {
        let user = caller(Role::User);
        let mut s = Selection::default();
        assert!(s.query().is_none(), "nothing before the first subscribe");
        let f = s
            .subscribe(&user, topics(&["job", "delivery"]))
            .expect("known");
        assert_eq!((f.owner, f.topics.len()), (Some(user.user_id), 2));
        let f = s
            .subscribe(&user, topics(&["job.dead", "job"]))
            .expect("known");
        assert_eq!(f.topics, ["job", "delivery", "job.dead"], "no duplicates");
        let f = s
            .unsubscribe(&user, topics(&["job", "job.dead"]))
            .expect("known");
        assert_eq!(f.map(|f| f.topics), Some(vec!["delivery".to_string()]));
        assert_eq!(
            s.unsubscribe(&user, topics(&["delivery"])).expect("known"),
            None
        );
        assert!(
            s.query().is_none(),
            "the last topic gone: nothing, not everything"
        );
        let f = s.subscribe(&user, topics(&["channel"])).expect("known");
        assert_eq!(f.topics, ["channel"], "starts afresh");

        let job = Uuid::new_v4();
        let by_job = StreamQuery {
            jobs: vec![job],
            ..StreamQuery::default()
        };
        s.subscribe(&user, by_job.clone()).expect("a job");
        assert_eq!(s.unsubscribe(&user, by_job).expect("a job"), None);
    }

    #[test]
    fn a_selection_refuses_what_a_stream_refuses_and_stays_as_it_was() {
        let user = caller(Role::User);
        let mut s = Selection::default();
        s.subscribe(&user, topics(&["job"])).expect("known");
        let all = StreamQuery {
            all: true,
            ..StreamQuery::default()
        };
        assert!(matches!(
            s.subscribe(&user, all.clone()),
            Err(WorkError::Forbidden(_))
        ));
        assert!(s.subscribe(&user, topics(&["jobs.dead"])).is_err());
        assert!(s.unsubscribe(&user, topics(&["jobs.dead"])).is_err());
        assert_eq!(
            s.query().map(|q| q.topics.clone()),
            Some(vec!["job".into()])
        );

        let admin = caller(Role::Admin);
        let mut s = Selection::default();
        assert_eq!(
            s.subscribe(&admin, all.clone()).expect("an admin").owner,
            None
        );
        let own = s
            .unsubscribe(&admin, all)
            .expect("an admin")
            .expect("still selected");
        assert_eq!(own.owner, Some(admin.user_id));
    }
}
