//! The `journal` log format: the human line without timestamp or colour, each line prefixed
//! with its sd-daemon syslog priority (`<3>` error … `<7>` debug), as journald reads stderr.

use std::fmt;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::{DefaultFields, Format, Full, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, MakeWriter};
use tracing_subscriber::registry::LookupSpan;

/// The sd-daemon priority prefix of a level (sd-daemon(3): `<3>` SD_ERR … `<7>` SD_DEBUG).
pub fn priority(level: Level) -> &'static str {
    match level {
        Level::ERROR => "<3>",
        Level::WARN => "<4>",
        Level::INFO => "<6>",
        Level::DEBUG | Level::TRACE => "<7>",
    }
}

/// The `journal` format's layer writing to `writer`. ANSI is off in the layer too, because span
/// fields are formatted (and coloured) by the layer, once, when the span is created.
pub fn layer<S, W>(writer: W) -> tracing_subscriber::fmt::Layer<S, DefaultFields, JournalFormat, W>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + 'static,
{
    tracing_subscriber::fmt::layer()
        .event_format(JournalFormat::default())
        .with_ansi(false)
        .with_writer(writer)
}

/// Formats an event like the `pretty` format minus the timestamp (the journal stamps each
/// line) and ANSI colours, and prefixes every line of it, also the lines of a multi-line
/// message, with the event's priority: journald reads the prefix per line.
pub struct JournalFormat {
    inner: Format<Full, ()>,
}

impl Default for JournalFormat {
    fn default() -> Self {
        Self {
            inner: Format::default()
                .without_time()
                .with_ansi(false)
                .with_target(true),
        }
    }
}

impl<S, N> FormatEvent<S, N> for JournalFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut text = String::new();
        self.inner
            .format_event(ctx, Writer::new(&mut text), event)?;
        let prefix = priority(*event.metadata().level());
        // The level is padded to five characters (` INFO`); after the prefix it reads better
        // without the pad.
        for line in text.trim_start().trim_end_matches('\n').split('\n') {
            let line = line.strip_suffix('\r').unwrap_or(line);
            writer.write_str(prefix)?;
            writer.write_str(line)?;
            writer.write_char('\n')?;
        }
        Ok(())
    }
}

/// Whether systemd connected this process's stderr to the journal: `JOURNAL_STREAM` holds
/// `<device>:<inode>` of the stream it set up (systemd.exec(5)), and it counts only if stderr
/// is still that stream (a redirected or inherited variable names another file).
pub fn stderr_is_journal(journal_stream: Option<&str>) -> bool {
    let Some((dev, ino)) = journal_stream.and_then(|v| v.trim().split_once(':')) else {
        return false;
    };
    let (Ok(dev), Ok(ino)) = (dev.parse::<u64>(), ino.parse::<u64>()) else {
        return false;
    };
    match nix::sys::stat::fstat(std::io::stderr()) {
        Ok(stat) => stat.st_dev == dev && stat.st_ino == ino,
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tracing_subscriber::layer::SubscriberExt;

    use super::*;

    /// Collects what the formatter writes.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("the buffer").extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Captured {
        type Writer = Captured;
        fn make_writer(&'a self) -> Self::Writer {
            self.clone()
        }
    }

    /// The lines `emit` logs through the journal format, at every level.
    fn journal_lines(emit: impl FnOnce()) -> Vec<String> {
        let out = Captured::default();
        let subscriber = tracing_subscriber::registry().with(layer(out.clone()));
        tracing::subscriber::with_default(subscriber, emit);
        let bytes = out.0.lock().expect("the buffer").clone();
        String::from_utf8(bytes)
            .expect("utf-8 output")
            .lines()
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn each_level_gets_its_syslog_priority_prefix() {
        // Act
        let lines = journal_lines(|| {
            tracing::error!("e");
            tracing::warn!("w");
            tracing::info!("i");
            tracing::debug!("d");
            tracing::trace!("t");
        });

        // Assert
        let prefixes: Vec<&str> = lines.iter().map(|l| &l[..3]).collect();
        assert_eq!(prefixes, ["<3>", "<4>", "<6>", "<7>", "<7>"], "{lines:#?}");
    }

    #[test]
    fn every_line_of_a_multi_line_message_carries_the_prefix() {
        // Act
        let lines = journal_lines(|| tracing::warn!("first\nsecond\n\nfourth"));

        // Assert
        assert_eq!(lines.len(), 4, "{lines:#?}");
        assert!(lines.iter().all(|l| l.starts_with("<4>")), "{lines:#?}");
        assert!(lines[0].contains("first"), "{lines:#?}");
        assert_eq!(lines[1], "<4>second");
        assert_eq!(lines[3], "<4>fourth");
    }

    #[test]
    fn lines_have_level_target_and_fields_but_no_timestamp_or_ansi() {
        // Act
        let lines = journal_lines(|| {
            let span = tracing::info_span!("request", request_id = "r1");
            let _entered = span.enter();
            tracing::error!(job.id = 7, "job failed");
            tracing::info!("padded level");
        });

        // Assert
        assert!(lines[1].starts_with("<6>INFO "), "{lines:#?}");
        let line = &lines[0];
        assert!(!line.contains('\u{1b}'), "ANSI escape in {line:?}");
        let expected = "<3>ERROR request{request_id=\"r1\"}: workhorse::telemetry::journal::tests: \
                        job failed job.id=7";
        assert_eq!(line, expected);
    }

    #[test]
    fn journal_stream_counts_only_when_it_names_stderr() {
        // Arrange
        let stat = nix::sys::stat::fstat(std::io::stderr()).expect("fstat of stderr");
        let stderr = format!("{}:{}", stat.st_dev, stat.st_ino);
        let other = format!("{}:{}", stat.st_dev, stat.st_ino + 1);

        // Act + Assert
        assert!(stderr_is_journal(Some(&stderr)));
        assert!(!stderr_is_journal(Some(&other)));
        assert!(!stderr_is_journal(Some("not-a-stream")));
        assert!(!stderr_is_journal(None));
    }
}
