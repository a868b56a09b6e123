//! The sender's side of the conversion: the texts of each ring (learnt
//! from the chunks' [`Def`]s), spans grouped by writer process (service
//! and pid, one resource each), and the export request, built as messages
//! or encoded in one pass.

use super::spans::{fill, kv_int, resource, scope, DEFAULT_SERVICE, SCHEMA_URL};
use super::{Chunk, Def};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{span, ResourceSpans, ScopeSpans, Span};
use profilis::{Kind, StrId};
use std::collections::HashMap;
use std::sync::Arc;

/// Ids below this are looked up in vectors; larger ones (the overflow id)
/// in maps.
const MAX_DENSE_ID: usize = 1 << 20;

#[derive(Default)]
struct RingTexts {
    names: Vec<Option<Arc<str>>>,
    large: HashMap<u32, Arc<str>>,
    services: Vec<Option<Arc<str>>>,
}

impl RingTexts {
    fn learn(&mut self, def: &Def) {
        match def {
            Def::Name(id, text) => {
                let index = id.0 as usize;
                if index < MAX_DENSE_ID {
                    if index >= self.names.len() {
                        self.names.resize(index + 1, None);
                    }
                    self.names[index] = Some(text.clone());
                } else {
                    self.large.insert(id.0, text.clone());
                }
            }
            Def::Service(writer, service) => {
                let index = *writer as usize;
                if index >= self.services.len() {
                    self.services.resize(index + 1, None);
                }
                self.services[index].clone_from(service);
            }
        }
    }

    fn name(&self, id: StrId) -> Option<&Arc<str>> {
        let index = id.0 as usize;
        if index < MAX_DENSE_ID {
            self.names.get(index).and_then(Option::as_ref)
        } else {
            self.large.get(&id.0)
        }
    }

    fn service(&self, writer: u16) -> Option<&Arc<str>> {
        self.services.get(writer as usize).and_then(Option::as_ref)
    }
}

/// The sender's side of the name tables, and the conversion.
///
/// Span messages are reused: after a request is encoded,
/// [`reclaim`](SpanConverter::reclaim) keeps its spans (one pool per span
/// kind, so attribute keys usually stay as they are) and the next
/// conversions overwrite their strings and vectors in place, so a steady
/// stream of spans allocates next to nothing.
pub struct SpanConverter {
    rings: HashMap<u32, RingTexts>,
    host: String,
    resources: HashMap<Process, Resource>,
    default_service: Arc<str>,
    unknown: Arc<str>,
    rng: u64,
    pools: [Vec<Span>; 3],
    span_vectors: Vec<Vec<Span>>,
    scratch: Vec<u8>,
    /// Per process: the encoded `resource` and `scope` fields.
    envelopes: HashMap<Process, (Vec<u8>, Vec<u8>)>,
    /// The encoded `schema_url` field (of both enclosing messages).
    schema_field: Vec<u8>,
}

// The schema URL field's length is one varint byte.
const _: () = assert!(SCHEMA_URL.len() < 128);

/// A writer process, the resource of its spans: service name and pid.
pub type Process = (Arc<str>, u32);

/// Most processes whose encoded resource is kept; past it the cache starts
/// over (a reader draining many short-lived processes).
const CACHED_RESOURCES: usize = 4096;

/// The resource of a writer process's spans.
fn process_resource(process: &Process, host: &str) -> Resource {
    resource(
        &process.0,
        host,
        &[kv_int("process.pid", i64::from(process.1))],
    )
}

/// Field keys (number << 3 | length-delimited) of the enclosing messages:
/// `ExportTraceServiceRequest.resource_spans` (1), `ResourceSpans.resource`
/// (1) and `.scope_spans` (2), `ScopeSpans.scope` (1) and `.spans` (2).
const TAG_RESOURCE_SPANS: u8 = 1 << 3 | 2;
const TAG_RESOURCE: u8 = 1 << 3 | 2;
const TAG_SCOPE_SPANS: u8 = 2 << 3 | 2;
const TAG_SCOPE: u8 = 1 << 3 | 2;
const TAG_SPANS: u8 = 2 << 3 | 2;
/// `ResourceSpans.schema_url` and `ScopeSpans.schema_url` (3).
const TAG_SCHEMA_URL: u8 = 3 << 3 | 2;

fn varint_len(mut v: u64) -> usize {
    let mut n = 1;
    while v >= 0x80 {
        v >>= 7;
        n += 1;
    }
    n
}

fn push_varint(out: &mut bytes::BytesMut, mut v: u64) {
    while v >= 0x80 {
        out.extend_from_slice(&[(v as u8) | 0x80]);
        v >>= 7;
    }
    out.extend_from_slice(&[v as u8]);
}

/// Spans of one export request, by writer process.
#[derive(Default)]
pub struct Grouped {
    services: Vec<(Process, Vec<Span>)>,
    /// Spans in the request.
    pub spans: usize,
}

/// Spans kept for reuse per kind.
const POOLED_SPANS: usize = 16_384;

fn pool_index(kind: i32) -> usize {
    if kind == span::SpanKind::Server as i32 {
        0
    } else if kind == span::SpanKind::Client as i32 {
        1
    } else {
        2
    }
}

impl SpanConverter {
    /// A converter labelling resources with `host`.
    pub fn new(host: &str) -> SpanConverter {
        let seed = crate::support::timefmt::now_ns() ^ (u64::from(std::process::id()) << 32);
        SpanConverter {
            rings: HashMap::new(),
            host: host.to_string(),
            resources: HashMap::new(),
            default_service: Arc::from(DEFAULT_SERVICE),
            unknown: Arc::from("<unknown>"),
            rng: seed | 1,
            pools: Default::default(),
            span_vectors: Vec::new(),
            scratch: Vec::new(),
            envelopes: HashMap::new(),
            schema_field: {
                let mut field = vec![TAG_SCHEMA_URL, SCHEMA_URL.len() as u8];
                field.extend_from_slice(SCHEMA_URL.as_bytes());
                field
            },
        }
    }

    /// Learns the texts of a chunk and converts its spans into `out`.
    pub fn add_chunk(&mut self, chunk: &Chunk, out: &mut Grouped) {
        self.add_spans(chunk, 0..chunk.spans.len(), out);
    }

    /// Converts the spans `range` of a chunk into `out`; learns the chunk's
    /// texts first when the range starts at its first span (the texts come
    /// before the spans that use them).
    pub fn add_spans(&mut self, chunk: &Chunk, range: std::ops::Range<usize>, out: &mut Grouped) {
        let SpanConverter {
            rings,
            default_service,
            unknown,
            rng,
            pools,
            span_vectors,
            ..
        } = self;
        let texts = rings.entry(chunk.slot).or_default();
        if range.start == 0 {
            for def in &chunk.defs {
                texts.learn(def);
            }
        }
        let mut current: Option<usize> = None;
        for record in &chunk.spans[range] {
            let service = texts.service(record.writer).unwrap_or(default_service);
            let same = |(s, pid): &Process| *pid == record.pid && Arc::ptr_eq(s, service);
            let at = match current {
                Some(i) if same(&out.services[i].0) => i,
                _ => match out
                    .services
                    .iter()
                    .position(|((s, pid), _)| *pid == record.pid && s == service)
                {
                    Some(i) => i,
                    None => {
                        let spans = span_vectors.pop().unwrap_or_default();
                        out.services.push(((service.clone(), record.pid), spans));
                        out.services.len() - 1
                    }
                },
            };
            current = Some(at);
            let name = texts.name(record.name).unwrap_or(unknown);
            let exception_type = (record.exception_type != StrId::NONE)
                .then(|| &**texts.name(record.exception_type).unwrap_or(unknown));
            let pool = &mut pools[match record.kind {
                Kind::Req => 0,
                Kind::Db => 1,
                Kind::Fn | Kind::Custom => 2,
            }];
            let mut span = pool.pop().unwrap_or_default();
            fill(&mut span, record, name, exception_type, rng);
            out.services[at].1.push(span);
            out.spans += 1;
        }
    }

    /// The export request of the grouped spans (one `ResourceSpans` per
    /// writer process).
    pub fn request(&mut self, grouped: Grouped) -> ExportTraceServiceRequest {
        if self.resources.len() > CACHED_RESOURCES {
            self.resources.clear();
        }
        let resource_spans = grouped
            .services
            .into_iter()
            .map(|(process, spans)| {
                let resource = self
                    .resources
                    .entry(process.clone())
                    .or_insert_with(|| process_resource(&process, &self.host))
                    .clone();
                ResourceSpans {
                    resource: Some(resource),
                    scope_spans: vec![ScopeSpans {
                        scope: Some(scope()),
                        spans,
                        schema_url: SCHEMA_URL.to_string(),
                    }],
                    schema_url: SCHEMA_URL.to_string(),
                }
            })
            .collect();
        ExportTraceServiceRequest { resource_spans }
    }

    /// Encodes the grouped spans as an `ExportTraceServiceRequest` into
    /// `out` (the same bytes as `request(grouped).encode_to_vec()`) and
    /// keeps the spans for reuse.
    ///
    /// prost computes the length of a nested message again at every level
    /// it is nested in; spans sit four levels deep and their attributes six.
    /// Here each span is encoded once, length-delimited, into a scratch
    /// buffer, and the three enclosing levels (whose fields are the
    /// resource, the scope, the spans and the schema URLs) are framed
    /// around it, with the resource and scope encoded once per process and
    /// cached.
    pub fn encode(&mut self, grouped: Grouped, out: &mut bytes::BytesMut) {
        use prost::Message;
        if self.envelopes.len() > CACHED_RESOURCES {
            self.envelopes.clear();
        }
        let schema_field = &self.schema_field[..];
        for (process, mut spans) in grouped.services {
            self.scratch.clear();
            for span in &spans {
                self.scratch.push(TAG_SPANS);
                // Writing into a Vec cannot run out of room.
                let _ = span.encode_length_delimited(&mut self.scratch);
            }
            let host = &self.host;
            let envelope = self.envelopes.entry(process.clone()).or_insert_with(|| {
                let mut resource_field = vec![TAG_RESOURCE];
                let _ =
                    process_resource(&process, host).encode_length_delimited(&mut resource_field);
                let mut scope_field = vec![TAG_SCOPE];
                let _ = scope().encode_length_delimited(&mut scope_field);
                (resource_field, scope_field)
            });
            let (resource_field, scope_field) = &*envelope;
            let scope_spans_len = scope_field.len() + self.scratch.len() + schema_field.len();
            let resource_spans_len = resource_field.len()
                + 1
                + varint_len(scope_spans_len as u64)
                + scope_spans_len
                + schema_field.len();
            out.reserve(resource_spans_len + 12);
            out.extend_from_slice(&[TAG_RESOURCE_SPANS]);
            push_varint(out, resource_spans_len as u64);
            out.extend_from_slice(resource_field);
            out.extend_from_slice(&[TAG_SCOPE_SPANS]);
            push_varint(out, scope_spans_len as u64);
            out.extend_from_slice(scope_field);
            out.extend_from_slice(&self.scratch);
            out.extend_from_slice(schema_field);
            out.extend_from_slice(schema_field);
            for span in spans.drain(..) {
                let pool = &mut self.pools[pool_index(span.kind)];
                if pool.len() < POOLED_SPANS {
                    pool.push(span);
                }
            }
            if self.span_vectors.len() < 8 {
                self.span_vectors.push(spans);
            }
        }
        if self.scratch.capacity() > 16 << 20 {
            self.scratch = Vec::new();
        }
    }

    /// Takes back the spans of an encoded request for reuse.
    pub fn reclaim(&mut self, request: ExportTraceServiceRequest) {
        for rs in request.resource_spans {
            for ss in rs.scope_spans {
                let mut spans = ss.spans;
                for span in spans.drain(..) {
                    let pool = &mut self.pools[pool_index(span.kind)];
                    if pool.len() < POOLED_SPANS {
                        pool.push(span);
                    }
                }
                if self.span_vectors.len() < 8 {
                    self.span_vectors.push(spans);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outputs::otlp::spans::tests::record;

    #[test]
    fn framed_encoding_equals_prost_encoding() {
        use prost::Message;
        let mut texts = Vec::new();
        let mut chunk = Chunk {
            slot: 3,
            ..Chunk::default()
        };
        for (i, name) in ["/a", "SELECT * FROM t", "f"].iter().enumerate() {
            texts.push(Def::Name(StrId(i as u32 + 1), Arc::from(*name)));
        }
        chunk.defs = texts;
        chunk.defs.push(Def::Service(0, Some(Arc::from("shop"))));
        chunk.defs.push(Def::Service(1, None));
        for i in 0..300u64 {
            let mut r = record([Kind::Req, Kind::Db, Kind::Fn][(i % 3) as usize]);
            r.name = StrId((i % 3) as u32 + 1);
            r.writer = (i % 2) as u16;
            r.pid = if i % 5 == 0 && r.writer == 0 { 43 } else { 42 };
            r.span_id = i + 1;
            r.status = if i % 7 == 0 { 500 } else { 200 };
            r.error = r.status >= 500;
            chunk.spans.push(r);
        }
        let mut framed = SpanConverter::new("h");
        let mut plain = SpanConverter::new("h");
        plain.rng = framed.rng;
        for _ in 0..2 {
            let (mut a, mut b) = (Grouped::default(), Grouped::default());
            framed.add_chunk(&chunk, &mut a);
            plain.add_chunk(&chunk, &mut b);
            let mut out = bytes::BytesMut::new();
            framed.encode(a, &mut out);
            let request = plain.request(b);
            assert_eq!(&out[..], &request.encode_to_vec()[..]);
            let decoded = ExportTraceServiceRequest::decode(out.freeze()).unwrap();
            assert_eq!(decoded, request);
            assert_eq!(
                decoded.resource_spans.len(),
                3,
                "two services, three processes"
            );
            let mut processes = Vec::new();
            for rs in &decoded.resource_spans {
                assert_eq!(rs.schema_url, SCHEMA_URL);
                assert_eq!(rs.scope_spans[0].schema_url, SCHEMA_URL);
                let attrs = &rs.resource.as_ref().unwrap().attributes;
                let value = |key: &str| {
                    attrs
                        .iter()
                        .find(|kv| kv.key == key)
                        .and_then(|kv| kv.value.as_ref()?.value.clone())
                };
                use opentelemetry_proto::tonic::common::v1::any_value::Value;
                let (Some(Value::StringValue(service)), Some(Value::IntValue(pid))) =
                    (value("service.name"), value("process.pid"))
                else {
                    panic!("service.name and process.pid on the resource: {attrs:?}");
                };
                for span in &rs.scope_spans[0].spans {
                    assert!(span.attributes.iter().all(|kv| kv.key != "process.pid"));
                }
                processes.push((service, pid));
            }
            processes.sort();
            let want = [("profilis", 42), ("shop", 42), ("shop", 43)];
            let want: Vec<(String, i64)> = want.iter().map(|(s, p)| (s.to_string(), *p)).collect();
            assert_eq!(processes, want, "one resource per (service, pid)");
            plain.reclaim(request);
        }
    }
}
