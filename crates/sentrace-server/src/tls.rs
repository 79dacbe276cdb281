//! TLS 1.3 through rustls with the aws-lc-rs provider, preferring the hybrid post-quantum
//! key exchange X25519MLKEM768; the local CA and server certificate made on first start; and
//! the connection loop that serves an axum router over TLS or (loopback only) plaintext,
//! putting each connection's [`Connection`](crate::auth::Connection) (remote address and
//! client-certificate identity, see [`crate::auth::mtls`]) into every request.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
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
use tokio_rustls::LazyConfigAcceptor;

use sentrace_store::fsutil::{check_private_file, write_atomic, write_atomic_private};

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
    // Subject and Authority Key Identifiers: strict verifiers (Python 3.13's
    // VERIFY_X509_STRICT, sslyze) refuse chains without them.
    ca_params.use_authority_key_identifier_extension = true;
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
    // Basic constraints CA:false with a Subject Key Identifier, and the CA's key id.
    params.is_ca = IsCa::ExplicitNoCa;
    params.use_authority_key_identifier_extension = true;
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

/// A listener's TLS: TLS 1.3 only, on the aws-lc-rs provider.
///
/// rustls picks the first key-exchange group of the client's list that it supports, so a
/// client that lists X25519 before X25519MLKEM768 would get the classical group. With
/// `prefer_post_quantum`, a ClientHello that lists X25519MLKEM768 anywhere is answered
/// with a configuration that offers only that group: the hybrid is negotiated, with a
/// HelloRetryRequest when the client sent no key share for it. Other clients get
/// X25519MLKEM768, X25519 and the NIST curves.
#[derive(Clone, Debug)]
pub struct ServerTls {
    /// Every group, X25519MLKEM768 first.
    pub any: Arc<ServerConfig>,
    /// X25519MLKEM768 only, for clients that support it (None: no preference).
    post_quantum: Option<Arc<ServerConfig>>,
}

impl ServerTls {
    /// The configuration for a client's hello.
    fn for_hello(&self, hello: &rustls::server::ClientHello<'_>) -> Arc<ServerConfig> {
        let hybrid = rustls::NamedGroup::X25519MLKEM768;
        match &self.post_quantum {
            Some(pq) if hello.named_groups().is_some_and(|g| g.contains(&hybrid)) => pq.clone(),
            _ => self.any.clone(),
        }
    }
}

/// [`server_config_with`] without client certificates, preferring X25519MLKEM768.
pub fn server_config(cert: &Path, key: &Path) -> anyhow::Result<ServerTls> {
    server_config_with(cert, key, None, true)
}

/// The TLS of a listener serving `cert` with `key` (a private key file that group and
/// others cannot read), with a client-certificate verifier (see [`crate::auth::mtls`];
/// `None` asks clients for no certificate), preferring X25519MLKEM768 when
/// `prefer_post_quantum` (see [`ServerTls`]).
pub fn server_config_with(
    cert: &Path,
    key: &Path,
    client_auth: Option<Arc<dyn ClientCertVerifier>>,
    prefer_post_quantum: bool,
) -> anyhow::Result<ServerTls> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .with_context(|| format!("reading certificate {}", cert.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("parsing certificate {}", cert.display()))?;
    if chain.is_empty() {
        bail!("{} holds no certificate", cert.display());
    }
    check_private_file(key)?;
    let key = PrivateKeyDer::from_pem_file(key)
        .with_context(|| format!("reading private key {}", key.display()))?;
    let verifier = client_auth.unwrap_or_else(|| Arc::new(NoClientAuth));
    let build = |provider: rustls::crypto::CryptoProvider| -> anyhow::Result<Arc<ServerConfig>> {
        let mut cfg = ServerConfig::builder_with_provider(Arc::new(provider))
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .with_client_cert_verifier(verifier.clone())
            .with_single_cert(chain.clone(), key.clone_key())?;
        cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(cfg))
    };
    let any = build(rustls::crypto::aws_lc_rs::default_provider())?;
    let post_quantum = if prefer_post_quantum {
        let mut provider = rustls::crypto::aws_lc_rs::default_provider();
        provider.kx_groups = vec![rustls::crypto::aws_lc_rs::kx_group::X25519MLKEM768];
        Some(build(provider)?)
    } else {
        None
    };
    Ok(ServerTls { any, post_quantum })
}

/// Most connections served at once per listener.
const MAX_CONNECTIONS: usize = 4096;
/// A TLS handshake must finish within this time.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves `router` on `listener` until `shutdown` turns true. With `tls` None the listener
/// must be on a loopback address (checked by the caller).
pub async fn serve(
    listener: TcpListener,
    tls: Option<ServerTls>,
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
    tls: Option<ServerTls>,
    client_certs: Option<Arc<crate::auth::mtls::ClientCerts>>,
    audit: Option<Arc<dyn sentrace_query::audit::AuditSink>>,
    router: axum::Router,
    mut shutdown: watch::Receiver<bool>,
) {
    let acceptor = tls;
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
                    let accept = async {
                        let start = LazyConfigAcceptor::new(
                            rustls::server::Acceptor::default(),
                            Lingering(Some(stream)),
                        )
                        .await
                        .map_err(|e| (e, None))?;
                        let cfg = acceptor.for_hello(&start.client_hello());
                        start
                            .into_stream(cfg)
                            .into_fallible()
                            .await
                            .map_err(|(e, io)| (e, Some(io)))
                    };
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
                            // Dropping the stream closes it lingering.
                            drop(io);
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
                    let conn = builder
                        .serve_connection(TokioIo::new(Lingering(Some(stream))), service(None));
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

/// A connection's TCP stream that closes lingering when dropped, as nginx's
/// `lingering_close` does: when the server ends a connection whose client is still sending
/// (a refused request whose body was only partly read, over HTTP/1.1), closing a socket
/// with unread input makes the kernel send a reset, and the client loses the answer it has
/// not read yet. So the stream is shut down (FIN) and what arrives is read and dropped,
/// bounded in bytes and time, before the socket is closed. A client that closed first
/// costs one read of end-of-file.
struct Lingering(Option<tokio::net::TcpStream>);

impl Drop for Lingering {
    fn drop(&mut self) {
        if let (Some(io), Ok(rt)) = (self.0.take(), tokio::runtime::Handle::try_current()) {
            rt.spawn(linger_close(io));
        }
    }
}

impl Lingering {
    fn io(self: Pin<&mut Self>) -> std::io::Result<Pin<&mut tokio::net::TcpStream>> {
        match self.get_mut().0.as_mut() {
            Some(io) => Ok(Pin::new(io)),
            None => Err(std::io::ErrorKind::NotConnected.into()),
        }
    }
}

impl tokio::io::AsyncRead for Lingering {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.io() {
            Ok(io) => io.poll_read(cx, buf),
            Err(e) => Poll::Ready(Err(e)),
        }
    }
}

impl tokio::io::AsyncWrite for Lingering {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.io() {
            Ok(io) => io.poll_write(cx, buf),
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        match self.io() {
            Ok(io) => io.poll_write_vectored(cx, bufs),
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<std::io::Result<()>> {
        match self.io() {
            Ok(io) => io.poll_flush(cx),
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<std::io::Result<()>> {
        match self.io() {
            Ok(io) => io.poll_shutdown(cx),
            Err(e) => Poll::Ready(Err(e)),
        }
    }
}

/// Most bytes read and thrown away while closing a refused connection.
const LINGER_BYTES: usize = 1024 * 1024;
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

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::NamedGroup;
    use rustls::crypto::aws_lc_rs::kx_group;
    use std::os::unix::fs::PermissionsExt;

    fn pki(dir: &Path) -> TlsPaths {
        let paths = TlsPaths::under(dir);
        ensure_local_pki(&paths, &["localhost".into()]).unwrap();
        paths
    }

    fn der(pem_file: &Path) -> Vec<Vec<u8>> {
        CertificateDer::pem_file_iter(pem_file)
            .unwrap()
            .map(|c| c.unwrap().to_vec())
            .collect()
    }

    fn has(hay: &[u8], needle: &[u8]) -> bool {
        hay.windows(needle.len()).any(|w| w == needle)
    }

    #[test]
    fn generated_certificates_carry_key_identifiers() {
        let dir = tempfile::tempdir().unwrap();
        let p = pki(dir.path());
        const SKI: &[u8] = &[0x06, 0x03, 0x55, 0x1d, 0x0e];
        const AKI: &[u8] = &[0x06, 0x03, 0x55, 0x1d, 0x23];
        let chain = der(&p.server_cert);
        assert_eq!(chain.len(), 2);
        for (i, c) in chain.iter().enumerate() {
            assert!(
                has(c, SKI),
                "certificate {i} lacks a Subject Key Identifier"
            );
            assert!(
                has(c, AKI),
                "certificate {i} lacks an Authority Key Identifier"
            );
        }
    }

    #[test]
    fn a_private_key_others_can_read_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = pki(dir.path());
        std::fs::set_permissions(&p.server_key, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = server_config(&p.server_cert, &p.server_key)
            .unwrap_err()
            .to_string();
        assert!(e.contains("server.key") && e.contains("chmod 600"), "{e}");
        std::fs::set_permissions(&p.server_key, std::fs::Permissions::from_mode(0o600)).unwrap();
        server_config(&p.server_cert, &p.server_key).unwrap();
    }

    /// The group negotiated by a client that offers `groups` in that order.
    async fn negotiated(
        p: &TlsPaths,
        prefer_pq: bool,
        groups: Vec<&'static dyn rustls::crypto::SupportedKxGroup>,
    ) -> NamedGroup {
        let tls = server_config_with(&p.server_cert, &p.server_key, None, prefer_pq).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (_stop, rx) = watch::channel(false);
        tokio::spawn(serve(listener, Some(tls), axum::Router::new(), rx));
        let mut roots = rustls::RootCertStore::empty();
        roots.add(der(&p.ca_cert).remove(0).into()).unwrap();
        let mut provider = rustls::crypto::aws_lc_rs::default_provider();
        provider.kx_groups = groups;
        let client = rustls::ClientConfig::builder_with_provider(Arc::new(provider))
            .with_protocol_versions(&[&rustls::version::TLS13])
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
        let tls = tokio_rustls::TlsConnector::from(Arc::new(client))
            .connect(name, stream)
            .await
            .unwrap();
        tls.get_ref()
            .1
            .negotiated_key_exchange_group()
            .unwrap()
            .name()
    }

    #[tokio::test]
    async fn the_hybrid_group_wins_whenever_the_client_supports_it() {
        let dir = tempfile::tempdir().unwrap();
        let p = pki(dir.path());
        let hybrid = NamedGroup::X25519MLKEM768;
        // X25519 listed (and its key share sent) first: a HelloRetryRequest for the hybrid.
        let g = negotiated(&p, true, vec![kx_group::X25519, kx_group::X25519MLKEM768]).await;
        assert_eq!(g, hybrid);
        let g = negotiated(&p, true, vec![kx_group::X25519MLKEM768, kx_group::X25519]).await;
        assert_eq!(g, hybrid);
        // A classical-only client still connects.
        let g = negotiated(&p, true, vec![kx_group::SECP256R1]).await;
        assert_eq!(g, NamedGroup::secp256r1);
        // Without the preference the client's order decides.
        let g = negotiated(&p, false, vec![kx_group::X25519, kx_group::X25519MLKEM768]).await;
        assert_eq!(g, NamedGroup::X25519);
    }
}
