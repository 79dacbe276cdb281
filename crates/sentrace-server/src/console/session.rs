//! Console sessions: server-side, in memory, bounded in number, with an absolute and an
//! idle lifetime.
//!
//! A session holds the credential that opened it (the token pasted into the login page) and
//! nothing else of authority: every request made with the session cookie re-presents that
//! credential to the server's [`crate::auth::Authenticator`], exactly as a bearer request
//! would, so a revoked or expired token ends its sessions on their next request. The cookie
//! carries only a random 256-bit id; the table is keyed by the SHA-256 of that id, so a
//! lookup never compares secret bytes. Each session also has a random CSRF token that the
//! console's JavaScript sends as `X-CSRF-Token` on every request that is not `GET`/`HEAD`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, Method, Uri, header};
use base64::Engine;
use sha2::{Digest, Sha256};

/// The session cookie's name.
pub const COOKIE: &str = "sentrace_session";
/// The header that carries the CSRF token.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// Longest cookie value looked at (ids are 43 characters).
const MAX_COOKIE_VALUE: usize = 128;

/// Settings of the console (`[console]`).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConsoleConfig {
    /// Serve the web console at `/` on the query port.
    pub enabled: bool,
    /// Longest life of a session from login, in seconds (the token's own expiry ends it
    /// sooner).
    pub session_lifetime_secs: u64,
    /// A session unused for this many seconds ends.
    pub idle_timeout_secs: u64,
    /// Most sessions alive at once on this node; a login past it is refused (503).
    pub max_sessions: usize,
    /// Identity providers offered on the login page (authorization code flow with PKCE).
    pub oidc: Vec<super::oidc::ConsoleOidcConfig>,
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            session_lifetime_secs: 8 * 3600,
            idle_timeout_secs: 30 * 60,
            max_sessions: 10_000,
            oidc: Vec::new(),
        }
    }
}

impl ConsoleConfig {
    /// Checks the bounds.
    pub fn validate(&self) -> Result<(), String> {
        if !(60..=7 * 24 * 3600).contains(&self.session_lifetime_secs) {
            return Err(format!(
                "[console] session_lifetime_secs = {} is outside 60..=604800 (one minute to one week)",
                self.session_lifetime_secs
            ));
        }
        if !(60..=self.session_lifetime_secs).contains(&self.idle_timeout_secs) {
            return Err(format!(
                "[console] idle_timeout_secs = {} must be between 60 and session_lifetime_secs ({})",
                self.idle_timeout_secs, self.session_lifetime_secs
            ));
        }
        if !(1..=1_000_000).contains(&self.max_sessions) {
            return Err(format!(
                "[console] max_sessions = {} is outside 1..=1000000",
                self.max_sessions
            ));
        }
        for o in &self.oidc {
            o.validate()?;
        }
        Ok(())
    }
}

/// Why a request's session was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SessionError {
    /// No session cookie.
    #[error("no console session; log in at /console/login")]
    Missing,
    /// The cookie names no live session.
    #[error("console session unknown or expired; log in again at /console/login")]
    Unknown,
    /// A state-changing request without the session's CSRF token.
    #[error(
        "missing X-CSRF-Token header: state-changing console requests must carry the session's CSRF token (GET /console/session)"
    )]
    CsrfMissing,
    /// A state-changing request with another CSRF token.
    #[error("X-CSRF-Token does not match this session's CSRF token")]
    CsrfMismatch,
    /// A cookie-authenticated request from another origin.
    #[error("cross-origin request refused: Origin {origin:?} is not this server's origin")]
    CrossOrigin {
        /// The Origin header sent.
        origin: String,
    },
    /// The session table is full.
    #[error("too many console sessions on this node ([console] max_sessions); try again later")]
    Full,
}

/// The credential of a session, never printed.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    /// The credential as an `Authorization` header value.
    pub fn authorization(&self) -> String {
        format!("Bearer {}", self.0)
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

struct Entry {
    credential: Secret,
    csrf: String,
    created: Instant,
    last_used: Instant,
}

/// A live session, as a request sees it.
#[derive(Clone, Debug)]
pub struct Live {
    /// The key of the session in the table (SHA-256 of the cookie value).
    pub key: [u8; 32],
    /// The credential to authenticate the request with.
    pub credential: Secret,
    /// The session's CSRF token.
    pub csrf: String,
}

/// The session table of one node.
pub struct Sessions {
    cfg: ConsoleConfig,
    /// OIDC logins (`[[console.oidc]]`).
    pub oidc: super::oidc::OidcLogins,
    /// Whether the query listener speaks TLS (the origin's scheme).
    tls: bool,
    table: Mutex<HashMap<[u8; 32], Entry>>,
}

fn random_b64(bytes: usize) -> Result<String, SessionError> {
    let mut buf = vec![0u8; bytes];
    aws_lc_rs::rand::fill(&mut buf).map_err(|_| SessionError::Full)?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf))
}

fn key_of(id: &str) -> [u8; 32] {
    Sha256::digest(id.as_bytes()).into()
}

/// The value of the session cookie in `headers`, if any (bounded in length).
pub fn cookie_value(headers: &HeaderMap) -> Option<&str> {
    cookie_named(headers, COOKIE)
}

/// The value of cookie `name` in `headers`, if any (bounded in length).
pub fn cookie_named<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty() && v.len() <= MAX_COOKIE_VALUE)
}

impl Sessions {
    /// An empty table. `tls` says whether the query listener serves HTTPS. Fails when an
    /// OIDC client secret file cannot be read.
    pub fn new(cfg: ConsoleConfig, tls: bool) -> anyhow::Result<Self> {
        Ok(Self {
            oidc: super::oidc::OidcLogins::new(&cfg.oidc)?,
            cfg,
            tls,
            table: Mutex::new(HashMap::new()),
        })
    }

    /// The settings.
    pub fn config(&self) -> &ConsoleConfig {
        &self.cfg
    }

    fn alive(&self, e: &Entry, now: Instant) -> bool {
        now.duration_since(e.created) < Duration::from_secs(self.cfg.session_lifetime_secs)
            && now.duration_since(e.last_used) < Duration::from_secs(self.cfg.idle_timeout_secs)
    }

    /// Opens a session for an already verified `credential`; returns the cookie value and
    /// the `Set-Cookie` header.
    pub fn open(&self, credential: &str) -> Result<(String, String), SessionError> {
        let id = random_b64(32)?;
        let csrf = random_b64(32)?;
        let now = Instant::now();
        let mut t = self.table.lock().map_err(|_| SessionError::Full)?;
        // Logins are rare next to requests: sweep the ended sessions on each one, so the
        // table never keeps more than the live ones plus those ended since the last login.
        t.retain(|_, e| self.alive(e, now));
        if t.len() >= self.cfg.max_sessions {
            return Err(SessionError::Full);
        }
        t.insert(
            key_of(&id),
            Entry {
                credential: Secret(credential.to_string()),
                csrf,
                created: now,
                last_used: now,
            },
        );
        let set = format!(
            "{COOKIE}={id}; HttpOnly; Secure; SameSite=Strict; Path=/; Max-Age={}",
            self.cfg.session_lifetime_secs
        );
        Ok((id, set))
    }

    /// The `Set-Cookie` value that clears the cookie.
    pub fn clear_cookie() -> String {
        format!("{COOKIE}=; HttpOnly; Secure; SameSite=Strict; Path=/; Max-Age=0")
    }

    /// Ends the session with table key `key`.
    pub fn end(&self, key: &[u8; 32]) {
        if let Ok(mut t) = self.table.lock() {
            t.remove(key);
        }
    }

    /// How many sessions the table holds (expired ones included until swept).
    pub fn len(&self) -> usize {
        self.table.lock().map(|t| t.len()).unwrap_or(0)
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The live session a request's cookie names, touched (idle timer restarted).
    pub fn lookup(&self, headers: &HeaderMap) -> Result<Live, SessionError> {
        let id = cookie_value(headers).ok_or(SessionError::Missing)?;
        let key = key_of(id);
        let now = Instant::now();
        let mut t = self.table.lock().map_err(|_| SessionError::Unknown)?;
        let Some(e) = t.get_mut(&key) else {
            return Err(SessionError::Unknown);
        };
        if !self.alive(e, now) {
            t.remove(&key);
            return Err(SessionError::Unknown);
        }
        e.last_used = now;
        Ok(Live {
            key,
            credential: e.credential.clone(),
            csrf: e.csrf.clone(),
        })
    }

    /// This server's origin as a browser names it: the request's authority (HTTP/2
    /// `:authority`, which the URI carries) or, for HTTP/1.1, its `Host`.
    fn own_origin(&self, uri: &Uri, headers: &HeaderMap) -> Option<String> {
        let host = match uri.authority() {
            Some(a) => a.as_str(),
            None => headers.get(header::HOST)?.to_str().ok()?,
        };
        let scheme = if self.tls { "https" } else { "http" };
        Some(format!("{scheme}://{host}"))
    }

    /// Refuses a request that a browser says comes from another origin: `Sec-Fetch-Site`
    /// other than `same-origin`, or an `Origin` other than this server's. `Origin: null`
    /// passes only with `Sec-Fetch-Site: same-origin`: Chromium sends `null` for a form
    /// posted from a page under `Referrer-Policy: no-referrer` (the console's own pages),
    /// and `Sec-Fetch-Site` is set by the browser alone. Requests with neither header
    /// (non-browser clients, which hold the credential anyway) pass.
    pub fn check_origin(&self, uri: &Uri, headers: &HeaderMap) -> Result<(), SessionError> {
        let site = headers
            .get("sec-fetch-site")
            .map(|v| v.to_str().unwrap_or(""));
        if let Some(site) = site
            && site != "same-origin"
        {
            return Err(SessionError::CrossOrigin {
                origin: format!(
                    "(Sec-Fetch-Site: {})",
                    site.chars().take(40).collect::<String>()
                ),
            });
        }
        if let Some(origin) = headers.get(header::ORIGIN) {
            let origin = origin.to_str().unwrap_or("(not text)");
            let same = if origin == "null" {
                site == Some("same-origin")
            } else {
                self.own_origin(uri, headers).as_deref() == Some(origin)
            };
            if !same {
                return Err(SessionError::CrossOrigin {
                    origin: origin.chars().take(200).collect(),
                });
            }
        }
        Ok(())
    }

    /// CSRF defence for a cookie-authenticated request: methods other than GET and HEAD
    /// need the session's CSRF token (compared in constant time) and a same-origin request.
    pub fn check_csrf(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        live: &Live,
    ) -> Result<(), SessionError> {
        if method == Method::GET || method == Method::HEAD {
            return Ok(());
        }
        let sent = headers
            .get(CSRF_HEADER)
            .ok_or(SessionError::CsrfMissing)?
            .as_bytes();
        aws_lc_rs::constant_time::verify_slices_are_equal(sent, live.csrf.as_bytes())
            .map_err(|_| SessionError::CsrfMismatch)?;
        self.check_origin(uri, headers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    #[test]
    fn open_lookup_end() {
        let s = Sessions::new(ConsoleConfig::default(), true).unwrap();
        let (id, set) = s.open("st_x").unwrap();
        assert!(set.contains("HttpOnly; Secure; SameSite=Strict; Path=/"));
        assert_eq!(id.len(), 43);
        let h = headers(&[("cookie", &format!("a=b; {COOKIE}={id}"))]);
        let live = s.lookup(&h).unwrap();
        assert_eq!(live.credential.authorization(), "Bearer st_x");
        s.end(&live.key);
        assert_eq!(s.lookup(&h).unwrap_err(), SessionError::Unknown);
        assert_eq!(
            s.lookup(&HeaderMap::new()).unwrap_err(),
            SessionError::Missing
        );
    }

    #[test]
    fn csrf_and_origin() {
        let s = Sessions::new(ConsoleConfig::default(), true).unwrap();
        let (id, _) = s.open("st_x").unwrap();
        let live = s
            .lookup(&headers(&[("cookie", &format!("{COOKIE}={id}"))]))
            .unwrap();
        let post = Method::POST;
        assert!(
            s.check_csrf(
                &Method::GET,
                &Uri::from_static("/x"),
                &HeaderMap::new(),
                &live
            )
            .is_ok()
        );
        assert_eq!(
            s.check_csrf(&post, &Uri::from_static("/x"), &HeaderMap::new(), &live)
                .unwrap_err(),
            SessionError::CsrfMissing
        );
        assert_eq!(
            s.check_csrf(
                &post,
                &Uri::from_static("/x"),
                &headers(&[(CSRF_HEADER, "nope")]),
                &live
            )
            .unwrap_err(),
            SessionError::CsrfMismatch
        );
        let ok = headers(&[
            (CSRF_HEADER, &live.csrf),
            ("host", "h:1"),
            ("origin", "https://h:1"),
        ]);
        assert!(
            s.check_csrf(&post, &Uri::from_static("/x"), &ok, &live)
                .is_ok()
        );
        let evil = headers(&[
            (CSRF_HEADER, &live.csrf),
            ("host", "h:1"),
            ("origin", "https://evil:1"),
        ]);
        assert!(matches!(
            s.check_csrf(&post, &Uri::from_static("/x"), &evil, &live),
            Err(SessionError::CrossOrigin { .. })
        ));
        // HTTP/2: the authority is in the URI, not in a Host header.
        let h2 = headers(&[(CSRF_HEADER, &live.csrf), ("origin", "https://h:1")]);
        assert!(
            s.check_csrf(&post, &Uri::from_static("https://h:1/x"), &h2, &live)
                .is_ok()
        );
        let site = headers(&[("sec-fetch-site", "cross-site")]);
        assert!(s.check_origin(&Uri::from_static("/x"), &site).is_err());
        // Origin "null" (a no-referrer page's form) only with Sec-Fetch-Site: same-origin.
        let null_same = headers(&[("origin", "null"), ("sec-fetch-site", "same-origin")]);
        assert!(s.check_origin(&Uri::from_static("/x"), &null_same).is_ok());
        assert!(
            s.check_origin(&Uri::from_static("/x"), &headers(&[("origin", "null")]))
                .is_err()
        );
        assert!(
            s.check_origin(
                &Uri::from_static("/x"),
                &headers(&[("sec-fetch-site", "none")])
            )
            .is_err()
        );
    }

    #[test]
    fn bounded() {
        let cfg = ConsoleConfig {
            max_sessions: 2,
            ..Default::default()
        };
        let s = Sessions::new(cfg, true).unwrap();
        s.open("a").unwrap();
        s.open("b").unwrap();
        assert_eq!(s.open("c").unwrap_err(), SessionError::Full);
        assert!(ConsoleConfig::default().validate().is_ok());
        let bad = ConsoleConfig {
            idle_timeout_secs: 10,
            ..Default::default()
        };
        assert!(bad.validate().unwrap_err().contains("idle_timeout_secs"));
    }
}
