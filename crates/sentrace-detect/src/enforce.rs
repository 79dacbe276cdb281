//! Pure ingest-side enforcement of response actions: which spans of a batch are
//! quarantined (set aside, not dropped), which must be kept whatever the sampling, and how
//! many spans a throttled source may still send. The server holds the clock, the token
//! buckets and the storage; this module only decides.

use std::collections::HashMap;

use sentrace_core::proto::trace::v1::{ResourceSpans, ScopeSpans};

use crate::response::{Action, PlannedAction, Target};
use crate::span::SpanRef;

/// The response actions in force.
#[derive(Debug, Default, Clone)]
pub struct ActiveResponses {
    quarantine: HashMap<Target, u64>,
    keep: HashMap<Target, u64>,
    throttle: HashMap<Target, (u32, u64)>,
}

/// What to do with one batch.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Enforcement {
    /// Spans set aside (same resource/scope grouping as the input), with why.
    pub quarantined: Vec<ResourceSpans>,
    /// Number of spans quarantined.
    pub quarantined_spans: usize,
    /// Traces (hex ids) that sampling must keep.
    pub keep_traces: Vec<String>,
    /// The lowest throttle rate (spans/s) that applies to the batch, if any.
    pub throttle_per_sec: Option<u32>,
}

fn targets_of(s: &SpanRef<'_>, principal: &str) -> Vec<Target> {
    let subj = s.subject();
    let mut t = vec![
        Target::Principal(principal.to_string()),
        Target::Service(s.service.to_string()),
    ];
    if let Some(a) = subj.client_address {
        t.push(Target::ClientAddress(a));
    }
    if let Some(u) = subj.user {
        t.push(Target::User(u));
    }
    t
}

impl ActiveResponses {
    /// Nothing in force.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or extends) actions; tag and webhook actions are not ingest-side and are ignored.
    pub fn apply(&mut self, actions: &[PlannedAction]) {
        for p in actions {
            match &p.action {
                Action::Quarantine {
                    target,
                    until_unix_nanos,
                } => {
                    let e = self.quarantine.entry(target.clone()).or_insert(0);
                    *e = (*e).max(*until_unix_nanos);
                }
                Action::KeepSource {
                    target,
                    until_unix_nanos,
                } => {
                    let e = self.keep.entry(target.clone()).or_insert(0);
                    *e = (*e).max(*until_unix_nanos);
                }
                Action::Throttle {
                    target,
                    rate_per_sec,
                    until_unix_nanos,
                } => {
                    let e = self
                        .throttle
                        .entry(target.clone())
                        .or_insert((*rate_per_sec, 0));
                    e.0 = e.0.min(*rate_per_sec);
                    e.1 = e.1.max(*until_unix_nanos);
                }
                Action::TagTrace { .. } | Action::Webhook { .. } => {}
            }
        }
    }

    /// Undoes every action on a target (`sentrace response undo`).
    pub fn lift(&mut self, target: &Target) {
        self.quarantine.remove(target);
        self.keep.remove(target);
        self.throttle.remove(target);
    }

    /// Drops expired actions.
    pub fn expire(&mut self, now: u64) {
        self.quarantine.retain(|_, u| *u > now);
        self.keep.retain(|_, u| *u > now);
        self.throttle.retain(|_, (_, u)| *u > now);
    }

    /// Moves quarantined spans out of `resource_spans` (sent by `principal`) and reports
    /// what else applies. Spans are never dropped here.
    pub fn enforce(
        &self,
        resource_spans: &mut [ResourceSpans],
        principal: &str,
        now: u64,
    ) -> Enforcement {
        let mut out = Enforcement::default();
        let active = |m: &HashMap<Target, u64>, t: &Target| m.get(t).is_some_and(|u| *u > now);
        for rs in resource_spans.iter_mut() {
            let mut aside_scopes = Vec::new();
            for ss in rs.scope_spans.iter_mut() {
                let service = sentrace_core::otlp::service_name(rs.resource.as_ref()).to_string();
                let mut kept = Vec::with_capacity(ss.spans.len());
                let mut aside = Vec::new();
                for span in ss.spans.drain(..) {
                    let r = SpanRef {
                        service: &service,
                        span: &span,
                    };
                    let targets = targets_of(&r, principal);
                    if targets.iter().any(|t| active(&self.keep, t))
                        && let Some(t) = r.trace_id()
                    {
                        out.keep_traces.push(t.to_hex());
                    }
                    for t in &targets {
                        if let Some((rate, until)) = self.throttle.get(t)
                            && *until > now
                        {
                            out.throttle_per_sec =
                                Some(out.throttle_per_sec.map_or(*rate, |r| r.min(*rate)));
                        }
                    }
                    if targets.iter().any(|t| active(&self.quarantine, t)) {
                        aside.push(span);
                    } else {
                        kept.push(span);
                    }
                }
                ss.spans = kept;
                if !aside.is_empty() {
                    out.quarantined_spans += aside.len();
                    aside_scopes.push(ScopeSpans {
                        scope: ss.scope.clone(),
                        spans: aside,
                        schema_url: ss.schema_url.clone(),
                    });
                }
            }
            if !aside_scopes.is_empty() {
                out.quarantined.push(ResourceSpans {
                    resource: rs.resource.clone(),
                    scope_spans: aside_scopes,
                    schema_url: rs.schema_url.clone(),
                });
            }
        }
        out.keep_traces.sort();
        out.keep_traces.dedup();
        out
    }
}
