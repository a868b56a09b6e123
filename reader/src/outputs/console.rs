//! Console exporter: events as text on stdout, coloured by kind when stdout
//! is a terminal (and `NO_COLOR` is unset), plain otherwise.
//!
//! `compact`: one short line per event.
//! `pretty`: aligned columns, trace ids, and the exception on its own line.
//!
//! LOSS markers (see [`crate::ingest::loss`]) print as one red `LOSS` line each,
//! before the events of the batch they were found in.

use super::{Exported, Exporter, LossBatch};
use crate::ingest::loss::LossMarker;
use crate::ingest::Batch;
use crate::ingest::RingContext;
use crate::support::report::ErrorReporter;
use crate::support::timefmt;
use crate::views::ExporterStatus;
use profilis::{Event, Kind, Method, StrId};
use std::io::{IsTerminal, Write};

/// Console layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ConsoleStyle {
    /// Aligned columns with trace ids and exception lines.
    Pretty,
    /// One short line per event.
    Compact,
}

/// Prints events to a writer (stdout in the binary).
pub struct ConsoleExporter<W: Write + Send> {
    out: W,
    style: ConsoleStyle,
    color: bool,
    buf: Vec<u8>,
    reporter: ErrorReporter,
    status: ExporterStatus,
}

impl ConsoleExporter<std::io::Stdout> {
    /// Prints to stdout, in colour if it is a terminal and `NO_COLOR` is
    /// not set.
    pub fn stdout(style: ConsoleStyle) -> Self {
        let color = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
        ConsoleExporter::new(std::io::stdout(), style, color)
    }
}

impl<W: Write + Send> ConsoleExporter<W> {
    /// Prints to `out`.
    pub fn new(out: W, style: ConsoleStyle, color: bool) -> Self {
        ConsoleExporter {
            out,
            style,
            color,
            buf: Vec::with_capacity(1 << 16),
            reporter: ErrorReporter::new("console exporter"),
            status: ExporterStatus {
                name: "console",
                ..ExporterStatus::default()
            },
        }
    }

    fn paint(&mut self, code: &str, text: &str) {
        if self.color {
            let _ = write!(self.buf, "\x1b[{code}m{text}\x1b[0m");
        } else {
            self.buf.extend_from_slice(text.as_bytes());
        }
    }
}

fn kind_color(kind: Kind) -> &'static str {
    match kind {
        Kind::Req => "32",    // green
        Kind::Fn => "36",     // cyan
        Kind::Db => "35",     // magenta
        Kind::Custom => "34", // blue
    }
}

/// `1.234ms`-style duration.
pub fn human_duration(ns: u64) -> String {
    match ns {
        0..=9_999 => format!("{ns}ns"),
        10_000..=9_999_999 => format!("{:.3}ms", ns as f64 / 1e6),
        10_000_000..=9_999_999_999 => format!("{:.1}ms", ns as f64 / 1e6),
        _ => format!("{:.2}s", ns as f64 / 1e9),
    }
}

/// Strips control characters so application text cannot drive the terminal.
fn printable(text: &str) -> std::borrow::Cow<'_, str> {
    if text.chars().any(char::is_control) {
        text.chars()
            .map(|c| if c.is_control() { '\u{fffd}' } else { c })
            .collect::<String>()
            .into()
    } else {
        text.into()
    }
}

impl<W: Write + Send> ConsoleExporter<W> {
    fn print_losses(&mut self, markers: &[LossMarker]) {
        self.buf.clear();
        for m in markers {
            let stamp = match self.style {
                ConsoleStyle::Compact => timefmt::rfc3339_millis(m.to_ts_ns),
                ConsoleStyle::Pretty => timefmt::time_of_day_millis(m.to_ts_ns),
            };
            self.buf.extend_from_slice(stamp.as_bytes());
            self.buf.push(b' ');
            let who = match (m.pid, &m.service) {
                (Some(pid), Some(service)) => format!("pid={pid} service={}", printable(service)),
                (Some(pid), None) => format!("pid={pid}"),
                (None, _) => "pid=unknown".to_string(),
            };
            let c = &m.counts;
            let text = format!(
                "LOSS {who} dropped={} overwritten={} abandoned={} torn={} between {} and {}",
                c.dropped,
                c.overwritten,
                c.abandoned,
                c.torn,
                timefmt::time_of_day_millis(m.from_ts_ns),
                timefmt::time_of_day_millis(m.to_ts_ns),
            );
            self.paint("1;31", &text);
            self.buf.push(b'\n');
        }
        if let Err(e) = self
            .out
            .write_all(&self.buf)
            .and_then(|()| self.out.flush())
        {
            self.status.errors += 1;
            self.status.last_error = Some(format!("writing to stdout: {e}"));
            self.reporter
                .report(&format!("writing to stdout: {e}; LOSS lines not printed"));
        } else {
            self.status.bytes += self.buf.len() as u64;
        }
    }

    /// What an event measured, as text: method, name, status and duration,
    /// rows, or value.
    fn detail(ctx: &mut RingContext, batch: &Batch<'_>, e: &Event) -> String {
        let name = ctx.name_text(batch.names(), e.name);
        let name = printable(&name).into_owned();
        match e.kind {
            Kind::Req => {
                let method = if e.method == Method::None {
                    ""
                } else {
                    e.method.as_str()
                };
                format!("{method} {name} {} {}", e.status, human_duration(e.dur_ns))
                    .trim_start()
                    .to_string()
            }
            Kind::Fn => format!("{name} {}", human_duration(e.dur_ns)),
            Kind::Db => format!("{name} {} rows={}", human_duration(e.dur_ns), e.value),
            Kind::Custom => format!("{name} = {}", f64::from_bits(e.value)),
        }
    }

    /// `compact`: one short line.
    fn compact_line(&mut self, ctx: &mut RingContext, batch: &Batch<'_>, e: &Event) {
        let detail = Self::detail(ctx, batch, e);
        self.buf
            .extend_from_slice(timefmt::rfc3339_millis(batch.wall_ns(e)).as_bytes());
        self.buf.push(b' ');
        self.paint(kind_color(e.kind), e.kind.as_str());
        self.buf.push(b' ');
        if e.is_error() {
            self.paint("31", &detail);
        } else {
            self.buf.extend_from_slice(detail.as_bytes());
        }
        self.buf.push(b'\n');
    }

    /// `pretty`: aligned columns, ids and service, and the exception on a
    /// line of its own.
    fn pretty_lines(&mut self, ctx: &mut RingContext, batch: &Batch<'_>, e: &Event) {
        let detail = Self::detail(ctx, batch, e);
        self.buf
            .extend_from_slice(timefmt::time_of_day_millis(batch.wall_ns(e)).as_bytes());
        self.buf.push(b' ');
        self.paint(kind_color(e.kind), &format!("{:<6}", e.kind.as_str()));
        self.buf.push(b' ');
        if e.is_error() {
            self.paint("1;31", &detail);
        } else {
            self.buf.extend_from_slice(detail.as_bytes());
        }
        let _ = write!(self.buf, "  pid={} tid={}", e.pid, e.tid);
        if e.trace_id != 0 {
            let _ = write!(
                self.buf,
                " trace={:032x} span={:016x}",
                e.trace_id, e.span_id
            );
            if e.parent_span_id != 0 {
                let _ = write!(self.buf, " parent={:016x}", e.parent_span_id);
            }
        }
        if let Some(service) = ctx.service(e.writer) {
            let service = printable(service).into_owned();
            let _ = write!(self.buf, " service={service}");
        }
        self.buf.push(b'\n');
        let exception = (e.exception_type != StrId::NONE)
            .then(|| ctx.name_text(batch.names(), e.exception_type));
        let message = ctx.message(batch.names(), e.message);
        if exception.is_some() || message.is_some() {
            let text = format!(
                "    ! {}{}{}",
                exception.as_deref().map(printable).unwrap_or_default(),
                if exception.is_some() && message.is_some() {
                    ": "
                } else {
                    ""
                },
                message.as_deref().map(printable).unwrap_or_default(),
            );
            self.paint("31", &text);
            self.buf.push(b'\n');
        }
    }
}

impl<W: Write + Send> Exporter for ConsoleExporter<W> {
    fn name(&self) -> &'static str {
        "console"
    }

    fn export_with_losses(
        &mut self,
        ctx: &mut RingContext,
        batch: &Batch<'_>,
        losses: &LossBatch<'_>,
    ) -> Exported {
        if !losses.markers.is_empty() {
            self.print_losses(losses.markers);
        }
        if batch.events().is_empty() {
            return Exported::default();
        }
        self.export(ctx, batch)
    }

    fn export(&mut self, ctx: &mut RingContext, batch: &Batch<'_>) -> Exported {
        self.buf.clear();
        for e in batch.events() {
            match self.style {
                ConsoleStyle::Compact => self.compact_line(ctx, batch, e),
                ConsoleStyle::Pretty => self.pretty_lines(ctx, batch, e),
            }
        }
        let n = batch.events().len() as u64;
        match self
            .out
            .write_all(&self.buf)
            .and_then(|()| self.out.flush())
        {
            Ok(()) => {
                self.status.exported += n;
                self.status.bytes += self.buf.len() as u64;
                Exported {
                    written: n,
                    ..Exported::default()
                }
            }
            Err(e) => {
                self.status.errors += 1;
                self.status.lost += n;
                self.status.last_error = Some(format!("writing to stdout: {e}"));
                self.reporter
                    .report(&format!("writing to stdout: {e}; {n} events not printed"));
                Exported {
                    lost: n,
                    ..Exported::default()
                }
            }
        }
    }

    fn status(&self) -> ExporterStatus {
        self.status.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::views::LossTotals;

    #[test]
    fn loss_markers_print_as_one_line_each() {
        let mut console = ConsoleExporter::new(Vec::new(), ConsoleStyle::Compact, false);
        let marker = |pid: Option<u32>| LossMarker {
            pid,
            writer: None,
            service: pid.map(|_| std::sync::Arc::from("shop\u{1b}[2J")),
            counts: LossTotals {
                dropped: 3,
                overwritten: 0,
                abandoned: 1,
                torn: 0,
            },
            from_ts_ns: 1_800_000_000_000_000_000,
            to_ts_ns: 1_800_000_001_000_000_000,
            before_event: 0,
            cumulative: LossTotals::default(),
        };
        console.print_losses(&[marker(Some(42)), marker(None)]);
        let text = String::from_utf8(console.out.clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(lines[0].contains(
            "LOSS pid=42 service=shop\u{fffd}[2J dropped=3 overwritten=0 abandoned=1 torn=0"
        ));
        assert!(lines[1].contains("LOSS pid=unknown dropped=3"));
        assert!(!text.contains('\u{1b}'), "no escape sequences from names");
    }
}
