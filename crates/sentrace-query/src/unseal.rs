//! Read-time decryption of sensitive values, for readers allowed to see them.
//!
//! At ingest, every attribute value listed in a span's `sentrace.minimized` was replaced by
//! an envelope under the tenant's sensitive-value key (see
//! `sentrace_store::keys::sensitive`). [`unseal_sensitive`] runs after
//! [`crate::mask_sensitive`]: values of classes the reader may not see are already the fixed
//! mask text by then, so only envelopes of allowed classes are left to open, and a reader
//! allowed none of the classes never reaches the opener, so the key is never unwrapped for
//! them. A value that does not decrypt (tampered, moved, key destroyed) becomes
//! `<unreadable:CLASS>` and the error, which names the tenant and the key id, is logged.

use std::sync::Arc;

use prost::Message as _;
use sentrace_core::proto::common::v1::{AnyValue, KeyValue, any_value::Value};
use sentrace_core::sensitivity::{Place, parse_minimized};
use sentrace_core::{AttributeClass, MINIMIZED_ATTRIBUTE, TenantId};
use sentrace_store::keys::ValueContext;
use sentrace_store::keys::sensitive::is_envelope;
use sentrace_store::{KeyRing, StoreError};

use crate::SpanView;

/// Opens envelopes of one tenant (the key ring, or a test double).
pub trait SensitiveOpener: Send + Sync {
    /// The plaintext (an encoded `AnyValue`) of `envelope` sealed for `ctx`.
    fn open(&self, ctx: &ValueContext<'_>, envelope: &[u8]) -> Result<Vec<u8>, StoreError>;
}

/// The key ring's opener for one tenant.
pub struct TenantOpener {
    keys: Arc<KeyRing>,
    tenant: TenantId,
}

impl TenantOpener {
    /// Opens `tenant`'s envelopes with `keys`.
    pub fn new(keys: Arc<KeyRing>, tenant: TenantId) -> Self {
        Self { keys, tenant }
    }
}

impl SensitiveOpener for TenantOpener {
    fn open(&self, ctx: &ValueContext<'_>, envelope: &[u8]) -> Result<Vec<u8>, StoreError> {
        self.keys.open_sensitive(&self.tenant, ctx, envelope)
    }
}

/// What [`unseal_sensitive`] did to one span.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UnsealOutcome {
    /// Values decrypted.
    pub opened: usize,
    /// Values that did not decrypt (now `<unreadable:CLASS>`).
    pub unreadable: usize,
}

/// The text a value that does not decrypt is replaced with.
pub fn unreadable_text(class: AttributeClass) -> String {
    format!("<unreadable:{class}>")
}

/// Decrypts, in place, every envelope at a place the span's list names with a class
/// `allowed` grants. Call it after [`crate::mask_sensitive`] with the same `allowed`.
pub fn unseal_sensitive(
    view: &mut SpanView,
    allowed: impl Fn(AttributeClass) -> bool,
    opener: &dyn SensitiveOpener,
) -> UnsealOutcome {
    let mut out = UnsealOutcome::default();
    let Some(span) = view.rs.scope_spans.first().and_then(|ss| ss.spans.first()) else {
        return out;
    };
    let list = span
        .attributes
        .iter()
        .find(|kv| kv.key == MINIMIZED_ATTRIBUTE)
        .and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
            Value::StringValue(s) => Some(s.clone()),
            _ => None,
        });
    let Some(list) = list else {
        return out;
    };
    // An unreadable list was masked whole by `mask_sensitive`: nothing to open.
    let Ok(entries) = parse_minimized(&list) else {
        return out;
    };
    let (trace_id, span_id) = (span.trace_id.clone(), span.span_id.clone());
    let rs = &mut view.rs;
    let mut place = String::new();
    let mut done: Vec<&Place<'_>> = Vec::with_capacity(entries.len());
    for e in entries.iter().filter(|e| allowed(e.class)) {
        if done.contains(&&e.place) {
            continue;
        }
        done.push(&e.place);
        place.clear();
        e.place.write_to(&mut place);
        let shared = ValueContext {
            trace_id: &[],
            span_id: &[],
            place: &place,
        };
        let own = ValueContext {
            trace_id: &trace_id,
            span_id: &span_id,
            place: &place,
        };
        let Some(ss) = rs.scope_spans.first_mut() else {
            return out;
        };
        let (attrs, ctx) = match &e.place {
            Place::Resource(_) => (rs.resource.as_mut().map(|r| &mut r.attributes), shared),
            Place::Scope(_) => (ss.scope.as_mut().map(|s| &mut s.attributes), shared),
            Place::Span(_) => (ss.spans.first_mut().map(|s| &mut s.attributes), own),
            Place::Event { index, .. } => (
                ss.spans
                    .first_mut()
                    .and_then(|s| s.events.get_mut(usize::try_from(*index).ok()?))
                    .map(|ev| &mut ev.attributes),
                own,
            ),
            Place::Link { index, .. } => (
                ss.spans
                    .first_mut()
                    .and_then(|s| s.links.get_mut(usize::try_from(*index).ok()?))
                    .map(|l| &mut l.attributes),
                own,
            ),
            Place::Name | Place::Status | Place::Anywhere | Place::EventName(_) => (None, own),
        };
        if let (Some(attrs), Some(key)) = (attrs, e.place.key()) {
            open_attrs(attrs, key, &ctx, e.class, opener, &mut out);
        }
    }
    out
}

fn open_attrs(
    attrs: &mut [KeyValue],
    key: &str,
    ctx: &ValueContext<'_>,
    class: AttributeClass,
    opener: &dyn SensitiveOpener,
    out: &mut UnsealOutcome,
) {
    for kv in attrs.iter_mut().filter(|kv| kv.key == key) {
        let Some(Value::BytesValue(envelope)) = kv.value.as_ref().and_then(|v| v.value.as_ref())
        else {
            continue;
        };
        if !is_envelope(envelope) {
            continue;
        }
        let opened = opener.open(ctx, envelope).and_then(|plain| {
            AnyValue::decode(plain.as_slice()).map_err(|e| StoreError::Crypto {
                context: format!(
                    "sensitive value at {}: decrypted but not a value: {e}",
                    ctx.place
                ),
            })
        });
        match opened {
            Ok(v) => {
                kv.value = Some(v);
                out.opened += 1;
            }
            Err(e) => {
                tracing::error!(error = %e, "a stored sensitive value does not decrypt");
                kv.value = Some(AnyValue {
                    value: Some(Value::StringValue(unreadable_text(class))),
                });
                out.unreadable += 1;
            }
        }
    }
}
