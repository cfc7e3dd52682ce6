//! Following a replay: what the worker made of each republished event, read from the events
//! table. An event's row changes in the same transaction that posts it (its `deliveries` count
//! grows and its status is set), so "deliveries grew and the status is final" means the worker
//! has finished with the replayed copy.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use super::{Progress, ReplayReport, ReplayResult, Step};
use crate::db::admin as q;

/// An event's state just before it was republished.
#[derive(Clone, Debug)]
pub struct Before {
    connection_id: Uuid,
    event_id: String,
    /// Deliveries counted so far (0: no row yet).
    deliveries: i32,
    /// Status before (`None`: no row yet).
    status: Option<String>,
    /// The database's clock then: vouchers posted later are the replay's.
    at: DateTime<Utc>,
}

impl Before {
    /// The event's status before the replay (`None`: it had no row).
    #[must_use]
    pub fn status(&self) -> Option<String> {
        self.status.clone()
    }
}

/// Reads an event's state before it is republished.
///
/// # Errors
/// A database error.
pub async fn before(db: &PgPool, connection_id: Uuid, event_id: &str) -> sqlx::Result<Before> {
    let mut conn = db.acquire().await?;
    let at = q::now(&mut conn).await?;
    let row = q::event_state(&mut conn, connection_id, event_id).await?;
    Ok(Before {
        connection_id,
        event_id: event_id.to_owned(),
        deliveries: row.as_ref().map_or(0, |r| r.deliveries),
        status: row.map(|r| r.status),
        at,
    })
}

/// Waits up to `wait` for every republished event of `report` (those with a [`Before`]) to get
/// a final status, then sets each one's result and recounts the totals.
///
/// # Errors
/// A database error.
pub async fn follow(
    db: &PgPool,
    report: &mut ReplayReport,
    befores: &[Option<Before>],
    wait: Duration,
    progress: Progress<'_>,
) -> sqlx::Result<()> {
    let deadline = tokio::time::Instant::now() + wait;
    let mut open: Vec<usize> = (0..report.events.len())
        .filter(|&i| befores.get(i).is_some_and(Option::is_some))
        .collect();
    progress(Step::Begin(open.len() as u64, "waiting for the worker"));
    loop {
        let mut conn = db.acquire().await?;
        let mut still = Vec::new();
        for i in open {
            let Some(b) = &befores[i] else { continue };
            match settle_one(&mut conn, b).await? {
                Some((result, detail, vouchers)) => {
                    let e = &mut report.events[i];
                    e.result = result;
                    e.detail = detail;
                    e.vouchers = vouchers;
                    progress(Step::Advance);
                }
                None => still.push(i),
            }
        }
        drop(conn);
        open = still;
        if open.is_empty() || tokio::time::Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for i in open {
        report.events[i].result = ReplayResult::Pending;
        report.events[i].detail = Some(format!(
            "no final status within {}s; see `shopbridge events show`",
            wait.as_secs()
        ));
    }
    progress(Step::Done);
    report.count();
    Ok(())
}

type Settled = (ReplayResult, Option<String>, Vec<String>);

/// The result of one replayed event once the worker is done with it; `None` while it is not.
async fn settle_one(db: &mut sqlx::PgConnection, b: &Before) -> sqlx::Result<Option<Settled>> {
    let Some(now) = q::event_state(db, b.connection_id, &b.event_id).await? else {
        return Ok(None);
    };
    let retrying = now.status == "failed"
        && now
            .reason
            .as_deref()
            .is_some_and(|r| r.starts_with("will retry"));
    if now.deliveries <= b.deliveries || now.status == "processing" || retrying {
        return Ok(None);
    }
    let done_before = matches!(
        b.status.as_deref(),
        Some("processed" | "skipped" | "ignored" | "duplicate")
    );
    let vouchers = q::vouchers_of_event_since(db, now.id, b.at).await?;
    let settled = match now.status.as_str() {
        _ if done_before => (
            ReplayResult::Duplicate,
            Some(format!(
                "already {}: the inbox saw a duplicate, nothing changed",
                b.status.as_deref().unwrap_or("done")
            )),
            vouchers,
        ),
        "processed" => (ReplayResult::Posted, None, vouchers),
        "skipped" => (ReplayResult::Skipped, now.reason, vouchers),
        "ignored" => (ReplayResult::Ignored, now.reason, vouchers),
        "duplicate" => (ReplayResult::Duplicate, now.reason, vouchers),
        _ => (ReplayResult::Failed, now.reason, vouchers),
    };
    Ok(Some(settled))
}
