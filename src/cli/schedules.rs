//! `workhorse schedules`: the cron schedules of `jobs/*.toml` with their last and next run,
//! and triggering one now, through `work::schedules`.

use chrono::{DateTime, Utc};
use clap::Subcommand;
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use super::operator::{Operator, refused};
use super::output::{Table, ago_or_dash, print_json};
use crate::work;

/// Schedules.
#[derive(Debug, Subcommand)]
pub enum SchedulesCommand {
    /// List the schedules with their last and next run, by name.
    List,
    /// Run a schedule's job now, outside its ticks (disabled schedules too).
    Trigger {
        /// The schedule's name.
        name: String,
        /// Arguments replacing the schedule's for this run, key by key: a JSON object, e.g.
        /// '{"rows": 5000}'.
        #[arg(long, value_name = "JSON", value_parser = parse_object)]
        args: Option<Value>,
    },
}

fn parse_object(text: &str) -> Result<Value, String> {
    match serde_json::from_str(text) {
        Ok(v @ Value::Object(_)) => Ok(v),
        Ok(_) => Err("expected a JSON object, e.g. '{\"rows\": 5000}'".into()),
        Err(e) => Err(format!("not JSON: {e}")),
    }
}

#[derive(Debug, Serialize)]
struct ScheduleView {
    name: String,
    cron: String,
    timezone: String,
    kind: String,
    args: Value,
    enabled: bool,
    description: String,
    next_run_at: Option<DateTime<Utc>>,
    last_run: Option<LastRunView>,
}

#[derive(Debug, Serialize)]
struct LastRunView {
    tick: DateTime<Utc>,
    fired_at: DateTime<Utc>,
    manual: bool,
    job_id: Option<Uuid>,
    job_state: Option<&'static str>,
}

#[derive(Debug, Serialize)]
struct Triggered {
    schedule: String,
    job_id: Uuid,
}

/// Run a `schedules` command.
pub async fn run(op: &Operator, command: SchedulesCommand) -> anyhow::Result<()> {
    let schedules = op.schedules()?;
    match command {
        SchedulesCommand::List => {
            let list = work::schedules::list(op.pool(), &schedules)
                .await
                .map_err(refused)?;
            let views: Vec<ScheduleView> = (list.into_iter())
                .map(|st| ScheduleView {
                    name: st.schedule.name,
                    cron: st.schedule.cron_expr,
                    timezone: st.schedule.timezone.name().to_string(),
                    kind: st.schedule.kind,
                    args: st.schedule.args,
                    enabled: st.schedule.enabled,
                    description: st.schedule.description,
                    next_run_at: st.next_run_at,
                    last_run: st.last_run.map(|r| LastRunView {
                        tick: r.tick,
                        fired_at: r.fired_at,
                        manual: r.manual,
                        job_id: r.job_id,
                        job_state: r.job_state,
                    }),
                })
                .collect();
            if op.json {
                return print_json(&views);
            }
            let now = Utc::now();
            let mut table = Table::new(&["NAME", "CRON", "TIMEZONE", "KIND", "NEXT", "LAST RUN"]);
            for v in views {
                let next = match v.enabled {
                    true => ago_or_dash(v.next_run_at, now),
                    false => "disabled".into(),
                };
                let last = match &v.last_run {
                    None => "-".into(),
                    Some(r) => format!(
                        "{}{} ({})",
                        ago_or_dash(Some(r.fired_at), now),
                        if r.manual { ", manual" } else { "" },
                        r.job_state.unwrap_or("pruned")
                    ),
                };
                table.row(vec![v.name, v.cron, v.timezone, v.kind, next, last]);
            }
            table.print("no schedules");
            Ok(())
        }
        SchedulesCommand::Trigger { name, args } => {
            let job_id = work::schedules::trigger(&op.work, &op.caller, &schedules, &name, args)
                .await
                .map_err(refused)?;
            if op.json {
                return print_json(&Triggered {
                    schedule: name,
                    job_id,
                });
            }
            println!("schedule {name}: enqueued job {job_id}");
            Ok(())
        }
    }
}
