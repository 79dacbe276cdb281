//! Learned field context, measured: the realistic benign sets with and without a learning
//! period, and recall on injections placed in the learned fields and beside them.
//!
//! Learning: `n` requests of each realistic set (`realistic.rs`, seeded) from 500 client
//! addresses spread over two hours of span time, through a detector with the default
//! `[context]` (20 distinct sources, one hour, 5% of values). Measurement: `n` new requests
//! of each set (another seed, new client addresses, after the learning period). A request
//! is a false positive when it raises a finding at confidence 40 or more (what reaches
//! sinks and response; downgraded findings are 20).
//!
//! Recall: every CRS payload (the input value of a positive test that the context-free
//! detector flags in the test's family) is sent to the CI, CMS and paste services after
//! learning, once in a field that never carried shell, HTML or code (`ref`, `title`, `id`)
//! and once in the learned field (`script`, `html`, `content`), to the learned detector and
//! to a fresh one.
#![allow(dead_code)]

use std::collections::BTreeMap;

use sentrace_core::TenantId;
use sentrace_core::proto::common::v1::{AnyValue, KeyValue, any_value::Value};
use sentrace_core::proto::resource::v1::Resource;
use sentrace_core::proto::trace::v1::{ResourceSpans, ScopeSpans, Span, span::SpanKind};
use sentrace_detect::{Detector, Family, RuleKind};

use super::realistic::{Realistic, Set};

const SEC: u64 = 1_000_000_000;
const T0: u64 = 1_700_000_000 * SEC;
/// Span time covered by the learning period.
const LEARN_SECS: u64 = 2 * 3600;
/// Confidence from which a finding is raised (sent to sinks and response).
pub const RAISED: u8 = 40;

fn kv(k: &str, v: &str) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: Some(AnyValue {
            value: Some(Value::StringValue(v.into())),
        }),
        ..Default::default()
    }
}

/// A server span of `service` with `attrs`, from `client`, at `at`.
fn span(
    n: u64,
    service: &str,
    attrs: &[(String, String)],
    client: &str,
    at: u64,
) -> Vec<ResourceSpans> {
    let mut trace = [0u8; 16];
    trace[..8].copy_from_slice(&(n + 1).to_be_bytes());
    trace[8] = 0xc7;
    let mut kvs: Vec<KeyValue> = attrs.iter().map(|(k, v)| kv(k, v)).collect();
    kvs.push(kv("client.address", client));
    vec![ResourceSpans {
        resource: Some(Resource {
            attributes: vec![kv("service.name", service)],
            ..Default::default()
        }),
        scope_spans: vec![ScopeSpans {
            spans: vec![Span {
                trace_id: trace.to_vec(),
                span_id: (n + 1).to_be_bytes().to_vec(),
                kind: SpanKind::Server as i32,
                start_time_unix_nano: at,
                end_time_unix_nano: at + 1000,
                attributes: kvs,
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    }]
}

/// Highest confidence per family of the payload findings of one request.
fn scores(d: &Detector, t: &TenantId, rs: &[ResourceSpans], now: u64) -> BTreeMap<Family, u8> {
    let mut m = BTreeMap::new();
    for f in d.inspect(t, rs, now) {
        if f.kind != RuleKind::Behavioral {
            let e = m.entry(f.family).or_insert(0);
            *e = (*e).max(f.confidence);
        }
    }
    m
}

/// Highest confidence per family of the payload findings of one request, and the raised
/// ones as `rule (confidence) attribute "snippet"` for `--fps`.
fn scores_and_rules(
    d: &Detector,
    t: &TenantId,
    rs: &[ResourceSpans],
    now: u64,
) -> (BTreeMap<Family, u8>, Vec<String>) {
    let mut m = BTreeMap::new();
    let mut raised = Vec::new();
    for f in d.inspect(t, rs, now) {
        if f.kind == RuleKind::Behavioral {
            continue;
        }
        let e = m.entry(f.family).or_insert(0);
        *e = (*e).max(f.confidence);
        if f.confidence >= RAISED {
            let snippet = f
                .evidences
                .first()
                .map(|e| format!("{:?}", e.snippet))
                .unwrap_or_default();
            raised.push(format!("{} ({}) {snippet}", f.rule_id, f.confidence));
        }
    }
    (m, raised)
}

/// A detector whose field context is off (it learns nothing while it is measured).
fn no_context() -> Detector {
    let mut rs = sentrace_detect::Ruleset::default_ruleset().expect("default rules");
    rs.context.learn = false;
    Detector::new(rs).expect("default rules")
}

fn service_of(set: Set) -> &'static str {
    match set {
        Set::Ci => "ci",
        Set::Cms => "cms",
        Set::Markdown => "docs",
        Set::Code => "paste",
        Set::Prose => "support",
        Set::Db => "reports",
    }
}

fn pct(a: usize, b: usize) -> String {
    if b == 0 {
        "-".into()
    } else {
        format!("{:.3}% ({a})", 100.0 * a as f64 / b as f64)
    }
}

/// Runs the learning period on `d` and returns the span time after it.
pub fn learn(d: &Detector, t: &TenantId, seed: u64, n: usize) -> u64 {
    let sets = [Set::Ci, Set::Cms, Set::Markdown, Set::Code, Set::Prose];
    let step = LEARN_SECS * SEC / n.max(1) as u64;
    let mut k = 0u64;
    for set in sets {
        let mut g = Realistic::new(seed ^ 0x1ea7);
        for i in 0..n as u64 {
            let (attrs, _) = g.request(set);
            let client = format!("192.0.{}.{}", (i % 500) / 250, i % 250);
            let at = T0 + i * step;
            d.inspect(t, &span(k, service_of(set), &attrs, &client, at), at);
            k += 1;
        }
    }
    T0 + LEARN_SECS * SEC + SEC
}

/// The realistic-set table: FPR (raised findings) without and with learned context.
pub fn report_sets(seed: u64, n: usize, show_fps: bool) {
    let t = TenantId::new("eval").expect("tenant");
    let fresh = no_context();
    let learned = Detector::with_default_rules().expect("default rules");
    let after = learn(&learned, &t, seed, n);
    println!(
        "\n## Learned field context ({n} learning requests per set from 500 clients over 2 h; {n} new requests measured; raised = confidence >= {RAISED})\n"
    );
    println!("| set | FPR without context | FPR after learning | downgraded findings |");
    println!("|---|---|---|---|");
    let mut k = 1u64 << 40;
    for set in [Set::Ci, Set::Cms, Set::Markdown, Set::Code, Set::Prose] {
        let mut g = Realistic::new(seed ^ 0x5eed);
        let (mut fp0, mut fp1, mut low) = (0, 0, 0);
        for i in 0..n as u64 {
            let (attrs, _) = g.request(set);
            let client = format!("198.18.{}.{}", (i % 1000) / 250, i % 250);
            let rs = span(k, service_of(set), &attrs, &client, after + i * SEC);
            k += 1;
            let s0 = scores(&fresh, &t, &rs, after);
            let (s1, rules) = scores_and_rules(&learned, &t, &rs, after);
            if show_fps && !rules.is_empty() {
                println!("FP after learning [{}] {}", set.name(), rules.join(" | "));
            }
            fp0 += usize::from(s0.values().any(|c| *c >= RAISED));
            fp1 += usize::from(s1.values().any(|c| *c >= RAISED));
            low += usize::from(!s1.is_empty() && s1.values().all(|c| *c < RAISED));
        }
        println!(
            "| {} | {} | {} | {} |",
            set.name(),
            pct(fp0, n),
            pct(fp1, n),
            pct(low, n)
        );
    }
}

/// Recall on CRS payloads placed beside and in the learned fields, per family.
pub fn report_recall(seed: u64, n: usize, payloads: &[(Family, String)]) {
    let t = TenantId::new("eval").expect("tenant");
    let fresh = no_context();
    let learned = Detector::with_default_rules().expect("default rules");
    let after = learn(&learned, &t, seed, n);
    let mut g = Realistic::new(seed ^ 0xfeed);
    // family -> [placement] -> (payloads, detected without, detected with)
    let mut by_family: BTreeMap<Family, [(usize, usize, usize); 6]> = BTreeMap::new();
    let placements = [
        "CI `ref`",
        "CMS `title`",
        "paste `id`",
        "CI `script`",
        "CMS `html`",
        "paste `content`",
    ];
    let mut k = 1u64 << 41;
    for (family, p) in payloads {
        let (ci, _) = g.request(Set::Ci);
        let (cms, _) = g.request(Set::Cms);
        let (paste, _) = g.request(Set::Code);
        let body_of = |attrs: &[(String, String)]| {
            attrs
                .iter()
                .find(|(k, _)| k == "http.request.body")
                .and_then(|(_, v)| serde_json::from_str::<serde_json::Value>(v).ok())
                .unwrap_or_default()
        };
        let (mut ci_ref, mut cms_title, mut paste_id) =
            (body_of(&ci), body_of(&cms), body_of(&paste));
        ci_ref["ref"] = p.as_str().into();
        cms_title["title"] = p.as_str().into();
        paste_id["id"] = p.as_str().into();
        let bodies = [
            (Set::Ci, ci_ref),
            (Set::Cms, cms_title),
            (Set::Code, paste_id),
            (Set::Ci, serde_json::json!({"script": p, "id": 42})),
            (Set::Cms, serde_json::json!({"html": p, "id": 42})),
            (Set::Code, serde_json::json!({"content": p, "id": 42})),
        ];
        let e = by_family.entry(*family).or_default();
        for (i, (set, body)) in bodies.into_iter().enumerate() {
            let attrs = match set {
                Set::Ci => &ci,
                Set::Cms => &cms,
                _ => &paste,
            };
            let mut attrs = attrs.clone();
            for a in &mut attrs {
                if a.0 == "http.request.body" {
                    a.1 = body.to_string();
                }
            }
            let rs = span(k, service_of(set), &attrs, "203.0.113.9", after);
            k += 1;
            let hit = |d: &Detector| {
                scores(d, &t, &rs, after)
                    .get(family)
                    .is_some_and(|c| *c >= RAISED)
            };
            e[i].0 += 1;
            e[i].1 += usize::from(hit(&fresh));
            e[i].2 += usize::from(hit(&learned));
        }
    }
    println!(
        "\n### Recall on CRS payloads after learning ({} payloads; detected = raised in the payload's family; without context / with)\n",
        payloads.len()
    );
    println!("| family | payloads | {} |", placements.join(" | "));
    println!("|---|---|---|---|---|---|---|---|");
    let mut total = [(0, 0, 0); 6];
    for (f, e) in &by_family {
        let cells: Vec<String> = e
            .iter()
            .map(|(n, a, b)| format!("{} / {}", short(*a, *n), short(*b, *n)))
            .collect();
        println!("| {f} | {} | {} |", e[0].0, cells.join(" | "));
        for i in 0..6 {
            total[i].0 += e[i].0;
            total[i].1 += e[i].1;
            total[i].2 += e[i].2;
        }
    }
    let cells: Vec<String> = total
        .iter()
        .map(|(n, a, b)| format!("{} / {}", short(*a, *n), short(*b, *n)))
        .collect();
    println!("| **all** | {} | {} |", total[0].0, cells.join(" | "));
}

fn short(a: usize, b: usize) -> String {
    if b == 0 {
        "-".into()
    } else {
        format!("{:.1}%", 100.0 * a as f64 / b as f64)
    }
}
