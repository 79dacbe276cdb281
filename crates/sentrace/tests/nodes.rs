//! Several `sentrace serve` nodes sharing one bucket of a real S3-compatible server
//! (`s3s-fs`, see `common::s3`), with no coordinator: traces sent to each node are read
//! through every node after a flush, with identical answers; one node killed with -9 during
//! ingest loses nothing it acknowledged; `verify --store` is clean for every node's log and
//! names a block modified through the S3 API; a node started with another master key
//! refuses to start, naming both keys.

mod common;

use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::s3::*;
use common::*;

const URL: &str = "s3://traces/cluster";

/// A node of the cluster: its name, the shared bucket, a short flush and listing interval.
fn node(name: &str, s3: &S3Server, master: &str) -> Server {
    let mut srv = Server::new(&format!(
        "[seal]\nnode = \"{name}\"\n[store]\nurl = \"{URL}\"\nflush_interval = \"1s\"\npeer_refresh_interval = \"1s\"\n"
    ));
    srv.env = s3.env();
    srv.env
        .push(("SENTRACE_MASTER_KEY".into(), master.to_string()));
    srv
}

/// Sends `count` one-span traces numbered from `first` to `srv`; returns their ids.
fn ingest(srv: &Server, first: u64, count: u64) -> Vec<String> {
    let admin = srv.admin_token.clone().unwrap();
    let mut ids = Vec::new();
    for r in 0..count / 10 {
        let spans: Vec<_> = (0..10u64).map(|i| span(first + r * 10 + i, "op")).collect();
        let resp = srv.post_proto(&admin, &request("cluster-svc", spans.clone()));
        assert_eq!(resp.status().as_u16(), 200, "{}", resp.text().unwrap());
        ids.extend(spans.iter().map(|s| hex(&s.trace_id)));
    }
    ids
}

/// The trace as `srv` answers it (`None` until it has exactly its one span).
fn read_trace(srv: &Server, id: &str) -> Option<serde_json::Value> {
    let token = srv.admin_token.clone().unwrap();
    let resp = srv.get(&token, &format!("/api/traces/{id}"));
    if resp.status().as_u16() != 200 {
        return None;
    }
    let body: serde_json::Value = serde_json::from_str(&resp.text().ok()?).ok()?;
    let spans = body["data"][0]["spans"].as_array()?;
    (spans.len() == 1).then(|| spans[0].clone())
}

/// Waits until `srv` answers every trace of `ids`; returns the answers.
fn read_everywhere(srv: &Server, ids: &[String], stage: &str) -> Vec<serde_json::Value> {
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut out = Vec::new();
    for id in ids {
        loop {
            if let Some(s) = read_trace(srv, id) {
                out.push(s);
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{stage}: trace {id} is not visible; log:\n{}",
                srv.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    out
}

/// Waits until `srv`'s log reports at least `spans` spans flushed into blocks.
fn wait_flushed(srv: &Server, spans: u64) {
    let deadline = Instant::now() + Duration::from_secs(90);
    while flushed_spans(&srv.log()) < spans {
        assert!(
            Instant::now() < deadline,
            "spans were not flushed; log:\n{}",
            srv.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `sentrace verify --store URL --json` from `srv`'s data directory.
fn verify_store(srv: &Server, s3: &S3Server, master: &str) -> (i32, serde_json::Value, String) {
    let out = Command::new(BIN)
        .args(["verify", "--json", "--store", URL, "--node"])
        .arg(node_name(srv))
        .arg("--data-dir")
        .arg(&srv.data)
        .envs(s3.env())
        .env("SENTRACE_MASTER_KEY", master)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let v = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("verify printed no JSON ({e}); stderr: {stderr}"));
    (out.status.code().unwrap_or(-1), v, stderr)
}

fn node_name(srv: &Server) -> String {
    let text = std::fs::read_to_string(&srv.config).unwrap();
    let line = text.lines().find(|l| l.starts_with("node = ")).unwrap();
    line.trim_start_matches("node = ")
        .trim_matches('"')
        .to_string()
}

fn metric(text: &str, name: &str) -> Option<u64> {
    text.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[test]
fn three_nodes_share_a_bucket_read_everything_survive_kill9_and_verify() {
    let s3 = S3Server::start();
    let master = random_hex(32);
    let mut nodes: Vec<Server> = ["a", "b", "c"]
        .iter()
        .map(|n| node(n, &s3, &master))
        .collect();
    for n in &mut nodes {
        n.launch();
    }

    // Traces sent to each node.
    let mut ids = Vec::new();
    for (i, n) in nodes.iter().enumerate() {
        ids.extend(ingest(n, 100_000 * (i as u64 + 1), 50));
    }
    for n in &nodes {
        wait_flushed(n, 50);
    }
    // Every node answers every trace, with the same answer.
    let answers: Vec<_> = nodes
        .iter()
        .map(|n| read_everywhere(n, &ids, "after the flush"))
        .collect();
    assert_eq!(answers[0], answers[1], "nodes a and b answer differently");
    assert_eq!(answers[0], answers[2], "nodes a and c answer differently");

    // Operators see the other nodes and the freshness bound in the metrics.
    let admin = nodes[0].admin_token.clone().unwrap();
    let m = nodes[0].get(&admin, "/metrics").text().unwrap();
    assert_eq!(metric(&m, "sentrace_peer_nodes"), Some(2), "{m}");
    // The bound: the peers' flush interval (1 s) plus their last flush's duration, plus
    // this node's listing interval (1 s), rounded up.
    // The peers publish their flush duration in node.json after a flush; node a reads it
    // at its next listing.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let (m, peer_flush) = loop {
        let m = nodes[0].get(&admin, "/metrics").text().unwrap();
        let f = m
            .lines()
            .find_map(|l| l.strip_prefix("sentrace_peer_flush_seconds "))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .unwrap_or(0.0);
        if f > 0.0 {
            break (m, f);
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no peer flush duration: {m}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let bound = metric(&m, "sentrace_peer_visibility_bound_seconds").unwrap();
    assert_eq!(
        bound as f64,
        (2.0 + peer_flush).ceil(),
        "flush 1s + its duration {peer_flush}s + listing 1s: {m}"
    );
    // The unauthenticated probe stays one word.
    let ready = nodes[0]
        .client()
        .get(nodes[0].query_url("/readyz"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert_eq!(ready, "ready\n");

    // kill -9 node b while a client sends to it: nothing it acknowledged is lost.
    let acked = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let sender = {
        let (acked, stop) = (acked.clone(), stop.clone());
        let (client, url, admin) = (
            nodes[1].client(),
            nodes[1].http_url(),
            nodes[1].admin_token.clone().unwrap(),
        );
        std::thread::spawn(move || {
            use prost::Message;
            let mut r = 0u64;
            while !stop.load(Ordering::Acquire) {
                let spans: Vec<_> = (0..10u64)
                    .map(|i| span(900_000 + r * 10 + i, "op"))
                    .collect();
                let body = request("cluster-svc", spans.clone()).encode_to_vec();
                let ok = client
                    .post(&url)
                    .bearer_auth(&admin)
                    .header("content-type", "application/x-protobuf")
                    .body(body)
                    .send()
                    .is_ok_and(|resp| resp.status().as_u16() == 200);
                if !ok {
                    break;
                }
                acked
                    .lock()
                    .unwrap()
                    .extend(spans.iter().map(|s| hex(&s.trace_id)));
                r += 1;
            }
        })
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while acked.lock().unwrap().len() < 200 {
        assert!(Instant::now() < deadline, "node b acknowledged too little");
        std::thread::sleep(Duration::from_millis(20));
    }
    nodes[1].kill9();
    stop.store(true, Ordering::Release);
    sender.join().unwrap();
    let acked = acked.lock().unwrap().clone();
    nodes[1].launch();
    // Through node b itself (its WAL replayed) and, after its flush, through a and c.
    read_everywhere(&nodes[1], &acked, "node b after kill -9");
    wait_flushed(&nodes[1], 50 + acked.len() as u64);
    read_everywhere(&nodes[0], &acked, "node a, node b's spans after kill -9");
    read_everywhere(&nodes[2], &acked, "node c, node b's spans after kill -9");

    // Everything flushed, then stopped: verify --store checks all three logs.
    for n in &mut nodes {
        n.stop();
    }
    let (code, report, stderr) = verify_store(&nodes[0], &s3, &master);
    assert_eq!(code, 0, "verify --store: {report:#}\n{stderr}");
    let logs: Vec<&str> = report["logs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["tenant"].as_str().unwrap())
        .collect();
    assert_eq!(logs, ["a/default", "b/default", "c/default"], "{report:#}");

    // A block of node c modified through the S3 API is named.
    let client = s3.client();
    let victim = list(&client)
        .into_iter()
        .find(|p| {
            p.as_ref().starts_with("cluster/nodes/c/default/") && p.as_ref().ends_with(".parquet")
        })
        .expect("node c has a block");
    flip_middle_byte(&client, &victim);
    let (code, report, stderr) = verify_store(&nodes[0], &s3, &master);
    assert_eq!(code, 1, "tampering not detected: {report:#}\n{stderr}");
    let named = victim.as_ref().trim_start_matches("cluster/").to_string();
    let findings = verify_findings(&report);
    assert!(
        findings
            .iter()
            .any(|f| f["kind"] == "modified" && f["block"] == named.as_str()),
        "no `modified` finding naming {named}: {findings:#?}"
    );
}

#[test]
fn a_node_with_another_master_key_refuses_to_start() {
    let s3 = S3Server::start();
    let master = random_hex(32);
    let mut first = node("a", &s3, &master);
    first.launch();
    ingest(&first, 1, 10);
    wait_flushed(&first, 10);
    first.stop();

    let other = random_hex(32);
    let stranger = node("z", &s3, &other);
    let out = Command::new(BIN)
        .args(["serve", "--data-dir"])
        .arg(&stranger.data)
        .arg("--config")
        .arg(&stranger.config)
        .envs(stranger.env.iter().map(|(k, v)| (k, v)))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "started under another master key: {stderr}"
    );
    assert!(
        stderr.contains("wrapped under master key local-")
            && stderr.contains("but this node's master key is local-")
            && stderr.contains("refusing to start"),
        "the error does not name both master keys: {stderr}"
    );
    assert!(
        !stderr.contains(&other) && !stderr.contains(&master),
        "a key was printed"
    );
    // It wrote nothing into the bucket.
    let names = list(&s3.client());
    assert!(
        !names
            .iter()
            .any(|p| p.as_ref().starts_with("cluster/nodes/z/")),
        "{names:?}"
    );
}

#[test]
fn the_store_down_for_20s_during_ingest_loses_nothing_and_reads_say_retry() {
    let mut s3 = S3Server::start();
    let master = random_hex(32);
    let mut srv = node("a", &s3, &master);
    srv.launch();
    let flushed = ingest(&srv, 1, 50);
    wait_flushed(&srv, 50);
    read_everywhere(&srv, &flushed, "before the outage");

    // The S3 server stops for 20 s; ingest keeps acknowledging from the WAL.
    s3.stop();
    let down = Instant::now();
    let during = ingest(&srv, 5_000, 50);
    read_everywhere(&srv, &during, "spans in the WAL during the outage");
    // Spans only in the bucket: 503 with a clear message, never a wrong answer.
    let admin = srv.admin_token.clone().unwrap();
    let resp = srv.get(&admin, &format!("/api/traces/{}", flushed[0]));
    let status = resp.status().as_u16();
    let text = resp.text().unwrap();
    assert_eq!(status, 503, "a trace in the unreachable bucket: {text}");
    assert!(text.contains("retry later"), "{text}");
    let deadline = Instant::now() + Duration::from_secs(120);
    while !srv.log().contains("retrying with backoff") {
        assert!(
            Instant::now() < deadline,
            "no failed flush logged:\n{}",
            srv.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    if let Some(rest) = Duration::from_secs(20).checked_sub(down.elapsed()) {
        std::thread::sleep(rest);
    }

    // Back: the retried flush stores the outage's spans; nothing is lost.
    s3.restart();
    wait_flushed(&srv, 100);
    read_everywhere(&srv, &flushed, "after the outage, flushed before");
    read_everywhere(&srv, &during, "after the outage, acknowledged during");
    srv.kill9();
    srv.launch();
    read_everywhere(&srv, &during, "after the outage and a kill -9");
}

#[test]
fn compaction_merges_small_blocks_and_verify_still_passes() {
    let s3 = S3Server::start();
    let master = random_hex(32);
    let mut srv = node("a", &s3, &master);
    let text = std::fs::read_to_string(&srv.config).unwrap();
    std::fs::write(&srv.config, format!("{text}compact_min_blocks = 3\n")).unwrap();
    srv.launch();
    // Four flushes of ten spans: four small blocks.
    let mut ids = Vec::new();
    for round in 0..4u64 {
        ids.extend(ingest(&srv, 10_000 * (round + 1), 10));
        wait_flushed(&srv, 10 * (round + 1));
    }
    let deadline = Instant::now() + Duration::from_secs(90);
    while !srv.log().contains("compacted small blocks") {
        assert!(Instant::now() < deadline, "no compaction:\n{}", srv.log());
        std::thread::sleep(Duration::from_millis(200));
    }
    let blocks: Vec<_> = list(&s3.client())
        .into_iter()
        .filter(|p| {
            p.as_ref().starts_with("cluster/nodes/a/default/") && p.as_ref().ends_with(".parquet")
        })
        .collect();
    assert!(blocks.len() < 4, "inputs not deleted: {blocks:?}");
    read_everywhere(&srv, &ids, "after compaction");
    srv.stop();
    let (code, report, stderr) = verify_store(&srv, &s3, &master);
    assert_eq!(code, 0, "verify after compaction: {report:#}\n{stderr}");
    assert_eq!(report["logs"][0]["tenant"], "a/default", "{report:#}");
}
