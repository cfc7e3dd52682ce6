//! The chart of accounts as the engine sees it: account numbers, their types, and the small
//! default chart for a Norwegian webshop that the database seed and the default rules share.
//!
//! The names are our own wording. The SAF-T standard-account list is licensed for SAF-T mapping
//! only, so it is deliberately not the source of this chart.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::vat::VatCode;

/// An account number in the company's chart ("1500"). Norwegian charts use four digits, but
/// nothing here assumes that.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AccountNo(pub u32);

impl fmt::Display for AccountNo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// What kind of balance an account holds; decides where it lands in the financial statements.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountType {
    /// Something the company owns or is owed (receivables, bank, clearing).
    Asset,
    /// Something the company owes (VAT to pay, customer prepayments).
    Liability,
    /// The owners' capital.
    Equity,
    /// Sales and other revenue.
    Income,
    /// Costs (fees, rounding).
    Expense,
}

/// One account of the chart.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// The account number.
    pub number: AccountNo,
    /// What the account holds, in the operators' language.
    pub name: String,
    /// Asset, liability, equity, income or expense.
    pub account_type: AccountType,
    /// The VAT code normally posted on this account (a sales account's rate), shown to operators
    /// and used by the seed; `None` for accounts outside VAT (balances, VAT accounts themselves).
    pub vat_code: Option<VatCode>,
}

/// Accounts the engine posts to on its own, whatever the rules say.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SystemAccounts {
    /// Customer receivables: every invoice, payment and refund meets here, per customer.
    pub receivable: AccountNo,
    /// Where øre differences land: the shop's total against our sum, and currency conversion.
    pub rounding: AccountNo,
    /// Fees a payment provider keeps from a payment.
    pub card_fees: AccountNo,
}

impl Default for SystemAccounts {
    /// 1500 receivables, 7740 rounding, 7770 card fees, as in [`default_accounts`].
    fn default() -> Self {
        SystemAccounts {
            receivable: AccountNo(1500),
            rounding: AccountNo(7740),
            card_fees: AccountNo(7770),
        }
    }
}

/// The default chart: number, name, type, default VAT code.
const DEFAULT_CHART: [(u32, &str, AccountType, Option<u16>); 16] = [
    (
        1500,
        "Kunder, utestående fordringer",
        AccountType::Asset,
        None,
    ),
    (
        1522,
        "Til gode hos betalingsformidler",
        AccountType::Asset,
        None,
    ),
    (1920, "Bankinnskudd", AccountType::Asset, None),
    (
        2700,
        "Utgående mva, alminnelig sats 25 %",
        AccountType::Liability,
        None,
    ),
    (
        2701,
        "Utgående mva, middels sats 15 %",
        AccountType::Liability,
        None,
    ),
    (
        2703,
        "Utgående mva, lav sats 12 %",
        AccountType::Liability,
        None,
    ),
    (
        2900,
        "Forskudd mottatt fra kunder",
        AccountType::Liability,
        None,
    ),
    (3000, "Varesalg, 25 % mva", AccountType::Income, Some(3)),
    (3030, "Varesalg, 15 % mva", AccountType::Income, Some(31)),
    (3050, "Varesalg, 12 % mva", AccountType::Income, Some(33)),
    (
        3080,
        "Frakt fakturert kunder, 25 % mva",
        AccountType::Income,
        Some(3),
    ),
    (
        3100,
        "Salg fritatt for mva (nullsats)",
        AccountType::Income,
        Some(5),
    ),
    (
        3105,
        "Salg til utlandet (utførsel)",
        AccountType::Income,
        Some(52),
    ),
    (3200, "Salg utenfor mva-loven", AccountType::Income, Some(6)),
    (
        7740,
        "Øreavrunding og valutaøre",
        AccountType::Expense,
        None,
    ),
    (
        7770,
        "Kort- og betalingsgebyrer",
        AccountType::Expense,
        None,
    ),
];

/// The default chart for a Norwegian webshop: enough to post orders, payments and refunds at
/// every Norwegian VAT rate. The database seed inserts exactly these, so that the engine's
/// defaults ([`super::rules::default_rules`], [`SystemAccounts::default`]) always find their
/// accounts.
#[must_use]
pub fn default_accounts() -> Vec<Account> {
    DEFAULT_CHART
        .into_iter()
        .map(|(number, name, account_type, vat_code)| Account {
            number: AccountNo(number),
            name: name.to_owned(),
            account_type,
            vat_code: vat_code.map(VatCode),
        })
        .collect()
}
