//! Pinned checkpoints: the verifier's memory of what it verified before, kept by the CLI
//! in a local state file, so a rollback or a rewritten history is caught.

use std::collections::BTreeMap;

use super::{Ctx, FindingKind, ObjectKind};
use crate::checkpoint::{Checkpoint, VerifiedCheckpoint};
use crate::merkle::{Hash, Tree};

/// The last verified checkpoint of one log.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pin {
    /// Tree size.
    pub size: u64,
    /// Root hash, hex.
    pub root: String,
    /// The signed checkpoint note as verified.
    pub checkpoint: String,
    /// The log's public keys (vkeys) it verified under, when the verifier records them
    /// (remote verification trusts them on later runs instead of the server's word).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

impl Pin {
    /// The root as bytes, if the hex is valid.
    pub fn root_hash(&self) -> Option<Hash> {
        hex::decode(&self.root).ok()?.try_into().ok()
    }
}

/// Pins of every log verified, by origin. Serialize it to the state file.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PinState {
    /// Pin per origin.
    pub logs: BTreeMap<String, Pin>,
}

impl PinState {
    /// The pin of `origin`.
    pub fn get(&self, origin: &str) -> Option<&Pin> {
        self.logs.get(origin)
    }

    /// Pins a verified checkpoint (only ever moves forward).
    pub fn pin(&mut self, v: &VerifiedCheckpoint) {
        let cp = &v.checkpoint;
        let key = cp.origin.to_string();
        if self.logs.get(&key).is_some_and(|p| p.size > cp.size) {
            return;
        }
        let vkeys = self.logs.get(&key).and_then(|p| p.key.clone());
        self.logs.insert(
            key,
            Pin {
                size: cp.size,
                root: hex::encode(cp.root),
                checkpoint: v.note.to_text(),
                key: vkeys,
            },
        );
    }

    /// Records the log keys (vkeys) of a pinned log; no-op if `origin` has no pin.
    pub fn pin_key(&mut self, origin: &str, vkeys: &str) {
        if let Some(p) = self.logs.get_mut(origin) {
            p.key = Some(vkeys.to_owned());
        }
    }
}

/// A checkpoint smaller than the pin means the log was rolled back.
pub(super) fn check_rollback(ctx: &mut Ctx, pin: Option<&Pin>, cp: &Checkpoint) {
    let Some(pin) = pin else { return };
    if cp.size < pin.size {
        let f = ctx.add(
            FindingKind::Truncated,
            ObjectKind::Checkpoint,
            format!(
                "the log was rolled back: the checkpoint has {} entries, a checkpoint with {} was verified before",
                cp.size, pin.size
            ),
        );
        f.index = Some(cp.size);
    } else if cp.size == pin.size && pin.root_hash() != Some(cp.root) {
        ctx.add(
            FindingKind::Inconsistent,
            ObjectKind::Checkpoint,
            format!(
                "the checkpoint of size {} has a different root than the one verified before: history was rewritten",
                cp.size
            ),
        );
    }
}

/// A larger checkpoint must extend the pinned tree: its prefix of the pinned size must have
/// the pinned root (computed from the authentic leaves).
pub(super) fn check_consistency(ctx: &mut Ctx, pin: &Pin, cp: &Checkpoint, tree: Option<&Tree>) {
    if cp.size <= pin.size {
        return;
    }
    let Some(tree) = tree else { return };
    let prefix = tree.root_at(pin.size).ok();
    if prefix.is_none() || prefix != pin.root_hash() {
        ctx.add(
            FindingKind::Inconsistent,
            ObjectKind::Log,
            format!(
                "the log of {} entries does not extend the checkpoint of {} entries verified before: history was rewritten",
                cp.size, pin.size
            ),
        );
    }
}
