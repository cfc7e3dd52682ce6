//! The console in a real browser: headless Chromium driven over WebDriver (chromedriver), the
//! way an operator uses it — log in; add a Nettbutikk connection through the panel; fill in
//! its configuration and read its credentials; save; send a signed event and see it and its
//! voucher; replay a dead letter; switch language. Screenshots of the main pages are written
//! to `$SHOPBRIDGE_SCREENSHOTS` (docs/screenshots when refreshing the docs) or to
//! target/console-screenshots.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`.ci/run` installs them); without them the
//! test fails and says so.

use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use futures_util::FutureExt as _;
use hyper_util::client::legacy::connect::HttpConnector;
use reqwest::StatusCode;
use serde_json::json;
use shopbridge::channel::Channel;
use shopbridge::signature::Secret;
use uuid::Uuid;

use crate::console::{EMAIL, PASSWORD, with_user};
use crate::helpers::{TestApp, eventually};

const ORDER_1001: &[u8] = include_bytes!("../fixtures/events/order-created-1001.json");
/// Where ChromeDriver and Chromium are: `CHROMEDRIVER` and `CHROMIUM`, defaulting to Debian's
/// paths. `scripts/test.sh` checks (and installs) the same before it builds.
fn tool(var: &str, default: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| default.to_owned())
}

/// chromedriver on a free port, killed when dropped.
struct Driver {
    child: Child,
    url: String,
    _profile: TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // A browser whose session was not closed (a failed test) outlives its driver: end it
        // by its profile, which no other browser uses.
        let _ = Command::new("pkill")
            .arg("-f")
            .arg(format!("--user-data-dir={}", self._profile.0.display()))
            .status();
    }
}

/// A directory removed when dropped (Chromium's fresh profile).
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn start_driver() -> Driver {
    let (chromedriver, chromium) = (
        tool("CHROMEDRIVER", "/usr/bin/chromedriver"),
        tool("CHROMIUM", "/usr/bin/chromium"),
    );
    assert!(
        std::path::Path::new(&chromedriver).exists() && std::path::Path::new(&chromium).exists(),
        "the browser tests need Chromium and ChromeDriver at {chromium} and {chromedriver} \
         (Debian/Ubuntu: apt-get install chromium chromium-driver; scripts/test.sh installs \
         them when it runs as root)"
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(&chromedriver)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    let profile = std::env::temp_dir().join(format!("shopbridge-chromium-{}", Uuid::new_v4()));
    std::fs::create_dir_all(&profile).unwrap();
    let driver = Driver {
        child,
        url: format!("http://127.0.0.1:{port}"),
        _profile: TempDir(profile),
    };
    let status = format!("{}/status", driver.url);
    eventually("chromedriver answers", || {
        let status = status.clone();
        async move { reqwest::get(&status).await.is_ok() }
    })
    .await;
    driver
}

async fn browser(driver: &Driver) -> Client {
    let profile = driver._profile.0.display().to_string();
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": tool("CHROMIUM", "/usr/bin/chromium"),
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--disable-quic", "--no-first-run",
                "--window-size=1280,900", "--lang=nb-NO", format!("--user-data-dir={profile}"),
            ],
            // A Norwegian operator's browser: the console answers in bokmål.
            "prefs": { "intl.accept_languages": "nb-NO,nb,en" },
        }),
    );
    ClientBuilder::new(HttpConnector::new())
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("a Chromium session starts")
}

fn screenshot_dir() -> PathBuf {
    let dir = std::env::var_os("SHOPBRIDGE_SCREENSHOTS").map_or_else(
        || PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("console-screenshots"),
        PathBuf::from,
    );
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn screenshot(c: &Client, name: &str) {
    let png = c.screenshot().await.expect("a screenshot");
    assert!(png.starts_with(b"\x89PNG"), "{name} is a PNG");
    std::fs::write(screenshot_dir().join(format!("{name}.png")), png).unwrap();
}

/// The text of the element `css`, once there is one. A page that is still being replaced by
/// the next one may hand out an element that goes stale at once: such reads are retried.
async fn text(c: &Client, css: &str) -> String {
    let mut last = None;
    for _ in 0..50 {
        match c.find(Locator::Css(css)).await {
            Ok(e) => match e.text().await {
                Ok(t) => return t,
                Err(err) => last = Some(err.to_string()),
            },
            Err(err) => last = Some(err.to_string()),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("no element {css}: {last:?}");
}

/// Waits until the element `css` says `expected` (the next page has loaded).
async fn expect_text(c: &Client, css: &str, expected: &str) {
    let mut seen = String::new();
    for _ in 0..50 {
        seen = text(c, css).await;
        if seen == expected {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("{css} says {seen:?}, not {expected:?}");
}

async fn click(c: &Client, css: &str) {
    let mut last = None;
    for _ in 0..50 {
        match c.find(Locator::Css(css)).await {
            Ok(e) => match e.click().await {
                Ok(()) => return,
                Err(err) => last = Some(err.to_string()),
            },
            Err(err) => last = Some(err.to_string()),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("cannot click {css}: {last:?}");
}

async fn click_link(c: &Client, text: &str) {
    c.find(Locator::LinkText(text))
        .await
        .unwrap_or_else(|e| panic!("no link {text:?}: {e}"))
        .click()
        .await
        .unwrap();
}

async fn fill(c: &Client, css: &str, value: &str) {
    let field = c.find(Locator::Css(css)).await.unwrap();
    field.clear().await.unwrap();
    field.send_keys(value).await.unwrap();
}

async fn value(c: &Client, css: &str) -> String {
    c.find(Locator::Css(css))
        .await
        .unwrap()
        .prop("value")
        .await
        .unwrap()
        .unwrap_or_default()
}

fn order(event_id: &str, vat_rate: Option<&str>) -> Vec<u8> {
    let mut v: serde_json::Value = serde_json::from_slice(ORDER_1001).unwrap();
    v["id"] = event_id.into();
    v["data"]["order"]["id"] = format!("o-{event_id}").into();
    v["data"]["order"]["number"] = format!("o-{event_id}").into();
    if let Some(rate) = vat_rate {
        v["data"]["order"]["lines"][1]["vat_rate"] = rate.into();
    }
    v.to_string().into_bytes()
}

#[tokio::test]
async fn an_operator_runs_a_connection_from_the_console_in_chromium() {
    let app = TestApp::spawn().await;
    with_user(&app).await;
    let driver = start_driver().await;
    let c = browser(&driver).await;
    // Close the browser even when an assertion fails, then report the failure.
    let result = AssertUnwindSafe(journey(&app, &c)).catch_unwind().await;
    let _ = c.close().await;
    drop(driver);
    match result {
        Ok(r) => r.unwrap(),
        Err(panic) => std::panic::resume_unwind(panic),
    }
    app.assert_ledger_invariants().await;
    app.cleanup().await;
}

async fn journey(app: &TestApp, c: &Client) -> Result<(), fantoccini::error::CmdError> {
    // Every page needs a login.
    c.goto(&format!("{}/console/events", app.url)).await?;
    assert!(c.current_url().await?.path().ends_with("/console/login"));
    screenshot(c, "login").await;
    fill(c, "#email", EMAIL).await;
    fill(c, "#password", PASSWORD).await;
    click(c, "button[type=submit].primary").await;
    expect_text(c, "h1", "Hendelser").await; // back where the operator was going
    // The first Tab reaches the skip link, with a visible focus ring.
    c.find(Locator::Css("body"))
        .await?
        .send_keys("\u{e004}")
        .await?; // Tab
    let focused = c
        .execute(
            "const e = document.activeElement; \
             return [e.className, getComputedStyle(e).outlineStyle];",
            vec![],
        )
        .await?;
    assert_eq!(
        focused,
        json!(["skip", "solid"]),
        "skip link first, with a focus ring"
    );

    // Tilkoblinger → Legg til ny kobling → Nettbutikk → name → Lagre.
    click_link(c, "Tilkoblinger").await;
    click_link(c, "Legg til ny kobling").await;
    expect_text(c, "aside.panel h2", "Velg salgskanal").await;
    screenshot(c, "add-connection").await;
    click(c, "aside.panel a[href$='add=nettbutikk']").await;
    expect_text(c, "aside.panel h2", "Ny kobling: Nettbutikk").await;
    fill(c, "#f-name", "Min nettbutikk").await;
    screenshot(c, "add-connection-name").await;
    click(c, "aside.panel button[type=submit]").await;

    // Legitimasjon: the key, shown this once, and the webhook URL.
    expect_text(c, "h1", "Min nettbutikk").await;
    let key = value(c, "#client-key").await;
    let url = value(c, "#webhook-url").await;
    assert!(key.starts_with("whsec_"), "a nettbutikk key: {key}");
    assert!(!value(c, "#client-id").await.is_empty());
    let id: Uuid = url.rsplit('/').next().unwrap().parse().unwrap();
    click(c, "button[data-copy='client-key']").await;
    expect_text(c, "button[data-copy='client-key']", "Kopiert").await;
    screenshot(c, "credentials").await;

    // Not active before its configuration is saved.
    let secret = Secret::new(key);
    let post = |event_id: &'static str, vat: Option<&'static str>| {
        let body = order(event_id, vat);
        let secret = &secret;
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
            .status()
        }
    };
    assert_eq!(post("evt_browser_1", None).await, StatusCode::FORBIDDEN);

    // Konfigurasjon: a bad date is shown next to its field; a good one activates.
    click_link(c, "Konfigurasjon").await;
    text(c, "#f-process_orders_from").await; // the tab has loaded
    c.execute(
        "document.getElementById('f-process_orders_from').value = '';",
        vec![],
    )
    .await?;
    click(c, "form.stack button[type=submit]").await;
    expect_text(c, "#f-process_orders_from-error", "Fyll ut dette feltet.").await;
    c.execute(
        "document.getElementById('f-process_orders_from').value = '2026-01-01';",
        vec![],
    )
    .await?;
    click(c, "#f-prepaid_account option[value='1522']").await;
    screenshot(c, "configuration").await;
    click(c, "form.stack button[type=submit]").await;
    expect_text(
        c,
        "p.notice.ok",
        "Konfigurasjonen er lagret, og koblingen er aktiv.",
    )
    .await;

    // A signed event: processed, and its voucher in the console.
    // Once the change notice reaches the receiver's cache (refused probes queue nothing).
    eventually("the activation reaches the receiver", || async {
        post("evt_browser_1", None).await == StatusCode::ACCEPTED
    })
    .await;
    assert_eq!(app.wait_for_event("evt_browser_1").await.0, "processed");
    click_link(c, "Hendelser").await;
    click(c, "a[href^='/console/events/'] code").await;
    expect_text(c, "h1", "Hendelse evt_browser_1").await;
    let vouchers = text(c, "main").await;
    assert!(vouchers.contains("Bilag fra hendelsen") && vouchers.contains("726,00"));
    screenshot(c, "event").await;
    click_link(c, "Hendelser").await;
    expect_text(c, "h1", "Hendelser").await;
    screenshot(c, "events").await;

    // A dead letter: an order at 22 % VAT, which no code has. Fix the books, replay it.
    assert_eq!(
        post("evt_browser_22", Some("22")).await,
        StatusCode::ACCEPTED
    );
    assert_eq!(app.wait_for_event("evt_browser_22").await.0, "failed");
    eventually("the dead letter shows", || async {
        c.goto(&format!("{}/console/dead-letters", app.url))
            .await
            .unwrap();
        text(c, "main").await.contains("evt_browser_22")
    })
    .await;
    assert!(
        text(c, "main tbody").await.contains("22"),
        "the reason is shown"
    );
    screenshot(c, "dead-letters").await;
    app.add_vat_22().await;
    click(c, "main tbody form button[type=submit]").await;
    expect_text(c, "h1", "Resultat av avspillingen").await;
    assert!(
        text(c, "main tbody").await.contains("Postert"),
        "the replayed event is posted"
    );
    assert_eq!(app.wait_for_event("evt_browser_22").await.0, "processed");

    click_link(c, "Bilag").await;
    expect_text(c, "h1", "Bilag").await;
    assert!(text(c, "main tbody").await.contains("Faktura"));
    screenshot(c, "vouchers").await;
    click_link(c, "Saldobalanse").await;
    expect_text(c, "h1", "Saldobalanse").await;
    screenshot(c, "trial-balance").await;

    // Switch language: the same page in English, and it stays English.
    click_link(c, "English").await;
    expect_text(c, "h1", "Trial balance").await;
    click_link(c, "Connections").await;
    expect_text(c, "h1", "Connections").await;
    assert!(text(c, "main tbody").await.contains("Active"));
    screenshot(c, "connections-en").await;
    click_link(c, "Norsk").await;
    expect_text(c, "h1", "Tilkoblinger").await;
    screenshot(c, "connections").await;

    // At 200 % zoom (half the width in CSS pixels) pages reflow: nothing scrolls sideways.
    c.set_window_size(640, 900).await?;
    for path in [
        "/console/connections?add=nettbutikk".to_owned(),
        format!("/console/connections/{id}/configuration"),
        format!("/console/connections/{id}/credentials"),
        "/console/events".to_owned(),
    ] {
        c.goto(&format!("{}{path}", app.url)).await?;
        text(c, "h1").await;
        let fits = c
            .execute(
                "return document.documentElement.scrollWidth <= window.innerWidth;",
                vec![],
            )
            .await?;
        assert_eq!(fits, json!(true), "{path} fits 640 CSS pixels");
    }
    c.set_window_size(1280, 900).await?;

    // Logout ends the session.
    click(c, "header form button[type=submit]").await;
    expect_text(c, "p.notice.ok", "Du er logget ut.").await;
    c.goto(&format!("{}/console/connections", app.url)).await?;
    assert!(c.current_url().await?.path().ends_with("/console/login"));
    Ok(())
}
