//! `feedbacknet`: class-specific saliency maps and boxes for any ONNX image classifier.
#![forbid(unsafe_code)]

mod args;
mod compare;
mod error;
mod eval;
mod grid;
mod infer;
mod models;
mod net;
mod output;
mod panel;
mod paths;
mod render;
mod shard;
mod stability;
mod tune;
mod visualize;

use clap::Parser;

use crate::args::{Cli, Command};

fn main() {
    // Solver iterations reuse freed buffers instead of faulting in fresh pages.
    feedbacknet::retain_freed_memory();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Infer(args) => infer::run(args),
        Command::Compare(args) => compare::run(args),
        Command::Visualize(args) => visualize::run(args),
        Command::Eval(args) => eval::run(args),
        Command::Merge(args) => eval::run_merge(args),
        Command::Tune(args) => tune::run(args),
        Command::Grid(args) => grid::run(args),
        Command::Models(args) => models::run(&args.models.models_dir),
        Command::Stability(args) => stability::run(args),
    };
    if let Err(e) = result {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
