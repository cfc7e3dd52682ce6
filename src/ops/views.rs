//! What operators see of events, vouchers and accounts: the shapes the CLI's `--json` and the
//! admin API share.

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use sqlx::PgConnection;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::db::admin::{self as q, VoucherFilter, VoucherHead};
use crate::db::vouchers::LineRow;
use crate::posting::Money;

/// A voucher line, in debit/credit columns (decimal strings in the base currency).
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct LineView {
    /// Position on the voucher.
    pub line_no: i32,
    /// Account number.
    pub account: i32,
    /// Account name.
    pub account_name: String,
    /// Debit amount, if a debit.
    pub debit: Option<String>,
    /// Credit amount, if a credit.
    pub credit: Option<String>,
    /// VAT code.
    pub vat_code: Option<i32>,
    /// VAT base.
    pub vat_base: Option<String>,
    /// Customer.
    pub customer_id: Option<String>,
    /// Department.
    pub department: Option<String>,
    /// Location.
    pub location: Option<String>,
    /// Line text.
    pub description: String,
}

impl From<&LineRow> for LineView {
    fn from(l: &LineRow) -> Self {
        LineView {
            line_no: l.line_no,
            account: l.account,
            account_name: l.account_name.clone(),
            debit: (l.amount > 0).then(|| Money(l.amount).to_string()),
            credit: (l.amount < 0).then(|| Money(-l.amount).to_string()),
            vat_code: l.vat_code,
            vat_base: l.vat_base.map(|b| Money(b).to_string()),
            customer_id: l.customer_id.clone(),
            department: l.department.clone(),
            location: l.location.clone(),
            description: l.description.clone(),
        }
    }
}

/// A voucher with its lines.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct VoucherView {
    /// The voucher.
    #[serde(flatten)]
    pub head: VoucherHead,
    /// Its lines.
    pub lines: Vec<LineView>,
}

/// Vouchers matching `f`, with their lines.
///
/// # Errors
/// A database error.
pub async fn vouchers(db: &mut PgConnection, f: &VoucherFilter) -> sqlx::Result<Vec<VoucherView>> {
    let heads = q::list_vouchers(db, f).await?;
    with_lines(db, heads).await
}

/// One voucher with its lines.
///
/// # Errors
/// A database error.
pub async fn voucher(db: &mut PgConnection, id: Uuid) -> sqlx::Result<Option<VoucherView>> {
    let heads: Vec<VoucherHead> = q::get_voucher(db, id).await?.into_iter().collect();
    Ok(with_lines(db, heads).await?.pop())
}

async fn with_lines(
    db: &mut PgConnection,
    heads: Vec<VoucherHead>,
) -> sqlx::Result<Vec<VoucherView>> {
    let ids: Vec<Uuid> = heads.iter().map(|h| h.id).collect();
    let lines = q::lines_of(db, &ids).await?;
    Ok(heads
        .into_iter()
        .map(|head| VoucherView {
            lines: lines
                .iter()
                .filter(|l| l.voucher_id == head.id)
                .map(LineView::from)
                .collect(),
            head,
        })
        .collect())
}

/// An event with its payload and the vouchers it produced.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct EventView {
    /// shopbridge's id.
    pub id: Uuid,
    /// Connection.
    pub connection_id: Uuid,
    /// The shop's event id.
    pub source_event_id: String,
    /// Channel kind.
    pub channel: String,
    /// Topic.
    pub topic: String,
    /// processed, skipped, ignored, duplicate, failed (or processing).
    pub status: String,
    /// Why it was skipped, ignored, a duplicate or failed.
    pub reason: Option<String>,
    /// What an operator should look at although it was processed (a payment above what its
    /// order owed).
    pub flag: Option<String>,
    /// Deliveries (more than one: duplicates or replays).
    pub deliveries: i32,
    /// When received.
    pub received_at: DateTime<Utc>,
    /// When the shop says it happened.
    pub occurred_at: Option<DateTime<Utc>>,
    /// When its status was last set.
    pub processed_at: Option<DateTime<Utc>>,
    /// The HTTP request id it arrived with.
    pub request_id: Option<String>,
    /// The source document as JSON (a string when it is not JSON).
    pub payload: serde_json::Value,
    /// Vouchers it produced.
    pub vouchers: Vec<VoucherView>,
}

/// The events with this id (shopbridge's, or the shop's: several connections may share one).
///
/// # Errors
/// A database error.
pub async fn events(db: &mut PgConnection, key: &str) -> sqlx::Result<Vec<EventView>> {
    let rows = q::get_events(db, key).await?;
    let mut out = Vec::with_capacity(rows.len());
    for e in rows {
        let filter = VoucherFilter {
            event: Some(e.id),
            limit: Some(1000),
            ..VoucherFilter::default()
        };
        let vouchers = vouchers(db, &filter).await?;
        let payload = serde_json::from_slice(&e.body).unwrap_or_else(|_| {
            serde_json::Value::String(String::from_utf8_lossy(&e.body).into_owned())
        });
        out.push(EventView {
            id: e.id,
            connection_id: e.connection_id,
            source_event_id: e.source_event_id,
            channel: e.channel,
            topic: e.topic,
            status: e.status,
            reason: e.reason,
            flag: e.flag,
            deliveries: e.deliveries,
            received_at: e.received_at,
            occurred_at: e.occurred_at,
            processed_at: e.processed_at,
            request_id: e.request_id,
            payload,
            vouchers,
        });
    }
    Ok(out)
}

/// One posting in an account's ledger, with the running balance.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct LedgerLine {
    /// Voucher.
    pub voucher_id: Uuid,
    /// `series year-number`.
    pub voucher: String,
    /// Date.
    pub date: NaiveDate,
    /// Line text.
    pub description: String,
    /// Debit amount.
    pub debit: Option<String>,
    /// Credit amount.
    pub credit: Option<String>,
    /// Balance after this line (debit positive).
    pub balance: String,
}

/// An account's postings over a period.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct AccountLedger {
    /// Account number.
    pub account: i32,
    /// First day, if bounded.
    pub from: Option<NaiveDate>,
    /// Last day, if bounded.
    pub to: Option<NaiveDate>,
    /// Balance before `from` (debit positive).
    pub opening_balance: String,
    /// Postings in date order.
    pub lines: Vec<LedgerLine>,
    /// Balance at the end of the period.
    pub closing_balance: String,
}

/// The ledger of `account` over `[from, to]`.
///
/// # Errors
/// A database error.
pub async fn account_ledger(
    db: &mut PgConnection,
    account: i32,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
) -> sqlx::Result<AccountLedger> {
    let (opening, entries) = q::account_ledger(db, account, from, to).await?;
    let mut balance = opening;
    let lines = entries
        .into_iter()
        .map(|e| {
            balance = balance.saturating_add(e.amount);
            LedgerLine {
                voucher_id: e.voucher_id,
                voucher: format!("{} {}-{}", e.series, e.year, e.number),
                date: e.voucher_date,
                description: e.description,
                debit: (e.amount > 0).then(|| Money(e.amount).to_string()),
                credit: (e.amount < 0).then(|| Money(-e.amount).to_string()),
                balance: Money(balance).to_string(),
            }
        })
        .collect();
    Ok(AccountLedger {
        account,
        from,
        to,
        opening_balance: Money(opening).to_string(),
        lines,
        closing_balance: Money(balance).to_string(),
    })
}
