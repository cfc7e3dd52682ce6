//! Tilkoblinger: the list, "Legg til ny kobling", and a connection's tabs Konfigurasjon and
//! Legitimasjon.

use std::collections::HashMap;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use chrono::{DateTime, Datelike as _, NaiveDate, Utc};
use maud::{Markup, html};
use serde::Deserialize;
use uuid::Uuid;

use super::i18n::{Texts, fill};
use super::layout::{Nav, Notice, badge, copyable, csrf, notice, page};
use super::{Ctx, Form, PageError};
use crate::channel::Channel;
use crate::connections::{self, Draft, webhook_url};
use crate::db::books::{self as books_db, AccountRow, Dimension, DimensionRow};
use crate::db::connections::{self as q, ConnectionRow};
use crate::http::AppState;
use crate::ops::books::{self, BooksError, SettingsIn};
use crate::signature::Secret;

/// How long a rotated key keeps verifying.
const KEEP_OLD_KEY: Duration = Duration::from_secs(24 * 3600);

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/console/connections", get(list).post(create))
        .route("/console/connections/{id}", get(open))
        .route(
            "/console/connections/{id}/configuration",
            get(configuration).post(save_configuration),
        )
        .route("/console/connections/{id}/credentials", get(credentials))
        .route("/console/connections/{id}/rotate", post(rotate))
        .route("/console/connections/{id}/status", post(set_status))
}

/// `?add=` opens the panel: `1` lists the channels, a channel asks for the name.
#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    add: Option<String>,
}

async fn last_events(app: &AppState) -> Result<HashMap<Uuid, DateTime<Utc>>, PageError> {
    let rows: Vec<(Uuid, DateTime<Utc>)> = sqlx::query_as(
        "select c.id, e.at from connections c cross join lateral \
           (select received_at as at from events where connection_id = c.id \
            order by received_at desc limit 1) e",
    )
    .fetch_all(&app.db)
    .await?;
    Ok(rows.into_iter().collect())
}

fn status_badge(t: &Texts, status: &str) -> Markup {
    badge(status, t.connection_status(status))
}

/// GET /console/connections
async fn list(
    State(app): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Query(q): Query<ListQuery>,
) -> Result<Markup, PageError> {
    let rows = q::list(&mut *app.db.acquire().await?).await?;
    let last = last_events(&app).await?;
    let add = q.add.as_deref().map(|channel| (channel, Uuid::new_v4()));
    Ok(list_page(&ctx, &rows, &last, add, None))
}

/// `add`: the channel whose name panel is open, and the id its form carries.
fn list_page(
    ctx: &Ctx,
    rows: &[ConnectionRow],
    last: &HashMap<Uuid, DateTime<Utc>>,
    add: Option<(&str, Uuid)>,
    name_error: Option<&str>,
) -> Markup {
    let t = ctx.t();
    let panel = add.map(|(add, form)| match add.parse::<Channel>() {
        Ok(channel) => name_panel(ctx, channel, form, name_error),
        Err(_) => channel_panel(t),
    });
    let body = html! {
        div.page-head {
            h1 { (t.connections_title) }
            a.button.primary href="/console/connections?add=1" { (t.add_connection) }
        }
        div.with-panel {
            div.content {
                @if rows.is_empty() {
                    p { (t.no_connections) }
                } @else {
                    div.table-wrap {
                        table {
                            thead { tr {
                                th scope="col" { (t.col_name) }
                                th scope="col" { (t.col_channel) }
                                th scope="col" { (t.col_status) }
                                th scope="col" { (t.col_last_event) }
                            } }
                            tbody {
                                @for c in rows {
                                    tr {
                                        td { a href={ "/console/connections/" (c.id) } { (c.name) } }
                                        td { (t.channel(&c.channel)) }
                                        td { (status_badge(t, &c.status)) }
                                        td {
                                            @match last.get(&c.id) {
                                                Some(at) => (t.time(*at)),
                                                None => (t.never),
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            @if let Some(panel) = panel { (panel) }
        }
    };
    page(ctx, Nav::Connections, t.connections_title, body)
}

fn channel_panel(t: &Texts) -> Markup {
    html! {
        aside.panel aria-labelledby="panel-title" {
            h2 #panel-title { (t.choose_channel) }
            ul.choices {
                @for channel in Channel::ALL {
                    li {
                        a.choice href={ "/console/connections?add=" (channel.as_str()) } {
                            (t.channel(channel.as_str()))
                        }
                    }
                }
            }
            p { a href="/console/connections" { (t.cancel) } }
        }
    }
}

/// The name panel; `form` identifies this form, so posting it twice adds one connection.
fn name_panel(ctx: &Ctx, channel: Channel, form: Uuid, error: Option<&str>) -> Markup {
    let t = ctx.t();
    let title = fill(t.new_connection_title, &[t.channel(channel.as_str())]);
    html! {
        aside.panel aria-labelledby="panel-title" {
            h2 #panel-title { (title) }
            form.stack method="post" action="/console/connections" {
                (csrf(ctx))
                input type="hidden" name="channel" value=(channel.as_str());
                input type="hidden" name="form" value=(form);
                (text_field("name", t.connection_name, "", Some(t.connection_name_hint), error, true))
                div.actions {
                    button.primary type="submit" { (t.save) }
                    a.button.secondary href="/console/connections" { (t.cancel) }
                }
            }
        }
    }
}

/// A labelled text input with its hint and error (tied to it for screen readers).
fn text_field(
    name: &str,
    label: &str,
    value: &str,
    hint: Option<&str>,
    error: Option<&str>,
    autofocus: bool,
) -> Markup {
    let id = format!("f-{name}");
    let described = described_by(&id, hint.is_some(), error.is_some());
    html! {
        div.field.invalid[error.is_some()] {
            label for=(id) { (label) }
            @if let Some(h) = hint { p.hint #{ (id) "-hint" } { (h) } }
            @if let Some(e) = error { p.error #{ (id) "-error" } { (e) } }
            input #(id) type="text" name=(name) value=(value) autofocus[autofocus]
                aria-invalid=[error.map(|_| "true")] aria-describedby=[described.as_deref()];
        }
    }
}

fn described_by(id: &str, hint: bool, error: bool) -> Option<String> {
    let mut parts = Vec::new();
    if hint {
        parts.push(format!("{id}-hint"));
    }
    if error {
        parts.push(format!("{id}-error"));
    }
    (!parts.is_empty()).then(|| parts.join(" "))
}

/// The panel's form.
#[derive(Debug, Deserialize)]
pub struct CreateForm {
    channel: String,
    name: String,
    /// The form's id (a page from before forms had one posts none, and gets a fresh one).
    form: Option<Uuid>,
}

/// POST /console/connections: adds a draft connection and shows its credentials, the key
/// this once.
async fn create(
    State(app): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Form(form): Form<CreateForm>,
) -> Result<Response, PageError> {
    let t = ctx.t();
    let channel: Channel = form.channel.parse().map_err(|_| PageError::BadRequest)?;
    let form_id = form.form.unwrap_or_else(Uuid::new_v4);
    let name = form.name.trim();
    let error = if name.is_empty() {
        Some(t.err_required)
    } else if name.chars().count() > 200 {
        Some(t.err_too_long)
    } else {
        None
    };
    if let Some(error) = error {
        let rows = q::list(&mut *app.db.acquire().await?).await?;
        let last = last_events(&app).await?;
        let add = Some((channel.as_str(), form_id));
        let page = list_page(&ctx, &rows, &last, add, Some(error));
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
    }
    let draft = connections::add_draft(&app.db, app.cache.vault(), name, channel, form_id)
        .await
        .map_err(connection_error)?;
    let added = match draft {
        Draft::Added(added) => added,
        Draft::Existing(c) => {
            // The same form again (a reload after adding): show what it added, not a new one.
            return Ok(Redirect::to(&format!(
                "/console/connections/{}/credentials?again=1",
                c.id
            ))
            .into_response());
        }
    };
    tracing::info!(connection = %added.connection.id, user = %ctx.session.user_id, "connection added in the console");
    let created = fill(t.created_notice, &[&added.connection.name]);
    Ok((
        StatusCode::CREATED,
        credentials_page(
            &app,
            &ctx,
            &added.connection,
            Some(&added.secret),
            &[(Notice::Ok, &created), (Notice::Warn, t.created_next)],
        ),
    )
        .into_response())
}

fn connection_error(e: connections::ConnectionError) -> PageError {
    match e {
        connections::ConnectionError::NotFound(_) => PageError::NotFound,
        connections::ConnectionError::Db(e) => e.into(),
        other => PageError::Internal(other.into()),
    }
}

async fn load(app: &AppState, id: &str) -> Result<ConnectionRow, PageError> {
    let id: Uuid = id.parse().map_err(|_| PageError::NotFound)?;
    q::get(&mut *app.db.acquire().await?, id)
        .await?
        .ok_or(PageError::NotFound)
}

/// GET /console/connections/{id}
async fn open(Path(id): Path<String>) -> Redirect {
    Redirect::to(&format!(
        "/console/connections/{}/configuration",
        super::urlencode(&id)
    ))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Tab {
    Configuration,
    Credentials,
}

/// The head of a connection's page: name, channel, status, the tabs and what the status means.
fn connection_head(ctx: &Ctx, c: &ConnectionRow, tab: Tab) -> Markup {
    let t = ctx.t();
    let tab_link = |which: Tab, path: &str, label: &str| {
        html! {
            li {
                a href={ "/console/connections/" (c.id) "/" (path) }
                    aria-current=[(which == tab).then_some("page")] { (label) }
            }
        }
    };
    html! {
        div.page-head {
            div {
                h1 { (c.name) }
                p.meta { (t.channel(&c.channel)) (t.separator) (status_badge(t, &c.status)) }
            }
            @if c.status != "draft" {
                form method="post" action={ "/console/connections/" (c.id) "/status" } {
                    (csrf(ctx))
                    @if c.status == "active" {
                        input type="hidden" name="enabled" value="false";
                        button.secondary type="submit" { (t.disable) }
                    } @else {
                        input type="hidden" name="enabled" value="true";
                        button.secondary type="submit" { (t.enable) }
                    }
                }
            }
        }
        @match c.status.as_str() {
            "draft" => (notice(Notice::Warn, t.draft_notice)),
            "disabled" => (notice(Notice::Warn, t.disabled_notice)),
            _ => {},
        }
        nav.tabs aria-label=(t.connection_tabs) {
            ul {
                (tab_link(Tab::Configuration, "configuration", t.tab_configuration))
                (tab_link(Tab::Credentials, "credentials", t.tab_credentials))
            }
        }
    }
}

/// What the configuration form holds, as typed.
#[derive(Debug, Default, Deserialize)]
pub struct ConfigForm {
    name: String,
    process_orders_from: String,
    prepaid_account: String,
    #[serde(default)]
    location: String,
    #[serde(default)]
    department: String,
    #[serde(default)]
    max_order_amount: String,
}

impl ConfigForm {
    fn of(c: &ConnectionRow) -> ConfigForm {
        ConfigForm {
            name: c.name.clone(),
            process_orders_from: c.process_orders_from.to_string(),
            prepaid_account: c.prepaid_account.clone(),
            location: c.location.clone().unwrap_or_default(),
            department: c.department.clone().unwrap_or_default(),
            max_order_amount: crate::posting::Money(c.max_order_amount).to_string(),
        }
    }
}

/// The chart and dimensions the configuration chooses from.
struct Choices {
    accounts: Vec<AccountRow>,
    locations: Vec<DimensionRow>,
    departments: Vec<DimensionRow>,
}

async fn choices(app: &AppState, company: Uuid) -> Result<Choices, PageError> {
    let mut db = app.db.acquire().await?;
    Ok(Choices {
        accounts: books_db::accounts(&mut db, company).await?,
        locations: books_db::dimensions(&mut db, Dimension::Location, company).await?,
        departments: books_db::dimensions(&mut db, Dimension::Department, company).await?,
    })
}

type FieldErrors = HashMap<&'static str, &'static str>;

/// GET /console/connections/{id}/configuration
async fn configuration(
    State(app): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Markup, PageError> {
    let c = load(&app, &id).await?;
    let choices = choices(&app, c.company_id).await?;
    let t = ctx.t();
    let message = match q.get("saved").map(String::as_str) {
        Some("activated") => Some((Notice::Ok, t.saved_activated)),
        Some(_) => Some((Notice::Ok, t.saved)),
        None => match q.get("status").map(String::as_str) {
            Some("disabled") => Some((Notice::Ok, t.now_disabled)),
            Some("enabled") => Some((Notice::Ok, t.now_enabled)),
            _ => None,
        },
    };
    Ok(configuration_page(
        &ctx,
        &c,
        &ConfigForm::of(&c),
        &choices,
        &FieldErrors::new(),
        message,
    ))
}

fn configuration_page(
    ctx: &Ctx,
    c: &ConnectionRow,
    form: &ConfigForm,
    choices: &Choices,
    errors: &FieldErrors,
    message: Option<(Notice, &str)>,
) -> Markup {
    let t = ctx.t();
    let err = |field: &str| errors.get(field).copied();
    let body = html! {
        (connection_head(ctx, c, Tab::Configuration))
        @if let Some((kind, text)) = message { (notice(kind, text)) }
        @if !errors.is_empty() { (notice(Notice::Error, t.form_has_errors)) }
        form.stack method="post" action={ "/console/connections/" (c.id) "/configuration" } novalidate {
            (csrf(ctx))
            (text_field("name", t.connection_name, &form.name, None, err("name"), false))
            fieldset {
                legend { (t.invoicing) }
                (date_field("process_orders_from", t.process_orders_from, &form.process_orders_from,
                    t.process_orders_from_hint, err("process_orders_from")))
                (select_field("prepaid_account", t.prepaid_account, Some(t.prepaid_account_hint),
                    &form.prepaid_account, None, t.choose_option,
                    &choices.accounts.iter().map(|a| (a.number.to_string(), format!("{} {}", a.number, a.name))).collect::<Vec<_>>(),
                    err("prepaid_account")))
                (text_field("max_order_amount", t.max_order_amount, &form.max_order_amount,
                    Some(t.max_order_amount_hint), err("max_order_amount"), false))
            }
            fieldset {
                legend { (t.additional_settings) " " (t.optional) }
                (select_field("location", t.location, None, &form.location, Some(t.none_option), t.none_option,
                    &dimension_options(&choices.locations), err("location")))
                (select_field("department", t.department, None, &form.department, Some(t.none_option), t.none_option,
                    &dimension_options(&choices.departments), err("department")))
            }
            div.actions { button.primary type="submit" { (t.save) } }
        }
    };
    page(ctx, Nav::Connections, &c.name, body)
}

fn dimension_options(rows: &[DimensionRow]) -> Vec<(String, String)> {
    rows.iter()
        .map(|d| (d.code.clone(), format!("{} {}", d.code, d.name)))
        .collect()
}

fn date_field(name: &str, label: &str, value: &str, hint: &str, error: Option<&str>) -> Markup {
    let id = format!("f-{name}");
    let described = described_by(&id, true, error.is_some());
    html! {
        div.field.invalid[error.is_some()] {
            label for=(id) { (label) }
            p.hint #{ (id) "-hint" } { (hint) }
            @if let Some(e) = error { p.error #{ (id) "-error" } { (e) } }
            input #(id) type="date" name=(name) value=(value) required
                aria-invalid=[error.map(|_| "true")] aria-describedby=[described.as_deref()];
        }
    }
}

/// A labelled select. `empty` adds a first option with the value "" (none chosen); `placeholder`
/// is shown when the current value is not among the options.
#[allow(clippy::too_many_arguments)]
fn select_field(
    name: &str,
    label: &str,
    hint: Option<&str>,
    value: &str,
    empty: Option<&str>,
    placeholder: &str,
    options: &[(String, String)],
    error: Option<&str>,
) -> Markup {
    let id = format!("f-{name}");
    let described = described_by(&id, hint.is_some(), error.is_some());
    let known = options.iter().any(|(v, _)| v == value);
    html! {
        div.field.invalid[error.is_some()] {
            label for=(id) { (label) }
            @if let Some(h) = hint { p.hint #{ (id) "-hint" } { (h) } }
            @if let Some(e) = error { p.error #{ (id) "-error" } { (e) } }
            select #(id) name=(name)
                aria-invalid=[error.map(|_| "true")] aria-describedby=[described.as_deref()] {
                @if let Some(none) = empty {
                    option value="" selected[value.is_empty()] { (none) }
                } @else if !known {
                    option value="" selected { (placeholder) }
                }
                @for (v, text) in options {
                    option value=(v) selected[v == value] { (text) }
                }
            }
        }
    }
}

/// Checks the form against the books, naming each bad field, all at once.
fn check(t: &Texts, form: &ConfigForm, choices: &Choices) -> FieldErrors {
    let mut errors = FieldErrors::new();
    let name = form.name.trim();
    if name.is_empty() {
        errors.insert("name", t.err_required);
    } else if name.chars().count() > 200 {
        errors.insert("name", t.err_too_long);
    }
    let date = NaiveDate::parse_from_str(form.process_orders_from.trim(), "%Y-%m-%d")
        .ok()
        .filter(|d| (1900..=9999).contains(&d.year()));
    if form.process_orders_from.trim().is_empty() {
        errors.insert("process_orders_from", t.err_required);
    } else if date.is_none() {
        errors.insert("process_orders_from", t.err_date);
    }
    if !choices
        .accounts
        .iter()
        .any(|a| a.number.to_string() == form.prepaid_account.trim())
    {
        errors.insert("prepaid_account", t.err_account);
    }
    // Left empty (a form from before the field existed), the ceiling stays as it is.
    let ceiling = form.max_order_amount.trim();
    if !ceiling.is_empty() && crate::ops::books::parse_ceiling(ceiling).is_err() {
        errors.insert("max_order_amount", t.err_amount);
    }
    for (field, value, rows) in [
        ("location", &form.location, &choices.locations),
        ("department", &form.department, &choices.departments),
    ] {
        let v = value.trim();
        if !v.is_empty() && !rows.iter().any(|d| d.code == v) {
            errors.insert(field, t.err_dimension);
        }
    }
    errors
}

/// The library's field names, for an error it finds after our own check passed (a row
/// removed in between).
fn field_of(field: &str) -> Option<&'static str> {
    [
        "name",
        "process_orders_from",
        "prepaid_account",
        "location",
        "department",
        "max_order_amount",
    ]
    .into_iter()
    .find(|f| *f == field)
}

/// POST /console/connections/{id}/configuration: "Lagre". Saves the settings and activates a
/// draft; errors are shown next to their fields.
async fn save_configuration(
    State(app): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<String>,
    Form(form): Form<ConfigForm>,
) -> Result<Response, PageError> {
    let c = load(&app, &id).await?;
    let choices = choices(&app, c.company_id).await?;
    let t = ctx.t();
    let mut errors = check(t, &form, &choices);
    if errors.is_empty() {
        let input = SettingsIn {
            name: Some(form.name.trim().to_owned()),
            process_orders_from: Some(form.process_orders_from.trim().to_owned()),
            prepaid_account: Some(form.prepaid_account.trim().to_owned()),
            department: Some(form.department.trim().to_owned()),
            location: Some(form.location.trim().to_owned()),
            max_order_amount: Some(form.max_order_amount.trim().to_owned())
                .filter(|s| !s.is_empty()),
        };
        match books::update_connection(&app.db, c.id, &input).await {
            Ok(()) => {
                tracing::info!(connection = %c.id, user = %ctx.session.user_id, "connection configured in the console");
                let saved = if c.status == "draft" {
                    "activated"
                } else {
                    "1"
                };
                return Ok(Redirect::to(&format!(
                    "/console/connections/{}/configuration?saved={saved}",
                    c.id
                ))
                .into_response());
            }
            Err(BooksError::Invalid { field, .. }) => {
                let field = field_of(field).unwrap_or("name");
                errors.insert(
                    field,
                    match field {
                        "process_orders_from" => t.err_date,
                        "prepaid_account" => t.err_account,
                        "location" | "department" => t.err_dimension,
                        _ => t.err_required,
                    },
                );
            }
            Err(BooksError::NotFound(_)) => return Err(PageError::NotFound),
            Err(BooksError::Db(e)) => return Err(e.into()),
            Err(other) => return Err(PageError::Internal(other.into())),
        }
    }
    Ok((
        StatusCode::UNPROCESSABLE_ENTITY,
        configuration_page(&ctx, &c, &form, &choices, &errors, None),
    )
        .into_response())
}

/// GET /console/connections/{id}/credentials; `?again=1` after the form that added it was
/// posted a second time.
async fn credentials(
    State(app): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Markup, PageError> {
    let c = load(&app, &id).await?;
    let t = ctx.t();
    let again = fill(t.added_before, &[&c.name]);
    let messages: &[(Notice, &str)] = if q.contains_key("again") {
        &[(Notice::Warn, &again)]
    } else {
        &[]
    };
    Ok(credentials_page(&app, &ctx, &c, None, messages))
}

fn credentials_page(
    app: &AppState,
    ctx: &Ctx,
    c: &ConnectionRow,
    secret: Option<&Secret>,
    messages: &[(Notice, &str)],
) -> Markup {
    let t = ctx.t();
    let url = webhook_url(&app.settings.public_url, c.id);
    let body = html! {
        (connection_head(ctx, c, Tab::Credentials))
        @for (kind, text) in messages { (notice(*kind, text)) }
        div.stack {
            (copyable(t, "client-id", t.client_id, &c.client_id, None))
            @if let Some(secret) = secret {
                (copyable(t, "client-key", t.client_key, secret.expose(), Some(t.client_key_once)))
            } @else {
                div.field {
                    span.label { (t.client_key) }
                    p.hint { (t.client_key_hidden) }
                }
            }
            (copyable(t, "webhook-url", t.webhook_url, &url, Some(t.webhook_url_hint)))
            form method="post" action={ "/console/connections/" (c.id) "/rotate" } {
                (csrf(ctx))
                p.hint #rotate-hint { (t.rotate_hint) }
                button.secondary type="submit" aria-describedby="rotate-hint" { (t.rotate_key) }
            }
        }
    };
    page(ctx, Nav::Connections, &c.name, body)
}

/// POST /console/connections/{id}/rotate: a new key, shown once; the old one verifies for
/// [`KEEP_OLD_KEY`] more.
async fn rotate(
    State(app): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<String>,
) -> Result<Markup, PageError> {
    let c = load(&app, &id).await?;
    let secret = connections::replace_secret(&app.db, app.cache.vault(), c.id, None, KEEP_OLD_KEY)
        .await
        .map_err(connection_error)?;
    tracing::info!(connection = %c.id, user = %ctx.session.user_id, "key rotated in the console");
    Ok(credentials_page(
        &app,
        &ctx,
        &c,
        Some(&secret),
        &[(Notice::Ok, ctx.t().rotated_notice)],
    ))
}

/// The enable/disable form.
#[derive(Debug, Deserialize)]
pub struct StatusForm {
    enabled: bool,
}

/// POST /console/connections/{id}/status
async fn set_status(
    State(app): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<String>,
    Form(form): Form<StatusForm>,
) -> Result<Redirect, PageError> {
    let c = load(&app, &id).await?;
    if c.status == "draft" {
        // A draft becomes active by saving its configuration, not by a switch.
        return Err(PageError::BadRequest);
    }
    connections::set_enabled(&app.db, c.id, form.enabled)
        .await
        .map_err(connection_error)?;
    tracing::info!(connection = %c.id, enabled = form.enabled, user = %ctx.session.user_id, "connection status set in the console");
    let status = if form.enabled { "enabled" } else { "disabled" };
    Ok(Redirect::to(&format!(
        "/console/connections/{}/configuration?status={status}",
        c.id
    )))
}
