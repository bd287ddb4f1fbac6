//! Closed sets of strings as enums in the spec: `OneOf<S>` is a string that the spec lists with
//! exactly the values of the domain's set `S`, so clients and fuzzers see them.
//!
//! Why not `#[derive(Enum)]` for these: poem refuses an unlisted value with a 400 that reads
//! `Expect a valid enumeration value`, naming neither the field nor the values. The domain
//! (`work::`) already refuses an unlisted value with a 422 naming both; `OneOf` keeps that
//! answer and takes its list of values from the same constant the check uses, so the spec and
//! the check cannot drift apart.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use poem_openapi::registry::{MetaSchema, MetaSchemaRef, Registry};
use poem_openapi::types::{
    ParseError, ParseFromJSON, ParseFromParameter, ParseResult, ToJSON, Type,
};
use serde_json::Value;

use crate::api::jobs::JobStateOut;
use crate::domain::jobs::JobState;
use crate::domain::topics::Topic;
use crate::domain::users::Role;
use crate::scrape;
use crate::store;
use crate::summarise::summariser;
use crate::work::{channels, deliveries};

/// A closed set of strings, named once in the domain.
pub trait ClosedSet: Sized + Send + Sync + 'static {
    /// The schema's name in the spec's components.
    const NAME: &'static str;
    /// The schema's description.
    const DESCRIPTION: &'static str;

    /// Every value of the set, in the order the spec lists them.
    fn values() -> Vec<&'static str>;

    /// Adds the set's schema to the spec (a set that already has an `Enum` type reuses it).
    fn register(registry: &mut Registry) {
        registry.create_schema::<OneOf<Self>, _>(Self::NAME.to_string(), |_| MetaSchema {
            description: Some(Self::DESCRIPTION),
            enum_items: Self::values()
                .into_iter()
                .map(|v| Value::String(v.to_string()))
                .collect(),
            ..MetaSchema::new("string")
        });
    }
}

/// A string of the closed set `S`, as the client sent it or the store holds it; the domain
/// checks a value that comes in.
pub struct OneOf<S>(String, PhantomData<fn() -> S>);

impl<S> OneOf<S> {
    /// The value.
    pub fn into_inner(self) -> String {
        self.0
    }

    /// The value, borrowed.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<S> From<String> for OneOf<S> {
    fn from(value: String) -> Self {
        Self(value, PhantomData)
    }
}

impl<S> From<&str> for OneOf<S> {
    fn from(value: &str) -> Self {
        Self(value.to_string(), PhantomData)
    }
}

impl<S> Clone for OneOf<S> {
    fn clone(&self) -> Self {
        self.0.as_str().into()
    }
}

impl<S> fmt::Debug for OneOf<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

/// Turns a list of sent values into their strings.
pub fn strings<S>(values: Vec<OneOf<S>>) -> Vec<String> {
    values.into_iter().map(OneOf::into_inner).collect()
}

impl<S: ClosedSet> Type for OneOf<S> {
    const IS_REQUIRED: bool = true;
    type RawValueType = Self;
    type RawElementValueType = Self;

    fn name() -> Cow<'static, str> {
        S::NAME.into()
    }

    fn schema_ref() -> MetaSchemaRef {
        MetaSchemaRef::Reference(S::NAME.to_string())
    }

    fn register(registry: &mut Registry) {
        S::register(registry);
    }

    fn as_raw_value(&self) -> Option<&Self::RawValueType> {
        Some(self)
    }

    fn raw_element_iter<'a>(
        &'a self,
    ) -> Box<dyn Iterator<Item = &'a Self::RawElementValueType> + 'a> {
        Box::new(self.as_raw_value().into_iter())
    }
}

impl<S: ClosedSet> ParseFromJSON for OneOf<S> {
    fn parse_from_json(value: Option<Value>) -> ParseResult<Self> {
        match value {
            Some(Value::String(s)) => Ok(s.into()),
            other => Err(ParseError::expected_type(other.unwrap_or_default())),
        }
    }
}

impl<S: ClosedSet> ParseFromParameter for OneOf<S> {
    fn parse_from_parameter(value: &str) -> ParseResult<Self> {
        Ok(value.into())
    }
}

impl<S: ClosedSet> ToJSON for OneOf<S> {
    fn to_json(&self) -> Option<Value> {
        Some(Value::String(self.0.clone()))
    }
}

/// A job's state (`GET /v1/jobs?state=`): the same schema as [`JobStateOut`].
pub struct JobStates;

impl ClosedSet for JobStates {
    const NAME: &'static str = "JobStateOut";
    const DESCRIPTION: &'static str = "A job's state as a person can act on it.";

    fn values() -> Vec<&'static str> {
        JobState::ALL.map(JobState::as_str).to_vec()
    }

    fn register(registry: &mut Registry) {
        <JobStateOut as Type>::register(registry);
    }
}

/// A job kind (`POST /v1/jobs`, `GET /v1/jobs?kind=`): every kind this daemon runs.
pub struct JobKinds;

impl ClosedSet for JobKinds {
    const NAME: &'static str = "JobKind";
    const DESCRIPTION: &'static str = "A kind of job this daemon runs.";

    fn values() -> Vec<&'static str> {
        crate::jobs::NAMES.to_vec()
    }
}

/// An IANA time zone name (`Europe/Berlin`): every zone the daemon's time zone database knows.
pub struct TimeZones;

impl ClosedSet for TimeZones {
    const NAME: &'static str = "TimeZone";
    const DESCRIPTION: &'static str = "An IANA time zone, e.g. `UTC` or `Europe/Berlin`.";

    fn values() -> Vec<&'static str> {
        chrono_tz::TZ_VARIANTS.iter().map(|tz| tz.name()).collect()
    }
}

/// The status of the work a job does for a scrape or a summary.
pub struct WorkStatuses;

impl ClosedSet for WorkStatuses {
    const NAME: &'static str = "WorkStatus";
    const DESCRIPTION: &'static str = "`pending`, `scheduled`, `running`, `retrying` (an attempt \
        failed, another follows), `succeeded`, `failed` or `cancelled`.";

    fn values() -> Vec<&'static str> {
        JobState::work_statuses()
    }
}

/// Why a scrape's last attempt failed.
pub struct ScrapeErrorKinds;

impl ClosedSet for ScrapeErrorKinds {
    const NAME: &'static str = "ScrapeErrorKind";
    const DESCRIPTION: &'static str = "Why a scrape's last attempt failed; only `timeout`, \
        `driver_unavailable` and network failures are retried.";

    fn values() -> Vec<&'static str> {
        scrape::job::ERROR_KINDS.to_vec()
    }
}

/// Where a document's text came from.
pub struct DocumentSources;

impl ClosedSet for DocumentSources {
    const NAME: &'static str = "DocumentSource";
    const DESCRIPTION: &'static str = "`upload` (`POST /v1/documents`) or `scrape`.";

    fn values() -> Vec<&'static str> {
        store::documents::SOURCES.to_vec()
    }
}

/// A user's role.
pub struct Roles;

impl ClosedSet for Roles {
    const NAME: &'static str = "Role";
    const DESCRIPTION: &'static str = "`admin` (manages users, tokens and schedules; sees \
        everything) or `user` (sees and changes only their own resources).";

    fn values() -> Vec<&'static str> {
        Role::ALL.map(Role::as_str).to_vec()
    }
}

/// A delivery's state.
pub struct DeliveryStates;

impl ClosedSet for DeliveryStates {
    const NAME: &'static str = "DeliveryState";
    const DESCRIPTION: &'static str = "`pending` (will be attempted, again after a failure), \
        `delivered` or `dead`.";

    fn values() -> Vec<&'static str> {
        deliveries::STATES.to_vec()
    }
}

/// A channel's kind.
pub struct ChannelKinds;

impl ClosedSet for ChannelKinds {
    const NAME: &'static str = "ChannelKind";
    const DESCRIPTION: &'static str = "How a channel is reached: a signed webhook, Firebase \
        Cloud Messaging, or Web Push.";

    fn values() -> Vec<&'static str> {
        channels::KINDS.to_vec()
    }
}

/// A topic of events.
pub struct Topics;

impl ClosedSet for Topics {
    const NAME: &'static str = "Topic";
    const DESCRIPTION: &'static str = "A topic of events channels subscribe to.";

    fn values() -> Vec<&'static str> {
        Topic::names()
    }
}

/// A summary's style.
pub struct SummaryStyles;

impl ClosedSet for SummaryStyles {
    const NAME: &'static str = "SummaryStyle";
    const DESCRIPTION: &'static str = "`paragraph`, `bullets` or `tldr`.";

    fn values() -> Vec<&'static str> {
        summariser::STYLES.to_vec()
    }
}

/// A summary's length.
pub struct SummaryLengths;

impl ClosedSet for SummaryLengths {
    const NAME: &'static str = "SummaryLength";
    const DESCRIPTION: &'static str =
        "`short` (≤ 400 characters), `medium` (≤ 1,200) or `long` (≤ 3,000).";

    fn values() -> Vec<&'static str> {
        summariser::LENGTHS.to_vec()
    }
}

/// What a scrape keeps of a page.
pub struct ScrapeFormats;

impl ClosedSet for ScrapeFormats {
    const NAME: &'static str = "ScrapeFormat";
    const DESCRIPTION: &'static str = "A form of the page's content a scrape keeps.";

    fn values() -> Vec<&'static str> {
        scrape::job::FORMATS.to_vec()
    }
}

/// The type of a live stream event (`GET /v1/events`, `/v1/ws`), or of the stream's own
/// messages.
pub struct EventTypes;

impl ClosedSet for EventTypes {
    const NAME: &'static str = "EventType";
    const DESCRIPTION: &'static str = "What a stream event is: a job state change (`job.*`), a \
        published event (`scrapes.finished`, …), a delivery outcome (`delivery.*`), summary \
        progress, or the stream's own `hello`, `reset` and `close`.";

    fn values() -> Vec<&'static str> {
        let stream = crate::domain::stream::TYPES.iter();
        stream
            .chain(crate::domain::stream::CONTROL)
            .copied()
            .collect()
    }
}

/// What a stream can be filtered to: an event type, or a family of them (`job` for `job.*`).
pub struct EventTopics;

impl ClosedSet for EventTopics {
    const NAME: &'static str = "EventTopic";
    const DESCRIPTION: &'static str = "An event type (`job.succeeded`) or a family of types \
        (`job`: every `job.*`).";

    fn values() -> Vec<&'static str> {
        crate::domain::stream::topics()
    }
}
