//! Authentication of every request: a bearer token checked against the data directory's
//! token file. The file is re-read as soon as it changes (the `sentrace tokens` commands edit
//! it while the server runs), so a revocation takes effect on the next request.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::RwLock;
use std::time::{SystemTime, UNIX_EPOCH};

use sentrace_access::{AuthError, TokenSet};
use sentrace_core::{Identity, Role};

use crate::fsutil::write_atomic;

/// The token file of a data directory.
pub fn tokens_path(data_dir: &Path) -> PathBuf {
    data_dir.join("tokens.json")
}

/// Identifies one version of a file without reading it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
struct Stamp {
    ino: u64,
    len: u64,
    mtime_ns: i128,
}

fn stamp(path: &Path) -> Option<Stamp> {
    let m = std::fs::metadata(path).ok()?;
    Some(Stamp {
        ino: m.ino(),
        len: m.len(),
        mtime_ns: i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
    })
}

/// Checks bearer tokens.
pub struct Authenticator {
    path: PathBuf,
    cache: RwLock<(Option<Stamp>, TokenSet)>,
}

/// Unix seconds now.
pub fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Reads the token file; a missing file is an empty set.
pub fn load_tokens(path: &Path) -> anyhow::Result<TokenSet> {
    match std::fs::read(path) {
        Ok(bytes) => {
            Ok(TokenSet::from_json(&bytes)
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(TokenSet {
            version: 1,
            tokens: Vec::new(),
        }),
        Err(e) => Err(anyhow::anyhow!("reading {}: {e}", path.display())),
    }
}

/// Replaces the token file atomically (mode 0600).
pub fn save_tokens(path: &Path, set: &TokenSet) -> anyhow::Result<()> {
    write_atomic(path, &set.to_json(), 0o600)
}

impl Authenticator {
    /// An authenticator over `path`.
    pub fn new(path: PathBuf) -> anyhow::Result<Self> {
        let s = stamp(&path);
        let set = load_tokens(&path)?;
        Ok(Self {
            path,
            cache: RwLock::new((s, set)),
        })
    }

    fn refresh(&self) {
        let now = stamp(&self.path);
        let stale = self.cache.read().map(|c| c.0 != now).unwrap_or(true);
        if !stale {
            return;
        }
        match load_tokens(&self.path) {
            Ok(set) => {
                if let Ok(mut c) = self.cache.write() {
                    *c = (now, set);
                }
            }
            // A half-written or broken file keeps the last good set; the tokens commands
            // write atomically, so this is an operator's hand edit.
            Err(e) => {
                tracing::error!(error = %e, "token file unreadable; keeping the previous tokens")
            }
        }
    }

    /// Authenticates the value of an `Authorization` header and checks the role.
    pub fn check(&self, authorization: Option<&str>, wanted: Role) -> Result<Identity, AuthError> {
        let header = authorization.ok_or(AuthError::Missing)?;
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .ok_or(AuthError::Malformed)?
            .trim();
        self.refresh();
        let identity = self
            .cache
            .read()
            .map_err(|_| AuthError::Unknown)?
            .1
            .authenticate(token, now_unix())?;
        if !identity.can(wanted) {
            return Err(AuthError::Forbidden {
                id: identity.principal.clone(),
                wanted,
            });
        }
        Ok(identity)
    }
}
