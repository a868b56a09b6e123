//! The dashboard's token as a user deploys it: every endpoint that shows
//! data is behind it over a real socket, and the token never shows up in
//! the reader's output (debug logging on, good and bad requests of every
//! kind) or in its command line. SECURITY.md lists what is covered.

mod common;

use common::*;
use std::io::{Read, Write};
use std::process::Child;
use std::time::Duration;

const TOKEN: &str = "sec-token-5d1e9a7c3b2f4e60a8";

/// One HTTP/1.1 request; returns status, lower-cased headers and body.
fn request(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[&str],
    body: &str,
) -> (u16, String, String) {
    let mut stream = std::net::TcpStream::connect(addr).expect("connecting");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut text = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for h in headers {
        text.push_str(h);
        text.push_str("\r\n");
    }
    text.push_str("\r\n");
    text.push_str(body);
    stream.write_all(text.as_bytes()).unwrap();
    let mut raw = String::new();
    stream.read_to_string(&mut raw).unwrap();
    parse_response(&raw)
}

/// Starts the reader on `ring` with `extra` arguments and the environment
/// given; waits for its dashboard URL. Output goes to files in `dir`.
fn start(
    dir: &std::path::Path,
    ring: &std::path::Path,
    extra: &[&str],
    env: &[(&str, &str)],
) -> (Child, String) {
    let mut cmd = reader();
    cmd.arg(ring)
        .args(["--flush-interval", "100ms"])
        .args(extra)
        .stdout(std::fs::File::create(dir.join("stdout")).unwrap())
        .stderr(std::fs::File::create(dir.join("stderr")).unwrap());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let child = cmd.spawn().unwrap();
    let log = || std::fs::read_to_string(dir.join("stderr")).unwrap_or_default();
    assert!(
        wait_until(Duration::from_secs(30), || log().contains("dashboard at")),
        "{}",
        log()
    );
    let addr = log()
        .split("http://")
        .nth(1)
        .and_then(|u| u.split('/').next())
        .unwrap()
        .to_string();
    (child, addr)
}

#[test]
fn the_token_never_appears_in_output_or_in_the_command_line() {
    let tmp = tempfile::tempdir().unwrap();
    let ring_path = tmp.path().join("app.ring");
    write_events(&ring(&ring_path, 4096), 500);
    let (child, addr) = start(
        tmp.path(),
        &ring_path,
        &["--console", "compact"],
        &[("PROFILIS_UI_TOKEN", TOKEN), ("PROFILIS_DEBUG", "1")],
    );
    let bearer = format!("Authorization: Bearer {TOKEN}");
    let wrong = "Authorization: Bearer not-the-token-0000000000";
    // Authorised requests to every endpoint.
    for path in [
        "/_profilis/metrics.json",
        "/_profilis/metrics",
        "/_profilis/health",
        "/_profilis/",
    ] {
        assert_eq!(request(&addr, "GET", path, &[&bearer], "").0, 200, "{path}");
        assert_eq!(request(&addr, "GET", path, &[wrong], "").0, 401, "{path}");
        assert_eq!(request(&addr, "GET", path, &[], "").0, 401, "{path}");
    }
    // The browser paths: the token in the link, a wrong one, the login
    // form both ways, and the token in the query string of other URLs.
    let (status, headers, _) =
        request(&addr, "GET", &format!("/_profilis/?token={TOKEN}"), &[], "");
    assert_eq!(status, 303);
    let cookie = headers
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: "))
        .and_then(|c| c.split(';').next())
        .expect("a session cookie")
        .to_string();
    assert!(!cookie.contains(TOKEN));
    let session = format!("Cookie: {cookie}");
    assert_eq!(
        request(&addr, "GET", "/_profilis/metrics.json", &[&session], "").0,
        200
    );
    assert_eq!(
        request(&addr, "GET", "/_profilis/?token=guess", &[], "").0,
        401
    );
    let form = "Content-Type: application/x-www-form-urlencoded";
    assert_eq!(
        request(&addr, "POST", "/_profilis/login", &[form], "token=guess").0,
        401
    );
    assert_eq!(
        request(
            &addr,
            "POST",
            "/_profilis/login",
            &[form],
            &format!("token={TOKEN}")
        )
        .0,
        303
    );
    for path in [
        format!("/_profilis/metrics.json?token={TOKEN}"),
        format!("/_profilis/nowhere?token={TOKEN}"),
        format!("/elsewhere/{TOKEN}"),
        format!("/elsewhere/{}", encoded(TOKEN, 0)),
        format!("/_profilis/{}", encoded(TOKEN, 1)),
        format!("/_profilis/metrics/{}", encoded(TOKEN, 2)),
    ] {
        let (status, _, body) = request(&addr, "GET", &path, &[], "");
        assert!(status == 401 || status == 404, "{path}: {status}");
        assert!(!body.contains(TOKEN), "{path} echoes the token");
    }
    let cmdline = std::fs::read(format!("/proc/{}/cmdline", child.id())).unwrap();
    assert!(!String::from_utf8_lossy(&cmdline).contains(TOKEN));

    // SAFETY: kill with our child's pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let out = wait_output(child, Duration::from_secs(30));
    assert!(out.status.success());
    let stdout = std::fs::read_to_string(tmp.path().join("stdout")).unwrap();
    let stderr = std::fs::read_to_string(tmp.path().join("stderr")).unwrap();
    assert!(
        stdout.lines().count() >= 500,
        "the console exporter printed the events"
    );
    assert!(
        stderr.contains("http request") && stderr.contains("unauthorized request"),
        "debug logging saw the requests: {stderr}"
    );
    assert!(!stdout.contains(TOKEN), "the token is in stdout");
    for line in stderr.lines() {
        assert!(!line.contains(TOKEN), "the token is in stderr: {line}");
        for how in 0..3 {
            let encoded = encoded(TOKEN, how);
            assert!(!line.contains(&encoded), "the token is in stderr: {line}");
        }
    }
    assert!(
        stderr.contains("/elsewhere/<token>"),
        "an encoded token is masked, not dropped: {stderr}"
    );
}

/// `token` percent-encoded: every byte (0), every other byte in lower-case
/// hex (1), or twice over (2).
fn encoded(token: &str, how: usize) -> String {
    token
        .bytes()
        .enumerate()
        .map(|(i, b)| match how {
            0 => format!("%{b:02X}"),
            1 if i % 2 == 0 => format!("%{b:02x}"),
            2 => format!("%25{b:02X}"),
            _ => (b as char).to_string(),
        })
        .collect()
}

/// The token recipe the README gives.
const RECIPE: &str = "head -c 24 /dev/urandom | base64 | tr '+/' '-_' > ui.token";

/// The README's recipe makes URL-safe tokens; one of them, in a token file,
/// opens the dashboard through `?token=` pasted as it is and through the
/// login link the reader prints when asked (`--ui-login-link`, the one
/// place the token is printed).
#[test]
fn the_readme_token_recipe_round_trips_through_a_login_link() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    assert!(readme.contains(RECIPE), "the README gives the recipe");
    let tmp = tempfile::tempdir().unwrap();
    for _ in 0..20 {
        let made = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("umask 077 && {RECIPE}"))
            .current_dir(tmp.path())
            .status()
            .unwrap();
        assert!(made.success());
        let token = std::fs::read_to_string(tmp.path().join("ui.token")).unwrap();
        let token = token.trim();
        assert_eq!(token.len(), 32, "{token}");
        assert!(
            token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
            "URL-safe: {token}"
        );
    }
    let token = std::fs::read_to_string(tmp.path().join("ui.token")).unwrap();
    let token = token.trim().to_string();
    let ring_path = tmp.path().join("app.ring");
    write_events(&ring(&ring_path, 4096), 10);
    let (child, addr) = start(
        tmp.path(),
        &ring_path,
        &[
            "--ui-token-file",
            tmp.path().join("ui.token").to_str().unwrap(),
            "--ui-login-link",
        ],
        &[],
    );
    let stderr = std::fs::read_to_string(tmp.path().join("stderr")).unwrap();
    let links: Vec<&str> = stderr.lines().filter(|l| l.contains(&token)).collect();
    assert_eq!(links.len(), 1, "printed once, as asked: {stderr}");
    let link = links[0].split("http://").nth(1).unwrap();
    let path = &link[link.find('/').unwrap()..];
    for path in [path.to_string(), format!("/_profilis/?token={token}")] {
        let (status, headers, _) = request(&addr, "GET", &path, &[], "");
        assert_eq!(status, 303, "{path}");
        let cookie = headers
            .lines()
            .find_map(|l| l.strip_prefix("set-cookie: "))
            .and_then(|c| c.split(';').next())
            .unwrap()
            .to_string();
        let (status, _, _) = request(
            &addr,
            "GET",
            "/_profilis/metrics.json",
            &[&format!("Cookie: {cookie}")],
            "",
        );
        assert_eq!(status, 200);
    }
    // SAFETY: kill with our child's pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    assert!(wait_output(child, Duration::from_secs(30)).status.success());
    let stderr = std::fs::read_to_string(tmp.path().join("stderr")).unwrap();
    assert_eq!(stderr.matches(token.as_str()).count(), 1, "{stderr}");
}

#[test]
fn every_data_endpoint_is_behind_the_token_over_a_real_socket() {
    let tmp = tempfile::tempdir().unwrap();
    let ring_path = tmp.path().join("app.ring");
    write_events(&ring(&ring_path, 4096), 100);
    let token_file = tmp.path().join("token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    std::fs::set_permissions(
        &token_file,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let (child, addr) = start(
        tmp.path(),
        &ring_path,
        &["--ui-token-file", token_file.to_str().unwrap()],
        &[],
    );
    let bearer = format!("Authorization: Bearer {TOKEN}");
    // Every endpoint with data (docs/http-api.md), with GET and HEAD.
    for path in [
        "/_profilis/metrics.json",
        "/_profilis/metrics",
        "/_profilis/health",
        "/_profilis/",
    ] {
        for method in ["GET", "HEAD"] {
            let (status, headers, body) = request(&addr, method, path, &[], "");
            assert_eq!(status, 401, "{method} {path} without the token");
            assert!(
                !body.contains("\"requests\"") && !body.contains("profilis_requests_total"),
                "{method} {path}: no data in the refusal"
            );
            assert!(headers.contains("cache-control: no-store"), "{headers}");
            assert_eq!(
                request(&addr, method, path, &[&bearer], "").0,
                200,
                "{method} {path} with the token"
            );
        }
    }
    // What is open without the token holds no data: the redirect to the
    // page, the page's script and stylesheet, and the login form's posts.
    let (status, headers, _) = request(&addr, "GET", "/_profilis", &[], "");
    assert_eq!(status, 308);
    assert!(headers.contains("location: /_profilis/"));
    for asset in ["/_profilis/assets/app.js", "/_profilis/assets/app.css"] {
        assert_eq!(request(&addr, "GET", asset, &[], "").0, 200, "{asset}");
    }
    assert_eq!(
        request(&addr, "POST", "/_profilis/logout", &[], "").0,
        303,
        "logout only clears the cookie"
    );
    // Nothing else answers.
    for path in [
        "/",
        "/metrics",
        "/_profilis/debug",
        "/_profilis/assets/../metrics",
    ] {
        let status = request(&addr, "GET", path, &[&bearer], "").0;
        assert!(status == 404 || status == 400, "{path}: {status}");
    }
    // SAFETY: kill with our child's pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    assert!(wait_output(child, Duration::from_secs(30)).status.success());
    let stderr = std::fs::read_to_string(tmp.path().join("stderr")).unwrap();
    assert!(!stderr.contains(TOKEN));
    assert!(
        !stderr.contains("readable by other users"),
        "a 0600 token file gets no warning: {stderr}"
    );
}
