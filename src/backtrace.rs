//! Backtraces for error events, captured only on the error path: a
//! [`Backtrace`] taken where an error is recorded (`#[profile(backtrace)]`)
//! or, for a panic, by a panic hook while a caller has armed the current
//! thread (the tower layer with [`crate::tower::ProfilisLayer::backtraces`]).
//! The text lists frames outermost first ("most recent call last", as
//! Python prints a traceback), so the bound on stored stacks keeps the
//! innermost frames, without the capture machinery's own frames.

use std::backtrace::Backtrace;
#[cfg(feature = "tower")]
use std::cell::{Cell, RefCell};

#[cfg(feature = "tower")]
thread_local! {
    static ARMED: Cell<u32> = const { Cell::new(0) };
    static CAUGHT: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// First line of every backtrace text.
pub const HEADER: &str = "Backtrace (most recent call last):\n";

/// Frames of a capture itself, left out at the innermost end.
const CAPTURE: [&str; 2] = ["std::backtrace", "profilis::backtrace"];

/// Where a panic enters `std`: this frame and every one inside it (the
/// panic machinery, the hook) are left out. These functions never return,
/// so no frame outside a panic's own matches them.
const PANIC_ENTRY: [&str; 5] = [
    "core::panicking::",
    "std::panicking::begin_panic",
    "core::option::unwrap_failed",
    "core::option::expect_failed",
    "core::result::unwrap_failed",
];

/// The current thread's backtrace, formatted outermost first.
#[cold]
pub fn capture() -> String {
    format(&Backtrace::force_capture().to_string())
}

/// Runs `f` with a panic on this thread capturing its backtrace for
/// [`take_panic`]. Installs the panic hook on first use; the hook calls the
/// one it replaced, so panic messages print as before.
#[cfg(feature = "tower")]
pub(crate) fn armed<R>(f: impl FnOnce() -> R) -> R {
    static INSTALL: std::sync::Once = std::sync::Once::new();
    INSTALL.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if ARMED.with(Cell::get) > 0 {
                let text = capture();
                CAUGHT.with(|c| *c.borrow_mut() = Some(text));
            }
            previous(info);
        }));
    });
    struct Disarm;
    impl Drop for Disarm {
        fn drop(&mut self) {
            ARMED.with(|a| a.set(a.get() - 1));
        }
    }
    ARMED.with(|a| a.set(a.get() + 1));
    let _disarm = Disarm;
    f()
}

/// The backtrace of the latest panic on this thread while armed.
#[cfg(feature = "tower")]
pub(crate) fn take_panic() -> Option<String> {
    CAUGHT.with(|c| c.borrow_mut().take())
}

/// `std`'s backtrace text (innermost frame first, each frame a numbered
/// line and its `at` lines) reordered outermost first, without the
/// capture machinery's frames.
fn format(text: &str) -> String {
    let mut frames: Vec<&str> = Vec::new();
    let mut start = None;
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let head = line.trim_start();
        let numbered = head
            .split_once(':')
            .is_some_and(|(n, _)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
        if numbered {
            if let Some(s) = start {
                frames.push(&text[s..offset]);
            }
            start = Some(offset);
        }
        offset += line.len();
    }
    if let Some(s) = start {
        frames.push(&text[s..]);
    }
    let symbol = |f: &&str| {
        f.split_once(':')
            .map_or("", |(_, s)| s.trim_start())
            .to_owned()
    };
    let entry = frames
        .iter()
        .rposition(|f| PANIC_ENTRY.iter().any(|p| symbol(f).starts_with(p)));
    let inner = match entry {
        Some(i) => i + 1,
        None => frames
            .iter()
            .position(|f| !CAPTURE.iter().any(|p| symbol(f).starts_with(p)))
            .unwrap_or(0),
    };
    let mut out = String::from(HEADER);
    for frame in frames[inner..].iter().rev() {
        out.push_str(frame);
        if !frame.ends_with('\n') {
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_listed_outermost_first_without_the_machinery() {
        let std_text = "   0: std::backtrace::Backtrace::force_capture\n             at /rustc/x/backtrace.rs:1:1\n   1: profilis::backtrace::capture\n   2: app::handler\n             at src/app.rs:10:5\n   3: app::main\n             at src/main.rs:3:1\n";
        let expected = "Backtrace (most recent call last):\n   3: app::main\n             at src/main.rs:3:1\n   2: app::handler\n             at src/app.rs:10:5\n";
        assert_eq!(format(std_text), expected);
        // A panic: everything from its entry into `std` inwards goes.
        let panic_text = "   0: std::backtrace::Backtrace::force_capture\n   1: <alloc::boxed::Box<F,A> as core::ops::function::Fn<Args>>::call\n   2: std::panicking::panic_with_hook\n   3: core::panicking::panic_fmt\n   4: app::handler\n             at src/app.rs:10:5\n   5: app::main\n             at src/main.rs:3:1\n";
        assert_eq!(
            format(panic_text),
            expected
                .replace("   3: app::main", "   5: app::main")
                .replace("   2: app::handler", "   4: app::handler")
        );
    }

    #[cfg(feature = "tower")]
    #[test]
    fn a_panic_while_armed_leaves_its_backtrace() {
        let caught = armed(|| std::panic::catch_unwind(|| panic!("armed panic")));
        assert!(caught.is_err());
        let text = take_panic().unwrap();
        assert!(text.starts_with(HEADER));
        assert!(text.contains("a_panic_while_armed_leaves_its_backtrace"));
        assert_eq!(take_panic(), None);
        // Not armed: the hook captures nothing.
        assert!(std::panic::catch_unwind(|| panic!("plain panic")).is_err());
        assert_eq!(take_panic(), None);
    }
}
