//! `GET {prefix}/postmortem/{ring_id}/{pid}.json` and `.jsonl`: the last
//! events a dead writer committed (see [`crate::ingest::postmortem`]).
//!
//! `.json`: the post-mortem (ring, pid, service, registration, last seen,
//! losses) with its events. `.jsonl`: the events alone, one JSON line each in
//! the JSONL exporter's schema, as a download. 404 when the reader keeps no
//! post-mortem for that ring and pid (still alive, never seen, or among the
//! oldest deaths past the limit).

use super::WebState;
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

/// `GET {prefix}/postmortem/{ring_id}/{file}`.
pub async fn handler(
    State(state): State<Arc<WebState>>,
    Path((ring_id, file)): Path<(String, String)>,
) -> Response {
    let (pid, jsonl) = match file
        .strip_suffix(".jsonl")
        .map(|p| (p, true))
        .or_else(|| file.strip_suffix(".json").map(|p| (p, false)))
    {
        Some((pid, jsonl)) => match pid.parse::<u32>() {
            Ok(pid) => (pid, jsonl),
            Err(_) => return not_found("expected {pid}.json or {pid}.jsonl"),
        },
        None => return not_found("expected {pid}.json or {pid}.jsonl"),
    };
    let snapshot = state.snapshots.load();
    let Some(pm) = snapshot
        .producers
        .postmortems
        .iter()
        .find(|p| p.ring_id == ring_id && p.pid == pid)
    else {
        return not_found("no post-mortem for this ring and pid");
    };
    if jsonl {
        let name = format!("profilis-postmortem-{ring_id}-{pid}.jsonl");
        let mut response = (
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, "application/x-ndjson"),
                (header::CACHE_CONTROL, "no-store"),
            ],
            pm.jsonl(),
        )
            .into_response();
        if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
            response
                .headers_mut()
                .insert(header::CONTENT_DISPOSITION, v);
        }
        return response;
    }
    let mut body = serde_json::to_vec(&**pm).unwrap_or_else(|_| b"{}".to_vec());
    body.push(b'\n');
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}

fn not_found(why: &'static str) -> Response {
    (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        why,
    )
        .into_response()
}
