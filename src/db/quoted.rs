//! Double-quoted text: a name where it can only be a name, a value
//! everywhere else (SQLite and MySQL read `"..."` as a string where a value
//! can stand). See [`redact`](super::redact).

use super::tokens::{Tok, Token};

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
/// [`redact`](super::redact)).
pub(super) fn redact_double_quoted(tokens: &mut [Token<'_>]) {
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
