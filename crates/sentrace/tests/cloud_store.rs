//! Blocks and logs on Azure Blob Storage (`az://`) against a real emulator, Azurite
//! (installed by `scripts/test.sh`; its `azurite-blob` in `SENTRACE_AZURITE`), with the
//! emulator's development account: one node ingests, flushes into the container, reads back
//! through the Jaeger API after a kill -9, and `sentrace verify` is clean. Google Cloud
//! Storage (`gs://`) is built through the same code, but no emulator from this machine's
//! registries serves object_store's GCS client (docs/storage.md says which and why), so
//! only its settings errors are tested here, with Azure's.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::azurite::*;
use common::*;

const PREFIX: &str = "node-a";

fn list(client: &object_store::azure::MicrosoftAzure) -> Vec<String> {
    use futures::StreamExt;
    use object_store::ObjectStore;
    common::s3::rt().block_on(async {
        let mut out = Vec::new();
        let mut l = client.list(None);
        while let Some(m) = l.next().await {
            out.push(m.unwrap().location.to_string());
        }
        out
    })
}

#[test]
fn one_node_on_azurite_ingest_flush_read_verify() {
    let Some(az) = Azurite::start() else { return };
    let mut srv = Server::new(&format!(
        "[store]\nurl = \"az://{CONTAINER}/{PREFIX}\"\nflush_interval = \"1s\"\n"
    ));
    srv.env = az.env();
    srv.launch();
    let admin = srv.admin_token.clone().unwrap();

    let mut ids = Vec::new();
    for r in 0..5u64 {
        let spans: Vec<_> = (0..20u64).map(|i| span(r * 1000 + i, "op")).collect();
        ids.extend(spans.iter().map(|s| hex(&s.trace_id)));
        let resp = srv.post_proto(&admin, &request("az-node", spans));
        assert_eq!(resp.status().as_u16(), 200);
    }
    let total = ids.len() as u64;
    let deadline = Instant::now() + Duration::from_secs(120);
    while flushed_spans(&srv.log()) < total {
        assert!(
            Instant::now() < deadline,
            "spans were not flushed into the container; log:\n{}",
            srv.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // Everything the node shares is in the container under the prefix: blocks, their
    // tags, the log, the node description; nothing of it on local disk.
    let objects = list(&az.client());
    assert!(
        objects.iter().all(|p| p.starts_with(&format!("{PREFIX}/"))),
        "object outside the prefix: {objects:?}"
    );
    assert!(
        objects.iter().any(|p| p.ends_with(".parquet")),
        "no block in the container: {objects:?}"
    );
    assert!(
        objects
            .iter()
            .any(|p| p == &format!("{PREFIX}/nodes/sentrace/log/default/checkpoint")),
        "the transparency log is not in the container: {objects:?}"
    );
    let local: Vec<_> = files_under(&srv.data)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
        .collect();
    assert!(local.is_empty(), "blocks on local disk: {local:?}");

    // kill -9 after the flush: the reads come from the container.
    srv.kill9();
    srv.launch();
    read_all(&srv, &admin, &ids, "after kill -9 (from the container)");
    srv.stop();
    assert!(
        !srv.log().contains(ACCOUNT_KEY),
        "the account key is in the log"
    );

    let out = Command::new(BIN)
        .args(["verify", "--json", "--data-dir"])
        .arg(&srv.data)
        .arg("--config")
        .arg(&srv.config)
        .envs(az.env())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("verify printed no JSON ({e}); stderr: {stderr}"));
    assert_eq!(out.status.code(), Some(0), "verify: {report:#}\n{stderr}");
    assert_eq!(report["ok"], true);
    let logs = report["logs"].as_array().unwrap();
    assert_eq!(logs.len(), 1, "{report:#}");
    assert_eq!(logs[0]["tenant"], "sentrace/default");
}

/// `sentrace serve` with `url` and exactly `env` from the store providers' variables.
fn serve_with(url: &str, env: &[(&str, &str)]) -> (bool, String) {
    let srv = Server::new(&format!("[store]\nurl = \"{url}\"\n"));
    let mut cmd = Command::new(BIN);
    cmd.args(["serve", "--data-dir"])
        .arg(&srv.data)
        .arg("--config")
        .arg(&srv.config);
    for (k, _) in std::env::vars() {
        if k.starts_with("GOOGLE_") || k.starts_with("AZURE_") || k.starts_with("AWS_") {
            cmd.env_remove(k);
        }
    }
    cmd.env_remove("SERVICE_ACCOUNT").envs(env.iter().copied());
    let out = cmd.output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn gs_and_az_settings_errors_name_the_setting_and_never_the_secret() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-service-account.json");
    let (ok, err) = serve_with(
        "gs://traces/node-a",
        &[("GOOGLE_SERVICE_ACCOUNT", missing.to_str().unwrap())],
    );
    assert!(!ok, "started without its credentials: {err}");
    assert!(
        err.contains("object store gs://traces/node-a") && err.contains("GOOGLE_SERVICE_ACCOUNT"),
        "the error does not name the store and the setting: {err}"
    );

    // A malformed key: the error says so without echoing the value.
    let secret = "SECRETKEYMATERIAL0123456789";
    let key = format!("{{\"private_key\": \"{secret}\", \"client_email\": ");
    let (ok, err) = serve_with(
        "gs://traces/node-a",
        &[("GOOGLE_SERVICE_ACCOUNT_KEY", key.as_str())],
    );
    assert!(!ok, "started with a malformed key: {err}");
    assert!(
        err.contains("GOOGLE_SERVICE_ACCOUNT_KEY") && !err.contains(secret),
        "{err}"
    );

    // az:// without an account.
    let (ok, err) = serve_with(
        "az://traces/node-a",
        &[("AZURE_STORAGE_ACCOUNT_KEY", secret)],
    );
    assert!(!ok, "started without an account: {err}");
    assert!(
        err.contains("object store az://traces/node-a")
            && err.contains("AZURE_STORAGE_ACCOUNT_NAME")
            && !err.contains(secret),
        "{err}"
    );
    // An access key that is not base64.
    let (ok, err) = serve_with(
        "az://traces/node-a",
        &[
            ("AZURE_STORAGE_ACCOUNT_NAME", "acct"),
            ("AZURE_STORAGE_ACCOUNT_KEY", "not base64 !!"),
        ],
    );
    assert!(!ok, "started with a bad key: {err}");
    assert!(err.contains("object store az://traces/node-a"), "{err}");

    // URLs: credentials, an account host, an unknown scheme.
    for (url, want) in [
        ("az://acct:c2VjcmV0@traces/x", "must not carry credentials"),
        ("az://traces:10000/x", "name the bucket"),
        ("gcs://traces/x", "gs://bucket/prefix"),
    ] {
        let (ok, err) = serve_with(url, &[]);
        assert!(!ok, "{url}: started");
        assert!(
            err.contains("[store] url") || err.contains("url"),
            "{url}: {err}"
        );
        assert!(err.contains(want), "{url}: {err}");
        assert!(!err.contains("c2VjcmV0"), "{url}: {err}");
    }
}
