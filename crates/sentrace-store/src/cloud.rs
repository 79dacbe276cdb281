//! The object-store clients behind `[store] url`: S3 (`s3` feature), Google Cloud Storage
//! (`gcs`) and Azure Blob Storage (`azure`), each built by `object_store`'s `from_env`
//! builder so that credentials come from the provider's usual environment:
//!
//! - S3: `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`,
//!   `AWS_ENDPOINT_URL`, `AWS_REGION`, `AWS_ALLOW_HTTP`, and the server-side-encryption
//!   settings `AWS_SERVER_SIDE_ENCRYPTION`, `AWS_SSE_KMS_KEY_ID`, `AWS_SSE_BUCKET_KEY_ENABLED`.
//! - GCS: `GOOGLE_SERVICE_ACCOUNT` (a service-account JSON file), `GOOGLE_SERVICE_ACCOUNT_KEY`
//!   (its contents), `GOOGLE_APPLICATION_CREDENTIALS`, else the instance's metadata server.
//!   An emulator is named by the service account's `gcs_base_url` (with `disable_oauth`)
//!   or `GOOGLE_BASE_URL`.
//! - Azure: `AZURE_STORAGE_ACCOUNT_NAME` with `AZURE_STORAGE_ACCOUNT_KEY`,
//!   `AZURE_STORAGE_SAS_KEY`, a service principal (`AZURE_CLIENT_ID`, `AZURE_CLIENT_SECRET`,
//!   `AZURE_TENANT_ID`), a workload identity or a managed identity; `AZURE_STORAGE_ENDPOINT`
//!   for another endpoint, `AZURE_STORAGE_USE_EMULATOR` for Azurite.
//!
//! Every provider gets the same client handling: the provider's client settings from the
//! environment (`*_ALLOW_HTTP`, timeouts, proxies), `[store] ca_file` added to the roots, and
//! the same bounded retries. Errors name the URL and the settings to check, never a value
//! of them.

use std::sync::Arc;

use object_store::ObjectStore;

use crate::objects::{Provider, StoreUrl};
use crate::{StoreConfig, StoreError};

/// Opens the client of `url` (not contacted here; see [`crate::objects::probe`]).
pub(crate) fn open_remote(
    url: &StoreUrl,
    cfg: &StoreConfig,
) -> Result<Arc<dyn ObjectStore>, StoreError> {
    let store: Arc<dyn ObjectStore> = match url.provider {
        Provider::S3 => s3(url, cfg)?,
        Provider::Gcs => gcs(url, cfg)?,
        Provider::Azure => azure(url, cfg)?,
    };
    if url.prefix.is_empty() {
        Ok(store)
    } else {
        Ok(Arc::new(object_store::prefix::PrefixStore::new(
            store,
            url.prefix.as_str(),
        )))
    }
}

fn unavailable(url: &StoreUrl, reason: String) -> StoreError {
    StoreError::Backend {
        url: url.to_string(),
        reason,
    }
}

#[cfg(not(all(feature = "s3", feature = "gcs", feature = "azure")))]
fn not_built(url: &StoreUrl, feature: &str) -> StoreError {
    unavailable(
        url,
        format!(
            "this build has no {} support (sentrace-store's `{feature}` feature)",
            url.scheme
        ),
    )
}

/// The client options every provider shares: the provider's client settings found in the
/// environment under `prefix` (rebuilt here because `with_client_options` replaces what
/// `from_env` read), the CA of `[store] ca_file`, and nothing else.
#[cfg(any(feature = "s3", feature = "gcs", feature = "azure"))]
fn client_options(
    cfg: &StoreConfig,
    prefix: &str,
    client_key: impl Fn(&str) -> Option<object_store::ClientConfigKey>,
) -> Result<object_store::ClientOptions, StoreError> {
    use object_store::{Certificate, ClientOptions};
    let mut client = ClientOptions::new();
    for (key, value) in std::env::vars() {
        if key.starts_with(prefix)
            && let Some(k) = client_key(&key.to_ascii_lowercase())
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
    Ok(client)
}

/// Bounded retries with backoff inside one request; a flush that still fails keeps its WAL
/// segments and is retried at the next flush.
#[cfg(any(feature = "s3", feature = "gcs", feature = "azure"))]
fn retry() -> object_store::RetryConfig {
    use object_store::{BackoffConfig, RetryConfig};
    use std::time::Duration;
    RetryConfig {
        backoff: BackoffConfig {
            init_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
            base: 2.0,
        },
        max_retries: 4,
        retry_timeout: Duration::from_secs(30),
    }
}

#[cfg(feature = "s3")]
fn s3(url: &StoreUrl, cfg: &StoreConfig) -> Result<Arc<dyn ObjectStore>, StoreError> {
    use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
    let client = client_options(cfg, "AWS_", |k| match k.parse::<AmazonS3ConfigKey>() {
        Ok(AmazonS3ConfigKey::Client(k)) => Some(k),
        _ => None,
    })?;
    let s3 = AmazonS3Builder::from_env()
        .with_bucket_name(&url.bucket)
        .with_client_options(client)
        .with_retry(retry())
        .build()
        .map_err(|e| unavailable(url, format!("{e} ({})", url.provider.settings_hint())))?;
    Ok(Arc::new(s3))
}

#[cfg(not(feature = "s3"))]
fn s3(url: &StoreUrl, _cfg: &StoreConfig) -> Result<Arc<dyn ObjectStore>, StoreError> {
    Err(not_built(url, "s3"))
}

#[cfg(feature = "gcs")]
fn gcs(url: &StoreUrl, cfg: &StoreConfig) -> Result<Arc<dyn ObjectStore>, StoreError> {
    use object_store::gcp::{GoogleCloudStorageBuilder, GoogleConfigKey};
    let client = client_options(cfg, "GOOGLE_", |k| match k.parse::<GoogleConfigKey>() {
        Ok(GoogleConfigKey::Client(k)) => Some(k),
        _ => None,
    })?;
    // object_store reads the credential files while building: a missing or malformed one
    // is an error here, naming the settings (its message names the file, not its contents).
    let gcs = GoogleCloudStorageBuilder::from_env()
        .with_bucket_name(&url.bucket)
        .with_client_options(client)
        .with_retry(retry())
        .build()
        .map_err(|e| {
            unavailable(
                url,
                format!(
                    "credentials: {e} (GOOGLE_SERVICE_ACCOUNT names a service-account JSON file, GOOGLE_SERVICE_ACCOUNT_KEY holds one, GOOGLE_APPLICATION_CREDENTIALS names application default credentials)"
                ),
            )
        })?;
    Ok(Arc::new(gcs))
}

#[cfg(not(feature = "gcs"))]
fn gcs(url: &StoreUrl, _cfg: &StoreConfig) -> Result<Arc<dyn ObjectStore>, StoreError> {
    Err(not_built(url, "gcs"))
}

#[cfg(feature = "azure")]
fn azure(url: &StoreUrl, cfg: &StoreConfig) -> Result<Arc<dyn ObjectStore>, StoreError> {
    use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
    let client = client_options(cfg, "AZURE_", |k| match k.parse::<AzureConfigKey>() {
        Ok(AzureConfigKey::Client(k)) => Some(k),
        _ => None,
    })?;
    let builder = MicrosoftAzureBuilder::from_env();
    let emulator = builder
        .get_config_value(&AzureConfigKey::UseEmulator)
        .is_some_and(|v| {
            // object_store's own reading of a boolean setting.
            matches!(
                v.to_ascii_lowercase().as_str(),
                "1" | "true" | "on" | "yes" | "y"
            )
        });
    if !emulator
        && builder
            .get_config_value(&AzureConfigKey::AccountName)
            .is_none()
    {
        return Err(unavailable(
            url,
            "no storage account: set AZURE_STORAGE_ACCOUNT_NAME (and its credentials: AZURE_STORAGE_ACCOUNT_KEY, AZURE_STORAGE_SAS_KEY, a service principal or a managed identity)".into(),
        ));
    }
    let azure = builder
        .with_container_name(&url.bucket)
        .with_client_options(client)
        .with_retry(retry())
        .build()
        .map_err(|e| unavailable(url, format!("{e} ({})", url.provider.settings_hint())))?;
    Ok(Arc::new(azure))
}

#[cfg(not(feature = "azure"))]
fn azure(url: &StoreUrl, _cfg: &StoreConfig) -> Result<Arc<dyn ObjectStore>, StoreError> {
    Err(not_built(url, "azure"))
}
