//! Where blocks and transparency-log objects live: the local `blocks/` directory of the data
//! directory (the default), or an S3-compatible bucket named by `[store] url`
//! (`s3://bucket/prefix`, with the `s3` cargo feature).
//!
//! Credentials, endpoint and region come from the usual AWS environment (`AWS_ACCESS_KEY_ID`,
//! `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_ENDPOINT_URL`, `AWS_REGION`,
//! `AWS_ALLOW_HTTP`, and the server-side-encryption settings `AWS_SERVER_SIDE_ENCRYPTION`,
//! `AWS_SSE_KMS_KEY_ID`, `AWS_SSE_BUCKET_KEY_ENABLED`), read by `object_store`'s
//! `AmazonS3Builder::from_env`. They never appear in the config, in logs or in errors: the
//! URL is shown without user information, and a URL that carries any is refused.
//!
//! The WAL, the catalog, the keys and every other journal stay in the local data directory.

use std::path::Path;
use std::sync::Arc;

use object_store::ObjectStore;
use object_store::local::LocalFileSystem;

use crate::fsutil::create_private_dir;
use crate::{StoreConfig, StoreError};

/// Longest `[store] url` accepted.
pub const MAX_URL_BYTES: usize = 1024;

/// The object-store URL schemes this build can open.
pub fn supported_schemes() -> &'static [&'static str] {
    if cfg!(feature = "s3") {
        &["s3", "s3a"]
    } else {
        &[]
    }
}

/// A parsed `[store] url`: scheme, bucket and key prefix, with no user information.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreUrl {
    /// `s3` (or `s3a`).
    pub scheme: String,
    /// The bucket.
    pub bucket: String,
    /// The key prefix inside the bucket (no leading or trailing `/`; empty for the root).
    pub prefix: String,
}

impl std::fmt::Display for StoreUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}://{}", self.scheme, self.bucket)?;
        if !self.prefix.is_empty() {
            write!(f, "/{}", self.prefix)?;
        }
        Ok(())
    }
}

impl StoreUrl {
    /// Parses `s3://bucket[/prefix]`. User information (`key:secret@`), queries and
    /// fragments are refused: credentials come from the environment only.
    pub fn parse(text: &str) -> Result<StoreUrl, StoreError> {
        let bad = |reason: String| StoreError::Config {
            field: "url",
            reason,
        };
        if text.len() > MAX_URL_BYTES {
            return Err(bad(format!("longer than {MAX_URL_BYTES} bytes")));
        }
        let url = url::Url::parse(text).map_err(|e| {
            bad(format!(
                "not a URL like \"s3://bucket/prefix\" ({e}); leave it out for the local blocks/ directory"
            ))
        })?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err(bad(
                "must not carry credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment instead".into(),
            ));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(bad("must not have a query or fragment".into()));
        }
        let scheme = url.scheme().to_ascii_lowercase();
        if !matches!(scheme.as_str(), "s3" | "s3a") {
            return Err(bad(format!(
                "scheme {scheme:?} is not supported: use s3://bucket/prefix (gs:// and az:// are not built in)"
            )));
        }
        let bucket = url.host_str().unwrap_or_default().to_string();
        if bucket.is_empty() || url.port().is_some() {
            return Err(bad(format!(
                "{scheme}://{bucket}: name the bucket as s3://bucket/prefix (the endpoint comes from AWS_ENDPOINT_URL)"
            )));
        }
        // object_store's own scheme parser splits the key prefix off the URL.
        let (_, path) = object_store::ObjectStoreScheme::parse(&url)
            .map_err(|e| bad(format!("{scheme}://{bucket}: {e}")))?;
        Ok(StoreUrl {
            scheme,
            bucket,
            prefix: path.as_ref().trim_matches('/').to_string(),
        })
    }
}

/// Opens the object store that holds blocks and log objects: the bucket of `cfg.url`, or
/// `data_dir/blocks` (created, mode 0700; fsync on write) when it is absent. The bucket is
/// not contacted here; see [`probe`].
pub fn open_objects(
    data_dir: &Path,
    cfg: &StoreConfig,
) -> Result<Arc<dyn ObjectStore>, StoreError> {
    match &cfg.url {
        None => {
            let blocks = data_dir.join("blocks");
            create_private_dir(&blocks)?;
            let local = LocalFileSystem::new_with_prefix(&blocks)
                .map_err(|e| StoreError::ObjectStore {
                    path: blocks.display().to_string(),
                    source: e,
                })?
                .with_fsync(true);
            Ok(Arc::new(local))
        }
        Some(text) => {
            let url = StoreUrl::parse(text)?;
            open_remote(&url, cfg)
        }
    }
}

#[cfg(feature = "s3")]
fn open_remote(url: &StoreUrl, cfg: &StoreConfig) -> Result<Arc<dyn ObjectStore>, StoreError> {
    use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
    use object_store::prefix::PrefixStore;
    use object_store::{BackoffConfig, Certificate, ClientOptions, RetryConfig};
    use std::time::Duration;

    let unavailable = |reason: String| StoreError::Backend {
        url: url.to_string(),
        reason,
    };
    // The client options the environment sets (AWS_ALLOW_HTTP, timeouts, ...), rebuilt
    // here because `with_client_options` replaces them and the CA must be added.
    let mut client = ClientOptions::new();
    for (key, value) in std::env::vars() {
        if let Some(rest) = key.strip_prefix("AWS_")
            && let Ok(AmazonS3ConfigKey::Client(k)) =
                format!("aws_{}", rest.to_ascii_lowercase()).parse::<AmazonS3ConfigKey>()
        {
            client = client.with_config(k, value);
        }
    }
    if let Some(path) = &cfg.ca_file {
        let pem = std::fs::read(path).map_err(|e| StoreError::io(path, e))?;
        let cert = Certificate::from_pem(&pem).map_err(|e| StoreError::Config {
            field: "ca_file",
            reason: format!("{}: not a PEM certificate: {e}", path.display()),
        })?;
        client = client.with_root_certificate(cert);
    }
    // Bounded retries with backoff inside one request; a flush that still fails keeps its
    // WAL segments and is retried at the next flush.
    let retry = RetryConfig {
        backoff: BackoffConfig {
            init_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
            base: 2.0,
        },
        max_retries: 4,
        retry_timeout: Duration::from_secs(30),
    };
    let s3 = AmazonS3Builder::from_env()
        .with_bucket_name(&url.bucket)
        .with_client_options(client)
        .with_retry(retry)
        .build()
        .map_err(|e| unavailable(e.to_string()))?;
    if url.prefix.is_empty() {
        Ok(Arc::new(s3))
    } else {
        Ok(Arc::new(PrefixStore::new(s3, url.prefix.as_str())))
    }
}

#[cfg(not(feature = "s3"))]
fn open_remote(url: &StoreUrl, _cfg: &StoreConfig) -> Result<Arc<dyn ObjectStore>, StoreError> {
    Err(StoreError::Backend {
        url: url.to_string(),
        reason: "this build has no S3 support (sentrace-store's `s3` feature)".into(),
    })
}

/// Checks that the store answers (one listing page), so that a wrong endpoint, bucket or
/// credentials stop the start with an error naming the URL (never the credentials).
pub async fn probe(objects: &dyn ObjectStore, cfg: &StoreConfig) -> Result<(), StoreError> {
    let Some(text) = &cfg.url else {
        return Ok(());
    };
    let url = StoreUrl::parse(text)?;
    objects
        .list_with_delimiter(None)
        .await
        .map(|_| ())
        .map_err(|e| StoreError::Backend {
            url: url.to_string(),
            reason: format!(
                "the object store does not answer: {e} (check AWS_ENDPOINT_URL, AWS_REGION, the bucket and the credentials)"
            ),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bucket_and_prefix_and_refuses_credentials() {
        let u = StoreUrl::parse("s3://traces/node-a/blocks/").unwrap();
        assert_eq!(u.bucket, "traces");
        assert_eq!(u.prefix, "node-a/blocks");
        assert_eq!(u.to_string(), "s3://traces/node-a/blocks");
        assert_eq!(StoreUrl::parse("s3://traces").unwrap().prefix, "");
        let e = StoreUrl::parse("s3://AKIA:hunter2@traces/x")
            .unwrap_err()
            .to_string();
        assert!(e.contains("credentials") && !e.contains("hunter2"), "{e}");
        assert!(StoreUrl::parse("gs://traces").is_err());
        assert!(StoreUrl::parse("s3://traces?x=1").is_err());
        assert!(StoreUrl::parse("s3:///x").is_err());
        assert!(StoreUrl::parse("blocks").is_err());
        assert!(StoreUrl::parse(&format!("s3://b/{}", "x".repeat(MAX_URL_BYTES))).is_err());
    }
}
