//! Database outages the worker meets: each is retried, never dead-lettered on its first try, and
//! the event posts once after the outage passes. The conditions are made real on the test's own
//! database, from a session on the server's `postgres` database. What this server cannot be
//! made to do (refuse a password: it trusts every local login) is checked on the classification
//! of a real error that PostgreSQL reports with the same SQLSTATE.

use std::str::FromStr as _;
use std::time::Duration;

use reqwest::StatusCode;
use shopbridge::channel::Channel;
use shopbridge::db::Failure;
use shopbridge::queue::RETRY_TIERS;
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions as _, Connection as _, PgConnection, PgPool};
use uuid::Uuid;

use crate::helpers::{Options, TestApp, eventually, pg_server};
use crate::logs::Logs;

const ORDER_1001: &[u8] = include_bytes!("../fixtures/events/order-created-1001.json");

fn order_id() -> String {
    let v: serde_json::Value = serde_json::from_slice(ORDER_1001).unwrap();
    v["id"].as_str().unwrap().to_owned()
}

/// A pool on the server's `postgres` database, to change the test's database from outside.
async fn admin() -> PgPool {
    PgPool::connect(&format!("{}/postgres", pg_server()))
        .await
        .expect("the postgres database")
}

fn db_name(app: &TestApp) -> String {
    app.db_url().rsplit('/').next().unwrap().to_owned()
}

async fn run(admin: &PgPool, sql: &str) {
    sqlx::query(sql)
        .execute(admin)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// Ends every session on database `name`, so that the app's pool reconnects under the new
/// conditions (a database's settings apply to the sessions that start after they change).
/// Waits for those sessions to be gone; new ones may already have started.
async fn end_sessions(admin: &PgPool, name: &str) {
    let ended: Vec<i32> = sqlx::query_scalar(
        // Materialized: only the test database's sessions are chosen before any is ended.
        "with doomed as materialized ( \
             select pid from pg_stat_activity where datname = $1 and pid <> pg_backend_pid()) \
         select pid from doomed where pg_terminate_backend(pid)",
    )
    .bind(name)
    .fetch_all(admin)
    .await
    .unwrap();
    eventually("the database's sessions end", || async {
        let left: i64 =
            sqlx::query_scalar("select count(*) from pg_stat_activity where pid = any($1)")
                .bind(&ended)
                .fetch_one(admin)
                .await
                .unwrap();
        left == 0
    })
    .await;
}

/// An outage of the test's database, made real from outside.
#[derive(Clone, Copy, Debug)]
enum Outage {
    /// A primary that turned read-only, as after a failover (SQLSTATE 25006 on every write).
    ReadOnly,
    /// `allow_connections` off: every new session is refused (55000).
    NoConnections,
    /// The database renamed away: every new session finds none (3D000).
    Missing,
}

impl Outage {
    async fn start(self, admin: &PgPool, name: &str) {
        match self {
            Outage::ReadOnly => {
                run(
                    admin,
                    &format!("alter database \"{name}\" set default_transaction_read_only = on"),
                )
                .await;
                end_sessions(admin, name).await;
            }
            Outage::NoConnections => {
                run(
                    admin,
                    &format!("alter database \"{name}\" allow_connections false"),
                )
                .await;
                end_sessions(admin, name).await;
            }
            Outage::Missing => {
                // Closed first, so that no session comes back between the end and the rename.
                run(
                    admin,
                    &format!("alter database \"{name}\" allow_connections false"),
                )
                .await;
                end_sessions(admin, name).await;
                run(
                    admin,
                    &format!("alter database \"{name}\" rename to \"{name}_away\""),
                )
                .await;
                run(
                    admin,
                    &format!("alter database \"{name}_away\" allow_connections true"),
                )
                .await;
            }
        }
    }

    async fn lift(self, admin: &PgPool, name: &str) {
        match self {
            Outage::ReadOnly => {
                run(
                    admin,
                    &format!("alter database \"{name}\" reset default_transaction_read_only"),
                )
                .await;
                end_sessions(admin, name).await;
            }
            Outage::NoConnections => {
                run(
                    admin,
                    &format!("alter database \"{name}\" allow_connections true"),
                )
                .await;
            }
            Outage::Missing => {
                run(
                    admin,
                    &format!("alter database \"{name}_away\" rename to \"{name}\""),
                )
                .await;
            }
        }
    }
}

/// Messages waiting in any retry tier.
async fn retrying(app: &TestApp) -> u32 {
    let mut n = 0;
    for tier in RETRY_TIERS {
        n += app.queue_depth(&app.names.retry_queue(tier)).await;
    }
    n
}

/// Waits (up to a minute: the event may be in its 30 s tier) until the event is processed.
async fn processed_within_a_minute(app: &TestApp, event_id: &str) {
    let done = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            let status: Option<String> =
                sqlx::query_scalar("select status from events where source_event_id = $1")
                    .bind(event_id)
                    .fetch_optional(&app.db)
                    .await
                    .ok()
                    .flatten();
            if status.as_deref() == Some("processed") {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    assert!(
        done.is_ok(),
        "event {event_id} was not processed within a minute of the outage's end"
    );
}

/// Queues an order, starts the outage, starts a worker, and checks that the event waits in a
/// retry delay (not failed, not dead-lettered), then that it posts once when the outage ends.
async fn an_outage_is_retried_and_posts_once_after_it(outage: Outage, opts: Options) {
    let app = TestApp::spawn_with(opts).await;
    let conn = app
        .add_connection_from(
            Channel::Nettbutikk,
            chrono::NaiveDate::from_ymd_opt(2026, 1, 1),
        )
        .await;
    assert_eq!(
        app.post_native(&conn, ORDER_1001).await.status(),
        StatusCode::ACCEPTED
    );
    let (admin, name) = (admin().await, db_name(&app));
    outage.start(&admin, &name).await;

    let _worker = app.spawn_extra_worker();
    eventually(
        &format!("{outage:?}: the event waits in a retry delay"),
        || async { retrying(&app).await > 0 },
    )
    .await;
    assert_eq!(
        app.queue_depth(&app.names.dead_queue).await,
        0,
        "{outage:?}: nothing is dead-lettered"
    );

    outage.lift(&admin, &name).await;
    processed_within_a_minute(&app, &order_id()).await;
    let vouchers: i64 = sqlx::query_scalar("select count(*) from vouchers")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(vouchers, 1, "{outage:?}: the order is posted once");
    assert_eq!(app.queue_depth(&app.names.dead_queue).await, 0);
    app.assert_ledger_invariants().await;
    admin.close().await;
    app.cleanup().await;
}

#[tokio::test]
async fn a_read_only_primary_is_an_outage_retried_until_it_takes_writes_again() {
    an_outage_is_retried_and_posts_once_after_it(Outage::ReadOnly, Options::receiver()).await;
}

#[tokio::test]
async fn a_database_not_accepting_connections_is_an_outage_retried_until_it_does() {
    an_outage_is_retried_and_posts_once_after_it(Outage::NoConnections, Options::receiver()).await;
}

#[tokio::test]
async fn a_missing_database_is_an_outage_retried_until_it_is_back() {
    an_outage_is_retried_and_posts_once_after_it(Outage::Missing, Options::receiver()).await;
}

/// An outage outlasting every attempt an event has (here: one): a retry for an outage spends
/// none, so the event still waits in its retry delay, not in the dead-letter queue, when the
/// database is back, however long the outage lasted.
#[tokio::test]
async fn an_outage_outlasting_every_attempt_dead_letters_nothing() {
    let opts = Options {
        max_attempts: 1,
        ..Options::receiver()
    };
    an_outage_is_retried_and_posts_once_after_it(Outage::ReadOnly, opts).await;
}

/// The ledger refuses an event for good, and the database refuses the record of that failure
/// too: the event must stay somewhere. It is retried (its failure logged at ERROR with its id),
/// and posts once the refusal is gone. A trigger on `events` refuses both, with the SQLSTATE of
/// the ledger's own triggers (23514).
#[tokio::test]
async fn a_refused_event_whose_failure_cannot_be_recorded_is_retried_and_logged_not_lost() {
    let (logs, _guard) = Logs::capture("shopbridge=info");
    let app = TestApp::spawn_with(Options::receiver()).await;
    let conn = app
        .add_connection_from(
            Channel::Nettbutikk,
            chrono::NaiveDate::from_ymd_opt(2026, 1, 1),
        )
        .await;
    assert_eq!(
        app.post_native(&conn, ORDER_1001).await.status(),
        StatusCode::ACCEPTED
    );
    let id = order_id();
    sqlx::query(&format!(
        "create function refuse_the_test_event() returns trigger language plpgsql as $$ begin \
             if new.source_event_id = '{id}' then \
                 raise exception 'refused by the test' using errcode = '23514'; \
             end if; \
             return new; \
         end $$"
    ))
    .execute(&app.db)
    .await
    .unwrap();
    sqlx::query(
        "create trigger refuse_the_test_event before insert or update on events \
         for each row execute function refuse_the_test_event()",
    )
    .execute(&app.db)
    .await
    .unwrap();

    let _worker = app.spawn_extra_worker();
    eventually("the event waits in a retry delay", || async {
        retrying(&app).await > 0
    })
    .await;
    assert_eq!(
        app.queue_depth(&app.names.dead_queue).await,
        0,
        "a failure that could not be recorded is not dead-lettered"
    );
    let errors = logs.at("ERROR");
    assert!(
        errors.iter().any(|l| l["fields"]["event_id"] == id.as_str()
            && l["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("Could not record"))),
        "logged at ERROR with the event id: {errors:?}"
    );

    sqlx::query("drop trigger refuse_the_test_event on events")
        .execute(&app.db)
        .await
        .unwrap();
    processed_within_a_minute(&app, &id).await;
    let vouchers: i64 = sqlx::query_scalar("select count(*) from vouchers")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(vouchers, 1);
    app.cleanup().await;
}

async fn raised(db: &PgPool, code: &str) -> sqlx::Error {
    let err = sqlx::query(&format!(
        "do $$ begin raise exception 'raised by the test' using errcode = '{code}'; end $$"
    ))
    .execute(db)
    .await
    .unwrap_err();
    assert_eq!(
        err.as_database_error().and_then(|e| e.code()).as_deref(),
        Some(code),
        "sqlx reports PostgreSQL's SQLSTATE"
    );
    err
}

#[tokio::test]
async fn each_class_of_database_error_is_classified_from_a_real_error() {
    let app = TestApp::spawn_with(Options::receiver()).await;
    for (code, want) in [
        ("08006", Failure::Unavailable),
        ("25006", Failure::Unavailable),
        ("28P01", Failure::Unavailable), // a wrong password
        ("3D000", Failure::Unavailable),
        ("53300", Failure::Unavailable),
        ("55000", Failure::Unavailable),
        ("57P01", Failure::Unavailable),
        ("57P03", Failure::Unavailable),
        ("40001", Failure::Conflict),
        ("40P01", Failure::Conflict),
        ("55P03", Failure::Conflict),
        ("57014", Failure::Conflict),
        ("22003", Failure::Refused),
        ("23505", Failure::Refused),
        ("23514", Failure::Refused), // the ledger's triggers
        ("42P01", Failure::Unknown),
        ("XX000", Failure::Unknown),
    ] {
        let err = anyhow::Error::from(raised(&app.db, code).await);
        assert_eq!(Failure::of(&err), want, "{code}");
        assert_eq!(
            shopbridge::db::is_transient(&err),
            want != Failure::Refused,
            "{code}"
        );
    }

    // The conditions themselves, where a trust-auth server can be made to show them.
    let server = PgConnectOptions::from_str(&pg_server()).unwrap();
    let unique = Uuid::new_v4().simple().to_string();
    let missing = server
        .clone()
        .database(&format!("shopbridge_missing_{unique}"))
        .connect()
        .await
        .unwrap_err();
    assert_eq!(
        missing
            .as_database_error()
            .and_then(|e| e.code())
            .as_deref(),
        Some("3D000"),
        "{missing}"
    );
    assert_eq!(Failure::of_sqlx(&missing), Failure::Unavailable);
    // A role that does not exist: class 28, as a wrong password is.
    let nobody = server
        .clone()
        .username(&format!("nobody_{unique}"))
        .database("postgres")
        .connect()
        .await
        .unwrap_err();
    assert_eq!(
        nobody.as_database_error().and_then(|e| e.code()).as_deref(),
        Some("28000"),
        "{nobody}"
    );
    assert_eq!(Failure::of_sqlx(&nobody), Failure::Unavailable);
    // No server there at all.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let refused = server.clone().port(port).connect().await.unwrap_err();
    assert_eq!(
        Failure::of_sqlx(&refused),
        Failure::Unavailable,
        "{refused}"
    );
    // A session ended by the server (57P01 or a closed socket, by timing).
    let mut session = PgConnection::connect(&app.db_url()).await.unwrap();
    let pid: i32 = sqlx::query_scalar("select pg_backend_pid()")
        .fetch_one(&mut session)
        .await
        .unwrap();
    sqlx::query("select pg_terminate_backend($1)")
        .bind(pid)
        .execute(&app.db)
        .await
        .unwrap();
    eventually("the session ends", || async {
        let alive: bool =
            sqlx::query_scalar("select exists (select 1 from pg_stat_activity where pid = $1)")
                .bind(pid)
                .fetch_one(&app.db)
                .await
                .unwrap();
        !alive
    })
    .await;
    let ended = sqlx::query("select 1")
        .execute(&mut session)
        .await
        .unwrap_err();
    assert_eq!(Failure::of_sqlx(&ended), Failure::Unavailable, "{ended}");
    app.cleanup().await;
}
