//! Signed sources end to end: the real binary, real TLS, OTLP/HTTP and OTLP/gRPC clients
//! that sign with `SourceSignature` (through `sign_batch`), a key made by
//! `sentrace keys source-new`.

mod common;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{Server, grpc_client, request, rpc_status, span, verify_json};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use sentrace_ledger::manifest::{BatchManifest, SourceSigner, sign_batch};
use sentrace_server::sources::wire;
use serde_json::Value;

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
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

/// `keys source-new`: returns the signing key read back from the written file.
fn new_source(srv: &Server, tenant: &str, name: &str) -> SourceSigner {
    let out = srv.dir.path().join(format!("{name}.key"));
    let vkeys = srv.cli(&[
        "keys",
        "source-new",
        "--tenant",
        tenant,
        "--source",
        name,
        "--out",
        out.to_str().unwrap(),
    ]);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&out).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "secret key file mode");
    let key = SourceSigner::from_secret_string(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(vkeys.trim(), key.verifier().to_vkeys());
    key
}

fn batch(tag: u64, n: u64) -> ExportTraceServiceRequest {
    request(
        "signed-svc",
        (0..n).map(|i| span(tag * 100 + i, "signed-op")).collect(),
    )
}

fn headers(
    key: &SourceSigner,
    source: &str,
    seq: u64,
    at: u64,
    req: &ExportTraceServiceRequest,
) -> Vec<(&'static str, String)> {
    let sig = sign_batch(key, source, seq, at, &req.resource_spans).unwrap();
    wire::headers(source, seq, at, &sig).to_vec()
}

fn post(
    srv: &Server,
    token: &str,
    hdrs: &[(&'static str, String)],
    req: &ExportTraceServiceRequest,
) -> reqwest::blocking::Response {
    let mut b = srv
        .client()
        .post(srv.http_url())
        .bearer_auth(token)
        .header("content-type", "application/x-protobuf");
    for (k, v) in hdrs {
        b = b.header(*k, v);
    }
    b.body(req.encode_to_vec()).send().unwrap()
}

/// Posts and expects a 400 whose message contains every one of `needles`.
fn refused(
    srv: &Server,
    token: &str,
    hdrs: &[(&'static str, String)],
    req: &ExportTraceServiceRequest,
    needles: &[&str],
) {
    let (status, st) = rpc_status(post(srv, token, hdrs, req));
    assert_eq!(status, 400, "{}", st.message);
    assert_eq!(st.code, 3);
    for n in needles {
        assert!(st.message.contains(n), "{:?} lacks {n:?}", st.message);
    }
}

fn accepted(
    srv: &Server,
    token: &str,
    hdrs: &[(&'static str, String)],
    req: &ExportTraceServiceRequest,
) -> u64 {
    let r = post(srv, token, hdrs, req);
    let index = r.headers().get("sentrace-log-index").cloned();
    let status = r.status().as_u16();
    assert_eq!(status, 200, "{}", r.text().unwrap_or_default());
    index.unwrap().to_str().unwrap().parse().unwrap()
}

/// One unary gRPC Export with metadata; returns (grpc-status header if trailers-only,
/// grpc-message, the receipt's log index).
fn grpc_export(
    srv: &Server,
    token: &str,
    hdrs: &[(&'static str, String)],
    req: &ExportTraceServiceRequest,
) -> (Option<String>, String, Option<u64>) {
    let body = req.encode_to_vec();
    let mut frame = vec![0u8];
    frame.extend_from_slice(&(body.len() as u32).to_be_bytes());
    frame.extend_from_slice(&body);
    let mut b = grpc_client(srv)
        .post(format!(
            "https://localhost:{}/opentelemetry.proto.collector.trace.v1.TraceService/Export",
            srv.grpc_port
        ))
        .bearer_auth(token)
        .header("content-type", "application/grpc")
        .header("te", "trailers");
    for (k, v) in hdrs {
        b = b.header(*k, v);
    }
    let r = b.body(frame).send().unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let get = |k: &str| r.headers().get(k).map(|v| v.to_str().unwrap().to_string());
    let status = get("grpc-status");
    let message = get("grpc-message").unwrap_or_default();
    let index = get("sentrace-log-index").map(|v| v.parse().unwrap());
    (status, message, index)
}

fn sources_api(srv: &Server, token: &str) -> Value {
    let r = srv.get(token, "/api/sources");
    assert_eq!(r.status().as_u16(), 200);
    r.json().unwrap()
}

fn source_entry<'a>(v: &'a Value, name: &str) -> &'a Value {
    v["sources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("{name} not listed: {v}"))
}

/// The manifests of the default tenant's published log.
fn manifests(srv: &Server, token: &str, at_least: u64) -> Vec<BatchManifest> {
    let mut size = 0;
    wait_for("a checkpoint covering the batches", || {
        let r = srv.get(token, "/.well-known/sentrace/log/default/checkpoint");
        size = r
            .text()
            .ok()
            .and_then(|t| t.lines().nth(1).and_then(|l| l.parse().ok()))
            .unwrap_or(0);
        size >= at_least
    });
    assert!(size <= 256, "one entry bundle is enough for this test");
    let dir = srv.data.join("blocks").join("log").join("default");
    let path = sentrace_ledger::tiles::bundle_path(0, size);
    let bytes = std::fs::read(dir.join(&path)).unwrap();
    sentrace_ledger::tiles::decode_bundle(&path, &bytes, size)
        .unwrap()
        .into_iter()
        .map(|e| BatchManifest::decode(e).unwrap())
        .collect()
}

const CONFIG: &str = "[seal.checkpoint]\nevery_secs = 1\nevery_entries = 1\n[sources]\nrequire_signatures = [\"strict\"]\n";

#[test]
fn signed_batches_are_verified_replays_refused_gaps_recorded() {
    let srv = Server::new(CONFIG).start();
    let admin = srv.admin_token.clone().unwrap();
    let key = new_source(&srv, "default", "edge-1");

    // Signed over OTLP/HTTP: accepted with a receipt.
    let t = now();
    let b1 = batch(1, 3);
    let h1 = headers(&key, "edge-1", 1, t, &b1);
    let i1 = accepted(&srv, &admin, &h1, &b1);

    // Signed over OTLP/gRPC: accepted with a receipt.
    let b2 = batch(2, 2);
    let h2 = headers(&key, "edge-1", 2, now(), &b2);
    let (status, msg, i2) = grpc_export(&srv, &admin, &h2, &b2);
    assert!(
        status.is_none() || status.as_deref() == Some("0"),
        "{status:?} {msg}"
    );
    let i2 = i2.expect("gRPC receipt");
    assert!(i2 > i1);

    // The same batch again, on either transport: a replay.
    refused(&srv, &admin, &h1, &b1, &["sentrace-seq 1", "replay"]);
    let (status, msg, _) = grpc_export(&srv, &admin, &h2, &b2);
    assert_eq!(status.as_deref(), Some("3"), "{msg}");
    assert!(msg.contains("replay"), "{msg}");

    // Spans changed after signing.
    let b3 = batch(3, 2);
    let h3 = headers(&key, "edge-1", 3, now(), &b3);
    refused(
        &srv,
        &admin,
        &h3,
        &batch(33, 2),
        &["sentrace-signature", "span root"],
    );
    // A signature that does not verify (claims changed after signing).
    let mut moved = h3.clone();
    moved[1].1 = "4".into();
    refused(
        &srv,
        &admin,
        &moved,
        &b3,
        &["sentrace-signature", "does not verify"],
    );
    // Another key claiming the name: wrong key ID.
    let impostor =
        SourceSigner::generate(&sentrace_ledger::note::KeyName::new("edge-1").unwrap()).unwrap();
    refused(
        &srv,
        &admin,
        &headers(&impostor, "edge-1", 3, now(), &b3),
        &b3,
        &["sentrace-signature", "key ID"],
    );
    // Not registered at all.
    refused(
        &srv,
        &admin,
        &headers(&key, "edge-9", 3, now(), &b3),
        &b3,
        &["sentrace-source", "not registered for tenant default"],
    );
    // Malformed headers name the header.
    let mut bad = h3.clone();
    bad[1].1 = "three".into();
    refused(&srv, &admin, &bad, &b3, &["sentrace-seq", "malformed"]);
    refused(
        &srv,
        &admin,
        &h3[..3],
        &b3,
        &["sentrace-signature is missing"],
    );
    // Sent an hour ago: outside the time window.
    let old = now() - 3600 * 1_000_000_000;
    refused(
        &srv,
        &admin,
        &headers(&key, "edge-1", 3, old, &b3),
        &b3,
        &["sentrace-sent-at", "window"],
    );

    // None of the refusals used up sequence 3... which is then skipped: 10 opens a gap.
    let b10 = batch(10, 1);
    accepted(
        &srv,
        &admin,
        &headers(&key, "edge-1", 10, now(), &b10),
        &b10,
    );
    let v = sources_api(&srv, &admin);
    assert_eq!(v["tenant"], "default");
    assert_eq!(v["require_signatures"], false);
    let e = source_entry(&v, "edge-1");
    assert_eq!(e["registered"], true);
    assert_eq!(e["last_sequence"], 10);
    assert_eq!(e["gaps"], serde_json::json!([[3, 9]]));
    assert_eq!(e["missing_total"], 7);
    let metrics = srv.get(&admin, "/metrics").text().unwrap();
    assert!(
        metrics.contains("sentrace_source_sequence_gaps_total 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("sentrace_source_batches_refused_total{reason=\"replay\"} 2"),
        "{metrics}"
    );
    assert!(srv.log().contains("sequence gap"), "the gap is logged");

    // Unsigned: refused for a tenant that requires signatures, accepted for another.
    let strict = srv.token("strict", "ingest");
    let unsigned = batch(20, 1);
    refused(
        &srv,
        &strict,
        &[],
        &unsigned,
        &["tenant strict requires signed batches"],
    );
    accepted(&srv, &admin, &[], &unsigned);
    // A source registered for "default" cannot send for "strict" (nor any other tenant).
    let b21 = batch(21, 1);
    refused(
        &srv,
        &strict,
        &headers(&key, "edge-1", 11, now(), &b21),
        &b21,
        &["not registered for tenant strict"],
    );
    // Registered for "strict", it can: the server re-reads a changed registry file (its
    // cache of "strict"'s registry, filled by the refusal above, lasts up to a second).
    let skey = new_source(&srv, "strict", "edge-s");
    let hs = headers(&skey, "edge-s", 1, now(), &b21);
    wait_for("the new registration to be picked up", || {
        post(&srv, &strict, &hs, &b21).status().as_u16() == 200
    });

    // The signed statements are in the log, and verify against the registry.
    let log = manifests(&srv, &admin, 4);
    let signed: Vec<_> = log
        .iter()
        .filter(|m| m.source_signature.is_some())
        .collect();
    assert_eq!(
        signed
            .iter()
            .map(|m| (m.source.as_str(), m.sequence))
            .collect::<Vec<_>>(),
        [("edge-1", 1), ("edge-1", 2), ("edge-1", 10)]
    );
    assert_eq!(signed[0].source_time_unix_nanos, t);
    for m in &signed {
        // Some(changed): whether minimization changed the spans; the signature verifies.
        assert!(matches!(m.verify_source(&key.verifier()), Ok(Some(_))));
    }
    assert!(
        log.iter().any(|m| m.source_signature.is_none()),
        "the unsigned batch"
    );
}

#[test]
fn restarts_do_not_reopen_replays_and_verify_checks_source_signatures() {
    // No snapshot is due and no WAL segment is deleted before the crash: only the WAL's
    // manifests know what was accepted.
    let mut srv =
        Server::new("[store]\nflush_interval = \"1h\"\n[sources]\npersist_interval_secs = 3600\n")
            .start();
    let admin = srv.admin_token.clone().unwrap();
    let key = new_source(&srv, "default", "edge-1");
    let b1 = batch(1, 2);
    let h1 = headers(&key, "edge-1", 1, now(), &b1);
    accepted(&srv, &admin, &h1, &b1);
    let b2 = batch(2, 2);
    let h2 = headers(&key, "edge-1", 2, now(), &b2);
    accepted(&srv, &admin, &h2, &b2);

    srv.kill9();
    srv.launch();
    refused(&srv, &admin, &h1, &b1, &["sentrace-seq 1", "replay"]);
    refused(&srv, &admin, &h2, &b2, &["sentrace-seq 2", "replay"]);
    let b3 = batch(3, 1);
    let h3 = headers(&key, "edge-1", 3, now(), &b3);
    accepted(&srv, &admin, &h3, &b3);

    // A graceful stop saves the state; the next start refuses the replay too.
    srv.stop();
    assert!(srv.data.join("sources/default.replay.json").exists());
    srv.launch();
    refused(&srv, &admin, &h3, &b3, &["sentrace-seq 3", "replay"]);
    let e = source_entry(&sources_api(&srv, &admin), "edge-1").clone();
    assert_eq!(e["last_sequence"], 3);
    srv.stop();

    // Offline verification checks every signed entry against the registry.
    let (code, v) = verify_json(&srv.data, &[]);
    assert_eq!(code, 0, "{v:#}");
    // Swap the registered key: the log now holds batches "its source did not sign".
    let reg = srv.data.join("sources/default.toml");
    let other =
        SourceSigner::generate(&sentrace_ledger::note::KeyName::new("edge-1").unwrap()).unwrap();
    let text = std::fs::read_to_string(&reg)
        .unwrap()
        .replace(&key.verifier().to_vkeys(), &other.verifier().to_vkeys());
    std::fs::write(&reg, text).unwrap();
    let (code, v) = verify_json(&srv.data, &[]);
    assert_eq!(code, 1, "{v:#}");
    let forged: Vec<_> = v["logs"][0]["report"]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"] == "forged")
        .collect();
    assert_eq!(forged.len(), 3, "{v:#}");
}
