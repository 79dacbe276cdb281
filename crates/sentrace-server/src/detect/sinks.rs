//! Finding sinks: a JSON-lines file, HTTPS webhooks signed with HMAC-SHA-256, and syslog
//! (RFC 5424 over TCP or TLS) with a CEF payload.
//!
//! Each sink is one tokio task behind a bounded queue. [`Sinks::send`] never waits: a full
//! queue drops the finding and counts it. Delivery is retried with exponential backoff;
//! a finding that fails every attempt is counted as failed.
//!
//! Webhook signature scheme: the body is the OCSF finding as JSON; the request carries
//! `Sentrace-Signature: t=<unix seconds>,v1=<hex>` where `<hex>` is
//! HMAC-SHA-256 (RFC 2104, FIPS 180-4) keyed with the shared secret over the bytes
//! `"<t>." || body`. Receivers recompute it, compare in constant time, and reject a `t` too
//! far from their clock (replay window of their choosing, 5 minutes suggested).

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use anyhow::Context;
use hmac::{Hmac, Mac};
use sentrace_detect::{Finding, Severity};
use sentrace_pipeline::metrics::export::{self, Escaped};
use sha2::Sha256;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

use super::config::{SinksConfig, SyslogSinkConfig, WebhookSinkConfig};

/// The webhook signature header.
pub const SIGNATURE_HEADER: &str = "sentrace-signature";
/// Longest retry delay.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// One sink's counters.
#[derive(Debug, Default)]
pub struct SinkCounters {
    /// Delivered.
    pub sent: AtomicU64,
    /// Dropped because the queue was full.
    pub dropped: AtomicU64,
    /// Dropped after every attempt failed.
    pub failed: AtomicU64,
    /// Retries made.
    pub retries: AtomicU64,
}

struct Worker {
    name: String,
    kind: &'static str,
    all_findings: bool,
    tx: mpsc::Sender<Arc<Finding>>,
    counters: Arc<SinkCounters>,
}

/// The running sinks.
pub struct Sinks {
    workers: Vec<Worker>,
    webhooks: HashMap<String, usize>,
}

/// Computes the `Sentrace-Signature` header value for `body` at `t` (Unix seconds).
pub fn sign(secret: &[u8], t: u64, body: &[u8]) -> String {
    // HMAC-SHA-256 accepts keys of any length (RFC 2104 section 2), so this cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// Checks a `Sentrace-Signature` value against `body` in constant time; returns `t`.
pub fn verify(secret: &[u8], header: &str, body: &[u8]) -> Option<u64> {
    let mut t = None;
    let mut v1 = None;
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", x)) => t = x.parse::<u64>().ok(),
            Some(("v1", x)) => v1 = hex::decode(x).ok(),
            _ => {}
        }
    }
    let (t, v1) = (t?, v1?);
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret).ok()?;
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.verify_slice(&v1).ok().map(|()| t)
}

/// A rustls client configuration (aws-lc-rs) trusting `ca` or the system roots.
pub fn client_tls(ca: Option<&Path>) -> anyhow::Result<rustls::ClientConfig> {
    use rustls_pki_types::{CertificateDer, pem::PemObject};
    let mut roots = rustls::RootCertStore::empty();
    match ca {
        Some(p) => {
            for c in CertificateDer::pem_file_iter(p)
                .with_context(|| format!("reading CA {}", p.display()))?
            {
                roots
                    .add(c.with_context(|| format!("parsing CA {}", p.display()))?)
                    .with_context(|| format!("adding CA {}", p.display()))?;
            }
        }
        None => {
            let native = rustls_native_certs::load_native_certs();
            for c in native.certs {
                let _ = roots.add(c);
            }
        }
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// RFC 3339 UTC timestamp with microseconds, as RFC 5424 section 6.2.3 allows.
pub fn rfc3339(unix_nanos: u64) -> String {
    sentrace_core::time::rfc3339_micros(unix_nanos)
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty() && h.len() <= 255 && h.bytes().all(|b| b.is_ascii_graphic()))
        .unwrap_or_else(|| "-".into())
}

/// One RFC 5424 message with a CEF payload, framed by octet counting (RFC 6587 section
/// 3.4.1 for TCP, RFC 5425 section 4.3 for TLS): `MSG-LEN SP SYSLOG-MSG`.
///
/// PRI uses facility 10 (security/authorization); the syslog severity follows the finding's.
pub fn syslog_frame(f: &Finding, host: &str) -> Vec<u8> {
    let sev = match f.severity {
        Severity::Critical => 2,
        Severity::High => 3,
        Severity::Medium => 4,
        Severity::Low => 5,
        Severity::Info => 6,
    };
    let pri = 10 * 8 + sev;
    // HEADER = PRI VERSION SP TIMESTAMP SP HOSTNAME SP APP-NAME SP PROCID SP MSGID
    // then SP STRUCTURED-DATA ("-") SP MSG (RFC 5424 section 6).
    let msg = format!(
        "<{pri}>1 {} {host} sentrace - finding - {}",
        rfc3339(f.time_unix_nanos),
        f.to_cef()
    );
    let mut out = format!("{} ", msg.len()).into_bytes();
    out.extend_from_slice(msg.as_bytes());
    out
}

enum Transport {
    File {
        path: std::path::PathBuf,
    },
    Webhook {
        client: reqwest::Client,
        url: String,
        secret: Vec<u8>,
    },
    Syslog {
        cfg: SyslogSinkConfig,
        tls: Option<Arc<rustls::ClientConfig>>,
        host: String,
        conn: Option<Box<dyn AsyncWrite + Unpin + Send>>,
    },
}

impl Transport {
    async fn deliver(&mut self, f: &Finding) -> Result<(), String> {
        match self {
            Transport::File { path } => {
                let mut line = serde_json::to_vec(&f.to_ocsf()).map_err(|e| e.to_string())?;
                line.push(b'\n');
                let mut file = tokio::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .mode(0o600)
                    .open(&*path)
                    .await
                    .map_err(|e| format!("opening {}: {e}", path.display()))?;
                file.write_all(&line)
                    .await
                    .map_err(|e| format!("writing {}: {e}", path.display()))?;
                file.flush().await.map_err(|e| e.to_string())
            }
            Transport::Webhook {
                client,
                url,
                secret,
            } => {
                let body = serde_json::to_vec(&f.to_ocsf()).map_err(|e| e.to_string())?;
                let sig = sign(secret, now_secs(), &body);
                let resp = client
                    .post(url.as_str())
                    .header("content-type", "application/json")
                    .header(SIGNATURE_HEADER, sig)
                    .body(body)
                    .send()
                    .await
                    .map_err(|e| format!("POST {url}: {e}"))?;
                if resp.status().is_success() {
                    Ok(())
                } else {
                    Err(format!("POST {url}: status {}", resp.status()))
                }
            }
            Transport::Syslog {
                cfg,
                tls,
                host,
                conn,
            } => {
                if conn.is_none() {
                    *conn = Some(connect_syslog(cfg, tls.clone()).await?);
                }
                let frame = syslog_frame(f, host);
                let Some(c) = conn.as_mut() else {
                    return Err("no connection".into());
                };
                let r = async {
                    c.write_all(&frame).await?;
                    c.flush().await
                }
                .await;
                if let Err(e) = r {
                    *conn = None;
                    return Err(format!("writing to syslog {}: {e}", cfg.address));
                }
                Ok(())
            }
        }
    }
}

async fn connect_syslog(
    cfg: &SyslogSinkConfig,
    tls: Option<Arc<rustls::ClientConfig>>,
) -> Result<Box<dyn AsyncWrite + Unpin + Send>, String> {
    let tcp = tokio::net::TcpStream::connect(&cfg.address)
        .await
        .map_err(|e| format!("connecting to syslog {}: {e}", cfg.address))?;
    let _ = tcp.set_nodelay(true);
    match tls {
        None => Ok(Box::new(tcp)),
        Some(tls) => {
            let host = cfg
                .address
                .rsplit_once(':')
                .map_or(cfg.address.as_str(), |(h, _)| h)
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_string();
            let name = rustls_pki_types::ServerName::try_from(host)
                .map_err(|e| format!("syslog {}: bad server name: {e}", cfg.address))?;
            let s = tokio_rustls::TlsConnector::from(tls)
                .connect(name, tcp)
                .await
                .map_err(|e| format!("TLS to syslog {}: {e}", cfg.address))?;
            Ok(Box::new(s))
        }
    }
}

fn read_secret(p: &Path) -> anyhow::Result<Vec<u8>> {
    let mut s = std::fs::read(p).with_context(|| format!("reading secret {}", p.display()))?;
    while s.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
        s.pop();
    }
    anyhow::ensure!(
        s.len() >= 16,
        "{}: the secret must be at least 16 bytes",
        p.display()
    );
    Ok(s)
}

fn webhook_transport(w: &WebhookSinkConfig) -> anyhow::Result<Transport> {
    let tls = client_tls(w.ca.as_deref())?;
    let client = reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .timeout(Duration::from_millis(w.timeout_ms))
        .https_only(true)
        .build()
        .with_context(|| format!("webhook {}: building the HTTP client", w.name))?;
    Ok(Transport::Webhook {
        client,
        url: w.url.clone(),
        secret: read_secret(&w.secret_file)?,
    })
}

impl Sinks {
    /// Starts one task per configured sink. Needs a tokio runtime.
    pub fn start(cfg: &SinksConfig) -> anyhow::Result<Self> {
        let mut s = Sinks {
            workers: Vec::new(),
            webhooks: HashMap::new(),
        };
        if let Some(f) = &cfg.file {
            let t = Transport::File {
                path: f.path.clone(),
            };
            s.spawn(cfg, "file".into(), "file", true, t, 0);
        }
        for w in &cfg.webhook {
            let t = webhook_transport(w)?;
            s.webhooks.insert(w.name.clone(), s.workers.len());
            s.spawn(
                cfg,
                w.name.clone(),
                "webhook",
                w.all_findings,
                t,
                w.timeout_ms,
            );
        }
        for y in &cfg.syslog {
            let tls = if y.tls {
                Some(Arc::new(client_tls(y.ca.as_deref())?))
            } else {
                None
            };
            let t = Transport::Syslog {
                cfg: y.clone(),
                tls,
                host: hostname(),
                conn: None,
            };
            s.spawn(cfg, y.name.clone(), "syslog", true, t, y.timeout_ms);
        }
        Ok(s)
    }

    fn spawn(
        &mut self,
        cfg: &SinksConfig,
        name: String,
        kind: &'static str,
        all_findings: bool,
        mut t: Transport,
        timeout_ms: u64,
    ) {
        let (tx, mut rx) = mpsc::channel::<Arc<Finding>>(cfg.queue_capacity);
        let counters = Arc::new(SinkCounters::default());
        let c = counters.clone();
        let max_attempts = cfg.max_attempts;
        let backoff = Duration::from_millis(cfg.retry_backoff_ms);
        let timeout = Duration::from_millis(timeout_ms.max(1)).max(Duration::from_secs(1));
        let label = name.clone();
        tokio::spawn(async move {
            while let Some(f) = rx.recv().await {
                let mut delay = backoff;
                let mut attempt = 0u32;
                loop {
                    attempt = attempt.saturating_add(1);
                    let r = match tokio::time::timeout(timeout, t.deliver(&f)).await {
                        Ok(r) => r,
                        Err(_) => Err(format!("timed out after {timeout:?}")),
                    };
                    match r {
                        Ok(()) => {
                            c.sent.fetch_add(1, Relaxed);
                            break;
                        }
                        Err(e) if attempt >= max_attempts => {
                            tracing::warn!(sink = %label, error = %e, attempts = attempt, "finding not delivered");
                            c.failed.fetch_add(1, Relaxed);
                            break;
                        }
                        Err(e) => {
                            tracing::debug!(sink = %label, error = %e, "sink delivery failed; retrying");
                            c.retries.fetch_add(1, Relaxed);
                            tokio::time::sleep(delay).await;
                            delay = (delay * 2).min(MAX_BACKOFF);
                        }
                    }
                }
            }
        });
        self.workers.push(Worker {
            name,
            kind,
            all_findings,
            tx,
            counters,
        });
    }

    fn offer(w: &Worker, f: &Arc<Finding>) {
        if w.tx.try_send(f.clone()).is_err() {
            w.counters.dropped.fetch_add(1, Relaxed);
        }
    }

    /// Queues a finding to every sink that takes all findings. Never waits.
    pub fn send(&self, f: &Finding) {
        let mut shared: Option<Arc<Finding>> = None;
        for w in self.workers.iter().filter(|w| w.all_findings) {
            let a = shared.get_or_insert_with(|| Arc::new(f.clone()));
            Self::offer(w, a);
        }
    }

    /// Queues a finding to the named webhook (a `webhook` response action). Never waits.
    /// Returns false when no webhook has that name.
    pub fn call_webhook(&self, name: &str, f: &Finding) -> bool {
        match self.webhooks.get(name).and_then(|i| self.workers.get(*i)) {
            Some(w) => {
                Self::offer(w, &Arc::new(f.clone()));
                true
            }
            None => {
                tracing::warn!(webhook = name, "response asks for an unknown webhook");
                false
            }
        }
    }

    /// A sink's counters, by name.
    pub fn counters(&self, name: &str) -> Option<Arc<SinkCounters>> {
        self.workers
            .iter()
            .find(|w| w.name == name)
            .map(|w| w.counters.clone())
    }

    /// The sinks' families for `/metrics`.
    pub fn encode_metrics(&self, e: &mut export::Encoder<'_>) -> std::fmt::Result {
        export::counters(
            e,
            "sentrace_detect_sink_findings",
            "Findings per sink by outcome (dropped: queue full; failed: every attempt failed).",
            self.workers.iter().flat_map(|w| {
                [
                    ("sent", &w.counters.sent),
                    ("dropped", &w.counters.dropped),
                    ("failed", &w.counters.failed),
                    ("retried", &w.counters.retries),
                ]
                .map(|(outcome, v)| {
                    (
                        [
                            ("sink", Escaped(&w.name)),
                            ("kind", Escaped(w.kind)),
                            ("outcome", Escaped(outcome)),
                        ],
                        v.load(Relaxed),
                    )
                })
            }),
        )
    }
}

impl sentrace_pipeline::detect::FindingSinks for Sinks {
    fn send(&self, f: &Finding) {
        Sinks::send(self, f);
    }

    fn call_webhook(&self, name: &str, f: &Finding) -> bool {
        Sinks::call_webhook(self, name, f)
    }

    fn encode_metrics(&self, e: &mut export::Encoder<'_>) -> std::fmt::Result {
        Sinks::encode_metrics(self, e)
    }
}

#[cfg(test)]
#[path = "sinks_tests.rs"]
mod tests;
