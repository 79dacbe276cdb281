//! Reads that do not grow with the number of blocks: the block index skips blocks that
//! cannot hold a trace or a service, row groups are fetched by range, decrypted footers
//! are cached within a bound, and a search stops at its limit.

mod common;

use std::time::{SystemTime, UNIX_EPOCH};

use common::*;
use sentrace_store::testutil::span;
use sentrace_store::{SpanFilter, StoreConfig};

/// The test configuration with row groups of 16 rows, so a few traces fill several.
fn small_row_groups() -> StoreConfig {
    StoreConfig {
        block_row_group_rows: 16,
        ..cfg()
    }
}

fn now_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

/// Trace by id opens only the blocks that may hold the id, and a small footer cache still
/// serves repeated reads.
#[tokio::test]
async fn trace_by_id_reads_only_blocks_that_may_hold_it() {
    let dir = tempfile::tempdir().unwrap();
    let small_cache = StoreConfig {
        block_footer_cache: 3,
        block_row_group_rows: 16,
        ..cfg()
    };
    let (store, _) = open(dir.path(), small_cache).await;
    let acme = tenant("acme");
    let t0 = now_nanos() - 600_000_000_000;
    // 20 blocks of 10 traces each, all in the same time range.
    for blk in 0..20u64 {
        for t in 0..10u64 {
            store
                .append(&acme, trace_spans(blk * 100 + t + 1, 4, t0 + t * 1_000_000))
                .await
                .unwrap();
        }
        store.flush().await.unwrap();
    }
    let tid = |n: u64| trace_spans(n, 1, 0)[0].trace_id;
    // The first read learns every block's index (one footer each).
    let got = store.trace(&acme, tid(1005)).await.unwrap();
    assert_eq!(got, trace_spans(1005, 4, t0 + 4_000_000));
    let s0 = store.read_stats();
    assert!(s0.footers_read >= 20, "{s0:?}");
    // Later reads fetch row data from the one block that holds the trace (bloom filters may
    // let a rare extra through), and footers only where the bounded cache misses.
    for n in [1, 505, 1909, 1207, 3] {
        let before = store.read_stats();
        let got = store.trace(&acme, tid(n)).await.unwrap();
        assert_eq!(got, trace_spans(n, 4, t0 + (n % 100 - 1) * 1_000_000));
        let after = store.read_stats();
        assert!(
            after.blocks_fetched - before.blocks_fetched <= 2,
            "{before:?} -> {after:?}"
        );
        assert!(after.footers_read - before.footers_read <= 2);
        assert!(after.row_groups_read - before.row_groups_read <= 3);
    }
    // The same trace again: its footer is cached.
    let before = store.read_stats();
    store.trace(&acme, tid(3)).await.unwrap();
    assert_eq!(store.read_stats().footers_read, before.footers_read);
    // A trace no block holds reads (almost) nothing.
    let before = store.read_stats();
    assert!(store.trace(&acme, tid(77_777)).await.unwrap().is_empty());
    assert!(store.read_stats().row_groups_read - before.row_groups_read <= 1);
    store.close().await.unwrap();
}

/// Spans with equal start times in every block (a load generator replaying its requests):
/// a search stops once it has its limit instead of reading every block.
#[tokio::test]
async fn search_with_equal_start_times_stops_at_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = open(dir.path(), cfg()).await;
    let acme = tenant("acme");
    let t0 = now_nanos() - 600_000_000_000;
    for blk in 0..8u64 {
        for t in 0..5u64 {
            let n = blk * 10 + t + 1;
            let mut spans = trace_spans(n, 3, t0);
            // A second service in the same traces, only in even blocks.
            if blk % 2 == 0 {
                spans.push(span(n, n * 1000 + 99, "ledger", "post", t0, t0 + 5, &[]));
            }
            store.append(&acme, spans).await.unwrap();
        }
        store.flush().await.unwrap();
    }
    let before = store.read_stats();
    let f = SpanFilter {
        limit_traces: 3,
        ..SpanFilter::default()
    };
    let res = store.search(&acme, &f).await.unwrap();
    let mut traces: Vec<_> = res.iter().map(|s| s.trace_id).collect();
    traces.sort();
    traces.dedup();
    assert_eq!(traces.len(), 3);
    assert_eq!(
        store.read_stats().blocks_fetched - before.blocks_fetched,
        1,
        "one block holds the answer"
    );
    // A service that only some blocks hold: blocks without it are not read.
    let f = SpanFilter {
        service: Some("ledger".into()),
        limit_traces: 40,
        ..SpanFilter::default()
    };
    let before = store.read_stats();
    let res = store.search(&acme, &f).await.unwrap();
    assert!(res.iter().all(|s| s.service == "ledger"));
    let mut traces: Vec<_> = res.iter().map(|s| s.trace_id).collect();
    traces.sort();
    traces.dedup();
    assert_eq!(traces.len(), 20, "five traces in each of four blocks");
    assert_eq!(store.read_stats().blocks_fetched - before.blocks_fetched, 4);
    // A service no block holds reads nothing.
    let before = store.read_stats();
    let f = SpanFilter {
        service: Some("nope".into()),
        ..SpanFilter::default()
    };
    assert!(store.search(&acme, &f).await.unwrap().is_empty());
    assert_eq!(store.read_stats().blocks_fetched, before.blocks_fetched);
    store.close().await.unwrap();
}

/// Several traces read at once come back in the order asked, each exactly as one read of
/// it answers, from blocks and from memory alike, with an empty answer for an unknown id.
#[tokio::test]
async fn traces_answer_in_the_order_asked() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = open(dir.path(), small_row_groups()).await;
    let acme = tenant("acme");
    let t0 = now_nanos() - 600_000_000_000;
    for blk in 0..6u64 {
        for t in 0..5u64 {
            store
                .append(&acme, trace_spans(blk * 10 + t + 1, 3, t0 + t))
                .await
                .unwrap();
        }
        store.flush().await.unwrap();
    }
    // Two traces only in memory.
    for n in [901, 902] {
        store.append(&acme, trace_spans(n, 2, t0)).await.unwrap();
    }
    let tid = |n: u64| trace_spans(n, 1, 0)[0].trace_id;
    let asked = [53, 902, 1, 77_777, 24, 901, 12, 45, 33];
    let ids: Vec<_> = asked.iter().map(|n| tid(*n)).collect();
    let answers = store.traces(&acme, &ids).await;
    assert_eq!(answers.len(), asked.len());
    for (n, answer) in asked.iter().zip(answers) {
        let answer = answer.unwrap();
        assert_eq!(
            answer,
            store.trace(&acme, tid(*n)).await.unwrap(),
            "trace {n}"
        );
        match n {
            77_777 => assert!(answer.is_empty()),
            901 | 902 => assert_eq!(answer.len(), 2, "trace {n}"),
            _ => assert_eq!(answer.len(), 3, "trace {n}"),
        }
        assert!(answer.iter().all(|s| s.trace_id == tid(*n)), "trace {n}");
    }
    store.close().await.unwrap();
}

/// A search reads a block's row groups a few at a time, newest first, and still stops
/// near its limit: the answer is the newest traces, and only a handful of row groups
/// beyond those holding them are read.
#[tokio::test]
async fn search_reads_row_groups_in_waves_and_stops_near_its_limit() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = open(dir.path(), small_row_groups()).await;
    let acme = tenant("acme");
    let t0 = now_nanos() - 600_000_000_000;
    // One block of 64 traces of 4 spans (16 row groups), trace n starting n ms after t0.
    for n in 1..=64u64 {
        store
            .append(&acme, trace_spans(n, 4, t0 + n * 1_000_000))
            .await
            .unwrap();
    }
    store.flush().await.unwrap();
    let tid = |n: u64| trace_spans(n, 1, 0)[0].trace_id;
    let before = store.read_stats();
    let f = SpanFilter {
        limit_traces: 3,
        ..SpanFilter::default()
    };
    let res = store.search(&acme, &f).await.unwrap();
    let mut got: Vec<_> = res.iter().map(|s| s.trace_id).collect();
    got.sort();
    got.dedup();
    let mut want = vec![tid(64), tid(63), tid(62)];
    want.sort();
    assert_eq!(got, want);
    let read = store.read_stats().row_groups_read - before.row_groups_read;
    // The three traces lie in at most three row groups; one wave may add three more.
    assert!((1..=6).contains(&read), "{read} of 16 row groups read");
    store.close().await.unwrap();
}
