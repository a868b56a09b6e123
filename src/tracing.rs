//! A `tracing` [`Layer`] that records every closed span as an FN event, so
//! an application already instrumented with `tracing` gets Profilis without
//! touching its code.
//!
//! ```
//! use tracing_subscriber::prelude::*;
//! tracing_subscriber::registry()
//!     .with(profilis::tracing::ProfilisLayer::new())
//!     .init();
//! ```
//!
//! - **Name**: `target::name` of the span (`my_app::db::load_user` for a
//!   `#[tracing::instrument]` function), or the span's `name` field.
//! - **Duration**: from the span's creation to its close (the start time is
//!   kept in the span's extensions).
//! - **Trace**: a span is a child of its `tracing` parent (contextual or
//!   explicit); a root span continues the Profilis context current when it is
//!   created (e.g. the tower layer's request span), or starts a new trace.
//!   While a span is entered, the Profilis context is the span's, so Profilis
//!   spans, DB and `#[profile]` events inside it record it as their parent.
//! - **Fields**: `status` (integer) sets the status, 5xx also the error flag;
//!   `error` (bool) sets the error flag, any other `error` value sets it and
//!   becomes the message; `exception` sets the exception type and the error
//!   flag.
//! - Spans of a trace sampled out by the tower layer record nothing.

use crate::clock::{self, Stamp};
use crate::context::{self, SpanContext};
use crate::hash::hash_bytes;
use crate::idcache::IdCache;
use crate::record::{Kind, MsgRef, StrId, FLAG_ERROR};
use crate::writer::{Fields, Ring};
use std::fmt;
use std::sync::Arc;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::Subscriber;
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

/// Records closed `tracing` spans as FN events; see the [module docs](self).
#[derive(Clone)]
pub struct ProfilisLayer {
    ring: Option<Ring>,
    /// `target::name` ids by callsite.
    names: Arc<IdCache>,
}

impl Default for ProfilisLayer {
    fn default() -> Self {
        ProfilisLayer::new()
    }
}

impl fmt::Debug for ProfilisLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProfilisLayer")
            .field("ring", &self.ring.as_ref().map(Ring::path))
            .finish()
    }
}

impl ProfilisLayer {
    /// A layer recording into the process-wide ring ([`crate::init`]).
    pub fn new() -> Self {
        ProfilisLayer {
            ring: None,
            names: Arc::new(IdCache::new()),
        }
    }

    /// Records into `ring` instead of the process-wide ring.
    pub fn ring(mut self, ring: Ring) -> Self {
        self.ring = Some(ring);
        self
    }

    #[inline]
    fn sink(&self) -> Option<&Ring> {
        self.ring.as_ref().or_else(|| crate::global())
    }

    fn name_id(&self, ring: &Ring, metadata: &'static tracing::Metadata<'static>) -> StrId {
        let key = hash_bytes(&(metadata as *const _ as usize).to_le_bytes());
        if let Some(id) = self.names.get(key) {
            return id;
        }
        let id = ring.intern(&format!("{}::{}", metadata.target(), metadata.name()));
        self.names.insert(key, id);
        id
    }
}

/// What the layer keeps in a span's extensions.
struct SpanData {
    ctx: SpanContext,
    start: Stamp,
    name: StrId,
    status: u16,
    error: bool,
    exception_type: StrId,
    message: MsgRef,
    /// The Profilis context to restore when the span is exited.
    previous: SpanContext,
    /// Whether to record (a ring exists and the trace is sampled).
    record: bool,
}

struct FieldVisitor<'a> {
    data: &'a mut SpanData,
    ring: &'a Ring,
}

impl FieldVisitor<'_> {
    fn text(&mut self, field: &Field, value: &str) {
        match field.name() {
            "name" if !value.is_empty() => self.data.name = self.ring.intern(value),
            "error" => {
                self.data.error = true;
                if !value.is_empty() && value != "true" {
                    self.data.message = self.ring.message(value);
                }
            }
            "exception" => {
                self.data.error = true;
                self.data.exception_type = self.ring.intern(value);
            }
            _ => {}
        }
    }

    fn status(&mut self, value: u64) {
        self.data.status = value.min(u16::MAX as u64) as u16;
        if value >= 500 {
            self.data.error = true;
        }
    }
}

impl Visit for FieldVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.text(field, value);
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        if field.name() == "error" && value {
            self.data.error = true;
        }
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        if field.name() == "status" {
            self.status(value);
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        if field.name() == "status" {
            self.status(value.max(0) as u64);
        }
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        if matches!(field.name(), "error" | "exception") {
            self.text(field, &value.to_string());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if matches!(field.name(), "name" | "error" | "exception") {
            self.text(field, &format!("{value:?}"));
        }
    }
}

impl<S> Layer<S> for ProfilisLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let parent = if attrs.is_root() {
            SpanContext::NONE
        } else if let Some(parent) = span.parent() {
            parent
                .extensions()
                .get::<SpanData>()
                .map_or(SpanContext::NONE, |d| d.ctx)
        } else {
            // A contextual root: continue the Profilis trace (e.g. the
            // request's span set by the tower layer).
            context::current()
        };
        let span_ctx = parent.child();
        let ring = self.sink().filter(|_| span_ctx.sampled);
        let mut data = SpanData {
            ctx: span_ctx,
            start: Stamp::default(),
            name: StrId::NONE,
            status: 0,
            error: false,
            exception_type: StrId::NONE,
            message: MsgRef::default(),
            previous: SpanContext::NONE,
            record: ring.is_some(),
        };
        if let Some(ring) = ring {
            data.name = self.name_id(ring, span.metadata());
            attrs.record(&mut FieldVisitor {
                data: &mut data,
                ring,
            });
        }
        data.start = clock::now();
        span.extensions_mut().insert(data);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let (Some(span), Some(ring)) = (ctx.span(id), self.sink()) else {
            return;
        };
        let mut extensions = span.extensions_mut();
        if let Some(data) = extensions.get_mut::<SpanData>().filter(|d| d.record) {
            values.record(&mut FieldVisitor { data, ring });
        }
    }

    fn on_enter(&self, id: &Id, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id) {
            if let Some(data) = span.extensions_mut().get_mut::<SpanData>() {
                data.previous = context::replace(data.ctx);
            }
        }
    }

    fn on_exit(&self, id: &Id, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id) {
            if let Some(data) = span.extensions().get::<SpanData>() {
                context::replace(data.previous);
            }
        }
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let (Some(span), Some(ring)) = (ctx.span(&id), self.sink()) else {
            return;
        };
        let extensions = span.extensions();
        let Some(data) = extensions.get::<SpanData>().filter(|d| d.record) else {
            return;
        };
        let (dur_ns, ts_mono_ns) = clock::since(data.start);
        let fields = Fields {
            flags: if data.error { FLAG_ERROR } else { 0 },
            status: data.status,
            dur_ns,
            exception_type: data.exception_type,
            message: data.message,
            ts_mono_ns,
            span: Some(data.ctx),
            ..Fields::default()
        };
        ring.record(Kind::Fn, data.name, &fields);
    }
}
