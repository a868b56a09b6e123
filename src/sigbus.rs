//! Survival of a ring file truncated while mapped.
//!
//! Touching a page of a shared mapping beyond the end of its file raises
//! SIGBUS, which would kill the reader or, worse, the instrumented
//! application. Every ring mapping is registered here; a process-wide SIGBUS
//! handler checks whether the faulting address lies in a registered mapping
//! and, if so, maps a private zero page over the faulting page, marks the
//! mapping as truncated and returns, so the access completes (reading zeros).
//! The consumer then detaches the ring with an error; writers keep running and
//! their events go nowhere (the file is gone). Faults outside ring mappings
//! go to the handler that was installed before (or the default action).

use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, Ordering::*};
use std::sync::Once;

const MAX_REGIONS: usize = 1024;

struct Region {
    start: AtomicUsize,
    len: AtomicUsize,
    hit: AtomicBool,
}

#[allow(clippy::declare_interior_mutable_const)]
const EMPTY: Region = Region {
    start: AtomicUsize::new(0),
    len: AtomicUsize::new(0),
    hit: AtomicBool::new(false),
};

static REGIONS: [Region; MAX_REGIONS] = [EMPTY; MAX_REGIONS];
static PREVIOUS: AtomicPtr<libc::sigaction> = AtomicPtr::new(ptr::null_mut());
static PAGE: AtomicUsize = AtomicUsize::new(4096);
static INSTALL: Once = Once::new();

/// A registered mapping; unregisters on drop.
pub(crate) struct Guard {
    index: Option<usize>,
}

impl Guard {
    /// True once a SIGBUS hit this mapping (its file was truncated).
    pub fn truncated(&self) -> bool {
        // ORDERING: Acquire pairs with the handler's Release store.
        self.index.is_some_and(|i| REGIONS[i].hit.load(Acquire))
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(i) = self.index {
            // ORDERING: Release pairs with the handler's Acquire load of
            // `start`; the slot is free again for `register`.
            REGIONS[i].start.store(0, Release);
        }
    }
}

/// `start` value of a slot being filled in.
const RESERVED: usize = 1;

/// Registers the mapping `[start, start + len)`. With more than 1024 live
/// mappings the extra ones are unprotected (the guard has no slot).
pub(crate) fn register(start: *const u8, len: usize) -> Guard {
    INSTALL.call_once(install);
    for (i, region) in REGIONS.iter().enumerate() {
        if region
            .start
            .compare_exchange(0, RESERVED, Acquire, Relaxed)
            .is_ok()
        {
            region.hit.store(false, Relaxed);
            region.len.store(len, Relaxed);
            // ORDERING: Release pairs with the handler's Acquire load of
            // `start`: a handler that sees the start sees the length.
            region.start.store(start as usize, Release);
            return Guard { index: Some(i) };
        }
    }
    Guard { index: None }
}

fn install() {
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if page > 0 {
        PAGE.store(page as usize, Relaxed);
    }
    // SAFETY: zeroed sigaction structs are valid; we fill the fields we use
    // and pass valid pointers to sigaction. The previous action is leaked on
    // purpose: the handler may read it at any time for the life of the
    // process.
    unsafe {
        let previous: *mut libc::sigaction = Box::into_raw(Box::new(std::mem::zeroed()));
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = handler as *const () as usize;
        action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK | libc::SA_NODEFER;
        libc::sigemptyset(&mut action.sa_mask);
        if libc::sigaction(libc::SIGBUS, &action, previous) == 0 {
            // ORDERING: Release pairs with the handler's Acquire load.
            PREVIOUS.store(previous, Release);
        }
    }
}

extern "C" fn handler(sig: libc::c_int, info: *mut libc::siginfo_t, context: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo for SA_SIGINFO handlers.
    let addr = unsafe { (*info).si_addr() } as usize;
    let page = PAGE.load(Relaxed);
    for region in REGIONS.iter() {
        // ORDERING: Acquire pairs with the Release store in `register`.
        let start = region.start.load(Acquire);
        let len = region.len.load(Relaxed);
        if start <= RESERVED || addr < start || addr - start >= len {
            continue;
        }
        let base = addr & !(page - 1);
        // SAFETY: the page lies inside a mapping this library created and
        // still owns (registered); replacing it with a private zero page
        // makes the faulting access complete. mmap is a plain system call.
        let mapped = unsafe {
            libc::mmap(
                base as *mut libc::c_void,
                page,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
                -1,
                0,
            )
        };
        if mapped != libc::MAP_FAILED {
            // ORDERING: Release pairs with `Guard::truncated`'s Acquire.
            region.hit.store(true, Release);
            return;
        }
    }
    // Not a ring mapping: hand over to whoever handled SIGBUS before.
    // ORDERING: Acquire pairs with the Release store in `install`.
    let previous = PREVIOUS.load(Acquire);
    // SAFETY: `previous` is null or the leaked action saved at install time.
    unsafe {
        if !previous.is_null() {
            let prev = &*previous;
            if prev.sa_flags & libc::SA_SIGINFO != 0 && prev.sa_sigaction > 1 {
                let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
                    std::mem::transmute(prev.sa_sigaction);
                f(sig, info, context);
                return;
            }
            if prev.sa_flags & libc::SA_SIGINFO == 0 && prev.sa_sigaction > 1 {
                let f: extern "C" fn(libc::c_int) = std::mem::transmute(prev.sa_sigaction);
                f(sig);
                return;
            }
        }
        // Default action: restore it and return; the faulting access runs
        // again and the kernel delivers SIGBUS with the default disposition.
        libc::signal(libc::SIGBUS, libc::SIG_DFL);
    }
}
