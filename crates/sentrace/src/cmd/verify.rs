//! `sentrace verify`: offline verification of a data directory's transparency logs and
//! stored spans, or (with `--server`) of a live server's log through its read-only
//! endpoints (see [`super::verify_remote`]), with pinned checkpoints in a local state file;
//! and `sentrace keys show`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use sentrace_core::TenantId;
use sentrace_ledger::checkpoint::LogVerifier;
use sentrace_ledger::keys::VerifierKey;
use sentrace_ledger::verify::{FindingKind, PinState};
use sentrace_server::audit::files::{AUDIT_DIR, NODE_LOG};
use sentrace_server::audit::verify::{AuditLogReport, verify_all};
use sentrace_server::audit::{AuditFiles, LogName};
use sentrace_server::seal::audit::{AuditOptions, TenantAudit, audit_store};
use sentrace_server::witness::config::parse_witness_vkeys;
use sentrace_store::{KeyRing, MasterKey};
use std::sync::Arc;

use super::progress::Progress;
use crate::DataDir;

/// Arguments of `verify`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub(crate) data: DataDir,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    pub(crate) json: bool,
    /// The state file of pinned checkpoints (created if missing; moved forward only when
    /// everything verifies).
    #[arg(long)]
    pub(crate) state: Option<PathBuf>,
    /// Only this tenant's logs (span log and audit log; `_node` for the node's own audit
    /// log; with `--server`: the tenant the token must belong to).
    #[arg(long)]
    pub(crate) tenant: Option<String>,
    /// Trust these log keys (the vkeys `sentrace keys show` prints; repeat the option or
    /// separate them with spaces) instead of the data directory's own key (offline) or
    /// the key pinned in the state file (with `--server`).
    #[arg(long)]
    pub(crate) key: Vec<String>,
    /// The node name (`[seal] node`; default: the one of `--config`, else `sentrace`).
    #[arg(long)]
    node: Option<String>,
    /// Verify every node sharing this bucket (`s3://bucket/prefix`, the nodes' `[store]
    /// url`; credentials from the AWS environment): each node's logs against its blocks,
    /// with its keys from the bucket unwrapped by the master key. `--config` with a `[store]
    /// url` does the same; the data directory's own node is then read with its WAL.
    #[arg(long, value_name = "URL")]
    pub(crate) store: Option<String>,
    /// Verify a live server's log instead of a data directory: the query API's base URL
    /// (like https://host:16686).
    #[arg(long, env = "SENTRACE_SERVER")]
    pub(crate) server: Option<String>,
    /// With `--server`: a token with the read role (its tenant's log is verified).
    #[arg(long, env = "SENTRACE_TOKEN", hide_env_values = true)]
    pub(crate) token: Option<String>,
    /// With `--server`: the CA certificate to trust (default: <data-dir>/tls/ca.pem when
    /// it exists, else the system roots).
    #[arg(long, env = "SENTRACE_CA")]
    pub(crate) ca: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) witnesses: WitnessArgs,
    /// The server's configuration file: with `[store] url = "s3://..."`, blocks and logs
    /// are read from that bucket (credentials from the AWS environment) instead of
    /// `<data-dir>/blocks`.
    #[arg(long, env = "SENTRACE_CONFIG")]
    pub(crate) config: Option<PathBuf>,
}

/// Witness requirements shared by `verify` and `verify-proof`.
#[derive(clap::Args, Debug, Clone)]
pub struct WitnessArgs {
    /// Trust this witness: its cosigning vkeys (what `sentrace witness --show-key` prints;
    /// one witness's vkeys may be given together, separated by spaces). Repeatable.
    #[arg(long = "witness", value_name = "VKEYS")]
    witnesses: Vec<String>,
    /// How many distinct listed witnesses must have cosigned the checkpoint (default: all
    /// listed). Fewer is an `unwitnessed` failure naming the missing witnesses.
    #[arg(long)]
    quorum: Option<usize>,
}

impl WitnessArgs {
    /// The trusted witness keys and the quorum.
    pub fn policy(&self) -> anyhow::Result<(Vec<VerifierKey>, usize)> {
        let mut keys: Vec<VerifierKey> = Vec::new();
        let mut names: Vec<String> = Vec::new();
        for w in &self.witnesses {
            let ks = parse_witness_vkeys(w).map_err(|e| anyhow::anyhow!("--witness: {e}"))?;
            for k in ks {
                if !names.iter().any(|n| n == k.name().as_str()) {
                    names.push(k.name().as_str().to_owned());
                }
                keys.push(k);
            }
        }
        let quorum = self.quorum.unwrap_or(names.len());
        if quorum > names.len() {
            anyhow::bail!(
                "--quorum {quorum} but only {} distinct witnesses are listed with --witness",
                names.len()
            );
        }
        Ok((keys, quorum))
    }
}

/// Loads the master key the way the server does (environment first, then the key file).
pub fn master_key(data_dir: &Path) -> anyhow::Result<MasterKey> {
    // SENTRACE_KEK, then SENTRACE_MASTER_KEY, then <data dir>/master.key.
    sentrace_server::keys_config::resolve_master(data_dir, None, false)
}

pub(crate) fn load_pins(path: Option<&Path>) -> anyhow::Result<PinState> {
    let Some(p) = path else {
        return Ok(PinState::default());
    };
    match std::fs::read(p) {
        Ok(b) => serde_json::from_slice(&b)
            .with_context(|| format!("parsing state file {}", p.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(PinState::default()),
        Err(e) => Err(e).with_context(|| format!("reading state file {}", p.display())),
    }
}

/// Writes the state file with the workspace's one atomic write (temporary file, fsync,
/// rename, fsync of the directory).
pub(crate) fn save_pins(path: &Path, pins: &PinState) -> anyhow::Result<()> {
    sentrace_store::fsutil::write_atomic(path, &serde_json::to_vec_pretty(pins)?, 0o644)
        .with_context(|| format!("writing {}", path.display()))
}

/// Runs `verify`.
pub fn run(a: Args) -> anyhow::Result<ExitCode> {
    if let Some(server) = a.server.clone() {
        return super::verify_remote::run(&a, &server);
    }
    let master = master_key(&a.data.data_dir)?;
    let key = (!a.key.is_empty())
        .then(|| LogVerifier::parse(&a.key.join(" ")).map_err(|e| anyhow::anyhow!("--key: {e}")))
        .transpose()?;
    // `--tenant _node`: only the node's own audit log (it has no span log).
    let node_only = a.tenant.as_deref() == Some(NODE_LOG);
    let tenant = a
        .tenant
        .as_deref()
        .filter(|_| !node_only)
        .map(|t| TenantId::new(t).map_err(|e| anyhow::anyhow!("--tenant: {e}")))
        .transpose()?;
    let (witnesses, quorum) = a.witnesses.policy()?;
    let key_for_audit = key.clone();
    let mut pins = load_pins(a.state.as_deref())?;
    let bar = Progress::steps("verify", "entries");
    let mut progress =
        |t: &str, s: &'static str, d: u64, n: u64| bar.step(&format!("{t} {s}"), d, n);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let node = node_name(&a)?;
    let bucket = super::store_objects::bucket(a.config.as_deref(), a.store.as_deref())?;
    let options = AuditOptions {
        node: node.clone(),
        key,
        tenant,
        witnesses,
        quorum,
        progress: &mut progress,
    };
    let audits = if node_only {
        Vec::new()
    } else if let Some(store_cfg) = bucket {
        let shared = super::store_objects::open_bucket(&store_cfg, &a.data.data_dir, &rt)?;
        let own = a
            .data
            .data_dir
            .join("keys")
            .is_dir()
            .then_some((node.as_str(), a.data.data_dir.as_path()));
        rt.block_on(sentrace_server::seal::audit_nodes::audit_bucket(
            shared, own, &master, &mut pins, options,
        ))?
    } else {
        let objects = super::store_objects::open(a.config.as_deref(), &a.data.data_dir, &rt)?;
        rt.block_on(audit_store(
            &a.data.data_dir,
            objects.as_ref(),
            &master,
            &mut pins,
            options,
        ))?
    };
    let audit_logs = verify_audit_logs(&a, &node, &master, key_for_audit.as_ref(), &mut pins)?;
    let ok = audits.iter().all(|t| t.report.ok) && audit_logs.iter().all(|r| r.ok);
    if let Some(p) = &a.state {
        save_pins(p, &pins)?;
    }
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "ok": ok,
                "logs": audits,
                "audit_logs": audit_logs,
            }))?
        );
    } else {
        print_human(&audits);
        print_audit_logs(&audit_logs);
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

pub(crate) fn print_human(audits: &[TenantAudit]) {
    if audits.is_empty() {
        println!("no transparency logs found");
    }
    for t in audits {
        let r = &t.report;
        println!(
            "tenant {}: {} (checkpoint size {}, {} entries, {} batches, {} spans checked, {} erased)",
            t.tenant,
            if r.ok { "OK" } else { "FAILED" },
            r.checkpoint_size.map_or("-".into(), |s| s.to_string()),
            r.entries_checked,
            r.batches_checked,
            r.spans_checked,
            r.batches_erased,
        );
        if !r.witnesses.is_empty() {
            println!("  cosigned by witnesses: {}", r.witnesses.join(", "));
        }
        for f in &r.findings {
            let mut at = Vec::new();
            if let Some(b) = &f.block {
                at.push(format!("block {b}"));
            }
            if let Some(b) = &f.other_block {
                at.push(format!("other block {b}"));
            }
            if let Some(i) = f.index {
                at.push(format!("batch {i}"));
            }
            if let Some(s) = f.span {
                at.push(format!("span {s}"));
            }
            if let Some(p) = &f.path {
                at.push(format!("path {p}"));
            }
            let kind = serde_json::to_value(f.kind)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            let marker = if f.kind == FindingKind::Erased {
                "note"
            } else {
                "FAIL"
            };
            println!("  {marker} {kind}: {} [{}]", f.detail, at.join(", "));
        }
        if t.unsealed_spans > 0 {
            println!(
                "  note: {} stored spans carry no seal (stored with [seal] enabled = false)",
                t.unsealed_spans
            );
        }
    }
}

/// The node name: `--node`, else `[seal] node` of `--config`, else `sentrace`.
pub(crate) fn node_name(a: &Args) -> anyhow::Result<String> {
    if let Some(n) = &a.node {
        return Ok(n.clone());
    }
    Ok(match super::store_objects::config(a.config.as_deref())? {
        Some(cfg) => cfg.seal.node,
        None => "sentrace".into(),
    })
}

/// Verifies the read-audit logs (every one, or `--tenant`'s).
fn verify_audit_logs(
    a: &Args,
    node: &str,
    master: &MasterKey,
    key: Option<&LogVerifier>,
    pins: &mut PinState,
) -> anyhow::Result<Vec<AuditLogReport>> {
    if !a.data.data_dir.join(AUDIT_DIR).exists() {
        return Ok(Vec::new());
    }
    let key = match key {
        Some(k) => k.clone(),
        None => sentrace_server::seal::keys::verifier(&a.data.data_dir, master)?,
    };
    let keys = Arc::new(KeyRing::open(&a.data.data_dir.join("keys"), master)?);
    let files = AuditFiles::open(&a.data.data_dir, keys, master)?;
    let only = a
        .tenant
        .as_deref()
        .map(|t| LogName::parse(t).map_err(|e| anyhow::anyhow!("--tenant: {e}")))
        .transpose()?;
    Ok(verify_all(&files, node, &key, only.as_ref(), pins)?)
}

pub(crate) fn print_audit_logs(reports: &[AuditLogReport]) {
    for r in reports {
        println!(
            "audit log {}: {} (checkpoint size {}, {} records, {} read, {} not yet signed, {} erased)",
            r.log,
            if r.ok { "OK" } else { "FAILED" },
            r.checkpoint_size.map_or("-".into(), |s| s.to_string()),
            r.records,
            r.records_read,
            r.records_unsigned,
            r.records_erased,
        );
        for f in &r.findings {
            let kind = serde_json::to_value(f.kind)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            let marker = if f.kind == FindingKind::Erased {
                "note"
            } else {
                "FAIL"
            };
            let at = f.index.map_or(String::new(), |i| format!(" [record {i}]"));
            println!("  {marker} {kind}: {}{at}", f.detail);
        }
        if r.findings_omitted > 0 {
            println!("  ... and {} more findings", r.findings_omitted);
        }
    }
}

/// `sentrace keys`.
#[derive(clap::Subcommand, Debug)]
pub enum KeysCommand {
    /// Print the node's log public keys (vkeys: Ed25519 and ML-DSA-44), for `--key`.
    Show(DataDir),
    /// Make a signing key pair for a source (edge agent or client), write the secret key to
    /// --out (0600) and register the public keys for --tenant in
    /// <data-dir>/sources/<tenant>.toml (the running server picks it up within a second).
    SourceNew(crate::cmd::sources::SourceNewArgs),
    /// Start a new data key for a tenant (new data uses it; older data stays readable).
    Rotate(crate::cmd::keys::RotateArgs),
    /// Re-wrap every data key and the log key under a new master key, crash-safe; data is
    /// not touched (docs/keys.md).
    Rewrap(crate::cmd::keys::RewrapArgs),
    /// Each tenant's current data key, its age and its master key.
    List(crate::cmd::keys::ListArgs),
}

/// Runs `keys`.
pub fn run_keys(c: KeysCommand) -> anyhow::Result<ExitCode> {
    match c {
        KeysCommand::Show(d) => {
            let master = master_key(&d.data_dir)?;
            let v = sentrace_server::seal::keys::verifier(&d.data_dir, &master)?;
            println!("{}", v.to_vkeys());
            Ok(ExitCode::SUCCESS)
        }
        KeysCommand::SourceNew(a) => crate::cmd::sources::source_new(a),
        KeysCommand::Rotate(a) => crate::cmd::keys::rotate(a),
        KeysCommand::Rewrap(a) => crate::cmd::keys::rewrap(a),
        KeysCommand::List(a) => crate::cmd::keys::list(a),
    }
}
