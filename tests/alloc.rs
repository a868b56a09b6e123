//! Zero allocations per emit after warm-up, proven with a counting global
//! allocator. Only allocations made by the emitting thread while it is
//! inside a measured section count; the live consumer draining in another
//! thread allocates freely (its batch buffers, name cache) and is not
//! counted.

use profilis::{Consumer, Emit, RingOptions, StrId};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);

thread_local! {
    static MEASURING: Cell<bool> = const { Cell::new(false) };
}

fn note() {
    // `try_with`: the allocator may run while thread-locals are torn down.
    if MEASURING.try_with(Cell::get).unwrap_or(false) {
        ALLOCS.fetch_add(1, Relaxed);
    }
}

// SAFETY: every method forwards to the system allocator unchanged; the
// counting touches only an atomic and a const-initialised thread-local
// without a destructor, neither of which allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: the caller upholds `alloc`'s contract, passed on as is.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note();
        // SAFETY: as for `alloc`; `ptr` came from this allocator.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from this allocator with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations made by this thread while running `f`.
fn allocations_in(f: impl FnOnce()) -> u64 {
    let before = ALLOCS.load(Relaxed);
    MEASURING.with(|m| m.set(true));
    f();
    MEASURING.with(|m| m.set(false));
    ALLOCS.load(Relaxed) - before
}

/// Events `emit_everything` records.
const PER_ROUND: u64 = 11;

/// Every kind of emit a user writes, each once. Returns how many of the
/// direct emits were written (the two span events report nothing).
fn emit_everything(route: StrId, query: &str, round: u64) -> u32 {
    let mut written = 0;
    let mut count = |e: Emit| written += u32::from(e == Emit::Written);
    count(profilis::emit_req(route, 200, 1_000 + round));
    count(profilis::emit_req(
        profilis::name!("/orders/{id}"),
        503,
        2_000,
    ));
    count(profilis::emit_fn(profilis::name!("load_user"), 300, false));
    count(profilis::emit_fn("already_interned", 400, true));
    count(profilis::emit_db(query, 80_000, 3));
    count(profilis::emit_db(
        profilis::name!("UPDATE users SET name = ?"),
        9,
        1,
    ));
    count(profilis::emit_custom(profilis::name!("queue.depth"), 17.5));
    count(profilis::emit_custom("already_interned", round as f64));
    {
        let _outer = profilis::span(profilis::name!("handle_request"));
        let mut inner = profilis::span(route);
        inner.set_error();
        count(profilis::emit_fn(profilis::name!("inside_spans"), 1, false));
    } // two span events
    written
}

#[test]
fn emits_do_not_allocate_after_warm_up() {
    let dir = std::env::temp_dir().join(format!("profilis-alloc-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("alloc.ring");
    let ring = profilis::init_with(&path, RingOptions::default().capacity(1 << 12)).unwrap();

    // A live consumer in another thread, draining as the reader does.
    let stop = Arc::new(AtomicBool::new(false));
    let received = Arc::new(AtomicU64::new(0));
    let consumer = {
        let (stop, received) = (stop.clone(), received.clone());
        let mut consumer = Consumer::attach(&path).unwrap();
        std::thread::spawn(move || loop {
            let stopping = stop.load(Relaxed);
            let n = consumer.poll(1024, |event, names| {
                std::hint::black_box(names.name(event.name));
            });
            received.fetch_add(n as u64, Relaxed);
            if n == 0 {
                if stopping {
                    return consumer;
                }
                std::thread::sleep(Duration::from_micros(200));
            }
        })
    };

    let route = ring.intern("/users/{id}");
    let query = "SELECT * FROM users WHERE id = ?";
    ring.intern(query);
    ring.intern("already_interned");
    // Warm-up: call sites cache their ids, the thread's ids and trace
    // context are set up, the writer registers.
    emit_everything(route, query, 0);

    let rounds = 2_000u64;
    let mut in_rounds = 0u64;
    let allocs = allocations_in(|| {
        for round in 1..=rounds {
            in_rounds += u64::from(emit_everything(route, query, round));
        }
    });
    assert_eq!(
        allocs, 0,
        "emits allocated {allocs} times in {rounds} rounds"
    );
    // The measured emits really went into the ring (most of them: the
    // ring may briefly fill while the consumer sleeps).
    assert!(in_rounds > rounds * 4, "only {in_rounds} events written");

    // Everything emitted is accounted for: delivered, or refused when the
    // ring was full while the consumer slept.
    stop.store(true, Relaxed);
    let consumer = consumer.join().unwrap();
    let c = consumer.counters();
    assert_eq!(c.claimed, PER_ROUND * (rounds + 1), "{c:?}");
    assert_eq!(c.received, received.load(Relaxed), "{c:?}");
    assert!(c.identity_holds() && c.in_flight == 0, "{c:?}");
    assert_eq!(c.received + c.dropped, c.claimed, "{c:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
