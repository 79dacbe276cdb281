//! Quarantines and findings shared by two `sentrace serve` nodes through one bucket of a
//! real S3-compatible server (`s3s-fs`, see `common::s3`), with no coordinator: an SQL
//! injection sent through node A quarantines its source; after a peer refresh node B sets
//! that source's spans aside too and lists A's action; an undo through node B releases the
//! source on both; node B's findings API shows A's finding with its node. The published
//! objects are sealed (no target or snippet in clear in the bucket). Nothing here asserts
//! timing: every wait polls with a deadline.

mod common;

use std::time::{Duration, Instant};

use common::s3::*;
use common::*;
use object_store::ObjectStoreExt;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use prost::Message;
use serde_json::Value;

const URL: &str = "s3://traces/shared";
const ATTACKER: &str = "203.0.113.7";

const POLICY: &str = r#"
format = 1
[[rule]]
id = "quarantine-sqli"
families = ["sqli"]
actions = [{ type = "quarantine", subject = "client_address", ttl_secs = 3600 }]
"#;

fn node(name: &str, s3: &S3Server, master: &str, policy: &std::path::Path) -> Server {
    let mut srv = Server::new(&format!(
        "[seal]\nnode = \"{name}\"\n[store]\nurl = \"{URL}\"\nflush_interval = \"1s\"\npeer_refresh_interval = \"1s\"\n[detect.response]\npolicy = \"{}\"\n",
        policy.display()
    ));
    srv.env = s3.env();
    srv.env
        .push(("SENTRACE_MASTER_KEY".into(), master.to_string()));
    srv
}

fn server_span(n: u64, client: &str, query: &str) -> opentelemetry_proto::tonic::trace::v1::Span {
    let mut s = span(n, "GET /products");
    s.attributes = vec![
        kv("http.request.method", "GET"),
        kv("url.path", "/products"),
        kv("url.query", query),
        kv("http.route", "/products"),
        kv("client.address", client),
    ];
    s
}

/// Sends one span; returns how many spans the node set aside.
fn send(srv: &Server, token: &str, s: opentelemetry_proto::tonic::trace::v1::Span) -> i64 {
    let resp = srv.post_proto(token, &request("shop", vec![s]));
    assert_eq!(resp.status().as_u16(), 200, "export refused");
    let r = ExportTraceServiceResponse::decode(resp.bytes().unwrap().as_ref()).unwrap();
    r.partial_success.map_or(0, |p| p.rejected_spans)
}

fn json(srv: &Server, token: &str, path: &str) -> Value {
    let r = srv.get(token, path);
    assert_eq!(r.status().as_u16(), 200, "GET {path}");
    r.json().unwrap()
}

/// Polls `f` until it yields a value (90 s at most).
fn wait_for<T>(what: &str, srv: &Server, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: not reached; log:\n{}",
            srv.log()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn quarantine_of(responses: &Value) -> Option<Value> {
    responses["actions"]
        .as_array()?
        .iter()
        .find(|a| a["action"]["type"] == "quarantine" && a["action"]["target"]["value"] == ATTACKER)
        .cloned()
}

#[test]
fn a_quarantine_and_its_undo_and_findings_cross_nodes_through_the_bucket() {
    let s3 = S3Server::start();
    let master = random_hex(32);
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("response.toml");
    std::fs::write(&policy, POLICY).unwrap();
    let mut a = node("a", &s3, &master, &policy);
    let mut b = node("b", &s3, &master, &policy);
    a.launch();
    b.launch();
    let (ingest_a, read_a) = (a.token("acme", "ingest"), a.token("acme", "read"));
    let (ingest_b, read_b) = (b.token("acme", "ingest"), b.token("acme", "read"));
    let analyst_b = b.token("acme", "security-analyst");

    // 1. An SQL injection through node A quarantines its source there.
    let attack = server_span(
        1,
        ATTACKER,
        "id=1' UNION SELECT username,password FROM users--",
    );
    let attack_trace = hex(&attack.trace_id);
    assert_eq!(
        send(&a, &ingest_a, attack),
        0,
        "the attack span itself is stored"
    );
    let q = quarantine_of(&json(&a, &read_a, "/api/responses"))
        .unwrap_or_else(|| panic!("node A put no quarantine in force; log:\n{}", a.log()));
    assert_eq!(q["status"], "active");
    assert_eq!(q["node"], "a");
    let id = q["id"].as_str().unwrap().to_string();
    assert_eq!(send(&a, &ingest_a, server_span(2, ATTACKER, "q=shoes")), 1);

    // 2. After a peer refresh node B refuses the source too (sets its spans aside), and
    //    lists A's action with its node; a bystander still flows through B.
    let mut n = 100;
    wait_for("node B applies node A's quarantine", &b, || {
        n += 1;
        (send(&b, &ingest_b, server_span(n, ATTACKER, "q=shoes")) == 1).then_some(())
    });
    assert_eq!(
        send(&b, &ingest_b, server_span(3, "192.0.2.44", "q=shoes")),
        0
    );
    let on_b = quarantine_of(&json(&b, &read_b, "/api/responses"))
        .unwrap_or_else(|| panic!("node B does not list A's quarantine"));
    assert_eq!(on_b["id"], id.as_str());
    assert_eq!(on_b["node"], "a");
    assert_eq!(on_b["status"], "active");

    // 3. Node B's findings API shows A's finding, with the node it came from.
    let found = wait_for("node B lists node A's finding", &b, || {
        let v = json(
            &b,
            &read_b,
            &format!("/api/findings?trace_id={attack_trace}&family=sqli"),
        );
        v["data"].as_array().and_then(|d| d.first().cloned())
    });
    assert_eq!(found["unmapped"]["sentrace_node"], "a", "{found}");
    assert_eq!(found["src_endpoint"]["ip"], ATTACKER);
    assert_eq!(
        found["evidences"][0]["data"]["trace_id"],
        attack_trace.as_str()
    );
    // Node A answers its own finding with its own name.
    let own = json(
        &a,
        &read_a,
        &format!("/api/findings?trace_id={attack_trace}"),
    );
    assert_eq!(own["data"][0]["unmapped"]["sentrace_node"], "a", "{own}");

    // 4. The bucket holds both snapshots sealed: no target, snippet or rule in clear.
    let client = s3.client();
    let objects = list(&client);
    let runtime = rt();
    for kind in ["quarantine", "findings"] {
        let path = objects
            .iter()
            .find(|p| p.as_ref() == format!("shared/nodes/a/_shared/{kind}/acme.sealed"))
            .unwrap_or_else(|| panic!("no published {kind} of node a in {objects:?}"));
        let bytes =
            runtime.block_on(async { client.get(path).await.unwrap().bytes().await.unwrap() });
        assert!(bytes.starts_with(b"STSS1\n"));
        for clear in [ATTACKER.as_bytes(), b"UNION", b"quarantine-sqli"] {
            assert!(
                !bytes.windows(clear.len()).any(|w| w == clear),
                "{kind} object in clear"
            );
        }
    }

    // 5. An undo through node B releases the source on B at once and on A after a refresh;
    //    A records it as lifted by node b.
    let r = b
        .client()
        .post(b.query_url(&format!("/api/responses/{id}/undo")))
        .bearer_auth(&analyst_b)
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200, "{}", r.text().unwrap_or_default());
    assert_eq!(
        send(&b, &ingest_b, server_span(4, ATTACKER, "q=boots")),
        0,
        "B still refuses"
    );
    wait_for("node A honours node B's undo", &a, || {
        n += 1;
        (send(&a, &ingest_a, server_span(n, ATTACKER, "q=boots")) == 0).then_some(())
    });
    let after = quarantine_of(&json(&a, &read_a, "/api/responses")).unwrap();
    assert_eq!(after["status"], "undone");
    let undo_file = std::fs::read_to_string(a.data.join("responses").join("undo.jsonl")).unwrap();
    assert!(
        undo_file.contains(&id),
        "A adopted the lift durably: {undo_file}"
    );

    // 6. The lift holds after node A restarts (its own undo file), and B keeps accepting.
    a.stop();
    a.launch();
    assert_eq!(send(&a, &ingest_a, server_span(5, ATTACKER, "q=hats")), 0);
    n += 1;
    assert_eq!(send(&b, &ingest_b, server_span(n, ATTACKER, "q=hats")), 0);
}
