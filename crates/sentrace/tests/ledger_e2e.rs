//! The transparency log end to end, on the real binary and real files: receipts, the
//! well-known checkpoint path, `sentrace verify` on a clean store, and a tamper suite in
//! which every tampering is detected and named (seeded random trials).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

/// A deterministic generator for the random trials (SplitMix64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

fn blocks(data: &Path) -> Vec<PathBuf> {
    files_under(&data.join("blocks").join("default"))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
        .collect()
}

fn log_dir(data: &Path) -> PathBuf {
    data.join("blocks").join("log").join("default")
}

fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn checkpoint_size(srv: &Server, token: &str) -> Option<u64> {
    let r = srv.get(token, "/.well-known/sentrace/log/default/checkpoint");
    if r.status().as_u16() != 200 {
        return None;
    }
    r.text().ok()?.lines().nth(1)?.parse().ok()
}

/// Posts one batch of `n` spans; returns the receipt's log index.
fn post(srv: &Server, token: &str, first: u64, n: u64) -> u64 {
    let spans: Vec<_> = (first..first + n).map(|i| span(i, "sealed-op")).collect();
    let resp = srv.post_proto(token, &request("sealed", spans));
    assert_eq!(resp.status().as_u16(), 200);
    let idx = resp.headers()["sentrace-log-index"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(resp.headers().contains_key("sentrace-checkpoint-size"));
    idx
}

fn has(v: &Value, kind: &str, pred: impl Fn(&Value) -> bool) -> bool {
    verify_findings(v)
        .iter()
        .any(|f| f["kind"] == kind && pred(f))
}

fn copy_dir(from: &Path, to: &Path) {
    let st = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .unwrap();
    assert!(st.success());
}

fn flip(path: &Path, rng: &mut Rng) -> usize {
    let mut b = std::fs::read(path).unwrap();
    let at = rng.below(b.len() as u64) as usize;
    b[at] ^= 1 + rng.below(255) as u8;
    std::fs::write(path, b).unwrap();
    at
}

/// A data directory with 6 sealed batches: two blocks (batches 0-1, 2-3) and two batches
/// in the WAL; plus a copy of the log as it was at 4 entries (for the rollback trial).
struct Fixture {
    _srv: Server,
    data: PathBuf,
    early_log: PathBuf,
    _tmp: tempfile::TempDir,
}

fn fixture() -> Fixture {
    let cfg = |flush: &str| {
        format!(
            "[store]\nflush_interval = \"{flush}\"\n[seal.checkpoint]\nevery_secs = 1\nevery_entries = 1\n"
        )
    };
    let mut srv = Server::new(&cfg("1s")).start();
    let admin = srv.admin_token.clone().unwrap();
    let mut expect = 0;
    for round in 0..2u64 {
        for b in 0..2u64 {
            assert_eq!(post(&srv, &admin, (round * 2 + b) * 100, 3), expect);
            expect += 1;
        }
        let want = round as usize + 1;
        wait_for("a block", || blocks(&srv.data).len() >= want);
    }
    wait_for("checkpoint 4", || checkpoint_size(&srv, &admin) == Some(4));
    srv.stop();
    let tmp = tempfile::tempdir().unwrap();
    let early_log = tmp.path().join("early-log");
    copy_dir(&log_dir(&srv.data), &early_log);
    std::fs::write(&srv.config, {
        let text = std::fs::read_to_string(&srv.config).unwrap();
        text.replace("flush_interval = \"1s\"", "flush_interval = \"1h\"")
    })
    .unwrap();
    srv.launch();
    for b in 4..6u64 {
        assert_eq!(post(&srv, &admin, b * 100, 3), expect);
        expect += 1;
    }
    wait_for("checkpoint 6", || checkpoint_size(&srv, &admin) == Some(6));
    srv.stop();
    assert_eq!(blocks(&srv.data).len(), 2, "expected two blocks");
    Fixture {
        data: srv.data.clone(),
        _srv: srv,
        early_log,
        _tmp: tmp,
    }
}

#[test]
fn receipts_well_known_paths_and_keys() {
    let srv = Server::new("[seal.checkpoint]\nevery_secs = 1\n").start();
    let admin = srv.admin_token.clone().unwrap();
    for i in 0..3u64 {
        assert_eq!(post(&srv, &admin, i * 10, 2), i);
    }
    wait_for("checkpoint 3", || checkpoint_size(&srv, &admin) == Some(3));
    let cp = srv
        .get(&admin, "/.well-known/sentrace/log/default/checkpoint")
        .text()
        .unwrap();
    assert!(cp.starts_with("sentrace/default\n3\n"), "{cp}");
    assert_eq!(
        cp.matches("\n— sentrace ").count(),
        2,
        "Ed25519 and ML-DSA-44 signatures: {cp}"
    );
    // Tiles for verifiers.
    let tile = srv.get(&admin, "/.well-known/sentrace/log/default/tile/0/000.p/3");
    assert_eq!(tile.status().as_u16(), 200);
    assert_eq!(tile.bytes().unwrap().len(), 3 * 32);
    // Authenticated, and a token sees its own tenant's log only.
    let anon = srv
        .client()
        .get(srv.query_url("/.well-known/sentrace/log/default/checkpoint"))
        .send()
        .unwrap();
    assert_eq!(anon.status().as_u16(), 401);
    let other = srv.token("other", "read");
    assert_eq!(
        srv.get(&other, "/.well-known/sentrace/log/default/checkpoint")
            .status()
            .as_u16(),
        404
    );
    // The public keys, served and printed, agree.
    let served = srv
        .get(&admin, "/.well-known/sentrace/log-keys")
        .text()
        .unwrap();
    let printed = srv.cli(&["keys", "show"]);
    assert_eq!(served.trim(), printed.trim());
    assert!(printed.contains("sentrace+"));
    // No plaintext signing key on disk.
    let wrapped = std::fs::read(srv.data.join("log-key.wrapped")).unwrap();
    assert!(!String::from_utf8_lossy(&wrapped).contains("PRIVATE"));
}

#[test]
fn verify_clean_store_pins_and_tamper_suite() {
    let fx = fixture();
    let work = tempfile::tempdir().unwrap();

    // Clean: exit 0, every batch recomputed, the checkpoint pinned.
    let state = work.path().join("pins.json");
    let state_arg = state.to_str().unwrap().to_string();
    let (code, v) = verify_json(&fx.data, &["--state", &state_arg]);
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(v["ok"], true);
    let r = &v["logs"][0]["report"];
    assert_eq!(r["checkpoint_size"], 6);
    assert_eq!(r["batches_checked"], 6);
    assert_eq!(r["spans_checked"], 18);
    assert!(
        std::fs::read_to_string(&state)
            .unwrap()
            .contains("sentrace/default")
    );
    // Trusting the printed key explicitly works the same.
    let vkeys = String::from_utf8(
        Command::new(BIN)
            .args(["keys", "show", "--data-dir"])
            .arg(&fx.data)
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let (code, _) = verify_json(&fx.data, &["--key", vkeys.trim()]);
    assert_eq!(code, 0);

    let mut trial = 0u64;
    let mut fresh = |name: &str| {
        trial += 1;
        let d = work.path().join(format!("{name}-{trial}"));
        copy_dir(&fx.data, &d);
        d
    };
    let block_named = |f: &Value| {
        f["block"]
            .as_str()
            .is_some_and(|b| b.starts_with("blocks/default/"))
    };

    for seed in 0..3u64 {
        let mut rng = Rng(seed);
        // Flip a byte in a block: that block is named modified.
        let d = fresh("block");
        let bs = blocks(&d);
        let target = &bs[rng.below(bs.len() as u64) as usize];
        let at = flip(target, &mut rng);
        let name = target.file_name().unwrap().to_str().unwrap().to_string();
        let (code, v) = verify_json(&d, &[]);
        assert_eq!(code, 1, "block flip at {at} undetected: {v:#}");
        assert!(
            has(&v, "modified", |f| f["block"]
                .as_str()
                .is_some_and(|b| b.ends_with(&name))),
            "block flip at {at}: {v:#}"
        );

        // Flip a byte in the WAL: the segment is named modified.
        let d = fresh("wal");
        let segs: Vec<_> = files_under(&d.join("wal"))
            .into_iter()
            .filter(|p| std::fs::metadata(p).unwrap().len() > 16)
            .collect();
        let seg = &segs[rng.below(segs.len() as u64) as usize];
        let at = flip(seg, &mut rng);
        let (code, v) = verify_json(&d, &[]);
        assert_eq!(code, 1, "WAL flip at {at} undetected: {v:#}");
        assert!(
            has(&v, "modified", |f| f["block"]
                .as_str()
                .is_some_and(|b| b.starts_with("wal/"))),
            "WAL flip at {at}: {v:#}"
        );

        // Flip a byte in a tile or entry bundle: named at its path.
        let d = fresh("tile");
        // The objects the log of 6 entries consists of (stale partial tiles of smaller
        // sizes are garbage that no checkpoint covers).
        use sentrace_ledger::tiles::{bundle_path, bundles_for_size, tile_path, tiles_for_size};
        let tiles: Vec<PathBuf> = tiles_for_size(6)
            .into_iter()
            .map(|(l, n, w)| tile_path(l, n, w))
            .chain(bundles_for_size(6).map(|(n, w)| bundle_path(n, w)))
            .map(|p| log_dir(&d).join(p))
            .collect();
        let tile = &tiles[rng.below(tiles.len() as u64) as usize];
        let at = flip(tile, &mut rng);
        let (code, v) = verify_json(&d, &[]);
        assert_eq!(
            code,
            1,
            "tile flip in {} at {at} undetected: {v:#}",
            tile.display()
        );
        assert!(
            verify_findings(&v).iter().any(|f| f["kind"] == "modified"
                && (f["path"].as_str().is_some_and(|p| p.starts_with("tile/"))
                    || f["object"] == "entry")),
            "tile flip in {} at {at}: {v:#}",
            tile.display()
        );

        // Flip a byte in the checkpoint.
        let d = fresh("checkpoint");
        let at = flip(&log_dir(&d).join("checkpoint"), &mut rng);
        let (code, v) = verify_json(&d, &[]);
        assert_eq!(code, 1, "checkpoint flip at {at} undetected: {v:#}");
        assert!(
            has(&v, "modified", |f| f["object"] == "checkpoint"),
            "checkpoint flip at {at}: {v:#}"
        );

        // Replay a batch inside the log: entry k of the bundle becomes a copy of entry j.
        let d = fresh("replay");
        let bundle = log_dir(&d).join("tile/entries/000.p/6");
        let bytes = std::fs::read(&bundle).unwrap();
        let entries = sentrace_ledger::tiles::decode_bundle("b", &bytes, 6).unwrap();
        let j = rng.below(5) as usize;
        let k = j + 1 + rng.below((5 - j) as u64) as usize;
        let mut replaced: Vec<&[u8]> = entries.clone();
        replaced[k] = entries[j];
        std::fs::write(
            &bundle,
            sentrace_ledger::tiles::encode_bundle(replaced).unwrap(),
        )
        .unwrap();
        let (code, v) = verify_json(&d, &[]);
        assert_eq!(code, 1);
        assert!(
            has(&v, "replayed", |f| f["index"] == k as u64),
            "replayed entry {k} (copy of {j}): {v:#}"
        );
    }

    // Delete a block: its batches are named deleted (and nothing is called modified).
    let d = fresh("delete");
    std::fs::remove_file(&blocks(&d)[0]).unwrap();
    let (code, v) = verify_json(&d, &[]);
    assert_eq!(code, 1);
    assert!(has(&v, "deleted", |f| f["object"] == "batch"), "{v:#}");
    assert!(!has(&v, "modified", |_| true), "{v:#}");

    // Swap two blocks: their content is authentic but sits under each other's names. One
    // `reordered` finding names both blocks; nothing is `modified` and no batch is lost.
    let d = fresh("swap");
    let bs = blocks(&d);
    let (a, b) = (
        std::fs::read(&bs[0]).unwrap(),
        std::fs::read(&bs[1]).unwrap(),
    );
    std::fs::write(&bs[0], b).unwrap();
    std::fs::write(&bs[1], a).unwrap();
    let (code, v) = verify_json(&d, &[]);
    assert_eq!(code, 1);
    let names: Vec<String> = bs
        .iter()
        .map(|p| p.file_name().unwrap().to_str().unwrap().to_string())
        .collect();
    let all = verify_findings(&v);
    assert_eq!(all.len(), 1, "exactly one finding: {v:#}");
    let f = &all[0];
    assert_eq!(f["kind"], "reordered", "{v:#}");
    let named = |key: &str, name: &str| f[key].as_str().is_some_and(|x| x.ends_with(name));
    assert!(
        (named("block", &names[0]) && named("other_block", &names[1]))
            || (named("block", &names[1]) && named("other_block", &names[0])),
        "{v:#}"
    );
    assert_eq!(v["logs"][0]["report"]["batches_checked"], 6, "{v:#}");

    // Roll the log back to 4 entries: against the pinned checkpoint (6) it is truncated,
    // and the stored batches 4 and 5 lie beyond it.
    let d = fresh("rollback");
    std::fs::remove_dir_all(log_dir(&d)).unwrap();
    copy_dir(&fx.early_log, &log_dir(&d));
    let (code, v) = verify_json(&d, &["--state", &state_arg]);
    assert_eq!(code, 1);
    assert!(
        has(&v, "truncated", |f| f["object"] == "checkpoint"
            || f["object"] == "log"),
        "{v:#}"
    );
    assert!(
        has(&v, "truncated", |f| f["index"] == 4 || f["index"] == 5),
        "{v:#}"
    );
    // The state file did not move backwards.
    assert!(
        std::fs::read_to_string(&state)
            .unwrap()
            .contains("\"size\": 6")
    );

    // Forge a checkpoint with a wrong key (same name, same body).
    let d = fresh("forge");
    let cp_path = log_dir(&d).join("checkpoint");
    let text = std::fs::read_to_string(&cp_path).unwrap();
    let body: String = text.split("\n\n").next().unwrap().to_string() + "\n";
    let cp = sentrace_ledger::checkpoint::Checkpoint::parse(&body).unwrap();
    let name = sentrace_ledger::note::KeyName::new("sentrace").unwrap();
    let forger = sentrace_ledger::checkpoint::LogSigner::generate(&name).unwrap();
    std::fs::write(&cp_path, forger.sign(&cp, 1).unwrap().to_text()).unwrap();
    let (code, v) = verify_json(&d, &[]);
    assert_eq!(code, 1);
    assert!(has(&v, "forged", |f| f["object"] == "checkpoint"), "{v:#}");

    let _ = block_named;
}

#[test]
fn proof_bundle_verifies_offline_with_the_public_key_only() {
    let fx = fixture();
    let work = tempfile::tempdir().unwrap();
    let vkeys = String::from_utf8(
        Command::new(BIN)
            .args(["keys", "show", "--data-dir"])
            .arg(&fx.data)
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    // Trace of span 201 (batch 2, in a block) and of span 500 (batch 5, in the WAL).
    for n in [201u64, 500] {
        let trace = hex(&span(n, "x").trace_id);
        let file = work.path().join(format!("{n}.proof"));
        let out = Command::new(BIN)
            .args(["proof", &trace, "-o"])
            .arg(&file)
            .arg("--data-dir")
            .arg(&fx.data)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let ok = Command::new(BIN)
            .args(["verify-proof"])
            .arg(&file)
            .args(["--key", vkeys.trim()])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&ok.stdout).to_string();
        assert!(ok.status.success(), "{text}");
        assert!(text.contains("OK: 1 spans in 1 batches"), "{text}");
        // A changed byte in a span, or another key, fails.
        let body = std::fs::read_to_string(&file).unwrap();
        let span_line = body
            .lines()
            .find(|l| l.starts_with("span "))
            .unwrap()
            .to_string();
        let b64 = span_line.split(' ').nth(2).unwrap();
        let mut raw = base64_decode(b64);
        let mid = raw.len() / 2;
        raw[mid] ^= 1;
        let forged = body.replace(b64, &base64_encode(&raw));
        std::fs::write(&file, forged).unwrap();
        let bad = Command::new(BIN)
            .args(["verify-proof"])
            .arg(&file)
            .args(["--key", vkeys.trim()])
            .output()
            .unwrap();
        assert_eq!(
            bad.status.code(),
            Some(1),
            "{}",
            String::from_utf8_lossy(&bad.stdout)
        );
    }
}

fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(s).unwrap()
}

fn base64_encode(b: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(b)
}

#[test]
fn kill_9_before_any_checkpoint_loses_no_log_entry() {
    // No checkpoint is due for an hour: the manifests live only in the WAL when the
    // process dies.
    let mut srv = Server::new(
        "[store]\nflush_interval = \"1h\"\n[seal.checkpoint]\nevery_secs = 3600\nevery_entries = 100000\n",
    )
    .start();
    let admin = srv.admin_token.clone().unwrap();
    for i in 0..3u64 {
        assert_eq!(post(&srv, &admin, i * 10, 2), i);
    }
    assert_eq!(
        checkpoint_size(&srv, &admin),
        None,
        "no checkpoint is due yet"
    );
    srv.kill9();
    srv.launch();
    // Re-sealed from the WAL and published at start; the next batch continues the log.
    assert_eq!(checkpoint_size(&srv, &admin), Some(3));
    assert_eq!(post(&srv, &admin, 100, 2), 3);
    srv.stop();
    let (code, v) = verify_json(&srv.data, &[]);
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(v["logs"][0]["report"]["checkpoint_size"], 4);
    assert_eq!(v["logs"][0]["report"]["batches_checked"], 4);
}
