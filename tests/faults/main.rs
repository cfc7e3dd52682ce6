//! Fault tests: shopbridge under a steady load of signed events while its broker or database
//! connections are cut, refused, slowed or stalled, and while a worker process is killed with
//! SIGKILL mid-batch. After recovery (and after resending what was refused, as a shop does),
//! every event answered 202 is posted exactly once, an event answered 503 and never resent is
//! not posted, and the ledger's invariants hold.
//!
//! The tests share the machine's services and move a lot of traffic, so they run one at a time:
//! each holds [`SERIAL`] for its whole run (no `--test-threads=1` needed).

#[allow(dead_code)] // the api tests' helpers; not every one is used here
#[path = "../api/helpers.rs"]
mod helpers;
mod load;
#[allow(dead_code)]
#[path = "../api/proxy.rs"]
mod proxy;

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use shopbridge::channel::Channel;
use shopbridge::samples::{self, Sample};
use tokio::process::Command;

use helpers::{Options, TestApp, amqp_addr, pg_addr, problem};
use load::{Load, assert_posted_exactly_once};
use proxy::FaultProxy;

/// One fault test at a time in this binary.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Events per fault.
const EVENTS: usize = 400;
/// How long a fault lasts.
const FAULT_FOR: Duration = Duration::from_secs(4);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Target {
    Broker,
    Database,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    /// Every connection cut, new ones refused for [`FAULT_FOR`], then accepted again.
    CutAndRefuse,
    /// 30 ms added to every chunk in both directions for [`FAULT_FOR`].
    Latency,
    /// Nothing forwarded (sockets kept open) for [`FAULT_FOR`], then forwarding resumes.
    Stall,
    /// Stalled for [`FAULT_FOR`], then every connection cut (what was held back is lost).
    StallThenCut,
    /// Nothing forwarded, with the worker's batch timeout at a quarter of [`FAULT_FOR`]: the
    /// worker abandons its stalled transactions and sends their events to the retry delay
    /// while the stall lasts, instead of holding them unacked.
    StallPastBatchTimeout,
}

#[tokio::test]
async fn broker_connections_cut_and_refused_lose_nothing_and_post_nothing_twice() {
    under_load(Target::Broker, Fault::CutAndRefuse).await;
}

#[tokio::test]
async fn broker_latency_loses_nothing_and_posts_nothing_twice() {
    under_load(Target::Broker, Fault::Latency).await;
}

#[tokio::test]
async fn a_stalled_broker_gets_503_and_loses_nothing_when_it_resumes() {
    under_load(Target::Broker, Fault::Stall).await;
}

#[tokio::test]
async fn a_stalled_then_cut_broker_loses_nothing_and_posts_nothing_twice() {
    under_load(Target::Broker, Fault::StallThenCut).await;
}

#[tokio::test]
async fn database_connections_cut_and_refused_lose_nothing_and_post_nothing_twice() {
    under_load(Target::Database, Fault::CutAndRefuse).await;
}

#[tokio::test]
async fn database_latency_loses_nothing_and_posts_nothing_twice() {
    under_load(Target::Database, Fault::Latency).await;
}

#[tokio::test]
async fn a_stalled_database_loses_nothing_when_it_resumes() {
    under_load(Target::Database, Fault::Stall).await;
}

#[tokio::test]
async fn a_database_stalled_past_the_batch_timeout_is_retried_and_loses_nothing() {
    under_load(Target::Database, Fault::StallPastBatchTimeout).await;
}

#[tokio::test]
async fn a_stalled_then_cut_database_loses_nothing_and_posts_nothing_twice() {
    under_load(Target::Database, Fault::StallThenCut).await;
}

/// Runs [`EVENTS`] events through an app whose `target` connections pass a proxy, applies
/// `fault` a quarter of the way in, recovers, resends what was not accepted, and checks.
async fn under_load(target: Target, fault: Fault) {
    let _serial = SERIAL.lock().await;
    let t0 = std::time::Instant::now();
    let phase = |what: &str| eprintln!("[{:>6.1?}] {target:?} {fault:?}: {what}", t0.elapsed());
    let proxy = FaultProxy::start(match target {
        Target::Broker => amqp_addr(),
        Target::Database => pg_addr(),
    })
    .await;
    let opts = match target {
        Target::Broker => Options {
            amqp_url: format!("amqp://guest:guest@{}/%2f", proxy.addr),
            confirm_timeout: Duration::from_secs(2),
            ..Options::default()
        },
        Target::Database => Options {
            pg_server: format!("postgres://postgres@{}", proxy.addr),
            batch_timeout: if fault == Fault::StallPastBatchTimeout {
                FAULT_FOR / 4
            } else {
                Options::default().batch_timeout
            },
            ..Options::default()
        },
    };
    let app = Arc::new(TestApp::spawn_with(opts).await);
    let conn = Arc::new(app.add_connection(Channel::Nettbutikk).await);
    let load = Load::new(&format!("{target:?}-{fault:?}"), EVENTS);
    let sending = load.start(&app, &conn);
    wait_for("a quarter of the load answered", || {
        load.answered() >= EVENTS / 4
    })
    .await;

    phase("fault");
    match fault {
        Fault::CutAndRefuse => proxy.cut(),
        Fault::Latency => proxy.set_latency(Duration::from_millis(30)),
        Fault::Stall | Fault::StallThenCut | Fault::StallPastBatchTimeout => proxy.stall(),
    }
    if fault == Fault::StallPastBatchTimeout {
        // Without the timeout the worker's batches would wait on the stall, their events
        // unacked, and no event would reach a retry queue until the database answers again.
        let names = shopbridge::queue::Names::new(&app.args().broker.queue_prefix);
        wait_for_async("the worker sends abandoned events to a retry delay", || {
            let (app, names) = (&app, &names);
            async move {
                let mut waiting = 0;
                for tier in shopbridge::queue::RETRY_TIERS {
                    waiting += app.queue_depth(&names.retry_queue(tier)).await;
                }
                waiting > 0
            }
        })
        .await;
    }
    let probes = if target == Target::Broker && fault != Fault::Latency {
        refused_probes(&app, &conn).await
    } else {
        Vec::new()
    };
    tokio::time::sleep(FAULT_FOR).await;
    match fault {
        Fault::CutAndRefuse => proxy.restore(),
        Fault::Latency => proxy.set_latency(Duration::ZERO),
        Fault::Stall | Fault::StallPastBatchTimeout => proxy.resume(),
        Fault::StallThenCut => {
            proxy.cut();
            proxy.resume();
            proxy.restore();
        }
    }

    phase("recovered");
    tokio::time::timeout(Duration::from_secs(300), sending)
        .await
        .expect("the load finishes (every request is bounded by the client timeout)")
        .expect("load task");
    if target == Target::Broker {
        wait_for("the publisher reconnects after recovery", || {
            app.state.publisher.is_connected()
        })
        .await;
    }
    let answers = load.statuses.lock().unwrap().clone();
    phase(&format!("load sent; answers {answers:?}"));
    assert!(
        answers.keys().all(|s| s == "202" || s == "503"),
        "every request got 202 or a clean 503: {answers:?}"
    );
    load.resend_until_accepted(&app, &conn).await;
    phase("resent");
    let db = app.direct_db().await;
    assert_posted_exactly_once(&app, &db, &load, &probes).await;
    phase("checked");
    db.close().await;
    drop(proxy);
    Arc::into_inner(app)
        .expect("no task holds the app any more")
        .cleanup()
        .await;
}

/// Once the publisher knows the broker is gone, a few events must be answered 503 with
/// Retry-After; they are never resent, so they must never be posted.
async fn refused_probes(app: &TestApp, conn: &shopbridge::connections::Added) -> Vec<Sample> {
    wait_for("the publisher notices the broker is gone", || {
        !app.state.publisher.is_connected()
    })
    .await;
    let mut probes = Vec::new();
    for i in 0..5 {
        let s = samples::order(Channel::Nettbutikk, &format!("probe-{i}"), Utc::now(), 0);
        let resp = app
            .post_signed(
                conn.connection.id,
                Channel::Nettbutikk,
                &conn.secret,
                &s.event_id,
                &s.topic,
                &s.body,
            )
            .await;
        assert!(
            resp.headers().contains_key("retry-after"),
            "a 503 carries Retry-After"
        );
        let (status, body) = problem(resp).await;
        assert_eq!(status, 503, "refused while the broker is down: {body}");
        probes.push(s);
    }
    probes
}

#[tokio::test]
async fn a_worker_process_killed_mid_batch_and_restarted_posts_everything_once() {
    let _serial = SERIAL.lock().await;
    let app = Arc::new(TestApp::spawn_with(Options::receiver()).await);
    let conn = Arc::new(app.add_connection(Channel::Nettbutikk).await);
    let db = app.direct_db().await;
    // The worker's database traffic is slowed, so that its transactions last long enough for
    // the kill to land inside one.
    let slow = FaultProxy::start(pg_addr()).await;
    slow.set_latency(Duration::from_millis(5));
    let load = Load::new("sigkill", EVENTS);
    let sending = load.start(&app, &conn);

    for round in 1..=2 {
        let mut worker = spawn_worker_process(&app, slow.addr);
        let before = processed(&db).await;
        wait_for_async(&format!("worker {round} posts a batch"), || async {
            let now = processed(&db).await;
            now > before + 20 || usize::try_from(now).unwrap() >= EVENTS
        })
        .await;
        worker.start_kill().expect("SIGKILL the worker");
        let status = worker.wait().await.expect("the worker exits");
        assert!(!status.success(), "killed, not exited: {status}");
    }
    let mut worker = spawn_worker_process(&app, slow.addr);
    tokio::time::timeout(Duration::from_secs(300), sending)
        .await
        .expect("the load finishes")
        .expect("load task");
    load.resend_until_accepted(&app, &conn).await;
    assert_posted_exactly_once(&app, &db, &load, &[]).await;

    worker.start_kill().ok();
    worker.wait().await.ok();
    db.close().await;
    Arc::into_inner(app)
        .expect("no task holds the app any more")
        .cleanup()
        .await;
}

/// The built `shopbridge worker`, on the test's database (through `pg_proxy`) and queues.
fn spawn_worker_process(app: &TestApp, pg_proxy: std::net::SocketAddr) -> tokio::process::Child {
    let args = app.args();
    let url = args.db.database_url.expose();
    let db_name = url.rsplit('/').next().expect("database name in the URL");
    let expires = args.broker.queue_expires.expect("test queues expire");
    Command::new(env!("CARGO_BIN_EXE_shopbridge"))
        .arg("worker")
        .env(
            "DATABASE_URL",
            format!("postgres://postgres@{pg_proxy}/{db_name}"),
        )
        .env("AMQP_URL", args.broker.amqp_url.expose())
        .env("SHOPBRIDGE_QUEUE_PREFIX", &args.broker.queue_prefix)
        .env(
            "SHOPBRIDGE_QUEUE_EXPIRES",
            format!("{}s", expires.as_secs()),
        )
        .env("SHOPBRIDGE_BATCH_SIZE", "50")
        .env("SHOPBRIDGE_WORKER_CONCURRENCY", "2")
        .env("RUST_LOG", "warn")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start the shopbridge binary")
}

async fn processed(db: &sqlx::PgPool) -> i64 {
    sqlx::query_scalar("select count(*) from events where status = 'processed'")
        .fetch_one(db)
        .await
        .expect("count processed events")
}

/// Polls `cond` every 50 ms, at most 1200 times; panics naming `what` when it never holds.
async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..1200 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting until {what}");
}

/// [`wait_for`] with an async condition.
async fn wait_for_async<F, Fut>(what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..1200 {
        if cond().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting until {what}");
}

#[tokio::test]
async fn while_the_database_is_down_known_connections_get_202_and_unknown_ones_a_clean_503() {
    let _serial = SERIAL.lock().await;
    let proxy = FaultProxy::start(pg_addr()).await;
    let app = TestApp::spawn_with(Options {
        pg_server: format!("postgres://postgres@{}", proxy.addr),
        ..Options::receiver()
    })
    .await;
    let known = app.add_connection(Channel::Nettbutikk).await;
    let unseen = app.add_connection(Channel::Nettbutikk).await;
    let send = |conn| send_order(&app, conn);
    assert_eq!(send(&known).await.status().as_u16(), 202, "cached now");

    proxy.cut();
    // What the cache's change listener does when it loses PostgreSQL: every entry is due for
    // reloading, which now fails.
    app.state.cache.clear();
    assert_eq!(
        send(&known).await.status().as_u16(),
        202,
        "a known connection is served from the cache while PostgreSQL is down"
    );
    let resp = send(&unseen).await;
    assert!(
        resp.headers().contains_key("retry-after"),
        "503 with Retry-After"
    );
    let (status, body) = problem(resp).await;
    assert_eq!(
        (status, body["type"].as_str().unwrap_or("")),
        (503, "urn:shopbridge:problem:database-unavailable"),
        "a connection that must be looked up gets a clean 503: {body}"
    );

    proxy.restore();
    wait_for_async(
        "the unseen connection is accepted after recovery",
        || async { send(&unseen).await.status().as_u16() == 202 },
    )
    .await;
    drop(proxy);
    app.cleanup().await;
}

/// Sends one new signed native order on `conn`.
async fn send_order(app: &TestApp, conn: &shopbridge::connections::Added) -> reqwest::Response {
    let s = samples::order(Channel::Nettbutikk, "1", Utc::now(), 0);
    app.post_signed(
        conn.connection.id,
        Channel::Nettbutikk,
        &conn.secret,
        &s.event_id,
        &s.topic,
        &s.body,
    )
    .await
}
