//! The walk over every location of a span that can hold a value.

use std::borrow::Cow;

use sentrace_core::proto::common::v1::{AnyValue, KeyValue, any_value::Value};
use sentrace_core::proto::trace::v1::ResourceSpans;
use sentrace_core::sensitivity::Place;
use sentrace_core::{ClassSet, MINIMIZED_ATTRIBUTE};

use super::record::{Record, edge_markers};
use super::{MAX_VALUE_DEPTH, MinimizeReport, POLICY_DIGEST_ATTRIBUTE};
use crate::action::{ActionCtx, Applied};
use crate::detect::{Context, Detectors, Found};
use crate::keys::{self, KeyClass};
use crate::kind::{Action, Kind};
use crate::policy::Rules;
use crate::sanitize::{Sink, Step, by_class};

/// FNV-1a: keys are short and the cache is bounded, so a fast non-keyed hash is enough
/// (a flood of colliding keys costs at most [`MAX_CACHED_KEYS`] probes per lookup).
#[derive(Clone, Copy, Default)]
struct FnvBuild;

struct Fnv(u64);

impl std::hash::Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
}

impl std::hash::BuildHasher for FnvBuild {
    type Hasher = Fnv;
    fn build_hasher(&self) -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

/// Most key classes remembered per walk (one walk per batch).
const MAX_CACHED_KEYS: usize = 1024;

/// Where a value sits in OTLP.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Location {
    /// A resource attribute.
    ResourceAttribute,
    /// An instrumentation-scope attribute.
    ScopeAttribute,
    /// The span name.
    SpanName,
    /// A span attribute.
    SpanAttribute,
    /// The span status message.
    StatusMessage,
    /// A span event name.
    EventName,
    /// A span event attribute.
    EventAttribute,
    /// A span link attribute.
    LinkAttribute,
}

impl Location {
    /// Snake-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Location::ResourceAttribute => "resource_attribute",
            Location::ScopeAttribute => "scope_attribute",
            Location::SpanName => "span_name",
            Location::SpanAttribute => "span_attribute",
            Location::StatusMessage => "status_message",
            Location::EventName => "event_name",
            Location::EventAttribute => "event_attribute",
            Location::LinkAttribute => "link_attribute",
        }
    }
}

/// One minimized value seen by an observing walk (the scan). Never holds the value.
#[derive(Clone, Debug)]
pub(crate) struct Observation {
    pub kind: Kind,
    pub rule: &'static str,
    pub location: Location,
    /// Attribute key (top level), empty for names and messages.
    pub key: String,
    /// Index of the resource, scope and span within the request.
    pub span_index: (usize, usize, usize),
}

pub(crate) struct Walk<'a> {
    det: &'a Detectors,
    rules: &'a Rules,
    act: &'a ActionCtx<'a>,
    report: &'a mut MinimizeReport,
    observe: Option<&'a mut Vec<Observation>>,
    found: Vec<Found>,
    norm: String,
    /// Key classes seen under `rules` in this batch (keys repeat across spans and resources).
    classes: std::collections::HashMap<String, KeyClass, FnvBuild>,
    scratch: String,
    can_drop: bool,
    location: Location,
    /// Index of the event or link being walked (for [`Place::Event`] and friends).
    item: u32,
    key: String,
    span_index: (usize, usize, usize),
    /// Whether to record places and stamp spans (minimizing, not observing).
    recording: bool,
    /// Classes of the sensitive values found in the attribute or text being walked.
    pending: ClassSet,
    record: Record,
    /// Where exposure is counted, and the service's index in it (minimizing with
    /// [`super::Redactor::minimize_recording`] only).
    exposure: Option<(&'a mut crate::exposure::BatchExposure, u16)>,
    /// `(kind, action)` of the values found in the attribute or text being walked (a reused
    /// buffer, folded into `exposure` with the key when the attribute is done).
    noted: Vec<(Kind, Action)>,
}

fn already_minimized(v: &str) -> bool {
    (v.starts_with('<') && v.ends_with('>')) || v.starts_with("pse:") || v.starts_with("tok:")
}

impl<'a> Walk<'a> {
    pub(crate) fn new(
        det: &'a Detectors,
        rules: &'a Rules,
        act: &'a ActionCtx<'a>,
        report: &'a mut MinimizeReport,
        observe: Option<&'a mut Vec<Observation>>,
    ) -> Self {
        Self {
            det,
            rules,
            act,
            report,
            observe,
            found: Vec::new(),
            norm: String::new(),
            classes: std::collections::HashMap::with_hasher(FnvBuild),
            scratch: String::new(),
            can_drop: true,
            location: Location::SpanAttribute,
            item: 0,
            key: String::new(),
            span_index: (0, 0, 0),
            recording: false,
            pending: ClassSet::EMPTY,
            record: Record::default(),
            exposure: None,
            noted: Vec::new(),
        }
    }

    /// Counts what this walk minimizes into `exposure`, under service index `service`.
    pub(crate) fn with_exposure(
        mut self,
        exposure: &'a mut crate::exposure::BatchExposure,
        service: u16,
    ) -> Self {
        self.exposure = Some((exposure, service));
        self
    }

    /// Walks the next resource under `rules`. The key-class cache is kept when the rules
    /// are the same ones (the common case: no override names this resource's service).
    pub(crate) fn set_rules(&mut self, rules: &'a Rules) {
        if !std::ptr::eq(self.rules, rules) {
            self.classes.clear();
            self.rules = rules;
        }
    }

    /// Counts what the next resource minimizes under `service` (interned in the batch's
    /// exposure); no-op without an exposure.
    pub(crate) fn set_exposure_service(&mut self, service: &str) {
        if let Some((ex, index)) = self.exposure.as_mut() {
            *index = ex.service(service);
        }
    }

    /// Folds the values noted since the last call into the exposure under `key`.
    fn flush_noted(&mut self, key: &str) {
        if self.noted.is_empty() {
            return;
        }
        if let Some((ex, service)) = self.exposure.as_mut() {
            for (kind, action) in self.noted.drain(..) {
                ex.add(*service, kind, action, key);
            }
        } else {
            self.noted.clear();
        }
    }

    /// Minimizes one resource's spans. When `digest` is given, stamps each span with it
    /// and with the list of minimized places ([`MINIMIZED_ATTRIBUTE`], when not empty),
    /// replacing what the span arrived with (an arriving list is merged in first).
    pub(crate) fn resource_spans(&mut self, rs: &mut ResourceSpans, digest: Option<&str>) {
        self.recording = digest.is_some();
        self.record.reset_to(Default::default());
        let ri = self.span_index.0;
        if let Some(res) = rs.resource.as_mut() {
            self.location = Location::ResourceAttribute;
            self.attrs(&mut res.attributes, false);
        }
        let resource_mark = self.record.mark();
        for (si, ss) in rs.scope_spans.iter_mut().enumerate() {
            self.record.reset_to(resource_mark);
            if let Some(scope) = ss.scope.as_mut() {
                self.location = Location::ScopeAttribute;
                self.span_index = (ri, si, 0);
                self.attrs(&mut scope.attributes, false);
            }
            let scope_mark = self.record.mark();
            for (pi, span) in ss.spans.iter_mut().enumerate() {
                self.record.reset_to(scope_mark);
                self.span_index = (ri, si, pi);
                // The reserved attributes are rewritten, not walked (an observing walk
                // works on a copy and just leaves them out).
                let mut arrived = None;
                span.attributes.retain_mut(|kv| {
                    if kv.key == MINIMIZED_ATTRIBUTE {
                        arrived = Some(kv.value.take());
                    }
                    kv.key != POLICY_DIGEST_ATTRIBUTE && kv.key != MINIMIZED_ATTRIBUTE
                });
                if let Some(list) = arrived
                    && self.recording
                {
                    self.record.merge(list.as_ref());
                }
                self.location = Location::SpanName;
                self.fixed_text(&mut span.name);
                self.location = Location::SpanAttribute;
                self.attrs(&mut span.attributes, true);
                for (ei, ev) in span.events.iter_mut().enumerate() {
                    self.item = u32::try_from(ei).unwrap_or(u32::MAX);
                    self.location = Location::EventName;
                    self.fixed_text(&mut ev.name);
                    self.location = Location::EventAttribute;
                    self.attrs(&mut ev.attributes, true);
                }
                for (li, link) in span.links.iter_mut().enumerate() {
                    self.item = u32::try_from(li).unwrap_or(u32::MAX);
                    self.location = Location::LinkAttribute;
                    self.attrs(&mut link.attributes, true);
                }
                if let Some(st) = span.status.as_mut() {
                    self.location = Location::StatusMessage;
                    self.fixed_text(&mut st.message);
                }
                if let Some(d) = digest {
                    span.attributes
                        .push(string_kv(POLICY_DIGEST_ATTRIBUTE, d.to_string()));
                    if let Some(list) = self.record.value() {
                        span.attributes.push(string_kv(MINIMIZED_ATTRIBUTE, list));
                    }
                }
                self.report.spans += 1;
            }
        }
        self.span_index.0 = ri + 1;
    }

    /// Records the classes found in the value just walked at the current location.
    fn record_pending(&mut self, key: &str) {
        let classes = std::mem::take(&mut self.pending);
        if classes.is_empty() || !self.recording {
            return;
        }
        let key = Cow::Borrowed(key);
        let place = match self.location {
            Location::ResourceAttribute => Place::Resource(key),
            Location::ScopeAttribute => Place::Scope(key),
            Location::SpanAttribute => Place::Span(key),
            Location::EventAttribute => Place::Event {
                index: self.item,
                key,
            },
            Location::LinkAttribute => Place::Link {
                index: self.item,
                key,
            },
            Location::SpanName => Place::Name,
            Location::StatusMessage => Place::Status,
            Location::EventName => Place::EventName(self.item),
        };
        self.record.add(&place, classes);
    }

    /// A string that cannot be removed (span name, event name, status message).
    fn fixed_text(&mut self, s: &mut String) {
        self.key.clear();
        self.can_drop = false;
        self.pending = ClassSet::EMPTY;
        self.string(KeyClass::Plain, s);
        if !self.pending.is_empty() {
            self.record_pending("");
        }
        if !self.noted.is_empty() {
            let place = match self.location {
                Location::StatusMessage => crate::exposure::KEY_STATUS_MESSAGE,
                Location::EventName => crate::exposure::KEY_EVENT_NAME,
                _ => crate::exposure::KEY_SPAN_NAME,
            };
            self.flush_noted(place);
        }
        self.can_drop = true;
    }

    fn attrs(&mut self, attrs: &mut Vec<KeyValue>, allowlist: bool) {
        attrs.retain_mut(|kv| {
            if self.rules.is_ignored(&kv.key) {
                return true;
            }
            if allowlist && !self.rules.is_allowed(&kv.key) {
                self.report.allowlist_dropped += 1;
                return false;
            }
            if self.observe.is_some() {
                self.key.clear();
                self.key.push_str(&kv.key);
            }
            let class = self.classify(&kv.key);
            self.pending = ClassSet::EMPTY;
            let keep = match kv.value.as_mut() {
                Some(v) => self.any(class, v, 0) == Step::Keep,
                None => true,
            };
            if !self.pending.is_empty() {
                self.record_pending(&kv.key);
            }
            if !self.noted.is_empty() {
                self.flush_noted(&kv.key);
            }
            if !keep {
                self.report.dropped += 1;
            }
            keep
        });
    }

    fn any(&mut self, class: KeyClass, v: &mut AnyValue, depth: usize) -> Step {
        if depth > MAX_VALUE_DEPTH {
            v.value = Some(Value::StringValue("<too_deep>".into()));
            self.report.oversize += 1;
            return Step::Keep;
        }
        let Some(inner) = v.value.as_mut() else {
            return Step::Keep;
        };
        match inner {
            Value::StringValue(s) => self.string(class, s),
            Value::BoolValue(_) | Value::StringValueStrindex(_) => Step::Keep,
            Value::IntValue(i) => {
                let sensitive = matches!(class, KeyClass::Sensitive(_));
                // Only long integers can be a card, phone or SSN.
                if !sensitive && i.unsigned_abs() < 1_000_000 {
                    return Step::Keep;
                }
                let mut text = i.to_string();
                let step = self.string(class, &mut text);
                if step == Step::Keep && text != i.to_string() {
                    *inner = Value::StringValue(text);
                }
                step
            }
            Value::DoubleValue(d) => {
                if let KeyClass::Sensitive(_) = class {
                    let mut text = d.to_string();
                    let step = self.string(class, &mut text);
                    if step == Step::Keep {
                        *inner = Value::StringValue(text);
                    }
                    return step;
                }
                Step::Keep
            }
            Value::BytesValue(b) => {
                let mut text = match (class, std::str::from_utf8(b)) {
                    (_, Ok(s)) => s.to_string(),
                    (KeyClass::Sensitive(_), Err(_)) => hex::encode(&b),
                    (_, Err(_)) => return Step::Keep,
                };
                let before = text.clone();
                let step = self.string(class, &mut text);
                if step == Step::Keep && text != before {
                    *inner = Value::StringValue(text);
                }
                step
            }
            Value::ArrayValue(arr) => {
                let before = arr.values.len();
                arr.values
                    .retain_mut(|e| self.any(class, e, depth + 1) == Step::Keep);
                self.report.dropped += (before - arr.values.len()) as u64;
                Step::Keep
            }
            Value::KvlistValue(kvl) => {
                let before = kvl.values.len();
                kvl.values.retain_mut(|e| {
                    let c = match class {
                        KeyClass::Sensitive(_) => class,
                        _ => self.classify(&e.key),
                    };
                    match e.value.as_mut() {
                        Some(v) => self.any(c, v, depth + 1) == Step::Keep,
                        None => true,
                    }
                });
                self.report.dropped += (before - kvl.values.len()) as u64;
                Step::Keep
            }
        }
    }

    /// Minimizes a string in place.
    fn string(&mut self, class: KeyClass, s: &mut String) -> Step {
        if s.len() > self.rules.max_value_bytes {
            *s = "<too_long>".into();
            self.report.oversize += 1;
            return Step::Keep;
        }
        // Fast path: free text with nothing detected is left untouched, without copying.
        // Nothing any detector finds is shorter than 6 bytes. Markers of values minimized
        // upstream are looked for by the detectors' keyword pass, and confirmed here.
        if let KeyClass::Plain | KeyClass::Infra = class {
            if s.len() < 6 {
                // `<ip>`, `<dob>`: a short marker opens with `<`.
                if self.recording && s.len() >= 4 && s.as_bytes().contains(&b'<') {
                    self.pending.extend(edge_markers(s));
                }
                return Step::Keep;
            }
            let ctx = Context {
                infra_key: class == KeyClass::Infra,
                ..Context::default()
            };
            self.found.clear();
            let marked = self.det.find_noting_markers(s, ctx, &mut self.found);
            if marked && self.recording {
                self.pending.extend(edge_markers(s));
            }
            if self.found.is_empty() {
                return Step::Keep;
            }
        } else if self.recording && s.len() >= 4 {
            self.pending.extend(edge_markers(s));
        }
        let mut out = std::mem::take(&mut self.scratch);
        out.clear();
        let step = by_class(self, class, s, &mut out);
        if step == Step::Keep && out != *s {
            std::mem::swap(s, &mut out);
        }
        self.scratch = out;
        step
    }

    fn note(&mut self, kind: Kind, action: Action, rule: &'static str) {
        self.report.values[kind.index()][action.index()] += 1;
        if self.exposure.is_some() {
            self.noted.push((kind, action));
        }
        if let Some(class) = kind.class() {
            self.pending.insert(class);
        }
        if let Some(obs) = self.observe.as_mut() {
            obs.push(Observation {
                kind,
                rule,
                location: self.location,
                key: self.key.clone(),
                span_index: self.span_index,
            });
        }
    }

    fn apply(&mut self, kind: Kind, rule: &'static str, v: &str, out: &mut String) -> Step {
        let action = self.rules.action(kind);
        self.note(kind, action, rule);
        match self.act.apply(action, kind, v, self.can_drop) {
            Applied::Keep => {
                out.push_str(v);
                Step::Keep
            }
            Applied::Drop => Step::Drop,
            Applied::Replace(r) => {
                out.push_str(&r);
                Step::Keep
            }
        }
    }
}

impl Sink for Walk<'_> {
    fn value(&mut self, kind: Kind, v: &str, out: &mut String) -> Step {
        if v.trim().is_empty() || already_minimized(v) {
            out.push_str(v);
            return Step::Keep;
        }
        self.apply(kind, "key-name", v, out)
    }

    fn text(&mut self, v: &str, ctx: Context, out: &mut String) -> Step {
        let mut found = std::mem::take(&mut self.found);
        found.clear();
        self.det.find(v, ctx, &mut found);
        let mut cursor = 0usize;
        let mut step = Step::Keep;
        for f in &found {
            out.push_str(&v[cursor..f.start]);
            if self.apply(f.kind, f.rule, &v[f.start..f.end], out) == Step::Drop {
                step = Step::Drop;
                break;
            }
            cursor = f.end;
        }
        if step == Step::Keep {
            out.push_str(&v[cursor..]);
        }
        self.found = found;
        step
    }

    fn classify(&mut self, key: &str) -> KeyClass {
        if let Some(c) = self.classes.get(key) {
            return *c;
        }
        keys::normalize_into(key, &mut self.norm);
        let c = self.rules.classify(&self.norm);
        // Bounded, so that hostile batches with endless distinct keys cost only CPU.
        if self.classes.len() < MAX_CACHED_KEYS && key.len() <= 256 {
            self.classes.insert(key.to_string(), c);
        }
        c
    }

    fn sanitize_sql(&self) -> bool {
        self.rules.sanitize_sql && self.rules.action(Kind::SqlLiteral) != Action::Keep
    }

    fn sql_literal(&mut self) {
        self.note(Kind::SqlLiteral, Action::Mask, "sql-literal");
    }
}

fn string_kv(key: &str, value: String) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue {
            value: Some(Value::StringValue(value)),
        }),
        ..Default::default()
    }
}
