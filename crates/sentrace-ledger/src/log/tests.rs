use std::collections::BTreeMap;

use super::*;
use crate::merkle::{Tree, consistency_proof_with, inclusion_proof_with};
use crate::tiles::{TileHashes, bundles_for_size, tiles_for_size};

fn entry(i: u64) -> Vec<u8> {
    format!("entry-{i}").into_bytes()
}

fn origin() -> Origin {
    Origin::new("node1/acme").unwrap()
}

/// Appends `from..to`, flushing every `every` entries into `store`.
fn grow(
    log: &mut Log,
    tree: &mut Tree,
    store: &mut BTreeMap<String, Vec<u8>>,
    from: u64,
    to: u64,
    every: u64,
) {
    for i in from..to {
        assert_eq!(log.append(&entry(i)).unwrap(), i);
        tree.push(&entry(i));
        if (i + 1) % every == 0 {
            store.extend(log.flush().unwrap());
        }
    }
    store.extend(log.flush().unwrap());
}

#[test]
fn tiles_match_the_tree_at_every_flush_size() {
    for (size, every) in [
        (1u64, 1u64),
        (255, 7),
        (256, 256),
        (257, 100),
        (70_000, 5_000),
    ] {
        let mut log = Log::new(origin());
        let mut tree = Tree::new();
        let mut store = BTreeMap::new();
        grow(&mut log, &mut tree, &mut store, 0, size, every);
        assert_eq!(log.root(), tree.root());
        assert_eq!(log.checkpoint().size, size);
        // Every tile of the final size exists with the tree's hashes.
        for (level, n, width) in tiles_for_size(size) {
            let path = tile_path(level, n, width);
            let got = store.get(&path).unwrap_or_else(|| panic!("{path} missing"));
            let h = level * TILE_HEIGHT;
            let want: Vec<Hash> = (n * 256..n * 256 + width)
                .map(|k| tree.complete_node(h as usize, k).unwrap())
                .collect();
            assert_eq!(got, &encode_hash_tile(&want), "{path}");
        }
        for (n, width) in bundles_for_size(size) {
            let path = bundle_path(n, width);
            let entries: Vec<Vec<u8>> = (n * 256..n * 256 + width).map(entry).collect();
            assert_eq!(
                store[&path],
                encode_bundle(entries.iter().map(Vec::as_slice)).unwrap()
            );
        }
        // Proofs served from tiles equal the in-memory tree's.
        let mut th = TileHashes::new(&store, size);
        let mut node = |h: u32, k: u64| th.node(h, k);
        for index in [0, size / 3, size - 1] {
            assert_eq!(
                inclusion_proof_with(&mut node, index, size).unwrap(),
                tree.inclusion_proof(index, size).unwrap()
            );
        }
        for old in [1, size / 2 + 1, size] {
            if old <= size {
                assert_eq!(
                    consistency_proof_with(&mut node, old, size).unwrap(),
                    tree.consistency_proof(old, size).unwrap()
                );
            }
        }
    }
}

#[test]
fn reopen_continues_where_it_stopped() {
    for size in [0u64, 1, 5, 256, 511, 65_537] {
        let mut log = Log::new(origin());
        let mut tree = Tree::new();
        let mut store = BTreeMap::new();
        grow(&mut log, &mut tree, &mut store, 0, size, 1000);
        for p in Log::reopen_paths(size) {
            assert!(store.contains_key(&p), "{p}");
        }
        let mut back = Log::reopen(origin(), size, &tree.root(), &store).unwrap();
        assert_eq!(back.root(), log.root());
        grow(&mut back, &mut tree, &mut store, size, size + 300, 1000);
        assert_eq!(back.root(), tree.root());
        // A wrong root is refused.
        if size > 0 {
            assert!(matches!(
                Log::reopen(origin(), size, &[0; 32], &store),
                Err(TileError::RootMismatch { .. })
            ));
        }
    }
}

#[test]
fn oversized_entries_are_refused() {
    let mut log = Log::new(origin());
    assert!(matches!(
        log.append(&vec![0; 70_000]),
        Err(TileError::EntryTooLarge(70_000))
    ));
    assert_eq!(log.size(), 0);
}

#[test]
fn cadence_is_due_on_time_or_count() {
    let c = CheckpointCadence {
        every_secs: 5,
        every_entries: 100,
    };
    c.validate().unwrap();
    assert!(!c.due(10, 1000, 10, 2000), "no growth, no checkpoint");
    assert!(!c.due(10, 1000, 50, 1004));
    assert!(c.due(10, 1000, 50, 1005));
    assert!(c.due(10, 1000, 110, 1001));
    assert!(
        CheckpointCadence {
            every_secs: 0,
            every_entries: 1
        }
        .validate()
        .is_err()
    );
    let parsed: Result<CheckpointCadence, _> =
        serde_json::from_str(r#"{"every_secs":1,"every_entries":2,"typo":3}"#);
    assert!(parsed.is_err());
}
