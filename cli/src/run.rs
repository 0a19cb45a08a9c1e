//! `sprnn run`: a whole model over `x`, or one layer over `U`, from files, on the GPU or the CPU
//! reference.
//!
//! The input file decides the mode: a tensor `x` `[T, B, I]` runs every layer and direction of
//! the weights file ([`sprnn::Model`], or [`sprnn::reference::forward_model`]); a tensor `u`
//! `[T, B, G·H]` runs one layer's recurrent part (`--layer`, `--reverse`).
//!
//! The sequence is fed in chunks of `--chunk` steps (default: all of it, or the most the
//! kernel's 32-bit indices allow per call) through [`sprnn::StreamingLayer`] /
//! [`sprnn::StreamingModel`] on the GPU and [`sprnn::StreamState`] /
//! [`sprnn::ModelStreamState`] around the reference, so the result does not depend on the
//! chunking. A bidirectional model cannot be chunked.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Instant;

use clap::{Args, ValueEnum};
use sprnn::layer::Input;
use sprnn::reference::{self, Precision};
use sprnn::weights::{ModelWeights, WeightsError};
use sprnn::{Cell, Gpu, LayerOptions, Model, ModelOptions, ModelStreamState, SparseRecurrentLayer, StreamState, StreamingLayer, StreamingModel};

use crate::layer::{self, Layer, LayerSource};
use crate::tensors::{self, Tensor};
use crate::{progress, CliResult, Failure};

/// Arithmetic of the CPU reference.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum PrecisionArg {
    /// fp16 weights and hidden state, the products summed as the GPU's default plan sums them
    /// (fp16 group sums for tanh, GRU and LSTM, f32 for ReLU), f32 cell math: exactly where the
    /// GPU rounds.
    DeviceFaithful,
    /// Everything in f32.
    F32,
    /// Everything in f64 (h rounded to f32 at the end of each chunk).
    F64,
}

impl PrecisionArg {
    /// The name `--precision` takes.
    pub fn name(self) -> &'static str {
        match self {
            PrecisionArg::DeviceFaithful => "device-faithful",
            PrecisionArg::F32 => "f32",
            PrecisionArg::F64 => "f64",
        }
    }
}

impl PrecisionArg {
    /// The reference precision for layers of `cell` (device-faithful: the default plan's
    /// products, `sprnn::layout::default_products`).
    pub fn for_cell(self, cell: Cell) -> Precision {
        match self {
            PrecisionArg::DeviceFaithful => Precision::device_faithful(sprnn::layout::default_products(cell, false)),
            PrecisionArg::F32 => Precision::F32,
            PrecisionArg::F64 => Precision::F64,
        }
    }
}

/// Arguments of `sprnn run`.
#[derive(Args, Debug)]
#[command(after_help = "\
Input file (--input), whole-model mode: safetensors with tensor \"x\", F32 or F16, shape
[T, B, I]: the model input, as torch.nn.RNN/GRU/LSTM take it (batch_first=False). Every layer
and direction of the weights file runs (input projection on the GPU too). Optional \"h0\" and,
for LSTM, \"c0\", shape [L*D, B, H] (default zeros).
Output file: \"output\", F32 [T, B, D*H] (the last layer's states, both directions side by
side), \"h_n\", F32 [L*D, B, H] and, for LSTM, \"c_n\", F32 [L*D, B, H], as PyTorch returns them.

Input file, single-layer mode: tensor \"u\", F32 or F16, shape [T, B, G*H]: the input
pre-activations W_ih x_t + b_ih of every step t and sequence b, gates in PyTorch's order
(RNN [h], GRU [r, z, n], LSTM [i, f, g, o]), without b_hh (the layer adds it), for layer
--layer (--reverse: its reverse direction). Optional \"h0\" and, for LSTM, \"c0\", shape [B, H]
(default zeros). Other tensors are ignored.
Output file: \"h\", F32 [T, B, H] (every step's hidden state) and, for LSTM, \"c\", F32 [B, H]
(the final cell state).

Both write metadata sprnn.cell and sprnn.engine. In Python:
safetensors.torch.save_file({\"x\": x.float().contiguous()}, \"x.safetensors\").")]
pub struct RunArgs {
    #[command(flatten)]
    pub layer: LayerSource,
    /// Safetensors file holding "x" [T, B, I] (whole model; optionally "h0", "c0" [L*D, B, H])
    /// or "u" [T, B, G*H] (one layer; optionally "h0", "c0" [B, H]).
    #[arg(long, value_name = "FILE")]
    pub input: PathBuf,
    /// Safetensors file to write to: "output", "h_n" (and "c_n") for a model, "h" (and "c")
    /// for one layer.
    #[arg(long, value_name = "FILE")]
    pub output: PathBuf,
    /// Expected batch size: an error unless the input has this B.
    #[arg(long)]
    pub batch: Option<usize>,
    /// Run the CPU reference instead of the GPU (works everywhere; slow for large layers).
    #[arg(long)]
    pub reference: bool,
    /// Arithmetic of the CPU reference.
    #[arg(long, value_enum, default_value = "device-faithful", requires = "reference")]
    pub precision: PrecisionArg,
    /// Feed the sequence in chunks of at most this many steps (the state is carried across).
    #[arg(long, value_name = "STEPS")]
    pub chunk: Option<usize>,
    /// Whole-model mode on the GPU: after the forward pass, capture it as one CUDA graph and
    /// replay it; reports both times (the outputs written are the replay's, which equal the
    /// forward pass's bit for bit). Not with --chunk.
    #[arg(long, conflicts_with_all = ["reference", "chunk"])]
    pub graph: bool,
    /// Whole-model mode on the GPU: how the two directions of a bidirectional layer run
    /// (default: the cost model's choice; `sprnn plan` shows it and why).
    #[arg(long, value_enum, default_value = "auto", conflicts_with = "reference")]
    pub directions: crate::plan::DirectionsArg,
}

struct Inputs {
    steps: usize,
    batch: usize,
    u: Tensor,
    h0: Option<Vec<f32>>,
    c0: Option<Vec<f32>>,
}

fn check_finite(file: &str, name: &str, v: &[f32]) -> CliResult {
    match v.iter().position(|x| !x.is_finite()) {
        None => Ok(()),
        Some(i) => Err(Failure::new(format!("{file}: {name}[{i}] (flat index) is {}; values must be finite", v[i]))),
    }
}

/// Checks the sequence `t` (tensor `name` of `path`, `[T, B, ...]`): T and B at least 1, B as
/// `--batch` says (where given), finite values.
fn check_sequence(args: &RunArgs, path: &str, name: &str, t: &Tensor, steps: usize, batch: usize) -> CliResult {
    if steps == 0 || batch == 0 {
        return Err(Failure::new(format!("{path}: \"{name}\" has shape {:?}; T and B must be at least 1", t.shape)));
    }
    if let Some(b) = args.batch {
        if b != batch {
            return Err(Failure::new(format!("--batch {b}, but \"{name}\" in {path} holds batch {batch} (shape {:?})", t.shape)));
        }
    }
    check_finite(path, name, &t.values)
}

fn read_inputs(args: &RunArgs, l: &Layer) -> CliResult<Inputs> {
    let file = tensors::File::read(&args.input)?;
    let path = file.path().to_string();
    let (g, h) = (l.cell.gates(), l.hidden());
    let u = file.get("u")?.ok_or_else(|| {
        Failure::new(format!("{path}: no tensor \"u\" (expected [T, B, G*H] = [T, B, {}]) and no tensor \"x\" (a model's input [T, B, I])", g * h))
    })?;
    let (steps, batch) = match u.shape[..] {
        [t, b, gh] if gh == g * h => (t, b),
        _ => {
            return Err(Failure::new(format!(
                "{path}: \"u\" has shape {:?}; a {} layer of H = {h} needs [T, B, G*H] = [T, B, {}]",
                u.shape,
                l.cell.name(),
                g * h
            )))
        }
    };
    check_sequence(args, &path, "u", &u, steps, batch)?;
    let state = |name: &str| -> CliResult<Option<Vec<f32>>> {
        let Some(t) = file.get(name)? else { return Ok(None) };
        if t.shape != [batch, h] {
            return Err(Failure::new(format!("{path}: \"{name}\" has shape {:?}, expected [B, H] = [{batch}, {h}]", t.shape)));
        }
        check_finite(&path, name, &t.values)?;
        Ok(Some(t.values))
    };
    let h0 = state("h0")?;
    let c0 = state("c0")?;
    if c0.is_some() && l.cell != Cell::Lstm {
        return Err(Failure::new(format!("{path}: \"c0\" given for a {} layer; only LSTM has a cell state", l.cell.name())));
    }
    Ok(Inputs { steps, batch, u, h0, c0 })
}

/// Chunk bounds `(first step, steps)` covering `steps` in pieces of at most `chunk`.
fn chunks(steps: usize, chunk: usize) -> Vec<(usize, usize)> {
    (0..steps).step_by(chunk).map(|t| (t, chunk.min(steps - t))).collect()
}

/// What the reported time covers.
fn timing_label(reference: bool) -> &'static str {
    if reference {
        "CPU wall time"
    } else {
        "wall time with host-device transfers"
    }
}

/// Refuses an `--output` that is the `--input` or `--weights` file (also through a link), before
/// anything is read or run: writing it would destroy the data it was computed from.
fn refuse_overwriting_inputs(args: &RunArgs) -> CliResult {
    let named = [("--input", Some(&args.input)), ("--weights", args.layer.weights.as_ref())];
    for (option, path) in named {
        if let Some(path) = path {
            if tensors::same_file(&args.output, path) {
                return Err(Failure::new(format!(
                    "--output {} is the {option} file {}; writing it would destroy that file (choose another output path)",
                    args.output.display(),
                    path.display()
                )));
            }
        }
    }
    Ok(())
}

/// The outputs of a layer run chunk by chunk (`h`, LSTM's final `c`) and the engine's name.
type LayerRun = (Vec<f32>, Option<Vec<f32>>, String);

/// `inp` through `l` on `gpu`, in the chunks `pieces` (a [`StreamingLayer`]).
fn run_layer_on_gpu(gpu: &Gpu, l: &Layer, inp: &Inputs, pieces: &[(usize, usize)]) -> CliResult<LayerRun> {
    let (b, h) = (inp.batch, l.hidden());
    let per_step = b * l.cell.gates() * h;
    let layer = progress::spin("planning and uploading", || SparseRecurrentLayer::new(gpu, l.cell, &l.w_hh, &l.b_hh, b, &LayerOptions::default()))?;
    let mut stream = StreamingLayer::new(layer);
    let progress = progress::Chunks::new(pieces.len(), None);
    if inp.h0.is_some() || inp.c0.is_some() {
        let zeros = vec![0.0; b * h];
        stream.set_state(inp.h0.as_deref().unwrap_or(&zeros), inp.c0.as_deref())?;
    }
    let (mut out_h, mut out_c) = (Vec::with_capacity(inp.steps * b * h), None);
    for &(t0, n) in pieces {
        let range = t0 * per_step..(t0 + n) * per_step;
        let u = match &inp.u.f16 {
            Some(v) => Input::F16(&v[range]),
            None => Input::F32(&inp.u.values[range]),
        };
        let o = stream.forward(u, n)?;
        out_h.extend_from_slice(&o.h);
        out_c = o.c;
        progress.step();
    }
    Ok((out_h, out_c, format!("gpu: {}", gpu.info().name)))
}

/// `inp` through `l` on the CPU reference, in the chunks `pieces` (a [`StreamState`]).
fn run_layer_on_reference(args: &RunArgs, l: &Layer, inp: &Inputs, pieces: &[(usize, usize)]) -> CliResult<LayerRun> {
    let (b, h) = (inp.batch, l.hidden());
    let per_step = b * l.cell.gates() * h;
    let precision = args.precision.for_cell(l.cell);
    let mut state = StreamState::new(l.cell, b, h);
    if inp.h0.is_some() || inp.c0.is_some() {
        let zeros = vec![0.0; b * h];
        state.set_state(inp.h0.as_deref().unwrap_or(&zeros), inp.c0.as_deref())?;
    }
    let progress = progress::Chunks::new(pieces.len(), Some("running the CPU reference"));
    let (mut out_h, mut out_c) = (Vec::with_capacity(inp.steps * b * h), None);
    for &(t0, n) in pieces {
        let (h0, c0) = state.initial();
        let u = &inp.u.values[t0 * per_step..(t0 + n) * per_step];
        let o = reference::forward_u(l.cell, &l.w_hh, &l.b_hh, reference::Sequences::new(u, n, b).with_state(h0, c0).continuing(t0 as u64), precision)?;
        state.advance(n, &o.h, o.c.as_deref())?;
        out_h.extend_from_slice(&o.h);
        out_c = o.c;
        progress.step();
    }
    Ok((out_h, out_c, format!("the CPU reference ({} arithmetic)", args.precision.name())))
}

/// Runs `sprnn run`.
pub fn main(args: &RunArgs) -> CliResult {
    if args.chunk == Some(0) {
        return Err(Failure::new("--chunk must be at least 1"));
    }
    refuse_overwriting_inputs(args)?;
    let gpu = if args.reference {
        None
    } else {
        Some(Gpu::new(0).map_err(|e| {
            let mut f = Failure::from(e);
            f.message.push_str("; run the CPU reference instead with --reference");
            f
        })?)
    };
    let file = tensors::File::read(&args.input)?;
    if file.get("x")?.is_some() {
        if file.get("u")?.is_some() {
            return Err(Failure::new(format!("{}: holds both \"x\" (a model's input) and \"u\" (one layer's); keep one", file.path())));
        }
        return run_model(args, &file, gpu);
    }
    if args.graph {
        return Err(Failure::new("--graph captures a whole model: give an input file with \"x\" (a \"u\" input runs one layer)"));
    }
    let l = layer::load(&args.layer)?;
    let inp = read_inputs(args, &l)?;
    let (g, h, b, steps) = (l.cell.gates(), l.hidden(), inp.batch, inp.steps);
    let per_step = b * g * h;
    // The kernel indexes U with 32 bits: at most this many steps per call.
    let max_chunk = (u32::MAX as usize / per_step).max(1);
    let chunk = args.chunk.unwrap_or(steps).min(max_chunk);
    let pieces = chunks(steps, chunk);
    let started = Instant::now();
    let (out_h, out_c, engine) = match gpu {
        Some(gpu) => run_layer_on_gpu(&gpu, &l, &inp, &pieces)?,
        None => run_layer_on_reference(args, &l, &inp, &pieces)?,
    };
    let elapsed = started.elapsed();
    let mut tensors: Vec<(&str, Vec<usize>, &[f32])> = vec![("h", vec![steps, b, h], &out_h)];
    if let Some(c) = &out_c {
        tensors.push(("c", vec![b, h], c));
    }
    let meta = HashMap::from([
        ("format".to_string(), "pt".to_string()),
        ("sprnn.cell".to_string(), l.cell.name().to_string()),
        ("sprnn.engine".to_string(), engine.clone()),
    ]);
    tensors::write(&args.output, &tensors, meta)?;
    println!(
        "ran {} ({}) for T = {steps}, B = {b} on {engine} in {:.1} ms ({:.2} us per step, {}{}); wrote h [{steps}, {b}, {h}]{} to {}",
        l.cell.name(),
        l.source,
        elapsed.as_secs_f64() * 1e3,
        elapsed.as_secs_f64() * 1e6 / steps as f64,
        timing_label(args.reference),
        if pieces.len() > 1 { format!(", {} chunks", pieces.len()) } else { String::new() },
        if out_c.is_some() { format!(" and c [{b}, {h}]") } else { String::new() },
        args.output.display()
    );
    Ok(())
}

/// The model input of `sprnn run`'s whole-model mode.
struct ModelInputs {
    steps: usize,
    batch: usize,
    x: Vec<f32>,
    h0: Option<Vec<f32>>,
    c0: Option<Vec<f32>>,
}

/// Reads `x` `[T, B, I]` and the optional `h0`/`c0` `[L·D, B, H]` for `model`.
fn read_model_inputs(args: &RunArgs, file: &tensors::File, model: &ModelWeights) -> CliResult<ModelInputs> {
    let path = file.path().to_string();
    let x = file.get("x")?.expect("checked by the caller");
    let input = model.input_size();
    let (steps, batch) = match x.shape[..] {
        [t, b, i] if i == input => (t, b),
        _ => {
            return Err(Failure::new(format!(
                "{path}: \"x\" has shape {:?}; the model's first layer takes [T, B, I] = [T, B, {input}]",
                x.shape
            )))
        }
    };
    check_sequence(args, &path, "x", &x, steps, batch)?;
    let ld = model.num_layers() * model.directions();
    let h = model.hidden();
    let state = |name: &str| -> CliResult<Option<Vec<f32>>> {
        let Some(t) = file.get(name)? else { return Ok(None) };
        if t.shape != [ld, batch, h] {
            return Err(Failure::new(format!("{path}: \"{name}\" has shape {:?}, expected [L*D, B, H] = [{ld}, {batch}, {h}]", t.shape)));
        }
        check_finite(&path, name, &t.values)?;
        Ok(Some(t.values))
    };
    let (h0, c0) = (state("h0")?, state("c0")?);
    if c0.is_some() && model.cell() != Cell::Lstm {
        return Err(Failure::new(format!("{path}: \"c0\" given for a {} model; only LSTM has a cell state", model.cell().name())));
    }
    Ok(ModelInputs { steps, batch, x: x.values, h0, c0 })
}

/// The outputs of a model run (`output`, `h_n`, LSTM's `c_n`) and the engine's name.
type ModelRun = (Vec<f32>, Vec<f32>, Option<Vec<f32>>, String);

/// `inp` through `model` on `gpu`: in one call, or in the chunks `pieces` (a
/// [`StreamingModel`]).
fn run_model_on_gpu(args: &RunArgs, gpu: &Gpu, model: &ModelWeights, inp: &ModelInputs, pieces: &[(usize, usize)]) -> CliResult<ModelRun> {
    let engine = format!("gpu: {}", gpu.info().name);
    let opts = ModelOptions { schedule: args.directions.into(), ..ModelOptions::default() };
    let mut m = progress::spin("planning and uploading", || Model::new(gpu, model, inp.batch, &opts))?;
    for l in 0..m.num_layers() {
        if let Some(c) = m.schedule(l) {
            println!("layer {l}: directions {}: {}", if m.concurrent(l) { "at once" } else { "in turn" }, c.reason);
        }
    }
    if pieces.len() == 1 {
        let (h0, c0) = (inp.h0.as_deref(), inp.c0.as_deref());
        let mut d_x = sprnn::cust::memory::DeviceBuffer::from_slice(&inp.x).map_err(|e| Failure::new(format!("copying x to the GPU: {e}")))?;
        let timing = m.forward_device(&d_x, inp.steps, h0, c0)?;
        print!("{}", timing.report(inp.steps));
        let o = m.output_to_host()?;
        if !args.graph {
            return Ok((o.output, o.h_n, o.c_n, engine));
        }
        let mut graph = m.capture(&mut d_x, inp.steps, h0, c0)?;
        let replay = graph.replay()?;
        let g = graph.output_to_host()?;
        let same = |a: &[f32], b: &[f32]| a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits());
        if !same(&g.output, &o.output) || !same(&g.h_n, &o.h_n) {
            return Err(Failure::new("the CUDA graph's replay differs from the forward pass (a bug in sprnn: please report it)"));
        }
        let per = |ms: f64| ms * 1e3 / inp.steps as f64;
        println!(
            "graph replay: {:.3} us per step on the GPU, {:.3} us per step wall (forward pass: {:.3} on the GPU, {:.3} wall)",
            per(replay.gpu_ms as f64),
            per(replay.total_ms),
            per(timing.gpu_ms as f64),
            per(timing.total_ms)
        );
        return Ok((g.output, g.h_n, g.c_n, format!("{engine}, CUDA graph")));
    }
    let per_step = inp.batch * model.input_size();
    let mut stream = StreamingModel::new(m)?;
    let progress = progress::Chunks::new(pieces.len(), None);
    if inp.h0.is_some() || inp.c0.is_some() {
        let zeros = vec![0.0; stream.model().state_len()];
        stream.set_state(inp.h0.as_deref().unwrap_or(&zeros), inp.c0.as_deref())?;
    }
    let (mut output, mut h_n, mut c_n) = (Vec::new(), Vec::new(), None);
    for &(t0, n) in pieces {
        let o = stream.forward(&inp.x[t0 * per_step..(t0 + n) * per_step], n)?;
        output.extend_from_slice(&o.output);
        (h_n, c_n) = (o.h_n, o.c_n);
        progress.step();
    }
    Ok((output, h_n, c_n, engine))
}

/// `sprnn run` on a model input `x`: every layer and direction of the weights file.
fn run_model(args: &RunArgs, file: &tensors::File, gpu: Option<Gpu>) -> CliResult {
    let src = &args.layer;
    let Some(path) = src.weights.as_ref().filter(|_| !src.random) else {
        return Err(Failure::new("a model input \"x\" needs --weights FILE with every layer's weight_ih and weight_hh (--random makes one layer's W_hh only)"));
    };
    if src.layer != 0 || src.reverse {
        return Err(Failure::new("--layer and --reverse pick one layer for a \"u\" input; a model input \"x\" runs every layer and direction"));
    }
    let cell = Cell::from(src.cell);
    let model = progress::spin("loading weights", || ModelWeights::load_with(path, cell, &args.layer.load_options())).map_err(|e| match e {
        WeightsError::Io { .. } => Failure::from(e),
        e => Failure::new(format!("{}: {e}", path.display())),
    })?;
    let inp = read_model_inputs(args, file, &model)?;
    let (steps, b, i) = (inp.steps, inp.batch, model.input_size());
    let (dirs, h) = (model.directions(), model.hidden());
    let chunk = args.chunk.unwrap_or(steps).min(steps);
    if chunk < steps && dirs == 2 {
        return Err(Failure::new(format!("--chunk {chunk}: {}", sprnn::Error::NotStreamable { directions: 2 })));
    }
    let pieces = chunks(steps, chunk);
    let started = Instant::now();
    let per_step = b * i;
    let (output, h_n, c_n, engine) = match gpu {
        Some(gpu) => run_model_on_gpu(args, &gpu, &model, &inp, &pieces)?,
        None => {
            let precision = args.precision.for_cell(cell);
            let mut state = ModelStreamState::new(cell, model.num_layers(), b, h);
            let progress = progress::Chunks::new(pieces.len(), Some("running the CPU reference"));
            let mut output = Vec::with_capacity(steps * b * dirs * h);
            let (mut h_n, mut c_n) = (Vec::new(), None);
            for (k, &(t0, n)) in pieces.iter().enumerate() {
                let (h0, c0) = if k == 0 { (inp.h0.as_deref(), inp.c0.as_deref()) } else { state.initial() };
                let o = reference::forward_model(&model, reference::Sequences::new(&inp.x[t0 * per_step..(t0 + n) * per_step], n, b).with_state(h0, c0).continuing(t0 as u64), precision)?;
                if dirs == 1 {
                    state.advance(n, &o.h_n, o.c_n.as_deref())?;
                }
                output.extend_from_slice(&o.output);
                (h_n, c_n) = (o.h_n, o.c_n);
                progress.step();
            }
            (output, h_n, c_n, format!("the CPU reference ({} arithmetic)", args.precision.name()))
        }
    };
    let elapsed = started.elapsed();
    let ld = model.num_layers() * dirs;
    let mut tensors: Vec<(&str, Vec<usize>, &[f32])> = vec![("output", vec![steps, b, dirs * h], &output), ("h_n", vec![ld, b, h], &h_n)];
    if let Some(c) = &c_n {
        tensors.push(("c_n", vec![ld, b, h], c));
    }
    let meta = HashMap::from([
        ("format".to_string(), "pt".to_string()),
        ("sprnn.cell".to_string(), cell.name().to_string()),
        ("sprnn.engine".to_string(), engine.clone()),
    ]);
    tensors::write(&args.output, &tensors, meta)?;
    println!(
        "ran a {}-layer {}{} model ({}) for T = {steps}, B = {b} on {engine} in {:.1} ms ({:.2} us per step, {}{}); wrote output [{steps}, {b}, {}], h_n [{ld}, {b}, {h}]{} to {}",
        model.num_layers(),
        if dirs == 2 { "bidirectional " } else { "" },
        cell.name(),
        path.display(),
        elapsed.as_secs_f64() * 1e3,
        elapsed.as_secs_f64() * 1e6 / steps as f64,
        timing_label(args.reference),
        if pieces.len() > 1 { format!(", {} chunks", pieces.len()) } else { String::new() },
        dirs * h,
        if c_n.is_some() { format!(" and c_n [{ld}, {b}, {h}]") } else { String::new() },
        args.output.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{chunks, RunArgs};
    use clap::Parser;
    use sprnn::model::DirectionSchedule;

    #[derive(Parser, Debug)]
    struct Cli {
        #[command(flatten)]
        run: RunArgs,
    }

    fn parse(extra: &[&str]) -> Result<RunArgs, clap::Error> {
        let base = ["sprnn", "--weights", "w.safetensors", "--cell", "gru", "--input", "x.safetensors", "--output", "o.safetensors"];
        Cli::try_parse_from(base.iter().chain(extra)).map(|c| c.run)
    }

    #[test]
    fn graph_and_directions_options() {
        let a = parse(&[]).unwrap();
        assert!(!a.graph);
        assert_eq!(DirectionSchedule::from(a.directions), DirectionSchedule::Auto);
        let a = parse(&["--graph", "--directions", "at-once"]).unwrap();
        assert!(a.graph);
        assert_eq!(DirectionSchedule::from(a.directions), DirectionSchedule::Concurrent);
        assert_eq!(DirectionSchedule::from(parse(&["--directions", "in-turn"]).unwrap().directions), DirectionSchedule::Sequential);
        // The graph is the GPU's, over the whole sequence.
        assert!(parse(&["--graph", "--reference"]).is_err());
        assert!(parse(&["--graph", "--chunk", "4"]).is_err());
        assert!(parse(&["--directions", "sideways"]).is_err());
    }

    #[test]
    fn chunks_cover_the_sequence() {
        assert_eq!(chunks(10, 4), vec![(0, 4), (4, 4), (8, 2)]);
        assert_eq!(chunks(3, 10), vec![(0, 3)]);
        assert_eq!(chunks(1, 1), vec![(0, 1)]);
    }
}
