//! Durability and at-rest secrecy on the real server: kill -9 right after acknowledgement
//! loses nothing; a damaged WAL tail is cut and reported while intact records are served; no
//! plaintext span name or attribute value is anywhere in the data directory.

mod common;

use std::path::{Path, PathBuf};

use std::time::{Duration, Instant};

use common::*;

fn trace_status(srv: &Server, token: &str, trace_id: &str) -> u16 {
    srv.get(token, &format!("/api/traces/{trace_id}"))
        .status()
        .as_u16()
}

#[test]
fn kill_9_after_ack_loses_nothing() {
    let mut srv = Server::new("[store]\nflush_interval = \"1h\"\n").start();
    let admin = srv.admin_token.clone().unwrap();
    let mut ids = Vec::new();
    for r in 0..20u64 {
        let spans: Vec<_> = (0..25u64).map(|i| span(r * 1000 + i, "work")).collect();
        ids.extend(spans.iter().map(|s| hex(&s.trace_id)));
        let resp = srv.post_proto(&admin, &request("durable", spans));
        assert_eq!(resp.status().as_u16(), 200);
    }
    srv.kill9();
    srv.launch();
    for id in &ids {
        assert_eq!(
            trace_status(&srv, &admin, id),
            200,
            "acknowledged trace {id} lost"
        );
    }
}

fn newest_wal_segment(data: &Path) -> PathBuf {
    let mut segs: Vec<PathBuf> = files_under(&data.join("wal"))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "wal"))
        .collect();
    segs.sort();
    segs.pop().expect("no WAL segment")
}

#[test]
fn damaged_wal_tail_is_cut_and_reported() {
    let mut srv = Server::new("[store]\nflush_interval = \"1h\"\n").start();
    let admin = srv.admin_token.clone().unwrap();
    let first = span(1, "first");
    let last = span(2, "last");
    let (first_id, last_id) = (hex(&first.trace_id), hex(&last.trace_id));
    assert_eq!(
        srv.post_proto(&admin, &request("wal", vec![first]))
            .status()
            .as_u16(),
        200
    );
    assert_eq!(
        srv.post_proto(&admin, &request("wal", vec![last]))
            .status()
            .as_u16(),
        200
    );
    srv.kill9();

    let seg = newest_wal_segment(&srv.data);
    let mut bytes = std::fs::read(&seg).unwrap();
    let n = bytes.len();
    for b in &mut bytes[n - 8..] {
        *b ^= 0x5a;
    }
    std::fs::write(&seg, &bytes).unwrap();

    srv.launch();
    assert_eq!(
        trace_status(&srv, &admin, &first_id),
        200,
        "intact record lost"
    );
    assert_eq!(
        trace_status(&srv, &admin, &last_id),
        404,
        "damaged record was read"
    );
    let log = srv.log();
    assert!(
        log.contains("WAL tail cut"),
        "the cut was not reported; log:\n{log}"
    );
}

#[test]
fn no_plaintext_at_rest() {
    let mut srv = Server::new("[store]\nflush_interval = \"1s\"\n").start();
    let admin = srv.admin_token.clone().unwrap();
    let needles = [
        "checkout-service-plaintext",
        "charge-card-operation",
        "customer-attribute-value-7731",
        "event-attribute-value-4412",
    ];
    let mut s = span(5, needles[1]);
    s.attributes.push(kv("customer.note", needles[2]));
    s.events
        .push(opentelemetry_proto::tonic::trace::v1::span::Event {
            name: "audit".into(),
            time_unix_nano: s.start_time_unix_nano,
            attributes: vec![kv("detail", needles[3])],
            ..Default::default()
        });
    let tid = hex(&s.trace_id);
    assert_eq!(
        srv.post_proto(&admin, &request(needles[0], vec![s]))
            .status()
            .as_u16(),
        200
    );

    let data = srv.data.clone();
    let check = |stage: &str| {
        for f in files_under(&data) {
            // The running server renames and removes files (atomic writes, flushed WAL
            // segments); one gone since the listing held nothing to check.
            let bytes = match std::fs::read(&f) {
                Ok(b) => b,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => panic!("reading {}: {e}", f.display()),
            };
            for n in needles {
                assert!(
                    !bytes.windows(n.len()).any(|w| w == n.as_bytes()),
                    "{stage}: {n:?} in plaintext in {}",
                    f.display()
                );
            }
        }
    };
    // In the WAL.
    check("after ingest");
    // In blocks: wait for the flush.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !files_under(&srv.data)
        .iter()
        .any(|p| p.extension().is_some_and(|e| e == "parquet"))
    {
        assert!(Instant::now() < deadline, "no block was flushed");
        std::thread::sleep(Duration::from_millis(100));
    }
    check("after flush");
    // Still readable from the block.
    assert_eq!(trace_status(&srv, &admin, &tid), 200);
    srv.stop();
    check("after shutdown");
}

/// The writes the stages queue to writer threads (vault tokens, findings) are durable when
/// the export is acknowledged: kill -9 right after, and every token still reverses and
/// every finding is still listed.
#[test]
fn tokens_and_findings_acknowledged_survive_kill_9() {
    let mut srv = tokenizing_server();
    let admin = srv.admin_token.clone().unwrap();
    let mut sent = Vec::new();
    for r in 0..10u64 {
        let mut s = span(r + 1, "GET /products");
        let email = format!("subject-{r}@example.com");
        s.attributes = vec![
            kv("http.request.method", "GET"),
            kv("url.path", "/products"),
            kv("url.query", "id=1' OR '1'='1' --"),
            kv("http.route", "/products"),
            kv("client.address", "198.51.100.7"),
            kv("user.email", &email),
        ];
        sent.push((hex(&s.trace_id), email));
        let resp = srv.post_proto(&admin, &request("shop", vec![s]));
        assert_eq!(resp.status().as_u16(), 200);
    }
    srv.kill9();
    srv.launch();
    let master = sentrace_store::MasterKey::load(&srv.data.join("master.key")).unwrap();
    let keys = std::sync::Arc::new(
        sentrace_store::KeyRing::open(&srv.data.join("keys"), &master).unwrap(),
    );
    let vault = sentrace_store::Vault::open(&srv.data.join("vault"), keys).unwrap();
    let tenant = sentrace_core::TenantId::new("default").unwrap();
    for (trace, email) in &sent {
        let v: serde_json::Value = srv
            .get(&admin, &format!("/api/traces/{trace}"))
            .json()
            .unwrap();
        let tags = v["data"][0]["spans"][0]["tags"].as_array().unwrap();
        let token = tags
            .iter()
            .find(|t| t["key"] == "user.email")
            .and_then(|t| t["value"].as_str())
            .unwrap();
        let id = token.strip_prefix("tok:email:").unwrap_or(token);
        assert_eq!(
            vault.detokenize(&tenant, id).unwrap(),
            Some(("email".to_string(), email.clone())),
            "acknowledged token {token} of trace {trace} lost"
        );
        let f: serde_json::Value = srv
            .get(
                &admin,
                &format!("/api/findings?trace_id={trace}&family=sqli"),
            )
            .json()
            .unwrap();
        assert!(
            !f["data"].as_array().unwrap().is_empty(),
            "acknowledged finding of trace {trace} lost: {f}"
        );
    }
}
