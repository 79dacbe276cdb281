//! The whole flow a server runs, with a map as the object store: seal batches, publish
//! tiles and checkpoints, get witness cosignatures, reopen after a restart, verify with a
//! witness quorum and pinned checkpoints, and prove spans offline.
#![cfg(feature = "core")]

use std::collections::BTreeMap;

use sentrace_ledger::bundle::{BundleEntry, ProofBundle, verify_bundle_with_policy};
use sentrace_ledger::checkpoint::{CheckpointPolicy, LogSigner, Origin, Require};
use sentrace_ledger::keys::{NoteSigner, SigKind};
use sentrace_ledger::log::{CheckpointCadence, Log};
use sentrace_ledger::manifest::{BatchManifest, SourceSignature, SourceSigner};
use sentrace_ledger::merkle::span_root;
use sentrace_ledger::note::{KeyName, Note};
use sentrace_ledger::replay::{ReplayConfig, ReplayGuard};
use sentrace_ledger::seal::Sealer;
use sentrace_ledger::tiles::TileHashes;
use sentrace_ledger::verify::{BatchEvidence, EvidenceContent, PinState, Verifier};
use sentrace_ledger::witness::{
    AddCheckpoint, KnownLog, Witness, WitnessResponse, WitnessState, check_cosignatures,
};

const NS: u64 = 1_000_000_000;

#[test]
fn seal_publish_witness_reopen_verify_prove() {
    let origin =
        Origin::for_tenant("node1", &sentrace_core::TenantId::new("acme").unwrap()).unwrap();
    let name = KeyName::new(origin.as_str()).unwrap();
    // The server keeps its key wrapped: it round-trips through the secret string form.
    let secret = LogSigner::generate(&name).unwrap().to_secret_string();
    let log_key = LogSigner::from_secret_string(&secret).unwrap();
    let agent_key = SourceSigner::generate(&KeyName::new("agent-1").unwrap()).unwrap();
    let mut guard = ReplayGuard::new(ReplayConfig::default());
    let cadence = CheckpointCadence {
        every_secs: 5,
        every_entries: 50,
    };
    let mut sealer = Sealer::new(
        Log::new(origin.clone()),
        log_key,
        cadence.clone(),
        None,
        1000,
    );
    let mut store: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut stored: Vec<Vec<Vec<u8>>> = Vec::new();

    // A witness following the log.
    let mut logs = BTreeMap::new();
    let verifier = sealer.verifier();
    logs.insert(
        origin.clone(),
        KnownLog {
            key: verifier.clone(),
            require: Require::Both,
        },
    );
    let wkeys = vec![
        NoteSigner::generate(
            KeyName::new("witness.example/w1").unwrap(),
            SigKind::MlDsa44,
        )
        .unwrap(),
    ];
    let mut witness = Witness::new(wkeys, logs, WitnessState::default()).unwrap();
    let witness_keys = witness.verifiers();
    let mut witnessed_size = 0u64;
    let mut latest_witnessed = String::new();

    let mut now = 1000u64;
    for i in 0..180u64 {
        let spans: Vec<Vec<u8>> = (0..3)
            .map(|s| format!("trace {i} span {s}").into_bytes())
            .collect();
        let root = span_root(spans.iter().map(Vec::as_slice));
        // The agent signs; the server checks signature, then replay window, then seals.
        let sig = SourceSignature::sign(&agent_key, "agent-1", i + 1, now * NS, 3, root).unwrap();
        let m = BatchManifest {
            origin: origin.clone(),
            source: "agent-1".into(),
            sequence: i + 1,
            source_time_unix_nanos: now * NS,
            receive_time_unix_nanos: now * NS,
            span_count: 3,
            span_root: root,
            policy_digest: None,
            source_signature: Some(sig),
        };
        assert_eq!(m.verify_source(&agent_key.verifier()), Ok(Some(false)));
        assert!(guard.admit("agent-1", i + 1, now * NS, now * NS).accepted());
        assert!(
            !guard.admit("agent-1", i + 1, now * NS, now * NS).accepted(),
            "replay refused"
        );
        assert_eq!(sealer.append(&m).unwrap(), i);
        stored.push(spans);
        now += 1;
        if let Some(p) = sealer.publish_if_due(now).unwrap() {
            store.extend(p.writes());
            // Submit to the witness with a consistency proof from what it last cosigned.
            let proof = if witnessed_size == 0 {
                vec![]
            } else {
                TileHashes::new(&store, p.size)
                    .consistency_proof(witnessed_size)
                    .unwrap()
            };
            let req = AddCheckpoint {
                old_size: witnessed_size,
                proof,
                checkpoint: p.checkpoint.clone(),
            };
            let WitnessResponse::Cosigned(lines) = witness.add_checkpoint(&req.encode(), now)
            else {
                panic!("witness refused")
            };
            let mut note = Note::parse(p.checkpoint.as_bytes()).unwrap();
            note.signatures
                .extend(check_cosignatures(&note, &lines, &witness_keys).unwrap());
            latest_witnessed = note.to_text();
            store.insert("checkpoint".into(), latest_witnessed.clone().into_bytes());
            witnessed_size = p.size;
        }
    }
    assert!(witnessed_size >= 150);

    // Restart: reopen the log from its tiles and keep sealing.
    let cp = Note::parse(latest_witnessed.as_bytes()).unwrap();
    let body = sentrace_ledger::checkpoint::Checkpoint::parse(cp.text()).unwrap();
    let reopened = Log::reopen(origin.clone(), body.size, &body.root, &store).unwrap();
    assert_eq!(reopened.size(), witnessed_size);

    // Verify with a witness quorum and pins.
    let mut policy = CheckpointPolicy::new(verifier.clone());
    policy.origin = Some(origin.clone());
    policy.witnesses = witness_keys.clone();
    policy.quorum = 1;
    let evidence: Vec<BatchEvidence> = stored[..witnessed_size as usize]
        .iter()
        .enumerate()
        .map(|(i, s)| BatchEvidence {
            index: i as u64,
            block: "b0".into(),
            content: EvidenceContent::Spans {
                spans: s.clone(),
                recorded_hashes: None,
            },
        })
        .collect();
    let mut pins = PinState::default();
    let r = Verifier::new(&policy, &store).verify(&mut pins, Some(&mut evidence.into_iter()));
    assert!(r.ok, "{:#?}", r.findings);
    assert_eq!(r.witnesses, vec!["witness.example/w1".to_string()]);
    assert_eq!(pins.get(origin.as_str()).unwrap().size, witnessed_size);

    // Prove one span offline.
    let index = 42u64;
    let manifest = store_entry(&store, index, witnessed_size);
    let proof = TileHashes::new(&store, witnessed_size)
        .inclusion_proof(index)
        .unwrap();
    let spans: Vec<&[u8]> = stored[index as usize].iter().map(Vec::as_slice).collect();
    let bundle = ProofBundle {
        entries: vec![BundleEntry::build(index, manifest, proof, &spans, &[1]).unwrap()],
        checkpoint: latest_witnessed.clone(),
    };
    let summary = verify_bundle_with_policy(bundle.encode().as_bytes(), &policy).unwrap();
    assert_eq!(summary.entries, vec![(42, vec![1])]);
}

fn store_entry(store: &BTreeMap<String, Vec<u8>>, index: u64, size: u64) -> Vec<u8> {
    let n = index / 256;
    let width = (size - n * 256).min(256);
    let path = sentrace_ledger::tiles::bundle_path(n, width);
    sentrace_ledger::tiles::decode_bundle(&path, &store[&path], width).unwrap()
        [(index % 256) as usize]
        .to_vec()
}
