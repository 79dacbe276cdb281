//! `sentrace keys rotate | rewrap | list`: the tenants' data keys and the master key (KEK)
//! that wraps them. Rotation and rewrap change key files, so they need the data directory
//! to themselves (the server stopped); `list` reads only.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use sentrace_core::TenantId;
use sentrace_server::keys_config::{resolve_master, rewrap_plan};
use sentrace_store::KeyRing;
use sentrace_store::keys::KekSource;

use crate::DataDir;

/// Arguments of `keys rotate`.
#[derive(clap::Args, Debug)]
pub struct RotateArgs {
    #[command(flatten)]
    data: DataDir,
    /// The tenant whose data key to rotate.
    #[arg(long)]
    tenant: String,
}

/// Arguments of `keys rewrap`.
#[derive(clap::Args, Debug)]
pub struct RewrapArgs {
    #[command(flatten)]
    data: DataDir,
    /// The new master key: `file:PATH` (64 hex characters, mode 0600), `env:VAR`, or
    /// `command:PROG ARG…`. The current one comes from SENTRACE_KEK, SENTRACE_MASTER_KEY or
    /// <data-dir>/master.key. Afterwards configure the new one (`[keys] kek` or SENTRACE_KEK).
    #[arg(long, value_name = "KEK")]
    to: String,
}

/// Arguments of `keys list`.
#[derive(clap::Args, Debug)]
pub struct ListArgs {
    #[command(flatten)]
    data: DataDir,
    /// JSON instead of text.
    #[arg(long)]
    json: bool,
}

/// Takes the data directory's lock (the one a running server holds), or says to stop it.
pub(crate) fn lock_data_dir(data_dir: &Path) -> anyhow::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    let path = data_dir.join("LOCK");
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    match f.try_lock() {
        Ok(()) => Ok(f),
        Err(std::fs::TryLockError::WouldBlock) => anyhow::bail!(
            "{} is in use (a server is running on it); stop the server first",
            data_dir.display()
        ),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(e).with_context(|| format!("locking {}", path.display()))
        }
    }
}

/// Runs `keys rotate`.
pub fn rotate(a: RotateArgs) -> anyhow::Result<ExitCode> {
    let tenant = TenantId::new(&a.tenant).map_err(|e| anyhow::anyhow!("--tenant: {e}"))?;
    let _lock = lock_data_dir(&a.data.data_dir)?;
    let master = resolve_master(&a.data.data_dir, None, false)?;
    let ring = KeyRing::open(&a.data.data_dir.join("keys"), &master)?;
    if !ring.has_tenant(&tenant)? {
        anyhow::bail!("tenant {tenant} has no data keys yet (nothing stored); nothing to rotate");
    }
    let id = ring.rotate(&tenant)?;
    println!("tenant {tenant}: data key {id} is now current; older keys stay readable");
    Ok(ExitCode::SUCCESS)
}

/// Runs `keys rewrap`.
pub fn rewrap(a: RewrapArgs) -> anyhow::Result<ExitCode> {
    let _lock = lock_data_dir(&a.data.data_dir)?;
    let old = resolve_master(&a.data.data_dir, None, false)?;
    let new = sentrace_store::MasterKey::from_source(
        &KekSource::parse(&a.to).map_err(|e| anyhow::anyhow!("--to: {e}"))?,
    )?;
    let r = sentrace_store::keys::rewrap::rewrap(&a.data.data_dir, &rewrap_plan(), &old, &new)?;
    println!(
        "{} {} key files from master key {} to {}; configure the new master key now (SENTRACE_KEK or [keys] kek)",
        if r.resumed {
            "finished re-wrapping"
        } else {
            "re-wrapped"
        },
        r.files,
        r.from,
        r.to
    );
    Ok(ExitCode::SUCCESS)
}

/// Runs `keys list`.
pub fn list(a: ListArgs) -> anyhow::Result<ExitCode> {
    let master = resolve_master(&a.data.data_dir, None, false)?;
    let ring = KeyRing::open(&a.data.data_dir.join("keys"), &master)?;
    let ages = ring.key_ages()?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&ages)?);
    } else {
        for k in &ages {
            println!(
                "{}\tkey {}\t{} keys\t{} sensitive-value keys\tage {}s\tmaster key {}",
                k.tenant, k.key_id, k.keys, k.sensitive_keys, k.age_secs, k.kek
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
