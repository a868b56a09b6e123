//! What redaction costs where it runs: a message as an error records it
//! (`profilis::redact::message`, called by `Ring::message`), and an SQL
//! statement the first time it is seen (`profilis::db::redact`).
//!
//! ```sh
//! cargo bench -p profilis-benches --bench redact
//! ```

use criterion::{criterion_group, criterion_main, Criterion};
use profilis::redact::{self, MessageRules};
use std::hint::black_box;

/// A typical exception message of 100 bytes with values of each kind.
const TYPICAL: &str =
    "payment declined for order #81723 (card 4111 1111 1111 1111, ann.lee@example.com): 'over the limit'.";
/// 100 bytes with nothing to redact.
const CLEAN: &str =
    "connection reset by peer while reading the response body from the upstream inventory services, again";
/// A 100-byte statement.
const SQL: &str =
    "SELECT id, total FROM orders WHERE customer_id = 81723 AND status IN ('new', 'paid') LIMIT 20 OFFSET 0";

fn messages(c: &mut Criterion) {
    assert_eq!(TYPICAL.len(), 100, "{}", TYPICAL.len());
    assert_eq!(CLEAN.len(), 100, "{}", CLEAN.len());
    let mut group = c.benchmark_group("redact");
    group.bench_function("message/typical_100B", |b| {
        b.iter(|| redact::message(black_box(TYPICAL)).len())
    });
    group.bench_function("message/clean_100B", |b| {
        b.iter(|| redact::message(black_box(CLEAN)).len())
    });
    redact::set_message_rules(MessageRules::NONE);
    group.bench_function("message/rules_off_100B", |b| {
        b.iter(|| redact::message(black_box(TYPICAL)).len())
    });
    redact::set_message_rules(MessageRules::ALL);
    redact::add_message_pattern(r"tenant-[a-z]+").expect("a valid pattern");
    group.bench_function("message/typical_100B_one_pattern", |b| {
        b.iter(|| redact::message(black_box(TYPICAL)).len())
    });
    redact::clear_patterns();
    group.bench_function("sql/100B", |b| {
        b.iter(|| profilis::db::redact(black_box(SQL)).len())
    });
    group.finish();
}

criterion_group!(benches, messages);
criterion_main!(benches);
