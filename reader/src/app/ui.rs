//! The dashboard's settings from the command line: the token (from
//! `--ui-token-file` or `PROFILIS_UI_TOKEN`, checked; never from the
//! command line), the extra stylesheet, CORS origins and TLS files.

use super::cli::UiArgs;
use crate::outputs::web::{normalize_prefix, Listen, UiConfig};
use anyhow::{bail, Context};
use axum::http::HeaderValue;

/// Builds the settings from the command line, reading the token (from
/// `--ui-token-file`, else `token_env`, the value of `PROFILIS_UI_TOKEN`)
/// and the extra stylesheet.
pub fn ui_config(args: &UiArgs, token_env: Option<String>) -> anyhow::Result<(UiConfig, Listen)> {
    let prefix = normalize_prefix(&args.ui_prefix)?;
    let token = match (&args.ui_token_file, token_env) {
        (Some(_), Some(_)) => {
            bail!("both --ui-token-file and PROFILIS_UI_TOKEN are set: use one of them")
        }
        (Some(path), None) => Some(read_token_file(path)?),
        (None, Some(value)) => Some(check_token(value.trim().to_string(), "PROFILIS_UI_TOKEN")?),
        (None, None) => None,
    };
    let custom_css = match &args.ui_css {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .with_context(|| format!("reading --ui-css {}", path.display()))?,
        ),
        None => None,
    };
    let cors_origins = args
        .ui_cors_origins
        .iter()
        .map(|o| parse_origin(o))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some((cert.clone(), key.clone())),
        _ => None,
    };
    if args.ui_https_only && tls.is_none() {
        bail!(
            "--ui-https-only needs --tls-cert and --tls-key: the reader serves HTTPS itself \
             and refuses plain HTTP. Behind a TLS-terminating proxy, leave --ui-https-only \
             off and keep --ui-addr on 127.0.0.1"
        );
    }
    let config = UiConfig {
        prefix,
        title: args.ui_title.clone(),
        theme: args.ui_theme,
        refresh_ms: args.ui_refresh_ms,
        custom_css,
        cors_origins,
        token,
        health_public: args.ui_health_public,
        tls: tls.is_some(),
        https_only: args.ui_https_only,
        session_lifetime: args
            .ui_session_lifetime
            .max(std::time::Duration::from_secs(1)),
    };
    Ok((
        config,
        Listen {
            addr: args.ui_addr.resolve()?,
            tls,
        },
    ))
}

fn read_token_file(path: &std::path::Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading --ui-token-file {}", path.display()))?;
    let token = text.lines().next().unwrap_or("").trim().to_string();
    let what = format!("--ui-token-file {}", path.display());
    let token = check_token(token, &what)?;
    if let Ok(meta) = std::fs::metadata(path) {
        use std::os::unix::fs::PermissionsExt;
        if meta.permissions().mode() & 0o077 != 0 {
            eprintln!("profilis-reader: warning: {what} is readable by other users (chmod 600 it)");
        }
    }
    Ok(token)
}

fn check_token(token: String, what: &str) -> anyhow::Result<String> {
    if token.is_empty() {
        bail!("{what} is empty: the token must have at least one character");
    }
    if !token.bytes().all(|b| b.is_ascii_graphic()) {
        bail!("{what}: the token must be printable ASCII without spaces");
    }
    if token.len() < 16 {
        eprintln!(
            "profilis-reader: warning: the UI token from {what} is short ({} characters); use 16 or more random characters",
            token.len()
        );
    }
    Ok(token)
}

fn parse_origin(origin: &str) -> anyhow::Result<HeaderValue> {
    let o = origin.trim_end_matches('/');
    let host = o
        .strip_prefix("https://")
        .or_else(|| o.strip_prefix("http://"));
    let ok = host.is_some_and(|h| {
        !h.is_empty() && !h.contains('/') && h.bytes().all(|b| b.is_ascii_graphic())
    });
    if !ok {
        bail!("--ui-cors-origin {origin:?}: expected an origin like https://grafana.example.com[:port]");
    }
    HeaderValue::from_str(o).with_context(|| format!("--ui-cors-origin {origin:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins() {
        assert!(parse_origin("https://grafana.example.com").is_ok());
        assert!(parse_origin("http://localhost:3000/").is_ok());
        for bad in ["grafana.example.com", "https://a.example/path", "*"] {
            assert!(parse_origin(bad).is_err(), "{bad}");
        }
    }
}
