//! W3C `traceparent` parsing of arbitrary header bytes.
//!
//! Properties:
//! - parsing never panics;
//! - an accepted header has lower-case hex fields only (the specification's
//!   case rule): the same header with any hex letter upper-cased is refused;
//! - an accepted header formats back to the same text: version-00 headers
//!   byte for byte except the flags, which come back as `00`/`01` (only the
//!   sampled bit is kept); later versions as version 00 with the same trace
//!   id and parent id;
//! - any context with non-zero ids formats to a header that parses back to
//!   the same context.
#![no_main]

#[path = "common/mod.rs"]
mod common;

use libfuzzer_sys::fuzz_target;
use profilis::context::TRACEPARENT_LEN;
use profilis::SpanContext;

fuzz_target!(|data: &[u8]| {
    if let Ok(ctx) = SpanContext::from_traceparent_bytes(data) {
        let head = &data[..TRACEPARENT_LEN];
        assert!(
            !head.iter().any(|c| c.is_ascii_uppercase()),
            "accepted upper case: {:?}",
            String::from_utf8_lossy(data)
        );
        let upper: Vec<u8> = data.to_ascii_uppercase();
        if upper[..TRACEPARENT_LEN] != *head {
            assert!(SpanContext::from_traceparent_bytes(&upper).is_err());
        }
        let out = ctx.to_traceparent();
        let out = out.as_bytes();
        assert_eq!(out.len(), TRACEPARENT_LEN);
        assert_eq!(&out[2..53], &head[2..53], "ids change on the way back");
        if &head[..2] == b"00" {
            assert_eq!(data.len(), TRACEPARENT_LEN);
            assert_eq!(out[53], b'0');
            let sampled =
                u8::from_str_radix(std::str::from_utf8(&head[53..55]).unwrap(), 16).unwrap() & 1;
            assert_eq!(out[54], b'0' + sampled);
        }
        assert_eq!(SpanContext::from_traceparent_bytes(out), Ok(ctx));
    }
    let mut b = common::Bytes::new(data);
    let ctx = SpanContext {
        trace_id: b.u128(),
        span_id: b.u64(),
        parent_span_id: 0,
        sampled: b.u8() & 1 == 1,
    };
    if ctx.trace_id != 0 && ctx.span_id != 0 {
        assert_eq!(
            SpanContext::from_traceparent(&ctx.to_traceparent()),
            Ok(ctx)
        );
    }
});
