//! First start: the data directory, the local PKI, the master key and the admin token.

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
    /// The admin token, when one was made now. Shown once; only its hash is kept.
    pub admin_token: Option<String>,
    /// The certificate and key to serve.
    pub cert: PathBuf,
    /// The key for `cert`.
    pub key: PathBuf,
    /// The master key.
    pub master: MasterKey,
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

    let master = match std::env::var(MASTER_KEY_ENV) {
        Ok(_) => MasterKey::from_env(MASTER_KEY_ENV)?,
        Err(_) => MasterKey::load_or_create(&master_key_path(data_dir))?,
    };

    let tpath = tokens_path(data_dir);
    let mut set = load_tokens(&tpath)?;
    let admin_token = if set.tokens.is_empty() {
        let tenant = TenantId::new(DEFAULT_TENANT)?;
        let issued = set.issue(tenant, Role::Admin, now_unix(), None, "first-start admin");
        save_tokens(&tpath, &set)?;
        Some(issued.token)
    } else {
        None
    };

    Ok(Bootstrap {
        ca_cert,
        created_pki,
        admin_token,
        cert,
        key,
        master,
    })
}

/// The first-start banner, in the spirit of Elasticsearch 8's.
pub fn banner(b: &Bootstrap, cfg: &Config, plaintext: bool) -> String {
    let mut out = String::new();
    out.push_str("\n━━ Sentrace: security is on ━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━\n");
    if let Some(ca) = &b.ca_cert {
        out.push_str(&format!(
            "  CA certificate (clients must trust it):\n    {}\n",
            ca.display()
        ));
    }
    if let Some(t) = &b.admin_token {
        out.push_str(&format!(
            "  Admin token for tenant \"{DEFAULT_TENANT}\" (shown once; only its hash is stored):\n    {t}\n"
        ));
        out.push_str(
            "  Make a token for each sender and reader instead of sharing this one:\n    sentrace tokens create --tenant default --role ingest\n",
        );
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
    out.push_str("━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━\n");
    out
}
