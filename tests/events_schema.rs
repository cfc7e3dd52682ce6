//! The published JSON Schema of the native event format (docs/events.schema.json) accepts every
//! sample in tests/fixtures/events/, the samples cover every documented event type, and the
//! schema refuses what the adapter refuses (so the test can fail).
//!
//! Reads only files of this repository, by paths from `CARGO_MANIFEST_DIR`.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use jsonschema::Validator;
use serde_json::{Value, json};

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn read_json(path: &Path) -> Value {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn validator() -> Validator {
    let schema = read_json(&repo("docs/events.schema.json"));
    jsonschema::meta::validate(&schema).expect("the schema is a valid draft 2020-12 schema");
    jsonschema::draft202012::options()
        .should_validate_formats(true)
        .build(&schema)
        .expect("the schema compiles")
}

/// Every `*.json` under tests/fixtures/events/, sorted.
fn samples() -> Vec<PathBuf> {
    let dir = repo("tests/fixtures/events");
    let mut paths: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("a readable directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    paths.sort();
    paths
}

fn errors(validator: &Validator, instance: &Value) -> Vec<String> {
    validator
        .iter_errors(instance)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect()
}

#[test]
fn every_native_sample_is_valid_against_the_published_schema() {
    let validator = validator();
    let samples = samples();
    assert!(!samples.is_empty(), "no samples in tests/fixtures/events");
    for path in &samples {
        let found = errors(&validator, &read_json(path));
        assert!(
            found.is_empty(),
            "{}:\n  {}",
            path.display(),
            found.join("\n  ")
        );
    }
}

#[test]
fn the_samples_cover_every_documented_event_type() {
    let types: BTreeSet<String> = samples()
        .iter()
        .filter_map(|p| read_json(p)["type"].as_str().map(str::to_owned))
        .collect();
    for documented in [
        "order.created",
        "order.updated",
        "order.cancelled",
        "payment.captured",
        "refund.created",
        "product.created",
        "product.updated",
    ] {
        assert!(types.contains(documented), "no sample of {documented}");
    }
}

/// A change to a sample's JSON.
type Edit = fn(&mut Value);

#[test]
fn the_schema_refuses_what_shopbridge_cannot_post() {
    let validator = validator();
    let order = read_json(&repo("tests/fixtures/events/order-created-1001.json"));
    let bad: [(&str, Edit); 7] = [
        ("three decimals", |b| {
            b["data"]["order"]["total"] = json!("726.001")
        }),
        ("amount as a number", |b| {
            b["data"]["order"]["total"] = json!(726)
        }),
        ("zero quantity", |b| {
            b["data"]["order"]["lines"][0]["quantity"] = json!(0)
        }),
        ("unknown line kind", |b| {
            b["data"]["order"]["lines"][0]["kind"] = json!("bundle")
        }),
        ("no total", |b| {
            b["data"]["order"].as_object_mut().unwrap().remove("total");
        }),
        ("unknown type", |b| b["type"] = json!("order.shipped")),
        ("timestamp without offset", |b| {
            b["occurred_at"] = json!("2026-03-02T10:15:00")
        }),
    ];
    for (what, edit) in bad {
        let mut body = order.clone();
        edit(&mut body);
        assert!(
            !validator.is_valid(&body),
            "the schema accepted an order with {what}"
        );
    }
    let payment = read_json(&repo("tests/fixtures/events/payment-captured-1001.json"));
    let mut zero = payment.clone();
    zero["data"]["payment"]["amount"] = json!("0.00");
    assert!(
        !validator.is_valid(&zero),
        "the schema accepted a payment of zero"
    );
}
