//! `sentrace keys source-new`: a signing key pair for a source, registered for one tenant.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use sentrace_core::TenantId;
use sentrace_ledger::manifest::SourceSigner;
use sentrace_ledger::note::KeyName;

use crate::DataDir;

/// Arguments of `keys source-new`.
#[derive(clap::Args, Debug)]
pub struct SourceNewArgs {
    #[command(flatten)]
    data: DataDir,
    /// The tenant the source sends for (the tenant of the token it uses).
    #[arg(long)]
    tenant: String,
    /// The source's name: what it sends in `sentrace-source` (printable, no spaces, no '+').
    #[arg(long)]
    source: String,
    /// Where to write the secret key (mode 0600; an existing file is never overwritten).
    #[arg(long)]
    out: PathBuf,
}

/// Makes the key pair, writes the secret, registers the public keys, prints them.
pub fn source_new(a: SourceNewArgs) -> anyhow::Result<ExitCode> {
    let tenant = TenantId::new(&a.tenant).map_err(|e| anyhow::anyhow!("--tenant: {e}"))?;
    let name = KeyName::new(&a.source).map_err(|e| anyhow::anyhow!("--source: {e}"))?;
    let key = SourceSigner::generate(&name).map_err(|e| anyhow::anyhow!("making the key: {e}"))?;
    // Registering first would leave a registered key nobody holds if writing failed, so
    // write the secret first (refusing to overwrite), then register.
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&a.out)
        .with_context(|| format!("creating {} (it must not exist yet)", a.out.display()))?;
    f.write_all(key.to_secret_string().as_bytes())?;
    f.sync_all()?;
    let vkeys = key.verifier();
    match sentrace_server::sources::registry::add(&a.data.data_dir, &tenant, name.as_str(), &vkeys)
    {
        Ok(path) => {
            eprintln!(
                "secret key written to {} (keep it with the source only); registered for tenant {tenant} in {}",
                a.out.display(),
                path.display()
            );
            println!("{}", vkeys.to_vkeys());
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            let _ = std::fs::remove_file(&a.out);
            Err(e.context("registering the source"))
        }
    }
}

/// Reads a secret key file written by `keys source-new`.
pub fn load_signer(path: &std::path::Path) -> anyhow::Result<SourceSigner> {
    let meta = std::fs::metadata(path).with_context(|| format!("reading {}", path.display()))?;
    if meta.len() > 64 * 1024 {
        anyhow::bail!("{}: too large for a key file", path.display());
    }
    let text = zeroize::Zeroizing::new(
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?,
    );
    SourceSigner::from_secret_string(&text)
        .map_err(|e| anyhow::anyhow!("{}: not a source key: {e}", path.display()))
}
