//! `/metrics` in the OpenMetrics text format, written by prometheus-client.
//!
//! Counting stays where it is: in plain atomics, lock-free on the request
//! path (prometheus-client's own histogram takes a lock per observation).
//! A scrape reads them into a [`Scrape`], one scrape's values, which the
//! crate's encoder writes: names, `HELP`/`TYPE`, label escaping, the
//! `_total` suffix of counters and the closing `# EOF` are its business.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

/// The content type of what [`Scrape::render`] writes.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A sample's labels: names and values.
pub type Labels = Vec<(&'static str, String)>;

/// One scrape's values, in the order they are added.
#[derive(Debug, Default)]
pub struct Scrape {
    families: Vec<Family>,
}

#[derive(Debug)]
struct Family {
    name: &'static str,
    help: &'static str,
    samples: Samples,
}

#[derive(Debug)]
enum Samples {
    Counters(Vec<(Labels, u64)>),
    Gauges(Vec<(Labels, i64)>),
    Histogram {
        sum: f64,
        count: u64,
        /// Upper bound and the count in that bucket alone (not cumulative).
        buckets: Vec<(f64, u64)>,
    },
}

impl Scrape {
    /// A counter (`name` without `_total`: the encoder adds it).
    pub fn counter(&mut self, name: &'static str, help: &'static str, value: u64) {
        self.counters(name, help, [(Labels::new(), value)]);
    }

    /// A counter with one sample per label set.
    pub fn counters(
        &mut self,
        name: &'static str,
        help: &'static str,
        samples: impl IntoIterator<Item = (Labels, u64)>,
    ) {
        self.push(name, help, Samples::Counters(samples.into_iter().collect()));
    }

    /// A gauge.
    pub fn gauge(&mut self, name: &'static str, help: &'static str, value: i64) {
        self.gauges(name, help, [(Labels::new(), value)]);
    }

    /// A gauge with one sample per label set.
    pub fn gauges(
        &mut self,
        name: &'static str,
        help: &'static str,
        samples: impl IntoIterator<Item = (Labels, i64)>,
    ) {
        self.push(name, help, Samples::Gauges(samples.into_iter().collect()));
    }

    /// A histogram: `buckets` are each bucket's upper bound and its own
    /// count (the encoder accumulates them and adds `+Inf` as `count`).
    pub fn histogram(
        &mut self,
        name: &'static str,
        help: &'static str,
        sum: f64,
        count: u64,
        mut buckets: Vec<(f64, u64)>,
    ) {
        let counted: u64 = buckets.iter().map(|(_, n)| n).sum();
        buckets.push((f64::INFINITY, count.saturating_sub(counted)));
        self.push(
            name,
            help,
            Samples::Histogram {
                sum,
                count,
                buckets,
            },
        );
    }

    fn push(&mut self, name: &'static str, help: &'static str, samples: Samples) {
        self.families.push(Family {
            name,
            help,
            samples,
        });
    }

    /// The OpenMetrics text, every name prefixed with `prefix_`.
    pub fn render(self, prefix: &str) -> String {
        let mut registry = Registry::with_prefix(prefix);
        registry.register_collector(Box::new(self));
        let mut out = String::with_capacity(4096);
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &registry);
        out
    }
}

impl Collector for Scrape {
    fn encode(&self, mut encoder: DescriptorEncoder) -> std::fmt::Result {
        for family in &self.families {
            let kind = match family.samples {
                Samples::Counters(_) => MetricType::Counter,
                Samples::Gauges(_) => MetricType::Gauge,
                Samples::Histogram { .. } => MetricType::Histogram,
            };
            let mut metric = encoder.encode_descriptor(family.name, family.help, None, kind)?;
            match &family.samples {
                Samples::Counters(samples) => {
                    for (labels, value) in samples {
                        ConstCounter::new(*value).encode(metric.encode_family(labels)?)?;
                    }
                }
                Samples::Gauges(samples) => {
                    for (labels, value) in samples {
                        ConstGauge::new(*value).encode(metric.encode_family(labels)?)?;
                    }
                }
                Samples::Histogram {
                    sum,
                    count,
                    buckets,
                } => metric.encode_histogram::<Labels>(*sum, *count, buckets, None)?,
            }
        }
        Ok(())
    }
}

/// One label, for a sample.
pub fn label(name: &'static str, value: impl Into<String>) -> Labels {
    vec![(name, value.into())]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_openmetrics_with_labels_escaped_and_an_end() {
        let mut s = Scrape::default();
        s.counter("things", "Things seen.", 3);
        s.counters(
            "by_kind",
            "Things by kind.",
            [(label("kind", "a\"b"), 1), (label("kind", "c"), 0)],
        );
        s.gauge("open", "Open now.", 2);
        s.histogram("took_seconds", "Time.", 0.5, 3, vec![(0.1, 1), (1.0, 1)]);
        let text = s.render("mimi_test");
        assert!(text.contains("# TYPE mimi_test_things counter\n"), "{text}");
        assert!(text.contains("mimi_test_things_total 3\n"), "{text}");
        assert!(
            text.contains("mimi_test_by_kind_total{kind=\"a\\\"b\"} 1\n"),
            "{text}"
        );
        assert!(text.contains("mimi_test_open 2\n"), "{text}");
        assert!(
            text.contains("mimi_test_took_seconds_bucket{le=\"0.1\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("mimi_test_took_seconds_bucket{le=\"1.0\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("mimi_test_took_seconds_bucket{le=\"+Inf\"} 3\n"),
            "{text}"
        );
        assert!(text.contains("mimi_test_took_seconds_count 3\n"), "{text}");
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
