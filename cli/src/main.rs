//! `sprnn`: the command-line face of the sprnn crate.
//!
//! Subcommands, one module each:
//!
//! - `info` ([`info`]): the GPU's properties and on-chip capacity, or the H200 and A100 presets
//!   when there is no CUDA device.
//! - `plan` ([`plan`]): the capacity planner on a layer from a PyTorch-named safetensors file or
//!   a random one, for a preset or the GPU: launch shape, registers, shared memory, bank
//!   conflicts, or the planner's typed refusal with its suggestion. Works without a GPU.
//! - `run` ([`run`]): a whole model over `x` (every layer and direction of the weights file;
//!   writes PyTorch's `output`, `h_n`, `c_n`), or one layer over `U` (writes `h` and LSTM's
//!   `c`), from safetensors files, on the GPU or (`--reference`) on the CPU reference.
//! - `bench` ([`bench`]): a small timing sweep through the benchmark crate's protocol.
//!
//! Exit status: 0 success; 1 an error (bad file, bad values, a GPU failure); 2 a usage error
//! (clap's); 3 the planner refused the layer; 4 a GPU is needed and there is no NVIDIA driver;
//! 5 the driver works but there is no CUDA device (with that ordinal).

mod bench;
mod info;
mod layer;
mod plan;
mod progress;
mod run;
mod tensors;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Exit status and message of a failed command.
#[derive(Debug)]
pub struct Failure {
    /// Exit status.
    pub code: u8,
    /// What went wrong (printed after `sprnn: error: `).
    pub message: String,
}

/// Exit status of a usage error (clap's own).
pub const EXIT_USAGE: u8 = 2;
/// Exit status when the planner refuses the layer (it does not fit the device).
pub const EXIT_DOES_NOT_FIT: u8 = 3;
/// Exit status when a GPU is needed and the NVIDIA driver library is missing or unusable.
pub const EXIT_NO_DRIVER: u8 = 4;
/// Exit status when the driver works but there is no CUDA device (with the ordinal asked for).
pub const EXIT_NO_DEVICE: u8 = 5;

impl Failure {
    /// An ordinary error (exit status 1).
    pub fn new(message: impl Into<String>) -> Failure {
        Failure { code: 1, message: message.into() }
    }
}

impl From<sprnn::Error> for Failure {
    fn from(e: sprnn::Error) -> Failure {
        match e {
            sprnn::Error::NoDriver { .. } => Failure { code: EXIT_NO_DRIVER, message: no_device_message(&e) },
            sprnn::Error::NoDevice { .. } => Failure { code: EXIT_NO_DEVICE, message: no_device_message(&e) },
            sprnn::Error::Plan(_) => Failure { code: EXIT_DOES_NOT_FIT, message: e.to_string() },
            e => Failure::new(e.to_string()),
        }
    }
}

impl From<sprnn::weights::WeightsError> for Failure {
    fn from(e: sprnn::weights::WeightsError) -> Failure {
        Failure::new(e.to_string())
    }
}

impl From<sprnn::reference::ReferenceError> for Failure {
    fn from(e: sprnn::reference::ReferenceError) -> Failure {
        Failure::new(format!("the CPU reference refused the layer: {e}"))
    }
}

impl From<sprnn::SparseError> for Failure {
    fn from(e: sprnn::SparseError) -> Failure {
        Failure::new(e.to_string())
    }
}

/// "no NVIDIA driver (the loader's reason)" or "no CUDA device".
pub fn no_device_message(e: &sprnn::Error) -> String {
    e.to_string()
}

/// Result of a subcommand.
pub type CliResult<T = ()> = Result<T, Failure>;

const AFTER_HELP: &str = "\
Examples:
  sprnn info
  sprnn plan --random --cell rnn_tanh --hidden 2304 --density 0.3 --batch 4 --device h200
  sprnn plan --weights lstm.safetensors --cell lstm --layer 0 --batch 8 --json
  sprnn run --weights lstm.safetensors --cell lstm --input x.safetensors --output out.safetensors
  sprnn run --weights lstm.safetensors --cell lstm --input u.safetensors --output out.safetensors
  sprnn run --reference --weights lstm.safetensors --cell lstm --input u.safetensors --output out.safetensors
  sprnn bench --cells rnn_tanh --hidden 2304 --batch 4 --density 0.3

Exit status:
  0  success
  1  error (a bad file or value, a failed GPU call)
  2  usage error (unknown option, missing argument)
  3  the layer does not fit the device (the planner refused it)
  4  no NVIDIA driver: a GPU command on a machine without the driver library (libcuda)
  5  no CUDA device: the driver works but sees no device (or none with that ordinal)
Without a GPU, `info`, `plan` (presets h200, a100) and `run --reference` still work.";

#[derive(Parser, Debug)]
#[command(name = "sprnn", version, about = "Sparse persistent RNN, GRU and LSTM layers on NVIDIA GPUs", after_help = AFTER_HELP)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Show the GPU's properties and on-chip capacity (or the H200 and A100 presets without a
    /// CUDA device).
    Info(info::InfoArgs),
    /// Plan a layer for a device: launch shape, registers, shared memory, bank conflicts, or why
    /// it does not fit. Needs no GPU (except with --device gpu).
    Plan(plan::PlanArgs),
    /// Run a whole model over x (or one layer over U) from a safetensors file, on the GPU or the
    /// CPU reference, and write PyTorch's output, h_n and c_n (or h and c) to a safetensors file.
    Run(run::RunArgs),
    /// Time a small sweep of random layers on the GPU (per-step time and exchange floor).
    Bench(bench::BenchArgs),
}

fn main() -> ExitCode {
    #[cfg(unix)]
    // SAFETY: called first thing in main, before any other thread exists; SIG_DFL is a valid
    // disposition. It makes `sprnn ... | head` end quietly, as other Unix tools do, instead of
    // panicking on a write to a closed pipe.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Info(a) => info::main(&a),
        Command::Plan(a) => plan::main(&a),
        Command::Run(a) => run::main(&a),
        Command::Bench(a) => bench::main(&a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("sprnn: error: {}", f.message);
            ExitCode::from(f.code)
        }
    }
}
