-- Period locks (closed months), what a connection does with an event dated in one, and the
-- SAF-T grouping of accounts.

-- A locked accounting period: one calendar month of one company, stored as its first day.
-- No voucher may be dated in it while the row exists (see refuse_locked_period below).
create table period_locks (
    company_id uuid not null references companies (id),
    period     date not null check (extract(day from period) = 1),
    locked_at  timestamptz not null default now(),
    -- Who locked it (the operator's user name, or an API token's name), and why.
    locked_by  text not null,
    note       text,
    primary key (company_id, period)
);

-- Every lock and unlock, kept: unlocking a closed month is allowed, but never silently.
create table period_lock_log (
    id         bigserial primary key,
    company_id uuid not null references companies (id),
    period     date not null,
    action     text not null check (action in ('lock', 'unlock')),
    at         timestamptz not null default now(),
    by_whom    text not null,
    note       text
);
create index period_lock_log_company on period_lock_log (company_id, period, at);

-- What the worker does with an event whose voucher falls in a locked period:
-- dead_letter: refuse it (failed, dead-lettered with "period locked: YYYY-MM"; replay it after
-- unlocking); next_open_date: post it on the first day of the next open month, with the
-- original date in the voucher's description.
alter table connections
    add column locked_period_policy text not null default 'dead_letter'
        check (locked_period_policy in ('dead_letter', 'next_open_date'));

-- SAF-T Financial 1.30 groups every account (GroupingCategory/GroupingCode, from the
-- naeringsspesifikasjon code list). Null: the export's default for the account number
-- (src/saft/grouping.rs); set both to override.
alter table accounts
    add column saft_grouping_category text,
    add column saft_grouping_code     text,
    add constraint accounts_saft_grouping_both
        check ((saft_grouping_category is null) = (saft_grouping_code is null));

-- The last line of defence: the engine already refuses or moves vouchers dated in a locked
-- period, from the locks in its (briefly cached) context. This trigger closes the window in
-- which a lock is committed while a posting transaction is under way.
--
-- Posting transactions take the company's period advisory lock shared, locking takes it
-- exclusive (db/periods.rs): a lock waits for the postings in flight, and a posting that
-- starts after it sees the new row (each statement of a volatile plpgsql function takes a fresh
-- snapshot, after the advisory lock is granted). The error is a serialization failure
-- (40001) on purpose: the worker retries it, and by then its context knows the lock and applies
-- the connection's policy.
create function refuse_locked_period() returns trigger language plpgsql as $$
begin
    perform pg_advisory_xact_lock_shared(hashtext('shopbridge-periods'), hashtext(new.company_id::text));
    if exists (select 1 from period_locks
               where company_id = new.company_id
                 and period = date_trunc('month', new.voucher_date)::date) then
        raise exception 'period locked: % (voucher % dated %)',
            to_char(new.voucher_date, 'YYYY-MM'), new.idempotency_key, new.voucher_date
            using errcode = '40001';
    end if;
    return new;
end $$;

create trigger vouchers_period_open before insert on vouchers
    for each row execute function refuse_locked_period();
