//! What refunds have credited of each order line, and the limit that follows from it: a refund
//! may credit of a line at most the units and the gross amount invoiced, less what earlier
//! refunds credited of it; refunded shipping likewise (by amount). A refund that asks for more
//! is refused whole, never clipped: a shop that sends it has books that differ from ours, and
//! an operator must see which line.
//!
//! The record ([`Returned`], in the order's state) survives across events, so the limit holds
//! over any number of refunds; the worker holds the order's row lock while posting, so two
//! refunds of one order are judged one after the other. It is kept through cancellations (a
//! unit refunded before a cancellation was still refunded) and through order updates, and an
//! update that would invoice less of a line than refunds already credited of it is refused
//! ([`check_update`]): the shop's snapshot keeps the units it sold, so such an update
//! contradicts a refund.
//!
//! The split of a refunded amount into net and VAT is cumulative: each refund credits the VAT
//! of everything refunded of the line so far, less what earlier refunds credited. Partial
//! refunds that add up to the whole line therefore credit exactly the invoice's net and VAT,
//! with no øre of rounding left over or credited twice.

use super::error::{PostingError, RefundExcess};
use super::event::{LineKind, Order, OrderLine, Refund};
use super::invoice::{describe, price};
use super::money::Money;
use super::state::Returned;
use super::vat::{self, Split};

/// One part of a refund matched to the order line it credits.
pub(crate) struct Part<'a> {
    /// The line's number in the order, from 1.
    pub no: usize,
    /// The line.
    pub line: &'a OrderLine,
    /// What this refund credits of it.
    pub split: Split,
}

/// Which lines a refund line (by SKU) or refunded shipping (`None`) can credit, with each
/// line's number and its index among the lines of that SKU (or shipping).
fn candidates<'a>(order: &'a Order, sku: Option<&str>) -> Vec<(usize, usize, &'a OrderLine)> {
    order
        .lines
        .iter()
        .enumerate()
        .filter(|(_, l)| match sku {
            Some(sku) => l.sku.as_deref() == Some(sku),
            None => l.kind == LineKind::Shipping,
        })
        .enumerate()
        .map(|(nth, (i, l))| (i + 1, nth, l))
        .collect()
}

fn record<'r>(returned: &'r [Returned], sku: Option<&str>, nth: usize) -> Option<&'r Returned> {
    returned
        .iter()
        .find(|r| r.sku.as_deref() == sku && r.nth == nth)
}

/// "3 units for 5000.00", or for shipping just the amount.
fn units(shipping: bool, quantity: i64, gross: Money) -> String {
    if shipping {
        gross.to_string()
    } else if quantity == 1 {
        format!("1 unit for {gross}")
    } else {
        format!("{quantity} units for {gross}")
    }
}

/// Matches every refund line and the refunded shipping to an order line with enough left to
/// refund, splits each into net and VAT, and adds them to `returned`.
///
/// # Errors
/// [`PostingError::UnknownRefundSku`] or [`PostingError::InvalidEvent`] when the refund names a
/// line the order does not have, and [`PostingError::RefundExceedsLine`] when it credits more of
/// a line than is left; `returned` is then as it was.
pub(crate) fn allocate<'a>(
    r: &Refund,
    order: &'a Order,
    returned: &mut Vec<Returned>,
) -> Result<Vec<Part<'a>>, PostingError> {
    let mut after = returned.clone();
    let mut parts = Vec::new();
    let asked = r
        .lines
        .iter()
        .map(|l| (Some(l.sku.as_str()), l.quantity, l.amount))
        .chain(r.shipping.filter(|s| !s.is_zero()).map(|s| (None, 0, s)));
    for (sku, quantity, amount) in asked {
        let mut first = None;
        let mut found = None;
        for (no, nth, l) in candidates(order, sku) {
            let whole = price(order, no, l)?;
            let before = record(&after, sku, nth).cloned().unwrap_or(Returned {
                sku: sku.map(str::to_owned),
                nth,
                quantity: 0,
                gross: Money::ZERO,
                vat: Money::ZERO,
            });
            let fits = before
                .quantity
                .checked_add(quantity)
                .is_some_and(|q| sku.is_none() || q <= l.quantity)
                && before
                    .gross
                    .checked_add(amount)
                    .is_some_and(|g| g <= whole.gross);
            if fits {
                found = Some((no, nth, l, whole, before));
                break;
            }
            first.get_or_insert((no, l, whole, before));
        }
        let Some((no, nth, l, whole, before)) = found else {
            return Err(refused(r, order, sku, quantity, amount, first));
        };
        let split = split_part(whole, l, &before, amount)
            .ok_or_else(|| PostingError::Overflow(describe(no, l)))?;
        let now = Returned {
            sku: sku.map(str::to_owned),
            nth,
            quantity: before.quantity + quantity,
            gross: Money(before.gross.0 + amount.0),
            vat: Money(before.vat.0 + split.vat.0),
        };
        match after
            .iter_mut()
            .find(|x| x.sku.as_deref() == sku && x.nth == nth)
        {
            Some(slot) => *slot = now,
            None => after.push(now),
        }
        parts.push(Part { no, line: l, split });
    }
    *returned = after;
    Ok(parts)
}

/// The error for a refund part that no line of the order has room for.
fn refused(
    r: &Refund,
    order: &Order,
    sku: Option<&str>,
    quantity: i64,
    amount: Money,
    first: Option<(usize, &OrderLine, Split, Returned)>,
) -> PostingError {
    let shipping = sku.is_none();
    let Some((no, l, whole, before)) = first else {
        return match sku {
            Some(sku) => PostingError::UnknownRefundSku {
                refund: r.id.clone(),
                sku: sku.to_owned(),
                order_id: order.id.clone(),
            },
            None => PostingError::InvalidEvent(format!(
                "refund {} refunds shipping {amount}, but order {} has no shipping",
                r.id, order.number
            )),
        };
    };
    let left = units(
        shipping,
        l.quantity.saturating_sub(before.quantity),
        Money(whole.gross.0.saturating_sub(before.gross.0)),
    );
    PostingError::RefundExceedsLine(Box::new(RefundExcess {
        refund: r.id.clone(),
        order: order.number.clone(),
        line: describe(no, l),
        asked: units(shipping, quantity, amount),
        left,
        invoiced: units(shipping, l.quantity, whole.gross),
    }))
}

/// What a refund of `amount` credits of a line whose invoice split is `whole`, after `before`:
/// the VAT of everything refunded so far (the invoice's own VAT once all of it is), less what
/// was credited already, kept within what the invoice charged. `None` on overflow.
fn split_part(whole: Split, l: &OrderLine, before: &Returned, amount: Money) -> Option<Split> {
    let after = before.gross.checked_add(amount)?;
    let vat_after = if after == whole.gross {
        whole.vat
    } else {
        let computed = vat::split(after, l.vat_rate, true, None)?.vat;
        // Bounds that keep both the VAT and the net credited within the invoice's, and this
        // part's VAT within 0..=amount; they cannot cross while `before` is within the invoice.
        let unrefunded = whole.gross.checked_sub(after)?;
        let low = whole.vat.checked_sub(unrefunded)?.max(before.vat);
        let high = whole.vat.min(before.vat.checked_add(amount)?);
        computed.max(low).min(high)
    };
    let vat = vat_after.checked_sub(before.vat)?;
    Some(Split {
        net: amount.checked_sub(vat)?,
        vat,
        gross: amount,
    })
}

/// Checks that a new snapshot of the order still invoices, of every line refunds credited,
/// at least what they credited: its units, gross amount, VAT and net.
///
/// # Errors
/// [`PostingError::UpdateBelowReturns`] naming the first line that falls short.
pub(crate) fn check_update(order: &Order, returned: &[Returned]) -> Result<(), PostingError> {
    for rec in returned {
        let shipping = rec.sku.is_none();
        let line = candidates(order, rec.sku.as_deref())
            .into_iter()
            .find(|(_, nth, _)| *nth == rec.nth);
        let credited = units(shipping, rec.quantity, rec.gross);
        let short = |line: String, invoiced: String| PostingError::UpdateBelowReturns {
            order: order.number.clone(),
            version: order.version,
            line,
            invoiced,
            returned: credited.clone(),
        };
        let Some((no, _, l)) = line else {
            let what = match &rec.sku {
                Some(sku) => format!("SKU {sku}"),
                None => "shipping".to_owned(),
            };
            return Err(short(what, "nothing".into()));
        };
        let whole = price(order, no, l)?;
        let net_before = rec.gross.checked_sub(rec.vat);
        let covers = (shipping || l.quantity >= rec.quantity)
            && whole.gross >= rec.gross
            && whole.vat >= rec.vat
            && net_before.is_some_and(|n| whole.net >= n);
        if !covers {
            let invoiced = units(shipping, l.quantity, whole.gross);
            return Err(short(describe(no, l), invoiced));
        }
    }
    Ok(())
}

/// The parts of `order` that `returned` records, as a refund of them would credit: each
/// record's line, with its gross amount and VAT as credited.
///
/// # Errors
/// [`PostingError::UpdateBelowReturns`] when the order no longer has a recorded line, which
/// [`check_update`] refuses first.
pub(crate) fn parts<'a>(
    order: &'a Order,
    returned: &[Returned],
) -> Result<Vec<Part<'a>>, PostingError> {
    check_update(order, returned)?;
    let mut parts = Vec::new();
    for rec in returned {
        let found = candidates(order, rec.sku.as_deref())
            .into_iter()
            .find(|(_, nth, _)| *nth == rec.nth);
        // check_update found every record's line.
        let Some((no, _, line)) = found else { continue };
        let overflow = || PostingError::Overflow(describe(no, line));
        let net = rec.gross.checked_sub(rec.vat).ok_or_else(overflow)?;
        let split = Split {
            net,
            vat: rec.vat,
            gross: rec.gross,
        };
        parts.push(Part { no, line, split });
    }
    Ok(parts)
}

/// Adds to `into` what `after` records beyond `before`: what one refund credited.
pub(crate) fn add_difference(into: &mut Vec<Returned>, before: &[Returned], after: &[Returned]) {
    for rec in after {
        let was = record(before, rec.sku.as_deref(), rec.nth);
        let (quantity, gross, vat) = was.map_or((0, 0, 0), |w| (w.quantity, w.gross.0, w.vat.0));
        let at = into
            .iter()
            .position(|x| x.sku == rec.sku && x.nth == rec.nth)
            .unwrap_or_else(|| {
                into.push(Returned {
                    quantity: 0,
                    gross: Money::ZERO,
                    vat: Money::ZERO,
                    ..rec.clone()
                });
                into.len() - 1
            });
        let slot = &mut into[at];
        // Within `after`, which `allocate` computed without overflow.
        slot.quantity += rec.quantity - quantity;
        slot.gross = Money(slot.gross.0 + rec.gross.0 - gross);
        slot.vat = Money(slot.vat.0 + rec.vat.0 - vat);
    }
}
