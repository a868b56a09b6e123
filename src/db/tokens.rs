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

/// End of the number starting at `start` (a digit, or `.` then a digit):
/// integers, decimals, exponents, `0x` hex, `_` separators.
fn number_end(b: &[u8], start: usize) -> usize {
    let mut i = start;
    if b[i] == b'0' && matches!(b.get(i + 1), Some(b'x' | b'X')) {
        i += 2;
        while i < b.len() && (b[i].is_ascii_hexdigit() || b[i] == b'_') {
            i += 1;
        }
        return i;
    }
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
    i
}

fn push_value(out: &mut Vec<Token<'_>>, space: &mut bool) {
    out.push(Token {
        tok: Tok::Value,
        space: *space,
    });
    *space = false;
}

pub(super) fn tokenize(text: &str) -> Vec<Token<'_>> {
    let b = text.as_bytes();
    let mut out: Vec<Token<'_>> = Vec::with_capacity(text.len() / 3);
    let mut space = false;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let next = b.get(i + 1).copied();
        // Whitespace and comments.
        if c.is_ascii_whitespace() {
            space = true;
            i += 1;
            continue;
        }
        if c == b'-' && next == Some(b'-') {
            i = text[i..].find('\n').map_or(b.len(), |at| i + at + 1);
            space = true;
            continue;
        }
        if c == b'/' && next == Some(b'*') {
            // Nested block comments, as PostgreSQL allows.
            let mut depth = 1;
            i += 2;
            while i < b.len() && depth > 0 {
                if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
                    depth += 1;
                    i += 2;
                } else if b[i] == b'*' && b.get(i + 1) == Some(&b'/') {
                    depth -= 1;
                    i += 2;
                } else {
                    i += 1;
                }
            }
            space = true;
            continue;
        }
        // String literals ('...', E'...', N'...', X'...', B'...') and
        // backslash escapes inside them.
        if c == b'\'' {
            i = quoted_end(b, i, b'\'', true);
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
            });
            space = false;
            i = end;
            continue;
        }
        // Backtick-quoted identifiers (MySQL, SQLite: never a value).
        if c == b'`' {
            let end = quoted_end(b, i, c, false);
            out.push(Token {
                tok: Tok::Quoted(&text[i..end]),
                space,
            });
            space = false;
            i = end;
            continue;
        }
        // Dollar quotes and `$1` placeholders.
        if c == b'$' {
            if next.is_some_and(|n| n.is_ascii_digit()) {
                i = number_end(b, i + 1);
                push_value(&mut out, &mut space);
                continue;
            }
            if let Some(end) = dollar_quote_end(text, i) {
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
            i = number_end(b, i);
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
                i = quoted_end(b, end, b'\'', true);
                push_value(&mut out, &mut space);
                continue;
            }
            out.push(Token {
                tok: Tok::Word(word),
                space,
            });
            space = false;
            i = end;
            continue;
        }
        out.push(Token {
            tok: Tok::Punct(ch),
            space,
        });
        space = false;
        i += ch.len_utf8();
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
