//! Witness configuration: the witness's own file (`sentrace witness --config`) and the server's
//! `[[seal.witness]]` entries.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use sentrace_ledger::checkpoint::{LogVerifier, Origin, Require};
use sentrace_ledger::keys::{SigKind, VerifierKey};
use sentrace_ledger::witness::KnownLog;

/// The most witnesses a server submits to: each adds up to two signature lines, and a note
/// holds at most 64 (two are the log's own).
pub const MAX_WITNESSES: usize = 30;

/// The witness's configuration file.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WitnessFileConfig {
    /// The witness's name (its cosigning keys' name), used when the keys are made. A
    /// URL-like name without scheme is conventional, e.g. `witness.example.com/w1`.
    #[serde(default)]
    pub name: Option<String>,
    /// The logs this witness cosigns.
    #[serde(default)]
    pub log: Vec<WitnessedLog>,
}

/// One log a witness follows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WitnessedLog {
    /// The log's origin (the checkpoint's first line), e.g. `sentrace/default`.
    pub origin: String,
    /// The log's public keys: its Ed25519 and ML-DSA-44 vkeys, separated by whitespace (what
    /// `sentrace keys show` prints).
    pub vkey: String,
    /// Which of the log's signatures must verify: `both` (default), `ed25519` or `ml_dsa`.
    #[serde(default)]
    pub require: Require,
}

impl WitnessedLog {
    /// Parses `ORIGIN=VKEYS` (the `--log` argument).
    pub fn from_arg(s: &str) -> Result<Self, String> {
        let (origin, vkey) = s
            .split_once('=')
            .ok_or_else(|| format!("--log {s:?}: expected ORIGIN=VKEYS"))?;
        Ok(Self {
            origin: origin.trim().to_owned(),
            vkey: vkey.trim().to_owned(),
            require: Require::Both,
        })
    }
}

/// Builds the witness's table of known logs; errors name the log.
pub fn known_logs(logs: &[WitnessedLog]) -> Result<BTreeMap<Origin, KnownLog>, String> {
    let mut out = BTreeMap::new();
    for l in logs {
        let origin =
            Origin::new(&l.origin).map_err(|e| format!("log origin {:?}: {e}", l.origin))?;
        let key =
            LogVerifier::parse(&l.vkey).map_err(|e| format!("log {:?} vkey: {e}", l.origin))?;
        if out
            .insert(
                origin,
                KnownLog {
                    key,
                    require: l.require,
                },
            )
            .is_some()
        {
            return Err(format!("log {:?} is listed twice", l.origin));
        }
    }
    Ok(out)
}

/// A witness the server asks to cosign its checkpoints (`[[seal.witness]]`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WitnessConfig {
    /// A name for logs and metrics (`witness` label).
    pub name: String,
    /// The witness's base URL (`https://host:port`); requests go to `<url>/add-checkpoint`.
    pub url: String,
    /// The witness's cosigning vkeys (what `sentrace witness --show-key` prints), separated by
    /// whitespace; only cosignatures by these keys are kept.
    pub vkey: String,
    /// A PEM CA certificate to trust for the witness's TLS certificate instead of the
    /// system roots (for a witness with a self-made CA: `<state>/tls/ca.pem`).
    #[serde(default)]
    pub ca: Option<PathBuf>,
    /// Timeout of one request, in milliseconds.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
}

fn default_timeout_ms() -> u64 {
    10_000
}

impl WitnessConfig {
    /// The witness's cosigning keys.
    pub fn keys(&self) -> Result<Vec<VerifierKey>, String> {
        parse_witness_vkeys(&self.vkey).map_err(|e| format!("[[seal.witness]] {}: {e}", self.name))
    }

    /// Checks values that parse but make no sense.
    pub fn validate(&self) -> Result<(), String> {
        self.keys()?;
        if !self.url.starts_with("https://") {
            return Err(format!(
                "[[seal.witness]] {}: url must start with https://",
                self.name
            ));
        }
        if self.timeout_ms == 0 {
            return Err(format!(
                "[[seal.witness]] {}: timeout_ms must be at least 1",
                self.name
            ));
        }
        Ok(())
    }
}

/// Parses whitespace-separated witness vkeys (type `0x04` or `0x06`), all with one name.
pub fn parse_witness_vkeys(s: &str) -> Result<Vec<VerifierKey>, String> {
    let mut keys = Vec::new();
    for v in s.split_whitespace() {
        let k = VerifierKey::parse(v).map_err(|e| format!("vkey {v:?}: {e}"))?;
        if k.kind() == SigKind::Ed25519 {
            return Err(format!(
                "vkey {v:?} is a log key (type 0x01); a witness cosigns with type 0x04 or 0x06"
            ));
        }
        keys.push(k);
    }
    let Some(first) = keys.first() else {
        return Err("no vkey given".into());
    };
    if keys.iter().any(|k| k.name() != first.name()) {
        return Err("the vkeys of one witness must share its name".into());
    }
    Ok(keys)
}

/// Checks the `[[seal.witness]]` list and the quorum.
pub fn validate_witnesses(witnesses: &[WitnessConfig], quorum: usize) -> Result<(), String> {
    if witnesses.len() > MAX_WITNESSES {
        return Err(format!(
            "[seal] at most {MAX_WITNESSES} witnesses are supported"
        ));
    }
    let mut names = std::collections::BTreeSet::new();
    let mut key_names = std::collections::BTreeSet::new();
    for w in witnesses {
        w.validate()?;
        if !names.insert(&w.name) {
            return Err(format!("[[seal.witness]] name {:?} is used twice", w.name));
        }
        if let Some(k) = w.keys()?.first() {
            key_names.insert(k.name().as_str().to_owned());
        }
    }
    if key_names.len() != witnesses.len() {
        return Err("[[seal.witness]] two witnesses have keys of the same name; verifiers count witnesses by key name".into());
    }
    if quorum > witnesses.len() {
        return Err(format!(
            "[seal] witness_quorum = {quorum} but only {} witnesses are configured",
            witnesses.len()
        ));
    }
    Ok(())
}
