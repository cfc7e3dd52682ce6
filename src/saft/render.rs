//! The document itself, element by element in the schema's order. Pure: [`document`] turns
//! what [`super::export`] read into XML.

use chrono::{Datelike, NaiveDate};

use super::xml::Writer;
use super::{AccountOut, CustomerOut, DEPARTMENT_ANALYSIS, Data, LOCATION_ANALYSIS, grouping};
use crate::db::reports::{ExportLine, ExportVoucher, VatCodeRow};
use crate::posting::Money;

const NAMESPACE: &str = "urn:StandardAuditFile-Taxation-Financial:NO";

// Text lengths of the schema's string types.
const CODE: usize = 9;
const SHORT: usize = 18;
const MIDDLE1: usize = 35;
const MIDDLE2: usize = 70;
const LONG: usize = 256;

pub(super) fn document(d: &Data) -> String {
    let mut w = Writer::new();
    w.root("AuditFile", NAMESPACE);
    header(&mut w, d);
    w.start("MasterFiles");
    accounts(&mut w, &d.accounts);
    customers(&mut w, &d.customers);
    tax_table(&mut w, &d.vat, d.to);
    analysis_types(&mut w, d);
    w.end();
    entries(&mut w, d);
    w.finish()
}

fn header(w: &mut Writer, d: &Data) {
    w.start("Header");
    w.leaf("AuditFileVersion", "1.30");
    w.leaf("AuditFileCountry", "NO");
    w.leaf("AuditFileDateCreated", &d.created.to_string());
    w.leaf("SoftwareCompanyName", "shopbridge");
    w.leaf("SoftwareID", "shopbridge");
    w.leaf_max("SoftwareVersion", env!("CARGO_PKG_VERSION"), SHORT);
    w.start("Company");
    w.leaf_max("RegistrationNumber", &d.org_number, MIDDLE1);
    w.leaf_max("Name", &d.company.name, LONG);
    // The schema requires a contact with a telephone number; shopbridge keeps neither, so the
    // company's name stands as an unstructured name (the schema's "NotUsed" convention) and
    // the number is left empty.
    w.start("Contact");
    w.start("ContactPerson");
    w.leaf("FirstName", "NotUsed");
    w.leaf_max("LastName", &d.company.name, MIDDLE2);
    w.end();
    w.leaf("Telephone", "");
    w.end();
    w.start("TaxRegistration");
    w.leaf_max(
        "TaxRegistrationNumber",
        &format!("{}MVA", d.org_number),
        MIDDLE1,
    );
    w.leaf("TaxAuthority", "Skatteetaten");
    w.end();
    w.end();
    w.leaf("DefaultCurrencyCode", d.company.base_currency.trim());
    selection(w, d.from, d.to);
    w.leaf("TaxAccountingBasis", "A");
    w.end();
}

/// Whole months are selected as accounting periods (1–12), anything else by dates.
fn selection(w: &mut Writer, from: NaiveDate, to: NaiveDate) {
    w.start("SelectionCriteria");
    let month_end = to.succ_opt().is_some_and(|next| next.day() == 1);
    if from.day() == 1 && month_end {
        w.leaf("PeriodStart", &from.month().to_string());
        w.leaf("PeriodStartYear", &from.year().to_string());
        w.leaf("PeriodEnd", &to.month().to_string());
        w.leaf("PeriodEndYear", &to.year().to_string());
    } else {
        w.leaf("SelectionStartDate", &from.to_string());
        w.leaf("SelectionEndDate", &to.to_string());
    }
    w.end();
}

/// `<{prefix}DebitBalance>` or `<{prefix}CreditBalance>` by the balance's sign.
fn balance(w: &mut Writer, debit: &'static str, credit: &'static str, amount: Money) {
    if amount.0 >= 0 {
        w.leaf(debit, &amount.to_string());
    } else {
        w.leaf(credit, &Money(-amount.0).to_string());
    }
}

fn accounts(w: &mut Writer, accounts: &[AccountOut]) {
    if accounts.is_empty() {
        return;
    }
    w.start("GeneralLedgerAccounts");
    for a in accounts {
        w.start("Account");
        w.leaf("AccountID", &a.number.to_string());
        w.leaf_max("AccountDescription", &a.name, LONG);
        w.leaf_max("GroupingCategory", &a.category, LONG);
        w.leaf_max("GroupingCode", &a.code, MIDDLE1);
        w.leaf("AccountType", "GL");
        balance(w, "OpeningDebitBalance", "OpeningCreditBalance", a.opening);
        balance(w, "ClosingDebitBalance", "ClosingCreditBalance", a.closing);
        w.end();
    }
    w.end();
}

fn customers(w: &mut Writer, customers: &[CustomerOut]) {
    if customers.is_empty() {
        return;
    }
    w.start("Customers");
    for c in customers {
        w.start("Customer");
        w.leaf_max("Name", &c.name, LONG);
        if let Some(email) = &c.email {
            w.start("Contact");
            w.start("ContactPerson");
            w.leaf("FirstName", "NotUsed");
            w.leaf_max("LastName", &c.name, MIDDLE2);
            w.end();
            w.leaf_max("Email", email, MIDDLE2);
            w.end();
        }
        w.leaf_max("CustomerID", &c.id, MIDDLE1);
        for (account, opening, closing) in &c.balances {
            w.start("BalanceAccount");
            w.leaf("AccountID", &account.to_string());
            balance(w, "OpeningDebitBalance", "OpeningCreditBalance", *opening);
            balance(w, "ClosingDebitBalance", "ClosingCreditBalance", *closing);
            w.end();
        }
        w.end();
    }
    w.end();
}

fn percent(rate_bp: i32) -> String {
    Money(i64::from(rate_bp)).to_string()
}

/// One entry per code (the schema keys TaxCodeDetails by TaxCode): the rate in force at the
/// period's end, or the latest one before it. Lines carry the rate of their own date.
fn tax_table(w: &mut Writer, vat: &[VatCodeRow], to: NaiveDate) {
    let mut codes: Vec<i32> = vat.iter().map(|v| v.code).collect();
    codes.dedup();
    if codes.is_empty() {
        return;
    }
    w.start("TaxTable");
    w.start("TaxTableEntry");
    w.leaf("TaxType", "MVA");
    w.leaf("Description", "Merverdiavgift");
    for code in codes {
        let periods: Vec<&VatCodeRow> = vat.iter().filter(|v| v.code == code).collect();
        let chosen = periods
            .iter()
            .rev()
            .find(|v| v.valid_from <= to)
            .or(periods.first());
        let Some(v) = chosen else { continue };
        w.start("TaxCodeDetails");
        w.leaf_max("TaxCode", &code.to_string(), MIDDLE2);
        w.leaf("EffectiveDate", &v.valid_from.to_string());
        if let Some(end) = v.valid_to {
            w.leaf("ExpirationDate", &end.to_string());
        }
        let description = grouping::tax_code_description(code)
            .map_or_else(|| format!("MVA-kode {code}"), str::to_owned);
        w.leaf_max("Description", &description, LONG);
        w.leaf("TaxPercentage", &percent(v.rate_bp));
        w.leaf("Country", "NO");
        w.leaf_max("StandardTaxCode", &code.to_string(), 2);
        w.leaf("BaseRate", "100");
        w.end();
    }
    w.end();
    w.end();
}

fn analysis_types(w: &mut Writer, d: &Data) {
    if d.analysis.is_empty() {
        return;
    }
    w.start("AnalysisTypeTable");
    for ((kind, id), description) in &d.analysis {
        w.start("AnalysisTypeTableEntry");
        w.leaf("AnalysisType", kind);
        let type_description = if *kind == DEPARTMENT_ANALYSIS {
            "Avdeling"
        } else {
            "Sted/lager"
        };
        w.leaf("AnalysisTypeDescription", type_description);
        w.leaf_max("AnalysisID", id, MIDDLE1);
        w.leaf_max("AnalysisIDDescription", description, LONG);
        w.end();
    }
    w.end();
}

fn entries(w: &mut Writer, d: &Data) {
    let (mut debit, mut credit) = (0_i64, 0_i64);
    for l in &d.lines {
        if l.amount >= 0 {
            debit += l.amount;
        } else {
            credit -= l.amount;
        }
    }
    w.start("GeneralLedgerEntries");
    w.leaf("NumberOfEntries", &d.vouchers.len().to_string());
    w.leaf("TotalDebit", &Money(debit).to_string());
    w.leaf("TotalCredit", &Money(credit).to_string());
    let mut series: Vec<&str> = d.vouchers.iter().map(|v| v.series.as_str()).collect();
    series.dedup();
    for s in series {
        w.start("Journal");
        w.leaf_max("JournalID", s, SHORT);
        let (description, kind) = match s {
            "sales" => ("Salg: fakturaer og kreditnotaer", "AR"),
            "bank" => ("Bank: innbetalinger og tilbakebetalinger", "BANK"),
            other => (other, "GL"),
        };
        w.leaf("Description", description);
        w.leaf_max("Type", kind, CODE);
        for v in d.vouchers.iter().filter(|v| v.series == s) {
            transaction(w, d, v);
        }
        w.end();
    }
    w.end();
}

fn voucher_type(kind: &str) -> &str {
    match kind {
        "invoice" => "Faktura",
        "credit_note" => "Kreditnota",
        "payment" => "Innbetaling",
        "refund_payment" => "Tilbakebetaling",
        other => other,
    }
}

fn transaction(w: &mut Writer, d: &Data, v: &ExportVoucher) {
    w.start("Transaction");
    w.leaf_max(
        "TransactionID",
        &format!("{}-{}-{}", v.series, v.year, v.number),
        MIDDLE2,
    );
    w.leaf("Period", &v.voucher_date.month().to_string());
    w.leaf("PeriodYear", &v.voucher_date.year().to_string());
    w.leaf("TransactionDate", &v.voucher_date.to_string());
    w.leaf_max("VoucherType", &v.kind, MIDDLE2);
    w.leaf_max("VoucherDescription", voucher_type(&v.kind), MIDDLE2);
    w.leaf_max("Description", &v.description, LONG);
    let entered = crate::posting::oslo_date(v.posted_at).to_string();
    w.leaf("SystemEntryDate", &entered);
    w.leaf("GLPostingDate", &entered);
    for l in d.lines.iter().filter(|l| l.voucher_id == v.id) {
        line(w, d, v, l);
    }
    w.end();
}

fn line(w: &mut Writer, d: &Data, v: &ExportVoucher, l: &ExportLine) {
    w.start("Line");
    w.leaf("RecordID", &l.line_no.to_string());
    w.leaf("AccountID", &l.account.to_string());
    for (kind, value) in [
        (DEPARTMENT_ANALYSIS, &l.department),
        (LOCATION_ANALYSIS, &l.location),
    ] {
        if let Some(id) = value {
            w.start("Analysis");
            w.leaf("AnalysisType", kind);
            w.leaf_max("AnalysisID", id, MIDDLE1);
            w.end();
        }
    }
    if let Some(c) = &l.customer_id
        && let Some(id) = d.customer_ids.get(&(v.connection_id, c.clone()))
    {
        w.leaf_max("CustomerID", id, MIDDLE1);
    }
    let text = if l.description.trim().is_empty() {
        &v.description
    } else {
        &l.description
    };
    w.leaf_max("Description", text, LONG);
    let debit = l.amount > 0 || (l.amount == 0 && l.currency_amount >= 0);
    w.start(if debit { "DebitAmount" } else { "CreditAmount" });
    w.leaf("Amount", &Money(l.amount.abs()).to_string());
    if !l
        .currency
        .eq_ignore_ascii_case(d.company.base_currency.trim())
    {
        w.leaf("CurrencyCode", &l.currency);
        w.leaf(
            "CurrencyAmount",
            &Money(l.currency_amount.abs()).to_string(),
        );
    }
    w.end();
    if let Some(code) = l.vat_code {
        tax_information(w, d, v, l, code, debit);
    }
    w.end();
}

/// The VAT is reported once, where it is booked: an output-VAT line carries its amount; a
/// revenue line carries its code, rate and base with a tax amount of zero.
fn tax_information(
    w: &mut Writer,
    d: &Data,
    v: &ExportVoucher,
    l: &ExportLine,
    code: i32,
    debit: bool,
) {
    let rate = d
        .vat
        .iter()
        .find(|r| {
            r.code == code
                && r.valid_from <= v.voucher_date
                && r.valid_to.is_none_or(|t| v.voucher_date <= t)
        })
        .map_or(0, |r| r.rate_bp);
    let tax = if l.role == "output_vat" {
        l.amount.abs()
    } else {
        0
    };
    w.start("TaxInformation");
    w.leaf("TaxType", "MVA");
    w.leaf_max("TaxCode", &code.to_string(), MIDDLE2);
    w.leaf("TaxPercentage", &percent(rate));
    if let Some(base) = l.vat_base {
        w.leaf("TaxBase", &Money(base.abs()).to_string());
    }
    w.start(if debit {
        "DebitTaxAmount"
    } else {
        "CreditTaxAmount"
    });
    w.leaf("Amount", &Money(tax).to_string());
    w.end();
    w.end();
}
