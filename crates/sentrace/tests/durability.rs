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
