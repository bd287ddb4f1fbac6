//! Cron schedules as written in `jobs/*.toml`, checked, and their tick times. Tick times are
//! computed in the schedule's time zone with croner, so they stay right across daylight-saving
//! changes (02:30 on a spring-forward day does not exist and fires at 03:00; on a fall-back day
//! the first 01:30 fires, once).

use chrono::{DateTime, SubsecRound, TimeDelta, Utc};
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
    /// After a start, fire the latest tick missed while no daemon ran (once, not every missed
    /// tick).
    #[serde(default)]
    pub catch_up: bool,
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
    /// After a start, fire the latest tick missed while no daemon ran (once, not every missed
    /// tick).
    pub catch_up: bool,
}

/// How far `latest_tick_between` steps back past occurrences that are not ticks; a
/// daylight-saving change needs one or two steps.
const MAX_STEPS_BACK: usize = 8;

/// How many ticks `latest_tick_between` walks forward to reach the latest; more than the
/// every-second ticks in a repeated daylight-saving hour.
const MAX_STEPS_FORWARD: usize = 10_000;

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
            catch_up: file.catch_up,
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

    /// The latest tick in `(last, now]`, if any: the one tick a catch-up fires. The work does
    /// not grow with the gap, so an every-second schedule stopped for months is cheap.
    pub fn latest_tick_between(
        &self,
        last: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        let now = now.trunc_subsecs(0);
        // croner's backward search jumps to a recent occurrence in one step. Around
        // daylight-saving changes it can disagree with the forward search the timers use (a
        // time in the spring-forward gap comes out just before the gap instead of after it), so
        // the tick itself is found by walking forward with `next_tick` from just before it.
        let mut before = now;
        let mut start = None;
        for _ in 0..MAX_STEPS_BACK {
            let local = before.with_timezone(&self.timezone);
            let previous = (self.cron)
                .find_previous_occurrence(&local, true)
                .ok()?
                .with_timezone(&Utc);
            if previous <= last {
                start = Some(last);
                break;
            }
            let from = previous - TimeDelta::seconds(1);
            if self.next_tick(from).is_some_and(|tick| tick <= now) {
                start = Some(from);
                break;
            }
            before = from;
        }
        let mut latest = None;
        let mut after = start?;
        for _ in 0..MAX_STEPS_FORWARD {
            match self.next_tick(after) {
                Some(tick) if tick <= now => {
                    latest = Some(tick);
                    after = tick;
                }
                _ => break,
            }
        }
        latest.filter(|tick| *tick > last)
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
            catch_up: false,
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
    fn the_latest_tick_between_last_and_now_is_the_one_to_catch_up() {
        let every_minute = schedule("* * * * *", "UTC").unwrap();
        let last = at("2026-11-22T10:00:00Z");
        assert_eq!(
            every_minute.latest_tick_between(last, at("2026-11-22T10:05:30.5Z")),
            Some(at("2026-11-22T10:05:00Z"))
        );
        assert_eq!(
            every_minute.latest_tick_between(last, at("2026-11-22T10:05:00Z")),
            Some(at("2026-11-22T10:05:00Z")),
            "a tick at now counts"
        );
        let daily = schedule("0 3 * * *", "UTC").unwrap();
        assert_eq!(
            daily.latest_tick_between(at("2026-11-20T03:00:00Z"), at("2026-11-22T02:59:59Z")),
            Some(at("2026-11-21T03:00:00Z"))
        );
    }

    #[test]
    fn nothing_is_caught_up_when_no_tick_passed_since_the_last() {
        let every_minute = schedule("* * * * *", "UTC").unwrap();
        let last = at("2026-11-22T10:05:00Z");
        assert_eq!(every_minute.latest_tick_between(last, last), None);
        assert_eq!(
            every_minute.latest_tick_between(last, at("2026-11-22T10:05:59.9Z")),
            None
        );
        assert_eq!(
            every_minute.latest_tick_between(last, at("2026-11-22T10:00:00Z")),
            None,
            "a last tick after now (another daemon's clock runs ahead)"
        );
    }

    #[test]
    fn an_every_second_schedule_stopped_for_months_catches_up_only_its_latest_tick() {
        let every_second = schedule("* * * * * *", "UTC").unwrap();
        // Walking forward from the last tick would stop at its bound long before November.
        assert_eq!(
            every_second
                .latest_tick_between(at("2026-01-01T00:00:00Z"), at("2026-11-22T10:05:30.25Z")),
            Some(at("2026-11-22T10:05:30Z"))
        );
    }

    #[test]
    fn the_caught_up_tick_is_one_the_timers_would_have_fired_across_daylight_saving() {
        let spring = schedule("30 2 * * *", "Europe/Berlin").unwrap();
        let on_time = spring.next_tick(at("2026-03-28T12:00:00Z")).unwrap();
        assert_eq!(
            spring.latest_tick_between(at("2026-03-27T00:00:00Z"), on_time),
            Some(on_time)
        );
        // 02:30 does not exist on 2026-03-29 and fires at 03:00 CEST; croner's backward search
        // puts it at 01:59:59 CET, which is not a tick.
        assert_eq!(
            spring.latest_tick_between(at("2026-03-27T00:00:00Z"), at("2026-03-29T00:59:59Z")),
            Some(at("2026-03-28T01:30:00Z"))
        );
        let fall = schedule("*/20 * * * *", "Europe/Berlin").unwrap();
        let mut tick = at("2026-10-24T22:30:00Z");
        let mut ticks = Vec::new();
        while tick < at("2026-10-25T03:00:00Z") {
            tick = fall.next_tick(tick).unwrap();
            ticks.push(tick);
        }
        for now in [
            at("2026-10-25T00:10:00Z"),
            at("2026-10-25T00:50:00Z"),
            at("2026-10-25T01:05:00Z"),
        ] {
            let expected = ticks.iter().copied().filter(|t| *t <= now).max();
            assert_eq!(
                fall.latest_tick_between(at("2026-10-24T00:00:00Z"), now),
                expected,
                "now = {now}; ticks = {ticks:?}"
            );
        }
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
                catch_up: false,
            }
        });
        assert!(bad_name.unwrap_err().contains("`name`"));
    }
}
