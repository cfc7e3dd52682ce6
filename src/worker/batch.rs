//! One transaction for a batch of deliveries: inbox, source documents, order locks, posting,
//! vouchers, statuses; then commit. The pure engine does the bookkeeping; this file only
//! loads what it needs and stores what it returns.

use std::collections::{BTreeMap, HashMap};

use sqlx::PgConnection;
use uuid::Uuid;

use super::Deps;
use super::incoming::{Incoming, Meta};
use crate::channels;
use crate::db::events::{self, Arrival, NewEvent};
use crate::db::vouchers::ToInsert;
use crate::db::{catalog, orders, vouchers};
use crate::posting::event::{Customer, Event, ExchangeRate, Product};
use crate::posting::{self, Context, OrderState, Outcome as EngineOutcome, Voucher, oslo_date};

/// What became of one delivery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Vouchers were posted, or there was nothing to post (unchanged, product); ack.
    Processed,
    /// Deliberately not posted (before the cut-off date, stale version); ack.
    Skipped(String),
    /// A topic shopbridge does not post; ack.
    Ignored(String),
    /// Already handled; ack.
    Duplicate,
    /// The same content as an earlier event, delivered under another event id: recorded as
    /// `duplicate` with this reason (naming the earlier event), nothing posted; ack.
    DuplicateContent(String),
    /// Cannot be posted as it is: dead-letter with this reason.
    Failed(String),
    /// Could be posted later (its order has not arrived, a lock conflict): retry with backoff,
    /// spending one of its attempts.
    Retry(String),
    /// The database was unavailable (unreachable, read-only, refusing connections): retry with
    /// backoff without spending an attempt, since the event is not at fault, so that an outage
    /// of any length dead-letters nothing.
    Unavailable(String),
}

type OrderKey = (Uuid, String);

/// A delivery that passed the inbox and the adapter, waiting to be posted.
struct Work<'a> {
    index: usize,
    event_row: Uuid,
    meta: &'a Meta,
    events: Vec<Event>,
    /// See [`channels::Reading::content_key`].
    content_key: Option<String>,
}

/// The batch's transaction took longer than `SHOPBRIDGE_BATCH_TIMEOUT`: the database stopped
/// answering. Nothing was committed, unless the commit itself went through and only its answer
/// was lost; the inbox makes the retry of such an event a harmless duplicate.
#[derive(Debug, thiserror::Error)]
#[error("the database did not answer within {0:?}; the batch was abandoned")]
pub struct TimedOut(pub std::time::Duration);

/// Posts a batch in one transaction and returns each delivery's outcome, in order.
///
/// Locks are taken in one global order — inbox rows, then content keys, then orders, then
/// customers, then voucher counters, each sorted by key — so concurrent batches wait for each
/// other but never deadlock.
///
/// The transaction is bounded by the worker's batch timeout. Past it, the connection is taken
/// out of the pool and closed rather than returned: a connection dropped mid-query cannot be
/// reused, and the pool's own check of a returned connection would wait on the stalled
/// database without a limit. The server bounds the same transaction from its side (see
/// [`server_limits`]), so that an abandoned session does not keep its locks for long either.
///
/// # Errors
/// A database error or [`TimedOut`]: nothing was committed, and the caller retries.
pub async fn process(deps: &Deps, batch: &[Incoming]) -> Result<Vec<Outcome>, anyhow::Error> {
    let mut conn = deps.db.acquire().await?;
    let limit = deps.settings.batch_timeout;
    if let Ok(result) = tokio::time::timeout(limit, transaction(deps, &mut conn, batch)).await {
        result
    } else {
        drop(conn.detach());
        Err(TimedOut(limit).into())
    }
}

async fn transaction(
    deps: &Deps,
    conn: &mut PgConnection,
    batch: &[Incoming],
) -> Result<Vec<Outcome>, anyhow::Error> {
    let t0 = std::time::Instant::now();
    let mut tx = sqlx::Connection::begin(conn).await?;
    server_limits(&mut tx, deps.settings.batch_timeout).await?;
    let mut outcomes: Vec<Option<Outcome>> = vec![None; batch.len()];
    let arrivals = arrive(&mut tx, batch, &mut outcomes).await?;
    let t_arrive = t0.elapsed();
    let mut work = Vec::new();
    let mut rows: Vec<(usize, Uuid)> = Vec::new();
    for (i, row) in arrivals {
        rows.push((i, row));
        let (item, meta) = (
            &batch[i],
            batch[i]
                .meta
                .as_ref()
                .expect("arrived deliveries have metadata"),
        );
        match channels::read(meta.channel, &meta.topic, item.body()) {
            Ok(reading) => work.push(Work {
                index: i,
                event_row: row,
                meta,
                events: reading.events,
                content_key: reading.content_key,
            }),
            Err(e) => outcomes[i] = Some(Outcome::Failed(format!("invalid payload: {e}"))),
        }
    }
    claim_contents(&mut tx, &mut work, &mut outcomes).await?;
    let mut states = lock_orders(&mut tx, &work).await?;
    let t_lock = t0.elapsed();
    let mut touched: BTreeMap<OrderKey, ()> = BTreeMap::new();
    let mut posted: Vec<(Voucher, Uuid, Uuid, Uuid)> = Vec::new(); // voucher, company, connection, event row
    let mut parties = Parties::default();
    let mut set_aside: Vec<(Uuid, posting::SetAside)> = Vec::new();
    let mut flags: Vec<Option<String>> = vec![None; batch.len()];
    let mut raised_per_event = vec![0_u64; batch.len()];
    for w in &work {
        let outcome = match post_one(deps, &mut tx, w, &mut states).await? {
            Ok((outcome, vouchers, keys, company, raised)) => {
                raised_per_event[w.index] = raised.len() as u64;
                if !raised.is_empty() {
                    flags[w.index] = Some(raised.join("; "));
                }
                if matches!(outcome, Outcome::Skipped(_)) {
                    set_aside.extend(reversed_early(&states, w.meta.connection_id, &vouchers));
                }
                touched.extend(keys.into_iter().map(|k| (k, ())));
                posted.extend(
                    vouchers
                        .into_iter()
                        .map(|v| (v, company, w.meta.connection_id, w.event_row)),
                );
                parties.note(w);
                outcome
            }
            Err(outcome) => outcome,
        };
        outcomes[w.index] = Some(outcome);
    }
    let t_post = t0.elapsed();
    set_aside_in_batch(&set_aside, &posted, &rows, &mut outcomes, &mut flags);
    let flagged: u64 = raised_per_event
        .iter()
        .zip(&flags)
        .filter(|(_, f)| f.is_some())
        .map(|(n, _)| n)
        .sum();
    store_orders(&mut tx, &states, touched.keys()).await?;
    parties.store(&mut tx).await?;
    let t_store = t0.elapsed();
    let inserts: Vec<ToInsert<'_>> = posted
        .iter()
        .map(|(v, company, conn, row)| ToInsert {
            voucher: v,
            company_id: *company,
            connection_id: *conn,
            source_event: *row,
        })
        .collect();
    let outcomes: Vec<Outcome> = outcomes
        .into_iter()
        .map(|o| o.unwrap_or(Outcome::Duplicate))
        .collect();
    finish_events(&mut tx, &rows, &outcomes, &flags).await?;
    set_aside_in_ledger(&mut tx, &set_aside).await?;
    // Last: the voucher counters are locked from here to the commit, so this stretch decides
    // how many batches per second a series can take.
    vouchers::insert(&mut tx, &inserts).await?;
    let t_vouchers = t0.elapsed();
    tx.commit().await?;
    if flagged > 0 {
        deps.metrics.overpaid(flagged);
    }
    tracing::debug!(
        size = batch.len(),
        arrive = ?t_arrive,
        lock = ?t_lock,
        post = ?t_post,
        store = ?t_store,
        vouchers = ?t_vouchers,
        total = ?t0.elapsed(),
        "Batch committed."
    );
    Ok(outcomes)
}

/// The vouchers posted before their order arrived that a skipped order's `vouchers` reverse,
/// with the reason their events now have.
fn reversed_early(
    states: &HashMap<OrderKey, OrderState>,
    connection: Uuid,
    vouchers: &[Voucher],
) -> Vec<(Uuid, posting::SetAside)> {
    vouchers
        .iter()
        .filter_map(|v| {
            let state = states.get(&(connection, v.order_id().to_owned()))?;
            posting::set_aside_reason(state, v).map(|s| (connection, s))
        })
        .collect()
}

/// Events of this batch whose voucher a skipped order of the same batch reverses: skipped, and
/// their flags dropped (what they posted is reversed, so what they flagged no longer stands).
fn set_aside_in_batch(
    set_aside: &[(Uuid, posting::SetAside)],
    posted: &[(Voucher, Uuid, Uuid, Uuid)],
    rows: &[(usize, Uuid)],
    outcomes: &mut [Option<Outcome>],
    flags: &mut [Option<String>],
) {
    for (connection, s) in set_aside {
        let source = posted
            .iter()
            .find(|(v, _, c, _)| c == connection && v.key() == s.reversed)
            .map(|(_, _, _, row)| row);
        let index = source.and_then(|row| rows.iter().find(|(_, r)| r == row));
        if let Some((i, _)) = index {
            outcomes[*i] = Some(Outcome::Skipped(s.reason.clone()));
            flags[*i] = None;
        }
    }
}

/// Events of earlier batches whose voucher a skipped order of this batch reverses: skipped.
///
/// Their rows are locked here, after the orders, out of the lock order of [`process`]. Only a
/// batch that holds such a row (a redelivery of the payment, a duplicate) and then waits for
/// this very order can meet it; PostgreSQL breaks that deadlock and the batch it aborts is
/// retried.
async fn set_aside_in_ledger(
    db: &mut PgConnection,
    set_aside: &[(Uuid, posting::SetAside)],
) -> sqlx::Result<()> {
    if set_aside.is_empty() {
        return Ok(());
    }
    let connections: Vec<Uuid> = set_aside.iter().map(|(c, _)| *c).collect();
    let keys: Vec<&str> = set_aside.iter().map(|(_, s)| s.reversed.as_str()).collect();
    let reasons: Vec<&str> = set_aside.iter().map(|(_, s)| s.reason.as_str()).collect();
    events::skip_by_voucher(db, &connections, &keys, &reasons).await
}

/// Bounds the batch's transaction on the server too, a little inside the worker's own limit:
/// a statement or a lock wait that takes too long is cancelled (a transient error, retried),
/// and a session left idle in the transaction, which is what a worker that gave up on a
/// stalled network leaves behind, is ended with its locks released. Without this, the
/// abandoned transaction would hold its orders, inbox rows and counters until the server
/// noticed the dead socket, and every later batch of the company would wait on them.
async fn server_limits(
    db: &mut PgConnection,
    batch_timeout: std::time::Duration,
) -> sqlx::Result<()> {
    let ms = batch_timeout.as_millis().saturating_mul(9) / 10;
    let ms = ms.max(1).to_string();
    sqlx::query(
        "select set_config('statement_timeout', $1, true), set_config('lock_timeout', $1, true), \
                set_config('idle_in_transaction_session_timeout', $1, true)",
    )
    .bind(&ms)
    .execute(db)
    .await?;
    Ok(())
}

/// Records the batch in the inbox; returns the deliveries to process (index, event row), and
/// fills in the outcome of the rest: no metadata (failed), or seen before (duplicate).
async fn arrive(
    db: &mut PgConnection,
    batch: &[Incoming],
    outcomes: &mut [Option<Outcome>],
) -> sqlx::Result<Vec<(usize, Uuid)>> {
    let mut order: Vec<(usize, &Meta)> = Vec::with_capacity(batch.len());
    for (i, item) in batch.iter().enumerate() {
        match &item.meta {
            Ok(meta) => order.push((i, meta)),
            Err(reason) => outcomes[i] = Some(Outcome::Failed(reason.clone())),
        }
    }
    order.sort_by(|a, b| {
        (a.1.connection_id, &a.1.event_id).cmp(&(b.1.connection_id, &b.1.event_id))
    });
    // The same event twice in one batch: the later copy is a duplicate of the first.
    let mut unique: Vec<(usize, &Meta)> = Vec::with_capacity(order.len());
    let mut copies: Vec<i32> = Vec::with_capacity(order.len());
    for (i, meta) in order {
        let same = unique.last().is_some_and(|(_, prev)| {
            prev.connection_id == meta.connection_id && prev.event_id == meta.event_id
        });
        if let (true, Some(n)) = (same, copies.last_mut()) {
            outcomes[i] = Some(Outcome::Duplicate);
            *n += 1;
        } else {
            unique.push((i, meta));
            copies.push(1);
        }
    }
    let news: Vec<NewEvent<'_>> = unique
        .iter()
        .map(|(i, m)| new_event(m, batch[*i].body()))
        .collect();
    let arrivals = events::arrive_all(db, &news, &copies).await?;
    let mut todo = Vec::with_capacity(unique.len());
    for ((i, _), arrival) in unique.iter().zip(arrivals) {
        match arrival {
            Arrival::Duplicate(_) => outcomes[*i] = Some(Outcome::Duplicate),
            Arrival::New(id) | Arrival::Retry(id) => todo.push((*i, id)),
        }
    }
    Ok(todo)
}

/// Claims each delivery's content key (see [`channels::Reading::content_key`]) and takes out of
/// `work` the deliveries whose content an earlier event carried: they are duplicates of it,
/// delivered again under another event id, and post nothing. Within the batch the first
/// delivery of a content wins; the claims go to the database in key order.
async fn claim_contents(
    db: &mut PgConnection,
    work: &mut Vec<Work<'_>>,
    outcomes: &mut [Option<Outcome>],
) -> sqlx::Result<()> {
    let mut keyed: Vec<(Uuid, &str, usize)> = work
        .iter()
        .enumerate()
        .filter_map(|(at, w)| {
            let key = w.content_key.as_deref()?;
            Some((w.meta.connection_id, key, at))
        })
        .collect();
    if keyed.is_empty() {
        return Ok(());
    }
    keyed.sort_unstable();
    let mut claims: Vec<events::ContentClaim<'_>> = Vec::with_capacity(keyed.len());
    let mut claimants: Vec<usize> = Vec::with_capacity(keyed.len());
    let mut repeats: Vec<(usize, String)> = Vec::new();
    for (conn, key, at) in keyed {
        match claims.last() {
            Some(c) if c.connection_id == conn && c.content_key == key => {
                let first = &work[*claimants.last().expect("one per claim")];
                repeats.push((at, first.meta.event_id.clone()));
            }
            _ => {
                claims.push(events::ContentClaim {
                    connection_id: conn,
                    content_key: key,
                    event_row: work[at].event_row,
                });
                claimants.push(at);
            }
        }
    }
    let holders = events::claim_contents(db, &claims).await?;
    repeats.extend(
        claimants
            .into_iter()
            .zip(holders)
            .filter_map(|(at, holder)| Some((at, holder?))),
    );
    for (at, earlier) in repeats {
        let w = &work[at];
        let key = w.content_key.as_deref().unwrap_or_default();
        outcomes[w.index] = Some(Outcome::DuplicateContent(format!(
            "the same content ({key}) as event {earlier}, delivered again under another event id; \
             nothing posted"
        )));
    }
    work.retain(|w| outcomes[w.index].is_none());
    Ok(())
}

/// Customers and products the batch's posted events named, written after the orders and
/// before the voucher counters (see the lock order on [`process`]).
#[derive(Default)]
struct Parties {
    customers: BTreeMap<(Uuid, String), Customer>,
    products: BTreeMap<(Uuid, String), Product>,
}

impl Parties {
    fn note(&mut self, w: &Work<'_>) {
        for event in &w.events {
            match event {
                Event::Order(o) => {
                    if let Some(c) = &o.customer {
                        self.customers
                            .insert((w.meta.connection_id, c.id.clone()), c.clone());
                    }
                }
                Event::Product(p) => {
                    self.products
                        .insert((w.meta.connection_id, p.sku.clone()), p.clone());
                }
                _ => {}
            }
        }
    }

    async fn store(self, db: &mut PgConnection) -> sqlx::Result<()> {
        for ((conn, _), product) in &self.products {
            catalog::upsert_product(db, *conn, product).await?;
        }
        let customers: Vec<(Uuid, Customer)> = self
            .customers
            .into_iter()
            .map(|((c, _), cu)| (c, cu))
            .collect();
        catalog::sync_customers(db, &customers).await
    }
}

fn new_event<'a>(meta: &'a Meta, body: &'a [u8]) -> NewEvent<'a> {
    NewEvent {
        connection_id: meta.connection_id,
        source_event_id: &meta.event_id,
        channel: meta.channel.as_str(),
        topic: &meta.topic,
        body,
        received_at: meta.received_at,
        occurred_at: meta.occurred_at,
        request_id: meta.request_id.as_deref(),
    }
}

/// Locks every order the batch touches, all at once and in key order.
async fn lock_orders(
    db: &mut PgConnection,
    work: &[Work<'_>],
) -> sqlx::Result<HashMap<OrderKey, OrderState>> {
    let mut keys: Vec<OrderKey> = work
        .iter()
        .flat_map(|w| {
            w.events
                .iter()
                .filter_map(|e| e.order_id().map(|o| (w.meta.connection_id, o.to_owned())))
        })
        .collect();
    keys.sort();
    keys.dedup();
    if keys.is_empty() {
        return Ok(HashMap::new());
    }
    let (conns, ids): (Vec<Uuid>, Vec<String>) = keys.into_iter().unzip();
    let rows = orders::lock(db, &conns, &ids).await?;
    Ok(rows.into_iter().map(|(c, o, s)| ((c, o), s)).collect())
}

/// Outcome, vouchers, orders touched, company, and the flags raised (for the event row).
type Posted = (Outcome, Vec<Voucher>, Vec<OrderKey>, Uuid, Vec<String>);

/// Posts the canonical events of one delivery against staged copies of its orders' states;
/// the copies replace the batch's states only if every event of the delivery posts.
async fn post_one(
    deps: &Deps,
    db: &mut PgConnection,
    w: &Work<'_>,
    states: &mut HashMap<OrderKey, OrderState>,
) -> sqlx::Result<Result<Posted, Outcome>> {
    let (company, base_ctx) = match deps.contexts.get(db, w.meta.connection_id).await {
        Ok(c) => c,
        Err(crate::db::ledger::LedgerError::Db(e)) => return Err(e),
        Err(e) => return Ok(Err(Outcome::Failed(e.to_string()))),
    };
    let date = oslo_date(w.meta.occurred_at.unwrap_or(w.meta.received_at));
    let mut staged: HashMap<OrderKey, OrderState> = HashMap::new();
    let mut vouchers = Vec::new();
    let mut parts = Vec::with_capacity(w.events.len());
    let mut raised = Vec::new();
    for event in &w.events {
        let rate = match exchange_rate(db, company, &base_ctx, event, date).await? {
            Ok(rate) => rate,
            Err(reason) => return Ok(Err(Outcome::Failed(reason))),
        };
        let ctx = base_ctx.for_event(rate, date);
        let key = event
            .order_id()
            .map(|o| (w.meta.connection_id, o.to_owned()));
        let prior = match &key {
            Some(k) => staged
                .get(k)
                .or_else(|| states.get(k))
                .cloned()
                .unwrap_or_else(|| OrderState::new(&k.1)),
            None => OrderState::new(""),
        };
        let posting = match posting::post(event, &ctx, &prior) {
            Ok(p) => p,
            Err(e) if e.is_retryable() => return Ok(Err(Outcome::Retry(e.to_string()))),
            Err(e) => return Ok(Err(Outcome::Failed(e.to_string()))),
        };
        parts.push(posting.outcome.clone());
        raised.extend(posting.flags.iter().map(ToString::to_string));
        vouchers.extend(posting.vouchers);
        if let Some(k) = key {
            staged.insert(k, posting.state);
        }
    }
    let keys: Vec<OrderKey> = staged.keys().cloned().collect();
    states.extend(staged);
    Ok(Ok((summarise(&parts), vouchers, keys, company, raised)))
}

/// The rate for an event in another currency than the company's: from the payload if the order
/// carries one (the engine reads that itself), else the company's rates table.
async fn exchange_rate(
    db: &mut PgConnection,
    company: Uuid,
    ctx: &Context,
    event: &Event,
    date: chrono::NaiveDate,
) -> sqlx::Result<Result<Option<ExchangeRate>, String>> {
    let currency = match event {
        Event::Order(o) if o.exchange_rate.is_none() => Some(&o.currency),
        Event::Payment(p) => Some(&p.currency),
        Event::Refund(r) => Some(&r.currency),
        _ => None,
    };
    let Some(currency) = currency.filter(|c| !c.eq_ignore_ascii_case(&ctx.base_currency)) else {
        return Ok(Ok(None));
    };
    let micros =
        crate::db::ledger::exchange_rate(db, company, &currency.to_ascii_uppercase(), date).await?;
    // No rate is not decided here: the engine fails with its own message when it needs one.
    Ok(Ok(micros.map(|micros| ExchangeRate { micros })))
}

/// One delivery's outcome from its events' outcomes: the most telling one wins. A stale
/// snapshot beside a payment that posted (a Shopify `orders/paid` whose snapshot came already
/// with its `orders/create`) is a delivery that posted, not one skipped as stale.
fn summarise(parts: &[EngineOutcome]) -> Outcome {
    let posted = parts.contains(&EngineOutcome::Posted);
    parts
        .iter()
        .filter(|p| !(posted && **p == EngineOutcome::Stale))
        .fold(Outcome::Processed, combine)
}

/// The outcome so far, and one more event's: the first that is not `Processed` wins.
fn combine(so_far: Outcome, next: &EngineOutcome) -> Outcome {
    let next = match next {
        EngineOutcome::Posted | EngineOutcome::Unchanged | EngineOutcome::ProductUpserted => {
            Outcome::Processed
        }
        EngineOutcome::Skipped(reason) => Outcome::Skipped(reason.clone()),
        EngineOutcome::Stale => {
            Outcome::Skipped("an older version than the one already applied".into())
        }
        EngineOutcome::Ignored(topic) => {
            Outcome::Ignored(format!("shopbridge does not post `{topic}` events"))
        }
    };
    match (&so_far, &next) {
        (Outcome::Processed, _) => next,
        _ => so_far,
    }
}

async fn store_orders<'k>(
    db: &mut PgConnection,
    states: &HashMap<OrderKey, OrderState>,
    touched: impl Iterator<Item = &'k OrderKey>,
) -> sqlx::Result<()> {
    let (mut conns, mut list) = (Vec::new(), Vec::new());
    for key in touched {
        if let Some(state) = states.get(key) {
            conns.push(key.0);
            list.push(state.clone());
        }
    }
    if list.is_empty() {
        return Ok(());
    }
    orders::store(db, &conns, &list).await
}

async fn finish_events(
    db: &mut PgConnection,
    rows: &[(usize, Uuid)],
    outcomes: &[Outcome],
    flags: &[Option<String>],
) -> sqlx::Result<()> {
    let mut ids = Vec::with_capacity(rows.len());
    let mut flagged = Vec::with_capacity(rows.len());
    let mut statuses = Vec::with_capacity(rows.len());
    let mut reasons = Vec::with_capacity(rows.len());
    for (i, id) in rows {
        let (status, reason) = match &outcomes[*i] {
            Outcome::Processed | Outcome::Duplicate => ("processed", None),
            Outcome::DuplicateContent(r) => ("duplicate", Some(r.clone())),
            Outcome::Skipped(r) => ("skipped", Some(r.clone())),
            Outcome::Ignored(r) => ("ignored", Some(r.clone())),
            Outcome::Failed(r) => ("failed", Some(r.clone())),
            // Left failed so that its redelivery is processed again (not taken for a duplicate).
            Outcome::Retry(r) | Outcome::Unavailable(r) => {
                ("failed", Some(format!("will retry: {r}")))
            }
        };
        ids.push(*id);
        statuses.push(status);
        reasons.push(reason);
        flagged.push(flags[*i].clone());
    }
    if ids.is_empty() {
        return Ok(());
    }
    events::finish(db, &ids, &statuses, &reasons, &flagged).await
}
