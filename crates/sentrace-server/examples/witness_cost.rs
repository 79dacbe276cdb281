//! What one `add-checkpoint` costs the witness: the decision alone (parse, verify the log's
//! Ed25519 and ML-DSA-44 signatures, verify the consistency proof, cosign with Ed25519 and
//! ML-DSA-44) and the decision plus the durable state update (temp file, fsync, rename,
//! directory fsync) that precedes every 200.
//!
//! `cargo run -p sentrace-server --example witness_cost [-- N [DIR]]` (DIR: where the state
//! is written; default a temporary directory, i.e. the disk the temp dir lives on).

use std::collections::BTreeMap;
use std::time::Instant;

use sentrace_ledger::checkpoint::{Checkpoint, LogSigner, Origin, Require};
use sentrace_ledger::keys::{NoteSigner, SigKind};
use sentrace_ledger::merkle::Tree;
use sentrace_ledger::note::KeyName;
use sentrace_ledger::witness::{AddCheckpoint, KnownLog, Witness, WitnessResponse};
use sentrace_server::witness::server::WitnessService;

const ORIGIN: &str = "sentrace/default";

fn witness(log: &LogSigner) -> Witness {
    let name = KeyName::new("bench.example/w").unwrap();
    let signers = vec![
        NoteSigner::from_seed(name.clone(), SigKind::Ed25519Cosignature, [7; 32]),
        NoteSigner::from_seed(name, SigKind::MlDsa44, [8; 32]),
    ];
    let mut logs = BTreeMap::new();
    logs.insert(
        Origin::new(ORIGIN).unwrap(),
        KnownLog {
            key: log.verifier(),
            require: Require::Both,
        },
    );
    Witness::new(signers, logs, Default::default()).unwrap()
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    let mut args = std::env::args().skip(1);
    let n: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(200);
    let dir_arg = args.next();
    let tmp = tempfile::tempdir().unwrap();
    let dir = dir_arg.map_or_else(|| tmp.path().to_path_buf(), Into::into);
    let log = LogSigner::from_seeds(&KeyName::new(ORIGIN).unwrap(), [1; 32], [2; 32]);
    let step = 37u64;
    let mut tree = Tree::new();
    for i in 0..(n + 1) * step {
        tree.push(&i.to_be_bytes());
    }
    // Requests: sizes step, 2*step, ... each with the proof from the previous size.
    let bodies: Vec<Vec<u8>> = (1..=n)
        .map(|k| {
            let (old, size) = ((k - 1) * step, k * step);
            let cp = Checkpoint::new(
                Origin::new(ORIGIN).unwrap(),
                size,
                tree.root_at(size).unwrap(),
            );
            AddCheckpoint {
                old_size: old,
                proof: if old == 0 {
                    vec![]
                } else {
                    tree.consistency_proof(old, size).unwrap()
                },
                checkpoint: log.sign(&cp, 1).unwrap().to_text(),
            }
            .encode()
        })
        .collect();

    let mut w = witness(&log);
    let mut decide = Vec::new();
    for b in &bodies {
        let t = Instant::now();
        let r = w.add_checkpoint(b, 2);
        decide.push(t.elapsed().as_secs_f64() * 1e3);
        assert!(matches!(r, WitnessResponse::Cosigned(_)), "{r:?}");
    }

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let svc = WitnessService::new(witness(&log), dir.join("state.json"));
    let mut durable = Vec::new();
    rt.block_on(async {
        for b in &bodies {
            let t = Instant::now();
            let r = svc.add_checkpoint(b).await;
            durable.push(t.elapsed().as_secs_f64() * 1e3);
            assert!(matches!(r, WitnessResponse::Cosigned(_)), "{r:?}");
        }
    });
    println!("{n} add-checkpoint requests, state in {}", dir.display());
    println!(
        "decide (verify 0x01+0x06, proof, cosign 0x04+0x06): median {:.2} ms, p99 {:.2} ms",
        pct(&mut decide, 0.5),
        pct(&mut decide, 0.99)
    );
    println!(
        "decide + durable state (fsync, rename, dir fsync):   median {:.2} ms, p99 {:.2} ms",
        pct(&mut durable, 0.5),
        pct(&mut durable, 0.99)
    );
}
