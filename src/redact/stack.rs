//! Which lines of a stack trace name a place in the code, and so keep
//! their numbers and quoted file names through redaction: the rest of a
//! stack (source lines, the exception's own message) is redacted like a
//! message.

/// Whether `line` only locates a frame: Python's `File "path", line N, in
/// f`, Rust's `N: symbol` and `at path:line:col`, and the
/// `function (file:line)` form of the C examples.
pub(super) fn is_location(line: &str) -> bool {
    let t = line.trim();
    if let Some(rest) = t.strip_prefix("File \"") {
        return rest.contains("\", line ");
    }
    if let Some(path) = t.strip_prefix("at ") {
        return !path.contains(char::is_whitespace) && ends_with_line_number(path);
    }
    if let Some((n, symbol)) = t.split_once(": ") {
        return !n.is_empty()
            && n.bytes().all(|b| b.is_ascii_digit())
            && !symbol.is_empty()
            && !symbol.contains(char::is_whitespace);
    }
    if let Some((function, place)) = t.split_once(" (") {
        return !function.is_empty()
            && !function.contains(char::is_whitespace)
            && place
                .strip_suffix(')')
                .is_some_and(|p| !p.contains(char::is_whitespace) && ends_with_line_number(p));
    }
    false
}

/// The length of the exception type that starts `line` as in a Python
/// traceback's last line (`sqlite3.OperationalError: no such table`): a
/// dotted name at the very start of the line, followed by `": "` or the
/// end of the line. The name is code, not data; what follows is the
/// exception's message.
pub(super) fn exception_type_len(line: &str) -> Option<usize> {
    let end = line.find(": ").unwrap_or(line.len());
    let name = &line[..end];
    let part = |p: &str| {
        p.bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
            && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
    };
    (!name.is_empty() && name.split('.').all(part)).then_some(end)
}

/// `path:line` or `path:line:column`.
fn ends_with_line_number(place: &str) -> bool {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let mut parts = place.rsplitn(3, ':');
    let last = parts.next().unwrap_or("");
    let middle = parts.next();
    match (middle, parts.next()) {
        (Some(line), Some(path)) if digits(line) && digits(last) => !path.is_empty(),
        (Some(path), _) => digits(last) && !path.is_empty(),
        _ => false,
    }
}
