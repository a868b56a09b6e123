//! The boundary discipline every exported function follows: arguments are
//! checked before use, failures become a [`Status`] plus a thread-local
//! message, and no panic ever unwinds into the caller.

use crate::Status;
use std::cell::RefCell;
use std::ffi::c_char;
use std::panic::{catch_unwind, AssertUnwindSafe};

thread_local! {
    static LAST_ERROR: RefCell<String> = const { RefCell::new(String::new()) };
}

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

/// Records `message` as this thread's last error.
pub(crate) fn set_last_error(message: &str) {
    let _ = LAST_ERROR.try_with(|e| {
        if let Ok(mut e) = e.try_borrow_mut() {
            e.clear();
            e.push_str(message);
        }
    });
}

/// A copy of this thread's last error message.
pub(crate) fn last_error() -> String {
    LAST_ERROR
        .try_with(|e| e.try_borrow().map(|e| e.clone()).unwrap_or_default())
        .unwrap_or_default()
}

/// Runs `body`, turning an error into its status (and the last-error
/// message) and a panic into [`Status::ErrPanic`]. Nothing unwinds out.
#[inline]
pub(crate) fn guard(body: impl FnOnce() -> Result<Status, Failure>) -> Status {
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

/// The bytes `ptr[..len]`; a NULL pointer is accepted only with length 0.
///
/// # Safety
/// A non-NULL `ptr` must be valid for reads of `len` bytes for `'a`.
pub(crate) unsafe fn bytes<'a>(
    ptr: *const c_char,
    len: usize,
    what: &str,
) -> Result<&'a [u8], Failure> {
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
    // SAFETY: `ptr` is non-NULL, `len` fits an isize, and the caller
    // guarantees `ptr` is readable for `len` bytes.
    Ok(unsafe { std::slice::from_raw_parts(ptr.cast::<u8>(), len) })
}

/// The UTF-8 text `ptr[..len]`.
///
/// # Safety
/// As for [`bytes`].
pub(crate) unsafe fn text<'a>(
    ptr: *const c_char,
    len: usize,
    what: &str,
) -> Result<&'a str, Failure> {
    // SAFETY: forwarded from the caller.
    let b = unsafe { bytes(ptr, len, what) }?;
    std::str::from_utf8(b).map_err(|e| {
        Failure::new(
            Status::ErrUtf8,
            format!("{what} is not valid UTF-8 (at byte {})", e.valid_up_to()),
        )
    })
}

/// A shared reference to `*ptr`, checking NULL and alignment.
///
/// # Safety
/// A non-NULL, aligned `ptr` must point to a valid `T` for `'a`.
pub(crate) unsafe fn reference<'a, T>(ptr: *const T, what: &str) -> Result<&'a T, Failure> {
    if ptr.is_null() {
        return Err(Failure::null(what));
    }
    if !ptr.is_aligned() {
        return Err(Failure::invalid(format!("{what} is misaligned")));
    }
    // SAFETY: non-NULL and aligned; validity is the caller's promise.
    Ok(unsafe { &*ptr })
}

/// An optional shared reference: NULL gives `None`.
///
/// # Safety
/// As for [`reference`].
pub(crate) unsafe fn optional<'a, T>(ptr: *const T, what: &str) -> Result<Option<&'a T>, Failure> {
    if ptr.is_null() {
        return Ok(None);
    }
    // SAFETY: forwarded from the caller.
    unsafe { reference(ptr, what) }.map(Some)
}

/// Writes `value` through an out-pointer, checking NULL and alignment.
///
/// # Safety
/// A non-NULL, aligned `ptr` must be valid for a write of `T`.
pub(crate) unsafe fn write_out<T>(ptr: *mut T, value: T, what: &str) -> Result<(), Failure> {
    if ptr.is_null() {
        return Err(Failure::null(what));
    }
    if !ptr.is_aligned() {
        return Err(Failure::invalid(format!("{what} is misaligned")));
    }
    // SAFETY: non-NULL and aligned; the caller guarantees it is writable.
    // `write` does not read or drop the old (possibly uninitialised) value.
    unsafe { ptr.write(value) };
    Ok(())
}

/// Copies `text` into `out[..cap]` when it fits, NUL-terminating it when
/// there is room for one more byte, and reports the length through
/// `out_len`. Returns [`Status::ErrBufferTooSmall`] (writing nothing) when
/// `cap < text.len()`.
///
/// # Safety
/// A non-NULL `out` must be writable for `cap` bytes; a non-NULL `out_len`
/// must be writable.
pub(crate) unsafe fn copy_out(
    text: &[u8],
    out: *mut c_char,
    cap: usize,
    out_len: *mut usize,
) -> Result<Status, Failure> {
    if !out_len.is_null() {
        // SAFETY: forwarded from the caller.
        unsafe { write_out(out_len, text.len(), "out_len") }?;
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
    // SAFETY: `out` is non-NULL and writable for `cap >= text.len()` bytes;
    // `text` is a distinct Rust allocation, so the ranges do not overlap.
    unsafe {
        std::ptr::copy_nonoverlapping(text.as_ptr(), out.cast::<u8>(), text.len());
        if cap > text.len() {
            *out.add(text.len()) = 0;
        }
    }
    Ok(Status::Ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_a_status_and_a_message() {
        let status = guard(|| panic!("broken invariant {}", 7));
        assert_eq!(status, Status::ErrPanic);
        assert_eq!(last_error(), "internal error (panic): broken invariant 7");
        // The thread is still usable afterwards.
        assert_eq!(guard(|| Ok(Status::Ok)), Status::Ok);
        assert_eq!(last_error(), "internal error (panic): broken invariant 7");
    }

    #[test]
    fn failures_set_the_message() {
        let status = guard(|| Err(Failure::null("ring")));
        assert_eq!(status, Status::ErrNull);
        assert_eq!(last_error(), "ring is NULL");
    }

    #[test]
    fn text_checks_null_length_and_utf8() {
        // SAFETY: NULL with length 0 is the empty string; no read happens.
        assert_eq!(unsafe { text(std::ptr::null(), 0, "t") }.unwrap(), "");
        // SAFETY: NULL is rejected before any read.
        let e = unsafe { text(std::ptr::null(), 3, "t") }.unwrap_err();
        assert_eq!(e.status, Status::ErrNull);
        let bad = [b'a', 0xff];
        // SAFETY: `bad` is readable for its length.
        let e = unsafe { text(bad.as_ptr().cast(), bad.len(), "t") }.unwrap_err();
        assert_eq!(e.status, Status::ErrUtf8);
        assert!(e.message.contains("at byte 1"), "{}", e.message);
        let huge = usize::MAX;
        // SAFETY: an impossible length is rejected before any read.
        let e = unsafe { bytes(bad.as_ptr().cast(), huge, "t") }.unwrap_err();
        assert_eq!(e.status, Status::ErrInvalid);
    }

    #[test]
    fn copy_out_reports_the_length_and_never_overflows() {
        let mut buf = [b'x' as c_char; 6];
        let mut len = 0usize;
        // SAFETY: `buf` and `len` are writable locals of the stated sizes.
        let e = unsafe { copy_out(b"hello!", buf.as_mut_ptr(), 5, &mut len) }.unwrap_err();
        assert_eq!((e.status, len), (Status::ErrBufferTooSmall, 6));
        assert_eq!(buf[0], b'x' as c_char);
        // SAFETY: as above; exactly enough room, so no NUL is written.
        let s = unsafe { copy_out(b"hello!", buf.as_mut_ptr(), 6, &mut len) }.unwrap();
        assert_eq!(s, Status::Ok);
        assert_eq!(buf.map(|c| c as u8), *b"hello!");
        let mut with_nul = [1 as c_char; 4];
        // SAFETY: as above; room for the NUL.
        unsafe { copy_out(b"abc", with_nul.as_mut_ptr(), 4, std::ptr::null_mut()) }.unwrap();
        assert_eq!(with_nul.map(|c| c as u8), *b"abc\0");
    }
}
