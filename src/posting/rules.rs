//! Posting rules: which account (and VAT code, department, location) a line goes to.
//!
//! A rule has optional criteria and a placement. A rule matches a line when every criterion it
//! sets holds; among the matches the most specific wins:
//!
//! 1. more criteria set beats fewer (a rule for "shipping at code 3" beats one for "code 3");
//! 2. at equal count, a rule of this connection beats a company-wide one;
//! 3. at equal everything, the lower rule id wins, so the choice never depends on load order.
//!
//! Count comes before scope on purpose: a connection rule "code 3 → 3001" should not swallow
//! the company's more precise "shipping at code 3 → 3080"; to override that, a connection writes
//! an equally precise rule.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::chart::AccountNo;
use super::money::Rate;
use super::vat::VatCode;

/// What a line is, as rules see it: an order line's kind, or one of the lines the engine makes
/// itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleKind {
    /// Products sold.
    Goods,
    /// Freight charged.
    Shipping,
    /// A fee charged to the customer.
    Fee,
    /// A line discount; posted on its own only when a rule names this kind.
    Discount,
    /// The money side of a payment (default: the connection's prepaid account).
    Payment,
    /// The money side of a refund paid back (default: the connection's prepaid account).
    Refund,
}

/// Conditions a line must meet; `None` means "any". Each condition set counts once towards
/// the rule's specificity.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Criteria {
    /// The line kind. Unset matches goods, shipping and fee lines only: a discount goes on its
    /// own account, and money moves off the prepaid account, only by a rule that says so, so a
    /// broad revenue rule can never move cash.
    pub kind: Option<RuleKind>,
    /// The VAT code the line's rate resolves to.
    pub vat_code: Option<VatCode>,
    /// The line's VAT rate.
    pub vat_rate: Option<Rate>,
    /// The start of the line's SKU (case-sensitive, as SKUs are).
    pub sku_prefix: Option<String>,
    /// The line's product group (ignoring ASCII case).
    pub product_group: Option<String>,
    /// The order's or payment's method, "card", "vipps" (ignoring ASCII case).
    pub payment_method: Option<String>,
}

/// Where a matched line goes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Placement {
    /// The account posted to.
    pub account: AccountNo,
    /// Replaces the VAT code resolved from the line's rate (e.g. 52 for exports); it must have
    /// the same rate.
    pub vat_code: Option<VatCode>,
    /// Replaces the connection's department.
    pub department: Option<String>,
    /// Replaces the connection's location.
    pub location: Option<String>,
}

/// One posting rule.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule {
    /// The database id; breaks ties (lower wins) and names the rule in explanations.
    pub id: i64,
    /// `Some` for a rule of one connection only; `None` for a company-wide rule.
    pub connection: Option<Uuid>,
    /// When the rule applies.
    pub when: Criteria,
    /// Where it puts the line.
    pub then: Placement,
}

/// What rules may look at on one line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LineFacts<'a> {
    /// The kind of line.
    pub kind: RuleKind,
    /// Its VAT code (resolved from the rate), when it has one.
    pub vat_code: Option<VatCode>,
    /// Its VAT rate, when it has one.
    pub vat_rate: Option<Rate>,
    /// Its SKU.
    pub sku: Option<&'a str>,
    /// Its product group.
    pub product_group: Option<&'a str>,
    /// The payment method of the order or payment.
    pub payment_method: Option<&'a str>,
}

/// A rule that matches a line, with how specific it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Match<'r> {
    /// The rule.
    pub rule: &'r Rule,
    /// How many criteria it sets (all of which hold).
    pub criteria: usize,
}

impl Match<'_> {
    /// Why this rule placed the line, for operators: "rule 7 (company-wide, 2 criteria:
    /// kind=shipping, vat_code=3)".
    #[must_use]
    pub fn describe(&self) -> String {
        let c = &self.rule.when;
        let mut parts = Vec::new();
        if let Some(k) = c.kind {
            parts.push(format!("kind={}", kind_name(k)));
        }
        if let Some(code) = c.vat_code {
            parts.push(format!("vat_code={code}"));
        }
        if let Some(rate) = c.vat_rate {
            parts.push(format!("vat_rate={rate} %"));
        }
        if let Some(p) = &c.sku_prefix {
            parts.push(format!("sku_prefix={p}"));
        }
        if let Some(g) = &c.product_group {
            parts.push(format!("product_group={g}"));
        }
        if let Some(m) = &c.payment_method {
            parts.push(format!("payment_method={m}"));
        }
        let scope = if self.rule.connection.is_some() {
            "this connection"
        } else {
            "company-wide"
        };
        let n = self.criteria;
        format!(
            "rule {} ({scope}, {n} criteria: {})",
            self.rule.id,
            parts.join(", ")
        )
    }
}

/// The operators' name of a kind ("goods").
#[must_use]
pub fn kind_name(kind: RuleKind) -> &'static str {
    match kind {
        RuleKind::Goods => "goods",
        RuleKind::Shipping => "shipping",
        RuleKind::Fee => "fee",
        RuleKind::Discount => "discount",
        RuleKind::Payment => "payment",
        RuleKind::Refund => "refund",
    }
}

impl Criteria {
    /// How many criteria this sets, when all of them hold for `facts`.
    fn score(&self, facts: &LineFacts<'_>) -> Option<usize> {
        let kind_ok = match self.kind {
            Some(k) => k == facts.kind,
            None => matches!(
                facts.kind,
                RuleKind::Goods | RuleKind::Shipping | RuleKind::Fee
            ),
        };
        let same = |want: &Option<String>, have: Option<&str>| {
            want.as_ref()
                .is_none_or(|w| have.is_some_and(|h| h.eq_ignore_ascii_case(w)))
        };
        let holds = kind_ok
            && self.vat_code.is_none_or(|c| facts.vat_code == Some(c))
            && self.vat_rate.is_none_or(|r| facts.vat_rate == Some(r))
            && self
                .sku_prefix
                .as_ref()
                .is_none_or(|p| facts.sku.is_some_and(|s| s.starts_with(p.as_str())))
            && same(&self.product_group, facts.product_group)
            && same(&self.payment_method, facts.payment_method);
        let set = [
            self.kind.is_some(),
            self.vat_code.is_some(),
            self.vat_rate.is_some(),
            self.sku_prefix.is_some(),
            self.product_group.is_some(),
            self.payment_method.is_some(),
        ];
        holds.then(|| set.iter().filter(|s| **s).count())
    }
}

/// Every rule that matches `facts` for `connection`, best first (see the module docs for the
/// order). Rules of other connections never match.
#[must_use]
pub fn candidates<'r>(
    rules: &'r [Rule],
    connection: Uuid,
    facts: &LineFacts<'_>,
) -> Vec<Match<'r>> {
    let mut found: Vec<Match<'r>> = rules
        .iter()
        .filter(|r| r.connection.is_none_or(|c| c == connection))
        .filter_map(|rule| {
            rule.when
                .score(facts)
                .map(|criteria| Match { rule, criteria })
        })
        .collect();
    found.sort_by_key(|m| {
        (
            std::cmp::Reverse(m.criteria),
            m.rule.connection.is_none(),
            m.rule.id,
        )
    });
    found
}

/// The rule that places a line, when any does.
#[must_use]
pub fn best<'r>(rules: &'r [Rule], connection: Uuid, facts: &LineFacts<'_>) -> Option<Match<'r>> {
    candidates(rules, connection, facts).into_iter().next()
}

/// The default rules, company-wide, ids 1–7: sales by VAT code to 3000/3030/3050 (25/15/12 %),
/// 3100 (zero-rated), 3105 (export) and 3200 (outside the VAT act), and shipping at 25 % to its
/// own income account 3080. No payment or discount rules: payments use the connection's prepaid
/// account and discounts are netted into their lines until an operator adds rules.
#[must_use]
pub fn default_rules() -> Vec<Rule> {
    let by_code = [
        (3, 3000),
        (31, 3030),
        (33, 3050),
        (5, 3100),
        (52, 3105),
        (6, 3200),
    ];
    let mut rules: Vec<Rule> = by_code
        .into_iter()
        .zip(1..)
        .map(|((code, account), id)| Rule {
            id,
            connection: None,
            when: Criteria {
                vat_code: Some(VatCode(code)),
                ..Criteria::default()
            },
            then: placed(account),
        })
        .collect();
    rules.push(Rule {
        id: 7,
        connection: None,
        when: Criteria {
            kind: Some(RuleKind::Shipping),
            vat_code: Some(VatCode(3)),
            ..Criteria::default()
        },
        then: placed(3080),
    });
    rules
}

fn placed(account: u32) -> Placement {
    Placement {
        account: AccountNo(account),
        vat_code: None,
        department: None,
        location: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(kind: RuleKind, code: u16) -> LineFacts<'static> {
        LineFacts {
            kind,
            vat_code: Some(VatCode(code)),
            vat_rate: None,
            sku: Some("KAFFE-1"),
            product_group: Some("Food"),
            payment_method: None,
        }
    }

    #[test]
    fn the_most_specific_rule_wins() {
        let rules = default_rules();
        let conn = Uuid::nil();
        let shipping = best(&rules, conn, &facts(RuleKind::Shipping, 3)).unwrap();
        assert_eq!(shipping.rule.then.account, AccountNo(3080));
        let goods = best(&rules, conn, &facts(RuleKind::Goods, 3)).unwrap();
        assert_eq!(goods.rule.then.account, AccountNo(3000));
        let shipping_15 = best(&rules, conn, &facts(RuleKind::Shipping, 31)).unwrap();
        assert_eq!(shipping_15.rule.then.account, AccountNo(3030));
    }

    #[test]
    fn connection_rules_beat_company_rules_at_equal_count_and_ids_break_ties() {
        let conn = Uuid::from_u128(7);
        let mut rules = default_rules();
        let group = Criteria {
            product_group: Some("food".into()),
            ..Criteria::default()
        };
        rules.push(Rule {
            id: 20,
            connection: None,
            when: group.clone(),
            then: placed(3031),
        });
        rules.push(Rule {
            id: 30,
            connection: Some(conn),
            when: group.clone(),
            then: placed(3032),
        });
        rules.push(Rule {
            id: 10,
            connection: Some(conn),
            when: group,
            then: placed(3033),
        });
        let m = best(&rules, conn, &facts(RuleKind::Goods, 31)).unwrap();
        assert_eq!(m.rule.id, 10);
        let other = best(&rules, Uuid::from_u128(8), &facts(RuleKind::Goods, 31)).unwrap();
        assert_eq!(other.rule.id, 2);
    }

    #[test]
    fn broad_rules_never_place_money_or_discounts() {
        let rules = default_rules();
        let mut payment = facts(RuleKind::Payment, 3);
        payment.vat_code = None;
        assert!(best(&rules, Uuid::nil(), &payment).is_none());
        assert!(best(&rules, Uuid::nil(), &facts(RuleKind::Discount, 3)).is_none());
    }
}
