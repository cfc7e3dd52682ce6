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
