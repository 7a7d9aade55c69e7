//! `native-train report`: sums up `train` run folders in `report.md` (a Table-I-style table) with
//! figures: accuracy vs trainable parameters, and per run its loss/accuracy curves, confusion
//! matrix and a t-SNE of its test embeddings.

use std::collections::HashSet;
use std::path::PathBuf;

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use petl_ast::io::write_atomic;

use crate::report::plots::{self, Curves, Figure, MethodPoint};
use crate::report::tsne::{tsne, TsneConfig};
use crate::report::{self, Run, Table};

/// Arguments of `report`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Run folders written by `train` (or folders holding them).
    #[arg(value_name = "RUN_DIR", required = true)]
    runs: Vec<PathBuf>,
    /// Report folder to write (`report.md` and the figures).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// t-SNE perplexity.
    #[arg(long, default_value_t = 30.0)]
    perplexity: f64,
    /// t-SNE gradient steps (0: no t-SNE figures).
    #[arg(long, default_value_t = 1000)]
    tsne_iterations: usize,
    /// At most this many test clips per t-SNE (every k-th clip beyond; exact t-SNE is O(n²)).
    #[arg(long, default_value_t = 3000)]
    tsne_max_points: usize,
}

/// Runs `report`.
pub fn run(args: Args) -> Result<()> {
    let mut runs: Vec<Run> = Vec::new();
    let mut seen = HashSet::new();
    for path in &args.runs {
        for run in report::collect(path)? {
            let key = run.dir.canonicalize().unwrap_or_else(|_| run.dir.clone());
            if seen.insert(key) {
                runs.push(run);
            }
        }
    }
    // Ids unique even when two folders share a name.
    let mut ids = HashSet::new();
    for run in &mut runs {
        let base = run.id.clone();
        let mut k = 1;
        while !ids.insert(run.id.clone()) {
            k += 1;
            run.id = format!("{base}-{k}");
        }
    }
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;

    let table = Table::new(&runs);
    let figures = match plots::ensure_font() {
        Ok(()) => true,
        Err(message) => {
            eprintln!("warning: {message}; writing the tables only");
            false
        }
    };
    let mut md = format!(
        "# PETL report\n\n{} runs. Test accuracy in %: mean ± population standard deviation \
         (numpy.std, as PETL_AST reports) over the runs (folds × seeds) of each cell, their \
         number in parentheses.\n\n## Table I\n\n{}\n",
        runs.len(),
        table.markdown()
    );
    if figures {
        let points = accuracy_points(&table, &runs);
        plots::save(
            &Figure::AccuracyVsParams(points),
            &args.out,
            "accuracy_vs_params",
        )?;
        md.push_str(
            "![Test accuracy vs trainable parameters](accuracy_vs_params.svg)\n\n\
             (PNG versions of every figure lie beside the SVGs.)\n\n",
        );
    }
    md.push_str(
        "## Runs\n\n| run | method | dataset | fold | seed | epochs | best valid % | test % |\n\
         |---|---|---|---|---|---|---|---|\n",
    );
    let opt = |v: Option<u64>| v.map_or("–".to_string(), |v| v.to_string());
    for r in &runs {
        md.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {:.2} |\n",
            r.id,
            r.method,
            r.dataset,
            opt(r.fold),
            opt(r.seed),
            r.metrics.len(),
            r.best_valid
                .map_or("–".to_string(), |v| format!("{:.2}", 100.0 * v)),
            100.0 * r.test_accuracy
        ));
    }
    if figures {
        let bar = ProgressBar::new(runs.len() as u64);
        bar.set_style(
            ProgressStyle::with_template("{spinner} figures [{bar:30}] {pos}/{len} runs {msg}")
                .expect("valid template")
                .progress_chars("=> "),
        );
        md.push('\n');
        for r in &runs {
            bar.set_message(r.id.clone());
            md.push_str(&run_figures(r, &args, &bar)?);
            bar.inc(1);
        }
        bar.finish_and_clear();
    }
    let path = args.out.join("report.md");
    write_atomic(&path, md.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))?;
    println!("{} runs; report written to {}", runs.len(), path.display());
    Ok(())
}

/// One point per table cell, at the cell's (first) trainable-parameter count.
fn accuracy_points(table: &Table, runs: &[Run]) -> Vec<MethodPoint> {
    let mut points = Vec::new();
    for (i, method) in table.methods.iter().enumerate() {
        for (j, dataset) in table.datasets.iter().enumerate() {
            let Some(cell) = &table.cells[i][j] else {
                continue;
            };
            let params = runs
                .iter()
                .find(|r| &r.method == method && &r.dataset == dataset)
                .and_then(|r| r.trainable);
            if let Some(params) = params {
                points.push(MethodPoint {
                    method: method.clone(),
                    dataset: dataset.clone(),
                    params: params as f64,
                    accuracy: cell.mean,
                    std: cell.std,
                });
            }
        }
    }
    points
}

/// Draws the figures of one run into `OUT/<id>/` and returns its markdown section.
fn run_figures(r: &Run, args: &Args, bar: &ProgressBar) -> Result<String> {
    let dir = args.out.join(&r.id);
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut md = format!("### {}\n\n`{}`\n\n", r.id, r.dir.display());
    if !r.metrics.is_empty() {
        let get =
            |k: &str| -> Vec<f64> { r.metrics.iter().filter_map(|m| m[k].as_f64()).collect() };
        let curves = Curves {
            epochs: get("epoch"),
            train_loss: get("train_loss"),
            valid_loss: get("valid_loss"),
            train_accuracy: get("train_accuracy"),
            valid_accuracy: get("valid_accuracy"),
        };
        let title = format!("{} · {}", r.method, r.dataset);
        plots::save(&Figure::Curves { title, curves }, &dir, "curves")?;
        md.push_str(&format!(
            "![loss and accuracy per epoch]({}/curves.svg)\n",
            r.id
        ));
    }
    if let Some(p) = &r.predictions {
        let title = format!("Confusion matrix (test, {:.1} %)", 100.0 * r.test_accuracy);
        let figure = Figure::Confusion {
            title,
            labels: p.labels.clone(),
            counts: p.confusion(),
        };
        plots::save(&figure, &dir, "confusion")?;
        md.push_str(&format!("![confusion matrix]({}/confusion.svg)\n", r.id));
    }
    if let (Some((values, rows, cols)), true) = (&r.embeddings, args.tsne_iterations > 0) {
        let step = rows.div_ceil(args.tsne_max_points.max(1)).max(1);
        let picked: Vec<usize> = (0..*rows).step_by(step).collect();
        let x: Vec<f32> = picked
            .iter()
            .flat_map(|&i| values[i * cols..(i + 1) * cols].iter().copied())
            .collect();
        let config = TsneConfig {
            perplexity: args.perplexity,
            iterations: args.tsne_iterations,
            ..TsneConfig::default()
        };
        let y = tsne(&x, picked.len(), *cols, &config, &mut |it| {
            if it % 50 == 0 {
                bar.set_message(format!("{}: t-SNE {it}/{}", r.id, config.iterations));
            }
        });
        let (labels, targets) = match &r.predictions {
            Some(p) if p.targets.len() == *rows => (p.labels.clone(), p.targets.clone()),
            _ => (vec!["test".to_string()], vec![0; *rows]),
        };
        let points = picked
            .iter()
            .zip(y)
            .map(|(&i, p)| (p, targets[i]))
            .collect();
        let title = format!("t-SNE of the test embeddings ({} clips)", picked.len());
        plots::save(
            &Figure::Scatter {
                title,
                labels,
                points,
            },
            &dir,
            "tsne",
        )?;
        md.push_str(&format!(
            "![t-SNE of the test embeddings]({}/tsne.svg)\n",
            r.id
        ));
    }
    md.push('\n');
    Ok(md)
}
