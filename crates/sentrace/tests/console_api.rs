//! The console's security views on the real binary: exposure (counts by service, kind, key
//! and action, never values, surviving a restart), integrity (checkpoint, verify on demand,
//! a tampered block reported), the service map's overlay (findings, new edges), finding
//! detail, response undo over the API, and the admin inventory. Exact JSON shapes; roles
//! without permission get 403; tenant B never sees tenant A's data.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{Server, files_under, hex, kv, request, span};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans};
use serde_json::Value;

const EMAIL: &str = "jane.doe@example.com";

fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
    k.sort();
    k
}

fn sorted(names: &[&str]) -> Vec<String> {
    let mut k: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    k.sort();
    k
}

fn get(srv: &Server, token: &str, path: &str) -> (u16, Value) {
    let r = srv.get(token, path);
    let status = r.status().as_u16();
    (status, r.json().unwrap_or(Value::Null))
}

fn post(srv: &Server, token: &str, path: &str) -> (u16, Value) {
    let r = srv
        .client()
        .post(srv.query_url(path))
        .bearer_auth(token)
        .send()
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().unwrap_or(Value::Null))
}

fn ingest(srv: &Server, token: &str, req: &ExportTraceServiceRequest) {
    let r = srv.post_proto(token, req);
    assert_eq!(r.status().as_u16(), 200, "export refused");
}

fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn assert_error(status: u16, body: &Value, want: u16, mention: &str) {
    assert_eq!(status, want, "{body}");
    let msg = body["error"]
        .as_str()
        .unwrap_or_else(|| panic!("no error: {body}"));
    assert!(msg.contains(mention), "{msg:?} should mention {mention:?}");
}

#[test]
fn exposure_counts_by_key_survive_a_restart_and_hold_no_value_and_admin_inventory() {
    let mut srv = Server::new("").start();
    let ingest_a = srv.token("acme", "ingest");
    let admin_a = srv.token("acme", "admin");
    let analyst_a = srv.token("acme", "security-analyst");
    let auditor_a = srv.token("acme", "auditor");
    let viewer_a = srv.token("acme", "viewer");
    let admin_b = srv.token("other", "admin");

    let spans: Vec<_> = (0..3u64)
        .map(|i| {
            let mut s = span(i, "signup");
            s.attributes = vec![kv("user.contact", EMAIL), kv("plain", "nothing")];
            s
        })
        .collect();
    ingest(&srv, &ingest_a, &request("accounts", spans));

    let (status, v) = get(&srv, &analyst_a, "/api/exposure");
    assert_eq!(status, 200, "{v}");
    assert_eq!(keys(&v), sorted(&["data", "total"]));
    assert_eq!(v["total"], 1, "{v}");
    let row = &v["data"][0];
    assert_eq!(
        keys(row),
        sorted(&[
            "service",
            "kind",
            "key",
            "action",
            "count",
            "first_seen_ns",
            "last_seen_ns"
        ])
    );
    assert_eq!(row["service"], "accounts");
    assert_eq!(row["kind"], "email");
    assert_eq!(row["key"], "user.contact");
    assert_eq!(row["count"], 3);
    assert!(row["action"].is_string());
    assert!(row["first_seen_ns"].as_u64().unwrap() <= row["last_seen_ns"].as_u64().unwrap());
    let text = v.to_string();
    assert!(
        !text.contains("example.com") && !text.contains("jane"),
        "{text}"
    );
    // A window after everything holds nothing; a bad window names the parameter.
    let later = row["last_seen_ns"].as_u64().unwrap() + 1;
    let (_, none) = get(&srv, &analyst_a, &format!("/api/exposure?since={later}"));
    assert_eq!(none["total"], 0);
    let (s, e) = get(&srv, &analyst_a, "/api/exposure?since=5&until=1");
    assert_error(s, &e, 400, "since");
    let (s, e) = get(&srv, &analyst_a, "/api/exposure?bogus=1");
    assert_error(s, &e, 400, "bogus");
    // Roles without read_findings are refused; tenant B sees none of A's rows.
    let (s, e) = get(&srv, &viewer_a, "/api/exposure");
    assert_error(s, &e, 403, "read_findings");
    let (s, b) = get(&srv, &admin_b, "/api/exposure");
    assert_eq!((s, b["total"].as_u64()), (200, Some(0)), "{b}");

    // Admin inventory: the tenant's tokens without secrets; public keys.
    let (s, t) = get(&srv, &auditor_a, "/api/admin/tokens");
    assert_eq!(s, 200, "{t}");
    let list = t["data"].as_array().unwrap();
    assert_eq!(list.len(), 5, "{t}");
    for tok in list {
        assert_eq!(
            keys(tok),
            sorted(&[
                "id",
                "name",
                "tenant",
                "role",
                "created_ns",
                "expires_ns",
                "revoked"
            ])
        );
        assert_eq!(tok["tenant"], "acme");
        assert_eq!(tok["revoked"], false);
    }
    let text = t.to_string();
    assert!(!text.contains("st_") && !text.contains("sha256"), "{text}");
    let (_, tb) = get(&srv, &admin_b, "/api/admin/tokens");
    assert!(
        tb["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|x| x["tenant"] == "other"),
        "{tb}"
    );
    let (s, k) = get(&srv, &admin_a, "/api/admin/keys");
    assert_eq!(s, 200, "{k}");
    let ks = k["data"].as_array().unwrap();
    assert!(ks.len() >= 2, "{k}");
    for key in ks {
        assert_eq!(
            keys(key),
            sorted(&["purpose", "key_id", "algorithm", "public_key", "created_ns"])
        );
    }
    assert!(
        ks.iter()
            .any(|x| x["purpose"] == "log" && x["algorithm"] == "ml-dsa-44")
    );
    assert!(!k.to_string().contains("PRIVATE"));
    for path in ["/api/admin/tokens", "/api/admin/keys"] {
        let (s, e) = get(&srv, &analyst_a, path);
        assert_error(s, &e, 403, "read_admin");
    }

    // The counts survive a restart.
    srv.stop();
    srv.launch();
    let (_, again) = get(&srv, &analyst_a, "/api/exposure");
    assert_eq!(again["data"], v["data"], "lost on restart");
    let file = srv.data.join("exposure").join("acme.json");
    let saved = std::fs::read_to_string(&file).unwrap();
    assert!(saved.contains("user.contact") && !saved.contains("example.com"));
}

fn blocks(data: &Path, tenant: &str) -> Vec<PathBuf> {
    let dir = data.join("blocks").join(tenant);
    if !dir.exists() {
        return Vec::new();
    }
    files_under(&dir)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
        .collect()
}

#[test]
fn integrity_checkpoint_verify_on_demand_and_a_tampered_block() {
    let srv = Server::new(
        "[store]\nflush_interval = \"1s\"\n[seal.checkpoint]\nevery_secs = 1\nevery_entries = 1\n",
    )
    .start();
    let ingest_a = srv.token("acme", "ingest");
    let auditor_a = srv.token("acme", "auditor");
    let viewer_a = srv.token("acme", "viewer");
    let auditor_b = srv.token("other", "auditor");
    for b in 0..2u64 {
        let spans = (0..3).map(|i| span(b * 10 + i, "sealed")).collect();
        ingest(&srv, &ingest_a, &request("ledger", spans));
    }
    wait_for("a block", || !blocks(&srv.data, "acme").is_empty());
    wait_for("checkpoint 2", || {
        get(&srv, &viewer_a, "/api/integrity").1["data"]["checkpoint"]["size"] == 2
    });

    let (s, v) = get(&srv, &viewer_a, "/api/integrity");
    assert_eq!(s, 200, "{v}");
    assert_eq!(keys(&v), sorted(&["data"]));
    let d = &v["data"];
    assert_eq!(
        keys(d),
        sorted(&["checkpoint", "witnesses", "quorum", "last_verify"])
    );
    let cp = &d["checkpoint"];
    assert_eq!(
        keys(cp),
        sorted(&["origin", "size", "root_hash", "signed_note", "time_ns"])
    );
    assert_eq!(cp["origin"], "sentrace/acme");
    assert_eq!(cp["root_hash"].as_str().unwrap().len(), 64);
    assert!(
        cp["signed_note"]
            .as_str()
            .unwrap()
            .starts_with("sentrace/acme\n2\n")
    );
    assert!(cp["time_ns"].as_u64().unwrap() > 0);
    assert_eq!(d["witnesses"], serde_json::json!([]));
    assert_eq!(
        d["quorum"],
        serde_json::json!({"required": 0, "reached": 0})
    );
    assert_eq!(d["last_verify"], Value::Null);
    // Tenant B has no log: no checkpoint, and nothing of A's.
    let (_, b) = get(&srv, &auditor_b, "/api/integrity");
    assert_eq!(b["data"]["checkpoint"], Value::Null, "{b}");

    // A viewer may look but not run a verification.
    let (s, e) = post(&srv, &viewer_a, "/api/integrity/verify");
    assert_error(s, &e, 403, "run_verify");
    let (s, ok) = post(&srv, &auditor_a, "/api/integrity/verify");
    assert_eq!(s, 200, "{ok}");
    let lv = &ok["data"]["last_verify"];
    assert_eq!(
        keys(lv),
        sorted(&["time_ns", "ok", "entries_checked", "problems"])
    );
    assert_eq!(lv["ok"], true, "{ok}");
    assert_eq!(lv["entries_checked"], 2);
    assert_eq!(lv["problems"], serde_json::json!([]));
    // B's verification covers B only.
    let (s, vb) = post(&srv, &auditor_b, "/api/integrity/verify");
    assert_eq!(s, 200, "{vb}");
    assert_eq!(vb["data"]["last_verify"]["entries_checked"], 0);

    // Tamper with a stored block: the next verification names it.
    let block = &blocks(&srv.data, "acme")[0];
    let mut bytes = std::fs::read(block).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x5a;
    std::fs::write(block, bytes).unwrap();
    let (s, bad) = post(&srv, &auditor_a, "/api/integrity/verify");
    assert_eq!(s, 200, "{bad}");
    let lv = &bad["data"]["last_verify"];
    assert_eq!(lv["ok"], false, "{bad}");
    let problems = lv["problems"].as_array().unwrap();
    assert!(!problems.is_empty());
    let name = block.file_name().unwrap().to_str().unwrap();
    assert!(
        problems.iter().any(|p| p.as_str().unwrap().contains(name)),
        "{problems:?} should name {name}"
    );
    // The result is kept, and saved for the next start.
    let (_, later) = get(&srv, &viewer_a, "/api/integrity");
    assert_eq!(later["data"]["last_verify"], *lv);
    assert!(srv.data.join("integrity").join("acme.json").exists());
}

fn two_services(n: u64, client: &str, query: &str) -> (ExportTraceServiceRequest, String, String) {
    let parent = span(n, "GET /");
    let mut child = span(n, "GET /products");
    child.span_id = (n + 1000).to_be_bytes().to_vec();
    child.parent_span_id = parent.span_id.clone();
    child.attributes = vec![
        kv("http.request.method", "GET"),
        kv("url.path", "/products"),
        kv("url.query", query),
        kv("http.route", "/products"),
        kv("client.address", client),
    ];
    let rs = |service: &str, s| ResourceSpans {
        resource: Some(Resource {
            attributes: vec![kv("service.name", service)],
            ..Default::default()
        }),
        scope_spans: vec![ScopeSpans {
            spans: vec![s],
            ..Default::default()
        }],
        ..Default::default()
    };
    let trace = hex(&parent.trace_id);
    (
        ExportTraceServiceRequest {
            resource_spans: vec![rs("frontend", parent), rs("shop", child)],
        },
        trace,
        client.to_string(),
    )
}

const POLICY: &str = r#"
format = 1
[[rule]]
id = "quarantine-sqli"
families = ["sqli"]
actions = [{ type = "quarantine", subject = "client_address", ttl_secs = 3600 }]
"#;

#[test]
fn map_overlay_finding_detail_and_undo() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("response.toml");
    std::fs::write(&policy, POLICY).unwrap();
    let srv = Server::new(&format!(
        "[detect.response]\npolicy = \"{}\"\n",
        policy.display()
    ))
    .start();
    let ingest_a = srv.token("acme", "ingest");
    let analyst_a = srv.token("acme", "security-analyst");
    let viewer_a = srv.token("acme", "viewer");
    let auditor_a = srv.token("acme", "auditor");
    let analyst_b = srv.token("other", "security-analyst");

    let (req, trace, _) = two_services(
        1,
        "203.0.113.9",
        "id=1' UNION SELECT username,password FROM users--",
    );
    ingest(&srv, &ingest_a, &req);

    // The map: both services, the edge first seen just now (new), shop's finding.
    let (s, m) = get(&srv, &analyst_a, "/api/map?lookback_ms=3600000");
    assert_eq!(s, 200, "{m}");
    assert_eq!(keys(&m), sorted(&["data"]));
    assert_eq!(keys(&m["data"]), sorted(&["nodes", "edges"]));
    let nodes = m["data"]["nodes"].as_array().unwrap();
    for n in nodes {
        assert_eq!(keys(n), sorted(&["service", "findings", "max_severity"]));
    }
    let shop = nodes.iter().find(|n| n["service"] == "shop").unwrap();
    assert!(shop["findings"].as_u64().unwrap() >= 1, "{m}");
    assert!(shop["max_severity"].is_string(), "{m}");
    let front = nodes.iter().find(|n| n["service"] == "frontend").unwrap();
    assert_eq!(front["findings"], 0);
    assert_eq!(front["max_severity"], Value::Null);
    let edges = m["data"]["edges"].as_array().unwrap();
    assert_eq!(edges.len(), 1, "{m}");
    let e = &edges[0];
    assert_eq!(
        keys(e),
        sorted(&["parent", "child", "calls", "first_seen_ns", "new"])
    );
    assert_eq!(
        (&e["parent"], &e["child"]),
        (&"frontend".into(), &"shop".into())
    );
    assert_eq!(e["calls"], 1);
    assert_eq!(e["new"], true);
    assert!(e["first_seen_ns"].as_u64().unwrap() > 0);
    let (s, err) = get(&srv, &analyst_a, "/api/map?lookback_ms=0");
    assert_error(s, &err, 400, "lookback_ms");
    // A viewer sees the graph but not the findings overlay.
    let (_, vm) = get(&srv, &viewer_a, "/api/map");
    let vshop = vm["data"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["service"] == "shop")
        .cloned()
        .unwrap();
    assert_eq!(vshop["findings"], 0, "{vm}");
    // Tenant B's map is empty; the auditor may not search.
    let (_, bm) = get(&srv, &analyst_b, "/api/map");
    assert_eq!(bm["data"], serde_json::json!({"nodes": [], "edges": []}));
    let (s, err) = get(&srv, &auditor_a, "/api/map");
    assert_error(s, &err, 403, "search");

    // Finding detail, and 404 naming the id.
    let (_, list) = get(&srv, &analyst_a, &format!("/api/findings?trace_id={trace}"));
    let uid = list["data"][0]["finding_info"]["uid"]
        .as_str()
        .unwrap_or_else(|| panic!("no finding: {list}"))
        .to_string();
    let (s, f) = get(&srv, &analyst_a, &format!("/api/findings/{uid}"));
    assert_eq!(s, 200, "{f}");
    assert_eq!(keys(&f), sorted(&["data"]));
    assert_eq!(f["data"], list["data"][0]);
    let (s, err) = get(&srv, &analyst_a, "/api/findings/0123abcd");
    assert_error(s, &err, 404, "0123abcd");
    let (s, err) = get(&srv, &analyst_b, &format!("/api/findings/{uid}"));
    assert_error(s, &err, 404, &uid);
    let (s, err) = get(&srv, &viewer_a, &format!("/api/findings/{uid}"));
    assert_error(s, &err, 403, "read_findings");

    // Undo the quarantine: refused to a viewer and to tenant B, then done and audited.
    let (_, r) = get(&srv, &analyst_a, "/api/responses");
    let action = r["actions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["action"]["type"] == "quarantine")
        .unwrap_or_else(|| panic!("no quarantine: {r}"))
        .clone();
    assert_eq!(action["status"], "active");
    let id = action["id"].as_str().unwrap().to_string();
    let path = format!("/api/responses/{id}/undo");
    let (s, err) = post(&srv, &viewer_a, &path);
    assert_error(s, &err, 403, "undo_response");
    let (s, err) = post(&srv, &analyst_b, &path);
    assert_error(s, &err, 404, &id);
    let (s, err) = post(&srv, &analyst_a, "/api/responses/nope/undo");
    assert_error(s, &err, 404, "nope");
    let (s, u) = post(&srv, &analyst_a, &path);
    assert_eq!(s, 200, "{u}");
    assert_eq!(
        u,
        serde_json::json!({"data": {"id": id, "status": "undone"}})
    );
    let (_, r) = get(&srv, &analyst_a, "/api/responses");
    let now = r["actions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == id.as_str())
        .unwrap()
        .clone();
    assert_eq!(now["status"], "undone");
    // Effective at once: the attacker's next span is stored, not quarantined.
    let (next, next_trace, _) = two_services(7, "203.0.113.9", "q=shoes");
    ingest(&srv, &ingest_a, &next);
    let (s, _) = get(&srv, &analyst_a, &format!("/api/traces/{next_trace}"));
    assert_eq!(s, 200, "still quarantined after the undo");
    // Audited, by whom.
    let audit = srv.get(&auditor_a, "/api/audit?limit=1000").text().unwrap();
    assert!(
        audit
            .lines()
            .any(|l| l.contains("undo_response") && l.contains(&id) && l.contains("allowed")),
        "{audit}"
    );
    assert!(audit.contains("\"denied\""), "refusals are audited too");
    // The operator's view (the response journal, encrypted at rest) says who undid it.
    let listed = srv.cli(&["response", "list", "--all", "--json"]);
    let line = listed
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|l| l["id"] == id.as_str())
        .unwrap_or_else(|| panic!("{id} not listed: {listed}"));
    assert_eq!(line["status"], "undone", "{line}");
    assert!(
        line["undone_by"].as_str().is_some_and(|b| b != "cli"),
        "{line}"
    );
}
