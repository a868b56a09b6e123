//! Status codes and errors: the [`Status`] every fallible function
//! returns, a static text for each code, and the message of the last
//! failure on each thread, which [`profilis_last_error`] copies out.

use profilis::Emit;
use std::cell::RefCell;
use std::ffi::{c_char, c_int};

/// Result of every fallible function (`profilis_status` in C). Non-negative
/// values are outcomes of a call that was carried out; negative values are
/// errors, with a message from [`profilis_last_error`].
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Done.
    Ok = 0,
    /// The ring was full: the event was not recorded (counted as dropped).
    Dropped = 1,
    /// A required pointer was NULL.
    ErrNull = -1,
    /// Text was not valid UTF-8.
    ErrUtf8 = -2,
    /// An argument was out of range or a handle was not a ring.
    ErrInvalid = -3,
    /// The ring file could not be created or opened.
    ErrOpen = -4,
    /// The output buffer is too small; the needed length was reported.
    ErrBufferTooSmall = -5,
    /// A `traceparent` value was malformed.
    ErrTraceparent = -6,
    /// An internal error was caught at the boundary.
    ErrPanic = -7,
}

impl Status {
    pub(crate) fn from_emit(emit: Emit) -> Status {
        match emit {
            Emit::Written | Emit::Disabled => Status::Ok,
            Emit::Dropped => Status::Dropped,
        }
    }

    fn describe(code: c_int) -> &'static str {
        match code {
            0 => "ok\0",
            1 => "dropped: the ring was full\0",
            -1 => "a required pointer was NULL\0",
            -2 => "text is not valid UTF-8\0",
            -3 => "invalid argument\0",
            -4 => "the ring file could not be opened\0",
            -5 => "output buffer too small\0",
            -6 => "malformed traceparent\0",
            -7 => "internal error\0",
            _ => "unknown status\0",
        }
    }
}

thread_local! {
    static LAST_ERROR: RefCell<String> = const { RefCell::new(String::new()) };
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

/// A static, NUL-terminated description of a status code.
#[no_mangle]
pub extern "C" fn profilis_status_str(status: c_int) -> *const c_char {
    Status::describe(status).as_ptr().cast()
}

/// Copies this thread's last error message into `out` (NUL-terminated,
/// truncated to `out_cap - 1` bytes) and returns its full length without
/// the NUL. `out` may be NULL (with any `out_cap`) to ask for the length.
///
/// # Safety
/// A non-NULL `out` must be writable for `out_cap` bytes.
#[no_mangle]
pub unsafe extern "C" fn profilis_last_error(out: *mut c_char, out_cap: usize) -> usize {
    let result = std::panic::catch_unwind(|| {
        let message = last_error();
        if !out.is_null() && out_cap > 0 {
            let n = message.len().min(out_cap - 1);
            // SAFETY: `out` is writable for `out_cap > n` bytes and does not
            // overlap the copied message.
            unsafe {
                std::ptr::copy_nonoverlapping(message.as_ptr(), out.cast::<u8>(), n);
                *out.add(n) = 0;
            }
        }
        message.len()
    });
    result.unwrap_or(0)
}
