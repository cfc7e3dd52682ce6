-- An order's state remembers the vouchers posted for it before its first snapshot arrived (a
-- payment that came first), so that they can be reversed if the order turns out to be
-- registered before the connection's process_orders_from (src/posting/early.rs). States stored
-- by earlier versions have no such record: this rebuilds it from the ledger, for the orders
-- still waiting for their first snapshot, which are the only ones it matters to.
--
-- An order still waiting (no snapshot, not skipped) can only have payments posted, and none
-- reversed yet; the lines are written back exactly as the engine serialises them
-- (src/posting/voucher.rs, VoucherLine). A scan of `orders`; only the waiting ones are written.
with waiting as (
    select o.connection_id, o.order_id
    from orders o
    where o.state is not null
      and coalesce(json_typeof(o.state -> 'snapshot'), 'null') = 'null'
      and coalesce(json_typeof(o.state -> 'skipped'), 'null') = 'null'
      and o.state -> 'posted_before_order' is null
), early as (
    select v.connection_id, v.order_id,
           jsonb_agg(jsonb_build_object(
               'key', v.idempotency_key,
               'kind', v.kind,
               'date', v.voucher_date,
               'description', v.description,
               'lines', (
                   select jsonb_agg(jsonb_build_object(
                       'account', l.account,
                       'amount', l.amount,
                       'currency', rtrim(l.currency),
                       'currency_amount', l.currency_amount,
                       'vat_code', l.vat_code,
                       'vat_base', l.vat_base,
                       'customer_id', l.customer_id,
                       'department', l.department,
                       'location', l.location,
                       'description', l.description,
                       'role', case when l.role like 'sales:%'
                                    then jsonb_build_object('sales', substr(l.role, 7))
                                    else to_jsonb(l.role) end,
                       'sku', l.sku
                   ) order by l.line_no)
                   from voucher_lines l where l.voucher_id = v.id
               )
           ) order by v.posted_at, v.number) as vouchers
    from waiting w
    join vouchers v on v.connection_id = w.connection_id and v.order_id = w.order_id
    where not exists (select 1 from vouchers r where r.reverses = v.id)
    group by v.connection_id, v.order_id
)
update orders o
set state = (o.state::jsonb || jsonb_build_object('posted_before_order', e.vouchers))::json
from early e
where o.connection_id = e.connection_id and o.order_id = e.order_id;
