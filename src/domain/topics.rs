//! The topics events are published on and channels subscribe to: one closed set, named here
//! once, stored and sent as their dotted names.

use std::fmt;
use std::str::FromStr;

/// A topic of events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Topic {
    /// A scrape finished (succeeded, failed or was cancelled).
    ScrapesFinished,
    /// A crawl finished (succeeded, failed or was cancelled).
    CrawlsFinished,
    /// A summary finished.
    SummariesFinished,
    /// A job of the user failed for good.
    JobsFailed,
    /// A run of the transactions injector ended.
    InjectorRuns,
    /// A test message sent to one channel by `POST /v1/channels/{id}/test`.
    ChannelTest,
}

impl Topic {
    /// Every topic, in the order the API lists them.
    pub const ALL: [Topic; 6] = [
        Topic::ScrapesFinished,
        Topic::CrawlsFinished,
        Topic::SummariesFinished,
        Topic::JobsFailed,
        Topic::InjectorRuns,
        Topic::ChannelTest,
    ];

    /// The stored and sent name, e.g. `scrapes.finished`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Topic::ScrapesFinished => "scrapes.finished",
            Topic::CrawlsFinished => "crawls.finished",
            Topic::SummariesFinished => "summaries.finished",
            Topic::JobsFailed => "jobs.failed",
            Topic::InjectorRuns => "injector.runs",
            Topic::ChannelTest => "channel.test",
        }
    }

    /// The names of every topic, for messages and the API's enum.
    pub fn names() -> Vec<&'static str> {
        Self::ALL.iter().map(|t| t.as_str()).collect()
    }
}

impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Topic {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| format!("unknown topic {s:?}; topics: {}", Self::names().join(", ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_topic_reads_back_from_its_name() {
        for topic in Topic::ALL {
            assert_eq!(topic.as_str().parse::<Topic>(), Ok(topic));
        }
        assert!("scrapes.started".parse::<Topic>().is_err());
    }
}
