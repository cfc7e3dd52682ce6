//! Canonical events: what every channel's payload becomes before it is posted.
//!
//! Channel adapters (`crate::channels`) parse a verified webhook body into these types; the
//! posting engine reads nothing else. Amounts are exact ([`Money`], minor units of the event's
//! own currency), ids are strings (Shopify's exceed 2^53 and must survive unchanged).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::money::{Money, Rate};

/// One thing that happened in a shop, in the channel-neutral form the ledger posts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Event {
    /// An order was registered or changed: a complete snapshot, ordered by `version`.
    Order(Order),
    /// An order was cancelled; whatever was invoiced for it is credited.
    OrderCancelled(OrderCancellation),
    /// Money was received for an order.
    Payment(Payment),
    /// Money (and possibly goods) went back to the customer.
    Refund(Refund),
    /// A product was created or changed: kept in the product register, never posted.
    Product(Product),
    /// A topic the channel sends that shopbridge does not post; recorded as ignored.
    Ignored {
        /// The channel's name for the event ("orders/fulfilled", "customer.created").
        topic: String,
    },
}

impl Event {
    /// The order the event belongs to; `None` for products and ignored topics. The worker locks
    /// this order's row and loads its state before posting.
    #[must_use]
    pub fn order_id(&self) -> Option<&str> {
        match self {
            Event::Order(o) => Some(&o.id),
            Event::OrderCancelled(c) => Some(&c.order_id),
            Event::Payment(p) => Some(&p.order_id),
            Event::Refund(r) => Some(&r.order_id),
            Event::Product(_) | Event::Ignored { .. } => None,
        }
    }
}

/// A full snapshot of an order as the shop sees it at `version`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    /// The shop's order id, exactly as sent.
    pub id: String,
    /// The human order number ("1001"), used in voucher descriptions.
    pub number: String,
    /// Grows with every change of the order; a snapshot older than the applied one is ignored.
    pub version: i64,
    /// When the customer placed the order; decides the voucher date and the
    /// `process_orders_from` cut-off.
    pub registered_at: DateTime<Utc>,
    /// ISO 4217 code of every amount in this order.
    pub currency: String,
    /// The rate to the company's base currency when the payload states one (Shopify's shop vs
    /// presentment money); `None` when the amounts are already in the base currency or the rate
    /// must come from the rates table.
    pub exchange_rate: Option<ExchangeRate>,
    /// True when `unit_price`, `discount` and shipping prices include VAT.
    pub prices_include_vat: bool,
    /// Who bought; `None` for an anonymous (guest) sale.
    pub customer: Option<Customer>,
    /// Goods, shipping and fees, each with its own VAT rate.
    pub lines: Vec<OrderLine>,
    /// The gross total the shop states (VAT included); the engine checks its own sum against it.
    pub total: Money,
    /// How the customer paid or will pay, when known; matched by payment-method rules.
    pub payment_method: Option<String>,
    /// True when the snapshot itself says the order is cancelled (Shopify sends `cancelled_at`).
    pub cancelled: bool,
}

/// What a line of an order is; posting rules match on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LineKind {
    /// Products sold.
    Goods,
    /// Freight charged to the customer.
    Shipping,
    /// A fee charged to the customer (gift wrap, invoice fee).
    Fee,
}

/// One line of an order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderLine {
    /// Goods, shipping or fee.
    pub kind: LineKind,
    /// The shop's stock keeping unit; refunds name lines by it.
    pub sku: Option<String>,
    /// The line's text, as the customer saw it.
    pub name: String,
    /// A product group or category, matched by posting rules.
    pub product_group: Option<String>,
    /// How many; always at least 1 (adapters refuse zero and negative quantities).
    pub quantity: i64,
    /// Price of one unit, VAT included or not as the order says.
    pub unit_price: Money,
    /// Discount on the whole line (not per unit), on the same VAT basis as the price; ≥ 0.
    pub discount: Money,
    /// The VAT rate of the line.
    pub vat_rate: Rate,
    /// The VAT amount the shop computed for the line, when it sends one; it wins over ours.
    pub vat_amount: Option<Money>,
}

/// A rate that converts an amount in the event's currency to the company's base currency.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExchangeRate {
    /// Base-currency amount of one unit of the event's currency, times 10^6 (NOK per USD
    /// 10.512 is `10_512_000`).
    pub micros: i64,
}

/// The buyer, as far as the shop tells.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Customer {
    /// The shop's customer id.
    pub id: String,
    /// Full name, or company name.
    pub name: String,
    /// Contact e-mail.
    pub email: Option<String>,
}

/// An order was cancelled.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderCancellation {
    /// The cancelled order.
    pub order_id: String,
    /// The order's version at cancellation, when the channel sends one.
    pub version: Option<i64>,
    /// When it was cancelled; the date of the credit note.
    pub cancelled_at: DateTime<Utc>,
}

/// Money received for an order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payment {
    /// The payment provider's transaction id; a payment is posted once per id.
    pub id: String,
    /// The order it pays.
    pub order_id: String,
    /// Amount received, in `currency`; positive.
    pub amount: Money,
    /// ISO 4217 code of `amount` and `fee`.
    pub currency: String,
    /// "card", "vipps", "invoice", ...; matched by payment-method rules.
    pub method: Option<String>,
    /// What the provider kept as its fee, when it says.
    pub fee: Option<Money>,
    /// When the money was captured; the voucher date.
    pub captured_at: DateTime<Utc>,
}

/// Money (and possibly goods) returned to the customer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refund {
    /// The refund's id; a refund is posted once per id.
    pub id: String,
    /// The order it refunds.
    pub order_id: String,
    /// The refunded order lines, by SKU.
    pub lines: Vec<RefundLine>,
    /// Refunded shipping, gross (VAT included), when any.
    pub shipping: Option<Money>,
    /// The total paid back, gross; equals the lines plus shipping.
    pub amount: Money,
    /// ISO 4217 code of every amount.
    pub currency: String,
    /// When the refund was made; the date of the credit note and the refund payment.
    pub created_at: DateTime<Utc>,
}

/// One refunded order line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundLine {
    /// The SKU of the order line refunded.
    pub sku: String,
    /// How many units went back.
    pub quantity: i64,
    /// The gross amount refunded for them (VAT included).
    pub amount: Money,
}

/// A product in the shop's catalogue.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Product {
    /// Stock keeping unit: the product's key.
    pub sku: String,
    /// Display name.
    pub name: String,
    /// The current price, when sent.
    pub price: Option<Money>,
    /// The product's VAT rate, when sent.
    pub vat_rate: Option<Rate>,
    /// Product group or category.
    pub product_group: Option<String>,
}
