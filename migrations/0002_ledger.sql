-- The ledger: chart, VAT codes, dimensions, rules, the event inbox, order state, and vouchers
-- that balance and never change.

create table accounts (
    company_id   uuid not null references companies (id),
    number       integer not null check (number between 1000 and 999999),
    name         text not null,
    account_type text not null
                 check (account_type in ('asset', 'liability', 'equity', 'income', 'expense')),
    -- The VAT code normally posted on the account (sales accounts); informational.
    vat_code     integer,
    primary key (company_id, number)
);

-- SAF-T standard VAT codes with their rates over time (a rate change is a new row).
create table vat_codes (
    company_id       uuid not null references companies (id),
    code             integer not null,
    -- Hundredths of a percent: 25 % is 2500.
    rate_bp          integer not null check (rate_bp >= 0),
    valid_from       date not null,
    valid_to         date,
    output_account   integer,
    -- Chosen when several codes share a rate (0 %: 5, 52, 6).
    default_for_rate boolean not null default false,
    primary key (company_id, code, valid_from),
    foreign key (company_id, output_account) references accounts (company_id, number)
);

create table departments (
    company_id uuid not null references companies (id),
    code       text not null,
    name       text not null,
    primary key (company_id, code)
);

create table locations (
    company_id uuid not null references companies (id),
    code       text not null,
    name       text not null,
    primary key (company_id, code)
);

create table exchange_rates (
    company_id uuid not null references companies (id),
    currency   char(3) not null,
    valid_on   date not null,
    -- Base-currency value of one unit, times 10^6.
    micros     bigint not null check (micros > 0),
    primary key (company_id, currency, valid_on)
);

-- Posting rules: the most specific match wins (see src/posting/rules.rs).
create table posting_rules (
    id             bigserial primary key,
    company_id     uuid not null references companies (id),
    -- Null: company-wide; else only for this connection.
    connection_id  uuid references connections (id),
    kind           text check (kind in ('goods', 'shipping', 'fee', 'discount', 'payment', 'refund')),
    vat_code       integer,
    vat_rate_bp    integer,
    sku_prefix     text,
    product_group  text,
    payment_method text,
    account        integer not null,
    set_vat_code   integer,
    department     text,
    location       text,
    created_at     timestamptz not null default now(),
    foreign key (company_id, account) references accounts (company_id, number)
);

create table customers (
    connection_id    uuid not null references connections (id),
    shop_customer_id text not null,
    name             text not null,
    email            text,
    updated_at       timestamptz not null default now(),
    primary key (connection_id, shop_customer_id)
);

create table products (
    connection_id uuid not null references connections (id),
    sku           text not null,
    name          text not null,
    price         bigint,
    vat_rate_bp   integer,
    product_group text,
    updated_at    timestamptz not null default now(),
    primary key (connection_id, sku)
);

-- The inbox and the audit trail: every event received, once per (connection, event id), with
-- the source document exactly as the shop signed it.
create table events (
    id              uuid primary key,
    connection_id   uuid not null references connections (id),
    source_event_id text not null,
    channel         text not null,
    topic           text not null,
    body            bytea not null,
    received_at     timestamptz not null,
    occurred_at     timestamptz,
    request_id      text,
    status          text not null
                    check (status in ('processing', 'processed', 'skipped', 'ignored', 'failed')),
    reason          text,
    -- How many times it was delivered to a worker; more than one means duplicates or replays.
    deliveries      integer not null default 1,
    processed_at    timestamptz,
    constraint events_inbox unique (connection_id, source_event_id)
);
create index events_status on events (status, received_at desc);
create index events_received on events (received_at desc);

-- What the ledger knows about each order; locked (FOR UPDATE) while one of its events posts.
create table orders (
    connection_id   uuid not null references connections (id),
    order_id        text not null,
    applied_version bigint,
    -- The posting engine's OrderState (src/posting/state.rs) as JSON.
    state           jsonb not null,
    updated_at      timestamptz not null default now(),
    primary key (connection_id, order_id)
);

-- Gapless voucher numbers: one counter row per company, series and year, advanced in the
-- posting transaction (a rollback returns the numbers).
create table voucher_counters (
    company_id  uuid not null references companies (id),
    series      text not null,
    year        integer not null,
    last_number integer not null default 0,
    primary key (company_id, series, year)
);

create table vouchers (
    id              uuid primary key,
    company_id      uuid not null references companies (id),
    series          text not null,
    year            integer not null,
    number          integer not null check (number > 0),
    voucher_date    date not null,
    kind            text not null check (kind in ('invoice', 'credit_note', 'payment', 'refund_payment')),
    description     text not null,
    idempotency_key text not null,
    connection_id   uuid not null references connections (id),
    order_id        text,
    source_event    uuid references events (id),
    -- The voucher this one reverses or corrects. "Reversed by" is the inverse of this column:
    -- a posted voucher is never updated, so it is found by query, not stored.
    reverses        uuid references vouchers (id),
    posted_at       timestamptz not null default now(),
    -- Keys are the shop's ids (orders, payments): unique per connection, since two shops of one
    -- company may both have an order 1001.
    constraint vouchers_idempotency_key unique (connection_id, idempotency_key),
    constraint vouchers_number unique (company_id, series, year, number),
    check (year = extract(year from voucher_date))
);
create index vouchers_date on vouchers (company_id, voucher_date);
create index vouchers_order on vouchers (connection_id, order_id);
create index vouchers_reverses on vouchers (reverses) where reverses is not null;

create table voucher_lines (
    voucher_id      uuid not null references vouchers (id),
    line_no         integer not null,
    company_id      uuid not null,
    account         integer not null,
    -- Øre in the base currency: debit positive, credit negative.
    amount          bigint not null,
    currency        char(3) not null,
    currency_amount bigint not null,
    vat_code        integer,
    vat_base        bigint,
    customer_id     text,
    department      text,
    location        text,
    description     text not null,
    role            text not null,
    sku             text,
    primary key (voucher_id, line_no),
    foreign key (company_id, account) references accounts (company_id, number)
);
create index voucher_lines_account on voucher_lines (company_id, account);

-- Invariant 1: every voucher balances, in the base currency and in each line currency, and has
-- lines. Checked at commit (deferred), when all of a voucher's lines are in. One check per
-- voucher is enough: lines can only join a voucher in the transaction that posts it (below).
create function assert_voucher_balanced(vid uuid) returns void language plpgsql as $$
declare
    total numeric;
    lines integer;
    bad_currency text;
begin
    select coalesce(sum(amount), 0), count(*) into total, lines
        from voucher_lines where voucher_id = vid;
    if lines = 0 then
        raise exception 'voucher % has no lines', vid using errcode = '23514';
    end if;
    if total <> 0 then
        raise exception 'voucher % does not balance: debits minus credits = % øre', vid, total
            using errcode = '23514';
    end if;
    select currency into bad_currency from voucher_lines where voucher_id = vid
        group by currency having sum(currency_amount) <> 0 limit 1;
    if bad_currency is not null then
        raise exception 'voucher % does not balance in %', vid, bad_currency using errcode = '23514';
    end if;
end $$;

create function check_voucher_balanced() returns trigger language plpgsql as $$
begin
    perform assert_voucher_balanced(new.id);
    return null;
end $$;

create constraint trigger vouchers_balanced after insert on vouchers
    deferrable initially deferred for each row execute function check_voucher_balanced();


-- Invariant 2: a posted voucher is never changed or deleted; a correction is a new voucher.
create function refuse_voucher_change() returns trigger language plpgsql as $$
begin
    raise exception 'posted vouchers cannot be changed or deleted (%): post a reversing voucher',
        tg_table_name using errcode = '23514';
end $$;

create trigger vouchers_immutable before update or delete on vouchers
    for each row execute function refuse_voucher_change();
create trigger voucher_lines_immutable before update or delete on voucher_lines
    for each row execute function refuse_voucher_change();
create trigger vouchers_no_truncate before truncate on vouchers
    for each statement execute function refuse_voucher_change();
create trigger voucher_lines_no_truncate before truncate on voucher_lines
    for each statement execute function refuse_voucher_change();

-- Lines join their voucher only in the transaction that posts it: adding lines to an old voucher
-- later would escape the balance check, which runs once per voucher, so it is refused here.
-- (now() is the transaction's start time, the same for the voucher and its lines.) One check per
-- statement, over all the lines it inserted.
create function refuse_late_lines() returns trigger language plpgsql as $$
begin
    if exists (select 1 from new_lines l
               where not exists (select 1 from vouchers v where v.id = l.voucher_id and v.posted_at = now())) then
        raise exception 'lines can only be added to a voucher in the transaction that posts it'
            using errcode = '23514';
    end if;
    return null;
end $$;

create trigger voucher_lines_same_transaction after insert on voucher_lines
    referencing new table as new_lines
    for each statement execute function refuse_late_lines();

create function force_posted_at() returns trigger language plpgsql as $$
begin
    new.posted_at := now();
    return new;
end $$;

create trigger vouchers_posted_at before insert on vouchers
    for each row execute function force_posted_at();
