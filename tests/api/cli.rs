//! The operator commands as a script sees them: with `--json`, standard output is one JSON
//! document and nothing else, whatever the command logs (logs go to standard error).

use std::io::Write as _;
use std::process::{Command, Output, Stdio};

use base64::Engine as _;
use chrono::Utc;
use shopbridge::channel::Channel;
use shopbridge::samples;
use uuid::Uuid;

use crate::helpers::{DatabaseGuard, TestApp, pg_server};

/// Runs `shopbridge` with `args` and `--json` against `database`, with `stdin` as its input,
/// at the default log level (so INFO and WARN lines are written, as for a newcomer).
fn shopbridge(app_env: &[(&str, String)], args: &[&str], stdin: Option<&str>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_shopbridge"));
    cmd.args(args)
        .arg("--json")
        .env_remove("RUST_LOG")
        .env_remove("SHOPBRIDGE_MASTER_KEY")
        .env_remove("SHOPBRIDGE_LOG_FORMAT")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in app_env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("shopbridge runs");
    let mut input = child.stdin.take().expect("stdin is piped");
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).expect("stdin written");
    }
    drop(input);
    child.wait_with_output().expect("shopbridge finishes")
}

/// Runs the command and parses its standard output as one JSON document, failing with both
/// streams when it does not parse or the command failed.
fn json_of(app_env: &[(&str, String)], args: &[&str], stdin: Option<&str>) -> serde_json::Value {
    let out = shopbridge(app_env, args, stdin);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "`shopbridge {} --json` failed: {}\nstdout: {stdout}\nstderr: {stderr}",
        args.join(" "),
        out.status
    );
    serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "`shopbridge {} --json` printed more than JSON on stdout ({e}):\n{stdout}\nstderr: {stderr}",
            args.join(" ")
        )
    })
}

#[tokio::test]
async fn connections_add_json_on_a_fresh_database_prints_only_json() {
    // The newcomer's first command: the database does not exist yet, no master key is set, so
    // shopbridge creates the database, gives the default company its chart and warns about
    // the key, all before it prints the new connection.
    let db_name = format!("shopbridge_test_{}", Uuid::new_v4().simple());
    let _guard = DatabaseGuard::new(&db_name);
    let env = [("DATABASE_URL", format!("{}/{db_name}", pg_server()))];
    let out = shopbridge(
        &env,
        &[
            "connections",
            "add",
            "--name",
            "Ny",
            "--channel",
            "nettbutikk",
        ],
        None,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("SHOPBRIDGE_MASTER_KEY"),
        "the master-key warning is on stderr: {stderr}"
    );
    let added: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is JSON alone ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    assert!(
        added["secret"]
            .as_str()
            .is_some_and(|s| s.starts_with("whsec_")),
        "`| jq .secret` finds the secret: {added}"
    );
}

#[tokio::test]
async fn every_json_command_prints_one_json_document_on_stdout() {
    let app = TestApp::spawn().await;
    let key = base64::engine::general_purpose::STANDARD.encode([42u8; 32]);
    let env = [
        ("DATABASE_URL", app.db_url()),
        ("AMQP_URL", crate::helpers::amqp_url()),
        (
            "SHOPBRIDGE_QUEUE_PREFIX",
            app.args().broker.queue_prefix.clone(),
        ),
        ("SHOPBRIDGE_MASTER_KEY", key),
    ];
    let conn = app.add_connection(Channel::Nettbutikk).await;
    let sample = samples::order(Channel::Nettbutikk, "cli-1", Utc::now(), 0);
    app.post_native(&conn, &sample.body)
        .await
        .error_for_status()
        .expect("event accepted");
    let (status, _) = app.wait_for_event(&sample.event_id).await;
    assert_eq!(status, "processed");
    let sample_file = std::env::temp_dir().join(format!("cli-sample-{}.json", Uuid::new_v4()));
    std::fs::write(&sample_file, &sample.body).unwrap();
    let saft_file = std::env::temp_dir().join(format!("cli-saft-{}.xml", Uuid::new_v4()));

    let run = |args: &[&str]| json_of(&env, args, None);
    let added = run(&[
        "connections",
        "add",
        "--name",
        "CLI",
        "--channel",
        "shopify",
    ]);
    let id = added["id"].as_str().expect("connection id").to_owned();
    for args in [
        vec!["connections", "list"],
        vec!["connections", "show", &id],
        vec![
            "connections",
            "set",
            &id,
            "--locked-period-policy",
            "next_open_date",
        ],
        vec!["connections", "disable", &id],
        vec!["connections", "enable", &id],
        vec!["connections", "rotate-secret", &id],
        vec!["events", "list"],
        vec!["events", "show", &sample.event_id],
        vec!["events", "replay", "--status", "failed"],
        vec!["ledger", "vouchers"],
        vec!["ledger", "trial-balance"],
        vec!["ledger", "account", "1500"],
        vec!["periods", "lock", "--month", "2020-01"],
        vec!["periods", "list"],
        vec!["periods", "unlock", "--month", "2020-01"],
        vec!["dlq", "list"],
        vec!["dlq", "replay"],
        vec!["dlq", "purge"],
        vec!["rules", "list"],
        vec!["rules", "test", sample_file.to_str().unwrap()],
        vec!["tokens", "list"],
        vec!["users", "list"],
    ] {
        run(&args);
    }
    let rule = run(&["rules", "add", "--account", "3000", "--sku-prefix", "CLI-"]);
    let rule_id = rule["id"].to_string();
    run(&["rules", "remove", &rule_id]);
    let token = run(&["tokens", "create", "--name", "cli"]);
    run(&["tokens", "revoke", token["id"].as_str().expect("token id")]);
    let password = Some("correct horse battery staple\n");
    json_of(
        &env,
        &["users", "create", "--email", "cli@example.no"],
        password,
    );
    json_of(
        &env,
        &["users", "set-password", "--email", "cli@example.no"],
        password,
    );
    run(&["users", "disable", "--email", "cli@example.no"]);
    run(&["users", "enable", "--email", "cli@example.no"]);
    sqlx::query("update companies set org_number = '999999999' where is_default")
        .execute(&app.db)
        .await
        .unwrap();
    run(&[
        "export",
        "saft",
        "--from",
        "2026-01-01",
        "--to",
        "2026-12-31",
        "-o",
        saft_file.to_str().unwrap(),
    ]);
    std::fs::remove_file(&sample_file).ok();
    std::fs::remove_file(&saft_file).ok();
    app.cleanup().await;
}

#[tokio::test]
async fn dlq_list_before_any_service_declared_the_queues_says_what_to_start() {
    // A fresh broker (here: a prefix no service ever ran with) has no dead-letter queue yet.
    let app = TestApp::spawn_with(crate::helpers::Options::receiver()).await;
    let prefix = format!("never-declared-{}.", Uuid::new_v4().simple());
    let env = [
        ("DATABASE_URL", app.db_url()),
        ("AMQP_URL", crate::helpers::amqp_url()),
        ("SHOPBRIDGE_QUEUE_PREFIX", prefix.clone()),
    ];
    let out = shopbridge(&env, &["dlq", "list"], None);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "it fails: {stderr}");
    assert!(out.stdout.is_empty(), "no result on stdout");
    assert!(
        stderr.contains(&format!(
            "queue `{prefix}shopbridge.dead` does not exist on this broker yet"
        )) && stderr.contains("SHOPBRIDGE_QUEUE_PREFIX"),
        "the error names the queue and what to start: {stderr}"
    );
    app.cleanup().await;
}
