//! The ingest pipeline: the one place where stages are registered, in order, and where a
//! batch flows through them once before it is stored.
//!
//! ```text
//! authenticate (transport) → validate → verify-source → [detect] → [minimize] → encode → commit ([seal +] store)
//! ```
//!
//! Spans are encoded once; the commit step ([`crate::commit`]) is the registry's last entry.
//! When sealing, it hashes those very bytes (the manifest's `span_root`) once the store has
//! admitted the batch, and queues the WAL record under the log's lock, so the manifest
//! shares the spans' WAL record (see [`crate::seal`]).
//!
//! Authentication happens at the transport edge, because it produces the [`Identity`] the
//! batch is built with. Every later capability is one [`Stage`] added in [`stages`].

use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use prost::Message;
use sentrace_core::proto::trace::v1::ResourceSpans;
use sentrace_core::{
    Batch, BatchContext, Identity, Limits, SourceInfo, SpanId, Stage, StageError, TraceId,
    canonical,
};
use sentrace_redact::{MinimizeStage, Redactor};
use sentrace_store::{KeyRing, SpanEntry, StoreError, Vault};

use crate::commit::Commit;
use crate::config::MinimizeConfig;
use crate::metrics::{Metrics, export};
use crate::secrets::KeyRingSecrets;

/// The `validate` stage: every limit of [`Limits`], failing closed.
pub struct ValidateStage {
    limits: Limits,
}

impl Stage for ValidateStage {
    fn name(&self) -> &'static str {
        "validate"
    }

    fn process(&self, batch: &mut Batch) -> Result<(), StageError> {
        self.limits
            .validate(&batch.resource_spans, batch.context.received_at_unix_nanos)
            .map_err(|e| StageError::Invalid(e.to_string()))
    }
}

/// A stage's own metric families, encoded at each scrape (see [`crate::metrics::export`]).
pub type Exporter = Box<dyn prometheus_client::collector::Collector>;

/// The registered stages, in order, the commit step that ends them, and their metric
/// exporters.
pub struct Registry {
    /// Stages in the order they run.
    pub stages: Vec<Arc<dyn Stage>>,
    /// What makes a batch durable once every stage has passed it (see [`crate::commit`]).
    pub commit: Arc<dyn Commit>,
    /// Metric exporters of the stages that have them.
    pub exporters: Vec<Exporter>,
    /// What the minimize stage found per tenant (None when minimization is off).
    pub exposure: Option<Arc<sentrace_redact::ExposureLog>>,
}

/// The stages in the order they run, then `commit` (see [`crate::commit::for_store`]).
/// This is the only place that knows the order.
pub fn stages(
    limits: &Limits,
    minimize: &MinimizeConfig,
    keys: Arc<KeyRing>,
    vault: Arc<Vault>,
    detect: Option<Arc<crate::detect::Runtime>>,
    sources: Arc<crate::sources::Sources>,
    commit: Arc<dyn Commit>,
) -> anyhow::Result<Registry> {
    let mut stages: Vec<Arc<dyn Stage>> = vec![Arc::new(ValidateStage {
        limits: limits.clone(),
    })];
    let mut exporters: Vec<Exporter> = Vec::new();
    let mut exposure = None;
    // Source signatures cover the spans as sent, so they are checked before any stage
    // changes them.
    stages.push(Arc::new(crate::sources::SourceStage::new(sources.clone())));
    exporters.push(export::collector(move |e| sources.encode_metrics(e)));
    // Detection reads raw values, so it runs before minimization.
    if let Some(rt) = detect {
        stages.push(Arc::new(crate::detect::DetectStage::new(rt.clone())));
        exporters.push(export::collector(move |e| rt.encode_metrics(e)));
    }
    if minimize.enabled {
        let policy = minimize.policy()?;
        let redactor = Arc::new(
            Redactor::new(policy)
                .map_err(|e| anyhow::anyhow!("building the minimization policy: {e}"))?,
        );
        let r = redactor.clone();
        exporters.push(export::collector(move |e| {
            crate::metrics::minimize::encode(e, &r.metrics())
        }));
        let log = Arc::new(sentrace_redact::ExposureLog::new(
            minimize.exposure_max_rows_per_tenant,
            crate::config::EXPOSURE_MAX_TENANTS,
        ));
        exposure = Some(log.clone());
        stages.push(Arc::new(
            MinimizeStage::new(redactor, Arc::new(KeyRingSecrets::new(keys.clone(), vault)))
                .with_exposure(log),
        ));
        // Right after minimization, before anything is encoded, sealed or stored.
        if minimize.sensitive_key {
            stages.push(Arc::new(crate::sensitive::SensitiveStage::new(keys)));
        }
    } else {
        tracing::warn!("[minimize] enabled = false: spans are stored without minimization");
    }
    Ok(Registry {
        stages,
        commit,
        exporters,
        exposure,
    })
}

/// What a successful export reports back (OTLP partial success).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct IngestOutcome {
    /// Spans stored.
    pub accepted: u64,
    /// Spans set aside by a stage.
    pub rejected: u64,
    /// Why spans were set aside; empty when none were.
    pub message: String,
    /// The batch's place in its tenant's transparency log, if it was sealed.
    pub receipt: Option<crate::seal::Receipt>,
}

/// Stages plus the commit step.
pub struct Pipeline {
    stages: Vec<Arc<dyn Stage>>,
    commit: Arc<dyn Commit>,
    metrics: Arc<Metrics>,
    durable: Option<Arc<crate::durable::DurableWrites>>,
}

fn now_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

impl Pipeline {
    /// A pipeline over `stages` that ends in `commit` (both from the [`Registry`]).
    pub fn new(
        stages: Vec<Arc<dyn Stage>>,
        commit: Arc<dyn Commit>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            stages,
            commit,
            metrics,
            durable: None,
        }
    }

    /// Awaits the writes the stages queued (vault, journals, response audit) before each
    /// batch is stored: see [`crate::durable`].
    pub fn with_durable(mut self, durable: Option<Arc<crate::durable::DurableWrites>>) -> Self {
        self.durable = durable;
        self
    }

    /// Runs one export request through every stage, then stores it. Returns only after the
    /// spans are durable. `source` holds the signed-source headers, if the request had them.
    pub async fn ingest(
        &self,
        identity: Identity,
        source: Option<SourceInfo>,
        resource_spans: Vec<ResourceSpans>,
    ) -> Result<IngestOutcome, StageError> {
        let tenant = identity.tenant.clone();
        let mut context = BatchContext::new(identity, now_nanos());
        context.source = source;
        let mut batch = Batch {
            context,
            resource_spans,
        };
        let mark = self.durable.as_ref().map(|d| d.mark());
        for stage in &self.stages {
            let started = Instant::now();
            let res = stage.process(&mut batch);
            self.metrics.stage_duration(stage.name(), started.elapsed());
            if let Err(e) = res {
                match &e {
                    StageError::Invalid(_) | StageError::Forbidden(_) => {
                        self.metrics.ingest_invalid()
                    }
                    StageError::Exhausted { .. } => self.metrics.ingest_busy(),
                    StageError::Internal(msg) => {
                        tracing::error!(stage = stage.name(), error = %msg, "stage failed");
                        self.metrics.ingest_internal();
                    }
                }
                return Err(e);
            }
        }
        let started = Instant::now();
        if let (Some(d), Some(m)) = (&self.durable, mark)
            && let Err(e) = d
                .wait_since(m)
                .await
                .inspect(|_| self.metrics.stage_duration("durable", started.elapsed()))
        {
            tracing::error!(error = %e, "a durable write of a stage failed; batch not stored");
            self.metrics.ingest_internal();
            return Err(e);
        }
        let started = Instant::now();
        let entries = encode_entries(&batch)?;
        self.metrics.stage_duration("encode", started.elapsed());
        let accepted = entries.len() as u64;
        let mut receipt = None;
        if !entries.is_empty() {
            let started = Instant::now();
            let committed = self.commit.commit(&batch.context, entries).await;
            self.metrics.stage_duration("commit", started.elapsed());
            receipt = committed.map_err(|e| match e {
                StoreError::Busy { retry_after } => {
                    self.metrics.ingest_busy();
                    StageError::Exhausted {
                        message: "the store is busy; retry later".into(),
                        retry_after,
                    }
                }
                other => {
                    let step = self.commit.name();
                    tracing::error!(error = %other, commit = step, "store append failed");
                    self.metrics.ingest_internal();
                    StageError::Internal(other.to_string())
                }
            })?;
        }
        let rejected = batch.context.rejected_spans;
        self.metrics.ingest_accepted(&tenant, accepted, rejected);
        Ok(IngestOutcome {
            accepted,
            rejected,
            message: batch.context.warnings.join("; "),
            receipt,
        })
    }
}

/// Encodes every span once, canonically, into one buffer for the whole batch (each entry's
/// bytes are a slice of it: one allocation per batch instead of several per span), and
/// derives the index fields from the decoded span already in hand (no re-parse). The batch
/// is sized first (each span once, its length kept for the encoding), so the buffer is
/// allocated at its final size and never grows by reallocation.
fn encode_entries(batch: &Batch) -> Result<Vec<SpanEntry>, StageError> {
    let spans = batch.span_count();
    let encoders: Vec<_> = batch
        .resource_spans
        .iter()
        .map(|rs| {
            let scopes: Vec<Vec<u8>> = rs
                .scope_spans
                .iter()
                .map(canonical::ResourceEncoder::scope)
                .collect();
            (canonical::ResourceEncoder::new(rs), scopes)
        })
        .collect();
    let mut lens = Vec::with_capacity(spans);
    let mut total = 0usize;
    for (rs, (encoder, scopes)) in batch.resource_spans.iter().zip(&encoders) {
        for (ss, scope) in rs.scope_spans.iter().zip(scopes) {
            for span in &ss.spans {
                let len = span.encoded_len();
                total = total.saturating_add(encoder.encoded_len(ss, scope, len));
                lens.push(len);
            }
        }
    }
    let mut buf = Vec::with_capacity(total);
    let mut ends = Vec::with_capacity(spans);
    // The same walk as the sizing pass: the n-th span has the n-th length.
    let mut lens = lens.iter();
    for (rs, (encoder, scopes)) in batch.resource_spans.iter().zip(&encoders) {
        for (ss, scope) in rs.scope_spans.iter().zip(scopes) {
            for (span, len) in ss.spans.iter().zip(lens.by_ref()) {
                encoder.encode_sized(&mut buf, ss, scope, span, *len);
                ends.push(buf.len());
            }
        }
    }
    debug_assert_eq!(buf.len(), total);
    let buf = Bytes::from(buf);
    let mut out = Vec::with_capacity(spans);
    let mut ends = ends.into_iter();
    let mut start = 0;
    for rs in &batch.resource_spans {
        let service = sentrace_core::otlp::service_name(rs.resource.as_ref());
        for span in rs.scope_spans.iter().flat_map(|ss| &ss.spans) {
            let end = ends.next().unwrap_or(start);
            let invalid = |e: sentrace_core::IdError| StageError::Invalid(e.to_string());
            out.push(SpanEntry {
                trace_id: TraceId::from_slice(&span.trace_id).map_err(invalid)?,
                span_id: SpanId::from_slice(&span.span_id).map_err(invalid)?,
                parent_span_id: if span.parent_span_id.is_empty() {
                    None
                } else {
                    Some(SpanId::from_slice(&span.parent_span_id).map_err(invalid)?)
                },
                service: service.to_string(),
                name: span.name.clone(),
                kind: span.kind,
                start_unix_nanos: span.start_time_unix_nano,
                end_unix_nanos: span.end_time_unix_nano,
                canonical: buf.slice(start..end),
                seal: None,
            });
            start = end;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sentrace_core::proto::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
    use sentrace_core::proto::resource::v1::Resource;
    use sentrace_core::proto::trace::v1::{ScopeSpans, Span};
    use sentrace_core::{Identity, TenantId};

    fn kv(k: &str, v: &str) -> KeyValue {
        KeyValue {
            key: k.into(),
            value: Some(AnyValue {
                value: Some(any_value::Value::StringValue(v.into())),
            }),
            ..Default::default()
        }
    }

    fn span(n: u8, attrs: usize) -> Span {
        Span {
            trace_id: vec![n; 16],
            span_id: vec![n; 8],
            parent_span_id: if n.is_multiple_of(2) {
                vec![n + 1; 8]
            } else {
                vec![]
            },
            name: format!("op{n}"),
            attributes: (0..attrs)
                .map(|i| kv(&format!("k{i}"), &"v".repeat(i * 40)))
                .collect(),
            start_time_unix_nano: 1,
            end_time_unix_nano: 2,
            ..Default::default()
        }
    }

    /// Every entry's bytes, sliced out of the one batch buffer, are exactly the span's own
    /// canonical encoding, across resources, scopes, schema URLs and span sizes.
    #[test]
    fn batch_buffer_slices_are_each_spans_canonical_bytes() {
        let resource = |svc: &str| {
            Some(Resource {
                attributes: vec![kv("service.name", svc)],
                ..Default::default()
            })
        };
        let rs = vec![
            ResourceSpans {
                resource: resource("a"),
                scope_spans: vec![
                    ScopeSpans {
                        scope: Some(InstrumentationScope {
                            name: "lib".into(),
                            ..Default::default()
                        }),
                        spans: vec![span(1, 0), span(2, 30)],
                        schema_url: "s".into(),
                    },
                    ScopeSpans::default(),
                    ScopeSpans {
                        spans: vec![span(3, 3)],
                        ..Default::default()
                    },
                ],
                schema_url: "r".into(),
            },
            ResourceSpans::default(),
            ResourceSpans {
                resource: resource("b"),
                scope_spans: vec![ScopeSpans {
                    spans: vec![span(4, 1)],
                    ..Default::default()
                }],
                ..Default::default()
            },
        ];
        let tenant = TenantId::new("t").unwrap();
        let batch = Batch {
            context: BatchContext::new(Identity::new(tenant, "p", sentrace_core::Role::Ingest), 1),
            resource_spans: rs.clone(),
        };
        let entries = encode_entries(&batch).unwrap();
        let mut expect = Vec::new();
        for r in &rs {
            for ss in &r.scope_spans {
                for s in &ss.spans {
                    expect.push((canonical::encode(r, ss, s), s.name.clone()));
                }
            }
        }
        assert_eq!(entries.len(), 4);
        for (e, (bytes, name)) in entries.iter().zip(&expect) {
            assert_eq!(&e.canonical[..], &bytes[..], "span {name}");
            assert_eq!(&e.name, name);
            assert_eq!(
                SpanEntry::from_canonical(e.canonical.clone())
                    .unwrap()
                    .service,
                e.service
            );
        }
        assert_eq!(entries[3].service, "b");
    }
}
