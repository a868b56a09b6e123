//! The built-in message rules: each finds the byte ranges of a text it
//! redacts. They look at the text as it was given, so one rule's
//! replacement never changes what another sees; [`super::apply`] replaces
//! the union of the ranges.

use std::ops::Range;

/// Letters, digits (of any script) and `_`: the characters of a word.
fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// The character that ends before byte `i`, if any.
fn char_before(text: &str, i: usize) -> Option<char> {
    text[..i].chars().next_back()
}

/// Quoted values: `'...'` and `"..."`, with backslash escapes inside.
///
/// A `"` always opens a value. A `'` opens one unless a word runs into it
/// (`can't`, `users'`), or a string prefix of one or two letters
/// (`b'...'`, `rb'...'`, `u'...'`, `f'...'`) does. The value ends at the
/// next unescaped quote of its kind; for `'`, one that no word follows
/// (`'it's here'` is one value). Reading `\` as an escape makes a value
/// end at the same quote or a later one than not reading it, never at an
/// earlier one, so the escaped reading redacts at least as much. With no
/// end, the value runs to the end of the text.
///
/// `redacted_ends` are the ends of values other rules redact: a `'` there
/// (or at a prefix there) follows a `?` once they are replaced, and opens a
/// value, so that redacting the output again changes nothing.
pub(super) fn quoted(text: &str, redacted_ends: &[usize], out: &mut Vec<Range<usize>>) {
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let quote = b[i];
        let start = match quote {
            b'"' => i,
            b'\'' => match single_start(text, i, redacted_ends) {
                Some(start) => start,
                None => {
                    i += 1;
                    continue;
                }
            },
            _ => {
                i += 1;
                continue;
            }
        };
        let mut j = i + 1;
        let mut end = b.len();
        while j < b.len() {
            let c = b[j];
            if c == b'\\' {
                j += 2;
                continue;
            }
            if c == quote
                && (quote == b'"' || !text[j + 1..].chars().next().is_some_and(is_word_char))
            {
                end = j + 1;
                break;
            }
            j += 1;
        }
        out.push(start..end);
        i = end;
    }
}

/// Where the value starts if the `'` at `i` opens one: at `i` when nothing
/// word-like comes before it, at a string prefix (`b`, `r`, `u`, `f` and
/// pairs of them) that nothing word-like precedes; `None` otherwise.
fn single_start(text: &str, i: usize, redacted_ends: &[usize]) -> Option<usize> {
    if redacted_ends.contains(&i) {
        return Some(i);
    }
    let prefix_len = text[..i]
        .bytes()
        .rev()
        .take_while(|c| matches!(c.to_ascii_lowercase(), b'b' | b'r' | b'u' | b'f'))
        .count();
    let start = if prefix_len <= 2 { i - prefix_len } else { i };
    let after_value = redacted_ends.contains(&start);
    (after_value || !char_before(text, start).is_some_and(is_word_char)).then_some(start)
}

/// E-mail addresses: `local@domain`, where the local part is letters,
/// digits and `._%+-` and the domain letters, digits, `.` and `-` (a dot
/// is not required: `ann@localhost` is an address too). An `@` with
/// nothing of the kind on either side (`@decorator`, `a @ b`) is not one.
pub(super) fn emails(text: &str, out: &mut Vec<Range<usize>>) {
    let is_local = |c: char| c.is_alphanumeric() || "._%+-".contains(c);
    let is_domain = |c: char| c.is_alphanumeric() || c == '.' || c == '-';
    let mut from = 0;
    while let Some(at) = text[from..].find('@').map(|k| from + k) {
        let start = text[..at]
            .char_indices()
            .rev()
            .take_while(|&(_, c)| is_local(c))
            .last()
            .map_or(at, |(k, _)| k);
        let domain = &text[at + 1..];
        let mut end = at + 1 + domain.find(|c: char| !is_domain(c)).unwrap_or(domain.len());
        // A sentence's full stop or a dash after the address is not part
        // of it.
        while end > at + 1 && matches!(text.as_bytes()[end - 1], b'.' | b'-') {
            end -= 1;
        }
        if start < at && end > at + 1 {
            out.push(start..end);
        }
        from = end.max(at + 1);
    }
}

/// Characters that join two numbers into one value: `4111 1111`,
/// `4111-1111`, `3.14`, `2026-12-03`, `12:30:00`, `10/12`, `1,000`,
/// `+44`.
const NUMBER_JOINERS: &[u8] = b" -./:,+";

/// Numbers and ids: every word that holds a digit of any script (`42`,
/// `user_42`, `a3f9c2`, `0x7f3a`), with a run of such words joined by one
/// of [`NUMBER_JOINERS`] each (card numbers with spaces or dashes, dates,
/// times, addresses) as one value.
pub(super) fn digits(text: &str, out: &mut Vec<Range<usize>>) {
    let mut open: Option<Range<usize>> = None;
    let mut chars = text.char_indices().peekable();
    while let Some((start, c)) = chars.next() {
        if !is_word_char(c) {
            continue;
        }
        let mut end = start + c.len_utf8();
        let mut numeric = c.is_numeric();
        while let Some(&(k, c)) = chars.peek() {
            if !is_word_char(c) {
                break;
            }
            numeric |= c.is_numeric();
            end = k + c.len_utf8();
            chars.next();
        }
        if !numeric {
            continue;
        }
        match &mut open {
            Some(run)
                if start == run.end + 1 && NUMBER_JOINERS.contains(&text.as_bytes()[run.end]) =>
            {
                run.end = end;
            }
            _ => {
                if let Some(run) = open.replace(start..end) {
                    out.push(run);
                }
            }
        }
    }
    out.extend(open);
}
