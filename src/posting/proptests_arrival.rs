//! Property test: the end of an order's story does not depend on the order its events arrive in.
//!
//! An order's events (created, updated, payment captured, refund, cancelled), for orders
//! registered before and after `process_orders_from`, are posted in a random order, each event
//! that must wait for its order (a retryable error) being tried again after every later
//! arrival, as the worker's retries do. The end is compared with the in-order story's.
//!
//! "The same end" is the net effect on every account, not the same vouchers, and cannot be:
//! in order, a skipped order's payment is skipped and nothing is posted; a payment that came
//! first was posted, and is reversed by a voucher of its own when the order is skipped. Each
//! event's status (processed or skipped, with the worker's rule that an event whose voucher
//! was reversed that way counts as skipped) and the order's state are the same too, except
//! that a snapshot arriving after a newer one is stale (skipped as stale) whatever the story.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{Days, NaiveDate};
use proptest::prelude::*;

use super::event::{LineKind, Order, OrderCancellation, Payment, Refund, RefundLine};
use super::tests::{ctx, line, nok};
use super::*;

/// One event of the story and the day it happened (the worker's `event_date`).
#[derive(Clone, Debug)]
struct Step {
    event: Event,
    day: NaiveDate,
}

/// An order's events in the order they happened, and whether it is registered before the
/// connection's cut-off.
#[derive(Clone, Debug)]
struct Story {
    steps: Vec<Step>,
    before_cutoff: bool,
}

/// What a story ends with, as the books and an operator see it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct End {
    /// Net movement per account, zero movements left out.
    net: BTreeMap<u32, i64>,
    /// Each step's outcome, by its index in the story.
    outcomes: Vec<Outcome>,
    /// Steps whose voucher a skipped order reversed: skipped, as the worker reports them.
    set_aside: BTreeSet<usize>,
    /// The order's final state.
    state: OrderState,
    /// Every voucher posted, in order.
    vouchers: Vec<Voucher>,
}

fn noon(day: NaiveDate) -> chrono::DateTime<chrono::Utc> {
    day.and_hms_opt(10, 0, 0).expect("a valid time").and_utc()
}

fn order(version: i64, registered: NaiveDate, second_quantity: i64) -> Order {
    let lines = vec![
        line(LineKind::Goods, "SKU-A", "Kopp", 2, "100.00", 25),
        line(
            LineKind::Goods,
            "SKU-B",
            "Kaffe",
            second_quantity,
            "50.00",
            15,
        ),
    ];
    Order {
        id: "1001".into(),
        number: "1001".into(),
        version,
        registered_at: noon(registered),
        currency: "NOK".into(),
        exchange_rate: None,
        prices_include_vat: true,
        customer: None,
        lines,
        total: Money(20_000 + 5_000 * second_quantity),
        payment_method: Some("card".into()),
        cancelled: false,
    }
}

prop_compose! {
    fn stories()(
        registered_offset in -12_i64..10,
        updated in any::<bool>(),
        paid in any::<bool>(),
        fee in prop::option::of(0_i64..1_000),
        refunded in any::<bool>(),
        cancelled in any::<bool>(),
        capture_delay in 0_u64..20,
        refund_delay in 0_u64..5,
        cancel_delay in 0_u64..5,
    ) -> Story {
        let cutoff = ctx().connection.process_orders_from;
        let registered = cutoff
            .checked_add_signed(chrono::Duration::days(registered_offset))
            .expect("a valid date");
        let later = |d: NaiveDate, n: u64| d.checked_add_days(Days::new(n)).expect("a valid date");
        let mut steps = vec![Step { event: Event::Order(order(1, registered, 1)), day: registered }];
        if updated {
            let day = later(registered, 1);
            steps.push(Step { event: Event::Order(order(2, registered, 2)), day });
        }
        let captured = later(registered, capture_delay);
        if paid {
            let total = if updated { nok("300.00") } else { nok("250.00") };
            let payment = Payment {
                id: "pay-1".into(),
                order_id: "1001".into(),
                amount: total,
                currency: "NOK".into(),
                method: Some("card".into()),
                fee: fee.map(Money),
                captured_at: noon(captured),
            };
            steps.push(Step { event: Event::Payment(payment), day: captured });
        }
        let refund_day = later(captured, refund_delay);
        if refunded {
            let refund = Refund {
                id: "r-1".into(),
                order_id: "1001".into(),
                lines: vec![RefundLine { sku: "SKU-A".into(), quantity: 1, amount: nok("100.00") }],
                shipping: None,
                amount: nok("100.00"),
                currency: "NOK".into(),
                created_at: noon(refund_day),
            };
            steps.push(Step { event: Event::Refund(refund), day: refund_day });
        }
        if cancelled {
            let day = later(refund_day, cancel_delay);
            // A version above every snapshot's: a late snapshot does not undo the cancellation.
            let cancellation = OrderCancellation {
                order_id: "1001".into(),
                version: Some(3),
                cancelled_at: noon(day),
            };
            steps.push(Step { event: Event::OrderCancelled(cancellation), day });
        }
        Story { steps, before_cutoff: registered < cutoff }
    }
}

/// A story with its arrival order: the events as they happened, and a shuffle of their indexes.
fn arrivals() -> impl Strategy<Value = (Story, Vec<usize>)> {
    stories().prop_flat_map(|story| {
        let order: Vec<usize> = (0..story.steps.len()).collect();
        (Just(story), Just(order).prop_shuffle())
    })
}

/// Posts the story's events in `arrival` order. An event that must wait for its order waits,
/// and every waiting event is tried again after each event that posts.
fn run(story: &Story, arrival: &[usize]) -> End {
    let base = ctx();
    let mut state = OrderState::new("1001");
    let mut outcomes: BTreeMap<usize, Outcome> = BTreeMap::new();
    let mut posted_by: BTreeMap<String, usize> = BTreeMap::new();
    let mut set_aside = BTreeSet::new();
    let mut vouchers = Vec::new();
    let mut waiting: Vec<usize> = Vec::new();
    for &next in arrival {
        waiting.push(next);
        let mut progress = true;
        while progress {
            progress = false;
            for i in waiting.clone() {
                let step = &story.steps[i];
                let ctx = base.for_event(None, step.day);
                let posting = match post(&step.event, &ctx, &state) {
                    Ok(p) => p,
                    Err(e) if e.is_retryable() => continue,
                    Err(e) => panic!("step {i} of {arrival:?} was refused: {e}"),
                };
                for v in &posting.vouchers {
                    posted_by.insert(v.key().to_owned(), i);
                }
                if matches!(posting.outcome, Outcome::Skipped(_)) {
                    for v in &posting.vouchers {
                        let s = set_aside_reason(&posting.state, v).expect("a reversal");
                        set_aside.insert(posted_by[&s.reversed]);
                    }
                }
                vouchers.extend(posting.vouchers);
                state = posting.state;
                outcomes.insert(i, posting.outcome);
                waiting.retain(|w| *w != i);
                progress = true;
            }
        }
    }
    assert!(
        waiting.is_empty(),
        "steps {waiting:?} of {arrival:?} still wait"
    );
    let mut net: BTreeMap<u32, i64> = BTreeMap::new();
    for l in vouchers.iter().flat_map(Voucher::lines) {
        *net.entry(l.account.0).or_default() += l.amount.0;
    }
    net.retain(|_, v| *v != 0);
    End {
        net,
        outcomes: outcomes.into_values().collect(),
        set_aside,
        state,
        vouchers,
    }
}

/// The event's status as `events list` shows it.
fn status(end: &End, i: usize) -> &'static str {
    match &end.outcomes[i] {
        _ if end.set_aside.contains(&i) => "skipped",
        Outcome::Skipped(_) | Outcome::Stale => "skipped",
        _ => "processed",
    }
}

/// What of the order's state must not depend on the arrival order.
fn essence(s: &OrderState) -> impl PartialEq + std::fmt::Debug {
    (
        s.skipped.is_some(),
        s.cancelled,
        s.applied_version,
        s.payments.clone(),
        s.refunds.clone(),
        s.invoice.as_ref().map(|i| i.lines.clone()),
        s.refund_credits.clone(),
        s.posted_before_order.is_empty(),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn an_orders_events_end_the_same_in_any_arrival_order((story, arrival) in arrivals()) {
        let in_order = run(&story, &(0..story.steps.len()).collect::<Vec<_>>());
        let shuffled = run(&story, &arrival);

        prop_assert_eq!(&shuffled.net, &in_order.net, "net per account");
        for i in 0..story.steps.len() {
            let snapshot = matches!(story.steps[i].event, Event::Order(_));
            let stale = shuffled.outcomes[i] == Outcome::Stale;
            prop_assert!(
                status(&shuffled, i) == status(&in_order, i) || (snapshot && stale),
                "step {} is {} ({:?}), in order {} ({:?})",
                i, status(&shuffled, i), shuffled.outcomes[i], status(&in_order, i), in_order.outcomes[i]
            );
        }
        prop_assert_eq!(essence(&shuffled.state), essence(&in_order.state), "the order's state");

        if story.before_cutoff {
            // Skipped with its payments and refunds: in order nothing is posted; out of order
            // each voucher posted before the order arrived is reversed, exactly once.
            prop_assert!(in_order.vouchers.is_empty());
            prop_assert!(shuffled.net.is_empty(), "{:?}", shuffled.net);
            prop_assert!((0..story.steps.len()).all(|i| status(&shuffled, i) == "skipped"));
            let (reversals, early): (Vec<&Voucher>, Vec<&Voucher>) =
                shuffled.vouchers.iter().partition(|v| v.reverses().is_some());
            let reversed: Vec<&str> = reversals.iter().filter_map(|v| v.reverses()).collect();
            let keys: Vec<&str> = early.iter().map(|v| v.key()).collect();
            prop_assert_eq!(reversed, keys);
            for v in &reversals {
                prop_assert!(v.key().starts_with("reversal:"));
                let original = early.iter().find(|e| Some(e.key()) == v.reverses()).unwrap();
                prop_assert!(v.date() >= original.date());
            }
        } else {
            prop_assert!(shuffled.outcomes.iter().all(|o| !matches!(o, Outcome::Skipped(_))));
        }
    }
}

/// The case the property found first, as its own test: a payment captured on the cut-off day
/// for an order registered the day before, arriving first, is posted; the order skips and
/// reverses it.
#[test]
fn a_payment_before_its_skipped_order_is_reversed_when_the_order_arrives() {
    let ctx = ctx();
    let cutoff = ctx.connection.process_orders_from;
    let registered = cutoff.pred_opt().unwrap();
    let payment = Event::Payment(Payment {
        id: "pay-1".into(),
        order_id: "1001".into(),
        amount: nok("250.00"),
        currency: "NOK".into(),
        method: None,
        fee: Some(nok("5.00")),
        captured_at: noon(cutoff),
    });
    let paid = post(
        &payment,
        &ctx.for_event(None, cutoff),
        &OrderState::new("1001"),
    )
    .unwrap();
    assert_eq!(paid.outcome, Outcome::Posted);
    assert_eq!(paid.state.posted_before_order.len(), 1);

    let created = Event::Order(order(1, registered, 1));
    let skipped = post(&created, &ctx.for_event(None, registered), &paid.state).unwrap();
    let Outcome::Skipped(reason) = &skipped.outcome else {
        panic!("{:?}", skipped.outcome)
    };
    assert!(reason.contains("reverses payment:pay-1"), "{reason}");
    let [reversal] = skipped.vouchers.as_slice() else {
        panic!("{:?}", skipped.vouchers)
    };
    assert_eq!(reversal.key(), "reversal:payment:pay-1");
    assert_eq!(reversal.reverses(), Some("payment:pay-1"));
    assert_eq!(reversal.kind(), VoucherKind::Payment);
    assert_eq!(
        reversal.date(),
        cutoff,
        "never before the payment it reverses"
    );
    let original = &paid.vouchers[0];
    let negated: Vec<VoucherLine> = original.lines().iter().map(VoucherLine::reversed).collect();
    assert_eq!(reversal.lines(), negated.as_slice());
    assert!(skipped.state.posted_before_order.is_empty());
    let set_aside = set_aside_reason(&skipped.state, reversal).unwrap();
    assert_eq!(set_aside.reversed, "payment:pay-1");
    assert!(
        set_aside
            .reason
            .starts_with("order 1001 is skipped: registered"),
        "{}",
        set_aside.reason
    );

    // Delivered again, the payment changes nothing.
    let again = post(&payment, &ctx, &skipped.state).unwrap();
    assert_eq!(again.outcome, Outcome::Unchanged);
    assert!(again.vouchers.is_empty());
}

/// A state stored before `posted_before_order` existed still loads.
#[test]
fn a_state_stored_without_early_vouchers_loads_with_none() {
    let mut json = serde_json::to_value(OrderState::new("1001")).unwrap();
    assert!(
        json.get("posted_before_order").is_none(),
        "left out when empty"
    );
    json.as_object_mut().unwrap().remove("posted_before_order");
    let state: OrderState = serde_json::from_value(json).unwrap();
    assert!(state.posted_before_order.is_empty());
}
