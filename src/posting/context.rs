//! What the engine knows besides the event and the order's state: the company's chart, VAT
//! codes and rules, the connection's settings, and the per-event facts the worker resolves.

use std::collections::BTreeSet;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::chart::{AccountNo, SystemAccounts};
use super::error::PostingError;
use super::event::ExchangeRate;
use super::money::Money;
use super::periods::LockedPeriodPolicy;
use super::rules::Rule;
use super::vat::VatTable;

/// A connection's invoicing settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionSettings {
    /// The connection's id; selects its own posting rules.
    pub id: Uuid,
    /// Where payments land until settled (a provider's clearing account such as 1522).
    pub prepaid_account: AccountNo,
    /// Department put on every line unless a rule says otherwise.
    pub department: Option<String>,
    /// Location put on every line unless a rule says otherwise.
    pub location: Option<String>,
    /// Orders registered before this day are recorded as skipped, with their payments and
    /// refunds: they belong to the books kept before shopbridge.
    pub process_orders_from: NaiveDate,
    /// What to do with a voucher dated in a locked period.
    #[serde(default)]
    pub locked_period_policy: LockedPeriodPolicy,
    /// The largest order total (in the company's currency) posted without an operator: an
    /// order above it is refused for an operator to look at.
    #[serde(default = "default_max_order_amount")]
    pub max_order_amount: Money,
}

/// The default `max_order_amount`: 1 000 000.00 in the company's currency. Far above what a
/// webshop sells in one order, so a real order never meets it, and far below the totals a
/// broken or hostile payload sends.
pub const DEFAULT_MAX_ORDER_AMOUNT: Money = Money(100_000_000);

fn default_max_order_amount() -> Money {
    DEFAULT_MAX_ORDER_AMOUNT
}

/// Everything [`super::post`] reads besides the event and the order's prior state.
///
/// The worker loads the company and connection part once and caches it; `exchange_rate` and
/// `event_date` belong to one event, so it sets them per event with [`Context::for_event`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Context {
    /// The company's currency (ISO 4217, "NOK"): every voucher amount is in it.
    pub base_currency: String,
    /// The connection the event came through.
    pub connection: ConnectionSettings,
    /// The company's chart of accounts: the engine posts to no other account.
    pub accounts: BTreeSet<AccountNo>,
    /// The VAT codes with their rates over time and output-VAT accounts.
    pub vat: VatTable,
    /// The company's rules and those of any connection (others' never match).
    pub rules: Vec<Rule>,
    /// Receivables, rounding and card-fee accounts.
    pub system: SystemAccounts,
    /// Base-currency value of the event's currency, resolved by the worker from the payload or
    /// the rates table; `None` when there is none (fine while the event is in base currency).
    /// A rate in an order snapshot itself ([`super::event::Order::exchange_rate`]) wins.
    pub exchange_rate: Option<ExchangeRate>,
    /// The day the event happened (its `occurred_at`): the date of the credit note and new
    /// invoice that an order update causes, which the snapshot itself does not carry.
    pub event_date: NaiveDate,
    /// The company's locked months (their first days): no voucher is dated in one. Cached with
    /// the rest, so a lock or unlock reaches the worker within its cache's lifetime; the
    /// database refuses a voucher in a locked month all the same.
    #[serde(default)]
    pub locked_periods: BTreeSet<NaiveDate>,
}

impl Context {
    /// This context for one event: its exchange rate and date.
    #[must_use]
    pub fn for_event(&self, exchange_rate: Option<ExchangeRate>, event_date: NaiveDate) -> Context {
        Context {
            exchange_rate,
            event_date,
            ..self.clone()
        }
    }

    /// Checks that `account` is in the chart.
    ///
    /// # Errors
    /// [`PostingError::UnknownAccount`] naming the account and `used_by` (who wanted it).
    pub fn check_account(
        &self,
        account: AccountNo,
        used_by: impl FnOnce() -> String,
    ) -> Result<(), PostingError> {
        if self.accounts.contains(&account) {
            Ok(())
        } else {
            Err(PostingError::UnknownAccount {
                account,
                used_by: used_by(),
            })
        }
    }

    /// Checks every account the settings, system accounts, VAT table and rules name, so that an
    /// operator learns of a bad rule when saving it rather than when an order needs it.
    ///
    /// # Errors
    /// [`PostingError::UnknownAccount`] for the first account not in the chart.
    pub fn validate(&self) -> Result<(), PostingError> {
        let conn = &self.connection;
        self.check_account(conn.prepaid_account, || {
            "the connection's prepaid_account".into()
        })?;
        let system = [
            (self.system.receivable, "the receivables account"),
            (self.system.rounding, "the rounding account"),
            (self.system.card_fees, "the card-fee account"),
        ];
        for (account, name) in system {
            self.check_account(account, || name.into())?;
        }
        for entry in &self.vat.entries {
            if let Some(account) = entry.output_account {
                self.check_account(account, || format!("VAT code {}", entry.code))?;
            }
        }
        for rule in &self.rules {
            self.check_account(rule.then.account, || format!("rule {}", rule.id))?;
        }
        Ok(())
    }
}
