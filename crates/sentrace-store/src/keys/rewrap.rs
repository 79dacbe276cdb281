//! Re-wrapping every wrapped key of a data directory under a new master key (KEK), without
//! touching any data: `sentrace keys rewrap --to NEW`.
//!
//! Crash safety (kill -9 at any point leaves every key readable under the old or the new
//! KEK, and a second run finishes the job):
//!
//! 1. **prepare**: for each file (tenant key files, node secrets), unwrap under the old KEK,
//!    wrap under the new one and write `<file>.rewrap` beside it (temporary file, fsync,
//!    rename, fsync of the directory). The originals are untouched: a crash here leaves the
//!    old KEK in force; the next run deletes the stale `.rewrap` files and starts over.
//! 2. **commit**: write the marker `keys/REWRAP` (`from`, `to`, the files), durably. From
//!    here on the rewrap is decided. While the marker exists, [`super::KeyRing::open`]
//!    refuses to open, naming the command that finishes it.
//! 3. **switch**: rename each `<file>.rewrap` over `<file>` (atomic per file), fsync the
//!    directory. A crash here leaves some files under the old KEK and the rest under the
//!    new one, each whole; a second run with either KEK configured finishes the renames.
//! 4. **done**: remove the marker, fsync.
//!
//! For tests, `SENTRACE_REWRAP_FAULT_AFTER=N` aborts the process (as kill -9 would) right
//! after the N-th durable step (each file written, the marker, each rename).

use std::path::{Path, PathBuf};

use sentrace_core::TenantId;
use serde::{Deserialize, Serialize};

use super::MasterKey;
use super::kek::KeyLabel;
use super::ring::{
    KeyFile, MAX_KEY_FILE_BYTES, dek_aad, dek_key_id, parse_key_file, pseudonym_aad,
};
use crate::StoreError;
use crate::fsutil::{read_bounded, sync_dir, write_atomic_private};

/// The marker's name inside the main key directory.
pub const MARKER: &str = "REWRAP";
/// The suffix of prepared files.
const SUFFIX: &str = ".rewrap";
/// Largest node secret file read.
const MAX_SECRET_FILE: u64 = 1 << 20;

/// What to re-wrap, relative to the data directory.
#[derive(Clone, Debug, Default)]
pub struct RewrapPlan {
    /// Directories of tenant key files (`keys`, `audit/node/keys`); the first holds the
    /// marker.
    pub key_dirs: Vec<PathBuf>,
    /// Node secrets wrapped with [`MasterKey::wrap`]: file and purpose.
    pub secrets: Vec<(PathBuf, String)>,
}

/// The commit marker.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Marker {
    /// Format version (1).
    pub version: u32,
    /// The old KEK's id.
    pub from: String,
    /// The new KEK's id.
    pub to: String,
    /// Every file switched, relative to the data directory.
    pub files: Vec<PathBuf>,
}

/// What a rewrap did.
#[derive(Clone, Debug, Serialize)]
pub struct RewrapReport {
    /// The old KEK's id.
    pub from: String,
    /// The new KEK's id.
    pub to: String,
    /// Files switched to the new KEK.
    pub files: usize,
    /// Whether an interrupted rewrap was finished.
    pub resumed: bool,
}

/// The marker of an interrupted rewrap of `data_dir`, if any.
pub fn pending(key_dir: &Path) -> Result<Option<Marker>, StoreError> {
    let p = key_dir.join(MARKER);
    let bytes = read_bounded(&p, MAX_KEY_FILE_BYTES, "rewrap marker")?;
    if bytes.is_empty() {
        return Ok(None);
    }
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| StoreError::KeyFile {
            path: p,
            reason: format!("not a rewrap marker: {e}"),
        })
}

struct Fault {
    after: Option<u64>,
    steps: u64,
}

impl Fault {
    fn from_env() -> Self {
        Self {
            after: std::env::var("SENTRACE_REWRAP_FAULT_AFTER")
                .ok()
                .and_then(|v| v.parse().ok()),
            steps: 0,
        }
    }

    /// One durable step done: abort here if asked to (the test's kill -9).
    fn step(&mut self) {
        self.steps += 1;
        if self.after == Some(self.steps) {
            eprintln!(
                "SENTRACE_REWRAP_FAULT_AFTER: aborting after step {}",
                self.steps
            );
            std::process::abort();
        }
    }
}

fn prepared(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(SUFFIX);
    PathBuf::from(p)
}

/// Tenant key files of a directory (`<tenant>.json`).
fn key_files(dir: &Path) -> Result<Vec<(PathBuf, TenantId)>, StoreError> {
    let mut out = Vec::new();
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(StoreError::io(dir, e)),
    };
    for e in rd {
        let e = e.map_err(|e| StoreError::io(dir, e))?;
        let name = e.file_name();
        if let Some(t) = name
            .to_str()
            .and_then(|n| n.strip_suffix(".json"))
            .and_then(|n| TenantId::new(n).ok())
        {
            out.push((e.path(), t));
        }
    }
    out.sort();
    Ok(out)
}

/// Re-wraps one tenant key file's keys from `old` to `new`.
fn rewrap_key_file(
    path: &Path,
    tenant: &TenantId,
    old: &MasterKey,
    new: &MasterKey,
) -> Result<Vec<u8>, StoreError> {
    let bytes = read_bounded(path, MAX_KEY_FILE_BYTES, "key file")?;
    let bad = |reason: String| StoreError::KeyFile {
        path: path.to_path_buf(),
        reason,
    };
    let file = parse_key_file(&bytes, tenant).map_err(bad)?;
    if let Some(k) = file.kek.as_deref()
        && k != old.id()
    {
        return Err(bad(format!(
            "wrapped under master key {k}, not under the current one ({})",
            old.id()
        )));
    }
    let swap = |hex_text: &str, aad: &[u8], key_id: &str| -> Result<String, StoreError> {
        let label = KeyLabel {
            tenant: tenant.as_str(),
            key_id,
        };
        let sealed = hex::decode(hex_text).map_err(|_| bad(format!("{label}: not hex")))?;
        let plain = old.kek().unwrap(&label, aad, &sealed)?;
        new.kek().wrap(&label, aad, &plain).map(hex::encode)
    };
    let mut out = KeyFile {
        version: 2,
        tenant: tenant.clone(),
        kek: Some(new.id().to_string()),
        pseudonym: swap(&file.pseudonym, &pseudonym_aad(tenant), "pseudonym")?,
        deks: Vec::with_capacity(file.deks.len()),
        sensitive: Vec::with_capacity(file.sensitive.len()),
    };
    for mut d in file.deks {
        d.wrapped = swap(&d.wrapped, &dek_aad(tenant, d.id), &dek_key_id(d.id))?;
        out.deks.push(d);
    }
    for mut d in file.sensitive {
        d.wrapped = swap(
            &d.wrapped,
            &super::sensitive::sensitive_aad(tenant, d.id),
            &super::sensitive::sensitive_key_id(d.id),
        )?;
        out.sensitive.push(d);
    }
    serde_json::to_vec_pretty(&out).map_err(|e| bad(format!("cannot serialize: {e}")))
}

/// Runs (or finishes) a rewrap of `data_dir` from `old` to `new`.
pub fn rewrap(
    data_dir: &Path,
    plan: &RewrapPlan,
    old: &MasterKey,
    new: &MasterKey,
) -> Result<RewrapReport, StoreError> {
    let main = data_dir.join(plan.key_dirs.first().ok_or_else(|| StoreError::Config {
        field: "rewrap",
        reason: "no key directory to rewrap".into(),
    })?);
    let mut fault = Fault::from_env();
    let (marker, resumed) = match pending(&main)? {
        Some(m) => {
            if m.to != new.id() {
                return Err(StoreError::KeyFile {
                    path: main.join(MARKER),
                    reason: format!(
                        "an interrupted rewrap to master key {} must be finished first: run `sentrace keys rewrap --to <that key>`",
                        m.to
                    ),
                });
            }
            (m, true)
        }
        None => {
            if old.id() == new.id() {
                return Err(StoreError::Config {
                    field: "keys rewrap --to",
                    reason: format!("the new master key is the current one ({})", old.id()),
                });
            }
            // 1. prepare.
            let mut files = Vec::new();
            for dir in &plan.key_dirs {
                let abs = data_dir.join(dir);
                remove_stale(&abs)?;
                for (path, tenant) in key_files(&abs)? {
                    let bytes = rewrap_key_file(&path, &tenant, old, new)?;
                    write_atomic_private(&prepared(&path), &bytes)?;
                    fault.step();
                    files.push(dir.join(path.file_name().unwrap_or_default()));
                }
            }
            for (rel, purpose) in &plan.secrets {
                let path = data_dir.join(rel);
                let _ = std::fs::remove_file(prepared(&path));
                let wrapped = read_bounded(&path, MAX_SECRET_FILE, "wrapped secret")?;
                if wrapped.is_empty() {
                    continue;
                }
                let plain = old.unwrap(purpose, &wrapped)?;
                write_atomic_private(&prepared(&path), &new.wrap(purpose, &plain)?)?;
                fault.step();
                files.push(rel.clone());
            }
            // 2. commit.
            let m = Marker {
                version: 1,
                from: old.id().to_string(),
                to: new.id().to_string(),
                files,
            };
            let bytes = serde_json::to_vec_pretty(&m)
                .map_err(|e| StoreError::Task(format!("rewrap marker: {e}")))?;
            write_atomic_private(&main.join(MARKER), &bytes)?;
            fault.step();
            (m, false)
        }
    };
    // 3. switch.
    for rel in &marker.files {
        let path = data_dir.join(rel);
        let from = prepared(&path);
        match std::fs::rename(&from, &path) {
            Ok(()) => {}
            // Already switched by the interrupted run.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(StoreError::io(&from, e)),
        }
        sync_dir(path.parent().unwrap_or(data_dir))?;
        fault.step();
    }
    // 4. done.
    let mp = main.join(MARKER);
    std::fs::remove_file(&mp).map_err(|e| StoreError::io(&mp, e))?;
    sync_dir(&main)?;
    Ok(RewrapReport {
        from: marker.from,
        to: marker.to,
        files: marker.files.len(),
        resumed,
    })
}

/// Deletes `.rewrap` files a crashed prepare left (before the commit they mean nothing).
fn remove_stale(dir: &Path) -> Result<(), StoreError> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(StoreError::io(dir, e)),
    };
    for e in rd {
        let e = e.map_err(|e| StoreError::io(dir, e))?;
        if e.file_name().to_string_lossy().ends_with(SUFFIX) {
            std::fs::remove_file(e.path()).map_err(|err| StoreError::io(e.path(), err))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::KeyRing;
    use crate::keys::Dek;

    fn fp(d: &Dek) -> [u8; 32] {
        *d.derive(&[b"test"]).unwrap().expose()
    }

    #[test]
    fn rewrap_switches_every_key_and_refuses_mid_way() {
        let dir = tempfile::tempdir().unwrap();
        let old = MasterKey::from_bytes([1; 32]);
        let new = MasterKey::from_bytes([2; 32]);
        let a = TenantId::new("a").unwrap();
        let b = TenantId::new("b").unwrap();
        let (ka, kb, p, sealed);
        let place = crate::keys::ValueContext {
            trace_id: b"t",
            span_id: b"s",
            place: "span:k",
        };
        {
            let ring = KeyRing::open(&dir.path().join("keys"), &old).unwrap();
            ka = fp(&ring.current_dek(&a).unwrap());
            ring.rotate(&a).unwrap();
            kb = fp(&ring.current_dek(&b).unwrap());
            p = *ring.pseudonym_key(&a).unwrap().expose();
            sealed = ring
                .sensitive_key_for_write(&a)
                .unwrap()
                .seal(&place, b"v")
                .unwrap();
        }
        let secret = old.wrap("node secret", b"s3cret").unwrap();
        std::fs::write(dir.path().join("node.wrapped"), &secret).unwrap();
        let plan = RewrapPlan {
            key_dirs: vec!["keys".into()],
            secrets: vec![("node.wrapped".into(), "node secret".into())],
        };
        let r = rewrap(dir.path(), &plan, &old, &new).unwrap();
        assert_eq!(r.files, 3);
        assert!(
            KeyRing::open(&dir.path().join("keys"), &old)
                .unwrap()
                .dek(&a, 1)
                .is_err()
        );
        let ring = KeyRing::open(&dir.path().join("keys"), &new).unwrap();
        assert_eq!(fp(&ring.dek(&a, 1).unwrap()), ka);
        assert_eq!(fp(&ring.dek(&b, 1).unwrap()), kb);
        assert_eq!(ring.current_dek(&a).unwrap().id, 2);
        assert_eq!(*ring.pseudonym_key(&a).unwrap().expose(), p);
        // The sensitive-value keys moved too (sensitive/2 sealed it).
        assert_eq!(ring.open_sensitive(&a, &place, &sealed).unwrap(), b"v");
        let wrapped = std::fs::read(dir.path().join("node.wrapped")).unwrap();
        assert_eq!(&**new.unwrap("node secret", &wrapped).unwrap(), b"s3cret");

        // A marker left by a crash after the commit point: opening is refused, a second run
        // with the new key finishes.
        std::fs::write(
            dir.path().join("keys").join(MARKER),
            serde_json::to_vec(&Marker {
                version: 1,
                from: old.id().into(),
                to: new.id().into(),
                files: vec!["keys/a.json".into()],
            })
            .unwrap(),
        )
        .unwrap();
        let err = KeyRing::open(&dir.path().join("keys"), &new).unwrap_err();
        assert!(err.to_string().contains("keys rewrap"), "{err}");
        let other = MasterKey::from_bytes([3; 32]);
        assert!(rewrap(dir.path(), &plan, &new, &other).is_err());
        let r = rewrap(dir.path(), &plan, &old, &new).unwrap();
        assert!(r.resumed);
        KeyRing::open(&dir.path().join("keys"), &new)
            .unwrap()
            .dek(&a, 2)
            .unwrap();
    }
}
