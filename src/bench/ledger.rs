//! The ledger's invariants after a bench run: a fast run that books wrong is not a result. The
//! integration tests' `assert_ledger_invariants` checks their ledgers with these same queries.

use std::fmt;

use anyhow::Context as _;

/// What the invariant queries found; all counts but `vouchers` must be zero.
#[derive(Clone, Copy, Debug, Default)]
pub struct LedgerCheck {
    /// Vouchers in the database.
    pub vouchers: i64,
    /// Vouchers whose lines do not sum to zero (debits ≠ credits).
    pub unbalanced: i64,
    /// `(connection, idempotency key)` pairs held by more than one voucher.
    pub duplicate_keys: i64,
    /// Series and years whose numbers are not exactly 1..=n.
    pub numbering_gaps: i64,
    /// Vouchers without lines.
    pub without_lines: i64,
    /// Credit notes that do not reference the invoice they reverse.
    pub unlinked_credit_notes: i64,
}

impl LedgerCheck {
    /// Runs the invariant queries over the whole database.
    ///
    /// # Errors
    /// When the database cannot be read.
    pub async fn run(pool: &sqlx::PgPool) -> anyhow::Result<Self> {
        let count = |sql: &'static str| async move {
            sqlx::query_scalar::<_, i64>(sql)
                .fetch_one(pool)
                .await
                .with_context(|| format!("ledger check failed: {sql}"))
        };
        Ok(LedgerCheck {
            vouchers: count("select count(*) from vouchers").await?,
            unbalanced: count(
                "select count(*) from (select voucher_id from voucher_lines group by voucher_id \
                 having sum(amount) <> 0) x",
            )
            .await?,
            duplicate_keys: count(
                "select count(*) from (select 1 from vouchers group by connection_id, \
                 idempotency_key having count(*) > 1) x",
            )
            .await?,
            numbering_gaps: count(
                "select count(*) from (select 1 from vouchers group by company_id, series, year \
                 having count(*) <> max(number)) x",
            )
            .await?,
            without_lines: count(
                "select count(*) from vouchers v where not exists \
                 (select 1 from voucher_lines l where l.voucher_id = v.id)",
            )
            .await?,
            unlinked_credit_notes: count(
                "select count(*) from vouchers c where c.kind = 'credit_note' and not exists \
                 (select 1 from vouchers i where i.id = c.reverses and i.kind = 'invoice' \
                 and i.connection_id = c.connection_id)",
            )
            .await?,
        })
    }

    /// True when every invariant holds.
    #[must_use]
    pub fn holds(&self) -> bool {
        self.unbalanced == 0
            && self.duplicate_keys == 0
            && self.numbering_gaps == 0
            && self.without_lines == 0
            && self.unlinked_credit_notes == 0
    }
}

impl fmt::Display for LedgerCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} vouchers: {} unbalanced, {} duplicate idempotency keys, {} numbering gaps, \
             {} without lines, {} unlinked credit notes",
            self.vouchers,
            self.unbalanced,
            self.duplicate_keys,
            self.numbering_gaps,
            self.without_lines,
            self.unlinked_credit_notes
        )
    }
}
