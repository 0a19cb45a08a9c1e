//! The timing protocol that `sprnn bench` (the CLI) and the benchmark programs share: seeded
//! random layers ([`random_layer`]) and inputs ([`random_input`]), and [`time_layer`], the
//! median per-step time of a layer over repeated runs beside the exchange floor of the same
//! launch ([`SparseRecurrentLayer::forward_exchange_floor`]).
//!
//! Same seed, same layer and inputs on every machine, so timings from different runs and
//! programs measure the same work.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::tensors::{DeviceInput, Input};
use crate::sparse::random_recurrent;
use crate::{Cell, Csr, Gpu, Result, SparseRecurrentLayer};

/// A random pruned layer: `W_hh` (`G·H × H`, density `d`, every gate block's largest singular
/// value ≤ 0.9) and `b_hh`, from `seed`.
pub fn random_layer(seed: u64, cell: Cell, hidden: usize, density: f64) -> Result<(Csr, Vec<f32>)> {
    let g = cell.gates();
    let w = random_recurrent(seed, g * hidden, hidden, density, 0.9)?;
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0xB1A5);
    let b: Vec<f32> = (0..g * hidden).map(|_| rng.gen_range(-0.1f32..0.1)).collect();
    Ok((w, b))
}

/// Random input pre-activations `U` (`T·B·G·H` values in [-1, 1)) from `seed`.
pub fn random_input(seed: u64, len: usize) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..len).map(|_| rng.gen_range(-1.0f32..1.0)).collect()
}

/// Median of a non-empty list.
pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 { v[n / 2] } else { 0.5 * (v[n / 2 - 1] + v[n / 2]) }
}

/// Per-step times (µs) of a layer and of its exchange floor: medians over `repeats` runs after
/// `warmup` runs, rotating among `inputs` different input sets.
pub fn time_layer(gpu: &Gpu, layer: &mut SparseRecurrentLayer, steps: usize, repeats: usize, warmup: usize, inputs: usize, seed: u64) -> Result<(f64, f64)> {
    let sets: Vec<DeviceInput> = (0..inputs.max(1))
        .map(|i| DeviceInput::upload(gpu, Input::F32(&random_input(seed + i as u64, layer.input_len(steps)))))
        .collect::<Result<_>>()?;
    let mut out = layer.alloc_output(steps)?;
    let mut run = |floor: bool| -> Result<f64> {
        let mut ts = Vec::new();
        for r in 0..warmup + repeats {
            let u = &sets[r % sets.len()];
            let ms = if floor { layer.forward_exchange_floor(u, &mut out)? } else { layer.forward_device(u, None, None, &mut out, None)? };
            if r >= warmup {
                ts.push(ms as f64 * 1e3 / steps as f64);
            }
        }
        Ok(median(ts))
    };
    let t = run(false)?;
    let f = run(true)?;
    Ok((t, f))
}
