//! The receiver's cache of connections and their verifying keys, so that a webhook costs no
//! PostgreSQL round trip. A change made through shopbridge (disable, rotation) is announced with
//! `NOTIFY shopbridge_connections` and evicts the entry in every receiver at once; a TTL bounds
//! the life of an entry whose notification was missed, and no entry outlives a key's expiry.
//!
//! When PostgreSQL cannot be reached, an entry that is due for reloading (its TTL passed, or
//! the change listener lost its connection) is still used, keys' expiry included: the receiver
//! keeps queueing events during a database outage instead of refusing every shop. A change
//! made during the outage cannot have been made through shopbridge, which needs the database.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use chrono::Utc;
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::connections::{self, ConnectionAuth, ConnectionError, Vault};

/// The PostgreSQL notification channel that announces a changed connection.
pub const NOTIFY_CHANNEL: &str = "shopbridge_connections";

/// How long "no such connection" is remembered: short, since a new connection must work soon.
const NEGATIVE_TTL: Duration = Duration::from_secs(2);

/// Entries kept at most; unknown ids probed by a scanner must not grow the map without bound.
const MAX_ENTRIES: usize = 100_000;

#[derive(Clone)]
struct Entry {
    auth: Option<Arc<ConnectionAuth>>,
    loaded: Instant,
    /// Due for reloading (notifications may have been missed); used only while PostgreSQL
    /// cannot be reached.
    stale: bool,
}

/// Connections by id, loaded on first use.
pub struct ConnectionCache {
    db: PgPool,
    vault: Vault,
    ttl: Duration,
    entries: RwLock<HashMap<Uuid, Entry>>,
    limiters: Mutex<HashMap<Uuid, Bucket>>,
    rate: u32,
    /// Allowances for requests that failed verification, apart from `limiters`: anyone can
    /// send those, so they must not spend what the shop's signed webhooks need.
    unverified: Mutex<HashMap<Uuid, Bucket>>,
    unverified_rate: u32,
}

impl ConnectionCache {
    /// An empty cache; `rate` is the per-connection limit of verified webhooks per second and
    /// `unverified_rate` that of requests failing verification (0: none).
    #[must_use]
    pub fn new(db: PgPool, vault: Vault, ttl: Duration, rate: u32, unverified_rate: u32) -> Self {
        ConnectionCache {
            db,
            vault,
            ttl,
            entries: RwLock::new(HashMap::new()),
            limiters: Mutex::new(HashMap::new()),
            rate,
            unverified: Mutex::new(HashMap::new()),
            unverified_rate,
        }
    }

    /// The connection's auth data; `None` when no connection has this id.
    ///
    /// # Errors
    /// When it is not cached and PostgreSQL fails, or its secrets do not open.
    pub async fn get(&self, id: Uuid) -> Result<Option<Arc<ConnectionAuth>>, ConnectionError> {
        if let Some(entry) = self.fresh(id) {
            return Ok(entry.auth);
        }
        let auth = match self.load(id).await {
            Ok(auth) => auth.map(Arc::new),
            Err(ConnectionError::Db(e)) => match self.last_known(id) {
                Some(auth) => {
                    tracing::warn!(connection = %id, error = %e, "PostgreSQL unreachable; using the cached connection.");
                    return Ok(Some(auth));
                }
                None => return Err(ConnectionError::Db(e)),
            },
            Err(e) => return Err(e),
        };
        let mut entries = self
            .entries
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if entries.len() >= MAX_ENTRIES {
            entries.retain(|_, e| e.auth.is_some());
        }
        entries.insert(
            id,
            Entry {
                auth: auth.clone(),
                loaded: Instant::now(),
                stale: false,
            },
        );
        Ok(auth)
    }

    async fn load(&self, id: Uuid) -> Result<Option<ConnectionAuth>, ConnectionError> {
        let mut conn = self.db.acquire().await?;
        connections::load_auth(&mut conn, &self.vault, id).await
    }

    /// The connection as last loaded, however old, unless its keys expired since.
    fn last_known(&self, id: Uuid) -> Option<Arc<ConnectionAuth>> {
        let entries = self
            .entries
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let auth = entries.get(&id)?.auth.clone()?;
        let expired = auth
            .keys_valid_until
            .is_some_and(|until| until <= Utc::now());
        (!expired).then_some(auth)
    }

    fn fresh(&self, id: Uuid) -> Option<Entry> {
        let entries = self
            .entries
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let entry = entries.get(&id)?;
        let ttl = if entry.auth.is_some() {
            self.ttl
        } else {
            NEGATIVE_TTL
        };
        let key_expired = entry
            .auth
            .as_ref()
            .and_then(|a| a.keys_valid_until)
            .is_some_and(|until| until <= Utc::now());
        (!entry.stale && entry.loaded.elapsed() < ttl && !key_expired).then(|| entry.clone())
    }

    /// The vault that opens the connections' secrets (the admin API seals new ones with it).
    pub fn vault(&self) -> &Vault {
        &self.vault
    }

    /// Forgets one connection (it changed).
    pub fn invalidate(&self, id: Uuid) {
        self.entries
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&id);
    }

    /// Marks everything due for reloading (notifications may have been missed); unknown ids
    /// are forgotten.
    pub fn clear(&self) {
        let mut entries = self
            .entries
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        entries.retain(|_, e| e.auth.is_some());
        for entry in entries.values_mut() {
            entry.stale = true;
        }
    }

    /// Takes one verified webhook from the connection's allowance: `Err(wait)` when it is used
    /// up.
    ///
    /// # Errors
    /// The time until a request would be allowed again.
    pub fn admit(&self, id: Uuid) -> Result<(), Duration> {
        take(&self.limiters, id, self.rate)
    }

    /// Takes one request that failed verification (or was unsigned) from the connection's
    /// separate, smaller allowance for those.
    ///
    /// # Errors
    /// The time until such a request would be allowed again.
    pub fn admit_unverified(&self, id: Uuid) -> Result<(), Duration> {
        take(&self.unverified, id, self.unverified_rate)
    }

    /// Listens for change notifications until `stop` fires, evicting what changed. Reconnects by
    /// itself; after a lost connection it clears the cache, since notifications may be lost.
    pub fn spawn_listener(self: &Arc<Self>, stop: CancellationToken) {
        let cache = Arc::clone(self);
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = stop.cancelled() => return,
                    result = cache.listen() => {
                        if let Err(e) = result {
                            tracing::warn!(error = %e, "Connection change listener failed; retrying.");
                        }
                        cache.clear();
                        tokio::select! {
                            () = stop.cancelled() => return,
                            () = tokio::time::sleep(Duration::from_secs(1)) => {}
                        }
                    }
                }
            }
        });
    }

    async fn listen(&self) -> Result<(), sqlx::Error> {
        let mut listener = PgListener::connect_with(&self.db).await?;
        listener.listen(NOTIFY_CHANNEL).await?;
        // Anything cached before LISTEN took effect may be stale.
        self.clear();
        while let Some(note) = listener.try_recv().await? {
            match note.payload().parse::<Uuid>() {
                Ok(id) => self.invalidate(id),
                Err(_) => self.clear(),
            }
        }
        Ok(()) // the connection was lost; the caller clears and reconnects
    }
}

/// Takes a token from `id`'s bucket in `buckets` at `rate` per second (0: no limit). The maps
/// hold only connections that exist: callers look the connection up first.
fn take(buckets: &Mutex<HashMap<Uuid, Bucket>>, id: Uuid, rate: u32) -> Result<(), Duration> {
    if rate == 0 {
        return Ok(());
    }
    let mut buckets = buckets
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let rate = f64::from(rate);
    let bucket = buckets.entry(id).or_insert_with(|| Bucket {
        tokens: rate,
        at: Instant::now(),
    });
    bucket.take(rate)
}

/// A token bucket holding up to one second's worth of requests.
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn take(&mut self, rate: f64) -> Result<(), Duration> {
        let now = Instant::now();
        self.tokens = (self.tokens + now.duration_since(self.at).as_secs_f64() * rate).min(rate);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - self.tokens) / rate))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_a_burst_then_refuses_with_a_wait() {
        let mut b = Bucket {
            tokens: 3.0,
            at: Instant::now(),
        };
        assert!(b.take(3.0).is_ok());
        assert!(b.take(3.0).is_ok());
        assert!(b.take(3.0).is_ok());
        let wait = b.take(3.0).unwrap_err();
        assert!(wait > Duration::ZERO && wait <= Duration::from_secs(1));
    }
}
