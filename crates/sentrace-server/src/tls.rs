//! TLS 1.3 through rustls with the aws-lc-rs provider, preferring the hybrid post-quantum
//! key exchange X25519MLKEM768; the local CA and server certificate made on first start; and
//! the connection loop that serves an axum router over TLS or (loopback only) plaintext,
//! putting each connection's [`Connection`](crate::auth::Connection) (remote address and
//! client-certificate identity, see [`crate::auth::mtls`]) into every request.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, KeyPair, KeyUsagePurpose,
    SanType,
};
use rustls::ServerConfig;
use rustls::server::NoClientAuth;
use rustls::server::danger::ClientCertVerifier;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio_rustls::TlsAcceptor;

use sentrace_store::fsutil::{write_atomic, write_atomic_private};

/// Where the TLS material of a data directory lives.
#[derive(Clone, Debug)]
pub struct TlsPaths {
    /// The local CA certificate: give this to clients.
    pub ca_cert: PathBuf,
    /// The CA private key (mode 0600).
    pub ca_key: PathBuf,
    /// The server certificate chain.
    pub server_cert: PathBuf,
    /// The server private key (mode 0600).
    pub server_key: PathBuf,
}

impl TlsPaths {
    /// The default layout under `data_dir/tls/`.
    pub fn under(data_dir: &Path) -> Self {
        let dir = data_dir.join("tls");
        Self {
            ca_cert: dir.join("ca.pem"),
            ca_key: dir.join("ca.key"),
            server_cert: dir.join("server.pem"),
            server_key: dir.join("server.key"),
        }
    }
}

/// Makes a local CA and a server certificate signed by it, unless they exist.
/// Returns true when it created them.
pub fn ensure_local_pki(paths: &TlsPaths, sans: &[String]) -> anyhow::Result<bool> {
    if paths.server_cert.exists() && paths.server_key.exists() {
        return Ok(false);
    }
    if let Some(dir) = paths.ca_cert.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let ca_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let mut ca_params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "Sentrace local CA");
    dn.push(DnType::OrganizationName, "Sentrace");
    ca_params.distinguished_name = dn;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca_params.not_before = rcgen::date_time_ymd(2024, 1, 1);
    ca_params.not_after = rcgen::date_time_ymd(2036, 1, 1);
    let ca_cert = ca_params.self_signed(&ca_key)?;
    let issuer = rcgen::Issuer::new(ca_params, ca_key);

    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "sentrace server");
    params.distinguished_name = dn;
    params.subject_alt_names = sans
        .iter()
        .map(|s| match s.parse::<std::net::IpAddr>() {
            Ok(ip) => Ok(SanType::IpAddress(ip)),
            Err(_) => s.clone().try_into().map(SanType::DnsName),
        })
        .collect::<Result<_, _>>()
        .context("invalid subject alternative name")?;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    params.not_before = rcgen::date_time_ymd(2024, 1, 1);
    params.not_after = rcgen::date_time_ymd(2031, 1, 1);
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let cert = params.signed_by(&key, &issuer)?;

    write_atomic_private(&paths.ca_key, issuer.key().serialize_pem().as_bytes())?;
    write_atomic(&paths.ca_cert, ca_cert.pem().as_bytes(), 0o644)?;
    write_atomic_private(&paths.server_key, key.serialize_pem().as_bytes())?;
    write_atomic(
        &paths.server_cert,
        format!("{}{}", cert.pem(), ca_cert.pem()).as_bytes(),
        0o644,
    )?;
    Ok(true)
}

/// The default subject alternative names: localhost, loopback addresses and the host name.
pub fn default_sans() -> Vec<String> {
    let mut sans = vec!["localhost".to_string(), "127.0.0.1".into(), "::1".into()];
    if let Ok(h) = std::fs::read_to_string("/etc/hostname") {
        let h = h.trim();
        if !h.is_empty() && !sans.iter().any(|s| s == h) {
            sans.push(h.to_string());
        }
    }
    sans
}

/// A TLS 1.3-only server configuration on the aws-lc-rs provider. Its key-exchange groups
/// put X25519MLKEM768 first, then X25519 and the NIST curves for older clients.
pub fn server_config(cert: &Path, key: &Path) -> anyhow::Result<Arc<ServerConfig>> {
    server_config_with(cert, key, None)
}

/// [`server_config`] with a client-certificate verifier (see [`crate::auth::mtls`]); `None`
/// asks clients for no certificate.
pub fn server_config_with(
    cert: &Path,
    key: &Path,
    client_auth: Option<Arc<dyn ClientCertVerifier>>,
) -> anyhow::Result<Arc<ServerConfig>> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .with_context(|| format!("reading certificate {}", cert.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("parsing certificate {}", cert.display()))?;
    if chain.is_empty() {
        bail!("{} holds no certificate", cert.display());
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .with_context(|| format!("reading private key {}", key.display()))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut cfg = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_client_cert_verifier(client_auth.unwrap_or_else(|| Arc::new(NoClientAuth)))
        .with_single_cert(chain, key)?;
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// Most connections served at once per listener.
const MAX_CONNECTIONS: usize = 4096;
/// A TLS handshake must finish within this time.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves `router` on `listener` until `shutdown` turns true. With `tls` None the listener
/// must be on a loopback address (checked by the caller).
pub async fn serve(
    listener: TcpListener,
    tls: Option<Arc<ServerConfig>>,
    router: axum::Router,
    shutdown: watch::Receiver<bool>,
) {
    serve_with(listener, tls, None, None, router, shutdown).await
}

/// [`serve`] on a listener that takes client certificates: after each handshake the peer's
/// chain is mapped by `client_certs` and the identity put into the request extensions'
/// [`Connection`](crate::auth::Connection). `tls` must then carry the matching verifier
/// ([`crate::auth::mtls::ClientCerts::verifier`]). A handshake refused on such a listener
/// is an authentication failure: it is recorded in the node's audit log through `audit`.
pub async fn serve_with(
    listener: TcpListener,
    tls: Option<Arc<ServerConfig>>,
    client_certs: Option<Arc<crate::auth::mtls::ClientCerts>>,
    audit: Option<Arc<dyn sentrace_query::audit::AuditSink>>,
    router: axum::Router,
    mut shutdown: watch::Receiver<bool>,
) {
    let acceptor = tls.map(TlsAcceptor::from);
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => break,
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            tracing::warn!(%peer, "connection limit reached; closing");
            continue;
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let acceptor = acceptor.clone();
        let client_certs = client_certs.clone();
        let audit = audit.clone();
        let mut shutdown = shutdown.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let service = |peer_identity| {
                let connection = crate::auth::Connection {
                    remote: Some(peer),
                    peer: peer_identity,
                };
                TowerToHyperService::new(tower::ServiceExt::map_request(
                    router.into_service::<hyper::body::Incoming>(),
                    move |mut req: http::Request<hyper::body::Incoming>| {
                        req.extensions_mut().insert(connection.clone());
                        req
                    },
                ))
            };
            let builder = auto::Builder::new(TokioExecutor::new());
            match acceptor {
                Some(acceptor) => {
                    let accept = acceptor.accept(stream).into_fallible();
                    let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, accept).await {
                        Ok(Ok(s)) => s,
                        Ok(Err((e, io))) => {
                            if let Some(certs) = &client_certs {
                                // Client-certificate refusals are security events.
                                tracing::info!(%peer, error = %e, "TLS handshake failed");
                                if e.get_ref().and_then(|e| e.downcast_ref::<rustls::Error>())
                                    == Some(&rustls::Error::NoCertificatesPresented)
                                {
                                    certs.count_missing();
                                }
                                if let Some(sink) = audit {
                                    let reason = e.to_string();
                                    // Off the connection's path: the alert is sent meanwhile.
                                    tokio::spawn(async move {
                                        let r = crate::audit::record_auth_failure(
                                            sink.as_ref(),
                                            None,
                                            "client-certificate",
                                            Some(peer),
                                            "TLS handshake",
                                            &reason,
                                        )
                                        .await;
                                        if let Err(e) = r {
                                            tracing::error!(error = %e, "audit of a refused client certificate not written");
                                        }
                                    });
                                }
                            } else {
                                tracing::debug!(%peer, error = %e, "TLS handshake failed");
                            }
                            linger_close(io).await;
                            return;
                        }
                        Err(_) => {
                            tracing::debug!(%peer, "TLS handshake timed out");
                            return;
                        }
                    };
                    let peer_identity = match &client_certs {
                        Some(certs) => {
                            match certs.identify_peer(tls.get_ref().1.peer_certificates()) {
                                Ok(id) => id.map(Arc::new),
                                Err(refusal) => {
                                    // The handshake's verifier already checked this chain; only a
                                    // certificate that expired in between gets here.
                                    tracing::warn!(%peer, reason = %refusal, "client certificate refused after the handshake; closing");
                                    return;
                                }
                            }
                        }
                        None => None,
                    };
                    if let Some(id) = &peer_identity {
                        tracing::debug!(%peer, tenant = %id.tenant, principal = %id.principal, role = %id.role, "client certificate accepted");
                    }
                    let conn = builder.serve_connection(TokioIo::new(tls), service(peer_identity));
                    tokio::pin!(conn);
                    tokio::select! {
                        r = conn.as_mut() => if let Err(e) = r { tracing::debug!(%peer, error = %e, "connection ended"); },
                        _ = shutdown.changed() => conn.as_mut().graceful_shutdown(),
                    }
                }
                None => {
                    let conn = builder.serve_connection(TokioIo::new(stream), service(None));
                    tokio::pin!(conn);
                    tokio::select! {
                        r = conn.as_mut() => if let Err(e) = r { tracing::debug!(%peer, error = %e, "connection ended"); },
                        _ = shutdown.changed() => conn.as_mut().graceful_shutdown(),
                    }
                }
            }
        });
    }
}

/// Most bytes read and thrown away while closing a refused connection.
const LINGER_BYTES: usize = 64 * 1024;
/// Longest wait for the client to close a refused connection.
const LINGER_TIMEOUT: Duration = Duration::from_secs(2);

/// Closes a connection whose handshake failed so that the client still reads the TLS alert.
/// A TLS 1.3 client sends its first request right after its Finished message, before the
/// server has judged its certificate; closing a socket with that request unread makes the
/// kernel send a reset, which discards the alert on the client's side (curl then reports
/// "connection reset" instead of "alert access denied"). So: send FIN, then read and drop
/// what the client sent, bounded in bytes and time, before closing.
async fn linger_close(mut io: tokio::net::TcpStream) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let _ = io.shutdown().await;
    let drain = async {
        let mut buf = [0u8; 4096];
        let mut total = 0usize;
        while total < LINGER_BYTES {
            match io.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => total += n,
            }
        }
    };
    let _ = tokio::time::timeout(LINGER_TIMEOUT, drain).await;
}

/// Whether an address is loopback (plaintext is allowed only there).
pub fn is_loopback(addr: &SocketAddr) -> bool {
    addr.ip().is_loopback()
}
