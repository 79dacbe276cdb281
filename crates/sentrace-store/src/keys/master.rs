//! The master key (key-encryption key): the handle every component holds, and the local
//! provider's key file and environment variable.

use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use std::sync::Arc;

use zeroize::Zeroizing;

use super::kek::{Kek, KekSource, LocalKek};
use crate::StoreError;
use crate::crypto::{KEY_LEN, Secret32};
use crate::fsutil::sync_dir;

/// The master key (KEK) as the rest of the workspace holds it: a provider behind the
/// [`Kek`] trait (a local 32-byte key by default). Never printed.
#[derive(Clone, Debug)]
pub struct MasterKey(Arc<dyn Kek>);

/// Longest master key file accepted (64 hex characters plus whitespace).
const MAX_FILE_LEN: u64 = 256;

/// Reads a 64-hex-character key file (see [`MasterKey::load_or_create`] for the rules).
pub(crate) fn load_key_file(path: &Path) -> Result<Secret32, StoreError> {
    let bad = |reason: String| StoreError::KeyFile {
        path: path.to_path_buf(),
        reason,
    };
    crate::fsutil::check_private_file(path)?;
    let meta = std::fs::metadata(path).map_err(|e| StoreError::io(path, e))?;
    if meta.len() > MAX_FILE_LEN {
        return Err(bad(format!(
            "file is {} bytes, expected 64 hex characters",
            meta.len()
        )));
    }
    let mut text = Zeroizing::new(String::new());
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_FILE_LEN).read_to_string(&mut text))
        .map_err(|e| StoreError::io(path, e))?;
    from_hex(text.trim()).map_err(bad)
}

/// Reads a 64-hex-character key from environment variable `var`.
pub(crate) fn key_from_env(var: &str) -> Result<Secret32, StoreError> {
    let text = Zeroizing::new(std::env::var(var).map_err(|_| StoreError::KeyFile {
        path: format!("${var}").into(),
        reason: "environment variable is not set or not UTF-8".into(),
    })?);
    from_hex(text.trim()).map_err(|reason| StoreError::KeyFile {
        path: format!("${var}").into(),
        reason,
    })
}

fn from_hex(text: &str) -> Result<Secret32, String> {
    let mut out = Secret32([0u8; KEY_LEN]);
    if text.len() != KEY_LEN * 2 {
        return Err(format!(
            "expected {} hex characters, found {}",
            KEY_LEN * 2,
            text.len()
        ));
    }
    hex::decode_to_slice(text, &mut out.0).map_err(|_| "not hexadecimal".to_string())?;
    Ok(out)
}

impl MasterKey {
    /// Loads the master key from `path`, or creates it (mode 0600, random, fsynced) if the
    /// file does not exist. Refuses a file that group or others can access, a symlink, or
    /// anything but 64 hex characters.
    pub fn load_or_create(path: &Path) -> Result<Self, StoreError> {
        match std::fs::symlink_metadata(path) {
            Ok(_) => Self::load(path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Self::create(path),
            Err(e) => Err(StoreError::io(path, e)),
        }
    }

    /// Loads an existing master key file (see [`MasterKey::load_or_create`] for the rules).
    pub fn load(path: &Path) -> Result<Self, StoreError> {
        Self::local(load_key_file(path)?)
    }

    fn local(key: Secret32) -> Result<Self, StoreError> {
        Ok(Self(Arc::new(LocalKek::new(key)?)))
    }

    fn create(path: &Path) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            crate::fsutil::create_private_dir(dir)?;
        }
        let key = Secret32::random()?;
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| StoreError::io(path, e))?;
        let text = Zeroizing::new(format!("{}\n", hex::encode(key.expose())));
        f.write_all(text.as_bytes())
            .and_then(|()| f.sync_all())
            .map_err(|e| StoreError::io(path, e))?;
        sync_dir(
            path.parent()
                .filter(|d| !d.as_os_str().is_empty())
                .unwrap_or(Path::new(".")),
        )?;
        Self::local(key)
    }

    /// Reads the master key from environment variable `var` (64 hex characters).
    pub fn from_env(var: &str) -> Result<Self, StoreError> {
        Self::local(key_from_env(var)?)
    }

    /// A master key from raw bytes (for tests and tools).
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        // LocalKek::new fails only if AES key setup fails, which a 32-byte key never does;
        // fall back to the zero-length-free path anyway without panicking.
        match LocalKek::new(Secret32(bytes)) {
            Ok(k) => Self(Arc::new(k)),
            Err(_) => Self(Arc::new(super::kek::UnusableKek)),
        }
    }

    /// A master key behind any provider (a command, a KMS integration).
    pub fn from_kek(kek: Arc<dyn Kek>) -> Self {
        Self(kek)
    }

    /// The provider named by `source`.
    pub fn from_source(source: &KekSource) -> Result<Self, StoreError> {
        source.build().map(Self)
    }

    /// A fresh random master key (not persisted).
    pub fn generate() -> Result<Self, StoreError> {
        Self::local(Secret32::random()?)
    }

    /// The provider.
    pub fn kek(&self) -> &Arc<dyn Kek> {
        &self.0
    }

    /// The KEK's stable, non-secret id.
    pub fn id(&self) -> &str {
        self.0.id()
    }

    /// Wraps a node secret for storage at rest, bound to `purpose` (for the local provider:
    /// AES-256-GCM under HKDF(master, "sentrace wrap v1" ‖ purpose), purpose as AAD, output
    /// `nonce ‖ ciphertext ‖ tag`).
    pub fn wrap(&self, purpose: &str, secret: &[u8]) -> Result<Vec<u8>, StoreError> {
        self.0.wrap_secret(purpose, secret)
    }

    /// Unwraps what [`MasterKey::wrap`] made for the same `purpose` (zeroized on drop).
    pub fn unwrap(&self, purpose: &str, wrapped: &[u8]) -> Result<Zeroizing<Vec<u8>>, StoreError> {
        self.0.unwrap_secret(purpose, wrapped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn wrap_round_trip_and_purpose_binding() {
        let m = MasterKey::generate().unwrap();
        let w = m.wrap("log-key", b"secret").unwrap();
        assert_eq!(&**m.unwrap("log-key", &w).unwrap(), b"secret");
        assert!(m.unwrap("other", &w).is_err());
        assert!(
            MasterKey::generate()
                .unwrap()
                .unwrap("log-key", &w)
                .is_err()
        );
    }

    #[test]
    fn create_then_load_and_mode_check() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/master.key");
        let a = MasterKey::load_or_create(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let b = MasterKey::load_or_create(&path).unwrap();
        assert_eq!(a.id(), b.id());

        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        let err = MasterKey::load_or_create(&path).unwrap_err();
        assert!(matches!(err, StoreError::KeyFile { .. }), "{err}");
        assert!(err.to_string().contains("chmod 600"), "{err}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o604)).unwrap();
        assert!(MasterKey::load(&path).is_err());

        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::write(&path, "abc").unwrap();
        assert!(
            MasterKey::load(&path)
                .unwrap_err()
                .to_string()
                .contains("hex")
        );
    }
}
