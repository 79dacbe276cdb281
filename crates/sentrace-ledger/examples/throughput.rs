//! Whole-store figures that a criterion loop does not fit:
//! - `verify` MB/s over a store of many batches, as a ratio to raw SHA-256 over the same
//!   bytes on this machine (the physical limit; target ≥ 50%);
//! - the per-span cost of sealing (span leaf hash + span root + manifest + log append),
//!   against a budget of 6.7 µs per span (150k spans/s on one core).
//!
//! Run: `cargo run --release -p sentrace-ledger --example throughput [batches] [spans]`.

use std::collections::BTreeMap;
use std::time::Instant;

use sentrace_ledger::checkpoint::{CheckpointPolicy, LogSigner, Origin};
use sentrace_ledger::log::Log;
use sentrace_ledger::manifest::BatchManifest;
use sentrace_ledger::merkle::span_root;
use sentrace_ledger::note::KeyName;
use sentrace_ledger::tiles::CHECKPOINT_PATH;
use sentrace_ledger::verify::{BatchEvidence, EvidenceContent, PinState, Verifier};
use sha2::{Digest, Sha256};

fn main() {
    let mut args = std::env::args().skip(1);
    let batches: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(2_000);
    let per_batch: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(100);
    let span_len = 713;
    let origin = Origin::new("node1/acme").expect("origin");
    let signer =
        LogSigner::from_seeds(&KeyName::new("node1/acme").expect("name"), [1; 32], [2; 32]);

    let data: Vec<Vec<Vec<u8>>> = (0..batches)
        .map(|b| {
            (0..per_batch)
                .map(|s| {
                    let mut v = vec![(b as u8) ^ (s as u8); span_len];
                    v[..8].copy_from_slice(&b.to_be_bytes());
                    v[8..16].copy_from_slice(&(s as u64).to_be_bytes());
                    v
                })
                .collect()
        })
        .collect();
    let total_bytes: usize = data.iter().flatten().map(Vec::len).sum();
    let spans = batches as usize * per_batch;

    // Sealing: what the seal stage does per batch.
    let t = Instant::now();
    let mut log = Log::new(origin.clone());
    for (i, batch) in data.iter().enumerate() {
        let m = BatchManifest {
            origin: origin.clone(),
            source: "agent-1".into(),
            sequence: i as u64 + 1,
            source_time_unix_nanos: 1,
            receive_time_unix_nanos: 2,
            span_count: batch.len() as u32,
            span_root: span_root(batch.iter().map(Vec::as_slice)),
            policy_digest: Some([3; 32]),
            source_signature: None,
        };
        log.append_manifest(&m).expect("append");
    }
    let mut store: BTreeMap<String, Vec<u8>> = log.flush().expect("flush").into_iter().collect();
    let seal = t.elapsed();
    let t = Instant::now();
    let note = signer.sign(&log.checkpoint(), 1).expect("sign");
    let sign = t.elapsed();
    store.insert(CHECKPOINT_PATH.into(), note.to_text().into_bytes());

    // Raw SHA-256 over the same span bytes (one digest per span, as the verifier does).
    let t = Instant::now();
    let mut acc = 0u8;
    for s in data.iter().flatten() {
        acc ^= Sha256::digest(s)[0];
    }
    let raw = t.elapsed();
    std::hint::black_box(acc);

    // The verifier over log + evidence.
    let policy = CheckpointPolicy::new(signer.verifier());
    let evidence = data.iter().enumerate().map(|(i, b)| BatchEvidence {
        index: i as u64,
        block: "b".into(),
        content: EvidenceContent::Spans {
            spans: b.clone(),
            recorded_hashes: None,
        },
    });
    // Cloning the evidence is storage's work, not the verifier's: prepare it first.
    let evidence: Vec<BatchEvidence> = evidence.collect();
    let t = Instant::now();
    let report = Verifier::new(&policy, &store)
        .verify(&mut PinState::default(), Some(&mut evidence.into_iter()));
    let verify = t.elapsed();
    assert!(report.ok, "{:?}", report.findings.first());

    let mb = total_bytes as f64 / 1e6;
    let raw_mbs = mb / raw.as_secs_f64();
    let ver_mbs = report.bytes_hashed as f64 / 1e6 / verify.as_secs_f64();
    println!("store: {batches} batches x {per_batch} spans x {span_len} B = {mb:.1} MB");
    println!("raw SHA-256 (per span): {raw_mbs:.0} MB/s");
    println!(
        "verify (log + spans):   {ver_mbs:.0} MB/s = {:.0}% of raw SHA-256",
        100.0 * ver_mbs / raw_mbs
    );
    println!(
        "sealing: {:.0} ns/span ({:.2}% of the 6.7 us per-span budget), {:.0} batches/s appended",
        seal.as_nanos() as f64 / spans as f64,
        100.0 * seal.as_nanos() as f64 / spans as f64 / 6700.0,
        batches as f64 / seal.as_secs_f64()
    );
    println!(
        "hybrid checkpoint signature: {:.2} ms (off the ack path)",
        sign.as_secs_f64() * 1e3
    );
}
