//! Error events by exception type (see [`crate::window::exceptions`]).

use serde::Serialize;

/// Errors by exception type.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Exceptions {
    /// Error events in the window, every type together.
    pub errors: u64,
    /// Per type over the window, most errors first (at most
    /// `--max-routes` types, then `(other)`; `(none)` for errors without
    /// an exception type).
    pub types: Vec<ExceptionType>,
    /// Error events per type since the reader started, by name (the same
    /// bound; entries are never removed).
    pub totals: Vec<ExceptionCount>,
}

/// One exception type over the window.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ExceptionType {
    /// The exception type.
    pub exception: String,
    /// Error events.
    pub count: u64,
    /// Share of the window's error events (0..1).
    pub share: f64,
    /// Wall-clock ns of the first error of this type in the window.
    pub first_seen_ns: u64,
    /// Wall-clock ns of the latest.
    pub last_seen_ns: u64,
    /// Routes (functions, queries) the errors happened in, most first:
    /// the busiest few, then `(other)` for the rest.
    pub names: Vec<ExceptionName>,
}

/// Errors of one type in one route, function or query.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ExceptionName {
    /// Route, function or query.
    pub name: String,
    /// Error events.
    pub count: u64,
}

/// Errors of one type since the reader started.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ExceptionCount {
    /// The exception type.
    pub exception: String,
    /// Error events.
    pub count: u64,
}
