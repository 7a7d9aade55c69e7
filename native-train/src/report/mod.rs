//! Reading `train` run folders and summing them up: a Table-I-style markdown table (method ×
//! dataset, mean ± std test accuracy over folds × seeds, trainable parameters) and the figures of
//! [`plots`].

pub mod plots;
pub mod tsne;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use petl_ast::data::DatasetKind;
use serde_json::Value;

use crate::commands::aggregate::{self, mean_std};
use crate::commands::train::{EMBEDDINGS_FILE, PREDICTIONS_FILE};

/// Test-set predictions of a run.
#[derive(Debug, Clone, PartialEq)]
pub struct Predictions {
    /// Class names.
    pub labels: Vec<String>,
    /// True class per clip.
    pub targets: Vec<usize>,
    /// Predicted class per clip.
    pub predicted: Vec<usize>,
}

impl Predictions {
    /// `counts[true][predicted]`.
    pub fn confusion(&self) -> Vec<Vec<usize>> {
        let k = self.labels.len();
        let mut counts = vec![vec![0; k]; k];
        for (&t, &p) in self.targets.iter().zip(&self.predicted) {
            if t < k && p < k {
                counts[t][p] += 1;
            }
        }
        counts
    }
}

/// One finished training run (a leaf folder with `config.json` and `results.json`).
#[derive(Debug, Clone)]
pub struct Run {
    /// Short unique name (from the folder path), used for its figure folder.
    pub id: String,
    /// The folder.
    pub dir: PathBuf,
    /// Method label (e.g. "Pfeiffer-par RR=64", "LoRA RR=128", "DPT-25").
    pub method: String,
    /// Dataset label (e.g. "FSDD theo,yweweler K=8").
    pub dataset: String,
    /// Dataset fold, when the run says.
    pub fold: Option<u64>,
    /// Seed.
    pub seed: Option<u64>,
    /// Trainable parameters.
    pub trainable: Option<u64>,
    /// Test accuracy (fraction).
    pub test_accuracy: f64,
    /// Best validation accuracy (fraction).
    pub best_valid: Option<f64>,
    /// Lines of `metrics.jsonl`.
    pub metrics: Vec<Value>,
    /// `predictions.json`, when present.
    pub predictions: Option<Predictions>,
    /// `embeddings.npy` as (values, rows, columns), when present.
    pub embeddings: Option<(Vec<f32>, usize, usize)>,
}

fn read_json(path: &Path) -> Result<Value> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("cannot parse {}", path.display()))
}

/// The method label of a `config.json` `method` entry (the CLI flags).
pub fn method_label(m: &Value) -> String {
    let s = |k: &str| m[k].as_str().unwrap_or("").to_string();
    let u = |k: &str| m[k].as_u64().unwrap_or(0);
    let mut label = match s("method").as_str() {
        "adapter" => {
            let mode = if s("seq_or_par") == "sequential" {
                "seq"
            } else {
                "par"
            };
            let block = match s("adapter_block").as_str() {
                "convpass" => "Convpass ",
                "conformer" => "Conformer ",
                _ => "",
            };
            let place = if m["is_adapter_ablation"].as_bool() == Some(true) {
                format!(" {} {}", s("location"), s("befafter"))
            } else {
                String::new()
            };
            format!(
                "{block}{}-{mode}{place} RR={}",
                s("adapter_type"),
                u("reduction_rate")
            )
        }
        "LoRA" => format!("LoRA RR={}", u("reduction_rate_lora")),
        "prompt-tuning" => {
            let kind = if m["deep"].as_bool() == Some(true) {
                "DPT"
            } else {
                "SPT"
            };
            format!("{kind}-{}", u("prompt_len"))
        }
        "prefix-tuning" => format!("Prefix-{}", u("prompt_len")),
        "MoA" | "soft-MoA" => format!("{} ×{} {}", s("method"), u("num_adapters"), s("location")),
        "" => "?".to_string(),
        other => other.to_string(),
    };
    if m["with_lora"].as_bool() == Some(true) {
        label.push_str(" +LoRA");
    }
    if m["with_deep_prompts"].as_bool() == Some(true) {
        label.push_str(" +DPT");
    }
    if m["paper_compat"].as_bool() == Some(true) {
        label.push_str(" (paper-compat)");
    }
    label
}

/// The dataset label of a `config.json`: layout (ESC-50, UrbanSound8K, … by the protocol's
/// name), speakers or folder, few-shot K. The folds of a dataset share its label.
pub fn dataset_label(c: &Value) -> String {
    let mut label = match c["dataset"].as_str().unwrap_or("?") {
        "Fsdd" => {
            let speakers: Vec<&str> = c["speakers"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            if speakers.is_empty() {
                "FSDD".to_string()
            } else {
                format!("FSDD {}", speakers.join(","))
            }
        }
        "Folder" => Path::new(c["data"].as_str().unwrap_or("?"))
            .file_name()
            .map_or("folder".into(), |n| n.to_string_lossy().to_string()),
        other => serde_json::from_value::<DatasetKind>(Value::String(other.to_lowercase()))
            .map_or_else(
                |_| other.to_string(),
                |kind| kind.protocol().name.to_string(),
            ),
    };
    if let Some(k) = c["few_shot"].as_u64() {
        label.push_str(&format!(" K={k}"));
    }
    label
}

/// Reads `embeddings.npy` (float32 `[rows, columns]`).
fn read_embeddings(path: &Path) -> Result<(Vec<f32>, usize, usize)> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let npy = npyz::NpyFile::new(&bytes[..])
        .with_context(|| format!("{} is not a .npy file", path.display()))?;
    let shape = npy.shape().to_vec();
    anyhow::ensure!(
        shape.len() == 2,
        "{}: expected a matrix, found shape {shape:?}",
        path.display()
    );
    let values: Vec<f32> = npy
        .into_vec()
        .with_context(|| format!("{}: not float32", path.display()))?;
    Ok((values, shape[0] as usize, shape[1] as usize))
}

fn read_run(dir: &Path, id: String) -> Result<Run> {
    let config = read_json(&dir.join("config.json"))?;
    let results = read_json(&dir.join("results.json"))?;
    let test_accuracy = results["test_accuracy"].as_f64().with_context(|| {
        format!(
            "{}: no numeric test_accuracy",
            dir.join("results.json").display()
        )
    })?;
    let metrics = match std::fs::read_to_string(dir.join("metrics.jsonl")) {
        Ok(text) => text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(serde_json::from_str)
            .collect::<Result<_, _>>()
            .with_context(|| format!("cannot parse {}", dir.join("metrics.jsonl").display()))?,
        Err(_) => Vec::new(),
    };
    let predictions = match dir.join(PREDICTIONS_FILE) {
        p if p.is_file() => {
            let v = read_json(&p)?;
            let list = |k: &str| -> Vec<usize> {
                v[k].as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|x| x.as_u64().map(|x| x as usize))
                            .collect()
                    })
                    .unwrap_or_default()
            };
            Some(Predictions {
                labels: v["labels"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|x| x.as_str().map(String::from))
                            .collect()
                    })
                    .unwrap_or_default(),
                targets: list("targets"),
                predicted: list("predictions"),
            })
        }
        _ => None,
    };
    let embeddings = match dir.join(EMBEDDINGS_FILE) {
        p if p.is_file() => Some(read_embeddings(&p)?),
        _ => None,
    };
    Ok(Run {
        id,
        dir: dir.to_path_buf(),
        method: method_label(&config["method"]),
        dataset: dataset_label(&config),
        fold: config["fold"].as_u64(),
        seed: config["train"]["seed"].as_u64(),
        trainable: results["trainable_params"]
            .as_u64()
            .or_else(|| config["params"]["trainable"].as_u64()),
        test_accuracy,
        best_valid: results["best_valid_accuracy"].as_f64(),
        metrics,
        predictions,
        embeddings,
    })
}

/// Collects the runs under `path`: a run folder, a folder of sub-runs summed up by its
/// `results.json`, or any folder holding such folders.
pub fn collect(path: &Path) -> Result<Vec<Run>> {
    let name = path
        .canonicalize()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().to_string()))
        .unwrap_or_else(|| "run".into());
    let mut runs = Vec::new();
    walk(path, &name, &mut runs)?;
    anyhow::ensure!(
        !runs.is_empty(),
        "{}: no run folders (config.json + results.json) found",
        path.display()
    );
    Ok(runs)
}

fn walk(path: &Path, id: &str, out: &mut Vec<Run>) -> Result<()> {
    let results = path.join("results.json");
    if results.is_file() {
        let value = read_json(&results)?;
        if aggregate::is_summary(&value) {
            for entry in value["runs"].as_array().into_iter().flatten() {
                let dir = entry["dir"]
                    .as_str()
                    .context("a summarised run without `dir`")?;
                let sub_id = format!("{id}-{}", dir.replace(['/', '\\'], "-"));
                walk(&path.join(dir), &sub_id, out)?;
            }
            return Ok(());
        }
        out.push(read_run(path, id.to_string())?);
        return Ok(());
    }
    anyhow::ensure!(
        path.is_dir(),
        "{}: not a run folder (no results.json)",
        path.display()
    );
    let mut subdirs: Vec<PathBuf> = std::fs::read_dir(path)
        .with_context(|| format!("cannot list {}", path.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    subdirs.sort();
    for dir in subdirs {
        let name = dir
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .to_string();
        walk(&dir, &format!("{id}-{name}"), out)?;
    }
    Ok(())
}

/// One cell of Table I.
#[derive(Debug, Clone, PartialEq)]
pub struct Cell {
    /// Mean test accuracy, %.
    pub mean: f64,
    /// Population standard deviation (as `numpy.std`, see [`aggregate::mean_std`]), %.
    pub std: f64,
    /// Runs (folds × seeds).
    pub n: usize,
}

/// Table I: methods (rows, in order of appearance) × datasets (columns).
#[derive(Debug, Clone)]
pub struct Table {
    /// Row labels.
    pub methods: Vec<String>,
    /// Column labels.
    pub datasets: Vec<String>,
    /// `cells[method][dataset]`.
    pub cells: Vec<Vec<Option<Cell>>>,
    /// Distinct trainable-parameter counts per method.
    pub params: Vec<Vec<u64>>,
}

impl Table {
    /// Groups `runs` by method and dataset.
    pub fn new(runs: &[Run]) -> Self {
        let mut methods: Vec<String> = Vec::new();
        let mut datasets: Vec<String> = Vec::new();
        for r in runs {
            if !methods.contains(&r.method) {
                methods.push(r.method.clone());
            }
            if !datasets.contains(&r.dataset) {
                datasets.push(r.dataset.clone());
            }
        }
        let cells = methods
            .iter()
            .map(|m| {
                datasets
                    .iter()
                    .map(|d| {
                        let values: Vec<f64> = runs
                            .iter()
                            .filter(|r| &r.method == m && &r.dataset == d)
                            .map(|r| 100.0 * r.test_accuracy)
                            .collect();
                        (!values.is_empty()).then(|| {
                            let (mean, std) = mean_std(&values);
                            Cell {
                                mean,
                                std,
                                n: values.len(),
                            }
                        })
                    })
                    .collect()
            })
            .collect();
        let params = methods
            .iter()
            .map(|m| {
                let set: BTreeSet<u64> = runs
                    .iter()
                    .filter(|r| &r.method == m)
                    .filter_map(|r| r.trainable)
                    .collect();
                set.into_iter().collect()
            })
            .collect();
        Self {
            methods,
            datasets,
            cells,
            params,
        }
    }

    /// The markdown table.
    pub fn markdown(&self) -> String {
        let mut s = String::from("| method |");
        for d in &self.datasets {
            s.push_str(&format!(" {d} |"));
        }
        s.push_str(" # trainable params |\n|---|");
        s.push_str(&"---|".repeat(self.datasets.len() + 1));
        s.push('\n');
        for (i, m) in self.methods.iter().enumerate() {
            s.push_str(&format!("| {m} |"));
            for cell in &self.cells[i] {
                match cell {
                    Some(c) => s.push_str(&format!(" {:.2} ± {:.2} ({}) |", c.mean, c.std, c.n)),
                    None => s.push_str(" – |"),
                }
            }
            let params: Vec<String> = self.params[i].iter().map(|p| thousands(*p)).collect();
            let params = if params.is_empty() {
                "–".to_string()
            } else {
                params.join(" / ")
            };
            s.push_str(&format!(" {params} |\n"));
        }
        s
    }
}

/// 248976 → "248,976".
pub fn thousands(v: u64) -> String {
    let digits = v.to_string();
    let mut out = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn labels_name_methods_like_the_paper() {
        let adapter = json!({"method": "adapter", "adapter_type": "Pfeiffer", "seq_or_par": "parallel",
            "adapter_block": "bottleneck", "reduction_rate": 64, "is_adapter_ablation": false});
        assert_eq!(method_label(&adapter), "Pfeiffer-par RR=64");
        let dpt = json!({"method": "prompt-tuning", "deep": true, "prompt_len": 25});
        assert_eq!(method_label(&dpt), "DPT-25");
        assert_eq!(
            method_label(&json!({"method": "LoRA", "reduction_rate_lora": 128})),
            "LoRA RR=128"
        );
        assert_eq!(method_label(&json!({"method": "BitFit"})), "BitFit");
        let c = json!({"dataset": "Fsdd", "speakers": ["theo", "yweweler"], "few_shot": 8});
        assert_eq!(dataset_label(&c), "FSDD theo,yweweler K=8");
        let c = json!({"dataset": "Folder", "data": "/d/esc50", "few_shot": null});
        assert_eq!(dataset_label(&c), "esc50");
        let c = json!({"dataset": "Esc50", "fold": 3, "few_shot": null});
        assert_eq!(dataset_label(&c), "ESC-50");
        assert_eq!(dataset_label(&json!({"dataset": "Us8k"})), "UrbanSound8K");
    }

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(248_976), "248,976");
        assert_eq!(thousands(976), "976");
        assert_eq!(thousands(86_200_000), "86,200,000");
    }

    #[test]
    fn confusion_counts_true_rows() {
        let p = Predictions {
            labels: vec!["a".into(), "b".into()],
            targets: vec![0, 0, 1, 1, 1],
            predicted: vec![0, 1, 1, 1, 0],
        };
        assert_eq!(p.confusion(), vec![vec![1, 1], vec![1, 2]]);
    }
}
