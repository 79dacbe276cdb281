//! `sentrace tenant erase`: crypto-shredding a whole tenant with a signed receipt, and
//! `sentrace verify-receipt`. See docs/keys.md ("Erasure").

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use sentrace_core::TenantId;
use sentrace_ledger::checkpoint::LogVerifier;
use sentrace_server::seal::erasure::{Receipt, Target, erase};

use crate::DataDir;

/// `sentrace tenant`.
#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Destroy a tenant's data keys (and with them its vault key): all of its stored data
    /// becomes unreadable at once. Recorded in the tenant's transparency log; prints a
    /// signed receipt (JSON). Runs with the server stopped. With `--config` naming a
    /// `[store] url`, the statement goes into the node's log in the bucket, and this
    /// node's key file and shared snapshots of the tenant are deleted from the bucket
    /// (else the node deletes them when it next starts).
    Erase(EraseArgs),
}

/// Arguments of `tenant erase`.
#[derive(clap::Args, Debug)]
pub struct EraseArgs {
    /// The tenant.
    pub tenant: String,
    #[command(flatten)]
    pub data: DataDir,
    /// The node name (`[seal] node`). Default: `[seal] node` of `--config`, else
    /// `sentrace`.
    #[arg(long)]
    pub node: Option<String>,
    /// Confirm: this cannot be undone.
    #[arg(long)]
    pub yes: bool,
    /// The server's configuration file: with a `[store] url`, the statement is logged in
    /// the node's log in that bucket and the node's objects of the tenant there (its key
    /// file and `_shared` snapshots) are deleted too.
    #[arg(long, env = "SENTRACE_CONFIG")]
    pub config: Option<PathBuf>,
}

/// Arguments of `verify-receipt`.
#[derive(clap::Args, Debug)]
pub struct VerifyReceiptArgs {
    /// The receipt file (`-` for standard input).
    pub receipt: PathBuf,
    /// The log keys to trust (the vkeys `sentrace keys show` prints).
    #[arg(long)]
    pub key: Vec<String>,
}

/// Runs `tenant`.
pub fn run(c: Command) -> anyhow::Result<ExitCode> {
    match c {
        Command::Erase(a) => {
            if !a.yes {
                anyhow::bail!(
                    "erasing tenant {} destroys its data for good; add --yes to confirm",
                    a.tenant
                );
            }
            let tenant = TenantId::new(&a.tenant).map_err(|e| anyhow::anyhow!("tenant: {e}"))?;
            let (node, bucket) = erasure_node(a.config.as_deref(), a.node)?;
            let code = run_erase(&a.data, &node, &tenant, Target::Tenant, bucket.as_ref())?;
            if let Some(store) = bucket {
                remove_from_bucket(&store, &a.data.data_dir, &node, &tenant)?;
            }
            Ok(code)
        }
    }
}

/// Deletes the node's key file and shared snapshots of the erased tenant from the bucket.
/// A failure is reported with what still holds: the local erasure is done, and the node
/// deletes them when it next starts.
fn remove_from_bucket(
    store: &sentrace_store::StoreConfig,
    data_dir: &std::path::Path,
    node: &str,
    tenant: &TenantId,
) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let url = store.url.clone().unwrap_or_default();
    let removed = super::store_objects::open_bucket(store, data_dir, &rt).and_then(|objects| {
        rt.block_on(sentrace_store::shared_state::remove_erased_tenant(
            objects.as_ref(),
            node,
            tenant,
        ))
        .map_err(anyhow::Error::from)
    });
    match removed {
        Ok(paths) => {
            for p in paths {
                eprintln!("deleted {url}/{p} (absent objects included)");
            }
            Ok(())
        }
        Err(e) => Err(e.context(format!(
            "tenant {tenant} is erased on this node (receipt above), but deleting node {node}'s \
             key file and shared snapshots of it from {url} failed; run the command again, or \
             start the node: it deletes them at start"
        ))),
    }
}

/// The node an offline erasure runs as, from the server's configuration `config` (the one
/// `tenant erase` and `subject erase` take): its name (`node`, else `[seal] node` of
/// `config`, else `sentrace`) and its bucket (`[store] url` of `config`, `None` for a node
/// on its data directory). Checked before anything is destroyed: a bad `[store]` is
/// refused up front.
pub(crate) fn erasure_node(
    config: Option<&Path>,
    node: Option<String>,
) -> anyhow::Result<(String, Option<sentrace_store::StoreConfig>)> {
    let node = match node {
        Some(n) => n,
        None => super::store_objects::config(config)?
            .map(|c| c.seal.node)
            .unwrap_or_else(|| "sentrace".into()),
    };
    let bucket = super::store_objects::bucket(config, None)?;
    Ok((node, bucket))
}

/// Runs an erasure and prints its receipt. With `bucket` (the node's `[store]` with a
/// `url`) the store opens as the server's does, so the statement goes into the node's log
/// in the bucket, where `verify --store` reads it.
pub(crate) fn run_erase(
    data: &DataDir,
    node: &str,
    tenant: &TenantId,
    target: Target,
    bucket: Option<&sentrace_store::StoreConfig>,
) -> anyhow::Result<ExitCode> {
    let master = super::verify::master_key(&data.data_dir)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let store = bucket.cloned().unwrap_or_default();
    let receipt = rt.block_on(erase(&data.data_dir, &master, node, tenant, target, store))?;
    println!("{}", serde_json::to_string_pretty(&receipt)?);
    Ok(ExitCode::SUCCESS)
}

/// Runs `verify-receipt`.
pub fn verify_receipt(a: VerifyReceiptArgs) -> anyhow::Result<ExitCode> {
    if a.key.is_empty() {
        anyhow::bail!(
            "--key is required: the log's vkeys (`sentrace keys show`), not the ones inside the receipt"
        );
    }
    let key = LogVerifier::parse(&a.key.join(" ")).map_err(|e| anyhow::anyhow!("--key: {e}"))?;
    let bytes = if a.receipt.as_os_str() == "-" {
        let mut b = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin().lock().take(1 << 20), &mut b)?;
        b
    } else {
        sentrace_store::fsutil::read_bounded(&a.receipt, 1 << 20, "receipt")?
    };
    let receipt: Receipt = serde_json::from_slice(&bytes)
        .with_context(|| format!("{} is not an erasure receipt", a.receipt.display()))?;
    match receipt.verify(&key) {
        Ok(()) => {
            println!(
                "receipt OK: {} of tenant {} at {} (log {} entry {})",
                receipt.statement.kind,
                receipt.statement.tenant,
                receipt.statement.erased_at,
                receipt.log.origin,
                receipt.log.index
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            println!("receipt FAILED: {e:#}");
            Ok(ExitCode::from(1))
        }
    }
}

use std::io::Read as _;
