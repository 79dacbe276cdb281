//! Test harness: runs the real `sentrace` binary on free loopback ports with TLS, in a fresh
//! data directory, and talks to it over HTTPS.
#![allow(dead_code)]

pub mod azurite;
pub mod oidc;
pub mod s3;

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value::Value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message;

pub const BIN: &str = env!("CARGO_BIN_EXE_sentrace");

/// Spawns `cmd` (with `RUST_LOG=info`, stderr appended to `log`) and waits up to 60 s for
/// a stdout line starting with `ready`. Returns the child and the lines up to and including
/// that one, or `None` if it never came. Stdout keeps being drained afterwards, so the
/// process never blocks on a full pipe.
pub fn spawn_until(
    cmd: &mut Command,
    log: std::fs::File,
    ready: &str,
) -> (Child, Option<Vec<String>>) {
    let mut child = cmd
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    loop {
        let Ok(line) = rx.recv_timeout(Duration::from_secs(60)) else {
            return (child, None);
        };
        let done = line.starts_with(ready);
        seen.push(line);
        if done {
            break;
        }
    }
    std::thread::spawn(move || while rx.recv().is_ok() {});
    (child, Some(seen))
}

/// An HTTP/2 (prior knowledge) TLS 1.3 client trusting the server's CA, for OTLP/gRPC
/// framed by hand.
pub fn grpc_client(srv: &Server) -> reqwest::blocking::Client {
    use rustls::pki_types::{CertificateDer, pem::PemObject};
    let pem = std::fs::read(srv.ca()).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(&pem) {
        roots.add(c.unwrap()).unwrap();
    }
    let mut tls = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS13])
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    tls.alpn_protocols = vec![b"h2".to_vec()];
    reqwest::blocking::Client::builder()
        .use_preconfigured_tls(tls)
        .http2_prior_knowledge()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

/// Runs `sentrace verify --json --data-dir DATA EXTRA...`; returns the exit code and the
/// report.
pub fn verify_json(data: &Path, extra: &[&str]) -> (i32, serde_json::Value) {
    let out = Command::new(BIN)
        .args(["verify", "--json", "--data-dir"])
        .arg(data)
        .args(extra)
        .output()
        .unwrap();
    let code = out.status.code().unwrap_or(-1);
    let v = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "verify printed no JSON ({e}); exit {code}; stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (code, v)
}

/// The findings of every log in a `verify --json` report.
pub fn verify_findings(v: &serde_json::Value) -> Vec<serde_json::Value> {
    v["logs"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|l| l["report"]["findings"].as_array().unwrap().clone())
        .collect()
}

/// A memory figure of process `pid` from `/proc/<pid>/status`, in KiB: `VmRSS` (resident
/// now) or `VmHWM` (peak resident). None once the process is gone.
pub fn proc_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.strip_prefix(field).is_some_and(|r| r.starts_with(':')))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// A started server whose minimization policy turns emails into reversible tokens (their
/// originals in the vault), with flushes held off for an hour (spans stay in the WAL).
pub fn tokenizing_server() -> Server {
    let srv = Server::new("[store]\nflush_interval = \"1h\"\n");
    let policy = srv.dir.path().join("policy.toml");
    std::fs::write(&policy, "version = 1\n[actions]\nemail = \"token\"\n").unwrap();
    let mut config = std::fs::OpenOptions::new()
        .append(true)
        .open(&srv.config)
        .unwrap();
    use std::io::Write;
    writeln!(config, "[minimize]\npolicy = \"{}\"", policy.display()).unwrap();
    srv.start()
}

/// Starts `sentrace ARGS` with all three standard streams piped.
pub fn spawn_piped(args: &[&str]) -> Child {
    Command::new(BIN)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits for `child`, sampling its resident memory; returns its status and the peak seen
/// (KiB).
pub fn wait_sampling_rss(child: &mut Child) -> (std::process::ExitStatus, u64) {
    let mut peak = 0;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return (status, peak);
        }
        if let Some(kib) = proc_kib(child.id(), "VmRSS") {
            peak = peak.max(kib);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A free port this test process has not handed out before. The kernel may give a port
/// that was just released to the next `bind(0)`, so two calls in a row can return the same
/// number (which a config would then refuse as a clash); remembering them rules that out.
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

/// A test server stops at once and leaves its WAL as it is unless the test says otherwise
/// (`[server] drain_grace`, `[store] shutdown_flush_timeout`): most tests stop and restart
/// servers to look at exactly what the WAL and the blocks hold.
fn with_test_stop_defaults(extra: &str) -> String {
    let mut out = extra.to_string();
    for (table, line) in [
        ("[server]\n", "drain_grace = \"0s\"\n"),
        ("[store]\n", "shutdown_flush_timeout = \"0s\"\n"),
    ] {
        let key = &line[..line.find(' ').unwrap_or(0)];
        if out.contains(key) {
            continue;
        }
        match out.find(table) {
            Some(at) => out.insert_str(at + table.len(), line),
            // First, so that a test appending keys to its last table still does.
            None => out.insert_str(0, &format!("{table}{line}")),
        }
    }
    out
}

pub struct Server {
    pub dir: tempfile::TempDir,
    pub data: PathBuf,
    pub config: PathBuf,
    pub grpc_port: u16,
    pub http_port: u16,
    pub query_port: u16,
    pub admin_token: Option<String>,
    child: Option<Child>,
    pub stdout_lines: Vec<String>,
    /// Extra environment variables of the server process (e.g. `AWS_*` for an S3 store).
    pub env: Vec<(String, String)>,
}

impl Server {
    /// A server whose config file has the listen addresses plus `extra` TOML.
    pub fn new(extra: &str) -> Self {
        let extra = &with_test_stop_defaults(extra);
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let config = dir.path().join("sentrace.toml");
        let (g, h, q) = (free_port(), free_port(), free_port());
        std::fs::write(
            &config,
            format!(
                "[listen]\notlp_grpc = \"127.0.0.1:{g}\"\notlp_http = \"127.0.0.1:{h}\"\nquery = \"127.0.0.1:{q}\"\n{extra}"
            ),
        )
        .unwrap();
        Server {
            dir,
            data,
            config,
            grpc_port: g,
            http_port: h,
            query_port: q,
            admin_token: None,
            child: None,
            stdout_lines: Vec::new(),
            env: Vec::new(),
        }
    }

    pub fn start(mut self) -> Self {
        self.launch();
        self
    }

    /// Starts the process and waits for "sentrace: ready".
    pub fn launch(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("server.log"))
            .unwrap();
        let mut cmd = Command::new(BIN);
        cmd.args(["serve", "--data-dir"])
            .arg(&self.data)
            .arg("--config")
            .arg(&self.config)
            .envs(self.env.iter().map(|(k, v)| (k, v)));
        let (child, lines) = spawn_until(&mut cmd, log, "sentrace: ready");
        self.child = Some(child);
        let Some(lines) = lines else {
            panic!("server did not become ready; log:\n{}", self.log());
        };
        // Standard output is a pipe here, so a first start writes the admin token to a file
        // and prints its path.
        let token_file = self.data.join("admin-token");
        for line in lines {
            if line.trim() == token_file.display().to_string() {
                let t = std::fs::read_to_string(&token_file).unwrap();
                self.admin_token = Some(t.trim().to_string());
            }
            self.stdout_lines.push(line);
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// SIGKILL: no shutdown code runs.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
    }

    /// SIGTERM and wait: a graceful stop.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill").arg(c.id().to_string()).status();
            let status = c.wait().unwrap();
            assert!(
                status.success(),
                "server exited with {status}; log:\n{}",
                self.log()
            );
        }
    }

    pub fn ca(&self) -> PathBuf {
        self.data.join("tls").join("ca.pem")
    }

    /// Runs `sentrace` with `args` and the data dir; returns stdout.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = Command::new(BIN)
            .args(args)
            .arg("--data-dir")
            .arg(&self.data)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "sentrace {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    pub fn token(&self, tenant: &str, role: &str) -> String {
        self.cli(&["tokens", "create", "--tenant", tenant, "--role", role])
            .trim()
            .to_string()
    }

    pub fn client(&self) -> reqwest::blocking::Client {
        client_for(&self.ca())
    }

    pub fn query_url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.query_port)
    }

    pub fn http_url(&self) -> String {
        format!("https://localhost:{}/v1/traces", self.http_port)
    }

    /// POSTs an OTLP protobuf body with a token.
    pub fn post_proto(
        &self,
        token: &str,
        req: &ExportTraceServiceRequest,
    ) -> reqwest::blocking::Response {
        self.client()
            .post(self.http_url())
            .bearer_auth(token)
            .header("content-type", "application/x-protobuf")
            .body(req.encode_to_vec())
            .send()
            .unwrap()
    }

    pub fn get(&self, token: &str, path: &str) -> reqwest::blocking::Response {
        self.client()
            .get(self.query_url(path))
            .bearer_auth(token)
            .send()
            .unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

pub fn client_for(ca: &Path) -> reqwest::blocking::Client {
    let pem = std::fs::read(ca).unwrap();
    let cert = reqwest::Certificate::from_pem(&pem).unwrap();
    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    use rustls::pki_types::{CertificateDer, pem::PemObject};
    for c in CertificateDer::pem_slice_iter(&pem) {
        roots.add(c.unwrap()).unwrap();
    }
    let _ = cert;
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    reqwest::blocking::Client::builder()
        .use_preconfigured_tls(tls)
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

pub fn kv(k: &str, v: &str) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: Some(AnyValue {
            value: Some(Value::StringValue(v.into())),
        }),
        ..Default::default()
    }
}

/// A span with fresh random-ish ids derived from `n`.
pub fn span(n: u64, name: &str) -> Span {
    let mut trace_id = [0u8; 16];
    trace_id[..8].copy_from_slice(&(n + 1).to_be_bytes());
    trace_id[8..].copy_from_slice(&0x5e17_ace0_u64.to_be_bytes());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    Span {
        trace_id: trace_id.to_vec(),
        span_id: (n + 1).to_be_bytes().to_vec(),
        name: name.into(),
        kind: 2,
        start_time_unix_nano: now - 2_000_000,
        end_time_unix_nano: now,
        ..Default::default()
    }
}

pub fn request(service: &str, spans: Vec<Span>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![kv("service.name", service)],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `google.rpc.Status` as OTLP/HTTP returns it for protobuf requests.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RpcStatus {
    #[prost(int32, tag = "1")]
    pub code: i32,
    #[prost(string, tag = "2")]
    pub message: String,
}

/// Decodes an OTLP/HTTP error body (protobuf or JSON, by content type).
pub fn rpc_status(resp: reqwest::blocking::Response) -> (u16, RpcStatus) {
    let status = resp.status().as_u16();
    let ct = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let body = resp.bytes().unwrap();
    let st = if ct.starts_with("application/x-protobuf") {
        RpcStatus::decode(body.as_ref()).unwrap()
    } else {
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        RpcStatus {
            code: v["code"].as_i64().unwrap() as i32,
            message: v["message"].as_str().unwrap().to_string(),
        }
    };
    (status, st)
}

/// Every file under `dir`, recursively.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// Runs `sentrace serve` to completion (for start-up refusals): (success, stderr).
pub fn serve_once(data: &Path, config: &Path) -> (bool, String) {
    let out = Command::new(BIN)
        .args(["serve", "--data-dir"])
        .arg(data)
        .arg("--config")
        .arg(config)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Spans reported flushed into blocks by a server's log so far.
pub fn flushed_spans(log: &str) -> u64 {
    log.lines()
        .filter(|l| l.contains("flushed buffered spans into blocks"))
        .filter_map(|l| {
            let at = l.find("spans=")? + "spans=".len();
            let digits: String = l[at..].chars().take_while(char::is_ascii_digit).collect();
            digits.parse::<u64>().ok()
        })
        .sum()
}

/// Reads each trace of `ids` through the Jaeger API and checks it is there with its one
/// span; `stage` names the step in a failure, with the server's log.
pub fn read_all(srv: &Server, token: &str, ids: &[String], stage: &str) {
    for id in ids {
        let resp = srv.get(token, &format!("/api/traces/{id}"));
        let status = resp.status().as_u16();
        let text = resp.text().unwrap();
        assert_eq!(
            status,
            200,
            "{stage}: trace {id}: {text}\nlog:\n{}",
            srv.log()
        );
        let body: serde_json::Value = serde_json::from_str(&text).unwrap();
        let spans = body["data"][0]["spans"].as_array().map_or(0, Vec::len);
        assert_eq!(spans, 1, "{stage}: trace {id}: {body}");
    }
}
