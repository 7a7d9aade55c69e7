//! A short fuzz run of every target in the normal test suite, on stable Rust and without
//! libFuzzer: seeded, libFuzzer-style mutations of the committed corpora (bit flips, interesting
//! integers over length fields, insertions, erasures, duplicated ranges, truncation, splices of
//! two inputs) fed to the target bodies of `petl_ast::fuzz`, whose own checks (no panic, errors
//! name the input, bounded allocation, finite output) decide what is a finding.
//!
//! Budget per target: `PETL_FUZZ_SECONDS` (default 30) or `PETL_FUZZ_RUNS` inputs, whichever
//! ends first (default 200 000). The mutation sequence is fixed by `PETL_FUZZ_SEED` (default 0),
//! so a run with a run budget is reproducible. An input that makes a target panic is written to
//! `$CARGO_TARGET_DIR/fuzz-findings/<target>/` (or the system temp dir) and the test fails,
//! naming that file; once fixed it belongs in `fuzz/regressions/<target>/`.
//!
//! The coverage-guided run is `scripts/fuzz.sh` (cargo-fuzz); this one catches regressions in
//! the neighbourhood of the corpus cheaply enough for every CI run.

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::fuzz_inputs;
use petl_ast::fuzz;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Values that break length and offset arithmetic.
const INTERESTING_U32: &[u32] = &[
    0,
    1,
    2,
    0x7f,
    0x80,
    0xff,
    0x100,
    0x7fff,
    0x8000,
    0xffff,
    0x1_0000,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_fffe,
    0xffff_ffff,
];

/// Inputs larger than this are not grown further (the corpora were minimised to ≤ 32 KiB).
const MAX_LEN: usize = 64 * 1024;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The committed corpus and regression inputs of `target`.
fn corpus(target: &str) -> Vec<Vec<u8>> {
    ["corpus", "regressions"]
        .iter()
        .flat_map(|kind| fuzz_inputs(kind, target))
        .map(|p| std::fs::read(p).expect("readable input"))
        .collect()
}

/// One libFuzzer-style mutation of `data` in place; `other` is a second corpus input to splice.
fn mutate(rng: &mut ChaCha8Rng, data: &mut Vec<u8>, other: &[u8]) {
    if data.is_empty() {
        data.push(rng.random());
        return;
    }
    let len = data.len();
    let at = rng.random_range(0..len);
    match rng.random_range(0..9) {
        // Flip one bit.
        0 => data[at] ^= 1 << rng.random_range(0..8),
        // Random byte.
        1 => data[at] = rng.random(),
        // Interesting little-endian u32 (length fields, offsets, counts).
        2 => {
            let v = *INTERESTING_U32.choose(rng).expect("non-empty");
            for (i, b) in v.to_le_bytes().iter().enumerate() {
                if let Some(slot) = data.get_mut(at + i) {
                    *slot = *b;
                }
            }
        }
        // Add or subtract a small amount to a byte (off-by-one in sizes).
        3 => {
            data[at] =
                data[at].wrapping_add(rng.random_range(1..=8) * [1, 255][rng.random_range(0..2)])
        }
        // Insert random bytes.
        4 if len < MAX_LEN => {
            let n = rng.random_range(1..=16);
            let bytes: Vec<u8> = (0..n).map(|_| rng.random()).collect();
            data.splice(at..at, bytes);
        }
        // Erase a range.
        5 => {
            let end = (at + rng.random_range(1..=64)).min(len);
            data.drain(at..end);
        }
        // Duplicate a range.
        6 if len < MAX_LEN => {
            let end = (at + rng.random_range(1..=64)).min(len);
            let chunk = data[at..end].to_vec();
            let to = rng.random_range(0..=data.len());
            data.splice(to..to, chunk);
        }
        // Truncate.
        7 => data.truncate(at),
        // Splice: this input's head with the other's tail.
        _ => {
            if !other.is_empty() {
                let from = rng.random_range(0..other.len());
                data.truncate(at);
                let end = other.len().min(from + MAX_LEN.saturating_sub(at));
                data.extend_from_slice(&other[from..end.max(from)]);
            }
        }
    }
}

fn findings_dir(target: &str) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir)
        .join("fuzz-findings")
        .join(target)
}

/// Fuzzes `target` for its budget; fails naming every input (saved to disk) that panicked.
fn short_run(target: &str) {
    let body = fuzz::target(target).expect("known target");
    let seeds = corpus(target);
    assert!(!seeds.is_empty(), "fuzz/corpus/{target}/ is empty");
    let budget = Duration::from_secs_f64(env_or("PETL_FUZZ_SECONDS", 30.0));
    let max_runs: u64 = env_or("PETL_FUZZ_RUNS", 200_000);
    let seed: u64 = env_or("PETL_FUZZ_SEED", 0);
    // Per-target stream, so targets do not share one sequence.
    let salt = target
        .bytes()
        .fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(b.into()));
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ salt);

    let start = Instant::now();
    let mut runs = 0u64;
    let mut findings = Vec::new();
    while runs < max_runs && start.elapsed() < budget {
        let mut input = seeds.choose(&mut rng).expect("non-empty").clone();
        let other = seeds.choose(&mut rng).expect("non-empty");
        for _ in 0..rng.random_range(1..=4) {
            mutate(&mut rng, &mut input, other);
        }
        runs += 1;
        if std::panic::catch_unwind(|| body(&input)).is_err() {
            let dir = findings_dir(target);
            std::fs::create_dir_all(&dir).expect("findings dir");
            let path = dir.join(format!("run-{seed}-{runs}"));
            std::fs::write(&path, &input).expect("write finding");
            findings.push(path.display().to_string());
            if findings.len() >= 10 {
                break;
            }
        }
    }
    eprintln!(
        "fuzz short run {target}: {runs} inputs in {:.1} s from {} seeds, {} findings",
        start.elapsed().as_secs_f64(),
        seeds.len(),
        findings.len()
    );
    assert!(runs > 0, "{target}: no input ran");
    assert!(
        findings.is_empty(),
        "{target}: inputs that make the target fail (saved):\n{}",
        findings.join("\n")
    );
}

#[test]
fn wav() {
    short_run("wav");
}

#[test]
fn fbank() {
    short_run("fbank");
}

#[test]
fn config() {
    short_run("config");
}

#[test]
fn checkpoint() {
    short_run("checkpoint");
}

#[test]
fn adapter() {
    short_run("adapter");
}

#[test]
fn dataset_lists() {
    short_run("dataset_lists");
}

/// The mutator itself: every mutation keeps inputs bounded and reaches each kind of change.
#[test]
fn mutations_stay_bounded_and_vary() {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let base = vec![7u8; 100];
    let mut lengths = std::collections::BTreeSet::new();
    let mut changed = 0;
    for _ in 0..2000 {
        let mut data = base.clone();
        mutate(&mut rng, &mut data, &[1, 2, 3]);
        assert!(data.len() <= MAX_LEN + 64);
        lengths.insert(data.len());
        changed += usize::from(data != base);
    }
    assert!(lengths.len() > 20, "lengths barely vary: {lengths:?}");
    assert!(
        changed > 1800,
        "only {changed} of 2000 mutations changed the input"
    );
}
