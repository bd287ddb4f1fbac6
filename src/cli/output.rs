//! How operator commands print: aligned tables with relative times for people, or with the
//! global `--json` flag stable JSON objects and arrays (times in RFC 3339) for scripts; and
//! the per-id report of commands that act on several ids.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::operator::Partial;

/// A table: a header row and rows of cells, printed with aligned columns.
#[derive(Debug, Default)]
pub struct Table {
    headers: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column headers.
    pub fn new(headers: &[&'static str]) -> Self {
        Self {
            headers: headers.to_vec(),
            rows: Vec::new(),
        }
    }

    /// Add a row (one cell per header).
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// The table as text: columns padded to their widest cell, two spaces apart.
    pub fn render(&self) -> String {
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate() {
                if let Some(w) = widths.get_mut(i) {
                    *w = (*w).max(cell.chars().count());
                }
            }
        }
        let mut out = String::new();
        let headers = self.headers.iter().map(|h| h.to_string()).collect();
        for row in std::iter::once(&headers).chain(&self.rows) {
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate() {
                let width = widths.get(i).copied().unwrap_or(0);
                let _ = write!(line, "{cell:width$}  ");
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }

    /// Print the table, or a line saying there is nothing when it has no rows.
    pub fn print(&self, nothing: &str) {
        if self.rows.is_empty() {
            println!("{nothing}");
        } else {
            print!("{}", self.render());
        }
    }
}

/// Print `value` as pretty JSON.
pub fn print_json(value: &impl Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// `t` relative to `now` for people: `12s ago`, `in 3m`, `2h ago`, `4d ago`.
pub fn ago(t: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let secs = (now - t).num_seconds();
    let span = secs.unsigned_abs();
    let amount = match span {
        0..60 => format!("{span}s"),
        60..3600 => format!("{}m", span / 60),
        3600..86400 => format!("{}h", span / 3600),
        _ => format!("{}d", span / 86400),
    };
    if secs >= 0 {
        format!("{amount} ago")
    } else {
        format!("in {amount}")
    }
}

/// [`ago`] of an optional time, `-` when absent.
pub fn ago_or_dash(t: Option<DateTime<Utc>>, now: DateTime<Utc>) -> String {
    t.map_or_else(|| "-".into(), |t| ago(t, now))
}

/// What happened to one id of a command acting on several.
#[derive(Debug, Serialize)]
pub struct Outcome {
    /// The id.
    pub id: Uuid,
    /// Whether the act was done.
    pub ok: bool,
    /// The object's state afterwards, when it was done.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// Why not, when it was not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Outcome {
    /// Done; the object is now in `state`.
    pub fn done(id: Uuid, state: impl Into<String>) -> Self {
        Self {
            id,
            ok: true,
            state: Some(state.into()),
            error: None,
        }
    }

    /// Not done, because of `error`.
    pub fn failed(id: Uuid, error: impl std::fmt::Display) -> Self {
        Self {
            id,
            ok: false,
            state: None,
            error: Some(error.to_string()),
        }
    }
}

/// Print the outcomes (`<what> <id>: <verb> (<state>)` lines, failures on stderr; or a JSON
/// array) and fail with [`Partial`] when any id failed.
pub fn report(outcomes: &[Outcome], what: &str, verb: &str, json: bool) -> anyhow::Result<()> {
    if json {
        print_json(&outcomes)?;
    } else if outcomes.is_empty() {
        println!("no {what} matched");
    } else {
        for o in outcomes {
            match (&o.state, &o.error) {
                // The use cases' messages mostly name the id already.
                (_, Some(error)) if error.contains(&o.id.to_string()) => eprintln!("{error}"),
                (_, Some(error)) => eprintln!("{what} {}: {error}", o.id),
                (Some(state), None) if state != verb => {
                    println!("{what} {}: {verb} ({state})", o.id)
                }
                _ => println!("{what} {}: {verb}", o.id),
            }
        }
    }
    let failed = outcomes.iter().filter(|o| !o.ok).count();
    match failed {
        0 => Ok(()),
        failed => Err(Partial {
            failed,
            total: outcomes.len(),
            what: what.to_string(),
        }
        .into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_pads_columns_to_the_widest_cell() {
        let mut t = Table::new(&["ID", "STATE"]);
        t.row(vec!["1".into(), "pending".into()]);
        t.row(vec!["22222".into(), "dead".into()]);
        assert_eq!(t.render(), "ID     STATE\n1      pending\n22222  dead\n");
    }

    #[test]
    fn ago_says_past_and_future_in_the_largest_unit() {
        let now = Utc::now();
        assert_eq!(ago(now - chrono::Duration::seconds(5), now), "5s ago");
        assert_eq!(ago(now - chrono::Duration::minutes(3), now), "3m ago");
        assert_eq!(ago(now + chrono::Duration::hours(2), now), "in 2h");
        assert_eq!(ago(now - chrono::Duration::days(4), now), "4d ago");
    }
}
