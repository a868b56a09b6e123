//! Redaction of the text that goes into the ring beyond names: exception
//! messages (and any longer text recorded through the same message slots)
//! and SQL statements.
//!
//! **Messages.** [`Ring::message`](crate::Ring::message), the one entry
//! point through which text reaches the ring's message slots, passes every
//! text through [`message`] first. By default the built-in rules are all
//! on ([`MessageRules::ALL`]):
//!
//! - **digits**: every word holding a digit (`42`, `user_42`, `0x7f3a`),
//!   with a run of them joined by single ` -./:,+` as one value
//!   (`4111 1111 1111 1111`, `2026-12-03 14:05`);
//! - **emails**: `local@domain`;
//! - **quoted**: `'...'` and `"..."` values, escapes included (an
//!   apostrophe inside a word, as in `can't`, opens none); an unclosed one
//!   runs to the end of the text;
//!
//! plus the patterns added with [`add_message_pattern`]. Each becomes `?`:
//!
//! ```
//! let text = "card 4111-1111-1111-1111 of ann@example.com rejected: 'insufficient funds'";
//! assert_eq!(profilis::redact::message(text), "card ? of ? rejected: ?");
//! ```
//!
//! The rules run only when a message is recorded (an error with text),
//! never for other events. Exception type names are names, not messages,
//! and are not redacted. `PROFILIS_REDACT` chooses the rules at start-up
//! (`all`, the default; `off`; or a list such as `emails,quoted`), and
//! [`set_message_rules`] at run time.
//!
//! **SQL.** [`crate::db::redact`] replaces every literal with `?`; the
//! patterns added with [`add_sql_pattern`] then replace what they match in
//! the redacted text (a tenant's schema name, say), so a pattern can only
//! take more away.
//!
//! Patterns are regular expressions in the syntax of the `regex-lite`
//! crate (no Unicode classes; matching time linear in the text). A change
//! applies to text recorded after it; SQL ids cached by the writers are
//! forgotten on every change.

mod rules;
mod stack;
#[cfg(test)]
mod tests;

use crate::strings::truncate_str;
use crate::sync::local::{AtomicU64, Ordering::Relaxed};
use std::borrow::Cow;
use std::ops::Range;
use std::sync::{LazyLock, PoisonError, RwLock};

/// What redaction reads of a text: the stored part of a message is far
/// shorter (240 bytes), and a bound keeps a huge text from costing more.
pub const MAX_INPUT_BYTES: usize = 64 * 1024;

/// Patterns of each kind (messages, SQL) at most.
pub const MAX_PATTERNS: usize = 64;

/// Bytes of one pattern's text at most.
pub const MAX_PATTERN_BYTES: usize = 1024;

/// Which built-in rules [`message`] applies; see the [module](self) docs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MessageRules {
    /// Words holding a digit, runs of them joined by ` -./:,+`.
    pub digits: bool,
    /// E-mail addresses.
    pub emails: bool,
    /// `'...'` and `"..."` values.
    pub quoted: bool,
}

impl MessageRules {
    /// Every built-in rule: the default.
    pub const ALL: MessageRules = MessageRules {
        digits: true,
        emails: true,
        quoted: true,
    };
    /// No built-in rule (patterns still apply).
    pub const NONE: MessageRules = MessageRules {
        digits: false,
        emails: false,
        quoted: false,
    };

    /// The rules `PROFILIS_REDACT` names ([`MessageRules::ALL`] when it is
    /// unset or empty).
    pub fn from_env() -> Result<MessageRules, String> {
        match std::env::var("PROFILIS_REDACT") {
            Ok(v) => v
                .parse()
                .map_err(|e: String| format!("PROFILIS_REDACT={v:?}: {e}")),
            Err(_) => Ok(MessageRules::ALL),
        }
    }
}

impl Default for MessageRules {
    fn default() -> Self {
        MessageRules::ALL
    }
}

/// `all`, `off` (or `none`), or a comma-separated list of `digits`,
/// `emails`, `quoted`.
impl std::str::FromStr for MessageRules {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim() {
            "" | "all" => return Ok(MessageRules::ALL),
            "off" | "none" => return Ok(MessageRules::NONE),
            _ => {}
        }
        let mut rules = MessageRules::NONE;
        for rule in s.split(',').map(str::trim) {
            match rule {
                "digits" => rules.digits = true,
                "emails" => rules.emails = true,
                "quoted" => rules.quoted = true,
                other => {
                    return Err(format!(
                        "unknown rule {other:?}: expected all, off, or a list of digits, emails, quoted"
                    ))
                }
            }
        }
        Ok(rules)
    }
}

/// A pattern that was not accepted.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum PatternError {
    /// Not a regular expression `regex-lite` accepts.
    #[error("invalid redaction pattern {pattern:?}: {reason}")]
    Invalid {
        /// The pattern as given.
        pattern: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Longer than [`MAX_PATTERN_BYTES`].
    #[error("redaction pattern of {0} bytes: at most {MAX_PATTERN_BYTES} are accepted")]
    TooLong(usize),
    /// [`MAX_PATTERNS`] of this kind are already set.
    #[error("{MAX_PATTERNS} redaction patterns are already set for {0}")]
    TooMany(&'static str),
}

/// The rules in force: built-in message rules and the user's patterns.
#[derive(Clone, Debug, Default)]
struct Config {
    rules: MessageRules,
    message: Vec<regex_lite::Regex>,
    sql: Vec<regex_lite::Regex>,
}

impl Config {
    fn message<'t>(&self, text: &'t str) -> Cow<'t, str> {
        let text = truncate_str(text, MAX_INPUT_BYTES);
        let mut ranges = Vec::new();
        if self.rules.emails {
            rules::emails(text, &mut ranges);
        }
        if self.rules.digits {
            rules::digits(text, &mut ranges);
        }
        matches(&self.message, text, &mut ranges);
        if self.rules.quoted {
            // Last: a `'` right after a value the others redact follows a
            // `?` in the output, so it opens a value here as it would there.
            let ends: Vec<usize> = ranges.iter().map(|r| r.end).collect();
            rules::quoted(text, &ends, &mut ranges);
        }
        apply(text, ranges)
    }

    fn stack<'t>(&self, text: &'t str) -> Cow<'t, str> {
        let text = truncate_str(text, MAX_INPUT_BYTES);
        let mut out = String::new();
        let mut changed = false;
        for line in text.split_inclusive('\n') {
            let (body, end) = line.split_at(line.trim_end_matches(['\r', '\n']).len());
            let redacted = if stack::is_location(body) {
                let mut ranges = Vec::new();
                matches(&self.message, body, &mut ranges);
                apply(body, ranges)
            } else if let Some(n) = stack::exception_type_len(body) {
                match self.message(&body[n..]) {
                    Cow::Borrowed(_) => Cow::Borrowed(body),
                    Cow::Owned(rest) => Cow::Owned(format!("{}{rest}", &body[..n])),
                }
            } else {
                self.message(body)
            };
            changed |= matches!(redacted, Cow::Owned(_));
            out.push_str(&redacted);
            out.push_str(end);
        }
        if changed {
            Cow::Owned(out)
        } else {
            Cow::Borrowed(text)
        }
    }

    fn sql(&self, redacted: String) -> String {
        let mut ranges = Vec::new();
        matches(&self.sql, &redacted, &mut ranges);
        apply(&redacted, ranges).into_owned()
    }
}

/// Appends the ranges `patterns` match in `text` (empty matches skipped).
fn matches(patterns: &[regex_lite::Regex], text: &str, out: &mut Vec<Range<usize>>) {
    for pattern in patterns {
        out.extend(
            pattern
                .find_iter(text)
                .map(|m| m.range())
                .filter(|r| !r.is_empty()),
        );
    }
}

/// `text` with each run of overlapping or touching `ranges` replaced by one
/// `?`; borrowed when there is none.
fn apply(text: &str, mut ranges: Vec<Range<usize>>) -> Cow<'_, str> {
    if ranges.is_empty() {
        return Cow::Borrowed(text);
    }
    ranges.sort_unstable_by_key(|r| r.start);
    let mut out = String::with_capacity(text.len());
    let mut kept = 0;
    let mut k = 0;
    while k < ranges.len() {
        let start = ranges[k].start;
        let mut end = ranges[k].end;
        k += 1;
        while k < ranges.len() && ranges[k].start <= end {
            end = end.max(ranges[k].end);
            k += 1;
        }
        out.push_str(&text[kept..start]);
        out.push('?');
        kept = end;
    }
    out.push_str(&text[kept..]);
    Cow::Owned(out)
}

static CONFIG: LazyLock<RwLock<Config>> = LazyLock::new(|| {
    RwLock::new(Config {
        // A bad value is reported by `RingOptions::from_env`; here it
        // leaves every rule on rather than none.
        rules: MessageRules::from_env().unwrap_or(MessageRules::ALL),
        ..Config::default()
    })
});

/// Bumped on every change of the SQL patterns: part of the key of cached
/// SQL ids, so no id of text redacted under older patterns is used again.
static SQL_GENERATION: AtomicU64 = AtomicU64::new(0);

fn read<T>(f: impl FnOnce(&Config) -> T) -> T {
    // A panic while holding the lock cannot leave a half-made `Config`:
    // every writer replaces whole fields.
    f(&CONFIG.read().unwrap_or_else(PoisonError::into_inner))
}

fn write<T>(f: impl FnOnce(&mut Config) -> T) -> T {
    let mut config = CONFIG.write().unwrap_or_else(PoisonError::into_inner);
    let result = f(&mut config);
    // ORDERING: Relaxed; the pair is the lock. Bumped under the write lock
    // and read under the read lock (`with_message`), so a reader sees the
    // configuration and its generation together.
    CONFIG_GENERATION.fetch_add(1, Relaxed);
    result
}

/// Bumped by every change of the configuration: the key of each thread's
/// [`LastMessage`].
static CONFIG_GENERATION: AtomicU64 = AtomicU64::new(0);

/// Messages longer than this are not kept as a thread's last message.
const LAST_MESSAGE_MAX: usize = 1024;

/// The last message a thread redacted, and its redaction: an error path
/// usually fails the same way again, and then the redaction is not redone.
struct LastMessage {
    generation: u64,
    valid: bool,
    text: String,
    redacted: String,
}

std::thread_local! {
    static LAST_MESSAGE: std::cell::RefCell<LastMessage> = const {
        std::cell::RefCell::new(LastMessage {
            generation: 0,
            valid: false,
            text: String::new(),
            redacted: String::new(),
        })
    };
}

/// Calls `f` with [`message`]`(text)`. The same text again on a thread,
/// under the same configuration, reuses the redaction made last time
/// (redacting costs a few thousand instructions; comparing, a few dozen).
pub(crate) fn with_message<T>(text: &str, f: impl FnOnce(&str) -> T) -> T {
    if text.len() > LAST_MESSAGE_MAX {
        return f(&message(text));
    }
    LAST_MESSAGE.with(|last| {
        // Taken already: `f` is redacting a message of its own.
        let Ok(mut last) = last.try_borrow_mut() else {
            return f(&message(text));
        };
        read(|c| {
            // ORDERING: Relaxed under the read lock, paired through the lock
            // with the bump under the write lock in `write`.
            let generation = CONFIG_GENERATION.load(Relaxed);
            if !(last.valid && last.generation == generation && last.text == text) {
                let redacted = c.message(text);
                last.redacted.clear();
                last.redacted.push_str(&redacted);
                last.text.clear();
                last.text.push_str(text);
                last.generation = generation;
                last.valid = true;
            }
        });
        f(&last.redacted)
    })
}

/// `text` as the message slots receive it: the first [`MAX_INPUT_BYTES`]
/// with the built-in rules in force and the message patterns applied.
pub fn message(text: &str) -> Cow<'_, str> {
    read(|c| c.message(text))
}

/// `stack` (a stack trace) as the message slots receive it: each line that
/// only locates a frame (Python's `File "path", line N, in f`, Rust's
/// `N: symbol` and `at path:line:col`, `function (file:line)`) keeps its
/// numbers and file name and gets only the message patterns; a line that
/// starts with an exception type (`sqlite3.OperationalError: …`) keeps the
/// type and has the rest redacted; every other line (source lines) is
/// redacted as a [`message`] of its own.
///
/// ```
/// let stack = "Traceback (most recent call last):\n  File \"/app/pay.py\", line 42, in charge\n    raise CardError(card)\nCardError: card 4111-1111-1111-1111 declined\n";
/// assert_eq!(
///     profilis::redact::stack(stack),
///     "Traceback (most recent call last):\n  File \"/app/pay.py\", line 42, in charge\n    raise CardError(card)\nCardError: card ? declined\n"
/// );
/// ```
pub fn stack(text: &str) -> Cow<'_, str> {
    read(|c| c.stack(text))
}

/// Chooses the built-in message rules (the default is
/// [`MessageRules::ALL`], or what `PROFILIS_REDACT` says).
pub fn set_message_rules(rules: MessageRules) {
    write(|c| c.rules = rules);
}

/// The built-in message rules in force.
pub fn message_rules() -> MessageRules {
    read(|c| c.rules)
}

fn compile(
    pattern: &str,
    kind: &'static str,
    have: usize,
) -> Result<regex_lite::Regex, PatternError> {
    if pattern.len() > MAX_PATTERN_BYTES {
        return Err(PatternError::TooLong(pattern.len()));
    }
    if have >= MAX_PATTERNS {
        return Err(PatternError::TooMany(kind));
    }
    regex_lite::Regex::new(pattern).map_err(|e| PatternError::Invalid {
        pattern: pattern.to_string(),
        reason: e.to_string(),
    })
}

/// Adds a pattern whose matches in a message become `?`.
///
/// ```
/// profilis::redact::add_message_pattern(r"tenant-[a-z]+")?;
/// assert_eq!(
///     profilis::redact::message("no quota left for tenant-acme"),
///     "no quota left for ?"
/// );
/// # Ok::<(), profilis::redact::PatternError>(())
/// ```
pub fn add_message_pattern(pattern: &str) -> Result<(), PatternError> {
    write(|c| {
        let regex = compile(pattern, "messages", c.message.len())?;
        c.message.push(regex);
        Ok(())
    })
}

/// Adds a pattern whose matches in the redacted text of an SQL statement
/// become `?` (see [`crate::db::redact`]).
///
/// ```
/// profilis::redact::add_sql_pattern(r"\btenant_[a-z]+\b")?;
/// assert_eq!(
///     profilis::db::redact("SELECT * FROM tenant_acme.orders WHERE id = 7"),
///     "SELECT * FROM ?.orders WHERE id = ?"
/// );
/// # Ok::<(), profilis::redact::PatternError>(())
/// ```
pub fn add_sql_pattern(pattern: &str) -> Result<(), PatternError> {
    write(|c| {
        let regex = compile(pattern, "SQL", c.sql.len())?;
        c.sql.push(regex);
        // ORDERING: Relaxed under the write lock; see `sql_generation`.
        SQL_GENERATION.fetch_add(1, Relaxed);
        Ok(())
    })
}

/// Removes every message and SQL pattern (the built-in rules stay as set).
pub fn clear_patterns() {
    write(|c| {
        c.message.clear();
        c.sql.clear();
        // ORDERING: Relaxed under the write lock; see `sql_generation`.
        SQL_GENERATION.fetch_add(1, Relaxed);
    });
}

/// Applies the SQL patterns to text the literal redactor produced.
pub(crate) fn sql_patterns(redacted: String) -> String {
    read(|c| {
        if c.sql.is_empty() {
            redacted
        } else {
            c.sql(redacted)
        }
    })
}

/// A number that changes whenever the SQL patterns do: writers that cache
/// the id of a statement's redacted text by its raw text mix it into the
/// key.
pub fn sql_generation() -> u64 {
    // ORDERING: Relaxed, outside the lock. A caller that reads the new value
    // redacts afterwards under the read lock, which it can only take once the
    // writer that bumped it has released the write lock, so it sees the new
    // patterns; one that reads an old value caches under a key no later call
    // uses once it sees the new one.
    SQL_GENERATION.load(Relaxed)
}
