//! WAL behaviour on real files: visibility, replay, torn tails, corruption, moved records,
//! back-pressure.

mod common;

use std::time::Duration;

use common::*;
use sentrace_store::wal::format::segment_path;
use sentrace_store::{Store, StoreConfig, StoreError};

const T0: u64 = 1_700_000_000_000_000_000;

fn trace_id(n: u64) -> sentrace_core::TraceId {
    trace_spans(n, 1, T0)[0].trace_id
}

#[tokio::test]
async fn append_is_visible_and_survives_restart() {
    let dir = tempfile::tempdir().unwrap();
    let acme = tenant("acme");
    let other = tenant("other");
    {
        let (store, report) = open(dir.path(), cfg()).await;
        assert_eq!(report.records, 0);
        let r = store.append(&acme, trace_spans(1, 5, T0)).await.unwrap();
        assert_eq!(r.spans, 5);
        store.append(&other, trace_spans(2, 2, T0)).await.unwrap();
        let got = store.trace(&acme, trace_id(1)).await.unwrap();
        assert_eq!(got.len(), 5);
        assert_eq!(got, trace_spans(1, 5, T0));
        // Tenants are isolated.
        assert!(store.trace(&other, trace_id(1)).await.unwrap().is_empty());
        assert_eq!(
            store.services(&acme).await.unwrap(),
            vec!["checkout".to_string()]
        );
        assert_eq!(store.operations(&acme, "checkout").await.unwrap().len(), 3);
        store.close().await.unwrap();
        assert!(matches!(
            store.append(&acme, trace_spans(9, 1, T0)).await,
            Err(StoreError::Closed)
        ));
    }
    let (store, report) = open(dir.path(), cfg()).await;
    assert_eq!(report.records, 2);
    assert_eq!(report.spans, 7);
    assert_eq!(report.cut, None);
    assert_eq!(
        store.trace(&acme, trace_id(1)).await.unwrap(),
        trace_spans(1, 5, T0)
    );
    assert_eq!(store.trace(&other, trace_id(2)).await.unwrap().len(), 2);
    assert_eq!(store.operations(&acme, "checkout").await.unwrap().len(), 3);
    store.close().await.unwrap();
}

#[tokio::test]
async fn a_data_dir_is_used_by_one_store_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = open(dir.path(), cfg()).await;
    let err = Store::open(dir.path(), cfg(), keyring(dir.path()))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("in use"), "{err}");
    store.close().await.unwrap();
    let (again, _) = open(dir.path(), cfg()).await;
    again.close().await.unwrap();
}

#[tokio::test]
async fn concurrent_appends_share_commits_and_all_land() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = open(dir.path(), cfg()).await;
    let acme = tenant("acme");
    let mut tasks = Vec::new();
    for t in 1..=64u64 {
        let (s, a) = (store.clone(), acme.clone());
        tasks.push(tokio::spawn(async move {
            s.append(&a, trace_spans(t, 3, T0)).await
        }));
    }
    let mut offsets = std::collections::HashSet::new();
    for t in tasks {
        let r = t.await.unwrap().unwrap();
        assert!(
            offsets.insert((r.segment, r.offset)),
            "two records at one offset"
        );
    }
    for t in 1..=64u64 {
        assert_eq!(store.trace(&acme, trace_id(t)).await.unwrap().len(), 3);
    }
    let c = store.wal_counters();
    assert_eq!(c.records, 64);
    assert!(
        c.commits < c.records,
        "group commit: {} fsyncs for {} records",
        c.commits,
        c.records
    );
    store.close().await.unwrap();
    let (store, report) = open(dir.path(), cfg()).await;
    assert_eq!(report.records, 64);
    store.close().await.unwrap();
}

/// Writes three records of tenant acme into one segment; returns (segment, offsets, file len).
async fn three_records(dir: &std::path::Path) -> (u64, Vec<u64>, u64) {
    let (store, _) = open(dir, cfg()).await;
    let acme = tenant("acme");
    let mut offs = Vec::new();
    let mut seg = 0;
    for t in 1..=3 {
        let r = store.append(&acme, trace_spans(t, 4, T0)).await.unwrap();
        seg = r.segment;
        offs.push(r.offset);
    }
    store.close().await.unwrap();
    let len = std::fs::metadata(segment_path(&dir.join("wal"), seg))
        .unwrap()
        .len();
    (seg, offs, len)
}

#[tokio::test]
async fn torn_tail_is_cut_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let (seg, offs, len) = three_records(dir.path()).await;
    let path = segment_path(&dir.path().join("wal"), seg);
    // Crash in the middle of the third record.
    let cut_at = offs[2] + 30;
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(cut_at)
        .unwrap();
    let (store, report) = open(dir.path(), cfg()).await;
    let cut = report.cut.clone().expect("tail cut reported");
    assert_eq!((cut.segment, cut.offset, cut.bytes), (seg, offs[2], 30));
    assert_eq!(report.records, 2);
    assert_eq!(std::fs::metadata(&path).unwrap().len(), offs[2]);
    let acme = tenant("acme");
    assert_eq!(store.trace(&acme, trace_id(1)).await.unwrap().len(), 4);
    assert_eq!(store.trace(&acme, trace_id(2)).await.unwrap().len(), 4);
    assert!(store.trace(&acme, trace_id(3)).await.unwrap().is_empty());
    store.close().await.unwrap();
    assert!(len > offs[2]);
}

#[tokio::test]
async fn flipped_byte_in_last_record_is_cut() {
    let dir = tempfile::tempdir().unwrap();
    let (seg, offs, len) = three_records(dir.path()).await;
    let path = segment_path(&dir.path().join("wal"), seg);
    let mut bytes = std::fs::read(&path).unwrap();
    let i = (len - 5) as usize; // inside the tag of the last record
    bytes[i] ^= 0x40;
    std::fs::write(&path, &bytes).unwrap();
    let (store, report) = open(dir.path(), cfg()).await;
    let cut = report.cut.expect("cut reported");
    assert_eq!(
        (cut.segment, cut.offset, cut.bytes),
        (seg, offs[2], len - offs[2])
    );
    assert_eq!(report.records, 2);
    let acme = tenant("acme");
    assert_eq!(store.trace(&acme, trace_id(2)).await.unwrap().len(), 4);
    assert!(store.trace(&acme, trace_id(3)).await.unwrap().is_empty());
    store.close().await.unwrap();
}

#[tokio::test]
async fn zero_filled_tail_is_cut() {
    let dir = tempfile::tempdir().unwrap();
    let (seg, _, len) = three_records(dir.path()).await;
    let path = segment_path(&dir.path().join("wal"), seg);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.extend_from_slice(&[0u8; 100]);
    std::fs::write(&path, &bytes).unwrap();
    let (store, report) = open(dir.path(), cfg()).await;
    let cut = report.cut.expect("cut reported");
    assert_eq!((cut.offset, cut.bytes), (len, 100));
    assert_eq!(report.records, 3);
    store.close().await.unwrap();
}

#[tokio::test]
async fn corruption_in_the_middle_is_reported_not_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let (seg, offs, _) = three_records(dir.path()).await;
    let path = segment_path(&dir.path().join("wal"), seg);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[(offs[1] + 40) as usize] ^= 1; // ciphertext of record 2; record 3 follows
    std::fs::write(&path, &bytes).unwrap();

    // Default policy: refuse to open, naming the file and offset.
    let err = Store::open(dir.path(), cfg(), keyring(dir.path()))
        .await
        .unwrap_err();
    match err {
        StoreError::Corrupt {
            path: p, offset, ..
        } => {
            assert_eq!(p, path);
            assert_eq!(offset, offs[1]);
        }
        other => panic!("expected Corrupt, got {other}"),
    }
    assert_eq!(std::fs::read(&path).unwrap(), bytes, "nothing was changed");

    // Quarantine policy: keep what precedes the damage, move the segment aside, report it.
    let q = StoreConfig {
        quarantine_corrupt_wal: true,
        ..cfg()
    };
    let (store, report) = open(dir.path(), q).await;
    assert_eq!(report.records, 1);
    assert_eq!(report.corrupt.len(), 1);
    assert_eq!(report.corrupt[0].offset, offs[1]);
    assert!(report.corrupt[0].moved_to.exists());
    assert!(!path.exists());
    let acme = tenant("acme");
    assert_eq!(store.trace(&acme, trace_id(1)).await.unwrap().len(), 4);
    assert!(store.trace(&acme, trace_id(3)).await.unwrap().is_empty());
    store.close().await.unwrap();
}

#[tokio::test]
async fn moved_records_fail_authentication() {
    // Swap records 1 and 2 (a record at another offset).
    let dir = tempfile::tempdir().unwrap();
    let (seg, offs, len) = three_records(dir.path()).await;
    let path = segment_path(&dir.path().join("wal"), seg);
    let b = std::fs::read(&path).unwrap();
    let (r1, r2) = (
        &b[offs[0] as usize..offs[1] as usize],
        &b[offs[1] as usize..offs[2] as usize],
    );
    let mut swapped = b[..offs[0] as usize].to_vec();
    swapped.extend_from_slice(r2);
    swapped.extend_from_slice(r1);
    swapped.extend_from_slice(&b[offs[2] as usize..len as usize]);
    std::fs::write(&path, &swapped).unwrap();
    let err = Store::open(dir.path(), cfg(), keyring(dir.path()))
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Corrupt { offset, .. } if offset == offs[0]),
        "{err}"
    );

    // A whole segment renamed to another segment id (header rewritten to match).
    let dir = tempfile::tempdir().unwrap();
    let (seg, _, _) = three_records(dir.path()).await;
    let wal = dir.path().join("wal");
    let mut b = std::fs::read(segment_path(&wal, seg)).unwrap();
    std::fs::remove_file(segment_path(&wal, seg)).unwrap();
    let moved = seg + 7;
    b[8..16].copy_from_slice(&moved.to_be_bytes());
    // Add a later valid-looking segment so the moved one is not the last.
    std::fs::write(segment_path(&wal, moved), &b).unwrap();
    std::fs::write(
        segment_path(&wal, moved + 1),
        sentrace_store::wal::format::header(moved + 1),
    )
    .unwrap();
    let err = Store::open(dir.path(), cfg(), keyring(dir.path()))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");

    // A record relabelled to another tenant (same length name, which has keys too).
    let dir = tempfile::tempdir().unwrap();
    {
        let (store, _) = open(dir.path(), cfg()).await;
        store
            .append(&tenant("evil"), trace_spans(50, 1, T0))
            .await
            .unwrap();
        store.close().await.unwrap();
    }
    let (seg, offs, _) = three_records(dir.path()).await;
    let path = segment_path(&dir.path().join("wal"), seg);
    let mut b = std::fs::read(&path).unwrap();
    let t = (offs[0] + 8 + 2) as usize; // tenant bytes of record 1
    assert_eq!(&b[t..t + 4], b"acme");
    b[t..t + 4].copy_from_slice(b"evil");
    std::fs::write(&path, &b).unwrap();
    let err = Store::open(dir.path(), cfg(), keyring(dir.path()))
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Corrupt { offset, .. } if offset == offs[0]),
        "{err}"
    );
}

#[tokio::test]
async fn full_queue_answers_busy_never_buffers() {
    let dir = tempfile::tempdir().unwrap();
    let small = StoreConfig {
        max_queue_bytes: 64 * 1024,
        ..cfg()
    };
    let (store, _) = open(dir.path(), small).await;
    let acme = tenant("acme");
    // Requests of ~40 KiB: at most one fits in the queue at a time.
    let big = |t: u64| {
        (0..40)
            .map(|i| {
                sentrace_store::testutil::span(
                    t,
                    i + 1,
                    "svc",
                    "op",
                    T0,
                    T0 + 1,
                    &[("blob", &"x".repeat(1000))],
                )
            })
            .collect::<Vec<_>>()
    };
    let mut busy = None;
    for round in 0..50 {
        let futs = (0..16).map(|i| store.append(&acme, big(round * 100 + i + 1)));
        for r in futures::future::join_all(futs).await {
            match r {
                Ok(_) => {}
                Err(StoreError::Busy { retry_after }) => busy = Some(retry_after),
                Err(e) => panic!("unexpected error {e}"),
            }
        }
        if busy.is_some() {
            break;
        }
    }
    let retry_after = busy.expect("a full queue answered Busy");
    assert!(retry_after >= Duration::from_secs(1));
    assert!(store.queued_bytes() <= 64 * 1024);
    // A request larger than the whole queue is refused outright.
    let huge = (0..100)
        .map(|i| {
            sentrace_store::testutil::span(
                9,
                i + 1,
                "svc",
                "op",
                T0,
                T0 + 1,
                &[("blob", &"y".repeat(1000))],
            )
        })
        .collect();
    assert!(matches!(
        store.append(&acme, huge).await,
        Err(StoreError::RequestTooLarge { .. })
    ));
    store.close().await.unwrap();
}

#[tokio::test]
async fn segments_roll_at_the_configured_size() {
    let dir = tempfile::tempdir().unwrap();
    let small = StoreConfig {
        wal_segment_bytes: 4096,
        ..cfg()
    };
    let (store, _) = open(dir.path(), small.clone()).await;
    let acme = tenant("acme");
    let mut segs = std::collections::BTreeSet::new();
    for t in 1..=20 {
        segs.insert(
            store
                .append(&acme, trace_spans(t, 5, T0))
                .await
                .unwrap()
                .segment,
        );
    }
    assert!(segs.len() > 2, "rolled into {} segments", segs.len());
    store.close().await.unwrap();
    let (store, report) = open(dir.path(), small).await;
    assert_eq!(report.records, 20);
    assert_eq!(store.trace(&acme, trace_id(17)).await.unwrap().len(), 5);
    store.close().await.unwrap();
}
