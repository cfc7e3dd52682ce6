//! The fuzz targets' bodies, shared by the cargo-fuzz binaries (`fuzz/fuzz_targets/*.rs`, run
//! with libFuzzer) and the stable-toolchain driver (`tests/fuzz.rs`, run by `cargo test`).
//!
//! Each target takes raw bytes and must never panic: whatever comes in gets a clean `Ok` or
//! `Err`. Where the output can be checked cheaply, it is (every voucher balances).

use arbitrary::{Arbitrary, Result, Unstructured};
use chrono::{DateTime, NaiveDate, TimeZone as _, Utc};
use http::{HeaderMap, HeaderName, HeaderValue};
use shopbridge::channel::Channel;
use shopbridge::posting::event::{
    Customer, ExchangeRate, LineKind, Order, OrderCancellation, OrderLine, Payment, Refund,
    RefundLine,
};
use shopbridge::posting::{
    self, ConnectionSettings, Context, Event, Money, OrderState, Rate, SystemAccounts, VatTable,
    default_accounts, default_rules,
};
use shopbridge::signature::{self, Secret, SigningKey};

/// A fuzz target: raw bytes in, a panic on failure.
pub type Target = fn(&[u8]);

/// The fuzz targets, by name (the cargo-fuzz binary and corpus directory names).
pub const TARGETS: [(&str, Target); 3] = [
    ("signature", signature),
    ("channels", channels),
    ("posting", posting),
];

/// Headers any channel reads, so that fuzzed header sets hit the parsers, not only "missing".
const HEADER_NAMES: [&str; 12] = [
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    "x-shopify-hmac-sha256",
    "x-shopify-topic",
    "x-shopify-webhook-id",
    "x-shopify-event-id",
    "x-wc-webhook-signature",
    "x-wc-webhook-topic",
    "x-wc-webhook-id",
    "stripe-signature",
    "content-type",
];

const TOPICS: [&str; 12] = [
    "order.created",
    "order.updated",
    "orders/create",
    "orders/updated",
    "orders/paid",
    "orders/cancelled",
    "refunds/create",
    "products/update",
    "order.deleted",
    "product.created",
    "payment_intent.succeeded",
    "charge.refunded",
];

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 10, 15, 0)
        .single()
        .expect("valid date")
}

fn channel(u: &mut Unstructured<'_>) -> Result<Channel> {
    u.choose(&Channel::ALL).copied()
}

/// `signature::verify` of every channel with arbitrary headers and body, and with correctly
/// signed headers of which one is then replaced by arbitrary bytes.
pub fn signature(data: &[u8]) {
    let _ = signature_inner(&mut Unstructured::new(data));
}

fn signature_inner(u: &mut Unstructured<'_>) -> Result<()> {
    let channel = channel(u)?;
    let secret = Secret::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into());
    let keys: Vec<SigningKey> = SigningKey::derive(channel, &secret).into_iter().collect();
    let signed_first = bool::arbitrary(u)?;
    let mut headers = HeaderMap::new();
    let body: Vec<u8>;
    if signed_first {
        body = Vec::<u8>::arbitrary(u)?;
        let id = String::arbitrary(u)?;
        let topic = u.choose(&TOPICS)?;
        let stamp = now() + chrono::Duration::seconds(i64::from(i16::arbitrary(u)?));
        headers = signature::sign(channel, &secret, &id, topic, stamp, &body);
    } else {
        body = Vec::new();
    }
    for _ in 0..u.int_in_range(0..=6)? {
        let name = HeaderName::from_static(u.choose(&HEADER_NAMES)?);
        let raw = Vec::<u8>::arbitrary(u)?;
        if let Ok(value) = HeaderValue::from_bytes(&raw) {
            headers.insert(name, value);
        }
    }
    let body = if signed_first {
        body
    } else {
        let rest = u.len();
        u.bytes(rest)?.to_vec()
    };
    let _ = signature::verify(channel, &headers, &body, &keys, now());
    Ok(())
}

/// `channels::parse` of every channel and topic with an arbitrary body; what parses is then
/// posted, and must balance or be refused cleanly.
pub fn channels(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Ok(channel) = channel(&mut u) else { return };
    let Ok(topic) = u.choose(&TOPICS).copied() else {
        return;
    };
    let body = u.take_rest();
    if let Ok(events) = shopbridge::channels::parse(channel, topic, body) {
        for event in &events {
            let state = OrderState::new(event.order_id().unwrap_or(""));
            check(posting::post(event, &context(), &state));
        }
    }
}

/// The posting engine with an arbitrary order and what may follow it (an update, a payment, a
/// refund, a cancellation), each posted on the state the previous one left.
pub fn posting(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Ok(events) = order_story(&mut u) else {
        return;
    };
    let ctx = context();
    let mut state = OrderState::new("1001");
    for event in &events {
        if let Some(next) = check(posting::post(event, &ctx, &state)) {
            state = next;
        }
    }
}

/// Panics unless every voucher of an accepted posting balances; returns the new state.
fn check(
    result: std::result::Result<posting::Posting, posting::PostingError>,
) -> Option<OrderState> {
    let posting = result.ok()?;
    for voucher in &posting.vouchers {
        let sum: i128 = voucher.lines().iter().map(|l| i128::from(l.amount.0)).sum();
        assert_eq!(sum, 0, "voucher {} does not balance", voucher.key());
        assert!(
            !voucher.lines().is_empty(),
            "voucher {} has no lines",
            voucher.key()
        );
    }
    Some(posting.state)
}

/// The engine's context as the worker builds it for the default company.
fn context() -> Context {
    Context {
        base_currency: "NOK".into(),
        connection: ConnectionSettings {
            id: uuid::Uuid::from_u128(1),
            prepaid_account: shopbridge::posting::AccountNo(1522),
            department: None,
            location: None,
            process_orders_from: NaiveDate::from_ymd_opt(2026, 1, 1).expect("valid date"),
            locked_period_policy: Default::default(),
            max_order_amount: shopbridge::posting::DEFAULT_MAX_ORDER_AMOUNT,
        },
        accounts: default_accounts().iter().map(|a| a.number).collect(),
        vat: VatTable::norwegian(),
        rules: default_rules(),
        system: SystemAccounts::default(),
        exchange_rate: None,
        event_date: NaiveDate::from_ymd_opt(2026, 3, 5).expect("valid date"),
        locked_periods: Default::default(),
    }
}

/// Mostly plausible amounts, sometimes extreme ones.
fn amount(u: &mut Unstructured<'_>) -> Result<Money> {
    Ok(Money(if u.ratio(1, 8)? {
        i64::arbitrary(u)?
    } else {
        i64::from(u.int_in_range(-1_000..=2_000_000)?)
    }))
}

fn line(u: &mut Unstructured<'_>, i: usize) -> Result<OrderLine> {
    let quantity = if u.ratio(1, 8)? {
        i64::arbitrary(u)?
    } else {
        i64::from(u.int_in_range(-2..=20)?)
    };
    let rate = if u.ratio(1, 8)? {
        u32::arbitrary(u)?
    } else {
        *u.choose(&[2500, 1500, 1200, 0, 600])?
    };
    Ok(OrderLine {
        kind: *u.choose(&[LineKind::Goods, LineKind::Shipping, LineKind::Fee])?,
        sku: Some(format!("SKU-{}", i % 3)),
        name: "Vare".into(),
        product_group: u
            .choose(&[None, Some("clothing".to_owned()), Some("food".to_owned())])?
            .clone(),
        quantity,
        unit_price: amount(u)?,
        discount: if bool::arbitrary(u)? {
            amount(u)?
        } else {
            Money::ZERO
        },
        vat_rate: Rate(rate),
        vat_amount: if u.ratio(1, 4)? {
            Some(amount(u)?)
        } else {
            None
        },
    })
}

fn order(u: &mut Unstructured<'_>, version: i64) -> Result<Order> {
    let lines = (0..u.int_in_range(0..=6)?)
        .map(|i| line(u, i))
        .collect::<Result<Vec<_>>>()?;
    let includes_vat = bool::arbitrary(u)?;
    // Usually the total the lines add up to (so the order posts), sometimes anything.
    // (Wrapping: this only guesses a matching total; extreme lines need none.)
    let gross: i128 = lines.iter().fold(0_i128, |sum, l| {
        let net = i128::from(l.unit_price.0)
            .wrapping_mul(i128::from(l.quantity))
            .wrapping_sub(i128::from(l.discount.0));
        let gross = if includes_vat {
            net
        } else {
            net.wrapping_add(net.wrapping_mul(i128::from(l.vat_rate.0)) / 10_000)
        };
        sum.wrapping_add(gross)
    });
    let total = if u.ratio(3, 4)? {
        Money(
            i64::try_from(gross)
                .unwrap_or(i64::MAX)
                .saturating_add(i64::from(u.int_in_range(-3..=3)?)),
        )
    } else {
        amount(u)?
    };
    let foreign = u.ratio(1, 6)?;
    Ok(Order {
        id: "1001".into(),
        number: "1001".into(),
        version,
        registered_at: now() - chrono::Duration::days(i64::from(u.int_in_range(0..=90)?)),
        currency: if foreign { "EUR".into() } else { "NOK".into() },
        exchange_rate: if foreign && bool::arbitrary(u)? {
            Some(ExchangeRate {
                micros: i64::arbitrary(u)?,
            })
        } else {
            None
        },
        prices_include_vat: includes_vat,
        customer: Some(Customer {
            id: "c-1".into(),
            name: "Kari".into(),
            email: None,
        }),
        lines,
        total,
        payment_method: u
            .choose(&[None, Some("card".to_owned()), Some("vipps".to_owned())])?
            .clone(),
        cancelled: u.ratio(1, 10)?,
    })
}

fn order_story(u: &mut Unstructured<'_>) -> Result<Vec<Event>> {
    let mut events = vec![Event::Order(order(u, 1)?)];
    for _ in 0..u.int_in_range(0..=4)? {
        events.push(match u.int_in_range(0..=3)? {
            0 => {
                let version = i64::from(u.int_in_range(0..=5)?);
                Event::Order(order(u, version)?)
            }
            1 => Event::Payment(Payment {
                id: format!("pay-{}", u.int_in_range(0..=2)?),
                order_id: "1001".into(),
                amount: amount(u)?,
                currency: (*u.choose(&["NOK", "EUR"])?).into(),
                method: Some("card".into()),
                fee: if bool::arbitrary(u)? {
                    Some(amount(u)?)
                } else {
                    None
                },
                captured_at: now(),
            }),
            2 => Event::Refund(Refund {
                id: format!("ref-{}", u.int_in_range(0..=2)?),
                order_id: "1001".into(),
                lines: (0..u.int_in_range(0..=3)?)
                    .map(|i| {
                        Ok(RefundLine {
                            sku: format!("SKU-{}", i % 3),
                            quantity: i64::from(u.int_in_range(-1..=5)?),
                            amount: amount(u)?,
                        })
                    })
                    .collect::<Result<Vec<_>>>()?,
                shipping: if bool::arbitrary(u)? {
                    Some(amount(u)?)
                } else {
                    None
                },
                amount: amount(u)?,
                currency: "NOK".into(),
                created_at: now(),
            }),
            _ => Event::OrderCancelled(OrderCancellation {
                order_id: "1001".into(),
                version: if bool::arbitrary(u)? {
                    Some(i64::from(u.int_in_range(0..=6)?))
                } else {
                    None
                },
                cancelled_at: now(),
            }),
        });
    }
    Ok(events)
}
