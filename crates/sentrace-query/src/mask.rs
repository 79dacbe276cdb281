//! Read-time masking of single-span views: values by sensitivity class, and whole spans
//! outside the reader's service scope.
//!
//! Both functions are pure and work on a decoded [`SpanView`]; the query service calls them
//! after authorization decided what the principal may see, before the answer is shaped.
//!
//! - [`mask_sensitive`] reads the span's [`MINIMIZED_ATTRIBUTE`] list (written by the
//!   minimizer at ingest, stored and sealed with the span) and replaces every listed value
//!   whose class the reader may not see with a fixed text, `<redacted:CLASS>`, whatever its
//!   stored form (kept plain text, `<kind>` mask, `pse:` pseudonym, `tok:` token,
//!   generalized or truncated value). The list itself is **kept** in the answer: it names
//!   keys and classes only, never values, and lets a console show which values were
//!   masked and why. A list that does not parse is treated as "every class anywhere"
//!   (fail closed).
//! - [`placeholder`] turns a span into a placeholder that keeps the trace tree and nothing
//!   else (see its docs for the exact fields).

use sentrace_core::proto::common::v1::{AnyValue, KeyValue, any_value::Value};
use sentrace_core::proto::resource::v1::Resource;
use sentrace_core::proto::trace::v1::{ScopeSpans, Span, span::Link};
use sentrace_core::sensitivity::{MinimizedEntry, POLICY_DIGEST_ATTRIBUTE, Place, parse_minimized};
use sentrace_core::{AttributeClass, ClassSet, MINIMIZED_ATTRIBUTE};

use crate::SpanView;

/// The name and service name of a placeholder span.
pub const HIDDEN: &str = "<hidden>";

/// The attribute (`true`) that marks a placeholder span, so clients can render it as such.
pub const PLACEHOLDER_ATTRIBUTE: &str = "sentrace.placeholder";

/// What [`mask_sensitive`] did to one span.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MaskOutcome {
    /// Values replaced by a mask (attribute values, span name, status message, event
    /// names). Listed values that are no longer in the span (dropped) are not counted.
    pub masked: usize,
    /// The classes of the masked values.
    pub classes: ClassSet,
    /// The span's list did not parse, so every value was treated as listed in every class.
    pub list_unreadable: bool,
}

/// Masks every value listed in the span's [`MINIMIZED_ATTRIBUTE`] whose class `allowed`
/// refuses. Everything else is left as it is; a span without a list is left whole.
///
/// A place listed in several refused classes is masked with the most severe one
/// (secret, then financial, then pii). A listed key absent from the span, or an event
/// or link index past the end, is skipped. `*` (the writer's overflow entry, or an
/// unreadable list) masks every attribute value, the span name, the status message and
/// event names, except the resource's `service.name` (the service scope is enforced by
/// [`placeholder`], not here), the list itself and the policy digest.
pub fn mask_sensitive(
    view: &mut SpanView,
    allowed: impl Fn(AttributeClass) -> bool,
) -> MaskOutcome {
    let mut outcome = MaskOutcome::default();
    let Some(span) = view.rs.scope_spans.first().and_then(|ss| ss.spans.first()) else {
        return outcome;
    };
    let Some(list) = span
        .attributes
        .iter()
        .find(|kv| kv.key == MINIMIZED_ATTRIBUTE)
    else {
        return outcome;
    };
    let text = match list.value.as_ref().and_then(|v| v.value.as_ref()) {
        Some(Value::StringValue(s)) => Some(s.clone()),
        _ => None,
    };
    let parsed = text.as_deref().map(parse_minimized);
    let mut entries: Vec<MinimizedEntry<'_>> = match parsed {
        Some(Ok(entries)) => entries,
        Some(Err(_)) | None => {
            outcome.list_unreadable = true;
            AttributeClass::ALL
                .into_iter()
                .map(|class| MinimizedEntry {
                    place: Place::Anywhere,
                    class,
                })
                .collect()
        }
    };
    entries.retain(|e| !allowed(e.class));
    if entries.is_empty() {
        return outcome;
    }
    // Most severe first: a value is masked once, with the first class that reaches it.
    entries.sort_by_key(|e| std::cmp::Reverse(severity(e.class)));
    let mut m = Masker {
        outcome: &mut outcome,
    };
    for e in &entries {
        m.entry(&mut view.rs, e);
    }
    outcome
}

/// Rank of a class when several refused classes reach one value.
fn severity(c: AttributeClass) -> u8 {
    match c {
        AttributeClass::Pii => 0,
        AttributeClass::Financial => 1,
        AttributeClass::Secret => 2,
    }
}

struct Masker<'o> {
    outcome: &'o mut MaskOutcome,
}

impl Masker<'_> {
    fn entry(
        &mut self,
        rs: &mut sentrace_core::proto::trace::v1::ResourceSpans,
        e: &MinimizedEntry<'_>,
    ) {
        let class = e.class;
        let Some(ss) = rs.scope_spans.first_mut() else {
            return;
        };
        match &e.place {
            Place::Resource(key) => {
                if let Some(res) = rs.resource.as_mut() {
                    self.attrs_with_key(&mut res.attributes, key, class);
                }
            }
            Place::Scope(key) => {
                if let Some(scope) = ss.scope.as_mut() {
                    self.attrs_with_key(&mut scope.attributes, key, class);
                }
            }
            Place::Span(key) => {
                if key != MINIMIZED_ATTRIBUTE
                    && let Some(span) = ss.spans.first_mut()
                {
                    self.attrs_with_key(&mut span.attributes, key, class);
                }
            }
            Place::Event { index, key } => {
                if let Some(ev) = event(ss, *index) {
                    self.attrs_with_key(&mut ev.attributes, key, class);
                }
            }
            Place::EventName(index) => {
                if let Some(ev) = event(ss, *index) {
                    self.text(&mut ev.name, class);
                }
            }
            Place::Link { index, key } => {
                let link = ss
                    .spans
                    .first_mut()
                    .and_then(|s| s.links.get_mut(usize::try_from(*index).ok()?));
                if let Some(link) = link {
                    self.attrs_with_key(&mut link.attributes, key, class);
                }
            }
            Place::Name => {
                if let Some(span) = ss.spans.first_mut() {
                    self.text(&mut span.name, class);
                }
            }
            Place::Status => {
                if let Some(st) = ss.spans.first_mut().and_then(|s| s.status.as_mut()) {
                    self.text(&mut st.message, class);
                }
            }
            Place::Anywhere => {
                if let Some(res) = rs.resource.as_mut() {
                    self.attrs_except(&mut res.attributes, &["service.name"], class);
                }
                if let Some(scope) = ss.scope.as_mut() {
                    self.attrs_except(&mut scope.attributes, &[], class);
                }
                let Some(span) = ss.spans.first_mut() else {
                    return;
                };
                self.text(&mut span.name, class);
                if let Some(st) = span.status.as_mut() {
                    self.text(&mut st.message, class);
                }
                self.attrs_except(
                    &mut span.attributes,
                    &[MINIMIZED_ATTRIBUTE, POLICY_DIGEST_ATTRIBUTE],
                    class,
                );
                for ev in &mut span.events {
                    self.text(&mut ev.name, class);
                    self.attrs_except(&mut ev.attributes, &[], class);
                }
                for link in &mut span.links {
                    self.attrs_except(&mut link.attributes, &[], class);
                }
            }
        }
    }

    fn attrs_with_key(&mut self, attrs: &mut [KeyValue], key: &str, class: AttributeClass) {
        for kv in attrs.iter_mut().filter(|kv| kv.key == key) {
            self.value(kv, class);
        }
    }

    fn attrs_except(&mut self, attrs: &mut [KeyValue], keep: &[&str], class: AttributeClass) {
        for kv in attrs
            .iter_mut()
            .filter(|kv| !keep.contains(&kv.key.as_str()))
        {
            self.value(kv, class);
        }
    }

    fn value(&mut self, kv: &mut KeyValue, class: AttributeClass) {
        let already = matches!(
            kv.value.as_ref().and_then(|v| v.value.as_ref()),
            Some(Value::StringValue(s)) if is_mask(s)
        );
        if already {
            return;
        }
        kv.value = Some(AnyValue {
            value: Some(Value::StringValue(class.mask_text().to_string())),
        });
        self.count(class);
    }

    fn text(&mut self, s: &mut String, class: AttributeClass) {
        if s.is_empty() || is_mask(s) {
            return;
        }
        *s = class.mask_text().to_string();
        self.count(class);
    }

    fn count(&mut self, class: AttributeClass) {
        self.outcome.masked += 1;
        self.outcome.classes.insert(class);
    }
}

fn event(
    ss: &mut ScopeSpans,
    index: u32,
) -> Option<&mut sentrace_core::proto::trace::v1::span::Event> {
    ss.spans
        .first_mut()?
        .events
        .get_mut(usize::try_from(index).ok()?)
}

fn is_mask(s: &str) -> bool {
    AttributeClass::ALL.iter().any(|c| c.mask_text() == s)
}

/// Turns the view into a placeholder for a span outside the reader's service scope.
///
/// Kept: trace id, span id, parent span id, flags, kind, start and end time, and each
/// link's trace id, span id and flags (the tree and its timing). Replaced: the span name
/// and the resource's `service.name` by [`HIDDEN`] (so Jaeger UI still draws the tree).
/// Removed: every other resource attribute, the scope (name, version, attributes), the
/// span's attributes, events, status (code and message), trace state, link attributes
/// and trace states, schema URLs and dropped counts. One attribute is added,
/// [`PLACEHOLDER_ATTRIBUTE`] = `true`.
pub fn placeholder(view: &mut SpanView) {
    let Some(span) = view.rs.scope_spans.first().and_then(|ss| ss.spans.first()) else {
        return;
    };
    let links = span
        .links
        .iter()
        .map(|l| Link {
            trace_id: l.trace_id.clone(),
            span_id: l.span_id.clone(),
            flags: l.flags,
            ..Default::default()
        })
        .collect();
    let hidden = Span {
        trace_id: span.trace_id.clone(),
        span_id: span.span_id.clone(),
        parent_span_id: span.parent_span_id.clone(),
        flags: span.flags,
        kind: span.kind,
        start_time_unix_nano: span.start_time_unix_nano,
        end_time_unix_nano: span.end_time_unix_nano,
        name: HIDDEN.to_string(),
        attributes: vec![KeyValue {
            key: PLACEHOLDER_ATTRIBUTE.to_string(),
            value: Some(AnyValue {
                value: Some(Value::BoolValue(true)),
            }),
            ..Default::default()
        }],
        links,
        ..Default::default()
    };
    view.rs = sentrace_core::proto::trace::v1::ResourceSpans {
        resource: Some(Resource {
            attributes: vec![KeyValue {
                key: "service.name".to_string(),
                value: Some(AnyValue {
                    value: Some(Value::StringValue(HIDDEN.to_string())),
                }),
                ..Default::default()
            }],
            ..Default::default()
        }),
        scope_spans: vec![ScopeSpans {
            scope: None,
            spans: vec![hidden],
            schema_url: String::new(),
        }],
        schema_url: String::new(),
    };
}

#[cfg(test)]
mod tests;
