//! Cron schedules as written in `jobs/*.toml`, checked, and their tick times. Tick times are
//! computed in the schedule's time zone with croner, so they stay right across daylight-saving
//! changes (02:30 on a spring-forward day does not exist and is skipped; on a fall-back day
//! the first 01:30 fires, once).

use chrono::{DateTime, SubsecRound, Utc};
use chrono_tz::Tz;
use croner::Cron;
use croner::parser::CronParser;
use serde::Deserialize;
use serde_json::Value;

/// One schedule file as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleFile {
    /// Unique name: letters, digits, `-` and `_`.
    pub name: String,
    /// Cron expression: 5 fields (`min hour dom mon dow`) or 6 with seconds first.
    pub cron: String,
    /// IANA time zone the expression is read in, e.g. `Europe/Berlin`.
    #[serde(default = "utc")]
    pub timezone: String,
    /// The job kind each tick enqueues.
    pub kind: String,
    /// The job's arguments.
    #[serde(default = "empty_table")]
    pub args: Value,
    /// `false` keeps the schedule listed but never fires it.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// What the schedule is for.
    #[serde(default)]
    pub description: String,
}

fn utc() -> String {
    "UTC".into()
}

fn empty_table() -> Value {
    Value::Object(Default::default())
}

fn yes() -> bool {
    true
}

/// A checked schedule.
#[derive(Debug, Clone)]
pub struct Schedule {
    /// Unique name.
    pub name: String,
    /// The expression as written.
    pub cron_expr: String,
    /// The parsed expression.
    pub cron: Cron,
    /// The time zone.
    pub timezone: Tz,
    /// The job kind.
    pub kind: String,
    /// The job's arguments.
    pub args: Value,
    /// Whether ticks fire.
    pub enabled: bool,
    /// What it is for.
    pub description: String,
}

impl Schedule {
    /// Check a schedule file: the name, the expression, the time zone. (The kind and its
    /// arguments are checked by the caller, which knows the kinds.)
    pub fn parse(file: ScheduleFile) -> Result<Self, String> {
        let name_ok = !file.name.is_empty()
            && file.name.len() <= 100
            && (file.name.chars()).all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !name_ok {
            return Err(format!(
                "`name` = {:?}: expected 1 to 100 letters, digits, `-` or `_`",
                file.name
            ));
        }
        let cron = CronParser::new().parse(&file.cron).map_err(|e| {
            format!(
                "`cron` = {:?}: {e}; expected 5 fields (minute hour day-of-month month \
                 day-of-week) or 6 with seconds first, e.g. \"0 3 * * *\"",
                file.cron
            )
        })?;
        let timezone: Tz = file.timezone.parse().map_err(|_| {
            format!(
                "`timezone` = {:?}: expected an IANA time zone like \"UTC\" or \"Europe/Berlin\"",
                file.timezone
            )
        })?;
        if !file.args.is_object() {
            return Err("`args` must be a table".into());
        }
        Ok(Self {
            name: file.name,
            cron_expr: file.cron,
            cron,
            timezone,
            kind: file.kind,
            args: file.args,
            enabled: file.enabled,
            description: file.description,
        })
    }

    /// The first tick strictly after `after`, in whole seconds: every daemon computes the same
    /// tick times whenever it starts.
    pub fn next_tick(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let after = after.trunc_subsecs(0).with_timezone(&self.timezone);
        (self.cron)
            .find_next_occurrence(&after, false)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule(cron: &str, timezone: &str) -> Result<Schedule, String> {
        Schedule::parse(ScheduleFile {
            name: "test".into(),
            cron: cron.into(),
            timezone: timezone.into(),
            kind: "echo".into(),
            args: empty_table(),
            enabled: true,
            description: String::new(),
        })
    }

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn five_and_six_field_expressions_give_minute_and_second_ticks() {
        let daily = schedule("0 3 * * *", "UTC").unwrap();
        assert_eq!(
            daily.next_tick(at("2026-11-22T03:00:00Z")),
            Some(at("2026-11-23T03:00:00Z"))
        );
        let every_5s = schedule("*/5 * * * * *", "UTC").unwrap();
        assert_eq!(
            every_5s.next_tick(at("2026-11-22T10:00:02.75Z")),
            Some(at("2026-11-22T10:00:05Z"))
        );
        let every_second = schedule("* * * * * *", "UTC").unwrap();
        assert_eq!(
            every_second.next_tick(at("2026-11-22T10:00:02.75Z")),
            Some(at("2026-11-22T10:00:03Z")),
            "whole seconds, whatever the start time"
        );
    }

    #[test]
    fn ticks_follow_the_time_zone_across_daylight_saving_changes() {
        let berlin = schedule("0 9 * * *", "Europe/Berlin").unwrap();
        // Summer time (UTC+2) ends on 2026-10-25: 09:00 local is 07:00 UTC before, 08:00 after.
        assert_eq!(
            berlin.next_tick(at("2026-10-24T00:00:00Z")),
            Some(at("2026-10-24T07:00:00Z"))
        );
        assert_eq!(
            berlin.next_tick(at("2026-10-25T00:00:00Z")),
            Some(at("2026-10-25T08:00:00Z"))
        );
    }

    #[test]
    fn bad_expressions_time_zones_and_names_are_explained() {
        assert!(
            schedule("61 * * * *", "UTC")
                .unwrap_err()
                .contains("`cron`")
        );
        assert!(
            schedule("0 3 * * *", "Mars/Olympus")
                .unwrap_err()
                .contains("`timezone`")
        );
        let bad_name = Schedule::parse(ScheduleFile {
            name: "no spaces".into(),
            ..ScheduleFile {
                name: String::new(),
                cron: "0 3 * * *".into(),
                timezone: utc(),
                kind: "echo".into(),
                args: empty_table(),
                enabled: true,
                description: String::new(),
            }
        });
        assert!(bad_name.unwrap_err().contains("`name`"));
    }
}
