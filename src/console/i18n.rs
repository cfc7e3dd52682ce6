//! The console's languages: Norwegian bokmål by default, English by `Accept-Language` or the
//! switch in the header (a cookie).
//!
//! Every word the console shows is a field of [`Texts`], and each language is one catalogue
//! ([`nb::NB`], [`en::EN`]) that must fill every field: a missing translation is a compile
//! error, not a blank on a screen. Templates take their words from a `&Texts` and never hold a
//! literal of their own. A field with `{}` takes arguments through [`fill`].

mod en;
mod nb;

use axum::http::HeaderMap;
use chrono::{DateTime, Utc};

/// The cookie the language switch sets.
pub const LANG_COOKIE: &str = "sb_lang";

/// A language of the console.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lang {
    /// Norwegian bokmål, the default.
    Nb,
    /// English.
    En,
}

impl Lang {
    /// Every language, in the order the switch shows them.
    pub const ALL: [Lang; 2] = [Lang::Nb, Lang::En];

    /// The BCP 47 tag, for `<html lang>` and the cookie.
    #[must_use]
    pub fn tag(self) -> &'static str {
        match self {
            Lang::Nb => "nb",
            Lang::En => "en",
        }
    }

    /// The catalogue.
    #[must_use]
    pub fn texts(self) -> &'static Texts {
        match self {
            Lang::Nb => &nb::NB,
            Lang::En => &en::EN,
        }
    }

    /// Reads a tag: `nb` (or `no`, `nn`, which bokmål serves best) or `en`, with any region.
    #[must_use]
    pub fn from_tag(tag: &str) -> Option<Lang> {
        let primary = tag.trim().split(['-', '_']).next()?.to_ascii_lowercase();
        match primary.as_str() {
            "nb" | "no" | "nn" => Some(Lang::Nb),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

    /// The language of a request: the switch's cookie, else the best `Accept-Language` match,
    /// else bokmål.
    #[must_use]
    pub fn negotiate(headers: &HeaderMap) -> Lang {
        if let Some(lang) = cookie(headers, LANG_COOKIE).and_then(|v| Lang::from_tag(&v)) {
            return lang;
        }
        headers
            .get(axum::http::header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok())
            .and_then(accept_language)
            .unwrap_or(Lang::Nb)
    }
}

/// The supported language with the highest quality in an `Accept-Language` value (RFC 9110
/// §12.5.4); the first listed wins a tie.
fn accept_language(value: &str) -> Option<Lang> {
    let mut best: Option<(Lang, u16)> = None;
    for item in value.split(',') {
        let mut parts = item.split(';');
        let Some(lang) = parts.next().and_then(Lang::from_tag) else {
            continue;
        };
        let q = parts
            .find_map(|p| p.trim().strip_prefix("q="))
            .map_or(1000, parse_quality);
        if q > 0 && best.is_none_or(|(_, b)| q > b) {
            best = Some((lang, q));
        }
    }
    best.map(|(lang, _)| lang)
}

/// A quality value in thousandths; anything unreadable counts as 0 (not acceptable).
fn parse_quality(q: &str) -> u16 {
    let q = q.trim();
    let (whole, frac) = q.split_once('.').unwrap_or((q, ""));
    let whole: u16 = match whole {
        "0" => 0,
        "1" => 1000,
        _ => return 0,
    };
    let digits: String = frac.chars().take(3).collect();
    if !digits.chars().all(|c| c.is_ascii_digit()) {
        return 0;
    }
    let frac: u16 = format!("{digits:0<3}").parse().unwrap_or(0);
    (whole + frac).min(1000)
}

/// The value of cookie `name` in the request's `Cookie` headers.
#[must_use]
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim().to_owned())
}

/// Puts `args` into the `{}` of `template`, in order; extra `{}` stay empty.
#[must_use]
pub fn fill(template: &str, args: &[&str]) -> String {
    let mut out = String::with_capacity(template.len() + 16);
    let mut args = args.iter();
    let mut rest = template;
    while let Some(at) = rest.find("{}") {
        out.push_str(&rest[..at]);
        out.push_str(args.next().copied().unwrap_or(""));
        rest = &rest[at + 2..];
    }
    out.push_str(rest);
    out
}

impl Texts {
    /// An amount in øre as this language writes money: `1 234,50` or `1,234.50`.
    #[must_use]
    pub fn money(&self, ore: i64) -> String {
        let sign = if ore < 0 { "-" } else { "" };
        let abs = ore.unsigned_abs();
        let kroner = (abs / 100).to_string();
        let mut grouped = String::with_capacity(kroner.len() + kroner.len() / 3);
        for (i, c) in kroner.chars().enumerate() {
            if i > 0 && (kroner.len() - i).is_multiple_of(3) {
                grouped.push_str(self.thousands_separator);
            }
            grouped.push(c);
        }
        format!("{sign}{grouped}{}{:02}", self.decimal_separator, abs % 100)
    }

    /// A moment, to the second, in UTC (the time zone is named, so nobody misreads it).
    #[must_use]
    pub fn time(&self, t: DateTime<Utc>) -> String {
        t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
    }

    /// A connection status as operators read it.
    #[must_use]
    pub fn connection_status(&self, status: &str) -> &'static str {
        match status {
            "draft" => self.status_draft,
            "active" => self.status_active,
            "disabled" => self.status_disabled,
            _ => self.unknown,
        }
    }

    /// An event status as operators read it.
    #[must_use]
    pub fn event_status(&self, status: &str) -> &'static str {
        match status {
            "processed" => self.event_processed,
            "skipped" => self.event_skipped,
            "ignored" => self.event_ignored,
            "duplicate" => self.event_duplicate,
            "failed" => self.event_failed,
            "processing" => self.event_processing,
            _ => self.unknown,
        }
    }

    /// A voucher kind as operators read it.
    #[must_use]
    pub fn voucher_kind(&self, kind: &str) -> &'static str {
        match kind {
            "invoice" => self.kind_invoice,
            "credit_note" => self.kind_credit_note,
            "payment" => self.kind_payment,
            "refund_payment" => self.kind_refund_payment,
            _ => self.unknown,
        }
    }

    /// A sales channel's name.
    #[must_use]
    pub fn channel(&self, channel: &str) -> &'static str {
        match channel {
            "nettbutikk" => self.channel_nettbutikk,
            "shopify" => self.channel_shopify,
            "woocommerce" => self.channel_woocommerce,
            "stripe" => self.channel_stripe,
            _ => self.unknown,
        }
    }

    /// What became of a replayed event.
    #[must_use]
    pub fn replay_result(&self, r: crate::ops::ReplayResult) -> &'static str {
        use crate::ops::ReplayResult as R;
        match r {
            R::WouldReplay => self.replay_would,
            R::Republished => self.replay_republished,
            R::Posted => self.replay_posted,
            R::Duplicate => self.replay_duplicate,
            R::Skipped => self.event_skipped,
            R::Ignored => self.event_ignored,
            R::Failed => self.event_failed,
            R::Pending => self.replay_pending,
            R::Untracked => self.replay_untracked,
        }
    }
}

/// Every word of the console, in one language.
#[allow(missing_docs)] // each field is documented by its text in the catalogues
pub struct Texts {
    pub lang_name: &'static str,
    pub decimal_separator: &'static str,
    pub thousands_separator: &'static str,
    pub unknown: &'static str,
    pub product: &'static str,
    pub separator: &'static str,
    pub skip_to_content: &'static str,
    pub main_menu: &'static str,
    pub nav_connections: &'static str,
    pub nav_events: &'static str,
    pub nav_dead_letters: &'static str,
    pub nav_vouchers: &'static str,
    pub nav_trial_balance: &'static str,
    pub signed_in_as: &'static str,
    pub logout: &'static str,
    pub language: &'static str,
    pub switch_language: &'static str,

    pub login_title: &'static str,
    pub email: &'static str,
    pub password: &'static str,
    pub login_button: &'static str,
    pub login_failed: &'static str,
    pub login_throttled: &'static str,
    pub logged_out: &'static str,

    pub error_title: &'static str,
    pub error_not_found: &'static str,
    pub error_csrf: &'static str,
    pub error_internal: &'static str,
    pub error_unavailable: &'static str,
    pub error_bad_request: &'static str,
    pub back_to_start: &'static str,

    pub connections_title: &'static str,
    pub add_connection: &'static str,
    pub choose_channel: &'static str,
    pub channel_nettbutikk: &'static str,
    pub channel_shopify: &'static str,
    pub channel_woocommerce: &'static str,
    pub channel_stripe: &'static str,
    pub col_name: &'static str,
    pub col_channel: &'static str,
    pub col_status: &'static str,
    pub col_last_event: &'static str,
    pub never: &'static str,
    pub no_connections: &'static str,
    pub status_draft: &'static str,
    pub status_active: &'static str,
    pub status_disabled: &'static str,
    pub new_connection_title: &'static str,
    pub connection_name: &'static str,
    pub connection_name_hint: &'static str,
    pub save: &'static str,
    pub cancel: &'static str,

    pub connection_tabs: &'static str,
    pub tab_configuration: &'static str,
    pub tab_credentials: &'static str,
    pub invoicing: &'static str,
    pub process_orders_from: &'static str,
    pub process_orders_from_hint: &'static str,
    pub prepaid_account: &'static str,
    pub prepaid_account_hint: &'static str,
    pub max_order_amount: &'static str,
    pub max_order_amount_hint: &'static str,
    pub additional_settings: &'static str,
    pub optional: &'static str,
    pub location: &'static str,
    pub department: &'static str,
    pub none_option: &'static str,
    pub choose_option: &'static str,
    pub saved_activated: &'static str,
    pub saved: &'static str,
    pub draft_notice: &'static str,
    pub disabled_notice: &'static str,
    pub form_has_errors: &'static str,
    pub err_required: &'static str,
    pub err_date: &'static str,
    pub err_account: &'static str,
    pub err_amount: &'static str,
    pub err_dimension: &'static str,
    pub err_too_long: &'static str,

    pub client_id: &'static str,
    pub client_key: &'static str,
    pub client_key_once: &'static str,
    pub client_key_hidden: &'static str,
    pub webhook_url: &'static str,
    pub webhook_url_hint: &'static str,
    pub copy: &'static str,
    pub copied: &'static str,
    pub rotate_key: &'static str,
    pub rotate_hint: &'static str,
    pub created_notice: &'static str,
    pub created_next: &'static str,
    pub added_before: &'static str,
    pub rotated_notice: &'static str,
    pub disable: &'static str,
    pub enable: &'static str,
    pub now_disabled: &'static str,
    pub now_enabled: &'static str,

    pub events_title: &'static str,
    pub filter: &'static str,
    pub apply_filter: &'static str,
    pub clear_filter: &'static str,
    pub all: &'static str,
    pub col_received: &'static str,
    pub col_topic: &'static str,
    pub col_event_id: &'static str,
    pub col_reason: &'static str,
    pub col_flag: &'static str,
    pub col_connection: &'static str,
    pub event_processed: &'static str,
    pub event_skipped: &'static str,
    pub event_ignored: &'static str,
    pub event_duplicate: &'static str,
    pub event_failed: &'static str,
    pub event_processing: &'static str,
    pub no_events: &'static str,
    pub list_capped: &'static str,
    pub replay: &'static str,
    pub replay_shown: &'static str,
    pub replay_hint: &'static str,
    pub event_title: &'static str,
    pub payload: &'static str,
    pub produced_vouchers: &'static str,
    pub no_vouchers_of_event: &'static str,
    pub deliveries: &'static str,
    pub occurred: &'static str,
    pub last_handled: &'static str,
    pub request_id: &'static str,
    pub replay_report_title: &'static str,
    pub replay_summary: &'static str,
    pub replay_would: &'static str,
    pub replay_republished: &'static str,
    pub replay_posted: &'static str,
    pub replay_duplicate: &'static str,
    pub replay_pending: &'static str,
    pub replay_untracked: &'static str,
    pub replay_nothing: &'static str,
    pub col_result: &'static str,
    pub col_detail: &'static str,

    pub dead_title: &'static str,
    pub dead_intro: &'static str,
    pub dead_in_queue: &'static str,
    pub col_dead_at: &'static str,
    pub no_dead: &'static str,

    pub vouchers_title: &'static str,
    pub col_number: &'static str,
    pub col_date: &'static str,
    pub col_kind: &'static str,
    pub col_description: &'static str,
    pub col_amount: &'static str,
    pub kind_invoice: &'static str,
    pub kind_credit_note: &'static str,
    pub kind_payment: &'static str,
    pub kind_refund_payment: &'static str,
    pub from_date: &'static str,
    pub to_date: &'static str,
    pub no_vouchers: &'static str,
    pub voucher_title: &'static str,
    pub col_account: &'static str,
    pub col_debit: &'static str,
    pub col_credit: &'static str,
    pub col_vat: &'static str,
    pub col_customer: &'static str,
    pub total: &'static str,
    pub order: &'static str,
    pub source_event: &'static str,
    pub reverses: &'static str,
    pub posted_at: &'static str,
    pub idempotency_key: &'static str,
    pub trial_balance_title: &'static str,
    pub col_balance: &'static str,
    pub show: &'static str,
    pub saft_title: &'static str,
    pub saft_hint: &'static str,
    pub saft_download: &'static str,
    pub saft_no_org: &'static str,
    pub saft_failed: &'static str,
    pub period_required: &'static str,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_language_takes_the_best_supported_tag() {
        assert_eq!(accept_language("en-GB,en;q=0.9"), Some(Lang::En));
        assert_eq!(accept_language("de, en;q=0.5, nb;q=0.8"), Some(Lang::Nb));
        assert_eq!(accept_language("nn-NO"), Some(Lang::Nb));
        assert_eq!(accept_language("de, fr;q=0.9"), None);
        assert_eq!(accept_language("en;q=0, nb;q=0.1"), Some(Lang::Nb));
        assert_eq!(accept_language("en;q=garbage"), None);
    }

    #[test]
    fn the_cookie_overrides_accept_language() {
        let mut h = HeaderMap::new();
        h.insert("accept-language", "en".parse().unwrap());
        assert_eq!(Lang::negotiate(&h), Lang::En);
        h.insert("cookie", "a=b; sb_lang=nb".parse().unwrap());
        assert_eq!(Lang::negotiate(&h), Lang::Nb);
        assert_eq!(Lang::negotiate(&HeaderMap::new()), Lang::Nb);
    }

    #[test]
    fn money_is_written_the_way_each_language_writes_it() {
        assert_eq!(
            Lang::Nb.texts().money(123_456_789),
            "1\u{a0}234\u{a0}567,89"
        );
        assert_eq!(Lang::En.texts().money(123_456_789), "1,234,567.89");
        assert_eq!(Lang::Nb.texts().money(-5), "-0,05");
        assert_eq!(Lang::En.texts().money(100_000), "1,000.00");
        assert_eq!(
            Lang::En.texts().money(i64::MIN),
            "-92,233,720,368,547,758.08"
        );
    }

    #[test]
    fn fill_puts_arguments_in_order() {
        assert_eq!(fill("{} of {}", &["1", "2"]), "1 of 2");
        assert_eq!(fill("a {} b {}", &["x"]), "a x b ");
        assert_eq!(fill("none", &["x"]), "none");
    }

    #[test]
    fn every_placeholder_count_matches_between_the_catalogues() {
        // The two catalogues are the same struct, so every field exists in both; what the
        // compiler cannot check is that a translation kept its `{}` arguments.
        let nb = format!("{:?}", fields(Lang::Nb.texts()));
        let en = format!("{:?}", fields(Lang::En.texts()));
        assert_eq!(nb, en, "a translation lost or gained a {{}} placeholder");
    }

    fn fields(t: &Texts) -> Vec<usize> {
        [
            t.signed_in_as,
            t.new_connection_title,
            t.created_notice,
            t.added_before,
            t.login_throttled,
            t.replay_shown,
            t.event_title,
            t.replay_summary,
            t.dead_in_queue,
            t.voucher_title,
            t.error_internal,
            t.list_capped,
        ]
        .iter()
        .map(|s| s.matches("{}").count())
        .collect()
    }
}
