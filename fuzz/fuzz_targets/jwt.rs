//! JWT verifier and JWKS parser (`sentrace_access::jwt`): never panic on any input, and no
//! input verifies against a key whose private half nobody has here (the RFC 8037 §A.2
//! Ed25519 public key; its private key is published, but not in this target).
#![no_main]
use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use sentrace_access::jwt::{
    Algorithm, IssuerPolicy, Jwks, RoleMapping, TenantSource, unverified_issuer, unverified_kid,
    verify,
};
use sentrace_core::Role;

static JWKS: LazyLock<Jwks> = LazyLock::new(|| {
    Jwks::from_json(
        br#"{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"k","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}"#,
    )
    .unwrap()
});

static POLICY: LazyLock<IssuerPolicy> = LazyLock::new(|| IssuerPolicy {
    issuer: "https://idp.test".into(),
    audience: "sentrace".into(),
    algorithms: Algorithm::ALL.to_vec(),
    leeway_seconds: 60,
    tenant: TenantSource::Claim("tenant".into()),
    roles_claim: "groups".into(),
    roles: vec![RoleMapping {
        group: "g".into(),
        role: Role::Viewer,
    }],
    team_claim: Some("team".into()),
});

fuzz_target!(|data: &[u8]| {
    let _ = Jwks::from_json(data);
    if let Ok(token) = std::str::from_utf8(data) {
        let _ = unverified_issuer(token);
        let _ = unverified_kid(token);
        assert!(verify(token, &JWKS, &POLICY, 1_800_000_000).is_err());
    }
});
