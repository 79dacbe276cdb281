//! The witness's files under its state directory:
//!
//! - `witness.key`: the cosigning keys, one `PRIVATE+KEY+...` line each (Ed25519
//!   cosignature `0x04` and ML-DSA-44 `0x06`, same name), mode 0600, made on first start;
//! - `witness.pub`: their vkeys, one a line, for logs and verifiers;
//! - `state.json`: the latest cosigned (size, root) per log origin.
//!
//! The state is replaced atomically: a temporary file is written and fsynced, renamed over
//! `state.json`, and the directory is fsynced, all before the cosignature is returned, so
//! a crash never lets the witness cosign two different trees of the same size
//! (c2sp.org/tlog-witness: the check and the update are one atomic step).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use sentrace_ledger::keys::{NoteSigner, SigKind};
use sentrace_ledger::note::KeyName;
use sentrace_ledger::witness::WitnessState;

/// The largest `state.json` read (a record is under 400 bytes; this allows ~40k logs).
pub const MAX_STATE_FILE: u64 = 16 * 1024 * 1024;
/// The largest key file read.
const MAX_KEY_FILE: u64 = 64 * 1024;

/// Default path of the cosigning key file.
pub fn key_path(state_dir: &Path) -> PathBuf {
    state_dir.join("witness.key")
}

/// Path of the public keys.
pub fn public_key_path(state_dir: &Path) -> PathBuf {
    state_dir.join("witness.pub")
}

/// Path of the per-log state.
pub fn state_path(state_dir: &Path) -> PathBuf {
    state_dir.join("state.json")
}

fn read_limited(path: &Path, limit: u64) -> anyhow::Result<Vec<u8>> {
    let meta = std::fs::metadata(path).with_context(|| format!("reading {}", path.display()))?;
    if meta.len() > limit {
        bail!(
            "{} is {} bytes; at most {limit} are accepted",
            path.display(),
            meta.len()
        );
    }
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}

/// Loads the cosigning keys from `key_file`, or makes a new pair named `name` (Ed25519
/// cosignature and ML-DSA-44) if the file does not exist. Returns the keys and whether they
/// were made now. A key file readable by group or others is refused.
pub fn load_or_create_keys(
    key_file: &Path,
    name: Option<&str>,
) -> anyhow::Result<(Vec<NoteSigner>, bool)> {
    if key_file.exists() {
        let mode = std::fs::metadata(key_file)?.permissions().mode();
        if mode & 0o077 != 0 {
            bail!(
                "{} is readable by others (mode {:o}); run chmod 600 on it",
                key_file.display(),
                mode & 0o777
            );
        }
        let text = String::from_utf8(read_limited(key_file, MAX_KEY_FILE)?)
            .with_context(|| format!("{} is not UTF-8", key_file.display()))?;
        let mut keys = Vec::new();
        for (i, line) in text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
        {
            let k = NoteSigner::from_secret_string(line)
                .map_err(|e| anyhow::anyhow!("{} line {}: {e}", key_file.display(), i + 1))?;
            if k.kind() == SigKind::Ed25519 {
                bail!(
                    "{} line {}: a witness cosigns with type 0x04 (Ed25519 cosignature/v1) or 0x06 (ML-DSA-44), not 0x01",
                    key_file.display(),
                    i + 1
                );
            }
            keys.push(k);
        }
        if keys.is_empty() {
            bail!("{} holds no key", key_file.display());
        }
        if keys.iter().any(|k| k.name() != keys[0].name()) {
            bail!("{}: the keys have different names", key_file.display());
        }
        if let Some(n) = name
            && keys[0].name().as_str() != n
        {
            bail!(
                "the witness key in {} is named {:?}, not {n:?}; a witness keeps its name (verifiers pin it)",
                key_file.display(),
                keys[0].name().as_str()
            );
        }
        return Ok((keys, false));
    }
    let name = name.unwrap_or("sentrace-witness");
    let kn = KeyName::new(name).map_err(|e| anyhow::anyhow!("witness name {name:?}: {e}"))?;
    let keys = vec![
        NoteSigner::generate(kn.clone(), SigKind::Ed25519Cosignature)
            .map_err(|e| anyhow::anyhow!("generating the Ed25519 key: {e}"))?,
        NoteSigner::generate(kn, SigKind::MlDsa44)
            .map_err(|e| anyhow::anyhow!("generating the ML-DSA-44 key: {e}"))?,
    ];
    let mut secret = zeroize::Zeroizing::new(String::new());
    for k in &keys {
        secret.push_str(&k.to_secret_string());
        secret.push('\n');
    }
    write_durable(key_file, secret.as_bytes(), 0o600)?;
    Ok((keys, true))
}

/// The vkeys of `keys`, one a line.
pub fn vkeys(keys: &[NoteSigner]) -> String {
    keys.iter()
        .map(|k| format!("{}\n", k.verifier().to_vkey()))
        .collect()
}

/// Loads the witness state; a missing file is the empty state.
pub fn load_state(path: &Path) -> anyhow::Result<WitnessState> {
    if !path.exists() {
        return Ok(WitnessState::default());
    }
    let bytes = read_limited(path, MAX_STATE_FILE)?;
    serde_json::from_slice(&bytes).with_context(|| {
        format!(
            "parsing the witness state {} (refusing to start: a lost state could let the witness cosign a split view)",
            path.display()
        )
    })
}

/// Replaces the witness state durably: see the module docs.
pub fn save_state(path: &Path, state: &WitnessState) -> anyhow::Result<()> {
    let bytes = serde_json::to_vec_pretty(state).context("encoding the witness state")?;
    write_durable(path, &bytes, 0o600)
}

/// Writes a state or key file with the workspace's one atomic write (temporary file, fsync,
/// rename, fsync of the directory). Every error is returned (nothing is assumed durable).
pub fn write_durable(path: &Path, data: &[u8], mode: u32) -> anyhow::Result<()> {
    sentrace_store::fsutil::write_atomic(path, data, mode)
        .with_context(|| format!("writing {}", path.display()))
}
