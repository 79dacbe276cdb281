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
