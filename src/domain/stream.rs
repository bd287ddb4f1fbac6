//! The live event stream's events and filters: which event types exist, what a client may ask
//! for, and whether an event matches. Pure: the database numbers events, `stream` moves them.

use serde_json::Value;
use uuid::Uuid;

/// Every event type a stream carries, as sent in `type`.
pub const TYPES: &[&str] = &[
    "job.queued",
    "job.running",
    "job.retrying",
    "job.succeeded",
    "job.dead",
    "job.cancelled",
    "scrapes.finished",
    "crawls.finished",
    "summaries.finished",
    "summary.progress",
    "jobs.failed",
    "injector.runs",
    "channel.test",
    "delivery.failed",
    "delivery.delivered",
    "delivery.dead",
    "delivery.queued",
];

/// What the stream itself says: `hello` (first, with the current head), `reset` (the events
/// asked for are gone: re-read state), `close` (the server ends the stream, with a reason).
pub const CONTROL: &[&str] = &["hello", "reset", "close"];

/// The job events after which a job does not change again (unless retried by hand).
pub const JOB_ENDS: &[&str] = &["job.succeeded", "job.dead", "job.cancelled"];

/// Whether `topic` names an event type or a family of them (`job` for every `job.*`).
pub fn known_topic(topic: &str) -> bool {
    TYPES.iter().any(|t| *t == topic || family(t) == topic)
}

/// Every topic a stream can be filtered to: the families, then the types.
pub fn topics() -> Vec<&'static str> {
    let mut families: Vec<&'static str> = TYPES.iter().map(|t| family(t)).collect();
    families.dedup();
    families.sort_unstable();
    families.dedup();
    families.into_iter().chain(TYPES.iter().copied()).collect()
}

/// The family of an event type: the part before the first dot.
fn family(event_type: &str) -> &str {
    event_type.split('.').next().unwrap_or(event_type)
}

/// An event as the hub holds it: its number, who may see it, what it is about, and its JSON
/// (with `id`) serialized once for every client.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Its number: strictly increasing in commit order.
    pub seq: i64,
    /// The user it belongs to; `None`: a system event only admins asking for all see.
    pub owner: Option<Uuid>,
    /// Its type, e.g. `job.succeeded`.
    pub event_type: String,
    /// The job, scrape, summary and crawl it is about, where it names them.
    pub job: Option<Uuid>,
    /// See `job`.
    pub scrape: Option<Uuid>,
    /// See `job`.
    pub summary: Option<Uuid>,
    /// See `job`.
    pub crawl: Option<Uuid>,
    /// The event object as sent, `id` included.
    pub json: String,
}

impl Event {
    /// Build from a stored event object numbered `seq`; `None` for one without a `type`.
    pub fn from_stored(seq: i64, mut value: Value) -> Option<Self> {
        let object = value.as_object_mut()?;
        let event_type = object.get("type")?.as_str()?.to_owned();
        let uuid = |key: &str| object.get(key)?.as_str()?.parse::<Uuid>().ok();
        let (owner, job, scrape, summary, crawl) = (
            uuid("owner"),
            uuid("job"),
            uuid("scrape"),
            uuid("summary"),
            uuid("crawl"),
        );
        if seq > 0 {
            object.insert("id".into(), Value::from(seq));
        }
        Some(Self {
            seq,
            owner,
            event_type,
            job,
            scrape,
            summary,
            crawl,
            json: value.to_string(),
        })
    }

    /// Whether this event ends the job it is about.
    pub fn ends_job(&self) -> bool {
        JOB_ENDS.contains(&self.event_type.as_str())
    }
}

/// What a client asked to receive. Empty lists mean "any".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Only this user's events; `None`: everyone's (admins asking for all).
    pub owner: Option<Uuid>,
    /// Event types or families (`job`, `delivery.dead`).
    pub topics: Vec<String>,
    /// Events about any of these jobs, scrapes, summaries or crawls.
    pub jobs: Vec<Uuid>,
    /// See `jobs`.
    pub scrapes: Vec<Uuid>,
    /// See `jobs`.
    pub summaries: Vec<Uuid>,
    /// See `jobs`.
    pub crawls: Vec<Uuid>,
}

impl Filter {
    /// Whether `event` passes: owned by the filter's user (or the filter sees all), of an asked
    /// type, about an asked resource.
    pub fn matches(&self, event: &Event) -> bool {
        if let Some(owner) = self.owner
            && event.owner != Some(owner)
        {
            return false;
        }
        if !self.topics.is_empty()
            && !self
                .topics
                .iter()
                .any(|t| *t == event.event_type || family(&event.event_type) == t)
        {
            return false;
        }
        if self.jobs.is_empty()
            && self.scrapes.is_empty()
            && self.summaries.is_empty()
            && self.crawls.is_empty()
        {
            return true;
        }
        let about = |ids: &[Uuid], id: Option<Uuid>| id.is_some_and(|id| ids.contains(&id));
        about(&self.jobs, event.job)
            || about(&self.scrapes, event.scrape)
            || about(&self.summaries, event.summary)
            || about(&self.crawls, event.crawl)
    }

    /// Add another filter's topics and resources to this one (a WebSocket subscribe).
    pub fn extend(&mut self, other: &Filter) {
        fn add<T: PartialEq + Clone>(to: &mut Vec<T>, from: &[T]) {
            for x in from {
                if !to.contains(x) {
                    to.push(x.clone());
                }
            }
        }
        add(&mut self.topics, &other.topics);
        add(&mut self.jobs, &other.jobs);
        add(&mut self.scrapes, &other.scrapes);
        add(&mut self.summaries, &other.summaries);
        add(&mut self.crawls, &other.crawls);
    }

    /// Remove another filter's topics and resources from this one (a WebSocket unsubscribe).
    pub fn remove(&mut self, other: &Filter) {
        self.topics.retain(|x| !other.topics.contains(x));
        self.jobs.retain(|x| !other.jobs.contains(x));
        self.scrapes.retain(|x| !other.scrapes.contains(x));
        self.summaries.retain(|x| !other.summaries.contains(x));
        self.crawls.retain(|x| !other.crawls.contains(x));
    }
}

/// Where a reconnecting client resumes: from `since` if every event after it is still kept,
/// else a reset. `oldest` is the lowest kept number (`None`: none kept), `head` the last given.
pub fn resume_from(since: i64, oldest: Option<i64>, head: i64) -> Option<i64> {
    let first_kept = oldest.unwrap_or(head + 1);
    (since <= head && since >= first_kept - 1 && since >= 0).then_some(since)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(owner: Uuid, ty: &str, job: Uuid) -> Event {
        Event::from_stored(7, json!({"type": ty, "owner": owner, "job": job})).expect("an event")
    }

    #[test]
    fn filters_by_owner_topic_family_and_resource() {
        let (alice, bob, job, other) = (
            Uuid::new_v4(),
            Uuid::new_v4(),
            Uuid::new_v4(),
            Uuid::new_v4(),
        );
        let e = event(alice, "job.succeeded", job);
        assert!(e.json.contains("\"id\":7"));
        let mut f = Filter {
            owner: Some(alice),
            ..Filter::default()
        };
        assert!(f.matches(&e));
        f.owner = Some(bob);
        assert!(!f.matches(&e), "another user's event");
        f.owner = None;
        assert!(f.matches(&e), "admins asking for all");
        f.topics = vec!["job".into()];
        assert!(f.matches(&e));
        f.topics = vec!["delivery".into(), "job.dead".into()];
        assert!(!f.matches(&e));
        f.topics.clear();
        f.jobs = vec![other];
        assert!(!f.matches(&e));
        f.scrapes = vec![job];
        assert!(!f.matches(&e), "a job id is not a scrape id");
        f.jobs.push(job);
        assert!(f.matches(&e));
    }

    #[test]
    fn system_events_reach_only_those_who_see_all() {
        let e = Event::from_stored(1, json!({"type": "injector.runs"})).expect("an event");
        let user = Filter {
            owner: Some(Uuid::new_v4()),
            ..Filter::default()
        };
        assert!(!user.matches(&e));
        assert!(Filter::default().matches(&e));
    }

    #[test]
    fn topics_are_types_or_families() {
        assert!(known_topic("job"));
        assert!(known_topic("job.dead"));
        assert!(known_topic("scrapes.finished"));
        assert!(known_topic("delivery"));
        assert!(!known_topic("jobs.dead"));
        assert!(!known_topic(""));
    }

    #[test]
    fn resume_only_when_nothing_after_since_was_pruned() {
        // Kept 101..=200.
        assert_eq!(resume_from(150, Some(101), 200), Some(150));
        assert_eq!(resume_from(100, Some(101), 200), Some(100));
        assert_eq!(resume_from(99, Some(101), 200), None, "100 is gone");
        assert_eq!(resume_from(201, Some(101), 200), None, "from the future");
        // Everything pruned, nothing new since.
        assert_eq!(resume_from(200, None, 200), Some(200));
        assert_eq!(resume_from(199, None, 200), None);
        assert_eq!(resume_from(-1, Some(1), 0), None);
    }
}
