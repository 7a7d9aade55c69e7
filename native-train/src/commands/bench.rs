//! `native-train bench`: speed of the fbank front end and of the AST forward pass, printed as
//! JSON lines in the same format as `scripts/bench_pytorch.py`, so `scripts/bench.sh` can put both
//! side by side.

use std::time::Instant;

use anyhow::Result;
use burn::tensor::{Distribution, Tensor};
use petl_ast::audio::{Fbank, FbankConfig};
use petl_ast::backend::Backend;
use petl_ast::model::{AstConfig, AstForAudioClassification};
use serde_json::json;

/// Arguments of `bench`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Compute backend.
    #[arg(long, default_value = "cpu", value_parser = |s: &str| s.parse::<Backend>())]
    backend: Backend,
    /// Timed runs per case (after one warm-up run).
    #[arg(long, default_value_t = 3)]
    repeats: usize,
    /// Only batch 1 at max_length 100, one run.
    #[arg(long)]
    quick: bool,
    /// Batch sizes of the forward benchmark.
    #[arg(long, value_delimiter = ',', default_values_t = [1, 8])]
    batch: Vec<usize>,
    /// Input lengths of the forward benchmark.
    #[arg(long, value_delimiter = ',', default_values_t = [100, 500, 1024])]
    max_length: Vec<usize>,
}

/// `(median, min)` seconds of `repeats` runs of `f` after one warm-up run.
pub fn timed(repeats: usize, mut f: impl FnMut()) -> (f64, f64) {
    f();
    let mut times: Vec<f64> = (0..repeats)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed().as_secs_f64()
        })
        .collect();
    times.sort_by(f64::total_cmp);
    (times[times.len() / 2], times[0])
}

fn report(
    backend: Backend,
    case: &str,
    batch: usize,
    max_length: usize,
    repeats: usize,
    (median, min): (f64, f64),
) {
    let line = json!({
        "impl": backend.implementation(),
        "matmul": matmul_library(backend),
        "case": case,
        "batch": batch,
        "max_length": max_length,
        "seconds_median": median,
        "seconds_min": min,
        "repeats": repeats,
        "threads": rayon_threads(),
        "peak_rss_mb": peak_rss_mb(),
    });
    println!("{line}");
}

/// What runs the matmuls of `backend` (the CPU kernels' library on burn-flex).
pub fn matmul_library(backend: Backend) -> &'static str {
    match backend {
        Backend::Flex => petl_ast::kernels::MATMUL_LIBRARY,
        Backend::Cuda if backend.implementation() == "burn-tch-cuda" => "cuBLAS (LibTorch)",
        Backend::LibTorch => "LibTorch",
        _ => "burn",
    }
}

fn rayon_threads() -> usize {
    std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// Peak resident set size of this process (Linux `VmHWM`), in MiB.
pub fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// Runs `bench`.
pub fn run(args: Args) -> Result<()> {
    let repeats = if args.quick { 1 } else { args.repeats.max(1) };
    let device = args.backend.device().map_err(anyhow::Error::msg)?;

    // Front end: one 10 s clip at 16 kHz.
    let mut state = 0x2545F4914F6CDD1Du64;
    let clip: Vec<f32> = (0..160_000)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state as f32 / u64::MAX as f32 - 0.5) * 0.2
        })
        .collect();
    let fbank = Fbank::new(FbankConfig::default())?;
    let times = timed(repeats.max(5), || {
        std::hint::black_box(fbank.compute(&clip));
    });
    report(args.backend, "fbank_10s", 1, 0, repeats.max(5), times);

    let config = AstConfig::default();
    let cases: Vec<(usize, usize)> = if args.quick {
        vec![(1, 100)]
    } else {
        args.batch
            .iter()
            .flat_map(|&b| args.max_length.iter().map(move |&l| (b, l)))
            .collect()
    };
    for (batch, max_length) in cases {
        let model = AstForAudioClassification::new(&config, max_length, 527, &device);
        let input = Tensor::<3>::random(
            [batch, max_length, config.num_mel_bins],
            Distribution::Normal(0.0, 0.5),
            &device,
        );
        let times = timed(repeats, || {
            let logits = model.forward(input.clone());
            std::hint::black_box(logits.into_data());
        });
        report(args.backend, "forward", batch, max_length, repeats, times);
    }
    Ok(())
}
