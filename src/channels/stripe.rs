//! Stripe events: captured payments for orders.
//!
//! `payment_intent.succeeded` becomes a payment with the PaymentIntent's id. A
//! `charge.succeeded` that belongs to a PaymentIntent is ignored, because the PaymentIntent's
//! event posts the same money; a captured charge of the older Charges API, without one, becomes a
//! payment with the charge's id. Stripe does not know the shop's orders: the order id must be in
//! the object's `metadata.order_id`, which the shop sets when it creates the payment. Amounts
//! are whole minor units; currencies whose minor unit is not 1/100 (JPY, KWD, ...) are refused
//! rather than posted a hundred times wrong. The fee is not in the event (it sits on the balance
//! transaction), so it is left unset. Every other event type is ignored.

use chrono::{DateTime, Utc};

use super::AdapterError;
use super::json::{self, Node, Obj, invalid};
use crate::posting::event::{Event, Payment};
use crate::posting::money::Money;

/// Currencies whose amounts Stripe writes in units other than hundredths.
const NOT_HUNDREDTHS: [&str; 21] = [
    "BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA", "PYG", "RWF", "UGX", "VND", "VUV",
    "XAF", "XOF", "XPF", "BHD", "JOD", "KWD", "OMR", "TND",
];

/// Reads one Stripe event; its `type` decides.
pub(super) fn parse(body: &[u8]) -> Result<Vec<Event>, AdapterError> {
    let event = json::root(body)?;
    let kind = event.req_as("type", Node::text_nonempty)?;
    let object = || event.req_object("data")?.req_object("object");
    let payment = match kind.as_str() {
        "payment_intent.succeeded" => Some(payment(&event, &object()?, "amount_received")?),
        "charge.succeeded" => {
            let charge = object()?;
            let captured = charge.opt("captured", Node::boolean)? == Some(true);
            let own = charge.opt_text("payment_intent")?.is_none();
            if captured && own {
                Some(payment(&event, &charge, "amount_captured")?)
            } else {
                None
            }
        }
        _ => None,
    };
    Ok(vec![match payment {
        Some(p) => Event::Payment(p),
        None => Event::Ignored { topic: kind },
    }])
}

/// The payment in `object` (a PaymentIntent or a Charge), dated by the event's `created`.
fn payment(event: &Obj<'_>, object: &Obj<'_>, amount_key: &str) -> Result<Payment, AdapterError> {
    let currency = object.req_as("currency", Node::currency)?;
    if NOT_HUNDREDTHS.contains(&currency.as_str()) {
        return Err(AdapterError::Unsupported {
            path: object.child("currency"),
            value: currency,
            expected: "currencies with two decimals",
        });
    }
    let amount = object.req_as(amount_key, Node::integer)?;
    if amount <= 0 {
        return Err(invalid(
            &object.child(amount_key),
            format!("must be more than zero, got {amount}"),
        ));
    }
    let metadata = object.opt_object("metadata")?;
    let order_id = metadata.as_ref().and_then(|m| m.get("order_id"));
    let order_id = order_id.ok_or_else(|| {
        let reason = "missing: set metadata.order_id when creating the payment, so it can be matched to its order";
        invalid(&object.child("metadata.order_id"), reason)
    })?;
    let method = match object.list("payment_method_types")?.first() {
        Some(first) => Some(first.string()?),
        None => object
            .opt_object("payment_method_details")?
            .map(|d| d.opt_text("type"))
            .transpose()?
            .flatten(),
    };
    Ok(Payment {
        id: object.req_as("id", Node::text_nonempty)?,
        order_id: order_id.id()?,
        amount: Money(amount),
        currency,
        method,
        fee: None,
        captured_at: event.req_as("created", unix_time)?,
    })
}

/// Seconds since the epoch, as Stripe writes times.
fn unix_time(n: &Node<'_>) -> Result<DateTime<Utc>, AdapterError> {
    let secs = n.integer()?;
    DateTime::from_timestamp(secs, 0)
        .ok_or_else(|| invalid(n.path(), format!("{secs} is not a time")))
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    fn intent() -> Value {
        json!({"id": "evt_1", "type": "payment_intent.succeeded", "created": 1_772_446_531,
               "data": {"object": {"id": "pi_3Q", "object": "payment_intent", "amount": 72600,
                 "amount_received": 72600, "currency": "nok", "payment_method_types": ["card"],
                 "metadata": {"order_id": "1001"}}}})
    }

    fn events(body: &Value) -> Result<Vec<Event>, AdapterError> {
        parse(body.to_string().as_bytes())
    }

    #[test]
    fn a_succeeded_payment_intent_is_a_payment_for_its_order() {
        let expected = Payment {
            id: "pi_3Q".into(),
            order_id: "1001".into(),
            amount: Money(72600),
            currency: "NOK".into(),
            method: Some("card".into()),
            fee: None,
            captured_at: DateTime::from_timestamp(1_772_446_531, 0).unwrap(),
        };
        assert_eq!(events(&intent()).unwrap(), [Event::Payment(expected)]);
    }

    #[test]
    fn a_charge_of_a_payment_intent_is_ignored_and_a_lone_charge_is_posted() {
        let charge = |pi: Value| {
            json!({"type": "charge.succeeded", "created": 1_772_446_531, "data": {"object": {
                "id": "ch_1", "amount_captured": 12900, "captured": true, "currency": "nok",
                "payment_intent": pi, "metadata": {"order_id": 1001},
                "payment_method_details": {"type": "card"}}}})
        };
        let ignored = Event::Ignored {
            topic: "charge.succeeded".into(),
        };
        assert_eq!(events(&charge(json!("pi_3Q"))).unwrap(), [ignored]);
        let posted = events(&charge(Value::Null)).unwrap();
        let [Event::Payment(p)] = posted.as_slice() else {
            panic!("{posted:?}")
        };
        assert_eq!(
            (p.id.as_str(), p.order_id.as_str(), p.amount),
            ("ch_1", "1001", Money(12900))
        );
    }

    #[test]
    fn payments_without_an_order_or_in_other_minor_units_are_refused() {
        let mut body = intent();
        body["data"]["object"]["metadata"] = json!({});
        let err = events(&body).unwrap_err().to_string();
        assert!(
            err.starts_with("data.object.metadata.order_id: missing"),
            "{err}"
        );
        body["data"]["object"]["currency"] = json!("jpy");
        let err = events(&body).unwrap_err().to_string();
        assert_eq!(
            err,
            "data.object.currency: `JPY` is not supported (currencies with two decimals)"
        );
        let other = json!({"type": "customer.created", "data": {"object": {}}});
        assert_eq!(
            events(&other).unwrap(),
            [Event::Ignored {
                topic: "customer.created".into()
            }]
        );
    }
}
