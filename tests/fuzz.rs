//! The fuzz targets of `fuzz/` on the stable toolchain, without libFuzzer: each target gets its
//! seed corpus (`fuzz/corpus/<target>/`), then a bounded number of inputs made by mutating the
//! corpus and by drawing random bytes, from a fixed seed so that a failure repeats.
//!
//! `FUZZ_ITERATIONS` (default 2000 per target) and `FUZZ_SEED` (default 1) change the run; a
//! failing input is written to `target/fuzz-failures/` and named in the panic message.

#[path = "../fuzz/harness.rs"]
mod harness;

use std::path::{Path, PathBuf};

use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn corpus(target: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("seed corpus {}: {e}", dir.display()))
        .map(|entry| entry.expect("corpus entry").path())
        .collect();
    files.sort();
    files
        .iter()
        .map(|f| std::fs::read(f).expect("read corpus file"))
        .collect()
}

/// A corpus entry changed a little: bytes flipped, inserted, removed, or spliced with another.
fn mutate(rng: &mut StdRng, seeds: &[Vec<u8>]) -> Vec<u8> {
    let mut input = seeds[rng.gen_range(0..seeds.len())].clone();
    for _ in 0..rng.gen_range(1..=8) {
        let len = input.len();
        match rng.gen_range(0..6) {
            0 if len > 0 => input[rng.gen_range(0..len)] ^= 1 << rng.gen_range(0..8),
            1 => input.insert(rng.gen_range(0..=len), rng.r#gen()),
            2 if len > 0 => {
                input.remove(rng.gen_range(0..len));
            }
            3 if len > 0 => input.truncate(rng.gen_range(0..len)),
            4 => {
                let other = &seeds[rng.gen_range(0..seeds.len())];
                if !other.is_empty() {
                    let from = rng.gen_range(0..other.len());
                    let at = rng.gen_range(0..=len);
                    let piece = other[from..other.len().min(from + 64)].to_vec();
                    input.splice(at..at, piece);
                }
            }
            // Digits where JSON numbers are: huge amounts, quantities and ids.
            _ if len > 0 => {
                let at = rng.gen_range(0..len);
                let digits = "9".repeat(rng.gen_range(1..40));
                input.splice(at..at, digits.into_bytes());
            }
            _ => {}
        }
    }
    input
}

fn run(target: &str, f: fn(&[u8])) {
    let seeds = corpus(target);
    assert!(!seeds.is_empty(), "the {target} corpus has seeds");
    let iterations = env_number("FUZZ_ITERATIONS", 2000);
    let mut rng = StdRng::seed_from_u64(env_number("FUZZ_SEED", 1));
    let random = |rng: &mut StdRng| {
        let mut bytes = vec![0u8; rng.gen_range(0..2048)];
        rng.fill(&mut bytes[..]);
        bytes
    };
    let inputs = seeds.iter().cloned().chain((0..iterations).map(|i| {
        if i % 4 == 0 {
            random(&mut rng)
        } else {
            mutate(&mut rng, &seeds)
        }
    }));
    for input in inputs {
        let outcome = std::panic::catch_unwind(|| f(&input));
        if outcome.is_err() {
            let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/fuzz-failures");
            std::fs::create_dir_all(&dir).expect("create target/fuzz-failures");
            let file = dir.join(format!("{target}-{:016x}", fxhash(&input)));
            std::fs::write(&file, &input).expect("write the failing input");
            panic!(
                "fuzz target {target} panicked; input saved as {} (replay with \
                 `cargo fuzz run {target} {}` or add it to fuzz/corpus/{target}/)",
                file.display(),
                file.display()
            );
        }
    }
}

fn fxhash(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[test]
fn signature_verification_never_panics_on_arbitrary_headers_and_bodies() {
    run("signature", harness::signature);
}

#[test]
fn channel_adapters_never_panic_and_what_they_parse_posts_balanced() {
    run("channels", harness::channels);
}

#[test]
fn the_posting_engine_balances_or_refuses_any_order_story() {
    run("posting", harness::posting);
}

#[test]
fn every_target_has_a_test_here() {
    let names: Vec<&str> = harness::TARGETS.iter().map(|(n, _)| *n).collect();
    assert_eq!(names, ["signature", "channels", "posting"]);
}
