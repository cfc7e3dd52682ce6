//! `shopbridge connections add|set|list|show|disable|enable|rotate-secret`.

use anyhow::Context as _;
use serde_json::json;

use crate::cli::{ConnectionsCommand, OperatorArgs};
use crate::connections::{self, AddConnection, webhook_url};
use crate::db::connections::{self as q, ConnectionRow};
use crate::db::periods;
use crate::signature::Secret;

/// Runs one `connections` subcommand.
///
/// # Errors
/// Bad input (with the field named), an unknown id, or an unreachable database.
pub async fn run(cmd: ConnectionsCommand) -> anyhow::Result<()> {
    match cmd {
        ConnectionsCommand::Add {
            name,
            channel,
            process_orders_from,
            prepaid_account,
            department,
            location,
            locked_period_policy,
            op,
        } => {
            let (pool, vault) = open(&op).await?;
            let input = AddConnection {
                name,
                channel,
                process_orders_from,
                prepaid_account,
                department,
                location,
            };
            let added = connections::add(&pool, &vault, input).await?;
            let c = &added.connection;
            if let Some(policy) = locked_period_policy {
                periods::set_policy(&mut *pool.acquire().await?, c.id, policy).await?;
            }
            let url = webhook_url(&op.public_url, c.id);
            if op.json {
                let out = json!({"id": c.id, "webhook_url": url, "client_id": c.client_id,
                                 "secret": added.secret.expose()});
                println!("{out}");
            } else {
                println!("Added connection {} ({}, {}).", c.name, c.channel, c.id);
                println!("  Webhook URL:  {url}");
                println!("  Client ID:    {}", c.client_id);
                println!("  Secret:       {}", added.secret.expose());
                println!("The secret is shown only now; store it in the shop's webhook settings.");
            }
        }
        ConnectionsCommand::Set {
            id,
            locked_period_policy,
            max_order_amount,
            op,
        } => {
            let (pool, _) = open(&op).await?;
            if max_order_amount.is_some() {
                let settings = crate::ops::books::SettingsIn {
                    max_order_amount,
                    ..Default::default()
                };
                crate::ops::books::update_connection(&pool, id, &settings).await?;
            }
            let mut db = pool.acquire().await?;
            if let Some(policy) = locked_period_policy {
                anyhow::ensure!(
                    periods::set_policy(&mut db, id, policy).await?,
                    "no connection with id {id}"
                );
            }
            let c = q::get(&mut db, id)
                .await?
                .with_context(|| format!("no connection with id {id}"))?;
            print_one(&c, &op);
        }
        ConnectionsCommand::List { op } => {
            let (pool, _) = open(&op).await?;
            let rows = q::list(&mut *pool.acquire().await?).await?;
            if op.json {
                let out: Vec<_> = rows.iter().map(|c| describe(c, &op.public_url)).collect();
                println!("{}", serde_json::Value::Array(out));
            } else if rows.is_empty() {
                println!(
                    "No connections yet. Add one with `shopbridge connections add --name NAME --channel nettbutikk`."
                );
            } else {
                println!("{:<36}  {:<11}  {:<8}  NAME", "ID", "CHANNEL", "STATUS");
                for c in &rows {
                    println!(
                        "{:<36}  {:<11}  {:<8}  {}",
                        c.id, c.channel, c.status, c.name
                    );
                }
            }
        }
        ConnectionsCommand::Show { id, op } => {
            let (pool, _) = open(&op).await?;
            let c = q::get(&mut *pool.acquire().await?, id)
                .await?
                .with_context(|| format!("no connection with id {id}"))?;
            print_one(&c, &op);
        }
        ConnectionsCommand::Disable { id, op } => set_enabled(id, &op, false).await?,
        ConnectionsCommand::Enable { id, op } => set_enabled(id, &op, true).await?,
        ConnectionsCommand::RotateSecret {
            id,
            keep_old_for,
            op,
        } => {
            replace_secret(id, None, keep_old_for, &op).await?;
        }
        ConnectionsCommand::SetSecret {
            id,
            keep_old_for,
            op,
        } => {
            let mut line = String::new();
            std::io::stdin()
                .read_line(&mut line)
                .context("cannot read the secret from standard input")?;
            let secret = Secret::new(line.trim().to_owned());
            anyhow::ensure!(!secret.expose().is_empty(), "no secret on standard input");
            replace_secret(id, Some(secret), keep_old_for, &op).await?;
        }
    }
    Ok(())
}

async fn open(op: &OperatorArgs) -> anyhow::Result<(sqlx::PgPool, connections::Vault)> {
    let pool = crate::db::connect(&op.db).await?;
    crate::db::migrate(&pool).await?;
    Ok((pool, crate::app::vault(&op.db)))
}

async fn replace_secret(
    id: uuid::Uuid,
    given: Option<Secret>,
    keep_old_for: std::time::Duration,
    op: &OperatorArgs,
) -> anyhow::Result<()> {
    let (pool, vault) = open(op).await?;
    let shown = given.is_none();
    let secret = connections::replace_secret(&pool, &vault, id, given, keep_old_for).await?;
    let until = chrono::Utc::now() + chrono::Duration::from_std(keep_old_for).unwrap_or_default();
    if op.json {
        let secret = shown.then(|| secret.expose().to_owned());
        println!(
            "{}",
            json!({"id": id, "secret": secret, "old_secret_expires_at": until})
        );
    } else {
        if shown {
            println!("New secret for {id}: {}", secret.expose());
        } else {
            println!("Secret of {id} replaced.");
        }
        println!(
            "The old secret keeps verifying until {}.",
            until.to_rfc3339()
        );
    }
    Ok(())
}

async fn set_enabled(id: uuid::Uuid, op: &OperatorArgs, enabled: bool) -> anyhow::Result<()> {
    let (pool, _) = open(op).await?;
    connections::set_enabled(&pool, id, enabled).await?;
    let c = q::get(&mut *pool.acquire().await?, id)
        .await?
        .with_context(|| format!("no connection with id {id}"))?;
    print_one(&c, op);
    Ok(())
}

fn describe(c: &ConnectionRow, public_url: &str) -> serde_json::Value {
    json!({
        "id": c.id, "name": c.name, "channel": c.channel, "status": c.status,
        "process_orders_from": c.process_orders_from, "prepaid_account": c.prepaid_account,
        "department": c.department, "location": c.location, "client_id": c.client_id,
        "locked_period_policy": c.locked_period_policy,
        "max_order_amount": crate::posting::Money(c.max_order_amount).to_string(),
        "webhook_url": webhook_url(public_url, c.id), "created_at": c.created_at,
    })
}

fn print_one(c: &ConnectionRow, op: &OperatorArgs) {
    if op.json {
        println!("{}", describe(c, &op.public_url));
        return;
    }
    println!("{} ({})", c.name, c.id);
    println!("  Channel:              {}", c.channel);
    println!("  Status:               {}", c.status);
    println!("  Process orders from:  {}", c.process_orders_from);
    println!("  Prepaid account:      {}", c.prepaid_account);
    println!(
        "  Department:           {}",
        c.department.as_deref().unwrap_or("-")
    );
    println!(
        "  Location:             {}",
        c.location.as_deref().unwrap_or("-")
    );
    println!("  Locked periods:       {}", c.locked_period_policy);
    println!(
        "  Max order amount:     {}",
        crate::posting::Money(c.max_order_amount)
    );
    println!("  Client ID:            {}", c.client_id);
    println!(
        "  Webhook URL:          {}",
        webhook_url(&op.public_url, c.id)
    );
}
