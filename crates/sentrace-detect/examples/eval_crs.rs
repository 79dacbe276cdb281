//! Payload detection on the OWASP CRS regression corpus and on generated benign traffic.
//!
//! `cargo run --release -p sentrace-detect --example eval_crs -- [--benign N] [--seed S]
//!  [--misses FAMILY|all] [--fps] [--payloads DIR] [--list-misses] [--realistic N]`
//!
//! Each CRS test (go-ftw YAML) becomes one HTTP server span: method, `url.path`,
//! `url.query`, `user_agent.original`, `http.request.header.<name>` and
//! `http.request.body`. Tests with `expect_ids` in an attack family are attacks; tests with
//! `no_expect_ids` are near-miss negatives (reported, not used for the FPR). The FPR comes
//! from N seeded benign spans. For each family the report gives the TPR at the lowest
//! confidence threshold whose benign FPR is at most 0.1% and 1%, and libinjection
//! (`libinjectionrs`) on SQLi and XSS on the same decoded inputs.
//!
//! Two more reports follow. `--payloads DIR` reads public payload lists (one payload a
//! line, a sub-folder per family; `support/payload_lists.rs`) and gives per list the share
//! detected in its family and in any family, at the thresholds picked above. And
//! `--realistic N` (default 10,000) generates N requests of each realistic benign set
//! (`support/realistic.rs`: CI scripts, CMS HTML with iframes, markdown, code snippets,
//! prose, SQL in DB spans) and gives each set's FPR with every rule on and at the pooled
//! 0.1% threshold. Then learned field context (`support/context_eval.rs`): the same sets
//! after a learning period, and recall on CRS payloads placed in and beside the learned
//! fields, with and without context (`--no-context-eval` skips it).

#[path = "support/benign.rs"]
mod benign;
#[path = "support/context_eval.rs"]
mod context_eval;
#[path = "support/not_attacks.rs"]
mod not_attacks;
#[path = "support/payload_lists.rs"]
mod payload_lists;
#[path = "support/realistic.rs"]
mod realistic;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use sentrace_core::TenantId;
use sentrace_core::proto::common::v1::{AnyValue, KeyValue, any_value::Value};
use sentrace_core::proto::resource::v1::Resource;
use sentrace_core::proto::trace::v1::{ResourceSpans, ScopeSpans, Span, span::SpanKind};
use sentrace_detect::payload::extract;
use sentrace_detect::{Detector, Family, RuleKind, normalize};

type Attrs = Vec<(String, String)>;
/// A case, its per-family scores, and libinjection's (SQLi, XSS) verdicts.
type Scored<'a> = (&'a Case, BTreeMap<Family, u8>, (bool, bool));

struct Case {
    rule: u64,
    family: Family,
    positive: bool,
    id: String,
    attrs: Attrs,
}

fn corpus_dir() -> Option<PathBuf> {
    let candidates = [std::env::var("SENTRACE_CORPORA").ok().map(PathBuf::from)];
    candidates
        .into_iter()
        .flatten()
        .map(|p| p.join("crs-regression"))
        .find(|p| p.is_dir())
}

/// CRS rule id to our family; `None` for rule groups outside the attack families.
fn family_of(rule: u64) -> Option<Family> {
    // CRS files MongoDB operator injection (942290) under SQLi; it is a NoSQL query
    // injection, the family our detector reports it as (as 934210/220 below).
    if rule == 942290 {
        return Some(Family::Nosql);
    }
    // LDAP injection is one rule of CRS's protocol-attack group.
    if rule == 921200 {
        return Some(Family::Ldap);
    }
    Some(match rule / 1000 {
        930 => Family::PathTraversal,
        931 => Family::Ssrf,
        932 => Family::Cmdi,
        933 => Family::CodeInjection,
        941 => Family::Xss,
        942 => Family::Sqli,
        944 => Family::Jndi,
        934 => match rule {
            934110 | 934120 | 934190 => Family::Ssrf,
            934180 | 934200 => Family::Ssti,
            // ORM lookup-operator injection (Django `__startswith`, ...): query injection.
            934210 | 934220 => Family::Nosql,
            _ => Family::CodeInjection,
        },
        _ => return None,
    })
}

fn yaml_str(v: &serde_norway::Value) -> Option<String> {
    match v {
        serde_norway::Value::String(s) => Some(s.clone()),
        serde_norway::Value::Number(n) => Some(n.to_string()),
        serde_norway::Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn load_cases(dir: &Path) -> Vec<Case> {
    let mut out = Vec::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .flat_map(|d| {
            std::fs::read_dir(d)
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.path())
        })
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    for f in files {
        let Ok(text) = std::fs::read_to_string(&f) else {
            continue;
        };
        let Ok(doc) = serde_norway::from_str::<serde_norway::Value>(&text) else {
            continue;
        };
        let Some(rule) = doc.get("rule_id").and_then(|v| v.as_u64()) else {
            continue;
        };
        let Some(family) = family_of(rule) else {
            continue;
        };
        let Some(tests) = doc.get("tests").and_then(|t| t.as_sequence()) else {
            continue;
        };
        for t in tests {
            let tid = t.get("test_id").and_then(yaml_str).unwrap_or_default();
            let Some(stages) = t.get("stages").and_then(|s| s.as_sequence()) else {
                continue;
            };
            for st in stages {
                let (Some(input), Some(log)) =
                    (st.get("input"), st.get("output").and_then(|o| o.get("log")))
                else {
                    continue;
                };
                let nonempty = |k: &str| {
                    log.get(k)
                        .and_then(|v| v.as_sequence())
                        .is_some_and(|s| !s.is_empty())
                };
                let positive = nonempty("expect_ids");
                if !positive && !nonempty("no_expect_ids") {
                    continue;
                }
                if input.get("encoded_request").is_some() {
                    continue;
                }
                let mut attrs: Attrs = Vec::new();
                let method = input
                    .get("method")
                    .and_then(yaml_str)
                    .unwrap_or_else(|| "GET".into());
                attrs.push(("http.request.method".into(), method));
                let uri = input
                    .get("uri")
                    .and_then(yaml_str)
                    .unwrap_or_else(|| "/".into());
                let (path, query) = uri.split_once('?').unwrap_or((&uri, ""));
                attrs.push(("url.path".into(), path.to_string()));
                if !query.is_empty() {
                    attrs.push(("url.query".into(), query.to_string()));
                }
                if let Some(h) = input.get("headers").and_then(|h| h.as_mapping()) {
                    for (k, v) in h {
                        let (Some(k), Some(v)) = (yaml_str(k), yaml_str(v)) else {
                            continue;
                        };
                        let k = k.to_ascii_lowercase();
                        if k == "user-agent" {
                            attrs.push(("user_agent.original".into(), v));
                        } else {
                            attrs.push((format!("http.request.header.{k}"), v));
                        }
                    }
                }
                if let Some(d) = input.get("data").and_then(yaml_str) {
                    attrs.push(("http.request.body".into(), d));
                }
                out.push(Case {
                    rule,
                    family,
                    positive,
                    id: format!("{rule}-{tid}"),
                    attrs,
                });
            }
        }
    }
    out
}

fn to_span(attrs: &Attrs, n: u64) -> Vec<ResourceSpans> {
    to_trace(attrs, None, n)
}

/// A server span with `attrs`, and a child database client span running `db` if given.
fn to_trace(attrs: &Attrs, db: Option<&str>, n: u64) -> Vec<ResourceSpans> {
    let kv = |k: &str, v: &str| KeyValue {
        key: k.into(),
        value: Some(AnyValue {
            value: Some(Value::StringValue(v.into())),
        }),
        ..Default::default()
    };
    let mut trace = [0u8; 16];
    trace[..8].copy_from_slice(&(n + 1).to_be_bytes());
    let server_id = (n + 1).to_be_bytes().to_vec();
    let child = db.map(|stmt| Span {
        trace_id: trace.to_vec(),
        span_id: (n + 1 + (1 << 62)).to_be_bytes().to_vec(),
        parent_span_id: server_id.clone(),
        kind: SpanKind::Client as i32,
        start_time_unix_nano: 1_700_000_000_000_000_001,
        attributes: vec![kv("db.system", "postgresql"), kv("db.statement", stmt)],
        ..Default::default()
    });
    vec![ResourceSpans {
        resource: Some(Resource {
            attributes: vec![kv("service.name", "web")],
            ..Default::default()
        }),
        scope_spans: vec![ScopeSpans {
            spans: std::iter::once(Span {
                trace_id: trace.to_vec(),
                span_id: server_id,
                kind: SpanKind::Server as i32,
                start_time_unix_nano: 1_700_000_000_000_000_000,
                attributes: attrs.iter().map(|(k, v)| kv(k, v)).collect(),
                ..Default::default()
            })
            .chain(child)
            .collect(),
            ..Default::default()
        }],
        ..Default::default()
    }]
}

/// Highest payload-finding confidence per family for one span (0 = no finding).
fn score(d: &Detector, t: &TenantId, attrs: &Attrs, n: u64) -> BTreeMap<Family, u8> {
    score_trace(d, t, &to_span(attrs, n))
}

/// Highest finding confidence per family for one trace: payload findings, and
/// correlated ones (a child span that the input reached).
fn score_trace(d: &Detector, t: &TenantId, rs: &[ResourceSpans]) -> BTreeMap<Family, u8> {
    let mut m = BTreeMap::new();
    for f in d.inspect(t, rs, 1) {
        if f.kind != RuleKind::Behavioral {
            let e = m.entry(f.family).or_insert(0);
            *e = (*e).max(f.confidence);
        }
    }
    m
}

fn libinjection(attrs: &Attrs) -> (bool, bool) {
    let kvs: Vec<KeyValue> = attrs
        .iter()
        .map(|(k, v)| KeyValue {
            key: k.clone(),
            value: Some(AnyValue {
                value: Some(Value::StringValue(v.clone())),
            }),
            ..Default::default()
        })
        .collect();
    let mut sqli = false;
    let mut xss = false;
    for i in extract::inputs(&kvs) {
        let v = normalize::decode(&i.raw);
        sqli |= libinjectionrs::detect_sqli(v.as_bytes()).is_injection();
        xss |= libinjectionrs::detect_xss(v.as_bytes()).is_injection();
    }
    (sqli, xss)
}

fn pct(a: usize, b: usize) -> String {
    if b == 0 {
        "-".into()
    } else {
        format!("{:.1}%", 100.0 * a as f64 / b as f64)
    }
}

/// A share with three decimals (false-positive rates near the 0.1% target).
fn pct_fine(a: usize, b: usize) -> String {
    if b == 0 {
        "-".into()
    } else {
        format!("{:.3}% ({a})", 100.0 * a as f64 / b as f64)
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let n_benign: usize = arg("--benign")
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let seed: u64 = arg("--seed").and_then(|v| v.parse().ok()).unwrap_or(7);
    let show_misses = arg("--misses");
    let show_fps = args.iter().any(|a| a == "--fps");
    if let Some(v) = arg("--explain") {
        let d = Detector::with_default_rules().expect("default rules");
        let t = TenantId::new("eval").expect("tenant");
        println!("normalized: {:?}", normalize::normalize(&v));
        for (r, why) in d.scan_value(&t, &v) {
            println!("{} ({}): {why}", r.id, r.family);
        }
        return;
    }
    let Some(dir) = corpus_dir() else {
        println!(
            "crs-regression corpus not found: set SENTRACE_CORPORA to a folder holding crs-regression/ (the OWASP CoreRuleSet regression tests, tests/regression/tests of coreruleset/coreruleset); skipping"
        );
        return;
    };
    let d = Detector::with_default_rules().expect("default rules");
    let t = TenantId::new("eval").expect("tenant");
    let cases = load_cases(&dir);

    // Benign traffic.
    let mut generator = benign::Benign::new(seed);
    let mut benign_scores = Vec::with_capacity(n_benign);
    let (mut li_sqli_fp, mut li_xss_fp) = (0, 0);
    let start = std::time::Instant::now();
    for i in 0..n_benign {
        let attrs = generator.request();
        let s = score(&d, &t, &attrs, i as u64);
        if show_fps && !s.is_empty() {
            println!("FP {s:?} {attrs:?}");
        }
        let (a, b) = libinjection(&attrs);
        li_sqli_fp += usize::from(a);
        li_xss_fp += usize::from(b);
        benign_scores.push(s);
    }
    let benign_secs = start.elapsed().as_secs_f64();

    let scored: Vec<Scored<'_>> = cases
        .iter()
        .enumerate()
        .map(|(i, c)| (c, score(&d, &t, &c.attrs, i as u64), libinjection(&c.attrs)))
        .collect();

    let families: Vec<Family> = {
        let mut f: Vec<Family> = cases.iter().map(|c| c.family).collect();
        f.sort();
        f.dedup();
        f
    };
    let thresholds: Vec<u8> = (0..=101).collect();
    // Lowest threshold (>=1) whose benign FPR for `fam` (None = any family) is <= limit.
    let pick = |fam: Option<Family>, limit: f64| -> u8 {
        for &th in &thresholds[1..] {
            let fp = benign_scores
                .iter()
                .filter(|s| match fam {
                    Some(f) => s.get(&f).is_some_and(|c| *c >= th),
                    None => s.values().any(|c| *c >= th),
                })
                .count();
            if (fp as f64) <= limit * n_benign as f64 {
                return th;
            }
        }
        101
    };
    println!(
        "# Payload detection: CRS regression ({} cases) + {} benign spans (seed {seed})\n",
        cases.len(),
        n_benign
    );
    println!(
        "benign scan: {:.0} spans/s (with libinjection alongside)\n",
        n_benign as f64 / benign_secs
    );
    println!(
        "| family | attacks | TPR @FPR<=0.1% (thr) | TPR @FPR<=1% (thr) | benign FPR @0.1% thr | near-miss flagged | libinjection TPR | libinjection benign FPR |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    let (mut all_pos, mut all_hit01, mut all_hit1) = (0, 0, 0);
    for fam in &families {
        let pos: Vec<_> = scored
            .iter()
            .filter(|(c, _, _)| c.positive && c.family == *fam)
            .collect();
        let neg: Vec<_> = scored
            .iter()
            .filter(|(c, _, _)| !c.positive && c.family == *fam)
            .collect();
        let t01 = pick(Some(*fam), 0.001);
        let t1 = pick(Some(*fam), 0.01);
        let hit = |th: u8| {
            pos.iter()
                .filter(|(_, s, _)| s.get(fam).is_some_and(|c| *c >= th))
                .count()
        };
        let fp01 = benign_scores
            .iter()
            .filter(|s| s.get(fam).is_some_and(|c| *c >= t01))
            .count();
        let nm = neg
            .iter()
            .filter(|(_, s, _)| s.get(fam).is_some_and(|c| *c >= t01))
            .count();
        let (li_tpr, li_fpr) = match fam {
            Family::Sqli => (
                pct(pos.iter().filter(|(_, _, l)| l.0).count(), pos.len()),
                pct(li_sqli_fp, n_benign),
            ),
            Family::Xss => (
                pct(pos.iter().filter(|(_, _, l)| l.1).count(), pos.len()),
                pct(li_xss_fp, n_benign),
            ),
            _ => ("-".into(), "-".into()),
        };
        println!(
            "| {fam} | {} | {} ({t01}) | {} ({t1}) | {} | {} of {} | {li_tpr} | {li_fpr} |",
            pos.len(),
            pct(hit(t01), pos.len()),
            pct(hit(t1), pos.len()),
            pct(fp01, n_benign),
            nm,
            neg.len()
        );
        all_pos += pos.len();
        all_hit01 += hit(t01);
        all_hit1 += hit(t1);
        if show_misses
            .as_deref()
            .is_some_and(|m| m == fam.as_str() || m == "all")
        {
            for (c, s, _) in &pos {
                if s.get(fam).is_none_or(|c| *c < t01) {
                    let kvs: Vec<KeyValue> = c
                        .attrs
                        .iter()
                        .map(|(k, v)| KeyValue {
                            key: k.clone(),
                            value: Some(AnyValue {
                                value: Some(Value::StringValue(v.clone())),
                            }),
                            ..Default::default()
                        })
                        .collect();
                    let vals: Vec<String> = extract::inputs(&kvs)
                        .into_iter()
                        .map(|i| normalize::decode(&i.raw))
                        .filter(|v| {
                            !matches!(
                                v.as_str(),
                                "/post"
                                    | "/get"
                                    | "OWASP CRS test agent"
                                    | "localhost"
                                    | "application/x-www-form-urlencoded"
                            )
                        })
                        .collect();
                    println!("MISS {} {:?} {:?}", c.id, s, vals);
                }
            }
        }
    }
    println!(
        "| **all (same family)** | {all_pos} | {} | {} | | | | |",
        pct(all_hit01, all_pos),
        pct(all_hit1, all_pos)
    );
    // Second figure: without the rules listed in `support/not_attacks.rs`.
    let excluded = |c: &Case| not_attacks::NOT_ATTACKS.iter().any(|(r, _)| *r == c.rule);
    println!(
        "\nWithout the {} rules whose payloads are not attacks (examples/support/not_attacks.rs):\n",
        not_attacks::NOT_ATTACKS.len()
    );
    println!("| family | attacks kept (excluded) | TPR @FPR<=0.1% | TPR @FPR<=1% |");
    println!("|---|---|---|---|");
    let (mut kept_all, mut kept_hit01, mut kept_hit1) = (0, 0, 0);
    for fam in &families {
        let pos: Vec<_> = scored
            .iter()
            .filter(|(c, _, _)| c.positive && c.family == *fam)
            .collect();
        let kept: Vec<_> = pos.iter().filter(|(c, _, _)| !excluded(c)).collect();
        let (t01, t1) = (pick(Some(*fam), 0.001), pick(Some(*fam), 0.01));
        let hit = |th: u8| {
            kept.iter()
                .filter(|(_, s, _)| s.get(fam).is_some_and(|c| *c >= th))
                .count()
        };
        println!(
            "| {fam} | {} ({}) | {} | {} |",
            kept.len(),
            pos.len() - kept.len(),
            pct(hit(t01), kept.len()),
            pct(hit(t1), kept.len())
        );
        kept_all += kept.len();
        kept_hit01 += hit(t01);
        kept_hit1 += hit(t1);
    }
    println!(
        "| **all (same family)** | {kept_all} | {} | {} |\n",
        pct(kept_hit01, kept_all),
        pct(kept_hit1, kept_all)
    );
    let any01 = pick(None, 0.001);
    let any1 = pick(None, 0.01);
    let pos_all: Vec<_> = scored.iter().filter(|(c, _, _)| c.positive).collect();
    let hit_any = |th: u8| {
        pos_all
            .iter()
            .filter(|(_, s, _)| s.values().any(|c| *c >= th))
            .count()
    };
    let fp_any = benign_scores
        .iter()
        .filter(|s| s.values().any(|c| *c >= any01))
        .count();
    println!(
        "| **all (any family)** | {} | {} ({any01}) | {} ({any1}) | {} | | | |",
        pos_all.len(),
        pct(hit_any(any01), pos_all.len()),
        pct(hit_any(any1), pos_all.len()),
        pct(fp_any, n_benign)
    );
    // The same, without the non-attack rules: an attack raised in another family (an XML
    // entity that CRS files under XSS) is still an attack raised.
    let kept_any = |th: u8| {
        pos_all
            .iter()
            .filter(|(c, s, _)| !excluded(c) && s.values().any(|v| *v >= th))
            .count()
    };
    println!(
        "| **all (any family), without the non-attack rules** | {kept_all} | {} ({any01}) | {} ({any1}) | {} | | | |",
        pct(kept_any(any01), kept_all),
        pct(kept_any(any1), kept_all),
        pct(fp_any, n_benign)
    );

    // Public payload lists.
    if let Some(dir) = arg("--payloads") {
        let lists = payload_lists::load(Path::new(&dir), 2_000);
        let list_misses = args.iter().any(|a| a == "--list-misses");
        println!(
            "\n## Public payload lists ({} payloads from {dir})\n",
            lists.len()
        );
        println!(
            "| list | family | payloads | detected, same family (thr) | detected, any family |"
        );
        println!("|---|---|---|---|---|");
        let mut by_source: BTreeMap<&str, (Family, usize, usize, usize)> = BTreeMap::new();
        for (i, c) in lists.iter().enumerate() {
            let s = score(&d, &t, &c.attrs, (cases.len() + i) as u64);
            let th = pick(Some(c.family), 0.001);
            let same = s.get(&c.family).is_some_and(|v| *v >= th);
            let any = s.values().any(|v| *v >= any01);
            if list_misses && !same {
                println!("MISS {} {:?} {:?}", c.source, s, c.attrs[2].1);
            }
            let e = by_source
                .entry(c.source.as_str())
                .or_insert((c.family, 0, 0, 0));
            e.1 += 1;
            e.2 += usize::from(same);
            e.3 += usize::from(any);
        }
        let mut per_family: BTreeMap<Family, (usize, usize)> = BTreeMap::new();
        for (src, (fam, n, same, any)) in &by_source {
            println!(
                "| {src} | {fam} | {n} | {} ({}) | {} |",
                pct(*same, *n),
                pick(Some(*fam), 0.001),
                pct(*any, *n)
            );
            let e = per_family.entry(*fam).or_default();
            e.0 += n;
            e.1 += same;
        }
        let (n, hit) = per_family
            .values()
            .fold((0, 0), |(a, b), (n, h)| (a + n, b + h));
        for (fam, (n, h)) in &per_family {
            println!("| **{fam}, all lists** | {fam} | {n} | {} | |", pct(*h, *n));
        }
        println!("| **pooled** | | {n} | {} | |", pct(hit, n));
    }

    // Realistic benign sets.
    let n_real: usize = arg("--realistic")
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    if n_real > 0 {
        println!("\n## Realistic benign sets ({n_real} requests each, seed {seed})\n");
        println!(
            "| set | FPR, every rule on | FPR @ pooled 0.1% thr ({any01}) | families flagged |"
        );
        println!("|---|---|---|---|");
        for set in realistic::Set::ALL {
            let mut g = realistic::Realistic::new(seed ^ 0x5eed);
            let (mut fp1, mut fp01) = (0, 0);
            let mut fams: BTreeMap<Family, usize> = BTreeMap::new();
            for i in 0..n_real {
                let (attrs, db) = g.request(set);
                let s = score_trace(&d, &t, &to_trace(&attrs, db.as_deref(), i as u64));
                if show_fps && !s.is_empty() {
                    println!("FP {} {s:?} {attrs:?} {db:?}", set.name());
                }
                fp1 += usize::from(!s.is_empty());
                fp01 += usize::from(s.values().any(|v| *v >= any01));
                for f in s.keys() {
                    *fams.entry(*f).or_default() += 1;
                }
            }
            let fams: Vec<String> = fams.iter().map(|(f, n)| format!("{f} {n}")).collect();
            println!(
                "| {} | {} | {} | {} |",
                set.name(),
                pct_fine(fp1, n_real),
                pct_fine(fp01, n_real),
                fams.join(", ")
            );
        }
    }

    // Learned field context.
    if n_real > 0 && !args.iter().any(|a| a == "--no-context-eval") {
        context_eval::report_sets(seed, n_real, show_fps);
        let mut payloads: Vec<(Family, String)> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for c in cases.iter().filter(|c| c.positive) {
            let kvs: Vec<KeyValue> = c
                .attrs
                .iter()
                .map(|(k, v)| KeyValue {
                    key: k.clone(),
                    value: Some(AnyValue {
                        value: Some(Value::StringValue(v.clone())),
                    }),
                    ..Default::default()
                })
                .collect();
            for i in extract::inputs(&kvs) {
                let v = normalize::decode(&i.raw);
                if d.scan_value(&t, &v)
                    .iter()
                    .any(|(r, _)| r.family == c.family)
                    && seen.insert(v.clone())
                {
                    payloads.push((c.family, v));
                }
            }
        }
        context_eval::report_recall(seed, n_real, &payloads);
    }
}
