//! The stage and the trace-correlated detectors.

mod common;

use std::sync::Arc;

use common::*;
use sentrace_core::proto::trace::v1::span::SpanKind;
use sentrace_core::{Batch, BatchContext, Identity, Role, Stage, TenantId};
use sentrace_detect::{DetectStage, Detector, MemorySink, RuleKind};

fn tenant() -> TenantId {
    TenantId::new("acme").unwrap()
}

#[test]
fn stage_emits_findings_with_principal_and_leaves_batch_unchanged() {
    let d = Arc::new(Detector::with_default_rules().unwrap());
    let sink = Arc::new(MemorySink::default());
    let stage = DetectStage::new(d, sink.clone());
    let identity = Identity::new(tenant(), "agent-7", Role::Ingest);
    let spans = vec![batch(
        "web",
        vec![server(1, 1, vec![kv("url.query", "f=../../etc/passwd")])],
    )];
    let mut b = Batch {
        context: BatchContext::new(identity, 5),
        resource_spans: spans.clone(),
    };
    stage.process(&mut b).unwrap();
    assert_eq!(b.resource_spans, spans);
    let f = sink.take();
    assert!(f.iter().any(|f| f.rule_id == "lfi-traversal"), "{f:?}");
    assert!(
        f.iter()
            .all(|f| f.subject.principal.as_deref() == Some("agent-7"))
    );
    assert_eq!(stage.name(), "detect");
}

fn correlated(spans: Vec<sentrace_core::proto::trace::v1::Span>) -> Vec<String> {
    let d = Detector::with_default_rules().unwrap();
    d.inspect(&tenant(), &[batch("shop", spans)], 1)
        .into_iter()
        .filter(|f| f.kind == RuleKind::Correlated)
        .map(|f| f.rule_id)
        .collect()
}

#[test]
fn sqli_confirmed_only_when_structure_changes() {
    let attack = correlated(vec![
        server(1, 1, vec![kv("url.query", "id=5%20OR%201%3D1")]),
        span(
            1,
            2,
            Some(1),
            SpanKind::Client,
            vec![kv(
                "db.statement",
                "SELECT * FROM items WHERE id = 5 OR 1=1",
            )],
        ),
    ]);
    assert_eq!(attack, ["corr-sqli-confirmed"]);
    let bound = correlated(vec![
        server(1, 1, vec![kv("url.query", "q=red-shoes")]),
        span(
            1,
            2,
            Some(1),
            SpanKind::Client,
            vec![kv(
                "db.statement",
                "SELECT * FROM items WHERE name = 'red-shoes'",
            )],
        ),
    ]);
    assert!(bound.is_empty(), "{bound:?}");
}

#[test]
fn ssrf_file_and_command_confirmed() {
    let ssrf = correlated(vec![
        server(
            2,
            1,
            vec![kv(
                "url.query",
                "img=http://169.254.169.254/latest/meta-data/",
            )],
        ),
        span(
            2,
            2,
            Some(1),
            SpanKind::Client,
            vec![kv("url.full", "http://169.254.169.254/latest/meta-data/")],
        ),
    ]);
    assert_eq!(ssrf, ["corr-ssrf-confirmed"]);
    let search_term = correlated(vec![
        server(2, 1, vec![kv("url.query", "q=shoes")]),
        span(
            2,
            2,
            Some(1),
            SpanKind::Client,
            vec![kv(
                "url.full",
                "https://search.internal.example/api?q=shoes",
            )],
        ),
    ]);
    assert!(search_term.is_empty(), "{search_term:?}");
    let file = correlated(vec![
        server(3, 1, vec![kv("url.query", "doc=../../etc/passwd")]),
        span(
            3,
            2,
            Some(1),
            SpanKind::Internal,
            vec![kv("file.path", "/srv/docs/../../etc/passwd")],
        ),
    ]);
    assert_eq!(file, ["corr-file-path"]);
    let cmd = correlated(vec![
        server(4, 1, vec![kv("http.request.body", "host=example.com;id")]),
        span(
            4,
            2,
            Some(1),
            SpanKind::Internal,
            vec![kv("process.command_line", "ping -c 1 example.com;id")],
        ),
    ]);
    assert_eq!(cmd, ["corr-command-line"]);
    let plain_arg = correlated(vec![
        server(4, 1, vec![kv("http.request.body", "host=example.com")]),
        span(
            4,
            2,
            Some(1),
            SpanKind::Internal,
            vec![kv("process.command_line", "ping -c 1 example.com")],
        ),
    ]);
    assert!(plain_arg.is_empty(), "{plain_arg:?}");
}

/// Correlated findings of one inspected batch, as `(rule, sink attribute)`.
fn correlated_in(
    d: &Detector,
    spans: Vec<sentrace_core::proto::trace::v1::Span>,
    now: u64,
) -> Vec<(String, String)> {
    d.inspect(&tenant(), &[batch("shop", spans)], now)
        .into_iter()
        .filter(|f| f.kind == RuleKind::Correlated)
        .map(|f| (f.rule_id, f.evidences[1].attribute.clone()))
        .collect()
}

#[test]
fn correlation_across_batches_in_either_order() {
    let s = 1_000_000_000u64;
    let db = |trace: u8| {
        span(
            trace,
            2,
            Some(1),
            SpanKind::Client,
            vec![kv(
                "db.statement",
                "SELECT * FROM users WHERE name = 'x' OR '1'='1'",
            )],
        )
    };
    let entry = |trace: u8| {
        server(
            trace,
            1,
            vec![kv("url.query", "name=x%27%20OR%20%271%27%3D%271")],
        )
    };

    // The database span ended first and left in an earlier batch than its server span.
    let d = Detector::with_default_rules().unwrap();
    assert!(correlated_in(&d, vec![db(7)], s).is_empty(), "no entry yet");
    assert_eq!(
        correlated_in(&d, vec![entry(7)], 2 * s),
        [(
            "corr-sqli-confirmed".to_string(),
            "db.statement".to_string()
        )]
    );
    // A later batch of the same trace does not report the pair again.
    let other = span(7, 9, Some(1), SpanKind::Internal, vec![]);
    assert!(correlated_in(&d, vec![other], 3 * s).is_empty());

    // The server span first (its input is suspicious, so it is remembered), the sink later
    // through an intermediate span that was exported with the entry.
    let d = Detector::with_default_rules().unwrap();
    let mid = span(8, 3, Some(1), SpanKind::Internal, vec![]);
    assert!(correlated_in(&d, vec![entry(8), mid], s).is_empty());
    let mut sink = db(8);
    sink.parent_span_id = vec![3; 8];
    assert_eq!(
        correlated_in(&d, vec![sink], 2 * s),
        [(
            "corr-sqli-confirmed".to_string(),
            "db.statement".to_string()
        )]
    );

    // Forgotten after the time-to-live: no pairing with a stale half.
    let d = Detector::with_default_rules().unwrap();
    assert!(correlated_in(&d, vec![db(9)], s).is_empty());
    let late = s + sentrace_detect::memory::TTL_NANOS + 1;
    assert!(correlated_in(&d, vec![entry(9)], late).is_empty());

    // A bound parameter stays clean across batches too.
    let d = Detector::with_default_rules().unwrap();
    let bound = span(
        10,
        2,
        Some(1),
        SpanKind::Client,
        vec![kv(
            "db.statement",
            "SELECT * FROM users WHERE name = 'O''Brien'",
        )],
    );
    assert!(correlated_in(&d, vec![bound], s).is_empty());
    assert!(
        correlated_in(
            &d,
            vec![server(10, 1, vec![kv("url.query", "name=O%27Brien")])],
            2 * s
        )
        .is_empty()
    );
}
