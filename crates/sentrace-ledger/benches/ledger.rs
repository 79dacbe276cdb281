//! Criterion benchmarks: log append (leaves/s), proof sizes and verify times, checkpoint
//! signing and verification, SHA-256 throughput against span_root throughput, a
//! witness's decision on one `add-checkpoint` request, and the server's per-batch cost of
//! a signed source (signature check, received span root).
//!
//! Run: `cargo bench -p sentrace-ledger --bench ledger`.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use sentrace_ledger::checkpoint::{
    Checkpoint, CheckpointPolicy, LogSigner, Origin, open_checkpoint,
};
use sentrace_ledger::log::Log;
use sentrace_ledger::manifest::BatchManifest;
use sentrace_ledger::merkle::{Tree, span_root, verify_consistency, verify_inclusion};
use sentrace_ledger::note::KeyName;
use sha2::{Digest, Sha256};

fn manifest(i: u64) -> BatchManifest {
    BatchManifest {
        origin: Origin::new("node1/acme").unwrap(),
        source: "agent-1".into(),
        sequence: i,
        source_time_unix_nanos: 1_700_000_000_000_000_000 + i,
        receive_time_unix_nanos: 1_700_000_000_000_000_000 + i,
        span_count: 100,
        span_root: [i as u8; 32],
        policy_digest: Some([1; 32]),
        source_signature: None,
    }
}

fn log_append(c: &mut Criterion) {
    let entries: Vec<Vec<u8>> = (0..10_000).map(|i| manifest(i).encode()).collect();
    let mut g = c.benchmark_group("log_append");
    g.throughput(Throughput::Elements(entries.len() as u64));
    g.bench_function("10k_manifests_with_tiles", |b| {
        b.iter(|| {
            let mut log = Log::new(Origin::new("node1/acme").unwrap());
            for e in &entries {
                log.append(e).unwrap();
            }
            black_box(log.flush().unwrap().len())
        })
    });
    g.finish();
}

fn proofs(c: &mut Criterion) {
    let mut g = c.benchmark_group("proofs");
    for size in [1_000u64, 1_000_000] {
        let tree = Tree::from_leaf_hashes(
            (0..size).map(|i| sentrace_ledger::merkle::leaf_hash(&i.to_be_bytes())),
        );
        let root = tree.root();
        let index = size / 3;
        let leaf = tree.leaf(index).unwrap();
        let path = tree.inclusion_proof(index, size).unwrap();
        let old = size / 2 + 1;
        let cons = tree.consistency_proof(old, size).unwrap();
        let old_root = tree.root_at(old).unwrap();
        eprintln!(
            "proof sizes at {size} leaves: inclusion {} hashes ({} bytes), consistency {} hashes ({} bytes)",
            path.len(),
            path.len() * 32,
            cons.len(),
            cons.len() * 32
        );
        g.bench_with_input(BenchmarkId::new("verify_inclusion", size), &size, |b, _| {
            b.iter(|| verify_inclusion(black_box(&leaf), index, size, &path, &root).unwrap())
        });
        g.bench_with_input(
            BenchmarkId::new("verify_consistency", size),
            &size,
            |b, _| {
                b.iter(|| {
                    verify_consistency(old, size, &old_root, &root, black_box(&cons)).unwrap()
                })
            },
        );
        g.bench_with_input(BenchmarkId::new("inclusion_proof", size), &size, |b, _| {
            b.iter(|| tree.inclusion_proof(black_box(index), size).unwrap())
        });
    }
    g.finish();
}

fn checkpoints(c: &mut Criterion) {
    let signer = LogSigner::from_seeds(&KeyName::new("node1/acme").unwrap(), [1; 32], [2; 32]);
    let cp = Checkpoint::new(Origin::new("node1/acme").unwrap(), 12345, [7; 32]);
    let note = signer.sign(&cp, 1).unwrap().to_text();
    eprintln!("signed checkpoint size: {} bytes", note.len());
    let policy = CheckpointPolicy::new(signer.verifier());
    let mut g = c.benchmark_group("checkpoint");
    g.bench_function("sign_hybrid", |b| {
        b.iter(|| signer.sign(black_box(&cp), 1).unwrap())
    });
    g.bench_function("open_hybrid", |b| {
        b.iter(|| open_checkpoint(black_box(note.as_bytes()), &policy).unwrap())
    });
    g.finish();
}

fn hashing(c: &mut Criterion) {
    // 1 MiB in spans of 713 bytes (a typical 20-attribute span, as the load generator sends).
    let spans: Vec<Vec<u8>> = (0..1471).map(|i| vec![i as u8; 713]).collect();
    let flat: Vec<u8> = spans.concat();
    let mut g = c.benchmark_group("hashing");
    g.throughput(Throughput::Bytes(flat.len() as u64));
    g.bench_function("raw_sha256_1MiB", |b| {
        b.iter(|| Sha256::digest(black_box(&flat)))
    });
    g.bench_function("span_root_1MiB_713B_spans", |b| {
        b.iter(|| span_root(black_box(&spans).iter().map(Vec::as_slice)))
    });
    g.finish();
}

fn witness(c: &mut Criterion) {
    use sentrace_ledger::checkpoint::Require;
    use sentrace_ledger::keys::{NoteSigner, SigKind};
    use sentrace_ledger::witness::{
        AddCheckpoint, KnownLog, LogRecord, Witness, WitnessResponse, WitnessState,
    };
    let origin = Origin::new("node1/acme").unwrap();
    let log = LogSigner::from_seeds(&KeyName::new("node1/acme").unwrap(), [1; 32], [2; 32]);
    let mut tree = Tree::new();
    for i in 0..1037u32 {
        tree.push(&i.to_be_bytes());
    }
    let name = KeyName::new("witness.example/w1").unwrap();
    let signers = vec![
        NoteSigner::from_seed(name.clone(), SigKind::Ed25519Cosignature, [7; 32]),
        NoteSigner::from_seed(name, SigKind::MlDsa44, [8; 32]),
    ];
    let mut state = WitnessState::default();
    state.logs.insert(
        origin.to_string(),
        LogRecord {
            size: 1000,
            root: hex::encode(tree.root_at(1000).unwrap()),
        },
    );
    let mut logs = std::collections::BTreeMap::new();
    logs.insert(
        origin.clone(),
        KnownLog {
            key: log.verifier(),
            require: Require::Both,
        },
    );
    let w = Witness::new(signers, logs, state).unwrap();
    let cp = Checkpoint::new(origin, 1037, tree.root_at(1037).unwrap());
    let body = AddCheckpoint {
        old_size: 1000,
        proof: tree.consistency_proof(1000, 1037).unwrap(),
        checkpoint: log.sign(&cp, 1).unwrap().to_text(),
    }
    .encode();
    assert!(matches!(
        w.evaluate(&body, 2).response,
        WitnessResponse::Cosigned(_)
    ));
    let mut g = c.benchmark_group("witness");
    // Parse, verify the log's Ed25519 + ML-DSA-44 signatures and the consistency proof,
    // cosign with Ed25519 (0x04) and ML-DSA-44 (0x06).
    g.bench_function("evaluate_hybrid", |b| {
        b.iter(|| w.evaluate(black_box(&body), 2))
    });
    g.finish();
}

/// What the server adds for a signed batch: one hybrid signature check (fixed) and the
/// span root over the received spans (per span), for a batch of 500 typical spans.
fn source_batch(c: &mut Criterion) {
    use sentrace_core::proto::common::v1::{AnyValue, KeyValue, any_value::Value};
    use sentrace_core::proto::trace::v1::{ResourceSpans, ScopeSpans, Span};
    use sentrace_ledger::manifest::{SourceSigner, batch_span_root, sign_batch};
    let attr = |k: String, v: String| KeyValue {
        key: k,
        value: Some(AnyValue {
            value: Some(Value::StringValue(v)),
        }),
        ..Default::default()
    };
    let spans = (0..500u64)
        .map(|n| Span {
            trace_id: [n as u8; 16].to_vec(),
            span_id: (n | 1 << 63).to_be_bytes().to_vec(),
            name: "GET /api/items/{id}".into(),
            kind: 2,
            start_time_unix_nano: 1_700_000_000_000_000_000 + n,
            end_time_unix_nano: 1_700_000_000_005_000_000 + n,
            attributes: (0..20)
                .map(|i| {
                    attr(
                        format!("app.attribute_{i}"),
                        format!("value-{}-{i}", n % 97),
                    )
                })
                .collect(),
            ..Default::default()
        })
        .collect();
    let rs = vec![ResourceSpans {
        scope_spans: vec![ScopeSpans {
            spans,
            ..Default::default()
        }],
        ..Default::default()
    }];
    let key = SourceSigner::from_seeds(&KeyName::new("edge-1").unwrap(), [1; 32], [2; 32]);
    let sig = sign_batch(&key, "edge-1", 7, 1_700_000_000_000_000_000, &rs).unwrap();
    let vk = key.verifier();
    let mut g = c.benchmark_group("source_batch");
    g.bench_function("verify_hybrid_signature", |b| {
        b.iter(|| {
            black_box(&sig)
                .verify(&vk, "edge-1", 7, 1_700_000_000_000_000_000)
                .unwrap()
        })
    });
    g.throughput(Throughput::Elements(500));
    g.bench_function("received_span_root_500_typical_spans", |b| {
        b.iter(|| batch_span_root(black_box(&rs)))
    });
    g.bench_function("sign_batch_500_typical_spans", |b| {
        b.iter(|| sign_batch(&key, "edge-1", 7, 1, black_box(&rs)).unwrap())
    });
    g.finish();
}

criterion_group!(
    benches,
    log_append,
    proofs,
    checkpoints,
    hashing,
    witness,
    source_batch
);
criterion_main!(benches);
