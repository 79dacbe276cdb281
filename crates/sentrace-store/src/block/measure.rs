//! Block encodings measured on real spans (not a test of behaviour: run it by hand).
//!
//! `SENTRACE_BLOCK_SAMPLE=<data dir of a server that stored spans> cargo test --release -p
//! sentrace-store measure_block_encodings -- --ignored --nocapture` reads up to 100,000
//! spans of that data directory (its master key from `<dir>/master.key`), encodes them as
//! one block under each candidate setting and prints bytes per span, write and read time.
//! `SENTRACE_BLOCK_DEFAULTS_ONLY=1` measures only the default and the default with its integer
//! columns dictionary-encoded instead of delta-encoded; `SENTRACE_BLOCK_COLUMNS=1` adds each column's bytes per span.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use sentrace_core::TenantId;

use super::{BlockInfo, BlockOptions, Sparse, build_block, load_meta, read_rows};
use crate::keys::{KeyRing, MasterKey};
use crate::scan::scan_data_dir;

#[tokio::test]
#[ignore = "measurement: set SENTRACE_BLOCK_SAMPLE to a data directory"]
async fn measure_block_encodings() {
    let Some(dir) = std::env::var_os("SENTRACE_BLOCK_SAMPLE").map(PathBuf::from) else {
        panic!("set SENTRACE_BLOCK_SAMPLE to a server data directory");
    };
    let master = MasterKey::load(&dir.join("master.key")).unwrap();
    let keys = Arc::new(KeyRing::open(&dir.join("keys"), &master).unwrap());
    let scan = scan_data_dir(&dir, keys.clone()).await.unwrap();
    let tenant: TenantId = scan.spans[0].tenant.clone();
    let mut spans: Vec<_> = scan
        .spans
        .into_iter()
        .filter(|s| s.tenant == tenant)
        .map(|s| s.entry)
        .take(100_000)
        .collect();
    spans.sort_by(|a, b| {
        a.trace_id
            .cmp(&b.trace_id)
            .then(a.start_unix_nanos.cmp(&b.start_unix_nanos))
            .then(a.span_id.cmp(&b.span_id))
    });
    let n = spans.len();
    let proto: usize = spans.iter().map(|s| s.canonical.len()).sum();
    println!(
        "{n} spans, canonical {:.0} bytes/span",
        proto as f64 / n as f64
    );
    println!(
        "| layout | zstd | rows/group | page | bytes/span | write us/span | read us/span | one group ms |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    let dek = keys.current_dek(&tenant).unwrap();
    let base = BlockOptions::new(8192);
    let mut variants = vec![
        BlockOptions {
            split: false,
            zstd_level: 1,
            ..base
        },
        BlockOptions::new(2048),
        BlockOptions {
            delta_ints: false,
            ..BlockOptions::new(2048)
        },
    ];
    for level in [1, 3, 6, 9, 12, 19] {
        variants.push(BlockOptions {
            zstd_level: level,
            ..base
        });
    }
    for rows in [1024, 2048, 4096, 32768] {
        variants.push(BlockOptions {
            row_group_rows: rows,
            ..base
        });
    }
    for page in [64 << 10, 4 << 20] {
        variants.push(BlockOptions {
            data_page_bytes: page,
            ..base
        });
    }
    if std::env::var_os("SENTRACE_BLOCK_DEFAULTS_ONLY").is_some() {
        // Only the default and its integer columns dictionary-encoded instead.
        variants = variants[1..3].to_vec();
    }
    for opts in variants {
        let name = BlockInfo::new_name(0, 1).unwrap();
        let mut best_w = f64::MAX;
        let mut bytes = None;
        for _ in 0..3 {
            let t = Instant::now();
            let b = build_block(&tenant, &dek, &name, &spans, opts).unwrap();
            best_w = best_w.min(t.elapsed().as_secs_f64());
            bytes = Some(b);
        }
        let bytes = bytes.unwrap();
        let mut best_r = f64::MAX;
        for _ in 0..3 {
            let t = Instant::now();
            let file = Sparse::whole(bytes.clone());
            let meta = load_meta(&file, &keys, &tenant, &name).unwrap();
            let groups = (0..meta.row_groups.len()).collect();
            let rows = read_rows(file, &meta, &name, groups, None, &|_| true).unwrap();
            best_r = best_r.min(t.elapsed().as_secs_f64());
            assert_eq!(rows.len(), n);
            assert!(
                rows.iter()
                    .zip(&spans)
                    .all(|(a, b)| a.canonical == b.canonical)
            );
        }
        let mut best_g = f64::MAX;
        for _ in 0..5 {
            let t = Instant::now();
            let file = Sparse::whole(bytes.clone());
            let meta = load_meta(&file, &keys, &tenant, &name).unwrap();
            let t_meta = t.elapsed().as_secs_f64();
            let t = Instant::now();
            let g = meta.row_groups.len() / 2;
            let rows = read_rows(file, &meta, &name, vec![g], None, &|_| true).unwrap();
            best_g = best_g.min(t.elapsed().as_secs_f64());
            assert!(!rows.is_empty() && t_meta >= 0.0);
        }
        if std::env::var_os("SENTRACE_BLOCK_COLUMNS").is_some() {
            let meta = load_meta(&Sparse::whole(bytes.clone()), &keys, &tenant, &name).unwrap();
            let md = meta.arrow.metadata();
            let cols = md.file_metadata().schema_descr().num_columns();
            for c in 0..cols {
                let (z, u): (i64, i64) = md.row_groups().iter().fold((0, 0), |(z, u), rg| {
                    let cc = rg.column(c);
                    (z + cc.compressed_size(), u + cc.uncompressed_size())
                });
                println!(
                    "    {:<18} {:>7.1} B/span compressed, {:>7.1} uncompressed",
                    md.file_metadata().schema_descr().column(c).name(),
                    z as f64 / n as f64,
                    u as f64 / n as f64
                );
            }
        }
        println!(
            "| {}{} | {} | {} | {} KiB | {:.1} | {:.2} | {:.2} | {:.1} |",
            if opts.split { "split" } else { "whole" },
            if opts.delta_ints {
                ""
            } else {
                ", dictionary ints"
            },
            opts.zstd_level,
            opts.row_group_rows,
            opts.data_page_bytes >> 10,
            bytes.len() as f64 / n as f64,
            best_w * 1e6 / n as f64,
            best_r * 1e6 / n as f64,
            best_g * 1e3,
        );
    }
}
