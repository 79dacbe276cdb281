//! The server configuration file (`sentrace.toml`). Strict: an unknown key is an error.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use sentrace_core::Limits;
use sentrace_store::StoreConfig;

pub use sentrace_pipeline::config::{MinimizeConfig, load_policy};

/// The whole configuration. Every section is optional; omitted values take the defaults
/// printed by `sentrace config default`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Listener addresses.
    pub listen: ListenConfig,
    /// The process: how it stops.
    pub server: ServerConfig,
    /// The server's own log.
    pub log: LogConfig,
    /// TLS certificate settings.
    pub tls: TlsConfig,
    /// Limits on every ingest request.
    pub limits: Limits,
    /// The embedded store.
    pub store: StoreConfig,
    /// Data minimization (the server enforces the policy again; it never trusts the edge).
    pub minimize: MinimizeConfig,
    /// The transparency log: batch manifests, tiles and signed checkpoints.
    pub seal: crate::seal::SealConfig,
    /// Threat detection, finding sinks and automated response.
    pub detect: crate::detect::DetectConfig,
    /// Signed sources: tenants that must sign, replay window, replay-state snapshots.
    pub sources: crate::sources::SourcesConfig,
    /// Authentication beyond API tokens: OIDC issuers, client certificates.
    pub auth: crate::auth::config::AuthConfig,
    /// Authorization: Cedar policies, teams, break-glass.
    pub access: crate::access::AccessConfig,
    /// The web console on the query port: sessions and their lifetimes.
    pub console: crate::console::ConsoleConfig,
    /// The master key provider and scheduled data key rotation.
    pub keys: crate::keys_config::KeysConfig,
}

/// The server's own log (written to standard error).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `text` or `json` (one object per line).
    pub format: LogFormat,
    /// The least severe level written, or per-module directives in `RUST_LOG` syntax
    /// (`info,sentrace_store=debug`). `RUST_LOG`, when set, overrides it.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::Text,
            level: "info".into(),
        }
    }
}

/// How log events are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One human-readable line per event.
    Text,
    /// One JSON object per line.
    Json,
}

impl LogConfig {
    /// Checks the level's directive syntax: comma-separated `level` or `target=level`.
    pub fn validate(&self) -> Result<(), String> {
        const LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];
        if self.level.trim().is_empty() {
            return Err("[log] level must not be empty (e.g. \"info\")".into());
        }
        for d in self
            .level
            .split(',')
            .map(str::trim)
            .filter(|d| !d.is_empty())
        {
            let level = d.rsplit_once('=').map_or(d, |(_, l)| l);
            if !LEVELS.contains(&level.to_ascii_lowercase().as_str()) {
                return Err(format!(
                    "[log] level: {d:?} is not one of off, error, warn, info, debug, trace (optionally as target=level)"
                ));
            }
        }
        Ok(())
    }
}

/// Where the server listens.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ListenConfig {
    /// OTLP/gRPC receiver.
    pub otlp_grpc: SocketAddr,
    /// OTLP/HTTP receiver (`POST /v1/traces`).
    pub otlp_http: SocketAddr,
    /// Query API (Jaeger API, native API, metrics).
    pub query: SocketAddr,
}

impl Default for ListenConfig {
    fn default() -> Self {
        Self {
            otlp_grpc: SocketAddr::from(([0, 0, 0, 0], 4317)),
            otlp_http: SocketAddr::from(([0, 0, 0, 0], 4318)),
            query: SocketAddr::from(([0, 0, 0, 0], 16686)),
        }
    }
}

/// How the server process stops.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// On SIGTERM or ctrl-c, `/readyz` answers 503 `draining` at once while the listeners
    /// keep serving this long, so that load balancers take the node out of their pools
    /// before it stops. 0 turns it off; a second signal ends the wait.
    #[serde(with = "duration_text")]
    pub drain_grace: std::time::Duration,
}

/// Durations as text with a unit (`"5s"`), through the store's parser.
mod duration_text {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use std::time::Duration;

    pub(super) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        sentrace_store::duration::format(d).serialize(s)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        sentrace_store::duration::parse(&text).map_err(serde::de::Error::custom)
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            drain_grace: std::time::Duration::from_secs(5),
        }
    }
}

impl ServerConfig {
    /// Checks the values.
    pub fn validate(&self) -> Result<(), String> {
        if self.drain_grace > std::time::Duration::from_secs(600) {
            return Err("[server] drain_grace must be at most 10m (0 turns it off)".into());
        }
        Ok(())
    }
}

/// TLS settings. By default the server makes a local CA and a server certificate under
/// `<data-dir>/tls/` on first start.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// PEM certificate chain to serve instead of the generated one (needs `key`).
    pub cert: Option<PathBuf>,
    /// PEM private key for `cert`.
    pub key: Option<PathBuf>,
    /// Extra subject alternative names for the generated certificate (besides localhost,
    /// 127.0.0.1, ::1 and the host name).
    pub subject_alt_names: Vec<String>,
    /// Client certificates per listener (`off`, `optional`, `required`); the CAs trusted
    /// for them are `[[auth.mtls]]`.
    pub client_auth: crate::auth::mtls::config::ClientAuthConfig,
    /// Negotiate the hybrid post-quantum key exchange X25519MLKEM768 with every client that
    /// supports it, even one that lists a classical group first (with a HelloRetryRequest
    /// when it sent no key share for it). Off: the client's order decides.
    pub prefer_post_quantum: bool,
}

impl Default for TlsConfig {
    fn default() -> Self {
        Self {
            cert: None,
            key: None,
            subject_alt_names: Vec::new(),
            client_auth: Default::default(),
            prefer_post_quantum: true,
        }
    }
}

/// A configuration error, naming the file, line and key.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {message}")]
pub struct ConfigError {
    /// The file.
    pub file: String,
    /// What was wrong, with line and column when known.
    pub message: String,
}

impl Config {
    /// Parses TOML text; `file` names the source in errors.
    pub fn from_toml(text: &str, file: &str) -> Result<Self, ConfigError> {
        let cfg: Config = toml::from_str(text).map_err(|e| {
            let (line, col) = e.span().map(|s| line_col(text, s.start)).unwrap_or((0, 0));
            ConfigError {
                file: file.to_string(),
                message: format!("line {line}, column {col}: {}", e.message()),
            }
        })?;
        cfg.validate().map_err(|message| ConfigError {
            file: file.to_string(),
            message,
        })?;
        Ok(cfg)
    }

    /// Reads the files the configuration names (the redaction policy), so that errors show
    /// at start and not on the first request.
    pub fn load_policies(mut self) -> anyhow::Result<Self> {
        if self.minimize.enabled && self.minimize.policy.is_some() {
            self.minimize.loaded = Some(self.minimize.policy()?);
        }
        Ok(self)
    }

    /// Checks values that parse but make no sense.
    pub fn validate(&self) -> Result<(), String> {
        if self.tls.cert.is_some() != self.tls.key.is_some() {
            return Err("[tls] cert and key must be set together".into());
        }
        self.log.validate()?;
        self.server.validate()?;
        self.keys.validate()?;
        let l = &self.listen;
        for (a, b, x, y) in [
            ("otlp_grpc", "otlp_http", l.otlp_grpc, l.otlp_http),
            ("otlp_grpc", "query", l.otlp_grpc, l.query),
            ("otlp_http", "query", l.otlp_http, l.query),
        ] {
            let overlap = x.ip() == y.ip() || x.ip().is_unspecified() || y.ip().is_unspecified();
            if x.port() == y.port() && x.port() != 0 && overlap {
                return Err(format!(
                    "[listen] {a} and {b} both use port {}; give each listener its own port",
                    x.port()
                ));
            }
        }
        let l = &self.limits;
        for (name, v) in [
            ("max_request_bytes", l.max_request_bytes),
            ("max_spans_per_request", l.max_spans_per_request),
            ("max_key_bytes", l.max_key_bytes),
            ("max_value_bytes", l.max_value_bytes),
            ("max_name_bytes", l.max_name_bytes),
            ("max_value_depth", l.max_value_depth),
        ] {
            if v == 0 {
                return Err(format!("[limits] {name} must be greater than 0"));
            }
        }
        if l.max_request_bytes > 256 * 1024 * 1024 {
            return Err("[limits] max_request_bytes must be at most 256 MiB".into());
        }
        self.store.validate().map_err(|e| format!("[store] {e}"))?;
        self.seal.validate()?;
        self.detect.validate()?;
        self.minimize.validate()?;
        self.sources.validate()?;
        self.auth.validate()?;
        if let Some(listener) = self.tls.client_auth.first_enabled()
            && self.auth.mtls.is_empty()
        {
            return Err(format!(
                "[tls.client_auth] {listener} takes client certificates, but no [[auth.mtls]] entry trusts a CA: add one with tenant, ca and rules"
            ));
        }
        self.access.validate()?;
        self.console.validate()?;
        for o in &self.console.oidc {
            if !self.auth.oidc.iter().any(|a| a.issuer == o.issuer) {
                return Err(format!(
                    "[[console.oidc]] {}: issuer {} is not an [[auth.oidc]] issuer (which verifies its tokens): add it there",
                    o.label, o.issuer
                ));
            }
        }
        Ok(())
    }
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before
        .rfind('\n')
        .map_or(before.len(), |i| before.len() - i - 1)
        + 1;
    (line, col)
}

/// The full default configuration, commented; `sentrace config default` prints it.
pub const DEFAULT_TOML: &str = include_str!("default_config.toml");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_file_is_the_default() {
        let parsed = Config::from_toml(DEFAULT_TOML, "default").unwrap();
        assert_eq!(parsed, Config::default());
    }

    #[test]
    fn default_file_oidc_example_parses_when_uncommented() {
        let start = DEFAULT_TOML.find("# [[auth.oidc]]").unwrap();
        let example: String = DEFAULT_TOML[start..]
            .lines()
            .take_while(|l| l.starts_with('#'))
            .filter_map(|l| l.strip_prefix("# "))
            .filter(|l| !l.starts_with("# "))
            .collect::<Vec<_>>()
            .join("\n");
        let cfg = Config::from_toml(&example, "example").unwrap();
        assert_eq!(cfg.auth.oidc.len(), 1);
        assert_eq!(cfg.auth.oidc[0].roles.len(), 4);
    }

    #[test]
    fn typo_is_an_error_with_line() {
        let e = Config::from_toml("[limits]\nmax_spans_per_requests = 5\n", "x.toml").unwrap_err();
        assert_eq!(e.file, "x.toml");
        assert!(e.message.contains("line 2"), "{}", e.message);
        assert!(
            e.message.contains("max_spans_per_requests"),
            "{}",
            e.message
        );
        let e = Config::from_toml("[limits]\nmax_request_bytes = 0\n", "x.toml").unwrap_err();
        assert!(e.message.contains("max_request_bytes"));
        let e = Config::from_toml("[tls]\ncert = \"/x\"\n", "x.toml").unwrap_err();
        assert!(e.message.contains("together"));
    }
}
