//! The load a fault test puts on shopbridge, and what it checks afterwards: signed native
//! orders (one order, so one invoice, per event), sent at a steady pace by a few concurrent
//! "shops" that record every answer, resent after recovery as a shop would, then the ledger
//! compared with the answers.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use shopbridge::channel::Channel;
use shopbridge::connections::Added;
use shopbridge::samples::{self, Sample};
use sqlx::PgPool;

use crate::helpers::TestApp;

/// Concurrent senders.
const SHOPS: usize = 6;
/// Pause of each sender between requests, so the load spans the fault.
const PACE: Duration = Duration::from_millis(25);
/// A request that gets no answer in this time counts as unanswered (and is resent).
const CLIENT_TIMEOUT: Duration = Duration::from_secs(20);

/// The last answer an event got.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// 202: the shop will never send it again.
    Accepted,
    /// Any other status (503 expected during faults).
    Status(u16),
    /// No answer at all (connection reset, client timeout).
    Silence,
}

/// Events, what they were last answered, and the order each one carries.
pub struct Load {
    pub events: Vec<Sample>,
    answers: Mutex<BTreeMap<String, Answer>>,
    client: reqwest::Client,
    /// Every answer seen, for the failure message.
    pub statuses: Mutex<BTreeMap<String, usize>>,
}

impl Load {
    /// `count` distinct orders, tagged so that two loads never share an order id.
    pub fn new(tag: &str, count: usize) -> Arc<Load> {
        let now = Utc::now();
        let events = (0..count)
            .map(|i| samples::order(Channel::Nettbutikk, &format!("{tag}-{i}"), now, 0))
            .collect();
        Arc::new(Load {
            events,
            answers: Mutex::new(BTreeMap::new()),
            client: reqwest::Client::builder()
                .timeout(CLIENT_TIMEOUT)
                .build()
                .expect("http client"),
            statuses: Mutex::new(BTreeMap::new()),
        })
    }

    /// Sends one event (signed now) and records its answer.
    pub async fn send(&self, app: &TestApp, conn: &Added, event: &Sample) -> Answer {
        let headers = shopbridge::signature::sign(
            Channel::Nettbutikk,
            &conn.secret,
            &event.event_id,
            &event.topic,
            Utc::now(),
            &event.body,
        );
        let answer = match self
            .client
            .post(app.webhook_url(conn.connection.id))
            .headers(headers)
            .body(event.body.clone())
            .send()
            .await
        {
            Ok(resp) if resp.status().as_u16() == 202 => Answer::Accepted,
            Ok(resp) => Answer::Status(resp.status().as_u16()),
            Err(_) => Answer::Silence,
        };
        let label = match &answer {
            Answer::Accepted => "202".to_owned(),
            Answer::Status(s) => s.to_string(),
            Answer::Silence => "no answer".to_owned(),
        };
        *self.statuses.lock().unwrap().entry(label).or_default() += 1;
        self.answers
            .lock()
            .unwrap()
            .insert(event.event_id.clone(), answer.clone());
        answer
    }

    /// How many events have had an answer so far.
    pub fn answered(&self) -> usize {
        self.answers.lock().unwrap().len()
    }

    /// Sends every event once, `SHOPS` at a time at a steady pace; the returned task ends when
    /// all were answered.
    pub fn start(
        self: &Arc<Self>,
        app: &Arc<TestApp>,
        conn: &Arc<Added>,
    ) -> tokio::task::JoinHandle<()> {
        let (load, app, conn) = (Arc::clone(self), Arc::clone(app), Arc::clone(conn));
        tokio::spawn(async move {
            let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
            let mut shops = tokio::task::JoinSet::new();
            for _ in 0..SHOPS {
                let (load, app, conn, next) =
                    (load.clone(), app.clone(), conn.clone(), next.clone());
                shops.spawn(async move {
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        let Some(event) = load.events.get(i) else {
                            return;
                        };
                        load.send(&app, &conn, event).await;
                        tokio::time::sleep(PACE).await;
                    }
                });
            }
            while shops.join_next().await.is_some() {}
        })
    }

    /// Resends, as a shop does, every event not yet answered 202, in bounded rounds, until all
    /// are accepted. Panics when some never are.
    pub async fn resend_until_accepted(&self, app: &TestApp, conn: &Added) {
        for _ in 0..60 {
            let pending: Vec<&Sample> = {
                let answers = self.answers.lock().unwrap();
                self.events
                    .iter()
                    .filter(|e| answers.get(&e.event_id) != Some(&Answer::Accepted))
                    .collect()
            };
            if pending.is_empty() {
                return;
            }
            for event in pending {
                self.send(app, conn, event).await;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        panic!(
            "some events were never accepted after recovery; answers: {:?}",
            self.statuses.lock().unwrap()
        );
    }

    /// Event ids answered 202.
    pub fn accepted(&self) -> BTreeSet<String> {
        self.answers
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, a)| **a == Answer::Accepted)
            .map(|(id, _)| id.clone())
            .collect()
    }
}

/// Waits (bounded) until the ledger has processed `expected` events, then checks that exactly
/// the accepted events were processed, each order invoiced once, nothing failed, and that none
/// of `never_resent` (answered 503 and not sent again) reached the ledger.
pub async fn assert_posted_exactly_once(
    app: &TestApp,
    db: &PgPool,
    load: &Load,
    never_resent: &[Sample],
) {
    let accepted = load.accepted();
    let mut processed = 0;
    for _ in 0..1200 {
        processed = sqlx::query_scalar::<_, i64>(
            "select count(*) from events where status <> 'processing'",
        )
        .fetch_one(db)
        .await
        .expect("count events");
        if usize::try_from(processed).unwrap() >= accepted.len() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let rows: Vec<(String, String, Option<String>)> =
        sqlx::query_as("select source_event_id, status, reason from events")
            .fetch_all(db)
            .await
            .expect("events");
    let not_processed: Vec<_> = rows.iter().filter(|r| r.1 != "processed").collect();
    assert!(
        not_processed.is_empty(),
        "every event is processed ({processed} final of {} accepted); these are not: {:?}",
        accepted.len(),
        &not_processed[..not_processed.len().min(5)]
    );
    let in_ledger: BTreeSet<String> = rows.into_iter().map(|r| r.0).collect();
    let missing: Vec<_> = accepted.difference(&in_ledger).take(5).collect();
    let extra: Vec<_> = in_ledger.difference(&accepted).take(5).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "the events in the ledger are exactly the {} accepted ones: missing {missing:?}, \
         not accepted {extra:?}; answers: {:?}",
        accepted.len(),
        load.statuses.lock().unwrap()
    );
    let invoices: Vec<(String, i64)> = sqlx::query_as(
        "select idempotency_key, count(*) from vouchers where idempotency_key like 'invoice:%' \
         group by idempotency_key",
    )
    .fetch_all(db)
    .await
    .expect("invoices");
    assert!(
        invoices.iter().all(|(_, n)| *n == 1),
        "each invoice exists once"
    );
    assert_eq!(
        invoices.len(),
        load.events.len(),
        "every order of the load is invoiced"
    );
    for probe in never_resent {
        assert!(
            !in_ledger.contains(&probe.event_id),
            "an event answered 503 and never resent was posted: {}",
            probe.event_id
        );
    }
    app.assert_ledger_invariants().await;
}
