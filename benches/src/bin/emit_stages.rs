//! Where the instructions of an emit go, stage by stage, for callgrind.
//!
//! ```text
//! cargo build --release -p profilis-benches --bin emit_stages
//! for s in clock context record emit; do
//!   valgrind --tool=callgrind --toggle-collect='emit_stages::stage_*' \
//!     --callgrind-out-file=/tmp/cg.$s target/release/emit_stages $s 1000000 2>&1 | grep Collected
//! done
//! ```
//!
//! Each stage runs the emit path up to one more step, `N` times, one call of
//! a `stage_*` function per iteration (`--toggle-collect` counts only
//! inside them): `clock` reads the event clock; `context` adds the lookups
//! an event needs (pid, tid, the thread's trace context); `record` is
//! everything an emit does before it touches the ring: the clock, the
//! lookups, and the record's 14 words with the check word; `emit` is a whole
//! `Ring::emit_fn` (the same, plus the thread's lane, the slot's stores and
//! the tail). A consumer in the same thread drains the ring between bursts,
//! outside the counted functions, so every emit lands in a warm slot.
//! Instruction counts are repeatable whatever else the machine does; divide
//! the differences between stages by `N` for the instructions each step adds
//! (docs/benchmarks.md). The wall time printed at the end includes the
//! draining and is only a rough look.

use profilis::{Consumer, Emit, Fields, Kind, Ring, RingOptions, StrId};
use std::hint::black_box;

/// Events between two drains (half a lane).
const BURST: u64 = 2048;

#[inline(never)]
fn stage_clock() -> u64 {
    profilis::clock::event_ns()
}

#[inline(never)]
fn stage_context() -> u64 {
    let ts = profilis::clock::event_ns();
    let span = profilis::context::current();
    ts.wrapping_add(span.span_id)
        .wrapping_add(u64::from(profilis::process::pid()))
        .wrapping_add(u64::from(profilis::process::tid()))
}

#[inline(never)]
fn stage_record(name: StrId, i: u64) -> u64 {
    let fields = Fields {
        dur_ns: i,
        ..Fields::default()
    };
    profilis::event_now(Kind::Fn, name, &fields).encode(i)[13]
}

#[inline(never)]
fn stage_emit(ring: &Ring, name: StrId, i: u64) -> Emit {
    ring.emit_fn(name, i, false)
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let stage = args.next().unwrap_or_else(|| "emit".into());
    let n: u64 = args.next().map_or(Ok(1_000_000), |s| s.parse())?;
    let dir = std::env::temp_dir().join(format!("profilis-stages-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("stages.ring");
    // Lanes of 4096 slots: this thread's own among them.
    let ring = Ring::create_or_open(&path, RingOptions::default().capacity(1 << 16).lanes(16))?;
    let mut consumer = Consumer::attach(&path)?;
    let name = ring.intern("stage");
    // Warm-up: a lap of the lane (its pages touched), the lane taken, the
    // writer registered.
    for i in 0..4096 {
        ring.emit_fn(name, i, false);
        if i % BURST == BURST - 1 {
            while consumer.poll(4096, |_, _| {}) > 0 {}
        }
    }
    let mut sink = 0u64;
    let start = profilis::clock::mono_ns();
    for i in 0..n {
        match stage.as_str() {
            "clock" => sink = sink.wrapping_add(stage_clock()),
            "context" => sink = sink.wrapping_add(stage_context()),
            "record" => sink = sink.wrapping_add(stage_record(name, i)),
            "emit" => {
                if stage_emit(&ring, name, i) != Emit::Written {
                    anyhow::bail!("an event was dropped");
                }
                if i % BURST == BURST - 1 {
                    while consumer.poll(4096, |_, _| {}) > 0 {}
                }
            }
            other => anyhow::bail!("unknown stage {other:?} (clock, context, record, emit)"),
        }
    }
    black_box(sink);
    let elapsed = profilis::clock::mono_ns() - start;
    eprintln!(
        "{stage}: {:.1} ns per iteration",
        elapsed as f64 / n.max(1) as f64
    );
    drop(consumer);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
