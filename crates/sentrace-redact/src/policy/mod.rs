//! Minimization policy: TOML with per-tenant and per-service overrides, a safe default,
//! and a digest that every minimized span carries.
//!
//! # Layers
//!
//! The embedded [`DEFAULT_POLICY_TOML`] is the bottom layer. A user policy file is layered
//! on top of it, then each `[[override]]` of the file whose `tenant` and `service` match
//! the batch, in file order. A layer only says what it changes: actions per kind and
//! options replace the layer below's; sensitive and ignored keys are added; an `allowed`
//! list replaces the one below.
//!
//! # Digest
//!
//! [`Policy::digest`] is SHA-256 over a canonical text form of both layers (see
//! [`Policy::canonical`]): one line per setting, sorted, strings JSON-quoted. Formatting,
//! comments and key order in the file do not change it; any change of meaning does.

mod file;
mod resolve;

use sha2::{Digest as _, Sha256};

pub use file::{KeyRules, Options, Override, PolicyFile};
pub use resolve::Rules;

/// The default policy, embedded in the binary and documented inline.
pub const DEFAULT_POLICY_TOML: &str = include_str!("../../default_policy.toml");

/// Largest policy file accepted.
pub const MAX_POLICY_BYTES: usize = 1 << 20;

/// Most overrides in one policy.
pub const MAX_OVERRIDES: usize = 10_000;

/// Why a policy file was refused. Every variant says which file, which line and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// The file is not valid TOML or does not fit the schema.
    #[error("{file}:{line}:{column}: {reason}")]
    Parse {
        /// The source name given to [`Policy::from_toml`].
        file: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What is wrong.
        reason: String,
    },
    /// The file parses but a value is out of range or inconsistent.
    #[error("{file}:{line}: {reason}")]
    Invalid {
        /// The source name.
        file: String,
        /// 1-based line.
        line: usize,
        /// What is wrong and what to do.
        reason: String,
    },
    /// The file is larger than [`MAX_POLICY_BYTES`].
    #[error("{file}: policy file is {size} bytes, the limit is {limit}")]
    TooLarge {
        /// The source name.
        file: String,
        /// Its size.
        size: usize,
        /// The limit.
        limit: usize,
    },
}

/// A validated minimization policy.
#[derive(Debug, Clone)]
pub struct Policy {
    base: PolicyFile,
    file: Option<PolicyFile>,
    source: String,
    digest: [u8; 32],
}

impl Default for Policy {
    /// The embedded default policy ([`DEFAULT_POLICY_TOML`]): pseudonyms for e-mail
    /// addresses, user and session ids; /24 for client IPs; year for dates of birth; type
    /// tags for everything else.
    fn default() -> Self {
        match parse(DEFAULT_POLICY_TOML, "default_policy.toml") {
            Ok(base) => Self::layered(base, None, "default_policy.toml"),
            // Unreachable (a test parses the embedded file); fail closed with an empty
            // base, whose resolution masks every kind.
            Err(_) => Self::layered(empty_file(), None, "default_policy.toml"),
        }
    }
}

impl Policy {
    /// Parses and validates a policy file. `source` names it in errors (a path).
    pub fn from_toml(text: &str, source: &str) -> Result<Self, PolicyError> {
        let file = parse(text, source)?;
        let base = Self::default().base;
        Ok(Self::layered(base, Some(file), source))
    }

    fn layered(base: PolicyFile, file: Option<PolicyFile>, source: &str) -> Self {
        let mut p = Self {
            base,
            file,
            source: source.to_string(),
            digest: [0; 32],
        };
        p.digest = Sha256::digest(p.canonical().as_bytes()).into();
        p
    }

    /// SHA-256 of [`Policy::canonical`].
    pub fn digest(&self) -> [u8; 32] {
        self.digest
    }

    /// Lower-case hex of the digest.
    pub fn digest_hex(&self) -> String {
        hex::encode(self.digest)
    }

    /// Where the policy came from (the `source` given to [`Policy::from_toml`]).
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The canonical text form that the digest covers.
    pub fn canonical(&self) -> String {
        let mut out = String::from("sentrace-policy v1\n");
        canonical_layer(&mut out, "base", &self.base);
        if let Some(f) = &self.file {
            canonical_layer(&mut out, "file", f);
        }
        out
    }

    /// The effective rules for a tenant's service, after every matching layer.
    pub fn resolve(&self, tenant: &str, service: &str) -> Rules {
        let mut r = Rules::masking_everything();
        r.apply_layer(&self.base.actions, &self.base.options, &self.base.keys);
        if let Some(f) = &self.file {
            r.apply_layer(&f.actions, &f.options, &f.keys);
            for o in &f.overrides {
                let o = o.get_ref();
                let t_ok = o.tenant.as_ref().is_none_or(|t| t.as_str() == tenant);
                let s_ok = o.service.as_deref().is_none_or(|s| s == service);
                if t_ok && s_ok {
                    r.apply_layer(&o.actions, &o.options, &o.keys);
                }
            }
        }
        r
    }

    /// Tenants and services named by overrides (the redactor precomputes their rules).
    pub(crate) fn override_names(&self) -> (Vec<String>, Vec<String>) {
        let mut tenants = Vec::new();
        let mut services = Vec::new();
        if let Some(f) = &self.file {
            for o in &f.overrides {
                let o = o.get_ref();
                if let Some(t) = &o.tenant {
                    tenants.push(t.as_str().to_string());
                }
                if let Some(s) = &o.service {
                    services.push(s.clone());
                }
            }
        }
        tenants.sort();
        tenants.dedup();
        services.sort();
        services.dedup();
        (tenants, services)
    }
}

fn empty_file() -> PolicyFile {
    PolicyFile {
        version: toml::Spanned::new(0..0, 1),
        actions: Default::default(),
        options: Default::default(),
        keys: Default::default(),
        overrides: Vec::new(),
    }
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or("");
    let line = before.matches('\n').count() + 1;
    let col = before
        .rfind('\n')
        .map_or(before.len(), |i| before.len() - i - 1)
        + 1;
    (line, col)
}

fn parse(text: &str, source: &str) -> Result<PolicyFile, PolicyError> {
    if text.len() > MAX_POLICY_BYTES {
        return Err(PolicyError::TooLarge {
            file: source.to_string(),
            size: text.len(),
            limit: MAX_POLICY_BYTES,
        });
    }
    let file: PolicyFile = toml::from_str(text).map_err(|e| {
        let (line, column) = e.span().map_or((1, 1), |s| line_col(text, s.start));
        PolicyError::Parse {
            file: source.to_string(),
            line,
            column,
            reason: e.message().trim().to_string(),
        }
    })?;
    validate(&file, text, source)?;
    Ok(file)
}

fn validate(f: &PolicyFile, text: &str, source: &str) -> Result<(), PolicyError> {
    let invalid = |span: std::ops::Range<usize>, reason: String| PolicyError::Invalid {
        file: source.to_string(),
        line: line_col(text, span.start).0,
        reason,
    };
    if *f.version.get_ref() != 1 {
        return Err(invalid(
            f.version.span(),
            format!(
                "unsupported policy version {}: this build reads version 1",
                f.version.get_ref()
            ),
        ));
    }
    if f.overrides.len() > MAX_OVERRIDES {
        return Err(invalid(
            0..0,
            format!(
                "{} overrides, the limit is {MAX_OVERRIDES}",
                f.overrides.len()
            ),
        ));
    }
    validate_layer(&f.options, &f.keys, &invalid)?;
    for o in &f.overrides {
        let span = o.span();
        let o = o.get_ref();
        if o.tenant.is_none() && o.service.is_none() {
            return Err(invalid(
                span,
                "override has neither `tenant` nor `service`: say which batches it applies to"
                    .to_string(),
            ));
        }
        if o.service
            .as_ref()
            .is_some_and(|s| s.is_empty() || s.len() > 256)
        {
            return Err(invalid(
                span,
                "override `service` must be 1 to 256 bytes".to_string(),
            ));
        }
        validate_layer(&o.options, &o.keys, &invalid)?;
    }
    Ok(())
}

fn validate_layer(
    options: &Options,
    keys: &KeyRules,
    invalid: &dyn Fn(std::ops::Range<usize>, String) -> PolicyError,
) -> Result<(), PolicyError> {
    if let Some(t) = &options.truncate_keep
        && *t.get_ref() > 16
    {
        return Err(invalid(
            t.span(),
            format!(
                "truncate_keep = {} is too large: keep at most 16 characters",
                t.get_ref()
            ),
        ));
    }
    if let Some(m) = &options.max_value_bytes
        && !(1024..=16 << 20).contains(m.get_ref())
    {
        return Err(invalid(
            m.span(),
            format!(
                "max_value_bytes = {} is out of range: use 1024 to 16777216",
                m.get_ref()
            ),
        ));
    }
    for k in keys.ignored.iter().chain(keys.allowed.iter().flatten()) {
        if k.get_ref().is_empty() || k.get_ref().len() > 256 {
            return Err(invalid(
                k.span(),
                "key names must be 1 to 256 bytes".to_string(),
            ));
        }
    }
    if keys.sensitive.keys().any(|k| k.is_empty() || k.len() > 256) {
        return Err(invalid(
            0..0,
            "keys.sensitive: key names must be 1 to 256 bytes".to_string(),
        ));
    }
    Ok(())
}

fn q(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

fn canonical_layer(out: &mut String, name: &str, f: &PolicyFile) {
    out.push_str(&format!("layer {name}\n"));
    canonical_settings(out, "", &f.actions, &f.options, &f.keys);
    for o in &f.overrides {
        let o = o.get_ref();
        out.push_str(&format!(
            "override tenant={} service={}\n",
            o.tenant.as_ref().map_or("*".to_string(), |t| q(t.as_str())),
            o.service.as_deref().map_or("*".to_string(), q),
        ));
        canonical_settings(out, "  ", &o.actions, &o.options, &o.keys);
    }
}

fn canonical_settings(
    out: &mut String,
    indent: &str,
    actions: &std::collections::BTreeMap<crate::Kind, crate::Action>,
    options: &Options,
    keys: &KeyRules,
) {
    for (k, a) in actions {
        out.push_str(&format!("{indent}action {k} {a}\n"));
    }
    if let Some(v) = &options.truncate_keep {
        out.push_str(&format!("{indent}option truncate_keep {}\n", v.get_ref()));
    }
    if let Some(v) = &options.max_value_bytes {
        out.push_str(&format!("{indent}option max_value_bytes {}\n", v.get_ref()));
    }
    if let Some(v) = options.sanitize_sql {
        out.push_str(&format!("{indent}option sanitize_sql {v}\n"));
    }
    for (k, kind) in &keys.sensitive {
        out.push_str(&format!(
            "{indent}key sensitive {} {kind}\n",
            q(&crate::keys::normalize(k))
        ));
    }
    let mut ignored: Vec<&str> = keys.ignored.iter().map(|s| s.get_ref().as_str()).collect();
    ignored.sort_unstable();
    ignored.dedup();
    for k in ignored {
        out.push_str(&format!("{indent}key ignored {}\n", q(k)));
    }
    if let Some(allowed) = &keys.allowed {
        let mut allowed: Vec<&str> = allowed.iter().map(|s| s.get_ref().as_str()).collect();
        allowed.sort_unstable();
        allowed.dedup();
        out.push_str(&format!("{indent}allowlist {}\n", allowed.len()));
        for k in allowed {
            out.push_str(&format!("{indent}key allowed {}\n", q(k)));
        }
    }
}

#[cfg(test)]
mod tests;
