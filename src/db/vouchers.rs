//! Vouchers: their lines, then the vouchers themselves, numbered gaplessly per company, series
//! and year in the posting transaction; two statements whatever their count.

use std::collections::{BTreeMap, HashMap};

use chrono::{Datelike, NaiveDate};
use serde::Serialize;
use sqlx::{FromRow, PgConnection};
use uuid::Uuid;

use crate::posting::{LineRole, Voucher, VoucherKind};

/// A voucher to insert, with where it came from.
pub struct ToInsert<'a> {
    /// The balanced voucher.
    pub voucher: &'a Voucher,
    /// Its company.
    pub company_id: Uuid,
    /// The connection whose event caused it.
    pub connection_id: Uuid,
    /// The event that caused it.
    pub source_event: Uuid,
}

/// The number series of a voucher kind: sales documents and money movements are numbered apart,
/// as Norwegian bookkeeping customarily does.
#[must_use]
pub fn series(kind: VoucherKind) -> &'static str {
    match kind {
        VoucherKind::Invoice | VoucherKind::CreditNote => "sales",
        VoucherKind::Payment | VoucherKind::RefundPayment => "bank",
    }
}

/// The database name of a voucher kind.
#[must_use]
pub fn kind_name(kind: VoucherKind) -> &'static str {
    match kind {
        VoucherKind::Invoice => "invoice",
        VoucherKind::CreditNote => "credit_note",
        VoucherKind::Payment => "payment",
        VoucherKind::RefundPayment => "refund_payment",
    }
}

/// The database name of a line role.
#[must_use]
pub fn role_name(role: LineRole) -> String {
    match role {
        LineRole::Receivable => "receivable".into(),
        LineRole::Sales(kind) => format!(
            "sales:{}",
            serde_json::to_value(kind)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default()
        ),
        LineRole::Discount => "discount".into(),
        LineRole::OutputVat => "output_vat".into(),
        LineRole::Rounding => "rounding".into(),
        LineRole::Settlement => "settlement".into(),
        LineRole::ProviderFee => "provider_fee".into(),
    }
}

/// Inserts `vouchers` (in order) with their lines, each numbered with the next number of its
/// series. Call it last in the posting transaction, right before the commit.
///
/// The counter row of a series is locked from the moment it is advanced until the commit, so
/// concurrent posting transactions of one company pass that stretch one at a time. Everything
/// else is therefore done before it: the lines go in first (the voucher ids are chosen here),
/// and what is left behind the counters is advancing them, in a fixed order (so transactions
/// never deadlock on them), one INSERT of the numbered vouchers, and the commit. Each voucher
/// row is written once. The database checks the balance of every voucher as it is inserted,
/// over all of its lines; refuses lines for a voucher posted already; and, at commit, lines
/// whose voucher this transaction did not post (migration 0007).
///
/// # Errors
/// A database error, e.g. an idempotency key already posted, a line on an unknown account or a
/// voucher that does not balance.
pub async fn insert(db: &mut PgConnection, vouchers: &[ToInsert<'_>]) -> sqlx::Result<Vec<Uuid>> {
    if vouchers.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<Uuid> = vouchers.iter().map(|_| Uuid::now_v7()).collect();
    let reverses = resolve_reverses(db, vouchers, &ids).await?;
    insert_lines(db, vouchers, &ids).await?;
    let numbers = allocate_numbers(db, vouchers).await?;
    insert_heads(db, vouchers, &ids, &numbers, &reverses).await?;
    Ok(ids)
}

type SeriesKey = (Uuid, &'static str, i32);

fn series_key(v: &ToInsert<'_>) -> SeriesKey {
    (
        v.company_id,
        series(v.voucher.kind()),
        v.voucher.date().year(),
    )
}

async fn allocate_numbers(
    db: &mut PgConnection,
    vouchers: &[ToInsert<'_>],
) -> sqlx::Result<Vec<i32>> {
    let mut counts: BTreeMap<SeriesKey, i32> = BTreeMap::new();
    for v in vouchers {
        *counts.entry(series_key(v)).or_default() += 1;
    }
    let mut next: HashMap<SeriesKey, i32> = HashMap::new();
    for (key, count) in &counts {
        let last: i32 = sqlx::query_scalar(
            "insert into voucher_counters (company_id, series, year, last_number) values ($1, $2, $3, $4) \
             on conflict (company_id, series, year) \
             do update set last_number = voucher_counters.last_number + excluded.last_number \
             returning last_number",
        )
        .bind(key.0)
        .bind(key.1)
        .bind(key.2)
        .bind(count)
        .fetch_one(&mut *db)
        .await?;
        next.insert(*key, last - count + 1);
    }
    Ok(vouchers
        .iter()
        .map(|v| {
            let n = next
                .get_mut(&series_key(v))
                .expect("every series was counted");
            *n += 1;
            *n - 1
        })
        .collect())
}

/// The ids of the vouchers each one reverses: from this batch, or already in the ledger.
async fn resolve_reverses(
    db: &mut PgConnection,
    vouchers: &[ToInsert<'_>],
    ids: &[Uuid],
) -> sqlx::Result<Vec<Option<Uuid>>> {
    let mut known: HashMap<(Uuid, &str), Uuid> = vouchers
        .iter()
        .zip(ids)
        .map(|(v, id)| ((v.connection_id, v.voucher.key()), *id))
        .collect();
    let wanted: Vec<(Uuid, &str)> = vouchers
        .iter()
        .filter_map(|v| v.voucher.reverses().map(|k| (v.connection_id, k)))
        .filter(|k| !known.contains_key(k))
        .collect();
    if !wanted.is_empty() {
        let connections: Vec<Uuid> = wanted.iter().map(|w| w.0).collect();
        let keys: Vec<&str> = wanted.iter().map(|w| w.1).collect();
        let found: Vec<(Uuid, String, Uuid)> = sqlx::query_as(
            "select v.connection_id, v.idempotency_key, v.id from vouchers v \
             join unnest($1::uuid[], $2::text[]) as u(c, k) on v.connection_id = u.c and v.idempotency_key = u.k",
        )
        .bind(&connections)
        .bind(&keys)
        .fetch_all(&mut *db)
        .await?;
        for (connection, key, id) in &found {
            if let Some(w) = wanted.iter().find(|w| w.0 == *connection && w.1 == key) {
                known.insert(*w, *id);
            }
        }
    }
    Ok(vouchers
        .iter()
        .map(|v| {
            v.voucher
                .reverses()
                .and_then(|k| known.get(&(v.connection_id, k)).copied())
        })
        .collect())
}

async fn insert_heads(
    db: &mut PgConnection,
    vouchers: &[ToInsert<'_>],
    ids: &[Uuid],
    numbers: &[i32],
    reverses: &[Option<Uuid>],
) -> sqlx::Result<()> {
    let company: Vec<Uuid> = vouchers.iter().map(|v| v.company_id).collect();
    let series_: Vec<&str> = vouchers.iter().map(|v| series(v.voucher.kind())).collect();
    let year: Vec<i32> = vouchers.iter().map(|v| v.voucher.date().year()).collect();
    let date: Vec<NaiveDate> = vouchers.iter().map(|v| v.voucher.date()).collect();
    let kind: Vec<&str> = vouchers
        .iter()
        .map(|v| kind_name(v.voucher.kind()))
        .collect();
    let description: Vec<&str> = vouchers.iter().map(|v| v.voucher.description()).collect();
    let key: Vec<&str> = vouchers.iter().map(|v| v.voucher.key()).collect();
    let connection: Vec<Uuid> = vouchers.iter().map(|v| v.connection_id).collect();
    let order: Vec<&str> = vouchers.iter().map(|v| v.voucher.order_id()).collect();
    let source: Vec<Uuid> = vouchers.iter().map(|v| v.source_event).collect();
    sqlx::query(
        "insert into vouchers (id, company_id, series, year, voucher_date, kind, description, \
             idempotency_key, connection_id, order_id, source_event, reverses, number) \
         select * from unnest($1::uuid[], $2::uuid[], $3::text[], $4::int[], $5::date[], $6::text[], \
             $7::text[], $8::text[], $9::uuid[], $10::text[], $11::uuid[], $12::uuid[], $13::int[])",
    )
    .bind(ids)
    .bind(&company)
    .bind(&series_)
    .bind(&year)
    .bind(&date)
    .bind(&kind)
    .bind(&description)
    .bind(&key)
    .bind(&connection)
    .bind(&order)
    .bind(&source)
    .bind(reverses)
    .bind(numbers)
    .execute(db)
    .await?;
    Ok(())
}

#[derive(Default)]
struct LineColumns {
    voucher: Vec<Uuid>,
    line_no: Vec<i32>,
    company: Vec<Uuid>,
    account: Vec<i32>,
    amount: Vec<i64>,
    currency: Vec<String>,
    currency_amount: Vec<i64>,
    vat_code: Vec<Option<i32>>,
    vat_base: Vec<Option<i64>>,
    customer: Vec<Option<String>>,
    department: Vec<Option<String>>,
    location: Vec<Option<String>>,
    description: Vec<String>,
    role: Vec<String>,
    sku: Vec<Option<String>>,
}

async fn insert_lines(
    db: &mut PgConnection,
    vouchers: &[ToInsert<'_>],
    ids: &[Uuid],
) -> sqlx::Result<()> {
    let mut c = LineColumns::default();
    for (v, id) in vouchers.iter().zip(ids) {
        for (n, l) in (1..).zip(v.voucher.lines()) {
            c.voucher.push(*id);
            c.line_no.push(n);
            c.company.push(v.company_id);
            c.account
                .push(i32::try_from(l.account.0).unwrap_or(i32::MAX));
            c.amount.push(l.amount.0);
            c.currency.push(l.currency.clone());
            c.currency_amount.push(l.currency_amount.0);
            c.vat_code.push(l.vat_code.map(|x| i32::from(x.0)));
            c.vat_base.push(l.vat_base.map(|x| x.0));
            c.customer.push(l.customer_id.clone());
            c.department.push(l.department.clone());
            c.location.push(l.location.clone());
            c.description.push(l.description.clone());
            c.role.push(role_name(l.role));
            c.sku.push(l.sku.clone());
        }
    }
    sqlx::query(
        "insert into voucher_lines (voucher_id, line_no, company_id, account, amount, currency, currency_amount, \
             vat_code, vat_base, customer_id, department, location, description, role, sku) \
         select * from unnest($1::uuid[], $2::int[], $3::uuid[], $4::int[], $5::bigint[], $6::text[], \
             $7::bigint[], $8::int[], $9::bigint[], $10::text[], $11::text[], $12::text[], $13::text[], \
             $14::text[], $15::text[])",
    )
    .bind(&c.voucher)
    .bind(&c.line_no)
    .bind(&c.company)
    .bind(&c.account)
    .bind(&c.amount)
    .bind(&c.currency)
    .bind(&c.currency_amount)
    .bind(&c.vat_code)
    .bind(&c.vat_base)
    .bind(&c.customer)
    .bind(&c.department)
    .bind(&c.location)
    .bind(&c.description)
    .bind(&c.role)
    .bind(&c.sku)
    .execute(db)
    .await?;
    Ok(())
}

/// A posted voucher line, as reports show it.
#[derive(Clone, Debug, FromRow, Serialize)]
pub struct LineRow {
    /// Voucher it belongs to.
    pub voucher_id: Uuid,
    /// Position on the voucher.
    pub line_no: i32,
    /// Account number.
    pub account: i32,
    /// Account name.
    pub account_name: String,
    /// Øre, debit positive.
    pub amount: i64,
    /// VAT code, if any.
    pub vat_code: Option<i32>,
    /// VAT base in øre, if any.
    pub vat_base: Option<i64>,
    /// Customer, on receivable lines.
    pub customer_id: Option<String>,
    /// Department.
    pub department: Option<String>,
    /// Location.
    pub location: Option<String>,
    /// Line text.
    pub description: String,
}

/// A posted voucher, as reports show it.
#[derive(Clone, Debug, FromRow, Serialize)]
pub struct VoucherRow {
    /// Its id.
    pub id: Uuid,
    /// Number series.
    pub series: String,
    /// Year of its number.
    pub year: i32,
    /// Its number within series and year.
    pub number: i32,
    /// Accounting date.
    pub voucher_date: NaiveDate,
    /// invoice, credit_note, payment or refund_payment.
    pub kind: String,
    /// What it is.
    pub description: String,
    /// Business idempotency key.
    pub idempotency_key: String,
    /// The order it belongs to.
    pub order_id: Option<String>,
    /// The event that caused it.
    pub source_event: Option<Uuid>,
    /// The voucher it reverses.
    pub reverses: Option<Uuid>,
}

/// Vouchers (newest number last) and their lines.
///
/// # Errors
/// A database error.
pub async fn list(
    db: &mut PgConnection,
    limit: i64,
) -> sqlx::Result<(Vec<VoucherRow>, Vec<LineRow>)> {
    let vouchers: Vec<VoucherRow> = sqlx::query_as(
        "select * from (select id, series, year, number, voucher_date, kind, description, idempotency_key, \
                order_id, source_event, reverses from vouchers order by posted_at desc, year desc, number desc limit $1) v \
         order by year, series, number",
    )
    .bind(limit)
    .fetch_all(&mut *db)
    .await?;
    let ids: Vec<Uuid> = vouchers.iter().map(|v| v.id).collect();
    let lines: Vec<LineRow> = sqlx::query_as(
        "select l.voucher_id, l.line_no, l.account, a.name as account_name, l.amount, l.vat_code, l.vat_base, \
                l.customer_id, l.department, l.location, l.description \
         from voucher_lines l join accounts a on a.company_id = l.company_id and a.number = l.account \
         where l.voucher_id = any($1) order by l.voucher_id, l.line_no",
    )
    .bind(&ids)
    .fetch_all(db)
    .await?;
    Ok((vouchers, lines))
}

/// One row of a trial balance.
#[derive(Clone, Debug, FromRow, Serialize)]
pub struct BalanceRow {
    /// Account number.
    pub account: i32,
    /// Account name.
    pub name: String,
    /// Sum of debits, øre.
    pub debit: i64,
    /// Sum of credits, øre (positive).
    pub credit: i64,
}

/// Debits and credits per account over vouchers dated within `[from, to]` (either open).
///
/// # Errors
/// A database error.
pub async fn trial_balance(
    db: &mut PgConnection,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
) -> sqlx::Result<Vec<BalanceRow>> {
    sqlx::query_as(
        "select l.account, a.name, \
                coalesce(sum(l.amount) filter (where l.amount > 0), 0)::bigint as debit, \
                coalesce(-sum(l.amount) filter (where l.amount < 0), 0)::bigint as credit \
         from voucher_lines l join vouchers v on v.id = l.voucher_id \
         join accounts a on a.company_id = l.company_id and a.number = l.account \
         where ($1::date is null or v.voucher_date >= $1) and ($2::date is null or v.voucher_date <= $2) \
         group by l.account, a.name order by l.account",
    )
    .bind(from)
    .bind(to)
    .fetch_all(db)
    .await
}
