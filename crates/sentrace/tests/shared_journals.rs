//! Quarantines and findings shared by two `sentrace serve` nodes through one bucket of a
//! real S3-compatible server (`s3s-fs`, see `common::s3`), with no coordinator: an SQL
//! injection sent through node A quarantines its source; after a peer refresh node B sets
//! that source's spans aside too and lists A's action; an undo through node B releases the
//! source on both; node B's findings API shows A's finding with its node. The published
//! objects are sealed (no target or snippet in clear in the bucket). One span sent through
//! both nodes is listed once. `/metrics` counts the uploads and reads. Erasing the tenant on
//! node A deletes A's key file and snapshots of it from the bucket, node B forgets A's
//! findings of it, and A, restarted, never publishes it again. Nothing here asserts timing:
//! every wait polls with a deadline.

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

/// The value of one series (name and labels exactly as exposed) in `/metrics`.
fn metric(srv: &Server, series: &str) -> Option<f64> {
    let admin = srv.admin_token.clone().unwrap();
    let text = srv.get(&admin, "/metrics").text().unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

/// Whether the bucket holds `path` (relative to the bucket).
fn exists(client: &object_store::aws::AmazonS3, path: &str) -> bool {
    list(client).iter().any(|p| p.as_ref() == path)
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
    // /metrics: A counted its upload, B its reads and the one peer quarantine it enforces.
    let published = r#"sentrace_shared_publish_total{kind="quarantine",outcome="ok"}"#;
    assert!(
        metric(&a, published).unwrap_or(0.0) >= 1.0,
        "{published} on A"
    );
    let fetched = r#"sentrace_shared_fetch_total{kind="quarantine",outcome="ok"}"#;
    assert!(metric(&b, fetched).unwrap_or(0.0) >= 1.0, "{fetched} on B");
    wait_for("B's metrics count A's quarantine", &b, || {
        (metric(&b, "sentrace_shared_peer_quarantines") == Some(1.0)).then_some(())
    });

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
    wait_for("B's metrics count A's findings", &b, || {
        (metric(&b, "sentrace_shared_peer_findings").unwrap_or(0.0) >= 1.0).then_some(())
    });

    // 3b. One span sent through both nodes (a client re-sending an export through another
    //     node; no client address, so no quarantine races it) is detected on both with the
    //     same uids (one per rule that fired) and listed once, under the first node name,
    //     by both nodes.
    let mut twice = server_span(7, "", "id=2' OR '1'='1");
    twice.attributes.retain(|kv| kv.key != "client.address");
    let twice_trace = hex(&twice.trace_id);
    assert_eq!(send(&a, &ingest_a, twice.clone()), 0);
    assert_eq!(send(&b, &ingest_b, twice), 0);
    let path = format!("/api/findings?trace_id={twice_trace}");
    let mut answers = Vec::new();
    for (srv, token, peer) in [(&b, &read_b, "a"), (&a, &read_a, "b")] {
        // Wait until this node holds the other's copy (B: A's copy sorts first; A: its
        // own sorts first, so wait for B's finding in its peer gauge).
        wait_for("both copies of the finding held", srv, || {
            let v = json(srv, token, &path);
            let first = v["data"].as_array()?.first()?.clone();
            let peer_held = metric(srv, "sentrace_shared_peer_findings").unwrap_or(0.0);
            (first["unmapped"]["sentrace_node"] == "a" && (peer == "a" || peer_held >= 1.0))
                .then_some(())
        });
        let v = json(srv, token, &path);
        let data = v["data"].as_array().unwrap();
        let mut uids: Vec<&str> = data
            .iter()
            .map(|f| f["metadata"]["uid"].as_str().unwrap())
            .collect();
        uids.sort();
        let listed = uids.len();
        uids.dedup();
        assert!(
            listed >= 1 && uids.len() == listed,
            "each uid listed once: {v}"
        );
        assert!(
            data.iter().all(|f| f["unmapped"]["sentrace_node"] == "a"),
            "under node a: {v}"
        );
        answers.push(uids.iter().map(|u| u.to_string()).collect::<Vec<_>>());
    }
    assert_eq!(answers[0], answers[1], "both nodes list the same findings");

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

    // 7. Erasing tenant acme on node A (stopped, with its configuration) deletes A's key
    //    file and snapshots of acme from the bucket; B's own objects stay.
    let a_objects = [
        "shared/nodes/a/keys/acme.json",
        "shared/nodes/a/_shared/quarantine/acme.sealed",
        "shared/nodes/a/_shared/findings/acme.sealed",
    ];
    for p in a_objects {
        assert!(exists(&client, p), "{p} before the erasure");
    }
    // Node B reads A's span of acme (A's block, A's key file) before the erasure.
    let trace_status = |id: &str| {
        b.get(&read_b, &format!("/api/traces/{id}"))
            .status()
            .as_u16()
    };
    wait_for("node B reads node A's span", &b, || {
        (trace_status(&attack_trace) == 200).then_some(())
    });
    // What the erasure leaves in the bucket when it runs without it: kept to put back below.
    let stale: Vec<(String, _)> = a_objects
        .iter()
        .map(|p| {
            let path = object_store::path::Path::from(*p);
            let bytes =
                runtime.block_on(async { client.get(&path).await.unwrap().bytes().await.unwrap() });
            (p.to_string(), bytes)
        })
        .collect();
    a.stop();
    let out = std::process::Command::new(BIN)
        .args(["tenant", "erase", "acme", "--yes", "--data-dir"])
        .arg(&a.data)
        .arg("--config")
        .arg(&a.config)
        .envs(a.env.iter().map(|(k, v)| (k, v)))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "tenant erase: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    for p in a_objects {
        assert!(!exists(&client, p), "{p} left after the erasure");
    }
    assert!(exists(
        &client,
        "shared/nodes/b/_shared/findings/acme.sealed"
    ));

    // 8. Node B forgets A's findings of acme at its next read (its own copy of the span
    //    both saw stays, now under its own name).
    wait_for("node B forgets node A's findings", &b, || {
        let v = json(
            &b,
            &read_b,
            &format!("/api/findings?trace_id={attack_trace}"),
        );
        v["data"].as_array()?.is_empty().then_some(())
    });
    let v = json(&b, &read_b, &path);
    assert_eq!(v["data"][0]["unmapped"]["sentrace_node"], "b", "{v}");
    // Nor does it read A's blocks of acme any more (A's key file is gone, and B deleted its
    // downloaded copy), while its own spans of acme read on.
    wait_for("node B stops reading node A's erased span", &b, || {
        (trace_status(&attack_trace) == 404).then_some(())
    });
    assert!(!b.data.join("peers").join("a").join("acme.json").exists());
    let bystander = hex(&server_span(3, "192.0.2.44", "q=shoes").trace_id);
    assert_eq!(trace_status(&bystander), 200, "B's own span of acme");

    // Put A's objects back, as if the erasure had run without --config: node A deletes them
    // when it starts.
    for (p, bytes) in &stale {
        let path = object_store::path::Path::from(p.as_str());
        runtime.block_on(async { client.put(&path, bytes.clone().into()).await.unwrap() });
    }

    // 9. Node A, restarted, does not bring the key file back and never publishes acme
    //    again: its next upload (another tenant's finding) leaves acme absent.
    a.launch();
    assert!(
        !a.data.join("keys").join("acme.json").exists(),
        "key restored"
    );
    for p in a_objects {
        assert!(!exists(&client, p), "{p} left after node A started");
    }
    let ingest_beta = a.token("beta", "ingest");
    let resp = a.post_proto(
        &ingest_beta,
        &request(
            "shop",
            vec![server_span(8, "198.51.100.3", "id=3' UNION SELECT 1--")],
        ),
    );
    assert_eq!(resp.status().as_u16(), 200);
    wait_for("node A publishes tenant beta", &a, || {
        exists(&client, "shared/nodes/a/_shared/findings/beta.sealed").then_some(())
    });
    for p in a_objects {
        assert!(!exists(&client, p), "{p} published again after the erasure");
    }

    // 10. The erasure statement is in node A's log in the bucket: `verify --store` reports
    //     A's earlier batches of acme as erased, nothing modified or missing.
    a.stop();
    b.stop();
    let out = std::process::Command::new(BIN)
        .args([
            "verify",
            "--json",
            "--store",
            URL,
            "--node",
            "a",
            "--data-dir",
        ])
        .arg(&a.data)
        .envs(a.env.iter().map(|(k, v)| (k, v)))
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "verify printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let a_acme = report["logs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["tenant"] == "a/acme")
        .unwrap_or_else(|| panic!("no log a/acme: {report}"));
    let findings = a_acme["report"]["findings"].as_array().unwrap();
    assert!(
        findings.iter().all(|f| f["kind"] == "erased"),
        "only erased batches in a/acme: {a_acme}"
    );
    assert!(a_acme["report"]["batches_erased"].as_u64().unwrap() >= 1);
    assert_eq!(out.status.code(), Some(0), "verify --store clean: {report}");
}
