//! Loom models live in `tests/`, one scenario per file.
