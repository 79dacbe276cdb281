//! Console login with OpenID Connect: the authorization code flow with PKCE (RFC 7636,
//! `S256`), `state` and `nonce` (OpenID Connect Core 1.0 §3.1).
//!
//! 1. `GET /console/oidc/{n}/start` makes a random `state`, `nonce` and code verifier, keeps
//!    them server-side (bounded, ten minutes), binds `state` to the browser with a
//!    `SameSite=Lax` cookie and redirects to the issuer's `authorization_endpoint`.
//! 2. `GET /console/oidc/callback?code&state` checks the cookie against `state`, takes the
//!    pending login (once), redeems the code at the `token_endpoint` with the verifier, and
//!    checks the ID token's `iss`, `aud`, `exp` and `nonce`. The ID token comes straight
//!    from the token endpoint over verified TLS, which Core §3.1.3.7 (6) accepts in place
//!    of its signature.
//! 3. The access token is then authenticated exactly like a bearer request (signature,
//!    audience, tenant and roles per `[[auth.oidc]]`), and becomes the session's credential:
//!    the session ends when it expires.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine;
use sha2::{Digest, Sha256};

/// How long a started login may take.
const PENDING_TTL: Duration = Duration::from_secs(600);
/// Most logins in flight at once.
const MAX_PENDING: usize = 1000;
/// Largest discovery or token response read.
const MAX_BODY: usize = 256 * 1024;
/// The cookie binding `state` to the browser.
pub const STATE_COOKIE: &str = "sentrace_oidc_state";

/// One identity provider offered on the login page (`[[console.oidc]]`).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleOidcConfig {
    /// The button text (`Log in with <label>`).
    pub label: String,
    /// The issuer; it must also be an `[[auth.oidc]]` issuer, which verifies the tokens.
    pub issuer: String,
    /// The client id registered at the issuer for the console.
    pub client_id: String,
    /// A file holding the client secret (`client_secret_post`); without it the console is
    /// a public client protected by PKCE alone.
    #[serde(default)]
    pub client_secret_file: Option<PathBuf>,
    /// The redirect URI registered at the issuer: `https://<this server>/console/oidc/callback`.
    pub redirect_uri: String,
    /// Scopes asked for (`openid` is always sent).
    #[serde(default)]
    pub scopes: Vec<String>,
    /// An RFC 8707 resource indicator for the access token (the `[[auth.oidc]]` audience).
    #[serde(default)]
    pub resource: Option<String>,
    /// PEM CA certificates trusted for the issuer's HTTPS endpoints (default: system roots).
    #[serde(default)]
    pub ca: Option<PathBuf>,
}

impl ConsoleOidcConfig {
    /// Checks the values.
    pub fn validate(&self) -> Result<(), String> {
        let name = &self.label;
        if self.label.is_empty() || self.label.len() > 64 {
            return Err("[[console.oidc]] label must be 1 to 64 characters".into());
        }
        if !self.issuer.starts_with("https://") {
            return Err(format!("[[console.oidc]] {name}: issuer must be https://"));
        }
        if !self.redirect_uri.ends_with("/console/oidc/callback") {
            return Err(format!(
                "[[console.oidc]] {name}: redirect_uri must be https://<this server>/console/oidc/callback"
            ));
        }
        if self.client_id.is_empty() {
            return Err(format!("[[console.oidc]] {name}: client_id is empty"));
        }
        Ok(())
    }
}

/// Why an OIDC login failed (shown on the login page; no secret in it).
#[derive(Debug, thiserror::Error)]
pub enum OidcLoginError {
    /// No such provider, state or cookie.
    #[error("this login link is unknown, expired or was used already; start again")]
    UnknownState,
    /// The provider answered with an error.
    #[error("the identity provider refused the login: {0}")]
    Provider(String),
    /// Talking to the provider failed.
    #[error("could not complete the login with the identity provider: {0}")]
    Exchange(String),
    /// The ID token was not for this login.
    #[error("the identity provider's ID token is not valid for this login: {0}")]
    IdToken(&'static str),
}

struct Pending {
    provider: usize,
    verifier: String,
    nonce: String,
    created: Instant,
}

struct Provider {
    cfg: ConsoleOidcConfig,
    secret: Option<String>,
    http: reqwest::Client,
}

/// The configured providers and the logins in flight.
pub struct OidcLogins {
    providers: Vec<Provider>,
    pending: Mutex<HashMap<String, Pending>>,
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn random() -> Result<String, OidcLoginError> {
    let mut buf = [0u8; 32];
    aws_lc_rs::rand::fill(&mut buf)
        .map_err(|_| OidcLoginError::Exchange("no randomness".into()))?;
    Ok(b64(&buf))
}

async fn get_json(
    http: &reqwest::Client,
    req: reqwest::RequestBuilder,
) -> Result<serde_json::Value, String> {
    let _ = http;
    let mut resp = req.send().await.map_err(|e| e.to_string())?;
    let status = resp.status();
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| e.to_string())? {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(format!("answer larger than {MAX_BODY} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    let v: serde_json::Value =
        serde_json::from_slice(&body).map_err(|e| format!("{status}: not JSON ({e})"))?;
    if !status.is_success() {
        let err = v["error"].as_str().unwrap_or("error");
        return Err(format!(
            "{status} {}",
            err.chars().take(100).collect::<String>()
        ));
    }
    Ok(v)
}

impl OidcLogins {
    /// The providers of `[[console.oidc]]` (reads client secrets, builds HTTP clients).
    pub fn new(cfgs: &[ConsoleOidcConfig]) -> anyhow::Result<Self> {
        let mut providers = Vec::new();
        for cfg in cfgs {
            let secret = match &cfg.client_secret_file {
                Some(p) => Some(
                    std::fs::read_to_string(p)
                        .map_err(|e| {
                            anyhow::anyhow!("[[console.oidc]] {}: {}: {e}", cfg.label, p.display())
                        })?
                        .trim()
                        .to_string(),
                ),
                None => None,
            };
            let tls = crate::detect::sinks::client_tls(cfg.ca.as_deref())?;
            let http = reqwest::Client::builder()
                .use_preconfigured_tls(tls)
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(15))
                .build()?;
            providers.push(Provider {
                cfg: cfg.clone(),
                secret,
                http,
            });
        }
        Ok(Self {
            providers,
            pending: Mutex::new(HashMap::new()),
        })
    }

    /// `(index, label)` of each provider, for the login page.
    pub fn labels(&self) -> Vec<(usize, String)> {
        self.providers
            .iter()
            .enumerate()
            .map(|(i, p)| (i, p.cfg.label.clone()))
            .collect()
    }

    async fn discover(&self, p: &Provider) -> Result<serde_json::Value, OidcLoginError> {
        let url = format!(
            "{}/.well-known/openid-configuration",
            p.cfg.issuer.trim_end_matches('/')
        );
        let doc = get_json(&p.http, p.http.get(&url))
            .await
            .map_err(|e| OidcLoginError::Exchange(format!("discovery: {e}")))?;
        if doc["issuer"].as_str() != Some(p.cfg.issuer.as_str()) {
            return Err(OidcLoginError::Exchange(
                "discovery names another issuer".into(),
            ));
        }
        Ok(doc)
    }

    /// Starts a login with provider `n`: the authorization URL to redirect to and the
    /// `state` to bind to the browser.
    pub async fn start(&self, n: usize) -> Result<(String, String), OidcLoginError> {
        let p = self.providers.get(n).ok_or(OidcLoginError::UnknownState)?;
        let doc = self.discover(p).await?;
        let endpoint = doc["authorization_endpoint"]
            .as_str()
            .filter(|u| u.starts_with("https://"))
            .ok_or_else(|| OidcLoginError::Exchange("no https authorization_endpoint".into()))?;
        let (state, nonce, verifier) = (random()?, random()?, random()?);
        // RFC 7636 §4.2: code_challenge = BASE64URL(SHA256(ASCII(code_verifier))).
        let challenge = b64(&Sha256::digest(verifier.as_bytes()));
        let mut scopes = vec!["openid".to_string()];
        scopes.extend(p.cfg.scopes.iter().filter(|s| *s != "openid").cloned());
        let mut q = form_urlencoded::Serializer::new(String::new());
        q.append_pair("response_type", "code")
            .append_pair("client_id", &p.cfg.client_id)
            .append_pair("redirect_uri", &p.cfg.redirect_uri)
            .append_pair("scope", &scopes.join(" "))
            .append_pair("state", &state)
            .append_pair("nonce", &nonce)
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256");
        if let Some(r) = &p.cfg.resource {
            q.append_pair("resource", r);
        }
        let sep = if endpoint.contains('?') { '&' } else { '?' };
        let url = format!("{endpoint}{sep}{}", q.finish());
        let now = Instant::now();
        let mut t = self
            .pending
            .lock()
            .map_err(|_| OidcLoginError::UnknownState)?;
        t.retain(|_, v| now.duration_since(v.created) < PENDING_TTL);
        if t.len() >= MAX_PENDING {
            return Err(OidcLoginError::Exchange(
                "too many logins in flight; try again shortly".into(),
            ));
        }
        t.insert(
            state.clone(),
            Pending {
                provider: n,
                verifier,
                nonce,
                created: now,
            },
        );
        Ok((url, state))
    }

    /// Finishes a login: `state` from the query, `bound` from the browser's cookie. The
    /// access token on success.
    pub async fn finish(
        &self,
        code: &str,
        state: &str,
        bound: Option<&str>,
        now_unix: u64,
    ) -> Result<String, OidcLoginError> {
        let same = bound.is_some_and(|b| {
            aws_lc_rs::constant_time::verify_slices_are_equal(b.as_bytes(), state.as_bytes())
                .is_ok()
        });
        if !same {
            return Err(OidcLoginError::UnknownState);
        }
        let pending = {
            let mut t = self
                .pending
                .lock()
                .map_err(|_| OidcLoginError::UnknownState)?;
            t.remove(state).ok_or(OidcLoginError::UnknownState)?
        };
        if pending.created.elapsed() >= PENDING_TTL {
            return Err(OidcLoginError::UnknownState);
        }
        let p = &self.providers[pending.provider];
        let doc = self.discover(p).await?;
        let endpoint = doc["token_endpoint"]
            .as_str()
            .filter(|u| u.starts_with("https://"))
            .ok_or_else(|| OidcLoginError::Exchange("no https token_endpoint".into()))?;
        let mut form = vec![
            ("grant_type", "authorization_code".to_string()),
            ("code", code.to_string()),
            ("redirect_uri", p.cfg.redirect_uri.clone()),
            ("client_id", p.cfg.client_id.clone()),
            ("code_verifier", pending.verifier.clone()),
        ];
        if let Some(s) = &p.secret {
            form.push(("client_secret", s.clone()));
        }
        if let Some(r) = &p.cfg.resource {
            form.push(("resource", r.clone()));
        }
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form.iter().map(|(k, v)| (*k, v.as_str())))
            .finish();
        let tokens = get_json(
            &p.http,
            p.http
                .post(endpoint)
                .header("content-type", "application/x-www-form-urlencoded")
                .header("accept", "application/json")
                .body(body),
        )
        .await
        .map_err(|e| OidcLoginError::Exchange(format!("token endpoint: {e}")))?;
        let id_token = tokens["id_token"]
            .as_str()
            .ok_or(OidcLoginError::IdToken("missing"))?;
        check_id_token(id_token, &p.cfg, &pending.nonce, now_unix)?;
        tokens["access_token"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| OidcLoginError::Exchange("no access_token in the answer".into()))
    }
}

/// Core §3.1.3.7 checks 2, 3, 9 and 11 on the ID token's claims.
fn check_id_token(
    token: &str,
    cfg: &ConsoleOidcConfig,
    nonce: &str,
    now_unix: u64,
) -> Result<(), OidcLoginError> {
    if token.len() > 16 * 1024 {
        return Err(OidcLoginError::IdToken("longer than 16 KiB"));
    }
    let payload = token
        .split('.')
        .nth(1)
        .ok_or(OidcLoginError::IdToken("not a JWT"))?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|_| OidcLoginError::IdToken("payload is not base64url"))?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|_| OidcLoginError::IdToken("payload is not JSON"))?;
    if claims["iss"].as_str() != Some(cfg.issuer.as_str()) {
        return Err(OidcLoginError::IdToken("iss is another issuer"));
    }
    let aud_ok = match &claims["aud"] {
        serde_json::Value::String(a) => *a == cfg.client_id,
        serde_json::Value::Array(a) => a.iter().any(|x| x.as_str() == Some(&cfg.client_id)),
        _ => false,
    };
    if !aud_ok {
        return Err(OidcLoginError::IdToken("aud does not name this client"));
    }
    if claims["exp"].as_u64().is_none_or(|exp| exp <= now_unix) {
        return Err(OidcLoginError::IdToken("expired"));
    }
    let sent = claims["nonce"].as_str().unwrap_or("");
    if aws_lc_rs::constant_time::verify_slices_are_equal(sent.as_bytes(), nonce.as_bytes()).is_err()
    {
        return Err(OidcLoginError::IdToken("nonce does not match this login"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> ConsoleOidcConfig {
        ConsoleOidcConfig {
            label: "IdP".into(),
            issuer: "https://idp".into(),
            client_id: "console".into(),
            client_secret_file: None,
            redirect_uri: "https://h/console/oidc/callback".into(),
            scopes: vec![],
            resource: None,
            ca: None,
        }
    }

    fn jwt(claims: serde_json::Value) -> String {
        format!("e30.{}.sig", b64(claims.to_string().as_bytes()))
    }

    #[test]
    fn id_token_claims() {
        let c = cfg();
        let good =
            serde_json::json!({"iss": "https://idp", "aud": "console", "exp": 200, "nonce": "n1"});
        assert!(check_id_token(&jwt(good.clone()), &c, "n1", 100).is_ok());
        for (k, v, why) in [
            ("iss", serde_json::json!("https://other"), "iss"),
            ("aud", serde_json::json!(["x"]), "aud"),
            ("exp", serde_json::json!(50), "expired"),
            ("nonce", serde_json::json!("n2"), "nonce"),
        ] {
            let mut bad = good.clone();
            bad[k] = v;
            let e = check_id_token(&jwt(bad), &c, "n1", 100).unwrap_err();
            assert!(e.to_string().contains(why), "{e}");
        }
        assert!(cfg().validate().is_ok());
        let mut bad = cfg();
        bad.redirect_uri = "https://h/elsewhere".into();
        assert!(bad.validate().is_err());
    }
}
