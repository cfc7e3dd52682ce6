//! `shopbridge periods lock|unlock|list` and `shopbridge export saft`: closing months and
//! handing the books over.

use anyhow::Context as _;
use serde_json::json;

use crate::cli::{ExportCommand, OperatorArgs, PeriodArgs, PeriodsCommand};
use crate::db::periods;
use crate::posting::periods::month_label;
use crate::worker::contexts::CONTEXT_TTL;

/// Runs one `periods` subcommand.
///
/// # Errors
/// An unknown company, or an unreachable database.
pub async fn run(cmd: PeriodsCommand) -> anyhow::Result<()> {
    match cmd {
        PeriodsCommand::Lock(args) => change(args, true).await,
        PeriodsCommand::Unlock(args) => change(args, false).await,
        PeriodsCommand::List { company, op } => {
            let pool = open(&op).await?;
            let mut db = pool.acquire().await?;
            let company = company_id(&mut db, company.as_deref()).await?;
            let rows = periods::list(&mut db, company).await?;
            if op.json {
                let out: Vec<_> = rows
                    .iter()
                    .map(|r| {
                        json!({"company_id": r.company_id, "month": month_label(r.period),
                               "locked_at": r.locked_at, "locked_by": r.locked_by, "note": r.note})
                    })
                    .collect();
                println!("{}", serde_json::Value::Array(out));
            } else if rows.is_empty() {
                println!("No locked periods.");
            } else {
                println!("{:<8} {:<20} {:<16} NOTE", "MONTH", "LOCKED AT", "BY");
                for r in &rows {
                    println!(
                        "{:<8} {:<20} {:<16} {}",
                        month_label(r.period),
                        r.locked_at.format("%Y-%m-%d %H:%M:%S"),
                        r.locked_by,
                        r.note.as_deref().unwrap_or("")
                    );
                }
            }
            Ok(())
        }
    }
}

async fn change(args: PeriodArgs, lock: bool) -> anyhow::Result<()> {
    let pool = open(&args.op).await?;
    let mut tx = pool.begin().await?;
    let company = company_id(&mut tx, args.company.as_deref()).await?;
    let month = month_label(args.month);
    let note = args.note.as_deref();
    let changed = if lock {
        periods::lock(&mut tx, company, args.month, &args.by, note).await?
    } else {
        periods::unlock(&mut tx, company, args.month, &args.by, note).await?
    };
    tx.commit().await?;
    let action = if lock { "lock" } else { "unlock" };
    if changed {
        tracing::info!(%company, %month, by = %args.by, action, "Period lock changed.");
    }
    if args.op.json {
        println!(
            "{}",
            json!({"company_id": company, "month": month, "locked": lock, "changed": changed})
        );
    } else if changed && lock {
        println!("Locked {month}. Vouchers can no longer be dated in it.");
    } else if changed {
        println!(
            "Unlocked {month}. Workers see it within {}s; replay its dead-lettered events after that.",
            CONTEXT_TTL.as_secs()
        );
    } else {
        println!(
            "{month} was already {}.",
            if lock { "locked" } else { "open" }
        );
    }
    Ok(())
}

/// Runs one `export` subcommand.
///
/// # Errors
/// An unknown company, an export the ledger cannot make (see [`crate::saft::SaftError`]), or
/// a file that cannot be written.
pub async fn export(cmd: ExportCommand) -> anyhow::Result<()> {
    let ExportCommand::Saft {
        company,
        from,
        to,
        output,
        op,
    } = cmd;
    let pool = open(&op).await?;
    // One snapshot for balances, master files and entries while workers keep posting.
    let mut tx = pool.begin().await?;
    sqlx::query("set transaction isolation level repeatable read, read only")
        .execute(&mut *tx)
        .await?;
    let company = company_id(&mut tx, company.as_deref()).await?;
    let xml = crate::saft::export(&mut tx, company, from, to).await?;
    tx.commit().await?;
    std::fs::write(&output, xml.as_bytes())
        .with_context(|| format!("cannot write {}", output.display()))?;
    if op.json {
        println!(
            "{}",
            json!({"file": output, "bytes": xml.len(), "company_id": company, "from": from, "to": to})
        );
    } else {
        println!(
            "Wrote SAF-T Financial 1.30 for {from} to {to} to {} ({} bytes).",
            output.display(),
            xml.len()
        );
    }
    Ok(())
}

async fn company_id(
    db: &mut sqlx::PgConnection,
    given: Option<&str>,
) -> anyhow::Result<uuid::Uuid> {
    periods::company(db, given).await.map_err(|e| match e {
        sqlx::Error::RowNotFound => {
            anyhow::anyhow!("no company {}", given.unwrap_or("(default)"))
        }
        e => e.into(),
    })
}

async fn open(op: &OperatorArgs) -> anyhow::Result<sqlx::PgPool> {
    let pool = crate::db::connect(&op.db).await?;
    crate::db::migrate(&pool).await?;
    Ok(pool)
}
