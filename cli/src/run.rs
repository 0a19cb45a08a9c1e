//! `sprnn run`: one layer over `U` from a file, on the GPU or the CPU reference.
//!
//! The sequence is fed in chunks of `--chunk` steps (default: all of it, or the most the
//! kernel's 32-bit indices allow per call) through [`sprnn::StreamingLayer`] on the GPU and
//! [`sprnn::StreamState`] around the reference, so the result does not depend on the chunking.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Instant;

use clap::{Args, ValueEnum};
use sprnn::layer::Input;
use sprnn::reference::{self, Precision};
use sprnn::{Cell, Gpu, LayerOptions, SparseRecurrentLayer, StreamState, StreamingLayer};

use crate::layer::{self, Layer, LayerSource};
use crate::tensors::{self, Tensor};
use crate::{progress, CliResult, Failure};

/// Arithmetic of the CPU reference.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum PrecisionArg {
    /// fp16 weights and hidden state, f32 sums and cell math: exactly where the GPU rounds.
    DeviceFaithful,
    /// Everything in f32.
    F32,
    /// Everything in f64 (h rounded to f32 at the end of each chunk).
    F64,
}

/// Arguments of `sprnn run`.
#[derive(Args, Debug)]
#[command(after_help = "\
Input file (--input): safetensors with tensor \"u\", F32 or F16, shape [T, B, G*H]: the input
pre-activations W_ih x_t + b_ih of every step t and sequence b, gates in PyTorch's order
(RNN [h], GRU [r, z, n], LSTM [i, f, g, o]), without b_hh (the layer adds it). Optional \"h0\"
and, for LSTM, \"c0\", shape [B, H] (default zeros). Other tensors are ignored.

Output file (--output): safetensors with \"h\", F32 [T, B, H] (every step's hidden state) and,
for LSTM, \"c\", F32 [B, H] (the final cell state); metadata sprnn.cell and sprnn.engine.

In Python: safetensors.torch.save_file({\"u\": u.float().contiguous()}, \"u.safetensors\").")]
pub struct RunArgs {
    #[command(flatten)]
    pub layer: LayerSource,
    /// Safetensors file holding "u" [T, B, G*H] (and optionally "h0", "c0" [B, H]).
    #[arg(long, value_name = "FILE")]
    pub input: PathBuf,
    /// Safetensors file to write "h" [T, B, H] (and LSTM's "c" [B, H]) to.
    #[arg(long, value_name = "FILE")]
    pub output: PathBuf,
    /// Expected batch size: an error unless "u" has this B.
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

fn read_inputs(args: &RunArgs, l: &Layer) -> CliResult<Inputs> {
    let file = tensors::File::read(&args.input)?;
    let path = file.path().to_string();
    let (g, h) = (l.cell.gates(), l.hidden());
    let u = file.get("u")?.ok_or_else(|| Failure::new(format!("{path}: no tensor \"u\" (expected [T, B, G*H] = [T, B, {}])", g * h)))?;
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
    if steps == 0 || batch == 0 {
        return Err(Failure::new(format!("{path}: \"u\" has shape {:?}; T and B must be at least 1", u.shape)));
    }
    if let Some(b) = args.batch {
        if b != batch {
            return Err(Failure::new(format!("--batch {b}, but \"u\" in {path} holds batch {batch} (shape {:?})", u.shape)));
        }
    }
    check_finite(&path, "u", &u.values)?;
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

/// Runs `sprnn run`.
pub fn main(args: &RunArgs) -> CliResult {
    if args.chunk == Some(0) {
        return Err(Failure::new("--chunk must be at least 1"));
    }
    let gpu = if args.reference {
        None
    } else {
        Some(Gpu::new(0).map_err(|e| {
            let mut f = Failure::from(e);
            f.message.push_str("; run the CPU reference instead with --reference");
            f
        })?)
    };
    let l = layer::load(&args.layer)?;
    let inp = read_inputs(args, &l)?;
    let (g, h, b, steps) = (l.cell.gates(), l.hidden(), inp.batch, inp.steps);
    let per_step = b * g * h;
    // The kernel indexes U with 32 bits: at most this many steps per call.
    let max_chunk = (u32::MAX as usize / per_step).max(1);
    let chunk = args.chunk.unwrap_or(steps).min(max_chunk);
    let pieces = chunks(steps, chunk);
    let bar = (pieces.len() > 1).then(|| progress::bar(pieces.len() as u64));
    let started = Instant::now();
    let mut out_h = Vec::with_capacity(steps * b * h);
    let mut out_c = None;
    let engine;
    match gpu {
        Some(gpu) => {
            engine = format!("gpu: {}", gpu.info().name);
            let layer = progress::spin("planning and uploading", || {
                SparseRecurrentLayer::new(&gpu, l.cell, &l.w_hh, &l.b_hh, b, &LayerOptions::default())
            })?;
            let mut stream = StreamingLayer::new(layer);
            if inp.h0.is_some() || inp.c0.is_some() {
                let zeros = vec![0.0; b * h];
                stream.set_state(inp.h0.as_deref().unwrap_or(&zeros), inp.c0.as_deref())?;
            }
            for &(t0, n) in &pieces {
                let range = t0 * per_step..(t0 + n) * per_step;
                let u = match &inp.u.f16 {
                    Some(v) => Input::F16(&v[range]),
                    None => Input::F32(&inp.u.values[range]),
                };
                let o = stream.forward(u, n)?;
                out_h.extend_from_slice(&o.h);
                out_c = o.c;
                if let Some(bar) = &bar {
                    bar.inc(1);
                }
            }
        }
        None => {
            let precision = match args.precision {
                PrecisionArg::DeviceFaithful => Precision::DeviceFaithful,
                PrecisionArg::F32 => Precision::F32,
                PrecisionArg::F64 => Precision::F64,
            };
            engine = format!("reference: {precision:?}");
            let mut state = StreamState::new(l.cell, b, h);
            if inp.h0.is_some() || inp.c0.is_some() {
                let zeros = vec![0.0; b * h];
                state.set_state(inp.h0.as_deref().unwrap_or(&zeros), inp.c0.as_deref())?;
            }
            let spinner = (pieces.len() == 1).then(|| progress::spin_start("running the CPU reference"));
            for &(t0, n) in &pieces {
                let (h0, c0) = state.initial();
                let u = &inp.u.values[t0 * per_step..(t0 + n) * per_step];
                let o = reference::forward_u(l.cell, &l.w_hh, &l.b_hh, u, n, b, h0, c0, precision)?;
                state.advance(n, &o.h, o.c.as_deref())?;
                out_h.extend_from_slice(&o.h);
                out_c = o.c;
                if let Some(bar) = &bar {
                    bar.inc(1);
                }
            }
            if let Some(s) = spinner {
                s.finish_and_clear();
            }
        }
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
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
        "ran {} ({}) for T = {steps}, B = {b} on {engine} in {:.1} ms ({:.2} us per step, wall time with transfers{}); wrote h [{steps}, {b}, {h}]{} to {}",
        l.cell.name(),
        l.source,
        elapsed.as_secs_f64() * 1e3,
        elapsed.as_secs_f64() * 1e6 / steps as f64,
        if pieces.len() > 1 { format!(", {} chunks", pieces.len()) } else { String::new() },
        if out_c.is_some() { format!(" and c [{b}, {h}]") } else { String::new() },
        args.output.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::chunks;

    #[test]
    fn chunks_cover_the_sequence() {
        assert_eq!(chunks(10, 4), vec![(0, 4), (4, 4), (8, 2)]);
        assert_eq!(chunks(3, 10), vec![(0, 3)]);
        assert_eq!(chunks(1, 1), vec![(0, 1)]);
    }
}
