//! The realistic event mix that `bench ingest`, `bench worker` and `bench all` send: native
//! orders of varying size, payments, order updates arriving before their original, payments
//! arriving before their order, and a shop's retries of events it already sent.

use std::ops::RangeInclusive;

use chrono::{DateTime, Utc};

use crate::channel::Channel;
use crate::samples::{self, Sample};

/// One event of the mix, for the connection at index `conn` of the caller's list.
#[derive(Clone, Debug)]
pub struct MixEvent {
    /// Index of the connection it is sent on.
    pub conn: usize,
    /// The event itself.
    pub sample: Sample,
    /// True when it repeats an earlier event of the mix (same id, same body).
    pub retry: bool,
}

/// Shape of a mix.
#[derive(Clone, Debug)]
pub struct MixShape {
    /// Connections the orders are spread over (round robin by order).
    pub connections: usize,
    /// Extra goods lines per order: the body grows by ~135 bytes a line (3 ≈ 1.1 KB,
    /// 17 ≈ 3 KB); orders cycle through the range.
    pub extra_lines: RangeInclusive<usize>,
    /// Every n-th event repeats an earlier one (a shop's retry); 0 for none.
    pub retry_every: usize,
    /// Order ids start with this, so that several mixes can share connections.
    pub order_prefix: String,
}

impl MixShape {
    /// Events over `connections` with bodies of 1–3 KB and one retry in twenty (5 %).
    #[must_use]
    pub fn realistic(connections: usize, order_prefix: &str) -> Self {
        MixShape {
            connections: connections.max(1),
            extra_lines: 3..=17,
            retry_every: 20,
            order_prefix: order_prefix.to_owned(),
        }
    }
}

/// `n` events: every order is `order.created`; every tenth is also updated, and the update comes
/// first (the original is then stale); every fourth is paid, and every eighth payment arrives
/// before its order (the payment is held on the customer until the invoice meets it); one event
/// in `retry_every` repeats an earlier one.
#[must_use]
pub fn build(n: usize, shape: &MixShape, now: DateTime<Utc>) -> Vec<MixEvent> {
    let mut out: Vec<MixEvent> = Vec::with_capacity(n);
    let mut pending = std::collections::VecDeque::new();
    let mut order = 0usize;
    while out.len() < n {
        let i = out.len();
        if shape.retry_every > 0 && i % shape.retry_every == shape.retry_every - 1 {
            let mut again = out[i / 2].clone();
            again.retry = true;
            out.push(again);
            continue;
        }
        if pending.is_empty() {
            order += 1;
            pending.extend(order_events(order, shape, now));
        }
        out.extend(pending.pop_front());
    }
    out
}

/// The events of the `order`-th order, in the order they are sent.
fn order_events(order: usize, shape: &MixShape, now: DateTime<Utc>) -> Vec<MixEvent> {
    let sizes: Vec<usize> = shape.extra_lines.clone().collect();
    let conn = order % shape.connections.max(1);
    let id = format!("{}{order}", shape.order_prefix);
    let extra = sizes.get(order % sizes.len().max(1)).copied().unwrap_or(3);
    let created = samples::order(Channel::Nettbutikk, &id, now, extra);
    let payment = order
        .is_multiple_of(4)
        .then(|| samples::payment(&id, samples::order_total(extra), now));
    let early_payment = order.is_multiple_of(8);
    let mut sent = Vec::with_capacity(4);
    if early_payment {
        sent.extend(payment.clone());
    }
    if order.is_multiple_of(10) {
        sent.push(samples::order_update(&created));
    }
    sent.push(created);
    if !early_payment {
        sent.extend(payment);
    }
    sent.into_iter()
        .map(|sample| MixEvent {
            conn,
            sample,
            retry: false,
        })
        .collect()
}

/// How many different events `mix` holds (retries counted once).
#[must_use]
pub fn distinct(mix: &[MixEvent]) -> usize {
    mix.iter().filter(|e| !e.retry).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mix_has_retries_early_payments_and_updates_before_their_original() {
        let mix = build(2_000, &MixShape::realistic(8, "T"), Utc::now());
        assert_eq!(mix.len(), 2_000);
        let retries = mix.iter().filter(|e| e.retry).count();
        assert_eq!(retries, 100, "5 % retries");
        let ids: std::collections::HashSet<_> = mix
            .iter()
            .map(|e| (e.conn, e.sample.event_id.clone()))
            .collect();
        assert_eq!(ids.len(), distinct(&mix));
        let pos = |id: &str| mix.iter().position(|e| e.sample.event_id == id).unwrap();
        let created = |order: &str| {
            let number = format!("\"number\":\"{order}\"");
            mix.iter()
                .position(|e| {
                    e.sample.topic == "order.created"
                        && String::from_utf8_lossy(&e.sample.body).contains(&number)
                })
                .unwrap()
        };
        assert!(pos("evt_pay_T8") < created("T8"), "an early payment");
        assert!(
            pos("evt_pay_T4") > created("T4"),
            "a payment after its order"
        );
        let update = mix
            .iter()
            .position(|e| e.sample.topic == "order.updated")
            .unwrap();
        let original = mix[update]
            .sample
            .event_id
            .trim_end_matches("-v2")
            .to_owned();
        assert!(pos(&original) > update, "an update before its original");
        let sizes: Vec<usize> = mix
            .iter()
            .filter(|e| e.sample.topic == "order.created")
            .map(|e| e.sample.body.len())
            .collect();
        assert!(sizes.iter().all(|s| (900..=3_100).contains(s)), "{sizes:?}");
    }
}
