//! Cost of verifying one JWT bearer token (parse, algorithm and key selection, signature,
//! claims, identity mapping) per algorithm: what OIDC adds to each request.

use std::hint::black_box;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RSA_PKCS1_SHA256,
    RsaKeyPair, RsaPublicKeyComponents,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::{Value, json};

use sentrace_access::jwt::{Algorithm, IssuerPolicy, Jwks, RoleMapping, TenantSource, verify};
use sentrace_core::{Role, TenantId};

const ISS: &str = "https://idp.example.test";
const NOW: u64 = 1_800_000_000;

fn token(alg: &str, kid: &str, sign: impl Fn(&[u8]) -> Vec<u8>) -> String {
    let header = json!({"alg": alg, "typ": "at+jwt", "kid": kid});
    let claims = json!({"iss": ISS, "aud": "sentrace", "sub": "user-1", "exp": NOW + 300,
                        "iat": NOW, "groups": ["staff", "sentrace-viewers"], "team": "t"});
    let input = format!(
        "{}.{}",
        B64.encode(header.to_string()),
        B64.encode(claims.to_string())
    );
    let sig = sign(input.as_bytes());
    format!("{input}.{}", B64.encode(sig))
}

fn bench(c: &mut Criterion) {
    let rng = SystemRandom::new();
    let rsa = RsaKeyPair::generate(KeySize::Rsa2048).expect("rsa");
    let ec = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).expect("ec");
    let ed = Ed25519KeyPair::generate().expect("ed");
    let n = RsaPublicKeyComponents::<Vec<u8>>::from(rsa.public_key());
    let p = ec.public_key().as_ref();
    let keys: Vec<Value> = vec![
        json!({"kty":"RSA","kid":"r","n":B64.encode(&n.n),"e":B64.encode(&n.e)}),
        json!({"kty":"EC","kid":"e","crv":"P-256","x":B64.encode(&p[1..33]),"y":B64.encode(&p[33..65])}),
        json!({"kty":"OKP","kid":"d","crv":"Ed25519","x":B64.encode(ed.public_key().as_ref())}),
    ];
    let jwks = Jwks::from_json(json!({ "keys": keys }).to_string().as_bytes()).expect("jwks");
    let policy = IssuerPolicy {
        issuer: ISS.into(),
        audience: "sentrace".into(),
        algorithms: Algorithm::ALL.to_vec(),
        leeway_seconds: 60,
        tenant: TenantSource::Fixed(TenantId::new("acme").expect("tenant")),
        roles_claim: "groups".into(),
        roles: vec![RoleMapping {
            group: "sentrace-viewers".into(),
            role: Role::Viewer,
        }],
        team_claim: Some("team".into()),
    };
    let tokens = [
        (
            "RS256",
            token("RS256", "r", |m| {
                let mut s = vec![0; rsa.public_modulus_len()];
                rsa.sign(&RSA_PKCS1_SHA256, &rng, m, &mut s).expect("sign");
                s
            }),
        ),
        (
            "ES256",
            token("ES256", "e", |m| {
                ec.sign(&rng, m).expect("sign").as_ref().to_vec()
            }),
        ),
        (
            "EdDSA",
            token("EdDSA", "d", |m| ed.sign(m).as_ref().to_vec()),
        ),
    ];
    let mut g = c.benchmark_group("jwt_verify");
    for (name, t) in &tokens {
        assert!(verify(t, &jwks, &policy, NOW).is_ok(), "{name}");
        g.bench_function(*name, |b| {
            b.iter(|| black_box(verify(black_box(t), &jwks, &policy, NOW)))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
