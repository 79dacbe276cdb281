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

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use sentrace_core::proto::resource::v1::Resource;
    use sentrace_core::proto::trace::v1::{ResourceSpans, ScopeSpans, Span};
    use sentrace_store::MasterKey;

    /// The ring's opener, counting every call.
    struct Counting {
        inner: TenantOpener,
        calls: AtomicUsize,
    }

    impl SensitiveOpener for Counting {
        fn open(&self, ctx: &ValueContext<'_>, envelope: &[u8]) -> Result<Vec<u8>, StoreError> {
            self.calls.fetch_add(1, Ordering::Relaxed);
            self.inner.open(ctx, envelope)
        }
    }

    fn kv(k: &str, v: Value) -> KeyValue {
        KeyValue {
            key: k.into(),
            value: Some(AnyValue { value: Some(v) }),
            ..Default::default()
        }
    }

    fn tag<'a>(v: &'a SpanView, k: &str) -> &'a Value {
        let a = v.span().attributes.iter().find(|a| a.key == k).unwrap();
        a.value.as_ref().unwrap().value.as_ref().unwrap()
    }

    /// A stored span: two sealed values (pii, financial), as the write path leaves them.
    fn stored(ring: &KeyRing, tenant: &TenantId, flip: bool) -> SpanView {
        let key = ring.sensitive_key_for_write(tenant).unwrap();
        let (trace_id, span_id) = (vec![1u8; 16], vec![2u8; 8]);
        let seal = |place: &str, v: Value| {
            let ctx = ValueContext {
                trace_id: &trace_id,
                span_id: &span_id,
                place,
            };
            let plain = AnyValue { value: Some(v) }.encode_to_vec();
            let mut env = key.seal(&ctx, &plain).unwrap();
            if flip {
                let last = env.len() - 1;
                env[last] ^= 1;
            }
            Value::BytesValue(env)
        };
        let span = Span {
            trace_id: trace_id.clone(),
            span_id: span_id.clone(),
            name: "op".into(),
            attributes: vec![
                kv(
                    "user.email",
                    seal("span:user.email", Value::StringValue("pse:email:ab".into())),
                ),
                kv(
                    "card",
                    seal("span:card", Value::StringValue("<card>".into())),
                ),
                kv(
                    MINIMIZED_ATTRIBUTE,
                    Value::StringValue("span:user.email=pii;span:card=financial".into()),
                ),
            ],
            ..Default::default()
        };
        SpanView::new(ResourceSpans {
            resource: Some(Resource {
                attributes: vec![kv("service.name", Value::StringValue("svc".into()))],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans: vec![span],
                ..Default::default()
            }],
            ..Default::default()
        })
        .unwrap()
    }

    #[test]
    fn masked_first_then_only_allowed_classes_are_opened() {
        let dir = tempfile::tempdir().unwrap();
        let mk = MasterKey::generate().unwrap();
        let tenant = TenantId::new("acme").unwrap();
        let ring = Arc::new(KeyRing::open(dir.path(), &mk).unwrap());
        let mut views = [stored(&ring, &tenant, false), stored(&ring, &tenant, false)];
        // A fresh ring: nothing unwrapped yet.
        let ring = Arc::new(KeyRing::open(dir.path(), &mk).unwrap());
        let opener = Counting {
            inner: TenantOpener::new(ring.clone(), tenant.clone()),
            calls: AtomicUsize::new(0),
        };

        // No sensitive class: every value masked, the opener never called.
        let none = |_: AttributeClass| false;
        crate::mask_sensitive(&mut views[0], none);
        assert_eq!(
            unseal_sensitive(&mut views[0], none, &opener),
            UnsealOutcome::default()
        );
        assert_eq!(opener.calls.load(Ordering::Relaxed), 0);
        assert_eq!(ring.sensitive_key_stats().unwraps, 0);
        assert_eq!(
            tag(&views[0], "user.email"),
            &Value::StringValue("<redacted:pii>".into())
        );

        // pii only: the e-mail pseudonym is opened, the card stays masked.
        let pii = |c: AttributeClass| c == AttributeClass::Pii;
        crate::mask_sensitive(&mut views[1], pii);
        let out = unseal_sensitive(&mut views[1], pii, &opener);
        assert_eq!(out.opened, 1);
        assert_eq!(opener.calls.load(Ordering::Relaxed), 1);
        assert_eq!(ring.sensitive_key_stats().unwraps, 1);
        assert_eq!(
            tag(&views[1], "user.email"),
            &Value::StringValue("pse:email:ab".into())
        );
        assert_eq!(
            tag(&views[1], "card"),
            &Value::StringValue("<redacted:financial>".into())
        );

        // A flipped byte reads as unreadable, never as garbage.
        let mut bad = stored(&ring, &tenant, true);
        let all = |_: AttributeClass| true;
        let out = unseal_sensitive(&mut bad, all, &opener);
        assert_eq!(out.unreadable, 2);
        assert_eq!(
            tag(&bad, "user.email"),
            &Value::StringValue("<unreadable:pii>".into())
        );
    }
}
