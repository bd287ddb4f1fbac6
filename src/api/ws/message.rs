//! The small JSON messages of `/v1/ws`: what a client sends (`subscribe`, `unsubscribe`,
//! `ping`), read strictly so a typo is answered rather than ignored, and the server's own
//! replies (acks, `pong`, `error`). Events go out as the hub serialized them.

use serde_json::{Map, Value, json};
use uuid::Uuid;

use crate::work::WorkError;
use crate::work::stream::StreamQuery;

/// Largest client message read; a larger one is answered with an `error`.
pub const MAX_MESSAGE: usize = 64 * 1024;

/// What a client asks.
#[derive(Debug)]
pub enum ClientMessage {
    /// Add topics and resources; `since` resumes the stream when it is the first subscribe.
    Subscribe {
        /// What to add.
        query: StreamQuery,
        /// Resume after this event number.
        since: Option<i64>,
    },
    /// Remove topics and resources.
    Unsubscribe(StreamQuery),
    /// Answered with `pong`.
    Ping,
}

/// Why a message was not taken: sent back as an `error` message.
#[derive(Debug, PartialEq, Eq)]
pub struct BadMessage {
    /// What is wrong, for a person.
    pub detail: String,
    /// The member of the message at fault, when one is.
    pub field: Option<String>,
}

impl BadMessage {
    fn at(field: &str, detail: impl Into<String>) -> Self {
        Self {
            detail: detail.into(),
            field: Some(field.to_owned()),
        }
    }

    fn whole(detail: impl Into<String>) -> Self {
        Self {
            detail: detail.into(),
            field: None,
        }
    }

    /// A refusal of the use case: an unknown topic, `all` for a user, too many of either.
    pub fn from_work(error: WorkError) -> Self {
        match error {
            // The SSE query parameter is `topic`; the message's member is `topics`.
            WorkError::Invalid { field, detail } => Self {
                detail,
                field: field.map(|f| if f == "topic" { "topics" } else { f }.to_owned()),
            },
            WorkError::Forbidden(detail) => Self::at("all", detail),
            other => Self::whole(other.to_string()),
        }
    }

    /// The `error` message.
    pub fn to_json(&self) -> String {
        let mut reply = json!({"type": "error", "detail": self.detail});
        if let Some(field) = &self.field {
            reply["field"] = Value::from(field.as_str());
        }
        reply.to_string()
    }
}

/// The members a subscribe may carry (an unsubscribe the same but `since`).
const MEMBERS: &[&str] = &[
    "type",
    "topics",
    "jobs",
    "scrapes",
    "summaries",
    "crawls",
    "all",
    "since",
];

/// Read one text message.
pub fn parse(text: &str) -> Result<ClientMessage, BadMessage> {
    if text.len() > MAX_MESSAGE {
        return Err(BadMessage::whole(format!(
            "the message is {} bytes; the limit is {MAX_MESSAGE}",
            text.len()
        )));
    }
    let value: Value = serde_json::from_str(text).map_err(|e| {
        BadMessage::whole(format!(
            "not JSON ({e}); send an object like {{\"type\":\"subscribe\",\"topics\":[\"job\"]}}"
        ))
    })?;
    let Value::Object(message) = value else {
        return Err(BadMessage::whole(
            "a message is a JSON object with a `type`",
        ));
    };
    let kind = match message.get("type") {
        Some(Value::String(kind)) => kind.as_str(),
        _ => return Err(BadMessage::at("type", "`type` must be a string")),
    };
    let allowed = match kind {
        "ping" => &MEMBERS[..1],
        "subscribe" => MEMBERS,
        "unsubscribe" => &MEMBERS[..MEMBERS.len() - 1],
        other => {
            return Err(BadMessage::at(
                "type",
                format!("unknown message type {other:?}; send subscribe, unsubscribe or ping"),
            ));
        }
    };
    if let Some(extra) = message.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(BadMessage::at(
            extra,
            format!(
                "a {kind} message has no member {extra:?}; it takes {}",
                allowed[1..].join(", ")
            ),
        ));
    }
    Ok(match kind {
        "ping" => ClientMessage::Ping,
        "subscribe" => ClientMessage::Subscribe {
            query: query(&message)?,
            since: since(&message)?,
        },
        _ => ClientMessage::Unsubscribe(query(&message)?),
    })
}

fn query(message: &Map<String, Value>) -> Result<StreamQuery, BadMessage> {
    Ok(StreamQuery {
        topics: list(message, "topics", |v| v.as_str().map(str::to_owned))?,
        jobs: list(message, "jobs", uuid)?,
        scrapes: list(message, "scrapes", uuid)?,
        summaries: list(message, "summaries", uuid)?,
        crawls: list(message, "crawls", uuid)?,
        all: match message.get("all") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(all)) => *all,
            Some(_) => return Err(BadMessage::at("all", "`all` must be true or false")),
        },
    })
}

fn uuid(value: &Value) -> Option<Uuid> {
    value.as_str()?.parse().ok()
}

fn list<T>(
    message: &Map<String, Value>,
    name: &str,
    item: impl Fn(&Value) -> Option<T>,
) -> Result<Vec<T>, BadMessage> {
    let what = if name == "topics" { "strings" } else { "UUIDs" };
    match message.get(name) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| {
                item(v).ok_or_else(|| {
                    BadMessage::at(
                        name,
                        format!("`{name}` must be a list of {what}; {v} is not"),
                    )
                })
            })
            .collect(),
        Some(_) => Err(BadMessage::at(
            name,
            format!("`{name}` must be a list of {what}"),
        )),
    }
}

fn since(message: &Map<String, Value>) -> Result<Option<i64>, BadMessage> {
    match message.get("since") {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v.as_i64().filter(|n| *n >= 0).map(Some).ok_or_else(|| {
            BadMessage::at(
                "since",
                format!("{v} is not an event id (a whole number from 0)"),
            )
        }),
    }
}

/// The ack of a subscribe or unsubscribe (`subscribed`, `unsubscribed`) with what is selected
/// now; `filter` is `null` when nothing is.
pub fn ack(kind: &str, selected: Option<&StreamQuery>) -> String {
    let filter = selected.map(|q| {
        json!({
            "topics": q.topics,
            "jobs": q.jobs,
            "scrapes": q.scrapes,
            "summaries": q.summaries,
            "crawls": q.crawls,
            "all": q.all,
        })
    });
    json!({"type": kind, "filter": filter}).to_string()
}

/// The answer to `ping`.
pub fn pong() -> String {
    json!({"type": "pong"}).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(text: &str) -> Option<String> {
        parse(text).expect_err("refused").field
    }

    #[test]
    fn reads_subscribes_unsubscribes_and_pings() {
        let job = Uuid::new_v4();
        let text = format!(r#"{{"type":"subscribe","topics":["job"],"jobs":["{job}"],"since":7}}"#);
        let Ok(ClientMessage::Subscribe { query, since }) = parse(&text) else {
            panic!("a subscribe");
        };
        assert_eq!(
            (query.topics, query.jobs, since),
            (vec!["job".into()], vec![job], Some(7))
        );
        assert!(matches!(
            parse(r#"{"type":"unsubscribe","all":true}"#),
            Ok(ClientMessage::Unsubscribe(StreamQuery { all: true, .. }))
        ));
        assert!(matches!(
            parse(r#"{"type":"ping"}"#),
            Ok(ClientMessage::Ping)
        ));
    }

    #[test]
    fn names_what_is_wrong() {
        assert_eq!(field("not json"), None);
        assert_eq!(field("[1]"), None);
        assert_eq!(field(r#"{"type":"subscrib"}"#).as_deref(), Some("type"));
        assert_eq!(field(r#"{"topics":[]}"#).as_deref(), Some("type"));
        assert_eq!(
            field(r#"{"type":"subscribe","topic":["job"]}"#).as_deref(),
            Some("topic")
        );
        assert_eq!(
            field(r#"{"type":"subscribe","topics":"job"}"#).as_deref(),
            Some("topics")
        );
        assert_eq!(
            field(r#"{"type":"subscribe","jobs":["x"]}"#).as_deref(),
            Some("jobs")
        );
        assert_eq!(
            field(r#"{"type":"subscribe","since":-1}"#).as_deref(),
            Some("since")
        );
        assert_eq!(
            field(r#"{"type":"unsubscribe","since":1}"#).as_deref(),
            Some("since")
        );
        assert_eq!(
            field(r#"{"type":"subscribe","all":"yes"}"#).as_deref(),
            Some("all")
        );
        let huge = format!(r#"{{"type":"ping","pad":"{}"}}"#, "x".repeat(MAX_MESSAGE));
        assert!(
            parse(&huge)
                .expect_err("too large")
                .detail
                .contains("limit")
        );
    }
}
