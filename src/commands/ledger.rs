//! `shopbridge events list` and `shopbridge ledger vouchers|trial-balance|account`: what the shops'
//! events became, in text for people and `--json` for scripts.

use serde_json::json;

use crate::cli::{EventsCommand, LedgerCommand, OperatorArgs};
use crate::db::reports::{self, AccountLine, LineFilter};
use crate::db::{events, vouchers};
use crate::posting::Money;

/// Runs one `events` subcommand.
///
/// # Errors
/// When the database cannot be reached.
pub async fn events(cmd: EventsCommand) -> anyhow::Result<()> {
    let (status, limit, op) = match cmd {
        EventsCommand::List { status, limit, op } => (status, limit, op),
        EventsCommand::Show { id, op } => return super::admin::show_event(&id, &op).await,
        EventsCommand::Replay(args) => return super::admin::replay_events(args).await,
    };
    let pool = open(&op).await?;
    let rows = events::list(&mut *pool.acquire().await?, status.as_deref(), limit).await?;
    if op.json {
        println!("{}", serde_json::to_string(&rows)?);
        return Ok(());
    }
    if rows.is_empty() {
        println!("No events.");
    }
    for e in &rows {
        println!(
            "{}  {:<9}  {:<11} {:<18} {}",
            e.received_at.format("%Y-%m-%d %H:%M:%S"),
            e.status,
            e.channel,
            e.topic,
            e.source_event_id
        );
        if let Some(reason) = &e.reason {
            println!("{:>21}  {reason}", "");
        }
        if let Some(flag) = &e.flag {
            println!("{:>21}  flag: {flag}", "");
        }
    }
    Ok(())
}

/// Runs one `ledger` subcommand.
///
/// # Errors
/// When the database cannot be reached.
pub async fn ledger(cmd: LedgerCommand) -> anyhow::Result<()> {
    match cmd {
        LedgerCommand::Vouchers { limit, op } => {
            print_vouchers(&open(&op).await?, limit, op.json).await
        }
        LedgerCommand::Account {
            number,
            from,
            to,
            department,
            location,
            company,
            op,
        } => {
            let pool = open(&op).await?;
            let mut db = pool.acquire().await?;
            let company = crate::db::periods::company(&mut db, company.as_deref()).await?;
            let filter = LineFilter {
                company: Some(company),
                from,
                to,
                department,
                location,
            };
            let (opening, lines) = reports::account_ledger(&mut db, number, &filter).await?;
            print_account(number, opening, &lines, op.json)
        }
        LedgerCommand::TrialBalance {
            from,
            to,
            department,
            location,
            op,
        } => {
            let pool = open(&op).await?;
            let filter = LineFilter {
                company: None,
                from,
                to,
                department,
                location,
            };
            let rows = reports::trial_balance(&mut *pool.acquire().await?, &filter).await?;
            if op.json {
                let out: Vec<_> = rows
                    .iter()
                    .map(|r| {
                        json!({"account": r.account, "name": r.name, "debit": Money(r.debit).to_string(),
                               "credit": Money(r.credit).to_string(), "balance": Money(r.debit - r.credit).to_string()})
                    })
                    .collect();
                println!("{}", serde_json::Value::Array(out));
                return Ok(());
            }
            println!(
                "{:<7} {:<40} {:>14} {:>14} {:>14}",
                "ACCOUNT", "NAME", "DEBIT", "CREDIT", "BALANCE"
            );
            let (mut debit, mut credit) = (0, 0);
            for r in &rows {
                println!(
                    "{:<7} {:<40} {:>14} {:>14} {:>14}",
                    r.account,
                    r.name,
                    Money(r.debit).to_string(),
                    Money(r.credit).to_string(),
                    Money(r.debit - r.credit).to_string()
                );
                debit += r.debit;
                credit += r.credit;
            }
            println!(
                "{:<48} {:>14} {:>14} {:>14}",
                "TOTAL",
                Money(debit).to_string(),
                Money(credit).to_string(),
                Money(debit - credit).to_string()
            );
            Ok(())
        }
    }
}

/// Prints an account ledger: opening balance, each line with its running balance, closing.
fn print_account(
    number: i32,
    opening: i64,
    lines: &[AccountLine],
    as_json: bool,
) -> anyhow::Result<()> {
    let mut balance = opening;
    let mut rows = Vec::with_capacity(lines.len());
    for l in lines {
        balance += l.amount;
        rows.push((l, balance));
    }
    if as_json {
        let out: Vec<_> = rows
            .iter()
            .map(|(l, running)| {
                json!({"date": l.voucher_date, "voucher": format!("{}-{}-{}", l.series, l.year, l.number),
                       "description": if l.description.is_empty() { &l.voucher_description } else { &l.description },
                       "debit": (l.amount > 0).then(|| Money(l.amount).to_string()),
                       "credit": (l.amount < 0).then(|| Money(-l.amount).to_string()),
                       "balance": Money(*running).to_string(),
                       "department": l.department, "location": l.location})
            })
            .collect();
        let doc = json!({"account": number, "opening_balance": Money(opening).to_string(),
                         "lines": out, "closing_balance": Money(balance).to_string()});
        println!("{doc}");
        return Ok(());
    }
    println!("Account {number}");
    println!(
        "{:<10} {:<16} {:<40} {:>12} {:>12} {:>14}",
        "DATE", "VOUCHER", "DESCRIPTION", "DEBIT", "CREDIT", "BALANCE"
    );
    println!(
        "{:<10} {:<16} {:<40} {:>12} {:>12} {:>14}",
        "",
        "",
        "Opening balance",
        "",
        "",
        Money(opening).to_string()
    );
    for (l, running) in &rows {
        let (debit, credit) = if l.amount >= 0 {
            (Money(l.amount).to_string(), String::new())
        } else {
            (String::new(), Money(-l.amount).to_string())
        };
        let text = if l.description.is_empty() {
            &l.voucher_description
        } else {
            &l.description
        };
        let text: String = text.chars().take(40).collect();
        println!(
            "{:<10} {:<16} {:<40} {:>12} {:>12} {:>14}",
            l.voucher_date,
            format!("{}-{}-{}", l.series, l.year, l.number),
            text,
            debit,
            credit,
            Money(*running).to_string()
        );
    }
    println!(
        "{:<10} {:<16} {:<40} {:>12} {:>12} {:>14}",
        "",
        "",
        "Closing balance",
        "",
        "",
        Money(balance).to_string()
    );
    Ok(())
}

async fn print_vouchers(pool: &sqlx::PgPool, limit: i64, as_json: bool) -> anyhow::Result<()> {
    let (heads, lines) = vouchers::list(&mut *pool.acquire().await?, limit).await?;
    if as_json {
        let out: Vec<_> = heads
            .iter()
            .map(|v| {
                let mine: Vec<_> = lines
                    .iter()
                    .filter(|l| l.voucher_id == v.id)
                    .map(|l| {
                        json!({"account": l.account, "account_name": l.account_name,
                               "debit": (l.amount > 0).then(|| Money(l.amount).to_string()),
                               "credit": (l.amount < 0).then(|| Money(-l.amount).to_string()),
                               "vat_code": l.vat_code, "vat_base": l.vat_base.map(|b| Money(b).to_string()),
                               "customer_id": l.customer_id, "department": l.department, "location": l.location,
                               "description": l.description})
                    })
                    .collect();
                json!({"id": v.id, "series": v.series, "year": v.year, "number": v.number, "date": v.voucher_date,
                       "kind": v.kind, "description": v.description, "key": v.idempotency_key,
                       "order_id": v.order_id, "source_event": v.source_event, "reverses": v.reverses, "lines": mine})
            })
            .collect();
        println!("{}", serde_json::Value::Array(out));
        return Ok(());
    }
    if heads.is_empty() {
        println!("No vouchers yet.");
    }
    for v in &heads {
        println!(
            "{} {}-{}  {}  {}  ({})",
            v.series, v.year, v.number, v.voucher_date, v.description, v.idempotency_key
        );
        for l in lines.iter().filter(|l| l.voucher_id == v.id) {
            let (debit, credit) = if l.amount >= 0 {
                (Money(l.amount).to_string(), String::new())
            } else {
                (String::new(), Money(-l.amount).to_string())
            };
            let vat = l.vat_code.map(|c| format!("mva {c}")).unwrap_or_default();
            println!(
                "    {:<5} {:<34} {:>12} {:>12}  {:<7} {}",
                l.account, l.account_name, debit, credit, vat, l.description
            );
        }
    }
    Ok(())
}

async fn open(op: &OperatorArgs) -> anyhow::Result<sqlx::PgPool> {
    let pool = crate::db::connect(&op.db).await?;
    crate::db::migrate(&pool).await?;
    Ok(pool)
}
