//! Scenario tests of [`super::post`]: the worked example of DESIGN.md §3, and the order of
//! events, corrections, cancellations and skips around it.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;

use super::event::{
    Customer, LineKind, Order, OrderCancellation, OrderLine, Payment, Refund, RefundLine,
};
use super::*;

pub(super) fn day(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

pub(super) fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

pub(super) fn nok(s: &str) -> Money {
    Money::parse(s).unwrap()
}

pub(super) fn ctx() -> Context {
    Context {
        base_currency: "NOK".into(),
        connection: ConnectionSettings {
            id: Uuid::from_u128(1),
            prepaid_account: AccountNo(1522),
            department: None,
            location: None,
            process_orders_from: day(2026, 2, 1),
            locked_period_policy: LockedPeriodPolicy::DeadLetter,
            max_order_amount: DEFAULT_MAX_ORDER_AMOUNT,
        },
        accounts: default_accounts().iter().map(|a| a.number).collect(),
        vat: VatTable::norwegian(),
        rules: default_rules(),
        system: SystemAccounts::default(),
        exchange_rate: None,
        event_date: day(2026, 3, 5),
        locked_periods: BTreeSet::new(),
    }
}

pub(super) fn line(
    kind: LineKind,
    sku: &str,
    name: &str,
    quantity: i64,
    price: &str,
    rate: u32,
) -> OrderLine {
    OrderLine {
        kind,
        sku: (!sku.is_empty()).then(|| sku.to_owned()),
        name: name.into(),
        product_group: None,
        quantity,
        unit_price: nok(price),
        discount: Money::ZERO,
        vat_rate: Rate(rate * 100),
        vat_amount: None,
    }
}

pub(super) fn order_1001() -> Order {
    Order {
        id: "1001".into(),
        number: "1001".into(),
        version: 1,
        registered_at: at("2026-03-02T10:14:55Z"),
        currency: "NOK".into(),
        exchange_rate: None,
        prices_include_vat: true,
        customer: Some(Customer {
            id: "c-77".into(),
            name: "Kari Nordmann".into(),
            email: None,
        }),
        lines: vec![
            line(LineKind::Goods, "TS-1", "T-skjorte", 2, "249.00", 25),
            line(LineKind::Goods, "KAFFE-1", "Kaffe", 1, "129.00", 15),
            line(LineKind::Shipping, "", "Posten", 1, "99.00", 25),
        ],
        total: nok("726.00"),
        payment_method: Some("card".into()),
        cancelled: false,
    }
}

pub(super) fn payment(id: &str, amount: &str) -> Event {
    Event::Payment(Payment {
        id: id.into(),
        order_id: "1001".into(),
        amount: nok(amount),
        currency: "NOK".into(),
        method: Some("card".into()),
        fee: None,
        captured_at: at("2026-03-02T10:15:00Z"),
    })
}

pub(super) fn coffee_refund() -> Event {
    Event::Refund(Refund {
        id: "r-1".into(),
        order_id: "1001".into(),
        lines: vec![RefundLine {
            sku: "KAFFE-1".into(),
            quantity: 1,
            amount: nok("129.00"),
        }],
        shipping: None,
        amount: nok("129.00"),
        currency: "NOK".into(),
        created_at: at("2026-03-10T09:00:00Z"),
    })
}

/// Posts `events` in turn from an unknown order, with `ctx`; every vouchers and the last state.
pub(super) fn run_with(ctx: &Context, events: &[Event]) -> (Vec<Voucher>, OrderState) {
    let mut state = OrderState::new("1001");
    let mut vouchers = Vec::new();
    for e in events {
        let p = post(e, ctx, &state).unwrap();
        vouchers.extend(p.vouchers);
        state = p.state;
    }
    (vouchers, state)
}

pub(super) fn run(events: &[Event]) -> (Vec<Voucher>, OrderState) {
    run_with(&ctx(), events)
}

/// (account, amount in øre, VAT code) per line.
pub(super) fn lines(v: &Voucher) -> Vec<(u32, i64, Option<u16>)> {
    v.lines()
        .iter()
        .map(|l| (l.account.0, l.amount.0, l.vat_code.map(|c| c.0)))
        .collect()
}

/// Balance per account (and customer) over all vouchers, zero balances left out.
pub(super) fn balances(vouchers: &[Voucher]) -> BTreeMap<(u32, Option<String>), i64> {
    let mut b = BTreeMap::new();
    for l in vouchers.iter().flat_map(Voucher::lines) {
        *b.entry((l.account.0, l.customer_id.clone())).or_insert(0) += l.amount.0;
    }
    b.retain(|_, v| *v != 0);
    b
}

#[test]
fn the_worked_example_posts_exactly_as_designed() {
    let (v, state) = run(&[
        Event::Order(order_1001()),
        payment("pay-1", "726.00"),
        coffee_refund(),
    ]);
    assert_eq!(v.len(), 4);
    assert_eq!(
        (v[0].key(), v[0].kind(), v[0].date()),
        ("invoice:1001:1", VoucherKind::Invoice, day(2026, 3, 2))
    );
    assert_eq!(
        lines(&v[0]),
        vec![
            (1500, 72600, None),
            (3000, -39840, Some(3)),
            (3030, -11217, Some(31)),
            (3080, -7920, Some(3)),
            (2700, -11940, Some(3)),
            (2701, -1683, Some(31)),
        ]
    );
    assert_eq!(v[0].lines()[0].customer_id.as_deref(), Some("c-77"));
    assert_eq!(v[0].lines()[4].vat_base, Some(nok("-477.60")));
    assert_eq!(v[0].lines()[1].vat_base, Some(nok("-398.40")));
    assert_eq!(v[1].key(), "payment:pay-1");
    assert_eq!(
        lines(&v[1]),
        vec![(1522, 72600, None), (1500, -72600, None)]
    );
    assert_eq!(v[1].lines()[1].customer_id.as_deref(), Some("c-77"));
    assert_eq!(
        (v[2].key(), v[2].kind(), v[2].reverses()),
        (
            "refund:r-1",
            VoucherKind::CreditNote,
            Some("invoice:1001:1")
        )
    );
    assert_eq!(
        lines(&v[2]),
        vec![
            (1500, -12900, None),
            (3030, 11217, Some(31)),
            (2701, 1683, Some(31))
        ]
    );
    assert_eq!(v[3].key(), "refund-payment:r-1");
    assert_eq!(
        lines(&v[3]),
        vec![(1500, 12900, None), (1522, -12900, None)]
    );
    assert_eq!(state.refunds.len(), 1);
    let customer = balances(&v).get(&(1500, Some("c-77".into()))).copied();
    assert_eq!(customer, None, "the customer owes nothing in the end");
}

#[test]
fn a_payment_before_its_order_ends_in_the_same_books() {
    let (in_order, s1) = run(&[Event::Order(order_1001()), payment("pay-1", "726.00")]);
    let (reversed, s2) = run(&[payment("pay-1", "726.00"), Event::Order(order_1001())]);
    let per_account = |v: &[Voucher]| {
        let mut b: BTreeMap<u32, i64> = BTreeMap::new();
        for ((account, _), amount) in balances(v) {
            *b.entry(account).or_default() += amount;
        }
        b.retain(|_, a| *a != 0);
        b
    };
    assert_eq!(per_account(&in_order), per_account(&reversed));
    assert_eq!(s1, s2);
    let (_, s3) = run(&[payment("pay-1", "726.00")]);
    assert!(
        s3.is_unknown(),
        "a payment alone does not make the order known"
    );
}

#[test]
fn a_redelivered_payment_posts_nothing() {
    let (_, state) = run(&[Event::Order(order_1001()), payment("pay-1", "726.00")]);
    let again = post(&payment("pay-1", "726.00"), &ctx(), &state).unwrap();
    assert_eq!(
        (again.outcome, again.vouchers.len()),
        (Outcome::Unchanged, 0)
    );
}

#[test]
fn an_update_that_changes_nothing_posted_posts_nothing() {
    let (_, state) = run(&[Event::Order(order_1001())]);
    let mut v2 = order_1001();
    v2.version = 2;
    v2.lines[0].name = "T-skjorte, blå".into();
    let p = post(&Event::Order(v2.clone()), &ctx(), &state).unwrap();
    assert_eq!((p.outcome, p.vouchers.len()), (Outcome::Unchanged, 0));
    assert_eq!(p.state.applied_version, Some(2));
    assert_eq!(p.state.snapshot, Some(v2));
}

#[test]
fn a_changed_order_is_credited_and_invoiced_anew_netting_to_the_difference() {
    let (first, state) = run(&[Event::Order(order_1001())]);
    let mut v2 = order_1001();
    v2.version = 2;
    v2.lines[0].quantity = 3;
    v2.total = nok("975.00");
    let p = post(&Event::Order(v2), &ctx(), &state).unwrap();
    assert_eq!(p.outcome, Outcome::Posted);
    let keys: Vec<_> = p
        .vouchers
        .iter()
        .map(|v| (v.key(), v.reverses(), v.date()))
        .collect();
    assert_eq!(
        keys,
        vec![
            ("credit:1001:1", Some("invoice:1001:1"), day(2026, 3, 5)),
            ("invoice:1001:2", None, day(2026, 3, 5)),
        ]
    );
    assert_eq!(
        lines(&p.vouchers[0]),
        lines(&first[0])
            .iter()
            .map(|(a, m, c)| (*a, -m, *c))
            .collect::<Vec<_>>()
    );
    let delta = balances(&p.vouchers);
    let expected: BTreeMap<_, _> = [
        ((1500, Some("c-77".into())), 24900),
        ((2700, None), -4980),
        ((3000, None), -19920),
    ]
    .into_iter()
    .collect();
    assert_eq!(delta, expected);
    assert_eq!(p.state.invoice.as_ref().map(|i| i.revision), Some(2));
}

#[test]
fn an_older_or_equal_version_is_stale() {
    let mut v2 = order_1001();
    v2.version = 2;
    let (_, state) = run(&[Event::Order(v2)]);
    for version in [1, 2] {
        let mut old = order_1001();
        old.version = version;
        old.lines.pop();
        let p = post(&Event::Order(old), &ctx(), &state).unwrap();
        assert_eq!((p.outcome, p.vouchers.len()), (Outcome::Stale, 0));
        assert_eq!(p.state, state);
    }
}

#[test]
fn an_order_before_process_orders_from_is_skipped_with_its_payment_and_refund() {
    let mut old = order_1001();
    old.registered_at = at("2026-01-03T12:00:00Z");
    let (v, state) = run(&[Event::Order(old)]);
    let reason = "registered 2026-01-03, before process_orders_from 2026-02-01";
    assert_eq!(state.skipped.as_deref(), Some(reason));
    assert!(v.is_empty());
    let p = post(&payment("pay-1", "726.00"), &ctx(), &state).unwrap();
    assert!(matches!(&p.outcome, Outcome::Skipped(r) if r.contains(reason)));
    assert!(p.vouchers.is_empty());
    let r = post(&coffee_refund(), &ctx(), &p.state).unwrap();
    assert!(matches!(r.outcome, Outcome::Skipped(_)) && r.vouchers.is_empty());
    assert!(r.state.refunds.contains("r-1") && r.state.payments.contains("pay-1"));
}

#[test]
fn a_refund_before_its_order_is_retryable() {
    let err = post(&coffee_refund(), &ctx(), &OrderState::new("1001")).unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert_eq!(
        err.to_string(),
        "refund r-1 arrived before order 1001; retry later"
    );
    let bad_rate = PostingError::NoExchangeRate {
        currency: "USD".into(),
        base: "NOK".into(),
    };
    assert!(!bad_rate.is_retryable());
}

#[test]
fn a_cancellation_reverses_the_invoice_exactly_or_net_of_returns() {
    let cancel = Event::OrderCancelled(OrderCancellation {
        order_id: "1001".into(),
        version: Some(2),
        cancelled_at: at("2026-03-20T08:00:00Z"),
    });
    let (v, state) = run(&[Event::Order(order_1001()), cancel.clone()]);
    assert_eq!(
        (v[1].key(), v[1].reverses(), v[1].date()),
        ("credit:1001:1", Some("invoice:1001:1"), day(2026, 3, 20))
    );
    assert_eq!(
        v[1].lines(),
        v[0].lines()
            .iter()
            .map(VoucherLine::reversed)
            .collect::<Vec<_>>()
    );
    assert!(state.cancelled && state.invoice.is_none());
    let again = post(&cancel, &ctx(), &state).unwrap();
    assert_eq!(again.outcome, Outcome::Unchanged);
    let (v, _) = run(&[Event::Order(order_1001()), coffee_refund(), cancel]);
    assert!(balances(&v).is_empty() || balances(&v).keys().all(|(a, _)| *a == 1522 || *a == 1500));
    let credit = v.iter().find(|v| v.key() == "credit:1001:1").unwrap();
    assert!(
        !lines(credit).iter().any(|(a, _, _)| *a == 3030),
        "the coffee was already credited"
    );
}

#[test]
fn the_state_survives_a_round_trip_through_json() {
    let (_, state) = run(&[
        Event::Order(order_1001()),
        payment("pay-1", "726.00"),
        coffee_refund(),
    ]);
    let json = serde_json::to_value(&state).unwrap();
    let back: OrderState = serde_json::from_value(json.clone()).unwrap();
    assert_eq!(back, state);
    assert_eq!(
        json["invoice"]["lines"][1]["role"],
        serde_json::json!({"sales": "goods"})
    );
    let outcome = serde_json::to_value(Outcome::Skipped("why".into())).unwrap();
    assert_eq!(
        outcome,
        serde_json::json!({"outcome": "skipped", "reason": "why"})
    );
}
