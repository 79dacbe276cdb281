//! `[access]`: who may read what. Cedar policy files, the teams that own services, and
//! break-glass settings. Policies are validated at start (an invalid one stops the server
//! with its file, line and reason) and reloaded when a file changes (an invalid new version
//! is refused with the same detail, and the last good set stays in force).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use sentrace_access::authz::{PolicySource, PolicyStore, Teams};
use sentrace_query::audit::{AuditRecord, AuditSink, Outcome};
use sentrace_query::service::Policies;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

/// The `[access]` section.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AccessConfig {
    /// Cedar policy files, applied after the built-in role policies (or instead of them
    /// with `default_policies = false`). Validated against the schema at start and on
    /// every change.
    pub policies: Vec<PathBuf>,
    /// Load the built-in role policies (admin, security-analyst, developer, viewer,
    /// auditor, ingest, break-glass, tenant isolation).
    pub default_policies: bool,
    /// Which services each team owns: `payments = ["checkout", "cart"]`. A `developer`
    /// reads only its team's services.
    pub teams: BTreeMap<String, Vec<String>>,
    /// The tenant of the operators: its principals allowed `read_metrics` also see the
    /// node-wide series of `/metrics` (every tenant's traffic added up). Principals of any
    /// other tenant see their own tenant's series only. Empty: nobody sees node-wide series.
    pub operator_tenant: String,
    /// Break-glass grants.
    pub break_glass: BreakGlassConfig,
}

impl Default for AccessConfig {
    fn default() -> Self {
        Self {
            policies: Vec::new(),
            default_policies: true,
            teams: BTreeMap::new(),
            operator_tenant: "default".into(),
            break_glass: BreakGlassConfig::default(),
        }
    }
}

/// `[access.break_glass]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BreakGlassConfig {
    /// A grant needs a second principal's approval (one allowed `manage_policy`) before it
    /// takes effect.
    pub require_approval: bool,
    /// Longest grant, like `4h`.
    pub max_duration: String,
    /// Shortest justification accepted, in characters.
    pub min_justification_chars: usize,
}

impl Default for BreakGlassConfig {
    fn default() -> Self {
        Self {
            require_approval: false,
            max_duration: "4h".into(),
            min_justification_chars: 20,
        }
    }
}

impl BreakGlassConfig {
    /// `max_duration` parsed.
    pub fn max(&self) -> Result<Duration, String> {
        sentrace_access::parse_duration(&self.max_duration)
            .map_err(|e| format!("[access.break_glass] max_duration: {e}"))
    }
}

/// Longest team or service name.
const MAX_NAME: usize = 256;

impl AccessConfig {
    /// Checks values that parse but make no sense.
    pub fn validate(&self) -> Result<(), String> {
        for (team, services) in &self.teams {
            if team.is_empty() || team.len() > MAX_NAME {
                return Err(format!(
                    "[access.teams] team name {team:?} must be 1 to {MAX_NAME} bytes"
                ));
            }
            for s in services {
                if s.is_empty() || s.len() > MAX_NAME {
                    return Err(format!(
                        "[access.teams] {team}: service name {s:?} must be 1 to {MAX_NAME} bytes"
                    ));
                }
            }
        }
        if !self.operator_tenant.is_empty() {
            sentrace_core::TenantId::new(&self.operator_tenant)
                .map_err(|e| format!("[access] operator_tenant: {e}"))?;
        }
        let max = self.break_glass.max()?;
        if max.is_zero() || max > Duration::from_secs(7 * 86_400) {
            return Err("[access.break_glass] max_duration must be between 1s and 7d".into());
        }
        if self.break_glass.min_justification_chars > 4096 {
            return Err("[access.break_glass] min_justification_chars must be at most 4096".into());
        }
        Ok(())
    }

    /// The operator tenant, when one is set.
    pub fn operator(&self) -> Option<sentrace_core::TenantId> {
        sentrace_core::TenantId::new(&self.operator_tenant).ok()
    }

    /// Reads and validates every policy file.
    pub fn load(&self) -> anyhow::Result<PolicyStore> {
        let mut sources = Vec::with_capacity(self.policies.len());
        for path in &self.policies {
            let text = read_policy(path)?;
            sources.push(PolicySource {
                name: path.display().to_string(),
                text,
            });
        }
        let teams: Teams = self.teams.clone();
        Ok(PolicyStore::load(&sources, self.default_policies, &teams)?)
    }
}

fn read_policy(path: &Path) -> anyhow::Result<String> {
    let meta = std::fs::metadata(path)
        .map_err(|e| anyhow::anyhow!("policy file {}: {e}", path.display()))?;
    if meta.len() > sentrace_access::authz::MAX_POLICY_FILE_BYTES as u64 {
        anyhow::bail!(
            "policy file {}: larger than {} bytes",
            path.display(),
            sentrace_access::authz::MAX_POLICY_FILE_BYTES
        );
    }
    std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("policy file {}: {e}", path.display()))
}

fn stamps(paths: &[PathBuf]) -> Vec<Option<(SystemTime, u64)>> {
    paths
        .iter()
        .map(|p| {
            std::fs::metadata(p)
                .ok()
                .and_then(|m| Some((m.modified().ok()?, m.len())))
        })
        .collect()
}

/// Records a policy reload (an admin action of the operator, who edited the files) in the
/// node's audit log.
async fn audit_reload(audit: &dyn AuditSink, outcome: Outcome, detail: String) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    let mut r = AuditRecord::new(
        now,
        None,
        "operator:policy-files",
        "manage_policy",
        "policy reload",
        outcome,
    );
    r.reason = Some(detail);
    if let Err(e) = audit.record(r).await {
        tracing::error!(error = %e, "audit record of a policy reload not written");
    }
}

/// Watches the policy files and reloads `policies` when one changes. An invalid new
/// version is logged with its file, line and reason, and the last good set stays. Every
/// reload, applied or refused, is recorded in the node's audit log.
pub async fn watch_policies(
    cfg: AccessConfig,
    policies: Arc<Policies>,
    audit: Arc<dyn AuditSink>,
    mut shutdown: watch::Receiver<bool>,
) {
    if cfg.policies.is_empty() {
        return;
    }
    let mut last = stamps(&cfg.policies);
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = shutdown.changed() => return,
        }
        let now = {
            let paths = cfg.policies.clone();
            match tokio::task::spawn_blocking(move || stamps(&paths)).await {
                Ok(s) => s,
                Err(_) => continue,
            }
        };
        if now == last {
            continue;
        }
        last = now;
        let c = cfg.clone();
        match tokio::task::spawn_blocking(move || c.load()).await {
            Ok(Ok(store)) => {
                tracing::info!(policies = store.len(), "authorization policies reloaded");
                let detail = format!("{} policies in force", store.len());
                policies.replace(store);
                audit_reload(audit.as_ref(), Outcome::Allowed, detail).await;
            }
            Ok(Err(e)) => {
                tracing::error!(error = %e, "policy change refused; the previous policies stay in force");
                audit_reload(audit.as_ref(), Outcome::Failed, format!("{e:#}")).await;
            }
            Err(_) => {}
        }
    }
}
