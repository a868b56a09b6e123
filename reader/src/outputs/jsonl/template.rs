//! File names of the JSONL files: the `--filename-template` with its
//! placeholders, and which names in the directory it made.

use crate::support::timefmt;
use anyhow::{bail, Context};

use super::CURRENT_FILE;

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Part {
    Literal(String),
    Timestamp,
    Pid,
    Counter,
}

/// A parsed filename template: `{timestamp}` (UTC, `20261125T100312.123Z`),
/// `{pid}` (the reader's pid) and `{n}` (files opened by this run, from 1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    pub(super) parts: Vec<Part>,
}

impl Template {
    /// Parses and validates a template.
    pub fn parse(text: &str) -> anyhow::Result<Template> {
        if text.contains('/') || text.starts_with('.') || text.is_empty() {
            bail!("filename template {text:?} must be a plain file name (no '/', not hidden)");
        }
        if text == CURRENT_FILE {
            bail!("filename template {text:?} clashes with the names the exporter uses itself");
        }
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find('{') {
            if open > 0 {
                parts.push(Part::Literal(rest[..open].to_string()));
            }
            let close = rest[open..]
                .find('}')
                .with_context(|| format!("filename template {text:?}: unclosed '{{'"))?;
            parts.push(match &rest[open + 1..open + close] {
                "timestamp" => Part::Timestamp,
                "pid" => Part::Pid,
                "n" => Part::Counter,
                other => bail!(
                    "filename template {text:?}: unknown placeholder {{{other}}} (use {{timestamp}}, {{pid}} or {{n}})"
                ),
            });
            rest = &rest[open + close + 1..];
        }
        if !rest.is_empty() {
            parts.push(Part::Literal(rest.to_string()));
        }
        if !parts
            .iter()
            .any(|p| matches!(p, Part::Timestamp | Part::Counter))
        {
            bail!("filename template {text:?} needs {{timestamp}} or {{n}} so rotated files get distinct names");
        }
        Ok(Template { parts })
    }

    /// A file name; `unique` > 0 is appended to the first placeholder
    /// (`...T100312.123Z-2...`) to avoid an existing name.
    pub fn render(&self, now_ns: u64, counter: u64, pid: u32, unique: u32) -> String {
        let mut out = String::new();
        let mut first = true;
        for p in &self.parts {
            match p {
                Part::Literal(s) => out.push_str(s),
                Part::Timestamp => out.push_str(&timefmt::file_stamp(now_ns)),
                Part::Pid => out.push_str(&pid.to_string()),
                Part::Counter => out.push_str(&counter.to_string()),
            }
            if !matches!(p, Part::Literal(_)) && first {
                first = false;
                if unique > 0 {
                    out.push_str(&format!("-{unique}"));
                }
            }
        }
        out
    }

    /// Whether `name` could have come from [`render`](Self::render).
    pub fn matches(&self, name: &str) -> bool {
        fn go(parts: &[Part], s: &str) -> bool {
            match parts.split_first() {
                None => s.is_empty(),
                Some((Part::Literal(lit), rest)) => {
                    s.strip_prefix(lit.as_str()).is_some_and(|s| go(rest, s))
                }
                Some((_, rest)) => (1..=s.len())
                    .filter(|&i| s.is_char_boundary(i))
                    .any(|i| !s[..i].contains('/') && go(rest, &s[i..])),
            }
        }
        go(&self.parts, name)
    }
}
