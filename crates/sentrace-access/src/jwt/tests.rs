//! The JWT matrix: keys made at test time with aws-lc-rs, tokens signed by hand (not by the
//! library under test), every refusal checked by its variant.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RSA_PKCS1_SHA256,
    RsaKeyPair, RsaPublicKeyComponents,
};
use aws_lc_rs::{hmac, rsa::KeySize};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde_json::{Value, json};

use sentrace_core::{AuthMethod, PrincipalKind, Role, TenantId};

use super::*;

const ISS: &str = "https://idp.example.test/realms/acme";
const AUD: &str = "sentrace";
const NOW: u64 = 1_800_000_000;

enum Signer {
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair),
    Ed(Ed25519KeyPair),
}

struct TestKey {
    kid: String,
    signer: Signer,
}

impl TestKey {
    fn rsa(kid: &str) -> Self {
        let kp = RsaKeyPair::generate(KeySize::Rsa2048).unwrap();
        Self {
            kid: kid.into(),
            signer: Signer::Rsa(kp),
        }
    }
    fn ec(kid: &str) -> Self {
        let kp = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
        Self {
            kid: kid.into(),
            signer: Signer::Ec(kp),
        }
    }
    fn ed(kid: &str) -> Self {
        Self {
            kid: kid.into(),
            signer: Signer::Ed(Ed25519KeyPair::generate().unwrap()),
        }
    }
    fn alg(&self) -> &'static str {
        match self.signer {
            Signer::Rsa(_) => "RS256",
            Signer::Ec(_) => "ES256",
            Signer::Ed(_) => "EdDSA",
        }
    }
    /// The public JWK.
    fn jwk(&self) -> Value {
        match &self.signer {
            Signer::Rsa(kp) => {
                let c = RsaPublicKeyComponents::<Vec<u8>>::from(kp.public_key());
                json!({"kty":"RSA","kid":self.kid,"use":"sig","alg":"RS256",
                       "n":B64.encode(&c.n),"e":B64.encode(&c.e)})
            }
            Signer::Ec(kp) => {
                let p = kp.public_key().as_ref();
                json!({"kty":"EC","kid":self.kid,"crv":"P-256",
                       "x":B64.encode(&p[1..33]),"y":B64.encode(&p[33..65])})
            }
            Signer::Ed(kp) => json!({"kty":"OKP","kid":self.kid,"crv":"Ed25519",
                       "x":B64.encode(kp.public_key().as_ref())}),
        }
    }
    /// The bytes an attacker would use as an HMAC secret: the public key as published.
    fn public_bytes(&self) -> Vec<u8> {
        match &self.signer {
            Signer::Rsa(kp) => kp.public_key().as_ref().to_vec(),
            Signer::Ec(kp) => kp.public_key().as_ref().to_vec(),
            Signer::Ed(kp) => kp.public_key().as_ref().to_vec(),
        }
    }
    fn sign(&self, input: &[u8]) -> Vec<u8> {
        let rng = SystemRandom::new();
        match &self.signer {
            Signer::Rsa(kp) => {
                let mut sig = vec![0; kp.public_modulus_len()];
                kp.sign(&RSA_PKCS1_SHA256, &rng, input, &mut sig).unwrap();
                sig
            }
            Signer::Ec(kp) => kp.sign(&rng, input).unwrap().as_ref().to_vec(),
            Signer::Ed(kp) => kp.sign(input).as_ref().to_vec(),
        }
    }
    fn token(&self, claims: &Value) -> String {
        self.token_with(
            &json!({"alg": self.alg(), "typ": "JWT", "kid": self.kid}),
            claims,
        )
    }
    fn token_with(&self, header: &Value, claims: &Value) -> String {
        let input = signing_input(header, claims);
        format!("{input}.{}", B64.encode(self.sign(input.as_bytes())))
    }
}

fn signing_input(header: &Value, claims: &Value) -> String {
    format!(
        "{}.{}",
        B64.encode(header.to_string()),
        B64.encode(claims.to_string())
    )
}

fn jwks(keys: &[&TestKey]) -> Jwks {
    let doc = json!({"keys": keys.iter().map(|k| k.jwk()).collect::<Vec<_>>()});
    Jwks::from_json(doc.to_string().as_bytes()).unwrap()
}

fn policy() -> IssuerPolicy {
    IssuerPolicy {
        issuer: ISS.into(),
        audience: AUD.into(),
        algorithms: Algorithm::ALL.to_vec(),
        leeway_seconds: DEFAULT_LEEWAY_SECONDS,
        tenant: TenantSource::Fixed(TenantId::new("acme").unwrap()),
        roles_claim: "groups".into(),
        roles: vec![
            RoleMapping {
                group: "sentrace-admins".into(),
                role: Role::Admin,
            },
            RoleMapping {
                group: "sentrace-viewers".into(),
                role: Role::Viewer,
            },
        ],
        team_claim: Some("team".into()),
    }
}

fn claims() -> Value {
    json!({
        "iss": ISS, "aud": AUD, "sub": "user-42", "exp": NOW + 300, "iat": NOW - 10,
        "nbf": NOW - 10, "groups": ["staff", "sentrace-viewers"], "team": "payments",
    })
}

fn with(mut c: Value, key: &str, v: Value) -> Value {
    c[key] = v;
    c
}

fn without(mut c: Value, key: &str) -> Value {
    c.as_object_mut().unwrap().remove(key);
    c
}

#[test]
fn valid_tokens_of_each_algorithm_pass() {
    for key in [TestKey::rsa("r1"), TestKey::ec("e1"), TestKey::ed("d1")] {
        let set = jwks(&[&key]);
        let id = verify(&key.token(&claims()), &set, &policy(), NOW)
            .unwrap_or_else(|e| panic!("{}: {e}", key.alg()));
        assert_eq!(id.tenant.as_str(), "acme");
        assert_eq!(id.principal, format!("jwt:{ISS}#user-42"));
        assert_eq!(id.role, Role::Viewer);
        assert_eq!(id.kind, PrincipalKind::User);
        assert_eq!(id.team.as_deref(), Some("payments"));
        assert_eq!(id.method, AuthMethod::Jwt);
    }
}

#[test]
fn alg_none_is_refused() {
    let key = TestKey::ec("e1");
    let set = jwks(&[&key]);
    for alg in ["none", "None", "NONE"] {
        let input = signing_input(&json!({"alg": alg, "kid": "e1"}), &claims());
        for token in [format!("{input}."), format!("{input}.AAAA")] {
            assert_eq!(
                verify(&token, &set, &policy(), NOW),
                Err(JwtError::AlgorithmRefused { alg: alg.into() })
            );
        }
    }
}

#[test]
fn hs256_keyed_with_the_public_key_is_refused() {
    let key = TestKey::rsa("r1");
    let set = jwks(&[&key]);
    let secrets = [
        key.public_bytes(),
        key.jwk().to_string().into_bytes(),
        key.jwk()["n"].as_str().unwrap().as_bytes().to_vec(),
    ];
    for alg in ["HS256", "HS384", "HS512"] {
        for secret in &secrets {
            let header = json!({"alg": alg, "kid": "r1"});
            let input = signing_input(&header, &claims());
            let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, secret), input.as_bytes());
            let token = format!("{input}.{}", B64.encode(tag.as_ref()));
            assert_eq!(
                verify(&token, &set, &policy(), NOW),
                Err(JwtError::AlgorithmRefused { alg: alg.into() })
            );
        }
    }
    // A symmetric key in the set is never used, whatever the header says.
    let doc = json!({"keys": [{"kty": "oct", "kid": "h", "k": B64.encode(b"0123456789abcdef")}]});
    let set = Jwks::from_json(doc.to_string().as_bytes()).unwrap();
    assert!(set.is_empty());
    assert_eq!(set.skipped(), 1);
}

#[test]
fn other_algorithms_are_refused_and_policy_narrows() {
    let key = TestKey::rsa("r1");
    let set = jwks(&[&key]);
    for alg in ["PS256", "RS512", "ES384", "Ed25519", "rs256", ""] {
        let token = key.token_with(&json!({"alg": alg, "kid": "r1"}), &claims());
        assert_eq!(
            verify(&token, &set, &policy(), NOW),
            Err(JwtError::AlgorithmRefused { alg: alg.into() }),
            "{alg}"
        );
    }
    let mut only_es = policy();
    only_es.algorithms = vec![Algorithm::Es256];
    assert_eq!(
        verify(&key.token(&claims()), &set, &only_es, NOW),
        Err(JwtError::AlgorithmRefused {
            alg: "RS256".into()
        })
    );
}

#[test]
fn wrong_key_and_tampering_fail_the_signature() {
    let signer = TestKey::ec("e1");
    let published = TestKey::ec("e1");
    let token = signer.token(&claims());
    assert_eq!(
        verify(&token, &jwks(&[&published]), &policy(), NOW),
        Err(JwtError::BadSignature)
    );
    // Same key, claims changed after signing (a role escalation attempt).
    let set = jwks(&[&signer]);
    let forged_claims = with(claims(), "groups", json!(["sentrace-admins"]));
    let mut parts: Vec<&str> = token.split('.').collect();
    let forged = B64.encode(forged_claims.to_string());
    parts[1] = &forged;
    assert_eq!(
        verify(&parts.join("."), &set, &policy(), NOW),
        Err(JwtError::BadSignature)
    );
}

#[test]
fn key_type_must_fit_the_algorithm() {
    // An ES256 header naming an RSA key's kid finds no key: type and kid select together.
    let rsa = TestKey::rsa("shared");
    let ec = TestKey::ec("shared");
    let token = ec.token(&claims());
    assert_eq!(
        verify(&token, &jwks(&[&rsa]), &policy(), NOW),
        Err(JwtError::UnknownKey {
            kid: Some("shared".into()),
            alg: Algorithm::Es256
        })
    );
}

#[test]
fn time_claims() {
    let key = TestKey::ed("d1");
    let set = jwks(&[&key]);
    let p = policy();
    let leeway = p.leeway_seconds;
    let check = |c: Value| verify(&key.token(&c), &set, &p, NOW);
    assert_eq!(
        check(with(claims(), "exp", json!(NOW - leeway))),
        Err(JwtError::Expired {
            exp: NOW - leeway,
            now: NOW
        })
    );
    // Within the leeway an expired token still passes.
    assert!(check(with(claims(), "exp", json!(NOW - leeway + 1))).is_ok());
    assert_eq!(
        check(with(claims(), "nbf", json!(NOW + leeway + 1))),
        Err(JwtError::NotYetValid {
            nbf: NOW + leeway + 1,
            now: NOW
        })
    );
    assert!(check(with(claims(), "nbf", json!(NOW + leeway))).is_ok());
    assert_eq!(
        check(with(claims(), "iat", json!(NOW + leeway + 1))),
        Err(JwtError::IssuedInFuture {
            iat: NOW + leeway + 1,
            now: NOW
        })
    );
    assert_eq!(
        check(without(claims(), "exp")),
        Err(JwtError::MissingClaim {
            claim: "exp".into()
        })
    );
    assert!(matches!(
        check(with(claims(), "exp", json!("tomorrow"))),
        Err(JwtError::InvalidClaim { .. })
    ));
    // Fractional NumericDates are allowed.
    assert!(check(with(claims(), "exp", json!(NOW as f64 + 100.5))).is_ok());
}

#[test]
fn issuer_and_audience() {
    let key = TestKey::rsa("r1");
    let set = jwks(&[&key]);
    let check = |c: Value| verify(&key.token(&c), &set, &policy(), NOW);
    assert_eq!(
        check(with(claims(), "aud", json!("other-api"))),
        Err(JwtError::WrongAudience)
    );
    assert_eq!(
        check(with(claims(), "aud", json!(["a", "b"]))),
        Err(JwtError::WrongAudience)
    );
    assert!(check(with(claims(), "aud", json!(["other", AUD]))).is_ok());
    assert_eq!(
        check(without(claims(), "aud")),
        Err(JwtError::MissingClaim {
            claim: "aud".into()
        })
    );
    for iss in [
        format!("{ISS}/"),
        "https://evil.test".to_string(),
        ISS.to_uppercase(),
    ] {
        assert_eq!(
            check(with(claims(), "iss", json!(iss))),
            Err(JwtError::WrongIssuer { iss: cut(&iss) })
        );
    }
    assert!(matches!(
        check(with(claims(), "iss", json!([ISS]))),
        Err(JwtError::InvalidClaim { .. })
    ));
}

#[test]
fn unknown_kid_and_missing_kid() {
    let a = TestKey::ec("a");
    let b = TestKey::ec("b");
    let set = jwks(&[&a]);
    assert_eq!(
        verify(&b.token(&claims()), &set, &policy(), NOW),
        Err(JwtError::UnknownKey {
            kid: Some("b".into()),
            alg: Algorithm::Es256
        })
    );
    // Without kid: the only key of the algorithm is used; with two it is ambiguous.
    let no_kid = a.token_with(&json!({"alg": "ES256"}), &claims());
    assert!(verify(&no_kid, &set, &policy(), NOW).is_ok());
    let two = jwks(&[&a, &b]);
    assert_eq!(
        verify(&no_kid, &two, &policy(), NOW),
        Err(JwtError::UnknownKey {
            kid: None,
            alg: Algorithm::Es256
        })
    );
    assert_eq!(unverified_kid(&b.token(&claims())).as_deref(), Some("b"));
}

#[test]
fn oversized_and_malformed_tokens() {
    let key = TestKey::ed("d1");
    let set = jwks(&[&key]);
    let big = with(claims(), "pad", json!("x".repeat(MAX_TOKEN_BYTES)));
    let token = key.token(&big);
    assert_eq!(
        verify(&token, &set, &policy(), NOW),
        Err(JwtError::TooLarge {
            len: token.len(),
            max: MAX_TOKEN_BYTES
        })
    );
    assert!(matches!(
        unverified_issuer(&token),
        Err(JwtError::TooLarge { .. })
    ));
    for bad in ["", "a.b", "a.b.c.d", "!!.e30.e30", "e30.e30", "W10.e30.AA"] {
        assert!(
            matches!(
                verify(bad, &set, &policy(), NOW),
                Err(JwtError::Malformed { .. })
            ),
            "{bad}"
        );
    }
    let crit = key.token_with(
        &json!({"alg":"EdDSA","kid":"d1","crit":["b64"],"b64":false}),
        &claims(),
    );
    assert_eq!(
        verify(&crit, &set, &policy(), NOW),
        Err(JwtError::CriticalHeader)
    );
}

#[test]
fn role_mapping_is_first_match_in_order() {
    let key = TestKey::ec("e1");
    let set = jwks(&[&key]);
    let check = |c: Value, p: &IssuerPolicy| verify(&key.token(&c), &set, p, NOW);
    let both = with(
        claims(),
        "groups",
        json!(["sentrace-viewers", "sentrace-admins"]),
    );
    assert_eq!(check(both.clone(), &policy()).unwrap().role, Role::Admin);
    let mut reversed = policy();
    reversed.roles.reverse();
    assert_eq!(check(both, &reversed).unwrap().role, Role::Viewer);
    // A single string is one group.
    let one = with(claims(), "groups", json!("sentrace-admins"));
    assert_eq!(check(one, &policy()).unwrap().role, Role::Admin);
    for groups in [json!(["staff"]), json!([]), json!("sentrace-admins staff")] {
        assert_eq!(
            check(with(claims(), "groups", groups), &policy()),
            Err(JwtError::NoRoleMapping {
                principal: format!("jwt:{ISS}#user-42"),
                claim: "groups".into()
            })
        );
    }
    assert!(matches!(
        check(without(claims(), "groups"), &policy()),
        Err(JwtError::NoRoleMapping { .. })
    ));
    assert!(matches!(
        check(with(claims(), "groups", json!({"a": 1})), &policy()),
        Err(JwtError::InvalidClaim { .. })
    ));
}

#[test]
fn tenant_claim_and_principal_kinds() {
    let key = TestKey::rsa("r1");
    let set = jwks(&[&key]);
    let mut p = policy();
    p.tenant = TenantSource::Claim("tenant".into());
    let check = |c: Value| verify(&key.token(&c), &set, &p, NOW);
    let id = check(with(claims(), "tenant", json!("globex"))).unwrap();
    assert_eq!(id.tenant.as_str(), "globex");
    assert_eq!(
        check(with(claims(), "tenant", json!("../Globex"))),
        Err(JwtError::InvalidTenant {
            value: "../Globex".into()
        })
    );
    assert_eq!(
        check(claims()),
        Err(JwtError::MissingClaim {
            claim: "tenant".into()
        })
    );
    // Client credentials: sub equal to client_id (RFC 9068), no sub, gty, idtyp.
    let base = with(claims(), "tenant", json!("globex"));
    let cc = with(
        with(base.clone(), "sub", json!("svc")),
        "client_id",
        json!("svc"),
    );
    let id = check(cc).unwrap();
    assert_eq!(id.kind, PrincipalKind::ServiceAccount);
    assert_eq!(id.principal, format!("jwt:{ISS}#svc"));
    let id = check(with(without(base.clone(), "sub"), "azp", json!("app-1"))).unwrap();
    assert_eq!(id.kind, PrincipalKind::ServiceAccount);
    assert_eq!(id.principal, format!("jwt:{ISS}#app-1"));
    let gty = with(base.clone(), "gty", json!("client-credentials"));
    assert_eq!(check(gty).unwrap().kind, PrincipalKind::ServiceAccount);
    let user = with(base.clone(), "azp", json!("console"));
    assert_eq!(check(user).unwrap().kind, PrincipalKind::User);
    assert_eq!(
        check(without(base, "sub")),
        Err(JwtError::MissingClaim {
            claim: "sub".into()
        })
    );
}

#[test]
fn jwks_limits_and_skips() {
    assert!(matches!(
        Jwks::from_json(&vec![b' '; MAX_JWKS_BYTES + 1]),
        Err(JwksError::TooLarge { .. })
    ));
    let many = json!({"keys": vec![json!({"kty":"oct"}); MAX_JWKS_KEYS + 1]});
    assert!(matches!(
        Jwks::from_json(many.to_string().as_bytes()),
        Err(JwksError::TooManyKeys { .. })
    ));
    assert!(matches!(
        Jwks::from_json(b"[]"),
        Err(JwksError::Invalid { .. })
    ));
    let ec = TestKey::ec("e1");
    let rsa = TestKey::rsa("r1");
    let mut enc = rsa.jwk();
    enc["use"] = json!("enc");
    let mut pss = rsa.jwk();
    pss["alg"] = json!("PS256");
    let mut p384 = ec.jwk();
    p384["crv"] = json!("P-384");
    let doc = json!({"keys": [ec.jwk(), enc, pss, p384, {"kty": "RSA", "n": "AQAB", "e": "AQAB"}]});
    let set = Jwks::from_json(doc.to_string().as_bytes()).unwrap();
    assert_eq!((set.len(), set.skipped()), (1, 4));
    assert!(set.has_kid("e1") && !set.has_kid("r1"));
}

#[test]
fn policy_validation() {
    assert!(policy().validate().is_ok());
    let mut p = policy();
    p.leeway_seconds = MAX_LEEWAY_SECONDS + 1;
    assert!(p.validate().unwrap_err().contains("leeway_seconds"));
    let mut p = policy();
    p.roles.clear();
    assert!(p.validate().unwrap_err().contains("roles"));
    let mut p = policy();
    p.algorithms.clear();
    assert!(p.validate().unwrap_err().contains("algorithms"));
}
