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

#[cfg(test)]
mod dialect_tests;
mod quoted;
mod tokens;

use quoted::redact_double_quoted;
use tokens::{tokenize, value_list_end, Tok, Token};

// ---------------------------------------------------------------------------
// Redaction

/// What comes before `token` in the output: a newline where a `#` line
/// ended, a space where whitespace or a comment was, else nothing.
fn write_gap(out: &mut String, token: &Token<'_>) {
    if token.newline && !out.is_empty() {
        out.push('\n');
    } else if token.space && !out.is_empty() {
        out.push(' ');
    }
}

fn write_token(out: &mut String, token: &Token<'_>) {
    write_gap(out, token);
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
///   space (a newline after a line holding `#`, which MySQL reads as a
///   comment to the end of the line).
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
///
/// Last, the patterns added with
/// [`redact::add_sql_pattern`](crate::redact::add_sql_pattern) replace what
/// they match in the result with `?`.
pub fn redact(sql: &str) -> String {
    crate::redact::sql_patterns(redact_literals(sql))
}

/// The literal redaction of [`redact`], without the user's patterns.
fn redact_literals(sql: &str) -> String {
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
                    write_gap(&mut out, &tokens[k + 1]);
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
/// by a hash of the raw text (and of the SQL patterns' generation, so a
/// new pattern applies to cached statements too), redacted and interned on
/// a miss.
fn global_query_id(ring: &Ring, sql: &str) -> StrId {
    let hash = hash_bytes(sql.as_bytes())
        ^ crate::redact::sql_generation().wrapping_mul(0x9E37_79B9_7F4A_7C15);
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
