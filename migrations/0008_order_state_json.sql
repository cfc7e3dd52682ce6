-- Order states are stored as json, not jsonb, and a new order's row starts without one.
--
-- Only the worker reads and writes an order's state (src/db/orders.rs), always whole: it never
-- queries inside it. As jsonb, every write was parsed into PostgreSQL's binary form and every
-- read printed back to text, about a tenth of PostgreSQL's time in the drain profile
-- (docs/benchmarks.md). json keeps the text as written and only checks that it is JSON.
--
-- A new order's row was inserted with the state of an order nothing is known about, only to be
-- locked and overwritten in the same transaction. It is now inserted with no state (null), which
-- means exactly that; the worker reads null as a new order's state.
--
-- One statement, so the table is rewritten once, compressing the states with LZ4 as it goes.
-- The rewrite holds an exclusive lock on `orders`: stop the workers before migrating
-- (docs/operations.md, "Upgrading").
alter table orders
    alter column state type json using state::json,
    alter column state drop not null,
    alter column state set compression lz4;
