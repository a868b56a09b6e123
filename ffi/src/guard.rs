//! The boundary discipline every exported function follows: arguments are
//! checked before use, failures become a [`Status`] plus a thread-local
//! message, and no panic ever unwinds into the caller.
//!
//! An exported function hands its body to [`checked`], the one `unsafe`
//! step of a call: `checked` takes the C caller's promise, that every
//! pointer argument is NULL or valid for the access the function's
//! `# Safety` section states, for the length of the call. The body gets a
//! [`Call`], whose safe methods read and write through those pointers after
//! checking NULL, alignment, length and UTF-8. The unsafe operations of the
//! C ABI are the few primitives of `Call` below, each with its reason.

use crate::status::{set_last_error, Status};
use crate::types::{FfiSpanContext, RingHandle, HANDLE_MAGIC};
use profilis::context::SpanContext;
use profilis::Ring;
use std::ffi::c_char;
use std::marker::PhantomData;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// A failed call: its status and a message for [`crate::profilis_last_error`].
#[derive(Debug)]
pub(crate) struct Failure {
    pub status: Status,
    pub message: String,
}

impl Failure {
    pub fn new(status: Status, message: impl Into<String>) -> Failure {
        Failure {
            status,
            message: message.into(),
        }
    }

    pub fn null(what: &str) -> Failure {
        Failure::new(Status::ErrNull, format!("{what} is NULL"))
    }

    pub fn invalid(message: impl Into<String>) -> Failure {
        Failure::new(Status::ErrInvalid, message)
    }
}

/// Runs `body`, turning an error into its status (and the last-error
/// message) and a panic into [`Status::ErrPanic`]. Nothing unwinds out.
#[inline]
fn guard(body: impl FnOnce() -> Result<Status, Failure>) -> Status {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(status)) => status,
        Ok(Err(failure)) => {
            set_last_error(&failure.message);
            failure.status
        }
        Err(payload) => {
            let what = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_string());
            // Dropping the payload could itself panic; leak it instead.
            std::mem::forget(payload);
            set_last_error(&format!("internal error (panic): {what}"));
            Status::ErrPanic
        }
    }
}

/// The C caller's promise that an exported function's `# Safety` contract
/// holds: each of its pointer arguments is NULL or valid for the access
/// its `# Safety` section states (reads of `len` bytes, a valid `T`, a
/// writable `T`, `cap` writable bytes) until the function returns.
pub(crate) struct Promise(());

impl Promise {
    /// Takes the promise.
    ///
    /// # Safety
    /// Made only in an exported function whose caller keeps its `# Safety`
    /// contract, and handed to [`checked`] with that function's own pointer
    /// arguments as the only pointers given to the [`Call`].
    #[inline]
    pub unsafe fn new() -> Promise {
        Promise(())
    }
}

/// Runs the body of an exported function with a [`Call`] over its
/// arguments: errors become their status and message, panics
/// [`Status::ErrPanic`]; nothing unwinds into the caller.
#[inline]
pub(crate) fn checked(
    _promise: Promise,
    body: impl for<'c> FnOnce(Call<'c>) -> Result<Status, Failure>,
) -> Status {
    guard(|| body(Call { _call: PhantomData }))
}

/// The pointer arguments of one exported call, usable while it runs. Only
/// [`checked`] makes one, on the caller's [`Promise`] that the pointers
/// are valid; the methods add the checks the promise leaves to us.
#[derive(Clone, Copy)]
pub(crate) struct Call<'c> {
    /// Invariant in `'c`: references handed out live exactly as long as
    /// the call.
    _call: PhantomData<fn(&'c ()) -> &'c ()>,
}

impl<'c> Call<'c> {
    /// The bytes `ptr[..len]`; a NULL pointer is accepted only with length 0.
    pub fn bytes(self, ptr: *const c_char, len: usize, what: &str) -> Result<&'c [u8], Failure> {
        if ptr.is_null() {
            return if len == 0 {
                Ok(&[])
            } else {
                Err(Failure::null(what))
            };
        }
        if len > isize::MAX as usize {
            return Err(Failure::invalid(format!(
                "{what}: length {len} is too large"
            )));
        }
        // SAFETY: non-NULL, `len` fits an isize, and by the promise `checked`
        // was given, `ptr` is readable for `len` bytes for the call.
        Ok(unsafe { std::slice::from_raw_parts(ptr.cast::<u8>(), len) })
    }

    /// The UTF-8 text `ptr[..len]`.
    pub fn text(self, ptr: *const c_char, len: usize, what: &str) -> Result<&'c str, Failure> {
        let b = self.bytes(ptr, len, what)?;
        std::str::from_utf8(b).map_err(|e| {
            Failure::new(
                Status::ErrUtf8,
                format!("{what} is not valid UTF-8 (at byte {})", e.valid_up_to()),
            )
        })
    }

    /// A shared reference to `*ptr`, checking NULL and alignment.
    pub fn reference<T>(self, ptr: *const T, what: &str) -> Result<&'c T, Failure> {
        if ptr.is_null() {
            return Err(Failure::null(what));
        }
        if !ptr.is_aligned() {
            return Err(Failure::invalid(format!("{what} is misaligned")));
        }
        // SAFETY: non-NULL and aligned; by the promise `checked` was given, it
        // points to a valid `T` for the call.
        Ok(unsafe { &*ptr })
    }

    /// An optional shared reference: NULL gives `None`.
    pub fn optional<T>(self, ptr: *const T, what: &str) -> Result<Option<&'c T>, Failure> {
        if ptr.is_null() {
            return Ok(None);
        }
        self.reference(ptr, what).map(Some)
    }

    /// Writes `value` through an out-pointer, checking NULL and alignment.
    pub fn write<T>(self, ptr: *mut T, value: T, what: &str) -> Result<(), Failure> {
        if ptr.is_null() {
            return Err(Failure::null(what));
        }
        if !ptr.is_aligned() {
            return Err(Failure::invalid(format!("{what} is misaligned")));
        }
        // SAFETY: non-NULL and aligned; by the promise `checked` was given, it is
        // writable. `write` does not read or drop the old (possibly
        // uninitialised) value.
        unsafe { ptr.write(value) };
        Ok(())
    }

    /// Copies `text` into `out[..cap]` when it fits, NUL-terminating it when
    /// there is room for one more byte, and reports the length through
    /// `out_len` (when not NULL). Returns [`Status::ErrBufferTooSmall`]
    /// (writing nothing to `out`) when `cap < text.len()`.
    pub fn copy_out(
        self,
        text: &[u8],
        out: *mut c_char,
        cap: usize,
        out_len: *mut usize,
    ) -> Result<Status, Failure> {
        if !out_len.is_null() {
            self.write(out_len, text.len(), "out_len")?;
        }
        if cap < text.len() {
            return Err(Failure::new(
                Status::ErrBufferTooSmall,
                format!("output buffer holds {cap} bytes, {} needed", text.len()),
            ));
        }
        if out.is_null() {
            return if text.is_empty() {
                Ok(Status::Ok)
            } else {
                Err(Failure::null("out"))
            };
        }
        // SAFETY: non-NULL, and by the promise `checked` was given, writable for
        // `cap >= text.len()` bytes; `text` is a Rust allocation of its own,
        // so the ranges do not overlap.
        unsafe {
            std::ptr::copy_nonoverlapping(text.as_ptr(), out.cast::<u8>(), text.len());
            if cap > text.len() {
                *out.add(text.len()) = 0;
            }
        }
        Ok(Status::Ok)
    }

    /// The ring behind a handle from `profilis_open`.
    pub fn ring(self, ptr: *const RingHandle) -> Result<&'c Ring, Failure> {
        let handle = self.reference(ptr, "ring")?;
        if handle.magic != HANDLE_MAGIC {
            return Err(Failure::invalid("ring is not an open profilis_ring handle"));
        }
        Ok(&handle.ring)
    }

    /// The trace context an emit records: the caller's, or none (NULL).
    pub fn span(self, ptr: *const FfiSpanContext) -> Result<SpanContext, Failure> {
        Ok(self
            .optional(ptr, "ctx")?
            .map_or(SpanContext::NONE, SpanContext::from))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::last_error;

    /// Runs `body` as an exported function would.
    fn call(body: impl for<'c> FnOnce(Call<'c>) -> Result<Status, Failure>) -> Status {
        // SAFETY: the tests hand the `Call` only pointers to their own live
        // locals, or NULL.
        checked(unsafe { Promise::new() }, body)
    }

    #[test]
    fn a_panic_becomes_a_status_and_a_message() {
        let status = call(|_| panic!("broken invariant {}", 7));
        assert_eq!(status, Status::ErrPanic);
        assert_eq!(last_error(), "internal error (panic): broken invariant 7");
        // The thread is still usable afterwards.
        assert_eq!(call(|_| Ok(Status::Ok)), Status::Ok);
        assert_eq!(last_error(), "internal error (panic): broken invariant 7");
    }

    #[test]
    fn failures_set_the_message() {
        let status = call(|_| Err(Failure::null("ring")));
        assert_eq!(status, Status::ErrNull);
        assert_eq!(last_error(), "ring is NULL");
    }

    /// The failure of `body`, or `Ok` as a failure-free marker.
    fn failure(body: impl for<'c> FnOnce(Call<'c>) -> Result<(), Failure>) -> Option<Failure> {
        let mut out = None;
        call(|c| {
            out = body(c).err();
            Ok(Status::Ok)
        });
        out
    }

    #[test]
    fn text_checks_null_length_and_utf8() {
        let mut empty = None;
        call(|c| {
            empty = Some(c.text(std::ptr::null(), 0, "t")?.to_string());
            Ok(Status::Ok)
        });
        assert_eq!(empty.as_deref(), Some(""), "NULL with length 0 is empty");
        let e = failure(|c| c.text(std::ptr::null(), 3, "t").map(drop)).unwrap();
        assert_eq!(e.status, Status::ErrNull);
        let bad = [b'a', 0xff];
        let e = failure(|c| c.text(bad.as_ptr().cast(), bad.len(), "t").map(drop)).unwrap();
        assert_eq!(e.status, Status::ErrUtf8);
        assert!(e.message.contains("at byte 1"), "{}", e.message);
        // An impossible length is rejected before any read.
        let e = failure(|c| c.bytes(bad.as_ptr().cast(), usize::MAX, "t").map(drop)).unwrap();
        assert_eq!(e.status, Status::ErrInvalid);
    }

    #[test]
    fn copy_out_reports_the_length_and_never_overflows() {
        let mut buf = [b'x' as c_char; 6];
        let mut len = 0usize;
        let status = call(|c| c.copy_out(b"hello!", buf.as_mut_ptr(), 5, &mut len));
        assert_eq!((status, len), (Status::ErrBufferTooSmall, 6));
        assert_eq!(buf[0], b'x' as c_char);
        // Exactly enough room: no NUL is written.
        let status = call(|c| c.copy_out(b"hello!", buf.as_mut_ptr(), 6, &mut len));
        assert_eq!(status, Status::Ok);
        assert_eq!(buf.map(|c| c as u8), *b"hello!");
        let mut with_nul = [1 as c_char; 4];
        call(|c| c.copy_out(b"abc", with_nul.as_mut_ptr(), 4, std::ptr::null_mut()));
        assert_eq!(with_nul.map(|c| c as u8), *b"abc\0");
    }

    #[test]
    fn out_pointers_are_checked_before_the_write() {
        let e = failure(|c| c.write(std::ptr::null_mut::<u32>(), 1, "out")).unwrap();
        assert_eq!(
            (e.status, e.message.as_str()),
            (Status::ErrNull, "out is NULL")
        );
        let mut words = [0u64; 2];
        let misaligned = words
            .as_mut_ptr()
            .cast::<u8>()
            .wrapping_add(1)
            .cast::<u64>();
        let e = failure(|c| c.write(misaligned, 1, "out")).unwrap();
        assert_eq!(e.status, Status::ErrInvalid);
        assert_eq!(words, [0, 0], "nothing written");
    }
}
