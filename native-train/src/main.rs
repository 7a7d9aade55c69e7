//! `native-train`: the command-line front of petl-ast (classification, features; training and
//! benchmarks build on the same commands).

mod commands;
mod model_source;

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
    /// Count the total and trainable parameters of a PETL method on a checkpoint.
    Params(commands::params::Args),
    /// Time the fbank front end and the AST-base forward pass (JSON lines on stdout).
    Bench(commands::bench::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Classify(args) => commands::classify::run(args),
        Command::Features(args) => commands::features::run(args),
        Command::Bench(args) => commands::bench::run(args),
        Command::Params(args) => commands::params::run(args),
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
