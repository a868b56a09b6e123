//! After the inner service is called: the response future that records the
//! event at the response head (or, for a streaming body, when the body
//! ends), and the body wrapper that counts the bytes out.

use super::{Exception, Sink, TRACEPARENT};
use crate::backtrace;
use crate::clock::{self, Stamp};
use crate::context::{self, SpanContext, TRACEPARENT_LEN};
use crate::hash::hash_bytes;
use crate::idcache::IdCache;
use crate::record::{Kind, Method, MsgRef, StrId, FLAG_ERROR};
use crate::writer::Fields;
use bytes::Buf;
use http::header::HeaderValue;
use http::{Response, StatusCode};
use http_body::{Body, Frame, SizeHint};
use std::any::Any;
use std::future::Future;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::task::{Context, Poll};

/// Ids of exception types in the process-wide ring, by hash of the text:
/// an error path usually reports the same few types.
static EXCEPTION_TYPES: IdCache = IdCache::new();

/// A request being recorded, before its response head.
pub(super) struct Pending {
    pub(super) sink: Sink,
    pub(super) route: StrId,
    pub(super) method: Method,
    pub(super) bytes_in: u64,
    pub(super) start: Stamp,
}

impl Pending {
    fn into_recorder(self, ctx: SpanContext, status: u16) -> Recorder {
        let (dur_ns, ts_mono_ns) = clock::since(self.start);
        Recorder {
            sink: self.sink,
            route: self.route,
            method: self.method,
            status,
            dur_ns,
            ts_mono_ns,
            ctx,
            bytes_in: self.bytes_in,
            bytes_out: 0,
            error: status >= 500,
            exception_type: StrId::NONE,
            message: MsgRef::default(),
        }
    }
}

/// A request whose response head is out: waits for the body to end.
struct Recorder {
    sink: Sink,
    route: StrId,
    method: Method,
    status: u16,
    dur_ns: u64,
    ts_mono_ns: u64,
    ctx: SpanContext,
    bytes_in: u64,
    bytes_out: u64,
    error: bool,
    exception_type: StrId,
    message: MsgRef,
}

impl Recorder {
    #[cold]
    fn set_exception(&mut self, kind: &str, message: Option<&str>, stack: Option<&str>) {
        let Some(ring) = self.sink.ring() else { return };
        self.exception_type = match self.sink {
            Sink::Global => {
                let hash = hash_bytes(kind.as_bytes());
                EXCEPTION_TYPES.get(hash).unwrap_or_else(|| {
                    let id = ring.intern(kind);
                    EXCEPTION_TYPES.insert(hash, id);
                    id
                })
            }
            Sink::Owned(_) => ring.intern(kind),
        };
        let message = message.unwrap_or("");
        if !message.is_empty() || stack.is_some() {
            self.message = ring.message_with_stack(message, stack);
        }
    }

    #[cold]
    fn default_exception(&mut self) {
        let status = StatusCode::from_u16(self.status).ok();
        let reason = status.and_then(|s| s.canonical_reason()).unwrap_or("");
        let kind = format!("HTTP {} {}", self.status, reason);
        self.set_exception(kind.trim_end(), None, None);
    }

    fn finish(self) {
        let fields = Fields {
            flags: if self.error { FLAG_ERROR } else { 0 },
            method: self.method,
            status: self.status,
            dur_ns: self.dur_ns,
            exception_type: self.exception_type,
            message: self.message,
            value: self.bytes_in,
            value2: self.bytes_out,
            ts_mono_ns: self.ts_mono_ns,
            span: Some(self.ctx),
        };
        if let Some(ring) = self.sink.ring() {
            ring.record(Kind::Req, self.route, &fields);
        }
    }
}

fn panic_message(payload: &(dyn Any + Send)) -> &str {
    payload
        .downcast_ref::<&'static str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("")
}

fn set_traceparent<B>(response: &mut Response<B>, ctx: SpanContext) {
    let mut buf = [0u8; TRACEPARENT_LEN];
    ctx.write_traceparent(&mut buf);
    if let Ok(value) = HeaderValue::from_bytes(&buf) {
        response.headers_mut().insert(TRACEPARENT.clone(), value);
    }
}

/// What the response future keeps of a request that is not excluded.
pub(super) struct Traced {
    pub(super) ctx: SpanContext,
    // `None` when the trace is sampled out (or no ring is set).
    pub(super) pending: Option<Pending>,
    pub(super) propagate: bool,
    pub(super) catch_panics: bool,
    pub(super) backtraces: bool,
}

pin_project_lite::pin_project! {
    /// The response future of [`ProfilisService`].
    pub struct ResponseFuture<F> {
        #[pin]
        pub(super) inner: F,
        // `None` for excluded requests: no context, no event.
        pub(super) traced: Option<Traced>,
    }
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: Body,
{
    type Output = Result<Response<ResponseBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let Some(traced) = this.traced else {
            let response = std::task::ready!(this.inner.poll(cx));
            return Poll::Ready(response.map(|r| r.map(ResponseBody::unrecorded)));
        };
        let ctx = traced.ctx;
        let polled = {
            let _ctx = context::enter(ctx);
            let inner = this.inner;
            let poll = AssertUnwindSafe(move || inner.poll(cx));
            if traced.backtraces {
                backtrace::armed(|| catch_unwind(poll))
            } else {
                catch_unwind(poll)
            }
        };
        match polled {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(Ok(mut response))) => {
                let status = response.status().as_u16();
                if traced.propagate {
                    set_traceparent(&mut response, ctx);
                }
                let Some(p) = traced.pending.take() else {
                    return Poll::Ready(Ok(response.map(ResponseBody::unrecorded)));
                };
                let mut recorder = p.into_recorder(ctx, status);
                if let Some(e) = response.extensions().get::<Exception>() {
                    recorder.set_exception(&e.kind, Some(&e.message), None);
                } else if recorder.error {
                    recorder.default_exception();
                }
                // A body that knows its length (a full body, as most
                // handlers return) has nothing left to measure: record now.
                // A streaming body is counted as it goes.
                if let Some(length) = response.body().size_hint().exact() {
                    recorder.bytes_out = length;
                    recorder.finish();
                    return Poll::Ready(Ok(response.map(ResponseBody::unrecorded)));
                }
                let recorder = Some(Box::new(recorder));
                Poll::Ready(Ok(response.map(|body| ResponseBody {
                    inner: Inner::Body { body },
                    recorder,
                })))
            }
            Ok(Poll::Ready(Err(error))) => {
                if let Some(p) = traced.pending.take() {
                    let mut recorder = p.into_recorder(ctx, 500);
                    recorder.set_exception(std::any::type_name::<E>(), None, None);
                    recorder.finish();
                }
                Poll::Ready(Err(error))
            }
            Err(payload) => {
                if let Some(p) = traced.pending.take() {
                    let mut recorder = p.into_recorder(ctx, 500);
                    let stack = traced.backtraces.then(backtrace::take_panic).flatten();
                    recorder.set_exception(
                        "panic",
                        Some(panic_message(&*payload)),
                        stack.as_deref(),
                    );
                    recorder.finish();
                }
                if !traced.catch_panics {
                    resume_unwind(payload);
                }
                let mut response = Response::new(ResponseBody {
                    inner: Inner::Empty,
                    recorder: None,
                });
                *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
                if traced.propagate {
                    set_traceparent(&mut response, ctx);
                }
                Poll::Ready(Ok(response))
            }
        }
    }
}

pin_project_lite::pin_project! {
    #[project = InnerProj]
    enum Inner<B> {
        Body { #[pin] body: B },
        // The response the layer made itself for a caught panic.
        Empty,
    }
}

pin_project_lite::pin_project! {
    /// The response body of [`ProfilisService`]: the inner body. A streaming
    /// body (no exact size hint) is counted as it streams and the request's
    /// event recorded when it ends, fails or drops; any other was recorded
    /// with the response head.
    pub struct ResponseBody<B> {
        #[pin]
        inner: Inner<B>,
        // Boxed: only streaming bodies carry one, and it keeps the body
        // small for the moves on the way out.
        recorder: Option<Box<Recorder>>,
    }

    impl<B> PinnedDrop for ResponseBody<B> {
        fn drop(this: Pin<&mut Self>) {
            if let Some(recorder) = this.project().recorder.take() {
                recorder.finish();
            }
        }
    }
}

impl<B> ResponseBody<B> {
    fn unrecorded(body: B) -> Self {
        ResponseBody {
            inner: Inner::Body { body },
            recorder: None,
        }
    }
}

impl<B: Body> Body for ResponseBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        let this = self.project();
        let body = match this.inner.project() {
            InnerProj::Body { body } => body,
            // A caught panic's response: its event is already recorded.
            InnerProj::Empty => return Poll::Ready(None),
        };
        let frame = std::task::ready!(body.poll_frame(cx));
        match &frame {
            Some(Ok(f)) => {
                if let (Some(recorder), Some(data)) = (this.recorder.as_mut(), f.data_ref()) {
                    recorder.bytes_out += data.remaining() as u64;
                }
            }
            Some(Err(_)) => {
                if let Some(mut recorder) = this.recorder.take() {
                    recorder.error = true;
                    if recorder.exception_type == StrId::NONE {
                        recorder.set_exception(std::any::type_name::<B::Error>(), None, None);
                    }
                    recorder.finish();
                }
            }
            None => {
                if let Some(recorder) = this.recorder.take() {
                    recorder.finish();
                }
            }
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        match &self.inner {
            Inner::Body { body } => body.is_end_stream(),
            Inner::Empty => true,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.inner {
            Inner::Body { body } => body.size_hint(),
            Inner::Empty => SizeHint::with_exact(0),
        }
    }
}
