//! What the verifiers read: sealed spans by log index from a live store (memory and
//! blocks, with damaged blocks reported), and the offline scan recognizing two swapped
//! blocks as authentic content under the wrong names.

mod common;

use std::time::{SystemTime, UNIX_EPOCH};

use common::*;
use sentrace_store::{SpanEntry, SpanSeal, WAL_LOCATION, scan_data_dir};

fn now_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

/// Batch `index`: 3 spans of its own trace, sealed at positions 0..3.
fn batch(index: u64, t0: u64) -> Vec<SpanEntry> {
    let mut spans = trace_spans(index + 1, 3, t0 + index * 10_000_000);
    for (p, s) in spans.iter_mut().enumerate() {
        s.seal = Some(SpanSeal {
            index,
            position: p as u32,
            manifest: None,
        });
    }
    spans
}

fn block_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir.join("blocks").join("acme"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn sealed_spans_by_index_from_memory_and_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = open(dir.path(), cfg()).await;
    let acme = tenant("acme");
    let t0 = now_nanos();
    for i in 0..4 {
        store.append(&acme, batch(i, t0)).await.unwrap();
    }
    store.flush().await.unwrap();
    for i in 4..6 {
        store.append(&acme, batch(i, t0)).await.unwrap();
    }
    let read = store.sealed_spans(&acme, 2..5).await.unwrap();
    assert!(read.damage.is_empty() && read.erased.is_empty() && !read.shredded);
    let mut got: Vec<(u64, u32, bool)> = read
        .spans
        .iter()
        .map(|(loc, s)| {
            let seal = s.seal.as_ref().unwrap();
            (seal.index, seal.position, loc == WAL_LOCATION)
        })
        .collect();
    got.sort();
    let want: Vec<(u64, u32, bool)> = (2..5)
        .flat_map(|i| (0..3).map(move |p| (i, p, i >= 4)))
        .collect();
    assert_eq!(got, want, "batches 2-3 from the block, 4 from memory");
    // The bytes are the canonical spans as appended.
    let b2 = batch(2, t0);
    for (_, s) in read
        .spans
        .iter()
        .filter(|(_, s)| s.seal.as_ref().unwrap().index == 2)
    {
        let p = s.seal.as_ref().unwrap().position as usize;
        assert_eq!(s.canonical, b2[p].canonical);
    }
    // Another tenant sees nothing.
    let other = store.sealed_spans(&tenant("other"), 0..10).await.unwrap();
    assert!(other.spans.is_empty());
    store.close().await.unwrap();

    // A block altered on disk: reported as damage (by its integrity tag), not read.
    let target = block_files(dir.path())[0].clone();
    let mut bytes = std::fs::read(&target).unwrap();
    bytes[4] ^= 1; // inside the first page, which a reader of a few columns may skip
    std::fs::write(&target, bytes).unwrap();
    let (store, _) = open(dir.path(), cfg()).await;
    let read = store.sealed_spans(&acme, 0..6).await.unwrap();
    assert_eq!(read.damage.len(), 1, "{:?}", read.damage);
    assert!(read.damage[0].0.ends_with(".parquet"));
    assert!(
        read.spans
            .iter()
            .all(|(l, s)| l == WAL_LOCATION && s.seal.as_ref().unwrap().index >= 4)
    );
    store.close().await.unwrap();
}

#[tokio::test]
async fn swapped_blocks_are_authentic_content_under_each_others_names() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = open(dir.path(), cfg()).await;
    let acme = tenant("acme");
    let t0 = now_nanos();
    for round in 0..2 {
        for i in round * 2..round * 2 + 2 {
            store.append(&acme, batch(i, t0)).await.unwrap();
        }
        store.flush().await.unwrap();
    }
    store.close().await.unwrap();
    let bs = block_files(dir.path());
    assert_eq!(bs.len(), 2);
    let (a, b) = (
        std::fs::read(&bs[0]).unwrap(),
        std::fs::read(&bs[1]).unwrap(),
    );
    std::fs::write(&bs[0], &b).unwrap();
    std::fs::write(&bs[1], &a).unwrap();

    let scan = scan_data_dir(dir.path(), keyring(dir.path()))
        .await
        .unwrap();
    assert!(scan.damage.is_empty(), "{:?}", scan.damage);
    let names: Vec<String> = bs
        .iter()
        .map(|p| format!("blocks/acme/{}", p.file_name().unwrap().to_str().unwrap()))
        .collect();
    let mut pairs: Vec<(String, String)> = scan
        .misplaced
        .iter()
        .map(|m| (m.location.clone(), m.written_as.clone()))
        .collect();
    pairs.sort();
    assert_eq!(
        pairs,
        vec![
            (names[0].clone(), names[1].clone()),
            (names[1].clone(), names[0].clone())
        ]
    );
    // Every span is still there, found where it lies.
    assert_eq!(scan.spans.len(), 12);

    // A real byte change in one of them stays damage.
    let mut c = b.clone();
    let mid = c.len() / 2;
    c[mid] ^= 1;
    std::fs::write(&bs[0], &c).unwrap();
    let scan = scan_data_dir(dir.path(), keyring(dir.path()))
        .await
        .unwrap();
    assert_eq!(scan.damage.len(), 1, "{:?}", scan.damage);
    assert_eq!(scan.damage[0].location, names[0]);
    assert_eq!(scan.misplaced.len(), 1);
    assert_eq!(scan.misplaced[0].location, names[1]);
}
