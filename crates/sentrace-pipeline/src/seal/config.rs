//! The `[seal]` configuration section.

use serde::{Deserialize, Serialize};

pub use sentrace_ledger::log::CheckpointCadence;

/// The seal stage: one RFC 9162 transparency log per node and tenant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SealConfig {
    /// Seal every accepted batch into its tenant's log (a batch manifest per request,
    /// signed checkpoints). `false` stores spans unsealed (for benchmarks only).
    pub enabled: bool,
    /// This node's name: the log key's name and the first part of every log's origin
    /// `<node>/<tenant>`. Printable, no spaces, no `+`.
    pub node: String,
    /// When to publish a new checkpoint (tiles first, then the signed note).
    pub checkpoint: CheckpointCadence,
    /// How many distinct witnesses must cosign a checkpoint for it to count as witnessed
    /// (`sentrace_witness_quorum_reached_total`); at most the number of `[[seal.witness]]`.
    /// Verifiers set their own quorum (`sentrace verify --quorum`).
    pub witness_quorum: usize,
    /// Witnesses (C2SP tlog-witness) asked to cosign every published checkpoint, off the
    /// ack path; their cosignatures are appended to the served checkpoint.
    pub witness: Vec<super::witness_config::WitnessConfig>,
}

impl Default for SealConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            node: "sentrace".into(),
            checkpoint: CheckpointCadence::default(),
            witness_quorum: 0,
            witness: Vec::new(),
        }
    }
}

impl SealConfig {
    /// Checks values that parse but make no sense.
    pub fn validate(&self) -> Result<(), String> {
        sentrace_ledger::note::KeyName::new(&self.node).map_err(|e| format!("[seal] node: {e}"))?;
        if self.node.contains('/') {
            return Err("[seal] node must not contain '/'".into());
        }
        self.checkpoint
            .validate()
            .map_err(|e| format!("[seal.checkpoint] {e}"))?;
        super::witness_config::validate_witnesses(&self.witness, self.witness_quorum)
    }
}
