//! Order state: locked while an event of the order posts, stored with the vouchers it caused.

use sqlx::PgConnection;
use uuid::Uuid;

use crate::posting::OrderState;

/// Locks the orders `keys` (creating rows for orders never seen) and returns their states.
/// Rows are created and locked in key order, so two batches that share orders wait for each
/// other instead of deadlocking.
///
/// # Errors
/// A database error, or a stored state that no longer parses (reported as a decode error).
pub async fn lock(
    db: &mut PgConnection,
    connection_ids: &[Uuid],
    order_ids: &[String],
) -> sqlx::Result<Vec<(Uuid, String, OrderState)>> {
    // A new order's row has no state yet (migration 0008): that is the state of an order
    // nothing is known about.
    sqlx::query(
        "insert into orders (connection_id, order_id) \
         select * from unnest($1::uuid[], $2::text[]) as u(c, o) order by c, o \
         on conflict do nothing",
    )
    .bind(connection_ids)
    .bind(order_ids)
    .execute(&mut *db)
    .await?;
    let rows: Vec<(Uuid, String, Option<sqlx::types::Json<OrderState>>)> = sqlx::query_as(
        "select o.connection_id, o.order_id, o.state from orders o \
         join unnest($1::uuid[], $2::text[]) as u(c, id) on o.connection_id = u.c and o.order_id = u.id \
         order by o.connection_id, o.order_id for update of o",
    )
    .bind(connection_ids)
    .bind(order_ids)
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(c, o, s)| {
            let state = s.map_or_else(|| OrderState::new(&o), |s| s.0);
            (c, o, state)
        })
        .collect())
}

/// Stores new states of locked orders.
///
/// # Errors
/// A database error.
pub async fn store(
    db: &mut PgConnection,
    connection_ids: &[Uuid],
    states: &[OrderState],
) -> sqlx::Result<()> {
    let order_ids: Vec<&str> = states.iter().map(|s| s.order_id.as_str()).collect();
    let versions: Vec<Option<i64>> = states.iter().map(|s| s.applied_version).collect();
    // Text, cast to json by the server: json keeps it as it is and only checks it.
    let json: Vec<String> = states
        .iter()
        .map(serde_json::to_string)
        .collect::<Result<_, _>>()
        .map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    sqlx::query(
        "update orders o set state = u.s::json, applied_version = u.v, updated_at = now() \
         from unnest($1::uuid[], $2::text[], $3::bigint[], $4::text[]) as u(c, id, v, s) \
         where o.connection_id = u.c and o.order_id = u.id",
    )
    .bind(connection_ids)
    .bind(&order_ids)
    .bind(&versions)
    .bind(&json)
    .execute(db)
    .await?;
    Ok(())
}
