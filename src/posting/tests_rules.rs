//! Scenario tests of [`super::post`] around rules and amounts: errors that name what is wrong,
//! the shop's own VAT, foreign currency, discounts, payment rules, and events that post nothing.

use super::event::{ExchangeRate, LineKind, Order, Product};
use super::tests::{ctx, line, lines, nok, order_1001, payment, run, run_with};
use super::*;

#[test]
fn an_unknown_vat_rate_names_the_line() {
    let mut o = order_1001();
    o.lines[1].vat_rate = Rate(2200);
    let err = post(&Event::Order(o), &ctx(), &OrderState::new("1001")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "no VAT code has rate 22 % on 2026-03-02 (line 2 \"Kaffe\" (goods, VAT 22 %))"
    );
    assert!(!err.is_retryable());
}

#[test]
fn a_line_no_rule_places_names_the_line() {
    let mut c = ctx();
    c.rules.retain(|r| r.when.vat_code != Some(VatCode(31)));
    let err = post(&Event::Order(order_1001()), &c, &OrderState::new("1001")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "no posting rule places line 2 \"Kaffe\" (goods, VAT 15 %)"
    );
}

#[test]
fn an_unknown_account_is_named_with_its_user() {
    let mut c = ctx();
    c.rules[1].then.account = AccountNo(3999);
    let err = post(&Event::Order(order_1001()), &c, &OrderState::new("1001")).unwrap_err();
    assert_eq!(
        err,
        PostingError::UnknownAccount {
            account: AccountNo(3999),
            used_by: "rule 2, placing line 2 \"Kaffe\" (goods, VAT 15 %)".into()
        }
    );
    assert!(
        matches!(c.validate(), Err(PostingError::UnknownAccount { used_by, .. }) if used_by == "rule 2")
    );
    assert_eq!(ctx().validate(), Ok(()));
}

#[test]
fn shop_vat_amounts_win_and_a_differing_total_goes_to_rounding() {
    let mut o = order_1001();
    o.lines[1].vat_amount = Some(nok("16.82"));
    o.total = nok("726.01");
    let (v, _) = run(&[Event::Order(o)]);
    let inv = &v[0];
    assert!(lines(inv).contains(&(2701, -1682, Some(31))));
    assert!(lines(inv).contains(&(3030, -11218, Some(31))));
    let rounding = inv
        .lines()
        .iter()
        .find(|l| l.role == LineRole::Rounding)
        .unwrap();
    assert_eq!(
        (rounding.account, rounding.amount),
        (AccountNo(7740), Money(-1))
    );
    assert_eq!(
        rounding.description,
        "Avrunding: butikkens total 726.01 mot linjenes sum 726.00"
    );
    let mut far = order_1001();
    far.total = nok("800.00");
    let err = post(&Event::Order(far), &ctx(), &OrderState::new("1001")).unwrap_err();
    assert!(matches!(err, PostingError::TotalMismatch { .. }), "{err}");
}

fn usd_order() -> Order {
    let mut o = order_1001();
    o.currency = "USD".into();
    o.lines = vec![line(LineKind::Goods, "TS-1", "T-shirt", 3, "10.01", 25)];
    o.total = nok("30.03");
    o
}

#[test]
fn a_foreign_order_converts_each_line_and_rounds_the_rest() {
    let mut c = ctx();
    c.exchange_rate = Some(ExchangeRate { micros: 10_512_000 });
    let (v, state) = run_with(&c, &[Event::Order(usd_order())]);
    let inv = &v[0];
    // 30.03 USD = 315.675 → 315.68 NOK; VAT 6.01 USD → 63.18; net 24.02 USD → 252.50.
    assert_eq!(
        lines(inv),
        vec![
            (1500, 31568, None),
            (3000, -25250, Some(3)),
            (2700, -6318, Some(3))
        ]
    );
    let usd: i64 = inv.lines().iter().map(|l| l.currency_amount.0).sum();
    assert_eq!(usd, 0);
    assert!(inv.lines().iter().all(|l| l.currency == "USD"));
    assert_eq!(inv.lines()[0].currency_amount, nok("30.03"));
    assert_eq!(state.invoice.unwrap().exchange_rate, c.exchange_rate);
    let mut odd = usd_order();
    odd.lines[0].unit_price = nok("10.03");
    odd.total = nok("30.09");
    let (v, _) = run_with(&c, &[Event::Order(odd)]);
    let rounding: Vec<_> = v[0]
        .lines()
        .iter()
        .filter(|l| l.role == LineRole::Rounding)
        .collect();
    assert_eq!(rounding.len(), 1, "{:?}", lines(&v[0]));
    assert_eq!(rounding[0].currency_amount, Money::ZERO);
    let err = post(&Event::Order(usd_order()), &ctx(), &OrderState::new("1001")).unwrap_err();
    assert_eq!(err.to_string(), "no exchange rate for USD to NOK");
}

#[test]
fn a_discount_is_netted_unless_a_discount_rule_places_it() {
    let mut o = order_1001();
    o.lines[0].discount = nok("49.80");
    o.total = nok("676.20");
    let (v, _) = run(&[Event::Order(o.clone())]);
    assert!(lines(&v[0]).contains(&(3000, -35856, Some(3))));
    let mut c = ctx();
    c.accounts.insert(AccountNo(3090));
    c.rules.push(Rule {
        id: 50,
        connection: None,
        when: Criteria {
            kind: Some(RuleKind::Discount),
            ..Criteria::default()
        },
        then: Placement {
            account: AccountNo(3090),
            vat_code: None,
            department: None,
            location: None,
        },
    });
    let (v, _) = run_with(&c, &[Event::Order(o.clone())]);
    assert!(lines(&v[0]).contains(&(3000, -39840, Some(3))));
    assert!(lines(&v[0]).contains(&(3090, 3984, Some(3))));
    assert!(lines(&v[0]).contains(&(2700, -10944, Some(3))));
    let why = explain(&o, &c);
    assert_eq!(why.len(), 4);
    assert_eq!(
        (why[1].kind, why[1].rule, why[1].account),
        (RuleKind::Discount, Some(50), Some(AccountNo(3090)))
    );
    assert_eq!(
        why[3].why,
        "rule 7 (company-wide, 2 criteria: kind=shipping, vat_code=3) matched; beat rule(s) 1"
    );
}

#[test]
fn payment_rules_and_fees_place_the_money() {
    let mut c = ctx();
    c.rules.push(Rule {
        id: 60,
        connection: Some(c.connection.id),
        when: Criteria {
            kind: Some(RuleKind::Payment),
            payment_method: Some("Vipps".into()),
            ..Criteria::default()
        },
        then: Placement {
            account: AccountNo(1920),
            vat_code: None,
            department: Some("web".into()),
            location: None,
        },
    });
    let Event::Payment(mut p) = payment("pay-1", "726.00") else {
        unreachable!()
    };
    p.method = Some("vipps".into());
    p.fee = Some(nok("12.50"));
    let (v, _) = run_with(&c, &[Event::Payment(p)]);
    assert_eq!(
        lines(&v[0]),
        vec![
            (1920, 72600, None),
            (1500, -72600, None),
            (7770, 1250, None),
            (1920, -1250, None)
        ]
    );
    assert_eq!(v[0].lines()[0].department.as_deref(), Some("web"));
}

#[test]
fn products_and_ignored_topics_post_nothing() {
    let product = Event::Product(Product {
        sku: "TS-1".into(),
        name: "T".into(),
        price: None,
        vat_rate: None,
        product_group: None,
    });
    let state = OrderState::new("");
    assert_eq!(
        post(&product, &ctx(), &state).unwrap().outcome,
        Outcome::ProductUpserted
    );
    let ignored = Event::Ignored {
        topic: "customer.created".into(),
    };
    assert_eq!(
        post(&ignored, &ctx(), &state).unwrap().outcome,
        Outcome::Ignored("customer.created".into())
    );
}

#[test]
fn a_state_of_another_order_is_refused() {
    let err = post(
        &Event::Order(order_1001()),
        &ctx(),
        &OrderState::new("1002"),
    )
    .unwrap_err();
    assert!(matches!(err, PostingError::WrongState { .. }));
}
