//! Database instrumentation: time a query, count its rows, and record it
//! under its *redacted* text, so queries that differ only in their values
//! share one name and no value ever reaches the ring file.
//!
//! ```
//! use profilis::db;
//! let sql = "SELECT id, name FROM users WHERE email = 'ann@example.com' AND age > 30";
//! assert_eq!(
//!     db::redact(sql),
//!     "SELECT id, name FROM users WHERE email = ? AND age > ?"
//! );
//!
//! // Times the closure and records a DB event (when profilis::init() ran):
//! let rows: Vec<u32> = db::timed(sql, || vec![1, 2, 3]);
//! assert_eq!(rows.len(), 3);
//! ```
//!
//! [`redact`] runs once per distinct query text: the id of the redacted text
//! is cached by a hash of the raw text in a bounded process-local table, so a
//! repeated query costs one hash and one table lookup.

use crate::clock::{self, Stamp};
use crate::context::{self, SpanContext};
use crate::hash::hash_bytes;
use crate::idcache::IdCache;
use crate::record::{Kind, StrId, FLAG_ERROR};
use crate::writer::{Fields, Ring};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

// ---------------------------------------------------------------------------
// Redaction

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Tok<'a> {
    /// Identifier or keyword (kept).
    Word(&'a str),
    /// Quoted identifier: `` `col` ``, or `"col"` where it can only be a
    /// name (kept; see [`redact`]).
    Quoted(&'a str),
    /// A literal or placeholder, written as `?`.
    Value,
    /// Any other character, kept as it is.
    Punct(char),
}

#[derive(Clone, Copy, Debug)]
struct Token<'a> {
    tok: Tok<'a>,
    /// Whitespace or a comment came before it.
    space: bool,
}

fn is_word_start(c: char) -> bool {
    c.is_alphabetic() || c == '_'
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '$'
}

/// Keywords after which a `-` or `+` is a sign, not a subtraction.
fn expects_operand(word: &str) -> bool {
    const KEYWORDS: &[&str] = &[
        "SELECT", "WHERE", "AND", "OR", "NOT", "WHEN", "THEN", "ELSE", "CASE", "VALUES", "SET",
        "RETURN", "LIMIT", "OFFSET", "IN", "BETWEEN", "LIKE", "IS", "ON", "HAVING", "BY", "TOP",
        "INTERVAL",
    ];
    KEYWORDS.iter().any(|k| k.eq_ignore_ascii_case(word))
}

/// End (exclusive) of a quoted run starting at `start` (the opening quote),
/// where the quote is escaped by doubling it and, if `backslash`, by `\`.
/// An unterminated run extends to the end of the text.
fn quoted_end(b: &[u8], start: usize, quote: u8, backslash: bool) -> usize {
    let mut i = start + 1;
    while i < b.len() {
        let c = b[i];
        if backslash && c == b'\\' {
            i += 2;
            continue;
        }
        if c == quote {
            if b.get(i + 1) == Some(&quote) {
                i += 2;
                continue;
            }
            return i + 1;
        }
        i += 1;
    }
    b.len()
}

/// If a dollar-quoted string (`$$...$$`, `$tag$...$tag$`) starts at `start`,
/// its end (exclusive; the end of the text if unterminated).
fn dollar_quote_end(text: &str, start: usize) -> Option<usize> {
    let rest = &text[start + 1..];
    let tag_len = rest.find('$')?;
    let tag = &rest[..tag_len];
    let valid_tag = tag.is_empty()
        || (tag.starts_with(is_word_start) && tag.chars().all(|c| c.is_alphanumeric() || c == '_'));
    if !valid_tag {
        return None;
    }
    let delimiter = &text[start..start + tag_len + 2];
    let body = start + delimiter.len();
    Some(
        text[body..]
            .find(delimiter)
            .map_or(text.len(), |at| body + at + delimiter.len()),
    )
}

/// End of the number starting at `start` (a digit, or `.` then a digit):
/// integers, decimals, exponents, `0x` hex, `_` separators.
fn number_end(b: &[u8], start: usize) -> usize {
    let mut i = start;
    if b[i] == b'0' && matches!(b.get(i + 1), Some(b'x' | b'X')) {
        i += 2;
        while i < b.len() && (b[i].is_ascii_hexdigit() || b[i] == b'_') {
            i += 1;
        }
        return i;
    }
    while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'_') {
        i += 1;
    }
    if i < b.len() && b[i] == b'.' {
        i += 1;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
    }
    if i < b.len() && matches!(b[i], b'e' | b'E') {
        let mut j = i + 1;
        if j < b.len() && matches!(b[j], b'+' | b'-') {
            j += 1;
        }
        if j < b.len() && b[j].is_ascii_digit() {
            i = j;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
        }
    }
    i
}

fn push_value(out: &mut Vec<Token<'_>>, space: &mut bool) {
    out.push(Token {
        tok: Tok::Value,
        space: *space,
    });
    *space = false;
}

fn tokenize(text: &str) -> Vec<Token<'_>> {
    let b = text.as_bytes();
    let mut out: Vec<Token<'_>> = Vec::with_capacity(text.len() / 3);
    let mut space = false;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let next = b.get(i + 1).copied();
        // Whitespace and comments.
        if c.is_ascii_whitespace() {
            space = true;
            i += 1;
            continue;
        }
        if c == b'-' && next == Some(b'-') {
            i = text[i..].find('\n').map_or(b.len(), |at| i + at + 1);
            space = true;
            continue;
        }
        if c == b'/' && next == Some(b'*') {
            // Nested block comments, as PostgreSQL allows.
            let mut depth = 1;
            i += 2;
            while i < b.len() && depth > 0 {
                if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
                    depth += 1;
                    i += 2;
                } else if b[i] == b'*' && b.get(i + 1) == Some(&b'/') {
                    depth -= 1;
                    i += 2;
                } else {
                    i += 1;
                }
            }
            space = true;
            continue;
        }
        // String literals ('...', E'...', N'...', X'...', B'...') and
        // backslash escapes inside them.
        if c == b'\'' {
            i = quoted_end(b, i, b'\'', true);
            push_value(&mut out, &mut space);
            continue;
        }
        // Double-quoted text: an identifier or, in SQLite and MySQL, a
        // string; which one is decided by `redact_double_quoted`. With a
        // backslash inside it is a value: MySQL reads the backslash as an
        // escape, SQLite and PostgreSQL do not, and where the two readings
        // end it differently (`"a\" AND b = "x"`), each reads as SQL what
        // the other reads as a string, so the rest of the text is redacted.
        if c == b'"' {
            let end = quoted_end(b, i, c, false);
            if b[i + 1..end].contains(&b'\\') {
                i = if quoted_end(b, i, c, true) == end {
                    end
                } else {
                    b.len()
                };
                push_value(&mut out, &mut space);
                continue;
            }
            out.push(Token {
                tok: Tok::Quoted(&text[i..end]),
                space,
            });
            space = false;
            i = end;
            continue;
        }
        // Backtick-quoted identifiers (MySQL, SQLite: never a value).
        if c == b'`' {
            let end = quoted_end(b, i, c, false);
            out.push(Token {
                tok: Tok::Quoted(&text[i..end]),
                space,
            });
            space = false;
            i = end;
            continue;
        }
        // Dollar quotes and `$1` placeholders.
        if c == b'$' {
            if next.is_some_and(|n| n.is_ascii_digit()) {
                i = number_end(b, i + 1);
                push_value(&mut out, &mut space);
                continue;
            }
            if let Some(end) = dollar_quote_end(text, i) {
                i = end;
                push_value(&mut out, &mut space);
                continue;
            }
        }
        // `?` and `?1` placeholders.
        if c == b'?' {
            i += 1;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            push_value(&mut out, &mut space);
            continue;
        }
        // `:name` / `:1` placeholders, not `::` casts.
        if c == b':'
            && next.is_some_and(|n| n.is_ascii_alphanumeric() || n == b'_')
            && !(i > 0 && b[i - 1] == b':')
        {
            i += 1;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            push_value(&mut out, &mut space);
            continue;
        }
        // `@p1` / `@name` placeholders, not `@@system` variables.
        if c == b'@' && next.is_some_and(|n| n.is_ascii_alphanumeric() || n == b'_') {
            if i > 0 && b[i - 1] == b'@' {
                out.push(Token {
                    tok: Tok::Punct('@'),
                    space,
                });
                space = false;
                i += 1;
                continue;
            }
            i += 1;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            push_value(&mut out, &mut space);
            continue;
        }
        // Numbers (a `.5` only where no word or quoted name is glued before it).
        let glued = !space
            && matches!(
                out.last(),
                Some(Token {
                    tok: Tok::Word(_) | Tok::Quoted(_),
                    ..
                })
            );
        if c.is_ascii_digit() || (c == b'.' && next.is_some_and(|n| n.is_ascii_digit()) && !glued) {
            i = number_end(b, i);
            // A sign directly before the number belongs to it when an
            // operand is expected there (after an operator, `(`, `,` or a
            // keyword like WHERE), not when it is a subtraction.
            if let Some(last) = out.last() {
                if matches!(last.tok, Tok::Punct('-' | '+')) {
                    let before = out.len().checked_sub(2).map(|k| out[k].tok);
                    let unary = match before {
                        None => true,
                        Some(Tok::Word(w)) => expects_operand(w),
                        Some(Tok::Quoted(_)) | Some(Tok::Value) => false,
                        Some(Tok::Punct(p)) => !matches!(p, ')' | ']'),
                    };
                    if unary {
                        let sign = out.pop().expect("checked above");
                        out.push(Token {
                            tok: Tok::Value,
                            space: sign.space,
                        });
                        space = false;
                        continue;
                    }
                }
            }
            push_value(&mut out, &mut space);
            continue;
        }
        // Words, with E'..' / N'..' / X'..' / B'..' string prefixes.
        let ch = text[i..].chars().next().expect("i < len");
        if is_word_start(ch) {
            let mut end = i + ch.len_utf8();
            for w in text[end..].chars() {
                if !is_word_char(w) {
                    break;
                }
                end += w.len_utf8();
            }
            let word = &text[i..end];
            if b.get(end) == Some(&b'\'')
                && word.len() == 1
                && matches!(
                    word.as_bytes()[0],
                    b'E' | b'e' | b'N' | b'n' | b'X' | b'x' | b'B' | b'b'
                )
            {
                i = quoted_end(b, end, b'\'', true);
                push_value(&mut out, &mut space);
                continue;
            }
            out.push(Token {
                tok: Tok::Word(word),
                space,
            });
            space = false;
            i = end;
            continue;
        }
        out.push(Token {
            tok: Tok::Punct(ch),
            space,
        });
        space = false;
        i += ch.len_utf8();
    }
    out
}

/// If `tokens[open]` is `(` opening a list of values only (`?`, `,`),
/// the index of its `)`.
fn value_list_end(tokens: &[Token<'_>], open: usize) -> Option<usize> {
    if !matches!(tokens.get(open)?.tok, Tok::Punct('(')) {
        return None;
    }
    let mut expect_value = true;
    for (k, t) in tokens.iter().enumerate().skip(open + 1) {
        match (t.tok, expect_value) {
            (Tok::Value, true) => expect_value = false,
            (Tok::Punct(','), false) => expect_value = true,
            (Tok::Punct(')'), false) => return Some(k),
            _ => return None,
        }
    }
    None
}

fn is_word(tok: Tok<'_>, keyword: &str) -> bool {
    matches!(tok, Tok::Word(w) if w.eq_ignore_ascii_case(keyword))
}

fn is_any_word(tok: Tok<'_>, keywords: &[&str]) -> bool {
    keywords.iter().any(|k| is_word(tok, k))
}

/// Words that never name a table or column where [`name_start`] looks for
/// one (`INSERT INTO t VALUES (...)`: `VALUES` is no table).
const NOT_NAMES: &[&str] = &[
    "SELECT",
    "VALUES",
    "VALUE",
    "IN",
    "SET",
    "DEFAULT",
    "WHERE",
    "FROM",
    "ON",
    "USING",
    "AS",
    "AND",
    "OR",
    "NOT",
    "EXISTS",
    "ALL",
    "ANY",
    "SOME",
    "CASE",
    "WHEN",
    "THEN",
    "ELSE",
    "END",
    "RETURNING",
    "LIKE",
    "IS",
    "NULL",
    "BETWEEN",
    "DISTINCT",
    "OVER",
    "FILTER",
    "WITHIN",
];

/// Keywords directly after which a double-quoted token names a table,
/// column, index, view, constraint, CTE, alias or type (`INSERT INTO "t"`,
/// `UPDATE "t" SET "c" = ...`, `AS "n"`, `CAST(x AS "t")`). `FROM` and
/// `ON` are decided by [`keeps_double_quoted`].
const NAME_AFTER: &[&str] = &[
    "JOIN",
    "INTO",
    "UPDATE",
    "TABLE",
    "INDEX",
    "VIEW",
    "TRIGGER",
    "REFERENCES",
    "CONSTRAINT",
    "COLUMN",
    "WITH",
    "RECURSIVE",
    "AS",
    "SET",
];

/// Keywords that end the assignments of a `SET` clause.
const SET_ENDS: &[&str] = &[
    "WHERE",
    "FROM",
    "RETURNING",
    "ORDER",
    "LIMIT",
    "GROUP",
    "HAVING",
    "SELECT",
    "VALUES",
    "ON",
    "UNION",
    "INTERSECT",
    "EXCEPT",
    "WINDOW",
    "OFFSET",
    "INTO",
];

/// Words after a double-quoted token that make it an operand, not a column
/// of a name list (`("a" AND "b")`).
const OPERATOR_WORDS: &[&str] = &[
    "AND", "OR", "NOT", "IS", "IN", "LIKE", "ILIKE", "GLOB", "REGEXP", "RLIKE", "MATCH", "BETWEEN",
    "ESCAPE", "ISNULL", "NOTNULL", "DIV", "MOD", "XOR",
];

/// The index of the first token of the name (`t`, `"t"`, `s.t`, `"s"."t"`)
/// that ends at `tokens[last]`, if one does.
fn name_start(tokens: &[Token<'_>], last: usize) -> Option<usize> {
    let is_name = |t: Tok<'_>| match t {
        Tok::Quoted(_) => true,
        Tok::Word(_) => !is_any_word(t, NOT_NAMES),
        _ => false,
    };
    if !is_name(tokens.get(last)?.tok) {
        return None;
    }
    let mut start = last;
    while start >= 2
        && matches!(tokens[start - 1].tok, Tok::Punct('.'))
        && is_name(tokens[start - 2].tok)
    {
        start -= 2;
    }
    Some(start)
}

/// The token before `tokens[at]`, passing over `IF [NOT] EXISTS`
/// (`CREATE TABLE IF NOT EXISTS "t"`).
fn keyword_before<'a>(tokens: &[Token<'a>], at: usize) -> Option<Tok<'a>> {
    let mut k = at.checked_sub(1)?;
    if is_word(tokens[k].tok, "EXISTS") {
        let mut j = k.checked_sub(1)?;
        if is_word(tokens[j].tok, "NOT") {
            j = j.checked_sub(1)?;
        }
        if is_word(tokens[j].tok, "IF") {
            k = j.checked_sub(1)?;
        }
    }
    Some(tokens[k].tok)
}

/// Whether `tokens[on]` is the `ON` of `CREATE INDEX [name] ON table`.
fn is_index_on(tokens: &[Token<'_>], on: usize) -> bool {
    is_word(tokens[on].tok, "ON")
        && on > 0
        && (is_word(tokens[on - 1].tok, "INDEX")
            || name_start(tokens, on - 1)
                .and_then(|start| keyword_before(tokens, start))
                .is_some_and(|t| is_word(t, "INDEX")))
}

/// Whether a name starting at `tokens[at]` is the object of a statement
/// (the table of `INSERT INTO`, `CREATE TABLE`, `REFERENCES`, an index's
/// `ON`; a view; a CTE), whose `( ... )` that follows lists columns.
fn names_columns(tokens: &[Token<'_>], at: usize) -> bool {
    match at.checked_sub(1).map(|k| tokens[k].tok) {
        Some(t) if is_word(t, "ON") => is_index_on(tokens, at - 1),
        _ => keyword_before(tokens, at).is_some_and(|t| {
            is_any_word(
                t,
                &["INTO", "TABLE", "VIEW", "REFERENCES", "WITH", "RECURSIVE"],
            )
        }),
    }
}

/// What [`redact_double_quoted`] knows of one level of parentheses.
#[derive(Clone, Copy, Default)]
struct Level {
    /// A `SELECT`, `DELETE` or `UPDATE` came at this level, so a `FROM`
    /// here starts a table list (not `EXTRACT(YEAR FROM x)`).
    statement: bool,
    /// Inside the assignments of a `SET` clause.
    set: bool,
    /// This `( ... )` lists columns (`INSERT INTO t ("a", "b")`).
    columns: bool,
    /// The next token starts an element of the list (after `(` or `,`).
    element_start: bool,
    /// After MySQL's `IDENTIFIED`, where `WITH "plugin" AS "hash"` are
    /// strings.
    identified: bool,
}

/// Turns every double-quoted token that SQLite or MySQL could read as a
/// string into a value; keeps those that can only be names (see
/// [`redact`]).
fn redact_double_quoted(tokens: &mut [Token<'_>]) {
    let mut levels = vec![Level::default()];
    let mut to_value = Vec::new();
    for k in 0..tokens.len() {
        let tok = tokens[k].tok;
        let prev = k.checked_sub(1).map(|j| tokens[j].tok);
        let level = *levels.last().expect("never empty");
        if let Tok::Quoted(q) = tok {
            if q.starts_with('"') && !keeps_double_quoted(tokens, k, level) {
                to_value.push(k);
            }
        }
        let depth = levels.len();
        let top = levels.last_mut().expect("never empty");
        top.element_start = false;
        match tok {
            Tok::Punct('(') => {
                let columns = match prev {
                    Some(t) if is_any_word(t, &["USING", "KEY", "UNIQUE", "CONFLICT"]) => true,
                    // `UPDATE t SET ("a", "b") = (...)`, not MySQL's
                    // `c SET('x', 'y')` column type.
                    Some(t) if is_word(t, "SET") => level.statement,
                    _ => k
                        .checked_sub(1)
                        .and_then(|last| name_start(tokens, last))
                        .is_some_and(|start| names_columns(tokens, start)),
                };
                levels.push(Level {
                    columns,
                    element_start: true,
                    ..Level::default()
                });
            }
            // An unmatched `)` closes nothing.
            Tok::Punct(')') if depth > 1 => {
                levels.pop();
            }
            Tok::Punct(',') => top.element_start = true,
            Tok::Punct(';') => {
                levels.truncate(1);
                levels[0] = Level::default();
            }
            Tok::Word(_) => {
                if is_any_word(tok, &["SELECT", "DELETE", "UPDATE"]) {
                    top.statement = true;
                }
                if is_word(tok, "IDENTIFIED") {
                    top.identified = true;
                }
                if is_word(tok, "SET") {
                    top.set = true;
                } else if is_any_word(tok, SET_ENDS) {
                    top.set = false;
                }
            }
            _ => {}
        }
    }
    for k in to_value {
        tokens[k].tok = Tok::Value;
    }
}

/// Whether the double-quoted `tokens[k]` can only be a name, at a
/// parenthesis level described by `level`.
fn keeps_double_quoted(tokens: &[Token<'_>], k: usize, level: Level) -> bool {
    let tok = |j: usize| tokens.get(j).map(|t| t.tok);
    let prev = k.checked_sub(1).and_then(tok);
    let next = tok(k + 1);
    let is_name = |t: Option<Tok<'_>>| matches!(t, Some(Tok::Word(_) | Tok::Quoted(_)));
    // Part of a qualified name: `"s"."t"`, `t."c"`, `"t".*`.
    if matches!(next, Some(Tok::Punct('.')))
        && matches!(
            tok(k + 2),
            Some(Tok::Word(_) | Tok::Quoted(_) | Tok::Punct('*'))
        )
    {
        return true;
    }
    if matches!(prev, Some(Tok::Punct('.'))) && is_name(k.checked_sub(2).and_then(tok)) {
        return true;
    }
    // A function or a table with a column list: `"f"(x)`, `"t" ("a")`.
    if matches!(next, Some(Tok::Punct('('))) {
        return true;
    }
    // Directly after a keyword that takes a name.
    if let Some(before) = keyword_before(tokens, k) {
        if is_any_word(before, NAME_AFTER)
            && !(level.identified && is_any_word(before, &["WITH", "AS"]))
        {
            return true;
        }
    }
    if let Some(p) = prev {
        // `FROM "t"` of a statement; not `IS DISTINCT FROM "x"` nor
        // `EXTRACT(YEAR FROM "x")`.
        if is_word(p, "FROM")
            && level.statement
            && !k
                .checked_sub(2)
                .is_some_and(|j| is_word(tokens[j].tok, "DISTINCT"))
        {
            return true;
        }
        // `CREATE INDEX i ON "t"`, not `JOIN t ON "a" = "b"`.
        if is_index_on(tokens, k - 1) {
            return true;
        }
        // The next assignment of a SET clause: `SET a = 1, "b" = 2`.
        if level.set
            && matches!(p, Tok::Punct(','))
            && matches!(next, Some(Tok::Punct('=')))
            && !matches!(tok(k + 2), Some(Tok::Punct('=')))
        {
            return true;
        }
    }
    // An element of a column list: `INSERT INTO t ("a", "b")`,
    // `CREATE TABLE t ("a" TEXT, ...)`, `USING ("id")`.
    if level.columns && level.element_start {
        return match next {
            Some(Tok::Punct(',' | ')')) | None => true,
            Some(t @ Tok::Word(_)) => !is_any_word(t, OPERATOR_WORDS),
            _ => false,
        };
    }
    false
}

fn write_token(out: &mut String, token: &Token<'_>) {
    if token.space && !out.is_empty() {
        out.push(' ');
    }
    match token.tok {
        Tok::Word(w) | Tok::Quoted(w) => out.push_str(w),
        Tok::Value => out.push('?'),
        Tok::Punct(c) => out.push(c),
    }
}

/// Replaces every literal in `sql` with `?`, so the text is safe to record
/// and queries that differ only in their values read the same:
///
/// - string literals (`'...'` with `''` and backslash escapes, `E'...'`,
///   `N'...'`, `X'...'`, `B'...'`, dollar-quoted `$$...$$` / `$tag$...$tag$`)
///   and numbers (integers, decimals, exponents, hex, with their sign where
///   it is one) become `?`;
/// - placeholders `$1`, `?1`, `:name`, `@p1` become `?` (`::` casts and
///   `@@variables` stay);
/// - `IN (...)` lists of values collapse to `IN (?)`, and repeated
///   `VALUES (...), (...)` rows of the same shape to one row;
/// - `--` and `/* */` comments are removed and whitespace collapsed to one
///   space.
///
/// Identifiers stay as written, including digits in them (`t1.col2`) and
/// backtick-quoted ones (`` `order` ``).
///
/// Double-quoted text is an identifier in PostgreSQL, but a string in MySQL
/// (default mode), and SQLite reads it as a string where no column has that
/// name. So `"..."` becomes `?` unless it stands where only a name can:
///
/// - directly after `FROM` (of a `SELECT`, `DELETE` or `UPDATE` at the same
///   parenthesis level; not `IS DISTINCT FROM`, `EXTRACT(x FROM ...)`),
///   `JOIN`, `INTO`, `UPDATE`, `TABLE`, `INDEX`, `VIEW`, `TRIGGER`,
///   `REFERENCES`, `CONSTRAINT`, `COLUMN`, `WITH`, `RECURSIVE`, `SET` (the
///   first column assigned) or `AS` (an alias or a type), also past
///   `IF [NOT] EXISTS`; not after MySQL's `IDENTIFIED`, where
///   `WITH "plugin" AS "hash"` are strings;
/// - the table after the `ON` of `CREATE INDEX name ON`;
/// - a column assigned in a `SET` list: `, "c" =`;
/// - a part of a qualified name (`"s"."t"`, `t."c"`, `"t".*`);
/// - a function or table name directly before `(` (`"f"(x)`);
/// - an element of a column list (followed by `,`, `)` or a type or other
///   word, not by an operator): the `( ... )` after the table of
///   `INSERT INTO`, `CREATE TABLE`, `REFERENCES`, a view, a CTE or an
///   index's `ON`, and after `USING`, `KEY`, `UNIQUE`, `ON CONFLICT` and
///   `UPDATE ... SET`.
///
/// Everywhere else (comparisons, select lists, `VALUES`, the value of an
/// assignment, function arguments, `ORDER BY`, a second table after a
/// comma, an alias without `AS`) it becomes `?`, name or not. Double-quoted
/// text with a backslash in it is always `?`; where it ends elsewhere with
/// backslash escapes (MySQL: `"a\" b"` is one string) than without (SQLite,
/// PostgreSQL: `"a\"` then `b"`), the rest of the text is redacted.
/// Backtick-quoted names are MySQL and SQLite identifiers only and are
/// always kept.
///
/// ```
/// assert_eq!(
///     profilis::db::redact("select * from t1 where id in (1, 2, 3) -- by id\n and name = 'O''Brien'"),
///     "select * from t1 where id in (?) and name = ?"
/// );
/// assert_eq!(
///     profilis::db::redact(r#"UPDATE "users" SET "email" = "ann@example.com" WHERE "id" = 7"#),
///     r#"UPDATE "users" SET "email" = ? WHERE ? = ?"#
/// );
/// ```
pub fn redact(sql: &str) -> String {
    let mut tokens = tokenize(sql);
    redact_double_quoted(&mut tokens);
    let mut out = String::with_capacity(sql.len().min(1024));
    let mut k = 0;
    while k < tokens.len() {
        let token = &tokens[k];
        write_token(&mut out, token);
        if let Tok::Word(w) = token.tok {
            if w.eq_ignore_ascii_case("IN") {
                if let Some(close) = value_list_end(&tokens, k + 1) {
                    let open = &tokens[k + 1];
                    if open.space {
                        out.push(' ');
                    }
                    out.push_str("(?)");
                    k = close + 1;
                    continue;
                }
            } else if w.eq_ignore_ascii_case("VALUES") {
                if let Some(close) = value_list_end(&tokens, k + 1) {
                    let row = &tokens[k + 1..=close];
                    for t in row {
                        write_token(&mut out, t);
                    }
                    k = close + 1;
                    // Skip further rows of the same shape: `, (?, ?)`.
                    while matches!(tokens.get(k).map(|t| t.tok), Some(Tok::Punct(',')))
                        && value_list_end(&tokens, k + 1)
                            .is_some_and(|end| end - (k + 1) == row.len() - 1)
                    {
                        k += row.len() + 1;
                    }
                    continue;
                }
            }
        }
        k += 1;
    }
    out
}

// ---------------------------------------------------------------------------
// Timing

/// Ids of redacted queries for the process-wide ring, by hash of raw text.
static QUERY_IDS: IdCache = IdCache::new();

/// The id of `sql`'s redacted text in the process-wide ring `ring`: cached
/// by a hash of the raw text, redacted and interned on a miss.
fn global_query_id(ring: &Ring, sql: &str) -> StrId {
    let hash = hash_bytes(sql.as_bytes());
    if let Some(id) = QUERY_IDS.get(hash) {
        return id;
    }
    let id = ring.intern(&redact(sql));
    QUERY_IDS.insert(hash, id);
    id
}

/// The id of `sql`'s redacted text in `ring`, without a cache: redacts on
/// every call. Prefer [`timed`] with the process-wide ring, which caches.
pub fn query_id(ring: &Ring, sql: &str) -> StrId {
    ring.intern(&redact(sql))
}

/// What a query returned: how many rows, and whether it failed.
pub trait Rows {
    /// Rows returned or affected.
    fn rows(&self) -> u64;
    /// Whether the query failed (recorded as an error).
    fn failed(&self) -> bool {
        false
    }
}

/// An affected-row count, as `execute` calls return it.
impl Rows for usize {
    fn rows(&self) -> u64 {
        *self as u64
    }
}

/// An affected-row count, as `execute` calls return it.
impl Rows for u64 {
    fn rows(&self) -> u64 {
        *self
    }
}

/// No row count.
impl Rows for () {
    fn rows(&self) -> u64 {
        0
    }
}

/// One row per element.
impl<T> Rows for Vec<T> {
    fn rows(&self) -> u64 {
        self.len() as u64
    }
}

/// One row per element.
impl<T> Rows for [T] {
    fn rows(&self) -> u64 {
        self.len() as u64
    }
}

/// One row if `Some`, none if `None` (an optional single-row fetch).
impl<T> Rows for Option<T> {
    fn rows(&self) -> u64 {
        self.is_some() as u64
    }
}

/// The rows of `Ok`; `Err` is a failed query with no rows.
impl<T: Rows, E> Rows for Result<T, E> {
    fn rows(&self) -> u64 {
        self.as_ref().map_or(0, Rows::rows)
    }
    fn failed(&self) -> bool {
        self.is_err()
    }
}

#[inline]
fn record_db(ring: &Ring, id: StrId, start: Stamp, ctx: SpanContext, rows: u64, failed: bool) {
    let (dur_ns, ts_mono_ns) = clock::since(start);
    let fields = Fields {
        dur_ns,
        ts_mono_ns,
        value: rows,
        flags: if failed { FLAG_ERROR } else { 0 },
        span: Some(ctx),
        ..Fields::default()
    };
    ring.record(Kind::Db, id, &fields);
}

/// A DB event about to be timed: the ring, the query's id and its span (a
/// child of the current context). `None` when nothing is to be recorded (no
/// process-wide ring, or the trace is sampled out).
#[inline]
fn begin(sql: &str) -> Option<(&'static Ring, StrId, SpanContext)> {
    let ring = crate::global()?;
    let ctx = context::current().child();
    if !ctx.sampled {
        return None;
    }
    Some((ring, global_query_id(ring, sql), ctx))
}

/// Runs `query`, timing it, and records a DB event on the process-wide ring
/// under the redacted text of `sql`, with the rows and error flag from the
/// result (see [`Rows`]). The event is a child span of the current context.
///
/// ```
/// # struct Conn; impl Conn { fn execute(&self, _: &str) -> Result<usize, String> { Ok(1) } }
/// # let conn = Conn;
/// let sql = "UPDATE users SET last_seen = now() WHERE id = 42";
/// let updated = profilis::db::timed(sql, || conn.execute(sql))?;
/// # assert_eq!(updated, 1);
/// # Ok::<(), String>(())
/// ```
#[inline]
pub fn timed<T: Rows>(sql: &str, query: impl FnOnce() -> T) -> T {
    let Some((ring, id, ctx)) = begin(sql) else {
        return query();
    };
    let start = clock::now();
    let result = query();
    record_db(ring, id, start, ctx, result.rows(), result.failed());
    result
}

/// [`timed`] for results that do not implement [`Rows`]: `query` returns the
/// value and the row count.
///
/// ```
/// let sql = "SELECT name FROM users WHERE id = 7";
/// let name: String = profilis::db::timed_rows(sql, || ("ann".to_string(), 1));
/// # assert_eq!(name, "ann");
/// ```
#[inline]
pub fn timed_rows<T>(sql: &str, query: impl FnOnce() -> (T, u64)) -> T {
    let Some((ring, id, ctx)) = begin(sql) else {
        return query().0;
    };
    let start = clock::now();
    let (value, rows) = query();
    record_db(ring, id, start, ctx, rows, false);
    value
}

/// [`timed`] for a query future: times it from this call until it
/// completes. A future dropped before completing is recorded as failed.
///
/// ```
/// # async fn fetch_all() -> Result<Vec<u32>, String> { Ok(vec![1]) }
/// # async fn demo() -> Result<(), String> {
/// let users = profilis::db::timed_async("SELECT * FROM users", fetch_all()).await?;
/// # let _ = users; Ok(())
/// # }
/// ```
pub fn timed_async<F>(sql: &str, query: F) -> TimedQuery<F>
where
    F: Future,
    F::Output: Rows,
{
    TimedQuery {
        inner: query,
        pending: begin(sql).map(|(ring, id, ctx)| (ring, id, ctx, clock::now())),
    }
}

pin_project_lite::pin_project! {
    /// A query future being timed; see [`timed_async`].
    #[must_use = "futures do nothing unless polled"]
    pub struct TimedQuery<F> {
        #[pin]
        inner: F,
        pending: Option<(&'static Ring, StrId, SpanContext, Stamp)>,
    }

    impl<F> PinnedDrop for TimedQuery<F> {
        fn drop(this: Pin<&mut Self>) {
            // Dropped before completion: cancelled or unwound by a panic.
            if let Some((ring, id, ctx, start)) = this.project().pending.take() {
                record_db(ring, id, start, ctx, 0, true);
            }
        }
    }
}

impl<F> Future for TimedQuery<F>
where
    F: Future,
    F::Output: Rows,
{
    type Output = F::Output;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let result = std::task::ready!(this.inner.poll(cx));
        if let Some((ring, id, ctx, start)) = this.pending.take() {
            record_db(ring, id, start, ctx, result.rows(), result.failed());
        }
        Poll::Ready(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_keep_identifiers_with_digits() {
        assert_eq!(
            redact("SELECT t1.col2, t2.x3 FROM tab1 t1 JOIN tab2 t2 ON t1.id=t2.id"),
            "SELECT t1.col2, t2.x3 FROM tab1 t1 JOIN tab2 t2 ON t1.id=t2.id"
        );
    }

    #[test]
    fn subtraction_keeps_its_operator() {
        assert_eq!(
            redact("SELECT a - 1, b-2 FROM t"),
            "SELECT a - ?, b-? FROM t"
        );
        assert_eq!(redact("SELECT (a) - 1"), "SELECT (a) - ?");
        assert_eq!(redact("SELECT -1, x = -2.5"), "SELECT ?, x = ?");
    }

    /// Asserts `redact(sql) == expected`, that no `secret` is left in it
    /// and that redacting again changes nothing.
    fn redacts(sql: &str, expected: &str) {
        let out = redact(sql);
        assert_eq!(out, expected, "{sql:?}");
        assert!(!out.contains("secret"), "{sql:?} -> {out:?}");
        assert_eq!(redact(&out), out, "not idempotent: {sql:?}");
    }

    #[test]
    fn double_quoted_values_are_redacted() {
        // SQLite (for a name that is no column) and MySQL read these as
        // strings.
        redacts(
            r#"SELECT * FROM users WHERE email = "ann@secret.example""#,
            "SELECT * FROM users WHERE email = ?",
        );
        redacts(
            r#"SELECT "name" FROM "users" WHERE "id" = 7"#,
            r#"SELECT ? FROM "users" WHERE ? = ?"#,
        );
        redacts(
            r#"INSERT INTO "t" ("a", "b") VALUES ("secret x", 'y')"#,
            r#"INSERT INTO "t" ("a", "b") VALUES (?, ?)"#,
        );
        redacts(
            r#"UPDATE "t" SET "c" = "secret", "d" = "secret" WHERE "k" = "secret""#,
            r#"UPDATE "t" SET "c" = ?, "d" = ? WHERE ? = ?"#,
        );
        redacts(
            r#"SELECT * FROM t WHERE a IN ("secret", "secret") AND b LIKE "secret%""#,
            "SELECT * FROM t WHERE a IN (?) AND b LIKE ?",
        );
        redacts(
            r#"INSERT INTO t VALUES ("secret", 1), ("secret", 2)"#,
            "INSERT INTO t VALUES (?, ?)",
        );
        redacts(
            r#"SELECT lower("secret"), CASE WHEN a THEN "secret" ELSE "secret" END FROM t"#,
            "SELECT lower(?), CASE WHEN a THEN ? ELSE ? END FROM t",
        );
        // A condition of ON, unlike the table of CREATE INDEX ... ON.
        redacts(
            r#"SELECT * FROM a JOIN b ON "secret" = "secret""#,
            "SELECT * FROM a JOIN b ON ? = ?",
        );
        // FROM of a function or IS DISTINCT FROM takes a value.
        redacts(
            r#"SELECT EXTRACT(YEAR FROM "secret"), a IS DISTINCT FROM "secret" FROM t"#,
            "SELECT EXTRACT(YEAR FROM ?), a IS DISTINCT FROM ? FROM t",
        );
        // A name list only after a table: not a function's arguments.
        redacts(r#"SELECT f("secret", "secret")"#, "SELECT f(?, ?)");
        // MySQL: a SET column's members, a plugin's authentication string.
        redacts(
            r#"CREATE TABLE t (c SET("secret", "secret"))"#,
            "CREATE TABLE t (c SET(?, ?))",
        );
        redacts(
            r#"CREATE USER u IDENTIFIED WITH "p" AS "secret""#,
            "CREATE USER u IDENTIFIED WITH ? AS ?",
        );
        redacts(
            r#"INSERT INTO t ("a" || "secret") VALUES (1)"#,
            r#"INSERT INTO t (? || ?) VALUES (?)"#,
        );
    }

    #[test]
    fn double_quoted_names_are_kept() {
        for sql in [
            r#"SELECT "s"."t"."c", t."c", "t".* FROM "s"."t""#,
            r#"SELECT count(*) AS "n" FROM t"#,
            r#"SELECT * FROM "a" JOIN "b" ON "a"."id" = "b"."id""#,
            r#"DELETE FROM "t" WHERE x = ?"#,
            r#"CREATE TABLE IF NOT EXISTS "t" ("a" TEXT, "b" INTEGER REFERENCES "u" ("id"))"#,
            r#"CREATE UNIQUE INDEX "i" ON "t" ("a", "b")"#,
            r#"CREATE INDEX IF NOT EXISTS "s"."i" ON "s"."t" ("a" DESC)"#,
            r#"CREATE INDEX ON "t" ("a")"#,
            r#"WITH "c" ("x") AS (SELECT 1) SELECT "c"."x" FROM "c""#,
            r#"SELECT * FROM a JOIN b USING ("id")"#,
            r#"INSERT INTO t ("a") VALUES (?) ON CONFLICT ("a") DO UPDATE SET "b" = excluded."b""#,
            r#"SELECT "my func"(x) FROM t"#,
            r#"SELECT CAST(x AS "int4") FROM t"#,
            r#"ALTER TABLE "t" ADD COLUMN "c" TEXT"#,
            r#"SELECT * FROM (SELECT * FROM "t") AS "q""#,
            r#"UPDATE t SET ("a", "b") = (?, ?)"#,
        ] {
            redacts(sql, &sql.replace("1", "?"));
        }
    }

    #[test]
    fn double_quoted_edge_cases() {
        // Doubled quotes escape a quote, as a name and as a value.
        redacts(r#"SELECT * FROM "a""b""#, r#"SELECT * FROM "a""b""#);
        redacts(r#"WHERE x = "se""cret" AND y = 1"#, "WHERE x = ? AND y = ?");
        // An unterminated one swallows the rest, kept only as a name.
        redacts(r#"WHERE x = "secret AND y = 1"#, "WHERE x = ?");
        redacts(r#"SELECT * FROM "t"#, r#"SELECT * FROM "t"#);
        // MySQL reads a backslash as an escape in a double-quoted string,
        // SQLite and PostgreSQL do not: such text is never a name, and
        // where the readings end it differently the rest is redacted.
        redacts(r#"WHERE x = "C:\dir" AND y = 1"#, "WHERE x = ? AND y = ?");
        redacts(r#"WHERE x = "a\\" AND y = 1"#, "WHERE x = ? AND y = ?");
        redacts(r#"WHERE x = "a\" secret words" AND y = 1"#, "WHERE x = ?");
        redacts(r#"WHERE x = "a\" AND y = "secret""#, "WHERE x = ?");
        redacts(r#"SELECT * FROM "dir\" WHERE secret""#, "SELECT * FROM ?");
        // Backticks are MySQL and SQLite names only.
        redacts(
            "SELECT `a` FROM `t` WHERE `b` = ?",
            "SELECT `a` FROM `t` WHERE `b` = ?",
        );
        // A statement after `;` starts afresh.
        redacts(
            r#"SELECT a FROM "t"; SELECT EXTRACT(DAY FROM "secret")"#,
            r#"SELECT a FROM "t"; SELECT EXTRACT(DAY FROM ?)"#,
        );
    }

    #[test]
    fn digits_of_other_scripts_are_not_numbers() {
        // A letter of any script starts a word, and digits of any script
        // continue one; a digit of another script (NKo nine, U+07C9) starts
        // none: it stays as punctuation, and ASCII digits after it are
        // still a number.
        assert_eq!(redact("SELECT é_col2 FROM t"), "SELECT é_col2 FROM t");
        assert_eq!(redact("SELECT a\u{7c9}1 FROM t"), "SELECT a\u{7c9}1 FROM t");
        assert_eq!(redact("x = \u{7c9}e8r"), "x = \u{7c9}e8r");
        assert_eq!(redact("x = \u{7c9}12345"), "x = \u{7c9}?");
    }
}
