//! `[keys]`: which master key (KEK) provider wraps the data keys, and scheduled rotation of
//! the tenants' data keys. See docs/keys.md.
//!
//! The master key is chosen, first match wins: the `SENTRACE_KEK` environment variable (a
//! provider spec, `file:PATH`, `env:VAR` or `command:PROG ARG…`), `[keys] kek`, the
//! `SENTRACE_MASTER_KEY` environment variable (64 hex characters), and the data directory's
//! `master.key` (made on first start). Offline commands (`verify`, `keys`, `tenant erase`)
//! read no config file: they take `SENTRACE_KEK` or the defaults.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use sentrace_store::keys::rewrap::RewrapPlan;
use sentrace_store::keys::{KekSource, KekSpec};
use sentrace_store::{KeyRing, MasterKey};

use crate::bootstrap::{MASTER_KEY_ENV, master_key_path};

/// The environment variable that names a master key provider (overrides `[keys] kek`).
pub const KEK_ENV: &str = "SENTRACE_KEK";

/// The `[keys]` section.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KeysConfig {
    /// The master key provider: `"file:PATH"`, `"env:VAR"`, `"command:PROG ARG…"`, or a
    /// table `{ command = ["/path/prog", "arg"], timeout = "5s", id = "kms-prod" }`.
    /// Unset: `SENTRACE_MASTER_KEY`, else `<data dir>/master.key`.
    pub kek: Option<KekSpec>,
    /// Start a new data key for a tenant once its current one is this old (`"30d"`); old
    /// keys stay readable until retention drops their data. Unset: never by age.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "opt_duration"
    )]
    pub rotate_after: Option<Duration>,
}

mod opt_duration {
    use super::*;
    use serde::{Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => sentrace_store::duration::format(d).serialize(s),
            None => s.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Duration>, D::Error> {
        let text = String::deserialize(d)?;
        sentrace_store::duration::parse(&text)
            .map(Some)
            .map_err(serde::de::Error::custom)
    }
}

impl KeysConfig {
    /// Checks the provider spec and the rotation age.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(k) = &self.kek {
            k.source().map_err(|e| format!("[keys] kek: {e}"))?;
        }
        if let Some(r) = self.rotate_after
            && r < Duration::from_secs(60)
        {
            return Err("[keys] rotate_after must be at least 60s (like \"30d\")".into());
        }
        Ok(())
    }

    /// Applies `rotate_after` to a key ring.
    pub fn apply(&self, ring: KeyRing) -> KeyRing {
        match self.rotate_after {
            Some(p) => ring.with_rotation_period(p),
            None => ring,
        }
    }
}

/// The provider the server (or an offline command, with `cfg` = `None`) uses for
/// `data_dir`; see the module documentation for the order. `create` makes the default key
/// file when nothing else is configured (first start).
pub fn resolve_master(
    data_dir: &Path,
    cfg: Option<&KeysConfig>,
    create: bool,
) -> anyhow::Result<MasterKey> {
    if let Ok(spec) = std::env::var(KEK_ENV) {
        let source = KekSource::parse(&spec).map_err(|e| anyhow::anyhow!("{KEK_ENV}: {e}"))?;
        return Ok(MasterKey::from_source(&source)?);
    }
    if let Some(spec) = cfg.and_then(|c| c.kek.as_ref()) {
        return Ok(MasterKey::from_source(&spec.source()?)?);
    }
    if std::env::var_os(MASTER_KEY_ENV).is_some() {
        return Ok(MasterKey::from_env(MASTER_KEY_ENV)?);
    }
    let path = master_key_path(data_dir);
    let key = if create {
        MasterKey::load_or_create(&path)
    } else {
        MasterKey::load(&path)
    };
    key.map_err(|e| {
        anyhow::anyhow!(
            "loading the master key of {}: {e} (set {KEK_ENV} if the data directory's keys are under another master key)",
            data_dir.display()
        )
    })
}

/// Scheduled rotation: every tenant whose current data key reached `rotate_after` gets a
/// new one, checked every tenth of the period (at least every minute, at most hourly), so
/// idle tenants rotate too (a write rotates a due key at once anyway). Key files are
/// written off the async workers. Ends when `shutdown` turns true.
pub async fn rotate_by_age(
    keys: std::sync::Arc<KeyRing>,
    period: Duration,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let every = (period / 10).clamp(Duration::from_secs(60), Duration::from_secs(3600));
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = shutdown.changed() => return,
        }
        let k = keys.clone();
        match tokio::task::spawn_blocking(move || k.rotate_due()).await {
            Ok(Ok(rotated)) => {
                for (tenant, id) in rotated {
                    tracing::info!(tenant = %tenant, key_id = id, "data key rotated by age");
                }
            }
            Ok(Err(e)) => tracing::warn!(error = %e, "scheduled key rotation failed; will retry"),
            Err(e) => tracing::warn!(error = %e, "scheduled key rotation task failed"),
        }
    }
}

/// Everything a data directory keeps wrapped under the master key, for `keys rewrap`: the
/// tenants' data keys, the node audit log's data keys and the node's log signing key.
pub fn rewrap_plan() -> RewrapPlan {
    RewrapPlan {
        key_dirs: vec![
            PathBuf::from("keys"),
            PathBuf::from("audit").join("node").join("keys"),
        ],
        secrets: vec![(
            PathBuf::from("log-key.wrapped"),
            sentrace_pipeline::seal::keys::PURPOSE.to_string(),
        )],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_section_parses_and_refuses_nonsense() {
        let c: KeysConfig = toml::from_str(
            "kek = { command = [\"/usr/local/bin/kms\", \"--key\", \"k1\"], timeout = \"3s\" }\nrotate_after = \"30d\"",
        )
        .unwrap();
        c.validate().unwrap();
        assert_eq!(c.rotate_after, Some(Duration::from_secs(30 * 86_400)));
        let c: KeysConfig = toml::from_str("kek = \"env:MY_KEK\"").unwrap();
        c.validate().unwrap();
        assert!(toml::from_str::<KeysConfig>("keks = \"env:X\"").is_err());
        let bad: KeysConfig = toml::from_str("kek = \"vault:x\"").unwrap();
        assert!(bad.validate().unwrap_err().contains("[keys] kek"));
        let bad: KeysConfig = toml::from_str("rotate_after = \"5s\"").unwrap();
        assert!(bad.validate().is_err());
    }
}
