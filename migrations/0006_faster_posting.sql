-- Vouchers are numbered last in their posting transaction.
--
-- Gapless numbering makes every posting transaction of a company take the counter row of its
-- series and hold it until commit, so concurrent batches of one company pass that point one at
-- a time: whatever a transaction does after taking the counter is done by one batch at a time.
-- Until now that was inserting the vouchers and their lines (with a foreign-key check per line)
-- and, at commit, checking that each voucher balances. Now the worker inserts its vouchers
-- without a number, inserts their lines, checks the balances (SET CONSTRAINTS ... IMMEDIATE),
-- and only then takes the counters and gives each voucher its number, in one UPDATE, right
-- before the commit (src/db/vouchers.rs).
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
