//! A real Azure Blob Storage emulator for tests: Azurite (npm `azurite`, installed by
//! `scripts/test.sh` with `npm ci` in `tests/azurite`; its `azurite-blob` in
//! `SENTRACE_AZURITE`) on a free loopback port, data in a temporary directory, with the
//! emulator's published development account (`devstoreaccount1` and its well-known key,
//! which is public and guards nothing).

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use object_store::azure::{MicrosoftAzure, MicrosoftAzureBuilder};

use super::free_port;

pub const ACCOUNT: &str = "devstoreaccount1";
/// Azurite's published development key (documented by Microsoft; not a secret).
pub const ACCOUNT_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
pub const CONTAINER: &str = "traces";

/// A running `azurite-blob` with a container.
pub struct Azurite {
    child: Child,
    _root: tempfile::TempDir,
    pub port: u16,
}

fn tests_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/azurite")
}

impl Azurite {
    /// Starts Azurite and creates [`CONTAINER`]; `None` (with the reason printed) when
    /// `SENTRACE_AZURITE` is unset outside CI. In CI (`CI` set) a missing emulator fails.
    pub fn start() -> Option<Azurite> {
        let Some(bin) = std::env::var_os("SENTRACE_AZURITE").map(PathBuf::from) else {
            let why = "SENTRACE_AZURITE is not set: this test needs Azurite, a real Azure Blob \
                       emulator. Run scripts/test.sh (it installs it), or `npm ci` in \
                       tests/azurite and SENTRACE_AZURITE=$PWD/tests/azurite/node_modules/.bin/azurite-blob";
            if std::env::var_os("CI").is_some() {
                panic!("{why}");
            }
            eprintln!("skipped: {why}");
            return None;
        };
        assert!(
            bin.is_file(),
            "SENTRACE_AZURITE={} is not a file",
            bin.display()
        );
        let root = tempfile::tempdir().unwrap();
        let port = free_port();
        let log = std::fs::File::create(root.path().join("azurite.log")).unwrap();
        let child = Command::new(&bin)
            .args(["--blobHost", "127.0.0.1", "--blobPort", &port.to_string()])
            .arg("--location")
            .arg(root.path().join("data"))
            .arg("--debug")
            .arg(root.path().join("debug.log"))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", bin.display()));
        let az = Azurite {
            child,
            _root: root,
            port,
        };
        // Node starts slowly on a loaded machine.
        let deadline = Instant::now() + Duration::from_secs(120);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "Azurite did not listen on {port}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let out = Command::new("node")
            .arg(tests_dir().join("create-container.mjs"))
            .arg(az.endpoint())
            .args([ACCOUNT, ACCOUNT_KEY, CONTAINER])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "creating the container: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        Some(az)
    }

    /// The account's blob endpoint (path style, as the emulator serves it).
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}/{ACCOUNT}", self.port)
    }

    /// The environment an operator would set for this account.
    pub fn env(&self) -> Vec<(String, String)> {
        [
            ("AZURE_STORAGE_ACCOUNT_NAME", ACCOUNT.to_string()),
            ("AZURE_STORAGE_ACCOUNT_KEY", ACCOUNT_KEY.to_string()),
            ("AZURE_STORAGE_ENDPOINT", self.endpoint()),
            ("AZURE_ALLOW_HTTP", "true".to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    /// A Blob API client of the container (for the test's own listing).
    pub fn client(&self) -> MicrosoftAzure {
        MicrosoftAzureBuilder::new()
            .with_account(ACCOUNT)
            .with_access_key(ACCOUNT_KEY)
            .with_endpoint(self.endpoint())
            .with_allow_http(true)
            .with_container_name(CONTAINER)
            .build()
            .unwrap()
    }
}

impl Drop for Azurite {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
