//! Per-tenant state files `<dir>/<tenant><suffix>` (replay snapshots, exposure counts,
//! integrity results), read back at start: one reader, bounded in size, that names the
//! file in every error.

use std::path::{Path, PathBuf};

use anyhow::Context;
use sentrace_core::TenantId;

/// Reads every `<dir>/<tenant><suffix>` (hidden temporary files skipped), each at most
/// `max_bytes`. A missing directory is no file; a name that is not a tenant id or a file
/// over the bound is an error naming the file.
pub fn read_all(
    dir: &Path,
    suffix: &str,
    max_bytes: u64,
) -> anyhow::Result<Vec<(TenantId, PathBuf, Vec<u8>)>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", dir.display())),
    };
    let mut out = Vec::new();
    for e in entries {
        let p = e?.path();
        let Some(name) = p.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if name.starts_with('.') {
            continue;
        }
        let Some(tenant) = name.strip_suffix(suffix) else {
            continue;
        };
        let tenant = TenantId::new(tenant)
            .map_err(|e| anyhow::anyhow!("{}: not a tenant's file: {e}", p.display()))?;
        let len = std::fs::metadata(&p)?.len();
        if len > max_bytes {
            anyhow::bail!("{}: {len} bytes; the limit is {max_bytes}", p.display());
        }
        let bytes = std::fs::read(&p).with_context(|| format!("reading {}", p.display()))?;
        out.push((tenant, p, bytes));
    }
    Ok(out)
}
