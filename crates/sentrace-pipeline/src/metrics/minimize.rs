//! The minimize stage's counters (kept as plain atomics in the pure `sentrace-redact`),
//! exported as typed families.

use std::fmt;

use sentrace_redact::MetricsSnapshot;

use super::export::{self, Encoder};

/// Encodes a snapshot of the redactor's counters.
pub fn encode(e: &mut Encoder<'_>, s: &MetricsSnapshot) -> fmt::Result {
    export::counters(
        e,
        "sentrace_minimized_values",
        "Sensitive values minimized, by kind and action.",
        s.values
            .iter()
            .map(|(k, a, n)| ([("kind", k.to_string()), ("action", a.to_string())], *n)),
    )?;
    export::counter(
        e,
        "sentrace_minimized_spans",
        "Spans that went through minimization.",
        s.spans,
    )?;
    export::counter(
        e,
        "sentrace_minimize_allowlist_dropped",
        "Attributes dropped by allowlist mode.",
        s.allowlist_dropped,
    )?;
    export::counter(
        e,
        "sentrace_minimize_oversize",
        "String values replaced for exceeding max_value_bytes.",
        s.oversize,
    )
}
