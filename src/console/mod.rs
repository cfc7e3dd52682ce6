//! The web console at `/console`: server-rendered pages for operators, in Norwegian bokmål and
//! English, served by the same process as the webhooks.
//!
//! Pages are [maud] templates (checked at compile time, escaped by default); the little
//! JavaScript there is (copy buttons) is optional, and every action is a plain HTML form, so the
//! console works without scripts and needs no front-end build. Assets are embedded in the
//! binary. Handlers call the same library functions as the CLI and the admin API
//! ([`crate::connections`], [`crate::ops`]).
//!
//! Access: users log in with email and password ([`users`]); the session cookie is HttpOnly,
//! SameSite=Strict, and Secure when the public URL is https. Every state-changing request must
//! carry the session's CSRF token ([`require_csrf`] checks it before any handler runs), and
//! every page but the login page redirects to it without a session.

mod auth;
mod books;
mod connections;
mod events;
pub mod i18n;
mod layout;
pub mod users;

use std::borrow::Cow;

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};

use crate::http::AppState;
use i18n::{Lang, Texts, cookie};
use users::Session;

/// The session cookie.
pub const SESSION_COOKIE: &str = "sb_session";
/// Largest form body read (the biggest form, the configuration, is well under 1 KiB).
const FORM_LIMIT: usize = 64 * 1024;

/// What every signed-in page knows of its request.
#[derive(Clone, Debug)]
pub struct Ctx {
    /// The language of the answer.
    pub lang: Lang,
    /// The signed-in operator.
    pub session: Session,
    /// The request's path and query, for the language switch to come back to.
    pub here: String,
}

impl Ctx {
    /// The catalogue of the answer's language.
    #[must_use]
    pub fn t(&self) -> &'static Texts {
        self.lang.texts()
    }
}

/// The console's routes, nested at `/console` by the caller.
pub fn routes(state: AppState) -> Router<AppState> {
    let signed_in = Router::new()
        .route(
            "/console",
            get(|| async { Redirect::to("/console/connections") }),
        )
        .route(
            "/console/",
            get(|| async { Redirect::to("/console/connections") }),
        )
        .route("/console/logout", post(auth::logout))
        .merge(connections::routes())
        .merge(events::routes())
        .merge(books::routes())
        // Runs second: the session is known by then.
        .route_layer(middleware::from_fn(require_csrf))
        .route_layer(middleware::from_fn_with_state(state, require_session));
    Router::new()
        .route("/console/login", get(auth::login_page).post(auth::login))
        .route("/console/lang/{tag}", get(auth::switch_language))
        .route("/console/assets/{file}", get(asset))
        .merge(signed_in)
        // The app turns axum's body limit off for webhooks (they have their own); console
        // forms are small, and the login form is open to anyone.
        .layer(DefaultBodyLimit::max(FORM_LIMIT))
        .layer(middleware::from_fn(render_errors))
        .layer(middleware::from_fn(security_headers))
}

/// Lets a request through only with a live session, as [`Ctx`]; otherwise sends the browser
/// to the login page, which brings it back here afterwards.
async fn require_session(
    State(app): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let here = request.uri().path_and_query().map_or_else(
        || request.uri().path().to_owned(),
        |p| p.as_str().to_owned(),
    );
    let session = match cookie(request.headers(), SESSION_COOKIE).filter(|t| !t.is_empty()) {
        Some(token) => match users::find_session(&app.db, &token).await {
            Ok(s) => s,
            Err(e) => return PageError::from(e).into_response(),
        },
        None => None,
    };
    let Some(session) = session else {
        let back = if request.method() == Method::GET {
            here
        } else {
            "/console".to_owned()
        };
        let to = format!("/console/login?next={}", urlencode(&back));
        return Redirect::to(&to).into_response();
    };
    // After a form, the language switch goes back to the page the form was on (the POST's own
    // path may not answer a GET).
    let here = if request.method() == Method::GET {
        here
    } else {
        request
            .headers()
            .get(header::REFERER)
            .and_then(|r| r.to_str().ok())
            .and_then(|r| r.find("/console").map(|at| r[at..].to_owned()))
            .filter(|p| local_path(p).is_some())
            .unwrap_or_else(|| "/console".to_owned())
    };
    let lang = Lang::negotiate(request.headers());
    request.extensions_mut().insert(Ctx {
        lang,
        session,
        here,
    });
    next.run(request).await
}

/// Refuses a state-changing request whose form does not carry the session's CSRF token (the
/// synchronizer-token pattern; SameSite=Strict on the cookie is the second line). The form is
/// read here, within [`FORM_LIMIT`], and handed on unchanged.
async fn require_csrf(request: Request, next: Next) -> Response {
    if matches!(*request.method(), Method::GET | Method::HEAD) {
        return next.run(request).await;
    }
    let Some(expected) = request
        .extensions()
        .get::<Ctx>()
        .map(|c| c.session.csrf.clone())
    else {
        return PageError::Csrf.into_response();
    };
    let (parts, body) = request.into_parts();
    let Ok(bytes) = to_bytes(body, FORM_LIMIT).await else {
        return PageError::BadRequest.into_response();
    };
    if !form_token_matches(&bytes, &expected) {
        return PageError::Csrf.into_response();
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

/// True when the urlencoded `form` has a `csrf` field equal to `expected`.
fn form_token_matches(form: &[u8], expected: &str) -> bool {
    serde_urlencoded::from_bytes::<Vec<(String, String)>>(form)
        .ok()
        .and_then(|fields| fields.into_iter().find(|(k, _)| k == "csrf"))
        .is_some_and(|(_, given)| constant_time_eq(given.as_bytes(), expected.as_bytes()))
}

/// Compares without an early exit, so the time taken does not tell how much of a guess was
/// right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A form whose rejections are console error pages, not axum's plain text.
#[derive(axum::extract::FromRequest)]
#[from_request(via(axum::Form), rejection(PageError))]
pub struct Form<T>(pub T);

impl From<axum::extract::rejection::FormRejection> for PageError {
    fn from(e: axum::extract::rejection::FormRejection) -> Self {
        tracing::debug!(error = %e, "console form rejected");
        PageError::BadRequest
    }
}

/// Percent-encodes a string for a query value.
#[must_use]
pub fn urlencode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A path inside the console to come back to, or `None` for anything else (so `next=` and
/// `back=` cannot send a browser to another site).
#[must_use]
pub fn local_path(path: &str) -> Option<&str> {
    (path.starts_with("/console")
        && !path.contains("//")
        && !path.contains('\\')
        && !path.chars().any(char::is_control))
    .then_some(path)
}

/// Headers for every console answer: a strict content security policy (only our own embedded
/// scripts and styles), no framing, no sniffing, and no caching of pages (one shows a key).
async fn security_headers(request: Request, next: Next) -> Response {
    let is_asset = request.uri().path().starts_with("/console/assets/");
    let mut response = next.run(request).await;
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    if !is_asset {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// Why a console page could not be shown. It becomes a page in the request's language
/// ([`render_errors`]), never a bare status.
#[derive(Debug, thiserror::Error)]
pub enum PageError {
    /// 404.
    #[error("not found")]
    NotFound,
    /// 403: the form's CSRF token was missing or wrong.
    #[error("the form's CSRF token is missing or wrong")]
    Csrf,
    /// 400: the request could not be read.
    #[error("bad request")]
    BadRequest,
    /// 503: PostgreSQL or RabbitMQ is down.
    #[error("a dependency is unavailable: {0}")]
    Unavailable(String),
    /// 500: a bug or an unexpected failure; logged.
    #[error(transparent)]
    Internal(anyhow::Error),
}

/// The kind of a [`PageError`], carried in the response to [`render_errors`].
#[derive(Clone, Copy, Debug)]
struct ErrorPage(StatusCode);

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let status = match &self {
            PageError::NotFound => StatusCode::NOT_FOUND,
            PageError::Csrf => StatusCode::FORBIDDEN,
            PageError::BadRequest => StatusCode::BAD_REQUEST,
            PageError::Unavailable(why) => {
                tracing::warn!(why, "console page unavailable");
                StatusCode::SERVICE_UNAVAILABLE
            }
            PageError::Internal(e) => {
                tracing::error!(error = format!("{e:#}"), "console page failed");
                StatusCode::INTERNAL_SERVER_ERROR
            }
        };
        let mut response = status.into_response();
        response.extensions_mut().insert(ErrorPage(status));
        response
    }
}

impl From<sqlx::Error> for PageError {
    fn from(e: sqlx::Error) -> Self {
        match crate::db::Failure::of_sqlx(&e) {
            // An outage, or a conflict that a second try should pass: 503, try again.
            crate::db::Failure::Unavailable | crate::db::Failure::Conflict => {
                PageError::Unavailable(format!("{e:#}"))
            }
            crate::db::Failure::Refused | crate::db::Failure::Unknown => {
                PageError::Internal(e.into())
            }
        }
    }
}

impl From<users::UserError> for PageError {
    fn from(e: users::UserError) -> Self {
        match e {
            users::UserError::Db(e) => e.into(),
            other => PageError::Internal(other.into()),
        }
    }
}

impl From<crate::ops::OpsError> for PageError {
    fn from(e: crate::ops::OpsError) -> Self {
        match e {
            crate::ops::OpsError::Db(e) => e.into(),
            other => PageError::Unavailable(other.to_string()),
        }
    }
}

/// Turns a [`PageError`]'s bare status into a page in the request's language.
async fn render_errors(request: Request, next: Next) -> Response {
    let lang = Lang::negotiate(request.headers());
    let request_id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_owned();
    let response = next.run(request).await;
    let Some(ErrorPage(status)) = response.extensions().get::<ErrorPage>().copied() else {
        return response;
    };
    let t = lang.texts();
    let message: Cow<'static, str> = match status {
        StatusCode::NOT_FOUND => t.error_not_found.into(),
        StatusCode::FORBIDDEN => t.error_csrf.into(),
        StatusCode::BAD_REQUEST => t.error_bad_request.into(),
        StatusCode::SERVICE_UNAVAILABLE => t.error_unavailable.into(),
        _ => i18n::fill(t.error_internal, &[&request_id]).into(),
    };
    (status, layout::error_page(lang, &message)).into_response()
}

/// The embedded stylesheet and script.
async fn asset(axum::extract::Path(file): axum::extract::Path<String>) -> Response {
    let (body, kind) = match file.as_str() {
        "console.css" => (
            include_str!("assets/console.css"),
            "text/css; charset=utf-8",
        ),
        "console.js" => (
            include_str!("assets/console.js"),
            "text/javascript; charset=utf-8",
        ),
        _ => return PageError::NotFound.into_response(),
    };
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        body,
    )
        .into_response()
}

/// A `Set-Cookie` value for a console cookie: HttpOnly, SameSite=Strict, scoped to the console,
/// Secure when `secure`. `max_age` 0 deletes it.
#[must_use]
pub fn set_cookie(name: &str, value: &str, max_age: Option<u64>, secure: bool) -> String {
    let mut c = format!("{name}={value}; Path=/console; HttpOnly; SameSite=Strict");
    if let Some(age) = max_age {
        c.push_str(&format!("; Max-Age={age}"));
    }
    if secure {
        c.push_str("; Secure");
    }
    c
}

/// Whether cookies must be Secure: the service is reached over https.
#[must_use]
pub fn secure_cookies(app: &AppState) -> bool {
    app.settings.public_url.starts_with("https://")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_form_token_must_match_exactly() {
        assert!(form_token_matches(b"name=x&csrf=abc", "abc"));
        assert!(!form_token_matches(b"name=x&csrf=abd", "abc"));
        assert!(!form_token_matches(b"name=x&csrf=ab", "abc"));
        assert!(!form_token_matches(b"name=x", "abc"));
        assert!(!form_token_matches(b"\xff\xfe", "abc"));
    }

    #[test]
    fn only_console_paths_are_followed_back() {
        assert_eq!(
            local_path("/console/events?x=1"),
            Some("/console/events?x=1")
        );
        for bad in [
            "https://evil.example",
            "//evil.example",
            "/console//x",
            "/webhooks",
            "/console\\x",
        ] {
            assert_eq!(local_path(bad), None, "{bad}");
        }
    }

    #[test]
    fn cookies_are_strict_and_secure_over_tls() {
        let c = set_cookie("sb_session", "t", None, false);
        assert_eq!(c, "sb_session=t; Path=/console; HttpOnly; SameSite=Strict");
        assert!(set_cookie("a", "b", Some(0), true).ends_with("Max-Age=0; Secure"));
    }
}
