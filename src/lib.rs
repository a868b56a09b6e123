//! Profilis: application profiling at the cost of reading the clock.
//!
//! Instrumented code records request, function, database and custom timings
//! as fixed-size events into a lock-free ring in a shared-memory file. A
//! separate process, `profilis-reader`, drains the ring and keeps the
//! statistics, exporters and dashboard out of the application.
//!
//! ```no_run
//! profilis::init()?; // PROFILIS_RING, or /dev/shm/profilis-<uid>.ring
//! profilis::emit_req(profilis::name!("/users/{id}"), 200, 1_250_000);
//! {
//!     let _span = profilis::span(profilis::name!("load_user"));
//!     profilis::emit_db("SELECT * FROM users WHERE id = ?", 80_000, 1);
//! }
//! # Ok::<(), profilis::OpenError>(())
//! ```
//!
//! The format of the ring file is specified in FORMAT.md; [`layout`] holds
//! every offset and [`ring`] the protocol.

#![warn(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]

pub mod hash;
pub mod layout;
pub mod messages;
pub mod record;
pub mod ring;
pub mod strings;
pub mod sync;
pub mod testing;

#[cfg(not(profilis_loom))]
pub mod clock;
#[cfg(not(profilis_loom))]
pub mod consumer;
#[cfg(not(profilis_loom))]
pub mod context;
#[cfg(not(profilis_loom))]
mod error;
#[cfg(not(profilis_loom))]
pub mod file;
#[cfg(not(profilis_loom))]
pub mod process;
#[cfg(not(profilis_loom))]
mod sigbus;
#[cfg(not(profilis_loom))]
mod span;
#[cfg(not(profilis_loom))]
mod writer;

pub use record::{Event, Kind, Method, MsgRef, StrId};
pub use ring::{Counters, Loss, LossCause};

#[cfg(not(profilis_loom))]
pub use crate::{
    consumer::{Batch, Consumer, ConsumerOptions, Names, WriterInfo},
    context::SpanContext,
    error::{HeaderError, OpenError},
    file::{FullPolicy, HeaderInfo},
    span::Span,
    writer::{
        default_ring_path, event_now, CallSite, Claim, Emit, Fields, Name, Ring, RingOptions,
    },
};

#[cfg(not(profilis_loom))]
mod global {
    use super::*;
    use std::path::Path;
    use std::sync::OnceLock;

    static GLOBAL: OnceLock<Ring> = OnceLock::new();

    /// Opens (or creates) the process-wide ring: `PROFILIS_RING`, or
    /// `$PROFILIS_DIR/profilis-<uid>.ring` (`/dev/shm` by default), with
    /// [`RingOptions::from_env`]. Calling it again returns the same ring.
    pub fn init() -> Result<&'static Ring, OpenError> {
        init_with(default_ring_path(), RingOptions::from_env()?)
    }

    /// Opens (or creates) the process-wide ring at `path` with `options`.
    /// Only the first successful call takes effect.
    pub fn init_with(
        path: impl AsRef<Path>,
        options: RingOptions,
    ) -> Result<&'static Ring, OpenError> {
        if let Some(ring) = GLOBAL.get() {
            return Ok(ring);
        }
        let ring = Ring::create_or_open(path, options)?;
        Ok(GLOBAL.get_or_init(|| ring))
    }

    /// The process-wide ring, if [`init`] succeeded.
    #[inline]
    pub fn global() -> Option<&'static Ring> {
        GLOBAL.get()
    }

    /// Records a request on the process-wide ring.
    #[inline]
    pub fn emit_req(route: impl Name, status: u16, dur_ns: u64) -> Emit {
        global().map_or(Emit::Disabled, |r| r.emit_req(route, status, dur_ns))
    }

    /// Records a function call on the process-wide ring.
    #[inline]
    pub fn emit_fn(name: impl Name, dur_ns: u64, error: bool) -> Emit {
        global().map_or(Emit::Disabled, |r| r.emit_fn(name, dur_ns, error))
    }

    /// Records a database query on the process-wide ring. Pass redacted text
    /// (no literal values).
    #[inline]
    pub fn emit_db(query: impl Name, dur_ns: u64, rows: u64) -> Emit {
        global().map_or(Emit::Disabled, |r| r.emit_db(query, dur_ns, rows))
    }

    /// Records a custom metric sample on the process-wide ring.
    #[inline]
    pub fn emit_custom(name: impl Name, value: f64) -> Emit {
        global().map_or(Emit::Disabled, |r| r.emit_custom(name, value))
    }

    /// Starts a span on the process-wide ring (a no-op guard without one,
    /// which still sets the trace context).
    #[inline]
    pub fn span(name: impl Name) -> Span<'static> {
        Span::start(global(), name)
    }
}

#[cfg(not(profilis_loom))]
pub use global::{emit_custom, emit_db, emit_fn, emit_req, global, init, init_with, span};
