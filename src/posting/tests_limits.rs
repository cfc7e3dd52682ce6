//! Scenario tests of the limits on what refunds credit, the ceiling on order totals, and the
//! flag on payments above what an order owed.

use super::event::{LineKind, Order, OrderCancellation, Refund, RefundLine};
use super::tests::{at, ctx, line, nok, order_1001, payment, run};
use super::*;

/// Order 2001: 1 × Vase at 100.00 (25 %), shipping 50.00 (25 %).
fn vase_order() -> Order {
    Order {
        id: "1001".into(),
        number: "2001".into(),
        version: 1,
        registered_at: at("2026-03-02T10:14:55Z"),
        currency: "NOK".into(),
        exchange_rate: None,
        prices_include_vat: true,
        customer: None,
        lines: vec![
            line(LineKind::Goods, "VASE", "Vase", 1, "100.00", 25),
            line(LineKind::Shipping, "", "Posten", 1, "50.00", 25),
        ],
        total: nok("150.00"),
        payment_method: None,
        cancelled: false,
    }
}

fn refund(id: &str, lines: &[(&str, i64, &str)], shipping: Option<&str>) -> Event {
    let lines: Vec<RefundLine> = lines
        .iter()
        .map(|(sku, quantity, amount)| RefundLine {
            sku: (*sku).into(),
            quantity: *quantity,
            amount: nok(amount),
        })
        .collect();
    let shipping = shipping.map(nok);
    let amount = Money(lines.iter().map(|l| l.amount.0).sum::<i64>() + shipping.map_or(0, |s| s.0));
    Event::Refund(Refund {
        id: id.into(),
        order_id: "1001".into(),
        lines,
        shipping,
        amount,
        currency: "NOK".into(),
        created_at: at("2026-03-10T09:00:00Z"),
    })
}

#[test]
fn refunds_of_more_units_and_money_than_invoiced_are_refused_naming_the_line() {
    let (_, state) = run(&[Event::Order(vase_order())]);
    for id in ["r-1", "r-2"] {
        let err = post(&refund(id, &[("VASE", 3, "5000.00")], None), &ctx(), &state).unwrap_err();
        assert!(!err.is_retryable());
        assert_eq!(
            err.to_string(),
            format!(
                "refund {id} credits 3 units for 5000.00 of line 1 \"Vase\" (goods, VAT 25 %) of \
                 order 2001, but only 1 unit for 100.00 is left to refund of the 1 unit for \
                 100.00 invoiced"
            )
        );
    }
    let more_money = refund("r-3", &[("VASE", 1, "100.01")], None);
    assert!(matches!(
        post(&more_money, &ctx(), &state),
        Err(PostingError::RefundExceedsLine(_))
    ));
}

#[test]
fn a_line_refunded_in_full_cannot_be_refunded_again_nor_its_shipping() {
    let (_, state) = run(&[
        Event::Order(vase_order()),
        refund("r-1", &[("VASE", 1, "100.00")], Some("50.00")),
    ]);
    assert_eq!(state.refunds.len(), 1);
    let again = post(&refund("r-2", &[("VASE", 1, "1.00")], None), &ctx(), &state);
    assert!(
        matches!(&again, Err(PostingError::RefundExceedsLine(e)) if e.left == "0 units for 0.00"),
        "{again:?}"
    );
    let err = post(&refund("r-3", &[], Some("0.01")), &ctx(), &state).unwrap_err();
    assert_eq!(
        err.to_string(),
        "refund r-3 credits 0.01 of line 2 \"Posten\" (shipping, VAT 25 %) of order 2001, but \
         only 0.00 is left to refund of the 50.00 invoiced"
    );
}

#[test]
fn a_refund_that_exceeds_on_one_line_is_refused_whole() {
    let (_, state) = run(&[Event::Order(order_1001())]);
    let mixed = refund(
        "r-1",
        &[("KAFFE-1", 1, "129.00"), ("TS-1", 3, "747.00")],
        None,
    );
    let err = post(&mixed, &ctx(), &state).unwrap_err();
    assert!(err.to_string().contains("line 1 \"T-skjorte\""), "{err}");
    // Nothing of it was taken: the coffee alone still refunds in full.
    let coffee = refund("r-2", &[("KAFFE-1", 1, "129.00")], None);
    let p = post(&coffee, &ctx(), &state).unwrap();
    assert_eq!(p.outcome, Outcome::Posted);
}

#[test]
fn partial_refunds_that_add_up_to_a_line_credit_exactly_its_net_and_vat() {
    // 5 × 0.03 at 25 %: the line's VAT is 0.03, but each unit alone rounds to 0.01 of VAT.
    let mut order = vase_order();
    order.lines = vec![line(LineKind::Goods, "PIN", "Nål", 5, "0.03", 25)];
    order.total = nok("0.15");
    let mut events = vec![Event::Order(order)];
    for i in 1..=5 {
        events.push(refund(&format!("r-{i}"), &[("PIN", 1, "0.03")], None));
    }
    let (vouchers, _) = run(&events);
    let per_account = |kind: VoucherKind| {
        let mut m = std::collections::BTreeMap::new();
        for l in vouchers
            .iter()
            .filter(|v| v.kind() == kind)
            .flat_map(Voucher::lines)
        {
            *m.entry(l.account.0).or_insert(0) += l.amount.0;
        }
        m
    };
    let invoiced = per_account(VoucherKind::Invoice);
    let credited = per_account(VoucherKind::CreditNote);
    assert_eq!(invoiced.get(&2700), Some(&-3));
    for (account, amount) in invoiced {
        assert_eq!(credited.get(&account).copied(), Some(-amount), "{account}");
    }
}

#[test]
fn a_refund_after_a_cancellation_still_counts_against_its_lines() {
    let cancel = Event::OrderCancelled(OrderCancellation {
        order_id: "1001".into(),
        version: None,
        cancelled_at: at("2026-03-05T10:00:00Z"),
    });
    let (_, state) = run(&[
        Event::Order(vase_order()),
        cancel,
        refund("r-1", &[("VASE", 1, "100.00")], None),
    ]);
    let again = post(
        &refund("r-2", &[("VASE", 1, "100.00")], None),
        &ctx(),
        &state,
    );
    assert!(matches!(again, Err(PostingError::RefundExceedsLine(_))));
}

#[test]
fn an_update_may_not_invoice_less_of_a_line_than_refunds_credited() {
    let mut order = vase_order();
    order.lines[0].quantity = 2;
    order.total = nok("250.00");
    let (_, state) = run(&[
        Event::Order(order.clone()),
        refund("r-1", &[("VASE", 2, "200.00")], None),
    ]);
    let mut fewer = order.clone();
    fewer.version = 2;
    fewer.lines[0].quantity = 1;
    fewer.total = nok("150.00");
    let err = post(&Event::Order(fewer), &ctx(), &state).unwrap_err();
    assert_eq!(
        err.to_string(),
        "order 2001 version 2 invoices 1 unit for 100.00 of line 1 \"Vase\" (goods, VAT 25 %), \
         less than refunds already credited of it (2 units for 200.00)"
    );
    let mut dropped = order.clone();
    dropped.version = 2;
    dropped.lines.remove(0);
    dropped.total = nok("50.00");
    let err = post(&Event::Order(dropped), &ctx(), &state).unwrap_err();
    assert!(
        err.to_string().contains("invoices nothing of SKU VASE"),
        "{err}"
    );
    // More units: the refunds made so far still count, the new unit may be refunded.
    let mut more = order;
    more.version = 2;
    more.lines[0].quantity = 3;
    more.total = nok("350.00");
    let p = post(&Event::Order(more), &ctx(), &state).unwrap();
    let one = post(
        &refund("r-2", &[("VASE", 1, "100.00")], None),
        &ctx(),
        &p.state,
    )
    .unwrap();
    assert_eq!(one.outcome, Outcome::Posted);
    let two = post(
        &refund("r-3", &[("VASE", 2, "200.00")], None),
        &ctx(),
        &p.state,
    );
    assert!(matches!(two, Err(PostingError::RefundExceedsLine(_))));
}

#[test]
fn one_sku_on_two_lines_refunds_from_the_line_with_room() {
    let mut order = vase_order();
    order.lines.insert(
        1,
        line(LineKind::Goods, "VASE", "Vase, gave", 1, "80.00", 25),
    );
    order.total = nok("230.00");
    let (v, state) = run(&[
        Event::Order(order),
        refund("r-1", &[("VASE", 1, "100.00")], None),
        refund("r-2", &[("VASE", 1, "80.00")], None),
    ]);
    assert_eq!(
        v.len(),
        5,
        "an invoice and two credit notes with refund payments"
    );
    let nth: Vec<_> = state.returned.iter().map(|r| (r.nth, r.gross)).collect();
    assert_eq!(nth, vec![(0, nok("100.00")), (1, nok("80.00"))]);
    let third = post(&refund("r-3", &[("VASE", 1, "1.00")], None), &ctx(), &state);
    assert!(matches!(third, Err(PostingError::RefundExceedsLine(_))));
}

#[test]
fn a_state_stored_before_returns_and_balances_were_kept_still_loads() {
    let (_, state) = run(&[Event::Order(vase_order())]);
    let mut json = serde_json::to_value(&state).unwrap();
    let map = json.as_object_mut().unwrap();
    assert!(map.remove("receivable").is_some());
    assert!(!map.contains_key("returned"), "empty lists are not written");
    let back: OrderState = serde_json::from_value(json).unwrap();
    assert_eq!((back.returned.len(), back.receivable), (0, None));
    // Its balance is seeded from the standing invoice: a payment of it is not an overpayment.
    let p = post(&payment("pay-1", "150.00"), &ctx(), &back).unwrap();
    assert!(p.flags.is_empty(), "{:?}", p.flags);
    assert_eq!(p.state.receivable, Some(Money::ZERO));
}

#[test]
fn an_order_above_max_order_amount_is_refused_naming_amount_and_ceiling() {
    let mut ctx = ctx();
    ctx.connection.max_order_amount = nok("150.00");
    let at_ceiling = post(&Event::Order(vase_order()), &ctx, &OrderState::new("1001"));
    assert_eq!(at_ceiling.unwrap().outcome, Outcome::Posted);
    let mut big = vase_order();
    big.lines[0].unit_price = nok("100.01");
    big.total = nok("150.01");
    let err = post(&Event::Order(big), &ctx, &OrderState::new("1001")).unwrap_err();
    assert!(!err.is_retryable());
    assert_eq!(
        err.to_string(),
        "order 2001 comes to 150.01 NOK, above the connection's max_order_amount of 150.00 NOK; \
         if it is real, raise the ceiling and replay the event"
    );
    let mut huge = vase_order();
    huge.lines[0].unit_price = nok("10000000000000000.00");
    huge.total = nok("10000000000000050.00");
    let err = post(
        &Event::Order(huge),
        &super::tests::ctx(),
        &OrderState::new("1001"),
    );
    assert!(
        matches!(err, Err(PostingError::AboveCeiling { .. })),
        "{err:?}"
    );
}

#[test]
fn a_payment_above_what_is_owed_is_posted_and_flagged() {
    let (_, state) = run(&[Event::Order(vase_order())]);
    let part = post(&payment("pay-1", "100.00"), &ctx(), &state).unwrap();
    assert!(part.flags.is_empty());
    let big = post(&payment("pay-2", "999999.00"), &ctx(), &part.state).unwrap();
    assert_eq!(big.outcome, Outcome::Posted);
    assert_eq!(big.vouchers.len(), 1, "the money is posted all the same");
    assert_eq!(
        big.flags,
        vec![Flag::Overpaid {
            payment: "pay-2".into(),
            amount: nok("999999.00"),
            owed: nok("50.00"),
        }]
    );
    assert_eq!(
        big.flags[0].to_string(),
        "overpaid: payment pay-2 took 999999.00 where 50.00 was owed; 999949.00 stands to the \
         customer's credit"
    );
    let after = post(&payment("pay-3", "1.00"), &ctx(), &big.state).unwrap();
    assert!(matches!(&after.flags[..], [Flag::Overpaid { owed, .. }] if owed.is_zero()));
}

#[test]
fn a_payment_before_its_order_is_flagged_above_the_ceiling_or_once_its_order_owes_less() {
    let normal = post(
        &payment("pay-1", "726.00"),
        &ctx(),
        &OrderState::new("1001"),
    )
    .unwrap();
    assert!(normal.flags.is_empty());
    let huge = post(
        &payment("pay-2", "1000000.01"),
        &ctx(),
        &OrderState::new("1001"),
    )
    .unwrap();
    assert!(
        matches!(&huge.flags[..], [Flag::PrepaidAboveCeiling { ceiling, .. }] if *ceiling == DEFAULT_MAX_ORDER_AMOUNT),
        "{:?}",
        huge.flags
    );
    // Paid first, then invoiced: a payment of the total is not an overpayment afterwards.
    let (_, state) = run(&[payment("pay-1", "726.00"), Event::Order(order_1001())]);
    assert_eq!(state.receivable, Some(Money::ZERO));
    // One of more is flagged when the order shows what was owed, as it would have been in order.
    let paid = post(
        &payment("pay-1", "800.00"),
        &ctx(),
        &OrderState::new("1001"),
    )
    .unwrap();
    let order = post(&Event::Order(order_1001()), &ctx(), &paid.state).unwrap();
    assert_eq!(
        order
            .flags
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        vec![
            "overpaid: payments of 800.00 before order 1001 exceed its invoice of 726.00; 74.00 \
             stands to the customer's credit"
        ]
    );
    let update = post(&Event::Order(order_1001_v2()), &ctx(), &order.state).unwrap();
    assert!(
        update.flags.is_empty(),
        "judged once, when the order first comes"
    );
}

fn order_1001_v2() -> Order {
    let mut o = order_1001();
    o.version = 2;
    o.lines[0].quantity = 3;
    o.total = nok("975.00");
    o
}

#[test]
fn a_reactivated_order_is_invoiced_net_of_what_refunds_credited_before_its_cancellation() {
    let cancel = Event::OrderCancelled(OrderCancellation {
        order_id: "1001".into(),
        version: Some(2),
        cancelled_at: at("2026-03-12T09:00:00Z"),
    });
    let mut reactivated = vase_order();
    reactivated.version = 3;
    let vase = refund("r-1", &[("VASE", 1, "100.00")], None);
    let (refund_only, _) = run(&[Event::Order(vase_order()), vase.clone()]);
    let (v, state) = run(&[
        Event::Order(vase_order()),
        vase,
        cancel,
        Event::Order(reactivated.clone()),
    ]);
    for voucher in &v {
        let total: i64 = voucher.lines().iter().map(|l| l.amount.0).sum();
        assert_eq!(total, 0, "{} balances", voucher.key());
    }
    let per_account = |v: &[Voucher]| {
        super::tests::balances(v)
            .into_iter()
            .map(|((a, _), m)| (a, m))
            .collect::<Vec<_>>()
    };
    assert_eq!(per_account(&v), per_account(&refund_only));
    let of = |a: u32| {
        per_account(&v)
            .iter()
            .find(|(b, _)| *b == a)
            .map_or(0, |(_, m)| *m)
    };
    assert_eq!((of(1500), of(3000), of(2700)), (15_000, 0, -1_000));
    // The vase was refunded once and is not invoiced again, so it cannot be refunded again;
    // the shipping, invoiced again, can.
    let again = post(
        &refund("r-2", &[("VASE", 1, "100.00")], None),
        &ctx(),
        &state,
    );
    assert!(
        matches!(again, Err(PostingError::RefundExceedsLine(_))),
        "{again:?}"
    );
    let shipping = post(&refund("r-3", &[], Some("50.00")), &ctx(), &state).unwrap();
    assert_eq!(shipping.outcome, Outcome::Posted);
    // An update after the reactivation keeps the vase out, as one after the refund alone does.
    let mut update = reactivated;
    update.version = 4;
    update.lines[1].unit_price = nok("60.00");
    update.total = nok("160.00");
    let after = post(&Event::Order(update.clone()), &ctx(), &state).unwrap();
    let mut plain = update;
    plain.version = 2;
    let (mut refund_then_update, s) = run(&[
        Event::Order(vase_order()),
        refund("r-1", &[("VASE", 1, "100.00")], None),
    ]);
    refund_then_update.extend(post(&Event::Order(plain), &ctx(), &s).unwrap().vouchers);
    let mut all = v;
    all.extend(after.vouchers);
    assert_eq!(per_account(&all), per_account(&refund_then_update));
}

#[test]
fn a_payment_before_an_order_that_comes_cancelled_or_owing_nothing_is_flagged_as_in_order() {
    let mut cancelled = order_1001();
    cancelled.cancelled = true;
    let mut zero = order_1001();
    zero.lines.clear();
    zero.total = Money::ZERO;
    for order in [cancelled, zero] {
        let (_, state) = run(&[Event::Order(order.clone())]);
        let in_order = post(&payment("pay-1", "726.00"), &ctx(), &state).unwrap();
        assert_eq!(
            in_order.flags,
            vec![Flag::Overpaid {
                payment: "pay-1".into(),
                amount: nok("726.00"),
                owed: Money::ZERO,
            }]
        );
        let (_, state) = run(&[payment("pay-1", "726.00")]);
        let late = post(&Event::Order(order), &ctx(), &state).unwrap();
        assert_eq!(
            late.flags,
            vec![Flag::PrepaidAboveInvoice {
                order: "1001".into(),
                paid: nok("726.00"),
                invoiced: Money::ZERO,
            }]
        );
        assert_eq!(late.state.receivable, Some(-nok("726.00")));
    }
}

#[test]
fn a_payment_in_another_currency_before_its_order_is_not_compared_nor_added_to_its_balance() {
    let mut ctx = ctx();
    ctx.exchange_rate = Some(super::event::ExchangeRate { micros: 11_500_000 });
    let mut euros = payment("pay-1", "800.00");
    if let Event::Payment(p) = &mut euros {
        p.currency = "EUR".into();
    }
    let paid = post(&euros, &ctx, &OrderState::new("1001")).unwrap();
    assert!(paid.flags.is_empty(), "{:?}", paid.flags);
    let order = post(&Event::Order(order_1001()), &ctx, &paid.state).unwrap();
    assert_eq!(order.outcome, Outcome::Posted);
    assert!(order.flags.is_empty(), "{:?}", order.flags);
    assert_eq!(
        order.state.receivable,
        Some(nok("726.00")),
        "the balance is the order's invoice, in NOK"
    );
}

#[test]
fn an_order_refunded_while_cancelled_is_reactivated_without_the_refunded_goods() {
    let cancel = Event::OrderCancelled(OrderCancellation {
        order_id: "1001".into(),
        version: Some(2),
        cancelled_at: at("2026-03-05T09:00:00Z"),
    });
    let mut reactivated = vase_order();
    reactivated.version = 3;
    let vase = refund("r-1", &[("VASE", 1, "100.00")], None);
    let (refund_only, _) = run(&[Event::Order(vase_order()), vase.clone()]);
    let (v, _) = run(&[
        Event::Order(vase_order()),
        cancel,
        vase,
        Event::Order(reactivated),
    ]);
    assert_eq!(
        super::tests::balances(&v),
        super::tests::balances(&refund_only)
    );
}
