//! `shopbridge events show|replay`, `dlq list|replay|purge`, `rules list|add|remove|test` and
//! `tokens create|list|revoke`: thin wrappers that call [`crate::ops`] and print its reports as
//! text (with a progress bar on a terminal) or `--json`.

use anyhow::Context as _;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

use crate::cli::OperatorArgs;
use crate::cli::admin::{
    DeadFilterArgs, DlqCommand, EventsReplayArgs, QueueArgs, RulesCommand, TokensCommand,
    UsersCommand,
};
use crate::db::tokens as token_rows;
use crate::ops::books::{self, RuleIn};
use crate::ops::dlq::{self, DeadFilter, DeadLetter};
use crate::ops::stored::{self, EventFilter};
use crate::ops::{Broker, ReplayReport, Step, views};
use crate::queue::Names;

async fn open(op: &OperatorArgs) -> anyhow::Result<sqlx::PgPool> {
    let pool = crate::db::connect(&op.db).await?;
    crate::db::migrate(&pool).await?;
    Ok(pool)
}

fn broker(q: &QueueArgs) -> Broker {
    Broker {
        url: q.broker.amqp_url.expose().clone(),
        names: Names::new(&q.broker.queue_prefix),
    }
}

fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// A progress bar on stderr (hidden when stderr is not a terminal, or with `--json`), fed by
/// the library's [`Step`]s.
fn progress_bar(quiet: bool) -> (ProgressBar, impl Fn(Step) + Send + Sync) {
    let bar = if quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(0)
    };
    if let Ok(style) = ProgressStyle::with_template("{msg:32} [{bar:30}] {pos}/{len}") {
        bar.set_style(style.progress_chars("=> "));
    }
    let feed = bar.clone();
    let step = move |s: Step| match s {
        Step::Begin(total, what) => {
            feed.reset();
            feed.set_length(total);
            feed.set_message(what);
        }
        Step::Advance => feed.inc(1),
        Step::Done => feed.finish_and_clear(),
    };
    (bar, step)
}

/// `shopbridge events show ID`.
///
/// # Errors
/// No such event, or the database is unreachable.
pub async fn show_event(key: &str, op: &OperatorArgs) -> anyhow::Result<()> {
    let pool = open(op).await?;
    let found = views::events(&mut *pool.acquire().await?, key).await?;
    anyhow::ensure!(!found.is_empty(), "no event with id {key}");
    if op.json {
        return print_json(&found);
    }
    for e in &found {
        println!(
            "Event {} ({} on connection {})",
            e.id, e.source_event_id, e.connection_id
        );
        println!("  Channel/topic:  {} {}", e.channel, e.topic);
        println!(
            "  Status:         {} (delivered {} time(s))",
            e.status, e.deliveries
        );
        if let Some(reason) = &e.reason {
            println!("  Reason:         {reason}");
        }
        if let Some(flag) = &e.flag {
            println!("  Flag:           {flag}");
        }
        println!("  Received:       {}", e.received_at.to_rfc3339());
        if e.vouchers.is_empty() {
            println!("  Vouchers:       none");
        }
        for v in &e.vouchers {
            let h = &v.head;
            println!(
                "  Voucher {} {}-{}  {}  {}  ({})",
                h.series, h.year, h.number, h.voucher_date, h.description, h.idempotency_key
            );
            for l in &v.lines {
                println!(
                    "      {:<5} {:<30} {:>12} {:>12}  {}",
                    l.account,
                    l.account_name,
                    l.debit.as_deref().unwrap_or(""),
                    l.credit.as_deref().unwrap_or(""),
                    l.description
                );
            }
        }
        println!("  Payload:\n{}", serde_json::to_string_pretty(&e.payload)?);
    }
    Ok(())
}

/// `shopbridge events replay`.
///
/// # Errors
/// No filter given, or the database or broker fail.
pub async fn replay_events(args: EventsReplayArgs) -> anyhow::Result<()> {
    let filter = EventFilter {
        id: args.id,
        connection: args.connection,
        status: args.status,
        topic: args.topic,
        since: args.since,
        until: args.until,
        limit: Some(args.limit),
    };
    anyhow::ensure!(
        !filter.is_empty(),
        "name an event or give a filter (--status failed, --connection, --topic, --since, --until)"
    );
    let pool = open(&args.q.op).await?;
    let (_bar, step) = progress_bar(args.q.op.json);
    let report = stored::replay(
        &pool,
        &broker(&args.q),
        &filter,
        args.execute,
        args.wait.wait,
        &step,
    )
    .await?;
    print_report(&report, args.q.op.json)
}

fn dead_filter(f: DeadFilterArgs) -> DeadFilter {
    DeadFilter {
        event: f.event,
        connection: f.connection,
        topic: f.topic,
        reason: f.reason,
        since: f.since,
        until: f.until,
        limit: f.limit,
    }
}

/// Runs one `dlq` subcommand.
///
/// # Errors
/// When the broker or the database fail.
pub async fn dlq(cmd: DlqCommand) -> anyhow::Result<()> {
    match cmd {
        DlqCommand::List { filter, q } => {
            let list = dlq::list(&broker(&q), &dead_filter(filter)).await?;
            if q.op.json {
                return print_json(&list);
            }
            print_letters(&list.messages);
            println!(
                "{} of {} dead letter(s) shown.",
                list.messages.len(),
                list.in_queue
            );
            Ok(())
        }
        DlqCommand::Replay {
            filter,
            execute,
            wait,
            q,
        } => {
            let pool = open(&q.op).await?;
            let (_bar, step) = progress_bar(q.op.json);
            let report = dlq::replay(
                &broker(&q),
                &pool,
                &dead_filter(filter),
                execute,
                wait.wait,
                &step,
            )
            .await?;
            print_report(&report, q.op.json)
        }
        DlqCommand::Purge { filter, execute, q } => {
            let (_bar, step) = progress_bar(q.op.json);
            let report = dlq::purge(&broker(&q), &dead_filter(filter), execute, &step).await?;
            if q.op.json {
                return print_json(&report);
            }
            print_letters(&report.messages);
            if report.executed {
                println!(
                    "Purged {} of {} dead letter(s).",
                    report.purged, report.in_queue
                );
            } else {
                println!(
                    "Would purge {} of {} dead letter(s); run again with --execute to delete them.",
                    report.purged, report.in_queue
                );
            }
            Ok(())
        }
    }
}

fn print_letters(letters: &[DeadLetter]) {
    for l in letters {
        let at = l
            .dead_lettered_at
            .or(l.received_at)
            .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string());
        println!(
            "{}  {:<24} {:<36} {}",
            at.as_deref().unwrap_or("-"),
            l.message_id.as_deref().unwrap_or("-"),
            l.connection_id
                .map(|c| c.to_string())
                .unwrap_or_else(|| "-".into()),
            l.topic.as_deref().unwrap_or("-"),
        );
        if let Some(reason) = &l.reason {
            println!("{:>21}{reason}", "");
        }
    }
}

fn print_report(r: &ReplayReport, as_json: bool) -> anyhow::Result<()> {
    if as_json {
        return print_json(r);
    }
    for e in &r.events {
        println!(
            "{:<13} {:<24} {:<36} {}",
            serde_json::to_value(e.result)?.as_str().unwrap_or(""),
            e.event_id.as_deref().unwrap_or("-"),
            e.connection_id
                .map(|c| c.to_string())
                .unwrap_or_else(|| "-".into()),
            e.topic.as_deref().unwrap_or("-"),
        );
        if let Some(detail) = &e.detail {
            println!("{:>14}{detail}", "");
        }
        for v in &e.vouchers {
            println!("{:>14}posted {v}", "");
        }
    }
    let t = &r.totals;
    if r.executed {
        println!(
            "Replayed {} of {} matching event(s) from {}: {} posted, {} duplicate (nothing changed), {} skipped, {} failed again, {} pending, {} not followed.",
            r.republished,
            r.matched,
            r.source,
            t.posted,
            t.duplicate,
            t.skipped,
            t.failed,
            t.pending,
            t.republished + t.untracked
        );
    } else {
        println!(
            "Would replay {} event(s) from {}; run again with --execute to replay them.",
            r.matched, r.source
        );
    }
    Ok(())
}

/// Runs one `rules` subcommand.
///
/// # Errors
/// Invalid input (the field is named), an unknown id, or the database fails.
pub async fn rules(cmd: RulesCommand) -> anyhow::Result<()> {
    match cmd {
        RulesCommand::List { connection, op } => {
            let pool = open(&op).await?;
            let rules = books::list_rules(&pool, connection).await?;
            if op.json {
                return print_json(&rules);
            }
            println!(
                "{:>5}  {:<8} {:<9} {:<6} {:<6} {:<10} {:<10} {:<8} -> ACCOUNT VAT",
                "ID", "KIND", "VAT CODE", "RATE", "SKU", "GROUP", "PAYMENT", "CONN"
            );
            for r in &rules {
                let o = |v: &Option<String>| v.clone().unwrap_or_else(|| "*".into());
                println!(
                    "{:>5}  {:<8} {:<9} {:<6} {:<6} {:<10} {:<10} {:<8} -> {} {}",
                    r.id,
                    o(&r.kind),
                    r.vat_code.map_or("*".into(), |c| c.to_string()),
                    o(&r.vat_rate),
                    o(&r.sku_prefix),
                    o(&r.product_group),
                    o(&r.payment_method),
                    r.connection_id
                        .map_or("*".into(), |c| c.to_string()[..8].to_owned()),
                    r.account,
                    r.set_vat_code.map(|c| c.to_string()).unwrap_or_default()
                );
            }
            Ok(())
        }
        RulesCommand::Add { rule, op } => {
            let pool = open(&op).await?;
            let input = RuleIn {
                connection_id: rule.connection,
                kind: rule.kind,
                vat_code: rule.vat_code,
                vat_rate: rule.vat_rate,
                sku_prefix: rule.sku_prefix,
                product_group: rule.product_group,
                payment_method: rule.payment_method,
                account: rule.account,
                set_vat_code: rule.set_vat_code,
                department: rule.department,
                location: rule.location,
            };
            let saved = books::save_rule(&pool, None, &input).await?;
            if op.json {
                return print_json(&saved);
            }
            println!(
                "Added rule {} (posts to {}). Workers use it within 5 s.",
                saved.id, saved.account
            );
            Ok(())
        }
        RulesCommand::Remove { id, execute, op } => {
            let pool = open(&op).await?;
            let rule = books::get_rule(&pool, id).await?;
            if execute {
                books::remove_rule(&pool, id).await?;
            }
            if op.json {
                return print_json(&json!({"executed": execute, "rule": rule}));
            }
            if execute {
                println!("Removed rule {id} (posted to {}).", rule.account);
            } else {
                println!(
                    "Would remove rule {id} (posts to {}); run again with --execute to remove it.",
                    rule.account
                );
            }
            Ok(())
        }
        RulesCommand::Test {
            file,
            channel,
            topic,
            connection,
            op,
        } => {
            let pool = open(&op).await?;
            let body =
                std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let topic = topic.unwrap_or_else(|| default_topic(channel, &body));
            let placed = books::test_rules(&pool, channel, &topic, &body, connection).await?;
            if op.json {
                return print_json(&placed);
            }
            for p in &placed {
                let account = p.account.map_or("UNPLACED".into(), |a| a.to_string());
                println!(
                    "order {} {:<40} -> {:<8} {}",
                    p.order_id, p.text, account, p.why
                );
            }
            let unplaced = placed
                .iter()
                .filter(|p| p.account.is_none() && p.kind != "discount")
                .count();
            println!("{} line(s), {unplaced} cannot be placed.", placed.len());
            Ok(())
        }
    }
}

/// The topic a sample most likely is: the body's `type`, else the channel's order topic.
fn default_topic(channel: crate::channel::Channel, body: &[u8]) -> String {
    let from_body = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("type").and_then(|t| t.as_str()).map(str::to_owned));
    from_body.unwrap_or_else(|| match channel {
        crate::channel::Channel::Shopify => "orders/create".into(),
        _ => "order.created".into(),
    })
}

/// Runs one `tokens` subcommand.
///
/// # Errors
/// An empty name, an unknown id, or the database fails.
pub async fn tokens(cmd: TokensCommand) -> anyhow::Result<()> {
    match cmd {
        TokensCommand::Create { name, op } => {
            let pool = open(&op).await?;
            let (row, token) = crate::ops::tokens::create(&pool, &name).await?;
            if op.json {
                return print_json(&json!({"id": row.id, "name": row.name, "token": token}));
            }
            println!("Created token {} ({}):", row.id, row.name);
            println!("  {token}");
            println!("It is shown only now. Send it as `Authorization: Bearer <token>`.");
            Ok(())
        }
        TokensCommand::List { op } => {
            let pool = open(&op).await?;
            let rows = token_rows::list(&mut *pool.acquire().await?).await?;
            if op.json {
                return print_json(&rows);
            }
            for t in &rows {
                let state = t.revoked_at.map_or("active".to_owned(), |r| {
                    format!("revoked {}", r.format("%Y-%m-%d"))
                });
                let used = t.last_used_at.map_or("never".to_owned(), |u| {
                    u.format("%Y-%m-%d %H:%M").to_string()
                });
                println!("{}  {:<20} {:<18} last used {used}", t.id, t.name, state);
            }
            Ok(())
        }
        TokensCommand::Revoke { id, op } => {
            let pool = open(&op).await?;
            let done = token_rows::revoke(&mut *pool.acquire().await?, id).await?;
            anyhow::ensure!(done, "no active token with id {id}");
            if op.json {
                return print_json(&json!({"id": id, "revoked": true}));
            }
            println!("Revoked token {id}.");
            Ok(())
        }
    }
}

/// Reads a new password: asked twice at a terminal without echo, else the first line of
/// standard input (for scripts: `printf '%s\n' "$PW" | shopbridge users create …`).
fn read_password() -> anyhow::Result<String> {
    use std::io::IsTerminal as _;
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("Password: ")?;
        let again = rpassword::prompt_password("Password again: ")?;
        anyhow::ensure!(
            first == again,
            "the two passwords differ; nothing was changed"
        );
        Ok(first)
    } else {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line)?;
        Ok(line.trim_end_matches(['\r', '\n']).to_owned())
    }
}

/// Runs one `users` subcommand.
///
/// # Errors
/// A bad email or password, an unknown or duplicate user, or the database fails.
pub async fn users(cmd: UsersCommand) -> anyhow::Result<()> {
    use crate::console::users as u;
    match cmd {
        UsersCommand::Create { email, op } => {
            let password = read_password()?;
            let pool = open(&op).await?;
            let user = u::create(&pool, &email, &password).await?;
            if op.json {
                return print_json(&user);
            }
            println!("Created console user {} ({}).", user.email, user.id);
            println!("They log in at <SHOPBRIDGE_PUBLIC_URL>/console.");
            Ok(())
        }
        UsersCommand::List { op } => {
            let pool = open(&op).await?;
            let rows = u::list(&pool).await?;
            if op.json {
                return print_json(&rows);
            }
            for user in &rows {
                let state = user.disabled_at.map_or("active".to_owned(), |d| {
                    format!("disabled {}", d.format("%Y-%m-%d"))
                });
                println!(
                    "{}  {:<32} {:<20} created {}",
                    user.id,
                    user.email,
                    state,
                    user.created_at.format("%Y-%m-%d")
                );
            }
            Ok(())
        }
        UsersCommand::SetPassword { email, op } => {
            let password = read_password()?;
            let pool = open(&op).await?;
            u::set_password(&pool, &email, &password).await?;
            if op.json {
                return print_json(&json!({"email": email, "password_set": true}));
            }
            println!("Set a new password for {email}; their sessions have ended.");
            Ok(())
        }
        UsersCommand::Disable { email, op } => {
            let pool = open(&op).await?;
            u::disable(&pool, &email).await?;
            if op.json {
                return print_json(&json!({"email": email, "disabled": true}));
            }
            println!("Disabled {email}; their sessions have ended.");
            Ok(())
        }
        UsersCommand::Enable { email, op } => {
            let pool = open(&op).await?;
            u::enable(&pool, &email).await?;
            if op.json {
                return print_json(&json!({"email": email, "disabled": false}));
            }
            println!("Enabled {email}; they can log in again.");
            Ok(())
        }
    }
}
