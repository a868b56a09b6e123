//! Where the instructions of an emit go, stage by stage, for callgrind.
//!
//! ```text
//! cargo build --release -p profilis-benches --bin emit_stages
//! for s in clock context build emit; do
//!   valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.$s \
//!     target/release/emit_stages $s 1000000 2>&1 | grep -E 'refs|Collected'
//! done
//! ```
//!
//! Each stage runs the emit path up to one more step, `N` times, in one
//! thread with no consumer (the ring overwrites its oldest events, so every
//! emit writes a slot): `clock` reads the event clock; `context` adds the
//! identity lookups an emit makes (pid, writer index, tid, trace context);
//! `build` adds building the record (the event and its 14 words with the
//! checksum); `emit` is a whole `Ring::emit_fn` (lane lookup, the slot's
//! stores, the tail, the heartbeat count). Instruction counts are
//! repeatable whatever else the machine does; divide the differences
//! between stages by `N` for the instructions each step adds
//! (docs/benchmarks.md).

use profilis::{Fields, FullPolicy, Kind, Ring, RingOptions};
use std::hint::black_box;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let stage = args.next().unwrap_or_else(|| "emit".into());
    let n: u64 = args.next().map_or(Ok(1_000_000), |s| s.parse())?;
    let dir = std::env::temp_dir().join(format!("profilis-stages-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let ring = Ring::create_or_open(
        dir.join("stages.ring"),
        RingOptions::default()
            .capacity(1 << 16)
            .lanes(16)
            .policy(FullPolicy::OverwriteOldest),
    )?;
    let name = ring.intern("stage");
    // Warm-up: lane taken, caches filled, writer registered.
    for i in 0..1000 {
        ring.emit_fn(name, i, false);
    }
    let mut sink = 0u64;
    let start = profilis::clock::mono_ns();
    match stage.as_str() {
        "clock" => {
            for _ in 0..n {
                sink = sink.wrapping_add(profilis::clock::event_ns());
            }
        }
        "context" => {
            for _ in 0..n {
                let ts = profilis::clock::event_ns();
                let span = profilis::context::current();
                sink = sink
                    .wrapping_add(ts)
                    .wrapping_add(span.span_id)
                    .wrapping_add(u64::from(profilis::process::pid()))
                    .wrapping_add(u64::from(profilis::process::tid()));
            }
        }
        "build" => {
            for i in 0..n {
                let fields = Fields {
                    dur_ns: i,
                    span: Some(profilis::context::current()),
                    ts_mono_ns: profilis::clock::event_ns(),
                    ..Fields::default()
                };
                let event = profilis::event_now(Kind::Fn, name, &fields);
                let words = event.encode(i);
                sink = sink.wrapping_add(words[13]);
            }
        }
        "emit" => {
            for i in 0..n {
                black_box(ring.emit_fn(name, i, false));
            }
        }
        other => anyhow::bail!("unknown stage {other:?} (clock, context, build, emit)"),
    }
    black_box(sink);
    let elapsed = profilis::clock::mono_ns() - start;
    // Wall time is for a look only (run it outside valgrind); instruction
    // counts are what the docs quote.
    eprintln!(
        "{stage}: {:.1} ns per iteration",
        elapsed as f64 / n.max(1) as f64
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
