//! The ledger-level tamper suite: every manipulation is detected and named exactly (kind,
//! object, position), in every seeded random trial.

use std::collections::BTreeMap;

use sentrace_ledger::checkpoint::{CheckpointPolicy, LogSigner, Origin};
use sentrace_ledger::log::Log;
use sentrace_ledger::manifest::BatchManifest;
use sentrace_ledger::merkle::{leaf_hash, span_root};
use sentrace_ledger::note::KeyName;
use sentrace_ledger::tiles::{
    CHECKPOINT_PATH, bundle_path, bundles_for_size, decode_bundle, encode_bundle, tile_path,
    tiles_for_size,
};
use sentrace_ledger::verify::{
    BatchEvidence, EvidenceContent, FindingKind as K, ObjectKind as O, PinState, Report, Verifier,
};

const TRIALS: u64 = 100;
const ENTRIES: u64 = 600; // three bundles, a level-1 tile

/// splitmix64: a seeded generator, so every trial is reproducible.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e3779b97f4a7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58476d1ce4e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d049bb133111eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[derive(Clone)]
struct Fixture {
    store: BTreeMap<String, Vec<u8>>,
    spans: Vec<Vec<Vec<u8>>>,
    policy: CheckpointPolicy,
}

fn origin() -> Origin {
    Origin::new("node1/acme").unwrap()
}

/// The standard fixture, built once per test binary (signing is slow in debug builds).
fn base() -> Fixture {
    static BASE: std::sync::OnceLock<Fixture> = std::sync::OnceLock::new();
    BASE.get_or_init(|| fixture(ENTRIES, 0)).clone()
}

fn fixture(entries: u64, salt: u64) -> Fixture {
    let signer = LogSigner::from_seeds(&KeyName::new("node1/acme").unwrap(), [1; 32], [2; 32]);
    let mut log = Log::new(origin());
    let mut spans = Vec::new();
    for i in 0..entries {
        let batch: Vec<Vec<u8>> = (0..1 + i % 4)
            .map(|s| format!("span {s} of batch {i} salt {salt}").into_bytes())
            .collect();
        let m = BatchManifest {
            origin: origin(),
            source: format!("agent-{}", i % 3),
            sequence: i / 3 + 1,
            source_time_unix_nanos: 1_700_000_000_000_000_000 + i,
            receive_time_unix_nanos: 1_700_000_000_000_000_000 + i + 5,
            span_count: batch.len() as u32,
            span_root: span_root(batch.iter().map(Vec::as_slice)),
            policy_digest: Some([7; 32]),
            source_signature: None,
        };
        log.append_manifest(&m).unwrap();
        spans.push(batch);
    }
    let mut store: BTreeMap<String, Vec<u8>> = log.flush().unwrap().into_iter().collect();
    let note = signer.sign(&log.checkpoint(), 1_700_000_000).unwrap();
    store.insert(CHECKPOINT_PATH.into(), note.to_text().into_bytes());
    let mut policy = CheckpointPolicy::new(signer.verifier());
    policy.origin = Some(origin());
    Fixture {
        store,
        spans,
        policy,
    }
}

fn evidence(f: &Fixture, recorded: bool) -> Vec<BatchEvidence> {
    f.spans
        .iter()
        .enumerate()
        .map(|(i, spans)| BatchEvidence {
            index: i as u64,
            block: format!("block-{}", i / 50),
            content: EvidenceContent::Spans {
                spans: spans.clone(),
                recorded_hashes: recorded.then(|| spans.iter().map(|s| leaf_hash(s)).collect()),
            },
        })
        .collect()
}

fn verify(f: &Fixture, pins: &mut PinState, ev: Option<Vec<BatchEvidence>>) -> Report {
    let mut v = Verifier::new(&f.policy, &f.store);
    match ev {
        Some(ev) => v.verify(pins, Some(&mut ev.into_iter())),
        None => v.verify(pins, None),
    }
}

/// Asserts that there are failures and that every one has this kind and object (and, if
/// given, index).
fn assert_named(r: &Report, kind: K, object: O, index: Option<u64>, what: &str) {
    let failures: Vec<_> = r.failures().collect();
    assert!(!failures.is_empty(), "{what}: not detected");
    assert!(!r.ok, "{what}: report says ok");
    for f in &failures {
        assert_eq!((f.kind, f.object), (kind, object), "{what}: {failures:#?}");
        if index.is_some() {
            assert_eq!(f.index, index, "{what}: {failures:#?}");
        }
        assert_eq!(f.origin, "node1/acme");
    }
}

fn flip(bytes: &mut [u8], rng: &mut Rng) -> usize {
    let at = rng.below(bytes.len() as u64) as usize;
    bytes[at] ^= 1 + rng.below(255) as u8;
    at
}

fn entries_of(f: &Fixture, n: u64) -> (String, Vec<Vec<u8>>) {
    let width = (ENTRIES - n * 256).min(256);
    let path = bundle_path(n, width);
    let e = decode_bundle(&path, &f.store[&path], width)
        .unwrap()
        .into_iter()
        .map(<[u8]>::to_vec)
        .collect();
    (path, e)
}

fn put_entries(f: &mut Fixture, path: &str, entries: &[Vec<u8>]) {
    let b = encode_bundle(entries.iter().map(Vec::as_slice)).unwrap();
    f.store.insert(path.to_owned(), b);
}

#[test]
fn untouched_log_and_store_verify() {
    let f = base();
    let r = verify(&f, &mut PinState::default(), Some(evidence(&f, true)));
    assert!(r.ok, "{:#?}", r.findings);
    assert_eq!((r.entries_checked, r.batches_checked), (ENTRIES, ENTRIES));
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["ok"], true);
}

#[test]
fn flipped_bytes_in_hash_tiles() {
    let clean = base();
    let tiles: Vec<String> = tiles_for_size(ENTRIES)
        .into_iter()
        .map(|(l, n, w)| tile_path(l, n, w))
        .collect();
    let mut rng = Rng(1);
    for t in 0..TRIALS {
        let mut f = base();
        let path = &tiles[rng.below(tiles.len() as u64) as usize];
        flip(f.store.get_mut(path).unwrap(), &mut rng);
        let r = verify(&f, &mut PinState::default(), None);
        assert_named(
            &r,
            K::Modified,
            O::HashTile,
            None,
            &format!("trial {t} {path}"),
        );
        assert!(
            r.failures()
                .all(|x| x.path.as_deref() == Some(path.as_str()))
        );
    }
    assert!(verify(&clean, &mut PinState::default(), None).ok);
}

#[test]
fn flipped_bytes_in_entry_bundles() {
    let mut rng = Rng(2);
    for t in 0..TRIALS {
        let mut f = base();
        let n = rng.below(3);
        let width = (ENTRIES - n * 256).min(256);
        let path = bundle_path(n, width);
        flip(f.store.get_mut(&path).unwrap(), &mut rng);
        let r = verify(&f, &mut PinState::default(), None);
        let failures: Vec<_> = r.failures().collect();
        assert!(!failures.is_empty(), "trial {t}");
        for x in &failures {
            // Either one entry's bytes changed, or the framing of the bundle did.
            assert!(
                matches!(
                    (x.kind, x.object),
                    (K::Modified, O::Entry) | (K::Modified, O::EntryBundle)
                ),
                "trial {t}: {failures:#?}"
            );
            let i = x.index.unwrap();
            assert!(
                (n * 256..n * 256 + width).contains(&i),
                "trial {t}: {failures:#?}"
            );
        }
    }
}

#[test]
fn flipped_bytes_in_manifests() {
    let mut rng = Rng(3);
    for t in 0..TRIALS {
        let mut f = base();
        let i = rng.below(ENTRIES);
        let (path, mut entries) = entries_of(&f, i / 256);
        flip(&mut entries[(i % 256) as usize], &mut rng);
        put_entries(&mut f, &path, &entries);
        let r = verify(&f, &mut PinState::default(), None);
        assert_named(&r, K::Modified, O::Entry, Some(i), &format!("trial {t}"));
    }
}

#[test]
fn flipped_bytes_in_checkpoints() {
    let mut rng = Rng(4);
    for t in 0..TRIALS {
        let mut f = base();
        let at = flip(f.store.get_mut(CHECKPOINT_PATH).unwrap(), &mut rng);
        let r = verify(&f, &mut PinState::default(), None);
        assert_named(
            &r,
            K::Modified,
            O::Checkpoint,
            None,
            &format!("trial {t} at byte {at}"),
        );
    }
}

#[test]
fn deleted_swapped_and_replayed_entries() {
    let mut rng = Rng(5);
    for t in 0..TRIALS {
        // Delete one entry.
        let mut f = base();
        let i = rng.below(ENTRIES);
        let (path, mut e) = entries_of(&f, i / 256);
        e.remove((i % 256) as usize);
        put_entries(&mut f, &path, &e);
        let r = verify(&f, &mut PinState::default(), None);
        assert_named(
            &r,
            K::Deleted,
            O::Entry,
            Some(i),
            &format!("delete, trial {t}"),
        );

        // Swap two entries (possibly across bundles).
        let mut f = base();
        let (a, b) = loop {
            let (a, b) = (rng.below(ENTRIES), rng.below(ENTRIES));
            if a != b {
                break (a.min(b), a.max(b));
            }
        };
        let (pa, mut ea) = entries_of(&f, a / 256);
        let (pb, mut eb) = entries_of(&f, b / 256);
        if pa == pb {
            ea.swap((a % 256) as usize, (b % 256) as usize);
            put_entries(&mut f, &pa, &ea);
        } else {
            std::mem::swap(&mut ea[(a % 256) as usize], &mut eb[(b % 256) as usize]);
            put_entries(&mut f, &pa, &ea);
            put_entries(&mut f, &pb, &eb);
        }
        let r = verify(&f, &mut PinState::default(), None);
        assert_named(
            &r,
            K::Reordered,
            O::Entry,
            Some(a),
            &format!("swap {a} {b}, trial {t}"),
        );
        assert_eq!(r.failures().next().unwrap().other_index, Some(b));

        // Replay: an entry replaced by a copy of another one, or a copy inserted.
        let mut f = base();
        let (victim, original) = (a, b);
        let (pv, mut ev) = entries_of(&f, victim / 256);
        let (_, eo) = entries_of(&f, original / 256);
        let copy = eo[(original % 256) as usize].clone();
        if t % 2 == 0 {
            ev[(victim % 256) as usize] = copy;
        } else {
            ev.insert((victim % 256) as usize, copy);
        }
        put_entries(&mut f, &pv, &ev);
        let r = verify(&f, &mut PinState::default(), None);
        assert_named(
            &r,
            K::Replayed,
            O::Entry,
            Some(victim),
            &format!("replay, trial {t}"),
        );
        assert_eq!(r.failures().next().unwrap().other_index, Some(original));
    }
}

#[test]
fn rollback_is_named_truncated() {
    let mut rng = Rng(6);
    for t in 0..20 {
        let earlier = 1 + rng.below(ENTRIES - 1);
        let old = fixture(earlier, 0);
        let new = base();
        let mut pins = PinState::default();
        assert!(verify(&new, &mut pins, None).ok);
        let r = verify(&old, &mut pins, None);
        assert_named(
            &r,
            K::Truncated,
            O::Checkpoint,
            Some(earlier),
            &format!("trial {t}"),
        );
        // The pin did not move back.
        assert_eq!(pins.get("node1/acme").unwrap().size, ENTRIES);
        // The old log with the newer store's data: batches beyond the checkpoint.
        let r = verify(&old, &mut PinState::default(), Some(evidence(&new, false)));
        assert_named(
            &r,
            K::Truncated,
            O::Batch,
            None,
            &format!("trial {t}, evidence"),
        );
    }
}

#[test]
fn rewritten_history_under_the_real_key_is_inconsistent() {
    let old = fixture(300, 0);
    let mut pins = PinState::default();
    assert!(verify(&old, &mut pins, None).ok);
    // The operator rebuilds the log with other data and re-signs it with the real key.
    let rewritten = fixture(ENTRIES, 1);
    let r = verify(&rewritten, &mut pins, None);
    assert_named(&r, K::Inconsistent, O::Log, None, "rewrite");
    let same_size = fixture(300, 1);
    let r = verify(&same_size, &mut pins, None);
    assert_named(
        &r,
        K::Inconsistent,
        O::Checkpoint,
        None,
        "rewrite, same size",
    );
}

#[test]
fn forged_checkpoints_are_named_forged() {
    let mut rng = Rng(7);
    for t in 0..TRIALS {
        let mut f = base();
        let mut seed = [0u8; 32];
        seed[..8].copy_from_slice(&rng.next().to_be_bytes());
        let forger = LogSigner::from_seeds(&KeyName::new("node1/acme").unwrap(), seed, seed);
        let note = f.store[CHECKPOINT_PATH].clone();
        let body = std::str::from_utf8(&note)
            .unwrap()
            .split("\n\n")
            .next()
            .unwrap()
            .to_owned()
            + "\n";
        let cp = sentrace_ledger::checkpoint::Checkpoint::parse(&body).unwrap();
        let forged = forger.sign(&cp, 1).unwrap().to_text();
        f.store.insert(CHECKPOINT_PATH.into(), forged.into_bytes());
        let r = verify(&f, &mut PinState::default(), None);
        assert_named(&r, K::Forged, O::Checkpoint, None, &format!("trial {t}"));
    }
}

#[test]
fn deleted_tiles_bundles_and_checkpoint() {
    for (l, n, w) in tiles_for_size(ENTRIES) {
        let mut f = base();
        f.store.remove(&tile_path(l, n, w));
        let r = verify(&f, &mut PinState::default(), None);
        assert_named(&r, K::Deleted, O::HashTile, None, &tile_path(l, n, w));
    }
    for (n, w) in bundles_for_size(ENTRIES) {
        let mut f = base();
        f.store.remove(&bundle_path(n, w));
        let r = verify(&f, &mut PinState::default(), None);
        assert_named(
            &r,
            K::Deleted,
            O::EntryBundle,
            Some(n * 256),
            &bundle_path(n, w),
        );
    }
    let mut f = base();
    f.store.remove(CHECKPOINT_PATH);
    assert_named(
        &verify(&f, &mut PinState::default(), None),
        K::Deleted,
        O::Checkpoint,
        None,
        "cp",
    );
}

#[test]
fn tampered_stored_batches_and_spans() {
    let mut rng = Rng(8);
    // Fewer trials here: each one verifies the log six times (slow in debug builds).
    for t in 0..TRIALS / 2 {
        let f = base();
        let i = rng.below(ENTRIES);
        // Flip a byte of one stored span: located to the span with recorded hashes, to the
        // batch without.
        for recorded in [true, false] {
            let mut ev = evidence(&f, recorded);
            let EvidenceContent::Spans { spans, .. } = &mut ev[i as usize].content else {
                unreachable!()
            };
            let s = rng.below(spans.len() as u64) as usize;
            flip(&mut spans[s], &mut rng);
            let r = verify(&f, &mut PinState::default(), Some(ev));
            let object = if recorded { O::Span } else { O::Batch };
            assert_named(
                &r,
                K::Modified,
                object,
                Some(i),
                &format!("span flip, trial {t}"),
            );
            if recorded {
                assert_eq!(r.failures().next().unwrap().span, Some(s as u64));
            }
            assert_eq!(
                r.failures().next().unwrap().block,
                Some(format!("block-{}", i / 50))
            );
        }
        // Delete a batch's data.
        let mut ev = evidence(&f, true);
        ev.remove(i as usize);
        let r = verify(&f, &mut PinState::default(), Some(ev));
        assert_named(
            &r,
            K::Deleted,
            O::Batch,
            Some(i),
            &format!("batch delete, trial {t}"),
        );
        // Swap two batches' data (two blocks swapped).
        let j = (i + 1 + rng.below(ENTRIES - 1)) % ENTRIES;
        let (a, b) = (i.min(j), i.max(j));
        let mut ev = evidence(&f, true);
        let tmp = ev[a as usize].content.clone();
        ev[a as usize].content = ev[b as usize].content.clone();
        ev[b as usize].content = tmp;
        let r = verify(&f, &mut PinState::default(), Some(ev));
        assert_named(
            &r,
            K::Reordered,
            O::Batch,
            Some(a),
            &format!("batch swap, trial {t}"),
        );
        // Replay a batch: stored twice.
        let mut ev = evidence(&f, true);
        let mut dup = ev[i as usize].clone();
        dup.block = "block-replayed".into();
        ev.push(dup);
        let r = verify(&f, &mut PinState::default(), Some(ev));
        assert_named(
            &r,
            K::Replayed,
            O::Batch,
            Some(i),
            &format!("batch replay, trial {t}"),
        );
        // Delete one span (recorded hashes locate it).
        let mut ev = evidence(&f, true);
        let EvidenceContent::Spans { spans, .. } = &mut ev[i as usize].content else {
            unreachable!()
        };
        let s = rng.below(spans.len() as u64) as usize;
        spans.remove(s);
        let r = verify(&f, &mut PinState::default(), Some(ev));
        assert_named(
            &r,
            K::Deleted,
            O::Span,
            Some(i),
            &format!("span delete, trial {t}"),
        );
        assert_eq!(r.failures().next().unwrap().span, Some(s as u64));
    }
}

#[test]
fn erased_batches_are_not_tampering() {
    let f = base();
    let mut ev = evidence(&f, false);
    for e in ev.iter_mut().step_by(7) {
        e.content = EvidenceContent::Erased {
            reason: "retention".into(),
        };
    }
    let r = verify(&f, &mut PinState::default(), Some(ev));
    assert!(r.ok, "{:#?}", r.failures().collect::<Vec<_>>());
    assert_eq!(r.batches_erased, ENTRIES.div_ceil(7));
    assert!(r.findings.iter().all(|x| x.kind == K::Erased));
}
