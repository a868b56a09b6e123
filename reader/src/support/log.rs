//! The reader's one logging path. Every message of the pipeline (a ring
//! attached or refused, an exporter error, a dead server thread) is a
//! `tracing` event of the `profilis_reader` target; what the user sees is
//! decided here: such events at info level and above are printed as they
//! always were, one `profilis-reader: <message>` line on stderr, and
//! everything else (debug logging with `PROFILIS_DEBUG=1`, other crates'
//! warnings) in `tracing`'s full format. `RUST_LOG` filters them all. The
//! command's own output (the dashboard URL, the demo's banner, the final
//! error) is printed by `app` directly.

use std::fmt;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::{Format, Full, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// The target of the reader's events (its crate name).
const TARGET: &str = "profilis_reader";

/// Formats the reader's info, warning and error events as user lines and
/// every other event in the full format.
#[derive(Default)]
pub struct Lines {
    full: Format<Full>,
}

/// The `message` of an event.
#[derive(Default)]
struct Message(String);

impl Visit for Message {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0.push_str(value);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            use std::fmt::Write;
            let _ = write!(self.0, "{value:?}");
        }
    }
}

impl<S, N> FormatEvent<S, N> for Lines
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
        let meta = event.metadata();
        let reader = meta.target() == TARGET || meta.target().starts_with("profilis_reader::");
        if reader && *meta.level() <= Level::INFO {
            let mut message = Message::default();
            event.record(&mut message);
            return writeln!(writer, "profilis-reader: {}", message.0);
        }
        self.full.format_event(ctx, writer, event)
    }
}
