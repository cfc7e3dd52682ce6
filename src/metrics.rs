//! Prometheus metrics, served at `/metrics` in the text format on the metrics listener
//! ([`crate::http::metrics`]).
//!
//! One [`Metrics`] per process, cloned into whatever records; a test app gets its own, so tests
//! running side by side do not count each other's requests.
//!
//! Labels stay bounded: no metric is labelled by connection. A hosted receiver serves thousands
//! of shops, and a series per shop and outcome would grow every Prometheus that scrapes it with
//! each new shop; what one shop sent is in its event list (console, `GET /api/v1/events`).

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Labels of the webhook request counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// `accepted`, `ping`, `unknown_connection`, or the problem slug of the rejection.
    pub outcome: &'static str,
}

/// Labels of the confirm latency histogram.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ConfirmLabels {
    /// `ack` or `failed`.
    pub result: &'static str,
}

/// Labels of the events gauge.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StatusLabels {
    /// `processing` or `failed`.
    pub status: String,
}

/// Labels of the queue depth gauge.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QueueLabels {
    /// `events` or `dead`.
    pub queue: &'static str,
}

/// Labels of the replay counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReplayLabels {
    /// `dlq` or `events`.
    pub source: String,
    /// What became of the event (`republished`, `posted`, `duplicate`, ...).
    pub result: String,
}

struct Inner {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    confirm_seconds: Family<ConfirmLabels, Histogram>,
    events: Family<StatusLabels, Gauge>,
    queue_messages: Family<QueueLabels, Gauge>,
    replayed: Family<ReplayLabels, Counter>,
    overpaid: Counter,
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
            "Webhook requests by outcome",
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
        let events = Family::<StatusLabels, Gauge>::default();
        registry.register(
            "events",
            "Events being processed and failed events, read at scrape time (cached for seconds)",
            events.clone(),
        );
        let queue_messages = Family::<QueueLabels, Gauge>::default();
        registry.register(
            "queue_messages",
            "Messages ready in the events queue and the dead-letter queue, read at scrape time (cached for seconds)",
            queue_messages.clone(),
        );
        let replayed = Family::<ReplayLabels, Counter>::default();
        registry.register(
            "replayed_events",
            "Events replayed through this process's admin API, by source and result",
            replayed.clone(),
        );
        let overpaid = Counter::default();
        registry.register(
            "overpaid_payments",
            "Payments posted that took more than their order owed (a customer credit), counted by this process's worker",
            overpaid.clone(),
        );
        Metrics {
            inner: Arc::new(Inner {
                registry,
                requests,
                confirm_seconds,
                events,
                queue_messages,
                replayed,
                overpaid,
            }),
        }
    }

    /// Counts one webhook request.
    pub fn request(&self, outcome: &'static str) {
        self.inner
            .requests
            .get_or_create(&RequestLabels { outcome })
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

    /// The current value of the request counter for an outcome (for tests).
    #[must_use]
    pub fn requests_of(&self, outcome: &'static str) -> u64 {
        self.inner
            .requests
            .get_or_create(&RequestLabels { outcome })
            .get()
    }

    /// Sets the events gauge from `(status, count)` rows; statuses not listed read 0.
    pub fn set_events(&self, rows: &[(String, i64)]) {
        for status in crate::db::admin::GAUGED_STATUSES {
            let n = rows
                .iter()
                .find(|(s, _)| s == status)
                .map_or(0, |(_, n)| *n);
            self.inner
                .events
                .get_or_create(&StatusLabels {
                    status: status.to_owned(),
                })
                .set(n);
        }
    }

    /// Sets the depth of `queue` (`events` or `dead`).
    pub fn set_queue(&self, queue: &'static str, messages: u32) {
        self.inner
            .queue_messages
            .get_or_create(&QueueLabels { queue })
            .set(i64::from(messages));
    }

    /// Counts the events of a replay report by result.
    pub fn replayed(&self, report: &crate::ops::ReplayReport) {
        for e in &report.events {
            let result = serde_json::to_value(e.result)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            self.inner
                .replayed
                .get_or_create(&ReplayLabels {
                    source: report.source.clone(),
                    result,
                })
                .inc();
        }
    }

    /// Counts `n` payments flagged as overpaid.
    pub fn overpaid(&self, n: u64) {
        self.inner.overpaid.inc_by(n);
    }

    /// How many payments this process flagged as overpaid (for tests and the CLI).
    #[must_use]
    pub fn overpaid_count(&self) -> u64 {
        self.inner.overpaid.get()
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
