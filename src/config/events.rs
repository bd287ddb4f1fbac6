//! `[events]`: the live event stream (SSE at `/v1/events`, WebSocket at `/v1/ws`).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::ConfigError;

/// The live event stream.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct EventsConfig {
    /// How long numbered events are kept for clients that reconnect with `Last-Event-ID`;
    /// older ones get a `reset` event.
    #[serde(with = "humantime_serde")]
    pub retention: Duration,
    /// How often an idle SSE stream sends a comment line, and a WebSocket a Ping, so proxies
    /// keep them open; a WebSocket that sends nothing for twice this is closed.
    #[serde(with = "humantime_serde")]
    pub keep_alive: Duration,
    /// The reconnection delay sent to EventSource clients (`retry:`).
    #[serde(with = "humantime_serde")]
    pub reconnect: Duration,
    /// Events waiting for one client before the stream stops taking more.
    pub client_buffer: usize,
    /// A client whose buffer stays full this long, or a WebSocket that does not take a message
    /// this long, is dropped (`close`, reason `slow_consumer`).
    #[serde(with = "humantime_serde")]
    pub slow_after: Duration,
    /// How often the sequencer looks for committed changes to number.
    #[serde(with = "humantime_serde")]
    pub sequence_every: Duration,
    /// How long a stream ticket (`POST /v1/events/tickets`) opens streams.
    #[serde(with = "humantime_serde")]
    pub ticket_lifetime: Duration,
}

impl Default for EventsConfig {
    fn default() -> Self {
        Self {
            retention: Duration::from_secs(15 * 60),
            keep_alive: Duration::from_secs(15),
            reconnect: Duration::from_secs(2),
            client_buffer: 256,
            slow_after: Duration::from_secs(10),
            sequence_every: Duration::from_millis(5),
            ticket_lifetime: Duration::from_secs(5 * 60),
        }
    }
}

impl EventsConfig {
    pub(super) fn validate(&self, bad: &dyn Fn(&str) -> ConfigError) -> Result<(), ConfigError> {
        if self.client_buffer == 0 || self.client_buffer > 65_536 {
            return Err(bad("events.client_buffer"));
        }
        if self.sequence_every.is_zero() || self.sequence_every > Duration::from_secs(1) {
            return Err(bad("events.sequence_every"));
        }
        for (key, value) in [
            ("events.keep_alive", self.keep_alive),
            ("events.slow_after", self.slow_after),
            ("events.ticket_lifetime", self.ticket_lifetime),
            ("events.retention", self.retention),
        ] {
            if value.is_zero() {
                return Err(bad(key));
            }
        }
        Ok(())
    }
}

pub(super) fn expectation(key: &str) -> Option<&'static str> {
    Some(match key {
        "events.client_buffer" => "a number of events from 1 to 65536",
        "events.sequence_every" => "a duration from 1ms to 1s, like 5ms",
        "events.retention"
        | "events.keep_alive"
        | "events.reconnect"
        | "events.slow_after"
        | "events.ticket_lifetime" => "a duration like 15s or 15m (not 0)",
        _ => return None,
    })
}
