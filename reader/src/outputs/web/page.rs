//! The page: one HTML file for the dashboard and the login form, rendered
//! once at start with the title, theme and refresh interval (the data comes
//! from `metrics.json`, fetched by `assets/app.js`), every value
//! HTML-escaped.

use super::assets;
use super::UiConfig;
use axum::body::Bytes;

const TEMPLATE: &str = include_str!("assets/dashboard.html");

/// Content-Security-Policy of the pages: only this server's own script,
/// styles and `fetch`es; no inline script, no framing.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// What the page shows.
#[derive(Clone, Copy, Debug)]
pub enum View<'a> {
    /// The dashboard.
    Dashboard,
    /// The login form, with an error line.
    Login {
        /// Shown above the form.
        error: Option<&'a str>,
    },
}

/// The page for `view`, every value HTML-escaped.
pub fn render_page(config: &UiConfig, view: View<'_>) -> Bytes {
    let (view_name, error) = match view {
        View::Dashboard => ("dashboard", ""),
        View::Login { error } => ("login", error.unwrap_or("")),
    };
    let custom_css = if config.custom_css.is_some() {
        format!(
            "<link rel=\"stylesheet\" href=\"assets/custom.css?v={}\">",
            assets::fingerprint(config)
        )
    } else {
        String::new()
    };
    let page = TEMPLATE
        .replace("{{title}}", &escape_html(&config.title))
        .replace("{{theme}}", config.theme.as_str())
        .replace("{{refresh_ms}}", &config.refresh_ms.to_string())
        .replace("{{version}}", &assets::fingerprint(config))
        .replace("{{custom_css}}", &custom_css)
        .replace("{{view}}", view_name)
        .replace("{{login_error}}", &escape_html(error))
        .replace(
            "{{auth}}",
            if config.token.is_some() {
                "token"
            } else {
                "none"
            },
        )
        .replace("{{app_version}}", env!("CARGO_PKG_VERSION"));
    Bytes::from(page)
}

/// Escapes text for HTML content and attribute values.
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_is_escaped_and_complete() {
        let config = UiConfig {
            title: "<script>alert('x')</script> & co".into(),
            token: Some("top-secret-token-value".into()),
            ..UiConfig::default()
        };
        let page = String::from_utf8(render_page(&config, View::Dashboard).to_vec()).unwrap();
        assert!(page.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; co"));
        assert!(!page.contains("<script>alert"));
        assert!(!page.contains("{{"), "every placeholder filled");
        assert!(!page.contains("top-secret-token-value"));
        assert!(page.contains("data-refresh-ms=\"2000\""));
        assert!(page.contains("data-theme=\"dark\""));
        let login = render_page(&config, View::Login { error: Some("<b>") });
        let login = String::from_utf8(login.to_vec()).unwrap();
        assert!(login.contains("data-view=\"login\"") && login.contains("&lt;b&gt;"));
    }
}
