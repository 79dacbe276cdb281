//! The `detect` pipeline stage: enforce responses in force, detect, respond.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use sentrace_core::proto::common::v1::{AnyValue, KeyValue, any_value};
use sentrace_core::proto::trace::v1::ResourceSpans;
use sentrace_core::{Batch, Stage, StageError};
use sentrace_detect::response::Action;

use super::Runtime;

/// Runs before `minimize`, on raw values in memory.
pub struct DetectStage {
    rt: Arc<Runtime>,
}

impl DetectStage {
    /// A stage over a started runtime.
    pub fn new(rt: Arc<Runtime>) -> Self {
        Self { rt }
    }
}

/// Adds `tags` to the spans `pick(trace_hex, span_hex)` selects; with `replace` an existing
/// attribute of the same key is left alone instead of duplicated. Returns spans tagged.
pub fn tag_spans(
    resource_spans: &mut [ResourceSpans],
    pick: impl Fn(&str, &str) -> bool,
    tags: &[(&str, &str)],
    replace: bool,
) -> usize {
    let mut n = 0;
    for rs in resource_spans {
        for ss in &mut rs.scope_spans {
            for span in &mut ss.spans {
                if !pick(&hex::encode(&span.trace_id), &hex::encode(&span.span_id)) {
                    continue;
                }
                for (k, v) in tags {
                    if replace && span.attributes.iter().any(|a| a.key == *k) {
                        continue;
                    }
                    span.attributes.push(KeyValue {
                        key: (*k).to_string(),
                        value: Some(AnyValue {
                            value: Some(any_value::Value::StringValue((*v).to_string())),
                        }),
                        ..Default::default()
                    });
                }
                n += 1;
            }
        }
    }
    n
}

impl Stage for DetectStage {
    fn name(&self) -> &'static str {
        "detect"
    }

    fn process(&self, batch: &mut Batch) -> Result<(), StageError> {
        let now = batch.context.received_at_unix_nanos;
        if let Some(r) = &self.rt.response {
            r.enforce(batch, now)?;
        }
        self.rt.metrics.batches.fetch_add(1, Relaxed);
        let findings =
            self.rt
                .detector
                .inspect(&batch.context.identity.tenant, &batch.resource_spans, now);
        let mut kept = Vec::with_capacity(findings.len());
        for mut f in findings {
            f.subject.principal = Some(batch.context.identity.principal.clone());
            let evidence: HashSet<String> = f
                .evidences
                .iter()
                .filter_map(|e| e.span_id.map(|s| s.to_hex()))
                .collect();
            let actions = self.rt.on_finding(&f, now);
            for a in actions {
                if let Action::TagTrace { trace_id, tags } = &a.action {
                    let trace = trace_id.to_hex();
                    let tags: Vec<(&str, &str)> =
                        tags.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                    tag_spans(
                        &mut batch.resource_spans,
                        |t, s| t == trace && (evidence.is_empty() || evidence.contains(s)),
                        &tags,
                        true,
                    );
                }
            }
            kept.push(f);
        }
        self.rt
            .findings
            .push_all(&batch.context.identity.tenant, kept);
        Ok(())
    }
}
