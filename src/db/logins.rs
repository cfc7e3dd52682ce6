//! The console's login throttle: failed logins in a row, counted per email address and client
//! (table `login_client_failures`) and, against a much higher limit, per address alone (table
//! `login_failures`).
//!
//! A client that guesses at someone's address waits after a few failures while the owner, from
//! another client, still logs in; many clients guessing at one address together still meet the
//! address's own limit, so a distributed guess stays bounded. Both are kept whether or not a
//! user has the address, so the throttle says nothing about which addresses exist.

use std::time::Duration;

use sqlx::PgPool;

/// Failures further apart than this start a count again. Longer than [`MAX_WAIT`], so a client
/// that keeps guessing stays at the longest wait.
pub const FAILURE_WINDOW: Duration = Duration::from_secs(60 * 60);
/// The wait after a limit's last free failure; it doubles with each further one.
pub const FIRST_WAIT: Duration = Duration::from_secs(30);
/// The longest wait.
pub const MAX_WAIT: Duration = Duration::from_secs(15 * 60);

/// How many failures in a row a count allows before each attempt must wait.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limit {
    /// Failures in a row allowed without waiting.
    pub free_failures: i32,
}

/// Failures one client may have with one address.
pub const PER_CLIENT: Limit = Limit { free_failures: 5 };
/// Failures one address may have from all clients together.
pub const PER_ADDRESS: Limit = Limit { free_failures: 100 };

// An address's allowance is many clients' worth, or its owner would again be easy to lock out.
const _: () = assert!(PER_ADDRESS.free_failures >= 10 * PER_CLIENT.free_failures);

impl Limit {
    /// The wait after `failures` failures in a row.
    #[must_use]
    pub fn wait_after(self, failures: i32) -> Duration {
        let beyond = u32::try_from(failures - self.free_failures + 1).unwrap_or(0);
        if beyond == 0 {
            return Duration::ZERO;
        }
        FIRST_WAIT
            .checked_mul(2u32.saturating_pow(beyond - 1))
            .unwrap_or(MAX_WAIT)
            .min(MAX_WAIT)
    }
}

/// What [`claim`] decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attempt {
    /// Check the password. The attempt is already counted as a failure in a row, `client`th
    /// of this client and `address`th of the address; [`forget_client`] forgets it if the
    /// password is right.
    Go {
        /// The client's failures in a row with this address, this one included.
        client: i32,
        /// The address's failures in a row from all clients, this one included.
        address: i32,
    },
    /// Too many failures in a row, of the client or of the address: wait this long. The
    /// password is not checked.
    Wait(Duration),
}

/// Claims one login attempt by `client` for `email` before its password is checked: counts it
/// as a failure in a row of the client and of the address, unless either must still wait.
///
/// One statement, under the rows' locks, so attempts sent at once take turns: a burst cannot
/// pass the check together and have all its passwords checked. The address's row is claimed
/// first and only if the client need not wait (as last committed), so a client that is made to
/// wait does not spend the address's allowance; the client's row is claimed only if the
/// address's was, and its own condition is checked again under its lock. (A burst from one
/// client can so count an attempt against the address that its client then refuses: the
/// address's count errs on the safe side.)
///
/// # Errors
/// A database error.
pub async fn claim(db: &PgPool, email: &str, client: &str) -> sqlx::Result<Attempt> {
    prune(db).await?;
    // `waits(n, free)`: the wait after n failures in a row against a limit of `free`, as
    // `Limit::wait_after` computes it.
    let waits = |n: &str, free: &str| {
        format!("make_interval(secs => least($3 * power(2, least({n} - {free}, 30)), $4))")
    };
    let sql = format!(
        "with address as ( \
             insert into login_failures as f (email, failures, last_failure_at) \
             select lower($1), 1, now() \
             where not exists ( \
                 select 1 from login_client_failures c \
                 where c.email = lower($1) and c.client = $2 and c.failures >= $6 \
                   and c.last_failure_at > now() - {client_wait}) \
             on conflict (email) do update set \
                 failures = case when f.last_failure_at < now() - make_interval(secs => $5) \
                                 then 1 else f.failures + 1 end, \
                 last_failure_at = now() \
             where f.failures < $7 or f.last_failure_at <= now() - {address_wait} \
             returning failures), \
         client as ( \
             insert into login_client_failures as c (email, client, failures, last_failure_at) \
             select lower($1), $2, 1, now() from address \
             on conflict (email, client) do update set \
                 failures = case when c.last_failure_at < now() - make_interval(secs => $5) \
                                 then 1 else c.failures + 1 end, \
                 last_failure_at = now() \
             where c.failures < $6 or c.last_failure_at <= now() - {client_wait} \
             returning failures) \
         select (select failures from client), (select failures from address)",
        client_wait = waits("c.failures", "$6"),
        address_wait = waits("f.failures", "$7"),
    );
    let (client_n, address_n): (Option<i32>, Option<i32>) = sqlx::query_as(&sql)
        .bind(email.trim())
        .bind(client)
        .bind(FIRST_WAIT.as_secs_f64())
        .bind(MAX_WAIT.as_secs_f64())
        .bind(FAILURE_WINDOW.as_secs_f64())
        .bind(PER_CLIENT.free_failures)
        .bind(PER_ADDRESS.free_failures)
        .fetch_one(db)
        .await?;
    if let (Some(client), Some(address)) = (client_n, address_n) {
        return Ok(Attempt::Go { client, address });
    }
    // Refused: how much of the longer wait is left, for the answer's Retry-After.
    let rows: Vec<(bool, i32, f64)> = sqlx::query_as(
        "select true, failures, extract(epoch from now() - last_failure_at)::float8 \
         from login_client_failures where email = lower($1) and client = $2 \
         union all \
         select false, failures, extract(epoch from now() - last_failure_at)::float8 \
         from login_failures where email = lower($1)",
    )
    .bind(email.trim())
    .bind(client)
    .fetch_all(db)
    .await?;
    let left = rows
        .into_iter()
        .map(|(per_client, failures, since)| {
            let limit = if per_client { PER_CLIENT } else { PER_ADDRESS };
            let since = Duration::try_from_secs_f64(since.max(0.0)).unwrap_or(Duration::MAX);
            limit.wait_after(failures).saturating_sub(since)
        })
        .max()
        .unwrap_or(FIRST_WAIT);
    Ok(Attempt::Wait(left.max(Duration::from_secs(1))))
}

/// Removes counts too old to matter, a few at a time, skipping rows an attempt holds (so that
/// two of these never wait for each other).
async fn prune(db: &PgPool) -> sqlx::Result<()> {
    sqlx::query(
        "with old_clients as ( \
             delete from login_client_failures where (email, client) in ( \
                 select email, client from login_client_failures \
                 where last_failure_at < now() - make_interval(secs => $1) \
                 limit 100 for update skip locked)) \
         delete from login_failures where email in ( \
             select email from login_failures \
             where last_failure_at < now() - make_interval(secs => $1) \
             limit 100 for update skip locked)",
    )
    .bind(FAILURE_WINDOW.as_secs_f64())
    .execute(db)
    .await?;
    Ok(())
}

/// After `client` logged in with `email`: forgets the client's failed logins, and takes back
/// from the address's count the failure that [`claim`] counted for this attempt in advance (a
/// correct password is no failure, and an owner who logs in often must not wear the address's
/// allowance down). The address's earlier failures stay: they count what all clients tried,
/// and a login by its owner says nothing about the others.
///
/// # Errors
/// A database error.
pub async fn forget_client(db: &PgPool, email: &str, client: &str) -> sqlx::Result<()> {
    sqlx::query(
        "with client as ( \
             delete from login_client_failures where email = lower($1) and client = $2) \
         update login_failures set failures = greatest(failures - 1, 0) \
         where email = lower($1)",
    )
    .bind(email.trim())
    .bind(client)
    .execute(db)
    .await?;
    Ok(())
}

/// Forgets every failed login with `email`, of every client and of the address (an operator
/// acted for its user).
///
/// # Errors
/// A database error.
pub async fn forget(db: &PgPool, email: &str) -> sqlx::Result<()> {
    sqlx::query(
        "with clients as (delete from login_client_failures where email = lower($1)) \
         delete from login_failures where email = lower($1)",
    )
    .bind(email.trim())
    .execute(db)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_doubles_after_the_free_failures_up_to_its_longest() {
        for limit in [PER_CLIENT, PER_ADDRESS] {
            let free = limit.free_failures;
            assert_eq!(limit.wait_after(0), Duration::ZERO);
            assert_eq!(limit.wait_after(free - 1), Duration::ZERO);
            assert_eq!(limit.wait_after(free), FIRST_WAIT);
            assert_eq!(limit.wait_after(free + 1), FIRST_WAIT * 2);
            assert_eq!(limit.wait_after(free + 4), FIRST_WAIT * 16);
            assert_eq!(limit.wait_after(free + 5), MAX_WAIT);
            assert_eq!(limit.wait_after(i32::MAX), MAX_WAIT);
        }
    }
}
