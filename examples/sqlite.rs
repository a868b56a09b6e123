//! Real SQLite queries (rusqlite, in memory) timed with `profilis::db`, then
//! read back from the ring to show what was recorded: the redacted query
//! text, its rows and duration, never a literal value.
//!
//! ```text
//! cargo run --example sqlite -- [RING]
//! ```
//!
//! Without RING, a ring file is created in the temp directory and removed
//! at the end.

use anyhow::Context as _;
use profilis::{db, Consumer, Kind, RingOptions};
use rusqlite::{params, Connection};

fn main() -> anyhow::Result<()> {
    let given = std::env::args().nth(1).map(std::path::PathBuf::from);
    let path = given.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("profilis-sqlite-{}.ring", std::process::id()))
    });
    profilis::init_with(&path, RingOptions::default().capacity(4096))
        .with_context(|| format!("opening ring {}", path.display()))?;
    let mut consumer =
        Consumer::attach(&path).with_context(|| format!("attaching to {}", path.display()))?;

    let conn = Connection::open_in_memory().context("opening SQLite")?;
    let ddl =
        "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT, age INTEGER)";
    db::timed(ddl, || conn.execute(ddl, [])).context("creating table")?;

    // Literal values in the text: each statement is different text, but all
    // are recorded under one redacted name.
    for (i, name) in ["ann", "bob", "o'hara", "dee"].iter().enumerate() {
        let sql = format!(
            "INSERT INTO users (name, email, age) VALUES ('{}', '{}@example.com', {})",
            name.replace('\'', "''"),
            name.replace('\'', ""),
            30 + i
        );
        db::timed(&sql, || conn.execute(&sql, [])).context("inserting")?;
    }
    // Bound parameters.
    let insert = "INSERT INTO users (name, email, age) VALUES (?1, ?2, ?3)";
    for (name, age) in [("eve", 41), ("fay", 19)] {
        db::timed(insert, || {
            conn.execute(insert, params![name, format!("{name}@example.com"), age])
        })
        .context("inserting")?;
    }
    let select = "SELECT id, name FROM users\n WHERE age > ?1 -- adults only\n ORDER BY name";
    let adults: Vec<(i64, String)> = db::timed(select, || {
        let mut stmt = conn.prepare(select)?;
        let rows = stmt.query_map([18], |r| Ok((r.get(0)?, r.get(1)?)))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
    })
    .context("selecting")?;
    let by_list = "SELECT count(*) FROM users WHERE id IN (1, 2, 3) AND name <> 'nobody'";
    let count: i64 = db::timed_rows(by_list, || {
        let n = conn.query_row(by_list, [], |r| r.get(0));
        (n, 1)
    })
    .context("counting")?;
    let bad = "SELECT * FROM no_such_table WHERE secret = 'hunter2'";
    let failed = db::timed(bad, || conn.execute(bad, []));
    println!(
        "{} adults, {count} in the id list, bad query failed: {}",
        adults.len(),
        failed.is_err()
    );

    println!("\nrecorded DB events ({}):", path.display());
    consumer.poll(1000, |event, names| {
        if event.kind == Kind::Db {
            println!(
                "  {:>8} ns  rows={:<2} error={:<5} {}",
                event.dur_ns,
                event.value,
                event.flags & profilis::record::FLAG_ERROR != 0,
                names.name(event.name)
            );
        }
    });
    consumer.commit();
    if given.is_none() {
        std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
    }
    Ok(())
}
