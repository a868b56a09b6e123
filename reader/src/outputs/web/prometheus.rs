//! `GET {prefix}/metrics`: Prometheus text exposition, rendered by
//! [`crate::outputs::prometheus::render`] once per snapshot.

use super::WebState;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

/// `GET {prefix}/metrics`.
pub async fn handler(State(state): State<Arc<WebState>>) -> Response {
    let snapshot = state.snapshots.load();
    let body = state.prometheus_cache.get(&snapshot, |s| {
        crate::outputs::prometheus::render(s).into_bytes()
    });
    (
        StatusCode::OK,
        [
            (
                header::CONTENT_TYPE,
                crate::outputs::prometheus::CONTENT_TYPE,
            ),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}
