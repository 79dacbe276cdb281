//! `sentrace witness`: a C2SP tlog-witness server (see `sentrace_server::witness`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use sentrace_server::witness::config::{WitnessFileConfig, WitnessedLog};
use sentrace_server::witness::server::{self, WitnessOptions};

/// Arguments of `witness`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The state directory: cosigning keys, per-log state and TLS material (made on first
    /// start).
    #[arg(long)]
    state: PathBuf,
    /// Where to listen (HTTPS, TLS 1.3).
    #[arg(long, default_value = "127.0.0.1:7380")]
    listen: SocketAddr,
    /// The cosigning key file (default `<state>/witness.key`, made on first start, mode 0600).
    #[arg(long)]
    key: Option<PathBuf>,
    /// The witness's name, given to new keys (checked against existing ones). A URL-like
    /// name without scheme is conventional.
    #[arg(long)]
    name: Option<String>,
    /// A log to cosign: `ORIGIN=VKEYS` (the log's Ed25519 and ML-DSA-44 vkeys, space
    /// separated, as `sentrace keys show` prints them). Repeatable.
    #[arg(long = "log", value_name = "ORIGIN=VKEYS")]
    logs: Vec<String>,
    /// A TOML file: `name` and `[[log]]` entries (`origin`, `vkey`, `require`).
    #[arg(long)]
    config: Option<PathBuf>,
    /// A PEM certificate chain to serve instead of the self-made one (needs --tls-key).
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The private key for --tls-cert.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Print the witness's vkeys (making its keys on first use) and exit.
    #[arg(long)]
    show_key: bool,
}

/// Runs `witness`.
pub fn run(a: Args) -> anyhow::Result<ExitCode> {
    super::serve::init_logging();
    let config = match &a.config {
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("reading witness config {}", p.display()))?;
            toml::from_str::<WitnessFileConfig>(&text)
                .map_err(|e| anyhow::anyhow!("{}: {}", p.display(), e.message()))?
        }
        None => WitnessFileConfig::default(),
    };
    let logs = a
        .logs
        .iter()
        .map(|s| WitnessedLog::from_arg(s).map_err(|e| anyhow::anyhow!("{e}")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let opts = WitnessOptions {
        state_dir: a.state,
        key_file: a.key,
        name: a.name,
        listen: a.listen,
        config,
        logs,
        tls: a.tls_cert.zip(a.tls_key),
    };
    if a.show_key {
        print!("{}", server::show_key(&opts)?);
        return Ok(ExitCode::SUCCESS);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(server::run(opts))?;
    Ok(ExitCode::SUCCESS)
}
