//! `sentrace proof TRACE_ID` and `sentrace verify-proof FILE --key VKEYS`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use sentrace_core::{TenantId, TraceId};
use sentrace_ledger::bundle::verify_bundle_with_policy;
use sentrace_ledger::checkpoint::{CheckpointPolicy, LogVerifier, Require};

use crate::DataDir;

/// Arguments of `proof`.
#[derive(clap::Args, Debug)]
pub struct ProofArgs {
    /// The trace id (32 hex digits).
    trace_id: String,
    #[command(flatten)]
    data: DataDir,
    /// The tenant.
    #[arg(long, default_value = "default")]
    tenant: String,
    /// The node name (`[seal] node`).
    #[arg(long, default_value = "sentrace")]
    node: String,
    /// Where to write the bundle.
    #[arg(short = 'o', long)]
    output: PathBuf,
    /// The server's configuration file (its `[store] url` bucket holds the blocks and log).
    #[arg(long, env = "SENTRACE_CONFIG")]
    config: Option<PathBuf>,
}

/// Runs `proof`.
pub fn run_proof(a: ProofArgs) -> anyhow::Result<ExitCode> {
    let master = super::verify::master_key(&a.data.data_dir)?;
    let trace_id = TraceId::from_hex(&a.trace_id).map_err(|e| anyhow::anyhow!("trace id: {e}"))?;
    let tenant = TenantId::new(&a.tenant).map_err(|e| anyhow::anyhow!("--tenant: {e}"))?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let objects = super::store_objects::open(a.config.as_deref(), &a.data.data_dir, &rt)?;
    let bundle = rt.block_on(sentrace_server::seal::proof::build_proof_from(
        &a.data.data_dir,
        objects.as_ref(),
        &master,
        &a.node,
        &tenant,
        trace_id,
    ))?;
    std::fs::write(&a.output, bundle).with_context(|| format!("writing {}", a.output.display()))?;
    eprintln!("proof bundle written to {}", a.output.display());
    Ok(ExitCode::SUCCESS)
}

/// Arguments of `verify-proof`.
#[derive(clap::Args, Debug)]
pub struct VerifyProofArgs {
    /// The bundle `sentrace proof` wrote.
    file: PathBuf,
    /// The log's public keys (`sentrace keys show`): both vkeys, space-separated.
    #[arg(long)]
    key: String,
    /// Which log signatures must verify: both, ed25519 or mldsa.
    #[arg(long, default_value = "both")]
    require: String,
    #[command(flatten)]
    witnesses: super::verify::WitnessArgs,
}

/// Runs `verify-proof`: exit 0 if the bundle verifies, 1 if not.
pub fn run_verify_proof(a: VerifyProofArgs) -> anyhow::Result<ExitCode> {
    let key = LogVerifier::parse(&a.key).map_err(|e| anyhow::anyhow!("--key: {e}"))?;
    let bytes = std::fs::read(&a.file).with_context(|| format!("reading {}", a.file.display()))?;
    let mut policy = CheckpointPolicy::new(key);
    policy.require = match a.require.as_str() {
        "both" => Require::Both,
        "ed25519" => Require::Ed25519,
        "mldsa" => Require::MlDsa,
        other => anyhow::bail!("--require {other:?}: expected both, ed25519 or mldsa"),
    };
    (policy.witnesses, policy.quorum) = a.witnesses.policy()?;
    match verify_bundle_with_policy(&bytes, &policy) {
        Ok(s) => {
            let spans: usize = s.entries.iter().map(|(_, p)| p.len()).sum();
            println!(
                "OK: {spans} spans in {} batches are in log {} at size {}",
                s.entries.len(),
                s.origin,
                s.size
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            println!("FAILED: {e}");
            Ok(ExitCode::from(1))
        }
    }
}
