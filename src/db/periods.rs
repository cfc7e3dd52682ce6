//! Period locks: lock, unlock and list a company's closed months, each change logged; and the
//! connection setting that says what happens to an event dated in one.

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use sqlx::{FromRow, PgConnection};
use uuid::Uuid;

use crate::posting::LockedPeriodPolicy;

/// A locked month.
#[derive(Clone, Debug, FromRow, Serialize)]
pub struct PeriodLock {
    /// The company.
    pub company_id: Uuid,
    /// The month's first day.
    pub period: NaiveDate,
    /// When it was locked.
    pub locked_at: DateTime<Utc>,
    /// Who locked it.
    pub locked_by: String,
    /// Why, if given.
    pub note: Option<String>,
}

/// Waits for the company's posting transactions in flight, so that none of them commits a
/// voucher into a month this transaction locks (see `refuse_locked_periods` in migration 0006).
async fn exclude_postings(db: &mut PgConnection, company_id: Uuid) -> sqlx::Result<()> {
    sqlx::query("select pg_advisory_xact_lock(hashtext('shopbridge-periods'), hashtext($1::text))")
        .bind(company_id)
        .execute(db)
        .await?;
    Ok(())
}

/// Locks `period` (a month's first day); true when it was open. Call inside a transaction:
/// the advisory lock it takes lasts until commit.
///
/// # Errors
/// A database error (e.g. an unknown company, or a day other than the first).
pub async fn lock(
    db: &mut PgConnection,
    company_id: Uuid,
    period: NaiveDate,
    by: &str,
    note: Option<&str>,
) -> sqlx::Result<bool> {
    exclude_postings(db, company_id).await?;
    let done = sqlx::query(
        "insert into period_locks (company_id, period, locked_by, note) values ($1, $2, $3, $4) \
         on conflict (company_id, period) do nothing",
    )
    .bind(company_id)
    .bind(period)
    .bind(by)
    .bind(note)
    .execute(&mut *db)
    .await?;
    let locked = done.rows_affected() == 1;
    if locked {
        log(db, company_id, period, "lock", by, note).await?;
    }
    Ok(locked)
}

/// Unlocks `period`; true when it was locked. The unlock is logged.
///
/// # Errors
/// A database error.
pub async fn unlock(
    db: &mut PgConnection,
    company_id: Uuid,
    period: NaiveDate,
    by: &str,
    note: Option<&str>,
) -> sqlx::Result<bool> {
    let done = sqlx::query("delete from period_locks where company_id = $1 and period = $2")
        .bind(company_id)
        .bind(period)
        .execute(&mut *db)
        .await?;
    let unlocked = done.rows_affected() == 1;
    if unlocked {
        log(db, company_id, period, "unlock", by, note).await?;
    }
    Ok(unlocked)
}

async fn log(
    db: &mut PgConnection,
    company_id: Uuid,
    period: NaiveDate,
    action: &str,
    by: &str,
    note: Option<&str>,
) -> sqlx::Result<()> {
    sqlx::query(
        "insert into period_lock_log (company_id, period, action, by_whom, note) values ($1, $2, $3, $4, $5)",
    )
    .bind(company_id)
    .bind(period)
    .bind(action)
    .bind(by)
    .bind(note)
    .execute(db)
    .await?;
    Ok(())
}

/// The company's locked months, oldest first.
///
/// # Errors
/// A database error.
pub async fn list(db: &mut PgConnection, company_id: Uuid) -> sqlx::Result<Vec<PeriodLock>> {
    sqlx::query_as(
        "select company_id, period, locked_at, locked_by, note from period_locks \
         where company_id = $1 order by period",
    )
    .bind(company_id)
    .fetch_all(db)
    .await
}

/// Sets a connection's locked-period policy; false when there is no such connection.
///
/// # Errors
/// A database error.
pub async fn set_policy(
    db: &mut PgConnection,
    connection_id: Uuid,
    policy: LockedPeriodPolicy,
) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "update connections set locked_period_policy = $2, updated_at = now() where id = $1",
    )
    .bind(connection_id)
    .bind(policy.as_str())
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The company named by `given` (its id or org number), or the default company.
///
/// # Errors
/// A database error, or [`sqlx::Error::RowNotFound`] when no company matches.
pub async fn company(db: &mut PgConnection, given: Option<&str>) -> sqlx::Result<Uuid> {
    match given {
        None => crate::db::connections::default_company(db).await,
        Some(c) => {
            sqlx::query_scalar(
                "select id from companies where id::text = $1 or org_number = $1 order by is_default desc limit 1",
            )
            .bind(c.trim())
            .fetch_one(db)
            .await
        }
    }
}
