//! Prometheus metrics, served at `/metrics` in the text format.
//!
//! One [`Metrics`] per process, cloned into whatever records; a test app gets its own, so tests
//! running side by side do not count each other's requests.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Labels of the webhook request counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// The connection id, or `unknown` for ids that are not connections (bounded cardinality).
    pub connection: String,
    /// `accepted`, `ping`, `unknown_connection`, or the problem slug of the rejection.
    pub outcome: &'static str,
}

/// Labels of the confirm latency histogram.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ConfirmLabels {
    /// `ack` or `failed`.
    pub result: &'static str,
}

struct Inner {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    confirm_seconds: Family<ConfirmLabels, Histogram>,
}

/// The process's metrics; cheap to clone.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh registry with every shopbridge metric registered.
    #[must_use]
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("shopbridge");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "webhook_requests",
            "Webhook requests by connection and outcome",
            requests.clone(),
        );
        // 0.25 ms .. ~4 s: a local confirm takes about a millisecond, a sick broker seconds.
        let confirm_seconds = Family::<ConfirmLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.000_25, 2.0, 15))
        });
        registry.register(
            "publish_confirm_seconds",
            "Time from publish to the broker's confirm",
            confirm_seconds.clone(),
        );
        Metrics {
            inner: Arc::new(Inner {
                registry,
                requests,
                confirm_seconds,
            }),
        }
    }

    /// Counts one webhook request.
    pub fn request(&self, connection: String, outcome: &'static str) {
        self.inner
            .requests
            .get_or_create(&RequestLabels {
                connection,
                outcome,
            })
            .inc();
    }

    /// Records one publish's confirm latency.
    pub fn confirm(&self, elapsed: Duration, ok: bool) {
        let result = if ok { "ack" } else { "failed" };
        self.inner
            .confirm_seconds
            .get_or_create(&ConfirmLabels { result })
            .observe(elapsed.as_secs_f64());
    }

    /// The current value of the request counter for a label pair (for tests and the CLI).
    #[must_use]
    pub fn requests_of(&self, connection: &str, outcome: &'static str) -> u64 {
        self.inner
            .requests
            .get_or_create(&RequestLabels {
                connection: connection.to_owned(),
                outcome,
            })
            .get()
    }

    /// Every metric in the Prometheus text format.
    #[must_use]
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.inner.registry);
        out
    }
}
