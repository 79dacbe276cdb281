//! The read path end to end: every role × endpoint × tenant over a fixed corpus of traces
//! that cross services and carry sensitive values. For every cell of the matrix:
//! - no answer ever names another tenant's services, spans or trace ids;
//! - no answer names a service outside the principal's scope (names, spans, counts);
//! - no sensitive value appears unmasked without `view_sensitive`;
//! - the raw sensitive values never appear at all (minimization ran at ingest).

mod common;

use common::*;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::trace::v1::Span;
use opentelemetry_proto::tonic::trace::v1::span::Event;

const TEAMS: &str = r#"
[access.teams]
payments = ["checkout"]
finance = ["ledger"]
"#;

/// Acme's trace: frontend → checkout → ledger.
const T1: &str = "a1a1a1a1a1a1a1a1b2b2b2b2b2b2b2b2";
/// Globex's trace.
const T2: &str = "c3c3c3c3c3c3c3c3d4d4d4d4d4d4d4d4";

const EMAIL: &str = "jane.doe@example.com";
const CARD: &str = "4111111111111111";
const GLOBEX_EMAIL: &str = "bob@globex.example";

fn id(hex_text: &str) -> Vec<u8> {
    (0..hex_text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex_text[i..i + 2], 16).unwrap())
        .collect()
}

fn mk(trace: &str, span_id: u8, parent: Option<u8>, name: &str, attrs: Vec<KeyValue>) -> Span {
    let mut s = span(u64::from(span_id), name);
    s.trace_id = id(trace);
    s.span_id = vec![span_id; 8];
    s.parent_span_id = parent.map(|p| vec![p; 8]).unwrap_or_default();
    s.attributes = attrs;
    s
}

fn ingest_corpus(srv: &Server) {
    let acme = srv.token("acme", "ingest");
    let globex = srv.token("globex", "ingest");
    let mut root = mk(T1, 1, None, "GET /cart", vec![kv("user.email", EMAIL)]);
    root.events.push(Event {
        name: "login".into(),
        attributes: vec![kv("enduser.email", EMAIL)],
        ..Default::default()
    });
    let pay = mk(
        T1,
        2,
        Some(1),
        "charge-card",
        vec![kv("payment.card", CARD), kv("http.route", "/pay")],
    );
    let ledger = mk(
        T1,
        3,
        Some(2),
        "post-ledger-entry",
        vec![kv("ledger.account", "ACC-77")],
    );
    for (svc, s) in [("frontend", root), ("checkout", pay), ("ledger", ledger)] {
        let r = srv.post_proto(&acme, &request(svc, vec![s]));
        assert_eq!(r.status().as_u16(), 200, "{}", r.text().unwrap());
    }
    let g = mk(
        T2,
        9,
        None,
        "globex-secret-op",
        vec![kv("user.email", GLOBEX_EMAIL)],
    );
    let r = srv.post_proto(&globex, &request("globex-api", vec![g]));
    assert_eq!(r.status().as_u16(), 200, "{}", r.text().unwrap());
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Who {
    Admin,
    Analyst,
    LegacyRead,
    Viewer,
    DevPayments,
    DevFinance,
    Auditor,
    Ingest,
}

impl Who {
    const ALL: [Who; 8] = [
        Who::Admin,
        Who::Analyst,
        Who::LegacyRead,
        Who::Viewer,
        Who::DevPayments,
        Who::DevFinance,
        Who::Auditor,
        Who::Ingest,
    ];

    fn token(self, srv: &Server, tenant: &str) -> String {
        let (role, team) = match self {
            Who::Admin => ("admin", None),
            Who::Analyst => ("security-analyst", None),
            Who::LegacyRead => ("read", None),
            Who::Viewer => ("viewer", None),
            Who::DevPayments => ("developer", Some("payments")),
            Who::DevFinance => ("developer", Some("finance")),
            Who::Auditor => ("auditor", None),
            Who::Ingest => ("ingest", None),
        };
        let mut args = vec!["tokens", "create", "--tenant", tenant, "--role", role];
        if let Some(t) = team {
            args.extend(["--team", t]);
        }
        srv.cli(&args).trim().to_string()
    }

    /// Acme services this principal may read (None: it reads no trace at all).
    fn services(self) -> Option<&'static [&'static str]> {
        match self {
            Who::Admin | Who::Analyst | Who::LegacyRead | Who::Viewer => {
                Some(&["checkout", "frontend", "ledger"])
            }
            Who::DevPayments => Some(&["checkout"]),
            Who::DevFinance => Some(&["ledger"]),
            Who::Auditor | Who::Ingest => None,
        }
    }

    fn sees_sensitive(self) -> bool {
        matches!(self, Who::Admin | Who::Analyst | Who::LegacyRead)
    }
}

fn endpoints() -> Vec<String> {
    let mut v = vec![
        "/api/services".to_string(),
        "/api/dependencies".into(),
        format!("/api/traces/{T1}"),
        format!("/api/traces/{T2}"),
        format!("/v1/traces/{T1}"),
        format!("/v1/traces/{T2}"),
        "/api/traces?service=checkout&tags=%7B%22http.route%22%3A%22%2Fpay%22%7D".into(),
        "/metrics".into(),
        "/api/findings".into(),
    ];
    for s in ["frontend", "checkout", "ledger", "globex-api"] {
        v.push(format!("/api/services/{s}/operations"));
        v.push(format!("/api/operations?service={s}"));
        v.push(format!("/api/traces?service={s}"));
    }
    v
}

const ACME_ONLY: &[&str] = &[
    "frontend",
    "checkout",
    "ledger",
    "GET /cart",
    "charge-card",
    "post-ledger-entry",
    "ACC-77",
    T1,
];
const GLOBEX_ONLY: &[&str] = &["globex-api", "globex-secret-op", T2];

/// Names that belong to each acme service (its name, its span names, its plain values).
fn owned_by(service: &str) -> &'static [&'static str] {
    match service {
        "frontend" => &["frontend", "GET /cart", "login"],
        "checkout" => &["checkout", "charge-card", "/pay"],
        "ledger" => &["ledger", "post-ledger-entry", "ACC-77"],
        _ => &[],
    }
}

#[test]
fn role_endpoint_tenant_matrix() {
    let srv = Server::new(TEAMS).start();
    ingest_corpus(&srv);
    let c = srv.client();
    let mut checked = 0;
    for tenant in ["acme", "globex"] {
        for who in Who::ALL {
            let token = who.token(&srv, tenant);
            for path in endpoints() {
                let resp = c
                    .get(srv.query_url(&path))
                    .bearer_auth(&token)
                    .send()
                    .unwrap();
                let status = resp.status().as_u16();
                let body = resp.text().unwrap();
                let cell = format!("{tenant} {who:?} {path} -> {status}: {body}");
                assert!(status < 500, "{cell}");
                // The raw sensitive values were minimized at ingest: never anywhere.
                for raw in [EMAIL, CARD, GLOBEX_EMAIL] {
                    assert!(!body.contains(raw), "raw value leaked: {cell}");
                }
                // No cross-tenant read.
                let foreign = if tenant == "acme" {
                    GLOBEX_ONLY
                } else {
                    ACME_ONLY
                };
                for f in foreign {
                    assert!(!body.contains(f), "{f:?} of another tenant: {cell}");
                }
                // Service scope (acme only: globex principals see no acme name at all).
                if tenant == "acme" {
                    let allowed: &[&str] = who.services().unwrap_or(&[]);
                    for svc in ["frontend", "checkout", "ledger"] {
                        if allowed.contains(&svc) || path == "/metrics" {
                            continue;
                        }
                        for name in owned_by(svc) {
                            // A placeholder keeps ids; names and values must be gone.
                            if path.contains(&format!("service={svc}"))
                                || path.contains(&format!("services/{svc}/"))
                            {
                                // The request itself names the service; the answer must be
                                // empty, not an error that reveals anything.
                                assert!(
                                    !body.contains(&format!("\"{name}\"")),
                                    "{name:?} outside scope: {cell}"
                                );
                                continue;
                            }
                            assert!(!body.contains(name), "{name:?} outside scope: {cell}");
                        }
                    }
                }
                // Sensitive values: pseudonyms and masks of the stored form show only with
                // view_sensitive.
                if !who.sees_sensitive() {
                    assert!(
                        !body.contains("pse:"),
                        "pseudonym without view_sensitive: {cell}"
                    );
                    assert!(
                        !body.contains("<card>"),
                        "stored mask shown without view_sensitive: {cell}"
                    );
                }
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 2 * Who::ALL.len() * endpoints().len());
}

fn spans_of(body: &serde_json::Value) -> Vec<serde_json::Value> {
    body["data"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|t| t["spans"].as_array().unwrap().clone())
        .collect()
}

#[test]
fn scope_keeps_the_tree_and_masks_by_role() {
    let srv = Server::new(TEAMS).start();
    ingest_corpus(&srv);

    // A developer of payments: checkout in full, the other two spans as placeholders that
    // keep the tree (ids, parents, timing) and nothing else.
    let dev = Who::DevPayments.token(&srv, "acme");
    let r = srv.get(&dev, &format!("/api/traces/{T1}"));
    assert_eq!(r.status().as_u16(), 200);
    let body: serde_json::Value = r.json().unwrap();
    let spans = spans_of(&body);
    assert_eq!(spans.len(), 3, "{body}");
    let names: Vec<&str> = spans
        .iter()
        .map(|s| s["operationName"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"charge-card"), "{names:?}");
    assert_eq!(
        names.iter().filter(|n| **n == "<hidden>").count(),
        2,
        "{names:?}"
    );
    let pay = spans
        .iter()
        .find(|s| s["operationName"] == "charge-card")
        .unwrap();
    let refs = pay["references"].as_array().unwrap();
    assert_eq!(refs[0]["spanID"], "0101010101010101", "parent kept: {pay}");
    // The card was masked at ingest (<card>, class financial); a developer sees the class.
    let text = body.to_string();
    assert!(text.contains("<redacted:financial>"), "{text}");
    assert!(!text.contains("<card>"), "{text}");

    // Services and operations never reveal another team's service.
    let r: serde_json::Value = srv.get(&dev, "/api/services").json().unwrap();
    assert_eq!(r["data"], serde_json::json!(["checkout"]));
    let r: serde_json::Value = srv
        .get(&dev, "/api/services/ledger/operations")
        .json()
        .unwrap();
    assert_eq!(r["data"], serde_json::json!([]));
    // A search by a hidden service finds nothing, and says nothing.
    let r: serde_json::Value = srv.get(&dev, "/api/traces?service=ledger").json().unwrap();
    assert_eq!(r["data"], serde_json::json!([]), "{r}");
    // Dependencies: no edge touches a hidden service.
    let r: serde_json::Value = srv.get(&dev, "/api/dependencies").json().unwrap();
    assert_eq!(r["data"], serde_json::json!([]), "{r}");

    // A viewer sees every service, with pseudonyms masked.
    let viewer = Who::Viewer.token(&srv, "acme");
    let body: serde_json::Value = srv
        .get(&viewer, &format!("/api/traces/{T1}"))
        .json()
        .unwrap();
    let text = body.to_string();
    assert_eq!(spans_of(&body).len(), 3);
    assert!(!text.contains("<hidden>"), "{text}");
    assert!(text.contains("<redacted:pii>"), "{text}");
    assert!(!text.contains("pse:"), "{text}");
    let r: serde_json::Value = srv.get(&viewer, "/api/dependencies").json().unwrap();
    assert_eq!(r["data"].as_array().unwrap().len(), 2, "{r}");

    // An analyst sees the stored (minimized) form: pseudonyms, not the raw e-mail.
    let analyst = Who::Analyst.token(&srv, "acme");
    let text = srv
        .get(&analyst, &format!("/api/traces/{T1}"))
        .text()
        .unwrap();
    assert!(text.contains("pse:"), "{text}");
    assert!(!text.contains(EMAIL), "{text}");

    // An auditor reads no trace; an ingest token reads nothing.
    let auditor = Who::Auditor.token(&srv, "acme");
    assert_eq!(
        srv.get(&auditor, &format!("/api/traces/{T1}"))
            .status()
            .as_u16(),
        403
    );
    let ingest = Who::Ingest.token(&srv, "acme");
    assert_eq!(srv.get(&ingest, "/api/services").status().as_u16(), 403);

    // Another tenant's trace reads as not found, whatever the role.
    let globex_admin = Who::Admin.token(&srv, "globex");
    assert_eq!(
        srv.get(&globex_admin, &format!("/api/traces/{T1}"))
            .status()
            .as_u16(),
        404
    );
}

#[test]
fn metrics_show_only_the_readers_tenant() {
    let srv = Server::new(TEAMS).start();
    ingest_corpus(&srv);
    let globex = Who::Viewer.token(&srv, "globex");
    let text = srv.get(&globex, "/metrics").text().unwrap();
    assert!(
        text.contains("sentrace_tenant_spans_total{tenant=\"globex\",outcome=\"accepted\"} 1"),
        "{text}"
    );
    assert!(!text.contains("acme"), "{text}");
    // Node-wide sums (every tenant's traffic) are for the operator tenant only.
    assert!(!text.contains("sentrace_ingest_spans_total"), "{text}");
    // A refused credential: counted, and its body never decoded.
    let refused = request("frontend", vec![mk(T1, 7, None, "refused", vec![])]);
    let r = srv.post_proto("not-a-token", &refused);
    assert_eq!(r.status().as_u16(), 401);
    let operator = srv.admin_token.clone().expect("first-start admin token");
    let text = srv.get(&operator, "/metrics").text().unwrap();
    assert_eq!(
        sample(
            &text,
            "sentrace_ingest_stage_duration_seconds_count{stage=\"decode\"}"
        ),
        4.0,
        "{text}"
    );
    assert!(
        sample(
            &text,
            "sentrace_auth_failures_total{listener=\"otlp_http\"}"
        ) >= 1.0,
        "{text}"
    );
    assert!(
        text.contains("sentrace_ingest_spans_total{outcome=\"accepted\"} 4"),
        "{text}"
    );
    assert!(!text.contains("tenant=\"acme\""), "{text}");
    // The typed families: build and process, latency histograms with their buckets, the
    // WAL's fsync histogram after the ingest, and the store's gauges.
    assert!(text.contains("sentrace_build_info{version=\""), "{text}");
    assert!(text.contains("\nprocess_resident_memory_bytes "), "{text}");
    assert!(
        text.contains(
            "sentrace_ingest_stage_duration_seconds_bucket{le=\"0.0001\",stage=\"validate\"}"
        ),
        "{text}"
    );
    for stage in ["decode", "validate", "minimize", "commit"] {
        let count = format!("sentrace_ingest_stage_duration_seconds_count{{stage=\"{stage}\"}}");
        assert!(sample(&text, &count) >= 4.0, "{count}: {text}");
    }
    assert!(
        sample(
            &text,
            "sentrace_request_duration_seconds_count{listener=\"otlp_http\"}"
        ) >= 4.0,
        "{text}"
    );
    assert!(
        text.contains(
            "sentrace_request_duration_seconds_bucket{le=\"+Inf\",listener=\"otlp_http\"}"
        ),
        "{text}"
    );
    assert!(
        sample(&text, "sentrace_wal_fsync_duration_seconds_count") >= 1.0,
        "{text}"
    );
    assert!(sample(&text, "sentrace_wal_bytes") > 0.0, "{text}");
    assert_eq!(sample(&text, "sentrace_spans_stored_total"), 4.0, "{text}");
    for gauge in [
        "sentrace_blocks",
        "sentrace_ingest_queue_bytes",
        "sentrace_buffered_spans",
    ] {
        assert!(sample(&text, gauge) >= 0.0, "{gauge}: {text}");
    }
    // Both tenants wrote, so both hold a data key, created moments ago.
    assert!(sample(&text, "sentrace_data_key_tenants") >= 2.0, "{text}");
    assert!(sample(&text, "sentrace_data_keys") >= 2.0, "{text}");
    assert!(
        sample(&text, "sentrace_data_key_age_max_seconds") < 3600.0,
        "{text}"
    );
    // None of them for a tenant's reader.
    let text = srv.get(&globex, "/metrics").text().unwrap();
    for node_wide in [
        "sentrace_build_info",
        "process_",
        "sentrace_wal_",
        "_duration_seconds",
        "sentrace_data_key",
    ] {
        assert!(!text.contains(node_wide), "{node_wide}: {text}");
    }
}

/// The value of the sample whose name and labels are exactly `series` (`NaN` if absent).
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(f64::NAN)
}

#[test]
fn break_glass_unmasks_for_a_limited_time_and_is_refused_without_a_grant() {
    let srv = Server::new(TEAMS).start();
    ingest_corpus(&srv);
    let c = srv.client();
    let viewer = Who::Viewer.token(&srv, "acme");
    let path = format!("/api/traces/{T1}");
    // A made-up grant is refused.
    let r = c
        .get(srv.query_url(&path))
        .bearer_auth(&viewer)
        .header("sentrace-break-glass", "00000000000000000000000000000000")
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    // Too short a justification, too long a duration.
    let open = |body: serde_json::Value| {
        c.post(srv.query_url("/api/break-glass"))
            .bearer_auth(&viewer)
            .json(&body)
            .send()
            .unwrap()
    };
    assert_eq!(
        open(serde_json::json!({"justification": "x", "duration": "10m"}))
            .status()
            .as_u16(),
        400
    );
    assert_eq!(
        open(serde_json::json!({"justification": "incident 4711: card charged twice", "duration": "30d"}))
            .status()
            .as_u16(),
        400
    );
    let r = open(
        serde_json::json!({"justification": "incident 4711: card charged twice", "duration": "10m"}),
    );
    assert_eq!(r.status().as_u16(), 201);
    let grant: serde_json::Value = r.json().unwrap();
    assert_eq!(grant["state"], "active");
    let id = grant["id"].as_str().unwrap();
    let text = c
        .get(srv.query_url(&path))
        .bearer_auth(&viewer)
        .header("sentrace-break-glass", id)
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(text.contains("pse:"), "unmasked with the grant: {text}");
    // Another principal cannot use it.
    let other = Who::Viewer.token(&srv, "acme");
    let r = c
        .get(srv.query_url(&path))
        .bearer_auth(&other)
        .header("sentrace-break-glass", id)
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    // Closed: refused again.
    let r = c
        .delete(srv.query_url(&format!("/api/break-glass/{id}")))
        .bearer_auth(&viewer)
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let r = c
        .get(srv.query_url(&path))
        .bearer_auth(&viewer)
        .header("sentrace-break-glass", id)
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    // An auditor cannot open one: no policy honours it.
    let auditor = Who::Auditor.token(&srv, "acme");
    let r = c
        .post(srv.query_url("/api/break-glass"))
        .bearer_auth(&auditor)
        .json(&serde_json::json!({"justification": "incident 4711: card charged twice", "duration": "10m"}))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
}

#[test]
fn policy_test_cli_prints_the_decision_and_the_deciding_policy() {
    let srv = Server::new(TEAMS);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sentrace"))
        .args([
            "policy",
            "test",
            "--config",
            srv.config.to_str().unwrap(),
            "--principal",
            "User::\"alice\"",
            "--role",
            "developer",
            "--team",
            "payments",
            "--tenant",
            "acme",
            "--action",
            "read_trace",
            "--resource",
            "Service::\"ledger\"",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("DENY"), "{text}");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sentrace"))
        .args([
            "policy",
            "test",
            "--config",
            srv.config.to_str().unwrap(),
            "--principal",
            "User::\"alice\"",
            "--role",
            "developer",
            "--team",
            "payments",
            "--tenant",
            "acme",
            "--action",
            "read_trace",
            "--resource",
            "Service::\"checkout\"",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("ALLOW"), "{text}");
    assert!(text.contains("developer-team-services"), "{text}");
}

#[test]
fn an_invalid_policy_stops_the_start_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("ops.cedar");
    std::fs::write(
        &policy,
        "permit (principal, action, resource)\nwhen { principal.nickname == \"x\" };\n",
    )
    .unwrap();
    let srv = Server::new(&format!(
        "[access]\npolicies = [{:?}]\n",
        policy.display().to_string()
    ));
    let (ok, log) = serve_once(&srv.data, &srv.config);
    assert!(!ok, "{log}");
    assert!(log.contains("ops.cedar:2"), "{log}");
    assert!(log.contains("nickname"), "{log}");
}

#[test]
fn a_policy_change_is_picked_up_and_a_broken_one_keeps_the_last_good_set() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("ops.cedar");
    std::fs::write(&policy, "// nothing extra yet\n").unwrap();
    let srv = Server::new(&format!(
        "{TEAMS}\n[access]\npolicies = [{:?}]\n",
        policy.display().to_string()
    ))
    .start();
    ingest_corpus(&srv);
    let viewer = Who::Viewer.token(&srv, "acme");
    assert_eq!(
        srv.get(&viewer, &format!("/api/traces/{T1}"))
            .status()
            .as_u16(),
        200
    );
    // Forbid viewers the ledger service: its span becomes a placeholder.
    std::fs::write(
        &policy,
        "@id(\"no-ledger-for-viewers\")\nforbid (principal, action, resource is Service)\nwhen { principal.role == \"viewer\" && resource == Service::\"ledger\" };\n",
    )
    .unwrap();
    let hidden = || {
        let t = srv
            .get(&viewer, &format!("/api/traces/{T1}"))
            .text()
            .unwrap();
        !t.contains("post-ledger-entry") && t.contains("<hidden>")
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !hidden() {
        assert!(
            std::time::Instant::now() < deadline,
            "policy change not picked up"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    // A broken file is refused; the last good set stays in force.
    std::fs::write(
        &policy,
        "forbid (principal, action, resource) when { principal.nope };\n",
    )
    .unwrap();
    std::thread::sleep(std::time::Duration::from_secs(3));
    assert!(hidden(), "the last good policies must stay in force");
    assert!(srv.log().contains("policy change refused"), "{}", srv.log());
    // Both reloads, the applied and the refused one, are in the node's audit log.
    let node = srv.cli(&["audit", "--tenant", "_node", "--json", "--limit", "10000"]);
    assert!(
        node.contains("\"policy reload\"") && node.contains("\"allowed\""),
        "{node}"
    );
    assert!(
        node.contains("principal.nope") || node.contains("nope"),
        "{node}"
    );
}

/// The `sentrace audit --json` records of `tenant` (JSON lines).
fn audit_records(srv: &Server, tenant: &str) -> Vec<serde_json::Value> {
    let out = srv.cli(&["audit", "--tenant", tenant, "--json", "--limit", "10000"]);
    out.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn record_of(v: &serde_json::Value) -> &serde_json::Value {
    v.get("record").unwrap_or(v)
}

#[test]
fn every_read_writes_exactly_one_audit_record() {
    let mut srv = Server::new(TEAMS).start();
    ingest_corpus(&srv);
    let viewer = Who::Viewer.token(&srv, "acme");
    let before = audit_records(&srv, "acme").len();
    let reads = [
        "/api/services".to_string(),
        format!("/api/traces/{T1}"),
        "/api/traces?service=checkout".into(),
        "/api/dependencies".into(),
        "/api/findings".into(), // denied for a viewer: still exactly one record
        "/api/traces/zz".into(), // bad id: one record
    ];
    for p in &reads {
        let _ = srv.get(&viewer, p).text().unwrap();
    }
    let records = audit_records(&srv, "acme");
    let new: Vec<&serde_json::Value> = records[before..].iter().map(record_of).collect();
    assert_eq!(new.len(), reads.len(), "{new:#?}");
    let endpoints: Vec<&str> = new
        .iter()
        .map(|r| r["endpoint"].as_str().unwrap())
        .collect();
    assert_eq!(
        endpoints,
        [
            "GET /api/services",
            "GET /api/traces/{traceID}",
            "GET /api/traces",
            "GET /api/dependencies",
            "GET /api/findings",
            "GET /api/traces/{traceID}",
        ]
    );
    let outcomes: Vec<&str> = new.iter().map(|r| r["outcome"].as_str().unwrap()).collect();
    assert_eq!(
        outcomes,
        [
            "allowed", "allowed", "allowed", "allowed", "denied", "failed"
        ]
    );
    // The trace read names the trace, the spans returned and how many were masked.
    let t = new[1];
    assert_eq!(t["trace_ids"], serde_json::json!([T1]));
    assert_eq!(t["spans_returned"], 3);
    assert!(t["spans_masked"].as_u64().unwrap() >= 1, "{t}");
    assert!(
        t["principal"].as_str().unwrap().starts_with("token:"),
        "{t}"
    );
    assert_eq!(t["role"], "viewer");
    assert!(t["source"].as_str().is_some(), "{t}");
    // An auditor reads the log over the API too (and that read is audited as well).
    let auditor = Who::Auditor.token(&srv, "acme");
    let r = srv.get(&auditor, "/api/audit?limit=1000");
    assert_eq!(r.status().as_u16(), 200);
    let body: serde_json::Value = r.json().unwrap();
    assert!(
        body["data"].as_array().unwrap().len() >= reads.len(),
        "{body}"
    );
    assert_eq!(srv.get(&viewer, "/api/audit").status().as_u16(), 403);
    // Failed authentications are recorded in the node's own log.
    let r = srv.get(
        "st_0123456789abcdef_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "/api/services",
    );
    assert_eq!(r.status().as_u16(), 401);
    let node = audit_records(&srv, "_node");
    let last = record_of(node.last().unwrap());
    assert_eq!(last["outcome"], "unauthenticated", "{last}");
    assert_eq!(last["principal"], "token:0123456789abcdef", "{last}");
    // So are refused ingest credentials, on either protocol's port.
    let r = srv.post_proto(
        "st_fedcba9876543210_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        &request("x", vec![span(99, "x")]),
    );
    assert_eq!(r.status().as_u16(), 401);
    let node = audit_records(&srv, "_node");
    let last = record_of(node.last().unwrap());
    assert_eq!(last["endpoint"], "POST /v1/traces", "{last}");
    assert_eq!(last["principal"], "token:fedcba9876543210", "{last}");
    // After a clean stop (final checkpoints signed) every log verifies; a deleted record
    // would not (covered record by record in the server's audit tests).
    srv.stop();
    let (code, v) = verify_json(&srv.data, &[]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["audit_logs"].as_array().unwrap().len(), 2, "{v}");
}

#[test]
fn no_audit_no_data() {
    let srv = Server::new(TEAMS).start();
    ingest_corpus(&srv);
    // Break the audit log of tenants for real: its directory becomes a file, so no tenant
    // log can be opened.
    let dir = srv.data.join("audit").join("tenants");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::write(&dir, b"not a directory").unwrap();
    let admin = Who::Admin.token(&srv, "acme");
    let r = srv.get(&admin, &format!("/api/traces/{T1}"));
    assert_eq!(r.status().as_u16(), 503);
    let text = r.text().unwrap();
    assert!(!text.contains("charge-card"), "{text}");
    assert!(text.contains("audit"), "{text}");
    // Repaired: reads work again.
    std::fs::remove_file(&dir).unwrap();
    std::fs::create_dir_all(&dir).unwrap();
    assert_eq!(
        srv.get(&admin, &format!("/api/traces/{T1}"))
            .status()
            .as_u16(),
        200
    );
}
