//! SQL redaction (`profilis::db::redact`) of arbitrary text, and of
//! generated queries with marked literals.
//!
//! Properties, for any input text:
//! - it never panics;
//! - it is idempotent: `redact(redact(x)) == redact(x)`;
//! - no string literal survives: outside quoted identifiers (`"..."`
//!   where only a name can stand, `` `...` ``) the output has no `'`;
//! - no number survives: outside quoted identifiers, every ASCII digit in
//!   the output belongs to an identifier (a run of letters, digits, `_` and
//!   `$` that starts with a letter or `_`, such as `t1`, `col_2`, `a$1`).
//!
//! For generated queries (keywords, identifiers, quoted names, operators,
//! placeholders, casts and comments, with string, dollar-quoted, hex and
//! decimal literals, and double-quoted text in value positions (`= "..."`,
//! `IN ("...", "...")`, `VALUES ("...")`, `THEN "..."`, `LIKE "..."`,
//! `lower("...")`, with doubled quotes and backslashes), whose content
//! carries a marker): the output never holds a marker, i.e. no literal
//! content, and is what redacting it again gives. SQLite and MySQL read
//! such double-quoted text as a string, whatever precedes it.
//!
//! The generated queries also hold text the dialects read differently, so
//! that a marker after it is a literal to at least one of SQLite, MySQL and
//! PostgreSQL: a string ending in a backslash (`'x\' AND b = 'SECRET'`),
//! `#` and `--x` lines (comments to some, SQL to others), backtick names and
//! dollar quotes with quotes inside, `/*! */` and unbalanced nested
//! comments, and numbers with letters glued on (`0b97531`).
#![no_main]

#[path = "common/mod.rs"]
mod common;

use common::Bytes;
use libfuzzer_sys::fuzz_target;
use profilis::db::redact;

fuzz_target!(|data: &[u8]| {
    let (mode, rest) = data.split_first().unwrap_or((&0, &[]));
    if mode & 1 == 0 {
        check(&String::from_utf8_lossy(rest));
    } else {
        let sql = generate(&mut Bytes::new(rest));
        let out = check(&sql);
        for marker in ["SECRET", "97531", "DEAD"] {
            assert!(
                !out.contains(marker),
                "literal content kept: {sql:?} -> {out:?}"
            );
        }
    }
});

fn check(sql: &str) -> String {
    let out = redact(sql);
    assert_eq!(redact(&out), out, "not idempotent for {sql:?}");
    let mut chars = out.char_indices().peekable();
    let mut run_start: Option<char> = None;
    while let Some((i, c)) = chars.next() {
        if c == '"' || c == '`' {
            // A quoted identifier, kept as written (doubled quote escapes).
            run_start = None;
            loop {
                match chars.next() {
                    None => break,
                    Some((_, q)) if q == c => {
                        if chars.peek().is_some_and(|&(_, n)| n == c) {
                            chars.next();
                        } else {
                            break;
                        }
                    }
                    Some(_) => {}
                }
            }
            continue;
        }
        assert!(c != '\'', "a string literal survived: {sql:?} -> {out:?}");
        // Inside a word: letters and digits of any script, `_` and `$`
        // (`a$b`). A word starts with a letter or `_`, as in SQL; an ASCII
        // digit starting a run is a number. A digit of another script (say
        // NKo `߉`) starts no word and is no SQL number: it is punctuation to
        // the redactor and to the database alike.
        let word_char = match run_start {
            Some(_) => c.is_alphanumeric() || c == '_' || c == '$',
            None => c.is_alphabetic() || c == '_' || c.is_ascii_digit(),
        };
        if !word_char {
            run_start = None;
            continue;
        }
        let start = *run_start.get_or_insert(c);
        if c.is_ascii_digit() {
            assert!(
                start.is_alphabetic() || start == '_',
                "a number survived at byte {i}: {sql:?} -> {out:?}"
            );
        }
    }
    out
}

const WORDS: &[&str] = &[
    "SELECT",
    "FROM",
    "WHERE",
    "AND",
    "OR",
    "NOT",
    "IN",
    "VALUES",
    "INSERT",
    "INTO",
    "UPDATE",
    "SET",
    "LIMIT",
    "OFFSET",
    "BETWEEN",
    "LIKE",
    "IS",
    "NULL",
    "CASE",
    "WHEN",
    "THEN",
    "ELSE",
    "END",
    "ORDER",
    "BY",
    "GROUP",
    "HAVING",
    "JOIN",
    "ON",
    "AS",
    "users",
    "t1",
    "col_2",
    "a.b",
    "\"order\"",
    "`key`",
    "\"odd \"\" name\"",
    "(",
    ")",
    ",",
    "=",
    "<>",
    "<=",
    "+",
    "-",
    "*",
    "/",
    "||",
    "::int",
    "?",
    "$1",
    "?2",
    ":name",
    "@p1",
    "@@version",
    "-- note\n",
    "/* note */",
    "/* a /* nested */ one */",
    ";",
    "count(*)",
    "é_col",
];

/// A query of up to 24 fragments separated by spaces; literals carry a
/// marker the output must not contain.
fn generate(b: &mut Bytes) -> String {
    let mut parts: Vec<String> = Vec::new();
    for _ in 0..24 {
        if b.is_empty() {
            break;
        }
        let pick = b.u8();
        let part = match pick % 10 {
            0 => {
                // 'SECRET...' with quotes and backslashes escaped by doubling.
                let content = b.text(12).replace('\\', "\\\\").replace('\'', "''");
                let prefix = ["", "E", "N", "n", "e"][(pick / 8 % 5) as usize];
                format!("{prefix}'SECRET{content}'")
            }
            1 => {
                let content = b.text(12).replace('$', "");
                if pick & 8 == 0 {
                    format!("$$SECRET{content}$$")
                } else {
                    format!("$tag$SECRET{content}$tag$")
                }
            }
            2 => {
                let sign = ["", "-", "+"][(pick / 8 % 3) as usize];
                let tail = b.u16();
                let frac = ["", ".5", "e3", ".25E-7"][(pick / 32 % 4) as usize];
                format!("{sign}97531{tail}{frac}")
            }
            3 => "0xDEAD".to_string(),
            4 => "X'DEAD'".to_string(),
            8 => {
                // "SECRET..." (quotes doubled, backslashes as they come) in
                // a position where only a value can stand, followed by a
                // word so that the next fragment cannot make it a
                // function's name (`"x" (`).
                let mut literal = || format!("\"SECRET{}\"", b.text(12).replace('"', "\"\""));
                match pick / 16 % 6 {
                    0 => format!("= {} AND", literal()),
                    1 => format!("IN ({}, {})", literal(), literal()),
                    2 => format!("VALUES ({}, 1)", literal()),
                    3 => format!("THEN {} ELSE", literal()),
                    4 => format!("LIKE {} OR", literal()),
                    _ => format!("= lower({})", literal()),
                }
            }
            9 => {
                // Read differently by the dialects; free text may hold any
                // quote, backslash or comment mark, but no marker (it may
                // stand where every dialect reads a name or a comment).
                let text = b.text(10).to_lowercase().replace('9', "8");
                match pick / 16 % 8 {
                    0 => format!(
                        "'{}\\' AND b = 'SECRET{}'",
                        text.replace('\'', "''"),
                        b.text(6).replace('\\', "\\\\").replace('\'', "''")
                    ),
                    1 => format!("# {}\n", text.replace('\n', " ")),
                    2 => format!("--{}\n", text.replace('\n', " ")),
                    3 => format!("`{}`", text.replace('`', "``")),
                    4 => format!("/*! {} */", text.replace("*/", "")),
                    5 => format!("$${}$$", text.replace('$', "")),
                    6 => "/* a /* b */".to_string(),
                    _ => ["0b97531", "0x1F97531", "97531abc", "0o97531"][b.u8() as usize % 4]
                        .to_string(),
                }
            }
            _ => WORDS[b.u8() as usize % WORDS.len()].to_string(),
        };
        parts.push(part);
    }
    parts.join(" ")
}
