//! Vouchers posted for an order before its first snapshot arrived, and what becomes of them.
//!
//! A payment may arrive before its order, and is posted at once: the customer stands in credit
//! until the invoice meets it. Whether the order is one shopbridge posts at all is only known
//! when its snapshot comes: registered before `process_orders_from`, it is skipped with its
//! payments and refunds. What was posted for it meanwhile is then reversed by a new voucher,
//! `reversal:{key}`, that names the key it reverses (a posted voucher never changes), and the
//! event that posted it is reported skipped, as it would have been in order.
//!
//! So the end of the story does not depend on the order of arrival, in the sense that matters
//! to the books: every account's net movement, and every event's status, are those of the
//! in-order story. The ledger itself differs, and must: in order nothing is posted, out of
//! order a payment and its reversal are.

use chrono::NaiveDate;

use super::context::Context;
use super::error::PostingError;
use super::state::{OrderState, Outcome, PostedEarly, Posting};
use super::voucher::{Voucher, VoucherHead, VoucherLine};

/// Keeps the vouchers of an event posted while its order is still unknown, so that they can be
/// reversed if the order turns out to be skipped.
pub(crate) fn remember(mut posting: Posting, prior: &OrderState) -> Posting {
    if prior.is_unknown() && posting.state.is_unknown() {
        let early = posting.vouchers.iter().map(|v| PostedEarly {
            key: v.key().to_owned(),
            kind: v.kind(),
            date: v.date(),
            description: v.description().to_owned(),
            lines: v.lines().to_vec(),
        });
        posting.state.posted_before_order.extend(early);
    }
    posting
}

/// When this event made the order known: reverses what was posted before it if the order is
/// skipped, and forgets it either way (an order that is posted meets its early payments with
/// its invoice).
pub(crate) fn settle(
    mut posting: Posting,
    prior: &OrderState,
    ctx: &Context,
) -> Result<Posting, PostingError> {
    if !prior.is_unknown() || posting.state.is_unknown() {
        return Ok(posting);
    }
    let early = std::mem::take(&mut posting.state.posted_before_order);
    let Some(reason) = posting.state.skipped.clone() else {
        return Ok(posting);
    };
    if early.is_empty() {
        return Ok(posting);
    }
    let number = posting
        .state
        .snapshot
        .as_ref()
        .map_or(posting.state.order_id.as_str(), |o| o.number.as_str())
        .to_owned();
    let cutoff = ctx.connection.process_orders_from;
    for e in &early {
        let reversal = reversal(e, &posting.state.order_id, &number, cutoff, ctx.event_date)?;
        posting.vouchers.push(reversal);
    }
    let keys: Vec<&str> = early.iter().map(|e| e.key.as_str()).collect();
    posting.outcome = Outcome::Skipped(format!(
        "{reason}; reverses {}, posted before the order arrived",
        keys.join(", ")
    ));
    Ok(posting)
}

/// The voucher reversing `early` exactly, dated the day of the event that skipped the order,
/// but never before the voucher it reverses.
fn reversal(
    early: &PostedEarly,
    order_id: &str,
    number: &str,
    cutoff: NaiveDate,
    date: NaiveDate,
) -> Result<Voucher, PostingError> {
    let head = VoucherHead {
        key: format!("reversal:{}", early.key),
        kind: early.kind,
        date: date.max(early.date),
        description: format!(
            "Tilbakeføring: {} (ordre {number} er registrert før {cutoff})",
            early.description
        ),
        order_id: order_id.to_owned(),
        reverses: Some(early.key.clone()),
    };
    let lines = early.lines.iter().map(VoucherLine::reversed).collect();
    Ok(Voucher::balanced(head, lines)?)
}

/// An event set aside after the fact: it posted a voucher before its order arrived, and the
/// order was skipped, so that voucher is reversed and the event counts as skipped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SetAside {
    /// The key of the voucher the event posted (the worker finds the event by it).
    pub reversed: String,
    /// The event's new reason, for operators.
    pub reason: String,
}

/// For a voucher of a skipped order that reverses one posted before the order arrived: which
/// voucher, and why the event that posted it is skipped now. `None` for any other voucher.
///
/// An order skipped at its first snapshot never posts anything but these reversals, so a
/// voucher of a skipped order that names a key it reverses is one.
#[must_use]
pub fn set_aside_reason(state: &OrderState, voucher: &Voucher) -> Option<SetAside> {
    let skipped = state.skipped.as_ref()?;
    let reversed = voucher.reverses()?;
    (voucher.order_id() == state.order_id).then(|| SetAside {
        reversed: reversed.to_owned(),
        reason: format!(
            "order {} is skipped: {skipped}; {reversed} is reversed by {}",
            state.order_id,
            voucher.key()
        ),
    })
}
