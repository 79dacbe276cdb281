//! One node on an S3-compatible object store: a real S3 server (`s3s-fs`, installed by
//! `scripts/test.sh`; its path in `SENTRACE_S3_SERVER`) on loopback with access keys made
//! here. The core end-to-end cases pass as on the local file system: ingest, Jaeger read,
//! kill -9 and restart, flush into the bucket, read back from it, `sentrace verify` clean,
//! and a block overwritten through the S3 API reported by `verify`. A store that does not
//! answer stops the start with an error naming its URL and never the secret key. A
//! subject's erasure with `--config` logs its statement in the node's log in the bucket:
//! `verify --store` stays clean and the subject's token no longer opens.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::s3::*;
use common::*;

const PREFIX: &str = "node-a";

/// `sentrace ARGS --data-dir DATA --config CONFIG` with the S3 environment, as an operator
/// runs the offline commands on a bucket node.
fn cli(srv: &Server, s3: &S3Server, args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .args(args)
        .arg("--data-dir")
        .arg(&srv.data)
        .arg("--config")
        .arg(&srv.config)
        .envs(s3.env())
        .output()
        .unwrap()
}

/// `sentrace verify --json --config CONFIG` with the S3 environment.
fn verify(srv: &Server, s3: &S3Server) -> (i32, serde_json::Value, String) {
    let out = cli(srv, s3, &["verify", "--json"]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let v = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("verify printed no JSON ({e}); stderr: {stderr}"));
    (out.status.code().unwrap_or(-1), v, stderr)
}

fn set_flush_interval(config: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(config).unwrap();
    assert!(text.contains(from));
    std::fs::write(config, text.replace(from, to)).unwrap();
}

#[test]
fn one_node_on_s3_ingest_read_kill9_verify_tamper() {
    let s3 = S3Server::start();
    let client = s3.client();
    let mut srv = Server::new(&format!(
        "[store]\nurl = \"s3://{BUCKET}/{PREFIX}\"\nflush_interval = \"1h\"\n"
    ));
    srv.env = s3.env();
    srv.launch();
    let admin = srv.admin_token.clone().unwrap();

    // Ingest: 10 requests of 20 spans, each span its own trace.
    let mut ids = Vec::new();
    for r in 0..10u64 {
        let spans: Vec<_> = (0..20u64).map(|i| span(r * 1000 + i, "op")).collect();
        ids.extend(spans.iter().map(|s| hex(&s.trace_id)));
        let resp = srv.post_proto(&admin, &request("s3-node", spans));
        assert_eq!(resp.status().as_u16(), 200);
    }
    read_all(&srv, &admin, &ids, "from the WAL");

    // kill -9 with everything in the WAL: nothing acknowledged is lost.
    srv.kill9();
    srv.launch();
    read_all(&srv, &admin, &ids, "after kill -9 (WAL replay)");

    // Flush into the bucket (a short interval), wait until every span is in a block.
    srv.stop();
    set_flush_interval(&srv.config, "\"1h\"", "\"1s\"");
    srv.launch();
    let total = ids.len() as u64;
    let deadline = Instant::now() + Duration::from_secs(120);
    while flushed_spans(&srv.log()) < total {
        assert!(
            Instant::now() < deadline,
            "spans were not flushed into the bucket; log:\n{}",
            srv.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let objects = list(&client);
    let blocks: Vec<_> = objects
        .iter()
        .filter(|p| p.as_ref().ends_with(".parquet"))
        .collect();
    assert!(!blocks.is_empty(), "no block in the bucket: {objects:?}");
    assert!(
        objects
            .iter()
            .all(|p| p.as_ref().starts_with(&format!("{PREFIX}/"))),
        "object outside the prefix: {objects:?}"
    );
    assert!(
        objects
            .iter()
            .any(|p| p.as_ref() == format!("{PREFIX}/nodes/sentrace/log/default/checkpoint")),
        "the transparency log is not in the bucket: {objects:?}"
    );
    let local: Vec<_> = files_under(&srv.data)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
        .collect();
    assert!(local.is_empty(), "blocks on local disk: {local:?}");

    // kill -9 after the flush: the WAL segments are gone, the reads come from the bucket.
    srv.kill9();
    srv.launch();
    read_all(&srv, &admin, &ids, "after kill -9 (from the bucket)");
    srv.stop();

    // No credential in the server's log.
    let log = srv.log();
    assert!(!log.contains(&s3.secret), "the secret key is in the log");
    assert!(!log.contains(&s3.key), "the access key id is in the log");

    // verify reads the same bucket through --config: clean.
    let (code, report, stderr) = verify(&srv, &s3);
    assert_eq!(code, 0, "verify: {report:#}\n{stderr}");
    assert_eq!(report["ok"], true);
    let logs = report["logs"].as_array().unwrap();
    assert_eq!(logs.len(), 1, "{report:#}");
    // Every node of the bucket (one here): the log of node `sentrace`, tenant `default`.
    assert_eq!(logs[0]["tenant"], "sentrace/default");

    // Tamper: overwrite one block through the S3 API (one byte changed).
    let victim = blocks[0].clone();
    flip_middle_byte(&client, &victim);
    let (code, report, stderr) = verify(&srv, &s3);
    assert_eq!(code, 1, "tampering not detected: {report:#}\n{stderr}");
    assert_eq!(report["ok"], false);
    let name = victim.filename().unwrap();
    let findings = verify_findings(&report);
    assert!(
        findings
            .iter()
            .any(|f| f["kind"] == "modified" && f.to_string().contains(name)),
        "no `modified` finding naming {name}: {findings:#?}"
    );
}

#[test]
fn unreachable_store_is_a_clear_error_without_credentials() {
    let srv = Server::new("[store]\nurl = \"s3://traces/node-b\"\n");
    let secret = format!("SECRET{}", random_hex(16));
    // A port nothing listens on.
    let port = free_port();
    let out = Command::new(BIN)
        .args(["serve", "--data-dir"])
        .arg(&srv.data)
        .arg("--config")
        .arg(&srv.config)
        .env("AWS_ENDPOINT_URL", format!("http://127.0.0.1:{port}"))
        .env("AWS_ACCESS_KEY_ID", "AKIDTESTKEY")
        .env("AWS_SECRET_ACCESS_KEY", &secret)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ALLOW_HTTP", "true")
        .env("RUST_LOG", "debug")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "started without its store: {stderr}");
    assert!(
        stderr.contains("object store s3://traces/node-b"),
        "the error does not name the store: {stderr}"
    );
    assert!(
        !stderr.contains(&secret) && !stdout.contains(&secret),
        "the secret key was printed"
    );
}

/// The token a span's `user.email` became (`tok:email:…`), read through the Jaeger API.
fn email_token(srv: &Server, token: &str, trace: &str) -> String {
    let v: serde_json::Value = srv
        .get(token, &format!("/api/traces/{trace}"))
        .json()
        .unwrap();
    v["data"][0]["spans"][0]["tags"]
        .as_array()
        .unwrap_or_else(|| panic!("trace {trace}: {v}"))
        .iter()
        .find(|t| t["key"] == "user.email")
        .unwrap_or_else(|| panic!("no user.email in trace {trace}: {v}"))["value"]
        .as_str()
        .unwrap()
        .to_string()
}

/// `GET /api/detokenize` of `tok`: its status and body.
fn detokenize(srv: &Server, token: &str, tok: &str) -> (u16, String) {
    let r = srv.get(token, &format!("/api/detokenize?token={tok}"));
    (r.status().as_u16(), r.text().unwrap())
}

#[test]
fn subject_erasure_on_a_bucket_node_is_logged_in_the_bucket() {
    // A node on the bucket whose emails become reversible tokens (originals in its vault),
    // flushing every second so that its spans and log are in the bucket before the erasure.
    let s3 = S3Server::start();
    let url = format!("s3://{BUCKET}/{PREFIX}");
    let mut srv = Server::new(&format!(
        "[store]\nurl = \"{url}\"\nflush_interval = \"1s\"\n"
    ));
    let policy = srv.dir.path().join("policy.toml");
    std::fs::write(&policy, "version = 1\n[actions]\nemail = \"token\"\n").unwrap();
    let mut config = std::fs::read_to_string(&srv.config).unwrap();
    config.push_str(&format!("[minimize]\npolicy = \"{}\"\n", policy.display()));
    std::fs::write(&srv.config, config).unwrap();
    srv.env = s3.env();
    srv.launch();
    let admin = srv.admin_token.clone().unwrap();
    let mut traces = Vec::new();
    for (i, who) in ["jane@example.com", "john@example.com"].iter().enumerate() {
        let mut s = span(700 + i as u64, "login");
        s.attributes.push(kv("user.email", who));
        traces.push(hex(&s.trace_id));
        let r = srv.post_proto(&admin, &request("auth", vec![s]));
        assert_eq!(r.status().as_u16(), 200);
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    while flushed_spans(&srv.log()) < 2 {
        assert!(
            Instant::now() < deadline,
            "spans were not flushed into the bucket; log:\n{}",
            srv.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let (jane, john) = (
        email_token(&srv, &admin, &traces[0]),
        email_token(&srv, &admin, &traces[1]),
    );
    assert!(
        jane.starts_with("tok:email:") && jane != john,
        "{jane} {john}"
    );
    let (status, body) = detokenize(&srv, &admin, &jane);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("jane@example.com"), "{body}");
    srv.stop();

    // The erasure, with the node's configuration: its statement goes into the node's log in
    // the bucket.
    let out = cli(
        &srv,
        &s3,
        &[
            "subject",
            "erase",
            "--tenant",
            "default",
            "--value",
            "jane@example.com",
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "subject erase: {stderr}");
    let receipt: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("no receipt ({e}): {stderr}"));
    assert_eq!(receipt["statement"]["type"], "sentrace.subject-erasure.v1");
    assert_eq!(receipt["log"]["origin"], "sentrace/default", "{receipt}");

    // `verify --store` reads every node's log in the bucket: clean, the statement included.
    let out = Command::new(BIN)
        .args(["verify", "--json", "--store", &url, "--data-dir"])
        .arg(&srv.data)
        .envs(s3.env())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("verify printed no JSON ({e}): {stderr}"));
    assert_eq!(
        out.status.code(),
        Some(0),
        "verify --store: {report:#}\n{stderr}"
    );
    assert!(verify_findings(&report).is_empty(), "{report:#}");
    let log = report["logs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["tenant"] == "sentrace/default")
        .unwrap_or_else(|| panic!("no log sentrace/default: {report:#}"))
        .clone();
    let size = log["report"]["checkpoint_size"].as_u64().unwrap_or(0);
    let index = receipt["log"]["index"].as_u64().unwrap();
    assert!(
        size > index,
        "the statement's entry {index} is in the bucket's log: {log:#}"
    );

    // Restarted, the node no longer opens the subject's token; the other subject's opens.
    srv.launch();
    let (status, body) = detokenize(&srv, &admin, &jane);
    assert_eq!(status, 404, "{body}");
    let (status, body) = detokenize(&srv, &admin, &john);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("john@example.com"), "{body}");
    srv.stop();
}

/// The provider's server-side encryption is asked for on every upload when the operator
/// sets it, on top of Sentrace's own: seen on the wire (a recording relay in front of the
/// real S3 server, which stores the objects but does not implement SSE itself).
#[test]
fn server_side_encryption_is_asked_on_every_upload() {
    let s3 = S3Server::start();
    let relay = Recorder::start(s3.port);
    let mut srv = Server::new(&format!(
        "[store]\nurl = \"s3://{BUCKET}/{PREFIX}\"\nflush_interval = \"1s\"\n"
    ));
    srv.env = s3
        .env()
        .into_iter()
        .map(|(k, v)| match k.as_str() {
            "AWS_ENDPOINT_URL" => (k, format!("http://127.0.0.1:{}", relay.port)),
            _ => (k, v),
        })
        .chain([(
            "AWS_SERVER_SIDE_ENCRYPTION".to_string(),
            "AES256".to_string(),
        )])
        .collect();
    srv.launch();
    let admin = srv.admin_token.clone().unwrap();
    let spans: Vec<_> = (0..20u64).map(|i| span(77_000 + i, "op")).collect();
    let ids: Vec<_> = spans.iter().map(|s| hex(&s.trace_id)).collect();
    let resp = srv.post_proto(&admin, &request("sse-node", spans));
    assert_eq!(resp.status().as_u16(), 200);
    let deadline = Instant::now() + Duration::from_secs(120);
    while flushed_spans(&srv.log()) < ids.len() as u64 {
        assert!(
            Instant::now() < deadline,
            "spans were not flushed into the bucket; log:\n{}",
            srv.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    read_all(&srv, &admin, &ids, "from the bucket through the relay");
    srv.stop();

    let heads = relay.request_heads();
    let puts: Vec<_> = heads.iter().filter(|h| h.starts_with("put ")).collect();
    assert!(
        puts.iter().any(|h| h.contains(".parquet ")),
        "no block upload seen: {heads:#?}"
    );
    for put in &puts {
        assert!(
            put.contains("\r\nx-amz-server-side-encryption: aes256"),
            "an upload without server-side encryption:\n{put}"
        );
    }
    // The objects are in the real server's bucket, and only Sentrace can read them: what
    // the provider encrypts is already ciphertext.
    let blocks: Vec<_> = list(&s3.client())
        .into_iter()
        .filter(|p| p.as_ref().ends_with(".parquet"))
        .collect();
    assert!(!blocks.is_empty());
}
