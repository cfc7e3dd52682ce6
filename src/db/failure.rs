//! What a failed database call means for the work that met it: the one classification of
//! SQLSTATEs and of sqlx's own errors, which the worker and every front end translate once
//! (retry, dead-letter, 503, 500).
//!
//! "Refused" is a short positive list of what is known to be permanent. Everything else is
//! retried: a permanent failure taken for a passing one costs an event its retries (the attempt
//! limit bounds them, then it is dead-lettered with its reason), while an outage taken for a
//! permanent failure dead-letters every event on its first try, as a failover to a read-only
//! primary would.

use crate::posting::PostingError;

/// What a failure means for the work that met it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// The database cannot be reached or takes no work now: a connection lost, refused or not
    /// yet made (I/O, TLS, the pool's timeout); a read-only or shutting-down server; a database
    /// missing, renamed or not accepting connections; a login refused; resources exhausted.
    /// Every transaction meets the same until the outage passes.
    Unavailable,
    /// This transaction met another one or a limit: a serialization failure (which the ledger's
    /// own triggers raise for a locked period or a chart changed under a posting), a deadlock,
    /// a lock or statement timeout. A retry is likely to pass.
    Conflict,
    /// Refused for good: a data exception (class 22) or a constraint, the ledger's own triggers
    /// included (class 23), or the posting engine's own refusal. Retrying cannot help; an
    /// operator can.
    Refused,
    /// Anything else: an unknown SQLSTATE, a row that does not decode, a failure outside the
    /// database. Not known to be permanent, so retried within the attempt limit.
    Unknown,
}

impl Failure {
    /// Classifies an error by the first database or posting error in its chain.
    #[must_use]
    pub fn of(e: &anyhow::Error) -> Failure {
        for cause in e.chain() {
            if let Some(e) = cause.downcast_ref::<sqlx::Error>() {
                return Failure::of_sqlx(e);
            }
            if let Some(e) = cause.downcast_ref::<PostingError>() {
                return if e.is_retryable() {
                    Failure::Unknown
                } else {
                    Failure::Refused
                };
            }
        }
        Failure::Unknown
    }

    /// Classifies an error of sqlx.
    #[must_use]
    pub fn of_sqlx(e: &sqlx::Error) -> Failure {
        match e {
            sqlx::Error::Database(db) => db
                .code()
                .map_or(Failure::Unknown, |code| Failure::of_sqlstate(&code)),
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed => Failure::Unavailable,
            _ => Failure::Unknown,
        }
    }

    /// Classifies a PostgreSQL SQLSTATE (the five-character code of an error).
    #[must_use]
    pub fn of_sqlstate(code: &str) -> Failure {
        let class = code.get(..2).unwrap_or(code);
        match (class, code) {
            // 08 connection exception; 25 invalid transaction state (25006: a read-only
            // server, as after a failover); 28 invalid authorization (a password changed or
            // refused); 3D invalid catalog name (the database missing or renamed); 53
            // insufficient resources (too many connections, disk full); 57P operator
            // intervention (shutting down, starting up, the database dropped); 58 errors
            // outside PostgreSQL (an I/O error); 55000: a database with allow_connections off.
            ("08" | "25" | "28" | "3D" | "53" | "58", _) | (_, "55000") => Failure::Unavailable,
            _ if code.starts_with("57P") => Failure::Unavailable,
            // 40001 serialization failure; 40P01 deadlock; 55P03 lock not available (lock
            // timeout); 57014 query cancelled (statement timeout).
            (_, "40001" | "40P01" | "55P03" | "57014") => Failure::Conflict,
            // 22 data exception; 23 integrity constraint violation, which is also what the
            // ledger's triggers raise for an unbalanced or changed voucher (migrations/).
            ("22" | "23", _) => Failure::Refused,
            _ => Failure::Unknown,
        }
    }

    /// True unless the failure is known to be permanent: the work is worth trying again.
    #[must_use]
    pub fn is_transient(self) -> bool {
        self != Failure::Refused
    }
}

/// True for failures that may pass on their own (everything but [`Failure::Refused`]).
#[must_use]
pub fn is_transient(e: &anyhow::Error) -> bool {
    Failure::of(e).is_transient()
}

/// True when the database is down or takes no work now ([`Failure::Unavailable`]), as opposed
/// to a failure of the work itself.
#[must_use]
pub fn is_unavailable(e: &anyhow::Error) -> bool {
    Failure::of(e) == Failure::Unavailable
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outages_conflicts_and_refusals_are_told_apart_by_sqlstate() {
        for code in [
            "08006", "08001", "25006", "25P02", "28P01", "28000", "3D000", "53300", "53100",
            "57P01", "57P02", "57P03", "57P04", "55000", "58030",
        ] {
            assert_eq!(Failure::of_sqlstate(code), Failure::Unavailable, "{code}");
        }
        for code in ["40001", "40P01", "55P03", "57014"] {
            assert_eq!(Failure::of_sqlstate(code), Failure::Conflict, "{code}");
        }
        for code in ["22003", "22P02", "23505", "23514", "23503", "23502"] {
            assert_eq!(Failure::of_sqlstate(code), Failure::Refused, "{code}");
        }
        for code in ["42P01", "XX000", "P0001", "55006", "", "4"] {
            assert_eq!(Failure::of_sqlstate(code), Failure::Unknown, "{code}");
            assert!(Failure::of_sqlstate(code).is_transient(), "{code}");
        }
    }

    #[test]
    fn sqlx_errors_outside_the_database_are_outages_or_unknown_never_refused() {
        let pool = anyhow::Error::new(sqlx::Error::PoolTimedOut);
        assert!(is_unavailable(&pool));
        assert!(is_transient(&pool));
        let decode = anyhow::Error::new(sqlx::Error::ColumnNotFound("state".into()));
        assert_eq!(Failure::of(&decode), Failure::Unknown);
        assert!(is_transient(&decode), "unknown failures are retried");
        let wrapped = anyhow::Error::new(sqlx::Error::PoolClosed).context("posting a batch");
        assert!(is_unavailable(&wrapped), "found behind context");
        assert!(is_transient(&anyhow::anyhow!("something else")));
    }

    #[test]
    fn the_posting_engines_own_refusals_are_permanent() {
        let refused = anyhow::Error::new(PostingError::Overflow("1e30".into()));
        assert_eq!(Failure::of(&refused), Failure::Refused);
        assert!(!is_transient(&refused));
    }
}
