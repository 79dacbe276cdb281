//! `sentrace verify --server` against the real binary over real TLS: a clean server
//! verifies with a read token (trust on first use, then the pinned key), a rolled-back
//! checkpoint and a tampered block are named, write-only and wrong-tenant tokens are
//! refused. And the log's superseded partial tiles are deleted without breaking verify.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

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

fn blocks(data: &Path) -> Vec<PathBuf> {
    let dir = data.join("blocks").join("default");
    if !dir.is_dir() {
        return Vec::new();
    }
    let mut v: Vec<PathBuf> = files_under(&dir)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
        .collect();
    v.sort();
    v
}

fn log_dir(data: &Path) -> PathBuf {
    data.join("blocks").join("log").join("default")
}

fn checkpoint(srv: &Server, token: &str) -> Option<(u64, String)> {
    let r = srv.get(token, "/.well-known/sentrace/log/default/checkpoint");
    if r.status().as_u16() != 200 {
        return None;
    }
    let text = r.text().ok()?;
    Some((text.lines().nth(1)?.parse().ok()?, text))
}

/// Posts batches `first..first+n` of `spans` spans each over one connection.
fn post_batches(srv: &Server, token: &str, first: u64, n: u64, spans: u64) {
    let client = srv.client();
    for b in first..first + n {
        let s: Vec<_> = (0..spans).map(|i| span(b * 100 + i, "remote-op")).collect();
        let resp = client
            .post(srv.http_url())
            .bearer_auth(token)
            .header("content-type", "application/x-protobuf")
            .body(prost::Message::encode_to_vec(&request("remote", s)))
            .send()
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200);
    }
}

/// Runs `sentrace verify --server ... --json`: (exit code, report or null, stderr).
fn remote(srv: &Server, token: &str, extra: &[&str]) -> (i32, Value, String) {
    let out = Command::new(BIN)
        .args(["verify", "--json", "--server"])
        .arg(srv.query_url(""))
        .arg("--ca")
        .arg(srv.ca())
        .env("SENTRACE_TOKEN", token)
        .args(extra)
        .output()
        .unwrap();
    let code = out.status.code().unwrap_or(-1);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let v = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (code, v, stderr)
}

fn findings(v: &Value) -> Vec<Value> {
    v["logs"][0]["report"]["findings"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn has(v: &Value, kind: &str, pred: impl Fn(&Value) -> bool) -> bool {
    findings(v).iter().any(|f| f["kind"] == kind && pred(f))
}

#[test]
fn remote_verify_clean_rollback_tamper_and_refusals() {
    let mut srv = Server::new(
        "[store]\nflush_interval = \"1s\"\n[seal.checkpoint]\nevery_secs = 1\nevery_entries = 1\n",
    )
    .start();
    let admin = srv.admin_token.clone().unwrap();
    post_batches(&srv, &admin, 0, 4, 3);
    wait_for("a block", || !blocks(&srv.data).is_empty());
    wait_for("checkpoint 4", || {
        checkpoint(&srv, &admin).is_some_and(|(s, _)| s == 4)
    });
    let (_, early) = checkpoint(&srv, &admin).unwrap();
    post_batches(&srv, &admin, 4, 2, 3);
    wait_for("checkpoint 6", || {
        checkpoint(&srv, &admin).is_some_and(|(s, _)| s == 6)
    });
    let reader = srv.token("default", "read");
    let work = tempfile::tempdir().unwrap();
    let state = work.path().join("pins.json");
    let st = state.to_str().unwrap().to_string();

    // Clean, first run: the server's key is trusted on first use, loudly, and pinned.
    let (code, v, err) = remote(&srv, &reader, &["--state", &st]);
    assert_eq!(code, 0, "{v:#}\n{err}");
    assert!(
        err.contains("WARNING") && err.contains("first use"),
        "{err}"
    );
    let r = &v["logs"][0]["report"];
    assert_eq!(r["checkpoint_size"], 6, "{v:#}");
    assert_eq!(r["batches_checked"], 6, "{v:#}");
    assert_eq!(r["spans_checked"], 18, "{v:#}");
    let pins: Value = serde_json::from_slice(&std::fs::read(&state).unwrap()).unwrap();
    let pin = &pins["logs"]["sentrace/default"];
    assert_eq!(pin["size"], 6);
    let served = srv
        .get(&reader, "/.well-known/sentrace/log-keys")
        .text()
        .unwrap();
    assert_eq!(pin["key"].as_str().unwrap(), served.trim());
    // Second run: the pinned key, no warning.
    let (code, _, err) = remote(&srv, &reader, &["--state", &st]);
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains("WARNING"), "{err}");

    // Another key than the log's: the checkpoint is forged under it.
    let name = sentrace_ledger::note::KeyName::new("sentrace").unwrap();
    let other = sentrace_ledger::checkpoint::LogSigner::generate(&name).unwrap();
    let (code, v, err) = remote(&srv, &reader, &["--key", &other.verifier().to_vkeys()]);
    assert_eq!(code, 1, "{err}");
    assert!(has(&v, "forged", |f| f["object"] == "checkpoint"), "{v:#}");

    // Tokens: write-only (ingest) and another tenant's are refused.
    let ingest = srv.token("default", "ingest");
    let (code, _, err) = remote(&srv, &ingest, &[]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("403"), "{err}");
    let other_tenant = srv.token("other", "read");
    let (code, _, err) = remote(&srv, &other_tenant, &["--tenant", "default"]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("belongs to tenant"), "{err}");
    let page = srv.get(
        &other_tenant,
        "/.well-known/sentrace/log/default/batches?start=0&limit=4",
    );
    assert_eq!(page.status().as_u16(), 404);
    // The page endpoint is bounded.
    let bad = srv.get(
        &reader,
        "/.well-known/sentrace/log/default/batches?start=0&limit=100000",
    );
    assert_eq!(bad.status().as_u16(), 400);
    let page: Value = srv
        .get(
            &reader,
            "/.well-known/sentrace/log/default/batches?start=1&limit=2",
        )
        .json()
        .unwrap();
    assert_eq!(page["next"], 3, "{page:#}");
    let listed: Vec<u64> = page["batches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["index"].as_u64().unwrap())
        .collect();
    assert_eq!(listed, vec![1, 2], "{page:#}");

    // A rolled-back log: the server serves the checkpoint of 4 entries again. Against the
    // pinned checkpoint of 6 it is named truncated, and the pin does not move back.
    let cp_path = log_dir(&srv.data).join("checkpoint");
    let latest = std::fs::read(&cp_path).unwrap();
    std::fs::write(&cp_path, &early).unwrap();
    wait_for("the rolled-back checkpoint served", || {
        checkpoint(&srv, &admin).is_some_and(|(s, _)| s == 4)
    });
    let (code, v, err) = remote(&srv, &reader, &["--state", &st]);
    assert_eq!(code, 1, "{err}");
    assert!(
        has(&v, "truncated", |f| f["object"] == "checkpoint"),
        "{v:#}"
    );
    assert!(
        std::fs::read_to_string(&state)
            .unwrap()
            .contains("\"size\": 6")
    );
    std::fs::write(&cp_path, &latest).unwrap();

    // A block tampered on disk, server restarted: the block is named.
    srv.stop();
    let target = blocks(&srv.data)[0].clone();
    let mut bytes = std::fs::read(&target).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x5a;
    std::fs::write(&target, bytes).unwrap();
    srv.launch();
    let name = target.file_name().unwrap().to_str().unwrap().to_string();
    let (code, v, err) = remote(&srv, &reader, &["--state", &st]);
    assert_eq!(code, 1, "{err}");
    assert!(
        has(&v, "modified", |f| f["block"]
            .as_str()
            .is_some_and(|b| b.ends_with(&name))),
        "{v:#}"
    );
    assert!(has(&v, "deleted", |f| f["object"] == "batch"), "{v:#}");
    srv.stop();
}

#[test]
fn batches_deleted_by_retention_show_as_erased() {
    let mut srv = Server::new(
        "[store]\nflush_interval = \"1s\"\nretention = \"2s\"\n[seal.checkpoint]\nevery_secs = 1\nevery_entries = 1\n",
    )
    .start();
    let admin = srv.admin_token.clone().unwrap();
    post_batches(&srv, &admin, 0, 3, 2);
    wait_for("checkpoint 3", || {
        checkpoint(&srv, &admin).is_some_and(|(s, _)| s == 3)
    });
    let erased_dir = srv.data.join("erased").join("default");
    wait_for("retention to delete the block", || {
        erased_dir.is_dir() && files_under(&erased_dir).len() == 1 && blocks(&srv.data).is_empty()
    });
    let reader = srv.token("default", "read");
    let (code, v, err) = remote(&srv, &reader, &[]);
    assert_eq!(code, 0, "erased is not a failure: {v:#}\n{err}");
    let r = &v["logs"][0]["report"];
    assert_eq!(r["batches_erased"], 3, "{v:#}");
    assert_eq!(r["batches_checked"], 0, "{v:#}");
    for i in 0..3u64 {
        assert!(
            has(&v, "erased", |f| f["index"] == i && f["object"] == "batch"),
            "{v:#}"
        );
    }
    srv.stop();
}

#[test]
fn superseded_partial_tiles_are_deleted_and_verify_still_passes() {
    let mut srv = Server::new(
        "[store]\nflush_interval = \"1h\"\n[seal.checkpoint]\nevery_secs = 1\nevery_entries = 100000\n",
    )
    .start();
    let admin = srv.admin_token.clone().unwrap();
    let size = |srv: &Server| checkpoint(srv, &admin).map_or(0, |(s, _)| s);
    // A checkpoint inside the first tile, so partial tiles of tile 0 exist.
    post_batches(&srv, &admin, 0, 100, 1);
    wait_for("checkpoint 100", || size(&srv) == 100);
    let log = log_dir(&srv.data);
    assert!(log.join("tile/0/000.p/100").exists());
    assert!(log.join("tile/entries/000.p/100").exists());
    // Past the tile boundary.
    post_batches(&srv, &admin, 100, 160, 1);
    wait_for("checkpoint 260", || size(&srv) == 260);
    let partials_of_tile_0 = |log: &Path| -> Vec<PathBuf> {
        ["tile/0/000.p", "tile/entries/000.p"]
            .iter()
            .filter(|d| log.join(d).is_dir())
            .flat_map(|d| files_under(&log.join(d)))
            .collect()
    };
    wait_for("the superseded partial tiles deleted", || {
        partials_of_tile_0(&log).is_empty()
    });
    assert!(log.join("tile/0/000").exists());
    assert!(log.join("tile/entries/000").exists());
    assert!(
        log.join("tile/0/001.p/4").exists(),
        "the latest partials stay"
    );
    assert!(log.join("tile/entries/001.p/4").exists());
    let reader = srv.token("default", "read");
    let (code, v, err) = remote(&srv, &reader, &[]);
    assert_eq!(code, 0, "{v:#}\n{err}");
    assert_eq!(v["logs"][0]["report"]["batches_checked"], 260);

    // Left over by a crash between a publication and its clean-up: swept at start.
    srv.stop();
    let full = std::fs::read(log.join("tile/0/000")).unwrap();
    std::fs::create_dir_all(log.join("tile/0/000.p")).unwrap();
    std::fs::write(log.join("tile/0/000.p/7"), &full[..7 * 32]).unwrap();
    srv.launch();
    wait_for("the leftover partial swept", || {
        partials_of_tile_0(&log).is_empty()
    });
    srv.stop();
    let out = Command::new(BIN)
        .args(["verify", "--json", "--data-dir"])
        .arg(&srv.data)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}
