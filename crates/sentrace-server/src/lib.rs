//! Sentrace's network edges: OTLP receivers over gRPC and HTTP, the query APIs, TLS, first-start
//! bootstrap and the wiring of the ingest pipeline.
#![forbid(unsafe_code)]

pub mod access;
pub mod api;
pub mod app;
pub mod audit;
pub mod auth;
pub mod bootstrap;
pub mod breakglass;
pub mod config;
pub mod console;
pub mod detect;
pub mod ingest;
pub mod keys_config;
pub mod request_metrics;
pub mod seal;
pub mod secviews;
mod shutdown;
pub mod sources;
pub mod tls;
pub mod witness;

// The write path lives in `sentrace-pipeline`; these keep the server's paths.
pub use sentrace_pipeline::{durable, metrics, pipeline, secrets};

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, bail};
use sentrace_pipeline::metrics::export;
use sentrace_store::{KeyRing, Store, Vault};
use tokio::net::TcpListener;
use tokio::sync::watch;

pub use config::Config;

/// How `sentrace serve` was asked to run.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// The data directory.
    pub data_dir: PathBuf,
    /// The configuration (defaults, or the parsed `--config` file).
    pub config: Config,
    /// Serve plaintext HTTP/gRPC. Loopback addresses only.
    pub insecure_plaintext: bool,
}

fn loopback(addr: SocketAddr) -> SocketAddr {
    let ip = if addr.is_ipv6() {
        std::net::IpAddr::from(std::net::Ipv6Addr::LOCALHOST)
    } else {
        std::net::IpAddr::from(std::net::Ipv4Addr::LOCALHOST)
    };
    SocketAddr::new(ip, addr.port())
}

/// Applies the plaintext rule: the default wildcard addresses become loopback; any other
/// non-loopback address is refused.
fn plaintext_listen(cfg: &mut Config) -> anyhow::Result<()> {
    let default = config::ListenConfig::default();
    for (name, addr, def) in [
        ("otlp_grpc", &mut cfg.listen.otlp_grpc, default.otlp_grpc),
        ("otlp_http", &mut cfg.listen.otlp_http, default.otlp_http),
        ("query", &mut cfg.listen.query, default.query),
    ] {
        if *addr == def {
            *addr = loopback(*addr);
        } else if !tls::is_loopback(addr) {
            bail!(
                "--insecure-plaintext is refused on the non-loopback address {addr} ([listen] {name}); use TLS, or listen on 127.0.0.1"
            );
        }
    }
    Ok(())
}

/// Every check of a configuration that `serve` makes before it creates or prints
/// anything, without side effects: values, listen ports, the files it names (TLS
/// certificate and key with the key's mode, client-certificate CAs, the redaction policy,
/// the Cedar policies, the detection rules and the response policy). `sentrace config
/// check` runs exactly this. Returns the configuration with its policies loaded.
pub fn preflight(cfg: &Config) -> anyhow::Result<Config> {
    cfg.validate()
        .map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))?;
    auth::mtls::load(&cfg.auth.mtls)?;
    if let (Some(cert), Some(key)) = (&cfg.tls.cert, &cfg.tls.key) {
        tls::server_config_with(cert, key, None, cfg.tls.prefer_post_quantum)
            .context("[tls] cert and key")?;
    }
    let loaded = cfg.clone().load_policies()?;
    cfg.access
        .load()
        .context("loading the authorization policies ([access])")?;
    if cfg.detect.enabled {
        detect::build_detector(&cfg.detect).context("[detect] rules")?;
        if let Some(p) = &cfg.detect.response.policy {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("reading response policy {}", p.display()))?;
            sentrace_detect::response::ResponsePolicy::from_toml(&p.display().to_string(), &text)?;
        }
    }
    Ok(loaded)
}

/// Runs the server until SIGINT or SIGTERM.
pub async fn serve(mut opts: ServeOptions) -> anyhow::Result<()> {
    // The whole configuration is checked before anything is created or printed.
    preflight(&opts.config)?;
    if opts.insecure_plaintext {
        if let Some(listener) = opts.config.tls.client_auth.first_enabled() {
            bail!(
                "--insecure-plaintext cannot take client certificates ([tls.client_auth] {listener}); serve TLS, or set it to \"off\""
            );
        }
        plaintext_listen(&mut opts.config)?;
        tracing::warn!(
            "!!! --insecure-plaintext: traffic and tokens travel UNENCRYPTED. For local experiments only; listening on loopback only. !!!"
        );
    }
    let cfg = opts.config.clone();
    // Client-certificate CA files are read first, so a bad one stops the start at once.
    let client_certs = auth::mtls::load(&cfg.auth.mtls)?;
    if client_certs.is_some() && cfg.tls.client_auth.first_enabled().is_none() {
        tracing::warn!(
            "[[auth.mtls]] trusts client CAs, but no listener takes client certificates: set [tls.client_auth]"
        );
    }
    let boot = bootstrap::ensure(&opts.data_dir, &cfg)?;
    let tls = if opts.insecure_plaintext {
        None
    } else {
        Some(tls::server_config_with(
            &boot.cert,
            &boot.key,
            None,
            cfg.tls.prefer_post_quantum,
        )?)
    };

    let keys = Arc::new(
        cfg.keys
            .apply(KeyRing::open(&opts.data_dir.join("keys"), &boot.master)?),
    );
    let cfg = cfg.load_policies()?;
    // Authorization policies are validated before anything else opens: an invalid policy
    // stops the start with its file, line and reason.
    let policies = Arc::new(sentrace_query::service::Policies::new(
        cfg.access
            .load()
            .context("loading the authorization policies ([access])")?,
    ));
    // With `[store] url`, the node writes under `nodes/<[seal] node>/` of the bucket and
    // reads every other node's blocks there.
    let (store, recovery) = Store::open_as(
        &opts.data_dir,
        cfg.store.clone(),
        keys.clone(),
        Some(&cfg.seal.node),
    )
    .await
    .context("opening the store")?;
    tracing::info!(
        segments = recovery.segments,
        records = recovery.records,
        spans = recovery.spans,
        blocks = recovery.blocks,
        "store opened; WAL replayed"
    );
    if let Some(cut) = &recovery.cut {
        tracing::warn!(
            segment = cut.segment,
            offset = cut.offset,
            bytes = cut.bytes,
            reason = %cut.reason,
            "WAL tail cut: a torn or corrupt record at the end of the log was removed; every record before it was recovered"
        );
    }
    for c in &recovery.corrupt {
        tracing::error!(
            segment = c.segment,
            offset = c.offset,
            reason = %c.reason,
            moved_to = %c.moved_to.display(),
            "corrupt WAL segment set aside"
        );
    }
    if recovery.unreadable_records > 0 {
        tracing::warn!(
            records = recovery.unreadable_records,
            "WAL records of shredded tenants skipped"
        );
    }
    // The node's log key signs the span logs' and the audit logs' checkpoints.
    let log_signer = seal::keys::load_or_create(&opts.data_dir, &boot.master, &cfg.seal.node)?;
    if store.cluster_status().is_some() {
        // `sentrace verify --store` checks this node's logs with this key, unwrapped with
        // the shared master key (so it cannot be swapped without it).
        seal::keys::publish_wrapped(&opts.data_dir, store.objects().as_ref())
            .await
            .context("publishing the wrapped log key to the bucket")?;
    }
    // The read-audit logs (always on: no audit, no data).
    let audit_log = audit::AuditLog::open(
        &opts.data_dir,
        keys.clone(),
        &boot.master,
        &log_signer,
        &cfg.seal.node,
        cfg.seal.checkpoint.clone(),
    )
    .context("opening the audit logs")?;
    let seal = if cfg.seal.enabled {
        let signer = log_signer;
        let seal = seal::Seal::open(
            &cfg.seal,
            signer,
            store.objects().clone(),
            &recovery.manifests,
        )
        .await
        .context("opening the transparency logs")?;
        Some(seal)
    } else {
        tracing::warn!("[seal] enabled = false: batches are stored without a transparency log");
        None
    };
    let sources = sources::Sources::open(&cfg.sources, &opts.data_dir, &recovery.manifests)
        .context("opening the signed-source replay state")?;
    store.set_wal_barrier(Arc::new(sources::persist::Barrier {
        sources: sources.clone(),
        next: seal
            .clone()
            .map(|s| Arc::new(seal::PublishBarrier(s)) as Arc<dyn sentrace_store::WalBarrier>),
    }));
    let vault = Arc::new(Vault::open(&opts.data_dir.join("vault"), keys.clone())?);
    let break_glass = breakglass::BreakGlass::open(&opts.data_dir, cfg.access.break_glass.clone())
        .context("opening the break-glass grants")?;
    let detect = if cfg.detect.enabled {
        Some(detect::Runtime::start(
            &cfg.detect,
            &opts.data_dir,
            keys.clone(),
            Box::new(detect::sinks::Sinks::start(&cfg.detect.sinks)?),
        )?)
    } else {
        tracing::warn!("[detect] enabled = false: batches are not inspected for attacks");
        None
    };
    let mut registry = pipeline::stages(
        &cfg.limits,
        &cfg.minimize,
        keys.clone(),
        vault.clone(),
        detect.clone(),
        sources.clone(),
        sentrace_pipeline::commit::for_store(store.clone(), seal.clone()),
    )?;
    let witness_metrics = (seal.is_some() && !cfg.seal.witness.is_empty())
        .then(|| Arc::new(witness::client::WitnessMetrics::new(&cfg.seal.witness)));
    if let Some(m) = &witness_metrics {
        let m = m.clone();
        registry
            .exporters
            .push(export::collector(move |e| m.encode_metrics(e)));
    }
    {
        let stats = audit_log.stats().clone();
        registry
            .exporters
            .push(export::collector(move |e| stats.encode_metrics(e)));
    }
    if let Some(c) = &client_certs {
        let c = c.clone();
        registry
            .exporters
            .push(export::collector(move |e| c.encode_metrics(e)));
    }
    let durable = Arc::new(durable::DurableWrites::new(vault.clone(), detect.clone()));
    {
        let d = durable.clone();
        registry
            .exporters
            .push(export::collector(move |e| d.encode_metrics(e)));
    }
    let mut metrics = metrics::Metrics::new(registry.exporters);
    metrics.register_store(&store);
    if let Some(s) = &seal {
        metrics.register_seal(s.clone());
    }
    let metrics = Arc::new(metrics);
    let pipeline = pipeline::Pipeline::new(registry.stages, registry.commit, metrics.clone())
        .with_durable(Some(durable));
    let secviews = secviews::SecViews::open(secviews::SecViewsOptions {
        data_dir: &opts.data_dir,
        master: boot.master.clone(),
        config: &cfg,
        exposure: registry.exposure.clone(),
        objects: store.objects().clone(),
    })
    .context("restoring the security views' state")?;
    let auth = auth::Authenticator::new(auth::tokens_path(&opts.data_dir), &cfg.auth)?;
    auth.warm_up().await;
    let state = Arc::new(app::AppState {
        auth,
        sessions: console::Sessions::new(cfg.console.clone(), tls.is_some())?,
        pipeline,
        store: store.clone(),
        limits: cfg.limits.clone(),
        metrics,
        seal: seal.clone(),
        detect,
        sources: sources.clone(),
        audit: audit_log.clone(),
        audit_log: audit_log.clone(),
        query: sentrace_query::service::QueryService::new(
            store.clone(),
            policies.clone(),
            audit_log.clone(),
        ),
        break_glass,
        vault,
        operator_tenant: cfg.access.operator(),
        health: Arc::new(api::health::Health::new(3)),
        secviews: secviews.clone(),
    });

    let (tx, rx) = watch::channel(false);
    let mut tasks = Vec::new();
    let publisher = seal.clone().map(|s| tokio::spawn(s.run(rx.clone())));
    let witness_clients = match (&seal, witness_metrics) {
        (Some(s), Some(m)) => witness::client::start(
            s.clone(),
            &cfg.seal.witness,
            cfg.seal.witness_quorum,
            m,
            rx.clone(),
        )?,
        _ => Vec::new(),
    };
    let replay_saver = tokio::spawn(sources.clone().run(rx.clone()));
    let baseline_saver =
        (state.detect.clone()).map(|d| tokio::spawn(d.run_baseline_saver(rx.clone())));
    // Sharing a bucket: quarantines and findings published to and read from the others.
    let detect_sharing = (state.detect.clone())
        .zip(store.shared_state())
        .map(|(d, s)| tokio::spawn(detect::shared::run(d, s, rx.clone())));
    let exposure_saver = tokio::spawn(
        secviews
            .clone()
            .run(secviews::EXPOSURE_PERSIST_EVERY, rx.clone()),
    );
    let audit_checkpoints = tokio::spawn(audit_log.clone().run(rx.clone()));
    let key_rotation = cfg
        .keys
        .rotate_after
        .map(|p| tokio::spawn(keys_config::rotate_by_age(keys.clone(), p, rx.clone())));
    let policy_watcher = tokio::spawn(access::watch_policies(
        cfg.access.clone(),
        policies.clone(),
        audit_log.clone(),
        rx.clone(),
    ));
    let modes = &cfg.tls.client_auth;
    for (name, addr, router, mode) in [
        (
            "otlp-grpc",
            cfg.listen.otlp_grpc,
            app::grpc_router(state.clone()),
            modes.otlp_grpc,
        ),
        (
            "otlp-http",
            cfg.listen.otlp_http,
            app::otlp_http_router(state.clone()),
            modes.otlp_http,
        ),
        (
            "query",
            cfg.listen.query,
            app::query_router(state.clone()),
            modes.query,
        ),
    ] {
        let router = request_metrics::layer(router, state.metrics.clone(), name);
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding {name} listener on {addr}"))?;
        let scheme = if tls.is_some() { "https" } else { "http" };
        let (listener_tls, certs) = match (&tls, &client_certs) {
            (Some(_), Some(certs)) if mode != auth::mtls::config::ClientAuthMode::Off => (
                Some(tls::server_config_with(
                    &boot.cert,
                    &boot.key,
                    certs.verifier(mode, name)?,
                    cfg.tls.prefer_post_quantum,
                )?),
                Some(certs.clone()),
            ),
            _ => (tls.clone(), None),
        };
        tracing::info!(listener = name, address = %listener.local_addr()?, scheme, client_certificates = mode.as_str(), "listening");
        tasks.push(tokio::spawn(tls::serve_with(
            listener,
            listener_tls,
            certs,
            Some(audit_log.clone() as Arc<dyn sentrace_query::audit::AuditSink>),
            router,
            rx.clone(),
        )));
        state.health.listener_bound();
    }
    let stop = shutdown_signal()?;
    // Last: a start that failed above has not consumed the first admin token.
    let terminal = std::io::IsTerminal::is_terminal(&std::io::stdout());
    let admin = bootstrap::first_admin_token(&opts.data_dir, terminal)?;
    if admin.is_some() || boot.created_pki {
        println!(
            "{}",
            bootstrap::banner(
                &boot,
                admin.as_ref(),
                &cfg,
                &opts.data_dir,
                opts.insecure_plaintext
            )
        );
    }
    println!("sentrace: ready");

    stop.await;
    // Readiness fails at once (503 `draining`); the listeners keep serving for the grace.
    state.health.stopping();
    shutdown::drain(cfg.server.drain_grace).await?;
    tracing::info!("shutting down");
    let _ = tx.send(true);
    for t in tasks {
        let _ = t.await;
    }
    if let Some(p) = publisher {
        let _ = p.await;
    }
    // Cosigning is best effort and retried on the next start: do not wait for a slow witness.
    for w in witness_clients {
        w.abort();
    }
    let _ = replay_saver.await;
    if let Some(b) = baseline_saver {
        let _ = b.await;
    }
    // The last save of the behavioral baselines, after ingest stopped.
    if let Some(d) = &state.detect {
        d.save_baselines().await;
    }
    let _ = exposure_saver.await;
    // Sharing is best effort (the local journals are durable): a bucket that hangs must
    // not hold up the stop.
    if let Some(s) = detect_sharing {
        s.abort();
    }
    // Signs the audit logs' final checkpoints (every record is already durable).
    let _ = audit_checkpoints.await;
    let _ = policy_watcher.await;
    if let Some(k) = key_rotation {
        let _ = k.await;
    }
    // Ingest has stopped: flush what is buffered, so nothing is left only in the WAL.
    shutdown::flush_before_exit(&store, cfg.store.shutdown_flush_timeout).await;
    store.close().await.context("closing the store")?;
    Ok(())
}

/// Resolves on SIGTERM or SIGINT. The handlers are installed when this is called, not
/// when the future is first polled: call it before announcing readiness, so a stop signal
/// sent right after "ready" is never met by the default action (death by signal).
pub(crate) fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {},
            _ = int.recv() => {},
        }
    })
}
