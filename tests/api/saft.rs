//! SAF-T Financial export on real services: the worked example posted, exported, validated
//! against the official 1.30 schema with xmllint, and reconciled with the trial balance.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use chrono::NaiveDate;
use reqwest::StatusCode;
use shopbridge::channel::Channel;
use shopbridge::db::{periods, vouchers};
use shopbridge::posting::Money;
use shopbridge::saft::{self, SaftError};
use uuid::Uuid;

use crate::helpers::{TestApp, pg_server};

const EVENTS: [&[u8]; 3] = [
    include_bytes!("../fixtures/events/order-created-1001.json"),
    include_bytes!("../fixtures/events/payment-captured-1001.json"),
    include_bytes!("../fixtures/events/refund-created-1001.json"),
];

fn day(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

fn event_id(body: &[u8]) -> String {
    let v: serde_json::Value = serde_json::from_slice(body).unwrap();
    v["id"].as_str().unwrap().to_owned()
}

fn schema() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/saft/Norwegian_SAF-T_Financial_Schema_v_1.30.xsd")
}

/// Validates `file` against the official schema; fails the test (never skips it) when
/// xmllint (`XMLLINT`, default: the one on `PATH`) is missing.
fn assert_valid(file: &Path) {
    let xmllint = std::env::var("XMLLINT").unwrap_or_else(|_| "xmllint".to_owned());
    let out = Command::new(xmllint)
        .arg("--noout")
        .arg("--schema")
        .arg(schema())
        .arg(file)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "xmllint is needed to validate SAF-T exports ({e}); install it with \
                 `apt-get install libxml2-utils` (scripts/test.sh does, as root)"
            )
        });
    assert!(
        out.status.success(),
        "{} does not validate against the SAF-T 1.30 schema:\n{}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The text of every `<tag>` in `xml`, in order.
fn texts<'a>(xml: &'a str, tag: &str) -> Vec<&'a str> {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    xml.split(open.as_str())
        .skip(1)
        .filter_map(|rest| rest.split(close.as_str()).next())
        .collect()
}

fn ore(amount: &str) -> i64 {
    Money::parse(amount).unwrap().0
}

/// Closing balance per account as the export states it, debit positive.
fn closing_balances(xml: &str) -> BTreeMap<i32, i64> {
    texts(xml, "Account")
        .into_iter()
        .map(|a| {
            let id: i32 = texts(a, "AccountID")[0].parse().unwrap();
            let debit = texts(a, "ClosingDebitBalance")
                .first()
                .map_or(0, |d| ore(d));
            let credit = texts(a, "ClosingCreditBalance")
                .first()
                .map_or(0, |c| ore(c));
            (id, debit - credit)
        })
        .collect()
}

async fn post_worked_example(app: &TestApp) -> Uuid {
    let conn = app
        .add_connection_from(Channel::Nettbutikk, Some(day(2026, 1, 1)))
        .await;
    sqlx::query(
        "update connections set department = 'NETT', location = 'OSLO & lager' where id = $1",
    )
    .bind(conn.connection.id)
    .execute(&app.db)
    .await
    .unwrap();
    for body in EVENTS {
        assert_eq!(
            app.post_native(&conn, body).await.status(),
            StatusCode::ACCEPTED
        );
        assert_eq!(app.wait_for_event(&event_id(body)).await.0, "processed");
    }
    periods::company(&mut app.db.acquire().await.unwrap(), None)
        .await
        .unwrap()
}

#[tokio::test]
async fn the_worked_example_exports_as_valid_saft_that_reconciles_with_the_trial_balance() {
    let app = TestApp::spawn().await;
    let company = post_worked_example(&app).await;
    let (from, to) = (day(2026, 3, 1), day(2026, 3, 31));
    let mut db = app.db.acquire().await.unwrap();

    let refused = saft::export(&mut db, company, from, to).await.unwrap_err();
    assert!(
        matches!(refused, SaftError::NoOrgNumber { .. }),
        "no made-up organisation number: {refused}"
    );
    sqlx::query(
        "update companies set org_number = '999999999', name = 'Kaffe & Klær AS' where id = $1",
    )
    .bind(company)
    .execute(&mut *db)
    .await
    .unwrap();

    let xml = saft::export(&mut db, company, from, to).await.unwrap();
    let file = std::env::temp_dir().join(format!("saft-{}.xml", Uuid::new_v4()));
    std::fs::write(&file, &xml).unwrap();
    assert_valid(&file);
    std::fs::remove_file(&file).ok();

    // Totals and entries equal the trial balance of the period.
    let period = vouchers::trial_balance(&mut db, Some(from), Some(to))
        .await
        .unwrap();
    let (debit, credit) = period
        .iter()
        .fold((0, 0), |(d, c), r| (d + r.debit, c + r.credit));
    assert_eq!(ore(texts(&xml, "TotalDebit")[0]), debit);
    assert_eq!(ore(texts(&xml, "TotalCredit")[0]), credit);
    assert_eq!(debit, credit, "the ledger balances");
    assert_eq!(texts(&xml, "NumberOfEntries"), ["4"], "four vouchers");

    // Closing balances equal the ledger's balances at the period's end, account by account;
    // accounts without lines close at zero.
    let at_end = vouchers::trial_balance(&mut db, None, Some(to))
        .await
        .unwrap();
    let closing = closing_balances(&xml);
    assert_eq!(closing.len(), 16, "every account of the chart");
    for (account, balance) in &closing {
        let expected = at_end
            .iter()
            .find(|r| r.account == *account)
            .map_or(0, |r| r.debit - r.credit);
        assert_eq!(*balance, expected, "closing balance of {account}");
    }
    assert_eq!(closing[&1500], 0, "the customer paid, and was paid back");
    assert_eq!(closing[&3030], 0, "the coffee was returned");

    // Master data and dimensions the lines refer to.
    assert!(xml.contains("<RegistrationNumber>999999999</RegistrationNumber>"));
    assert!(xml.contains("<Name>Kaffe &amp; Klær AS</Name>"), "escaped");
    assert_eq!(texts(&xml, "CustomerID").first(), Some(&"c-77"));
    assert!(xml.contains("<Name>Kari Nordmann</Name>"));
    assert!(
        xml.contains("<AnalysisType>A</AnalysisType>\n            <AnalysisID>NETT</AnalysisID>")
    );
    assert!(xml.contains("<AnalysisID>OSLO &amp; lager</AnalysisID>"));
    assert!(
        texts(&xml, "GroupingCode").contains(&"2740"),
        "output VAT groups as VAT settlement"
    );
    let codes = texts(&xml, "TaxCode");
    for code in ["3", "31"] {
        assert!(codes.contains(&code), "lines carry VAT code {code}");
    }
    // The output VAT of the invoice is reported once, on its VAT line.
    let vat_amounts: i64 = texts(&xml, "CreditTaxAmount")
        .iter()
        .map(|t| ore(texts(t, "Amount")[0]))
        .sum();
    assert_eq!(vat_amounts, 11_940 + 1_683, "invoice VAT 119.40 + 16.83");
    drop(db);
    app.cleanup().await;
}

#[tokio::test]
async fn the_cli_writes_the_export_to_a_file() {
    let app = TestApp::spawn().await;
    let company = post_worked_example(&app).await;
    sqlx::query("update companies set org_number = '999999999' where id = $1")
        .bind(company)
        .execute(&app.db)
        .await
        .unwrap();
    let database: String = sqlx::query_scalar("select current_database()")
        .fetch_one(&app.db)
        .await
        .unwrap();
    let file = std::env::temp_dir().join(format!("saft-cli-{}.xml", Uuid::new_v4()));
    let out = Command::new(env!("CARGO_BIN_EXE_shopbridge"))
        .args([
            "export",
            "saft",
            "--from",
            "2026-03-01",
            "--to",
            "2026-03-09",
            "-o",
        ])
        .arg(&file)
        .arg("--json")
        .env("DATABASE_URL", format!("{}/{database}", pg_server()))
        .env("RUST_LOG", "off")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_valid(&file);
    let xml = std::fs::read_to_string(&file).unwrap();
    assert!(xml.contains("<SelectionStartDate>2026-03-01</SelectionStartDate>"));
    std::fs::remove_file(&file).ok();
    app.cleanup().await;
}

#[tokio::test]
async fn the_account_ledger_runs_from_opening_to_closing_balance_with_dimension_filters() {
    use shopbridge::db::reports::{self, LineFilter};
    let app = TestApp::spawn().await;
    let company = post_worked_example(&app).await;
    let mut db = app.db.acquire().await.unwrap();
    let march = |from: u32, department: Option<&str>| LineFilter {
        company: Some(company),
        from: Some(day(2026, 3, from)),
        to: Some(day(2026, 3, 31)),
        department: department.map(str::to_owned),
        location: None,
    };

    // From the 3rd: the invoice and payment of the 2nd make the opening balance of 1522.
    let (opening, lines) = reports::account_ledger(&mut db, 1522, &march(3, None))
        .await
        .unwrap();
    assert_eq!(
        opening,
        72_600 - 1_089,
        "726.00 paid in, less the 10.89 fee"
    );
    assert_eq!(
        lines.iter().map(|l| l.amount).collect::<Vec<_>>(),
        [-12_900],
        "the refund paid out on the 9th"
    );
    assert_eq!(
        (lines[0].series.as_str(), lines[0].voucher_date),
        ("bank", day(2026, 3, 9))
    );

    // The whole month on 1500: four lines in date and voucher order, closing at zero.
    let (opening, lines) = reports::account_ledger(&mut db, 1500, &march(1, None))
        .await
        .unwrap();
    assert_eq!(opening, 0);
    assert_eq!(lines.len(), 4);
    assert_eq!(opening + lines.iter().map(|l| l.amount).sum::<i64>(), 0);

    // Dimension filters: every line is NETT, none is another department.
    let (_, nett) = reports::account_ledger(&mut db, 1500, &march(1, Some("NETT")))
        .await
        .unwrap();
    assert_eq!(nett.len(), 4);
    let other = reports::trial_balance(&mut db, &march(1, Some("LAGER")))
        .await
        .unwrap();
    assert!(other.is_empty(), "{other:?}");
    let all = reports::trial_balance(&mut db, &march(1, Some("NETT")))
        .await
        .unwrap();
    let unfiltered =
        vouchers::trial_balance(&mut db, Some(day(2026, 3, 1)), Some(day(2026, 3, 31)))
            .await
            .unwrap();
    assert_eq!(
        all.iter()
            .map(|r| (r.account, r.debit, r.credit))
            .collect::<Vec<_>>(),
        unfiltered
            .iter()
            .map(|r| (r.account, r.debit, r.credit))
            .collect::<Vec<_>>()
    );
    drop(db);
    app.cleanup().await;
}
