-- A voucher row is written once: its lines go in first, then the voucher with its number.
--
-- Until now (0006) the worker inserted its vouchers without a number, then their lines, then
-- numbered them with one UPDATE right before the commit. That UPDATE wrote every voucher a
-- second time, with an entry in each of its six indexes (a changed `number` is never a HOT
-- update), ran two row triggers per voucher, and a deferred trigger per voucher checked at
-- commit that each had its number. In the drain profile (docs/benchmarks.md) the numbering
-- UPDATE and the check that lines join only an unnumbered voucher of the same transaction were
-- a quarter of PostgreSQL's time. Now the worker inserts the lines first (the voucher ids are
-- chosen by the worker), then takes the counters and inserts the vouchers, numbered, right
-- before the commit (src/db/vouchers.rs). The counters are still held only for the last step.
--
-- What the database guarantees, and where:
-- - every voucher balances, in the base currency and in each line currency, has lines, all of
--   its own company, and a number its series' counter handed out: checked when it is
--   inserted, over all its lines (vouchers_checked, per statement);
-- - lines join a voucher only before it is posted, in the transaction that posts it:
--   voucher_lines_checked refuses lines whose voucher exists already (so the balance
--   checked at insert cannot change), and at commit posting_checks makes sure every voucher
--   that was given lines was posted by this transaction, by its transaction id (so no line is
--   left without its voucher, or added to another transaction's);
-- - a posted voucher never changes and has its number: `number` is not null again, and
--   vouchers_immutable refuses any update or delete (the one update of 0006 is gone);
-- - numbers come from the counters: a counter only goes up (voucher_counters_only_up), and a
--   voucher's number must be one its counter has handed out (vouchers_checked).

alter table vouchers alter column number set not null;

-- The transaction that posted a voucher, set on insert like posted_at (which is only the
-- transaction's start time: two transactions can share it, so it cannot tell them apart). The
-- commit-time check below compares it with the committing transaction's id; existing vouchers
-- keep null, being committed long ago.
alter table vouchers add column posted_xact xid8;

create or replace function force_posted_at() returns trigger language plpgsql as $$
begin
    new.posted_at := now();
    -- The top-level transaction, also inside a savepoint.
    new.posted_xact := pg_current_xact_id();
    return new;
end $$;

drop trigger vouchers_numbered on vouchers;
drop function check_voucher_numbered();
drop trigger vouchers_number_once on vouchers;
drop function refuse_voucher_update();
drop trigger vouchers_immutable on vouchers;
create trigger vouchers_immutable before update or delete on vouchers
    for each row execute function refuse_voucher_change();
drop trigger vouchers_numbered_last on vouchers;
drop function refuse_numbered_insert();
drop trigger vouchers_balanced_when_numbered on vouchers;
drop trigger voucher_lines_same_transaction on voucher_lines;
drop function refuse_late_lines();

-- Inserted vouchers are checked per statement, over all of their lines: their lines are in by
-- then, and none can be added later. This replaces 0006's check at numbering
-- (check_numbered_vouchers_balance), with the same two queries, and checks what 0006 left to
-- the worker: a voucher's lines are of its own company, and its number was handed out by its
-- series' counter (so that a voucher inserted by hand cannot take a number the worker will
-- hand out later).
drop function check_numbered_vouchers_balance();

create function check_new_vouchers() returns trigger language plpgsql as $$
declare
    bad record;
begin
    -- LATERAL: an index read of each voucher's lines. The transition table has no statistics,
    -- and a plain join may be planned as a scan of all voucher lines. (One pass grouped by
    -- currency instead of these two was planned as a bitmap scan and a sort per voucher, and
    -- cost PostgreSQL half again as much CPU per event in `bench all`.)
    select v.idempotency_key, t.lines, t.total, t.foreign_lines into bad
        from new_vouchers v
        cross join lateral (select count(*) as lines, coalesce(sum(l.amount), 0) as total,
                                   count(*) filter (where l.company_id <> v.company_id) as foreign_lines
                            from voucher_lines l where l.voucher_id = v.id) t
        where t.lines = 0 or t.total <> 0 or t.foreign_lines > 0
        limit 1;
    if found then
        if bad.lines = 0 then
            raise exception 'voucher % has no lines', bad.idempotency_key using errcode = '23514';
        end if;
        if bad.foreign_lines > 0 then
            raise exception 'voucher % has lines of another company', bad.idempotency_key
                using errcode = '23514';
        end if;
        raise exception 'voucher % does not balance: debits minus credits = % øre',
            bad.idempotency_key, bad.total using errcode = '23514';
    end if;
    select v.idempotency_key, c.currency into bad
        from new_vouchers v
        cross join lateral (select l.currency from voucher_lines l where l.voucher_id = v.id
                            group by l.currency having sum(l.currency_amount) <> 0) c
        limit 1;
    if found then
        raise exception 'voucher % does not balance in %', bad.idempotency_key, bad.currency
            using errcode = '23514';
    end if;
    -- Numbers come from the counters: none beyond its series' last number. With numbers unique
    -- and counters only going up (voucher_counters_only_up below), a voucher inserted by hand
    -- cannot take a number the worker will hand out later.
    select v.idempotency_key, v.series, v.year, v.number into bad
        from new_vouchers v
        left join voucher_counters c
            on c.company_id = v.company_id and c.series = v.series and c.year = v.year
        where c.last_number is null or v.number > c.last_number
        limit 1;
    if found then
        raise exception 'voucher % has number % in % %, which its series'' counter has not handed out',
            bad.idempotency_key, bad.number, bad.series, bad.year using errcode = '23514';
    end if;
    return null;
end $$;

create trigger vouchers_checked after insert on vouchers
    referencing new table as new_vouchers
    for each statement execute function check_new_vouchers();

-- The counters hand out numbers: a counter never goes down, is never deleted or moved to another
-- series (which would hand out numbers already taken). Raising one by hand without posting
-- would leave a gap, which the database does not catch. One row trigger per series and batch.
create function refuse_counter_change() returns trigger language plpgsql as $$
begin
    if tg_op = 'UPDATE'
       and (new.company_id, new.series, new.year) = (old.company_id, old.series, old.year)
       and new.last_number >= old.last_number then
        return new;
    end if;
    raise exception 'voucher counters only go up: % % % cannot be changed from % that way',
        old.company_id, old.series, old.year, old.last_number using errcode = '23514';
end $$;

create trigger voucher_counters_only_up before update or delete on voucher_counters
    for each row execute function refuse_counter_change();
create trigger voucher_counters_no_truncate before truncate on voucher_counters
    for each statement execute function refuse_voucher_change();

-- The vouchers a statement gave lines to, checked at commit. A constraint trigger can only be
-- deferred per row, so each statement that inserts lines records one row here, and the
-- deferred trigger on that row checks all of its vouchers at once: one check per statement,
-- where a deferred trigger on voucher_lines would run one per line. The row is deleted by the
-- check, so the table is empty outside open transactions; it is unlogged because nothing in
-- it outlives its transaction.
create unlogged table posting_checks (
    id          bigserial primary key,
    voucher_ids uuid[] not null
);

create function check_posted_with_lines() returns trigger language plpgsql as $$
declare
    missing uuid;
begin
    -- A subquery per id, which PostgreSQL runs as an index read: written as a join, it was
    -- planned as a hash join over a scan of every voucher ever posted.
    select u.id into missing from unnest(new.voucher_ids) as u(id)
        where (select v.posted_xact from vouchers v where v.id = u.id)
              is distinct from pg_current_xact_id()
        limit 1;
    if found then
        raise exception 'voucher % has lines, but this transaction did not post it: lines are inserted right before their voucher, in the transaction that posts it',
            missing using errcode = '23514';
    end if;
    delete from posting_checks where id = new.id;
    return null;
end $$;

create constraint trigger posting_checks_at_commit after insert on posting_checks
    deferrable initially deferred for each row execute function check_posted_with_lines();

-- One statement trigger for new lines, replacing 0006's account check and 0002's
-- same-transaction check: each account and each voucher of the statement once (a batch inserts
-- about thirteen lines per voucher, on a handful of accounts), where those checks read the
-- accounts and the vouchers once per line.
drop trigger voucher_lines_accounts on voucher_lines;
drop function check_line_accounts();

create function check_new_lines() returns trigger language plpgsql as $$
declare
    company_ids uuid[];
    account_numbers integer[];
    voucher_ids uuid[];
    locked integer;
    missing record;
    posted uuid;
begin
    select array_agg(company_id), array_agg(account) into company_ids, account_numbers
        from (select distinct company_id, account from new_lines) l;
    if company_ids is null then
        return null;
    end if;
    -- The accounts exist, locked as a foreign key would lock them (KEY SHARE), so that none is
    -- deleted or renumbered before this transaction ends (accounts_in_use, 0006).
    select count(*) into locked from (
        select 1 from accounts a
            join unnest(company_ids, account_numbers) as u(company_id, number)
                on a.company_id = u.company_id and a.number = u.number
            order by a.company_id, a.number
            for key share of a) l;
    if locked < cardinality(company_ids) then
        select u.company_id, u.number into missing from unnest(company_ids, account_numbers) as u(company_id, number)
            where not exists (select 1 from accounts a
                              where a.company_id = u.company_id and a.number = u.number)
            limit 1;
        if not found then
            -- Every account exists now, but one was renumbered or replaced while this waited
            -- for its lock: a retry will see the chart as it is.
            raise exception 'the chart of accounts changed while these lines were being posted'
                using errcode = '40001';
        end if;
        raise exception 'voucher line on account %, which company % does not have',
            missing.number, missing.company_id using errcode = '23503';
    end if;
    -- No voucher of these lines is posted yet (LATERAL with LIMIT: an index read per voucher,
    -- never a scan of all vouchers).
    select array_agg(distinct voucher_id) into voucher_ids from new_lines;
    select u.id into posted from unnest(voucher_ids) as u(id)
        cross join lateral (select 1 from vouchers v where v.id = u.id limit 1) v
        limit 1;
    if found then
        raise exception 'voucher % is posted already, or in this same statement: lines go in before their voucher, in an earlier statement of the transaction that posts it',
            posted using errcode = '23514';
    end if;
    insert into posting_checks (voucher_ids) values (voucher_ids);
    return null;
end $$;

create trigger voucher_lines_checked after insert on voucher_lines
    referencing new table as new_lines
    for each statement execute function check_new_lines();
