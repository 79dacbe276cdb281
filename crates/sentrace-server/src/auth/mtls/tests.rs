//! Tenant separation of client-certificate trust, on certificates made here.

use std::path::Path;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use rustls_pki_types::{CertificateDer, UnixTime};
use sentrace_access::cert::{CertRule, NameField};
use sentrace_core::{AuthMethod, PrincipalKind, Role, TenantId};

use super::config::MtlsTrust;
use super::{ClientCerts, MtlsError, Refusal};

fn ca_params(name: &str, serial: u64) -> CertificateParams {
    let mut p = CertificateParams::default();
    p.distinguished_name.push(DnType::CommonName, name);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign];
    p.serial_number = Some(serial.into());
    p.not_before = rcgen::date_time_ymd(2020, 1, 1);
    p.not_after = rcgen::date_time_ymd(2099, 1, 1);
    p
}

fn leaf(issuer: &Issuer<'_, KeyPair>, cn: &str, uri: &str) -> CertificateDer<'static> {
    let mut p = CertificateParams::default();
    p.distinguished_name.push(DnType::CommonName, cn);
    p.subject_alt_names = vec![SanType::URI(uri.try_into().unwrap())];
    p.not_before = rcgen::date_time_ymd(2020, 1, 1);
    p.not_after = rcgen::date_time_ymd(2099, 1, 1);
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    p.signed_by(&key, issuer).unwrap().der().clone()
}

fn entry(dir: &Path, tenant: &str, pem: &str, role: Role) -> MtlsTrust {
    let ca = dir.join(format!("{tenant}-{}.pem", pem.len()));
    std::fs::write(&ca, pem).unwrap();
    MtlsTrust {
        tenant: TenantId::new(tenant).unwrap(),
        ca,
        rules: vec![CertRule {
            field: NameField::Uri,
            pattern: "spiffe://example/*".into(),
            role,
            kind: PrincipalKind::Agent,
            team: None,
        }],
    }
}

#[test]
fn each_tenant_only_maps_its_own_ca() {
    let dir = tempfile::tempdir().unwrap();
    let (ka, kb) = (
        KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap(),
        KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap(),
    );
    let (pa, pb) = (ca_params("A", 1), ca_params("B", 2));
    let (ca_a, ca_b) = (pa.self_signed(&ka).unwrap(), pb.self_signed(&kb).unwrap());
    let certs = ClientCerts::load(&[
        entry(dir.path(), "tenant-a", &ca_a.pem(), Role::Ingest),
        entry(dir.path(), "tenant-b", &ca_b.pem(), Role::Viewer),
    ])
    .unwrap();
    let (ia, ib) = (Issuer::new(pa, ka), Issuer::new(pb, kb));
    let now = UnixTime::now();
    let a = certs
        .identify(&leaf(&ia, "x", "spiffe://example/a"), &[], now)
        .unwrap();
    assert_eq!(
        (a.tenant.as_str(), a.role, a.method, a.principal.as_str()),
        (
            "tenant-a",
            Role::Ingest,
            AuthMethod::Certificate,
            "cert:spiffe://example/a"
        )
    );
    let b = certs
        .identify(&leaf(&ib, "x", "spiffe://example/a"), &[], now)
        .unwrap();
    assert_eq!((b.tenant.as_str(), b.role), ("tenant-b", Role::Viewer));
    assert!(matches!(
        certs.identify(&leaf(&ia, "x", "https://other/a"), &[], now),
        Err(Refusal::NoMapping { tenant, .. }) if tenant.as_str() == "tenant-a"
    ));
}

#[test]
fn a_key_trusted_by_two_tenants_is_ambiguous_and_a_shared_ca_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    // Two distinct root certificates over one key and subject: both verify the same leaf.
    let one = ca_params("Shared", 1).self_signed(&key).unwrap();
    let two = ca_params("Shared", 2).self_signed(&key).unwrap();
    assert_ne!(one.der(), two.der());
    let certs = ClientCerts::load(&[
        entry(dir.path(), "tenant-a", &one.pem(), Role::Ingest),
        entry(
            dir.path(),
            "tenant-b",
            &format!("{}\n", two.pem()),
            Role::Admin,
        ),
    ])
    .unwrap();
    let issuer = Issuer::new(ca_params("Shared", 1), key);
    assert!(matches!(
        certs.identify(
            &leaf(&issuer, "x", "spiffe://example/a"),
            &[],
            UnixTime::now()
        ),
        Err(Refusal::Ambiguous { .. })
    ));
    // The very same CA certificate for two tenants is refused at start.
    let e = ClientCerts::load(&[
        entry(dir.path(), "tenant-a", &one.pem(), Role::Ingest),
        entry(
            dir.path(),
            "tenant-b",
            &format!("{}\n\n", one.pem()),
            Role::Ingest,
        ),
    ])
    .unwrap_err();
    assert!(matches!(e, MtlsError::SharedCa { .. }), "{e}");
}
