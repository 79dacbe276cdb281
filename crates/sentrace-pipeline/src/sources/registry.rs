//! The source key registry: one file per tenant, `<data-dir>/sources/<tenant>.toml`,
//! listing the sources allowed to sign that tenant's batches and their public keys.
//!
//! ```toml
//! [[source]]
//! # What the source sends in `sentrace-source` (also the name of its keys).
//! name = "edge-1"
//! # Its Ed25519 and ML-DSA-44 vkeys, separated by a space.
//! vkeys = "edge-1+1a2b3c4d+AQ... edge-1+5e6f7a8b+Bg..."
//! ```
//!
//! A source belongs to the tenant whose file lists it, and to no other: a batch is checked
//! against the file of the tenant of the token that sent it. `sentrace keys source-new`
//! writes these files; the server notices changes within a second (no restart).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};

use sentrace_core::TenantId;
use sentrace_ledger::manifest::SourceVerifier;
use sentrace_ledger::note::KeyName;

/// The largest registry file read.
pub const MAX_REGISTRY_BYTES: u64 = 4 * 1024 * 1024;
/// The most sources one registry file may list.
pub const MAX_SOURCES: usize = 10_000;
/// How often a tenant's file is checked for changes.
const RECHECK: Duration = Duration::from_secs(1);

/// A registry file that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    /// Reading failed.
    #[error("{path}: {reason}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// The file is larger than [`MAX_REGISTRY_BYTES`].
    #[error("{path}: {len} bytes; the limit is {MAX_REGISTRY_BYTES}")]
    TooLarge {
        /// The file.
        path: String,
        /// Its length.
        len: u64,
    },
    /// The file does not parse, or an entry is invalid.
    #[error("{path}: {reason}")]
    Invalid {
        /// The file.
        path: String,
        /// What is wrong, with the entry.
        reason: String,
    },
}

/// The file format.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryFile {
    /// The registered sources.
    #[serde(default)]
    pub source: Vec<SourceEntry>,
}

/// One registered source.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceEntry {
    /// The source's name: the `sentrace-source` value and the name of both its keys.
    pub name: String,
    /// Its public keys: an Ed25519 vkey and an ML-DSA-44 vkey, space-separated.
    pub vkeys: String,
}

/// A tenant's sources by name.
pub type Keys = BTreeMap<String, SourceVerifier>;

/// The directory of registry files.
pub fn dir(data_dir: &Path) -> PathBuf {
    data_dir.join("sources")
}

/// The registry file of `tenant`.
pub fn path(data_dir: &Path, tenant: &TenantId) -> PathBuf {
    dir(data_dir).join(format!("{}.toml", tenant.as_str()))
}

/// Parses and validates a registry file's text.
pub fn parse(text: &str, path: &Path) -> Result<Keys, RegistryError> {
    let invalid = |reason: String| RegistryError::Invalid {
        path: path.display().to_string(),
        reason,
    };
    let file: RegistryFile = toml::from_str(text).map_err(|e| invalid(e.to_string()))?;
    if file.source.len() > MAX_SOURCES {
        return Err(invalid(format!(
            "{} sources; at most {MAX_SOURCES}",
            file.source.len()
        )));
    }
    let mut out = Keys::new();
    for (i, s) in file.source.iter().enumerate() {
        let at = |why: String| invalid(format!("[[source]] {} ({:?}): {why}", i + 1, s.name));
        KeyName::new(&s.name).map_err(|e| at(e.to_string()))?;
        let keys = SourceVerifier::parse(&s.vkeys).map_err(|e| at(format!("vkeys: {e}")))?;
        if keys.ed25519.name().as_str() != s.name || keys.mldsa.name().as_str() != s.name {
            return Err(at("the vkeys are named differently from the source".into()));
        }
        if out.insert(s.name.clone(), keys).is_some() {
            return Err(at("listed twice".into()));
        }
    }
    Ok(out)
}

/// Reads a tenant's registry file; no file means no sources.
pub fn load(data_dir: &Path, tenant: &TenantId) -> Result<Keys, RegistryError> {
    let p = path(data_dir, tenant);
    match read_limited(&p)? {
        Some(text) => parse(&text, &p),
        None => Ok(Keys::new()),
    }
}

fn read_limited(p: &Path) -> Result<Option<String>, RegistryError> {
    let io = |e: std::io::Error| RegistryError::Io {
        path: p.display().to_string(),
        reason: e.to_string(),
    };
    let meta = match std::fs::metadata(p) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(e)),
    };
    if meta.len() > MAX_REGISTRY_BYTES {
        return Err(RegistryError::TooLarge {
            path: p.display().to_string(),
            len: meta.len(),
        });
    }
    std::fs::read_to_string(p).map(Some).map_err(io)
}

/// Adds a source to a tenant's registry file (created if missing), atomically. Refuses a
/// name already registered.
pub fn add(
    data_dir: &Path,
    tenant: &TenantId,
    name: &str,
    keys: &SourceVerifier,
) -> anyhow::Result<PathBuf> {
    let p = path(data_dir, tenant);
    let mut file: RegistryFile = match read_limited(&p)? {
        Some(text) => {
            parse(&text, &p)?;
            toml::from_str(&text)?
        }
        None => RegistryFile::default(),
    };
    if file.source.iter().any(|s| s.name == name) {
        anyhow::bail!(
            "source {name:?} is already registered for tenant {tenant} in {}",
            p.display()
        );
    }
    file.source.push(SourceEntry {
        name: name.to_owned(),
        vkeys: keys.to_vkeys(),
    });
    let mut text = format!(
        "# Sources allowed to sign batches for tenant \"{tenant}\" (sentrace keys source-new).\n"
    );
    text.push_str(&toml::to_string(&file)?);
    parse(&text, &p)?;
    sentrace_store::fsutil::write_atomic(&p, text.as_bytes(), 0o644)?;
    Ok(p)
}

struct Cached {
    checked: Instant,
    stamp: Option<(SystemTime, u64)>,
    keys: Result<Arc<Keys>, RegistryError>,
}

/// Every tenant's registry, read on first use and re-read when its file changes.
pub struct Registry {
    data_dir: PathBuf,
    cache: Mutex<HashMap<TenantId, Cached>>,
}

impl Registry {
    /// The registry under `data_dir`.
    pub fn new(data_dir: &Path) -> Self {
        Self {
            data_dir: data_dir.to_path_buf(),
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The tenant's sources. The file is checked for changes at most once a second; a
    /// broken file fails closed (no source of that tenant is accepted until it is fixed).
    pub fn keys(&self, tenant: &TenantId) -> Result<Arc<Keys>, RegistryError> {
        let mut cache = self.cache.lock().map_err(|_| RegistryError::Io {
            path: dir(&self.data_dir).display().to_string(),
            reason: "registry lock poisoned".into(),
        })?;
        if let Some(c) = cache.get(tenant)
            && c.checked.elapsed() < RECHECK
        {
            return c.keys.clone();
        }
        let p = path(&self.data_dir, tenant);
        let stamp = std::fs::metadata(&p)
            .ok()
            .map(|m| (m.modified().unwrap_or(SystemTime::UNIX_EPOCH), m.len()));
        if let Some(c) = cache.get_mut(tenant)
            && c.stamp == stamp
        {
            c.checked = Instant::now();
            return c.keys.clone();
        }
        let keys = load(&self.data_dir, tenant).map(Arc::new);
        match &keys {
            Ok(k) => tracing::info!(tenant = %tenant, sources = k.len(), "source registry loaded"),
            Err(e) => tracing::error!(tenant = %tenant, error = %e,
                "source registry is invalid; signed batches of this tenant are refused until it is fixed"),
        }
        cache.insert(
            tenant.clone(),
            Cached {
                checked: Instant::now(),
                stamp,
                keys: keys.clone(),
            },
        );
        keys
    }
}

#[cfg(test)]
mod tests {
    use sentrace_ledger::manifest::SourceSigner;

    use super::*;

    fn key(name: &str, seed: u8) -> SourceVerifier {
        SourceSigner::from_seeds(&KeyName::new(name).unwrap(), [seed; 32], [seed + 1; 32])
            .verifier()
    }

    #[test]
    fn add_then_load_and_per_tenant() {
        let dir = tempfile::tempdir().unwrap();
        let a = TenantId::new("a").unwrap();
        let b = TenantId::new("b").unwrap();
        add(dir.path(), &a, "edge-1", &key("edge-1", 1)).unwrap();
        add(dir.path(), &a, "edge-2", &key("edge-2", 3)).unwrap();
        assert!(add(dir.path(), &a, "edge-1", &key("edge-1", 5)).is_err());
        let k = load(dir.path(), &a).unwrap();
        assert_eq!(k.len(), 2);
        assert_eq!(k["edge-2"], key("edge-2", 3));
        assert!(load(dir.path(), &b).unwrap().is_empty());
        let reg = Registry::new(dir.path());
        assert!(reg.keys(&a).unwrap().contains_key("edge-1"));
        assert!(!reg.keys(&b).unwrap().contains_key("edge-1"));
    }

    #[test]
    fn invalid_files_are_refused_with_the_entry() {
        let p = Path::new("t.toml");
        let good = key("edge-1", 1).to_vkeys();
        let e = parse(
            &format!("[[source]]\nname = \"other\"\nvkeys = \"{good}\"\n"),
            p,
        );
        assert!(e.unwrap_err().to_string().contains("named differently"));
        let e = parse("[[source]]\nname = \"x\"\nvkeys = \"nope\"\n", p);
        assert!(e.unwrap_err().to_string().contains("vkeys"));
        let e = parse("[[source]]\nname = \"x\"\nvkey = \"\"\n", p);
        assert!(e.unwrap_err().to_string().contains("vkey"));
        let twice = format!(
            "[[source]]\nname = \"edge-1\"\nvkeys = \"{good}\"\n[[source]]\nname = \"edge-1\"\nvkeys = \"{good}\"\n"
        );
        assert!(parse(&twice, p).unwrap_err().to_string().contains("twice"));
    }
}
