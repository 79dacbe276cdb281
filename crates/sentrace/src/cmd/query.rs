//! `sentrace query`: read traces from a running server over HTTPS with a token.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use serde_json::Value;

use super::client::{Listener, ServerConfig};
use crate::DataDir;

/// Connection options.
#[derive(clap::Args, Debug)]
pub struct Conn {
    #[command(flatten)]
    data: DataDir,
    /// The query API's base URL (default: from `--config`'s `[listen] query`, else
    /// https://localhost:16686).
    #[arg(long, env = "SENTRACE_SERVER")]
    server: Option<String>,
    #[command(flatten)]
    config: ServerConfig,
    /// A token with the read role.
    #[arg(long, env = "SENTRACE_TOKEN", hide_env_values = true)]
    token: String,
    /// CA certificate to trust (default: <data-dir>/tls/ca.pem when it exists, else the
    /// system roots).
    #[arg(long, env = "SENTRACE_CA")]
    ca: Option<PathBuf>,
    /// Print the server's JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// Query subcommands.
#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Show one trace as a tree.
    Trace {
        /// Trace id (hex).
        id: String,
        #[command(flatten)]
        conn: Conn,
    },
    /// Find traces.
    Search {
        /// Service name.
        #[arg(long)]
        service: String,
        /// Span name.
        #[arg(long)]
        operation: Option<String>,
        /// Attribute condition key=value (repeatable).
        #[arg(long = "tag")]
        tags: Vec<String>,
        /// How far back to look (like 15m, 1h, 2d).
        #[arg(long, default_value = "1h")]
        since: String,
        /// Shortest span duration (like 100ms, 1.5s).
        #[arg(long)]
        min_duration: Option<String>,
        /// Longest span duration.
        #[arg(long)]
        max_duration: Option<String>,
        /// Most traces.
        #[arg(long, default_value_t = 20)]
        limit: usize,
        #[command(flatten)]
        conn: Conn,
    },
}

fn client(conn: &Conn) -> anyhow::Result<reqwest::Client> {
    let ca = conn.ca.clone().or_else(|| {
        let p = conn.data.data_dir.join("tls").join("ca.pem");
        p.exists().then_some(p)
    });
    https_client(ca.as_deref())
}

/// An HTTPS client on rustls/aws-lc-rs that trusts `ca` (or the system roots without it).
pub fn https_client(ca: Option<&std::path::Path>) -> anyhow::Result<reqwest::Client> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = reqwest::Client::builder().timeout(Duration::from_secs(60));
    let builder = match ca {
        Some(ca) => {
            use rustls::pki_types::{CertificateDer, pem::PemObject};
            let mut roots = rustls::RootCertStore::empty();
            for cert in CertificateDer::pem_file_iter(ca)
                .with_context(|| format!("reading CA {}", ca.display()))?
            {
                roots.add(cert.with_context(|| format!("parsing CA {}", ca.display()))?)?;
            }
            let tls = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()?
                .with_root_certificates(roots)
                .with_no_client_auth();
            builder.use_preconfigured_tls(tls)
        }
        None => {
            let _ = rustls::crypto::CryptoProvider::install_default(
                rustls::crypto::aws_lc_rs::default_provider(),
            );
            builder
        }
    };
    Ok(builder.build()?)
}

async fn get(conn: &Conn, path: &str, query: &[(String, String)]) -> anyhow::Result<Value> {
    let server = conn.config.url(
        conn.server.as_deref(),
        Listener::Query,
        "https://localhost:16686",
    )?;
    let url = format!("{}{}", server.trim_end_matches('/'), path);
    let resp = client(conn)?
        .get(&url)
        .bearer_auth(&conn.token)
        .query(query)
        .send()
        .await
        .map_err(reqwest::Error::without_url)
        .with_context(|| format!("connecting to {server}"))?;
    let status = resp.status();
    let body = resp.text().await.unwrap_or_default();
    match status.as_u16() {
        200 => Ok(serde_json::from_str(&body).context("the server's answer is not JSON")?),
        401 => bail!("the server refused the token (401)"),
        403 => bail!("the token lacks the read role (403)"),
        404 => bail!("not found"),
        _ => {
            let msg = serde_json::from_str::<Value>(&body)
                .ok()
                .and_then(|v| v["errors"][0]["msg"].as_str().map(String::from))
                .unwrap_or(body);
            bail!("the server answered {status}: {msg}")
        }
    }
}

fn fmt_us(us: u64) -> String {
    if us >= 1_000_000 {
        format!("{:.2}s", us as f64 / 1e6)
    } else if us >= 1_000 {
        format!("{:.2}ms", us as f64 / 1e3)
    } else {
        format!("{us}µs")
    }
}

fn service_of(trace: &Value, span: &Value) -> String {
    let pid = span["processID"].as_str().unwrap_or("");
    trace["processes"][pid]["serviceName"]
        .as_str()
        .unwrap_or("?")
        .to_string()
}

fn print_trace(trace: &Value) {
    let empty = Vec::new();
    let spans = trace["spans"].as_array().unwrap_or(&empty);
    let start = spans
        .iter()
        .filter_map(|s| s["startTime"].as_u64())
        .min()
        .unwrap_or(0);
    let mut children: HashMap<String, Vec<&Value>> = HashMap::new();
    let ids: std::collections::HashSet<&str> =
        spans.iter().filter_map(|s| s["spanID"].as_str()).collect();
    let mut roots = Vec::new();
    for s in spans {
        let parent = s["references"]
            .as_array()
            .and_then(|r| r.iter().find(|x| x["refType"] == "CHILD_OF"))
            .and_then(|r| r["spanID"].as_str());
        match parent {
            Some(p) if ids.contains(p) => children.entry(p.to_string()).or_default().push(s),
            _ => roots.push(s),
        }
    }
    println!(
        "trace {}  ({} spans)",
        trace["traceID"].as_str().unwrap_or("?"),
        spans.len()
    );
    println!(
        "{:<16}  {:>10}  {:>10}  {:<20}  OPERATION",
        "SPAN", "OFFSET", "DURATION", "SERVICE"
    );
    fn walk(
        trace: &Value,
        s: &Value,
        depth: usize,
        start: u64,
        children: &HashMap<String, Vec<&Value>>,
    ) {
        let id = s["spanID"].as_str().unwrap_or("?");
        let error = s["tags"]
            .as_array()
            .is_some_and(|t| t.iter().any(|t| t["key"] == "error" && t["value"] == true));
        println!(
            "{:<16}  {:>10}  {:>10}  {:<20}  {}{}{}",
            id,
            fmt_us(s["startTime"].as_u64().unwrap_or(0).saturating_sub(start)),
            fmt_us(s["duration"].as_u64().unwrap_or(0)),
            service_of(trace, s),
            "  ".repeat(depth),
            s["operationName"].as_str().unwrap_or(""),
            if error { "  [error]" } else { "" }
        );
        if depth < 64
            && let Some(kids) = children.get(id)
        {
            for k in kids {
                walk(trace, k, depth + 1, start, children);
            }
        }
    }
    for r in roots {
        walk(trace, r, 0, start, &children);
    }
}

/// Runs a query subcommand.
pub fn run(c: Command) -> anyhow::Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        match c {
            Command::Trace { id, conn } => {
                let v = get(&conn, &format!("/api/traces/{id}"), &[]).await?;
                if conn.json {
                    println!("{}", serde_json::to_string_pretty(&v)?);
                } else {
                    for t in v["data"].as_array().into_iter().flatten() {
                        print_trace(t);
                    }
                }
            }
            Command::Search {
                service,
                operation,
                tags,
                since,
                min_duration,
                max_duration,
                limit,
                conn,
            } => {
                let since = sentrace_access::parse_duration(&since)
                    .map_err(|e| anyhow::anyhow!("--since: {e}"))?;
                let now_us = SystemTime::now().duration_since(UNIX_EPOCH)?.as_micros() as u64;
                let mut q = vec![
                    ("service".to_string(), service),
                    ("limit".into(), limit.to_string()),
                    (
                        "start".into(),
                        now_us.saturating_sub(since.as_micros() as u64).to_string(),
                    ),
                    ("end".into(), now_us.to_string()),
                ];
                if let Some(o) = operation {
                    q.push(("operation".into(), o));
                }
                let mut tag_map = serde_json::Map::new();
                for t in tags {
                    let (k, v) = t
                        .split_once('=')
                        .with_context(|| format!("--tag {t:?}: expected key=value"))?;
                    tag_map.insert(k.to_string(), Value::String(v.to_string()));
                }
                if !tag_map.is_empty() {
                    q.push(("tags".into(), Value::Object(tag_map).to_string()));
                }
                for (flag, param, d) in [
                    ("--min-duration", "minDuration", min_duration),
                    ("--max-duration", "maxDuration", max_duration),
                ] {
                    if let Some(d) = d {
                        if sentrace_query::search::parse_go_duration(&d).is_none() {
                            anyhow::bail!(
                                "{flag}: {d:?} is not a duration with a unit, like 100ms, 1.5s or 2m"
                            );
                        }
                        q.push((param.into(), d));
                    }
                }
                let v = get(&conn, "/api/traces", &q).await?;
                if conn.json {
                    println!("{}", serde_json::to_string_pretty(&v)?);
                } else {
                    println!(
                        "{:<32}  {:>5}  {:>10}  {:<20}  ROOT OPERATION",
                        "TRACE ID", "SPANS", "DURATION", "ROOT SERVICE"
                    );
                    for t in v["data"].as_array().into_iter().flatten() {
                        let empty = Vec::new();
                        let spans = t["spans"].as_array().unwrap_or(&empty);
                        let root = spans
                            .iter()
                            .find(|s| {
                                s["references"]
                                    .as_array()
                                    .is_none_or(|r| !r.iter().any(|x| x["refType"] == "CHILD_OF"))
                            })
                            .or(spans.first());
                        let start = spans
                            .iter()
                            .filter_map(|s| s["startTime"].as_u64())
                            .min()
                            .unwrap_or(0);
                        let end = spans
                            .iter()
                            .filter_map(|s| {
                                Some(s["startTime"].as_u64()? + s["duration"].as_u64()?)
                            })
                            .max()
                            .unwrap_or(start);
                        println!(
                            "{:<32}  {:>5}  {:>10}  {:<20}  {}",
                            t["traceID"].as_str().unwrap_or("?"),
                            spans.len(),
                            fmt_us(end.saturating_sub(start)),
                            root.map(|r| service_of(t, r)).unwrap_or_default(),
                            root.and_then(|r| r["operationName"].as_str()).unwrap_or("")
                        );
                    }
                }
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}
