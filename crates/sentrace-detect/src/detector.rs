//! The detector: compiled rules per tenant, run over a decoded batch.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use sentrace_core::proto::trace::v1::ResourceSpans;
use sentrace_core::{TenantId, TraceId};

use crate::context::{self, Explained, FieldRef, Observation};
use crate::correlate;
use crate::finding::{Evidence, Finding, Subject};
use crate::normalize;
use crate::payload::{PayloadEngine, PayloadHit, extract};
use crate::rules::{Rule, RuleKind, RulesError, Ruleset, RulesetOverride, Severity};
use crate::snippet;
use crate::span::{self, SpanRef};

/// Most evidences kept in one finding.
pub const MAX_EVIDENCES: usize = 4;
/// Shortest input whose payload hits are remembered for the rest of the batch (shorter
/// ones cost less to scan than to look up).
const MIN_CACHED_BYTES: usize = 12;
/// Most distinct values remembered per batch (bounds the memory a batch can use).
const MAX_CACHED_VALUES: usize = 4096;

/// One tenant's compiled rules.
#[derive(Debug)]
pub(crate) struct Compiled {
    pub(crate) ruleset: Ruleset,
    payload: PayloadEngine,
    by_matcher: HashMap<String, usize>,
}

impl Compiled {
    fn new(file: &str, ruleset: Ruleset) -> Result<Self, RulesError> {
        let payload = PayloadEngine::new(&ruleset.rules).map_err(|e| RulesError::Invalid {
            file: file.to_string(),
            rule: "-".into(),
            reason: format!("patterns do not compile together: {e}"),
        })?;
        let by_matcher = ruleset
            .rules
            .iter()
            .enumerate()
            .filter(|(_, r)| r.kind != RuleKind::Payload)
            .filter_map(|(i, r)| r.matcher.clone().map(|m| (m, i)))
            .collect();
        Ok(Self {
            ruleset,
            payload,
            by_matcher,
        })
    }

    pub(crate) fn rule_for(&self, matcher: &str) -> Option<&Rule> {
        self.by_matcher
            .get(matcher)
            .and_then(|i| self.ruleset.rules.get(*i))
    }
}

/// What a detector knows about one finding besides its rule.
#[derive(Debug)]
pub(crate) struct Draft<'a> {
    pub(crate) time_unix_nanos: u64,
    pub(crate) service: &'a str,
    pub(crate) subject: Subject,
    pub(crate) evidences: Vec<Evidence>,
    pub(crate) message: String,
}

/// Builds a finding from a rule and a draft; fills `uid`.
pub(crate) fn make_finding(tenant: &TenantId, rule: &Rule, version: &str, d: Draft<'_>) -> Finding {
    let mut f = Finding {
        uid: String::new(),
        tenant: tenant.clone(),
        rule_id: rule.id.clone(),
        title: rule.name.clone(),
        family: rule.family,
        kind: rule.kind,
        severity: rule.severity,
        confidence: rule.confidence,
        technique: rule.technique.clone(),
        ruleset_version: version.to_string(),
        time_unix_nanos: d.time_unix_nanos,
        service: d.service.to_string(),
        subject: d.subject,
        evidences: d.evidences,
        message: d.message,
        downgraded: false,
    };
    f.uid = f.compute_uid();
    f
}

/// The threat detector. Build once, share across threads.
#[derive(Debug)]
pub struct Detector {
    base: Arc<Compiled>,
    tenants: HashMap<TenantId, Arc<Compiled>>,
    behavior: crate::behavior::Baselines,
    memory: crate::memory::TraceMemory,
    context: context::Profiles,
    /// Batches hold it shared while they run; a snapshot holds it alone, so a saved
    /// baseline never has half a batch (field profiles updated, the behavioral state of the
    /// same batch not yet: a save in that window, then a crash, restored a tenant with
    /// profiles and no warm-up evidence).
    batches: std::sync::RwLock<()>,
}

impl Detector {
    /// Compiles a ruleset.
    pub fn new(ruleset: Ruleset) -> Result<Self, RulesError> {
        ruleset.validate("<ruleset>")?;
        let base = Arc::new(Compiled::new("<ruleset>", ruleset)?);
        Ok(Self {
            base,
            tenants: HashMap::new(),
            behavior: crate::behavior::Baselines::new(),
            memory: crate::memory::TraceMemory::new(),
            context: context::Profiles::default(),
            batches: std::sync::RwLock::new(()),
        })
    }

    /// A detector with the embedded default ruleset.
    pub fn with_default_rules() -> Result<Self, RulesError> {
        Self::new(Ruleset::default_ruleset()?)
    }

    /// Installs a tenant's override on top of the base ruleset (replacing an earlier one).
    pub fn set_tenant_override(
        &mut self,
        tenant: TenantId,
        file: &str,
        ov: &RulesetOverride,
    ) -> Result<(), RulesError> {
        let set = self.base.ruleset.apply(file, ov)?;
        self.tenants
            .insert(tenant, Arc::new(Compiled::new(file, set)?));
        Ok(())
    }

    /// Snapshots of the behavioral state and field profiles of every tenant that changed
    /// since the last call (see [`crate::behavior::BaselineSnapshot`]); the caller
    /// persists them. Each snapshot is the tenant's whole state.
    pub fn baseline_snapshots(&self) -> Vec<crate::behavior::BaselineSnapshot> {
        // No batch in flight: every batch is in the snapshot whole or not at all. (The
        // guard protects no data; a poisoned lock is as good as a clean one.)
        let _quiet = self
            .batches
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut snaps = self.behavior.snapshot_dirty();
        for t in self.context.take_dirty() {
            if !snaps.iter().any(|s| s.tenant == t.as_str()) {
                snaps.push(
                    self.behavior
                        .snapshot_tenant(&t)
                        .unwrap_or_else(|| crate::behavior::BaselineSnapshot::empty(&t)),
                );
            }
        }
        for s in &mut snaps {
            if let Ok(t) = TenantId::new(&s.tenant) {
                s.profiles = self.context.snapshot(&t);
            }
        }
        snaps
    }

    /// Marks a tenant's behavioral state as not saved, so the next
    /// [`Detector::baseline_snapshots`] takes it again.
    pub fn mark_baseline_unsaved(&self, tenant: &TenantId) {
        self.behavior.mark_dirty(tenant);
        self.context.mark_dirty(tenant);
    }

    /// Puts back a tenant's saved behavioral state and field profiles (at start, before
    /// any batch of it), bounded by the tenant's `[behavior]` and `[context]` tables.
    pub fn restore_baseline(
        &self,
        tenant: &TenantId,
        mut snap: crate::behavior::BaselineSnapshot,
    ) -> Result<(), crate::behavior::SnapshotError> {
        let profiles = std::mem::take(&mut snap.profiles);
        let name = snap.tenant.clone();
        let rules = self.ruleset(tenant);
        self.behavior.restore(tenant, snap, &rules.behavior)?;
        self.context
            .restore(tenant, profiles, &rules.context)
            .map_err(|reason| crate::behavior::SnapshotError::Invalid {
                tenant: name,
                reason: format!("field profiles: {reason}"),
            })
    }

    /// A tenant's learned field profiles (see [`crate::context`]).
    pub fn field_profiles(&self, tenant: &TenantId) -> Vec<context::FieldProfile> {
        self.context.snapshot(tenant)
    }

    /// Traces of a tenant held for cross-batch correlation ([`crate::memory`]).
    pub fn remembered_traces(&self, tenant: &TenantId) -> usize {
        self.memory.len(tenant)
    }

    /// The effective ruleset of a tenant.
    pub fn ruleset(&self, tenant: &TenantId) -> &Ruleset {
        &self.compiled(tenant).ruleset
    }

    pub(crate) fn compiled(&self, tenant: &TenantId) -> &Compiled {
        self.tenants.get(tenant).unwrap_or(&self.base)
    }

    /// Payload hits of one raw input value (for tools and evaluation): `(rule, reason)`.
    /// The value alone, without a parameter name: hits that need the name
    /// ([`crate::payload::PayloadEngine::scan_field`]) come only from [`Detector::inspect`].
    pub fn scan_value<'a>(&'a self, tenant: &TenantId, raw: &str) -> Vec<(&'a Rule, &'static str)> {
        let c = self.compiled(tenant);
        let norm = normalize::normalize(raw);
        let mut hits = Vec::new();
        c.payload.scan(raw, &norm, extract::Part::Value, &mut hits);
        hits.into_iter()
            .filter_map(|h| c.ruleset.rules.get(h.rule).map(|r| (r, h.reason)))
            .collect()
    }

    /// Inspects one batch of raw (not yet minimized) spans. `now_unix_nanos` is the
    /// receive time; it drives behavioral windows when span times are missing.
    pub fn inspect(
        &self,
        tenant: &TenantId,
        resource_spans: &[ResourceSpans],
        now_unix_nanos: u64,
    ) -> Vec<Finding> {
        let _batch = self
            .batches
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let c = self.compiled(tenant);
        let mut out = Vec::new();
        let mut by_trace: HashMap<TraceId, Vec<SpanRef<'_>>> = HashMap::new();
        let mut hits: Vec<PayloadHit> = Vec::new();
        let mut inputs: Vec<extract::InputRef<'_>> = Vec::new();
        // Payload hits of values already scanned in this batch.
        // (with the value's field-context shape, 0 when not profiled).
        let mut seen: HashMap<(&str, extract::Part), (Vec<PayloadHit>, u32)> = HashMap::new();
        let correlated = c
            .ruleset
            .rules
            .iter()
            .any(|r| r.kind == RuleKind::Correlated);
        // Decoded entry inputs, keyed by span address, reused by the correlated pass.
        let mut decoded_by_span: HashMap<usize, Vec<(String, String)>> = HashMap::new();
        // Entry spans a payload detector reported (by address), for the trace memory.
        let mut flagged: HashSet<usize> = HashSet::new();
        let ctx = &c.ruleset.context;
        let profiling = ctx.learn || !ctx.pins.is_empty();
        for s in span::spans(resource_spans) {
            if let Some(t) = s.trace_id() {
                by_trace.entry(t).or_default().push(s);
            }
            if !s.is_entry() {
                continue;
            }
            // Payload detectors: one finding per (span, rule, downgraded or not), evidences
            // per input.
            let mut per_rule: Vec<(usize, Option<Explained>, Vec<Evidence>)> = Vec::new();
            let mut kept = Vec::new();
            extract::inputs_ref(s.attrs(), &mut inputs);
            // Field context: the route, the source and the values seen, for learning.
            let route = if profiling {
                crate::behavior::route_of(s.route().unwrap_or("")).0
            } else {
                String::new()
            };
            let source = if profiling {
                context::source_of(&s)
            } else {
                None
            };
            let span_time = time_of(s.span.start_time_unix_nano, now_unix_nanos);
            let mut observed: Vec<(FieldRef<'_>, Observation)> = Vec::new();
            let mut span_flagged = false;
            for input in &inputs {
                let decoded = normalize::decode_cow(&input.raw);
                // Only inputs with some non-word character can reach a sink in a way the
                // correlated detectors report (see `correlate::may_correlate`).
                if correlated && correlate::may_correlate(&decoded) {
                    kept.push((input.attribute.to_string(), decoded.to_lowercase()));
                }
                // The same value (a user agent, a cookie, a common parameter) recurs
                // across the spans of a batch: scan it once.
                let key = match &input.raw {
                    std::borrow::Cow::Borrowed(r) if r.len() >= MIN_CACHED_BYTES => {
                        Some((*r, input.part))
                    }
                    _ => None,
                };
                let profiled = profiling && input.part == extract::Part::Value;
                let bits = if let Some(known) = key.and_then(|k| seen.get(&k)) {
                    hits.clone_from(&known.0);
                    known.1
                } else {
                    hits.clear();
                    let norm = normalize::fold_cow(&decoded);
                    c.payload
                        .scan_decoded(&input.raw, &decoded, &norm, input.part, &mut hits);
                    let bits = if profiled {
                        context::shape::shape(&decoded)
                    } else {
                        0
                    };
                    if let Some(k) = key
                        && seen.len() < MAX_CACHED_VALUES
                    {
                        seen.insert(k, (hits.clone(), bits));
                    }
                    bits
                };
                c.payload
                    .scan_field(&input.field, &decoded, input.part, &mut hits);
                let field = profiled.then(|| {
                    let (location, name) = context::location(input.attribute, &input.field);
                    FieldRef {
                        service: s.service,
                        route: &route,
                        location,
                        name,
                    }
                });
                let len = u32::try_from(decoded.len()).unwrap_or(u32::MAX);
                // A hit that the value's own shape does not explain flags the request.
                let unexplained = hits.iter().any(|h| {
                    c.ruleset
                        .rules
                        .get(h.rule)
                        .is_none_or(|r| !context::shape_explains(r.family, bits))
                });
                span_flagged |= unexplained;
                if let Some(f) = field {
                    observed.push((
                        f,
                        Observation {
                            bits,
                            len,
                            source,
                            time: span_time,
                            learnable: !unexplained,
                        },
                    ));
                }
                for h in &hits {
                    let explained = match (&field, c.ruleset.rules.get(h.rule)) {
                        (Some(f), Some(r)) => {
                            self.context.explains(tenant, ctx, f, r.family, bits, len)
                        }
                        _ => None,
                    };
                    let mut ev = Evidence {
                        trace_id: s.trace_id(),
                        span_id: s.span_id(),
                        attribute: input.attribute.to_string(),
                        snippet: snippet::minimize(&decoded),
                        reason: h.reason.to_string(),
                    };
                    if let (Some(e), Some(f)) = (explained, &field) {
                        ev.reason = format!(
                            "{}; {} {} normally carries this ({})",
                            h.reason,
                            f.field(),
                            f.route,
                            if e == Explained::Pinned {
                                "pinned"
                            } else {
                                "learned"
                            }
                        );
                    }
                    match per_rule
                        .iter_mut()
                        .find(|(r, e, _)| *r == h.rule && *e == explained)
                    {
                        Some((_, _, evs)) if evs.len() < MAX_EVIDENCES => evs.push(ev),
                        Some(_) => {}
                        None => per_rule.push((h.rule, explained, vec![ev])),
                    }
                }
            }
            if span_flagged {
                // An attacking request teaches its fields nothing.
                for (_, o) in &mut observed {
                    o.learnable = false;
                }
            }
            self.context.observe(tenant, ctx, &observed);
            drop(observed);
            if correlated {
                decoded_by_span.insert(std::ptr::from_ref(s.span) as usize, kept);
                if !per_rule.is_empty() {
                    flagged.insert(std::ptr::from_ref(s.span) as usize);
                }
            }
            for (ri, explained, evs) in per_rule {
                let Some(rule) = c.ruleset.rules.get(ri) else {
                    continue;
                };
                let message = format!(
                    "{} in {} of {} ({})",
                    rule.name,
                    evs.first().map_or("", |e| e.attribute.as_str()),
                    s.service,
                    evs.first().map_or("", |e| e.reason.as_str()),
                );
                let draft = Draft {
                    time_unix_nanos: time_of(s.span.start_time_unix_nano, now_unix_nanos),
                    service: s.service,
                    subject: s.subject(),
                    evidences: evs,
                    message,
                };
                let mut f = make_finding(tenant, rule, &c.ruleset.version, draft);
                if explained.is_some() {
                    downgrade(&mut f, ctx.downgraded_confidence);
                }
                out.push(f);
            }
        }
        // Trace-correlated detectors.
        let inputs_of =
            |e: &SpanRef<'_>| match decoded_by_span.get(&(std::ptr::from_ref(e.span) as usize)) {
                Some(v) => std::borrow::Cow::Borrowed(v.as_slice()),
                None => std::borrow::Cow::Owned(correlate::entry_inputs(e)),
            };
        // Spans of these traces that earlier batches left in the memory.
        let recalled = if correlated {
            self.memory.recall(tenant, by_trace.keys(), now_unix_nanos)
        } else {
            HashMap::new()
        };
        for (trace_id, spans) in by_trace.iter().filter(|_| correlated) {
            let part = crate::memory::remember_part(spans, &|s| {
                flagged.contains(&(std::ptr::from_ref(s.span) as usize))
            });
            if !part.is_empty() {
                self.memory
                    .remember(tenant, *trace_id, part, now_unix_nanos);
            }
            let mut combined;
            let trace: &[SpanRef<'_>] = match recalled.get(trace_id) {
                Some(parts) => {
                    combined = spans.clone();
                    for p in parts {
                        combined.extend(span::spans(p));
                    }
                    &combined
                }
                None => spans,
            };
            let current = |r: &SpanRef<'_>| spans.iter().any(|s| std::ptr::eq(s.span, r.span));
            for conf in correlate::correlate_cow(trace, &inputs_of) {
                // Pairs of two remembered spans were reported when the later one arrived.
                if !current(&conf.entry) && !current(&conf.sink) {
                    continue;
                }
                let Some(rule) = c.rule_for(conf.matcher) else {
                    continue;
                };
                let snip = snippet::minimize(&conf.input);
                let evidences = vec![
                    Evidence {
                        trace_id: conf.entry.trace_id(),
                        span_id: conf.entry.span_id(),
                        attribute: conf.input_attribute.clone(),
                        snippet: snip.clone(),
                        reason: "request input".into(),
                    },
                    Evidence {
                        trace_id: conf.sink.trace_id(),
                        span_id: conf.sink.span_id(),
                        attribute: conf.sink_attribute.to_string(),
                        snippet: snip,
                        reason: conf.reason.to_string(),
                    },
                ];
                let message = format!(
                    "{}: input of {} reached {} in {}",
                    rule.name, conf.entry.service, conf.sink_attribute, conf.sink.service
                );
                let draft = Draft {
                    time_unix_nanos: time_of(conf.sink.span.start_time_unix_nano, now_unix_nanos),
                    service: conf.entry.service,
                    subject: conf.entry.subject(),
                    evidences,
                    message,
                };
                out.push(make_finding(tenant, rule, &c.ruleset.version, draft));
            }
        }
        // Behavioral detectors.
        self.behavior
            .observe(tenant, c, resource_spans, now_unix_nanos, &mut out);
        out
    }
}

/// Turns a finding into its downgraded form: low confidence and severity, a message that
/// says why, and a uid of its own (the same rule may also fire, undowngraded, in another
/// field of the span).
fn downgrade(f: &mut Finding, confidence: u8) {
    use sha2::{Digest, Sha256};
    f.confidence = confidence.min(f.confidence);
    f.severity = f.severity.min(Severity::Low);
    f.downgraded = true;
    f.message
        .push_str(" [downgraded: the field's normal shape]");
    f.uid = hex::encode(&Sha256::digest(format!("{}:downgraded", f.uid))[..16]);
}

fn time_of(span_start: u64, now: u64) -> u64 {
    if span_start == 0 { now } else { span_start }
}
