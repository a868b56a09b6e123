//! Error events by exception type, on the window engine ([`super`]).
//!
//! Every error event (by [`Event::is_error`]) counts under its exception
//! type, or under [`NO_EXCEPTION`] when the writer recorded none (a 5xx
//! answer, a failure flagged without a type). Per type and minute bucket
//! the table keeps the count, the first and last time seen and the names
//! the errors happened in (routes, functions or queries: at most
//! [`MAX_NAMES_PER_BUCKET`] per bucket, the rest counted as
//! [`OTHER`]). Types past `max_types` share one `(other)`
//! entry, and types with nothing left in the window are evicted when the
//! minute rolls, like the latency tables.
//!
//! A second table counts errors per type since the reader started (the
//! Prometheus counter `profilis_exceptions_total`): the same bound, never
//! evicted, so a series never restarts while the reader runs.
//!
//! Only error events reach this table; the cost of a non-error event is
//! the flag test in [`super::Window`].

use super::{Bounded, Minutes, Periods, BUCKET_NS, OTHER};
use crate::ingest::RingContext;
use crate::views::{ExceptionCount, ExceptionName, ExceptionType, Exceptions};
use profilis::{Event, Names, StrId};
use std::collections::HashMap;
use std::sync::Arc;

/// Type of an error event that carries no exception type.
pub const NO_EXCEPTION: &str = "(none)";
/// Names kept per type and minute bucket; more are counted as `(other)`.
pub const MAX_NAMES_PER_BUCKET: usize = 16;
/// Names listed per type in the snapshot (the busiest); the rest are
/// summed under `(other)`.
pub const MAX_NAMES_LISTED: usize = 10;

/// One type's errors in one minute.
#[derive(Default)]
struct Bucket {
    count: u64,
    first_ns: u64,
    last_ns: u64,
    /// Errors per name, at most [`MAX_NAMES_PER_BUCKET`] names.
    names: Vec<(Arc<str>, u64)>,
    /// Errors in names past the bound.
    other_names: u64,
}

impl Bucket {
    fn record(&mut self, wall_ns: u64, name: Arc<str>) {
        if self.count == 0 {
            self.first_ns = wall_ns;
            self.last_ns = wall_ns;
        } else {
            self.first_ns = self.first_ns.min(wall_ns);
            self.last_ns = self.last_ns.max(wall_ns);
        }
        self.count += 1;
        if let Some((_, n)) = self.names.iter_mut().find(|(k, _)| *k == name) {
            *n += 1;
        } else if self.names.len() < MAX_NAMES_PER_BUCKET {
            self.names.push((name, 1));
        } else {
            self.other_names += 1;
        }
    }
}

/// One type over the window.
#[derive(Default)]
struct TypeWindow {
    minutes: Periods<Bucket>,
}

impl TypeWindow {
    fn view(&self, exception: &str, errors: u64) -> ExceptionType {
        let mut count = 0;
        let (mut first, mut last) = (u64::MAX, 0);
        let mut names: HashMap<&str, u64> = HashMap::new();
        let mut other = 0;
        for (_, b) in self.minutes.iter() {
            count += b.count;
            first = first.min(b.first_ns);
            last = last.max(b.last_ns);
            other += b.other_names;
            for (name, n) in &b.names {
                *names.entry(name).or_default() += n;
            }
        }
        let mut names: Vec<ExceptionName> = names
            .into_iter()
            .map(|(name, count)| ExceptionName {
                name: name.to_string(),
                count,
            })
            .collect();
        names.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.name.cmp(&b.name)));
        if names.len() > MAX_NAMES_LISTED {
            other += names
                .drain(MAX_NAMES_LISTED..)
                .map(|n| n.count)
                .sum::<u64>();
        }
        if other > 0 {
            // An event named `(other)` (a name past `--max-routes`) adds up
            // with the names past this list's bound.
            match names.iter_mut().find(|n| n.name == OTHER) {
                Some(n) => n.count += other,
                None => names.push(ExceptionName {
                    name: OTHER.to_string(),
                    count: other,
                }),
            }
        }
        ExceptionType {
            exception: exception.to_string(),
            count,
            share: super::ratio(count, errors),
            first_seen_ns: if count > 0 { first } else { 0 },
            last_seen_ns: last,
            names,
        }
    }
}

/// Error events by exception type: over the window, and since the reader
/// started.
pub struct ExceptionStore {
    minutes: Minutes,
    window: Bounded<Arc<str>, TypeWindow>,
    totals: Bounded<Arc<str>, u64>,
    none: Arc<str>,
    folded: u64,
}

impl ExceptionStore {
    /// An empty store of at most `max_types` types per table (then
    /// `(other)`) over a window of `window_minutes`; `now_ns` is the wall
    /// clock now.
    pub fn new(max_types: usize, window_minutes: u32, now_ns: u64) -> ExceptionStore {
        ExceptionStore {
            minutes: Minutes::new(window_minutes, now_ns),
            window: Bounded::new(max_types, Arc::from(OTHER)),
            totals: Bounded::new(max_types, Arc::from(OTHER)),
            none: Arc::from(NO_EXCEPTION),
            folded: 0,
        }
    }

    /// Moves the window to `now_ns`: buckets older than the window leave
    /// it, types with nothing left are evicted.
    pub fn advance(&mut self, now_ns: u64) {
        if !self.minutes.advance(now_ns) {
            return;
        }
        let oldest = self.minutes.oldest();
        self.window.retain(
            |_, t| {
                t.minutes.expire(oldest, drop);
                !t.minutes.is_empty()
            },
            drop,
        );
    }

    /// Records error event `e` of `ctx`'s ring at wall-clock `wall_ns`
    /// (the caller checked [`Event::is_error`]).
    #[cold]
    pub fn record(&mut self, ctx: &mut RingContext, names: &Names, wall_ns: u64, e: &Event) {
        let exception = if e.exception_type == StrId::NONE {
            self.none.clone()
        } else {
            ctx.name_text(names, e.exception_type)
        };
        let total = self.totals.lookup(&exception, |_| 0);
        *self.totals.get_mut(total) += 1;
        let Some(minute) = self.minutes.of(wall_ns) else {
            return;
        };
        let wall_ns = wall_ns.min((self.minutes.now() + 1) * BUCKET_NS - 1);
        let index = self.window.lookup(&exception, |_| TypeWindow::default());
        self.folded += u64::from(self.window.is_other(index));
        self.window
            .get_mut(index)
            .minutes
            .get_or_insert_with(minute, Bucket::default)
            .record(wall_ns, ctx.name_text(names, e.name));
    }

    /// Types with an entry of their own in the window table.
    pub fn named(&self) -> usize {
        self.window.named()
    }

    /// Error events counted under the window's `(other)` type because the
    /// table was full.
    pub fn folded(&self) -> u64 {
        self.folded
    }

    /// The tables as of `now_ns`: types busiest first, totals by name.
    pub fn snapshot(&mut self, now_ns: u64) -> Exceptions {
        self.advance(now_ns);
        let errors = self
            .window
            .iter()
            .flat_map(|(_, t)| t.minutes.iter().map(|(_, b)| b.count))
            .sum();
        let mut types: Vec<ExceptionType> = self
            .window
            .iter()
            .map(|(name, t)| t.view(name, errors))
            .collect();
        types.sort_by(|a, b| {
            b.count
                .cmp(&a.count)
                .then_with(|| a.exception.cmp(&b.exception))
        });
        let mut totals: Vec<ExceptionCount> = self
            .totals
            .iter()
            .map(|(name, &count)| ExceptionCount {
                exception: name.to_string(),
                count,
            })
            .collect();
        totals.sort_by(|a, b| a.exception.cmp(&b.exception));
        Exceptions {
            errors,
            types,
            totals,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use profilis::{Fields, Kind, Ring, RingOptions};

    const T0: u64 = 1_800_000_000_000_000_000; // a minute boundary
    const S: u64 = 1_000_000_000;

    /// Writes events with `emit`, then feeds the errors among them to
    /// `store` as if they happened at `wall_ns`.
    fn feed(store: &mut ExceptionStore, wall_ns: u64, emit: impl FnOnce(&Ring)) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("e.ring");
        let ring = Ring::create_or_open(&path, RingOptions::default().capacity(4096)).unwrap();
        emit(&ring);
        let mut consumer = profilis::Consumer::attach(&path).unwrap();
        let mut ctx = RingContext::new(0, &path, consumer.info().ring_id, 4096);
        store.advance(wall_ns);
        let batch = consumer.read(4096);
        for e in batch.events.iter().filter(|e| e.is_error()) {
            store.record(&mut ctx, batch.names, wall_ns, e);
        }
    }

    fn fail(ring: &Ring, route: &str, status: u16, exception: Option<&str>) {
        let fields = Fields {
            status,
            dur_ns: 1_000,
            exception_type: exception.map_or(StrId::NONE, |x| ring.intern(x)),
            flags: u8::from(exception.is_some()) * profilis::record::FLAG_ERROR,
            ..Fields::default()
        };
        ring.record(Kind::Req, ring.intern(route), &fields);
    }

    #[test]
    fn errors_count_by_type_with_share_names_and_times() {
        let mut store = ExceptionStore::new(100, 15, T0);
        feed(&mut store, T0 + 5 * S, |ring| {
            for _ in 0..6 {
                fail(ring, "/a", 500, Some("TimeoutError"));
            }
            fail(ring, "/b", 500, Some("TimeoutError"));
            fail(ring, "/a", 503, None);
            fail(ring, "/a", 200, None); // not an error
            ring.emit_fn("load", 1_000, true); // flagged, no type
        });
        feed(&mut store, T0 + 7 * S, |ring| {
            fail(ring, "/c", 500, Some("KeyError"));
            fail(ring, "/b", 500, Some("TimeoutError"));
        });
        let x = store.snapshot(T0 + 10 * S);
        assert_eq!(x.errors, 11);
        let by: Vec<_> = x
            .types
            .iter()
            .map(|t| (t.exception.as_str(), t.count))
            .collect();
        assert_eq!(
            by,
            [("TimeoutError", 8), (NO_EXCEPTION, 2), ("KeyError", 1)]
        );
        let timeout = &x.types[0];
        assert!((timeout.share - 8.0 / 11.0).abs() < 1e-12);
        assert_eq!(
            (timeout.first_seen_ns, timeout.last_seen_ns),
            (T0 + 5 * S, T0 + 7 * S)
        );
        let names: Vec<_> = timeout
            .names
            .iter()
            .map(|n| (n.name.as_str(), n.count))
            .collect();
        assert_eq!(names, [("/a", 6), ("/b", 2)]);
        let none: Vec<_> = x.types[1].names.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(none, ["/a", "load"], "a 5xx without a type, a flagged FN");
        let totals: Vec<_> = x
            .totals
            .iter()
            .map(|t| (t.exception.as_str(), t.count))
            .collect();
        assert_eq!(
            totals,
            [(NO_EXCEPTION, 2), ("KeyError", 1), ("TimeoutError", 8)]
        );
    }

    #[test]
    fn types_past_the_bound_share_other_and_totals_outlive_the_window() {
        let mut store = ExceptionStore::new(2, 2, T0);
        feed(&mut store, T0 + S, |ring| {
            for (i, x) in ["A", "B", "C", "D", "A"].iter().enumerate() {
                fail(ring, &format!("/r{i}"), 500, Some(x));
            }
        });
        let x = store.snapshot(T0 + 2 * S);
        let by: Vec<_> = x
            .types
            .iter()
            .map(|t| (t.exception.as_str(), t.count))
            .collect();
        assert_eq!(by, [("(other)", 2), ("A", 2), ("B", 1)]);
        assert_eq!((store.named(), store.folded()), (2, 2));
        // Two minutes later the window is empty and its types evicted;
        // the totals stay, and still fold new types into (other).
        feed(&mut store, T0 + 2 * BUCKET_NS, |ring| {
            fail(ring, "/r", 500, Some("E"));
        });
        let x = store.snapshot(T0 + 2 * BUCKET_NS + S);
        let by: Vec<_> = x
            .types
            .iter()
            .map(|t| (t.exception.as_str(), t.count))
            .collect();
        assert_eq!(by, [("E", 1)], "A and B left the window");
        let totals: Vec<_> = x
            .totals
            .iter()
            .map(|t| (t.exception.as_str(), t.count))
            .collect();
        assert_eq!(totals, [("(other)", 3), ("A", 2), ("B", 1)]);
        // Errors older than the window count only in the totals.
        feed(&mut store, T0, |ring| fail(ring, "/r", 500, Some("A")));
        let x = store.snapshot(T0 + 2 * BUCKET_NS + S);
        assert_eq!(x.errors, 1);
        assert_eq!(x.totals[1].count, 3);
    }

    #[test]
    fn names_per_type_are_bounded_and_the_rest_summed_as_other() {
        let mut store = ExceptionStore::new(10, 15, T0);
        feed(&mut store, T0 + S, |ring| {
            for i in 0..40u32 {
                for _ in 0..=(i % 3) {
                    fail(ring, &format!("/n{i:02}"), 500, Some("E"));
                }
            }
        });
        let x = store.snapshot(T0 + 2 * S);
        let e = &x.types[0];
        assert_eq!(e.names.len(), MAX_NAMES_LISTED + 1);
        assert_eq!(e.names.last().unwrap().name, OTHER);
        assert_eq!(e.names.iter().map(|n| n.count).sum::<u64>(), e.count);
        assert!(e.names[..MAX_NAMES_LISTED]
            .windows(2)
            .all(|w| w[0].count >= w[1].count));
    }
}
