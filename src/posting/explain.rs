//! The dry run: which rule places each line of an order, and why, without posting anything.
//! The operators' API shows it next to an order, and after a rule change.

use serde::Serialize;

use super::chart::AccountNo;
use super::context::Context;
use super::event::{Order, OrderLine};
use super::invoice::{describe, facts, natural_code, placement, rule_kind};
use super::rules::{self, RuleKind};
use super::vat::VatCode;

/// How one order line (or its discount) would be placed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Explanation {
    /// 1-based line number in the order.
    pub line: usize,
    /// The line as errors name it: `line 2 "Kaffe" (goods, VAT 15 %)`.
    pub text: String,
    /// What is placed: the line's kind, or `discount` for its discount.
    pub kind: RuleKind,
    /// The VAT code the line would post with; `None` when it cannot be resolved.
    pub vat_code: Option<VatCode>,
    /// The winning rule's id; `None` when no rule matches.
    pub rule: Option<i64>,
    /// The account the line would post to; `None` when it cannot be placed.
    pub account: Option<AccountNo>,
    /// Why, in words: the winning rule and its criteria, the rules it beat, or the error.
    pub why: String,
}

/// Explains where every line of `order` (and every discount with a discount rule) would go.
/// Never fails: a line that cannot be placed says why in its explanation.
#[must_use]
pub fn explain(order: &Order, ctx: &Context) -> Vec<Explanation> {
    let mut out = Vec::new();
    for (i, l) in order.lines.iter().enumerate() {
        out.push(one(order, i + 1, l, rule_kind(l.kind), ctx));
        if !l.discount.is_zero() {
            out.push(one(order, i + 1, l, RuleKind::Discount, ctx));
        }
    }
    out
}

/// Explains line `no` placed as `kind`.
fn one(order: &Order, no: usize, l: &OrderLine, kind: RuleKind, ctx: &Context) -> Explanation {
    let mut e = Explanation {
        line: no,
        text: describe(no, l),
        kind,
        vat_code: None,
        rule: None,
        account: None,
        why: String::new(),
    };
    let natural = match natural_code(order, no, l, ctx) {
        Ok(code) => code,
        Err(err) => {
            e.why = err.to_string();
            return e;
        }
    };
    e.vat_code = Some(natural);
    let found = rules::candidates(
        &ctx.rules,
        ctx.connection.id,
        &facts(order, l, kind, natural),
    );
    let Some(best) = found.first() else {
        e.why = match kind {
            RuleKind::Discount => "no discount rule: netted into the line".into(),
            _ => format!("no posting rule places {}", e.text),
        };
        return e;
    };
    e.rule = Some(best.rule.id);
    match placement(best, natural, order, no, l, ctx) {
        Ok(p) => {
            e.vat_code = Some(p.vat_code);
            e.account = Some(p.account);
            let beaten: Vec<String> = found[1..].iter().map(|m| m.rule.id.to_string()).collect();
            e.why = if beaten.is_empty() {
                format!("{} matched", best.describe())
            } else {
                format!(
                    "{} matched; beat rule(s) {}",
                    best.describe(),
                    beaten.join(", ")
                )
            };
        }
        Err(err) => e.why = err.to_string(),
    }
    e
}
