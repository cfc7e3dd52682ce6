//! Rebuilds when a migration changes: `sqlx::migrate!` embeds `migrations/` but does not tell
//! cargo to watch it, so a new migration alone would otherwise ship the old schema.

fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
