//! A real S3-compatible server for tests: `s3s-fs` (installed by `scripts/test.sh`; its
//! path in `SENTRACE_S3_SERVER`) on loopback with access keys made at test time, and a
//! client of its bucket.

use std::io::Read;
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use object_store::ObjectStore;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as ObjectPath;

use super::{free_port, hex};

pub const BUCKET: &str = "traces";

/// A running `s3s-fs` with fresh credentials and a bucket.
pub struct S3Server {
    pub child: Child,
    pub root: tempfile::TempDir,
    pub port: u16,
    pub key: String,
    pub secret: String,
}

pub fn random_hex(n: usize) -> String {
    let mut buf = vec![0u8; n];
    std::fs::File::open("/dev/urandom")
        .unwrap()
        .read_exact(&mut buf)
        .unwrap();
    hex(&buf)
}

impl S3Server {
    pub fn start() -> S3Server {
        let root = tempfile::tempdir().unwrap();
        // s3s-fs keeps bucket `b` in the directory `ROOT/b`.
        std::fs::create_dir(root.path().join(BUCKET)).unwrap();
        let (port, key, secret) = (free_port(), random_hex(10), random_hex(20));
        let child = spawn(root.path(), port, &key, &secret);
        S3Server {
            child,
            root,
            port,
            key,
            secret,
        }
    }

    /// Stops the server (SIGKILL): the bucket's files stay for [`S3Server::restart`].
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts the server again on the same port, keys and files.
    pub fn restart(&mut self) {
        self.child = spawn(self.root.path(), self.port, &self.key, &self.secret);
    }

    /// The environment a client of this server needs (as an operator would set it).
    pub fn env(&self) -> Vec<(String, String)> {
        [
            (
                "AWS_ENDPOINT_URL",
                format!("http://127.0.0.1:{}", self.port),
            ),
            ("AWS_ACCESS_KEY_ID", self.key.clone()),
            ("AWS_SECRET_ACCESS_KEY", self.secret.clone()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_ALLOW_HTTP", "true".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    /// An S3 API client of the bucket (for the test's own reads and the tampering).
    pub fn client(&self) -> AmazonS3 {
        AmazonS3Builder::new()
            .with_endpoint(format!("http://127.0.0.1:{}", self.port))
            .with_access_key_id(&self.key)
            .with_secret_access_key(&self.secret)
            .with_region("us-east-1")
            .with_allow_http(true)
            .with_bucket_name(BUCKET)
            .build()
            .unwrap()
    }
}

/// Starts `s3s-fs` on `port` and waits until it listens.
fn spawn(root: &std::path::Path, port: u16, key: &str, secret: &str) -> Child {
    let bin = std::env::var_os("SENTRACE_S3_SERVER")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            panic!(
                "SENTRACE_S3_SERVER is not set. This test needs a real S3-compatible server: \
                 run scripts/test.sh (it installs one), or \
                 `cargo install s3s-fs@0.14.1 --locked --features binary --root .tools` and \
                 SENTRACE_S3_SERVER=$PWD/.tools/bin/s3s-fs"
            )
        });
    assert!(
        bin.is_file(),
        "SENTRACE_S3_SERVER={} is not a file: install it with \
         `cargo install s3s-fs@0.14.1 --locked --features binary --root .tools`",
        bin.display()
    );
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(root.join("s3s-fs.log"))
        .unwrap();
    let child = Command::new(&bin)
        .args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .args(["--access-key", key, "--secret-key", secret])
        .arg(root)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("starting {}: {e}", bin.display()));
    let deadline = Instant::now() + Duration::from_secs(60);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "s3s-fs did not listen on {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
    child
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = &self.root;
    }
}

pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Every object key in the bucket.
pub fn list(client: &AmazonS3) -> Vec<ObjectPath> {
    use futures::StreamExt;
    rt().block_on(async {
        let mut out = Vec::new();
        let mut l = client.list(None);
        while let Some(m) = l.next().await {
            out.push(m.unwrap().location);
        }
        out
    })
}

/// Flips one byte in the middle of `path` through the S3 API (tampering as an attacker with
/// bucket access would).
pub fn flip_middle_byte(client: &AmazonS3, path: &ObjectPath) {
    use object_store::{ObjectStoreExt, PutPayload};
    rt().block_on(async {
        let mut bytes = client
            .get(path)
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap()
            .to_vec();
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0x01;
        client.put(path, PutPayload::from(bytes)).await.unwrap();
    });
}

/// A TCP relay in front of a server that keeps a copy of every byte the clients send (up
/// to 64 MiB): what an object store client really put on the wire, headers included,
/// while the real server answers.
pub struct Recorder {
    pub port: u16,
    pub sent: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
}

impl Recorder {
    pub fn start(target: u16) -> Recorder {
        use std::io::Write;
        use std::sync::{Arc, Mutex};
        const CAP: usize = 64 << 20;
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let sent = Arc::new(Mutex::new(Vec::new()));
        let seen = sent.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let Ok(server) = TcpStream::connect(("127.0.0.1", target)) else {
                    continue;
                };
                let (mut c_in, mut s_out) =
                    (client.try_clone().unwrap(), server.try_clone().unwrap());
                let seen = seen.clone();
                std::thread::spawn(move || {
                    let mut buf = [0u8; 16 << 10];
                    while let Ok(n) = c_in.read(&mut buf) {
                        if n == 0 || s_out.write_all(&buf[..n]).is_err() {
                            break;
                        }
                        let mut all = seen.lock().unwrap_or_else(|e| e.into_inner());
                        let room = CAP.saturating_sub(all.len()).min(n);
                        all.extend_from_slice(&buf[..room]);
                    }
                    let _ = s_out.shutdown(std::net::Shutdown::Write);
                });
                let (mut s_in, mut c_out) = (server, client);
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut s_in, &mut c_out);
                    let _ = c_out.shutdown(std::net::Shutdown::Write);
                });
            }
        });
        Recorder { port, sent }
    }

    /// The request heads (request line and headers, lower-cased) the clients sent to the
    /// bucket: every `METHOD /bucket... HTTP/1.1` line up to the blank line after it.
    pub fn request_heads(&self) -> Vec<String> {
        let all = self.sent.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let text = String::from_utf8_lossy(&all).to_lowercase();
        let mut heads = Vec::new();
        for method in ["get", "put", "post", "head", "delete"] {
            let line_start = format!("{method} /{BUCKET}");
            for (at, _) in text.match_indices(&line_start) {
                let rest = &text[at..];
                let Some(end) = rest.find("\r\n\r\n") else {
                    continue;
                };
                let head = &rest[..end];
                if head
                    .lines()
                    .next()
                    .is_some_and(|l| l.ends_with(" http/1.1"))
                {
                    heads.push(head.to_string());
                }
            }
        }
        heads
    }
}
