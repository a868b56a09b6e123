//! `GET {prefix}/assets/{file}`: the dashboard's script and stylesheet,
//! embedded in the binary (no CDN: the dashboard works offline), and the
//! `--ui-css` stylesheet. Assets are public (the login form needs them) and
//! hold no data. The page links them with a content fingerprint (`?v=`), so
//! they are cached for good and a new build is fetched at once.

use super::{UiConfig, WebState};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

/// The dashboard script.
pub const APP_JS: &str = include_str!("assets/app.js");
/// The processes panel (registered on the page's `Profilis`).
pub const PROCESSES_JS: &str = include_str!("assets/processes.js");
/// The dashboard stylesheet.
pub const APP_CSS: &str = include_str!("assets/app.css");

/// FNV-1a hash of the assets, as 16 hex digits.
pub fn fingerprint(config: &UiConfig) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let custom = config.custom_css.as_deref().unwrap_or("");
    for part in [APP_JS, PROCESSES_JS, APP_CSS, custom] {
        for b in part.bytes().chain([0xff]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{h:016x}")
}

/// `GET {prefix}/assets/{file}`.
pub async fn handler(State(state): State<Arc<WebState>>, Path(file): Path<String>) -> Response {
    let (body, content_type) = match file.as_str() {
        "app.js" => (
            Bytes::from_static(APP_JS.as_bytes()),
            "text/javascript; charset=utf-8",
        ),
        "processes.js" => (
            Bytes::from_static(PROCESSES_JS.as_bytes()),
            "text/javascript; charset=utf-8",
        ),
        "app.css" => (
            Bytes::from_static(APP_CSS.as_bytes()),
            "text/css; charset=utf-8",
        ),
        "custom.css" => match &state.config.custom_css {
            Some(css) => (Bytes::from(css.clone()), "text/css; charset=utf-8"),
            None => return StatusCode::NOT_FOUND.into_response(),
        },
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
        ],
        body,
    )
        .into_response()
}
