//! The worker's cache of posting contexts (chart, VAT codes, rules, connection settings), one
//! per connection, so that a batch does not reload the books for every event.
//!
//! Entries live a few seconds: a fixed rule or setting reaches the worker within that time,
//! and a replay after a fix waits for it (see `docs/operations.md`). The company's locked
//! periods are part of the context too: an unlock reaches the worker within [`CONTEXT_TTL`],
//! and a lock is enforced at once by the database (a voucher dated in a locked month is refused
//! and retried, and the retry's fresh context applies the connection's policy).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sqlx::PgConnection;
use uuid::Uuid;

use crate::db::ledger::{self, LedgerError};
use crate::posting::Context;

/// How long a loaded context is used before it is read again.
pub const CONTEXT_TTL: Duration = Duration::from_secs(5);

/// Contexts by connection id.
#[derive(Default)]
pub struct Contexts {
    entries: Mutex<HashMap<Uuid, (Instant, Uuid, Context)>>,
}

impl Contexts {
    /// The company id and context of a connection, from the cache or the database.
    ///
    /// # Errors
    /// [`LedgerError`] when it must be loaded and cannot be.
    pub async fn get(
        &self,
        db: &mut PgConnection,
        connection_id: Uuid,
    ) -> Result<(Uuid, Context), LedgerError> {
        if let Some((at, company, ctx)) = self.lock().get(&connection_id)
            && at.elapsed() < CONTEXT_TTL
        {
            return Ok((*company, ctx.clone()));
        }
        let (company, ctx) = ledger::load_context(db, connection_id).await?;
        self.lock()
            .insert(connection_id, (Instant::now(), company, ctx.clone()));
        Ok((company, ctx))
    }

    /// Forgets every context (rules or settings changed).
    pub fn clear(&self) {
        self.lock().clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, (Instant, Uuid, Context)>> {
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
