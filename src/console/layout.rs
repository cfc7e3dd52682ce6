//! The frame every console page shares: head, skip link, navigation, language switch, logout.

use maud::{DOCTYPE, Markup, html};

use super::i18n::{Lang, Texts, fill};
use super::{Ctx, urlencode};

/// The section of the navigation a page belongs to.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    /// Tilkoblinger.
    Connections,
    /// Hendelser.
    Events,
    /// Feilkø.
    DeadLetters,
    /// Bilag.
    Vouchers,
    /// Saldobalanse.
    TrialBalance,
}

fn head(lang: Lang, title: &str) -> Markup {
    let t = lang.texts();
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            title { (title) (t.separator) (t.product) }
            link rel="stylesheet" href="/console/assets/console.css";
            script src="/console/assets/console.js" defer {}
        }
    }
}

fn language_switch(lang: Lang, back: &str) -> Markup {
    let t = lang.texts();
    html! {
        nav.lang aria-label=(t.switch_language) {
            ul {
                @for other in Lang::ALL {
                    li {
                        @if other == lang {
                            span aria-current="true" lang=(other.tag()) { (other.texts().lang_name) }
                        } @else {
                            a href={ "/console/lang/" (other.tag()) "?back=" (urlencode(back)) }
                                lang=(other.tag()) hreflang=(other.tag()) { (other.texts().lang_name) }
                        }
                    }
                }
            }
        }
    }
}

/// A signed-in page.
#[allow(clippy::needless_pass_by_value)] // callers build the body in the call
pub fn page(ctx: &Ctx, active: Nav, title: &str, body: Markup) -> Markup {
    let t = ctx.t();
    let item = |nav: Nav, href: &str, label: &str| {
        html! {
            li {
                a href=(href) aria-current=[(nav == active).then_some("page")] { (label) }
            }
        }
    };
    html! {
        (DOCTYPE)
        html lang=(ctx.lang.tag()) {
            (head(ctx.lang, title))
            body {
                a.skip href="#main" { (t.skip_to_content) }
                header.top {
                    a.brand href="/console/connections" { (t.product) }
                    nav.main aria-label=(t.main_menu) {
                        ul {
                            (item(Nav::Connections, "/console/connections", t.nav_connections))
                            (item(Nav::Events, "/console/events", t.nav_events))
                            (item(Nav::DeadLetters, "/console/dead-letters", t.nav_dead_letters))
                            (item(Nav::Vouchers, "/console/vouchers", t.nav_vouchers))
                            (item(Nav::TrialBalance, "/console/trial-balance", t.nav_trial_balance))
                        }
                    }
                    div.account {
                        (language_switch(ctx.lang, &ctx.here))
                        span.who { (fill(t.signed_in_as, &[&ctx.session.email])) }
                        form method="post" action="/console/logout" {
                            (csrf(ctx))
                            button.link type="submit" { (t.logout) }
                        }
                    }
                }
                main #main tabindex="-1" { (body) }
            }
        }
    }
}

/// A page without a session: the login page and errors.
#[allow(clippy::needless_pass_by_value)] // callers build the body in the call
pub fn bare(lang: Lang, title: &str, back: &str, body: Markup) -> Markup {
    let t = lang.texts();
    html! {
        (DOCTYPE)
        html lang=(lang.tag()) {
            (head(lang, title))
            body {
                a.skip href="#main" { (t.skip_to_content) }
                header.top {
                    a.brand href="/console" { (t.product) }
                    div.account { (language_switch(lang, back)) }
                }
                main #main.narrow tabindex="-1" { (body) }
            }
        }
    }
}

/// The page a [`super::PageError`] becomes.
pub fn error_page(lang: Lang, message: &str) -> Markup {
    let t = lang.texts();
    bare(
        lang,
        t.error_title,
        "/console",
        html! {
            h1 { (t.error_title) }
            p.notice.error role="alert" { (message) }
            p { a href="/console/connections" { (t.back_to_start) } }
        },
    )
}

/// The hidden field that carries the session's CSRF token.
pub fn csrf(ctx: &Ctx) -> Markup {
    html! { input type="hidden" name="csrf" value=(ctx.session.csrf); }
}

/// A message at the top of a page; errors are announced to screen readers at once.
pub fn notice(kind: Notice, text: &str) -> Markup {
    match kind {
        Notice::Ok => html! { p.notice.ok role="status" { (text) } },
        Notice::Warn => html! { p.notice.warn role="status" { (text) } },
        Notice::Error => html! { p.notice.error role="alert" { (text) } },
    }
}

/// How a [`notice`] looks.
#[derive(Clone, Copy)]
pub enum Notice {
    /// Something worked.
    Ok,
    /// Something needs attention.
    Warn,
    /// Something failed.
    Error,
}

/// A read-only value with a copy button (the button needs the script; the value can always be
/// selected by hand).
pub fn copyable(t: &Texts, id: &str, label: &str, value: &str, hint: Option<&str>) -> Markup {
    let hint_id = format!("{id}-hint");
    html! {
        div.field {
            label for=(id) { (label) }
            div.copy-row {
                input #(id) type="text" readonly value=(value) spellcheck="false"
                    aria-describedby=[hint.map(|_| hint_id.as_str())];
                button.secondary type="button" data-copy=(id) data-copied=(t.copied) { (t.copy) }
                span.visually-hidden role="status" {}
            }
            @if let Some(h) = hint { p.hint #(hint_id) { (h) } }
        }
    }
}

/// A status badge.
pub fn badge(kind: &str, text: &str) -> Markup {
    html! { span class={ "badge " (kind) } { (text) } }
}
