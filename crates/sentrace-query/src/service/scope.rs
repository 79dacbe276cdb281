//! One request's authorization scope: Cedar decisions for the caller, memoized per
//! (action, resource) so a trace of 1,000 spans over 5 services costs 5 decisions.

use std::collections::HashMap;
use std::sync::Arc;

use sentrace_access::authz::{Action, PolicyStore, RequestContext, Resource};
use sentrace_core::{AttributeClass, Identity};

use super::Caller;
use crate::SpanView;
use crate::mask;
use crate::unseal::{self, SensitiveOpener};

/// Decisions of one request.
pub struct Scope {
    policies: Arc<PolicyStore>,
    identity: Identity,
    ctx: RequestContext,
    memo: HashMap<(Action, Resource), bool>,
    /// Opens sensitive values of classes the caller may see (None: they stay sealed).
    opener: Option<Arc<dyn SensitiveOpener>>,
}

/// What scoping and masking did to an answer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Shaped {
    /// Spans replaced by placeholders (outside the service scope).
    pub hidden: u64,
    /// Spans with at least one value masked.
    pub masked: u64,
}

impl Scope {
    pub(crate) fn new(policies: Arc<PolicyStore>, caller: &Caller) -> Self {
        Self {
            policies,
            identity: caller.identity.clone(),
            ctx: RequestContext {
                break_glass: caller.break_glass.is_some(),
            },
            memo: HashMap::new(),
            opener: None,
        }
    }

    /// Decrypts sensitive values of the classes the caller may see with `opener`.
    pub fn with_opener(mut self, opener: Arc<dyn SensitiveOpener>) -> Self {
        self.opener = Some(opener);
        self
    }

    /// Whether the caller may do `action` on `resource` of its tenant.
    pub fn allows(&mut self, action: Action, resource: Resource) -> bool {
        if let Some(d) = self.memo.get(&(action, resource.clone())) {
            return *d;
        }
        let d = self
            .policies
            .decide(&self.identity, action, &resource, self.ctx);
        if !d.errors.is_empty() {
            tracing::warn!(action = %action, resource = %resource, errors = ?d.errors, "policy evaluation errors (denied)");
        }
        self.memo.insert((action, resource), d.allowed);
        d.allowed
    }

    /// Whether the caller may do `action` on its tenant as a whole.
    pub fn allows_tenant(&mut self, action: Action) -> bool {
        self.allows(action, Resource::Tenant)
    }

    /// Whether spans of `service` are in the caller's `action` scope.
    pub fn allows_service(&mut self, action: Action, service: &str) -> bool {
        self.allows(action, Resource::Service(service.to_string()))
    }

    /// Whether values of `class` may be seen unmasked.
    pub fn allows_class(&mut self, class: AttributeClass) -> bool {
        self.allows(
            Action::ViewSensitive,
            Resource::AttributeClass(class.as_str().to_string()),
        )
    }

    /// The sensitivity classes the caller may see unmasked, decided once per request.
    pub fn class_decisions(&mut self) -> Vec<(AttributeClass, bool)> {
        AttributeClass::ALL
            .into_iter()
            .map(|c| (c, self.allows_class(c)))
            .collect()
    }

    /// Applies the scope to one decoded span in place: outside the `action` scope of its
    /// service it becomes a placeholder; otherwise values of classes the caller may not
    /// view are masked, and then (never before) those it may view are decrypted.
    pub fn shape_one(
        &mut self,
        action: Action,
        classes: &[(AttributeClass, bool)],
        view: &mut SpanView,
    ) -> Fate {
        let service = view.service().to_string();
        if !self.allows_service(action, &service) {
            mask::placeholder(view);
            return Fate::Hidden;
        }
        let allowed = |c: AttributeClass| classes.iter().any(|(k, ok)| *k == c && *ok);
        let masked = mask::mask_sensitive(view, allowed).masked > 0;
        if let Some(opener) = &self.opener
            && classes.iter().any(|(_, ok)| *ok)
        {
            unseal::unseal_sensitive(view, allowed, opener.as_ref());
        }
        Fate::Visible { masked }
    }

    /// [`Scope::shape_one`] over many spans; returns each span's fate and the totals.
    pub fn shape(&mut self, action: Action, views: &mut [SpanView]) -> (Vec<Fate>, Shaped) {
        let classes = self.class_decisions();
        let mut out = Shaped::default();
        let fates = views
            .iter_mut()
            .map(|v| {
                let fate = self.shape_one(action, &classes, v);
                match fate {
                    Fate::Hidden => out.hidden += 1,
                    Fate::Visible { masked: true } => out.masked += 1,
                    Fate::Visible { masked: false } => {}
                }
                fate
            })
            .collect();
        (fates, out)
    }
}

/// What scoping did to one span.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fate {
    /// In scope; `masked` when at least one value was masked.
    Visible {
        /// A value was masked.
        masked: bool,
    },
    /// Outside the service scope: now a placeholder.
    Hidden,
}
