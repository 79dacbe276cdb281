//! Break-glass grants: time-limited, justified, optionally approved by a second principal,
//! always audited. While a grant is active its holder may present it
//! (`Sentrace-Break-Glass: <id>`) to see unmasked values and resolve reversible tokens, as
//! far as the `break-glass` policy allows.
//!
//! Grants live in `<data-dir>/access/break-glass.json` (mode 0600, replaced atomically), so
//! they survive a restart and can be reviewed.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::RngCore;
use sentrace_core::{Identity, TenantId};
use sentrace_query::audit::BreakGlassUse;
use serde::{Deserialize, Serialize};

use crate::access::BreakGlassConfig;
use crate::auth::now_unix;

/// The request header that presents a grant.
pub const HEADER: &str = "sentrace-break-glass";
/// Most grants kept (closed and expired ones are dropped first).
const MAX_GRANTS: usize = 10_000;
/// Longest justification kept.
const MAX_JUSTIFICATION: usize = 4096;

/// One grant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grant {
    /// Random id (32 hex characters).
    pub id: String,
    /// The tenant it applies to.
    pub tenant: TenantId,
    /// The principal it was opened for (only it may present it).
    pub principal: String,
    /// Why it was needed.
    pub justification: String,
    /// Opened at, Unix seconds.
    pub opened_unix: u64,
    /// Expires at, Unix seconds.
    pub expires_unix: u64,
    /// It takes effect only after a second principal approves it.
    pub needs_approval: bool,
    /// Who approved it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approver: Option<String>,
    /// Closed early at, Unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed_unix: Option<u64>,
}

impl Grant {
    /// `active`, `pending` (awaiting approval), `expired` or `closed`.
    pub fn state(&self, now: u64) -> &'static str {
        if self.closed_unix.is_some() {
            "closed"
        } else if now >= self.expires_unix {
            "expired"
        } else if self.needs_approval && self.approver.is_none() {
            "pending"
        } else {
            "active"
        }
    }
}

/// Why a grant operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum GrantError {
    /// No grant with this id for this tenant.
    #[error("no break-glass grant {0:?} for this tenant")]
    Unknown(String),
    /// The grant belongs to another principal.
    #[error("break-glass grant {0} was opened for another principal")]
    NotYours(String),
    /// The grant is not active.
    #[error("break-glass grant {id} is {state}")]
    NotActive {
        /// The grant.
        id: String,
        /// Its state.
        state: &'static str,
    },
    /// A bad request field.
    #[error("{field}: {reason}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// What was wrong.
        reason: String,
    },
    /// The requester cannot approve its own grant.
    #[error("a grant needs a second principal: {0} opened it")]
    SelfApproval(String),
    /// The grants file could not be written.
    #[error("break-glass grants could not be saved; retry later")]
    Storage,
}

/// The grants of one server.
pub struct BreakGlass {
    path: PathBuf,
    cfg: BreakGlassConfig,
    grants: Mutex<Vec<Grant>>,
}

impl std::fmt::Debug for BreakGlass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BreakGlass")
            .field("path", &self.path)
            .finish()
    }
}

/// The grants file of a data directory.
pub fn grants_path(data_dir: &Path) -> PathBuf {
    data_dir.join("access").join("break-glass.json")
}

impl BreakGlass {
    /// Loads the grants of `data_dir` (none when the file does not exist yet).
    pub fn open(data_dir: &Path, cfg: BreakGlassConfig) -> anyhow::Result<Arc<Self>> {
        let path = grants_path(data_dir);
        let grants = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => anyhow::bail!("reading {}: {e}", path.display()),
        };
        Ok(Arc::new(Self {
            path,
            cfg,
            grants: Mutex::new(grants),
        }))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Grant>> {
        match self.grants.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// The grant `id` as presented by `who`, if it is active and theirs.
    pub fn resolve(&self, who: &Identity, id: &str) -> Result<BreakGlassUse, GrantError> {
        let now = now_unix();
        let grants = self.lock();
        let g = grants
            .iter()
            .find(|g| g.id == id && g.tenant == who.tenant)
            .ok_or_else(|| GrantError::Unknown(id.chars().take(64).collect()))?;
        if g.principal != who.principal {
            return Err(GrantError::NotYours(g.id.clone()));
        }
        match g.state(now) {
            "active" => Ok(BreakGlassUse {
                grant: g.id.clone(),
                justification: g.justification.clone(),
                approver: g.approver.clone(),
            }),
            state => Err(GrantError::NotActive {
                id: g.id.clone(),
                state,
            }),
        }
    }

    /// Grants of `tenant`, newest first; only `principal`'s unless `all`.
    pub fn list(&self, tenant: &TenantId, principal: &str, all: bool) -> Vec<Grant> {
        let mut v: Vec<Grant> = self
            .lock()
            .iter()
            .filter(|g| &g.tenant == tenant && (all || g.principal == principal))
            .cloned()
            .collect();
        v.sort_by_key(|g| std::cmp::Reverse(g.opened_unix));
        v
    }

    async fn save(&self, grants: Vec<Grant>) -> Result<(), GrantError> {
        let path = self.path.clone();
        let bytes = serde_json::to_vec_pretty(&grants).map_err(|_| GrantError::Storage)?;
        let r = tokio::task::spawn_blocking(move || {
            sentrace_store::fsutil::write_atomic_private(&path, &bytes)
        })
        .await;
        match r {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => {
                tracing::error!(error = %e, "saving break-glass grants");
                Err(GrantError::Storage)
            }
            Err(_) => Err(GrantError::Storage),
        }
    }

    /// Applies `change` to a copy of the grants, saves it, then makes it current.
    async fn update<T>(
        &self,
        change: impl FnOnce(&mut Vec<Grant>) -> Result<T, GrantError>,
    ) -> Result<T, GrantError> {
        let mut next = self.lock().clone();
        let out = change(&mut next)?;
        self.save(next.clone()).await?;
        *self.lock() = next;
        Ok(out)
    }

    /// Opens a grant for `who`.
    pub async fn request(
        &self,
        who: &Identity,
        justification: &str,
        duration: &str,
    ) -> Result<Grant, GrantError> {
        let justification = justification.trim();
        if justification.chars().count() < self.cfg.min_justification_chars {
            return Err(GrantError::Invalid {
                field: "justification",
                reason: format!(
                    "at least {} characters are required",
                    self.cfg.min_justification_chars
                ),
            });
        }
        if justification.len() > MAX_JUSTIFICATION {
            return Err(GrantError::Invalid {
                field: "justification",
                reason: format!("at most {MAX_JUSTIFICATION} bytes"),
            });
        }
        let d = sentrace_access::parse_duration(duration).map_err(|e| GrantError::Invalid {
            field: "duration",
            reason: e,
        })?;
        let max = self.cfg.max().unwrap_or(Duration::from_secs(4 * 3600));
        if d.is_zero() || d > max {
            return Err(GrantError::Invalid {
                field: "duration",
                reason: format!(
                    "must be more than 0 and at most {} ([access.break_glass] max_duration)",
                    self.cfg.max_duration
                ),
            });
        }
        let mut id = [0u8; 16];
        rand::rng().fill_bytes(&mut id);
        let now = now_unix();
        let grant = Grant {
            id: hex::encode(id),
            tenant: who.tenant.clone(),
            principal: who.principal.clone(),
            justification: justification.to_string(),
            opened_unix: now,
            expires_unix: now.saturating_add(d.as_secs()),
            needs_approval: self.cfg.require_approval,
            approver: None,
            closed_unix: None,
        };
        let g = grant.clone();
        self.update(move |all| {
            if all.len() >= MAX_GRANTS {
                // Drop the oldest grants that can no longer be used.
                all.retain(|x| x.state(now) == "active" || x.state(now) == "pending");
            }
            all.push(g);
            Ok(())
        })
        .await?;
        Ok(grant)
    }

    /// Approves grant `id` (the caller checked that `approver` may).
    pub async fn approve(&self, approver: &Identity, id: &str) -> Result<Grant, GrantError> {
        let now = now_unix();
        self.update(|all| {
            let g = all
                .iter_mut()
                .find(|g| g.id == id && g.tenant == approver.tenant)
                .ok_or_else(|| GrantError::Unknown(id.chars().take(64).collect()))?;
            if g.principal == approver.principal {
                return Err(GrantError::SelfApproval(g.principal.clone()));
            }
            match g.state(now) {
                "pending" | "active" => {
                    g.approver = Some(approver.principal.clone());
                    Ok(g.clone())
                }
                state => Err(GrantError::NotActive {
                    id: g.id.clone(),
                    state,
                }),
            }
        })
        .await
    }

    /// Closes grant `id` early (its holder, or a principal the caller checked may).
    pub async fn close(&self, who: &Identity, id: &str, any: bool) -> Result<Grant, GrantError> {
        let now = now_unix();
        self.update(|all| {
            let g = all
                .iter_mut()
                .find(|g| g.id == id && g.tenant == who.tenant)
                .ok_or_else(|| GrantError::Unknown(id.chars().take(64).collect()))?;
            if !any && g.principal != who.principal {
                return Err(GrantError::NotYours(g.id.clone()));
            }
            if g.closed_unix.is_none() {
                g.closed_unix = Some(now);
            }
            Ok(g.clone())
        })
        .await
    }
}
