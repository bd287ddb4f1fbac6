//! The injector's datasets: sample-transaction CSV files parsed once (again when the file
//! changes) into rows ready for `COPY ... FROM STDIN` in text format.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use super::COLUMNS;

/// One sample transaction: the values of [`COLUMNS`], `amount` checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample(pub [String; 11]);

/// Parse a dataset: a header naming at least [`COLUMNS`] (any order, extra columns ignored),
/// then one transaction per line. Errors name the line.
pub fn parse_dataset(text: &str) -> Result<Vec<Sample>, String> {
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let Some((_, header)) = lines.next() else {
        return Err("the file is empty".into());
    };
    let header = split_csv(header).map_err(|e| format!("line 1: {e}"))?;
    let mut positions = [0usize; 11];
    for (i, column) in COLUMNS.iter().enumerate() {
        positions[i] = (header.iter().position(|h| h.trim() == *column))
            .ok_or_else(|| format!("line 1: the header has no column `{column}`"))?;
    }
    let mut samples = Vec::new();
    for (n, line) in lines {
        let line_no = n + 1;
        let fields = split_csv(line).map_err(|e| format!("line {line_no}: {e}"))?;
        if fields.len() < header.len() {
            return Err(format!(
                "line {line_no}: {} fields, the header has {}",
                fields.len(),
                header.len()
            ));
        }
        let values: [String; 11] = std::array::from_fn(|i| fields[positions[i]].trim().to_string());
        let amount = &values[5];
        if amount.parse::<f64>().map_or(true, |a| !a.is_finite()) {
            return Err(format!("line {line_no}: amount {amount:?} is not a number"));
        }
        samples.push(Sample(values));
    }
    if samples.is_empty() {
        return Err("the file has a header but no rows".into());
    }
    Ok(samples)
}

/// The fields of one CSV line (RFC 4180 quoting; no line breaks inside fields).
fn split_csv(line: &str) -> Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut chars = line.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            (true, '"') => quoted = false,
            (false, '"') if field.is_empty() => quoted = true,
            (false, ',') => fields.push(std::mem::take(&mut field)),
            (_, c) => field.push(c),
        }
    }
    if quoted {
        return Err("a quoted field is not closed".into());
    }
    fields.push(field);
    Ok(fields)
}

/// A parsed dataset: each sample as the tail of a `COPY` text line (its [`COLUMNS`] values,
/// escaped, tab-separated, ending in a newline).
pub struct Dataset {
    /// One line tail per sample.
    pub rows: Vec<String>,
}

impl Dataset {
    fn new(samples: &[Sample]) -> Self {
        let rows = samples
            .iter()
            .map(|s| {
                let mut line = String::new();
                for (i, value) in s.0.iter().enumerate() {
                    if i > 0 {
                        line.push('\t');
                    }
                    copy_escape(&mut line, value);
                }
                line.push('\n');
                line
            })
            .collect();
        Self { rows }
    }
}

/// Append `value` to `out` escaped for `COPY`'s text format.
pub fn copy_escape(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
}

/// A file's modification time and size: when either changes, it is read again.
type Stamp = (Option<SystemTime>, u64);

/// Datasets read so far, by path, with the file's stamp when read.
#[derive(Default)]
pub struct Datasets {
    parsed: Mutex<HashMap<PathBuf, (Stamp, Arc<Dataset>)>>,
}

impl Datasets {
    /// The dataset at `path`, parsed now if the file is new or changed since.
    pub async fn load(&self, path: &Path) -> Result<Arc<Dataset>, String> {
        let meta = tokio::fs::metadata(path)
            .await
            .map_err(|e| format!("reading {}: {e}", path.display()))?;
        let stamp: Stamp = (meta.modified().ok(), meta.len());
        if let Ok(parsed) = self.parsed.lock()
            && let Some((read, dataset)) = parsed.get(path)
            && *read == stamp
            && stamp.0.is_some()
        {
            return Ok(dataset.clone());
        }
        let text = tokio::fs::read_to_string(path)
            .await
            .map_err(|e| format!("reading {}: {e}", path.display()))?;
        let samples = parse_dataset(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        let dataset = Arc::new(Dataset::new(&samples));
        if let Ok(mut parsed) = self.parsed.lock() {
            parsed.insert(path.to_path_buf(), (stamp, dataset.clone()));
        }
        Ok(dataset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "transaction_id,customer_id,customer_name,merchant,category,amount,\
                          currency,payment_method,country,card_last4,status";

    #[test]
    fn the_shipped_dataset_parses() {
        let text = include_str!("../../../jobs/data/transactions.csv");
        let samples = parse_dataset(text).unwrap();
        assert!(samples.len() >= 1000, "{}", samples.len());
    }

    #[test]
    fn quoted_fields_and_reordered_columns_parse() {
        let text = format!(
            "extra,{HEADER}\nx,t1,c1,\"Doe, Jane\",\"Bob \"\"s\"\"\",food,1.50,EUR,card,DE,1234,ok\n"
        );
        let samples = parse_dataset(&text).unwrap();
        assert_eq!(samples[0].0[2], "Doe, Jane");
        assert_eq!(samples[0].0[3], "Bob \"s\"");
        assert_eq!(samples[0].0[5], "1.50");
    }

    #[test]
    fn copy_lines_escape_what_the_text_format_reserves() {
        let sample = Sample(std::array::from_fn(|i| match i {
            2 => "tab\there\\back".to_string(),
            3 => "line\nbreak\r".to_string(),
            _ => format!("v{i}"),
        }));
        let row = &Dataset::new(&[sample]).rows[0];
        assert_eq!(
            row,
            "v0\tv1\ttab\\there\\\\back\tline\\nbreak\\r\tv4\tv5\tv6\tv7\tv8\tv9\tv10\n"
        );
    }

    #[test]
    fn errors_name_the_line() {
        let bad_amount = format!(
            "{HEADER}\nt,c,n,m,cat,1.00,EUR,card,DE,1,ok\nt,c,n,m,cat,ten,EUR,card,DE,1,ok\n"
        );
        assert_eq!(
            parse_dataset(&bad_amount).unwrap_err(),
            "line 3: amount \"ten\" is not a number"
        );
        let missing = "transaction_id,amount\nt,1\n";
        assert!(
            parse_dataset(missing)
                .unwrap_err()
                .contains("line 1: the header has no column `customer_id`")
        );
        let short = format!("{HEADER}\nt,c\n");
        assert!(parse_dataset(&short).unwrap_err().starts_with("line 2:"));
        assert!(parse_dataset("").is_err());
        assert!(parse_dataset(&format!("{HEADER}\n")).is_err());
    }
}
