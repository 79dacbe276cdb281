//! TLS client certificates as an identity source.
//!
//! Each `[[auth.mtls]]` entry trusts one CA bundle for one tenant. A listener that takes
//! client certificates (`[tls.client_auth]`) gets a [`MappingVerifier`]: rustls's
//! `WebPkiClientVerifier` over the roots of every tenant (so an unknown CA, an expired or not
//! yet valid certificate, or a missing one on a `required` listener fails the handshake with
//! the matching TLS alert), followed by [`ClientCerts::identify`], which verifies the chain
//! against each tenant's roots separately, so a certificate issued under tenant A's CA can
//! never become an identity of tenant B, and maps the certificate's names by that tenant's
//! rules. A certificate that is trusted but matched by no rule, or trusted by two tenants,
//! fails the handshake with the `access_denied` alert and a log line that says why.
//!
//! After the handshake the listener calls [`ClientCerts::identify`] again on the peer's chain
//! and puts the identity into [`crate::auth::Connection::peer`]. The identity is fixed for
//! the connection's life.

pub mod config;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, RootCertStore};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, UnixTime};

use sentrace_access::cert::{CertError, CertNames, CertRule, map_identity};
use sentrace_core::{Identity, TenantId};

use self::config::{ClientAuthMode, MtlsTrust};

/// Largest CA bundle file read, in bytes.
pub const MAX_CA_FILE_BYTES: u64 = 1024 * 1024;
/// Most certificates in one CA bundle.
pub const MAX_CA_CERTS: usize = 100;

/// Why the client-certificate trust could not be loaded at start. Each names the file.
#[derive(Debug, thiserror::Error)]
pub enum MtlsError {
    /// The CA file could not be read.
    #[error("[[auth.mtls]] tenant {tenant}: reading CA file {file}: {source}")]
    Read {
        tenant: TenantId,
        file: String,
        source: std::io::Error,
    },
    /// The CA file is too large.
    #[error(
        "[[auth.mtls]] tenant {tenant}: CA file {file} is larger than {MAX_CA_FILE_BYTES} bytes"
    )]
    TooLarge { tenant: TenantId, file: String },
    /// The CA file is not PEM, or holds no certificate.
    #[error("[[auth.mtls]] tenant {tenant}: CA file {file}: {reason}")]
    Pem {
        tenant: TenantId,
        file: String,
        reason: String,
    },
    /// A certificate in the file cannot be a trust anchor.
    #[error(
        "[[auth.mtls]] tenant {tenant}: CA file {file}, certificate {index}: not usable as a CA: {reason}"
    )]
    BadCa {
        tenant: TenantId,
        file: String,
        index: usize,
        reason: String,
    },
    /// The same CA certificate is trusted for two tenants.
    #[error(
        "CA file {file} (tenant {tenant}) holds a CA certificate that tenant {other} also trusts; a CA may issue client certificates for one tenant only"
    )]
    SharedCa {
        tenant: TenantId,
        other: TenantId,
        file: String,
    },
    /// rustls refused to build a verifier.
    #[error("building the client-certificate verifier: {0}")]
    Verifier(String),
}

/// Why a presented client certificate yields no identity.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    /// No tenant's CA issued it (or it is expired, not yet valid, or not for client use).
    #[error("no [[auth.mtls]] CA accepts the certificate: {0}")]
    Untrusted(rustls::Error),
    /// CAs of two tenants accept it.
    #[error(
        "the certificate is accepted by the CAs of tenants {first} and {second}; refused as ambiguous"
    )]
    Ambiguous { first: TenantId, second: TenantId },
    /// Its names could not be read.
    #[error("tenant {tenant}'s CA issued the certificate, but {source}")]
    Names { tenant: TenantId, source: CertError },
    /// Trusted, but no rule maps its names.
    #[error(
        "tenant {tenant}'s CA issued the certificate ({names}), but no [[auth.mtls.rules]] entry maps it"
    )]
    NoMapping { tenant: TenantId, names: String },
}

/// One tenant's trust: its own roots and verifier, never mixed with another tenant's.
struct TenantTrust {
    tenant: TenantId,
    verifier: Arc<dyn ClientCertVerifier>,
    rules: Vec<CertRule>,
}

/// Handshake outcomes with a client certificate, for `/metrics`.
#[derive(Default)]
struct Outcomes {
    accepted: AtomicU64,
    unknown_ca: AtomicU64,
    expired: AtomicU64,
    unmapped: AtomicU64,
    ambiguous: AtomicU64,
    invalid: AtomicU64,
    missing: AtomicU64,
}

/// The loaded `[[auth.mtls]]` trust of every tenant.
pub struct ClientCerts {
    tenants: Vec<TenantTrust>,
    all_roots: Arc<RootCertStore>,
    provider: Arc<CryptoProvider>,
    outcomes: Outcomes,
}

impl std::fmt::Debug for ClientCerts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCerts")
            .field(
                "tenants",
                &self.tenants.iter().map(|t| &t.tenant).collect::<Vec<_>>(),
            )
            .finish()
    }
}

fn read_bundle(entry: &MtlsTrust) -> Result<Vec<CertificateDer<'static>>, MtlsError> {
    let file = entry.ca.display().to_string();
    let tenant = || entry.tenant.clone();
    let read = |source| MtlsError::Read {
        tenant: tenant(),
        file: file.clone(),
        source,
    };
    let len = std::fs::metadata(&entry.ca).map_err(read)?.len();
    if len > MAX_CA_FILE_BYTES {
        return Err(MtlsError::TooLarge {
            tenant: tenant(),
            file,
        });
    }
    let bytes = std::fs::read(&entry.ca).map_err(read)?;
    let mut certs = Vec::new();
    for c in CertificateDer::pem_slice_iter(&bytes) {
        let c = c.map_err(|e| MtlsError::Pem {
            tenant: tenant(),
            file: file.clone(),
            reason: format!("not valid PEM: {e}"),
        })?;
        certs.push(c);
        if certs.len() > MAX_CA_CERTS {
            return Err(MtlsError::Pem {
                tenant: tenant(),
                file,
                reason: format!("more than {MAX_CA_CERTS} certificates"),
            });
        }
    }
    if certs.is_empty() {
        return Err(MtlsError::Pem {
            tenant: tenant(),
            file,
            reason: "holds no CERTIFICATE block".into(),
        });
    }
    Ok(certs)
}

impl ClientCerts {
    /// Reads every entry's CA file and builds one verifier per entry. Errors name the file.
    pub fn load(entries: &[MtlsTrust]) -> Result<Self, MtlsError> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut all_roots = RootCertStore::empty();
        let mut owner: HashMap<Vec<u8>, TenantId> = HashMap::new();
        let mut tenants = Vec::with_capacity(entries.len());
        for entry in entries {
            let file = entry.ca.display().to_string();
            let mut roots = RootCertStore::empty();
            for (i, cert) in read_bundle(entry)?.into_iter().enumerate() {
                if let Some(other) = owner.get(cert.as_ref())
                    && *other != entry.tenant
                {
                    return Err(MtlsError::SharedCa {
                        tenant: entry.tenant.clone(),
                        other: other.clone(),
                        file,
                    });
                }
                owner.insert(cert.to_vec(), entry.tenant.clone());
                roots.add(cert.clone()).map_err(|e| MtlsError::BadCa {
                    tenant: entry.tenant.clone(),
                    file: file.clone(),
                    index: i + 1,
                    reason: e.to_string(),
                })?;
                all_roots
                    .add(cert)
                    .map_err(|e| MtlsError::Verifier(e.to_string()))?;
            }
            let verifier =
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                    .build()
                    .map_err(|e| MtlsError::Verifier(format!("{file}: {e}")))?;
            tenants.push(TenantTrust {
                tenant: entry.tenant.clone(),
                verifier,
                rules: entry.rules.clone(),
            });
        }
        Ok(Self {
            tenants,
            all_roots: Arc::new(all_roots),
            provider,
            outcomes: Outcomes::default(),
        })
    }

    /// The tenants with a trusted CA, in configuration order (one per entry).
    pub fn tenants(&self) -> impl Iterator<Item = &TenantId> {
        self.tenants.iter().map(|t| &t.tenant)
    }

    /// Verifies a chain against each tenant's roots separately and maps the end-entity
    /// certificate's names by the rules of the one tenant whose CA issued it.
    pub fn identify(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<Identity, Refusal> {
        let mut issuer: Option<&TenantTrust> = None;
        let mut first_error = None;
        let mut matched = Vec::new();
        for t in &self.tenants {
            match t
                .verifier
                .verify_client_cert(end_entity, intermediates, now)
            {
                Ok(_) => {
                    if let Some(prev) = issuer
                        && prev.tenant != t.tenant
                    {
                        return Err(Refusal::Ambiguous {
                            first: prev.tenant.clone(),
                            second: t.tenant.clone(),
                        });
                    }
                    issuer = Some(t);
                    matched.push(t);
                }
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        let Some(issuer) = issuer else {
            return Err(Refusal::Untrusted(first_error.unwrap_or(
                rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer),
            )));
        };
        let names = CertNames::from_der(end_entity).map_err(|source| Refusal::Names {
            tenant: issuer.tenant.clone(),
            source,
        })?;
        // Several entries of the same tenant may trust the chain: their rules in order.
        matched
            .iter()
            .find_map(|t| map_identity(&t.tenant, &t.rules, &names))
            .ok_or_else(|| Refusal::NoMapping {
                tenant: issuer.tenant.clone(),
                names: names.describe(),
            })
    }

    /// The identity of a finished handshake's peer chain; `Ok(None)` without a certificate.
    pub fn identify_peer(
        &self,
        chain: Option<&[CertificateDer<'_>]>,
    ) -> Result<Option<Identity>, Refusal> {
        match chain {
            Some([end_entity, intermediates @ ..]) => self
                .identify(end_entity, intermediates, UnixTime::now())
                .map(Some),
            _ => Ok(None),
        }
    }

    /// Counts a handshake that failed for want of a certificate on a `required` listener
    /// (rustls refuses it before any verifier runs).
    pub fn count_missing(&self) {
        self.outcomes.missing.fetch_add(1, Relaxed);
    }

    fn count_refused(&self, e: &rustls::Error) {
        use CertificateError as C;
        let o = &self.outcomes;
        let counter = match e {
            rustls::Error::InvalidCertificate(C::UnknownIssuer) => &o.unknown_ca,
            rustls::Error::InvalidCertificate(
                C::Expired
                | C::ExpiredContext { .. }
                | C::NotValidYet
                | C::NotValidYetContext { .. },
            ) => &o.expired,
            _ => &o.invalid,
        };
        counter.fetch_add(1, Relaxed);
    }

    fn count_refusal(&self, r: &Refusal) {
        let o = &self.outcomes;
        let counter = match r {
            Refusal::Untrusted(e) => return self.count_refused(e),
            Refusal::Ambiguous { .. } => &o.ambiguous,
            Refusal::Names { .. } => &o.invalid,
            Refusal::NoMapping { .. } => &o.unmapped,
        };
        counter.fetch_add(1, Relaxed);
    }

    /// `sentrace_client_cert_handshakes_total{outcome}` for `/metrics`. No tenant label:
    /// the counters are the server's, not a tenant's.
    pub fn encode_metrics(
        &self,
        e: &mut sentrace_pipeline::metrics::export::Encoder<'_>,
    ) -> std::fmt::Result {
        let o = &self.outcomes;
        sentrace_pipeline::metrics::export::counters(
            e,
            "sentrace_client_cert_handshakes",
            "TLS handshakes on listeners that take client certificates, by outcome.",
            [
                ("accepted", &o.accepted),
                ("unknown_ca", &o.unknown_ca),
                ("expired", &o.expired),
                ("unmapped", &o.unmapped),
                ("ambiguous", &o.ambiguous),
                ("invalid", &o.invalid),
                ("missing", &o.missing),
            ]
            .map(|(outcome, c)| ([("outcome", outcome)], c.load(Relaxed))),
        )
    }

    /// The verifier for a listener in `mode` (`None` for [`ClientAuthMode::Off`]).
    pub fn verifier(
        self: &Arc<Self>,
        mode: ClientAuthMode,
        listener: &'static str,
    ) -> Result<Option<Arc<dyn ClientCertVerifier>>, MtlsError> {
        let builder = WebPkiClientVerifier::builder_with_provider(
            self.all_roots.clone(),
            self.provider.clone(),
        );
        let builder = match mode {
            ClientAuthMode::Off => return Ok(None),
            ClientAuthMode::Optional => builder.allow_unauthenticated(),
            ClientAuthMode::Required => builder,
        };
        let inner = builder
            .build()
            .map_err(|e| MtlsError::Verifier(e.to_string()))?;
        Ok(Some(Arc::new(MappingVerifier {
            inner,
            certs: self.clone(),
            listener,
        })))
    }
}

/// Loads `[[auth.mtls]]` when there is any; `None` otherwise.
pub fn load(entries: &[MtlsTrust]) -> Result<Option<Arc<ClientCerts>>, MtlsError> {
    if entries.is_empty() {
        return Ok(None);
    }
    ClientCerts::load(entries).map(|c| Some(Arc::new(c)))
}

/// rustls's WebPKI client verifier, then the per-tenant check and the name mapping, so that
/// a certificate that would yield no identity fails the handshake (alert `access_denied`).
#[derive(Debug)]
pub struct MappingVerifier {
    inner: Arc<dyn ClientCertVerifier>,
    certs: Arc<ClientCerts>,
    listener: &'static str,
}

impl ClientCertVerifier for MappingVerifier {
    fn offer_client_auth(&self) -> bool {
        self.inner.offer_client_auth()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.inner.client_auth_mandatory()
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        if let Err(e) = self
            .inner
            .verify_client_cert(end_entity, intermediates, now)
        {
            self.certs.count_refused(&e);
            let names =
                CertNames::from_der(end_entity).map_or_else(|e| e.to_string(), |n| n.describe());
            tracing::warn!(listener = self.listener, reason = %e, certificate = %names, "client certificate refused in the TLS handshake");
            return Err(e);
        }
        match self.certs.identify(end_entity, intermediates, now) {
            Ok(_) => {
                self.certs.outcomes.accepted.fetch_add(1, Relaxed);
                Ok(ClientCertVerified::assertion())
            }
            Err(refusal) => {
                self.certs.count_refusal(&refusal);
                tracing::warn!(listener = self.listener, reason = %refusal, "client certificate refused in the TLS handshake (alert access_denied)");
                Err(rustls::Error::InvalidCertificate(
                    CertificateError::ApplicationVerificationFailure,
                ))
            }
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests;
