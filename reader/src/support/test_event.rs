//! A blank event for unit tests, to be filled in with struct update syntax.

use profilis::layout::NO_WRITER;
use profilis::{Event, Kind, Method, MsgRef, StrId};

/// An FN event at position 0 of lane 0, name id 1, pid and tid 1, with no
/// writer-table index and every other field zero.
pub fn blank() -> Event {
    Event {
        position: 0,
        lane: 0,
        kind: Kind::Fn,
        flags: 0,
        method: Method::None,
        status: 0,
        name: StrId(1),
        exception_type: StrId::NONE,
        message: MsgRef(0),
        pid: 1,
        tid: 1,
        ts_mono_ns: 0,
        dur_ns: 0,
        trace_id: 0,
        span_id: 0,
        parent_span_id: 0,
        value: 0,
        value2: 0,
        writer: NO_WRITER,
    }
}
