use std::collections::BTreeMap;

use super::*;
use crate::checkpoint::{LogSigner, Origin};
use crate::log::Log;
use crate::merkle::span_root;
use crate::note::KeyName;
use crate::tiles::TileHashes;
use proptest::prelude::*;

struct World {
    signer: LogSigner,
    bundle: ProofBundle,
}

fn world() -> World {
    let origin = Origin::new("node1/acme").unwrap();
    let signer = LogSigner::from_seeds(&KeyName::new("node1/acme").unwrap(), [1; 32], [2; 32]);
    let mut log = Log::new(origin.clone());
    let mut batches = Vec::new();
    let mut manifests = Vec::new();
    for i in 0..300u64 {
        let spans: Vec<Vec<u8>> = (0..5)
            .map(|s| format!("span {s} of {i}").into_bytes())
            .collect();
        let m = BatchManifest {
            origin: origin.clone(),
            source: "agent".into(),
            sequence: i + 1,
            source_time_unix_nanos: 1,
            receive_time_unix_nanos: 2,
            span_count: 5,
            span_root: span_root(spans.iter().map(Vec::as_slice)),
            policy_digest: None,
            source_signature: None,
        };
        log.append_manifest(&m).unwrap();
        manifests.push(m.encode());
        batches.push(spans);
    }
    let store: BTreeMap<String, Vec<u8>> = log.flush().unwrap().into_iter().collect();
    let checkpoint = signer.sign(&log.checkpoint(), 1).unwrap().to_text();
    let mut tiles = TileHashes::new(&store, log.size());
    let mut entries = Vec::new();
    for (index, positions) in [(3u64, vec![0u64, 4]), (257, vec![2])] {
        let spans: Vec<&[u8]> = batches[index as usize].iter().map(Vec::as_slice).collect();
        let proof = tiles.inclusion_proof(index).unwrap();
        entries.push(
            BundleEntry::build(
                index,
                manifests[index as usize].clone(),
                proof,
                &spans,
                &positions,
            )
            .unwrap(),
        );
    }
    World {
        signer,
        bundle: ProofBundle {
            entries,
            checkpoint,
        },
    }
}

#[test]
fn bundle_round_trips_and_verifies_with_the_key_alone() {
    let w = world();
    let text = w.bundle.encode();
    assert_eq!(ProofBundle::parse(text.as_bytes()).unwrap(), w.bundle);
    let vkeys = LogVerifier::parse(&w.signer.verifier().to_vkeys()).unwrap();
    let s = verify_bundle(text.as_bytes(), &vkeys).unwrap();
    assert_eq!(s.entries, vec![(3, vec![0, 4]), (257, vec![2])]);
    assert_eq!((s.origin.as_str(), s.size), ("node1/acme", 300));
    // Each entry is also a plain C2SP tlog-proof.
    let tp = w.bundle.entries[0].to_tlog_proof(&w.bundle.checkpoint);
    assert!(tp.starts_with("c2sp.org/tlog-proof@v1\nextra "));
    assert!(tp.contains("\nindex 3\n"));
}

#[test]
fn tampered_bundles_fail() {
    let w = world();
    let key = w.signer.verifier();
    let other = LogSigner::from_seeds(&KeyName::new("node1/acme").unwrap(), [3; 32], [4; 32]);
    let text = w.bundle.encode();
    assert!(matches!(
        verify_bundle(text.as_bytes(), &other.verifier()),
        Err(BundleError::Checkpoint(_))
    ));
    // A changed span.
    let mut b = w.bundle.clone();
    b.entries[0].spans[0].canonical[0] ^= 1;
    assert!(matches!(
        verify_bundle(b.encode().as_bytes(), &key),
        Err(BundleError::SpanProof {
            index: 3,
            position: 0,
            ..
        })
    ));
    // A span claimed at another position.
    let mut b = w.bundle.clone();
    b.entries[0].spans[0].position = 1;
    assert!(verify_bundle(b.encode().as_bytes(), &key).is_err());
    // A changed manifest.
    let mut b = w.bundle.clone();
    let last = b.entries[1].manifest.len() - 1;
    b.entries[1].manifest[last] ^= 1;
    assert!(matches!(
        verify_bundle(b.encode().as_bytes(), &key),
        Err(BundleError::EntryProof { index: 257, .. })
    ));
    // A wrong index.
    let mut b = w.bundle.clone();
    b.entries[1].index = 258;
    assert!(verify_bundle(b.encode().as_bytes(), &key).is_err());
    // Random byte flips anywhere: never accepted... unless the flip is in a byte that does
    // not matter, which the format does not have.
    let bytes = text.as_bytes();
    for at in (0..bytes.len()).step_by(97) {
        let mut t = bytes.to_vec();
        t[at] ^= 0x20;
        assert!(verify_bundle(&t, &key).is_err(), "flip at {at} accepted");
    }
}

#[test]
fn parser_limits() {
    assert!(matches!(
        ProofBundle::parse(b"nope\n\nx"),
        Err(BundleError::Syntax { line: 1, .. })
    ));
    assert!(ProofBundle::parse(format!("{BUNDLE_HEADER}\n\ncp").as_bytes()).is_err());
    let many = format!(
        "{BUNDLE_HEADER}\nentry 1 AA==\n{}\ncp",
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n".repeat(65)
    );
    assert!(ProofBundle::parse(many.as_bytes()).is_err());
    assert!(
        ProofBundle::parse(format!("{BUNDLE_HEADER}\nentry 01 AA==\n\ncp").as_bytes()).is_err()
    );
}

proptest! {
    #[test]
    fn parse_never_panics(s in "[a-z0-9 =+/\n]{0,200}") {
        let _ = ProofBundle::parse(format!("{BUNDLE_HEADER}\n{s}").as_bytes());
    }
}
