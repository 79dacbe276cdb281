//! Append throughput: the encrypted store end to end, the same group-commit pattern over a
//! plaintext file as the baseline, the CPU cost of sealing a record; and bytes per span on
//! disk in blocks (printed once).
//!
//! Run: `cargo bench -p sentrace-store --bench append`

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sentrace_core::TenantId;
use sentrace_store::testutil::{encode_plain, typical_span};
use sentrace_store::wal::format::encode_record;
use sentrace_store::{KeyRing, MasterKey, SpanEntry, Store, StoreConfig};

const SPANS_PER_REQUEST: usize = 100;
const CLIENTS: usize = 8;

fn requests(n: usize) -> Vec<Vec<SpanEntry>> {
    (0..n)
        .map(|r| {
            (0..SPANS_PER_REQUEST)
                .map(|i| typical_span((r * SPANS_PER_REQUEST + i) as u64))
                .collect()
        })
        .collect()
}

fn cfg() -> StoreConfig {
    StoreConfig {
        flush_interval: Duration::from_secs(3600),
        flush_max_spans: usize::MAX,
        ..Default::default()
    }
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir =
        tempfile::tempdir_in(std::env::var("BENCH_DIR").unwrap_or_else(|_| ".".into())).unwrap();
    let tenant = TenantId::new("bench").unwrap();
    let reqs = requests(CLIENTS);
    let per_round = (CLIENTS * SPANS_PER_REQUEST) as u64;

    let mut g = c.benchmark_group("append");
    g.throughput(Throughput::Elements(per_round));
    g.sample_size(20);
    g.measurement_time(Duration::from_secs(5));

    // End to end: 8 concurrent clients x 100 spans, encrypted WAL, group commit + fdatasync.
    let keys =
        Arc::new(KeyRing::open(&dir.path().join("keys"), &MasterKey::generate().unwrap()).unwrap());
    let (store, _) = rt
        .block_on(Store::open(&dir.path().join("enc"), cfg(), keys.clone()))
        .unwrap();
    g.bench_function("store_encrypted_8x100", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                rt.block_on(async {
                    let futs = reqs.iter().map(|r| store.append(&tenant, r.clone()));
                    for r in futures::future::join_all(futs).await {
                        r.unwrap();
                    }
                });
            }
            start.elapsed()
        })
    });
    let counters = store.wal_counters();
    println!(
        "\nstore: {} records in {} group commits ({:.2} records per fsync)",
        counters.records,
        counters.commits,
        counters.records as f64 / counters.commits.max(1) as f64
    );
    rt.block_on(store.flush()).unwrap();

    // Plaintext baseline: the same requests encoded and written with one fdatasync per
    // group of 8, without encryption and without the store's queue and memtable.
    let path = dir.path().join("plain.log");
    let mut file = std::fs::File::create(&path).unwrap();
    g.bench_function("plaintext_file_8x100", |b| {
        b.iter(|| {
            let mut buf = Vec::new();
            for r in &reqs {
                buf.extend_from_slice(&encode_plain(r));
            }
            file.write_all(&buf).unwrap();
            file.sync_data().unwrap();
        })
    });

    // CPU only: encode vs encode + AES-256-GCM seal of one 100-span record.
    let dek = keys.current_dek(&tenant).unwrap();
    let one = &reqs[0];
    g.throughput(Throughput::Elements(SPANS_PER_REQUEST as u64));
    g.bench_function("record_plain_encode_100", |b| b.iter(|| encode_plain(one)));
    g.bench_function("record_sealed_100", |b| {
        b.iter(|| {
            let plain = encode_plain(one);
            let mut out = Vec::with_capacity(plain.len() + 64);
            encode_record(&mut out, dek.wal_key(), &tenant, dek.id, 1, 16, &plain).unwrap();
            out
        })
    });
    g.finish();

    // A flush of 20,000 buffered spans into one block: gathering and ordering the spans,
    // Parquet encoding, encryption, the integrity tag and the write.
    // Only the flush is timed; the appends that refill the buffer are not.
    let mut g = c.benchmark_group("flush");
    let flush_spans = 20_000u64;
    g.throughput(Throughput::Elements(flush_spans));
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(10));
    let (store3, _) = rt
        .block_on(Store::open(&dir.path().join("flush"), cfg(), keys.clone()))
        .unwrap();
    let batches: Vec<Vec<SpanEntry>> = (0..flush_spans)
        .map(typical_span)
        .collect::<Vec<_>>()
        .chunks(SPANS_PER_REQUEST)
        .map(<[SpanEntry]>::to_vec)
        .collect();
    g.bench_function("flush_20k", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                rt.block_on(async {
                    for batch in &batches {
                        store3.append(&tenant, batch.clone()).await.unwrap();
                    }
                });
                let start = Instant::now();
                rt.block_on(store3.flush()).unwrap();
                total += start.elapsed();
            }
            total
        })
    });
    g.finish();
    rt.block_on(store3.close()).unwrap();

    // Bytes per span on disk: 20,000 typical spans flushed into one block.
    let n = 20_000usize;
    let (store2, _) = rt
        .block_on(Store::open(&dir.path().join("size"), cfg(), keys.clone()))
        .unwrap();
    let all: Vec<SpanEntry> = (0..n as u64).map(|i| typical_span(1_000_000 + i)).collect();
    let canonical: usize = all.iter().map(|s| s.canonical.len()).sum();
    for chunk in all.chunks(SPANS_PER_REQUEST) {
        rt.block_on(store2.append(&tenant, chunk.to_vec())).unwrap();
    }
    let wal_bytes = dir_size(&dir.path().join("size/wal"));
    let report = rt.block_on(store2.flush()).unwrap();
    println!(
        "\nsize: {n} typical spans, canonical {:.0} B/span, WAL {:.0} B/span, encrypted Parquet block {:.0} B/span ({} bytes)",
        canonical as f64 / n as f64,
        wal_bytes as f64 / n as f64,
        report.bytes as f64 / n as f64,
        report.bytes
    );
    rt.block_on(store2.close()).unwrap();
    rt.block_on(store.close()).unwrap();
}

fn dir_size(p: &std::path::Path) -> u64 {
    std::fs::read_dir(p)
        .unwrap()
        .flatten()
        .map(|e| e.metadata().unwrap().len())
        .sum()
}

criterion_group!(benches, bench);
criterion_main!(benches);
