//! First start: the data directory, the local PKI, the master key and the admin token.
//!
//! The admin token is issued last, once the whole configuration was checked and every
//! listener is bound, so a start that fails never consumes it. It is shown on a terminal
//! only; a service manager's captured stdout gets the path of a 0600 file instead.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::Context;
use sentrace_core::{Role, TenantId};
use sentrace_store::MasterKey;

use crate::auth::{load_tokens, now_unix, save_tokens, tokens_path};
use crate::config::Config;
use crate::tls::{TlsPaths, default_sans, ensure_local_pki};

/// The environment variable that may hold the master key (64 hex characters) instead of
/// the key file.
pub const MASTER_KEY_ENV: &str = "SENTRACE_MASTER_KEY";

/// The tenant of the first admin token.
pub const DEFAULT_TENANT: &str = "default";

/// What the first start made, to tell the operator.
#[derive(Debug)]
pub struct Bootstrap {
    /// The CA certificate clients must trust (None when the operator brought a certificate).
    pub ca_cert: Option<PathBuf>,
    /// Whether the PKI was made now.
    pub created_pki: bool,
    /// The certificate and key to serve.
    pub cert: PathBuf,
    /// The key for `cert`.
    pub key: PathBuf,
    /// The master key.
    pub master: MasterKey,
}

/// The data directory when none is given (`--data-dir`, `SENTRACE_DATA_DIR`).
pub const DEFAULT_DATA_DIR: &str = "./sentrace-data";

/// `text` quoted for a POSIX shell when it needs quoting.
fn shell_word(text: &str) -> String {
    if !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-+:@%,".contains(&b))
    {
        text.to_string()
    } else {
        format!("'{}'", text.replace('\'', "'\\''"))
    }
}

/// Path of the master key file.
pub fn master_key_path(data_dir: &Path) -> PathBuf {
    data_dir.join("master.key")
}

/// Makes what is missing. Idempotent: a second start changes nothing.
pub fn ensure(data_dir: &Path, cfg: &Config) -> anyhow::Result<Bootstrap> {
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("creating data directory {}", data_dir.display()))?;
    std::fs::set_permissions(data_dir, std::fs::Permissions::from_mode(0o700))
        .with_context(|| format!("restricting {}", data_dir.display()))?;

    let (ca_cert, created_pki, cert, key) = match (&cfg.tls.cert, &cfg.tls.key) {
        (Some(c), Some(k)) => (None, false, c.clone(), k.clone()),
        _ => {
            let paths = TlsPaths::under(data_dir);
            let mut sans = default_sans();
            sans.extend(cfg.tls.subject_alt_names.iter().cloned());
            let created = ensure_local_pki(&paths, &sans)?;
            (
                Some(paths.ca_cert.clone()),
                created,
                paths.server_cert,
                paths.server_key,
            )
        }
    };

    let master = crate::keys_config::resolve_master(data_dir, Some(&cfg.keys), true)?;

    Ok(Bootstrap {
        ca_cert,
        created_pki,
        cert,
        key,
        master,
    })
}

/// The file the first-start admin token goes to when standard output is not a terminal.
pub fn admin_token_path(data_dir: &Path) -> PathBuf {
    data_dir.join("admin-token")
}

/// Where the first-start admin token went.
#[derive(Debug)]
pub enum AdminToken {
    /// To the terminal, in the banner.
    Shown(String),
    /// To this file (mode 0600).
    File(PathBuf),
}

/// Issues the admin token of tenant [`DEFAULT_TENANT`] when the data directory has no token
/// at all, and delivers it: in the banner when `terminal`, else into
/// [`admin_token_path`] (mode 0600) whose path is logged.
pub fn first_admin_token(data_dir: &Path, terminal: bool) -> anyhow::Result<Option<AdminToken>> {
    let tpath = tokens_path(data_dir);
    let mut set = load_tokens(&tpath)?;
    if !set.tokens.is_empty() {
        return Ok(None);
    }
    let tenant = TenantId::new(DEFAULT_TENANT)?;
    let issued = set.issue(tenant, Role::Admin, now_unix(), None, "first-start admin");
    if terminal {
        save_tokens(&tpath, &set)?;
        return Ok(Some(AdminToken::Shown(issued.token)));
    }
    // The file first: a crash in between leaves a token file nobody can use rather than a
    // stored token nobody has.
    let file = admin_token_path(data_dir);
    sentrace_store::fsutil::write_atomic_private(&file, format!("{}\n", issued.token).as_bytes())?;
    save_tokens(&tpath, &set)?;
    tracing::info!(path = %file.display(), "first-start admin token written (mode 0600); read it, then delete the file");
    Ok(Some(AdminToken::File(file)))
}

/// The first-start banner, in the spirit of Elasticsearch 8's. Its commands work as
/// printed: they name `data_dir` unless it is the default.
pub fn banner(
    b: &Bootstrap,
    admin: Option<&AdminToken>,
    cfg: &Config,
    data_dir: &Path,
    plaintext: bool,
) -> String {
    let dir_flag = if data_dir == Path::new(DEFAULT_DATA_DIR) {
        String::new()
    } else {
        format!(
            " --data-dir {}",
            shell_word(&data_dir.display().to_string())
        )
    };
    let mut out = String::new();
    out.push_str("\n━━ Sentrace: security is on ━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━\n");
    if let Some(ca) = &b.ca_cert {
        out.push_str(&format!(
            "  CA certificate (clients must trust it):\n    {}\n",
            ca.display()
        ));
    }
    match admin {
        Some(AdminToken::Shown(t)) => out.push_str(&format!(
            "  Admin token for tenant \"{DEFAULT_TENANT}\" (shown once; only its hash is stored):\n    {t}\n"
        )),
        Some(AdminToken::File(f)) => out.push_str(&format!(
            "  Admin token for tenant \"{DEFAULT_TENANT}\" (only its hash is stored) written to\n    {}\n  (mode 0600: read it, then delete the file)\n",
            f.display()
        )),
        None => {}
    }
    if admin.is_some() {
        out.push_str(&format!(
            "  Make a token for each sender and reader instead of sharing this one:\n    sentrace tokens create{dir_flag} --tenant {DEFAULT_TENANT} --role ingest\n"
        ));
    }
    let scheme = if plaintext { "http" } else { "https" };
    out.push_str(&format!(
        "  Send traces with any OpenTelemetry SDK:\n    OTEL_EXPORTER_OTLP_ENDPOINT={scheme}://localhost:{}\n",
        cfg.listen.otlp_grpc.port()
    ));
    if let Some(ca) = &b.ca_cert
        && !plaintext
    {
        out.push_str(&format!(
            "    OTEL_EXPORTER_OTLP_CERTIFICATE={}\n",
            ca.display()
        ));
    }
    out.push_str("    OTEL_EXPORTER_OTLP_HEADERS=\"authorization=Bearer <token>\"\n");
    out.push_str(&format!(
        "  Read them: {scheme}://localhost:{}/api/traces?service=<name> (Jaeger API)\n",
        cfg.listen.query.port()
    ));
    if cfg.console.enabled {
        out.push_str(&format!(
            "  Browse them: {scheme}://localhost:{}/ (the console; log in with a token)\n",
            cfg.listen.query.port()
        ));
    }
    out.push_str("━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━\n");
    out
}
