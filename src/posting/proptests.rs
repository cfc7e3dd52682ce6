//! Property tests: whatever the order, every voucher balances, the output VAT per code is the
//! sum of the lines' VAT, no sequence of refunds credits more of a line than was invoiced, and
//! posting never panics (it may refuse cleanly).

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::event::{
    ExchangeRate, LineKind, Order, OrderCancellation, OrderLine, Refund, RefundLine,
};
use super::tests::{at, line};
use super::*;

/// The test context without a ceiling on order totals: the ceiling has tests of its own, and
/// these properties hold for orders of any size.
fn ctx() -> Context {
    let mut ctx = super::tests::ctx();
    ctx.connection.max_order_amount = Money(i64::MAX);
    ctx
}

/// One generated order line: kind, rate in %, quantity, unit price in øre, discount share in ‰.
type LineSpec = (bool, u32, i64, i64, i64);

fn order_line((fee, rate, quantity, price, discount_permille): LineSpec) -> OrderLine {
    let kind = if fee { LineKind::Fee } else { LineKind::Goods };
    let mut l = line(kind, "", "Vare", quantity, "0", rate);
    l.unit_price = Money(price);
    l.discount = Money(price * quantity * discount_permille / 1000);
    l
}

fn line_spec() -> impl Strategy<Value = LineSpec> {
    (
        any::<bool>(),
        prop::sample::select(vec![25_u32, 15, 12, 0]),
        1_i64..50,
        0_i64..200_000,
        0_i64..=1000,
    )
}

prop_compose! {
    fn orders()(
        specs in prop::collection::vec(line_spec(), 1..8),
        shipping in prop::option::of((prop::sample::select(vec![25_u32, 15, 12, 0]), 0_i64..50_000)),
        includes_vat in any::<bool>(),
        total_offset in prop::sample::select(vec![0_i64, 0, 0, 1, -1, 37, -100, 100, 101, 5_000]),
    ) -> Order {
        let mut lines: Vec<OrderLine> = specs.into_iter().map(order_line).collect();
        for (i, l) in lines.iter_mut().enumerate() {
            l.sku = Some(format!("SKU-{i}"));
        }
        if let Some((rate, price)) = shipping {
            let mut s = line(LineKind::Shipping, "", "Frakt", 1, "0", rate);
            s.unit_price = Money(price);
            lines.push(s);
        }
        let gross: i64 = lines.iter().map(|l| expected(l, includes_vat).gross.0).sum();
        Order {
            id: "1001".into(),
            number: "1001".into(),
            version: 1,
            registered_at: at("2026-03-02T10:14:55Z"),
            currency: "NOK".into(),
            exchange_rate: None,
            prices_include_vat: includes_vat,
            customer: None,
            lines,
            total: Money(gross + total_offset),
            payment_method: None,
            cancelled: false,
        }
    }
}

fn expected(l: &OrderLine, includes_vat: bool) -> vat::Split {
    let amount = Money(l.unit_price.0 * l.quantity - l.discount.0);
    vat::split(amount, l.vat_rate, includes_vat, None).unwrap()
}

/// The VAT the lines carry per code, in the order's currency.
fn vat_per_code(order: &Order) -> BTreeMap<u16, i64> {
    let code = |rate: Rate| match rate.0 {
        2500 => 3,
        1500 => 31,
        1200 => 33,
        _ => 5,
    };
    let mut m = BTreeMap::new();
    for l in &order.lines {
        *m.entry(code(l.vat_rate)).or_insert(0) += expected(l, order.prices_include_vat).vat.0;
    }
    m.retain(|_, v| *v != 0);
    m
}

fn check_balanced(v: &Voucher) {
    assert_eq!(
        v.lines().iter().map(|l| l.amount.0).sum::<i64>(),
        0,
        "{}",
        v.key()
    );
    assert_eq!(
        v.lines().iter().map(|l| l.currency_amount.0).sum::<i64>(),
        0,
        "{}",
        v.key()
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn every_voucher_balances_and_vat_adds_up(order in orders(), usd in prop::option::of(1_i64..20_000_000)) {
        let mut ctx = ctx();
        let mut order = order;
        if let Some(micros) = usd {
            order.currency = "USD".into();
            ctx.exchange_rate = Some(ExchangeRate { micros });
        }
        let posted = post(&Event::Order(order.clone()), &ctx, &OrderState::new("1001"));
        let Ok(posted) = posted else {
            // The only clean refusal these orders can meet: a total far from the lines.
            let err = posted.unwrap_err();
            prop_assert!(matches!(err, PostingError::TotalMismatch { .. }), "{err}");
            return Ok(());
        };
        for v in &posted.vouchers {
            check_balanced(v);
        }
        let Some(invoice) = posted.vouchers.first() else {
            prop_assert!(order.total.is_zero());
            return Ok(());
        };
        let mut vat = BTreeMap::new();
        for l in invoice.lines().iter().filter(|l| l.role == LineRole::OutputVat) {
            *vat.entry(l.vat_code.unwrap().0).or_insert(0) -= l.currency_amount.0;
        }
        prop_assert_eq!(vat, vat_per_code(&order));
        let receivable: i64 = invoice.lines().iter().filter(|l| l.role == LineRole::Receivable).map(|l| l.currency_amount.0).sum();
        prop_assert_eq!(receivable, order.total.0);

        // Cancelling it leaves every account where it started.
        let cancel = Event::OrderCancelled(OrderCancellation {
            order_id: "1001".into(),
            version: None,
            cancelled_at: at("2026-03-09T10:00:00Z"),
        });
        let credited = post(&cancel, &ctx, &posted.state).unwrap();
        let mut per_account: BTreeMap<u32, i64> = BTreeMap::new();
        for l in posted.vouchers.iter().chain(&credited.vouchers).flat_map(Voucher::lines) {
            *per_account.entry(l.account.0).or_default() += l.amount.0;
        }
        prop_assert!(per_account.values().all(|v| *v == 0));
    }

    #[test]
    fn posting_never_panics_on_odd_lines(
        quantity in -3_i64..5,
        price in prop_oneof![any::<i64>(), -1_000_000_i64..1_000_000],
        discount in prop_oneof![any::<i64>(), 0_i64..1_000_000],
        rate in prop_oneof![prop::sample::select(vec![2500_u32, 1500, 1200, 0]), 0_u32..30_000],
        total in prop_oneof![any::<i64>(), -5_000_000_i64..5_000_000],
        shop_vat in prop::option::of(prop_oneof![any::<i64>(), -1_000_i64..1_000]),
        includes_vat in any::<bool>(),
    ) {
        let mut l = line(LineKind::Goods, "X", "Rar", 1, "0", 0);
        l.quantity = quantity;
        l.unit_price = Money(price);
        l.discount = Money(discount);
        l.vat_rate = Rate(rate);
        l.vat_amount = shop_vat.map(Money);
        let order = Order {
            id: "1001".into(),
            number: "1001".into(),
            version: 1,
            registered_at: at("2026-03-02T10:14:55Z"),
            currency: "NOK".into(),
            exchange_rate: None,
            prices_include_vat: includes_vat,
            customer: None,
            lines: vec![l],
            total: Money(total),
            payment_method: None,
            cancelled: false,
        };
        if let Ok(p) = post(&Event::Order(order), &ctx(), &OrderState::new("1001")) {
            for v in &p.vouchers {
                check_balanced(v);
            }
        }
    }

    #[test]
    fn returns_reverse_their_lines_and_a_cancellation_clears_the_rest(
        order in orders(),
        returned in prop::collection::vec(any::<bool>(), 8),
        with_shipping in any::<bool>(),
    ) {
        let ctx = ctx();
        let Ok(invoiced) = post(&Event::Order(order.clone()), &ctx, &OrderState::new("1001")) else {
            return Ok(());
        };
        let picked = |i: usize, l: &OrderLine| l.kind != LineKind::Shipping && returned[i];
        let refund_lines: Vec<RefundLine> = order.lines.iter().enumerate().filter(|(i, l)| picked(*i, l)).map(|(_, l)| RefundLine {
            sku: l.sku.clone().unwrap(),
            quantity: l.quantity,
            amount: expected(l, order.prices_include_vat).gross,
        }).collect();
        let shipping = order.lines.iter().find(|l| l.kind == LineKind::Shipping).filter(|_| with_shipping)
            .map(|l| expected(l, order.prices_include_vat).gross);
        let amount = Money(refund_lines.iter().map(|l| l.amount.0).sum::<i64>() + shipping.map_or(0, |s| s.0));
        let refund = Event::Refund(Refund {
            id: "r-1".into(),
            order_id: "1001".into(),
            lines: refund_lines,
            shipping,
            amount,
            currency: "NOK".into(),
            created_at: at("2026-03-05T10:00:00Z"),
        });
        let refunded = post(&refund, &ctx, &invoiced.state).unwrap();
        for v in &refunded.vouchers {
            check_balanced(v);
        }
        // A full return reverses exactly the VAT the invoice charged for those lines.
        let mut returned_order = order.clone();
        let kept: Vec<bool> = order.lines.iter().enumerate()
            .map(|(i, l)| picked(i, l) || (l.kind == LineKind::Shipping && shipping.is_some())).collect();
        returned_order.lines.retain({ let mut k = kept.iter(); move |_| *k.next().unwrap() });
        let mut vat = BTreeMap::new();
        for v in refunded.vouchers.iter().filter(|v| v.kind() == VoucherKind::CreditNote) {
            for l in v.lines().iter().filter(|l| l.role == LineRole::OutputVat) {
                *vat.entry(l.vat_code.unwrap().0).or_insert(0) += l.amount.0;
            }
        }
        prop_assert_eq!(vat, vat_per_code(&returned_order));
        let cancel = Event::OrderCancelled(OrderCancellation {
            order_id: "1001".into(),
            version: None,
            cancelled_at: at("2026-03-09T10:00:00Z"),
        });
        let cancelled = post(&cancel, &ctx, &refunded.state).unwrap();
        let all = invoiced.vouchers.iter().chain(&refunded.vouchers).chain(&cancelled.vouchers);
        let mut per_account: BTreeMap<u32, i64> = BTreeMap::new();
        for l in all.flat_map(Voucher::lines) {
            *per_account.entry(l.account.0).or_default() += l.amount.0;
        }
        // What is left: the money paid back, owed by the customer who never paid.
        per_account.retain(|_, v| *v != 0);
        prop_assert!(per_account.keys().all(|a| *a == 1500 || *a == 1522), "{per_account:?}");
        prop_assert_eq!(per_account.get(&1522).copied().unwrap_or(0), -amount.0);
    }

    #[test]
    fn no_sequence_of_refunds_credits_more_than_was_invoiced_per_line(
        order in orders(),
        refunds in prop::collection::vec(
            (
                prop::collection::vec((0_usize..8, 1_i64..4, prop_oneof![Just(None), (0_i64..1_500).prop_map(Some)]), 0..3),
                prop::option::of(prop_oneof![Just(None), (0_i64..1_500).prop_map(Some)]),
            ),
            1..8,
        ),
    ) {
        let ctx = ctx();
        let Ok(invoiced) = post(&Event::Order(order.clone()), &ctx, &OrderState::new("1001")) else {
            return Ok(());
        };
        let inc = order.prices_include_vat;
        let whole: Vec<vat::Split> = order.lines.iter().map(|l| expected(l, inc)).collect();
        let shipping = order.lines.iter().position(|l| l.kind == LineKind::Shipping);
        // Accepted so far per order line: units and gross.
        let mut taken = vec![(0_i64, 0_i64); order.lines.len()];
        let mut state = invoiced.state.clone();
        let mut vouchers = invoiced.vouchers.clone();
        // A part asks for a share (‰) of the line's gross, or (None) exactly what is left.
        let ask = |i: usize, share: Option<i64>, taken: &[(i64, i64)]| match share {
            Some(permille) => whole[i].gross.0 * permille / 1000,
            None => whole[i].gross.0 - taken[i].1,
        };
        for (n, (parts, ship)) in refunds.iter().enumerate() {
            let goods: Vec<usize> = (0..order.lines.len()).filter(|i| order.lines[*i].sku.is_some()).collect();
            let mut lines = Vec::new();
            let mut asked = taken.clone();
            for (pick, quantity, share) in parts {
                let i = goods[pick % goods.len()];
                let amount = ask(i, *share, &asked).max(0);
                asked[i].0 += quantity;
                asked[i].1 += amount;
                lines.push(RefundLine { sku: order.lines[i].sku.clone().unwrap(), quantity: *quantity, amount: Money(amount) });
            }
            let ship_amount = match (ship, shipping) {
                (Some(share), Some(s)) => {
                    let amount = ask(s, *share, &asked).max(0);
                    asked[s].1 += amount;
                    Some(Money(amount))
                }
                _ => None,
            };
            let amount = Money(lines.iter().map(|l| l.amount.0).sum::<i64>() + ship_amount.map_or(0, |s| s.0));
            let refund = Event::Refund(Refund {
                id: format!("r-{n}"),
                order_id: "1001".into(),
                lines,
                shipping: ship_amount,
                amount,
                currency: "NOK".into(),
                created_at: at("2026-03-05T10:00:00Z"),
            });
            let fits = asked.iter().zip(&order.lines).zip(&whole)
                .all(|((a, l), w)| (l.kind == LineKind::Shipping || a.0 <= l.quantity) && a.1 <= w.gross.0);
            match post(&refund, &ctx, &state) {
                Ok(p) => {
                    prop_assert!(fits, "a refund beyond the lines was posted: {refund:?}");
                    taken = asked;
                    state = p.state;
                    vouchers.extend(p.vouchers);
                }
                Err(e) => {
                    prop_assert!(matches!(e, PostingError::RefundExceedsLine(_)), "{e}");
                    prop_assert!(!fits, "a refund within the lines was refused: {e}");
                }
            }
        }
        for v in &vouchers {
            check_balanced(v);
        }
        let credits: Vec<&VoucherLine> = vouchers.iter()
            .filter(|v| v.kind() == VoucherKind::CreditNote)
            .flat_map(Voucher::lines)
            .collect();
        for (i, l) in order.lines.iter().enumerate() {
            let role = LineRole::Sales(l.kind);
            let net: i64 = credits.iter().filter(|c| c.role == role && c.sku == l.sku).map(|c| c.currency_amount.0).sum();
            prop_assert!((0..=whole[i].net.0.max(0)).contains(&net), "line {i}: credited net {net} of {}", whole[i].net.0);
            if taken[i].1 == whole[i].gross.0 && l.sku.is_some() {
                prop_assert_eq!(net, whole[i].net.0, "line {} refunded in full", i);
            }
        }
        let mut vat: BTreeMap<u16, i64> = BTreeMap::new();
        for c in credits.iter().filter(|c| c.role == LineRole::OutputVat) {
            *vat.entry(c.vat_code.unwrap().0).or_default() += c.currency_amount.0;
        }
        let invoiced_vat = vat_per_code(&order);
        for (code, credited) in vat {
            prop_assert!(credited <= invoiced_vat.get(&code).copied().unwrap_or(0), "VAT code {code}: {credited} of {invoiced_vat:?}");
        }
    }
}
