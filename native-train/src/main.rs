//! `native-train`: the command-line front of petl-ast (classification, features; training and
//! benchmarks build on the same commands).

mod allocator;
mod commands;
mod model_source;
mod report;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Parameter-efficient transfer learning for Audio Spectrogram Transformers.
#[derive(Parser, Debug)]
#[command(name = "native-train", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Print the full chain of causes on errors.
    #[arg(long, global = true)]
    verbose: bool,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Classify wav files with an AST checkpoint and print the top labels.
    Classify(commands::classify::Args),
    /// Write the normalised fbank input matrix (frames × mel) of a wav file as .npy.
    Features(commands::features::Args),
    /// Time one training step (forward, backward, AdamW) of a PETL method on AST-base.
    BenchTrain(commands::bench_train::Args),
    /// Convert a PETL_AST state_dict into a petl-ast adapter file.
    Convert(commands::convert::Args),
    /// Fine-tune a checkpoint with a PETL method on a dataset.
    Train(commands::train::Args),
    /// Measure the page's personalisation recipe on held-out speakers and held-out words.
    Fewshot(commands::fewshot::Args),
    /// Train the small offline demo AST from scratch on FSDD.
    PretrainDemo(commands::pretrain_demo::Args),
    /// Sum up run folders: a Table-I markdown table and figures (accuracy vs parameters,
    /// curves, confusion matrices, t-SNE of the test embeddings).
    Report(commands::report::Args),
    /// Write a randomly initialised AST (default: the AST-base shape, 527 labels) as a Hugging Face
    /// folder.
    Init(commands::init::Args),
    /// Rewrite a checkpoint folder with smaller weights (f16, bf16, or int8 Linear weights).
    Quantize(commands::quantize::Args),
    /// Count the total and trainable parameters of a PETL method on a checkpoint.
    Params(commands::params::Args),
    /// Time the fbank front end and the AST-base forward pass (JSON lines on stdout).
    Bench(commands::bench::Args),
    /// Check a backend against the CPU: logits of the built-in backbone and of a random AST-base
    /// on both, same weights and inputs (JSON lines; non-zero exit past the tolerance).
    BackendCheck(commands::backend_check::Args),
    /// Time this crate's CPU kernels (attention, GELU, Linear) against the burn ops they replace.
    BenchKernels(commands::bench_kernels::Args),
}

fn main() -> ExitCode {
    allocator::keep_freed_memory();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Classify(args) => commands::classify::run(args),
        Command::Features(args) => commands::features::run(args),
        Command::Bench(args) => commands::bench::run(args),
        Command::BenchKernels(args) => commands::bench_kernels::run(args),
        Command::BackendCheck(args) => commands::backend_check::run(args),
        Command::Params(args) => commands::params::run(args),
        Command::Report(args) => commands::report::run(args),
        Command::Train(args) => commands::train::run(args),
        Command::Fewshot(args) => commands::fewshot::run(args),
        Command::PretrainDemo(args) => commands::pretrain_demo::run(args),
        Command::Convert(args) => commands::convert::run(args),
        Command::Quantize(args) => commands::quantize::run(args),
        Command::Init(args) => commands::init::run(args),
        Command::BenchTrain(args) => commands::bench_train::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            if cli.verbose {
                eprintln!("error: {err:?}");
            } else {
                eprintln!("error: {err:#}");
            }
            ExitCode::FAILURE
        }
    }
}
