//! Machine-readable figures for `bench/all.sh`: when `BENCH_FIGURES` names a file, each figure
//! a benchmark measures is appended to it as one tab-separated line, `name value unit
//! description`, which `bench/report.py` turns into the table of figures, targets and ratios.
//! Without the variable nothing is written; the Markdown tables on stdout stay as they are.

use std::io::Write;

/// Append the figure `name` (dotted, e.g. `jobs.drain`) with its `value` in `unit` and a
/// one-line `description` to the file named by `BENCH_FIGURES`, if set. A failure to write is
/// a warning on stderr, never an error: the benchmark's own output matters more.
pub fn figure(name: &str, value: f64, unit: &str, description: &str) {
    let Some(path) = std::env::var_os("BENCH_FIGURES").filter(|p| !p.is_empty()) else {
        return;
    };
    let line = format!(
        "{}\t{value}\t{}\t{}\n",
        clean(name),
        clean(unit),
        clean(description)
    );
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut file| file.write_all(line.as_bytes()));
    if let Err(err) = written {
        eprintln!(
            "warning: could not append figure {name} to {}: {err}",
            std::path::Path::new(&path).display()
        );
    }
}

/// Tabs and line breaks would split the line into the wrong fields.
fn clean(text: &str) -> String {
    text.replace(['\t', '\n', '\r'], " ")
}
