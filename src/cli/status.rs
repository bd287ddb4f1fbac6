//! `workhorse status`: the installation at a glance, from `work::overview`: queue depth and
//! oldest waiting job per kind, running jobs, live daemon instances (from their leases), the
//! schedules' next ticks, dead deliveries.

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::operator::{Operator, refused};
use super::output::{Table, ago, ago_or_dash, print_json};
use crate::work;

#[derive(Debug, Serialize)]
struct StatusView {
    at: DateTime<Utc>,
    queues: Vec<QueueView>,
    running: i64,
    instances: Vec<InstanceView>,
    schedules: Vec<ScheduleView>,
    dead_deliveries: i64,
}

#[derive(Debug, Serialize)]
struct QueueView {
    kind: String,
    waiting: i64,
    later: i64,
    running: i64,
    oldest_due: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize)]
struct InstanceView {
    instance: Uuid,
    running: i64,
    lease_until: DateTime<Utc>,
}

#[derive(Debug, Serialize)]
struct ScheduleView {
    name: String,
    kind: String,
    enabled: bool,
    next_run_at: Option<DateTime<Utc>>,
    last_run_at: Option<DateTime<Utc>>,
}

/// Run `workhorse status`.
pub async fn run(op: &Operator) -> anyhow::Result<()> {
    let schedules = op.schedules()?;
    let mut conn = op.pool().acquire().await?;
    let o = work::overview::status(&mut conn, &op.caller, &schedules)
        .await
        .map_err(refused)?;
    let view = StatusView {
        at: o.at,
        running: o.queues.iter().map(|q| q.running).sum(),
        queues: (o.queues.into_iter())
            .map(|q| QueueView {
                kind: q.kind,
                waiting: q.waiting,
                later: q.later,
                running: q.running,
                oldest_due: q.oldest_due,
            })
            .collect(),
        instances: (o.instances.into_iter())
            .map(|i| InstanceView {
                instance: i.instance,
                running: i.running,
                lease_until: i.lease_until,
            })
            .collect(),
        schedules: (o.schedules.into_iter())
            .map(|s| ScheduleView {
                name: s.schedule.name,
                kind: s.schedule.kind,
                enabled: s.schedule.enabled,
                next_run_at: s.next_run_at,
                last_run_at: s.last_run.map(|r| r.fired_at),
            })
            .collect(),
        dead_deliveries: o.dead_deliveries,
    };
    if op.json {
        return print_json(&view);
    }
    print_tables(&view);
    Ok(())
}

fn print_tables(v: &StatusView) {
    let now = v.at;
    println!("Queues ({} running)", v.running);
    let mut queues = Table::new(&["KIND", "WAITING", "LATER", "RUNNING", "OLDEST WAITING"]);
    for q in &v.queues {
        queues.row(vec![
            q.kind.clone(),
            q.waiting.to_string(),
            q.later.to_string(),
            q.running.to_string(),
            ago_or_dash(q.oldest_due, now),
        ]);
    }
    queues.print("no live jobs");
    println!("\nDaemon instances holding leases");
    let mut instances = Table::new(&["INSTANCE", "RUNNING", "LEASE UNTIL"]);
    for i in &v.instances {
        instances.row(vec![
            i.instance.to_string(),
            i.running.to_string(),
            ago(i.lease_until, now),
        ]);
    }
    instances.print("none (a daemon holds leases only while it runs jobs)");
    println!("\nSchedules");
    let mut schedules = Table::new(&["NAME", "KIND", "NEXT TICK", "LAST RUN"]);
    for s in &v.schedules {
        let next = match s.enabled {
            true => ago_or_dash(s.next_run_at, now),
            false => "disabled".into(),
        };
        schedules.row(vec![
            s.name.clone(),
            s.kind.clone(),
            next,
            ago_or_dash(s.last_run_at, now),
        ]);
    }
    schedules.print("no schedules");
    println!("\nDead deliveries: {}", v.dead_deliveries);
}
