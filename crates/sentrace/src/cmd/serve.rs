//! `sentrace serve`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use sentrace_server::{Config, ServeOptions};

use crate::DataDir;

/// Arguments of `serve`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    data: DataDir,
    /// A TOML configuration file (see `sentrace config default`).
    #[arg(long, env = "SENTRACE_CONFIG")]
    config: Option<PathBuf>,
    /// Serve without TLS. For local experiments only; refused on non-loopback addresses.
    #[arg(long)]
    insecure_plaintext: bool,
}

/// Installs the log subscriber (`RUST_LOG` overrides the `info` default).
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Runs the server.
pub fn run(a: Args) -> anyhow::Result<ExitCode> {
    init_logging();
    let config = match &a.config {
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("reading config {}", p.display()))?;
            Config::from_toml(&text, &p.display().to_string())?
        }
        None => Config::default(),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(sentrace_server::serve(ServeOptions {
        data_dir: a.data.data_dir,
        config,
        insecure_plaintext: a.insecure_plaintext,
    }))?;
    Ok(ExitCode::SUCCESS)
}
