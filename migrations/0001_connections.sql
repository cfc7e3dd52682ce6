-- Companies and their sales-channel connections ("koblinger"), with signing secrets.

create table companies (
    id            uuid primary key,
    org_number    text,
    name          text not null,
    -- ISO 4217; every voucher is posted in this currency.
    base_currency char(3) not null default 'NOK',
    -- Exactly one company is the default, created on first start so a newcomer needs no set-up.
    is_default    boolean not null default false,
    created_at    timestamptz not null default now()
);
create unique index companies_one_default on companies (is_default) where is_default;

insert into companies (id, name, is_default)
values ('00000000-0000-7000-8000-000000000001', 'Default company', true);

create table connections (
    id                  uuid primary key,
    company_id          uuid not null references companies (id),
    name                text not null check (length(trim(name)) > 0),
    channel             text not null
                        check (channel in ('nettbutikk', 'shopify', 'woocommerce', 'stripe')),
    status              text not null default 'active' check (status in ('active', 'disabled')),
    -- Orders registered before this date are recorded as skipped, with their payments/refunds.
    process_orders_from date not null default current_date,
    -- The account an already-paid order's payment is debited to (payment-provider clearing).
    prepaid_account     text not null default '1522',
    location            text,
    department          text,
    -- Public identifier of the shop's credentials (the "client ID"); the secret is the key.
    client_id           text not null,
    created_at          timestamptz not null default now(),
    updated_at          timestamptz not null default now(),
    constraint connections_client_id_key unique (client_id)
);
create index connections_company on connections (company_id);

create table connection_secrets (
    id            uuid primary key,
    connection_id uuid not null references connections (id) on delete cascade,
    -- Sealed with SHOPBRIDGE_MASTER_KEY (nonce || ciphertext) when `encrypted`, else the
    -- secret's UTF-8 bytes.
    secret        bytea not null,
    encrypted     boolean not null,
    created_at    timestamptz not null default now(),
    -- Null while the secret is current; set when a rotation retires it. It verifies until then.
    expires_at    timestamptz
);
create index connection_secrets_connection on connection_secrets (connection_id, created_at desc);

-- Receivers cache connections; tell them when one changes so a disable or a rotation takes
-- effect at once everywhere (the payload is the connection id).
create function notify_connection_changed() returns trigger language plpgsql as $$
begin
    perform pg_notify('shopbridge_connections', coalesce(new.id, old.id)::text);
    return null;
end $$;

create function notify_connection_secret_changed() returns trigger language plpgsql as $$
begin
    perform pg_notify('shopbridge_connections',
        coalesce(new.connection_id, old.connection_id)::text);
    return null;
end $$;

create trigger connections_changed after insert or update or delete on connections
    for each row execute function notify_connection_changed();
create trigger connection_secrets_changed after insert or update or delete on connection_secrets
    for each row execute function notify_connection_secret_changed();
