//! Logging: human-readable by default, JSON with `LOG_FORMAT=json`, filtered by `RUST_LOG`.
//!
//! Values from outside (ids, reasons, names) are logged as fields with `?`, which quotes and
//! escapes them. The text format also escapes control characters in every field and message,
//! so that no value that slipped through as Display can start a forged line of its own.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::field::MakeExt;
use tracing_subscriber::fmt::format::{Writer, debug_fn};

use crate::settings::LogFormat;

pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new("info,sqlx=warn,apalis=warn,apalis_core=warn,salvo_core=warn")
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour codes only for a person at a terminal: in files, journald or a container's
        // log they are noise that breaks grep and log parsers.
        .with_ansi(std::io::stderr().is_terminal());
    match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .init(),
        LogFormat::Text => builder
            .fmt_fields(debug_fn(escaped_field).delimited(" "))
            .init(),
    }
}

/// `name=value` (the message bare), as the default text format writes it, with control
/// characters escaped.
fn escaped_field(
    w: &mut Writer<'_>,
    field: &tracing::field::Field,
    value: &dyn std::fmt::Debug,
) -> std::fmt::Result {
    if field.name() != "message" {
        write!(w, "{field}=")?;
    }
    for c in format!("{value:?}").chars() {
        if c.is_control() {
            write!(w, "{}", c.escape_debug())?;
        } else {
            w.write_char(c)?;
        }
    }
    Ok(())
}
