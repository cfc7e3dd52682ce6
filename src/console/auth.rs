//! Logging in and out, and the language switch.

use std::net::IpAddr;

use axum::Extension;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{AppendHeaders, IntoResponse, Redirect, Response};
use ipnet::Ipv6Net;
use maud::html;
use serde::Deserialize;

use super::i18n::{LANG_COOKIE, Lang, cookie, fill};
use super::layout::{Notice, bare, notice};
use super::{Ctx, Form, PageError, SESSION_COOKIE, local_path, secure_cookies, set_cookie, users};
use crate::db::logins;
use crate::http::AppState;
use crate::http::client::Client;

/// The cookie that carries the login form's CSRF token (double-submit: there is no session
/// yet to keep it in). It stops a third-party page from logging a browser into its own account.
const LOGIN_COOKIE: &str = "sb_login";

/// `?next=` and `?out=` of the login page.
#[derive(Debug, Default, Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
    out: Option<String>,
}

/// The login form.
#[derive(Debug, Deserialize)]
pub struct LoginForm {
    email: String,
    password: String,
    csrf: String,
    next: Option<String>,
}

fn login_form(
    lang: Lang,
    token: &str,
    next: &str,
    email: &str,
    message: Option<(Notice, &str)>,
) -> maud::Markup {
    let t = lang.texts();
    let back = format!("/console/login?next={}", super::urlencode(next));
    bare(
        lang,
        t.login_title,
        &back,
        html! {
            h1 { (t.login_title) }
            @if let Some((kind, text)) = message { (notice(kind, text)) }
            form.stack method="post" action="/console/login" {
                input type="hidden" name="csrf" value=(token);
                input type="hidden" name="next" value=(next);
                div.field {
                    label for="email" { (t.email) }
                    input #email name="email" type="email" autocomplete="username" required
                        autofocus value=(email);
                }
                div.field {
                    label for="password" { (t.password) }
                    input #password name="password" type="password"
                        autocomplete="current-password" required;
                }
                div.actions { button.primary type="submit" { (t.login_button) } }
            }
        },
    )
}

fn login_response(
    app: &AppState,
    status: StatusCode,
    headers: &HeaderMap,
    next: &str,
    email: &str,
    message: Option<(Notice, &str)>,
) -> Response {
    let lang = Lang::negotiate(headers);
    let token = users::random_token();
    let page = login_form(lang, &token, next, email, message);
    (
        status,
        [(
            header::SET_COOKIE,
            set_cookie(LOGIN_COOKIE, &token, Some(3600), secure_cookies(app)),
        )],
        page,
    )
        .into_response()
}

/// GET /console/login
pub async fn login_page(
    State(app): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<LoginQuery>,
) -> Response {
    let next = q.next.as_deref().and_then(local_path).unwrap_or("/console");
    let t = Lang::negotiate(&headers).texts();
    let message = q.out.is_some().then_some((Notice::Ok, t.logged_out));
    login_response(&app, StatusCode::OK, &headers, next, "", message)
}

/// POST /console/login
pub async fn login(
    State(app): State<AppState>,
    Client(client): Client,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Result<Response, PageError> {
    let expected = cookie(&headers, LOGIN_COOKIE).ok_or(PageError::Csrf)?;
    if expected.is_empty() || !super::constant_time_eq(expected.as_bytes(), form.csrf.as_bytes()) {
        return Err(PageError::Csrf);
    }
    let next = form
        .next
        .as_deref()
        .and_then(local_path)
        .unwrap_or("/console");
    let t = Lang::negotiate(&headers).texts();
    let refused = |status, text: &str| {
        login_response(
            &app,
            status,
            &headers,
            next,
            &form.email,
            Some((Notice::Error, text)),
        )
    };
    let email = form.email.trim();
    // No user has an address that long: refused before it reaches the throttle's tables.
    if email.len() > users::MAX_EMAIL_BYTES {
        return Ok(refused(StatusCode::UNAUTHORIZED, t.login_failed));
    }
    // Each attempt is counted before the password is checked, per client and per address, and
    // one that must wait is refused without its password being checked (no hash spent on a
    // guess). Per client, so that guesses at someone's address from elsewhere do not lock its
    // owner out; per address too, with a much higher limit, so that many clients guessing
    // together are still bounded (src/db/logins.rs).
    let client = client_key(client);
    let (client_failures, address_failures) = match logins::claim(&app.db, email, &client).await? {
        logins::Attempt::Wait(wait) => {
            tracing::debug!(email, %client, "Console login throttled.");
            let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            let minutes = seconds.div_ceil(60).to_string();
            let mut response = refused(
                StatusCode::TOO_MANY_REQUESTS,
                &fill(t.login_throttled, &[&minutes]),
            );
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from(seconds));
            return Ok(response);
        }
        logins::Attempt::Go { client, address } => (client, address),
    };
    let user = match users::authenticate(&app.db, email, &form.password).await? {
        users::Login::Ok(user) => user,
        users::Login::Refused { known } => {
            log_refusal(email, known, &client, client_failures, address_failures);
            return Ok(refused(StatusCode::UNAUTHORIZED, t.login_failed));
        }
    };
    logins::forget_client(&app.db, email, &client).await?;
    let (token, _) = users::open_session(&app.db, &user, app.settings.session_ttl).await?;
    tracing::info!(user = %user.id, %client, "console login");
    let secure = secure_cookies(&app);
    // AppendHeaders: two Set-Cookie headers (a plain array would keep only the last).
    Ok((
        AppendHeaders([
            (
                header::SET_COOKIE,
                set_cookie(
                    SESSION_COOKIE,
                    &token,
                    Some(app.settings.session_ttl.as_secs()),
                    secure,
                ),
            ),
            (
                header::SET_COOKIE,
                set_cookie(LOGIN_COOKIE, "", Some(0), secure),
            ),
        ]),
        Redirect::to(next),
    )
        .into_response())
}

/// The throttle's name for a client: its IPv4 address, or the /64 network of its IPv6 address
/// (one household or server usually holds a whole /64, and counting each of its addresses
/// apart would give it 2^64 clients' allowances).
fn client_key(client: Option<IpAddr>) -> String {
    match client {
        Some(IpAddr::V4(ip)) => ip.to_string(),
        Some(IpAddr::V6(ip)) => {
            Ipv6Net::new(ip, 64).map_or_else(|_| ip.to_string(), |net| net.trunc().to_string())
        }
        // Only a router driven without a socket has no peer address.
        None => "unknown".to_owned(),
    }
}

/// POST /console/logout
pub async fn logout(
    State(app): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    if let Some(token) = cookie(&headers, SESSION_COOKIE) {
        users::close_session(&app.db, &token).await?;
    }
    tracing::info!(user = %ctx.session.user_id, "console logout");
    Ok((
        [(
            header::SET_COOKIE,
            set_cookie(SESSION_COOKIE, "", Some(0), secure_cookies(&app)),
        )],
        Redirect::to("/console/login?out=1"),
    )
        .into_response())
}

/// `?back=` of the language switch.
#[derive(Debug, Deserialize)]
pub struct Back {
    back: Option<String>,
}

/// GET /console/lang/{tag}: remembers the choice for a year and goes back. A GET, so that it
/// is a plain link; it changes nothing but a preference of this browser.
pub async fn switch_language(
    State(app): State<AppState>,
    axum::extract::Path(tag): axum::extract::Path<String>,
    Query(q): Query<Back>,
) -> Result<Response, PageError> {
    let lang = Lang::from_tag(&tag).ok_or(PageError::NotFound)?;
    let back = q.back.as_deref().and_then(local_path).unwrap_or("/console");
    Ok((
        [(
            header::SET_COOKIE,
            set_cookie(
                LANG_COOKIE,
                lang.tag(),
                Some(365 * 24 * 3600),
                secure_cookies(&app),
            ),
        )],
        Redirect::to(back),
    )
        .into_response())
}

/// Logs a refused login. The typed address is personal data, and often someone else's: above
/// DEBUG only a digest of it is logged, which an operator can compute for an address to find
/// its lines (docs/console.md), and only when it is a user's address. Text that is no user's
/// address is often a password typed into the wrong field, which must not reach the logs even
/// as a short digest (one could search for it offline).
fn log_refusal(
    email: &str,
    known: bool,
    client: &str,
    client_failures: i32,
    address_failures: i32,
) {
    let address = if known {
        users::address_digest(email)
    } else {
        "(no user's)".to_owned()
    };
    tracing::debug!(email, %address, "Console login refused for this address.");
    if address_failures == logins::PER_ADDRESS.free_failures {
        tracing::warn!(
            %address,
            %client,
            "Console logins with this address wait from now on, from every client: \
             {address_failures} failures in a row."
        );
    } else if client_failures == logins::PER_CLIENT.free_failures {
        tracing::warn!(
            %address,
            %client,
            "Console logins with this address wait from now on, from this client: \
             {client_failures} failures in a row."
        );
    } else {
        tracing::info!(%address, %client, "Console login refused.");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ipv6_client_is_counted_by_its_64_network_and_an_ipv4_one_by_its_address() {
        let ip = |s: &str| Some(s.parse::<IpAddr>().unwrap());
        assert_eq!(client_key(ip("203.0.113.7")), "203.0.113.7");
        assert_eq!(client_key(ip("2001:db8:1:2:aaaa::1")), "2001:db8:1:2::/64");
        assert_eq!(
            client_key(ip("2001:db8:1:2:bbbb::9")),
            client_key(ip("2001:db8:1:2:aaaa::1"))
        );
        assert_ne!(
            client_key(ip("2001:db8:1:3::1")),
            client_key(ip("2001:db8:1:2::1"))
        );
        assert_eq!(client_key(None), "unknown");
    }
}
