//! Bearer-token authentication (`--ui-token-file` / `PROFILIS_UI_TOKEN`).
//!
//! API clients send `Authorization: Bearer TOKEN`. A browser opens the
//! dashboard once with `?token=TOKEN` (or types it into the login form);
//! the reader then opens a session and sets an HttpOnly, SameSite=Strict
//! cookie holding its key, and redirects to the bare URL, so the token
//! leaves the address bar and history. Each login gets a key of its own
//! (32 random bytes), valid for the session lifetime (`--ui-session-lifetime`,
//! 12 h by default) or until `/logout` closes it on the server; at most
//! [`MAX_SESSIONS`] are open, the oldest closed first. Every comparison is
//! constant-time (`subtle`). The token is never logged or put in a page:
//! a token in a logged path is masked, percent-encoded or not.
//!
//! In a `?token=` link a `+` is taken as written (it would otherwise decode
//! to a space, which no token holds), so a token from `base64` works in a
//! link as it is.

use super::page::{render_page, View, CSP};
use super::WebState;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Form;
use serde::Deserialize;
use std::borrow::Cow;
use std::io::Read;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use subtle::ConstantTimeEq;

/// Name of the session cookie.
pub const COOKIE: &str = "profilis_session";

/// Default lifetime of a session.
pub const SESSION_LIFETIME: Duration = Duration::from_secs(12 * 3600);

/// Sessions open at once; a login beyond it closes the oldest.
pub const MAX_SESSIONS: usize = 256;

/// The token (if any) and the open sessions.
pub struct Auth {
    token: Option<Vec<u8>>,
    lifetime: Duration,
    sessions: Mutex<Vec<Session>>,
}

/// An open session: its key (hex) and when it ends.
struct Session {
    key: String,
    expires: Instant,
}

impl Auth {
    /// Checks against `token`; `None` turns authentication off. Sessions
    /// last `lifetime`.
    pub fn new(token: Option<String>, lifetime: Duration) -> Auth {
        Auth {
            token: token.map(String::into_bytes),
            lifetime,
            sessions: Mutex::new(Vec::new()),
        }
    }

    /// Whether a token is required.
    pub fn enabled(&self) -> bool {
        self.token.is_some()
    }

    /// `text` (a request path, for a log line) with the token replaced by
    /// `<token>`, wherever it appears as it is or percent-encoded (nested
    /// encodings too); such a text is logged decoded.
    pub fn mask<'t>(&self, text: &'t str) -> Cow<'t, str> {
        let Some(token) = self
            .token
            .as_deref()
            .and_then(|t| std::str::from_utf8(t).ok())
        else {
            return text.into();
        };
        if text.contains(token) {
            return text.replace(token, "<token>").into();
        }
        let mut decoded = Cow::Borrowed(text);
        // Each round removes one level of encoding; a few cover any
        // client's (and the ones made up to hide a token).
        for _ in 0..8 {
            let next = percent_decode(&decoded);
            if next == decoded {
                break;
            }
            if next.contains(token) {
                return next.replace(token, "<token>").into();
            }
            decoded = Cow::Owned(next);
        }
        text.into()
    }

    /// Whether `given` is the token (constant time in the token's content).
    pub fn token_matches(&self, given: &str) -> bool {
        match &self.token {
            Some(token) => bool::from(token.as_slice().ct_eq(given.as_bytes())),
            None => true,
        }
    }

    /// Whether `given`, the decoded `?token=` of a link, is the token. A
    /// `+` written in the link decodes to a space, which no token has (it
    /// is printable ASCII without spaces), so a space is read as `+`.
    pub fn link_token_matches(&self, given: &str) -> bool {
        let given = given.trim();
        self.token_matches(given)
            || (given.contains(' ') && self.token_matches(&given.replace(' ', "+")))
    }

    /// Whether the request carries the token (bearer) or the key of an open
    /// session; always true without a token.
    pub fn authorized(&self, headers: &HeaderMap) -> bool {
        self.authorized_at(headers, Instant::now())
    }

    fn authorized_at(&self, headers: &HeaderMap, now: Instant) -> bool {
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
        cookie_values(headers).any(|key| self.session_open(key, now))
    }

    /// Opens a session; returns its key.
    fn open_session(&self, now: Instant) -> String {
        let key = random_hex(32);
        let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        sessions.retain(|s| s.expires > now);
        if sessions.len() >= MAX_SESSIONS {
            // The oldest session ends first (all share one lifetime).
            sessions.sort_by_key(|s| s.expires);
            let excess = sessions.len() + 1 - MAX_SESSIONS;
            sessions.drain(..excess);
        }
        sessions.push(Session {
            key: key.clone(),
            expires: now + self.lifetime,
        });
        key
    }

    /// Whether `key` is the key of a session open at `now`. Compares with
    /// every open session in constant time each, so the time taken tells
    /// nothing of how close a guess came.
    fn session_open(&self, key: &str, now: Instant) -> bool {
        let sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        sessions.iter().fold(false, |found, s| {
            let same = bool::from(s.key.as_bytes().ct_eq(key.as_bytes()));
            found | (same && s.expires > now)
        })
    }

    /// Closes the sessions whose keys the request carries.
    fn close_sessions(&self, headers: &HeaderMap) {
        let keys: Vec<&str> = cookie_values(headers).collect();
        let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        sessions.retain(|s| {
            !keys
                .iter()
                .any(|k| bool::from(s.key.as_bytes().ct_eq(k.as_bytes())))
        });
    }

    /// `Set-Cookie` value that hands the browser session `key`; it expires
    /// with the session.
    fn session_cookie(&self, state: &WebState, key: &str) -> HeaderValue {
        let value = format!(
            "{COOKIE}={key}; Path={}; Max-Age={}; HttpOnly; SameSite=Strict{}",
            cookie_path(state),
            self.lifetime.as_secs().max(1),
            if state.config.tls { "; Secure" } else { "" }
        );
        HeaderValue::from_str(&value).expect("hex and path characters only")
    }
}

/// The dashboard's login link: `url` (the page) with `token` in its query,
/// percent-encoded except for the characters that need none.
pub fn login_link(url: &str, token: &str) -> String {
    let mut link = format!("{url}?token=");
    for b in token.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            link.push(b as char);
        } else {
            link.push_str(&format!("%{b:02X}"));
        }
    }
    link
}

/// The values of the session cookie in the request's `Cookie` headers.
fn cookie_values(headers: &HeaderMap) -> impl Iterator<Item = &str> {
    headers
        .get_all(header::COOKIE)
        .into_iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|text| text.split(';'))
        .filter_map(|pair| {
            let (name, value) = pair.trim().split_once('=')?;
            (name == COOKIE).then_some(value)
        })
}

/// `%XX` sequences decoded (others left as they are), as text.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
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
            assert!(n > 0, "no source of random bytes for a session key ({e})");
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
    let key = state.auth.open_session(Instant::now());
    let mut response = see_other(&state.path("/"));
    response
        .headers_mut()
        .insert(header::SET_COOKIE, state.auth.session_cookie(state, &key));
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

/// `POST {prefix}/logout`: closes the browser's session on the server (its
/// key no longer works, wherever it was copied to) and clears its cookie.
pub async fn logout(State(state): State<Arc<WebState>>, headers: HeaderMap) -> Response {
    state.auth.close_sessions(&headers);
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

    const TOKEN: &str = "s3cret-token-0123456789";

    fn cookie(key: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_str(&format!("a=b; {COOKIE}={key}")).unwrap(),
        );
        h
    }

    #[test]
    fn bearer_checks() {
        let auth = Auth::new(Some(TOKEN.into()), SESSION_LIFETIME);
        let mut h = HeaderMap::new();
        assert!(!auth.authorized(&h));
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer wrong"),
        );
        assert!(!auth.authorized(&h));
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&format!("bearer {TOKEN}")).unwrap(),
        );
        assert!(auth.authorized(&h), "scheme is case-insensitive");
        assert!(Auth::new(None, SESSION_LIFETIME).authorized(&HeaderMap::new()));
    }

    #[test]
    fn each_login_has_its_own_session_which_expires_and_closes() {
        let auth = Auth::new(Some(TOKEN.into()), Duration::from_secs(3600));
        let t0 = Instant::now();
        let first = auth.open_session(t0);
        let second = auth.open_session(t0);
        assert_ne!(first, second, "a key per login");
        assert_eq!(first.len(), 64);
        assert!(auth.authorized_at(&cookie(&first), t0));
        assert!(auth.authorized_at(&cookie(&second), t0));
        assert!(!auth.authorized_at(&cookie("00"), t0));
        assert!(!auth.authorized_at(&cookie(""), t0));
        // Expiry.
        let late = t0 + Duration::from_secs(3601);
        assert!(auth.authorized_at(&cookie(&first), t0 + Duration::from_secs(3599)));
        assert!(!auth.authorized_at(&cookie(&first), late));
        // Logout closes that session on the server, and only that one.
        auth.close_sessions(&cookie(&first));
        assert!(!auth.authorized_at(&cookie(&first), t0));
        assert!(auth.authorized_at(&cookie(&second), t0));
    }

    #[test]
    fn sessions_are_bounded_oldest_first() {
        let auth = Auth::new(Some(TOKEN.into()), SESSION_LIFETIME);
        let t0 = Instant::now();
        let oldest = auth.open_session(t0);
        for i in 0..MAX_SESSIONS {
            auth.open_session(t0 + Duration::from_secs(1 + i as u64));
        }
        let now = t0 + Duration::from_secs(MAX_SESSIONS as u64 + 1);
        assert!(!auth.authorized_at(&cookie(&oldest), now));
        assert_eq!(auth.sessions.lock().unwrap().len(), MAX_SESSIONS);
    }

    #[test]
    fn a_plus_in_a_link_is_a_plus() {
        let auth = Auth::new(Some("ab+cd/ef=".into()), SESSION_LIFETIME);
        assert!(auth.link_token_matches("ab+cd/ef="));
        assert!(
            auth.link_token_matches("ab cd/ef="),
            "the query decoded + to a space"
        );
        assert!(!auth.link_token_matches("ab cd/ef"));
        assert!(!auth.token_matches("ab cd/ef="), "only in links");
    }

    #[test]
    fn the_token_is_masked_in_every_encoding() {
        let auth = Auth::new(Some(TOKEN.into()), SESSION_LIFETIME);
        assert_eq!(auth.mask(&format!("/x/{TOKEN}/y")), "/x/<token>/y");
        // Every character encoded, upper and lower case hex.
        let all: String = TOKEN.bytes().map(|b| format!("%{b:02X}")).collect();
        let lower: String = TOKEN.bytes().map(|b| format!("%{b:02x}")).collect();
        // Some characters encoded, and encoded twice.
        let some = TOKEN.replacen('s', "%73", 1).replacen('-', "%2D", 1);
        let twice = TOKEN.replacen('s', "%2573", 1);
        for encoded in [all, lower, some, twice] {
            let path = format!("/x/{encoded}/y");
            assert_eq!(auth.mask(&path), "/x/<token>/y", "{encoded}");
        }
        assert_eq!(auth.mask("/x/%zz/%4"), "/x/%zz/%4", "not encodings");
        assert_eq!(Auth::new(None, SESSION_LIFETIME).mask("/x"), "/x");
    }
}
