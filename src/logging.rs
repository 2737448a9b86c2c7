//! Where log lines and last words go: a stderr writer for `tracing` that never fails, and a
//! way to print a final message without risking a panic. Used from every thread (shards, the
//! main thread, the metrics exporter).
//!
//! Why: `eprintln!` and tracing-subscriber's own error report both panic when stderr cannot be
//! written (a closed pipe gives EPIPE, `2>/dev/full` gives ENOSPC). A panic inside a log call
//! on a shard killed that shard's executor while the process stayed up, half-alive. A log line
//! that cannot be written is lost; the broker keeps serving.

use std::io::Write;

/// A `tracing_subscriber` writer on stderr that reports every write as done, whatever the
/// outcome, so a failing stderr drops lines instead of failing the caller.
#[derive(Debug, Default, Clone, Copy)]
pub struct LossyStderr;

impl Write for LossyStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        // A short write still counts as progress for write_all; any error drops the rest.
        Ok(std::io::stderr().write(buf).unwrap_or(buf.len()))
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let _ = std::io::stderr().flush();
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LossyStderr {
    type Writer = LossyStderr;

    fn make_writer(&'a self) -> Self::Writer {
        LossyStderr
    }
}

/// Installs the global `tracing` subscriber: level from `RUST_LOG` or `level`, lines to
/// stderr through [`LossyStderr`], and no internal error reports (those use `eprintln!`).
pub fn init(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(LossyStderr)
        .log_internal_errors(false)
        .init();
}

/// Writes one line to stderr, ignoring failure: for messages printed on the way out (a fatal
/// error, a configuration error), where a panic would hide the real exit status.
pub fn last_words(line: &str) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{line}");
    let _ = err.flush();
}

/// Like [`last_words`] for stdout (e.g. `--print-config` into a closed pipe).
pub fn print_line(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
}
