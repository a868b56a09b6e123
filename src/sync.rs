//! The one place that names atomics.
//!
//! Under `--cfg profilis_loom` these are loom's model-checked types, so the
//! loom suite in `loom-tests/` runs the protocol code that ships; otherwise
//! they are `std`'s. `std::sync::atomic::AtomicU64` has the size and alignment
//! of `u64`, which is what lets the ring structures overlay a shared mapping.

#[cfg(profilis_loom)]
pub use loom::sync::atomic::{fence, AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering};

#[cfg(not(profilis_loom))]
pub use std::sync::atomic::{fence, AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering};

/// A spin-loop hint that yields to loom's scheduler under the model.
#[inline]
pub fn spin_hint() {
    #[cfg(profilis_loom)]
    loom::thread::yield_now();
    #[cfg(not(profilis_loom))]
    std::hint::spin_loop();
}

/// Process-local atomics (call-site caches, the pid cache): never shared
/// through the ring file and never model-checked, so always `std`'s.
pub mod local {
    pub use std::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering};
}
