//! The node's log signing key (hybrid Ed25519 + ML-DSA-44), made on first start and kept
//! wrapped by the master key: `<data dir>/log-key.wrapped` holds
//! `MasterKey::wrap("sentrace log key v1", LogSigner::to_secret_string())`. The public
//! keys are in `<data dir>/log-key.pub` (vkeys, one a line) for anyone to read.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use sentrace_ledger::checkpoint::{LogSigner, LogVerifier};
use sentrace_ledger::note::KeyName;
use sentrace_store::MasterKey;

/// The purpose the log key is wrapped for (`MasterKey::wrap`).
pub const PURPOSE: &str = "sentrace log key v1";

/// Path of the wrapped signing key.
pub fn wrapped_key_path(data_dir: &Path) -> PathBuf {
    data_dir.join("log-key.wrapped")
}

/// Path of the public keys.
pub fn public_key_path(data_dir: &Path) -> PathBuf {
    data_dir.join("log-key.pub")
}

/// Loads the node's log key, or makes one named `node` if there is none.
pub fn load_or_create(
    data_dir: &Path,
    master: &MasterKey,
    node: &str,
) -> anyhow::Result<LogSigner> {
    let path = wrapped_key_path(data_dir);
    if path.exists() {
        let signer = load(data_dir, master)?;
        if signer.verifier().ed25519.name().as_str() != node {
            bail!(
                "the log key in {} is named {:?} but [seal] node is {node:?}; a node keeps its name (its logs' origins depend on it)",
                path.display(),
                signer.verifier().ed25519.name().as_str()
            );
        }
        return Ok(signer);
    }
    let name = KeyName::new(node).map_err(|e| anyhow::anyhow!("log key name {node:?}: {e}"))?;
    let signer =
        LogSigner::generate(&name).map_err(|e| anyhow::anyhow!("generating the log key: {e}"))?;
    let wrapped = master
        .wrap(PURPOSE, signer.to_secret_string().as_bytes())
        .context("wrapping the log key")?;
    write_new(&path, &wrapped, 0o600)?;
    write_new(
        &public_key_path(data_dir),
        format!("{}\n", signer.verifier().to_vkeys()).as_bytes(),
        0o644,
    )?;
    Ok(signer)
}

/// Copies the wrapped log key to `log-key.wrapped` of `objects` (the node's prefix of a
/// shared bucket), where `sentrace verify --store` finds it.
pub async fn publish_wrapped(
    data_dir: &Path,
    objects: &dyn object_store::ObjectStore,
) -> anyhow::Result<()> {
    use object_store::ObjectStoreExt;
    let path = wrapped_key_path(data_dir);
    let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    objects
        .put(
            &object_store::path::Path::from(sentrace_store::nodes::LOG_KEY_FILE),
            object_store::PutPayload::from(bytes),
        )
        .await
        .context("writing log-key.wrapped")?;
    Ok(())
}

/// Loads the node's log key.
pub fn load(data_dir: &Path, master: &MasterKey) -> anyhow::Result<LogSigner> {
    let path = wrapped_key_path(data_dir);
    // Wrapped under the master key, and still held to the rule of every private key file.
    sentrace_store::fsutil::check_private_file(&path)?;
    let wrapped = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    let secret = master.unwrap(PURPOSE, &wrapped).with_context(|| {
        format!(
            "unwrapping {} (wrong master key, or the file was altered)",
            path.display()
        )
    })?;
    let text = zeroize::Zeroizing::new(
        String::from_utf8(secret.to_vec()).context("the unwrapped log key is not UTF-8")?,
    );
    LogSigner::from_secret_string(&text)
        .map_err(|e| anyhow::anyhow!("the log key in {} is invalid: {e}", path.display()))
}

/// The node's public log keys, from the signing key.
pub fn verifier(data_dir: &Path, master: &MasterKey) -> anyhow::Result<LogVerifier> {
    Ok(load(data_dir, master)?.verifier())
}

/// Writes a key file with the workspace's one atomic write (temporary file, fsync, rename,
/// fsync of the directory).
fn write_new(path: &Path, bytes: &[u8], mode: u32) -> anyhow::Result<()> {
    sentrace_store::fsutil::write_atomic(path, bytes, mode)
        .with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_log_key_file_others_can_read_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let master = MasterKey::from_bytes([7; 32]);
        load_or_create(dir.path(), &master, "node-a").unwrap();
        let path = wrapped_key_path(dir.path());
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = format!("{:#}", load(dir.path(), &master).unwrap_err());
        assert!(e.contains("chmod 600"), "{e}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        load_or_create(dir.path(), &master, "node-a").unwrap();
    }
}
