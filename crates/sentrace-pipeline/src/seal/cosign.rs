//! What the witness clients (the server's `witness::client`) need from the logs: the latest
//! checkpoints, consistency proofs read from the published tiles, and a place for the
//! cosignatures. The cosigned checkpoint (the log's note with the witnesses' signature lines
//! appended, C2SP `tlog-witness`/`tlog-cosignature`) replaces the `checkpoint` object, so it
//! is what `GET /.well-known/sentrace/log/<tenant>/checkpoint` serves and what `sentrace
//! verify` reads. It is written under the publish lock and only while the cosigned note is
//! still the latest checkpoint: cosignatures never roll the published checkpoint back.

use std::sync::Arc;

use anyhow::Context;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use sentrace_core::TenantId;
use sentrace_ledger::merkle::Hash;
use sentrace_ledger::note::{Note, NoteSignature};
use sentrace_ledger::tiles::{CHECKPOINT_PATH, LogReader, TileHashes};

use super::{Seal, object_path, read_object};

/// Reads log objects synchronously for [`TileHashes`], from a blocking thread.
struct BlockingReader {
    handle: tokio::runtime::Handle,
    objects: Arc<dyn ObjectStore>,
    tenant: TenantId,
}

impl LogReader for BlockingReader {
    fn read(&self, path: &str) -> Result<Option<Vec<u8>>, String> {
        self.handle
            .block_on(read_object(self.objects.as_ref(), &self.tenant, path))
            .map_err(|e| format!("{e:#}"))
    }
}

impl Seal {
    /// A receiver that changes after every publication.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.publications.subscribe()
    }

    /// The latest signed checkpoint note of every log that has one.
    pub fn checkpoints(&self) -> Vec<(TenantId, String)> {
        let Ok(logs) = self.logs.read() else {
            return Vec::new();
        };
        let mut out: Vec<_> = logs
            .iter()
            .filter_map(|(t, l)| {
                let g = l.lock().ok()?;
                Some((t.clone(), g.sealer.latest_checkpoint()?.to_owned()))
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// The RFC 9162 consistency proof from `old` (1..=size) to `size`, from the published
    /// hash tiles of the tree of `size` leaves.
    pub async fn consistency_proof(
        &self,
        tenant: &TenantId,
        old: u64,
        size: u64,
    ) -> anyhow::Result<Vec<Hash>> {
        let reader = BlockingReader {
            handle: tokio::runtime::Handle::current(),
            objects: self.objects.clone(),
            tenant: tenant.clone(),
        };
        let t = tenant.clone();
        tokio::task::spawn_blocking(move || {
            TileHashes::new(&reader, size)
                .consistency_proof(old)
                .map_err(|e| {
                    anyhow::anyhow!("consistency proof {old} -> {size} of tenant {t}'s log: {e}")
                })
        })
        .await
        .context("proof task")?
    }

    /// Appends `sigs` (cosignatures already checked against the witness's keys) to the
    /// tenant's latest checkpoint if its text is still `text`, replacing older lines of the
    /// same keys, and writes it to the `checkpoint` object. Returns the cosigned note, or
    /// `None` if a newer checkpoint was published meanwhile.
    pub async fn add_cosignatures(
        &self,
        tenant: &TenantId,
        text: &str,
        sigs: &[NoteSignature],
    ) -> anyhow::Result<Option<Note>> {
        let _one = self.publish_lock.lock().await;
        let Some(log) = self
            .logs
            .read()
            .map_err(|_| anyhow::anyhow!("seal lock poisoned"))?
            .get(tenant)
            .cloned()
        else {
            return Ok(None);
        };
        let merged = {
            let g = log
                .lock()
                .map_err(|_| anyhow::anyhow!("seal log lock poisoned"))?;
            let Some(latest) = g.sealer.latest_checkpoint() else {
                return Ok(None);
            };
            let latest = Note::parse(latest.as_bytes()).context("the latest checkpoint")?;
            if latest.text() != text {
                return Ok(None);
            }
            let mut note = match g.cosigned.as_deref().map(|c| Note::parse(c.as_bytes())) {
                Some(Ok(c)) if c.text() == text => c,
                _ => latest,
            };
            for s in sigs {
                note.signatures
                    .retain(|x| !(x.name == s.name && x.key_id == s.key_id));
                note.signatures.push(s.clone());
            }
            note
        };
        let bytes = merged.to_text();
        let p = object_path(tenant, CHECKPOINT_PATH);
        self.objects
            .put(&p, PutPayload::from(bytes.clone().into_bytes()))
            .await
            .with_context(|| format!("writing {p}"))?;
        if let Ok(mut g) = log.lock() {
            g.cosigned = Some(bytes);
        }
        Ok(Some(merged))
    }
}
