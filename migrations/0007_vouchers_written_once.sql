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
-- - every voucher balances, in the base currency and in each line currency, and has lines:
--   checked when it is inserted, over all its lines (vouchers_balanced, per statement);
-- - lines join a voucher only before it is posted, in the transaction that posts it:
--   voucher_lines_before_voucher refuses lines whose voucher exists already (so the balance
--   checked at insert cannot change), and at commit posting_checks makes sure every voucher
--   that was given lines was posted by this transaction (so no line is left without its
--   voucher, or added to another transaction's);
-- - a posted voucher never changes and has its number: `number` is not null again, and
--   vouchers_immutable refuses any update or delete (the one update of 0006 is gone).

alter table vouchers alter column number set not null;

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

-- Every voucher balances and has lines, checked over all of its lines when it is inserted: its
-- lines are in by then, and none can be added later. The check is 0006's, which read the
-- vouchers a numbering UPDATE touched from a transition table named `numbered`; the vouchers an
-- INSERT adds are numbered too, and the trigger gives its transition table the same name.
create trigger vouchers_balanced after insert on vouchers
    referencing new table as numbered
    for each statement execute function check_numbered_vouchers_balance();

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
        where (select v.posted_at from vouchers v where v.id = u.id) is distinct from now()
        limit 1;
    if found then
        raise exception 'voucher lines for %, which this transaction did not post: lines are inserted right before their voucher, in the transaction that posts it',
            missing using errcode = '23514';
    end if;
    delete from posting_checks where id = new.id;
    return null;
end $$;

create constraint trigger posting_checks_at_commit after insert on posting_checks
    deferrable initially deferred for each row execute function check_posted_with_lines();

create function check_lines_before_voucher() returns trigger language plpgsql as $$
declare
    posted uuid;
begin
    -- LATERAL again, for an index read per voucher.
    select l.voucher_id into posted from (select distinct voucher_id from new_lines) l
        cross join lateral (select 1 from vouchers v where v.id = l.voucher_id limit 1) v
        limit 1;
    if found then
        raise exception 'voucher % is posted already: lines can only be added before their voucher is posted, in the same transaction',
            posted using errcode = '23514';
    end if;
    insert into posting_checks (voucher_ids)
        select array_agg(distinct voucher_id) from new_lines having count(*) > 0;
    return null;
end $$;

create trigger voucher_lines_before_voucher after insert on voucher_lines
    referencing new table as new_lines
    for each statement execute function check_lines_before_voucher();
