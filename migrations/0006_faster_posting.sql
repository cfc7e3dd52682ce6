-- Vouchers are numbered last in their posting transaction.
--
-- Gapless numbering makes every posting transaction of a company take the counter row of its
-- series and hold it until commit, so concurrent batches of one company pass that point one at
-- a time: whatever a transaction does after taking the counter is done by one batch at a time.
-- Until now that was inserting the vouchers and their lines (with a foreign-key check per line)
-- and, at commit, checking that each voucher balances. Now the worker inserts its vouchers
-- without a number, inserts their lines, and only then takes the counters and gives each
-- voucher its number, in one UPDATE, right before the commit (src/db/vouchers.rs); that UPDATE
-- checks the balances (vouchers_balanced_when_numbered, at the end of this file).
--
-- What the database still guarantees:
-- - a voucher commits with a number: vouchers_numbered, a deferred constraint trigger, checks
--   every voucher at commit;
-- - numbers stay unique per company, series and year (vouchers_number; NULLs do not collide);
-- - a posted voucher never changes: the one update allowed is giving a voucher without a number
--   its number, in the transaction that posted it, changing nothing else.

alter table vouchers alter column number drop not null;

create function check_voucher_numbered() returns trigger language plpgsql as $$
begin
    if exists (select 1 from vouchers where id = new.id and number is null) then
        raise exception 'voucher % was posted without a number', new.idempotency_key
            using errcode = '23502';
    end if;
    return null;
end $$;

create constraint trigger vouchers_numbered after insert on vouchers
    deferrable initially deferred for each row execute function check_voucher_numbered();

create function refuse_voucher_update() returns trigger language plpgsql as $$
begin
    if old.number is null and new.number is not null and old.posted_at = now()
       and to_jsonb(new) - 'number' = to_jsonb(old) - 'number' then
        return new;
    end if;
    raise exception 'posted vouchers cannot be changed or deleted (%): post a reversing voucher',
        tg_table_name using errcode = '23514';
end $$;

drop trigger vouchers_immutable on vouchers;
create trigger vouchers_immutable before delete on vouchers
    for each row execute function refuse_voucher_change();
create trigger vouchers_number_once before update on vouchers
    for each row execute function refuse_voucher_update();

-- Order states (the last snapshot and the standing invoice's lines, a few KB of JSON) and event
-- bodies are written once or more per event. Above 2 KB PostgreSQL compresses them, by default
-- with pglz; LZ4 compresses nearly as well at a fraction of the CPU (docs/benchmarks.md).
-- Existing values keep their compression until rewritten.
alter table orders alter column state set compression lz4;
alter table events alter column body set compression lz4;

-- Voucher lines: one check per statement instead of two foreign-key checks per line. A foreign
-- key runs a query per inserted row; for the worker's batches of several hundred lines these
-- checks were the largest single share of PostgreSQL's CPU in the posting profile
-- (docs/benchmarks.md). The same guarantees, per statement:
-- - the voucher exists: voucher_lines_same_transaction (0002) already refuses a line whose
--   voucher was not posted by the same transaction, and vouchers cannot be deleted;
-- - the account exists: voucher_lines_accounts below, which also locks the accounts it checks
--   (KEY SHARE, as a foreign key does), and accounts_in_use, which refuses deleting or
--   renumbering an account that has lines (a foreign key's NO ACTION).
alter table voucher_lines drop constraint voucher_lines_voucher_id_fkey;
alter table voucher_lines drop constraint voucher_lines_company_id_account_fkey;

create function check_line_accounts() returns trigger language plpgsql as $$
declare
    missing record;
begin
    perform 1 from accounts a
        where (a.company_id, a.number) in (select company_id, account from new_lines)
        order by a.company_id, a.number
        for key share;
    select l.company_id, l.account into missing from new_lines l
        where not exists (select 1 from accounts a
                          where a.company_id = l.company_id and a.number = l.account)
        limit 1;
    if found then
        raise exception 'voucher line on account %, which company % does not have',
            missing.account, missing.company_id using errcode = '23503';
    end if;
    return null;
end $$;

create trigger voucher_lines_accounts after insert on voucher_lines
    referencing new table as new_lines
    for each statement execute function check_line_accounts();

create function refuse_used_account_change() returns trigger language plpgsql as $$
begin
    if tg_op = 'UPDATE' and (new.company_id, new.number) = (old.company_id, old.number) then
        return new;
    end if;
    -- The check below reads committed lines; in a transaction with one snapshot for its whole
    -- life it could miss lines committed since, which a foreign key would have caught.
    if current_setting('transaction_isolation') <> 'read committed' then
        raise exception 'accounts can only be deleted or renumbered in a read committed transaction'
            using errcode = '40001';
    end if;
    if exists (select 1 from voucher_lines where company_id = old.company_id and account = old.number) then
        raise exception 'account % has voucher lines: it cannot be deleted or renumbered', old.number
            using errcode = '23503';
    end if;
    if tg_op = 'DELETE' then
        return old;
    end if;
    return new;
end $$;

create trigger accounts_in_use before delete or update of company_id, number on accounts
    for each row execute function refuse_used_account_change();

-- The period-lock check (0003) once per statement instead of once per voucher: the same
-- advisory lock, taken shared once per company the statement posts to (in company order, so
-- that two posting statements cannot deadlock on them), then one query for every voucher the
-- statement inserted. As before, the query runs after the lock is granted, with a fresh
-- snapshot, so a posting either waits for a lock being taken or sees it; and the error is a
-- serialization failure, which the worker retries with a context that knows the lock.
create function refuse_locked_periods() returns trigger language plpgsql as $$
declare
    company uuid;
    hit record;
begin
    for company in select distinct company_id from new_vouchers order by 1 loop
        perform pg_advisory_xact_lock_shared(hashtext('shopbridge-periods'), hashtext(company::text));
    end loop;
    select v.voucher_date, v.idempotency_key into hit from new_vouchers v
        join period_locks p on p.company_id = v.company_id
                           and p.period = date_trunc('month', v.voucher_date)::date
        limit 1;
    if found then
        raise exception 'period locked: % (voucher % dated %)',
            to_char(hit.voucher_date, 'YYYY-MM'), hit.idempotency_key, hit.voucher_date
            using errcode = '40001';
    end if;
    return null;
end $$;

drop trigger vouchers_period_open on vouchers;
create trigger vouchers_period_open after insert on vouchers
    referencing new table as new_vouchers
    for each statement execute function refuse_locked_periods();

-- Numbering checks the balance, and closes the voucher to new lines.
--
-- Numbering is the last step of posting, so it is where the balance is checked: one
-- statement-level trigger over every voucher the numbering UPDATE touched (two set queries per
-- batch, where the deferred check ran two queries per voucher at commit). With lines refused
-- for a voucher once it has its number, and every voucher required to have a number at commit
-- (vouchers_numbered), a committed voucher was balanced when numbered and cannot have changed
-- since. A voucher cannot be inserted with a number, so none can skip the check. This
-- replaces the deferred per-voucher check of 0002 (vouchers_balanced), and with it the gap
-- that lines added after that check had run went unchecked.
create function check_numbered_vouchers_balance() returns trigger language plpgsql as $$
declare
    bad record;
begin
    -- LATERAL: the transition table has no statistics, and a plain join may be planned as a
    -- scan of all voucher lines; this reads each voucher's lines through its index.
    select v.idempotency_key, t.lines, t.total into bad
        from numbered v
        cross join lateral (select count(*) as lines, coalesce(sum(l.amount), 0) as total
                            from voucher_lines l where l.voucher_id = v.id) t
        where t.lines = 0 or t.total <> 0
        limit 1;
    if found then
        if bad.lines = 0 then
            raise exception 'voucher % has no lines', bad.idempotency_key using errcode = '23514';
        end if;
        raise exception 'voucher % does not balance: debits minus credits = % øre',
            bad.idempotency_key, bad.total using errcode = '23514';
    end if;
    select v.idempotency_key, c.currency into bad
        from numbered v
        cross join lateral (select l.currency from voucher_lines l where l.voucher_id = v.id
                            group by l.currency having sum(l.currency_amount) <> 0) c
        limit 1;
    if found then
        raise exception 'voucher % does not balance in %', bad.idempotency_key, bad.currency
            using errcode = '23514';
    end if;
    return null;
end $$;

create trigger vouchers_balanced_when_numbered after update on vouchers
    referencing new table as numbered
    for each statement execute function check_numbered_vouchers_balance();

create function refuse_numbered_insert() returns trigger language plpgsql as $$
begin
    if exists (select 1 from new_vouchers where number is not null) then
        raise exception 'vouchers are inserted without a number and numbered after their lines'
            using errcode = '23514';
    end if;
    return null;
end $$;

create trigger vouchers_numbered_last after insert on vouchers
    referencing new table as new_vouchers
    for each statement execute function refuse_numbered_insert();

drop trigger vouchers_balanced on vouchers;
drop function check_voucher_balanced();
drop function assert_voucher_balanced(uuid);

create or replace function refuse_late_lines() returns trigger language plpgsql as $$
begin
    if exists (select 1 from new_lines l
               where not exists (select 1 from vouchers v
                                 where v.id = l.voucher_id and v.posted_at = now() and v.number is null)) then
        raise exception 'lines can only be added to a voucher in the transaction that posts it, before it is numbered'
            using errcode = '23514';
    end if;
    return null;
end $$;
