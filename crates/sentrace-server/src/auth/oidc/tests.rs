//! Key fetching against a real loopback HTTP server whose discovery document and JWKS the
//! test controls: rotation (an unknown `kid` triggers one refresh and then passes), the
//! bound on refreshes under a flood of unknown `kid`s, and discovery checks.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use axum::extract::State;
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde_json::{Value, json};

use super::config::RoleMapConfig;
use super::*;
use crate::auth::now_unix;
use sentrace_core::Role;

const AUD: &str = "sentrace";

struct Key {
    kid: String,
    pair: Ed25519KeyPair,
}

impl Key {
    fn new(kid: &str) -> Self {
        Self {
            kid: kid.into(),
            pair: Ed25519KeyPair::generate().unwrap(),
        }
    }
    fn jwk(&self) -> Value {
        json!({"kty": "OKP", "crv": "Ed25519", "kid": self.kid, "use": "sig",
               "x": B64.encode(self.pair.public_key().as_ref())})
    }
    fn token(&self, iss: &str) -> String {
        let header = json!({"alg": "EdDSA", "typ": "at+jwt", "kid": self.kid});
        let now = now_unix();
        let claims = json!({"iss": iss, "aud": AUD, "sub": "svc", "client_id": "svc",
                            "exp": now + 300, "iat": now, "groups": ["sentrace-viewers"]});
        let input = format!(
            "{}.{}",
            B64.encode(header.to_string()),
            B64.encode(claims.to_string())
        );
        let sig = self.pair.sign(input.as_bytes());
        format!("{input}.{}", B64.encode(sig.as_ref()))
    }
}

/// What the fake identity provider serves.
#[derive(Default)]
struct Idp {
    issuer: Mutex<String>,
    jwks: Mutex<String>,
    jwks_requests: AtomicU64,
}

async fn discovery(State(idp): State<Arc<Idp>>) -> axum::Json<Value> {
    let iss = idp.issuer.lock().unwrap().clone();
    axum::Json(json!({"issuer": iss, "jwks_uri": format!("{iss}/jwks")}))
}

async fn jwks(State(idp): State<Arc<Idp>>) -> String {
    idp.jwks_requests.fetch_add(1, Relaxed);
    idp.jwks.lock().unwrap().clone()
}

/// Starts the provider on a loopback port; returns its issuer URL.
async fn start_idp(idp: Arc<Idp>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let iss = format!("http://{}", listener.local_addr().unwrap());
    *idp.issuer.lock().unwrap() = iss.clone();
    let app = axum::Router::new()
        .route("/.well-known/openid-configuration", get(discovery))
        .route("/jwks", get(jwks))
        .with_state(idp);
    tokio::spawn(async move { axum::serve(listener, app).await });
    iss
}

fn set_keys(idp: &Idp, keys: &[&Key]) {
    let doc = json!({"keys": keys.iter().map(|k| k.jwk()).collect::<Vec<_>>()});
    *idp.jwks.lock().unwrap() = doc.to_string();
}

fn issuer_config(iss: &str) -> OidcIssuerConfig {
    let mut c: OidcIssuerConfig = toml::from_str(&format!(
        "issuer = {iss:?}\naudience = {AUD:?}\ndiscovery = true\nallow_http = true\ntenant = \"acme\"\nroles = [{{ group = \"sentrace-viewers\", role = \"viewer\" }}]\n"
    ))
    .unwrap();
    // Long enough that no second unknown-kid refresh can fall due during the test.
    c.refresh_interval_seconds = 3600;
    c
}

#[tokio::test]
async fn unknown_kid_refreshes_once_then_passes_and_floods_are_bounded() {
    let idp = Arc::new(Idp::default());
    let iss = start_idp(idp.clone()).await;
    let (a, b) = (Key::new("a"), Key::new("b"));
    set_keys(&idp, &[&a]);
    let issuers = Issuers::new(&[issuer_config(&iss)]).unwrap();
    issuers.warm_up().await;
    assert_eq!(idp.jwks_requests.load(Relaxed), 1);

    let id = issuers.verify(&a.token(&iss), now_unix()).await.unwrap();
    assert_eq!((id.tenant.as_str(), id.role), ("acme", Role::Viewer));
    assert_eq!(id.principal, format!("jwt:{iss}#svc"));

    // The provider rotates: b is new. Its first token triggers one refresh and passes.
    set_keys(&idp, &[&a, &b]);
    issuers.verify(&b.token(&iss), now_unix()).await.unwrap();
    assert_eq!(idp.jwks_requests.load(Relaxed), 2);
    issuers.verify(&b.token(&iss), now_unix()).await.unwrap();
    assert_eq!(
        idp.jwks_requests.load(Relaxed),
        2,
        "a known kid fetches nothing"
    );

    // A flood of unknown kids within the interval costs the provider nothing more.
    for i in 0..20 {
        let k = Key::new(&format!("random-{i}"));
        assert!(matches!(
            issuers.verify(&k.token(&iss), now_unix()).await,
            Err(JwtError::UnknownKey { .. })
        ));
    }
    assert_eq!(idp.jwks_requests.load(Relaxed), 2);
    assert_eq!(issuers.fetches(&iss), Some(2));

    // An issuer that is not configured is refused without a request.
    let other = "http://127.0.0.1:1";
    assert_eq!(
        issuers.verify(&a.token(other), now_unix()).await,
        Err(JwtError::UnknownIssuer { iss: other.into() })
    );
    assert_eq!(idp.jwks_requests.load(Relaxed), 2);
}

#[tokio::test]
async fn discovery_must_name_the_configured_issuer() {
    let idp = Arc::new(Idp::default());
    let iss = start_idp(idp.clone()).await;
    let a = Key::new("a");
    set_keys(&idp, &[&a]);
    // The document claims another issuer: its keys are not used.
    *idp.issuer.lock().unwrap() = "https://evil.test".into();
    let issuers = Issuers::new(&[issuer_config(&iss)]).unwrap();
    issuers.warm_up().await;
    assert_eq!(idp.jwks_requests.load(Relaxed), 0);
    assert_eq!(
        issuers.verify(&a.token(&iss), now_unix()).await,
        Err(JwtError::KeysUnavailable { issuer: iss })
    );
}

#[tokio::test]
async fn jwks_file_is_reread_on_unknown_kid() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jwks.json");
    let (a, b) = (Key::new("a"), Key::new("b"));
    let write = |keys: &[&Key]| {
        let doc = json!({"keys": keys.iter().map(|k| k.jwk()).collect::<Vec<_>>()});
        std::fs::write(&path, doc.to_string()).unwrap();
    };
    write(&[&a]);
    let iss = "https://idp.example.test";
    let mut cfg = issuer_config(iss);
    cfg.discovery = false;
    cfg.allow_http = false;
    cfg.jwks_file = Some(path.clone());
    let issuers = Issuers::new(&[cfg]).unwrap();
    issuers.warm_up().await;
    issuers.verify(&a.token(iss), now_unix()).await.unwrap();
    write(&[&b]);
    issuers.verify(&b.token(iss), now_unix()).await.unwrap();
    assert_eq!(issuers.fetches(iss), Some(2));
    // a was removed from the file and the cache followed.
    assert!(matches!(
        issuers.verify(&a.token(iss), now_unix()).await,
        Err(JwtError::UnknownKey { .. })
    ));
}

#[test]
fn config_validation() {
    let ok = issuer_config("http://127.0.0.1:8080");
    assert!(ok.validate().is_ok());
    let check = |f: &dyn Fn(&mut OidcIssuerConfig)| {
        let mut c = ok.clone();
        f(&mut c);
        c.validate().unwrap_err()
    };
    assert!(check(&|c| c.issuer = "http://idp.example.com".into()).contains("loopback"));
    assert!(
        check(&|c| {
            c.issuer = "http://127.0.0.1".into();
            c.allow_http = false
        })
        .contains("https://")
    );
    assert!(check(&|c| c.jwks_url = Some("https://x.test/jwks".into())).contains("exactly one"));
    assert!(check(&|c| c.tenant_claim = Some("tid".into())).contains("tenant"));
    assert!(check(&|c| c.tenant = Some("Not A Tenant".into())).contains("tenant"));
    assert!(check(&|c| c.algorithms = vec!["HS256".into()]).contains("HS256"));
    assert!(check(&|c| c.algorithms.clear()).contains("algorithms"));
    assert!(check(&|c| c.leeway_seconds = 301).contains("leeway_seconds"));
    assert!(check(&|c| c.roles.clear()).contains("roles"));
    assert!(
        check(&|c| c.roles = vec![RoleMapConfig {
            group: "g".into(),
            role: "root".into()
        }])
        .contains("root")
    );
    assert!(check(&|c| c.refresh_interval_seconds = 0).contains("refresh_interval_seconds"));
    let twice = config::validate_issuers(&[ok.clone(), ok.clone()]).unwrap_err();
    assert!(twice.contains("twice"));
    // Unknown keys are errors.
    assert!(
        toml::from_str::<OidcIssuerConfig>(
            "issuer = \"https://a\"\naudience = \"x\"\nroles = []\nscope = \"x\"\n"
        )
        .is_err()
    );
}
