//! The witness server's persistence and HTTP behaviour.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Body;
use axum::http::Request;
use http_body_util::BodyExt;
use sentrace_ledger::checkpoint::{Checkpoint, LogSigner, Origin, Require};
use sentrace_ledger::keys::SigKind;
use sentrace_ledger::merkle::Tree;
use sentrace_ledger::note::{KeyName, Note};
use sentrace_ledger::witness::{AddCheckpoint, KnownLog, Witness, WitnessResponse};
use tower::ServiceExt;

use super::config::{WitnessConfig, WitnessedLog, known_logs, validate_witnesses};
use super::server::{MAX_BODY, WitnessService};
use super::state;

const ORIGIN: &str = "node1/acme";

struct Log {
    signer: LogSigner,
    tree: Tree,
}

fn log() -> Log {
    let signer = LogSigner::from_seeds(&KeyName::new(ORIGIN).unwrap(), [1; 32], [2; 32]);
    let mut tree = Tree::new();
    for i in 0..40u32 {
        tree.push(&i.to_be_bytes());
    }
    Log { signer, tree }
}

fn logs(l: &Log) -> BTreeMap<Origin, KnownLog> {
    let mut m = BTreeMap::new();
    m.insert(
        Origin::new(ORIGIN).unwrap(),
        KnownLog {
            key: l.signer.verifier(),
            require: Require::Both,
        },
    );
    m
}

/// A witness service over `dir`, loading keys and state from disk as `sentrace witness`
/// does on start.
fn open(dir: &std::path::Path, l: &Log) -> WitnessService {
    let (keys, _) = state::load_or_create_keys(&state::key_path(dir), Some("w.example/1")).unwrap();
    let saved = state::load_state(&state::state_path(dir)).unwrap();
    WitnessService::new(
        Witness::new(keys, logs(l), saved).unwrap(),
        state::state_path(dir),
    )
}

fn body(l: &Log, old: u64, size: u64, root: [u8; 32]) -> Vec<u8> {
    let proof = if old == 0 || old == size {
        vec![]
    } else {
        l.tree.consistency_proof(old, size).unwrap()
    };
    let cp = Checkpoint::new(Origin::new(ORIGIN).unwrap(), size, root);
    AddCheckpoint {
        old_size: old,
        proof,
        checkpoint: l.signer.sign(&cp, 100).unwrap().to_text(),
    }
    .encode()
}

fn good(l: &Log, old: u64, size: u64) -> Vec<u8> {
    body(l, old, size, l.tree.root_at(size).unwrap())
}

#[tokio::test]
async fn state_survives_a_restart_and_refuses_a_split_view_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let l = log();
    let svc = open(dir.path(), &l);
    let r = svc.add_checkpoint(&good(&l, 0, 10)).await;
    assert!(matches!(r, WitnessResponse::Cosigned(_)), "{r:?}");
    // The record is on disk before the answer.
    let on_disk = state::load_state(&state::state_path(dir.path())).unwrap();
    assert_eq!(on_disk.logs[ORIGIN].size, 10);
    assert_eq!(
        on_disk.logs[ORIGIN].root,
        hex::encode(l.tree.root_at(10).unwrap())
    );
    drop(svc);

    // Restart: same keys (not regenerated), same state.
    let before = std::fs::read_to_string(state::key_path(dir.path())).unwrap();
    let svc = open(dir.path(), &l);
    assert_eq!(
        std::fs::read_to_string(state::key_path(dir.path())).unwrap(),
        before
    );
    // A client that forgot the size is told 10.
    assert_eq!(
        svc.add_checkpoint(&good(&l, 0, 20)).await,
        WitnessResponse::Conflict(10)
    );
    // A different tree of size 10, validly signed by the log: refused.
    assert_eq!(
        svc.add_checkpoint(&body(&l, 10, 10, [9; 32])).await,
        WitnessResponse::Conflict(10)
    );
    // The same tree again is cosigned again; the consistent extension too.
    assert!(matches!(
        svc.add_checkpoint(&good(&l, 10, 10)).await,
        WitnessResponse::Cosigned(_)
    ));
    let r = svc.add_checkpoint(&good(&l, 10, 30)).await;
    let WitnessResponse::Cosigned(lines) = r else {
        panic!("{r:?}")
    };
    // One line per cosigning key (Ed25519 0x04 and ML-DSA-44 0x06), both verify.
    let cp = Checkpoint::new(
        Origin::new(ORIGIN).unwrap(),
        30,
        l.tree.root_at(30).unwrap(),
    );
    let note = Note::new(cp.to_text()).unwrap();
    let (keys, _) = state::load_or_create_keys(&state::key_path(dir.path()), None).unwrap();
    let vkeys: Vec<_> = keys.iter().map(|k| k.verifier().clone()).collect();
    let sigs = sentrace_ledger::witness::check_cosignatures(&note, &lines, &vkeys).unwrap();
    assert_eq!(sigs.len(), 2);
    drop(svc);

    // After a second restart the size-30 record holds: a size-20 checkpoint is stale.
    let svc = open(dir.path(), &l);
    assert_eq!(
        svc.add_checkpoint(&good(&l, 10, 20)).await,
        WitnessResponse::Conflict(30)
    );
    assert_eq!(
        svc.add_checkpoint(&body(&l, 30, 30, [7; 32])).await,
        WitnessResponse::Conflict(30)
    );
}

#[tokio::test]
async fn a_state_that_cannot_be_persisted_is_never_cosigned() {
    let dir = tempfile::tempdir().unwrap();
    let l = log();
    let (keys, _) = state::load_or_create_keys(&state::key_path(dir.path()), None).unwrap();
    // The state's directory is a file: every write fails.
    let blocker = dir.path().join("blocker");
    std::fs::write(&blocker, b"x").unwrap();
    let svc = WitnessService::new(
        Witness::new(keys, logs(&l), Default::default()).unwrap(),
        blocker.join("state.json"),
    );
    let r = svc.add_checkpoint(&good(&l, 0, 10)).await;
    assert_eq!(r.status(), 500, "{r:?}");
    // Nothing was applied in memory either: the witness still expects old size 0.
    assert!(matches!(
        svc.add_checkpoint(&good(&l, 0, 10)).await,
        WitnessResponse::Internal(_)
    ));
    assert!(!blocker.join("state.json").exists());
}

#[test]
fn keys_are_private_named_and_refused_when_exposed() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = state::key_path(dir.path());
    let (keys, created) = state::load_or_create_keys(&path, Some("w.example/1")).unwrap();
    assert!(created);
    let kinds: Vec<_> = keys.iter().map(|k| k.kind()).collect();
    assert_eq!(kinds, vec![SigKind::Ed25519Cosignature, SigKind::MlDsa44]);
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let (again, created) = state::load_or_create_keys(&path, None).unwrap();
    assert!(!created);
    assert_eq!(again[0].verifier(), keys[0].verifier());
    let e = state::load_or_create_keys(&path, Some("other")).unwrap_err();
    assert!(e.to_string().contains("keeps its name"), "{e}");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let e = state::load_or_create_keys(&path, None).unwrap_err();
    assert!(e.to_string().contains("chmod 600"), "{e}");
}

#[test]
fn a_corrupt_state_file_stops_the_witness() {
    let dir = tempfile::tempdir().unwrap();
    let p = state::state_path(dir.path());
    std::fs::write(&p, b"{\"logs\": {\"x\": {\"size\": 1}}}").unwrap();
    let e = state::load_state(&p).unwrap_err();
    assert!(format!("{e:#}").contains("split view"), "{e:#}");
}

async fn call(router: axum::Router, body: Vec<u8>) -> (u16, String, String) {
    let resp = router
        .oneshot(
            Request::post("/add-checkpoint")
                .body(Body::from(body))
                .unwrap(),
        )
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let ct = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let text = String::from_utf8(
        resp.into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec(),
    )
    .unwrap();
    (status, ct, text)
}

#[tokio::test]
async fn http_statuses_follow_the_spec() {
    let dir = tempfile::tempdir().unwrap();
    let l = log();
    let router = Arc::new(open(dir.path(), &l)).router();
    let (s, _, text) = call(router.clone(), good(&l, 0, 10)).await;
    assert_eq!(s, 200, "{text}");
    assert_eq!(text.lines().count(), 2);
    assert!(text.lines().all(|t| t.starts_with("\u{2014} w.example/1 ")));
    let (s, ct, text) = call(router.clone(), good(&l, 0, 20)).await;
    assert_eq!(
        (s, ct.as_str(), text.as_str()),
        (409, "text/x.tlog.size", "10\n")
    );
    // Bad proof: 422.
    let mut b = body(&l, 10, 20, l.tree.root_at(20).unwrap());
    let text_b = String::from_utf8(b.clone()).unwrap();
    let first_proof = text_b.lines().nth(1).unwrap().to_owned();
    b = text_b
        .replacen(
            &first_proof,
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
            1,
        )
        .into_bytes();
    assert_eq!(call(router.clone(), b).await.0, 422);
    // Unknown origin: 404.
    let other = LogSigner::from_seeds(&KeyName::new("node2/x").unwrap(), [3; 32], [4; 32]);
    let cp = Checkpoint::new(Origin::new("node2/x").unwrap(), 1, [1; 32]);
    let b = AddCheckpoint {
        old_size: 0,
        proof: vec![],
        checkpoint: other.sign(&cp, 1).unwrap().to_text(),
    }
    .encode();
    assert_eq!(call(router.clone(), b).await.0, 404);
    // Signed by another key under the known origin: 403.
    let forger = LogSigner::from_seeds(&KeyName::new(ORIGIN).unwrap(), [5; 32], [6; 32]);
    let cp = Checkpoint::new(
        Origin::new(ORIGIN).unwrap(),
        20,
        l.tree.root_at(20).unwrap(),
    );
    let b = AddCheckpoint {
        old_size: 10,
        proof: l.tree.consistency_proof(10, 20).unwrap(),
        checkpoint: forger.sign(&cp, 1).unwrap().to_text(),
    }
    .encode();
    assert_eq!(call(router.clone(), b).await.0, 403);
    // Malformed: 400 with a body that says why.
    let (s, _, text) = call(router.clone(), b"hello".to_vec()).await;
    assert_eq!(s, 400);
    assert!(
        text.contains("add-checkpoint body: no empty line"),
        "{text}"
    );
    // Too large: refused before parsing.
    assert_eq!(call(router.clone(), vec![b'a'; MAX_BODY + 1]).await.0, 413);
    // The state still says 10 after all that.
    let saved = state::load_state(&state::state_path(dir.path())).unwrap();
    assert_eq!(saved.logs[ORIGIN].size, 10);
}

#[test]
fn configs_are_checked() {
    let l = log();
    let vk = l.signer.verifier().to_vkeys();
    let arg = WitnessedLog::from_arg(&format!("{ORIGIN}={vk}")).unwrap();
    assert_eq!(known_logs(std::slice::from_ref(&arg)).unwrap().len(), 1);
    assert!(
        known_logs(&[arg.clone(), arg])
            .unwrap_err()
            .contains("twice")
    );
    assert!(WitnessedLog::from_arg("no-equals").is_err());
    // The witness's own file: strict, and its logs build the same table.
    let file: super::config::WitnessFileConfig = toml::from_str(&format!(
        "name = \"w.example/1\"\n[[log]]\norigin = \"{ORIGIN}\"\nvkey = \"{vk}\"\nrequire = \"ml_dsa\"\n"
    ))
    .unwrap();
    let table = known_logs(&file.log).unwrap();
    assert_eq!(table[&Origin::new(ORIGIN).unwrap()].require, Require::MlDsa);
    assert!(
        toml::from_str::<super::config::WitnessFileConfig>("nam = \"x\"\n")
            .unwrap_err()
            .to_string()
            .contains("nam")
    );
    let (keys, _) = {
        let dir = tempfile::tempdir().unwrap();
        state::load_or_create_keys(&state::key_path(dir.path()), Some("w1")).unwrap()
    };
    let w = |name: &str, vkey: String| WitnessConfig {
        name: name.into(),
        url: "https://127.0.0.1:1".into(),
        vkey,
        ca: None,
        timeout_ms: 1000,
    };
    let ok = w("a", state::vkeys(&keys));
    validate_witnesses(std::slice::from_ref(&ok), 1).unwrap();
    assert!(
        validate_witnesses(std::slice::from_ref(&ok), 2)
            .unwrap_err()
            .contains("witness_quorum")
    );
    // A log key is not a witness key.
    assert!(
        validate_witnesses(&[w("b", vk)], 0)
            .unwrap_err()
            .contains("0x01")
    );
    // Two entries with the same key name would count once at the verifier.
    assert!(
        validate_witnesses(&[ok.clone(), w("c", state::vkeys(&keys))], 0)
            .unwrap_err()
            .contains("same name")
    );
    let mut plain = ok;
    plain.url = "http://x".into();
    assert!(plain.validate().unwrap_err().contains("https"));
    // The server config section parses.
    let toml = format!(
        "[seal]\nwitness_quorum = 1\n[[seal.witness]]\nname = \"w1\"\nurl = \"https://localhost:7380\"\nvkey = \"{}\"\n",
        state::vkeys(&keys).replace('\n', " ")
    );
    let cfg = crate::Config::from_toml(&toml, "t.toml").unwrap();
    assert_eq!(cfg.seal.witness.len(), 1);
    assert_eq!(cfg.seal.witness[0].timeout_ms, 10_000);
    let e = crate::Config::from_toml(&format!("{toml}urll = 1\n"), "t.toml").unwrap_err();
    assert!(e.message.contains("urll"), "{}", e.message);
}
