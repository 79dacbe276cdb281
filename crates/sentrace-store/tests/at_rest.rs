//! At rest: no plaintext span name, attribute value or service name anywhere under the
//! data directory, neither while spans are only in the WAL nor after flushing to blocks.

mod common;

use std::path::Path;

use common::*;
use sentrace_store::testutil::span;

const NAME: &str = "op-plaintext-name-5f1c9e";
const VALUE: &str = "attr-plaintext-value-93ab2d";
const SERVICE: &str = "svc-plaintext-77e0b1";

fn files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            files(&p, out);
        } else {
            out.push(p);
        }
    }
}

fn assert_no_plaintext(dir: &Path, stage: &str) -> usize {
    let mut all = Vec::new();
    files(dir, &mut all);
    let mut scanned = 0;
    for f in &all {
        let bytes = std::fs::read(f).unwrap();
        scanned += bytes.len();
        for needle in [NAME, VALUE, SERVICE] {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
                "{stage}: {needle:?} found in plaintext in {}",
                f.display()
            );
        }
    }
    scanned
}

#[tokio::test]
async fn no_plaintext_anywhere_in_the_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = open(dir.path(), cfg()).await;
    let acme = tenant("acme");
    let spans: Vec<_> = (1..=50u64)
        .map(|i| {
            span(
                i,
                i,
                SERVICE,
                NAME,
                1_700_000_000_000_000_000 + i,
                1_700_000_000_000_000_100 + i,
                &[("user.note", VALUE)],
            )
        })
        .collect();
    // Sanity: the needles are in what we hand over.
    assert!(
        spans[0]
            .canonical
            .windows(VALUE.len())
            .any(|w| w == VALUE.as_bytes())
    );
    store.append(&acme, spans).await.unwrap();
    let wal_bytes = assert_no_plaintext(dir.path(), "after append");
    assert!(
        wal_bytes > 50 * 100,
        "WAL holds the data ({wal_bytes} bytes)"
    );

    store.flush().await.unwrap();
    let flushed = assert_no_plaintext(dir.path(), "after flush");
    assert!(flushed > 1000);
    // And the data is still all there.
    let tid = spans_tid(7);
    assert_eq!(store.trace(&acme, tid).await.unwrap()[0].name, NAME);
    store.close().await.unwrap();
    assert_no_plaintext(dir.path(), "after close");
}

fn spans_tid(n: u64) -> sentrace_core::TraceId {
    span(n, 1, "s", "n", 1, 2, &[]).trace_id
}
