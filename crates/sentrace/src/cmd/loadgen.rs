//! `sentrace loadgen`: whole-system load over OTLP/HTTP (protobuf, TLS, token), for
//! figures such as "ingest spans/s with a feature on vs. off" measured in one run.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value::Value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message;

use super::client::{Listener, ServerConfig};
use super::progress::Progress;
use crate::DataDir;

/// Arguments of `loadgen`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    data: DataDir,
    /// The OTLP/HTTP receiver: a base URL (`https://host:4318`, as the OpenTelemetry SDKs
    /// take it) or the full traces URL (`…/v1/traces`). Default: from `--config`'s
    /// `[listen] otlp_http`, else https://localhost:4318.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_ENDPOINT")]
    endpoint: Option<String>,
    #[command(flatten)]
    config: ServerConfig,
    /// A token with the ingest role.
    #[arg(long, env = "SENTRACE_TOKEN", hide_env_values = true)]
    token: String,
    /// CA certificate to trust (default: <data-dir>/tls/ca.pem).
    #[arg(long, env = "SENTRACE_CA")]
    ca: Option<std::path::PathBuf>,
    /// Requests to send in all.
    #[arg(long, default_value_t = 200)]
    requests: u64,
    /// Spans per request.
    #[arg(long, default_value_t = 500)]
    spans_per_request: usize,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// Attributes per span (20 make a typical HTTP server span, about 700 bytes).
    #[arg(long, default_value_t = 20)]
    attributes: usize,
    /// Print one JSON line instead of text.
    #[arg(long)]
    json: bool,
    /// What the spans look like: `trace` sends traces of five spans as an instrumented
    /// service exports them (an HTTP server span and its database, HTTP client, cache and
    /// internal children); `server` sends only server spans, each its own trace (the worst
    /// case for per-request work such as detection).
    #[arg(long, value_enum, default_value_t = Shape::Trace)]
    shape: Shape,
    /// Sign every batch with this source key (from `sentrace keys source-new`); needs
    /// --source.
    #[arg(long, requires = "source")]
    sign_key: Option<std::path::PathBuf>,
    /// The registered source name to sign as.
    #[arg(long, requires = "sign_key")]
    source: Option<String>,
    /// The first sequence number (then one more per request). Default: the current Unix
    /// time in microseconds, so successive runs keep increasing (the jump between runs is
    /// recorded as one gap).
    #[arg(long)]
    first_seq: Option<u64>,
}

/// Signs request bodies as a source.
struct Signing {
    key: sentrace_ledger::manifest::SourceSigner,
    source: String,
    first_seq: u64,
}

impl Signing {
    /// The four `sentrace-*` headers of request `i`.
    fn headers(
        &self,
        i: u64,
        req: &ExportTraceServiceRequest,
    ) -> anyhow::Result<[(&'static str, String); 4]> {
        let seq = self.first_seq.saturating_add(i);
        let at = now_nanos();
        let sig = sentrace_ledger::manifest::sign_batch(
            &self.key,
            &self.source,
            seq,
            at,
            &req.resource_spans,
        )
        .map_err(|e| anyhow::anyhow!("signing: {e}"))?;
        Ok(sentrace_server::sources::wire::headers(
            &self.source,
            seq,
            at,
            &sig,
        ))
    }
}

fn now_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// The span mix `loadgen` sends.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// Traces of five spans: server, database, HTTP client, cache, internal.
    Trace,
    /// Only server spans, one trace each.
    Server,
}

/// Spans per trace with [`Shape::Trace`].
const TRACE_SPANS: u64 = 5;

/// Span `n` of the load: with [`Shape::Server`] a [`typical_span`]; with [`Shape::Trace`]
/// member `n % 5` of trace `n / 5` (the server span first, then its children), padded to
/// `attributes` attributes like the server span.
pub fn load_span(shape: Shape, n: u64, attributes: usize, now: u64) -> Span {
    if shape == Shape::Server {
        return typical_span(n, attributes, now);
    }
    let root_n = n - n % TRACE_SPANS;
    let root = typical_span(root_n, attributes, now);
    if n == root_n {
        return root;
    }
    let s = |k: &str, v: String| KeyValue {
        key: k.to_string(),
        value: Some(AnyValue {
            value: Some(Value::StringValue(v)),
        }),
        ..Default::default()
    };
    let (name, kind, mut attrs) = match n % TRACE_SPANS {
        1 => (
            "SELECT items",
            3,
            vec![
                s("db.system", "postgresql".into()),
                s("db.namespace", "shop".into()),
                s(
                    "db.query.text",
                    "SELECT id, name, price FROM items WHERE id = $1".into(),
                ),
            ],
        ),
        2 => (
            "GET",
            3,
            vec![
                s("http.request.method", "GET".into()),
                s(
                    "url.full",
                    format!("https://recs.internal/v1/recommend?item={}", root_n % 1000),
                ),
            ],
        ),
        3 => (
            "GET cache",
            3,
            vec![
                s("db.system", "redis".into()),
                s("db.operation.name", "GET".into()),
            ],
        ),
        _ => (
            "render",
            1,
            vec![s("code.function.name", "render_item".into())],
        ),
    };
    let mut i = 0;
    while attrs.len() < attributes {
        attrs.push(s(
            &format!("app.attribute_{i}"),
            format!("value-{}-{i}", n % 97),
        ));
        i += 1;
    }
    attrs.truncate(attributes);
    Span {
        trace_id: root.trace_id,
        parent_span_id: root.span_id,
        span_id: (n | 1 << 63).to_be_bytes().to_vec(),
        name: name.into(),
        kind,
        start_time_unix_nano: now.saturating_sub(4_000_000),
        end_time_unix_nano: now.saturating_sub(1_000_000),
        attributes: attrs,
        ..Default::default()
    }
}

/// A typical server span: an HTTP route with `attributes` attributes, values varied by `n`.
pub fn typical_span(n: u64, attributes: usize, now: u64) -> Span {
    let mut trace_id = [0u8; 16];
    trace_id[..8].copy_from_slice(&n.wrapping_mul(0x9e37_79b9_7f4a_7c15).to_be_bytes());
    trace_id[8..].copy_from_slice(&(n | 1).to_be_bytes());
    let attr = |k: &str, v: Value| KeyValue {
        key: k.to_string(),
        value: Some(AnyValue { value: Some(v) }),
        ..Default::default()
    };
    let mut attrs = vec![
        attr("http.request.method", Value::StringValue("GET".into())),
        attr(
            "url.path",
            Value::StringValue(format!("/api/items/{}", n % 1000)),
        ),
        attr("http.response.status_code", Value::IntValue(200)),
        attr("server.address", Value::StringValue("shop.internal".into())),
        attr(
            "user_agent.original",
            Value::StringValue("Mozilla/5.0 (X11; Linux x86_64)".into()),
        ),
    ];
    let mut i = 0;
    while attrs.len() < attributes {
        attrs.push(attr(
            &format!("app.attribute_{i}"),
            Value::StringValue(format!("value-{}-{i}", n % 97)),
        ));
        i += 1;
    }
    attrs.truncate(attributes);
    Span {
        trace_id: trace_id.to_vec(),
        span_id: (n | 1 << 63).to_be_bytes().to_vec(),
        name: "GET /api/items/{id}".into(),
        kind: 2,
        start_time_unix_nano: now.saturating_sub(5_000_000),
        end_time_unix_nano: now,
        attributes: attrs,
        ..Default::default()
    }
}

fn build_request(
    shape: Shape,
    first: u64,
    count: usize,
    attributes: usize,
) -> ExportTraceServiceRequest {
    let now = now_nanos();
    let spans = (0..count as u64)
        .map(|i| load_span(shape, first + i, attributes, now))
        .collect();
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![KeyValue {
                    key: "service.name".into(),
                    value: Some(AnyValue {
                        value: Some(Value::StringValue("loadgen".into())),
                    }),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// Runs the load.
pub fn run(a: Args) -> anyhow::Result<ExitCode> {
    if a.concurrency == 0 || a.spans_per_request == 0 {
        bail!("--concurrency and --spans-per-request must be at least 1");
    }
    let ca =
        a.ca.clone()
            .unwrap_or_else(|| a.data.data_dir.join("tls").join("ca.pem"));
    let client = crate::cmd::query::https_client(Some(&ca))?;
    let signing = match (&a.sign_key, &a.source) {
        (Some(k), Some(s)) => Some(Arc::new(Signing {
            key: crate::cmd::sources::load_signer(k)?,
            source: s.clone(),
            first_seq: a.first_seq.unwrap_or(now_nanos() / 1000),
        })),
        _ => None,
    };
    let endpoint = a.config.url(
        a.endpoint.as_deref(),
        Listener::OtlpHttp,
        "https://localhost:4318",
    )?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let sent = Arc::new(AtomicU64::new(0));
    let busy = Arc::new(AtomicU64::new(0));
    let next = Arc::new(AtomicU64::new(0));
    let bytes = Arc::new(AtomicU64::new(0));
    let progress = Arc::new(Progress::items(
        "loadgen",
        Some(a.requests.saturating_mul(a.spans_per_request as u64)),
        "spans",
    ));
    let started = Instant::now();
    rt.block_on(async {
        let mut tasks = Vec::new();
        for _ in 0..a.concurrency {
            let (client, sent, busy, next, bytes, progress) = (
                client.clone(),
                sent.clone(),
                busy.clone(),
                next.clone(),
                bytes.clone(),
                progress.clone(),
            );
            let (endpoint, token) = (traces_url(&endpoint), a.token.clone());
            let signing = signing.clone();
            let (total, per, attrs, shape) =
                (a.requests, a.spans_per_request, a.attributes, a.shape);
            tasks.push(tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= total {
                        return Ok::<(), anyhow::Error>(());
                    }
                    let req = build_request(shape, i * per as u64, per, attrs);
                    let body = req.encode_to_vec();
                    bytes.fetch_add(body.len() as u64, Ordering::Relaxed);
                    loop {
                        let mut post = client
                            .post(&endpoint)
                            .bearer_auth(&token)
                            .header("content-type", "application/x-protobuf");
                        // Signed at each attempt: a retry after 429 is the same sequence
                        // (it was not accepted) with a fresh send time.
                        if let Some(s) = &signing {
                            for (k, v) in s.headers(i, &req)? {
                                post = post.header(k, v);
                            }
                        }
                        let r = post.body(body.clone()).send().await.context("sending")?;
                        match r.status().as_u16() {
                            200 => break,
                            429 | 503 => {
                                busy.fetch_add(1, Ordering::Relaxed);
                                tokio::time::sleep(Duration::from_millis(50)).await;
                            }
                            s => bail!(
                                "the server answered {s}: {}",
                                r.text().await.unwrap_or_default()
                            ),
                        }
                    }
                    sent.fetch_add(per as u64, Ordering::Relaxed);
                    progress.inc(per as u64);
                }
            }));
        }
        for t in tasks {
            t.await??;
        }
        Ok::<(), anyhow::Error>(())
    })?;
    progress.finish();
    let secs = started.elapsed().as_secs_f64();
    let spans = sent.load(Ordering::Relaxed);
    let rate = spans as f64 / secs;
    let bytes = bytes.load(Ordering::Relaxed);
    if a.json {
        println!(
            "{}",
            serde_json::json!({
                "spans": spans, "seconds": secs, "spans_per_second": rate,
                "request_bytes": bytes, "bytes_per_span": bytes as f64 / spans.max(1) as f64,
                "pushed_back": busy.load(Ordering::Relaxed),
                "signed": signing.is_some(),
                "shape": format!("{:?}", a.shape).to_lowercase(),
            })
        );
    } else {
        println!(
            "{spans} spans in {secs:.2}s: {rate:.0} spans/s ({:.0} OTLP bytes/span; {} requests pushed back{})",
            bytes as f64 / spans.max(1) as f64,
            busy.load(Ordering::Relaxed),
            if signing.is_some() { "; signed" } else { "" }
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The traces URL of an OTLP/HTTP endpoint given as a base URL or as the full URL, as the
/// OpenTelemetry SDKs read `OTEL_EXPORTER_OTLP_ENDPOINT`.
fn traces_url(endpoint: &str) -> String {
    let e = endpoint.trim_end_matches('/');
    if e.ends_with("/v1/traces") {
        e.to_string()
    } else {
        format!("{e}/v1/traces")
    }
}

#[cfg(test)]
mod endpoint_tests {
    use super::traces_url;

    #[test]
    fn base_and_full_urls() {
        for (given, want) in [
            ("https://h:4318", "https://h:4318/v1/traces"),
            ("https://h:4318/", "https://h:4318/v1/traces"),
            ("https://h:4318/v1/traces", "https://h:4318/v1/traces"),
            ("https://h/otlp", "https://h/otlp/v1/traces"),
        ] {
            assert_eq!(traces_url(given), want);
        }
    }
}
