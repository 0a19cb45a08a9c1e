//! What the model examples (`nmt`, `deepspeech`) share: options, random pruned weights, planning
//! without a GPU, the check against the CPU reference, timing, and the result line.
//!
//! The result line (also printed by `bench/peers/models.py` for cuDNN, so a speedup can be
//! computed from one GPU run) is one line of `key=value` words starting with `MODEL`:
//!
//! `MODEL name=nmt impl=sprnn cell=lstm layers=2 directions=1 input=1024 hidden=1024 batch=4
//! steps=256 density=0.1 dtype=fp16 layer_us_per_step=2.9,2.9 recurrent_us_per_step=5.8
//! model_us_per_step=7.4`
//!
//! - `layer_us_per_step`: per layer, the recurrent kernels' time per step (both directions of a
//!   bidirectional layer, from the first launch to the last end; CUDA events), median of the
//!   repeats;
//! - `recurrent_us_per_step`: their sum (median over repeats of the per-run sum);
//! - `model_us_per_step`: the whole forward pass per step (one chain of stream-ordered work
//!   with one wait at its end), input projections, joins and launch gaps included (host wall
//!   clock), median;
//! - `projection_us_per_step`, `join_us_per_step`: per layer, the input projections and the
//!   join of the two directions (CUDA events of the chain), medians; `other_us_per_step`: the
//!   wall time in none of the layers' parts (launch gaps, the host's work), median;
//! - `graph_us_per_step`: the same forward pass captured once as a CUDA graph and replayed
//!   (host wall clock of a replay), median.
//!
//! `--directions in-turn|at-once` forces how the two directions of a bidirectional layer run
//! (default: the cost model's choice, printed with its reason); the `impl` word then says
//! `sprnn_in_turn` or `sprnn_at_once`.

use std::time::Instant;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sprnn::layout::{self, DeviceInfo, PlanOptions, RowStats};
use sprnn::model::{choose_schedule, half_device, DirectionSchedule};
use sprnn::reference::{self, Precision};
use sprnn::sparse::{Dense, Matrix, PruneMode};
use sprnn::weights::{LayerWeights, ModelWeights};
use sprnn::model::ModelTiming;
use sprnn::{Cell, Csr, Model, ModelOptions};

/// A model example's configuration (defaults per example, overridden by `--key value`).
#[derive(Clone, Debug)]
pub struct Config {
    /// Name in the result line.
    pub name: &'static str,
    /// Cell type.
    pub cell: Cell,
    /// Layers L.
    pub layers: usize,
    /// Directions D.
    pub directions: usize,
    /// Input size of the first layer (0: the hidden size).
    pub input: usize,
    /// Hidden size H.
    pub hidden: usize,
    /// Density of every W_hh (and of W_ih with `sparse_input`).
    pub density: f64,
    /// Batch B.
    pub batch: usize,
    /// Steps T.
    pub steps: usize,
    /// Timed runs.
    pub repeats: usize,
    /// Untimed runs first.
    pub warmup: usize,
    /// Steps compared with the CPU reference.
    pub check_steps: usize,
    /// Prune W_ih to the density too (the CSR projection) instead of a dense W_ih.
    pub sparse_input: bool,
    /// Seed of the random weights and inputs.
    pub seed: u64,
    /// How the two directions of a bidirectional layer run (`--directions`).
    pub schedule: DirectionSchedule,
}

impl Config {
    /// The defaults both examples start from: one unidirectional layer of H = 1024 with the
    /// input size H, density 0.1, batch 4, 256 steps, 20 timed runs after 3, 8 steps checked,
    /// a dense W_ih, seed 1.
    pub fn new(name: &'static str, cell: Cell) -> Config {
        Config {
            name,
            cell,
            layers: 1,
            directions: 1,
            input: 0,
            hidden: 1024,
            density: 0.1,
            batch: 4,
            steps: 256,
            repeats: 20,
            warmup: 3,
            check_steps: 8,
            sparse_input: false,
            schedule: DirectionSchedule::Auto,
            seed: 1,
        }
    }

    /// Applies `--hidden H --density D --batch B --steps T --layers L --input I --repeats N
    /// --warmup N --check-steps N --seed S --sparse-input --directions auto|in-turn|at-once`
    /// from the command line; `--help` prints them and exits.
    pub fn with_args(mut self, about: &str) -> Config {
        let args: Vec<String> = std::env::args().skip(1).collect();
        let mut it = args.iter();
        while let Some(a) = it.next() {
            if a == "--help" || a == "-h" {
                println!("{about}\n\noptions (defaults in brackets):\n  --hidden H [{}]  --density D [{}]  --batch B [{}]  --steps T [{}]\n  --layers L [{}]  --input I [{}, 0 = H]  --repeats N [{}]  --warmup N [{}]\n  --check-steps N [{}]  --seed S [{}]  --sparse-input (prune W_ih to the density too)\n  --directions auto|in-turn|at-once [auto] (bidirectional: the cost model's choice, or forced;\n    at-once plans each direction on half the SMs where needed)",
                    self.hidden, self.density, self.batch, self.steps, self.layers, self.input, self.repeats, self.warmup, self.check_steps, self.seed);
                std::process::exit(0);
            }
            if a == "--sparse-input" {
                self.sparse_input = true;
                continue;
            }
            let v = it.next().unwrap_or_else(|| fail(&format!("{a} needs a value")));
            let num = |v: &str| v.parse::<usize>().unwrap_or_else(|_| fail(&format!("{a} {v}: not a number")));
            match a.as_str() {
                "--hidden" => self.hidden = num(v),
                "--batch" => self.batch = num(v),
                "--steps" => self.steps = num(v),
                "--layers" => self.layers = num(v),
                "--input" => self.input = num(v),
                "--repeats" => self.repeats = num(v),
                "--warmup" => self.warmup = num(v),
                "--check-steps" => self.check_steps = num(v),
                "--seed" => self.seed = num(v) as u64,
                "--directions" => {
                    self.schedule = match v.as_str() {
                        "auto" => DirectionSchedule::Auto,
                        "in-turn" => DirectionSchedule::Sequential,
                        "at-once" => DirectionSchedule::Concurrent,
                        _ => fail(&format!("--directions {v}: auto, in-turn or at-once")),
                    }
                }
                "--density" => self.density = v.parse().unwrap_or_else(|_| fail(&format!("--density {v}: not a number"))),
                _ => fail(&format!("unknown option {a} (see --help)")),
            }
        }
        if self.input == 0 {
            self.input = self.hidden;
        }
        if self.hidden == 0 || self.batch == 0 || self.steps == 0 || self.layers == 0 || self.repeats == 0 || !(self.density > 0.0 && self.density <= 1.0) {
            fail("hidden, batch, steps, layers and repeats must be at least 1 and the density in (0, 1]");
        }
        self.check_steps = self.check_steps.clamp(1, self.steps);
        self
    }

    fn input_of(&self, l: usize) -> usize {
        if l == 0 { self.input } else { self.directions * self.hidden }
    }

    /// The `MODEL …` words describing the configuration.
    fn words(&self) -> String {
        format!(
            "name={} impl=sprnn{} cell={} layers={} directions={} input={} hidden={} batch={} steps={} density={} dtype=fp16",
            self.name,
            match (self.directions, self.schedule) {
                (2, DirectionSchedule::Sequential) => "_in_turn",
                (2, DirectionSchedule::Concurrent) => "_at_once",
                _ => "",
            },
            self.cell.name(), self.layers, self.directions, self.input, self.hidden, self.batch, self.steps, self.density
        )
    }
}

/// Exit status when a layer of the model does not fit the device (as `sprnn plan`'s).
pub const EXIT_DOES_NOT_FIT: i32 = 3;

/// Says that the model does not fit `device` (the reasons are printed above) and exits with
/// [`EXIT_DOES_NOT_FIT`]: the example cannot do its job.
fn does_not_fit(c: &Config, device: &str) -> ! {
    eprintln!("error: {}: a layer does not fit on the {device} (reasons above); try a smaller --hidden, --density or --batch", c.name);
    std::process::exit(EXIT_DOES_NOT_FIT)
}

/// Prints `error: …` and exits with status 2.
fn fail(msg: &str) -> ! {
    eprintln!("error: {msg}");
    std::process::exit(2)
}

/// Random fp16-representable values in ±`scale` (weights and inputs as a model kept in fp16
/// has them; the projection's fp16 rounding is then exact and the check is tight).
fn fp16_uniform(rng: &mut ChaCha8Rng, n: usize, scale: f32) -> Vec<f32> {
    (0..n).map(|_| half::f16::from_f32(rng.gen_range(-scale..scale)).to_f32()).collect()
}

/// The pruned recurrent matrices `[l][d]` (every gate block's largest singular value ≤ 0.9).
pub fn recurrent_weights(c: &Config) -> Vec<Vec<Csr>> {
    let g = c.cell.gates();
    (0..c.layers)
        .map(|l| (0..c.directions).map(|d| sprnn::sparse::random_recurrent(c.seed + (10 * l + d) as u64, g * c.hidden, c.hidden, c.density, 0.9).expect("random W_hh")).collect())
        .collect()
}

/// Plans every layer for `device` as the model will (each direction of a bidirectional layer
/// on the whole GPU or, where the directions run at once on halves, on half the SMs) and prints
/// the plans and how the directions run; whether all fit.
pub fn print_plans(c: &Config, w_hh: &[Vec<Csr>], device: &DeviceInfo) -> bool {
    let mut all = true;
    let opts = PlanOptions::default();
    for (l, dirs) in w_hh.iter().enumerate() {
        let mut planned_on = device.clone();
        if let [a, b] = &dirs[..] {
            match choose_schedule([&RowStats::of(a), &RowStats::of(b)], c.cell, c.batch, device, &opts, c.schedule) {
                Ok(choice) => {
                    println!("  layer {l}: directions {}: {}", if choice.concurrent { "at once" } else { "in turn" }, choice.reason);
                    if choice.half_sms {
                        planned_on = half_device(device);
                    }
                }
                Err(e) => println!("  layer {l}: no schedule for the directions: {e}"),
            }
        }
        for (d, w) in dirs.iter().enumerate() {
            match layout::plan(w, c.cell, c.batch, &planned_on, &opts) {
                Ok(p) => println!(
                    "  layer {l}{}: {} nonzeros, {} CTAs x {} threads, list length {}, {} registers, {} B shared",
                    if c.directions == 2 { if d == 0 { " forward" } else { " reverse" } } else { "" },
                    w.nnz(),
                    p.grid(),
                    p.threads_per_cta(),
                    p.list_len(),
                    p.registers_per_thread(),
                    p.smem_bytes()
                ),
                Err(e) => {
                    println!("  layer {l} direction {d}: does not fit: {e}");
                    all = false;
                }
            }
        }
    }
    all
}

/// The whole model: the given `W_hh`, random `W_ih` (dense, or pruned per row to the density
/// with `sparse_input`) in ±1/√I, biases in ±0.1.
pub fn model_weights(c: &Config, w_hh: Vec<Vec<Csr>>) -> ModelWeights {
    let g = c.cell.gates();
    let mut rng = ChaCha8Rng::seed_from_u64(c.seed ^ 0x1A7E);
    let layers = w_hh
        .into_iter()
        .enumerate()
        .map(|(l, dirs)| {
            dirs.into_iter()
                .map(|w| {
                    let i = c.input_of(l);
                    let dense = fp16_uniform(&mut rng, g * c.hidden * i, 1.0 / (i as f32).sqrt());
                    let w_ih = if c.sparse_input {
                        Matrix::Sparse(Csr::from_dense_pruned(&dense, g * c.hidden, i, c.density, PruneMode::PerRow).expect("pruned W_ih"))
                    } else {
                        Matrix::Dense(Dense::new(g * c.hidden, i, dense).expect("W_ih"))
                    };
                    let (b_ih, b_hh) = (fp16_uniform(&mut rng, g * c.hidden, 0.1), fp16_uniform(&mut rng, g * c.hidden, 0.1));
                    LayerWeights::new(c.cell, w_ih, w, b_ih, b_hh).expect("layer weights")
                })
                .collect()
        })
        .collect();
    ModelWeights::new(c.cell, layers).expect("model weights")
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 { v[n / 2] } else { 0.5 * (v[n / 2 - 1] + v[n / 2]) }
}

/// The example's main: plans, and with a GPU builds, checks and times the model.
pub fn run(c: Config) -> Result<(), Box<dyn std::error::Error>> {
    println!(
        "{}: {} layers of {}{} H = {}, input {}, density {}, batch {}, T = {}",
        c.name, c.layers, if c.directions == 2 { "bidirectional " } else { "" }, c.cell.name(), c.hidden, c.input, c.density, c.batch, c.steps
    );
    let t = Instant::now();
    let w_hh = recurrent_weights(&c);
    println!("random pruned W_hh in {:.1} s", t.elapsed().as_secs_f64());
    let Some(gpu) = sprnn::try_default_gpu()? else {
        println!("no CUDA device: planning for the H200 preset only");
        if !print_plans(&c, &w_hh, &DeviceInfo::h200()) {
            does_not_fit(&c, "the H200 preset");
        }
        println!("no CUDA device: nothing run or timed");
        return Ok(());
    };
    println!("{} ({} SMs):", gpu.info().name, gpu.info().sm_count);
    if !print_plans(&c, &w_hh, gpu.info()) {
        does_not_fit(&c, &gpu.info().name);
    }
    let weights = model_weights(&c, w_hh);
    let opts = ModelOptions { schedule: c.schedule, ..ModelOptions::default() };
    let mut model = Model::new(&gpu, &weights, c.batch, &opts)?;
    let mut rng = ChaCha8Rng::seed_from_u64(c.seed ^ 0x5EED);
    let x = fp16_uniform(&mut rng, c.steps * c.batch * c.input, 1.0);

    // Check: a unidirectional model's first steps depend on the first inputs only, so the
    // full run's first `check_steps` are compared; a bidirectional one runs a short sequence.
    let k = c.check_steps;
    let xk = &x[..k * c.batch * c.input];
    let got = if c.directions == 1 { model.forward(&x, c.steps, None, None)? } else { model.forward(xk, k, None, None)? };
    let t = Instant::now();
    let want = reference::forward_model(&weights, reference::Sequences::new(xk, k, c.batch), Precision::DeviceFaithful)?;
    let width = c.directions * c.hidden;
    let e = reference::compare_steps(&got.output[..k * c.batch * width], &want.output, k, c.batch, width);
    let tol = reference::DEVICE_TOLERANCE * c.layers as f64;
    println!("check: first {k} steps against the CPU reference ({:.1} s): worst error {:.2e} at step {} (tolerance {tol:.0e})", t.elapsed().as_secs_f64(), e.worst, e.worst_step);
    if !e.within(tol) {
        return Err(format!("the GPU model differs from the CPU reference by {:.3e} > {tol:.0e}", e.worst).into());
    }

    // Timing: the full sequence, median of the repeats after the warm-up; the chain's parts
    // per layer, then the same pass as a replayed CUDA graph.
    let mut d_x = sprnn::cust::memory::DeviceBuffer::from_slice(&x)?;
    let (mut timings, mut graph_us) = (Vec::new(), Vec::new());
    for r in 0..c.warmup + c.repeats {
        let timing = model.forward_device(&d_x, c.steps, None, None)?;
        if r >= c.warmup {
            timings.push(timing);
        }
    }
    {
        let mut graph = model.capture(&mut d_x, c.steps, None, None)?;
        for r in 0..c.warmup + c.repeats {
            let t = graph.replay()?;
            if r >= c.warmup {
                graph_us.push(t.total_ms * 1e3 / c.steps as f64);
            }
        }
    }
    let per = |ms: f64| ms * 1e3 / c.steps as f64;
    let per_layer = |f: &dyn Fn(&ModelTiming, usize) -> f64| -> Vec<f64> { (0..c.layers).map(|l| median(timings.iter().map(|t| per(f(t, l))).collect())).collect() };
    let layer_us = per_layer(&|t, l| t.recurrent_ms[l] as f64);
    let projection_us = per_layer(&|t, l| t.projection_ms[l] as f64);
    let join_us = per_layer(&|t, l| t.join_ms[l] as f64);
    for l in 0..c.layers {
        let how = if model.directions() == 2 { if model.concurrent(l) { ", directions at once" } else { ", directions in turn" } } else { "" };
        println!("layer {l}: recurrent {:.3}{how}, projection {:.3}, join {:.3} us per step", layer_us[l], projection_us[l], join_us[l]);
    }
    let rec = median(timings.iter().map(|t| per(t.recurrent_total_ms())).collect());
    let total = median(timings.iter().map(|t| per(t.total_ms)).collect());
    let other = median(timings.iter().map(|t| per(t.other_ms())).collect());
    let graph = median(graph_us);
    println!("recurrent layers: {rec:.3} us per step; other: {other:.3} ({:.1} % of the whole); whole model: {total:.3} us per step; replayed as a CUDA graph: {graph:.3}", 100.0 * other / total);
    let list = |v: &[f64]| v.iter().map(|u| format!("{u:.3}")).collect::<Vec<_>>().join(",");
    println!(
        "MODEL {} layer_us_per_step={} recurrent_us_per_step={rec:.3} model_us_per_step={total:.3} projection_us_per_step={} join_us_per_step={} other_us_per_step={other:.3} graph_us_per_step={graph:.3}",
        c.words(),
        list(&layer_us),
        list(&projection_us),
        list(&join_us)
    );
    Ok(())
}
