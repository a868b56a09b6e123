//! The exposition format's text: families (HELP and TYPE), samples with
//! escaped labels, histograms, values.

use crate::views::DurationHistogram;
use std::fmt::Write;

/// ns as seconds.
pub(super) fn secs(ns: u64) -> f64 {
    ns as f64 / 1e9
}

/// The exposition being written.
pub(super) struct Out {
    pub text: String,
}

impl Out {
    /// Announces a family: its HELP and TYPE lines.
    pub fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.text, "# HELP {name} {}", escape_help(help));
        let _ = writeln!(self.text, "# TYPE {name} {kind}");
    }

    /// Announces a family kept for one release under its old name: the
    /// HELP says it is deprecated and what replaces it (`instead`).
    pub fn deprecated(&mut self, name: &str, kind: &str, instead: &str) {
        self.family(
            name,
            kind,
            &format!("DEPRECATED, removed in the next release: use {instead}."),
        );
    }

    /// One sample.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.text.push_str(name);
        write_labels(&mut self.text, labels, None);
        self.text.push(' ');
        write_value(&mut self.text, value);
        self.text.push('\n');
    }

    /// The samples of one histogram whose buckets end at `bounds_ns`.
    pub fn histogram(
        &mut self,
        name: &str,
        labels: &[(&str, &str)],
        bounds_ns: &[u64],
        h: &DurationHistogram,
    ) {
        for (i, &bound) in bounds_ns.iter().enumerate() {
            let le = secs(bound).to_string();
            let _ = write!(self.text, "{name}_bucket");
            write_labels(&mut self.text, labels, Some(&le));
            self.text.push(' ');
            write_value(
                &mut self.text,
                h.cumulative.get(i).copied().unwrap_or(h.count) as f64,
            );
            self.text.push('\n');
        }
        let _ = write!(self.text, "{name}_bucket");
        write_labels(&mut self.text, labels, Some("+Inf"));
        self.text.push(' ');
        write_value(&mut self.text, h.count as f64);
        self.text.push('\n');
        let _ = write!(self.text, "{name}_sum");
        write_labels(&mut self.text, labels, None);
        self.text.push(' ');
        write_value(&mut self.text, h.sum_secs);
        self.text.push('\n');
        let _ = write!(self.text, "{name}_count");
        write_labels(&mut self.text, labels, None);
        self.text.push(' ');
        write_value(&mut self.text, h.count as f64);
        self.text.push('\n');
    }
}

fn write_labels(out: &mut String, labels: &[(&str, &str)], le: Option<&str>) {
    if labels.is_empty() && le.is_none() {
        return;
    }
    out.push('{');
    let mut first = true;
    for (k, v) in labels.iter().copied().chain(le.map(|le| ("le", le))) {
        if !first {
            out.push(',');
        }
        first = false;
        out.push_str(k);
        out.push_str("=\"");
        escape_label_value(out, v);
        out.push('"');
    }
    out.push('}');
}

/// Label values escape `\`, `"` and line feed (the exposition format's
/// three escapes); everything else, any UTF-8, goes as it is.
pub fn escape_label_value(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// HELP text escapes `\` and line feed.
fn escape_help(text: &str) -> String {
    text.replace('\\', "\\\\").replace('\n', "\\n")
}

fn write_value(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("NaN");
    } else if v.is_infinite() {
        out.push_str(if v > 0.0 { "+Inf" } else { "-Inf" });
    } else {
        let _ = write!(out, "{v}");
    }
}
