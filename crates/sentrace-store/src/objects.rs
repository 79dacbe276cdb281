//! Where blocks and transparency-log objects live: the local `blocks/` directory of the data
//! directory (the default), or a bucket named by `[store] url`: `s3://bucket/prefix` (the
//! `s3` cargo feature), `gs://bucket/prefix` (`gcs`) or `az://container/prefix` (`azure`).
//!
//! Credentials and endpoints come from each provider's usual environment, read by
//! `object_store`'s `from_env` builders ([`crate::cloud`]). They never appear in the config,
//! in logs or in errors: the URL is shown without user information, and a URL that carries
//! any is refused.
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
pub fn supported_schemes() -> Vec<&'static str> {
    let mut out = Vec::new();
    if cfg!(feature = "s3") {
        out.extend(["s3", "s3a"]);
    }
    if cfg!(feature = "gcs") {
        out.push("gs");
    }
    if cfg!(feature = "azure") {
        out.push("az");
    }
    out
}

/// Which provider a `[store] url` names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Provider {
    /// `s3://` (or `s3a://`): AWS S3 and S3-compatible stores.
    S3,
    /// `gs://`: Google Cloud Storage.
    Gcs,
    /// `az://`: Azure Blob Storage (the bucket is the container).
    Azure,
}

impl Provider {
    /// The environment settings an operator checks when this provider does not answer.
    pub fn settings_hint(self) -> &'static str {
        match self {
            Provider::S3 => {
                "check AWS_ENDPOINT_URL, AWS_REGION, the bucket and the credentials (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)"
            }
            Provider::Gcs => {
                "check the bucket and the credentials (GOOGLE_SERVICE_ACCOUNT, GOOGLE_SERVICE_ACCOUNT_KEY or GOOGLE_APPLICATION_CREDENTIALS; else the instance's metadata server)"
            }
            Provider::Azure => {
                "check the container, AZURE_STORAGE_ACCOUNT_NAME, AZURE_STORAGE_ENDPOINT and the credentials (AZURE_STORAGE_ACCOUNT_KEY, AZURE_STORAGE_SAS_KEY, AZURE_CLIENT_ID/AZURE_CLIENT_SECRET/AZURE_TENANT_ID, or a managed identity)"
            }
        }
    }
}

/// A parsed `[store] url`: scheme, bucket and key prefix, with no user information.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreUrl {
    /// `s3` (or `s3a`), `gs` or `az`.
    pub scheme: String,
    /// Which provider the scheme names.
    pub provider: Provider,
    /// The bucket (the container for `az://`).
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
    /// Parses `s3://bucket[/prefix]`, `gs://bucket[/prefix]` or `az://container[/prefix]`.
    /// User information (`key:secret@`), queries and
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
                "not a URL like \"s3://bucket/prefix\", \"gs://bucket/prefix\" or \"az://container/prefix\" ({e}); leave it out for the local blocks/ directory"
            ))
        })?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err(bad(
                "must not carry credentials: set them in the environment instead (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, GOOGLE_SERVICE_ACCOUNT, AZURE_STORAGE_ACCOUNT_KEY)".into(),
            ));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(bad("must not have a query or fragment".into()));
        }
        let scheme = url.scheme().to_ascii_lowercase();
        let (provider, endpoint_hint) = match scheme.as_str() {
            "s3" | "s3a" => (Provider::S3, "the endpoint comes from AWS_ENDPOINT_URL"),
            "gs" => (
                Provider::Gcs,
                "an emulator's endpoint comes from the service account's gcs_base_url or GOOGLE_BASE_URL",
            ),
            "az" => (
                Provider::Azure,
                "the account comes from AZURE_STORAGE_ACCOUNT_NAME, an endpoint from AZURE_STORAGE_ENDPOINT",
            ),
            _ => {
                return Err(bad(format!(
                    "scheme {scheme:?} is not supported: use s3://bucket/prefix, gs://bucket/prefix or az://container/prefix"
                )));
            }
        };
        let bucket = url.host_str().unwrap_or_default().to_string();
        if bucket.is_empty() || url.port().is_some() || bucket.contains('@') {
            return Err(bad(format!(
                "{scheme}://{bucket}: name the bucket as {scheme}://bucket/prefix ({endpoint_hint})"
            )));
        }
        // object_store's own scheme parser splits the key prefix off the URL.
        let (_, path) = object_store::ObjectStoreScheme::parse(&url)
            .map_err(|e| bad(format!("{scheme}://{bucket}: {e}")))?;
        Ok(StoreUrl {
            scheme,
            provider,
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
            crate::cloud::open_remote(&url, cfg)
        }
    }
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
                "the object store does not answer: {e} ({})",
                url.provider.settings_hint()
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
        let g = StoreUrl::parse("gs://traces/prod").unwrap();
        assert_eq!((g.provider, g.bucket.as_str()), (Provider::Gcs, "traces"));
        assert_eq!(g.prefix, "prod");
        let a = StoreUrl::parse("az://spans").unwrap();
        assert_eq!((a.provider, a.prefix.as_str()), (Provider::Azure, ""));
        assert_eq!(a.to_string(), "az://spans");
        let e = StoreUrl::parse("az://acct:c2VjcmV0@spans/x")
            .unwrap_err()
            .to_string();
        assert!(e.contains("credentials") && !e.contains("c2VjcmV0"), "{e}");
        let e = StoreUrl::parse("gcs://traces").unwrap_err().to_string();
        assert!(e.contains("gs://bucket/prefix"), "{e}");
        assert!(StoreUrl::parse("az://host:10000/c").is_err());
        assert!(StoreUrl::parse("abfs://c@acct.dfs.core.windows.net/x").is_err());
        assert!(StoreUrl::parse("s3://traces?x=1").is_err());
        assert!(StoreUrl::parse("s3:///x").is_err());
        assert!(StoreUrl::parse("blocks").is_err());
        assert!(StoreUrl::parse(&format!("s3://b/{}", "x".repeat(MAX_URL_BYTES))).is_err());
    }
}
