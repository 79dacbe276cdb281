//! Flush to encrypted Parquet blocks, pruning, retention, shredding.

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::*;
use sentrace_store::{SpanFilter, StoreConfig, StoreError};

fn now_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

fn wal_segments(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir.join("wal")).unwrap().count()
}

/// The block files under `dir`; asserts that each has its integrity tag (a tag may briefly
/// precede its block while a background flush writes it).
fn block_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut blocks = Vec::new();
    let mut tags = Vec::new();
    let root = dir.join("blocks");
    for t in std::fs::read_dir(&root).into_iter().flatten().flatten() {
        for f in std::fs::read_dir(t.path()).into_iter().flatten().flatten() {
            let p = f.path();
            let name = p.to_string_lossy().into_owned();
            if name.ends_with(".parquet") {
                blocks.push(p);
            } else if let Some(block) = name.strip_suffix(".mac") {
                tags.push(std::path::PathBuf::from(block));
            }
        }
    }
    for b in &blocks {
        assert!(
            tags.contains(b),
            "block {} has no integrity tag",
            b.display()
        );
    }
    blocks
}

#[tokio::test]
async fn flush_moves_spans_to_blocks_and_drops_the_wal() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = open(dir.path(), cfg()).await;
    let acme = tenant("acme");
    let t0 = now_nanos();
    for t in 1..=30 {
        store
            .append(&acme, trace_spans(t, 4, t0 + t * 10_000_000))
            .await
            .unwrap();
    }
    store
        .append(&tenant("other"), trace_spans(99, 2, t0))
        .await
        .unwrap();
    assert_eq!(store.buffered_spans(), 122);
    let report = store.flush().await.unwrap();
    assert_eq!(report.blocks, 2);
    assert_eq!(report.spans, 122);
    assert!(report.segments_deleted >= 1);
    assert_eq!(store.buffered_spans(), 0);
    assert_eq!(
        wal_segments(dir.path()),
        1,
        "only the fresh segment remains"
    );
    assert_eq!(block_files(dir.path()).len(), 2);

    // Reads now come from blocks.
    let tid = trace_spans(7, 1, 0)[0].trace_id;
    let got = store.trace(&acme, tid).await.unwrap();
    assert_eq!(got, trace_spans(7, 4, t0 + 70_000_000));
    assert!(store.read_stats().blocks_fetched >= 1);

    // Newer spans in the WAL and older ones in blocks are both visible.
    store
        .append(&acme, trace_spans(7, 6, t0 + 70_000_000))
        .await
        .unwrap();
    assert_eq!(
        store.trace(&acme, tid).await.unwrap().len(),
        6,
        "dedup by span id"
    );

    // Restart: blocks are listed, the catalog is read back.
    store.close().await.unwrap();
    let (store, report) = open(dir.path(), cfg()).await;
    assert_eq!(report.blocks, 2);
    assert_eq!(report.spans, 6);
    assert_eq!(store.trace(&acme, tid).await.unwrap().len(), 6);
    assert_eq!(store.services(&acme).await.unwrap(), vec!["checkout"]);
    assert_eq!(
        store.operations(&acme, "checkout").await.unwrap(),
        vec![("op-0".into(), 2), ("op-1".into(), 2), ("op-2".into(), 2)]
    );
    store.close().await.unwrap();
}

#[tokio::test]
async fn pruning_by_bloom_and_statistics_gives_right_answers() {
    let dir = tempfile::tempdir().unwrap();
    let small_groups = StoreConfig {
        block_row_group_rows: 10,
        ..cfg()
    };
    let (store, _) = open(dir.path(), small_groups).await;
    let acme = tenant("acme");
    let t0 = now_nanos();
    // Only odd trace numbers exist: even ones fall inside row-group min/max ranges, so
    // only the bloom filter can rule them out.
    for t in (1..=200u64).filter(|t| t % 2 == 1) {
        store
            .append(&acme, trace_spans(t, 5, t0 + t * 1_000_000_000))
            .await
            .unwrap();
    }
    store.flush().await.unwrap();
    let tid = |n: u64| trace_spans(n, 1, 0)[0].trace_id;

    let before = store.read_stats();
    let got = store.trace(&acme, tid(101)).await.unwrap();
    assert_eq!(got, trace_spans(101, 5, t0 + 101_000_000_000));
    let after = store.read_stats();
    // 500 rows in 50 row groups; a 5-span trace spans at most 2 of them.
    assert!(
        after.row_groups_read - before.row_groups_read <= 2,
        "{before:?} -> {after:?}"
    );

    let mut false_positive_groups = 0;
    for n in (2..=200u64).step_by(2) {
        let b = store.read_stats().row_groups_read;
        assert!(store.trace(&acme, tid(n)).await.unwrap().is_empty());
        false_positive_groups += store.read_stats().row_groups_read - b;
    }
    assert!(
        false_positive_groups <= 10,
        "bloom filter let {false_positive_groups} of 100 through"
    );

    // Search by time range, service, name and duration; newest first, limited by trace.
    let f = SpanFilter {
        start_min_unix_nanos: Some(t0 + 51_000_000_000),
        start_max_unix_nanos: Some(t0 + 99_000_000_000),
        service: Some("checkout".into()),
        name: Some("op-1".into()),
        min_duration_nanos: Some(1_000_000),
        max_duration_nanos: None,
        limit_traces: 5,
    };
    let res = store.search(&acme, &f).await.unwrap();
    let traces: Vec<_> = res.iter().map(|s| s.trace_id).collect();
    // Trace 99 is out: its op-1 span starts 1ms after start_max.
    let expect: Vec<_> = [97u64, 95, 93, 91, 89].iter().map(|&n| tid(n)).collect();
    let mut distinct = traces.clone();
    distinct.dedup();
    assert_eq!(distinct, expect);
    assert!(
        res.iter()
            .all(|s| s.name == "op-1" && s.duration_nanos() >= 1_000_000)
    );
    assert!(
        res.windows(2)
            .all(|w| w[0].start_unix_nanos >= w[1].start_unix_nanos)
    );
    let none = SpanFilter {
        service: Some("nope".into()),
        ..SpanFilter::default()
    };
    let b = store.read_stats().row_groups_read;
    assert!(store.search(&acme, &none).await.unwrap().is_empty());
    assert_eq!(
        store.read_stats().row_groups_read,
        b,
        "service stats pruned every group"
    );
    store.close().await.unwrap();
}

#[tokio::test]
async fn retention_deletes_old_blocks_only() {
    let dir = tempfile::tempdir().unwrap();
    let week = StoreConfig {
        retention: Duration::from_secs(7 * 86_400),
        ..cfg()
    };
    let (store, _) = open(dir.path(), week).await;
    let acme = tenant("acme");
    let now = now_nanos();
    let old = now - 10 * 86_400 * 1_000_000_000;
    store.append(&acme, trace_spans(1, 3, old)).await.unwrap();
    store.flush().await.unwrap();
    store.append(&acme, trace_spans(2, 3, now)).await.unwrap();
    store.flush().await.unwrap();
    assert_eq!(block_files(dir.path()).len(), 2);
    let tid = |n: u64| trace_spans(n, 1, 0)[0].trace_id;
    assert_eq!(store.trace(&acme, tid(1)).await.unwrap().len(), 3);

    assert_eq!(store.enforce_retention(SystemTime::now()).await.unwrap(), 1);
    assert_eq!(block_files(dir.path()).len(), 1);
    assert!(store.trace(&acme, tid(1)).await.unwrap().is_empty());
    assert_eq!(store.trace(&acme, tid(2)).await.unwrap().len(), 3);
    // Eight days later the second goes too.
    let later = SystemTime::now() + Duration::from_secs(8 * 86_400);
    assert_eq!(store.enforce_retention(later).await.unwrap(), 1);
    assert!(block_files(dir.path()).is_empty());
    store.close().await.unwrap();
}

#[tokio::test]
async fn shredding_makes_data_unreadable_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = open(dir.path(), cfg()).await;
    let acme = tenant("acme");
    let other = tenant("other");
    let t0 = now_nanos();
    store.append(&acme, trace_spans(1, 3, t0)).await.unwrap();
    store.append(&other, trace_spans(2, 3, t0)).await.unwrap();
    store.flush().await.unwrap();
    store.append(&acme, trace_spans(3, 3, t0)).await.unwrap(); // WAL only
    store.close().await.unwrap();

    // Destroy acme's wrapped keys (what an operator's "forget this customer" does), then
    // restart: WAL records are skipped as unreadable, blocks fail with KeyUnavailable.
    let keys = keyring(dir.path());
    keys.shred(&acme).unwrap();
    let (store, report) = sentrace_store::Store::open(dir.path(), cfg(), keys)
        .await
        .unwrap();
    assert_eq!(report.unreadable_records, 1);
    assert_eq!(
        report.records, 0,
        "only acme's WAL record was left and it is unreadable"
    );
    let tid = |n: u64| trace_spans(n, 1, 0)[0].trace_id;
    match store.trace(&acme, tid(1)).await {
        Err(StoreError::KeyUnavailable { tenant, key_id }) => {
            assert_eq!(tenant, acme);
            assert_eq!(key_id, 1);
        }
        other => panic!("expected KeyUnavailable, got {other:?}"),
    }
    assert!(
        store.services(&acme).await.unwrap().is_empty(),
        "catalog unreadable too"
    );
    // Other tenants are unaffected.
    assert_eq!(store.trace(&other, tid(2)).await.unwrap().len(), 3);

    // Store::shred also deletes the blocks and forgets buffered spans.
    store.append(&other, trace_spans(4, 1, t0)).await.unwrap();
    store.shred(&other).await.unwrap();
    assert!(store.trace(&other, tid(2)).await.unwrap().is_empty());
    assert!(store.trace(&other, tid(4)).await.unwrap().is_empty());
    assert!(
        block_files(dir.path())
            .iter()
            .all(|p| !p.to_string_lossy().contains("/other/"))
    );

    // The tenant starts over under a new key id; its old WAL records stay "unreadable"
    // (not "corrupt") on the next replay, and the new data is served.
    store.append(&other, trace_spans(5, 2, t0)).await.unwrap();
    store.close().await.unwrap();
    let (store, report) = open(dir.path(), cfg()).await;
    assert!(report.unreadable_records >= 1, "{report:?}");
    assert_eq!(store.trace(&other, tid(5)).await.unwrap().len(), 2);
    assert!(store.trace(&other, tid(4)).await.unwrap().is_empty());
    store.close().await.unwrap();
}

#[tokio::test]
async fn busy_when_flushing_falls_behind_instead_of_buffering() {
    let dir = tempfile::tempdir().unwrap();
    // A real local object store whose root is then replaced by a plain file: every put fails.
    let root = dir.path().join("broken-blocks");
    std::fs::create_dir_all(&root).unwrap();
    let objects = object_store::local::LocalFileSystem::new_with_prefix(&root).unwrap();
    std::fs::remove_dir(&root).unwrap();
    std::fs::write(&root, b"not a directory").unwrap();
    let c = StoreConfig {
        flush_max_spans: 10,
        ..cfg()
    };
    let (store, _) = sentrace_store::Store::open_with_object_store(
        &dir.path().join("data"),
        c,
        keyring(dir.path()),
        std::sync::Arc::new(objects),
    )
    .await
    .unwrap();
    let acme = tenant("acme");
    let t0 = now_nanos();
    let mut busy = false;
    for t in 1..=10 {
        match store.append(&acme, trace_spans(t, 5, t0)).await {
            Ok(_) => {}
            Err(StoreError::Busy { retry_after }) => {
                assert!(retry_after >= Duration::from_secs(1));
                busy = true;
                break;
            }
            Err(e) => panic!("unexpected {e}"),
        }
    }
    assert!(
        busy,
        "appends were refused once 2 x flush_max_spans were buffered"
    );
    assert!(store.buffered_spans() <= 20 + 5);
    assert!(
        store.flush().await.is_err(),
        "the broken object store fails the flush"
    );
    // Everything acknowledged is still readable from memory.
    let tid1 = trace_spans(1, 1, 0)[0].trace_id;
    assert_eq!(store.trace(&acme, tid1).await.unwrap().len(), 5);
    store.close().await.unwrap();
}

#[tokio::test]
async fn early_flush_when_buffer_is_full() {
    let dir = tempfile::tempdir().unwrap();
    let eager = StoreConfig {
        flush_max_spans: 50,
        ..cfg()
    };
    let (store, _) = open(dir.path(), eager).await;
    let acme = tenant("acme");
    let t0 = now_nanos();
    for t in 1..=20 {
        store.append(&acme, trace_spans(t, 5, t0)).await.unwrap();
    }
    let mut waited = 0;
    while block_files(dir.path()).is_empty() && waited < 100 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        waited += 1;
    }
    assert!(!block_files(dir.path()).is_empty(), "background flush ran");
    store.close().await.unwrap();
}

#[tokio::test]
async fn rotated_keys_keep_old_data_readable() {
    let dir = tempfile::tempdir().unwrap();
    let acme = tenant("acme");
    let t0 = now_nanos();
    let tid = |n: u64| trace_spans(n, 1, 0)[0].trace_id;
    {
        let (store, _) = open(dir.path(), cfg()).await;
        let r1 = store.append(&acme, trace_spans(1, 2, t0)).await.unwrap();
        store.flush().await.unwrap(); // block under DEK 1
        store.append(&acme, trace_spans(2, 2, t0)).await.unwrap(); // WAL under DEK 1
        assert_eq!(store.keys().rotate(&acme).unwrap(), 2);
        let r3 = store.append(&acme, trace_spans(3, 2, t0)).await.unwrap(); // WAL under DEK 2
        assert_eq!((r1.key_id, r3.key_id), (1, 2));
        store.close().await.unwrap();
    }
    let (store, report) = open(dir.path(), cfg()).await;
    assert_eq!(report.records, 2);
    store.flush().await.unwrap(); // block under DEK 2
    for n in 1..=3 {
        assert_eq!(
            store.trace(&acme, tid(n)).await.unwrap().len(),
            2,
            "trace {n}"
        );
    }
    assert_eq!(block_files(dir.path()).len(), 2);
    store.close().await.unwrap();
}

#[tokio::test]
async fn search_reads_only_the_blocks_it_needs() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = open(dir.path(), cfg()).await;
    let acme = tenant("acme");
    let t0 = now_nanos() - 3_600_000_000_000;
    // Five blocks, each 10 seconds newer than the last, 3 traces each.
    for blk in 0..5u64 {
        for t in 0..3u64 {
            let n = blk * 10 + t + 1;
            store
                .append(
                    &acme,
                    trace_spans(n, 2, t0 + blk * 10_000_000_000 + t * 1_000_000_000),
                )
                .await
                .unwrap();
        }
        store.flush().await.unwrap();
    }
    let tid = |n: u64| trace_spans(n, 1, 0)[0].trace_id;
    let before = store.read_stats().blocks_fetched;
    let f = SpanFilter {
        limit_traces: 2,
        ..SpanFilter::default()
    };
    let res = store.search(&acme, &f).await.unwrap();
    let mut traces: Vec<_> = res.iter().map(|s| s.trace_id).collect();
    traces.dedup();
    assert_eq!(traces, vec![tid(43), tid(42)]);
    assert_eq!(
        store.read_stats().blocks_fetched - before,
        1,
        "older blocks were skipped"
    );
    // A limit larger than one block needs the next block too, and gets exact answers.
    let f = SpanFilter {
        limit_traces: 4,
        ..SpanFilter::default()
    };
    let res = store.search(&acme, &f).await.unwrap();
    let mut traces: Vec<_> = res.iter().map(|s| s.trace_id).collect();
    traces.dedup();
    assert_eq!(traces, vec![tid(43), tid(42), tid(41), tid(33)]);
    store.close().await.unwrap();
}

#[tokio::test]
async fn tenants_never_see_each_others_spans_even_with_equal_trace_ids() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = open(dir.path(), cfg()).await;
    let (a, b) = (tenant("alpha"), tenant("beta"));
    let t0 = now_nanos();
    // Same trace ids in both tenants; beta's spans have other span ids and names.
    let beta_spans = |n: u64| {
        (0..2)
            .map(|i| {
                sentrace_store::testutil::span(n, 900 + i, "billing", "charge", t0, t0 + 10, &[])
            })
            .collect::<Vec<_>>()
    };
    for n in 1..=5 {
        store.append(&a, trace_spans(n, 3, t0)).await.unwrap();
        store.append(&b, beta_spans(n)).await.unwrap();
    }
    let tid = |n: u64| trace_spans(n, 1, 0)[0].trace_id;
    for phase in ["memory", "blocks"] {
        for n in 1..=5 {
            let sa = store.trace(&a, tid(n)).await.unwrap();
            let sb = store.trace(&b, tid(n)).await.unwrap();
            assert_eq!(ids(&sa), ids(&trace_spans(n, 3, t0)), "{phase}");
            assert_eq!(ids(&sb), ids(&beta_spans(n)), "{phase}");
        }
        let all = SpanFilter {
            limit_traces: 100,
            ..SpanFilter::default()
        };
        assert!(
            store
                .search(&a, &all)
                .await
                .unwrap()
                .iter()
                .all(|s| s.service == "checkout")
        );
        assert!(
            store
                .search(&b, &all)
                .await
                .unwrap()
                .iter()
                .all(|s| s.service == "billing")
        );
        assert_eq!(store.services(&b).await.unwrap(), vec!["billing"]);
        store.flush().await.unwrap();
    }
    store.close().await.unwrap();
}
