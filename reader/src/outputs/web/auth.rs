//! Bearer-token authentication (`--ui-token-file` / `PROFILIS_UI_TOKEN`).
//!
//! API clients send `Authorization: Bearer TOKEN`. A browser opens the
//! dashboard once with `?token=TOKEN` (or types it into the login form);
//! the reader then sets an HttpOnly, SameSite=Strict session cookie and
//! redirects to the bare URL, so the token leaves the address bar and
//! history. The cookie holds a random session key made at start, not the
//! token, so it is void once the reader restarts. Every comparison is
//! constant-time (`subtle`). The token is never logged or put in a page.

use super::page::{render_page, View, CSP};
use super::WebState;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Form;
use serde::Deserialize;
use std::io::Read;
use std::sync::Arc;
use subtle::ConstantTimeEq;

/// Name of the session cookie.
pub const COOKIE: &str = "profilis_session";

/// The token (if any) and this process's session key.
pub struct Auth {
    token: Option<Vec<u8>>,
    session: String,
}

impl Auth {
    /// Checks against `token`; `None` turns authentication off.
    pub fn new(token: Option<String>) -> Auth {
        Auth {
            token: token.map(String::into_bytes),
            session: random_hex(32),
        }
    }

    /// Whether a token is required.
    pub fn enabled(&self) -> bool {
        self.token.is_some()
    }

    /// `text` (a request path, for a log line) with every occurrence of the
    /// token replaced by `<token>`.
    pub fn mask<'t>(&self, text: &'t str) -> std::borrow::Cow<'t, str> {
        match self
            .token
            .as_deref()
            .and_then(|t| std::str::from_utf8(t).ok())
        {
            Some(token) if text.contains(token) => text.replace(token, "<token>").into(),
            _ => text.into(),
        }
    }

    /// Whether `given` is the token (constant time in the token's content).
    pub fn token_matches(&self, given: &str) -> bool {
        match &self.token {
            Some(token) => bool::from(token.as_slice().ct_eq(given.as_bytes())),
            None => true,
        }
    }

    /// Whether the request carries the token (bearer) or the session cookie;
    /// always true without a token.
    pub fn authorized(&self, headers: &HeaderMap) -> bool {
        if !self.enabled() {
            return true;
        }
        for value in headers.get_all(header::AUTHORIZATION) {
            let Ok(text) = value.to_str() else { continue };
            let mut parts = text.splitn(2, ' ');
            let scheme = parts.next().unwrap_or("");
            if scheme.eq_ignore_ascii_case("bearer") {
                if let Some(given) = parts.next() {
                    if self.token_matches(given.trim()) {
                        return true;
                    }
                }
            }
        }
        self.session_cookie_valid(headers)
    }

    fn session_cookie_valid(&self, headers: &HeaderMap) -> bool {
        for value in headers.get_all(header::COOKIE) {
            let Ok(text) = value.to_str() else { continue };
            for pair in text.split(';') {
                if let Some((name, value)) = pair.trim().split_once('=') {
                    if name == COOKIE && bool::from(value.as_bytes().ct_eq(self.session.as_bytes()))
                    {
                        return true;
                    }
                }
            }
        }
        false
    }

    /// `Set-Cookie` value that opens a session.
    pub fn session_cookie(&self, state: &WebState) -> HeaderValue {
        let value = format!(
            "{COOKIE}={}; Path={}; HttpOnly; SameSite=Strict{}",
            self.session,
            cookie_path(state),
            if state.config.tls { "; Secure" } else { "" }
        );
        HeaderValue::from_str(&value).expect("hex and path characters only")
    }
}

fn cookie_path(state: &WebState) -> String {
    if state.config.prefix.is_empty() {
        "/".into()
    } else {
        format!("{}/", state.config.prefix)
    }
}

/// `len` random bytes from the kernel as hex.
fn random_hex(len: usize) -> String {
    let mut bytes = vec![0u8; len];
    let filled = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes));
    if let Err(e) = filled {
        // No /dev/urandom (a bare container): getrandom(2) directly.
        let mut done = 0;
        while done < len {
            // SAFETY: the pointer and length describe the unfilled part of
            // `bytes`, which outlives the call.
            let n = unsafe { libc::getrandom(bytes[done..].as_mut_ptr().cast(), len - done, 0) };
            assert!(n > 0, "no source of random bytes for the session key ({e})");
            done += n as usize;
        }
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Middleware of the API endpoints: 401 without the token or a session.
pub async fn require(State(state): State<Arc<WebState>>, request: Request, next: Next) -> Response {
    if state.auth.authorized(request.headers()) {
        return next.run(request).await;
    }
    tracing::debug!(
        path = &*state.auth.mask(request.uri().path()),
        "unauthorized request"
    );
    unauthorized()
}

/// 401 with a `WWW-Authenticate: Bearer` challenge and a JSON body.
pub fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [
            (header::WWW_AUTHENTICATE, "Bearer realm=\"profilis\""),
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        "{\"error\":\"unauthorized\",\"hint\":\"send Authorization: Bearer <token>\"}\n",
    )
        .into_response()
}

/// The login page with status 401.
pub fn login_page(state: &WebState, error: Option<&str>) -> Response {
    let mut response = (
        StatusCode::UNAUTHORIZED,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        render_page(&state.config, View::Login { error }),
    )
        .into_response();
    response.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    response
}

/// 303 to the dashboard, opening a session.
pub fn enter(state: &WebState) -> Response {
    let mut response = see_other(&state.path("/"));
    response
        .headers_mut()
        .insert(header::SET_COOKIE, state.auth.session_cookie(state));
    response
}

/// 303 See Other to `location`.
pub fn see_other(location: &str) -> Response {
    (
        StatusCode::SEE_OTHER,
        [
            (header::LOCATION, location.to_string()),
            (header::CACHE_CONTROL, "no-store".to_string()),
        ],
    )
        .into_response()
}

/// The login form's fields.
#[derive(Deserialize)]
pub struct LoginForm {
    token: String,
}

/// `POST {prefix}/login`: the form's token opens a session, else the form
/// again with an error.
pub async fn login(State(state): State<Arc<WebState>>, Form(form): Form<LoginForm>) -> Response {
    if state.auth.token_matches(form.token.trim()) {
        return enter(&state);
    }
    tracing::debug!("login with a wrong token");
    login_page(&state, Some("That token is not right."))
}

/// `POST {prefix}/logout`: ends the browser's session.
pub async fn logout(State(state): State<Arc<WebState>>) -> Response {
    let mut response = see_other(&state.path("/"));
    let clear = format!(
        "{COOKIE}=; Path={}; HttpOnly; SameSite=Strict; Max-Age=0",
        cookie_path(&state)
    );
    if let Ok(value) = HeaderValue::from_str(&clear) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_and_cookie_checks() {
        let auth = Auth::new(Some("s3cret-token-0123456789".into()));
        let mut h = HeaderMap::new();
        assert!(!auth.authorized(&h));
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer wrong"),
        );
        assert!(!auth.authorized(&h));
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("bearer s3cret-token-0123456789"),
        );
        assert!(auth.authorized(&h), "scheme is case-insensitive");
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_str(&format!("a=b; {COOKIE}={}", auth.session)).unwrap(),
        );
        assert!(auth.authorized(&h));
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("profilis_session=00"),
        );
        assert!(!auth.authorized(&h));
        assert!(Auth::new(None).authorized(&HeaderMap::new()));
        assert_eq!(
            auth.mask("/x/s3cret-token-0123456789/y"),
            "/x/<token>/y",
            "a token in a logged path is masked"
        );
        assert_eq!(Auth::new(None).mask("/x"), "/x");
        assert_ne!(auth.session, Auth::new(None).session, "random per process");
        assert_eq!(auth.session.len(), 64);
    }
}
