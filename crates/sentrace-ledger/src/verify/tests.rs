use std::collections::BTreeMap;

use super::*;
use crate::checkpoint::{CheckpointPolicy, LogSigner, Origin};
use crate::log::Log;
use crate::manifest::BatchManifest;
use crate::merkle::span_root;
use crate::note::KeyName;

#[test]
fn clean_log_verifies_and_pins_move_forward() {
    let origin = Origin::new("n/t").unwrap();
    let signer = LogSigner::from_seeds(&KeyName::new("n/t").unwrap(), [1; 32], [2; 32]);
    let mut log = Log::new(origin.clone());
    let mut store = BTreeMap::new();
    let mut pins = PinState::default();
    let policy = CheckpointPolicy::new(signer.verifier());
    let mut total = 0;
    for round in 0..3u64 {
        for i in 0..100u64 {
            let spans: Vec<Vec<u8>> = vec![format!("{round}-{i}").into_bytes()];
            log.append_manifest(&BatchManifest {
                origin: origin.clone(),
                source: "c".into(),
                sequence: 0,
                source_time_unix_nanos: 0,
                receive_time_unix_nanos: i,
                span_count: 1,
                span_root: span_root(spans.iter().map(Vec::as_slice)),
                policy_digest: None,
                source_signature: None,
            })
            .unwrap();
            total += 1;
        }
        store.extend(log.flush().unwrap());
        let note = signer.sign(&log.checkpoint(), 1).unwrap();
        store.insert("checkpoint".into(), note.to_text().into_bytes());
        let mut ticks = 0;
        let mut progress = |_: &'static str, _: u64, _: u64| ticks += 1;
        let report = Verifier::new(&policy, &store)
            .with_progress(&mut progress)
            .verify(&mut pins, None);
        assert!(report.ok, "{:#?}", report.findings);
        assert_eq!(report.entries_checked, total);
        assert!(ticks > 0);
        assert_eq!(pins.get("n/t").unwrap().size, total);
    }
    let json = serde_json::to_string(&pins).unwrap();
    assert_eq!(serde_json::from_str::<PinState>(&json).unwrap(), pins);
}

#[test]
fn witness_quorum_is_enforced_by_the_verifier() {
    use crate::keys::{NoteSigner, SigKind};
    let origin = Origin::new("n/t").unwrap();
    let signer = LogSigner::from_seeds(&KeyName::new("n/t").unwrap(), [1; 32], [2; 32]);
    let mut log = Log::new(origin.clone());
    log.append(b"x").unwrap();
    let mut store: BTreeMap<String, Vec<u8>> = log.flush().unwrap().into_iter().collect();
    let mut note = signer.sign(&log.checkpoint(), 1).unwrap();
    let w = NoteSigner::from_seed(
        KeyName::new("w1").unwrap(),
        SigKind::Ed25519Cosignature,
        [9; 32],
    );
    let mut policy = CheckpointPolicy::new(signer.verifier());
    policy.witnesses = vec![w.verifier().clone()];
    policy.quorum = 1;
    store.insert("checkpoint".into(), note.to_text().into_bytes());
    let r = Verifier::new(&policy, &store).verify(&mut PinState::default(), None);
    assert_eq!(
        r.failures().map(|f| f.kind).collect::<Vec<_>>(),
        vec![FindingKind::Unwitnessed]
    );
    note.signatures.push(w.sign_note(note.text(), 5).unwrap());
    store.insert("checkpoint".into(), note.to_text().into_bytes());
    let r = Verifier::new(&policy, &store).verify(&mut PinState::default(), None);
    assert!(r.ok, "{:?}", r.findings);
    assert_eq!(r.witnesses, vec!["w1".to_string()]);
}

#[test]
fn source_signatures_are_checked_when_keys_are_given() {
    use crate::manifest::{SourceSignature, SourceSigner};
    let origin = Origin::new("n/t").unwrap();
    let signer = LogSigner::from_seeds(&KeyName::new("n/t").unwrap(), [1; 32], [2; 32]);
    let agent = SourceSigner::from_seeds(&KeyName::new("a").unwrap(), [3; 32], [4; 32]);
    let mut log = Log::new(origin.clone());
    for i in 0..4u64 {
        let root = [i as u8; 32];
        // Entry 2 carries a signature over another sequence: not what the source signed.
        let signed_seq = if i == 2 { 99 } else { i + 1 };
        let sig = SourceSignature::sign(&agent, "a", signed_seq, 5, 1, root).unwrap();
        log.append_manifest(&BatchManifest {
            origin: origin.clone(),
            source: "a".into(),
            sequence: i + 1,
            source_time_unix_nanos: 5,
            receive_time_unix_nanos: 6,
            span_count: 1,
            span_root: root,
            policy_digest: None,
            source_signature: Some(sig),
        })
        .unwrap();
    }
    let mut store: BTreeMap<String, Vec<u8>> = log.flush().unwrap().into_iter().collect();
    store.insert(
        "checkpoint".into(),
        signer
            .sign(&log.checkpoint(), 1)
            .unwrap()
            .to_text()
            .into_bytes(),
    );
    let policy = CheckpointPolicy::new(signer.verifier());
    assert!(
        Verifier::new(&policy, &store)
            .verify(&mut PinState::default(), None)
            .ok
    );
    let keys = BTreeMap::from([("a".to_string(), agent.verifier())]);
    let r = Verifier::new(&policy, &store)
        .with_source_keys(&keys)
        .verify(&mut PinState::default(), None);
    let f: Vec<_> = r.failures().map(|f| (f.kind, f.object, f.index)).collect();
    assert_eq!(f, vec![(FindingKind::Forged, ObjectKind::Entry, Some(2))]);
}

/// A log grown past a tile boundary, with every partial tile that a full tile superseded
/// deleted (as the server does): the latest checkpoint verifies from the full tiles, and so
/// does an older checkpoint whose partial tiles are gone (read from the full tiles'
/// prefixes), with its pin carried forward.
#[test]
fn superseded_partials_deleted_and_older_checkpoints_still_verify() {
    use crate::tiles::is_superseded_partial;
    let origin = Origin::new("n/t").unwrap();
    let signer = LogSigner::from_seeds(&KeyName::new("n/t").unwrap(), [1; 32], [2; 32]);
    let policy = CheckpointPolicy::new(signer.verifier());
    let mut log = Log::new(origin.clone());
    let mut store: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut old_note = None;
    for i in 0..300u64 {
        log.append(format!("entry {i}").as_bytes()).unwrap();
        if i % 50 == 49 || i == 299 {
            store.extend(log.flush().unwrap());
            let note = signer.sign(&log.checkpoint(), 1).unwrap().to_text();
            if log.size() == 200 {
                old_note = Some(note.clone());
            }
            store.insert("checkpoint".into(), note.into_bytes());
        }
    }
    assert!(store.contains_key("tile/0/000.p/200"));
    store.retain(|p, _| !is_superseded_partial(p, 300));
    let left: Vec<&String> = store.keys().filter(|p| p.contains(".p/")).collect();
    assert_eq!(
        left,
        ["tile/0/001.p/44", "tile/1/000.p/1", "tile/entries/001.p/44"],
        "only the partials of size 300 remain"
    );
    let latest = store["checkpoint"].clone();

    // The older checkpoint (200) needs tile/0/000.p/200 and its bundle: both gone.
    store.insert("checkpoint".into(), old_note.unwrap().into_bytes());
    let mut pins = PinState::default();
    let r = Verifier::new(&policy, &store).verify(&mut pins, None);
    assert!(r.ok, "{:#?}", r.findings);
    assert_eq!(r.entries_checked, 200);
    store.insert("checkpoint".into(), latest);
    let r = Verifier::new(&policy, &store).verify(&mut pins, None);
    assert!(r.ok, "{:#?}", r.findings);
    assert_eq!(pins.get("n/t").unwrap().size, 300);
}
