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
//!
//! The table of mappings, [`Registry`], is lock-free (the handler may run on
//! any thread at any time, even while another thread registers) and built
//! from the atomics of [`crate::sync`], so the loom models check it; the
//! handler and its installation are plain system calls around it.

use crate::sync::{AtomicBool, AtomicUsize, Ordering::*};

/// `start` value of a slot being filled in.
const RESERVED: usize = 1;

/// One registered mapping: `start` is 0 when the slot is free.
struct Region {
    start: AtomicUsize,
    len: AtomicUsize,
    hit: AtomicBool,
}

impl Region {
    #[cfg(not(profilis_loom))]
    const fn new() -> Region {
        Region {
            start: AtomicUsize::new(0),
            len: AtomicUsize::new(0),
            hit: AtomicBool::new(false),
        }
    }

    #[cfg(profilis_loom)]
    fn new() -> Region {
        Region {
            start: AtomicUsize::new(0),
            len: AtomicUsize::new(0),
            hit: AtomicBool::new(false),
        }
    }
}

/// A fixed table of `N` mappings, safe to search from a signal handler
/// while other threads register and unregister.
pub struct Registry<const N: usize> {
    regions: [Region; N],
}

impl<const N: usize> Registry<N> {
    /// An empty table (usable in a `static`).
    #[cfg(not(profilis_loom))]
    pub const fn new() -> Self {
        Registry {
            regions: [const { Region::new() }; N],
        }
    }

    /// An empty table.
    #[cfg(profilis_loom)]
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        Registry {
            regions: std::array::from_fn(|_| Region::new()),
        }
    }

    /// Registers the mapping `[start, start + len)` (`start` above 1, as
    /// any mapping's is) and returns its slot, or `None` when all `N` are
    /// taken.
    pub fn register(&self, start: usize, len: usize) -> Option<usize> {
        debug_assert!(start > RESERVED);
        self.regions.iter().position(|region| {
            // ORDERING: Acquire pairs with the Release store of 0 in
            // `unregister`: the previous mapping's stores to `len` and
            // `hit` (and the handler's, ordered before the unregistering by
            // the mapping's last use) happen before ours, so ours are the
            // ones that stay.
            let taken = region
                .start
                .compare_exchange(0, RESERVED, Acquire, Relaxed)
                .is_ok();
            if taken {
                region.hit.store(false, Relaxed);
                region.len.store(len, Relaxed);
                // ORDERING: Release pairs with the Acquire load of `start`
                // in `find`: a handler that sees the start sees the length.
                region.start.store(start, Release);
            }
            taken
        })
    }

    /// Frees `slot` (from [`register`](Self::register)) once its mapping is
    /// no longer used.
    pub fn unregister(&self, slot: usize) {
        // ORDERING: Release pairs with the Acquire CAS in `register` that
        // takes the slot next.
        self.regions[slot].start.store(0, Release);
    }

    /// The slot of the registered mapping that contains `addr`.
    pub fn find(&self, addr: usize) -> Option<usize> {
        self.regions.iter().position(|region| {
            // ORDERING: Acquire pairs with the Release store of `start` in
            // `register`: the length loaded next is this mapping's.
            let start = region.start.load(Acquire);
            let len = region.len.load(Relaxed);
            start > RESERVED && addr >= start && addr - start < len
        })
    }

    /// Marks the mapping in `slot` as truncated.
    pub fn mark_hit(&self, slot: usize) {
        // ORDERING: Relaxed: the flag is all a reader learns (the zero page
        // behind it is the kernel's doing, not a store to order). Against a
        // later registration's reset of the flag, the handler's store is
        // ordered by the mapping's last use, which precedes `unregister`,
        // and `register`'s Acquire CAS.
        self.regions[slot].hit.store(true, Relaxed);
    }

    /// True once the mapping in `slot` was marked truncated.
    pub fn is_hit(&self, slot: usize) -> bool {
        // ORDERING: Relaxed, as in `mark_hit`.
        self.regions[slot].hit.load(Relaxed)
    }
}

#[cfg(not(profilis_loom))]
pub(crate) use handler::{register, Guard};

#[cfg(not(profilis_loom))]
mod handler {
    use super::Registry;
    use crate::sync::{AtomicPtr, AtomicUsize, Ordering::*};
    use std::ptr;
    use std::sync::Once;

    const MAX_REGIONS: usize = 1024;

    static REGIONS: Registry<MAX_REGIONS> = Registry::new();
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
            self.index.is_some_and(|i| REGIONS.is_hit(i))
        }
    }

    impl Drop for Guard {
        fn drop(&mut self) {
            if let Some(i) = self.index {
                REGIONS.unregister(i);
            }
        }
    }

    /// Registers the mapping `[start, start + len)`. With more than 1024 live
    /// mappings the extra ones are unprotected (the guard has no slot).
    pub(crate) fn register(start: *const u8, len: usize) -> Guard {
        INSTALL.call_once(install);
        Guard {
            index: REGIONS.register(start as usize, len),
        }
    }

    fn install() {
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        if page > 0 {
            // ORDERING: Relaxed: the handler loads it only after the
            // Acquire load of a registered mapping's `start`, and every
            // registration comes after this (the `Once` in `register`).
            PAGE.store(page as usize, Relaxed);
        }
        // SAFETY: zeroed sigaction structs are valid; we fill the fields we
        // use and pass valid pointers to sigaction. The previous action is
        // leaked on purpose: the handler may read it at any time for the
        // life of the process.
        unsafe {
            let previous: *mut libc::sigaction = Box::into_raw(Box::new(std::mem::zeroed()));
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = handler as *const () as usize;
            action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK | libc::SA_NODEFER;
            libc::sigemptyset(&mut action.sa_mask);
            if libc::sigaction(libc::SIGBUS, &action, previous) == 0 {
                // ORDERING: Release pairs with the handler's Acquire load:
                // the action the kernel wrote into `*previous` is complete
                // for a handler (on any thread) that sees the pointer.
                PREVIOUS.store(previous, Release);
            }
        }
    }

    extern "C" fn handler(
        sig: libc::c_int,
        info: *mut libc::siginfo_t,
        context: *mut libc::c_void,
    ) {
        // SAFETY: the kernel passes a valid siginfo for SA_SIGINFO handlers.
        let addr = unsafe { (*info).si_addr() } as usize;
        if let Some(slot) = REGIONS.find(addr) {
            let page = PAGE.load(Relaxed);
            let base = addr & !(page - 1);
            // SAFETY: the page lies inside a mapping this library created
            // and still owns (registered); replacing it with a private zero
            // page makes the faulting access complete. mmap is a plain
            // system call.
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
                REGIONS.mark_hit(slot);
                return;
            }
        }
        // Not a ring mapping: hand over to whoever handled SIGBUS before.
        // ORDERING: Acquire pairs with the Release store in `install`.
        let previous = PREVIOUS.load(Acquire);
        // SAFETY: `previous` is null or the leaked action saved at install
        // time.
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
            // again and the kernel delivers SIGBUS with the default
            // disposition.
            libc::signal(libc::SIGBUS, libc::SIG_DFL);
        }
    }
}
