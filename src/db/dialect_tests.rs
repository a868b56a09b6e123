//! Text the dialects read differently (SQLite, MySQL, PostgreSQL): where
//! one reads a literal, nothing of it survives; where they disagree on
//! where a literal ends, the rest of the text is one value.

use super::redact;

/// Asserts `redact(sql) == expected`, that no `secret` is left and that
/// redacting again changes nothing.
fn redacts(sql: &str, expected: &str) {
    let out = redact(sql);
    assert_eq!(out, expected, "{sql:?}");
    assert!(!out.contains("secret"), "{sql:?} -> {out:?}");
    assert_eq!(redact(&out), out, "not idempotent: {sql:?}");
}

#[test]
fn a_single_quoted_string_ending_in_a_backslash_hides_nothing() {
    // MySQL: one string `a' AND b = `, then `secret`; SQLite and
    // PostgreSQL: `'a\'`, then the string `secret`.
    redacts(
        r"SELECT * FROM t WHERE a = 'a\' AND b = 'secret'",
        "SELECT * FROM t WHERE a = ?",
    );
    redacts(
        r"WHERE path = 'C:\dir\' AND n = 'secret' AND m = 1",
        "WHERE path = ?",
    );
    redacts(r"WHERE a = E'x\' AND b = 'secret'", "WHERE a = ?");
    redacts(r"WHERE a = N'x\' AND b = 'secret'", "WHERE a = ?");
    // Where both readings end at the same quote, redaction goes on.
    redacts(
        r"WHERE a = 'x\\y' AND b = 'it''s' AND c = 1",
        "WHERE a = ? AND b = ? AND c = ?",
    );
    redacts(r"WHERE a = 'secret\n' AND b = 2", "WHERE a = ? AND b = ?");
    // Or where the earlier end leaves nothing that runs past the later one:
    // `E'\'x\''` is one string with escapes; `'\'`, `x`, `\` and `''`
    // without.
    redacts(
        r"WHERE a = E'\'secret\'' AND b = 'secret'",
        "WHERE a = ? AND b = ?",
    );
    // `E'it\'s'`: without escapes, `s'` opens a string that runs on.
    redacts(r"WHERE a = E'it\'s' AND b = 'secret'", "WHERE a = ?");
}

#[test]
fn mysql_line_comments_that_hide_a_string_end_the_text() {
    // `#` starts a comment in MySQL only: the `'` below starts a string to
    // PostgreSQL that runs to the next line.
    redacts("SELECT 1 # it's\nFROM t WHERE a = 'secret'", "SELECT ? ?");
    // A `#` line that ends where it ends for everyone stays SQL.
    redacts(
        "SELECT data #> '{a,b}' FROM t WHERE x = 1",
        "SELECT data #> ? FROM t WHERE x = ?",
    );
    // The newline ending it stays, so the `#` comments out as much in the
    // output as in the input.
    redacts(
        "SELECT a # note\nFROM t WHERE x = 1",
        "SELECT a # note\nFROM t WHERE x = ?",
    );
    redacts(
        "SELECT a # note 42\n  -- more\n `b\nc` FROM t",
        "SELECT a # note ?\n`b\nc` FROM t",
    );
    redacts("SELECT a # x =\n-42 `b\nc`", "SELECT a # x =\n? `b\nc`");
    // A `$` in a number may open a dollar quote; in a name it does not.
    redacts("SELECT a#b, 18.9$$x or$$\n`b\nc`", "SELECT a?");
    redacts("SELECT a#b, or$$\n`b\nc`", "SELECT a#b, or$$\n`b\nc`");
    redacts(
        "WHERE a IN # x\n(1, 2) AND `b\nc`",
        "WHERE a IN # x\n(?, ?) AND `b\nc`",
    );
    // `--` before a non-space is SQL to MySQL (`1--1` is `1 - -1`).
    redacts("SELECT a--'\nsecret_value' FROM t", "SELECT a?");
    redacts(
        "SELECT a -- it's\nFROM t WHERE x = 'secret'",
        "SELECT a FROM t WHERE x = ?",
    );
}

#[test]
fn block_comments_read_differently_end_the_text() {
    // PostgreSQL nests comments; SQLite and MySQL end them at the first
    // `*/`, and read `'secret'` as a string.
    redacts("SELECT /* a /* b */ 'secret' */ 1 FROM t", "SELECT ?");
    // MySQL runs `/*! ... */` as SQL: a string in it may run past the `*/`.
    redacts("SELECT 1 /*! 'a */ secret' */ FROM t", "SELECT ? ?");
    redacts(
        "SELECT 1 /*!50000 STRAIGHT_JOIN */ FROM t",
        "SELECT ? FROM t",
    );
}

#[test]
fn quoted_names_and_dollar_strings_that_are_sql_elsewhere() {
    // A backtick is no quote to PostgreSQL: `'s` opens a string there.
    redacts(
        "SELECT `it's` FROM t WHERE b = 'x' AND c = 'secret'",
        "SELECT ?",
    );
    redacts("SELECT `col 1` FROM `t`", "SELECT `col 1` FROM `t`");
    // `$$` quotes only in PostgreSQL.
    redacts("SELECT $$a$$, b FROM t", "SELECT ?, b FROM t");
    redacts("SELECT $$ it's $$, 'secret' FROM t", "SELECT ?");
    redacts(
        "SELECT $tag$ any text $tag$, a FROM t",
        "SELECT ?, a FROM t",
    );
}

#[test]
fn numbers_with_letters_glued_on_are_one_value() {
    redacts(
        "WHERE f = 0b1010 AND x = 0x1Fsecret AND y = 12secret AND z = 0o17",
        "WHERE f = ? AND x = ? AND y = ? AND z = ?",
    );
    redacts("SELECT t1.col2 FROM t1", "SELECT t1.col2 FROM t1");
}
