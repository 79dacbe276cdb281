//! OIDC / JWT bearer tokens on the server: the configured issuers, their keys, and the
//! fetching and caching of those keys. Verification itself is `sentrace_access::jwt`.
//!
//! A token's `iss` is read unverified only to pick the configured issuer; that issuer's
//! policy and keys then verify the whole token. A token of an issuer that is not
//! configured is refused without any network request.
//!
//! Keys come from a JWKS file, a JWKS URL, or the issuer's discovery document
//! (`<issuer>/.well-known/openid-configuration`, whose `issuer` must equal the configured
//! one and whose `jwks_uri` must pass the same https/loopback rule). They are cached:
//! - loaded at start ([`Issuers::warm_up`]); a failure is logged and retried later, so an
//!   identity provider that is down does not stop the server (its tokens are refused
//!   meanwhile);
//! - reloaded when older than `jwks_max_age_seconds` (the old keys stay if that fails);
//! - reloaded when a token names a `kid` the cache lacks, at most once per
//!   `refresh_interval_seconds` per issuer, so a flood of tokens with random `kid`s costs
//!   the identity provider one request per interval. Concurrent requests share one fetch.
//!
//! Every request has a timeout, follows no redirect, and reads at most
//! [`MAX_JWKS_BYTES`] (JWKS) or [`MAX_DISCOVERY_BYTES`] (discovery) of body.

pub mod config;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use anyhow::Context;
use reqwest::Url;
use sentrace_access::jwt::{self, IssuerPolicy, Jwks, JwtError, MAX_JWKS_BYTES};
use sentrace_core::Identity;

pub use config::OidcIssuerConfig;

/// Largest discovery document read, in bytes.
pub const MAX_DISCOVERY_BYTES: usize = 64 * 1024;

/// Where an issuer's keys come from.
#[derive(Debug)]
enum KeySource {
    File(PathBuf),
    Url(Url),
    Discovery(Url),
}

/// The cached keys of one issuer.
#[derive(Debug, Default)]
struct Cache {
    keys: Arc<Jwks>,
    /// When the keys were last loaded successfully.
    loaded: Option<Instant>,
    /// Bumped on every successful load.
    generation: u64,
}

/// Fetch bookkeeping, held under the single-flight lock.
#[derive(Debug, Default)]
struct Fetcher {
    /// `jwks_uri` from the discovery document, once known.
    jwks_uri: Option<Url>,
    /// The last fetch attempt of any kind.
    last_attempt: Option<Instant>,
    /// The last fetch caused by an unknown `kid`.
    last_kid_refresh: Option<Instant>,
}

/// One configured issuer.
#[derive(Debug)]
struct Issuer {
    policy: IssuerPolicy,
    source: KeySource,
    http: Option<reqwest::Client>,
    allow_http: bool,
    refresh_interval: Duration,
    max_age: Duration,
    cache: RwLock<Cache>,
    fetcher: tokio::sync::Mutex<Fetcher>,
    fetches: AtomicU64,
}

/// Why a refresh was wanted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Reason {
    /// No keys yet, or older than the maximum age.
    Stale,
    /// A token named a `kid` the cache lacks.
    UnknownKid,
}

/// The configured issuers.
#[derive(Debug, Default)]
pub struct Issuers {
    by_issuer: HashMap<String, Issuer>,
}

/// Reads at most `max` bytes of a response body.
async fn read_bounded(mut resp: reqwest::Response, max: usize) -> Result<Vec<u8>, String> {
    if !resp.status().is_success() {
        return Err(format!("HTTP {}", resp.status().as_u16()));
    }
    if resp.content_length().is_some_and(|l| l > max as u64) {
        return Err(format!("body larger than {max} bytes"));
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| e.to_string())? {
        if body.len() + chunk.len() > max {
            return Err(format!("body larger than {max} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

impl Issuer {
    fn new(cfg: &OidcIssuerConfig) -> anyhow::Result<Self> {
        let policy = cfg.policy().map_err(|e| anyhow::anyhow!(e))?;
        let source = if let Some(f) = &cfg.jwks_file {
            KeySource::File(f.clone())
        } else if let Some(u) = &cfg.jwks_url {
            KeySource::Url(config::check_url(u, cfg.allow_http).map_err(|e| anyhow::anyhow!(e))?)
        } else {
            let base = cfg.issuer.trim_end_matches('/');
            let url = format!("{base}/.well-known/openid-configuration");
            KeySource::Discovery(
                config::check_url(&url, cfg.allow_http).map_err(|e| anyhow::anyhow!(e))?,
            )
        };
        let http = match source {
            KeySource::File(_) => None,
            _ => {
                let tls = crate::detect::sinks::client_tls(cfg.ca.as_deref())
                    .with_context(|| format!("[[auth.oidc]] {}: TLS", cfg.issuer))?;
                Some(
                    reqwest::Client::builder()
                        .use_preconfigured_tls(tls)
                        .https_only(!cfg.allow_http)
                        .redirect(reqwest::redirect::Policy::none())
                        .timeout(Duration::from_millis(cfg.timeout_ms))
                        .connect_timeout(Duration::from_millis(cfg.timeout_ms))
                        .build()
                        .with_context(|| {
                            format!("[[auth.oidc]] {}: building the HTTP client", cfg.issuer)
                        })?,
                )
            }
        };
        Ok(Self {
            policy,
            source,
            http,
            allow_http: cfg.allow_http,
            refresh_interval: Duration::from_secs(cfg.refresh_interval_seconds),
            max_age: Duration::from_secs(cfg.jwks_max_age_seconds),
            cache: RwLock::new(Cache::default()),
            fetcher: tokio::sync::Mutex::new(Fetcher::default()),
            fetches: AtomicU64::new(0),
        })
    }

    fn snapshot(&self) -> (Arc<Jwks>, Option<Instant>, u64) {
        match self.cache.read() {
            Ok(c) => (c.keys.clone(), c.loaded, c.generation),
            Err(_) => (Arc::new(Jwks::default()), None, 0),
        }
    }

    async fn get(&self, url: &Url, max: usize) -> Result<Vec<u8>, String> {
        let http = self.http.as_ref().ok_or("no HTTP client")?;
        let resp = http
            .get(url.clone())
            .header("accept", "application/json")
            .send()
            .await
            .map_err(|e| format!("{url}: {e}"))?;
        read_bounded(resp, max)
            .await
            .map_err(|e| format!("{url}: {e}"))
    }

    /// Fetches the JWKS document once (discovering `jwks_uri` first when needed).
    async fn fetch(&self, f: &mut Fetcher) -> Result<Jwks, String> {
        self.fetches.fetch_add(1, Relaxed);
        let bytes = match &self.source {
            KeySource::File(p) => {
                let meta = tokio::fs::metadata(p)
                    .await
                    .map_err(|e| format!("{}: {e}", p.display()))?;
                if meta.len() > MAX_JWKS_BYTES as u64 {
                    return Err(format!(
                        "{}: larger than {MAX_JWKS_BYTES} bytes",
                        p.display()
                    ));
                }
                tokio::fs::read(p)
                    .await
                    .map_err(|e| format!("{}: {e}", p.display()))?
            }
            KeySource::Url(u) => self.get(u, MAX_JWKS_BYTES).await?,
            KeySource::Discovery(d) => {
                let uri = match &f.jwks_uri {
                    Some(u) => u.clone(),
                    None => {
                        let doc = self.get(d, MAX_DISCOVERY_BYTES).await?;
                        let uri = self.jwks_uri_of(&doc).map_err(|e| format!("{d}: {e}"))?;
                        f.jwks_uri = Some(uri.clone());
                        uri
                    }
                };
                match self.get(&uri, MAX_JWKS_BYTES).await {
                    Ok(b) => b,
                    Err(e) => {
                        // Discover again next time: the provider may have moved its keys.
                        f.jwks_uri = None;
                        return Err(e);
                    }
                }
            }
        };
        Jwks::from_json(&bytes).map_err(|e| e.to_string())
    }

    /// The `jwks_uri` of a discovery document (OpenID Connect Discovery 1.0 §3, §4.3).
    fn jwks_uri_of(&self, doc: &[u8]) -> Result<Url, String> {
        let doc: serde_json::Value =
            serde_json::from_slice(doc).map_err(|e| format!("not JSON: {e}"))?;
        let issuer = doc.get("issuer").and_then(|v| v.as_str());
        if issuer != Some(self.policy.issuer.as_str()) {
            return Err(format!(
                "discovery document names issuer {issuer:?}, not the configured {:?}",
                self.policy.issuer
            ));
        }
        let uri = doc
            .get("jwks_uri")
            .and_then(|v| v.as_str())
            .ok_or("discovery document has no jwks_uri")?;
        config::check_url(uri, self.allow_http).map_err(|e| format!("jwks_uri {e}"))
    }

    /// Refreshes the keys unless another task just did or the interval forbids it; returns
    /// the keys to use.
    /// With `wait` false, a fetch already under way is not waited for: the current keys are
    /// returned at once (used when stale but present keys can still serve).
    async fn refresh(&self, reason: Reason, seen_generation: u64, wait: bool) -> Arc<Jwks> {
        let mut f = if wait {
            self.fetcher.lock().await
        } else {
            match self.fetcher.try_lock() {
                Ok(f) => f,
                Err(_) => return self.snapshot().0,
            }
        };
        let (keys, loaded, generation) = self.snapshot();
        if generation != seen_generation {
            // Another task loaded new keys while this one waited.
            return keys;
        }
        let now = Instant::now();
        let recent =
            |t: Option<Instant>| t.is_some_and(|t| now.duration_since(t) < self.refresh_interval);
        let allowed = match reason {
            Reason::Stale => !recent(f.last_attempt),
            Reason::UnknownKid => {
                !recent(f.last_kid_refresh) && !recent(f.last_attempt.filter(|_| loaded.is_none()))
            }
        };
        if !allowed {
            return keys;
        }
        f.last_attempt = Some(now);
        if reason == Reason::UnknownKid {
            f.last_kid_refresh = Some(now);
        }
        match self.fetch(&mut f).await {
            Ok(set) => {
                tracing::info!(
                    issuer = %self.policy.issuer,
                    keys = set.len(),
                    skipped = set.skipped(),
                    ?reason,
                    "OIDC issuer keys loaded"
                );
                let set = Arc::new(set);
                if let Ok(mut c) = self.cache.write() {
                    c.keys = set.clone();
                    c.loaded = Some(now);
                    c.generation += 1;
                }
                set
            }
            Err(e) => {
                tracing::warn!(issuer = %self.policy.issuer, error = %e, ?reason, "OIDC issuer keys could not be loaded; keeping the previous keys");
                keys
            }
        }
    }

    async fn verify(&self, token: &str, now_unix: u64) -> Result<Identity, JwtError> {
        let (mut keys, loaded, generation) = self.snapshot();
        if loaded.is_none_or(|t| t.elapsed() >= self.max_age) {
            keys = self
                .refresh(Reason::Stale, generation, keys.is_empty())
                .await;
        }
        if keys.is_empty() {
            return Err(JwtError::KeysUnavailable {
                issuer: self.policy.issuer.clone(),
            });
        }
        match jwt::verify(token, &keys, &self.policy, now_unix) {
            Err(JwtError::UnknownKey { .. }) => {
                let (_, _, generation) = self.snapshot();
                let fresh = self.refresh(Reason::UnknownKid, generation, true).await;
                jwt::verify(token, &fresh, &self.policy, now_unix)
            }
            other => other,
        }
    }
}

impl Issuers {
    /// The issuers of `[[auth.oidc]]` (checks each entry; loads no keys yet).
    pub fn new(cfgs: &[OidcIssuerConfig]) -> anyhow::Result<Self> {
        config::validate_issuers(cfgs).map_err(|e| anyhow::anyhow!(e))?;
        let mut by_issuer = HashMap::new();
        for c in cfgs {
            by_issuer.insert(c.issuer.clone(), Issuer::new(c)?);
        }
        Ok(Self { by_issuer })
    }

    /// Whether any issuer is configured.
    pub fn is_empty(&self) -> bool {
        self.by_issuer.is_empty()
    }

    /// Loads every issuer's keys; failures are logged, not fatal (see the module docs).
    pub async fn warm_up(&self) {
        for issuer in self.by_issuer.values() {
            let (_, _, generation) = issuer.snapshot();
            let keys = issuer.refresh(Reason::Stale, generation, true).await;
            if keys.is_empty() {
                tracing::error!(issuer = %issuer.policy.issuer, "OIDC issuer has no usable keys yet: its tokens are refused until they load");
            }
        }
    }

    /// Verifies a JWT from one of the configured issuers at `now_unix`.
    pub async fn verify(&self, token: &str, now_unix: u64) -> Result<Identity, JwtError> {
        let iss = jwt::unverified_issuer(token)?;
        let issuer = self
            .by_issuer
            .get(&iss)
            .ok_or_else(|| JwtError::UnknownIssuer {
                iss: iss.chars().take(64).collect(),
            })?;
        issuer.verify(token, now_unix).await
    }

    /// How many key fetches (successful or not) an issuer has made.
    pub fn fetches(&self, issuer: &str) -> Option<u64> {
        self.by_issuer.get(issuer).map(|i| i.fetches.load(Relaxed))
    }
}
