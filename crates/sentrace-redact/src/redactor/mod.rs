//! The minimizer: a compiled policy and detector set applied to OTLP spans in place.

mod record;
mod walk;

use std::collections::HashMap;

use sentrace_core::TenantId;
use sentrace_core::otlp::service_name;
use sentrace_core::proto::trace::v1::ResourceSpans;

use crate::action::ActionCtx;
use crate::detect::{DetectorBuildError, Detectors};
use crate::kind::{Action, Kind};
use crate::metrics::{Metrics, MetricsSnapshot};
use crate::policy::{Policy, Rules};
use crate::vault::TenantSecrets;

pub use walk::Location;
pub(crate) use walk::{Observation, Walk};

/// The span attribute that lists the places of minimized values and their classes.
pub use sentrace_core::MINIMIZED_ATTRIBUTE;
/// The span attribute that carries the hex SHA-256 digest of the policy that minimized
/// the span (defined in `sentrace-core`, beside [`MINIMIZED_ATTRIBUTE`]).
pub use sentrace_core::sensitivity::POLICY_DIGEST_ATTRIBUTE;

/// Deepest array/kvlist nesting walked; deeper values are replaced by `<too_deep>`.
pub const MAX_VALUE_DEPTH: usize = 32;

/// What one [`Redactor::minimize`] call did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MinimizeReport {
    /// Values minimized, indexed `[kind.index()][action.index()]`.
    pub values: [[u64; Action::COUNT]; Kind::COUNT],
    /// Spans minimized (and stamped with the policy digest).
    pub spans: u64,
    /// Attributes or array elements removed by the `drop` action.
    pub dropped: u64,
    /// Attributes removed because allowlist mode did not list their key.
    pub allowlist_dropped: u64,
    /// String values replaced whole for exceeding `max_value_bytes`, or nested too deep.
    pub oversize: u64,
}

impl MinimizeReport {
    /// Values of `kind` minimized with `action`.
    pub fn count(&self, kind: Kind, action: Action) -> u64 {
        self.values[kind.index()][action.index()]
    }

    /// Values of `kind` minimized, whatever the action.
    pub fn count_kind(&self, kind: Kind) -> u64 {
        self.values[kind.index()].iter().sum()
    }

    /// All values minimized.
    pub fn total(&self) -> u64 {
        self.values.iter().flatten().sum()
    }
}

/// Compiled policy and detectors. Build once, share behind an `Arc`; `Send + Sync`.
#[derive(Debug)]
pub struct Redactor {
    policy: Policy,
    detectors: Detectors,
    digest_hex: String,
    /// Rules per tenant key then service key; "" stands for "not named by any override".
    rules: HashMap<String, HashMap<String, Rules>>,
    metrics: Metrics,
}

impl Redactor {
    /// Compiles the detectors and resolves the policy's rules for every tenant and service
    /// its overrides name.
    pub fn new(policy: Policy) -> Result<Self, DetectorBuildError> {
        let detectors = Detectors::new()?;
        let (tenants, services) = policy.override_names();
        let mut rules = HashMap::new();
        for t in std::iter::once(String::new()).chain(tenants) {
            let mut per_service = HashMap::new();
            for s in std::iter::once(String::new()).chain(services.iter().cloned()) {
                // "\0" never equals a tenant id or a service named in an override.
                let tq = if t.is_empty() { "\0" } else { t.as_str() };
                let sq = if s.is_empty() { "\0" } else { s.as_str() };
                let rules = policy.resolve(tq, sq);
                per_service.insert(s, rules);
            }
            rules.insert(t, per_service);
        }
        Ok(Self {
            digest_hex: policy.digest_hex(),
            policy,
            detectors,
            rules,
            metrics: Metrics::default(),
        })
    }

    /// The policy.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// SHA-256 of the policy's canonical form.
    pub fn policy_digest(&self) -> [u8; 32] {
        self.policy.digest()
    }

    /// The compiled detectors (for callers that scan text of their own).
    pub fn detectors(&self) -> &Detectors {
        &self.detectors
    }

    /// The counters accumulated over every call.
    pub fn metrics(&self) -> MetricsSnapshot {
        self.metrics.snapshot()
    }

    /// The effective rules for a tenant's service.
    pub fn rules_for(&self, tenant: &str, service: &str) -> &Rules {
        self.rules
            .get(tenant)
            .or_else(|| self.rules.get(""))
            .and_then(|per_service| per_service.get(service).or_else(|| per_service.get("")))
            .unwrap_or_else(|| fallback_rules())
    }

    /// Minimizes every span of `resource_spans` in place under the tenant's policy, and
    /// stamps each span with [`POLICY_DIGEST_ATTRIBUTE`].
    ///
    /// Covered: span names, status messages, and the attributes of resources, scopes,
    /// spans, events and links, including array and kvlist values at any depth.
    ///
    /// A span in which a sensitive value was found (whatever the action, `keep`
    /// included), or that holds values already minimized upstream (`<kind>`, `pse:kind:`,
    /// `tok:kind:` anywhere in a value), also gets [`MINIMIZED_ATTRIBUTE`]: the places of
    /// those values and their [`sentrace_core::AttributeClass`] (grammar in
    /// [`sentrace_core::sensitivity`]). A list the span arrived with is merged in (it can
    /// only add places), never trusted to remove any. Spans with nothing sensitive get
    /// no list and cost no allocation.
    pub fn minimize(
        &self,
        tenant: &TenantId,
        resource_spans: &mut [ResourceSpans],
        secrets: &dyn TenantSecrets,
    ) -> MinimizeReport {
        let mut report = MinimizeReport::default();
        let act = ActionCtx::new(tenant, secrets);
        // One walk for the whole batch: its buffers and its key-class cache serve every
        // resource (the cache is kept while consecutive resources share their rules).
        let mut walk = Walk::new(
            &self.detectors,
            self.rules_for(tenant.as_str(), ""),
            &act,
            &mut report,
            None,
        );
        for rs in resource_spans.iter_mut() {
            walk.set_rules(self.rules_for(tenant.as_str(), service_name(rs.resource.as_ref())));
            walk.resource_spans(rs, Some(&self.digest_hex));
        }
        drop(walk);
        self.metrics.add_report(&report);
        report
    }

    /// [`Redactor::minimize`], also counting what was found by service, kind, attribute
    /// key and action into `exposure` (see [`crate::exposure`]; no value is kept).
    pub fn minimize_recording(
        &self,
        tenant: &TenantId,
        resource_spans: &mut [ResourceSpans],
        secrets: &dyn TenantSecrets,
        exposure: &mut crate::exposure::BatchExposure,
    ) -> MinimizeReport {
        let mut report = MinimizeReport::default();
        let act = ActionCtx::new(tenant, secrets);
        // One walk for the whole batch, as in `minimize`.
        let mut walk = Walk::new(
            &self.detectors,
            self.rules_for(tenant.as_str(), ""),
            &act,
            &mut report,
            None,
        )
        .with_exposure(exposure, 0);
        for rs in resource_spans.iter_mut() {
            let service = service_name(rs.resource.as_ref());
            walk.set_rules(self.rules_for(tenant.as_str(), service));
            walk.set_exposure_service(service);
            walk.resource_spans(rs, Some(&self.digest_hex));
        }
        drop(walk);
        self.metrics.add_report(&report);
        report
    }

    /// Runs the walk with every kind masked and no allowlist, recording what it finds.
    pub(crate) fn observe(
        &self,
        rs: &mut ResourceSpans,
        tenant: &TenantId,
        secrets: &dyn TenantSecrets,
        sink: &mut Vec<Observation>,
    ) {
        let service = service_name(rs.resource.as_ref()).to_string();
        let mut rules = self.rules_for(tenant.as_str(), &service).clone();
        rules.set_all(Action::Mask);
        rules.clear_allowlist();
        let act = ActionCtx::new(tenant, secrets);
        let mut report = MinimizeReport::default();
        let mut walk = Walk::new(&self.detectors, &rules, &act, &mut report, Some(sink));
        walk.resource_spans(rs, None);
    }
}

/// Rules used if a lookup ever misses (it cannot: `new` inserts the "" entries): mask all.
fn fallback_rules() -> &'static Rules {
    static MASK_ALL: std::sync::OnceLock<Rules> = std::sync::OnceLock::new();
    MASK_ALL.get_or_init(Rules::masking_everything)
}

#[cfg(test)]
mod class_tests;
#[cfg(test)]
mod tests;
