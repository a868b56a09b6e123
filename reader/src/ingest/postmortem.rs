//! Post-mortem of dead writers: the last events each writer process
//! committed, kept while it runs and frozen once it is gone.
//!
//! Per attached ring, a [`WriterWatch`] keeps the last `--postmortem-events`
//! events of every writer-table entry (a fixed-size ring buffer of raw
//! events, about 130 bytes each; of a batch only each writer's last ones
//! are copied, once, so a busy writer costs a count per event). Every flush
//! interval the drain loop checks the writer table: a writer whose pid is
//! gone, or was reused by a process with another start time, is dead. Its
//! events may still be in the ring, so the ring's claim position at that
//! moment is noted, and once the reader has read past it (every event the
//! process ever committed is drained) its buffer is frozen into a
//! [`PostMortem`] with names resolved, kept among the latest
//! [`MAX_POSTMORTEMS`] deaths, and served by the dashboard.
//!
//! Only writers that committed at least one event this reader drained get a
//! post-mortem (a process that exited before the reader started, and whose
//! events an earlier run drained, has nothing to show).

use crate::ingest::RingContext;
use crate::support::json;
use crate::views::{LossTotals, PostMortem, PostMortemEvent};
use profilis::layout::NO_WRITER;
use profilis::{Event, Kind, Method, Names, StrId, WriterInfo};
use std::collections::VecDeque;
use std::sync::Arc;

/// Dead writers whose post-mortem is kept (the most recent deaths).
pub const MAX_POSTMORTEMS: usize = 32;

struct Captured {
    event: Event,
    wall_ns: u64,
    message: Option<Arc<str>>,
    stack: Option<Arc<str>>,
}

/// How far a ring is drained, for [`WriterWatch::check`].
pub struct RingProgress<'a> {
    /// Each lane's tail now, once process `pid` holds no lane of the ring
    /// (`None` while it still does).
    pub marks_after: &'a dyn Fn(u32) -> Option<Vec<u64>>,
    /// Whether everything below the marks is read and committed.
    pub drained: &'a dyn Fn(&[u64]) -> bool,
}

struct Death {
    /// Each lane's tail once the dead process held no lane any more.
    marks: Vec<u64>,
    detected_ns: u64,
}

#[derive(Default)]
struct Watched {
    pid: u32,
    recent: VecDeque<Captured>,
    events: u64,
    last_event_ns: u64,
    death: Option<Death>,
    done: bool,
}

/// The recent events of every writer of one ring.
pub struct WriterWatch {
    keep: usize,
    writers: Vec<Watched>,
    /// Scratch of [`record_batch`](Self::record_batch): entries whose
    /// process began within the batch, and where.
    began: Vec<(u16, usize)>,
    /// Scratch: events picked per entry.
    taken: Vec<usize>,
}

impl WriterWatch {
    /// Keeps the last `keep` events per writer (0: none, no post-mortems).
    pub fn new(keep: usize) -> WriterWatch {
        WriterWatch {
            keep,
            writers: Vec::new(),
            began: Vec::new(),
            taken: Vec::new(),
        }
    }

    /// Records a batch of delivered events, each at its wall-clock time
    /// `wall_ns`: every event counts for its writer, and of each writer's
    /// events the last `keep` are copied (once per batch, not once per
    /// event: the batch's others would be pushed out by them anyway).
    pub fn record_batch(
        &mut self,
        ctx: &mut RingContext,
        names: &Names,
        events: &[Event],
        wall_ns: impl Fn(&Event) -> u64,
    ) {
        // Only entries of the ring's writer table (the drain loop reads the
        // table before a batch that names a new one).
        let known = |e: &Event| e.writer != NO_WRITER && ctx.writer_known(e.writer);
        let picked = self.count(events, known, &wall_ns);
        for i in picked {
            let e = &events[i];
            let (message, stack) = if e.message.0 != 0 {
                (ctx.message(names, e.message), ctx.stack(names, e.message))
            } else {
                (None, None)
            };
            self.keep_event(Captured {
                event: *e,
                wall_ns: wall_ns(e),
                message,
                stack,
            });
        }
    }

    /// Counts `events` for their writers (in order: an entry whose pid
    /// changes starts over for the new process) and returns the positions
    /// in `events` of those to keep, in order: each writer's last `keep`
    /// since its process began.
    fn count(
        &mut self,
        events: &[Event],
        known: impl Fn(&Event) -> bool,
        wall_ns: &impl Fn(&Event) -> u64,
    ) -> Vec<usize> {
        // Where each entry's current process began in this batch, and which
        // entries keep events of it (`NOT_KEPT`: none).
        const NOT_KEPT: usize = usize::MAX;
        self.began.clear();
        self.taken.clear();
        let mut open = 0;
        for (i, e) in events.iter().enumerate() {
            if !known(e) {
                continue;
            }
            let index = e.writer as usize;
            if self.writers.len() <= index {
                self.writers.resize_with(index + 1, Watched::default);
            }
            if self.taken.len() <= index {
                self.taken.resize(index + 1, NOT_KEPT);
            }
            let w = &mut self.writers[index];
            if w.pid != e.pid {
                if w.pid != 0 && w.done {
                    continue; // a stray record of a writer already reported
                }
                *w = Watched {
                    pid: e.pid,
                    ..Watched::default()
                };
                self.began.retain(|&(entry, _)| entry != e.writer);
                self.began.push((e.writer, i));
            }
            w.events += 1;
            w.last_event_ns = w.last_event_ns.max(wall_ns(e));
            if !w.done && self.taken[index] == NOT_KEPT {
                self.taken[index] = 0;
                open += 1;
            }
        }
        let mut picked = Vec::new();
        if self.keep == 0 {
            return picked;
        }
        // Backwards, until every entry has its last `keep`.
        for (i, e) in events.iter().enumerate().rev() {
            if open == 0 {
                break;
            }
            if !known(e) {
                continue;
            }
            let index = e.writer as usize;
            let taken = self.taken[index];
            if taken == NOT_KEPT || taken == self.keep || self.writers[index].pid != e.pid {
                continue;
            }
            let began = self
                .began
                .iter()
                .find(|&&(entry, _)| entry == e.writer)
                .map_or(0, |&(_, at)| at);
            if i < began {
                continue;
            }
            self.taken[index] = taken + 1;
            if taken + 1 == self.keep {
                open -= 1;
            }
            picked.push(i);
        }
        picked.reverse();
        picked
    }

    fn keep_event(&mut self, c: Captured) {
        let w = &mut self.writers[c.event.writer as usize];
        if w.recent.len() == self.keep {
            w.recent.pop_front();
        }
        w.recent.push_back(c);
    }

    /// Wall ns of the latest event drained from writer `index` (0: none).
    pub fn last_event_ns(&self, index: u16) -> u64 {
        self.writers
            .get(index as usize)
            .map_or(0, |w| w.last_event_ns)
    }

    /// Checks the writer table (with liveness) against what was drained:
    /// notes newly dead writers with the ring's tails once their lanes are
    /// taken back, and freezes those whose events are all drained (every
    /// lane read past those tails). Returns the new post-mortems.
    #[allow(clippy::too_many_arguments)]
    pub fn check(
        &mut self,
        table: &[WriterInfo],
        progress: &RingProgress<'_>,
        now_ns: u64,
        last_seen_ns: &dyn Fn(&WriterInfo) -> u64,
        losses: &dyn Fn(u16) -> LossTotals,
        ctx: &mut RingContext,
        names: &Names,
        ring: &str,
    ) -> Vec<PostMortem> {
        let mut out = Vec::new();
        for info in table {
            if info.alive || info.start_time == 0 {
                continue;
            }
            let Some(w) = self.writers.get_mut(info.index as usize) else {
                continue;
            };
            if w.done || w.pid != info.pid || w.events == 0 {
                continue;
            }
            if w.death.is_none() {
                // Marks taken once its lanes are taken back, so they cover
                // the event it died in the middle of.
                let Some(marks) = (progress.marks_after)(info.pid) else {
                    continue;
                };
                w.death = Some(Death {
                    marks,
                    detected_ns: now_ns,
                });
            }
            let death = w.death.as_ref().expect("set above");
            if !(progress.drained)(&death.marks) {
                continue; // some of its events may still be in the ring
            }
            let detected_ns = death.detected_ns;
            w.done = true;
            let recent = std::mem::take(&mut w.recent);
            let mut events = Vec::with_capacity(recent.len());
            for c in &recent {
                events.push(PostMortemEvent::new(ctx, names, c));
            }
            out.push(PostMortem {
                ring: ring.to_string(),
                ring_id: json::hex64(ctx.ring_id),
                pid: info.pid,
                start_time: info.start_time,
                service: info.service.as_deref().map(str::to_string),
                registered_ns: info.registered_wall_ns,
                last_seen_ns: last_seen_ns(info).max(w.last_event_ns),
                detected_ns,
                events_drained: w.events,
                losses: losses(info.index),
                process: None,
                events,
            });
        }
        out
    }
}

impl PostMortemEvent {
    fn new(ctx: &mut RingContext, names: &Names, c: &Captured) -> PostMortemEvent {
        let e = &c.event;
        let req = e.kind == Kind::Req;
        PostMortemEvent {
            ts_ns: c.wall_ns,
            kind: e.kind.as_str(),
            name: ctx.name_text(names, e.name).to_string(),
            method: (req && e.method != Method::None).then(|| e.method.as_str()),
            status: req.then_some(e.status),
            dur_ns: (e.kind != Kind::Custom).then_some(e.dur_ns),
            error: e.is_error(),
            exception_type: (e.exception_type != StrId::NONE)
                .then(|| ctx.name_text(names, e.exception_type).to_string()),
            exception_message: c.message.as_deref().map(str::to_string),
            stack: c.stack.as_deref().map(str::to_string),
            trace_id: (e.trace_id != 0).then(|| json::hex128(e.trace_id)),
            span_id: (e.span_id != 0).then(|| json::hex64(e.span_id)),
            parent_span_id: (e.parent_span_id != 0).then(|| json::hex64(e.parent_span_id)),
            pid: e.pid,
            tid: e.tid,
            bytes_in: req.then_some(e.value),
            bytes_out: req.then_some(e.value2),
            rows: (e.kind == Kind::Db).then_some(e.value),
            value: (e.kind == Kind::Custom).then(|| {
                let v = f64::from_bits(e.value);
                v.is_finite().then_some(v)
            }),
            service: ctx.service(e.writer).map(|s| s.to_string()),
            ring_id: json::hex64(ctx.ring_id),
            seq: e.position,
        }
    }
}

/// The post-mortems kept: the latest [`MAX_POSTMORTEMS`] deaths, newest
/// first, one per (ring, pid).
#[derive(Default)]
pub struct PostMortems {
    kept: VecDeque<Arc<PostMortem>>,
}

impl PostMortems {
    /// Adds a post-mortem (replacing one of the same ring and pid).
    pub fn add(&mut self, pm: PostMortem) {
        self.kept
            .retain(|k| !(k.ring_id == pm.ring_id && k.pid == pm.pid));
        self.kept.push_front(Arc::new(pm));
        self.kept.truncate(MAX_POSTMORTEMS);
    }

    /// The kept post-mortems, newest first.
    pub fn list(&self) -> Vec<Arc<PostMortem>> {
        self.kept.iter().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::support::test_event::blank;

    /// Event by event, as the watch once recorded: the model the batch
    /// recording must match.
    fn record_one(w: &mut WriterWatch, e: &Event, wall_ns: u64) {
        let i = e.writer as usize;
        if w.writers.len() <= i {
            w.writers.resize_with(i + 1, Watched::default);
        }
        let keep = w.keep;
        let x = &mut w.writers[i];
        if x.pid != e.pid {
            if x.pid != 0 && x.done {
                return;
            }
            *x = Watched {
                pid: e.pid,
                ..Watched::default()
            };
        }
        x.events += 1;
        x.last_event_ns = x.last_event_ns.max(wall_ns);
        if keep == 0 || x.done {
            return;
        }
        if x.recent.len() == keep {
            x.recent.pop_front();
        }
        x.recent.push_back(Captured {
            event: *e,
            wall_ns,
            message: None,
            stack: None,
        });
    }

    fn state(w: &WriterWatch) -> Vec<(u32, u64, u64, bool, Vec<u64>)> {
        w.writers
            .iter()
            .map(|x| {
                let kept = x.recent.iter().map(|c| c.event.position).collect();
                (x.pid, x.events, x.last_event_ns, x.done, kept)
            })
            .collect()
    }

    #[test]
    fn a_batch_keeps_what_event_by_event_recording_kept() {
        // Four entries; processes replace each other in an entry, strays
        // of a reported process arrive late, some entries are reported
        // (done) between batches, one entry is unknown to the table.
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        for keep in [0, 1, 3, 8] {
            let (mut batched, mut model) = (WriterWatch::new(keep), WriterWatch::new(keep));
            let mut position = 0;
            for round in 0..300 {
                let len = next(24) as usize;
                let events: Vec<Event> = (0..len)
                    .map(|_| {
                        position += 1;
                        let writer = next(5) as u16;
                        Event {
                            position,
                            writer: if writer == 4 { NO_WRITER } else { writer },
                            pid: 100 + writer as u32 * 10 + next(3) as u32 / 2,
                            ts_mono_ns: next(1000),
                            ..blank()
                        }
                    })
                    .collect();
                let wall = |e: &Event| e.ts_mono_ns;
                let known = |e: &Event| e.writer != NO_WRITER;
                let picked = batched.count(&events, known, &wall);
                for i in picked {
                    let e = &events[i];
                    batched.keep_event(Captured {
                        event: *e,
                        wall_ns: e.ts_mono_ns,
                        message: None,
                        stack: None,
                    });
                }
                for e in events.iter().filter(|e| known(e)) {
                    record_one(&mut model, e, e.ts_mono_ns);
                }
                assert_eq!(state(&batched), state(&model), "keep {keep}, round {round}");
                if round % 7 == 3 {
                    let entry = next(4) as usize;
                    for w in [&mut batched, &mut model] {
                        if let Some(x) = w.writers.get_mut(entry) {
                            x.done = true;
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn the_latest_deaths_are_kept_one_per_ring_and_pid() {
        let pm = |ring: &str, pid: u32| PostMortem {
            ring: ring.into(),
            ring_id: ring.into(),
            pid,
            start_time: 1,
            service: None,
            registered_ns: 0,
            last_seen_ns: 0,
            detected_ns: 0,
            events_drained: 0,
            losses: LossTotals::default(),
            process: None,
            events: Vec::new(),
        };
        let mut kept = PostMortems::default();
        for pid in 0..(MAX_POSTMORTEMS as u32 + 5) {
            kept.add(pm("a", pid));
        }
        kept.add(pm("a", 40));
        kept.add(pm("b", 40));
        let list = kept.list();
        assert_eq!(list.len(), MAX_POSTMORTEMS);
        assert_eq!((list[0].ring_id.as_str(), list[0].pid), ("b", 40));
        assert_eq!((list[1].ring_id.as_str(), list[1].pid), ("a", 40));
        assert_eq!(list.iter().filter(|p| p.pid == 40).count(), 2);
        assert!(list.iter().all(|p| p.pid >= 7), "the oldest deaths went");
    }
}
