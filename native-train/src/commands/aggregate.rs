//! Several sub-runs of one configuration in one run folder (one per seed, and per dataset fold
//! where the dataset has folds): where each sub-run writes, and the `results.json` that sums them
//! up with the mean and the standard deviation of the test accuracy.
//!
//! The standard deviation is the population one (divisor n, `numpy.std` with its default
//! `ddof=0`), as PETL_AST computes the numbers the paper reports; every summary says so in its
//! `"std"` field ([`STD_CONVENTION`]).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use petl_ast::io::write_atomic;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

/// One sub-run of a run folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubRun {
    /// Dataset fold (`None` for datasets with one fixed split).
    pub fold: Option<usize>,
    /// Seed of initialisation, shuffling and augmentation.
    pub seed: u64,
}

impl SubRun {
    /// Its folder inside the run folder: `seed-S`, or `fold-F/seed-S`.
    pub fn dir(&self) -> PathBuf {
        let seed = PathBuf::from(format!("seed-{}", self.seed));
        match self.fold {
            Some(f) => PathBuf::from(format!("fold-{f}")).join(seed),
            None => seed,
        }
    }
}

/// The `"std"` field of a summary: which standard deviation [`mean_std`] computes.
pub const STD_CONVENTION: &str = "population";

/// Mean and population standard deviation (divisor n, as `numpy.std` by default and as
/// PETL_AST reports; 0 for one value). `(NaN, NaN)` for no values.
pub fn mean_std(values: &[f64]) -> (f64, f64) {
    let n = values.len();
    if n == 0 {
        return (f64::NAN, f64::NAN);
    }
    let mean = values.iter().sum::<f64>() / n as f64;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n as f64;
    (mean, var.sqrt())
}

/// Fields of a sub-run's `results.json` summarised as mean ± std.
const SUMMARISED: [&str; 3] = ["test_accuracy", "test_loss", "best_valid_accuracy"];
/// Fields copied when every sub-run has the same value.
const SHARED: [&str; 4] = ["trainable_params", "train_clips", "test_clips", "epochs"];

/// The summary of `runs` (each sub-run with its `results.json`):
/// `{"test_accuracy": {"mean", "std", "n", "values"}, …, "std": "population",
/// "runs": [{"fold", "seed", "dir", …}]}`.
pub fn summarise(runs: &[(SubRun, Value)]) -> Value {
    let mut out = Map::new();
    for field in SUMMARISED {
        let values: Vec<f64> = runs.iter().filter_map(|(_, r)| r[field].as_f64()).collect();
        if values.is_empty() {
            continue;
        }
        let (mean, std) = mean_std(&values);
        out.insert(
            field.into(),
            json!({"mean": mean, "std": std, "n": values.len(), "values": values}),
        );
    }
    for field in SHARED {
        let first = runs.first().map(|(_, r)| &r[field]);
        if let Some(v) = first.filter(|v| !v.is_null()) {
            if runs.iter().all(|(_, r)| &r[field] == v) {
                out.insert(field.into(), v.clone());
            }
        }
    }
    let list: Vec<Value> = runs
        .iter()
        .map(|(key, r)| {
            let mut entry = json!({"fold": key.fold, "seed": key.seed, "dir": key.dir()});
            for field in SUMMARISED {
                entry[field] = r[field].clone();
            }
            entry
        })
        .collect();
    out.insert("std".into(), STD_CONVENTION.into());
    out.insert("runs".into(), Value::Array(list));
    Value::Object(out)
}

/// Writes `out/results.json` for `runs`, with the `extra` fields (e.g. the dataset) added to
/// the summary, and returns it.
pub fn write(out: &Path, runs: &[(SubRun, Value)], extra: &[(&str, Value)]) -> Result<Value> {
    let mut summary = summarise(runs);
    for (key, value) in extra {
        summary[*key] = value.clone();
    }
    let path = out.join("results.json");
    write_atomic(&path, serde_json::to_string_pretty(&summary)?.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(summary)
}

/// Whether a `results.json` value is a summary of sub-runs (rather than one run's results).
pub fn is_summary(results: &Value) -> bool {
    results["runs"].is_array()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_and_population_std_as_numpys() {
        let (m, s) = mean_std(&[0.5, 0.7, 0.9]);
        assert!((m - 0.7).abs() < 1e-12);
        // np.std([0.5, 0.7, 0.9]) = sqrt(0.08 / 3)
        assert!((s - (0.08f64 / 3.0).sqrt()).abs() < 1e-12);
        let (m, s) = mean_std(&[0.8, 0.9, 1.0]);
        assert!((m - 0.9).abs() < 1e-12);
        assert!((s - (0.02f64 / 3.0).sqrt()).abs() < 1e-12);
        assert_eq!(mean_std(&[0.3]), (0.3, 0.0));
        assert!(mean_std(&[]).0.is_nan());
    }

    #[test]
    fn summary_has_mean_std_and_every_run() {
        let runs = [
            (
                SubRun {
                    fold: None,
                    seed: 3,
                },
                json!({"test_accuracy": 0.5, "test_loss": 1.0, "trainable_params": 10}),
            ),
            (
                SubRun {
                    fold: None,
                    seed: 4,
                },
                json!({"test_accuracy": 0.75, "test_loss": 2.0, "trainable_params": 10}),
            ),
        ];
        let s = summarise(&runs);
        assert!(is_summary(&s));
        assert_eq!(s["test_accuracy"]["mean"], 0.625);
        assert_eq!(s["test_accuracy"]["n"], 2);
        assert_eq!(s["test_accuracy"]["values"], json!([0.5, 0.75]));
        assert!((s["test_accuracy"]["std"].as_f64().unwrap() - 0.125).abs() < 1e-12);
        assert_eq!(s["std"], "population");
        assert_eq!(s["trainable_params"], 10);
        assert_eq!(s["runs"][1]["dir"], "seed-4");
        assert_eq!(s["runs"][1]["seed"], 4);
        assert!(s.get("best_valid_accuracy").is_none());
        let fold = SubRun {
            fold: Some(2),
            seed: 0,
        };
        assert_eq!(fold.dir(), Path::new("fold-2/seed-0"));
    }
}
