//! Message redaction (`profilis::redact::message`, what
//! `Ring::message` stores) of arbitrary text, and of generated messages
//! with marked values.
//!
//! Properties, for any input text (the default rules, no patterns):
//! - it never panics;
//! - it is idempotent: `message(message(x)) == message(x)`;
//! - the output is no longer than the input (each value becomes one `?`);
//! - no digit survives: the output holds no character that is numeric.
//!
//! For generated messages (words, apostrophes inside words, punctuation,
//! paths, with numbers, card-like groups, e-mail addresses and `'...'` /
//! `"..."` values, escaped quotes inside, carrying a marker): the output
//! never holds a marker.
#![no_main]

#[path = "common/mod.rs"]
mod common;

use common::Bytes;
use libfuzzer_sys::fuzz_target;
use profilis::redact::message;

fuzz_target!(|data: &[u8]| {
    let (mode, rest) = data.split_first().unwrap_or((&0, &[]));
    if mode & 1 == 0 {
        check(&String::from_utf8_lossy(rest));
    } else {
        let text = generate(&mut Bytes::new(rest));
        let out = check(&text);
        for marker in ["SECRET", "Secret", "97531"] {
            assert!(!out.contains(marker), "value kept: {text:?} -> {out:?}");
        }
    }
});

fn check(text: &str) -> String {
    let out = message(text).into_owned();
    assert_eq!(message(&out), out, "not idempotent for {text:?}");
    assert!(out.len() <= text.len(), "{text:?} -> {out:?}");
    assert!(
        !out.chars().any(char::is_numeric),
        "a digit survived: {text:?} -> {out:?}"
    );
    out
}

const WORDS: &[&str] = &[
    "connection",
    "reset",
    "by",
    "peer",
    "can't",
    "users'",
    "don't",
    "KeyError:",
    "ValueError:",
    "invalid",
    "literal",
    "for",
    "int()",
    "with",
    "base",
    "-",
    ":",
    ",",
    ".",
    "(",
    ")",
    "/",
    "@",
    "@profile",
    "a @ b",
    "File",
    "line",
    "in",
    "<module>",
    "/home/app/views.py",
    "rb",
    "\n",
];

/// Marker-free free text: the markers are upper case or hold a 9.
fn free(b: &mut Bytes<'_>, max: usize) -> String {
    b.text(max).to_lowercase().replace('9', "8")
}

/// A message of up to 16 fragments separated by spaces; values carry a
/// marker the output must not contain.
fn generate(b: &mut Bytes) -> String {
    let mut parts: Vec<String> = Vec::new();
    for _ in 0..16 {
        if b.is_empty() {
            break;
        }
        let pick = b.u8();
        let part = match pick % 6 {
            0 => {
                let joiner = [" ", "-", ".", "/", ":", ",", "+", ""][(pick / 8 % 8) as usize];
                format!("4111{joiner}97531{joiner}{}", b.u16())
            }
            1 => {
                let local = ["ann", "a.b", "x+tag", "Secret", "o_k"][(pick / 8 % 5) as usize];
                let domain =
                    ["example.com", "localhost", "mail.example.org"][(pick / 64 % 3) as usize];
                format!("{local}.Secret@{domain}")
            }
            2 => {
                let quote = if pick & 8 == 0 { '\'' } else { '"' };
                let content = free(b, 12);
                // Escape the quote and the backslash, as a repr does.
                let content = content
                    .replace('\\', "\\\\")
                    .replace(quote, &format!("\\{quote}"));
                let prefix = ["", "b", "rb", "u", "f"][(pick / 16 % 5) as usize];
                format!("{prefix}{quote}SECRET {content}{quote}")
            }
            3 => format!("user_97531{}", free(b, 4).replace(['\'', '"', ' '], "")),
            4 => free(b, 8).replace(['\'', '"'], ""),
            _ => WORDS[b.u8() as usize % WORDS.len()].to_string(),
        };
        parts.push(part);
    }
    parts.join(" ")
}
