//! The tokens of SQL text as the redactor sees them: words, quoted names,
//! values (literals and placeholders, written as `?`) and punctuation.

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Tok<'a> {
    /// Identifier or keyword (kept).
    Word(&'a str),
    /// Quoted identifier: `` `col` ``, or `"col"` where it can only be a
    /// name (kept; see [`redact`](super::redact)).
    Quoted(&'a str),
    /// A literal or placeholder, written as `?`.
    Value,
    /// Any other character, kept as it is.
    Punct(char),
}

#[derive(Clone, Copy, Debug)]
pub(super) struct Token<'a> {
    pub(super) tok: Tok<'a>,
    /// Whitespace or a comment came before it.
    pub(super) space: bool,
    /// It starts the line after a `#` that stayed SQL: written after a
    /// newline, so the `#` line (a MySQL comment) ends where it ended.
    pub(super) newline: bool,
}

fn is_word_start(c: char) -> bool {
    c.is_alphabetic() || c == '_'
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '$'
}

/// Keywords after which a `-` or `+` is a sign, not a subtraction.
fn expects_operand(word: &str) -> bool {
    const KEYWORDS: &[&str] = &[
        "SELECT", "WHERE", "AND", "OR", "NOT", "WHEN", "THEN", "ELSE", "CASE", "VALUES", "SET",
        "RETURN", "LIMIT", "OFFSET", "IN", "BETWEEN", "LIKE", "IS", "ON", "HAVING", "BY", "TOP",
        "INTERVAL",
    ];
    KEYWORDS.iter().any(|k| k.eq_ignore_ascii_case(word))
}

/// End (exclusive) of a quoted run starting at `start` (the opening quote),
/// where the quote is escaped by doubling it and, if `backslash`, by `\`.
/// An unterminated run extends to the end of the text.
fn quoted_end(b: &[u8], start: usize, quote: u8, backslash: bool) -> usize {
    let mut i = start + 1;
    while i < b.len() {
        let c = b[i];
        if backslash && c == b'\\' {
            i += 2;
            continue;
        }
        if c == quote {
            if b.get(i + 1) == Some(&quote) {
                i += 2;
                continue;
            }
            return i + 1;
        }
        i += 1;
    }
    b.len()
}

/// If a dollar-quoted string (`$$...$$`, `$tag$...$tag$`) starts at `start`,
/// its end (exclusive; the end of the text if unterminated).
fn dollar_quote_end(text: &str, start: usize) -> Option<usize> {
    let rest = &text[start + 1..];
    let tag_len = rest.find('$')?;
    let tag = &rest[..tag_len];
    let valid_tag = tag.is_empty()
        || (tag.starts_with(is_word_start) && tag.chars().all(|c| c.is_alphanumeric() || c == '_'));
    if !valid_tag {
        return None;
    }
    let delimiter = &text[start..start + tag_len + 2];
    let body = start + delimiter.len();
    Some(
        text[body..]
            .find(delimiter)
            .map_or(text.len(), |at| body + at + delimiter.len()),
    )
}

/// End of a `/* */` comment starting at `start`, nesting as PostgreSQL
/// does (`nested`) or ending at the first `*/` as SQLite and MySQL do.
fn block_comment_end(b: &[u8], start: usize, nested: bool) -> usize {
    let mut depth = 1;
    let mut i = start + 2;
    while i < b.len() && depth > 0 {
        if nested && b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
            depth += 1;
            i += 2;
        } else if b[i] == b'*' && b.get(i + 1) == Some(&b'/') {
            depth -= 1;
            i += 2;
        } else {
            i += 1;
        }
    }
    i.min(b.len())
}

/// End of the line `i` is on (the index of its `\n`, or the text's end).
fn line_end(b: &[u8], i: usize) -> usize {
    b[i..]
        .iter()
        .position(|&c| c == b'\n')
        .map_or(b.len(), |n| i + n)
}

/// Whether text some dialect reads as SQL code in `from..limit`, while the
/// redactor reads it as something else (a MySQL `#` comment, a
/// backtick-quoted name, a dollar-quoted string, a MySQL `/*! */`
/// comment), may hold the start of a string, quoted name or comment that
/// runs past `limit`. Then the dialects disagree on where that text ends,
/// and what one reads as a literal the other may read as SQL. Each quoted
/// run is read with and without backslash escapes and each comment with
/// and without nesting, taking the later end; `#` and `--` start line
/// comments; with `dollar` (the reading is PostgreSQL's), a `$` that
/// starts no word may start a dollar quote. So the answer may be yes where
/// no dialect crosses `limit`, never no where one does. It reads words and
/// numbers as the tokenizer does, so that the answer for redacted text
/// (numbers become `?`) is the answer for the text it came from.
fn crosses(text: &str, from: usize, limit: usize, dollar: bool) -> bool {
    let b = text.as_bytes();
    let mut i = from;
    while i < limit {
        let end = match b[i] {
            quote @ (b'\'' | b'"' | b'`') => {
                quoted_end(b, i, quote, true).max(quoted_end(b, i, quote, false))
            }
            b'#' => return line_end(b, i) > limit,
            b'-' if b.get(i + 1) == Some(&b'-') => return line_end(b, i) > limit,
            b'/' if b.get(i + 1) == Some(&b'*') => {
                block_comment_end(b, i, true).max(block_comment_end(b, i, false))
            }
            b'$' if dollar => dollar_quote_end(text, i).unwrap_or(i + 1),
            b'0'..=b'9' => {
                // A number with what is glued on, which the redactor
                // replaces: a `$` in it may start a dollar quote that the
                // `?` would no longer show, so the answer must not depend
                // on it.
                let end = number_end(text, i);
                if dollar && text[i..end].contains('$') {
                    return true;
                }
                // Running past `limit` hides no literal.
                end.min(limit)
            }
            // A word (with the `$` a PostgreSQL name may hold), as the
            // redactor reads and keeps it; any other character.
            _ => match text[i..].chars().next() {
                Some(c) if is_word_start(c) => {
                    let rest = &text[i..];
                    let end = i + rest.find(|w: char| !is_word_char(w)).unwrap_or(rest.len());
                    end.min(limit)
                }
                Some(c) => i + c.len_utf8(),
                None => i + 1,
            },
        };
        if end > limit {
            return true;
        }
        i = end;
    }
    false
}

/// End of the single-quoted string starting at `start` (its `'`), or
/// `None` where the dialects disagree on what follows it. MySQL (and
/// PostgreSQL in `E'...'`) reads a backslash as an escape, SQLite and
/// PostgreSQL do not. Where the two readings end the string at different
/// quotes, the text up to the later end is one value if the earlier
/// reading has nothing there that runs past it (`E'\'x\''` is one string
/// with escapes; `'\'`, `x`, `\` and `''` without); otherwise
/// (`'a\' AND b = 'x'`: `x` is in a string to one, SQL to the other) the
/// readings stay apart and the rest of the text is a value.
fn single_quoted_end(text: &str, start: usize) -> Option<usize> {
    let b = text.as_bytes();
    let escaped = quoted_end(b, start, b'\'', true);
    let plain = quoted_end(b, start, b'\'', false);
    let (early, late) = (escaped.min(plain), escaped.max(plain));
    (early == late || !crosses(text, early, late, true)).then_some(late)
}

/// End of the number starting at `start` (a digit, or `.` then a digit):
/// integers, decimals, exponents, `_` separators, and any letters and
/// digits glued on (`0x1F`, `0b1010`).
fn number_end(text: &str, start: usize) -> usize {
    let b = text.as_bytes();
    let mut i = start;
    while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'_') {
        i += 1;
    }
    if i < b.len() && b[i] == b'.' {
        i += 1;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
    }
    if i < b.len() && matches!(b[i], b'e' | b'E') {
        let mut j = i + 1;
        if j < b.len() && matches!(b[j], b'+' | b'-') {
            j += 1;
        }
        if j < b.len() && b[j].is_ascii_digit() {
            i = j;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
        }
    }
    // Letters or digits glued on (`0x1F`, `0b1010`, `0o17`, `123abc`):
    // the dialects read hex, binary and octal numbers, and a MySQL name may
    // start with digits; the whole run is a value.
    while let Some(c) = text[i..].chars().next().filter(|&c| is_word_char(c)) {
        i += c.len_utf8();
    }
    i
}

/// `out` with one value for the rest of the text: where the dialects
/// disagree on what follows, none of it is kept.
fn rest_is_value(mut out: Vec<Token<'_>>, mut space: bool) -> Vec<Token<'_>> {
    push_value(&mut out, &mut space);
    out
}

fn push_value(out: &mut Vec<Token<'_>>, space: &mut bool) {
    out.push(Token {
        tok: Tok::Value,
        space: *space,
        newline: false,
    });
    *space = false;
}

pub(super) fn tokenize(text: &str) -> Vec<Token<'_>> {
    let b = text.as_bytes();
    let mut out: Vec<Token<'_>> = Vec::with_capacity(text.len() / 3);
    let mut space = false;
    // The end of a line that holds a `#` read as SQL, and the token that
    // starts the next line.
    let mut hash_eol: Option<usize> = None;
    let mut line_start: Option<usize> = None;
    let mut i = 0;
    while i < b.len() {
        if hash_eol.is_some_and(|eol| i > eol) {
            hash_eol = None;
            line_start = Some(out.len());
        }
        if let Some(k) = line_start.filter(|&k| k < out.len()) {
            out[k].newline = true;
            line_start = None;
        }
        let c = b[i];
        let next = b.get(i + 1).copied();
        // Whitespace and comments.
        if c.is_ascii_whitespace() {
            space = true;
            i += 1;
            continue;
        }
        if c == b'-' && next == Some(b'-') {
            // MySQL reads `--` as a comment only before a space or control
            // character (`1--1` is `1 - -1`): otherwise it reads the line as
            // SQL, and if a string there runs past the line, the rest of
            // the text is read differently.
            let eol = line_end(b, i);
            let mysql_code = b.get(i + 2).is_some_and(|&c| c > b' ');
            if mysql_code && crosses(text, i + 2, eol, false) {
                return rest_is_value(out, space);
            }
            i = (eol + 1).min(b.len());
            space = true;
            continue;
        }
        if c == b'#' {
            // A comment to MySQL, SQL to SQLite and PostgreSQL (`#>` is a
            // JSON operator): if a string on this line runs past it, the
            // readings part; else the line stays SQL and its end a newline.
            let eol = line_end(b, i);
            if crosses(text, i + 1, eol, true) {
                return rest_is_value(out, space);
            }
            hash_eol = Some(eol);
        }
        if c == b'/' && next == Some(b'*') {
            // PostgreSQL nests comments, SQLite and MySQL end them at the
            // first `*/`; MySQL runs the text of `/*! */` as SQL.
            let end = block_comment_end(b, i, true);
            let flat = block_comment_end(b, i, false);
            let run = b.get(i + 2) == Some(&b'!');
            let body_end = end.saturating_sub(2).max(i + 3);
            if end != flat || (run && crosses(text, i + 3, body_end, false)) {
                return rest_is_value(out, space);
            }
            i = end;
            space = true;
            continue;
        }
        // String literals ('...', E'...', N'...', X'...', B'...') and
        // backslash escapes inside them.
        if c == b'\'' {
            let Some(end) = single_quoted_end(text, i) else {
                return rest_is_value(out, space);
            };
            i = end;
            push_value(&mut out, &mut space);
            continue;
        }
        // Double-quoted text: an identifier or, in SQLite and MySQL, a
        // string; which one is decided by `redact_double_quoted`. With a
        // backslash inside it is a value: MySQL reads the backslash as an
        // escape, SQLite and PostgreSQL do not, and where the two readings
        // end it differently (`"a\" AND b = "x"`), each reads as SQL what
        // the other reads as a string, so the rest of the text is redacted.
        if c == b'"' {
            let end = quoted_end(b, i, c, false);
            if b[i + 1..end].contains(&b'\\') {
                i = if quoted_end(b, i, c, true) == end {
                    end
                } else {
                    b.len()
                };
                push_value(&mut out, &mut space);
                continue;
            }
            out.push(Token {
                tok: Tok::Quoted(&text[i..end]),
                space,
                newline: false,
            });
            space = false;
            i = end;
            continue;
        }
        // Backtick-quoted identifiers (MySQL, SQLite: never a value; SQL
        // code to PostgreSQL, so a quote inside may start a string there).
        if c == b'`' {
            let end = quoted_end(b, i, c, false);
            if crosses(text, i + 1, end.saturating_sub(1).max(i + 1), true) {
                return rest_is_value(out, space);
            }
            out.push(Token {
                tok: Tok::Quoted(&text[i..end]),
                space,
                newline: false,
            });
            space = false;
            i = end;
            continue;
        }
        // Dollar quotes and `$1` placeholders.
        if c == b'$' {
            if next.is_some_and(|n| n.is_ascii_digit()) {
                i = number_end(text, i + 1);
                push_value(&mut out, &mut space);
                continue;
            }
            if let Some(end) = dollar_quote_end(text, i) {
                // A string to PostgreSQL only: SQL code to SQLite and MySQL.
                let delimiter = text[i + 1..].find('$').map_or(0, |n| n + 2);
                let body_end = end.saturating_sub(delimiter).max(i + delimiter);
                if crosses(text, i + delimiter, body_end, false) {
                    return rest_is_value(out, space);
                }
                i = end;
                push_value(&mut out, &mut space);
                continue;
            }
        }
        // `?` and `?1` placeholders.
        if c == b'?' {
            i += 1;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            push_value(&mut out, &mut space);
            continue;
        }
        // `:name` / `:1` placeholders, not `::` casts.
        if c == b':'
            && next.is_some_and(|n| n.is_ascii_alphanumeric() || n == b'_')
            && !(i > 0 && b[i - 1] == b':')
        {
            i += 1;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            push_value(&mut out, &mut space);
            continue;
        }
        // `@p1` / `@name` placeholders, not `@@system` variables.
        if c == b'@' && next.is_some_and(|n| n.is_ascii_alphanumeric() || n == b'_') {
            if i > 0 && b[i - 1] == b'@' {
                out.push(Token {
                    tok: Tok::Punct('@'),
                    space,
                    newline: false,
                });
                space = false;
                i += 1;
                continue;
            }
            i += 1;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            push_value(&mut out, &mut space);
            continue;
        }
        // Numbers (a `.5` only where no word or quoted name is glued before it).
        let glued = !space
            && matches!(
                out.last(),
                Some(Token {
                    tok: Tok::Word(_) | Tok::Quoted(_),
                    ..
                })
            );
        if c.is_ascii_digit() || (c == b'.' && next.is_some_and(|n| n.is_ascii_digit()) && !glued) {
            i = number_end(text, i);
            // A sign directly before the number belongs to it when an
            // operand is expected there (after an operator, `(`, `,` or a
            // keyword like WHERE), not when it is a subtraction.
            if let Some(last) = out.last() {
                if matches!(last.tok, Tok::Punct('-' | '+')) {
                    let before = out.len().checked_sub(2).map(|k| out[k].tok);
                    let unary = match before {
                        None => true,
                        Some(Tok::Word(w)) => expects_operand(w),
                        Some(Tok::Quoted(_)) | Some(Tok::Value) => false,
                        Some(Tok::Punct(p)) => !matches!(p, ')' | ']'),
                    };
                    if unary {
                        let sign = out.pop().expect("checked above");
                        out.push(Token {
                            tok: Tok::Value,
                            space: sign.space,
                            newline: sign.newline,
                        });
                        space = false;
                        continue;
                    }
                }
            }
            push_value(&mut out, &mut space);
            continue;
        }
        // Words, with E'..' / N'..' / X'..' / B'..' string prefixes.
        let ch = text[i..].chars().next().expect("i < len");
        if is_word_start(ch) {
            let mut end = i + ch.len_utf8();
            for w in text[end..].chars() {
                if !is_word_char(w) {
                    break;
                }
                end += w.len_utf8();
            }
            let word = &text[i..end];
            if b.get(end) == Some(&b'\'')
                && word.len() == 1
                && matches!(
                    word.as_bytes()[0],
                    b'E' | b'e' | b'N' | b'n' | b'X' | b'x' | b'B' | b'b'
                )
            {
                let Some(end) = single_quoted_end(text, end) else {
                    return rest_is_value(out, space);
                };
                i = end;
                push_value(&mut out, &mut space);
                continue;
            }
            out.push(Token {
                tok: Tok::Word(word),
                space,
                newline: false,
            });
            space = false;
            i = end;
            continue;
        }
        out.push(Token {
            tok: Tok::Punct(ch),
            space,
            newline: false,
        });
        space = false;
        i += ch.len_utf8();
    }
    if let Some(k) = line_start.filter(|&k| k < out.len()) {
        out[k].newline = true;
    }
    out
}

/// If `tokens[open]` is `(` opening a list of values only (`?`, `,`),
/// the index of its `)`.
pub(super) fn value_list_end(tokens: &[Token<'_>], open: usize) -> Option<usize> {
    if !matches!(tokens.get(open)?.tok, Tok::Punct('(')) {
        return None;
    }
    let mut expect_value = true;
    for (k, t) in tokens.iter().enumerate().skip(open + 1) {
        match (t.tok, expect_value) {
            (Tok::Value, true) => expect_value = false,
            (Tok::Punct(','), false) => expect_value = true,
            (Tok::Punct(')'), false) => return Some(k),
            _ => return None,
        }
    }
    None
}
