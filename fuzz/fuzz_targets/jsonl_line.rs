//! The reader's JSONL line (`profilis_reader::outputs::jsonl::line::render`) for
//! events with arbitrary fields and arbitrary text in their names,
//! exception types and messages, resolved through a real ring as the
//! reader does.
//!
//! Properties:
//! - the output is exactly one line (one `\n`, at the end) that parses
//!   with serde_json as an object;
//! - every string round-trips: `name`, `exception_type` and
//!   `exception_message` read back as the text the ring resolves (the
//!   writer's text, cut to the table's limits), `service` as the writer's;
//! - numbers read back exactly: `ts_ns`, `dur_ns`, `status`, `pid`, `tid`,
//!   `rows`/`bytes_in`/`bytes_out`, `seq`; a custom value as the same f64
//!   (`null` when not finite); ids as 16/32 lower-case hex digits;
//! - the restart scan (`line::parse_tail`) finds the line's `(ring_id,
//!   seq)`, whatever the text before it, so recovery never mistakes a line.
#![no_main]

#[path = "common/mod.rs"]
mod common;

use common::Bytes;
use libfuzzer_sys::fuzz_target;
use profilis::{Consumer, Event, Kind, Method, MsgRef, Ring, RingOptions, StrId};
use profilis_reader::ingest::RingContext;
use profilis_reader::outputs::jsonl::line;
use serde_json::Value;
use std::cell::RefCell;
use std::time::Instant;

const SERVICE: &str = "svc \"quoted\" \\ \u{1} é 🦀 \u{2028}";

/// A ring and its consumer, unlinked from the file system right away so
/// nothing is left behind; made again once its string table fills up.
struct Rig {
    ring: Ring,
    consumer: Consumer,
}

impl Rig {
    fn new() -> Rig {
        let dir = std::env::temp_dir().join(format!(
            "profilis-fuzz-jsonl-{}-{}",
            std::process::id(),
            profilis::clock::mono_ns()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("fuzz.ring");
        let mut options = RingOptions::default().capacity(2).service(SERVICE);
        options.string_entries = 1024;
        options.arena_bytes = 1 << 20;
        options.message_slots = 4;
        options.writer_entries = 1;
        let ring = Ring::create_or_open(&path, options).unwrap();
        // Registers the writer, with its service name.
        ring.emit_fn("register", 1, false);
        let consumer = Consumer::attach(&path).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        Rig { ring, consumer }
    }
}

thread_local! {
    static RIG: RefCell<Option<Rig>> = const { RefCell::new(None) };
}

fuzz_target!(|data: &[u8]| {
    RIG.with(|rig| {
        let mut rig = rig.borrow_mut();
        if rig
            .as_ref()
            .is_none_or(|r| r.consumer.strings_overflow() > 0)
        {
            *rig = Some(Rig::new());
        }
        run(rig.as_ref().unwrap(), data);
    });
});

fn run(rig: &Rig, data: &[u8]) {
    let mut b = Bytes::new(data);
    let name_text = b.text(64);
    let name = rig.ring.intern(&name_text);
    let exception_type = match b.u8() % 3 {
        0 => StrId::NONE,
        1 => rig.ring.intern(&b.text(32)),
        _ => StrId(b.u32()),
    };
    let message = match b.u8() % 3 {
        0 => MsgRef(0),
        1 => rig.ring.message(&b.text(255)),
        _ => MsgRef(b.u32()),
    };
    let event = Event {
        position: b.u64(),
        lane: 0,
        kind: Kind::from_u8(b.u8() % 4 + 1).unwrap(),
        flags: b.u8(),
        method: Method::from_u8(b.u8()),
        status: b.u16(),
        name,
        exception_type,
        message,
        pid: b.u32(),
        tid: b.u32(),
        ts_mono_ns: b.u64(),
        dur_ns: b.u64(),
        trace_id: b.u128(),
        span_id: b.u64(),
        parent_span_id: b.u64(),
        value: b.u64(),
        value2: b.u64(),
        writer: if b.u8() & 1 == 0 { 0 } else { b.u16() },
    };
    let wall_ns = b.u64();

    let consumer = &rig.consumer;
    let info = consumer.info();
    let mut ctx = RingContext::new(0, consumer.path(), info.ring_id, info.params.string_entries);
    ctx.refresh_writers(&consumer.writers(), None, Instant::now());
    let names = consumer.names();
    let mut buf = Vec::new();
    line::render(&mut buf, &mut ctx, names, wall_ns, &event);

    assert_eq!(buf.last(), Some(&b'\n'));
    assert_eq!(buf.iter().filter(|&&c| c == b'\n').count(), 1, "one line");
    let v: Value = serde_json::from_slice(&buf).unwrap_or_else(|e| {
        panic!("not JSON ({e}): {}", String::from_utf8_lossy(&buf));
    });
    let o = v.as_object().expect("an object");
    let e = &event;
    assert_eq!(o["ts_ns"].as_u64(), Some(wall_ns));
    assert_eq!(o["kind"].as_str(), Some(e.kind.as_str()));
    assert_eq!(o["name"].as_str(), Some(&*names.name(e.name)));
    if e.name == name && !name_text.is_empty() {
        let resolved = names.name(name);
        if name != StrId::OVERFLOW {
            assert_eq!(&*resolved, name_text.as_str());
        }
    }
    match o.get("exception_type") {
        Some(t) => assert_eq!(t.as_str(), Some(&*names.name(e.exception_type))),
        None => assert_eq!(e.exception_type, StrId::NONE),
    }
    match (o.get("exception_message"), names.message(e.message)) {
        (Some(m), Some(text)) => assert_eq!(m.as_str(), Some(text.as_str())),
        (None, None) => {}
        (got, want) => panic!("exception_message {got:?}, ring has {want:?}"),
    }
    assert_eq!(o["pid"].as_u64(), Some(u64::from(e.pid)));
    assert_eq!(o["tid"].as_u64(), Some(u64::from(e.tid)));
    assert_eq!(o["error"].as_bool(), Some(e.is_error()));
    match e.kind {
        Kind::Req => {
            assert_eq!(o["status"].as_u64(), Some(u64::from(e.status)));
            assert_eq!(o["bytes_in"].as_u64(), Some(e.value));
            assert_eq!(o["bytes_out"].as_u64(), Some(e.value2));
            match o.get("method") {
                Some(m) => assert_eq!(m.as_str(), Some(e.method.as_str())),
                None => assert_eq!(e.method, Method::None),
            }
        }
        Kind::Db => assert_eq!(o["rows"].as_u64(), Some(e.value)),
        Kind::Custom => {
            let value = f64::from_bits(e.value);
            if value.is_finite() {
                assert_eq!(o["value"].as_f64(), Some(value));
            } else {
                assert!(o["value"].is_null());
            }
        }
        Kind::Fn => {}
    }
    if e.kind != Kind::Custom {
        assert_eq!(o["dur_ns"].as_u64(), Some(e.dur_ns));
    }
    let hex = |key: &str, value: u128, digits: usize| match o.get(key) {
        Some(h) => {
            let h = h.as_str().unwrap();
            assert_eq!(h.len(), digits);
            assert!(h
                .bytes()
                .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c)));
            assert_eq!(u128::from_str_radix(h, 16).ok(), Some(value));
        }
        None => assert_eq!(value, 0, "{key} missing"),
    };
    hex("trace_id", e.trace_id, 32);
    hex("span_id", u128::from(e.span_id), 16);
    hex("parent_span_id", u128::from(e.parent_span_id), 16);
    hex("ring_id", u128::from(info.ring_id), 16);
    match o.get("service") {
        Some(s) => {
            assert_eq!(e.writer, 0);
            assert_eq!(s.as_str(), Some(SERVICE));
        }
        None => assert_ne!(e.writer, 0),
    }
    assert_eq!(o["seq"].as_u64(), Some(e.position));
    assert_eq!(line::parse_tail(&buf), Some((info.ring_id, e.position)));
}
