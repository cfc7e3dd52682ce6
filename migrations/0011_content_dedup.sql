-- Deliveries whose id is not signed are deduplicated on their content too. Shopify's webhook id
-- is a header outside the HMAC, and so is WooCommerce's topic, which the id shopbridge derives
-- for it contains: a captured body sent again under a fresh id would otherwise be new work. The
-- worker derives a key from the signed body (what happened, to which resource, as of when; see
-- `channels::Reading::content_key`) and records it here once per connection, with the event
-- that first carried it. A later event with the same key is recorded as a `duplicate` of that
-- one and posts nothing. Keys are claimed in key order, after the inbox rows and before the
-- orders, in the batch's transaction.
create table event_contents (
    connection_id uuid not null,
    content_key   text not null,
    -- The event that first carried this content; a replay of that same event passes.
    event_id      uuid not null references events (id),
    constraint event_contents_once unique (connection_id, content_key)
);

-- `duplicate`: the same content as an earlier event, under another delivery id; acked, nothing
-- posted, the reason names the earlier event. `not valid`: every existing row passed the old,
-- narrower check, so the events table need not be scanned under this lock; new rows are checked.
alter table events drop constraint events_status_check;
alter table events add constraint events_status_check
    check (status in ('processing', 'processed', 'skipped', 'ignored', 'failed', 'duplicate'))
    not valid;
