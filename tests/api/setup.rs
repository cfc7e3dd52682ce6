//! The test set-up itself: the README's test command on a machine that lacks a tool, and a
//! failed test's leftovers.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use sqlx::PgPool;
use uuid::Uuid;

use crate::helpers::{Options, TestApp, pg_server};

/// A directory with a stand-in `cargo` that records its arguments in `cargo-ran`, removed when
/// dropped. The script under test is then run with it first on `PATH`.
struct FakeCargo(PathBuf);

impl FakeCargo {
    fn new() -> FakeCargo {
        let dir = std::env::temp_dir().join(format!("fake-cargo-{}", Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let script = dir.join("cargo");
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\necho \"$@\" > '{}'\n",
                dir.join("cargo-ran").display()
            ),
        )
        .unwrap();
        Command::new("chmod")
            .arg("+x")
            .arg(&script)
            .status()
            .unwrap();
        FakeCargo(dir)
    }

    /// The arguments `cargo` was run with, if it ran.
    fn ran(&self) -> Option<String> {
        std::fs::read_to_string(self.0.join("cargo-ran")).ok()
    }

    /// Runs `scripts/test.sh` with the stand-in cargo and the tool locations in `tools`.
    fn test_sh(&self, tools: &[(&str, &Path)]) -> std::process::Output {
        let path = format!(
            "{}:{}",
            self.0.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let mut cmd = Command::new("bash");
        cmd.arg(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/test.sh"))
            .env("PATH", path)
            .env("TEST_SH_NO_INSTALL", "1");
        for (var, location) in tools {
            cmd.env(var, location);
        }
        cmd.output().expect("bash runs the script")
    }
}

impl Drop for FakeCargo {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn the_test_command_names_a_missing_browser_in_one_line_before_building_anything() {
    let cargo = FakeCargo::new();
    let nowhere = Path::new("/nonexistent/chromium");
    let out = cargo.test_sh(&[("CHROMIUM", nowhere)]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "it stops: {stderr}");
    assert_eq!(cargo.ran(), None, "nothing was built: {stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| l.contains("missing")).collect();
    assert_eq!(lines.len(), 1, "one line says what is missing: {stderr}");
    assert!(
        lines[0].contains("apt-get install chromium"),
        "and how to install it: {}",
        lines[0]
    );
}

#[test]
fn the_test_command_runs_cargo_test_when_every_tool_is_there() {
    // Stand-ins for the tools: any executable will do, the script only looks for them.
    let cargo = FakeCargo::new();
    let sh = Path::new("/bin/sh");
    let out = cargo.test_sh(&[("CHROMIUM", sh), ("CHROMEDRIVER", sh), ("XMLLINT", sh)]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let ran = cargo.ran().unwrap_or_else(|| panic!("cargo ran: {stderr}"));
    assert!(ran.starts_with("test --locked --all-targets"), "{ran}");
}

#[tokio::test]
async fn a_test_that_panics_leaves_no_database_behind() {
    let name = Arc::new(Mutex::new(None));
    let seen = Arc::clone(&name);
    let failed = tokio::spawn(async move {
        let app = TestApp::spawn_with(Options::receiver()).await;
        *seen.lock().unwrap() = Some(app.db_name().to_owned());
        panic!("a test's assertion fails (on purpose: its database must go all the same)");
    })
    .await;
    assert!(failed.is_err_and(|e| e.is_panic()), "the test panicked");
    let name = name.lock().unwrap().clone().expect("the app had started");
    let admin = PgPool::connect(&format!("{}/postgres", pg_server()))
        .await
        .unwrap();
    let left: i64 = sqlx::query_scalar("select count(*) from pg_database where datname = $1")
        .bind(&name)
        .fetch_one(&admin)
        .await
        .unwrap();
    admin.close().await;
    assert_eq!(left, 0, "database {name} was dropped as the test unwound");
}
