//! The web console over plain HTTP: access control, sessions, CSRF, the draft → active flow of
//! a connection added in the console, and languages. The browser tests (`browser.rs`) drive
//! the same pages in Chromium.

use std::collections::HashMap;

use reqwest::StatusCode;
use reqwest::header::{ACCEPT_LANGUAGE, COOKIE, LOCATION, RETRY_AFTER, SET_COOKIE};
use shopbridge::channel::Channel;
use shopbridge::console::users;
use shopbridge::db::logins;
use shopbridge::signature::Secret;
use uuid::Uuid;

use crate::helpers::TestApp;

const ORDER_1001: &[u8] = include_bytes!("../fixtures/events/order-created-1001.json");
pub const EMAIL: &str = "kari@example.no";
pub const PASSWORD: &str = "correct horse battery";

/// A browser without a browser: keeps the console's cookies, follows no redirect by itself.
pub struct Console {
    http: reqwest::Client,
    base: String,
    cookies: HashMap<String, String>,
    lang: Option<&'static str>,
    /// An `X-Forwarded-For` header sent with every request.
    forwarded_for: Option<String>,
}

impl Console {
    pub fn new(app: &TestApp) -> Console {
        Self::from_address(app, std::net::Ipv4Addr::LOCALHOST.into())
    }

    /// A console client whose requests come from `local` (any 127.x.y.z reaches the app's
    /// 127.0.0.1 on Linux), so that the app sees another client.
    pub fn from_address(app: &TestApp, local: std::net::IpAddr) -> Console {
        Console {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .local_address(local)
                .build()
                .unwrap(),
            base: app.url.clone(),
            cookies: HashMap::new(),
            lang: None,
            forwarded_for: None,
        }
    }

    /// A console client that says, in `X-Forwarded-For`, that it forwards for `hops`.
    pub fn forwarding_for(app: &TestApp, hops: &str) -> Console {
        Console {
            forwarded_for: Some(hops.to_owned()),
            ..Self::new(app)
        }
    }

    fn remember(&mut self, resp: &reqwest::Response) {
        for v in resp.headers().get_all(SET_COOKIE) {
            let v = v.to_str().unwrap();
            let (pair, _) = v.split_once(';').unwrap_or((v, ""));
            let (k, val) = pair.split_once('=').unwrap();
            if v.contains("Max-Age=0") {
                self.cookies.remove(k);
            } else {
                self.cookies.insert(k.to_owned(), val.to_owned());
            }
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let mut r = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header(COOKIE, self.cookie_header());
        if let Some(lang) = self.lang {
            r = r.header(ACCEPT_LANGUAGE, lang);
        }
        if let Some(hops) = &self.forwarded_for {
            r = r.header("x-forwarded-for", hops);
        }
        r
    }

    async fn send(
        &mut self,
        request: reqwest::RequestBuilder,
    ) -> (StatusCode, reqwest::header::HeaderMap, String) {
        let resp = request.send().await.unwrap();
        self.remember(&resp);
        let (status, headers) = (resp.status(), resp.headers().clone());
        (status, headers, resp.text().await.unwrap())
    }

    pub async fn get(&mut self, path: &str) -> (StatusCode, reqwest::header::HeaderMap, String) {
        self.send(self.request(reqwest::Method::GET, path)).await
    }

    pub async fn post(
        &mut self,
        path: &str,
        form: &[(&str, &str)],
    ) -> (StatusCode, reqwest::header::HeaderMap, String) {
        self.send(self.request(reqwest::Method::POST, path).form(form))
            .await
    }

    /// Logs in through the form; returns the answer to the POST.
    pub async fn login(
        &mut self,
        email: &str,
        password: &str,
    ) -> (StatusCode, reqwest::header::HeaderMap, String) {
        let (_, _, page) = self.get("/console/login").await;
        let csrf = input_value(&page, "name=\"csrf\"").expect("login form has a token");
        self.post(
            "/console/login",
            &[
                ("email", email),
                ("password", password),
                ("csrf", &csrf),
                ("next", "/console/connections"),
            ],
        )
        .await
    }

    /// The CSRF token of the signed-in session, read from a page.
    pub async fn csrf(&mut self) -> String {
        let (_, _, page) = self.get("/console/connections").await;
        input_value(&page, "name=\"csrf\"").expect("the page has the session's token")
    }
}

/// The `value` of the first `<input>` that has `marker` among its attributes.
pub fn input_value(html: &str, marker: &str) -> Option<String> {
    let at = html.find(marker)?;
    let start = html[..at].rfind("<input")?;
    let end = start + html[start..].find('>')?;
    let tag = &html[start..end];
    let v = tag.find("value=\"")? + 7;
    let len = tag[v..].find('"')?;
    Some(
        tag[v..v + len]
            .replace("&amp;", "&")
            .replace("&quot;", "\""),
    )
}

pub async fn with_user(app: &TestApp) {
    users::create(&app.db, EMAIL, PASSWORD)
        .await
        .expect("user created");
}

async fn signed_in(app: &TestApp) -> Console {
    with_user(app).await;
    let mut c = Console::new(app);
    let (status, _, _) = c.login(EMAIL, PASSWORD).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "login succeeds");
    c
}

async fn voucher_count(app: &TestApp) -> i64 {
    sqlx::query_scalar("select count(*) from vouchers")
        .fetch_one(&app.db)
        .await
        .unwrap()
}

async fn connection_count(app: &TestApp) -> i64 {
    sqlx::query_scalar("select count(*) from connections")
        .fetch_one(&app.db)
        .await
        .unwrap()
}

#[tokio::test]
async fn every_console_page_sends_a_visitor_without_a_session_to_the_login_page() {
    let app = TestApp::spawn_with(crate::helpers::Options::receiver()).await;
    let mut c = Console::new(&app);
    let id = Uuid::now_v7();
    let pages = [
        "/console".to_owned(),
        "/console/connections".to_owned(),
        "/console/connections?add=nettbutikk".to_owned(),
        format!("/console/connections/{id}/configuration"),
        format!("/console/connections/{id}/credentials"),
        "/console/events?status=failed".to_owned(),
        format!("/console/events/{id}"),
        "/console/dead-letters".to_owned(),
        "/console/vouchers".to_owned(),
        format!("/console/vouchers/{id}"),
        "/console/trial-balance".to_owned(),
        "/console/saft?from=2026-01-01&to=2026-12-31".to_owned(),
    ];
    for path in &pages {
        let (status, headers, _) = c.get(path).await;
        assert_eq!(status, StatusCode::SEE_OTHER, "{path}");
        let to = headers[LOCATION].to_str().unwrap();
        assert!(
            to.starts_with("/console/login?next=/console"),
            "{path} → {to}"
        );
    }
    // A form posted without a session changes nothing.
    let (status, headers, _) = c
        .post(
            "/console/connections",
            &[("channel", "nettbutikk"), ("name", "X"), ("csrf", "x")],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(
        headers[LOCATION]
            .to_str()
            .unwrap()
            .starts_with("/console/login")
    );
    assert_eq!(connection_count(&app).await, 0);
    // The login page itself, and the assets, are public.
    assert_eq!(c.get("/console/login").await.0, StatusCode::OK);
    let (status, headers, css) = c.get("/console/assets/console.css").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/css")
    );
    assert!(css.contains(":focus-visible"));
    app.cleanup().await;
}

#[tokio::test]
async fn login_opens_a_strict_http_only_session_and_logout_ends_it() {
    let app = TestApp::spawn_with(crate::helpers::Options::receiver()).await;
    with_user(&app).await;
    let mut c = Console::new(&app);

    let (status, _, page) = c.login(EMAIL, "wrong password!").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(page.contains("Feil e-post eller passord."), "{page}");
    let (status, _, _) = c.login("nobody@example.no", PASSWORD).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // The login form's own token: a page elsewhere cannot log a browser in.
    let mut stranger = Console::new(&app);
    let (status, _, _) = stranger
        .post(
            "/console/login",
            &[("email", EMAIL), ("password", PASSWORD), ("csrf", "forged")],
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // `next` only ever leads back into the console.
    for next in [
        "//evil.example/",
        "https://evil.example/",
        "/console//evil.example",
    ] {
        let (_, _, page) = c
            .get(&format!(
                "/console/login?next={}",
                shopbridge::console::urlencode(next)
            ))
            .await;
        assert_eq!(
            input_value(&page, "name=\"next\"").unwrap(),
            "/console",
            "{next}"
        );
    }

    // Emails are matched without regard to case.
    let (status, headers, _) = c.login("Kari@Example.NO", PASSWORD).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(headers[LOCATION], "/console/connections");
    let session_cookie = headers
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|v| v.starts_with("sb_session="))
        .expect("a session cookie");
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/console"] {
        assert!(session_cookie.contains(attribute), "{session_cookie}");
    }
    assert!(
        !session_cookie.contains("Secure"),
        "not Secure over plain http"
    );
    let stored: Vec<u8> = sqlx::query_scalar("select token_sha256 from console_sessions")
        .fetch_one(&app.db)
        .await
        .unwrap();
    let token = c.cookies["sb_session"].clone();
    assert_ne!(
        stored,
        token.as_bytes(),
        "only a digest of the token is stored"
    );

    let (status, _, page) = c.get("/console/connections").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains(EMAIL));
    assert!(page.contains("Tilkoblinger"));

    let csrf = c.csrf().await;
    let (status, headers, _) = c.post("/console/logout", &[("csrf", &csrf)]).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(headers[LOCATION], "/console/login?out=1");
    let left: i64 = sqlx::query_scalar("select count(*) from console_sessions")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(left, 0);
    // The old cookie opens nothing.
    c.cookies.insert("sb_session".into(), token);
    assert_eq!(c.get("/console/connections").await.0, StatusCode::SEE_OTHER);

    // A disabled user cannot log in.
    users::disable(&app.db, EMAIL).await.unwrap();
    assert_eq!(c.login(EMAIL, PASSWORD).await.0, StatusCode::UNAUTHORIZED);
    // Enabled again, the same password opens the console.
    users::enable(&app.db, EMAIL).await.unwrap();
    assert_eq!(c.login(EMAIL, PASSWORD).await.0, StatusCode::SEE_OTHER);
    assert!(matches!(
        users::enable(&app.db, "nobody@example.no").await,
        Err(users::UserError::NotFound(_))
    ));
    app.cleanup().await;
}

/// After five failed logins in a row a client waits with that address before the next attempt,
/// told how long, whatever the password; an address nobody has is treated the same; a login
/// after the wait clears the client's count.
#[tokio::test]
async fn repeated_failed_logins_make_the_address_wait_and_a_login_clears_them() {
    let app = TestApp::spawn_with(crate::helpers::Options::receiver()).await;
    with_user(&app).await;
    let mut c = Console::new(&app);
    for _ in 0..logins::PER_CLIENT.free_failures {
        let (status, _, _) = c.login(EMAIL, "wrong password!").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let (status, headers, page) = c.login(EMAIL, PASSWORD).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{page}");
    let retry: u64 = headers[RETRY_AFTER].to_str().unwrap().parse().unwrap();
    assert!(
        (1..=logins::FIRST_WAIT.as_secs()).contains(&retry),
        "Retry-After {retry}"
    );
    assert!(page.contains("For mange mislykkede innlogginger"), "{page}");
    assert!(
        !headers
            .get_all(SET_COOKIE)
            .iter()
            .any(|v| v.to_str().unwrap().starts_with("sb_session=")),
        "no session while it waits"
    );
    // The same address in other letters waits too.
    let (status, _, _) = c.login(&EMAIL.to_uppercase(), PASSWORD).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);

    // A burst sent at once cannot pass the throttle together: each attempt is counted before
    // its password is checked.
    sqlx::query("delete from login_client_failures")
        .execute(&app.db)
        .await
        .unwrap();
    let mut clients = Vec::new();
    for _ in 0..20 {
        let mut client = Console::new(&app);
        let (_, _, page) = client.get("/console/login").await;
        let csrf = input_value(&page, "name=\"csrf\"").unwrap();
        clients.push((client, csrf));
    }
    let burst = clients.iter_mut().map(|(client, csrf)| {
        let form = [
            ("email", EMAIL),
            ("password", "wrong password!"),
            ("csrf", csrf.as_str()),
        ];
        async move { client.post("/console/login", &form).await.0 }
    });
    let statuses = futures_util::future::join_all(burst).await;
    let refused = statuses
        .iter()
        .filter(|s| **s == StatusCode::UNAUTHORIZED)
        .count();
    let waited = statuses
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    let free = usize::try_from(logins::PER_CLIENT.free_failures).unwrap();
    assert_eq!((refused, waited), (free, 20 - free), "{statuses:?}");

    // An address nobody has: the same answers, so the throttle tells nothing about users.
    for _ in 0..logins::PER_CLIENT.free_failures {
        let (status, _, _) = c.login("nobody@example.no", PASSWORD).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let (status, _, _) = c.login("nobody@example.no", PASSWORD).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);

    // Once the wait has passed, the right password logs in and the count is gone.
    sqlx::query(
        "update login_client_failures set last_failure_at = last_failure_at - interval '31 seconds'",
    )
    .execute(&app.db)
    .await
    .unwrap();
    let (status, _, _) = c.login(EMAIL, PASSWORD).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let left: Vec<String> =
        sqlx::query_scalar("select email from login_client_failures order by email")
            .fetch_all(&app.db)
            .await
            .unwrap();
    assert_eq!(left, ["nobody@example.no"]);
    app.cleanup().await;
}

/// Wrong passwords for someone's address from one client make that client wait, not the
/// address's owner on another.
#[tokio::test]
async fn guesses_from_one_client_lock_that_client_out_while_the_owner_still_logs_in() {
    let app = TestApp::spawn_with(crate::helpers::Options::receiver()).await;
    with_user(&app).await;
    let mut attacker = Console::from_address(&app, [127, 0, 0, 2].into());
    for _ in 0..logins::PER_CLIENT.free_failures {
        assert_eq!(
            attacker.login(EMAIL, "wrong password!").await.0,
            StatusCode::UNAUTHORIZED
        );
    }
    let (status, headers, _) = attacker.login(EMAIL, "wrong password!").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(headers.contains_key(RETRY_AFTER));

    let mut owner = Console::new(&app);
    assert_eq!(
        owner.login(EMAIL, PASSWORD).await.0,
        StatusCode::SEE_OTHER,
        "the owner's client has no failures"
    );
    assert_eq!(
        attacker.login(EMAIL, PASSWORD).await.0,
        StatusCode::TOO_MANY_REQUESTS,
        "the owner's login does not let the guessing client in"
    );
    app.cleanup().await;
}

/// Many clients guessing at one address together meet the address's own, much higher limit:
/// then every client waits, even with the right password.
#[tokio::test]
async fn many_clients_guessing_at_one_address_meet_its_own_limit() {
    let app = TestApp::spawn_with(crate::helpers::Options {
        trusted_proxies: "127.0.0.1",
        ..crate::helpers::Options::receiver()
    })
    .await;
    with_user(&app).await;
    // As if clients 198.51.100.1 to .99 had failed once each, a minute ago.
    sqlx::query(
        "insert into login_failures (email, failures, last_failure_at)          values ($1, $2, now() - interval '1 minute')",
    )
    .bind(EMAIL)
    .bind(logins::PER_ADDRESS.free_failures - 1)
    .execute(&app.db)
    .await
    .unwrap();
    let mut last_free = Console::forwarding_for(&app, "198.51.100.100");
    assert_eq!(
        last_free.login(EMAIL, "wrong password!").await.0,
        StatusCode::UNAUTHORIZED,
        "the address's last free failure"
    );
    let mut another = Console::forwarding_for(&app, "198.51.100.101");
    let (status, headers, _) = another.login(EMAIL, PASSWORD).await;
    assert_eq!(
        status,
        StatusCode::TOO_MANY_REQUESTS,
        "a client with no failures of its own waits for the address"
    );
    let retry: u64 = headers[RETRY_AFTER].to_str().unwrap().parse().unwrap();
    assert!(
        (1..=logins::FIRST_WAIT.as_secs()).contains(&retry),
        "Retry-After {retry}"
    );
    app.cleanup().await;
}

/// A correct password is no failure: the owner's own logins never wear down the address's
/// allowance, however often they log in.
#[tokio::test]
async fn an_owner_who_logs_in_often_is_never_throttled_by_their_own_logins() {
    let app = TestApp::spawn_with(crate::helpers::Options::receiver()).await;
    with_user(&app).await;
    // As if other clients had failed just short of the address's limit.
    sqlx::query(
        "insert into login_failures (email, failures, last_failure_at) \
         values ($1, $2, now() - interval '1 minute')",
    )
    .bind(EMAIL)
    .bind(logins::PER_ADDRESS.free_failures - 2)
    .execute(&app.db)
    .await
    .unwrap();
    for n in 1..=4 {
        let mut owner = Console::new(&app);
        assert_eq!(
            owner.login(EMAIL, PASSWORD).await.0,
            StatusCode::SEE_OTHER,
            "the owner's login {n} gets in"
        );
    }
    app.cleanup().await;
}

/// `X-Forwarded-For` names the client only when the peer is a configured trusted proxy;
/// otherwise anyone could be a new client with every request.
#[tokio::test]
async fn the_forwarded_for_header_is_believed_only_from_trusted_proxies() {
    for (trusted, believed) in [("", false), ("10.0.0.0/8", false), ("127.0.0.1", true)] {
        let app = TestApp::spawn_with(crate::helpers::Options {
            trusted_proxies: trusted,
            ..crate::helpers::Options::receiver()
        })
        .await;
        with_user(&app).await;
        let mut statuses = Vec::new();
        for n in 0..=logins::PER_CLIENT.free_failures {
            let mut c = Console::forwarding_for(&app, &format!("198.51.100.{n}"));
            statuses.push(c.login(EMAIL, "wrong password!").await.0);
        }
        let last = *statuses.last().unwrap();
        if believed {
            assert_eq!(
                last,
                StatusCode::UNAUTHORIZED,
                "trusted {trusted:?}: each hop is its own client: {statuses:?}"
            );
        } else {
            assert_eq!(
                last,
                StatusCode::TOO_MANY_REQUESTS,
                "trusted {trusted:?}: the header is ignored, one client: {statuses:?}"
            );
        }
        app.cleanup().await;
    }
}

/// The address typed into a failed login is someone's personal data, often not the typist's:
/// no log line at INFO or above carries it, only its digest.
#[tokio::test]
async fn a_failed_login_logs_a_digest_of_the_address_never_the_address_at_info() {
    let (logs, _guard) = crate::logs::Logs::capture("shopbridge=info");
    let app = TestApp::spawn_with(crate::helpers::Options::receiver()).await;
    with_user(&app).await;
    let mut c = Console::new(&app);
    for _ in 0..=logins::PER_CLIENT.free_failures {
        c.login(EMAIL, "wrong password!").await;
    }
    c.login("Someone.Else@Example.no", "wrong password!").await;
    // The usual slip: the password typed into the address field. Not a user's address, so not
    // even its digest is logged (a short digest of a password can be searched for offline).
    let slip = "Correct-Horse-7";
    Console::new(&app).login(slip, "wrong password!").await;
    let lines = logs.lines();
    let refused: Vec<_> = lines
        .iter()
        .filter(|l| {
            l["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("Console login"))
        })
        .collect();
    assert!(
        refused.len() >= 2,
        "the failures are logged (refused, then the wait): {lines:?}"
    );
    assert!(
        refused
            .iter()
            .any(|l| l["fields"]["address"] == users::address_digest(EMAIL).as_str()),
        "{refused:?}"
    );
    for line in lines
        .iter()
        .filter(|l| l["level"] != "DEBUG" && l["level"] != "TRACE")
    {
        let text = line.to_string().to_lowercase();
        assert!(
            !text.contains("kari@example.no") && !text.contains("someone.else@example.no"),
            "an address in a log line: {line}"
        );
        assert!(
            !text.contains(&users::address_digest(slip))
                && !text.contains(&users::address_digest("Someone.Else@Example.no")),
            "a digest of text that is no user's address in a log line: {line}"
        );
    }
    app.cleanup().await;
}

#[tokio::test]
async fn a_form_without_the_session_csrf_token_changes_nothing() {
    let app = TestApp::spawn_with(crate::helpers::Options::receiver()).await;
    let mut c = signed_in(&app).await;
    let form = |csrf: &'static str| {
        [
            ("channel", "nettbutikk"),
            ("name", "Butikk"),
            ("csrf", csrf),
        ]
    };
    for forged in ["", "forged-token"] {
        let (status, _, page) = c.post("/console/connections", &form(forged)).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert!(page.contains("Skjemaet var utløpt eller ugyldig"), "{page}");
    }
    let (status, _, _) = c
        .post(
            "/console/connections",
            &[("channel", "nettbutikk"), ("name", "Butikk")],
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(connection_count(&app).await, 0);
    let csrf = c.csrf().await;
    let (status, _, _) = c
        .post(
            "/console/connections",
            &[
                ("channel", "nettbutikk"),
                ("name", "Butikk"),
                ("csrf", &csrf),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(connection_count(&app).await, 1);
    app.cleanup().await;
}

#[tokio::test]
async fn a_connection_added_in_the_console_takes_events_once_its_configuration_is_saved() {
    let app = TestApp::spawn().await;
    let mut c = signed_in(&app).await;
    let csrf = c.csrf().await;

    // The panel: channel list, then the name.
    let (_, _, page) = c.get("/console/connections?add=1").await;
    for name in ["Nettbutikk", "Shopify", "WooCommerce", "Stripe"] {
        assert!(page.contains(name), "{name} offered");
    }
    let (status, _, page) = c
        .post(
            "/console/connections",
            &[("channel", "nettbutikk"), ("name", "  "), ("csrf", &csrf)],
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.contains("Fyll ut dette feltet."));
    assert!(page.contains("aria-invalid=\"true\""));
    assert_eq!(connection_count(&app).await, 0);

    let (_, _, panel) = c.get("/console/connections?add=nettbutikk").await;
    let form_id = input_value(&panel, "name=\"form\"").expect("the form carries an id");
    let add = [
        ("channel", "nettbutikk"),
        ("name", "Min nettbutikk"),
        ("form", form_id.as_str()),
        ("csrf", csrf.as_str()),
    ];
    let (status, _, page) = c.post("/console/connections", &add).await;
    assert_eq!(status, StatusCode::CREATED);
    let key = input_value(&page, "id=\"client-key\"").expect("the key is shown once");
    let client_id = input_value(&page, "id=\"client-id\"").unwrap();
    let url = input_value(&page, "id=\"webhook-url\"").unwrap();
    let id: Uuid = url.rsplit('/').next().unwrap().parse().unwrap();
    assert!(url.ends_with(&format!("/webhooks/{id}")));
    let (status, client_id_db): (String, String) =
        sqlx::query_as("select status, client_id from connections where id = $1")
            .bind(id)
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!((status.as_str(), client_id_db), ("draft", client_id));

    // Not shown again.
    let (_, _, page) = c
        .get(&format!("/console/connections/{id}/credentials"))
        .await;
    assert!(input_value(&page, "id=\"client-key\"").is_none());
    assert!(!page.contains(&key));

    // A reload posts the same form again: it leads to the same connection, adds none, and
    // does not show the key again.
    let (status, headers, _) = c.post("/console/connections", &add).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let again = format!("/console/connections/{id}/credentials?again=1");
    assert_eq!(headers[LOCATION], again.as_str());
    assert_eq!(connection_count(&app).await, 1);
    let (_, _, page) = c.get(&again).await;
    assert!(
        page.contains("ble lagt til av det samme skjemaet tidligere"),
        "{page}"
    );
    assert!(!page.contains(&key));
    // A fresh panel is a fresh form.
    let (_, _, panel) = c.get("/console/connections?add=nettbutikk").await;
    assert_ne!(input_value(&panel, "name=\"form\"").unwrap(), form_id);

    // A draft refuses events.
    let secret = Secret::new(key);
    let post = |event_id: &'static str| {
        let mut v: serde_json::Value = serde_json::from_slice(ORDER_1001).unwrap();
        v["id"] = event_id.into();
        let body = v.to_string().into_bytes();
        let (app, secret) = (&app, &secret);
        async move {
            app.post_signed(
                id,
                Channel::Nettbutikk,
                secret,
                event_id,
                "order.created",
                &body,
            )
            .await
        }
    };
    let resp = post("evt_console_draft").await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let (_, problem) = crate::helpers::problem(resp).await;
    assert!(
        problem["type"]
            .as_str()
            .unwrap()
            .ends_with("connection-not-activated"),
        "{problem}"
    );

    // Only saving both invoicing settings activates it: not a rename, not a switch.
    let rename = shopbridge::ops::books::SettingsIn {
        name: Some("Min nettbutikk".into()),
        ..Default::default()
    };
    shopbridge::ops::books::update_connection(&app.db, id, &rename)
        .await
        .unwrap();
    assert!(matches!(
        shopbridge::connections::set_enabled(&app.db, id, true).await,
        Err(shopbridge::connections::ConnectionError::Invalid {
            field: "status",
            ..
        })
    ));
    assert!(
        shopbridge::connections::set_enabled(&app.db, id, false)
            .await
            .is_err()
    );
    assert_eq!(
        post("evt_console_draft").await.status(),
        StatusCode::FORBIDDEN
    );

    // "Lagre" with mistakes: each error next to its field; still a draft.
    let config = format!("/console/connections/{id}/configuration");
    let (status, _, page) = c
        .post(
            &config,
            &[
                ("csrf", &csrf),
                ("name", "Min nettbutikk"),
                ("process_orders_from", "31.12.2025"),
                ("prepaid_account", "9999"),
                ("location", ""),
                ("department", "NOPE"),
                ("max_order_amount", "0"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    for (field, message) in [
        ("process_orders_from", "Skriv en dato som ÅÅÅÅ-MM-DD"),
        ("prepaid_account", "Velg en konto fra kontoplanen."),
        ("department", "Velg en verdi fra listen."),
        ("max_order_amount", "Skriv et beløp over 0"),
    ] {
        let error = format!("id=\"f-{field}-error\"");
        let at = page
            .find(&error)
            .unwrap_or_else(|| panic!("{field} error shown"));
        assert!(
            page[at..].starts_with(&format!("{error}>{message}")),
            "{field}"
        );
        assert!(page.contains(&format!("id=\"f-{field}\"")));
    }
    assert_eq!(
        post("evt_console_draft").await.status(),
        StatusCode::FORBIDDEN
    );

    let (status, headers, _) = c
        .post(
            &config,
            &[
                ("csrf", &csrf),
                ("name", "Min nettbutikk"),
                ("process_orders_from", "2026-01-01"),
                ("prepaid_account", "1522"),
                ("location", ""),
                ("department", ""),
                ("max_order_amount", "2500000.00"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(headers[LOCATION], format!("{config}?saved=activated"));
    let ceiling: i64 = sqlx::query_scalar("select max_order_amount from connections where id = $1")
        .bind(id)
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(ceiling, 250_000_000, "the ceiling is saved in øre");
    let (_, _, page) = c.get(&format!("{config}?saved=activated")).await;
    assert!(page.contains("Konfigurasjonen er lagret, og koblingen er aktiv."));

    // Active (once the change notice reaches the receiver's cache; refused probes queue
    // nothing): the event is accepted, posted, and shown with its voucher.
    crate::helpers::eventually("the activation reaches the receiver", || async {
        post("evt_console_draft").await.status() == StatusCode::ACCEPTED
    })
    .await;
    let (status, _) = app.wait_for_event("evt_console_draft").await;
    assert_eq!(status, "processed");
    let (_, _, list) = c.get("/console/connections").await;
    assert!(list.contains("Min nettbutikk") && list.contains("Aktiv"));
    let (_, _, events) = c.get(&format!("/console/events?connection={id}")).await;
    assert!(events.contains("evt_console_draft") && events.contains("Behandlet"));

    // "Spill av de 1 viste": the shown event again, which posts nothing twice.
    let vouchers_before = voucher_count(&app).await;
    let until = input_value(&events, "name=\"until\"").expect("the list's newest time");
    let limit = input_value(&events, "name=\"limit\"").unwrap();
    assert_eq!(limit, "1");
    let id_text = id.to_string();
    let (status, _, report) = c
        .post(
            "/console/events/replay",
            &[
                ("csrf", &csrf),
                ("connection", &id_text),
                ("status", ""),
                ("topic", ""),
                ("reason", ""),
                ("until", &until),
                ("limit", &limit),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(report.contains("Resultat av avspillingen") && report.contains("evt_console_draft"));
    assert!(report.contains("Allerede postert"), "{report}");
    assert_eq!(voucher_count(&app).await, vouchers_before);
    // A replay form that does not say which events it showed replays nothing.
    for path in ["/console/events/replay", "/console/dead-letters/replay"] {
        let (status, _, _) = c
            .post(path, &[("csrf", &csrf), ("connection", &id_text)])
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}");
    }
    let event_id: Uuid = sqlx::query_scalar("select id from events where source_event_id = $1")
        .bind("evt_console_draft")
        .fetch_one(&app.db)
        .await
        .unwrap();
    let (_, _, detail) = c.get(&format!("/console/events/{event_id}")).await;
    assert!(detail.contains("Bilag fra hendelsen"));
    assert!(detail.contains("1500 "), "the customer line is shown");
    assert!(detail.contains("726,00"), "the invoice total, in Norwegian");
    let (_, _, vouchers) = c.get("/console/vouchers").await;
    assert!(vouchers.contains("Faktura") && vouchers.contains("726,00"));
    let (_, _, balance) = c.get("/console/trial-balance").await;
    let totals = &balance[balance.find("<tfoot>").expect("a totals row")..];
    let cells: Vec<&str> = totals
        .split("<td class=\"num\">")
        .skip(1)
        .map(|c| &c[..c.find('<').unwrap()])
        .collect();
    assert_eq!(cells.len(), 3, "{totals}");
    assert_eq!(cells[0], cells[1], "debits equal credits");
    assert_eq!(cells[2], "0,00");

    // SAF-T: refused with the reason while the company has no organisation number, then a
    // download.
    let saft = "/console/saft?from=2026-01-01&to=2026-12-31";
    let (status, _, page) = c.get(saft).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.contains("organisasjonsnummer"), "{page}");
    let (status, _, _) = c.get("/console/saft?from=2026-12-31&to=2026-01-01").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    sqlx::query("update companies set org_number = '999999999' where is_default")
        .execute(&app.db)
        .await
        .unwrap();
    let (status, headers, xml) = c.get(saft).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        headers["content-disposition"],
        "attachment; filename=\"SAF-T_2026-01-01_2026-12-31.xml\""
    );
    assert!(
        xml.starts_with("<?xml")
            && xml.contains("<AuditFile xmlns=\"urn:StandardAuditFile-Taxation-Financial:NO\">"),
        "{}",
        &xml[..200.min(xml.len())]
    );
    app.assert_ledger_invariants().await;
    app.cleanup().await;
}

#[tokio::test]
async fn the_language_follows_accept_language_and_the_switch() {
    let app = TestApp::spawn_with(crate::helpers::Options::receiver()).await;
    let mut c = Console::new(&app);
    let (_, _, page) = c.get("/console/login").await;
    assert!(page.contains("<html lang=\"nb\">") && page.contains(">Logg inn<"));
    c.lang = Some("en-GB,en;q=0.9,nb;q=0.5");
    let (_, _, page) = c.get("/console/login").await;
    assert!(page.contains("<html lang=\"en\">") && page.contains(">Log in<"));

    // The switch wins over the header, and only sends the browser back inside the console.
    let (status, headers, _) = c.get("/console/lang/nb?back=/console/login").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(headers[LOCATION], "/console/login");
    assert_eq!(c.cookies["sb_lang"], "nb");
    let (_, _, page) = c.get("/console/login").await;
    assert!(page.contains(">Logg inn<"));
    let (_, headers, _) = c.get("/console/lang/en?back=https://evil.example/").await;
    assert_eq!(headers[LOCATION], "/console");
    assert_eq!(c.get("/console/lang/de").await.0, StatusCode::NOT_FOUND);

    // Errors are pages in the chosen language too.
    let (_, _, page) = c.get("/console/assets/nothing.css").await;
    assert!(page.contains("We could not find what you were looking for."));
    app.cleanup().await;
}
