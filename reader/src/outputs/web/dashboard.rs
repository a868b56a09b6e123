//! `GET {prefix}/`: the dashboard page (see [`super::page`]), or the login
//! form when a token is required and the browser has no session yet.

use super::auth;
use super::page::CSP;
use super::WebState;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use std::sync::Arc;

/// Query of the page: `?token=` opens a session once.
#[derive(Deserialize)]
pub struct PageQuery {
    token: Option<String>,
}

/// `GET {prefix}/`.
pub async fn handler(
    State(state): State<Arc<WebState>>,
    Query(query): Query<PageQuery>,
    headers: HeaderMap,
) -> Response {
    if let Some(token) = query.token {
        if !state.auth.enabled() {
            // Nothing to open; just take the token out of the address bar.
            return auth::see_other(&state.path("/"));
        }
        if state.auth.link_token_matches(&token) {
            return auth::enter(&state);
        }
        tracing::debug!("dashboard opened with a wrong ?token=");
        return auth::login_page(&state, Some("The token in the link is not right."));
    }
    if !state.auth.authorized(&headers) {
        return auth::login_page(&state, None);
    }
    let mut response = (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        state.page.clone(),
    )
        .into_response();
    response.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    response
}

/// `GET {prefix}`: redirects to `{prefix}/` (keeping the query, so
/// `?token=` still works), where relative asset and API URLs resolve.
pub async fn redirect_to_slash(State(state): State<Arc<WebState>>, uri: Uri) -> Response {
    let mut location = state.path("/");
    if let Some(q) = uri.query() {
        location.push('?');
        location.push_str(q);
    }
    (
        StatusCode::PERMANENT_REDIRECT,
        [(header::LOCATION, location)],
    )
        .into_response()
}
