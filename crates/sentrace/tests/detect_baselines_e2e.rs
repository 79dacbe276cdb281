//! Behavioral baselines survive a restart, on the real binary (issue #16, part 3): a
//! service warms up by evidence (spans, distinct traces, covered span time); the server is
//! killed (no shutdown code) after a periodic save, and a new edge sent right after the
//! restart is reported, with no new warm-up. A graceful restart keeps what was learned in
//! between (the shutdown save), and the baselines are encrypted at rest.

mod common;

use std::time::{Duration, Instant};

use common::{Server, hex, kv, request, span};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::Span;

const SEC: u64 = 1_000_000_000;

/// Trace `n`: `frontend` (route /checkout) calls `callee`, starting `ago` seconds ago.
fn call(n: u64, ago: u64, callee: &str) -> (ExportTraceServiceRequest, String) {
    let mut root = span(n, "GET /checkout");
    root.start_time_unix_nano -= ago * SEC;
    root.end_time_unix_nano -= ago * SEC;
    root.attributes = vec![
        kv("http.request.method", "GET"),
        kv("http.route", "/checkout"),
        kv("url.path", "/checkout"),
    ];
    let child = Span {
        span_id: (n + 1_000_000).to_be_bytes().to_vec(),
        parent_span_id: root.span_id.clone(),
        name: "charge".into(),
        attributes: vec![],
        ..root.clone()
    };
    let trace = hex(&root.trace_id);
    let mut req = request("frontend", vec![root]);
    req.resource_spans
        .extend(request(callee, vec![child]).resource_spans);
    (req, trace)
}

/// Merges requests into one export.
fn merged(reqs: Vec<ExportTraceServiceRequest>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: reqs.into_iter().flat_map(|r| r.resource_spans).collect(),
    }
}

fn export(srv: &Server, token: &str, req: &ExportTraceServiceRequest) {
    let r = srv.post_proto(token, req);
    assert_eq!(r.status().as_u16(), 200, "export failed");
}

/// Lateral-movement (new edge) findings with evidence in `trace`.
fn new_edges(srv: &Server, token: &str, trace: &str) -> Vec<serde_json::Value> {
    let r = srv.get(
        token,
        &format!("/api/findings?family=lateral_movement&trace_id={trace}"),
    );
    assert_eq!(r.status().as_u16(), 200);
    let v: serde_json::Value = r.json().unwrap();
    v["data"].as_array().cloned().unwrap_or_default()
}

#[test]
fn restart_needs_no_new_warmup_and_reports_a_new_edge_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("tenant-rules");
    std::fs::create_dir(&rules).unwrap();
    // The tenant's services warm up after 30 spans from 30 traces covering 30 s.
    std::fs::write(
        rules.join("acme.toml"),
        "[behavior]\nwarmup_secs = 30\nwarmup_min_spans = 30\nwarmup_min_sources = 30\n",
    )
    .unwrap();
    let mut srv = Server::new(&format!(
        "[detect]\ntenant_rules_dir = \"{}\"\n[detect.baselines]\npersist_interval_secs = 1\n",
        rules.display()
    ));
    srv.launch();
    let ingest = srv.token("acme", "ingest");
    let read = srv.token("acme", "read");

    // 1. Learning: 40 traces over the last minute, frontend -> cart. The first sighting of
    //    the edge came while frontend had no evidence: learned, not reported.
    let (first, first_trace) = call(1, 60, "cart");
    let rest: Vec<_> = (2..=40u64).map(|i| call(i, 60 - i, "cart").0).collect();
    let mut all = vec![first];
    all.extend(rest);
    export(&srv, &ingest, &merged(all));
    assert!(new_edges(&srv, &read, &first_trace).is_empty());

    // 2. A periodic save writes the tenant's baselines, encrypted.
    let file = srv.data.join("baselines").join("acme.journal");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !file.exists() {
        assert!(
            Instant::now() < deadline,
            "no baselines saved; log:\n{}",
            srv.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let raw = std::fs::read(&file).unwrap();
    assert!(
        !raw.windows(8).any(|w| w == b"frontend"),
        "baselines are encrypted at rest"
    );

    // 3. Killed mid-scenario (no shutdown code runs), started again.
    srv.kill9();
    srv.launch();

    // 4. Right after the restart: a known edge is quiet, a new edge is reported.
    let (known, known_trace) = call(41, 0, "cart");
    export(&srv, &ingest, &known);
    assert!(new_edges(&srv, &read, &known_trace).is_empty());
    let (novel, novel_trace) = call(42, 0, "payments");
    export(&srv, &ingest, &novel);
    let f = new_edges(&srv, &read, &novel_trace);
    assert_eq!(f.len(), 1, "the new edge after a restart is reported");
    assert!(
        f[0].to_string().contains("frontend -> payments"),
        "{}",
        f[0]
    );

    // 5. A graceful restart keeps what was learned since (the shutdown save): the edge
    //    to payments is known now, and another new one is still reported at once.
    srv.stop();
    srv.launch();
    assert!(
        srv.log().contains("behavioral baselines restored"),
        "{}",
        srv.log()
    );
    let (again, again_trace) = call(43, 0, "payments");
    export(&srv, &ingest, &again);
    assert!(new_edges(&srv, &read, &again_trace).is_empty());
    let (other, other_trace) = call(44, 0, "ledger");
    export(&srv, &ingest, &other);
    assert_eq!(new_edges(&srv, &read, &other_trace).len(), 1);
}
