//! `sentrace proof TRACE_ID`: an offline-verifiable bundle (spans, their inclusion in their
//! batch's span tree, each manifest's inclusion in the log, the signed checkpoint) built
//! from a data directory; `sentrace verify-proof` checks it with the public keys alone.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, bail};
use object_store::ObjectStore;
use object_store::local::LocalFileSystem;
use sentrace_core::{TenantId, TraceId};
use sentrace_ledger::bundle::{BundleEntry, ProofBundle};
use sentrace_ledger::checkpoint::{CheckpointPolicy, Origin, open_checkpoint};
use sentrace_ledger::tiles::{TILE_WIDTH, TileHashes, bundle_path, decode_bundle};
use sentrace_store::{KeyRing, MasterKey, scan_store};

use super::audit::load_log;

/// Builds the proof bundle of every stored span of `trace_id` (tenant `tenant`, node
/// `node`), against the log's latest checkpoint. Fails if the trace has no sealed span
/// covered by the checkpoint.
pub async fn build_proof(
    data_dir: &Path,
    master: &MasterKey,
    node: &str,
    tenant: &TenantId,
    trace_id: TraceId,
) -> anyhow::Result<String> {
    let blocks = data_dir.join("blocks");
    let objects = LocalFileSystem::new_with_prefix(&blocks)
        .with_context(|| format!("opening {}", blocks.display()))?;
    build_proof_from(data_dir, &objects, master, node, tenant, trace_id).await
}

/// Like [`build_proof`], with the blocks and log objects in `objects` (the bucket of
/// `[store] url`).
pub async fn build_proof_from(
    data_dir: &Path,
    objects: &dyn ObjectStore,
    master: &MasterKey,
    node: &str,
    tenant: &TenantId,
    trace_id: TraceId,
) -> anyhow::Result<String> {
    let key = super::keys::verifier(data_dir, master)?;
    let keys = Arc::new(KeyRing::open(&data_dir.join("keys"), master)?);
    let log = load_log(objects, tenant).await?;
    let note = log.get("checkpoint").context("the log has no checkpoint")?;
    let mut policy = CheckpointPolicy::new(key);
    policy.origin =
        Some(Origin::for_tenant(node, tenant).map_err(|e| anyhow::anyhow!("origin: {e}"))?);
    let v = open_checkpoint(note, &policy)
        .map_err(|e| anyhow::anyhow!("the log's checkpoint does not verify: {e}"))?;
    let size = v.checkpoint.size;
    let scan = scan_store(data_dir, keys, Some(objects)).await?;
    // index -> position -> canonical, for every batch that holds a span of the trace.
    let wanted: BTreeMap<u64, Vec<u64>> = {
        let mut m: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
        for s in scan.spans.iter().filter(|s| &s.tenant == tenant) {
            if let Some(seal) = &s.entry.seal
                && s.entry.trace_id == trace_id
                && seal.index < size
            {
                m.entry(seal.index)
                    .or_default()
                    .push(u64::from(seal.position));
            }
        }
        m
    };
    if wanted.is_empty() {
        bail!("no sealed span of trace {trace_id} is covered by the checkpoint (size {size})");
    }
    let mut batches: BTreeMap<u64, BTreeMap<u32, Vec<u8>>> = BTreeMap::new();
    for s in scan.spans.iter().filter(|s| &s.tenant == tenant) {
        if let Some(seal) = &s.entry.seal
            && wanted.contains_key(&seal.index)
        {
            batches
                .entry(seal.index)
                .or_default()
                .insert(seal.position, s.entry.canonical.to_vec());
        }
    }
    let mut hashes = TileHashes::new(&log, size);
    let mut entries = Vec::new();
    for (index, mut positions) in wanted {
        positions.sort_unstable();
        positions.dedup();
        let n = index / TILE_WIDTH;
        let width = (size - n * TILE_WIDTH).min(TILE_WIDTH);
        let path = bundle_path(n, width);
        let bytes = log
            .get(&path)
            .with_context(|| format!("entry bundle {path} is missing"))?;
        let bundle = decode_bundle(&path, bytes, width)?;
        let manifest = bundle
            .get((index % TILE_WIDTH) as usize)
            .with_context(|| format!("entry {index} is not in {path}"))?
            .to_vec();
        let proof = hashes
            .inclusion_proof(index)
            .map_err(|e| anyhow::anyhow!("inclusion proof of entry {index}: {e}"))?;
        let spans: Vec<Vec<u8>> = batches
            .remove(&index)
            .unwrap_or_default()
            .into_values()
            .collect();
        let refs: Vec<&[u8]> = spans.iter().map(Vec::as_slice).collect();
        entries.push(
            BundleEntry::build(index, manifest, proof, &refs, &positions)
                .map_err(|e| anyhow::anyhow!("batch {index}: {e}"))?,
        );
    }
    let text = String::from_utf8(note.clone()).context("checkpoint is not UTF-8")?;
    Ok(ProofBundle {
        entries,
        checkpoint: text,
    }
    .encode())
}
