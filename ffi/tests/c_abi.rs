//! The C ABI seen from C: `include/profilis.h` declares exactly what the
//! library exports, a C file calling every function compiles with
//! `-Werror` and agrees with Rust on every struct layout and constant, and
//! the C example's events decode with `profilis::Consumer`.

use profilis::layout::{POLICY_DROP_NEWEST, POLICY_OVERWRITE_OLDEST};
use profilis::record::FLAG_ERROR;
use profilis::{Consumer, Event, Kind, Method, StrId};
use profilis_ffi::{FfiCounters, FfiEvent, FfiOpenOptions, FfiSpan, FfiSpanContext, Status};
use std::collections::{BTreeMap, BTreeSet};
use std::mem::{align_of, offset_of, size_of};
use std::path::{Path, PathBuf};
use std::process::Command;

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The directory holding the `libprofilis_ffi.a` and `.so` this test was
/// built with: `target/<profile>/deps`, next to the test binary (cargo
/// copies them up to `target/<profile>` only when the library itself is
/// the build's target).
fn lib_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("path of the test binary");
    let dir = exe
        .parent()
        .expect("test binary has a directory")
        .to_path_buf();
    assert!(
        dir.join("libprofilis_ffi.a").exists(),
        "libprofilis_ffi.a not found in {}",
        dir.display()
    );
    dir
}

fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("c_abi-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("creating a scratch directory");
    dir
}

/// Compiles `source` against the static library with warnings as errors.
fn compile(source: &Path, out: &Path) {
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".to_string());
    let output = Command::new(&cc)
        .args([
            "-std=c11",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-pedantic",
            "-O1",
            "-I",
        ])
        .arg(crate_dir().join("include"))
        .arg(source)
        .arg(lib_dir().join("libprofilis_ffi.a"))
        .args(["-lpthread", "-ldl", "-lm", "-o"])
        .arg(out)
        .output()
        .unwrap_or_else(|e| panic!("running the C compiler {cc:?}: {e}"));
    assert!(
        output.status.success(),
        "compiling {} failed:\n{}",
        source.display(),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn run(program: &Path, args: &[&Path]) -> String {
    let output = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", program.display()));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{} failed ({}):\n{stdout}\n{}",
        program.display(),
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// Names of the functions `text` declares or defines for C, in order.
fn c_declarations(header: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in header.lines() {
        let line = line.trim_start();
        if line.starts_with("#") || line.starts_with("*") || line.starts_with("/") {
            continue;
        }
        if let Some(open) = line.find('(') {
            let before = &line[..open];
            if let Some(name) = before
                .rsplit(|c: char| !c.is_alphanumeric() && c != '_')
                .next()
            {
                if name.starts_with("profilis_") {
                    names.insert(name.to_string());
                }
            }
        }
    }
    names
}

/// Names of the `extern "C"` functions defined in the crate's sources.
fn rust_exports() -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for entry in std::fs::read_dir(crate_dir().join("src")).expect("reading src/") {
        let path = entry.expect("listing src/").path();
        let text = std::fs::read_to_string(&path).expect("reading a source file");
        let mut exported = false;
        for line in text.lines() {
            let line = line.trim();
            if line == "#[no_mangle]" {
                exported = true;
            } else if exported && line.contains("extern \"C\" fn ") {
                let name = line
                    .split("extern \"C\" fn ")
                    .nth(1)
                    .and_then(|rest| rest.split('(').next())
                    .expect("a function name after `extern \"C\" fn`");
                names.insert(name.to_string());
                exported = false;
            }
        }
    }
    names
}

#[test]
fn header_declares_exactly_the_exported_functions() {
    let header = std::fs::read_to_string(crate_dir().join("include/profilis.h"))
        .expect("reading include/profilis.h");
    let declared = c_declarations(&header);
    let exported = rust_exports();
    assert!(exported.len() >= 20, "found only {exported:?}");
    assert_eq!(
        declared, exported,
        "profilis.h and the #[no_mangle] functions differ"
    );

    // And the shared library really exports them.
    let so = lib_dir().join("libprofilis_ffi.so");
    let nm = Command::new("nm")
        .args(["-D", "--defined-only"])
        .arg(&so)
        .output()
        .expect("running nm");
    assert!(nm.status.success(), "nm {}", so.display());
    let symbols: BTreeSet<String> = String::from_utf8_lossy(&nm.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().last())
        .filter(|s| s.starts_with("profilis_"))
        .map(str::to_string)
        .collect();
    assert_eq!(symbols, exported, "symbols of {} differ", so.display());
}

#[test]
fn every_function_works_from_c_and_layouts_agree() {
    let dir = scratch("abi");
    let program = dir.join("abi_check");
    compile(&crate_dir().join("tests/c/abi_check.c"), &program);
    let ring = dir.join("abi.ring");
    let missing = dir.join("missing").join("abi.ring");
    let stdout = run(&program, &[&ring, &missing]);
    assert!(!stdout.contains("FAIL"), "{stdout}");
    let checks: usize = stdout
        .lines()
        .find_map(|l| l.strip_prefix("checks "))
        .expect("a final `checks N` line")
        .parse()
        .expect("a count");
    assert!(checks >= 100, "only {checks} checks ran");

    let mut layouts = BTreeMap::new();
    let mut consts = BTreeMap::new();
    for line in stdout.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["layout", name, "size", size, "align", align] => {
                layouts.insert(format!("{name} size"), size.parse::<usize>().unwrap());
                layouts.insert(format!("{name} align"), align.parse::<usize>().unwrap());
            }
            ["field", name, offset] => {
                layouts.insert(name.to_string(), offset.parse::<usize>().unwrap());
            }
            ["const", name, value] => {
                consts.insert(name.to_string(), value.parse::<i64>().unwrap());
            }
            _ => {}
        }
    }

    let mut expected = BTreeMap::new();
    macro_rules! layout {
        ($c:literal, $t:ty, [$($f:ident),*]) => {
            expected.insert(concat!($c, " size").to_string(), size_of::<$t>());
            expected.insert(concat!($c, " align").to_string(), align_of::<$t>());
            $(expected.insert(concat!($c, ".", stringify!($f)).to_string(), offset_of!($t, $f));)*
        };
    }
    layout!(
        "profilis_span_context",
        FfiSpanContext,
        [
            trace_id_high,
            trace_id_low,
            span_id,
            parent_span_id,
            sampled
        ]
    );
    layout!(
        "profilis_span",
        FfiSpan,
        [context, start_ns, name, reserved]
    );
    layout!(
        "profilis_event",
        FfiEvent,
        [
            dur_ns,
            ts_mono_ns,
            value,
            value2,
            kind,
            flags,
            method,
            status,
            name,
            exception_type,
            message,
            reserved
        ]
    );
    layout!(
        "profilis_counters",
        FfiCounters,
        [
            claimed,
            dropped,
            dropped_full,
            overwritten,
            received,
            abandoned,
            torn,
            in_flight,
            process_dropped,
            strings_overflow,
            messages_lost,
            messages_unread,
            names_unresolved,
            repairs
        ]
    );
    layout!(
        "profilis_open_options",
        FfiOpenOptions,
        [capacity, policy, reserved, service, service_len]
    );
    layout!("profilis_status", Status, []);
    assert_eq!(
        layouts, expected,
        "struct layouts differ between C and Rust"
    );

    let mut want: BTreeMap<String, i64> = BTreeMap::new();
    let mut put = |name: &str, value: i64| {
        want.insert(name.to_string(), value);
    };
    put("PROFILIS_ABI_VERSION", profilis_ffi::ABI_VERSION as i64);
    put("PROFILIS_KIND_REQ", Kind::Req as i64);
    put("PROFILIS_KIND_FN", Kind::Fn as i64);
    put("PROFILIS_KIND_DB", Kind::Db as i64);
    put("PROFILIS_KIND_CUSTOM", Kind::Custom as i64);
    put("PROFILIS_FLAG_ERROR", FLAG_ERROR as i64);
    for (name, method) in [
        ("NONE", Method::None),
        ("GET", Method::Get),
        ("POST", Method::Post),
        ("PUT", Method::Put),
        ("DELETE", Method::Delete),
        ("PATCH", Method::Patch),
        ("HEAD", Method::Head),
        ("OPTIONS", Method::Options),
        ("CONNECT", Method::Connect),
        ("TRACE", Method::Trace),
        ("OTHER", Method::Other),
    ] {
        put(&format!("PROFILIS_METHOD_{name}"), method as i64);
    }
    put("PROFILIS_POLICY_DROP_NEWEST", POLICY_DROP_NEWEST as i64);
    put(
        "PROFILIS_POLICY_OVERWRITE_OLDEST",
        POLICY_OVERWRITE_OLDEST as i64,
    );
    put("PROFILIS_STR_NONE", StrId::NONE.0 as i64);
    put("PROFILIS_STR_OVERFLOW", StrId::OVERFLOW.0 as i64);
    put(
        "PROFILIS_TRACEPARENT_LEN",
        profilis_ffi::TRACEPARENT_LEN as i64,
    );
    for (name, status) in [
        ("OK", Status::Ok),
        ("DROPPED", Status::Dropped),
        ("ERR_NULL", Status::ErrNull),
        ("ERR_UTF8", Status::ErrUtf8),
        ("ERR_INVALID", Status::ErrInvalid),
        ("ERR_OPEN", Status::ErrOpen),
        ("ERR_BUFFER_TOO_SMALL", Status::ErrBufferTooSmall),
        ("ERR_TRACEPARENT", Status::ErrTraceparent),
        ("ERR_PANIC", Status::ErrPanic),
    ] {
        put(&format!("PROFILIS_{name}"), status as i64);
    }
    assert_eq!(consts, want, "constants differ between profilis.h and Rust");
}

/// Drains every event of the ring at `path`.
fn drain(path: &Path) -> (Vec<Event>, Consumer) {
    let mut consumer = Consumer::attach(path).expect("attaching to the example's ring");
    let mut events = Vec::new();
    loop {
        let batch = consumer.read(1024);
        events.extend_from_slice(batch.events);
        let n = batch.events.len();
        consumer.commit();
        if n == 0 {
            break;
        }
    }
    (events, consumer)
}

#[test]
fn c_example_events_decode() {
    let dir = scratch("example");
    let program = dir.join("example");
    compile(&crate_dir().join("examples/c/example.c"), &program);
    let ring = dir.join("example.ring");
    let stdout = run(&program, &[&ring]);

    let (events, consumer) = drain(&ring);
    let names = consumer.names();
    let name = |e: &Event| names.name(e.name).to_string();
    let summary: Vec<(Kind, String)> = events.iter().map(|e| (e.kind, name(e))).collect();
    let redacted = "SELECT id, name FROM users WHERE id = ? AND email = ?";
    assert_eq!(
        summary,
        vec![
            (Kind::Db, redacted.to_string()),
            (Kind::Fn, "load_user".to_string()),
            (Kind::Req, "/users/{id}".to_string()),
            (Kind::Req, "/orders".to_string()),
            (Kind::Fn, "load_user".to_string()),
            (Kind::Custom, "queue_depth".to_string()),
        ]
    );
    let (db, span, users, orders, fn_event, custom) = (
        &events[0], &events[1], &events[2], &events[3], &events[4], &events[5],
    );

    // The request continues the incoming trace; the span and the query
    // are its children.
    let caller_trace = 0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736u128;
    assert_eq!(users.trace_id, caller_trace);
    assert_eq!(users.parent_span_id, 0x00f0_67aa_0ba9_02b7);
    assert_eq!(span.trace_id, caller_trace);
    assert_eq!(span.parent_span_id, users.span_id);
    assert_eq!(db.span_id, span.span_id);
    assert_eq!(db.trace_id, caller_trace);
    assert!(stdout.contains(&format!(
        "traceparent 00-{caller_trace:032x}-{:016x}-01",
        users.span_id
    )));

    assert_eq!(users.method, Method::Get);
    assert_eq!(users.status, 200);
    assert_eq!(users.value2, 512);
    assert_eq!(users.flags & FLAG_ERROR, 0);
    assert!(
        span.dur_ns > 0 && span.dur_ns <= users.dur_ns,
        "{span:?} {users:?}"
    );
    assert_eq!(db.dur_ns, 250_000);
    assert_eq!(db.value, 1);

    assert_eq!(orders.method, Method::Post);
    assert_eq!(orders.status, 500);
    assert_ne!(orders.flags & FLAG_ERROR, 0);
    assert_eq!(orders.value, 128);
    assert_eq!(orders.value2, 64);
    assert!(orders.dur_ns > 0);
    assert_ne!(orders.trace_id, caller_trace);
    assert_eq!(names.name(orders.exception_type).as_ref(), "TimeoutError");
    let message = names.message_with_stack(orders.message).unwrap();
    assert_eq!(
        message.text, "payment service timed out after ? attempts",
        "the message as redacted in the writer"
    );
    assert_eq!(
        message.stack.as_deref(),
        Some("main (example.c:60)\nplace_order (orders.c:41)\ncharge_card (payment.c:88)\n")
    );

    assert_eq!(fn_event.dur_ns, 1_234_567);
    assert_ne!(fn_event.flags & FLAG_ERROR, 0);
    assert_eq!(fn_event.trace_id, 0);
    assert_eq!(f64::from_bits(custom.value), 7.5);

    let writers = consumer.writers();
    assert_eq!(writers.len(), 1);
    assert_eq!(writers[0].service.as_deref(), Some("c-example"));
    let counters = consumer.counters();
    assert_eq!(
        (counters.claimed, counters.received, counters.dropped),
        (6, 6, 0)
    );
    assert!(stdout.contains("claimed 6 dropped 0"), "{stdout}");
}

#[test]
fn threads_share_one_handle() {
    let dir = scratch("threads");
    let program = dir.join("threads");
    compile(&crate_dir().join("tests/c/threads.c"), &program);
    let ring = dir.join("threads.ring");
    let (threads, per_thread) = (4u64, 2000u64);
    let stdout = run(
        &program,
        &[
            &ring,
            Path::new(&threads.to_string()),
            Path::new(&per_thread.to_string()),
        ],
    );
    let total = threads * per_thread * 2;
    assert!(
        stdout.contains(&format!("claimed {total} dropped 0")),
        "{stdout}"
    );

    let (events, _consumer) = drain(&ring);
    assert_eq!(events.len() as u64, total);
    // Each span's query carries that span's context, whatever thread ran it.
    let mut spans = std::collections::HashMap::new();
    for e in events.iter().filter(|e| e.kind == Kind::Fn) {
        assert!(
            spans.insert(e.span_id, (e.trace_id, e.tid)).is_none(),
            "span ids are unique"
        );
    }
    for e in events.iter().filter(|e| e.kind == Kind::Db) {
        assert_eq!(spans.get(&e.span_id), Some(&(e.trace_id, e.tid)), "{e:?}");
    }
    let tids: BTreeSet<u32> = events.iter().map(|e| e.tid).collect();
    assert_eq!(tids.len() as u64, threads);
}
