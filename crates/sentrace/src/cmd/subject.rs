//! `sentrace subject erase`: a data subject's erasure (GDPR Art. 17) with a signed receipt.
//! Deletes the subject's vault entries, so their reversible tokens never resolve again.
//! Keyed pseudonyms (HMAC under the tenant's pseudonym key) are not touched: they were never
//! reversible and stay unlinkable to the person without that key. See docs/keys.md.

use std::path::PathBuf;
use std::process::ExitCode;

use sentrace_core::TenantId;
use sentrace_server::seal::erasure::Target;

use crate::DataDir;

/// `sentrace subject`.
#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Delete a subject's original values from the tenant's token vault (by value, any
    /// kind, or by token); prints a signed receipt. Runs with the server stopped. On a
    /// node with a `[store] url`, give `--config` so that the statement goes into the
    /// node's log in the bucket.
    Erase(EraseArgs),
}

/// Arguments of `subject erase`.
#[derive(clap::Args, Debug)]
pub struct EraseArgs {
    /// The tenant.
    #[arg(long)]
    pub tenant: String,
    /// An original value of the subject (repeatable).
    #[arg(long)]
    pub value: Vec<String>,
    /// A token (`tok:<kind>:<id>`, repeatable).
    #[arg(long)]
    pub token: Vec<String>,
    #[command(flatten)]
    pub data: DataDir,
    /// The node name (`[seal] node`). Default: `[seal] node` of `--config`, else
    /// `sentrace`.
    #[arg(long)]
    pub node: Option<String>,
    /// The server's configuration file: with a `[store] url`, the statement is logged in
    /// the node's log in that bucket (where `verify --store` reads it). Needed on a node
    /// whose blocks and logs live in a bucket.
    #[arg(long, env = "SENTRACE_CONFIG")]
    pub config: Option<PathBuf>,
}

/// Runs `subject`.
pub fn run(c: Command) -> anyhow::Result<ExitCode> {
    match c {
        Command::Erase(a) => {
            if a.value.is_empty() && a.token.is_empty() {
                anyhow::bail!("give --value or --token");
            }
            let tenant = TenantId::new(&a.tenant).map_err(|e| anyhow::anyhow!("--tenant: {e}"))?;
            let (node, bucket) = super::tenant::erasure_node(a.config.as_deref(), a.node)?;
            super::tenant::run_erase(
                &a.data,
                &node,
                &tenant,
                Target::Subject {
                    values: a.value,
                    tokens: a.token,
                },
                bucket.as_ref(),
            )
        }
    }
}
