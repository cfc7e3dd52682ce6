//! Hendelser and Feilkø: events with their status and reason, an event's payload and vouchers,
//! and replay of one event, a filtered set, or dead letters.

use std::collections::HashMap;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::routing::{get, post};
use axum::{Extension, Router};
use maud::{Markup, html};
use serde::Deserialize;
use uuid::Uuid;

use super::books::{voucher_table, with_lines};
use super::i18n::{Texts, fill};
use super::layout::{Nav, badge, csrf, page};
use super::{Ctx, Form, PageError};
use crate::db::admin as q;
use crate::db::connections as conns;
use crate::http::AppState;
use crate::ops::dlq::{self, DeadFilter};
use crate::ops::stored::{self, EventFilter};
use crate::ops::{ReplayReport, no_progress, views};

/// Rows a list shows (and a "replay the shown" replays) at most.
const PAGE: i64 = 100;
/// How long a replay from the console waits to report what the worker made of it.
const REPLAY_WAIT: Duration = Duration::from_secs(5);
/// Event statuses an operator can filter on.
const STATUSES: [&str; 6] = [
    "processed",
    "skipped",
    "ignored",
    "duplicate",
    "failed",
    "processing",
];

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/console/events", get(list))
        .route("/console/events/replay", post(replay_filtered))
        .route("/console/events/{id}", get(show))
        .route("/console/events/{id}/replay", post(replay_one))
        .route("/console/dead-letters", get(dead_letters))
        .route("/console/dead-letters/replay", post(replay_dead))
}

/// The filter as a form sends it: empty fields mean "any".
#[derive(Debug, Default, Deserialize)]
pub struct EventQuery {
    #[serde(default)]
    connection: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    topic: String,
    #[serde(default)]
    reason: String,
    /// Set by the list for its "replay the N shown": the newest event shown, so that events
    /// received after the page was drawn are not replayed with them.
    #[serde(default)]
    until: String,
    /// How many the list showed.
    #[serde(default)]
    limit: String,
}

fn given(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_owned())
}

impl EventQuery {
    fn connection(&self) -> Result<Option<Uuid>, PageError> {
        given(&self.connection)
            .map(|c| c.parse().map_err(|_| PageError::BadRequest))
            .transpose()
    }

    fn events(&self) -> Result<EventFilter, PageError> {
        Ok(EventFilter {
            connection: self.connection()?,
            status: given(&self.status),
            topic: given(&self.topic),
            until: self.until()?,
            limit: Some(self.limit()?),
            ..EventFilter::default()
        })
    }

    fn until(&self) -> Result<Option<chrono::DateTime<chrono::Utc>>, PageError> {
        given(&self.until)
            .map(|u| {
                chrono::DateTime::parse_from_rfc3339(&u)
                    .map(|t| t.with_timezone(&chrono::Utc))
                    .map_err(|_| PageError::BadRequest)
            })
            .transpose()
    }

    fn limit(&self) -> Result<i64, PageError> {
        Ok(given(&self.limit)
            .map(|l| l.parse::<i64>().map_err(|_| PageError::BadRequest))
            .transpose()?
            .map_or(PAGE, |l| l.clamp(1, PAGE)))
    }

    /// The replay of "the N shown" must say which N: a form that lost its `limit` and `until`
    /// would replay whatever matches now.
    fn require_shown(&self) -> Result<(), PageError> {
        if given(&self.limit).is_none() || given(&self.until).is_none() {
            return Err(PageError::BadRequest);
        }
        Ok(())
    }

    fn dead(&self) -> Result<DeadFilter, PageError> {
        Ok(DeadFilter {
            connection: self.connection()?,
            topic: given(&self.topic),
            reason: given(&self.reason),
            until: self.until()?,
            limit: Some(u32::try_from(self.limit()?).unwrap_or(100)),
            ..DeadFilter::default()
        })
    }

    fn hidden(&self) -> Markup {
        html! {
            input type="hidden" name="connection" value=(self.connection);
            input type="hidden" name="status" value=(self.status);
            input type="hidden" name="topic" value=(self.topic);
            input type="hidden" name="reason" value=(self.reason);
        }
    }

    /// The hidden fields that replay exactly the events of a list: its filter, no newer event
    /// than its first row, and no more than it showed.
    fn hidden_shown(&self, newest: chrono::DateTime<chrono::Utc>, count: usize) -> Markup {
        html! {
            (self.hidden())
            input type="hidden" name="until"
                value=(newest.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true));
            input type="hidden" name="limit" value=(count);
        }
    }
}

async fn connection_names(app: &AppState) -> Result<HashMap<Uuid, String>, PageError> {
    Ok(conns::list(&mut *app.db.acquire().await?)
        .await?
        .into_iter()
        .map(|c| (c.id, c.name))
        .collect())
}

fn name_of(names: &HashMap<Uuid, String>, id: Option<Uuid>) -> String {
    id.map(|id| names.get(&id).cloned().unwrap_or_else(|| id.to_string()))
        .unwrap_or_default()
}

/// The filter form; `with_status` for events, `with_reason` for dead letters.
fn filter_form(
    t: &Texts,
    action: &str,
    q: &EventQuery,
    names: &HashMap<Uuid, String>,
    dead: bool,
) -> Markup {
    let mut sorted: Vec<(&Uuid, &String)> = names.iter().collect();
    sorted.sort_by(|a, b| a.1.cmp(b.1));
    html! {
        form.filters method="get" action=(action) {
            fieldset {
                legend { (t.filter) }
                div.field {
                    label for="f-connection" { (t.col_connection) }
                    select #f-connection name="connection" {
                        option value="" { (t.all) }
                        @for (id, name) in sorted {
                            option value=(id) selected[q.connection == id.to_string()] { (name) }
                        }
                    }
                }
                @if dead {
                    div.field {
                        label for="f-reason" { (t.col_reason) }
                        input #f-reason type="text" name="reason" value=(q.reason);
                    }
                } @else {
                    div.field {
                        label for="f-status" { (t.col_status) }
                        select #f-status name="status" {
                            option value="" { (t.all) }
                            @for s in STATUSES {
                                option value=(s) selected[q.status == s] { (t.event_status(s)) }
                            }
                        }
                    }
                }
                div.field {
                    label for="f-topic" { (t.col_topic) }
                    input #f-topic type="text" name="topic" value=(q.topic);
                }
                div.actions {
                    button.primary type="submit" { (t.apply_filter) }
                    a.button.secondary href=(action) { (t.clear_filter) }
                }
            }
        }
    }
}

/// GET /console/events
async fn list(
    State(app): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Query(query): Query<EventQuery>,
) -> Result<Markup, PageError> {
    let t = ctx.t();
    let filter = query.events()?;
    let rows = q::list_events(&mut *app.db.acquire().await?, &filter, 0).await?;
    let names = connection_names(&app).await?;
    let count = rows.len().to_string();
    let body = html! {
        h1 { (t.events_title) }
        (filter_form(t, "/console/events", &query, &names, false))
        @if rows.is_empty() {
            p { (t.no_events) }
        } @else {
            @if i64::try_from(rows.len()).unwrap_or(i64::MAX) >= PAGE {
                p.hint role="status" { (fill(t.list_capped, &[&count])) }
            }
            div.table-wrap { table {
                thead { tr {
                    th scope="col" { (t.col_received) }
                    th scope="col" { (t.col_connection) }
                    th scope="col" { (t.col_topic) }
                    th scope="col" { (t.col_status) }
                    th scope="col" { (t.col_reason) }
                    th scope="col" { (t.col_event_id) }
                } }
                tbody {
                    @for e in &rows {
                        tr {
                            td { (t.time(e.received_at)) }
                            td { (name_of(&names, Some(e.connection_id))) }
                            td { code { (e.topic) } }
                            td { (badge(&e.status, t.event_status(&e.status))) }
                            td { (e.reason.as_deref().unwrap_or("")) }
                            td { a href={ "/console/events/" (e.id) } { code { (e.source_event_id) } } }
                        }
                    }
                }
            } }
            form method="post" action="/console/events/replay" {
                (csrf(&ctx))
                (query.hidden_shown(rows[0].received_at, rows.len()))
                p.hint #replay-hint { (t.replay_hint) }
                button.secondary type="submit" aria-describedby="replay-hint" {
                    (fill(t.replay_shown, &[&count]))
                }
            }
        }
    };
    Ok(page(&ctx, Nav::Events, t.events_title, body))
}

/// GET /console/events/{id}
async fn show(
    State(app): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<String>,
) -> Result<Markup, PageError> {
    let t = ctx.t();
    let id: Uuid = id.parse().map_err(|_| PageError::NotFound)?;
    let event = views::events(&mut *app.db.acquire().await?, &id.to_string())
        .await?
        .into_iter()
        .find(|e| e.id == id)
        .ok_or(PageError::NotFound)?;
    let names = connection_names(&app).await?;
    let vouchers = with_lines(
        &app,
        event.vouchers.iter().map(|v| v.head.clone()).collect(),
    )
    .await?;
    let payload = serde_json::to_string_pretty(&event.payload).unwrap_or_default();
    let title = fill(t.event_title, &[&event.source_event_id]);
    let body = html! {
        h1 { (title) }
        dl.facts {
            dt { (t.col_connection) } dd { (name_of(&names, Some(event.connection_id))) }
            dt { (t.col_topic) } dd { code { (event.topic) } }
            dt { (t.col_status) } dd { (badge(&event.status, t.event_status(&event.status))) }
            @if let Some(r) = &event.reason { dt { (t.col_reason) } dd { (r) } }
            @if let Some(f) = &event.flag { dt { (t.col_flag) } dd.flag { (f) } }
            dt { (t.col_received) } dd { (t.time(event.received_at)) }
            @if let Some(o) = event.occurred_at { dt { (t.occurred) } dd { (t.time(o)) } }
            @if let Some(p) = event.processed_at { dt { (t.last_handled) } dd { (t.time(p)) } }
            dt { (t.deliveries) } dd { (event.deliveries) }
            @if let Some(r) = &event.request_id { dt { (t.request_id) } dd { code { (r) } } }
        }
        form method="post" action={ "/console/events/" (event.id) "/replay" } {
            (csrf(&ctx))
            p.hint #replay-hint { (t.replay_hint) }
            button.secondary type="submit" aria-describedby="replay-hint" { (t.replay) }
        }
        h2 { (t.produced_vouchers) }
        @if vouchers.is_empty() {
            p { (t.no_vouchers_of_event) }
        }
        @for v in &vouchers {
            (voucher_table(t, v))
        }
        h2 { (t.payload) }
        pre.payload tabindex="0" { code { (payload) } }
    };
    Ok(page(&ctx, Nav::Events, &title, body))
}

fn report_page(
    ctx: &Ctx,
    nav: Nav,
    report: &ReplayReport,
    names: &HashMap<Uuid, String>,
) -> Markup {
    let t = ctx.t();
    let n = |x: usize| x.to_string();
    let tot = &report.totals;
    let summary = fill(
        t.replay_summary,
        &[
            &n(report.matched),
            &n(report.republished),
            &n(tot.posted),
            &n(tot.duplicate),
            &n(tot.skipped),
            &n(tot.failed),
            &n(tot.pending),
        ],
    );
    let body = html! {
        h1 { (t.replay_report_title) }
        p role="status" { (summary) }
        @if report.events.is_empty() {
            p { (t.replay_nothing) }
        } @else {
            div.table-wrap { table {
                thead { tr {
                    th scope="col" { (t.col_event_id) }
                    th scope="col" { (t.col_connection) }
                    th scope="col" { (t.col_topic) }
                    th scope="col" { (t.col_result) }
                    th scope="col" { (t.col_detail) }
                    th scope="col" { (t.nav_vouchers) }
                } }
                tbody {
                    @for e in &report.events {
                        tr {
                            td { code { (e.event_id.as_deref().unwrap_or("")) } }
                            td { (name_of(names, e.connection_id)) }
                            td { code { (e.topic.as_deref().unwrap_or("")) } }
                            td { (badge(result_class(e.result), t.replay_result(e.result))) }
                            // A failure's reason is the worker's; other results say it all.
                            td { @if e.result == crate::ops::ReplayResult::Failed {
                                (e.detail.as_deref().or(e.reason_before.as_deref()).unwrap_or(""))
                            } }
                            td { (e.vouchers.join(", ")) }
                        }
                    }
                }
            } }
        }
        p {
            @if nav == Nav::DeadLetters {
                a href="/console/dead-letters" { (t.nav_dead_letters) }
            } @else {
                a href="/console/events" { (t.nav_events) }
            }
        }
    };
    page(ctx, nav, t.replay_report_title, body)
}

fn result_class(r: crate::ops::ReplayResult) -> &'static str {
    use crate::ops::ReplayResult as R;
    match r {
        R::Posted | R::Duplicate => "processed",
        R::Failed => "failed",
        R::Skipped | R::Ignored => "skipped",
        _ => "processing",
    }
}

/// Replays the stored events of `filter` and shows what became of them.
async fn replay_stored(
    app: &AppState,
    ctx: &Ctx,
    filter: &EventFilter,
) -> Result<Markup, PageError> {
    let report = stored::replay(
        &app.db,
        &app.broker,
        filter,
        true,
        Some(REPLAY_WAIT),
        &no_progress,
    )
    .await?;
    app.metrics.replayed(&report);
    let names = connection_names(app).await?;
    Ok(report_page(ctx, Nav::Events, &report, &names))
}

/// POST /console/events/replay: the events the list showed.
async fn replay_filtered(
    State(app): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Form(query): Form<EventQuery>,
) -> Result<Markup, PageError> {
    query.require_shown()?;
    let filter = query.events()?;
    tracing::info!(user = %ctx.session.user_id, ?filter, "replay of stored events from the console");
    replay_stored(&app, &ctx, &filter).await
}

/// POST /console/events/{id}/replay
async fn replay_one(
    State(app): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<String>,
) -> Result<Markup, PageError> {
    let id: Uuid = id.parse().map_err(|_| PageError::NotFound)?;
    let filter = EventFilter {
        id: Some(id),
        ..EventFilter::default()
    };
    tracing::info!(user = %ctx.session.user_id, event = %id, "replay of one event from the console");
    replay_stored(&app, &ctx, &filter).await
}

/// GET /console/dead-letters
async fn dead_letters(
    State(app): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Query(query): Query<EventQuery>,
) -> Result<Markup, PageError> {
    let t = ctx.t();
    let filter = query.dead()?;
    let list = dlq::list(&app.broker, &filter).await?;
    let names = connection_names(&app).await?;
    let count = list.messages.len().to_string();
    let newest = list
        .messages
        .iter()
        .filter_map(|d| d.dead_lettered_at.or(d.received_at))
        .max()
        .unwrap_or_else(chrono::Utc::now);
    let body = html! {
        h1 { (t.dead_title) }
        p { (t.dead_intro) " " (fill(t.dead_in_queue, &[&list.in_queue.to_string()])) }
        (filter_form(t, "/console/dead-letters", &query, &names, true))
        @if list.messages.is_empty() {
            p { (t.no_dead) }
        } @else {
            div.table-wrap { table {
                thead { tr {
                    th scope="col" { (t.col_dead_at) }
                    th scope="col" { (t.col_connection) }
                    th scope="col" { (t.col_topic) }
                    th scope="col" { (t.col_reason) }
                    th scope="col" { (t.col_event_id) }
                    th scope="col" { span.visually-hidden { (t.replay) } }
                } }
                tbody {
                    @for d in &list.messages {
                        tr {
                            td { @if let Some(at) = d.dead_lettered_at.or(d.received_at) { (t.time(at)) } }
                            td { (name_of(&names, d.connection_id)) }
                            td { code { (d.topic.as_deref().unwrap_or("")) } }
                            td { (d.reason.as_deref().unwrap_or("")) }
                            td { code { (d.message_id.as_deref().unwrap_or("")) } }
                            td {
                                @if let Some(id) = &d.message_id {
                                    form method="post" action="/console/dead-letters/replay" {
                                        (csrf(&ctx))
                                        input type="hidden" name="event" value=(id);
                                        input type="hidden" name="connection"
                                            value=(d.connection_id.map(|c| c.to_string()).unwrap_or_default());
                                        button.secondary type="submit"
                                            aria-label={ (t.replay) " " (id) } { (t.replay) }
                                    }
                                }
                            }
                        }
                    }
                }
            } }
            form method="post" action="/console/dead-letters/replay" {
                (csrf(&ctx))
                (query.hidden_shown(newest, list.messages.len()))
                button.secondary type="submit" { (fill(t.replay_shown, &[&count])) }
            }
        }
    };
    Ok(page(&ctx, Nav::DeadLetters, t.dead_title, body))
}

/// The dead-letter replay form: a filter, or one event.
#[derive(Debug, Default, Deserialize)]
pub struct DeadReplayForm {
    #[serde(flatten)]
    query: EventQuery,
    #[serde(default)]
    event: String,
}

/// POST /console/dead-letters/replay
async fn replay_dead(
    State(app): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Form(form): Form<DeadReplayForm>,
) -> Result<Markup, PageError> {
    let mut filter = form.query.dead()?;
    filter.event = given(&form.event);
    if filter.event.is_none() {
        form.query.require_shown()?;
    }
    tracing::info!(user = %ctx.session.user_id, ?filter, "dead-letter replay from the console");
    let report = dlq::replay(
        &app.broker,
        &app.db,
        &filter,
        true,
        Some(REPLAY_WAIT),
        &no_progress,
    )
    .await?;
    app.metrics.replayed(&report);
    let names = connection_names(&app).await?;
    Ok(report_page(&ctx, Nav::DeadLetters, &report, &names))
}
