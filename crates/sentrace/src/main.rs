//! The `sentrace` command.
#![forbid(unsafe_code)]

mod cmd;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Sentrace: a security-first distributed tracing backend.
#[derive(Parser, Debug)]
#[command(
    name = "sentrace",
    version,
    about,
    long_about = None,
    after_help = "Exit status: 0 success; 1 a negative result (verification failed, a policy \
                  test denied, findings at or above the threshold); 2 a usage error; 3 a \
                  runtime failure (unreadable file, server unreachable, refused credential)."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Options every data-directory command shares.
#[derive(clap::Args, Debug, Clone)]
pub struct DataDir {
    /// The data directory.
    #[arg(long, env = "SENTRACE_DATA_DIR", default_value = "./sentrace-data")]
    pub data_dir: PathBuf,
}

impl DataDir {
    /// The directory, which must already exist (for commands that read what a server
    /// wrote: a wrong path is an error, not an empty answer).
    pub fn existing(&self) -> anyhow::Result<&std::path::Path> {
        if self.data_dir.is_dir() {
            Ok(&self.data_dir)
        } else {
            anyhow::bail!(
                "no data directory at {}: give the server's with --data-dir or SENTRACE_DATA_DIR",
                self.data_dir.display()
            )
        }
    }
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the server: OTLP in on 4317 (gRPC) and 4318 (HTTP), query API on 16686.
    Serve(cmd::serve::Args),
    /// Manage API tokens in the data directory (works while the server runs).
    #[command(subcommand)]
    Tokens(cmd::tokens::Command),
    /// Configuration helpers.
    #[command(subcommand)]
    Config(cmd::config::Command),
    /// Query a running server over HTTPS.
    #[command(subcommand)]
    Query(cmd::query::Command),
    /// Send load to a running server and report spans/s.
    Loadgen(cmd::loadgen::Args),
    /// Minimize OTLP/JSON from stdin to stdout (one request, or JSON lines).
    Redact(cmd::redact::RedactArgs),
    /// Scan OTLP/JSON from stdin for sensitive data; OCSF findings (class 2006) as JSON lines.
    Scan(cmd::redact::ScanArgs),
    /// Verify the transparency logs, stored spans and audit logs of a data directory
    /// (offline).
    Verify(cmd::verify::Args),
    /// Read the read-audit logs of a data directory: who read which traces, failed
    /// authentications, admin actions (text, JSON lines, or OCSF API Activity 6003).
    Audit(cmd::audit::Args),
    /// Write an offline-verifiable proof bundle of a trace (from a data directory).
    Proof(cmd::proof::ProofArgs),
    /// Verify a proof bundle with nothing but the log's public keys.
    VerifyProof(cmd::proof::VerifyProofArgs),
    /// The node's log keys; source signing keys.
    #[command(subcommand)]
    Keys(cmd::verify::KeysCommand),
    /// Detect attacks in OTLP/JSON from stdin; OCSF findings (class 2004) as JSON lines.
    Detect(cmd::detect::Args),
    /// Run a C2SP tlog-witness: cosign the checkpoints of the logs it follows, refusing split
    /// views (`POST /add-checkpoint` over HTTPS).
    Witness(cmd::witness::Args),
    /// List or undo automated response actions in the data directory (works while the
    /// server runs).
    #[command(subcommand)]
    Response(cmd::response::Command),
    /// Authorization policies (Cedar): test a decision, check, show the built-ins.
    #[command(subcommand)]
    Policy(cmd::policy::Command),
    /// Tenant erasure (crypto-shredding) with a signed receipt.
    #[command(subcommand)]
    Tenant(cmd::tenant::Command),
    /// A data subject's erasure from the token vault, with a signed receipt.
    #[command(subcommand)]
    Subject(cmd::subject::Command),
    /// Verify an erasure receipt with the log's public keys.
    VerifyReceipt(cmd::tenant::VerifyReceiptArgs),
    /// Export a tenant's stored spans, decrypted, as plain Parquet (DuckDB, DataFusion);
    /// runs with the server stopped and is recorded in the tenant's audit log.
    Export(cmd::export::Args),
}

/// mimalloc instead of the system allocator: decoding and minimizing a request makes and
/// frees several small strings per attribute, and glibc's malloc and free took about 30% of
/// the ingest profile (see BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Exit status of a runtime failure (2 is clap's usage error, 1 a negative result).
const EXIT_FAILURE: u8 = 3;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Key commands may run a master key program (docs/keys.md): one that exits without
    // reading its request must be an error naming it, not a silent death by SIGPIPE.
    if !matches!(
        cli.command,
        Command::Serve(_)
            | Command::Witness(_)
            | Command::Keys(_)
            | Command::Tenant(_)
            | Command::Subject(_)
            | Command::Export(_)
    ) {
        // A client command whose reader went away (`| head`) ends quietly, as cat does;
        // the servers keep ignoring SIGPIPE so a dropped connection is an error, not death.
        sigpipe::reset();
    }
    let result = match cli.command {
        Command::Serve(a) => cmd::serve::run(a),
        Command::Tokens(c) => cmd::tokens::run(c),
        Command::Config(c) => cmd::config::run(c),
        Command::Query(c) => cmd::query::run(c),
        Command::Loadgen(a) => cmd::loadgen::run(a),
        Command::Redact(a) => cmd::redact::run_redact(a),
        Command::Scan(a) => cmd::redact::run_scan(a),
        Command::Verify(a) => cmd::verify::run(a),
        Command::Audit(a) => cmd::audit::run(a),
        Command::Keys(c) => cmd::verify::run_keys(c),
        Command::Detect(a) => cmd::detect::run(a),
        Command::Response(c) => cmd::response::run(c),
        Command::Witness(a) => cmd::witness::run(a),
        Command::Proof(a) => cmd::proof::run_proof(a),
        Command::VerifyProof(a) => cmd::proof::run_verify_proof(a),
        Command::Policy(c) => cmd::policy::run(c),
        Command::Tenant(c) => cmd::tenant::run(c),
        Command::Export(a) => cmd::export::run(a),
        Command::Subject(c) => cmd::subject::run(c),
        Command::VerifyReceipt(a) => cmd::tenant::verify_receipt(a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("sentrace: error: {}", one_line(&e));
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

/// An error and its causes on one line, each cause once: a context that already quotes its
/// cause's text (an OS error, say) does not repeat it.
fn one_line(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if text.is_empty() || out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}
