//! The reader's handling of untrusted command-line text: clap's
//! `try_parse_from` over arbitrary arguments (any bytes, not only UTF-8),
//! and the value parsers behind it.
//!
//! Properties:
//! - nothing panics, and a refusal renders as an error message;
//! - `parse_size`: an accepted size prints and parses back to itself;
//! - `parse_duration`: an accepted duration is at most 10^12 s;
//! - a JSONL filename template that parses renders file names it
//!   recognises as its own (retention and restart rely on that), without
//!   `/`;
//! - `--ui-prefix` normalisation is idempotent.
#![no_main]

use libfuzzer_sys::fuzz_target;
use profilis_reader::app::cli::{parse_duration, parse_size, Cli};
use profilis_reader::outputs::jsonl::Template;
use profilis_reader::outputs::web::normalize_prefix;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, data)) = data.split_first() else {
        return;
    };
    // Building clap's parser is the slow part (about 4 ms): one input in
    // four goes through it, all through the value parsers.
    if mode % 4 == 0 {
        let args: Vec<&OsStr> = std::iter::once(OsStr::new("profilis-reader"))
            .chain(data.split(|&c| c == 0).map(OsStr::from_bytes))
            .take(32)
            .collect();
        use clap::Parser;
        if let Err(e) = Cli::try_parse_from(&args) {
            let _ = e.render().to_string();
        }
    }
    for piece in data.split(|&c| c == 0).take(8) {
        let Ok(text) = std::str::from_utf8(piece) else {
            continue;
        };
        if let Ok(size) = parse_size(text) {
            assert_eq!(parse_size(&size.to_string()), Ok(size));
        }
        if let Ok(d) = parse_duration(text) {
            assert!(d.as_secs() <= 1_000_000_000_000);
        }
        if let Ok(template) = Template::parse(text) {
            for (counter, unique) in [(1, 0), (u64::MAX, u32::MAX)] {
                let name = template.render(1_764_065_000_123_456_789, counter, 4_194_304, unique);
                assert!(!name.contains('/'), "{text:?} renders {name:?}");
                assert!(template.matches(&name), "{text:?} renders {name:?}");
            }
        }
        if let Ok(prefix) = normalize_prefix(text) {
            let again = normalize_prefix(if prefix.is_empty() { "/" } else { &prefix });
            assert_eq!(again.as_deref().ok(), Some(prefix.as_str()));
        }
    }
});
