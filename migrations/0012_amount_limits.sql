-- A ceiling on order totals per connection, and a flag on events that posted but need a look.
--
-- `max_order_amount` is in øre of the company's currency: an order whose total is above it is
-- dead-lettered for an operator instead of posted (src/posting/order.rs). The default,
-- 1 000 000.00, is far above one webshop order and far below what a broken or forged payload
-- sends; operators change it per connection (docs/operations.md).
--
-- `flag` says why a processed event deserves an operator's eye (a payment above what its order
-- owed, which stays a customer credit); null for nearly every event.
alter table connections
    add column max_order_amount bigint not null default 100000000
        constraint connections_max_order_amount_positive check (max_order_amount > 0);
alter table events add column flag text;
