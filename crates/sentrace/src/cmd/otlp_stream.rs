//! OTLP/JSON on standard input, one `ResourceSpans` at a time: one
//! `ExportTraceServiceRequest` document, or many (JSON lines, as the OpenTelemetry
//! Collector's file exporter writes them), without holding more than one element in
//! memory, so `redact` and `scan` run in constant memory whatever the input size.

use std::cell::Cell;
use std::fmt;
use std::io::{BufRead, Read};

use opentelemetry_proto::tonic::trace::v1::ResourceSpans;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::progress::{self, Progress};

/// Largest `resourceSpans` element read (its JSON text): one element is held in memory
/// at a time, so this bounds the memory a command needs whatever the input.
pub const MAX_ELEMENT_BYTES: u64 = 64 << 20;

/// What a stream of requests is handed to.
pub trait Sink {
    /// Document `doc` (0-based) begins.
    fn start(&mut self, doc: usize) -> anyhow::Result<()>;
    /// One element of its `resourceSpans`.
    fn item(&mut self, rs: ResourceSpans) -> anyhow::Result<()>;
    /// Document `doc` ended.
    fn end(&mut self, doc: usize) -> anyhow::Result<()>;
}

/// Feeds standard input to `sink` as [`stream`] does, with a progress line on a terminal
/// (bytes read, of how many when the input is a file, and spans so far).
pub fn stream_stdin(what: &str, sink: &mut dyn Sink) -> anyhow::Result<usize> {
    let progress = Progress::bytes(what, progress::stdin_len());
    let input = progress::Counting::new(std::io::stdin().lock(), &progress);
    if !progress.is_drawn() {
        return stream(input, sink);
    }
    let mut counted = Counted {
        inner: sink,
        progress: &progress,
        spans: 0,
    };
    let docs = stream(input, &mut counted);
    progress.finish();
    docs
}

/// A sink that counts the spans passing through it into the progress line.
struct Counted<'a> {
    inner: &'a mut dyn Sink,
    progress: &'a Progress,
    spans: u64,
}

impl Sink for Counted<'_> {
    fn start(&mut self, doc: usize) -> anyhow::Result<()> {
        self.inner.start(doc)
    }

    fn item(&mut self, rs: ResourceSpans) -> anyhow::Result<()> {
        self.spans += rs
            .scope_spans
            .iter()
            .map(|s| s.spans.len() as u64)
            .sum::<u64>();
        self.progress.message(format!("{} spans", self.spans));
        self.inner.item(rs)
    }

    fn end(&mut self, doc: usize) -> anyhow::Result<()> {
        self.inner.end(doc)
    }
}

/// Feeds every document of `input` to `sink`, element by element. Returns how many
/// documents there were.
pub fn stream(input: impl Read, sink: &mut dyn Sink) -> anyhow::Result<usize> {
    stream_bounded(input, sink, MAX_ELEMENT_BYTES)
}

/// [`stream`] with elements of at most `max_element` bytes.
fn stream_bounded(
    input: impl Read,
    sink: &mut dyn Sink,
    max_element: u64,
) -> anyhow::Result<usize> {
    let mut input = std::io::BufReader::with_capacity(1 << 16, input);
    let mut doc = 0;
    loop {
        // Skip the whitespace between documents; stop at the end of the input.
        loop {
            let buf = input.fill_buf()?;
            if buf.is_empty() {
                return Ok(doc);
            }
            let n = buf.iter().take_while(|b| b.is_ascii_whitespace()).count();
            let whole = n == buf.len();
            input.consume(n);
            if !whole {
                break;
            }
        }
        sink.start(doc)?;
        let mut failed: Option<anyhow::Error> = None;
        let read = Cell::new(0);
        let mut de = serde_json::Deserializer::from_reader(Bounded {
            inner: &mut input,
            read: &read,
            max: max_element,
        });
        let parsed = Document {
            sink: &mut *sink,
            failed: &mut failed,
            read: &read,
        }
        .deserialize(&mut de);
        if let Some(e) = failed {
            return Err(e);
        }
        parsed.map_err(|e| {
            anyhow::anyhow!(
                "input document {} is not an OTLP/JSON ExportTraceServiceRequest: {e}",
                doc + 1
            )
        })?;
        sink.end(doc)?;
        doc += 1;
    }
}

/// A reader that fails once more than `max` bytes were read since `read` was last reset
/// (at each element's start).
struct Bounded<'a, R> {
    inner: R,
    read: &'a Cell<u64>,
    max: u64,
}

impl<R: Read> Read for Bounded<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read.set(self.read.get() + n as u64);
        if self.read.get() > self.max {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!(
                    "an element is larger than {} bytes; split the request into smaller ones",
                    self.max
                ),
            ));
        }
        Ok(n)
    }
}

/// One request document; the sink's own error is kept aside so it is reported as is.
struct Document<'a> {
    sink: &'a mut dyn Sink,
    failed: &'a mut Option<anyhow::Error>,
    read: &'a Cell<u64>,
}

impl<'de> DeserializeSeed<'de> for Document<'_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Document<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object with resourceSpans")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<String>()? {
            if key == "resourceSpans" || key == "resource_spans" {
                map.next_value_seed(Elements {
                    sink: &mut *self.sink,
                    failed: &mut *self.failed,
                    read: self.read,
                })?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }
}

struct Elements<'a> {
    sink: &'a mut dyn Sink,
    failed: &'a mut Option<anyhow::Error>,
    read: &'a Cell<u64>,
}

impl<'de> DeserializeSeed<'de> for Elements<'_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Elements<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of ResourceSpans")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut i = 0usize;
        self.read.set(0);
        while let Some(rs) = seq
            .next_element::<ResourceSpans>()
            .map_err(|e| de::Error::custom(format_args!("resourceSpans[{i}]: {e}")))?
        {
            if let Err(e) = self.sink.item(rs) {
                *self.failed = Some(e);
                return Err(de::Error::custom("stopped"));
            }
            self.read.set(0);
            i += 1;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Collect(Vec<String>);

    impl Sink for Collect {
        fn start(&mut self, doc: usize) -> anyhow::Result<()> {
            self.0.push(format!("start {doc}"));
            Ok(())
        }
        fn item(&mut self, rs: ResourceSpans) -> anyhow::Result<()> {
            let spans: usize = rs.scope_spans.iter().map(|s| s.spans.len()).sum();
            self.0.push(format!("item {spans}"));
            Ok(())
        }
        fn end(&mut self, doc: usize) -> anyhow::Result<()> {
            self.0.push(format!("end {doc}"));
            Ok(())
        }
    }

    const ONE: &str = r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"0102030405060708090a0b0c0d0e0f10","spanId":"0102030405060708","name":"a"}]}]},{"scopeSpans":[]}]}"#;

    #[test]
    fn documents_and_elements_in_order() {
        let input = format!("{ONE}\n\n{ONE}\n");
        let mut c = Collect::default();
        assert_eq!(stream(input.as_bytes(), &mut c).unwrap(), 2);
        assert_eq!(
            c.0,
            [
                "start 0", "item 1", "item 0", "end 0", "start 1", "item 1", "item 0", "end 1"
            ]
        );
        assert_eq!(stream(&b"  \n"[..], &mut Collect::default()).unwrap(), 0);
    }

    #[test]
    fn elements_are_bounded_not_documents() {
        // Many small elements pass whatever the document's size ...
        let many = format!(
            "{{\"resourceSpans\":[{}]}}",
            vec![r#"{"scopeSpans":[]}"#; 1000].join(",")
        );
        let mut c = Collect::default();
        assert_eq!(stream_bounded(many.as_bytes(), &mut c, 64).unwrap(), 1);
        assert_eq!(c.0.len(), 1002);
        // ... one large element does not.
        let big = format!(
            "{{\"resourceSpans\":[{{\"schemaUrl\":\"{}\"}}]}}",
            "x".repeat(100)
        );
        let e = stream_bounded(big.as_bytes(), &mut Collect::default(), 64)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("resourceSpans[0]") && e.contains("larger than 64 bytes"),
            "{e}"
        );
    }

    #[test]
    fn errors_name_the_document_and_element() {
        let bad = r#"{"resourceSpans":[{"scopeSpans":[]},{"scopeSpans":7}]}"#;
        let input = format!("{ONE}\n{bad}\n");
        let e = stream(input.as_bytes(), &mut Collect::default())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("input document 2") && e.contains("resourceSpans[1]"),
            "{e}"
        );
        let e = stream(&b"{\"resourceSpans\": ["[..], &mut Collect::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("input document 1"), "{e}");
    }
}
