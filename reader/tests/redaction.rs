//! Redaction end to end: a writer records exception messages and SQL with
//! values in them, the reader process drains the ring into JSONL, and no
//! value arrives: the messages are redacted in the writer (the default
//! rules and a user pattern), the SQL by the literal redactor and a user
//! SQL pattern.

mod common;

use common::*;
use profilis::record::FLAG_ERROR;
use profilis::{redact, Fields, Kind};
use std::time::Duration;

#[test]
fn messages_and_sql_reach_the_jsonl_redacted() {
    let tmp = tempfile::tempdir().unwrap();
    let ring_path = tmp.path().join("app.ring");
    let ring = ring(&ring_path, 1024);
    redact::add_message_pattern(r"tenant-[a-z]+").unwrap();
    redact::add_sql_pattern(r"\btenant_[a-z]+").unwrap();

    let messages = [
        (
            "card 4111 1111 1111 1111 of ann@secret.example refused: 'insufficient funds'",
            "card ? of ? refused: ?",
        ),
        (
            r#"No such file or directory: "/home/secret/report-2024.pdf""#,
            "No such file or directory: ?",
        ),
        ("quota exceeded for tenant-secret", "quota exceeded for ?"),
        (
            "can't reach the payment service",
            "can't reach the payment service",
        ),
    ];
    let error_type = ring.intern("PaymentError");
    for (raw, _) in messages {
        let fields = Fields {
            status: 500,
            flags: FLAG_ERROR,
            exception_type: error_type,
            message: ring.message(raw),
            ..Fields::default()
        };
        ring.record(Kind::Req, ring.intern("/pay"), &fields);
    }
    let sql = "SELECT * FROM tenant_secret.orders WHERE email = 'ann@secret.example' AND a = 'x\\' AND b = 'secret'";
    ring.emit_db(profilis::db::query_id(&ring, sql), 1_000, 1);

    let out_dir = tmp.path().join("out");
    let out = run_reader(
        &[
            ring_path.to_str().unwrap(),
            "--once",
            "--jsonl-dir",
            out_dir.to_str().unwrap(),
        ],
        Duration::from_secs(60),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = read_lines(&out_dir);
    let got: Vec<&str> = lines
        .iter()
        .filter(|v| v["kind"] == "REQ")
        .map(|v| {
            assert_eq!(v["exception_type"], "PaymentError", "type names stay");
            v["exception_message"].as_str().expect("a message")
        })
        .collect();
    let expected: Vec<&str> = messages.iter().map(|m| m.1).collect();
    assert_eq!(got, expected);
    let db = lines
        .iter()
        .find(|v| v["kind"] == "DB")
        .expect("the DB event");
    assert_eq!(
        db["name"],
        "SELECT * FROM ?.orders WHERE email = ? AND a = ?"
    );
    for f in data_files(&out_dir) {
        let text = file_text(&f);
        for value in ["secret", "4111", "2024", "insufficient"] {
            assert!(
                !text.contains(value),
                "{value:?} in {}: {text}",
                f.display()
            );
        }
    }
}
