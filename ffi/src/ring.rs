//! Ring handles: opening a ring file (creating it with the caller's
//! options when it does not exist), closing the handle, and reading the
//! ring's counters as its writers see them.

use crate::guard::{checked, Failure, Promise};
use crate::status::Status;
use crate::types::{FfiCounters, FfiOpenOptions, RingHandle, HANDLE_MAGIC};
use profilis::{FullPolicy, OpenError, Ring, RingOptions};
use std::ffi::c_char;

/// Opens the ring file at `path[..path_len]`, creating it with `capacity`
/// slots (0: the default) if it does not exist. A NULL or empty path means
/// the default ring (`PROFILIS_RING`, or `/dev/shm/profilis-<uid>.ring`).
/// On success `*out` holds a handle for [`profilis_close`].
///
/// # Safety
/// `path` is readable for `path_len` bytes (or NULL with length 0); `out`
/// is writable.
#[no_mangle]
pub unsafe extern "C" fn profilis_open(
    path: *const c_char,
    path_len: usize,
    capacity: u64,
    out: *mut *mut RingHandle,
) -> Status {
    let options = FfiOpenOptions {
        capacity,
        policy: 0,
        reserved: 0,
        service: std::ptr::null(),
        service_len: 0,
    };
    // SAFETY: `profilis_open_with` asks what this function does, and
    // `options` is a valid local.
    unsafe { profilis_open_with(path, path_len, &options, out) }
}

/// Like [`profilis_open`], with every creation option. `options` may be
/// NULL for the defaults.
///
/// # Safety
/// As for [`profilis_open`]; a non-NULL `options` points to a valid
/// `profilis_open_options` whose `service` is readable for `service_len`.
#[no_mangle]
pub unsafe extern "C" fn profilis_open_with(
    path: *const c_char,
    path_len: usize,
    options: *const FfiOpenOptions,
    out: *mut *mut RingHandle,
) -> Status {
    // SAFETY: the caller keeps this function's contract (above).
    checked(unsafe { Promise::new() }, |call| {
        if out.is_null() {
            return Err(Failure::null("out"));
        }
        let path = call.text(path, path_len, "path")?;
        let options = call.optional(options, "options")?;
        let mut ring_options =
            RingOptions::from_env().map_err(|e| Failure::invalid(e.to_string()))?;
        if let Some(o) = options {
            if o.capacity != 0 {
                ring_options.capacity = o.capacity;
            }
            ring_options.policy = match o.policy {
                0 => FullPolicy::DropNewest,
                1 => FullPolicy::OverwriteOldest,
                p => {
                    return Err(Failure::invalid(format!(
                        "policy {p} is not a PROFILIS_POLICY_* value"
                    )))
                }
            };
            if o.reserved != 0 {
                return Err(Failure::invalid("options.reserved must be 0"));
            }
            let service = call.text(o.service, o.service_len, "options.service")?;
            if !service.is_empty() {
                ring_options.service = Some(service.to_owned());
            }
        }
        let path = if path.is_empty() {
            profilis::default_ring_path()
        } else {
            path.into()
        };
        let ring = Ring::create_or_open(&path, ring_options).map_err(|e| match e {
            OpenError::InvalidOptions(_) => Failure::invalid(e.to_string()),
            e => Failure::new(Status::ErrOpen, e.report()),
        })?;
        let handle = Box::into_raw(Box::new(RingHandle {
            magic: HANDLE_MAGIC,
            ring,
        }));
        call.write(out, handle, "out").inspect_err(|_| {
            // SAFETY: `handle` came from `Box::into_raw` just above and was
            // not handed out.
            drop(unsafe { Box::from_raw(handle) });
        })?;
        Ok(Status::Ok)
    })
}

/// Closes a handle from [`profilis_open`]; NULL is accepted and ignored.
/// Every other call using the handle must have returned first; using it
/// afterwards is undefined behaviour. Events already recorded stay in the
/// ring file.
///
/// # Safety
/// `ring` is NULL or an open handle not used by any other thread.
#[no_mangle]
pub unsafe extern "C" fn profilis_close(ring: *mut RingHandle) -> Status {
    // SAFETY: the caller keeps this function's contract (above).
    checked(unsafe { Promise::new() }, |call| {
        if ring.is_null() {
            return Ok(Status::Ok);
        }
        call.ring(ring)?;
        // SAFETY: an open handle (magic and alignment checked) was made by
        // `Box::into_raw` in `profilis_open_with`; the caller gives up its
        // last use.
        let mut handle = unsafe { Box::from_raw(ring) };
        handle.magic = 0;
        drop(handle);
        Ok(Status::Ok)
    })
}

/// Reads the ring's counters into `*out`: a consistent snapshot, for which
/// `received + dropped + abandoned + torn + in_flight == claimed`. The
/// consumer-side counts (received, abandoned, torn, overwritten and the
/// unread texts) are as of the consumer's last commit. Returns
/// `PROFILIS_ERR_INVALID`, writing nothing, in the unlikely case that the
/// consumer's commits kept moving its state for the whole of a bounded
/// number of retries.
///
/// # Safety
/// `ring` is an open handle; `out` is writable.
#[no_mangle]
pub unsafe extern "C" fn profilis_read_counters(
    ring: *const RingHandle,
    out: *mut FfiCounters,
) -> Status {
    // SAFETY: the caller keeps this function's contract (above).
    checked(unsafe { Promise::new() }, |call| {
        let ring = call.ring(ring)?;
        let c = counters(ring)
            .ok_or_else(|| Failure::invalid("the consumer state kept changing; try again"))?;
        call.write(out, c, "out")?;
        Ok(Status::Ok)
    })
}

/// The counters of `ring` as its writers see them; `None` when the
/// consumer's commits kept moving its state for the whole of a bounded
/// number of retries.
pub fn counters(ring: &Ring) -> Option<FfiCounters> {
    use std::sync::atomic::Ordering::Relaxed;
    let view = ring.view();
    let c = ring.counters()?;
    let pid = std::process::id() as u64;
    let process_dropped = view
        .writers
        .iter()
        .filter(|w| w.pid.load(Relaxed) == pid)
        .map(|w| w.dropped.load(Relaxed))
        .sum();
    Some(FfiCounters {
        claimed: c.claimed,
        dropped: c.dropped,
        dropped_full: c.dropped_full,
        overwritten: c.overwritten,
        received: c.received,
        abandoned: c.abandoned,
        torn: c.torn,
        in_flight: c.in_flight,
        process_dropped,
        strings_overflow: view.header.strings_overflow.load(Relaxed),
        messages_lost: c.messages_lost,
        messages_unread: c.messages_unread,
        names_unresolved: c.names_unresolved,
        repairs: c.repairs,
    })
}
