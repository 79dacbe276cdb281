//! `sentrace serve`.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use sentrace_server::config::{LogConfig, LogFormat};
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
    /// OTLP/gRPC listen address (overrides `[listen] otlp_grpc`).
    #[arg(long, value_name = "ADDR")]
    otlp_grpc: Option<SocketAddr>,
    /// OTLP/HTTP listen address (overrides `[listen] otlp_http`).
    #[arg(long, value_name = "ADDR")]
    otlp_http: Option<SocketAddr>,
    /// Query API listen address (overrides `[listen] query`).
    #[arg(long, value_name = "ADDR")]
    query: Option<SocketAddr>,
}

/// Installs the log subscriber on standard error: `cfg`'s format and level (`RUST_LOG`
/// overrides the level), colours only on a terminal.
pub fn init_logging_with(cfg: &LogConfig) -> anyhow::Result<()> {
    let filter = match tracing_subscriber::EnvFilter::try_from_default_env() {
        Ok(f) => f,
        Err(_) => tracing_subscriber::EnvFilter::try_new(&cfg.level)
            .map_err(|e| anyhow::anyhow!("[log] level {:?}: {e}", cfg.level))?,
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let _ = match cfg.format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    Ok(())
}

/// [`init_logging_with`] the defaults.
pub fn init_logging() {
    let _ = init_logging_with(&LogConfig::default());
}

/// Reads the configuration file (or the defaults) and applies the listen flags.
fn load(a: &Args) -> anyhow::Result<Config> {
    let mut config = match &a.config {
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("reading config {}", p.display()))?;
            Config::from_toml(&text, &p.display().to_string())?
        }
        None => Config::default(),
    };
    if let Some(x) = a.otlp_grpc {
        config.listen.otlp_grpc = x;
    }
    if let Some(x) = a.otlp_http {
        config.listen.otlp_http = x;
    }
    if let Some(x) = a.query {
        config.listen.query = x;
    }
    config
        .validate()
        .map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))?;
    Ok(config)
}

/// Runs the server.
pub fn run(a: Args) -> anyhow::Result<ExitCode> {
    let config = load(&a)?;
    init_logging_with(&config.log)?;
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
