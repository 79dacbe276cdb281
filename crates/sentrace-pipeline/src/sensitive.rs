//! The `sensitive` stage: every attribute value that minimization listed in
//! `sentrace.minimized` is encrypted under the tenant's sensitive-value key (see
//! `sentrace_store::keys::sensitive`) before the span is encoded, sealed and stored.
//!
//! So the WAL and the blocks hold only envelopes for those values, under a key that the
//! read path unwraps only for a principal allowed to view the value's class. The span
//! that is hashed into the transparency log is the span as stored, envelopes included:
//! `verify` needs no sensitive-value key, and erasing that key leaves the log checkable.
//!
//! What is encrypted: the values of attributes at the list's `resource:`, `scope:`,
//! `span:`, `event[i]:` and `link[i]:` places (the whole top-level value, any type; the
//! envelope carries its protobuf encoding). Not encrypted: the span name, status message
//! and event names (strings the minimizer already rewrote; the reader masks them by
//! class), the resource's `service.name` (the index and the service scope need it), the
//! list itself and the policy digest, and nothing is done for the overflow place `*`
//! (readers mask the whole span by class then).

use std::sync::Arc;

use prost::Message as _;
use sentrace_core::proto::common::v1::{AnyValue, KeyValue, any_value::Value};
use sentrace_core::proto::trace::v1::{ResourceSpans, Span};
use sentrace_core::sensitivity::{POLICY_DIGEST_ATTRIBUTE, Place, parse_minimized};
use sentrace_core::{Batch, MINIMIZED_ATTRIBUTE, Stage, StageError};
use sentrace_store::keys::{SensitiveKey, ValueContext};
use sentrace_store::{KeyRing, StoreError};

/// The resource attribute that stays in clear whatever the list says.
const SERVICE_NAME: &str = "service.name";

/// Encrypts listed values under the tenant's sensitive-value key.
pub struct SensitiveStage {
    keys: Arc<KeyRing>,
}

impl SensitiveStage {
    /// A stage over the node's key ring.
    pub fn new(keys: Arc<KeyRing>) -> Self {
        Self { keys }
    }
}

impl Stage for SensitiveStage {
    fn name(&self) -> &'static str {
        "sensitive"
    }

    fn process(&self, batch: &mut Batch) -> Result<(), StageError> {
        let listed = batch
            .resource_spans
            .iter()
            .flat_map(|rs| &rs.scope_spans)
            .flat_map(|ss| &ss.spans)
            .any(|s| list_of(s).is_some());
        if !listed {
            return Ok(());
        }
        let tenant = &batch.context.identity.tenant;
        let key = self
            .keys
            .sensitive_key_for_write(tenant)
            .map_err(|e| failed(tenant, e))?;
        for rs in &mut batch.resource_spans {
            seal_resource_spans(&key, rs).map_err(|e| failed(tenant, e))?;
        }
        Ok(())
    }
}

fn failed(tenant: &sentrace_core::TenantId, e: StoreError) -> StageError {
    match e {
        StoreError::TenantErased { .. } => StageError::Forbidden(e.to_string()),
        // Fail closed: without the key the batch is not stored at all.
        other => StageError::Internal(format!(
            "sensitive-value key of tenant {tenant} unavailable: {other}"
        )),
    }
}

/// The span's non-empty list, if it has one.
fn list_of(span: &Span) -> Option<&str> {
    span.attributes
        .iter()
        .find(|kv| kv.key == MINIMIZED_ATTRIBUTE)
        .and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
            Value::StringValue(s) if !s.is_empty() => Some(s.as_str()),
            _ => None,
        })
}

/// Seals the listed values of every span of `rs`, and the listed resource and scope
/// attributes once (many spans share them; their lists repeat the same entries).
fn seal_resource_spans(key: &SensitiveKey, rs: &mut ResourceSpans) -> Result<(), StoreError> {
    let mut resource_keys: Vec<String> = Vec::new();
    let mut place = String::new();
    for ss in &mut rs.scope_spans {
        let mut scope_keys: Vec<String> = Vec::new();
        for span in &mut ss.spans {
            let Some(list) = list_of(span).map(str::to_owned) else {
                continue;
            };
            // The list was written by the minimizer just now; one that does not parse is
            // read as "every class anywhere" and masked whole by readers.
            let Ok(entries) = parse_minimized(&list) else {
                continue;
            };
            let mut done: Vec<&Place<'_>> = Vec::with_capacity(entries.len());
            for e in &entries {
                if done.contains(&&e.place) {
                    continue;
                }
                done.push(&e.place);
                place.clear();
                e.place.write_to(&mut place);
                let ctx = ValueContext {
                    trace_id: &span.trace_id,
                    span_id: &span.span_id,
                    place: &place,
                };
                match &e.place {
                    Place::Resource(k) => push_unique(&mut resource_keys, k),
                    Place::Scope(k) => push_unique(&mut scope_keys, k),
                    Place::Span(k) if k != MINIMIZED_ATTRIBUTE && k != POLICY_DIGEST_ATTRIBUTE => {
                        seal_attrs(key, &mut span.attributes, k, &ctx)?;
                    }
                    Place::Event { index, key: k } => {
                        if let Some(ev) = usize::try_from(*index)
                            .ok()
                            .and_then(|i| span.events.get_mut(i))
                        {
                            seal_attrs(key, &mut ev.attributes, k, &ctx)?;
                        }
                    }
                    Place::Link { index, key: k } => {
                        if let Some(link) = usize::try_from(*index)
                            .ok()
                            .and_then(|i| span.links.get_mut(i))
                        {
                            seal_attrs(key, &mut link.attributes, k, &ctx)?;
                        }
                    }
                    _ => {}
                }
            }
        }
        if let Some(scope) = ss.scope.as_mut() {
            for k in &scope_keys {
                seal_shared(key, &mut scope.attributes, "scope:", k)?;
            }
        }
    }
    if let Some(res) = rs.resource.as_mut() {
        for k in resource_keys.iter().filter(|k| *k != SERVICE_NAME) {
            seal_shared(key, &mut res.attributes, "resource:", k)?;
        }
    }
    Ok(())
}

fn push_unique(keys: &mut Vec<String>, k: &str) {
    if !keys.iter().any(|x| x == k) {
        keys.push(k.to_string());
    }
}

/// Seals a resource or scope attribute (no trace or span id in its context).
fn seal_shared(
    key: &SensitiveKey,
    attrs: &mut [KeyValue],
    prefix: &str,
    k: &str,
) -> Result<(), StoreError> {
    let mut place = String::from(prefix);
    sentrace_core::sensitivity::escape_key(k, &mut place);
    let ctx = ValueContext {
        trace_id: &[],
        span_id: &[],
        place: &place,
    };
    seal_attrs(key, attrs, k, &ctx)
}

/// Replaces the value of every attribute named `k` with its envelope.
fn seal_attrs(
    key: &SensitiveKey,
    attrs: &mut [KeyValue],
    k: &str,
    ctx: &ValueContext<'_>,
) -> Result<(), StoreError> {
    for kv in attrs.iter_mut().filter(|kv| kv.key == k) {
        let Some(value) = kv.value.as_ref() else {
            continue;
        };
        let envelope = key.seal(ctx, &value.encode_to_vec())?;
        kv.value = Some(AnyValue {
            value: Some(Value::BytesValue(envelope)),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests;
