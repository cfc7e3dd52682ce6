//! SAF-T Financial 1.30 (Norway): the ledger of one company over a period as the XML file the
//! Norwegian Tax Administration asks for. [`export`] reads the ledger in one snapshot and
//! returns the document; the CLI writes it to a file, the admin API can return it.
//!
//! What goes where (see docs/operations.md for the operator's view):
//! - Header: shopbridge as the software, the company with its organisation number (required:
//!   an export without one is refused rather than filled with a made-up number).
//! - MasterFiles: every account with its grouping ([`grouping`]) and its opening and closing
//!   balance; the customers with receivable lines up to the period's end; the VAT codes; the
//!   departments (analysis type `A`) and locations (analysis type `S`, for "sted").
//! - GeneralLedgerEntries: one journal per number series, one transaction per voucher, one line
//!   per voucher line. Amounts come from integer øre through [`Money`]'s two-decimal display.

pub mod grouping;
mod render;
pub mod xml;

use std::collections::{BTreeMap, BTreeSet};

use chrono::{NaiveDate, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::db::reports::{
    self, ChartRow, CompanyRow, CustomerRow, ExportLine, ExportVoucher, PeriodSums, VatCodeRow,
};
use crate::posting::{Money, oslo_date};

/// Analysis type of departments: `A` (avdeling), as the standard's examples use it.
pub const DEPARTMENT_ANALYSIS: &str = "A";
/// Analysis type of locations ("sted/lager"): `S`, for "sted". The standard leaves the codes to
/// the file (every type used is declared in its AnalysisTypeTable); `S` follows the operators'
/// word and stays clear of `P` (prosjekt) and `K` (kostnadssted), which other systems use.
pub const LOCATION_ANALYSIS: &str = "S";

/// Why an export could not be made.
#[derive(Debug, thiserror::Error)]
pub enum SaftError {
    /// The period is empty or reversed.
    #[error("the period {from} to {to} is empty")]
    BadPeriod {
        /// First day asked for.
        from: NaiveDate,
        /// Last day asked for.
        to: NaiveDate,
    },
    /// The company has no organisation number, which the header requires.
    #[error(
        "company {company} has no organisation number, which a SAF-T file must name; set it with \
         `update companies set org_number = '<9 digits>' where id = '{company}'`"
    )]
    NoOrgNumber {
        /// The company.
        company: Uuid,
    },
    /// Accounts without a grouping: neither a default nor columns on `accounts`.
    #[error(
        "accounts {accounts} have no SAF-T grouping; set saft_grouping_category and \
         saft_grouping_code on them (docs/operations.md, \"SAF-T export\")"
    )]
    Ungrouped {
        /// The accounts, comma-separated.
        accounts: String,
    },
    /// The database failed.
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// An account as exported.
#[derive(Clone, Debug)]
struct AccountOut {
    number: i32,
    name: String,
    category: String,
    code: String,
    opening: Money,
    closing: Money,
}

/// A customer as exported, with its balances per receivable account.
#[derive(Clone, Debug)]
struct CustomerOut {
    id: String,
    name: String,
    email: Option<String>,
    balances: Vec<(i32, Money, Money)>,
}

/// Everything the document says, read from the ledger; rendering is pure.
#[derive(Clone, Debug)]
struct Data {
    company: CompanyRow,
    org_number: String,
    from: NaiveDate,
    to: NaiveDate,
    created: NaiveDate,
    accounts: Vec<AccountOut>,
    customers: Vec<CustomerOut>,
    /// (connection, shop customer id) → CustomerID in the file.
    customer_ids: BTreeMap<(Uuid, String), String>,
    vat: Vec<VatCodeRow>,
    /// (analysis type, id) → description.
    analysis: BTreeMap<(&'static str, String), String>,
    vouchers: Vec<ExportVoucher>,
    lines: Vec<ExportLine>,
}

/// The SAF-T Financial 1.30 document of `company` for vouchers dated `from` to `to`
/// (inclusive), as UTF-8 XML.
///
/// Run it inside a `REPEATABLE READ` transaction (the CLI does) so that balances, master files
/// and entries come from one snapshot while the worker keeps posting.
///
/// # Errors
/// [`SaftError`]: an empty period, no organisation number, accounts without a grouping, or a
/// database error.
pub async fn export(
    db: &mut PgConnection,
    company: Uuid,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<String, SaftError> {
    if to < from {
        return Err(SaftError::BadPeriod { from, to });
    }
    let company = reports::company(db, company).await?;
    let org_number = company
        .org_number
        .as_deref()
        .map(str::trim)
        .filter(|o| !o.is_empty())
        .ok_or(SaftError::NoOrgNumber {
            company: company.id,
        })?
        .to_owned();
    let chart = reports::chart(db, company.id).await?;
    let sums = reports::account_sums(db, company.id, from, to).await?;
    let accounts = accounts(&chart, &sums)?;
    let customer_rows = reports::customers(db, company.id).await?;
    let customer_sums = reports::customer_sums(db, company.id, from, to).await?;
    let (customers, customer_ids) = customers(&customer_rows, &customer_sums);
    let vat = reports::vat_codes(db, company.id).await?;
    let (vouchers, lines) = reports::vouchers_between(db, company.id, from, to).await?;
    let mut analysis = BTreeMap::new();
    for (locations, kind) in [(false, DEPARTMENT_ANALYSIS), (true, LOCATION_ANALYSIS)] {
        for (code, name) in reports::dimension_names(db, company.id, locations).await? {
            analysis.insert((kind, code), name);
        }
    }
    for l in &lines {
        for (kind, value) in [
            (DEPARTMENT_ANALYSIS, &l.department),
            (LOCATION_ANALYSIS, &l.location),
        ] {
            if let Some(v) = value {
                analysis
                    .entry((kind, v.clone()))
                    .or_insert_with(|| v.clone());
            }
        }
    }
    let data = Data {
        company,
        org_number,
        from,
        to,
        created: oslo_date(Utc::now()),
        accounts,
        customers,
        customer_ids,
        vat,
        analysis,
        vouchers,
        lines,
    };
    Ok(render::document(&data))
}

/// Income and expense accounts start each year at zero: their opening balance counts only the
/// lines since 1 January of the period's year. Balance-sheet accounts carry everything before.
fn opening(account_type: &str, s: &PeriodSums) -> i64 {
    if matches!(account_type, "income" | "expense") {
        s.before_in_year
    } else {
        s.before
    }
}

fn accounts(chart: &[ChartRow], sums: &[PeriodSums]) -> Result<Vec<AccountOut>, SaftError> {
    let mut ungrouped = Vec::new();
    let mut out = Vec::with_capacity(chart.len());
    for a in chart {
        let grouping = match (&a.saft_grouping_category, &a.saft_grouping_code) {
            (Some(c), Some(g)) => Some((c.clone(), g.clone())),
            _ => grouping::default_grouping(a.number).map(|(c, g)| (c.into(), g.into())),
        };
        let Some((category, code)) = grouping else {
            ungrouped.push(a.number.to_string());
            continue;
        };
        let (open, within) = sums
            .iter()
            .find(|s| s.account == a.number)
            .map_or((0, 0), |s| (opening(&a.account_type, s), s.within));
        out.push(AccountOut {
            number: a.number,
            name: a.name.clone(),
            category,
            code,
            opening: Money(open),
            closing: Money(open + within),
        });
    }
    if ungrouped.is_empty() {
        Ok(out)
    } else {
        Err(SaftError::Ungrouped {
            accounts: ungrouped.join(", "),
        })
    }
}

type CustomerIds = BTreeMap<(Uuid, String), String>;

/// The customers with receivable lines up to the period's end, and the id each gets in the
/// file: the shop's id, prefixed with the connection when two shops of the company use it.
fn customers(rows: &[CustomerRow], sums: &[PeriodSums]) -> (Vec<CustomerOut>, CustomerIds) {
    let keys: BTreeSet<(Uuid, String)> = sums
        .iter()
        .map(|s| (s.connection_id, s.customer_id.clone()))
        .collect();
    let mut shops_per_id: BTreeMap<&str, usize> = BTreeMap::new();
    for (_, id) in &keys {
        *shops_per_id.entry(id.as_str()).or_default() += 1;
    }
    let mut ids = BTreeMap::new();
    let mut out = Vec::new();
    for (connection, shop_id) in &keys {
        let id = if shops_per_id.get(shop_id.as_str()).copied().unwrap_or(0) > 1 {
            format!("{}-{shop_id}", &connection.simple().to_string()[..8])
        } else {
            shop_id.clone()
        };
        let row = rows
            .iter()
            .find(|r| r.connection_id == *connection && r.shop_customer_id == *shop_id);
        let balances = sums
            .iter()
            .filter(|s| s.connection_id == *connection && s.customer_id == *shop_id)
            .map(|s| (s.account, Money(s.before), Money(s.before + s.within)))
            .collect();
        ids.insert((*connection, shop_id.clone()), id.clone());
        out.push(CustomerOut {
            id,
            name: row.map_or_else(|| shop_id.clone(), |r| r.name.clone()),
            email: row.and_then(|r| r.email.clone()),
            balances,
        });
    }
    (out, ids)
}
