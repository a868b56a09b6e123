//! The DB helper: redaction of real SQL, and timed queries recorded into a
//! real ring file under their redacted text.

use profilis::record::FLAG_ERROR;
use profilis::{db, Consumer, Kind, RingOptions};

/// (input, expected redaction)
const TABLE: &[(&str, &str)] = &[
    // SELECT with string and numeric literals.
    (
        "SELECT * FROM users WHERE email = 'ann@example.com' AND age >= 30",
        "SELECT * FROM users WHERE email = ? AND age >= ?",
    ),
    // Quotes inside strings: doubled and backslash-escaped.
    (
        "SELECT id FROM people WHERE name = 'O''Brien' OR nick = 'it\\'s me'",
        "SELECT id FROM people WHERE name = ? OR nick = ?",
    ),
    // A string holding SQL-looking text and comment markers.
    (
        "INSERT INTO notes (body) VALUES ('-- not a comment /* nor this */ 42')",
        "INSERT INTO notes (body) VALUES (?)",
    ),
    // IN lists of any length collapse; placeholders in them too.
    (
        "SELECT * FROM orders WHERE status IN ('new', 'paid', 'sent') AND id NOT IN (1,2,3,4)",
        "SELECT * FROM orders WHERE status IN (?) AND id NOT IN (?)",
    ),
    (
        "DELETE FROM sessions WHERE id IN ($1, $2, $3)",
        "DELETE FROM sessions WHERE id IN (?)",
    ),
    // A subquery in IN is kept.
    (
        "SELECT * FROM a WHERE id IN (SELECT a_id FROM b WHERE n > 5)",
        "SELECT * FROM a WHERE id IN (SELECT a_id FROM b WHERE n > ?)",
    ),
    // Placeholders of every dialect normalise to `?`.
    (
        "UPDATE accounts SET balance = $1, updated = :now WHERE id = @p1 AND org = ? AND x = ?2",
        "UPDATE accounts SET balance = ?, updated = ? WHERE id = ? AND org = ? AND x = ?",
    ),
    // Casts and system variables are not placeholders.
    (
        "SELECT created::date, @@ROWCOUNT FROM t WHERE a = 1::int",
        "SELECT created::date, @@ROWCOUNT FROM t WHERE a = ?::int",
    ),
    // Multi-line, comments of both kinds, indentation collapsed.
    (
        "SELECT u.id,\n       u.name -- the display name\n  FROM users u\n /* only active\n    ones */\n WHERE u.active = true\n   AND u.score > 9.5\n",
        "SELECT u.id, u.name FROM users u WHERE u.active = true AND u.score > ?",
    ),
    // Nested block comments (PostgreSQL).
    ("SELECT /* a /* b */ c */ 1", "SELECT ?"),
    // Dollar-quoted strings, with and without a tag.
    (
        "SELECT $$a 'quoted' $1 string$$, $body$ x $$ y $body$ FROM t",
        "SELECT ?, ? FROM t",
    ),
    // SQL to SQLite and MySQL, where the `'` of `it's` opens a string
    // running past the dollar quote: the rest is one value.
    (
        "SELECT $$it's a 'quoted' $1 string$$, $body$ x $$ y $body$ FROM t",
        "SELECT ?",
    ),
    // E'' strings with backslash escapes, N'' and X'' literals.
    (
        "SELECT E'line\\n\\'quoted\\'', N'unicode', X'DEADBEEF', B'1010'",
        "SELECT ?, ?, ?, ?",
    ),
    // Hex, floats, exponents, negatives.
    (
        "SELECT * FROM m WHERE a = 0x1F AND b = -3.25e-4 AND c < .5 AND d = -7 AND e = +8",
        "SELECT * FROM m WHERE a = ? AND b = ? AND c < ? AND d = ? AND e = ?",
    ),
    // Subtraction is not a sign.
    (
        "SELECT price - 5, qty-1 FROM items LIMIT 10 OFFSET -0",
        "SELECT price - ?, qty-? FROM items LIMIT ? OFFSET ?",
    ),
    // Identifiers with digits and quoted identifiers are kept.
    (
        "SELECT t1.col2, \"Order 66\".\"x\", `weird``name` FROM tab1 AS t1 JOIN \"Order 66\" ON t1.id = 3",
        "SELECT t1.col2, \"Order 66\".\"x\", `weird``name` FROM tab1 AS t1 JOIN \"Order 66\" ON t1.id = ?",
    ),
    // Multi-row VALUES of one shape collapse to one row.
    (
        "INSERT INTO events (kind, n) VALUES ('a', 1), ('b', 2), ('c', 3)",
        "INSERT INTO events (kind, n) VALUES (?, ?)",
    ),
    (
        "INSERT INTO t(a,b) VALUES(?,?) ON CONFLICT (a) DO UPDATE SET b = excluded.b",
        "INSERT INTO t(a,b) VALUES(?,?) ON CONFLICT (a) DO UPDATE SET b = excluded.b",
    ),
    // UPDATE with arithmetic and a LIKE pattern.
    (
        "UPDATE stock SET qty = qty - 2 WHERE sku LIKE 'AB-%' AND warehouse_id = 17",
        "UPDATE stock SET qty = qty - ? WHERE sku LIKE ? AND warehouse_id = ?",
    ),
    // An unterminated string swallows the rest rather than leaking it.
    (
        "SELECT * FROM t WHERE secret = 'hunter2",
        "SELECT * FROM t WHERE secret = ?",
    ),
    // Non-ASCII identifiers and strings.
    (
        "SELECT prénom FROM clients WHERE ville = 'Zürich'",
        "SELECT prénom FROM clients WHERE ville = ?",
    ),
    // Already-redacted text is unchanged.
    (
        "SELECT * FROM users WHERE id = ?",
        "SELECT * FROM users WHERE id = ?",
    ),
];

#[test]
fn redaction_table() {
    let mut failures = Vec::new();
    for (input, expected) in TABLE {
        let got = db::redact(input);
        if got != *expected {
            failures.push(format!(
                "input:    {input:?}\nexpected: {expected:?}\ngot:      {got:?}"
            ));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n\n"));
}

#[test]
fn queries_differing_only_in_values_read_the_same() {
    let a = db::redact("SELECT * FROM t WHERE a = 'x' AND b IN (1, 2) AND c = -1.5");
    let b = db::redact("SELECT * FROM t WHERE a = 'a much longer value' AND b IN (9) AND c = 42");
    assert_eq!(a, b);
}

#[test]
fn redaction_is_idempotent_on_the_table() {
    for (input, _) in TABLE {
        let once = db::redact(input);
        assert_eq!(db::redact(&once), once, "{input:?}");
    }
}

#[test]
fn timed_queries_reach_the_ring_redacted_with_rows_and_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.ring");
    profilis::init_with(&path, RingOptions::default().capacity(1024)).unwrap();
    let mut consumer = Consumer::attach(&path).unwrap();

    let secret = "hunter2-secret-value";
    for i in 0..50u32 {
        let sql = format!("SELECT * FROM users WHERE password = '{secret}' AND id = {i}");
        let rows: Vec<u32> = db::timed(&sql, || (0..i % 4).collect());
        assert_eq!(rows.len() as u32, i % 4);
    }
    let failed: Result<usize, &str> = db::timed("DELETE FROM t WHERE id = 99", || Err("locked"));
    assert!(failed.is_err());
    let value: String = db::timed_rows("SELECT name FROM u WHERE id = 5", || ("x".into(), 1));
    assert_eq!(value, "x");

    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let affected = runtime.block_on(db::timed_async(
        "UPDATE u SET n = n + 1 WHERE id = 8",
        async { Ok::<usize, ()>(3) },
    ));
    assert_eq!(affected, Ok(3));

    let parent = profilis::span("handler");
    let parent_ctx = parent.context();
    db::timed("SELECT 1", || ());
    drop(parent);

    let batch = consumer.read(1000);
    let db_events: Vec<_> = batch.events.iter().filter(|e| e.kind == Kind::Db).collect();
    assert_eq!(db_events.len(), 54);
    let mut saw = std::collections::BTreeMap::new();
    for e in &db_events {
        let name = batch.names.name(e.name);
        assert!(
            !name.contains(secret),
            "literal leaked into the ring: {name}"
        );
        assert!(e.dur_ns > 0 || e.ts_mono_ns > 0);
        *saw.entry(name.to_string()).or_insert(0u32) += 1;
    }
    assert_eq!(saw["SELECT * FROM users WHERE password = ? AND id = ?"], 50);
    let users: Vec<_> = db_events
        .iter()
        .filter(|e| {
            &*batch.names.name(e.name) == "SELECT * FROM users WHERE password = ? AND id = ?"
        })
        .collect();
    for (i, e) in users.iter().enumerate() {
        assert_eq!(e.value, (i % 4) as u64, "rows");
        assert_eq!(e.flags & FLAG_ERROR, 0);
    }
    let delete = db_events
        .iter()
        .find(|e| &*batch.names.name(e.name) == "DELETE FROM t WHERE id = ?")
        .unwrap();
    assert_eq!(delete.flags & FLAG_ERROR, FLAG_ERROR);
    let update = db_events
        .iter()
        .find(|e| &*batch.names.name(e.name) == "UPDATE u SET n = n + ? WHERE id = ?")
        .unwrap();
    assert_eq!(update.value, 3);
    let nested = db_events
        .iter()
        .find(|e| &*batch.names.name(e.name) == "SELECT ?")
        .unwrap();
    assert_eq!(nested.trace_id, parent_ctx.trace_id);
    assert_eq!(nested.parent_span_id, parent_ctx.span_id);

    // Nothing in the whole string table holds the secret.
    let bytes = std::fs::read(&path).unwrap();
    assert!(
        !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
        "the secret literal reached the ring file"
    );
}
