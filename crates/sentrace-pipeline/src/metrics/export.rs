//! How a component exports counters it keeps itself (plain atomics, often in a pure crate)
//! through the typed registry: an [`Export`] closure encodes them at scrape time with
//! `prometheus-client`'s encoder, so no component writes exposition text by hand.
//!
//! Counter names are given without `_total`: the encoder appends it (OpenMetrics), so
//! `counter(e, "sentrace_audit_records", …)` is scraped as `sentrace_audit_records_total`.

use std::fmt;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{
    DescriptorEncoder, EncodeLabelSet, EncodeLabelValue, EncodeMetric, LabelValueEncoder,
};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

/// The encoder a component writes its families to.
pub type Encoder<'a> = DescriptorEncoder<'a>;

/// A component's families, encoded at each scrape.
pub struct Export<F>(F);

impl<F> fmt::Debug for Export<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Export").finish_non_exhaustive()
    }
}

impl<F> Collector for Export<F>
where
    F: Fn(&mut Encoder<'_>) -> fmt::Result + Send + Sync + 'static,
{
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        (self.0)(&mut encoder)
    }
}

/// Boxes `f` as a collector for [`Registry::register_collector`].
pub fn collector<F>(f: F) -> Box<dyn Collector>
where
    F: Fn(&mut Encoder<'_>) -> fmt::Result + Send + Sync + 'static,
{
    Box::new(Export(f))
}

/// The exposition of `f` alone (tests, and the witness's own `/metrics`).
pub fn render<F>(f: F) -> String
where
    F: Fn(&mut Encoder<'_>) -> fmt::Result + Send + Sync + 'static,
{
    let mut r = Registry::default();
    r.register_collector(collector(f));
    let mut out = String::new();
    // Writing into a String cannot fail; a collector's error ends the text early.
    let _ = prometheus_client::encoding::text::encode(&mut out, &r);
    out
}

/// A label value from configuration or a credential (sink, witness, tenant names):
/// escaped as the exposition format requires (`prometheus-client` writes values verbatim).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Escaped<'a>(pub &'a str);

impl EncodeLabelValue for Escaped<'_> {
    fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> fmt::Result {
        use fmt::Write;
        for c in self.0.chars() {
            match c {
                '\\' => encoder.write_str("\\\\")?,
                '"' => encoder.write_str("\\\"")?,
                '\n' => encoder.write_str("\\n")?,
                c => encoder.write_char(c)?,
            }
        }
        Ok(())
    }
}

/// One unlabelled counter (`name` without `_total`).
pub fn counter(e: &mut Encoder<'_>, name: &str, help: &str, value: u64) -> fmt::Result {
    ConstCounter::new(value).encode(e.encode_descriptor(name, help, None, MetricType::Counter)?)
}

/// A labelled counter family (`name` without `_total`).
pub fn counters<L: EncodeLabelSet>(
    e: &mut Encoder<'_>,
    name: &str,
    help: &str,
    series: impl IntoIterator<Item = (L, u64)>,
) -> fmt::Result {
    let mut m = e.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (labels, v) in series {
        ConstCounter::new(v).encode(m.encode_family(&labels)?)?;
    }
    Ok(())
}

/// One unlabelled gauge.
pub fn gauge(e: &mut Encoder<'_>, name: &str, help: &str, value: f64) -> fmt::Result {
    ConstGauge::new(value).encode(e.encode_descriptor(name, help, None, MetricType::Gauge)?)
}

/// One unlabelled gauge of an integer quantity.
pub fn gauge_u64(e: &mut Encoder<'_>, name: &str, help: &str, value: u64) -> fmt::Result {
    let v = i64::try_from(value).unwrap_or(i64::MAX);
    ConstGauge::new(v).encode(e.encode_descriptor(name, help, None, MetricType::Gauge)?)
}

/// A labelled gauge family.
pub fn gauges<L: EncodeLabelSet>(
    e: &mut Encoder<'_>,
    name: &str,
    help: &str,
    series: impl IntoIterator<Item = (L, f64)>,
) -> fmt::Result {
    let mut m = e.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (labels, v) in series {
        ConstGauge::new(v).encode(m.encode_family(&labels)?)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_get_total_and_label_values_are_escaped() {
        let text = render(|e| {
            counter(e, "x_events", "Events.", 3)?;
            counters(
                e,
                "x_sinks",
                "Per sink.",
                [([("sink", Escaped("a\"b\\c\nd"))], 2)],
            )?;
            gauge_u64(e, "x_depth", "Depth.", 7)
        });
        assert!(text.contains("# TYPE x_events counter\n"), "{text}");
        assert!(text.contains("\nx_events_total 3\n"), "{text}");
        assert!(
            text.contains("x_sinks_total{sink=\"a\\\"b\\\\c\\nd\"} 2\n"),
            "{text}"
        );
        assert!(text.contains("\nx_depth 7\n"), "{text}");
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
