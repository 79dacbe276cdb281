//! The policy file format (TOML), as parsed.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

use sentrace_core::TenantId;

use crate::kind::{Action, Kind};

/// A policy file: a base layer and overrides.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyFile {
    /// Format version; must be 1.
    pub version: Spanned<u32>,
    /// Action per kind. Kinds not listed keep the action of the layer below.
    #[serde(default)]
    pub actions: BTreeMap<Kind, Action>,
    /// Tunables.
    #[serde(default)]
    pub options: Options,
    /// Key-name rules.
    #[serde(default)]
    pub keys: KeyRules,
    /// Per-tenant and per-service overrides, applied in file order to matching batches.
    #[serde(default, rename = "override")]
    pub overrides: Vec<Spanned<Override>>,
}

/// Tunables of a layer. Unset fields keep the value of the layer below.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Options {
    /// Characters kept at the end of a value by `truncate` (0 to 16).
    pub truncate_keep: Option<Spanned<usize>>,
    /// String values longer than this are replaced by `<too_long>` (1 KiB to 16 MiB).
    pub max_value_bytes: Option<Spanned<usize>>,
    /// Whether SQL statements get their literals replaced with `?`.
    pub sanitize_sql: Option<bool>,
}

/// Key-name rules of a layer.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyRules {
    /// Extra sensitive keys (normalized: lower case, `.`/`-` as `_`) and their kind.
    #[serde(default)]
    pub sensitive: BTreeMap<String, Kind>,
    /// Keys never minimized (exact match), like the OTel redaction processor's
    /// `ignored_keys`.
    #[serde(default)]
    pub ignored: Vec<Spanned<String>>,
    /// Allowlist mode when present: span, event and link attributes whose key is not in
    /// the list are dropped, like the OTel redaction processor's `allowed_keys` with
    /// `allow_all_keys = false`. Allowed keys are still minimized.
    pub allowed: Option<Vec<Spanned<String>>>,
}

/// An override for one tenant, one service, or one service of one tenant.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Override {
    /// The tenant this override applies to (any tenant when absent).
    pub tenant: Option<TenantId>,
    /// The `service.name` this override applies to (any service when absent).
    pub service: Option<String>,
    /// Actions that replace the layer below's.
    #[serde(default)]
    pub actions: BTreeMap<Kind, Action>,
    /// Tunables that replace the layer below's.
    #[serde(default)]
    pub options: Options,
    /// Key rules added to (sensitive, ignored) or replacing (allowed) the layer below's.
    #[serde(default)]
    pub keys: KeyRules,
}
