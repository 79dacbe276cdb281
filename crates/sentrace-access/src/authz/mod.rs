//! Authorization with Cedar policies.
//!
//! Deny by default: a request is allowed only when a `permit` policy matches and no
//! `forbid` does. The principal is the verified [`Identity`] (its tenant, role and team);
//! the resource is a [`Resource`] of the principal's tenant; the context says whether a
//! break-glass grant is active. Every policy file is validated against the Cedar schema
//! ([`SCHEMA`]) when loaded: a policy that does not type-check is refused with its file,
//! line and reason.
//!
//! The default policies ([`DEFAULT_POLICIES`]) define the roles admin, security-analyst,
//! developer, viewer, auditor and ingest. Operators add or replace policies with their own
//! files.

mod load;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::str::FromStr;
use std::sync::Mutex;

use cedar_policy::{
    Authorizer, Context, Decision as CedarDecision, Entities, Entity, EntityId, EntityTypeName,
    EntityUid, PolicySet, Request, RestrictedExpression, Schema,
};
use serde::{Deserialize, Serialize};

use sentrace_core::{Identity, TenantId};

pub use load::{MAX_POLICY_FILE_BYTES, PolicyError, PolicySource};

/// The Cedar schema every policy is validated against.
pub const SCHEMA: &str = include_str!("../../policies/schema.cedarschema");
/// The default policies (the built-in roles).
pub const DEFAULT_POLICIES: &str = include_str!("../../policies/default.cedar");

/// Something a principal may be allowed to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Send telemetry.
    Ingest,
    /// Search traces, list services and operations, read the dependency graph.
    Search,
    /// Read a trace's spans.
    ReadTrace,
    /// See values of a sensitivity class unmasked (in their stored, minimized form).
    ViewSensitive,
    /// Resolve a reversible token (`tok:…`) to its original value.
    Detokenize,
    /// Read detection findings, response actions and quarantined spans.
    ReadFindings,
    /// Read the audit log.
    ReadAudit,
    /// Read the server's metrics.
    ReadMetrics,
    /// Create, list and revoke tokens.
    ManageTokens,
    /// Rotate and manage keys.
    ManageKeys,
    /// Change policies and grant break-glass access.
    ManagePolicy,
    /// Read the transparency logs to verify them.
    Verify,
    /// Run a verification of the tenant's log and stored blocks on the server now (it reads
    /// every stored block, so it is granted apart from `verify`).
    RunVerify,
    /// Lift (undo) an automated response action.
    UndoResponse,
    /// Read the tenant's administrative inventory: tokens (never secrets) and public keys.
    ReadAdmin,
}

impl Action {
    /// Every action.
    pub const ALL: [Action; 15] = [
        Action::Ingest,
        Action::Search,
        Action::ReadTrace,
        Action::ViewSensitive,
        Action::Detokenize,
        Action::ReadFindings,
        Action::ReadAudit,
        Action::ReadMetrics,
        Action::ManageTokens,
        Action::ManageKeys,
        Action::ManagePolicy,
        Action::Verify,
        Action::RunVerify,
        Action::UndoResponse,
        Action::ReadAdmin,
    ];

    /// The Cedar action id (`read_trace`, ...).
    pub fn as_str(&self) -> &'static str {
        match self {
            Action::Ingest => "ingest",
            Action::Search => "search",
            Action::ReadTrace => "read_trace",
            Action::ViewSensitive => "view_sensitive",
            Action::Detokenize => "detokenize",
            Action::ReadFindings => "read_findings",
            Action::ReadAudit => "read_audit",
            Action::ReadMetrics => "read_metrics",
            Action::ManageTokens => "manage_tokens",
            Action::ManageKeys => "manage_keys",
            Action::ManagePolicy => "manage_policy",
            Action::Verify => "verify",
            Action::RunVerify => "run_verify",
            Action::UndoResponse => "undo_response",
            Action::ReadAdmin => "read_admin",
        }
    }

    /// Parses a Cedar action id.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == text)
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an action is on. Every resource belongs to the principal's tenant unless `tenant`
/// says otherwise (only tests and `sentrace policy test` ask about another tenant).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Resource {
    /// The tenant as a whole.
    Tenant,
    /// A service, by its `service.name`.
    Service(String),
    /// A trace, by its hex id.
    Trace(String),
    /// A sensitivity class of values (`pii`, `secret`, ...).
    AttributeClass(String),
}

impl Resource {
    fn type_name(&self) -> &'static str {
        match self {
            Resource::Tenant => "Tenant",
            Resource::Service(_) => "Service",
            Resource::Trace(_) => "Trace",
            Resource::AttributeClass(_) => "AttributeClass",
        }
    }

    /// Parses `Type::"id"` (the Cedar form; `Tenant::"t"` names the tenant itself).
    pub fn parse(text: &str) -> Result<(Self, Option<TenantId>), String> {
        let uid = EntityUid::from_str(text).map_err(|e| {
            format!("resource {text:?} is not a Cedar entity like Service::\"checkout\": {e}")
        })?;
        let id = uid.id().unescaped().to_string();
        match uid.type_name().to_string().as_str() {
            "Tenant" => {
                let t = TenantId::new(id).map_err(|e| format!("resource tenant: {e}"))?;
                Ok((Resource::Tenant, Some(t)))
            }
            "Service" => Ok((Resource::Service(id), None)),
            "Trace" => Ok((Resource::Trace(id), None)),
            "AttributeClass" => Ok((Resource::AttributeClass(id), None)),
            other => Err(format!(
                "resource type {other:?} is not one of Tenant, Service, Trace, AttributeClass"
            )),
        }
    }
}

impl fmt::Display for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Resource::Tenant => f.write_str("Tenant"),
            Resource::Service(s) => write!(f, "Service::{s:?}"),
            Resource::Trace(t) => write!(f, "Trace::{t:?}"),
            Resource::AttributeClass(c) => write!(f, "AttributeClass::{c:?}"),
        }
    }
}

/// Per-request facts the policies may look at.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RequestContext {
    /// A break-glass grant of the principal is active for this request.
    pub break_glass: bool,
}

/// A decision and what made it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    /// Allowed or not.
    pub allowed: bool,
    /// The policies that determined the decision (`file:line @id`): the permits that
    /// matched when allowed, the forbids that matched when denied (empty when nothing
    /// matched: deny by default).
    pub policies: Vec<String>,
    /// Policies that failed to evaluate (they count as not matching).
    pub errors: Vec<String>,
}

/// Which teams own which services (`[access.teams]`): a team name to its service names.
pub type Teams = BTreeMap<String, Vec<String>>;

/// A validated set of policies, ready to decide.
pub struct PolicyStore {
    policies: PolicySet,
    schema: Schema,
    /// Policy id → where it came from (`file:line @id`).
    origins: HashMap<String, String>,
    /// Service name → the teams that own it.
    service_teams: HashMap<String, Vec<String>>,
    authorizer: Authorizer,
    /// Decisions already made with this set (a reload builds a new store, so an entry never
    /// outlives the policies that made it). Cedar's evaluation is linear in the number of
    /// policies (about 2 ms per decision with 1,000 policies), a lookup is not.
    cache: Mutex<HashMap<DecisionKey, Decision>>,
}

/// Everything a decision depends on: the principal's entity and attributes, the action,
/// the resource's entity and tenant, and the context.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct DecisionKey {
    kind: sentrace_core::PrincipalKind,
    principal: String,
    tenant: TenantId,
    role: sentrace_core::Role,
    team: Option<String>,
    action: Action,
    resource: Resource,
    resource_tenant: TenantId,
    break_glass: bool,
}

/// Most cached decisions; the cache is emptied when full (principals × resources is
/// bounded by the data, but an attacker must not grow it without end).
const MAX_CACHED_DECISIONS: usize = 16_384;

impl fmt::Debug for PolicyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PolicyStore")
            .field("policies", &self.origins.len())
            .finish()
    }
}

fn uid(type_name: &str, id: &str) -> Result<EntityUid, String> {
    let t = EntityTypeName::from_str(type_name).map_err(|e| e.to_string())?;
    Ok(EntityUid::from_type_name_and_id(t, EntityId::new(id)))
}

fn string(s: &str) -> RestrictedExpression {
    RestrictedExpression::new_string(s.to_string())
}

impl PolicyStore {
    /// Validates and loads `sources` (with the default policies first when
    /// `include_defaults`), and the team ownership of services.
    pub fn load(
        sources: &[PolicySource],
        include_defaults: bool,
        teams: &Teams,
    ) -> Result<Self, PolicyError> {
        let (policies, schema, origins) = load::load(sources, include_defaults)?;
        let mut service_teams: HashMap<String, Vec<String>> = HashMap::new();
        for (team, services) in teams {
            for s in services {
                service_teams
                    .entry(s.clone())
                    .or_default()
                    .push(team.clone());
            }
        }
        Ok(Self {
            policies,
            schema,
            origins,
            service_teams,
            authorizer: Authorizer::new(),
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// The built-in policies alone, with no teams.
    pub fn defaults() -> Result<Self, PolicyError> {
        Self::load(&[], true, &Teams::new())
    }

    /// Number of policies loaded.
    pub fn len(&self) -> usize {
        self.origins.len()
    }

    /// Whether no policy is loaded (everything is denied).
    pub fn is_empty(&self) -> bool {
        self.origins.is_empty()
    }

    /// Decides whether `who` may do `action` on `resource` of its own tenant.
    pub fn decide(
        &self,
        who: &Identity,
        action: Action,
        resource: &Resource,
        ctx: RequestContext,
    ) -> Decision {
        self.decide_in(who, action, resource, &who.tenant, ctx)
    }

    /// Decides whether `who` may do `action` on `resource` of `resource_tenant`.
    pub fn decide_in(
        &self,
        who: &Identity,
        action: Action,
        resource: &Resource,
        resource_tenant: &TenantId,
        ctx: RequestContext,
    ) -> Decision {
        let key = DecisionKey {
            kind: who.kind,
            principal: who.principal.clone(),
            tenant: who.tenant.clone(),
            role: who.role.effective(),
            team: who.team.clone(),
            action,
            resource: resource.clone(),
            resource_tenant: resource_tenant.clone(),
            break_glass: ctx.break_glass,
        };
        if let Some(d) = self.lock_cache().get(&key) {
            return d.clone();
        }
        let d = match self.evaluate(who, action, resource, resource_tenant, ctx) {
            Ok(d) => d,
            // A request that cannot even be formed (an id Cedar refuses) is denied.
            Err(e) => Decision {
                allowed: false,
                policies: Vec::new(),
                errors: vec![e],
            },
        };
        let mut cache = self.lock_cache();
        if cache.len() >= MAX_CACHED_DECISIONS {
            cache.clear();
        }
        cache.insert(key, d.clone());
        d
    }

    fn lock_cache(&self) -> std::sync::MutexGuard<'_, HashMap<DecisionKey, Decision>> {
        match self.cache.lock() {
            Ok(c) => c,
            Err(p) => p.into_inner(),
        }
    }

    fn evaluate(
        &self,
        who: &Identity,
        action: Action,
        resource: &Resource,
        resource_tenant: &TenantId,
        ctx: RequestContext,
    ) -> Result<Decision, String> {
        let principal = uid(who.kind.entity_type(), &who.principal)?;
        let mut attrs = HashMap::from([
            ("tenant".to_string(), string(who.tenant.as_str())),
            ("role".to_string(), string(who.role.effective().as_str())),
        ]);
        if let Some(team) = &who.team {
            attrs.insert("team".into(), string(team));
        }
        let principal_entity =
            Entity::new(principal.clone(), attrs, HashSet::new()).map_err(|e| e.to_string())?;

        let resource_id = match resource {
            Resource::Tenant => resource_tenant.as_str(),
            Resource::Service(s) | Resource::Trace(s) | Resource::AttributeClass(s) => s,
        };
        let resource_uid = uid(resource.type_name(), resource_id)?;
        let mut rattrs = HashMap::from([("tenant".to_string(), string(resource_tenant.as_str()))]);
        if let Resource::Service(s) = resource {
            let teams = self.service_teams.get(s).map(Vec::as_slice).unwrap_or(&[]);
            rattrs.insert(
                "teams".into(),
                RestrictedExpression::new_set(teams.iter().map(|t| string(t))),
            );
        }
        let resource_entity =
            Entity::new(resource_uid.clone(), rattrs, HashSet::new()).map_err(|e| e.to_string())?;
        let entities = Entities::from_entities([principal_entity, resource_entity], None)
            .map_err(|e| e.to_string())?;
        let action_uid = uid("Action", action.as_str())?;
        let context = Context::from_pairs([(
            "break_glass".to_string(),
            RestrictedExpression::new_bool(ctx.break_glass),
        )])
        .map_err(|e| e.to_string())?;
        let request = Request::new(
            principal,
            action_uid,
            resource_uid,
            context,
            Some(&self.schema),
        )
        .map_err(|e| e.to_string())?;
        let response = self
            .authorizer
            .is_authorized(&request, &self.policies, &entities);
        let mut policies: Vec<String> = response
            .diagnostics()
            .reason()
            .map(|id| {
                self.origins
                    .get(AsRef::<str>::as_ref(id))
                    .cloned()
                    .unwrap_or_else(|| id.to_string())
            })
            .collect();
        policies.sort();
        Ok(Decision {
            allowed: response.decision() == CedarDecision::Allow,
            policies,
            errors: response
                .diagnostics()
                .errors()
                .map(|e| e.to_string())
                .collect(),
        })
    }
}

#[cfg(test)]
mod tests;
