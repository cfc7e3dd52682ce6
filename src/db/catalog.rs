//! Customers and products the shops tell us about: kept for reports and SAF-T master files,
//! never posted.

use sqlx::PgConnection;
use uuid::Uuid;

use crate::posting::event::{Customer, Product};

/// Inserts or refreshes a customer of a connection.
///
/// # Errors
/// A database error.
pub async fn upsert_customer(
    db: &mut PgConnection,
    connection_id: Uuid,
    c: &Customer,
) -> sqlx::Result<()> {
    sqlx::query(
        "insert into customers (connection_id, shop_customer_id, name, email) values ($1, $2, $3, $4) \
         on conflict (connection_id, shop_customer_id) do update \
             set name = excluded.name, email = excluded.email, updated_at = now() \
         where (customers.name, customers.email) is distinct from (excluded.name, excluded.email)",
    )
    .bind(connection_id)
    .bind(&c.id)
    .bind(&c.name)
    .bind(&c.email)
    .execute(db)
    .await?;
    Ok(())
}

/// Inserts or refreshes a product of a connection.
///
/// # Errors
/// A database error.
pub async fn upsert_product(
    db: &mut PgConnection,
    connection_id: Uuid,
    p: &Product,
) -> sqlx::Result<()> {
    sqlx::query(
        "insert into products (connection_id, sku, name, price, vat_rate_bp, product_group) \
         values ($1, $2, $3, $4, $5, $6) \
         on conflict (connection_id, sku) do update set name = excluded.name, price = excluded.price, \
             vat_rate_bp = excluded.vat_rate_bp, product_group = excluded.product_group, updated_at = now()",
    )
    .bind(connection_id)
    .bind(&p.sku)
    .bind(&p.name)
    .bind(p.price.map(|m| m.0))
    .bind(p.vat_rate.map(|r| i32::try_from(r.0).unwrap_or(i32::MAX)))
    .bind(&p.product_group)
    .execute(db)
    .await?;
    Ok(())
}

/// Brings the customer register up to date with `customers` (sorted by key, one per key),
/// writing only what is new or changed: an unchanged customer takes no row lock, so batches
/// that share a customer do not wait for each other.
///
/// # Errors
/// A database error.
pub async fn sync_customers(
    db: &mut PgConnection,
    customers: &[(Uuid, Customer)],
) -> sqlx::Result<()> {
    if customers.is_empty() {
        return Ok(());
    }
    let conns: Vec<Uuid> = customers.iter().map(|c| c.0).collect();
    let ids: Vec<&str> = customers.iter().map(|c| c.1.id.as_str()).collect();
    let known: Vec<(Uuid, String, String, Option<String>)> = sqlx::query_as(
        "select c.connection_id, c.shop_customer_id, c.name, c.email from customers c \
         join unnest($1::uuid[], $2::text[]) as u(conn, id) on c.connection_id = u.conn and c.shop_customer_id = u.id",
    )
    .bind(&conns)
    .bind(&ids)
    .fetch_all(&mut *db)
    .await?;
    let known: std::collections::HashMap<(Uuid, &str), (&str, Option<&str>)> = known
        .iter()
        .map(|(c, id, n, e)| ((*c, id.as_str()), (n.as_str(), e.as_deref())))
        .collect();
    let changed: Vec<&(Uuid, Customer)> = customers
        .iter()
        .filter(|(c, cu)| {
            known.get(&(*c, cu.id.as_str())) != Some(&(cu.name.as_str(), cu.email.as_deref()))
        })
        .collect();
    if changed.is_empty() {
        return Ok(());
    }
    let conns: Vec<Uuid> = changed.iter().map(|c| c.0).collect();
    let ids: Vec<&str> = changed.iter().map(|c| c.1.id.as_str()).collect();
    let names: Vec<&str> = changed.iter().map(|c| c.1.name.as_str()).collect();
    let emails: Vec<Option<&str>> = changed.iter().map(|c| c.1.email.as_deref()).collect();
    sqlx::query(
        "insert into customers (connection_id, shop_customer_id, name, email) \
         select * from unnest($1::uuid[], $2::text[], $3::text[], $4::text[]) as u(c, i, n, e) order by c, i \
         on conflict (connection_id, shop_customer_id) do update \
             set name = excluded.name, email = excluded.email, updated_at = now()",
    )
    .bind(&conns)
    .bind(&ids)
    .bind(&names)
    .bind(&emails)
    .execute(db)
    .await?;
    Ok(())
}
