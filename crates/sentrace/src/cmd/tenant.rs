//! `sentrace tenant erase`: crypto-shredding a whole tenant with a signed receipt, and
//! `sentrace verify-receipt`. See docs/keys.md ("Erasure").

use std::path::PathBuf;
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
    /// signed receipt (JSON). Runs with the server stopped.
    Erase(EraseArgs),
}

/// Arguments of `tenant erase`.
#[derive(clap::Args, Debug)]
pub struct EraseArgs {
    /// The tenant.
    pub tenant: String,
    #[command(flatten)]
    pub data: DataDir,
    /// The node name (`[seal] node`).
    #[arg(long, default_value = "sentrace")]
    pub node: String,
    /// Confirm: this cannot be undone.
    #[arg(long)]
    pub yes: bool,
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
            run_erase(&a.data, &a.node, &tenant, Target::Tenant)
        }
    }
}

/// Runs an erasure and prints its receipt.
pub(crate) fn run_erase(
    data: &DataDir,
    node: &str,
    tenant: &TenantId,
    target: Target,
) -> anyhow::Result<ExitCode> {
    let master = super::verify::master_key(&data.data_dir)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let receipt = rt.block_on(erase(&data.data_dir, &master, node, tenant, target))?;
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
