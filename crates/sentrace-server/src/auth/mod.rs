//! Authentication of every request, on every listener.
//!
//! A request proves who it is with one of:
//! - an API token (`Authorization: Bearer st_…`), checked against the data directory's token
//!   file. The file is re-read as soon as it changes (the `sentrace tokens` commands edit it
//!   while the server runs), so a revocation takes effect on the next request;
//! - an OIDC / JWT bearer token from a configured issuer;
//! - the TLS client certificate of its connection, mapped to an identity by the listener
//!   ([`Connection::peer`]).
//!
//! The tenant always comes from the verified credential. When a bearer token and a client
//! certificate are both presented they must name the same tenant.

pub mod config;
pub mod failure_log;
pub mod mtls;
pub mod oidc;

use std::net::SocketAddr;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use sentrace_access::{AuthError, TokenSet};
use sentrace_core::Identity;

use sentrace_store::fsutil::write_atomic;

/// The token file of a data directory.
pub fn tokens_path(data_dir: &Path) -> PathBuf {
    data_dir.join("tokens.json")
}

/// Identifies one version of a file without reading it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
struct Stamp {
    ino: u64,
    len: u64,
    mtime_ns: i128,
}

fn stamp(path: &Path) -> Option<Stamp> {
    let m = std::fs::metadata(path).ok()?;
    Some(Stamp {
        ino: m.ino(),
        len: m.len(),
        mtime_ns: i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
    })
}

/// What the listener learned about a connection; put into every request's extensions.
#[derive(Clone, Debug, Default)]
pub struct Connection {
    /// The remote address.
    pub remote: Option<SocketAddr>,
    /// The identity of the verified TLS client certificate, when the listener takes client
    /// certificates and one was presented and mapped.
    pub peer: Option<Arc<Identity>>,
}

/// The credentials a request presents.
#[derive(Clone, Copy, Debug, Default)]
pub struct Credentials<'a> {
    /// The `Authorization` header value (or gRPC metadata).
    pub authorization: Option<&'a str>,
    /// The connection the request came on.
    pub connection: Option<&'a Connection>,
}

impl<'a> Credentials<'a> {
    /// Credentials from an HTTP request's headers and extensions.
    pub fn from_http(headers: &'a http::HeaderMap, extensions: &'a http::Extensions) -> Self {
        Self {
            authorization: headers
                .get(http::header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok()),
            connection: extensions.get::<Connection>(),
        }
    }

    /// The remote address, when known.
    pub fn remote(&self) -> Option<SocketAddr> {
        self.connection.and_then(|c| c.remote)
    }
}

/// Checks credentials.
pub struct Authenticator {
    path: PathBuf,
    cache: RwLock<(Option<Stamp>, TokenSet)>,
    oidc: oidc::Issuers,
}

/// Unix seconds now.
pub fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Reads the token file; a missing file is an empty set.
pub fn load_tokens(path: &Path) -> anyhow::Result<TokenSet> {
    match std::fs::read(path) {
        Ok(bytes) => {
            Ok(TokenSet::from_json(&bytes)
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(TokenSet {
            version: 1,
            tokens: Vec::new(),
        }),
        Err(e) => Err(anyhow::anyhow!("reading {}: {e}", path.display())),
    }
}

/// Replaces the token file atomically (mode 0600).
pub fn save_tokens(path: &Path, set: &TokenSet) -> anyhow::Result<()> {
    Ok(write_atomic(path, &set.to_json(), 0o600)?)
}

impl Authenticator {
    /// An authenticator over the token file `path` and the `[auth]` section (OIDC issuers
    /// are checked here; their keys load in [`Authenticator::warm_up`] or on first use).
    pub fn new(path: PathBuf, config: &config::AuthConfig) -> anyhow::Result<Self> {
        let s = stamp(&path);
        let set = load_tokens(&path)?;
        Ok(Self {
            path,
            cache: RwLock::new((s, set)),
            oidc: oidc::Issuers::new(&config.oidc)?,
        })
    }

    /// Loads the keys of every configured OIDC issuer. Failures are logged and retried on
    /// use; the server starts anyway.
    pub async fn warm_up(&self) {
        self.oidc.warm_up().await;
    }

    /// The configured OIDC issuers.
    pub fn oidc(&self) -> &oidc::Issuers {
        &self.oidc
    }

    fn refresh(&self) {
        let now = stamp(&self.path);
        let stale = self.cache.read().map(|c| c.0 != now).unwrap_or(true);
        if !stale {
            return;
        }
        match load_tokens(&self.path) {
            Ok(set) => {
                if let Ok(mut c) = self.cache.write() {
                    *c = (now, set);
                }
            }
            // A half-written or broken file keeps the last good set; the tokens commands
            // write atomically, so this is an operator's hand edit.
            Err(e) => {
                tracing::error!(error = %e, "token file unreadable; keeping the previous tokens")
            }
        }
    }

    /// Authenticates an API token (the part after `Bearer `).
    fn api_token(&self, token: &str) -> Result<Identity, AuthError> {
        self.refresh();
        self.cache
            .read()
            .map_err(|_| AuthError::Unknown)?
            .1
            .authenticate(token, now_unix())
    }

    /// Authenticates a bearer credential: an API token, else a JWT.
    async fn bearer(&self, token: &str) -> Result<Identity, AuthError> {
        if token.starts_with(sentrace_access::TOKEN_PREFIX) {
            return self.api_token(token);
        }
        // Not an API token: only a JWT from a configured issuer could still be valid.
        if self.oidc.is_empty() {
            return Err(AuthError::Malformed);
        }
        self.oidc.verify(token, now_unix()).await.map_err(|e| {
            // Says why a JWT was refused (the client only sees a bare 401): an issuer whose
            // tokens all fail here is usually misconfigured (audience, role mapping).
            tracing::info!(error = %e, "JWT bearer token refused");
            AuthError::Jwt(e)
        })
    }

    /// Authenticates a request: its bearer credential if it has one, else its connection's
    /// client certificate. Both present must agree on the tenant.
    pub async fn authenticate(&self, creds: Credentials<'_>) -> Result<Identity, AuthError> {
        let peer = creds.connection.and_then(|c| c.peer.as_deref());
        let Some(header) = creds.authorization else {
            return peer.cloned().ok_or(AuthError::Missing);
        };
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .ok_or(AuthError::Malformed)?
            .trim();
        let identity = self.bearer(token).await?;
        if let Some(peer) = peer
            && peer.tenant != identity.tenant
        {
            return Err(AuthError::TenantMismatch {
                credential: identity.principal,
                certificate: peer.principal.clone(),
            });
        }
        Ok(identity)
    }
}
