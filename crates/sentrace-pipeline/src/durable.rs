//! The durability gate of the ingest pipeline: stages queue their durable writes (vault
//! tokens, findings, response audit lines, quarantined spans) to writer threads with group
//! commit and never wait on `fsync`; the pipeline takes a [`DurableMark`] before the stages
//! run and awaits [`DurableWrites::wait_since`] after them, before it stores the batch and
//! acknowledges the request.
//!
//! So, for every acknowledged export: its vault tokens are reversible after a crash (no
//! stored span carries a token whose value was lost), its findings are in the journal, the
//! response actions that tagged it or set its spans aside are in the audit log, and the
//! spans set aside are in the quarantine journal. A failed vault, audit or quarantine write
//! fails the batch (nothing stored, the client retries); a failed findings write is only
//! logged and counted, as it was before the writer threads.

use std::sync::Arc;

use sentrace_core::StageError;
use sentrace_store::{Mark, Vault};

use crate::detect::{DetectMark, Runtime};

/// The writers a batch's stages may queue to.
pub struct DurableWrites {
    vault: Arc<Vault>,
    detect: Option<Arc<Runtime>>,
}

/// Where the writers were when a batch started.
#[derive(Debug, Clone, Copy)]
pub struct DurableMark {
    vault: Mark,
    detect: Option<DetectMark>,
}

impl DurableWrites {
    /// The vault's writer, and detection's when detection is on.
    pub fn new(vault: Arc<Vault>, detect: Option<Arc<Runtime>>) -> Self {
        Self { vault, detect }
    }

    /// Take before the stages run.
    pub fn mark(&self) -> DurableMark {
        DurableMark {
            vault: self.vault.mark(),
            detect: self.detect.as_ref().map(|d| d.mark()),
        }
    }

    /// Awaits every write queued so far (see the module docs). Never blocks a worker.
    pub async fn wait_since(&self, mark: DurableMark) -> Result<(), StageError> {
        let internal = |e: sentrace_store::WaitError| StageError::Internal(e.to_string());
        self.vault.wait_since(mark.vault).await.map_err(internal)?;
        if let (Some(d), Some(m)) = (&self.detect, mark.detect) {
            d.wait_since(m).await.map_err(internal)?;
        }
        Ok(())
    }

    /// The vault writer's appends, fsyncs and failures, for `/metrics`.
    pub fn encode_metrics(&self, e: &mut crate::metrics::export::Encoder<'_>) -> std::fmt::Result {
        use std::sync::atomic::Ordering::Relaxed;
        let s = self.vault.stats();
        crate::metrics::export::counters(
            e,
            "sentrace_vault_writes",
            "Vault writer: values written, fsyncs (group commits share one), failures.",
            [
                ("values", &s.jobs),
                ("fsyncs", &s.fsyncs),
                ("failures", &s.failures),
            ]
            .map(|(what, v)| ([("event", what)], v.load(Relaxed))),
        )
    }
}
