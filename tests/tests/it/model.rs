//! Whole models on the GPU: the input projection (`sprnn::projection`), stacked and
//! bidirectional models (`sprnn::model`) and streaming models (`sprnn::StreamingModel`).
//!
//! CPU twins: PyTorch's fixtures through the model's numerics emulated on the CPU reference
//! (fp16-rounded `x` and `W_ih`), the streaming hand-over driven through the reference, and the
//! co-residency rule. GPU tests (printing "skipped: no CUDA device" without one): the projection
//! against an f64 product on random shapes with edges, dense and sparse, straight and
//! time-reversed; random models against `reference::forward_model`; the PyTorch fixtures end to
//! end; concurrent against sequential directions; chunked against one call. Every GPU output
//! is NaN-poisoned before the run.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use safetensors::tensor::SafeTensors;
use sprnn::cust::memory::DeviceBuffer;
use sprnn::layer::DeviceInput;
use sprnn::layout::DeviceInfo;
use sprnn::model::{co_resident, CtaFootprint, DirectionSchedule, ModelOptions};
use sprnn::reference::{compare_steps, forward_model, ModelOutput, Precision, Sequences, DEVICE_TOLERANCE};
use sprnn::sparse::{Dense, Matrix};
use sprnn::weights::{LayerWeights, ModelWeights};
use sprnn_kernels::format::PROJECTION_VARIANTS;
use sprnn::{Cell, Csr, Error, Gpu, InputProjection, Model, ModelStreamState, StreamingModel};

use crate::common::{fixture_cell, fixture_floats, gpu, random_vec, seed, FIXTURES};

const CELLS: [Cell; 4] = [Cell::RnnRelu, Cell::RnnTanh, Cell::Gru, Cell::Lstm];

/// `v` rounded to the nearest fp16 value (as f32).
pub(crate) fn fp16(v: &[f32]) -> Vec<f32> {
    v.iter().map(|&x| half::f16::from_f32(x).to_f32()).collect()
}

/// A random `rows × cols` matrix with about `density` of its entries nonzero, in ±`scale`: the
/// library's generator ([`sprnn::sparse::random_uniform`]) seeded from `rng`.
fn random_sparse(rng: &mut ChaCha8Rng, rows: usize, cols: usize, density: f64, scale: f32) -> Csr {
    sprnn::sparse::random_uniform(rows, cols, density, rng.gen()).map_values(|v| v * scale).unwrap()
}

// ---------------------------------------------------------------------------------------------
// Input projection
// ---------------------------------------------------------------------------------------------

/// `(I, G·H, T, B)`: single elements, exact tiles, edges in every dimension, several k-stages,
/// and an NMT-sized block. For the dense GEMM (128-row tiles of 128, 160 or 256 columns,
/// k-tiles of 64, `I` padded to a multiple of 8): `I` below, at and past a k-tile and not a
/// multiple of 8 (1, 37, 77, 300, 513), `T·B` past one and several row tiles (261, 250), `G·H`
/// odd (291, 530 → scalar stores) and ragged against every tile width (72, 130, 200, 530, 700).
const PROJECTION_SHAPES: [(usize, usize, usize, usize); 11] = [
    (1, 1, 1, 1),
    (16, 8, 1, 1),
    (37, 72, 5, 3),
    (64, 64, 8, 8),
    (32, 130, 3, 7),
    (130, 200, 7, 9),
    (300, 3 * 97, 11, 4),
    (513, 4 * 33, 2, 1),
    (77, 530, 29, 9),
    (1000, 700, 5, 50),
    (1024, 4096, 16, 4),
];

/// Checks a GPU projection `got` (`[T][B][G·H]`, slot order as `reverse` says) against f64
/// products. `(w_eff, x_eff)` are the operands the kernel multiplies (fp16-rounded for the
/// dense kernel, exact for the sparse one); `tight` bounds the difference from their f64
/// product per unit of `Σ|w·x|` (f32 summation), `loose` the difference from the exact
/// product (the operands' rounding included). Returns the worst tight and loose ratios.
#[allow(clippy::too_many_arguments)]
fn check_projection(
    case: &str,
    got: &[f32],
    w: &Matrix,
    w_eff: &[f32],
    x: &[f32],
    x_eff: &[f32],
    b: &[f32],
    (input, gh, steps, batch): (usize, usize, usize, usize),
    reverse: bool,
    tight: f64,
    loose: f64,
) {
    let dense_w = w.to_dense();
    let (mut worst_t, mut worst_l) = (0.0f64, 0.0f64);
    for t in 0..steps {
        for bb in 0..batch {
            let n = t * batch + bb;
            let slot = if reverse { (steps - 1 - t) * batch + bb } else { n };
            for j in 0..gh {
                let (mut exact, mut eff, mut mag, mut absw) = (b[j] as f64, b[j] as f64, 0.0f64, 0.0f64);
                for k in 0..input {
                    let (wv, xv) = (dense_w[j * input + k] as f64, x[n * input + k] as f64);
                    exact += wv * xv;
                    eff += w_eff[j * input + k] as f64 * x_eff[n * input + k] as f64;
                    mag += (wv * xv).abs();
                    absw += wv.abs() + xv.abs();
                }
                let g = got[slot * gh + j] as f64;
                assert!(g.is_finite(), "{case}: output ({t}, {bb}, {j}) is {g} (not written?)");
                let floor = 1e-7 * (b[j] as f64).abs() + 1e-30;
                let et = (g - eff).abs() / (tight * mag + floor);
                let el = (g - exact).abs() / (loose * mag + 6e-8 * absw + floor);
                assert!(et <= 1.0, "{case}: output ({t}, {bb}, {j}) = {g}, product of the kernel's operands {eff}, |w·x| sum {mag:.3e}");
                assert!(el <= 1.0, "{case}: output ({t}, {bb}, {j}) = {g}, exact {exact}, |w·x| sum {mag:.3e}");
                worst_t = worst_t.max(et);
                worst_l = worst_l.max(el);
            }
        }
    }
    println!("{case}: worst error / bound: {worst_t:.3} (operands as rounded), {worst_l:.3} (exact)");
}

/// Runs `proj` on poisoned output and returns `U` on the host.
fn project_poisoned(gpu: &Gpu, proj: &InputProjection, x: &[f32], steps: usize, batch: usize, reverse: bool) -> Vec<f32> {
    let d_x = DeviceBuffer::from_slice(x).unwrap();
    let mut out = DeviceInput::alloc_f32(gpu, steps * batch * proj.outputs()).unwrap();
    out.poison(gpu).unwrap();
    proj.project(&d_x, steps, batch, reverse, &mut out, None).expect("project");
    out.to_host(gpu).unwrap()
}

#[test]
fn dense_projection_matches_f64_on_random_shapes() {
    let Some(gpu) = gpu() else { return };
    let s = seed("dense projection");
    for (i, &(input, gh, steps, batch)) in PROJECTION_SHAPES.iter().enumerate() {
        for reverse in [false, true] {
            let mut rng = ChaCha8Rng::seed_from_u64(s + i as u64);
            let w = random_vec(&mut rng, gh * input, 1.0);
            let b = random_vec(&mut rng, gh, 0.5);
            let x = random_vec(&mut rng, steps * batch * input, 1.0);
            let m = Matrix::Dense(Dense::new(gh, input, w.clone()).unwrap());
            let mut proj = InputProjection::new(&gpu, &m, &b).unwrap();
            assert!(!proj.is_sparse());
            let chosen = proj.dense_variant(steps * batch).expect("a GEMM variant fits");
            // The variant the projection chooses, then every variant pinned: each one's tile
            // edges fall elsewhere in the shape, and all must give the same bits.
            let mut first: Option<Vec<f32>> = None;
            for variant in std::iter::once(None).chain(PROJECTION_VARIANTS.map(Some)) {
                if let Err(e) = proj.pin_dense_variant(variant) {
                    println!("dense I={input} GH={gh}: variant {variant:?} not run on this GPU: {e}");
                    continue;
                }
                let got = project_poisoned(&gpu, &proj, &x, steps, batch, reverse);
                let v = variant.unwrap_or(chosen);
                let case = format!("dense I={input} GH={gh} T={steps} B={batch} reverse={reverse} variant {v:?}{}", if variant.is_none() { " (chosen)" } else { "" });
                // Tight: f32 sums of exact fp16 products, (I + 2) roundings at most, each allowed
                // a whole ulp twice over (tensor cores align and truncate rather than round).
                // Loose: plus the fp16 rounding of both operands, (1 + 2^-11)^2 - 1 < 1.001 * 2^-10.
                let sum = 2.0 * (input + 2) as f64 * f32::EPSILON as f64;
                match &first {
                    None => {
                        check_projection(&case, &got, &m, &fp16(&w), &x, &fp16(&x), &b, (input, gh, steps, batch), reverse, sum, sum + 1.001 * 2f64.powi(-10));
                        first = Some(got);
                    }
                    Some(f) => {
                        let diff = f.iter().zip(&got).position(|(a, b)| a.to_bits() != b.to_bits());
                        assert!(diff.is_none(), "{case}: output {} differs from the chosen variant's: {} vs {}", diff.unwrap(), got[diff.unwrap()], f[diff.unwrap()]);
                        println!("{case}: same bits as the chosen variant");
                    }
                }
            }
        }
    }
}

#[test]
fn sparse_projection_matches_f64_on_random_shapes() {
    let Some(gpu) = gpu() else { return };
    let s = seed("sparse projection");
    for (i, &(input, gh, steps, batch)) in PROJECTION_SHAPES.iter().enumerate() {
        for (density, reverse) in [(0.1, false), (0.5, true)] {
            let mut rng = ChaCha8Rng::seed_from_u64(s + i as u64);
            let w = random_sparse(&mut rng, gh, input, density, 1.0);
            let b = random_vec(&mut rng, gh, 0.5);
            let x = random_vec(&mut rng, steps * batch * input, 1.0);
            let dense = w.to_dense();
            let m = Matrix::Sparse(w);
            let proj = InputProjection::new(&gpu, &m, &b).unwrap();
            assert!(proj.is_sparse());
            let got = project_poisoned(&gpu, &proj, &x, steps, batch, reverse);
            let case = format!("sparse d={density} I={input} GH={gh} T={steps} B={batch} reverse={reverse}");
            // f32 fused multiply-adds: one rounding per term and one for the bias.
            let sum = (input + 2) as f64 * f32::EPSILON as f64;
            check_projection(&case, &got, &m, &dense, &x, &x, &b, (input, gh, steps, batch), reverse, sum, sum);
        }
    }
}

#[test]
fn projection_refuses_bad_shapes_before_launching() {
    let Some(gpu) = gpu() else { return };
    let (input, gh) = (10, 12);
    let m = Matrix::Dense(Dense::new(gh, input, vec![0.5; gh * input]).unwrap());
    let r = InputProjection::new(&gpu, &m, &[0.0; 11]);
    assert!(matches!(r, Err(Error::Input { name: "b_ih", .. })), "{r:?}");
    let mut big = vec![0.5; gh * input];
    big[13] = 70000.0;
    let r = InputProjection::new(&gpu, &Matrix::Dense(Dense::new(gh, input, big).unwrap()), &[0.0; 12]);
    assert!(matches!(r, Err(Error::Input { name: "w_ih", .. })), "{r:?}");
    let proj = InputProjection::new(&gpu, &m, &[0.0; 12]).unwrap();
    let x = DeviceBuffer::from_slice(&[0.25f32; 3 * 2 * 10]).unwrap();
    let mut out = DeviceInput::alloc_f32(&gpu, 3 * 2 * gh).unwrap();
    let name = |r: sprnn::Result<f32>| match r {
        Err(Error::Input { name, .. }) => name,
        other => panic!("expected an input error, got {other:?}"),
    };
    assert_eq!(name(proj.project(&x, 0, 2, false, &mut out, None)), "steps");
    assert_eq!(name(proj.project(&x, 3, 0, false, &mut out, None)), "batch");
    assert_eq!(name(proj.project(&x, 2, 2, false, &mut out, None)), "x");
    let mut short = DeviceInput::alloc_f32(&gpu, 3 * 2 * gh - 1).unwrap();
    assert_eq!(name(proj.project(&x, 3, 2, false, &mut short, None)), "u");
    let mut half_out = DeviceInput::upload(&gpu, sprnn::layer::Input::F16(&vec![half::f16::ZERO; 3 * 2 * gh])).unwrap();
    assert_eq!(name(proj.project(&x, 3, 2, false, &mut half_out, None)), "u");
    assert_eq!(name(proj.project(&x, usize::MAX / 2, 4, false, &mut out, None)), "steps");
    // Still usable: 0.5 * 0.25 * 10 = 1.25 everywhere.
    proj.project(&x, 3, 2, true, &mut out, None).unwrap();
    assert!(out.to_host(&gpu).unwrap().iter().all(|&v| v == 1.25));
}

// ---------------------------------------------------------------------------------------------
// Models
// ---------------------------------------------------------------------------------------------

/// How `W_ih` is stored in a random model.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum InputWeights {
    /// Dense, values fp16-representable (the dense kernel's rounding is then exact).
    DenseFp16,
    /// Pruned to 30 %, CSR (the f32 kernel).
    Sparse,
}

/// A random model: `layers` layers of `dirs` directions, recurrent density 0.2, `W_ih`
/// entries in ±1/√I.
pub(crate) fn random_model(seed: u64, cell: Cell, input: usize, hidden: usize, layers: usize, dirs: usize, inputs: InputWeights) -> ModelWeights {
    let g = cell.gates();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut stack = Vec::new();
    for l in 0..layers {
        let mut layer = Vec::new();
        for d in 0..dirs {
            let i = if l == 0 { input } else { dirs * hidden };
            let scale = 1.0 / (i as f32).sqrt();
            let w_hh = sprnn::sparse::random_recurrent(seed + (10 * l + d) as u64, g * hidden, hidden, 0.2, 0.9).unwrap();
            let w_ih = match inputs {
                InputWeights::DenseFp16 => Matrix::Dense(Dense::new(g * hidden, i, fp16(&random_vec(&mut rng, g * hidden * i, scale))).unwrap()),
                InputWeights::Sparse => Matrix::Sparse(random_sparse(&mut rng, g * hidden, i, 0.3, 2.0 * scale)),
            };
            let (b_ih, b_hh) = (random_vec(&mut rng, g * hidden, 0.2), random_vec(&mut rng, g * hidden, 0.2));
            layer.push(LayerWeights::new(cell, w_ih, w_hh, b_ih, b_hh).unwrap());
        }
        stack.push(layer);
    }
    ModelWeights::new(cell, stack).unwrap()
}

/// Worst per-step error of a model run against the reference: output, `h_n`, `c_n`.
pub(crate) fn model_error(got: &ModelOutput, want: &ModelOutput, steps: usize, batch: usize, width: usize, hidden: usize) -> f64 {
    let blocks = want.h_n.len() / (batch * hidden);
    let mut e = compare_steps(&got.output, &want.output, steps, batch, width).worst;
    e = e.max(compare_steps(&got.h_n, &want.h_n, blocks, batch, hidden).worst);
    match (&got.c_n, &want.c_n) {
        (Some(g), Some(w)) => e.max(compare_steps(g, w, blocks, batch, hidden).worst),
        (None, None) => e,
        _ => f64::INFINITY,
    }
}

/// Runs `model` on poisoned buffers.
pub(crate) fn run_poisoned(model: &mut Model, x: &[f32], steps: usize, h0: Option<&[f32]>, c0: Option<&[f32]>) -> ModelOutput {
    model.poison(steps).unwrap();
    model.forward(x, steps, h0, c0).expect("model forward")
}

#[test]
fn random_models_match_the_reference() {
    let Some(gpu) = gpu() else { return };
    let s = seed("random models");
    // (layers, directions, input size, hidden, batch, steps): edges everywhere (I and H not
    // multiples of 16, odd batches).
    let shapes = [(1, 1, 40, 96, 3, 24), (2, 1, 37, 128, 2, 20), (1, 2, 24, 72, 3, 17), (3, 2, 50, 64, 4, 16)];
    for (i, cell) in CELLS.into_iter().enumerate() {
        for (j, &(layers, dirs, input, hidden, batch, steps)) in shapes.iter().enumerate() {
            for inputs in [InputWeights::DenseFp16, InputWeights::Sparse] {
                for with_state in [false, true] {
                    let k = s + (100 * i + 10 * j) as u64 + with_state as u64;
                    let weights = random_model(k, cell, input, hidden, layers, dirs, inputs);
                    let mut rng = ChaCha8Rng::seed_from_u64(k ^ 0x1234);
                    let x = fp16(&random_vec(&mut rng, steps * batch * input, 1.0));
                    let n = layers * dirs * batch * hidden;
                    let h0 = with_state.then(|| random_vec(&mut rng, n, 0.5));
                    let c0 = (with_state && cell == Cell::Lstm).then(|| random_vec(&mut rng, n, 0.5));
                    let mut model = Model::new(&gpu, &weights, batch, &ModelOptions::default()).expect("model");
                    // Every join but the last is fused into a dense projection above it; a
                    // sparse projection reads the joined rows.
                    let fused: Vec<bool> = (0..layers).map(|l| model.join_fused(l)).collect();
                    assert_eq!(fused, (0..layers).map(|l| dirs == 2 && l + 1 < layers && inputs == InputWeights::DenseFp16).collect::<Vec<_>>());
                    let got = run_poisoned(&mut model, &x, steps, h0.as_deref(), c0.as_deref());
                    let want = forward_model(&weights, Sequences::new(&x, steps, batch).with_state(h0.as_deref(), c0.as_deref()), device_faithful(cell)).unwrap();
                    let e = model_error(&got, &want, steps, batch, dirs * hidden, hidden);
                    // One fp16 ulp of a layer's h moves the next layer's input: allow one
                    // device tolerance per layer.
                    let tol = DEVICE_TOLERANCE * layers as f64;
                    let concurrent: Vec<bool> = (0..layers).map(|l| model.concurrent(l)).collect();
                    println!("{cell:?} L={layers} D={dirs} I={input} H={hidden} B={batch} T={steps} {inputs:?} state={with_state}: worst {e:.2e} (concurrent {concurrent:?})");
                    assert!(e <= tol, "{cell:?} L={layers} D={dirs} {inputs:?} state={with_state}: error {e:.3e} > {tol:.1e}");
                }
            }
        }
    }
}

#[test]
fn concurrent_and_sequential_directions_agree_bit_for_bit() {
    let Some(gpu) = gpu() else { return };
    let s = seed("direction schedules");
    for cell in [Cell::Gru, Cell::Lstm] {
        let (layers, input, hidden, batch, steps) = (2, 33, 80, 2, 19);
        let weights = random_model(s, cell, input, hidden, layers, 2, InputWeights::DenseFp16);
        let mut rng = ChaCha8Rng::seed_from_u64(s + 1);
        let x = random_vec(&mut rng, steps * batch * input, 1.0);
        let mut auto = Model::new(&gpu, &weights, batch, &ModelOptions::default()).unwrap();
        let opts = ModelOptions { schedule: DirectionSchedule::Sequential, ..ModelOptions::default() };
        let mut seq = Model::new(&gpu, &weights, batch, &opts).unwrap();
        assert!((0..layers).all(|l| !seq.concurrent(l)));
        println!("{cell:?}: concurrent directions: {:?}", (0..layers).map(|l| auto.concurrent(l)).collect::<Vec<_>>());
        // These small layers fit twice on every SM: Auto must run them concurrently.
        assert!((0..layers).all(|l| auto.concurrent(l)), "small layers should be co-resident");
        let a = run_poisoned(&mut auto, &x, steps, None, None);
        let b = run_poisoned(&mut seq, &x, steps, None, None);
        assert_same_bits(&a, &b, &format!("{cell:?}"));
    }
}

#[test]
fn a_large_bidirectional_layer_matches_the_reference() {
    // A layer planned to fill the GPU (DeepSpeech-like, GRU H = 1024): its two directions
    // cannot be resident together as planned for the whole GPU, so Auto runs them in turn or
    // plans each for half the SMs (whichever the estimates favour).
    let Some(gpu) = gpu() else { return };
    let s = seed("large bidirectional");
    let (input, hidden, batch, steps) = (64, 1024, 4, 10);
    for inputs in [InputWeights::DenseFp16, InputWeights::Sparse] {
        let weights = random_model(s, Cell::Gru, input, hidden, 1, 2, inputs);
        let mut rng = ChaCha8Rng::seed_from_u64(s ^ 99);
        let x = fp16(&random_vec(&mut rng, steps * batch * input, 1.0));
        let mut model = Model::new(&gpu, &weights, batch, &ModelOptions::default()).unwrap();
        let sprnn::LaunchShape { ctas: grid, threads_per_cta: threads, smem_bytes: smem, kernel, .. } = model.layer(0, 0).shape();
        println!("{inputs:?}: {grid} CTAs x {threads} threads, {} registers, {smem} B shared, {kernel}; concurrent {}", model.layer(0, 0).registers_per_thread(), model.concurrent(0));
        let got = run_poisoned(&mut model, &x, steps, None, None);
        let want = forward_model(&weights, Sequences::new(&x, steps, batch), device_faithful(Cell::Gru)).unwrap();
        let e = model_error(&got, &want, steps, batch, 2 * hidden, hidden);
        println!("{inputs:?}: worst {e:.2e}");
        assert!(e <= DEVICE_TOLERANCE, "{inputs:?}: error {e:.3e}");
    }
}

// ---------------------------------------------------------------------------------------------
// PyTorch fixtures
// ---------------------------------------------------------------------------------------------

/// Largest difference from PyTorch's f64 outputs allowed for a run with fp16 input projection
/// and fp16 hidden state: the reference's own device-faithful tolerance on these fixtures. The
/// CPU twin, which emulates the model's rounding, measured at most 7.3e-4
/// (rnn_tanh_2layer_bidirectional) and must stay within half of it.
const FIXTURE_TOLERANCE: f64 = 5e-3;

struct Fixture {
    weights: ModelWeights,
    x: Vec<f32>,
    steps: usize,
    batch: usize,
    h0: Vec<f32>,
    c0: Option<Vec<f32>>,
    output: Vec<f64>,
    h_n: Vec<f64>,
    c_n: Option<Vec<f64>>,
}

fn load_fixture(name: &str, bytes: &[u8]) -> Fixture {
    let st = SafeTensors::deserialize(bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
    let cell = fixture_cell(bytes);
    let floats = |n: &str| -> Vec<f64> { fixture_floats(&st, n) };
    let shape = st.tensor("input").unwrap().shape().to_vec();
    let f32s = |v: Vec<f64>| v.into_iter().map(|x| x as f32).collect::<Vec<f32>>();
    let lstm = cell == Cell::Lstm;
    Fixture {
        weights: ModelWeights::from_safetensors(bytes, cell).unwrap(),
        x: f32s(floats("input")),
        steps: shape[0],
        batch: shape[1],
        h0: f32s(floats("h0")),
        c0: lstm.then(|| f32s(floats("c0"))),
        output: floats("output"),
        h_n: floats("h_n"),
        c_n: lstm.then(|| floats("c_n")),
    }
}

/// Largest difference of output, h_n and c_n from PyTorch's.
fn fixture_error(f: &Fixture, got: &ModelOutput) -> f64 {
    let diff = |a: &[f32], b: &[f64]| {
        assert_eq!(a.len(), b.len());
        a.iter().zip(b).map(|(&x, &y)| if x.is_nan() { f64::INFINITY } else { (x as f64 - y).abs() }).fold(0.0, f64::max)
    };
    let mut e = diff(&got.output, &f.output).max(diff(&got.h_n, &f.h_n));
    if let (Some(g), Some(w)) = (&got.c_n, &f.c_n) {
        e = e.max(diff(g, w));
    }
    e
}

/// The fixture's weights with every dense `W_ih` rounded to fp16, as the dense projection
/// multiplies them.
fn with_fp16_input_weights(m: &ModelWeights) -> ModelWeights {
    let layers = m
        .layers()
        .iter()
        .map(|dirs| {
            dirs.iter()
                .map(|w| {
                    let w_ih = match w.w_ih() {
                        Matrix::Dense(d) => Matrix::Dense(Dense::new(d.rows(), d.cols(), fp16(d.data())).unwrap()),
                        s => s.clone(),
                    };
                    LayerWeights::new(w.cell(), w_ih, w.w_hh().clone(), w.b_ih().to_vec(), w.b_hh().to_vec()).unwrap()
                })
                .collect()
        })
        .collect();
    ModelWeights::new(m.cell(), layers).unwrap()
}

/// The fixture twins' body: every fixture run by `run` (on the CPU or the GPU; `what` names
/// it) is within `tolerance` of PyTorch's outputs.
fn fixtures_match_pytorch(what: &str, tolerance: f64, mut run: impl FnMut(&str, &Fixture) -> ModelOutput) {
    for (name, bytes) in FIXTURES {
        let f = load_fixture(name, bytes);
        let got = run(name, &f);
        let e = fixture_error(&f, &got);
        println!("{name}: {what} vs PyTorch: {e:.2e}");
        assert!(e <= tolerance, "{name}: {what} off PyTorch by {e:.3e}");
    }
}

#[test]
fn fixtures_with_the_models_rounding_match_pytorch_on_the_cpu() {
    // CPU twin of the GPU fixture test: the device-faithful reference with x and dense W_ih
    // rounded to fp16, as the GPU model computes.
    fixtures_match_pytorch("emulated model", FIXTURE_TOLERANCE / 2.0, |_, f| {
        let w = with_fp16_input_weights(&f.weights);
        forward_model(&w, Sequences::new(&fp16(&f.x), f.steps, f.batch).with_state(Some(&f.h0), f.c0.as_deref()), Precision::DeviceFaithful).unwrap()
    });
}

#[test]
fn fixtures_run_end_to_end_on_the_gpu() {
    let Some(gpu) = gpu() else { return };
    fixtures_match_pytorch("GPU model", FIXTURE_TOLERANCE, |name, f| {
        let mut model = Model::new(&gpu, &f.weights, f.batch, &ModelOptions::default()).unwrap_or_else(|e| panic!("{name}: {e}"));
        run_poisoned(&mut model, &f.x, f.steps, Some(&f.h0), f.c0.as_deref())
    });
}

// ---------------------------------------------------------------------------------------------
// Streaming
// ---------------------------------------------------------------------------------------------

const CHUNKINGS: [(&str, &[usize]); 3] = [("single steps", &[1; 12]), ("uneven", &[1, 4, 7]), ("halves", &[6, 6])];

pub(crate) fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// Asserts that two runs of a model gave the same bits: the output, `h_n` and `c_n`.
pub(crate) fn assert_same_bits(got: &ModelOutput, want: &ModelOutput, what: &str) {
    assert_eq!(bits(&got.output), bits(&want.output), "{what}: output");
    assert_eq!(bits(&got.h_n), bits(&want.h_n), "{what}: h_n");
    assert_eq!(got.c_n.as_deref().map(bits), want.c_n.as_deref().map(bits), "{what}: c_n");
}

/// A stream of a unidirectional model, on the CPU reference or on the GPU: the twin tests feed
/// both the same chunkings through [`model_chunked_equals_one_call`].
trait ModelStream {
    /// Starts a new sequence from zeros.
    fn restart(&mut self);
    /// Runs the next `n` steps of `x`.
    fn chunk(&mut self, x: &[f32], n: usize) -> ModelOutput;
    /// The state carried now, and the steps run since the restart.
    fn carried(&self) -> ((Vec<f32>, Option<Vec<f32>>), u64);
}

/// The CPU reference run chunk by chunk through a [`ModelStreamState`].
struct ReferenceModelStream<'a> {
    weights: &'a ModelWeights,
    state: ModelStreamState,
}

impl ModelStream for ReferenceModelStream<'_> {
    fn restart(&mut self) {
        self.state.reset();
    }

    fn chunk(&mut self, x: &[f32], n: usize) -> ModelOutput {
        let (h0, c0) = self.state.initial();
        let o = forward_model(self.weights, Sequences::new(x, n, self.state.batch()).with_state(h0, c0).continuing(self.state.steps()), Precision::DeviceFaithful).unwrap();
        self.state.advance(n, &o.h_n, o.c_n.as_deref()).unwrap();
        o
    }

    fn carried(&self) -> ((Vec<f32>, Option<Vec<f32>>), u64) {
        (self.state.state(), self.state.steps())
    }
}

impl ModelStream for StreamingModel {
    fn restart(&mut self) {
        self.reset();
    }

    fn chunk(&mut self, x: &[f32], n: usize) -> ModelOutput {
        self.forward(x, n).expect("chunk")
    }

    fn carried(&self) -> ((Vec<f32>, Option<Vec<f32>>), u64) {
        (self.state(), self.steps())
    }
}

/// The twins' body: every chunking of [`CHUNKINGS`] of `x` (`steps` steps of `[B][input]`)
/// through `stream` gives, bit for bit, the one-call outputs `whole`, and leaves its final
/// state after all the steps.
fn model_chunked_equals_one_call(stream: &mut impl ModelStream, x: &[f32], steps: usize, row: usize, whole: &ModelOutput, label: &str) {
    for (name, chunks) in CHUNKINGS {
        stream.restart();
        let (mut out, mut t0) = (Vec::new(), 0);
        let mut last = None;
        for &n in chunks {
            let o = stream.chunk(&x[t0 * row..(t0 + n) * row], n);
            out.extend_from_slice(&o.output);
            t0 += n;
            last = Some(o);
        }
        let (last, case) = (last.unwrap(), format!("{label} {name}"));
        assert_eq!(bits(&out), bits(&whole.output), "{case}: output");
        assert_eq!(bits(&last.h_n), bits(&whole.h_n), "{case}: h_n");
        assert_eq!(last.c_n.as_deref().map(bits), whole.c_n.as_deref().map(bits), "{case}: c_n");
        let ((h, c), done) = stream.carried();
        assert_eq!(bits(&h), bits(&whole.h_n), "{case}: state");
        assert_eq!(c.as_deref().map(bits), whole.c_n.as_deref().map(bits), "{case}: state c");
        assert_eq!(done, steps as u64, "{case}: steps");
    }
}

#[test]
fn reference_model_chunked_equals_one_call_bit_for_bit() {
    for cell in CELLS {
        let (layers, input, hidden, batch, steps) = (2, 12, 24, 2, 12);
        let weights = random_model(3 + cell as u64, cell, input, hidden, layers, 1, InputWeights::DenseFp16);
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let x = random_vec(&mut rng, steps * batch * input, 1.0);
        let whole = forward_model(&weights, Sequences::new(&x, steps, batch), Precision::DeviceFaithful).unwrap();
        let mut stream = ReferenceModelStream { weights: &weights, state: ModelStreamState::new(cell, layers, batch, hidden) };
        model_chunked_equals_one_call(&mut stream, &x, steps, batch * input, &whole, &format!("{cell:?}"));
    }
}

#[test]
fn model_stream_state_refuses_bad_hand_overs() {
    let mut s = ModelStreamState::new(Cell::Lstm, 2, 1, 3);
    assert!(matches!(s.advance(0, &[0.0; 6], Some(&[0.0; 6])), Err(Error::Input { name: "steps", .. })));
    assert!(matches!(s.advance(1, &[0.0; 5], Some(&[0.0; 6])), Err(Error::Input { name: "h_n", .. })));
    assert!(matches!(s.advance(1, &[0.0; 6], None), Err(Error::Input { name: "c_n", .. })));
    assert!(matches!(s.set_state(&[f32::NAN; 6], None), Err(Error::Input { name: "h", .. })));
    assert_eq!(s.initial(), (None, None));
    s.advance(2, &[0.5; 6], Some(&[0.25; 6])).unwrap();
    assert_eq!(s.state(), (vec![0.5; 6], Some(vec![0.25; 6])));
    assert_eq!(s.steps(), 2);
    let mut g = ModelStreamState::new(Cell::Gru, 1, 1, 2);
    assert!(matches!(g.set_state(&[0.0; 2], Some(&[0.0; 2])), Err(Error::Input { name: "c", .. })));
    assert!(matches!(g.advance(1, &[0.0; 2], Some(&[0.0; 2])), Err(Error::Input { name: "c_n", .. })));
}

#[test]
fn gpu_streaming_model_equals_one_call_bit_for_bit() {
    let Some(gpu) = gpu() else { return };
    let s = seed("streaming model");
    for cell in CELLS {
        for inputs in [InputWeights::DenseFp16, InputWeights::Sparse] {
            let (layers, input, hidden, batch, steps) = (2, 45, 96, 3, 12);
            let weights = random_model(s + cell as u64, cell, input, hidden, layers, 1, inputs);
            let mut rng = ChaCha8Rng::seed_from_u64(s ^ 77);
            let x = random_vec(&mut rng, steps * batch * input, 1.0);
            let mut model = Model::new(&gpu, &weights, batch, &ModelOptions::default()).unwrap();
            let whole = run_poisoned(&mut model, &x, steps, None, None);
            let want = forward_model(&weights, Sequences::new(&fp16(&x), steps, batch), device_faithful(cell)).unwrap();
            let e = model_error(&whole, &want, steps, batch, hidden, hidden);
            assert!(e <= DEVICE_TOLERANCE * layers as f64, "{cell:?} {inputs:?}: one call vs reference {e:.3e}");
            let mut stream = StreamingModel::new(model).unwrap();
            model_chunked_equals_one_call(&mut stream, &x, steps, batch * input, &whole, &format!("{cell:?} {inputs:?}"));
        }
    }
}

#[test]
fn bidirectional_models_cannot_stream_and_bad_input_is_refused() {
    let Some(gpu) = gpu() else { return };
    let weights = random_model(5, Cell::Gru, 8, 32, 1, 2, InputWeights::DenseFp16);
    let model = Model::new(&gpu, &weights, 2, &ModelOptions::default()).unwrap();
    let r = StreamingModel::new(model);
    assert!(matches!(r, Err(Error::NotStreamable { directions: 2 })), "{r:?}");
    let mut model = Model::new(&gpu, &weights, 2, &ModelOptions::default()).unwrap();
    let x = vec![0.1f32; 4 * 2 * 8];
    let name = |r: sprnn::Result<ModelOutput>| match r {
        Err(Error::Input { name, .. }) => name,
        other => panic!("expected an input error, got {other:?}"),
    };
    assert_eq!(name(model.forward(&x, 0, None, None)), "steps");
    assert_eq!(name(model.forward(&x[1..], 4, None, None)), "x");
    assert_eq!(name(model.forward(&x, 4, Some(&[0.0; 3]), None)), "h0");
    assert_eq!(name(model.forward(&x, 4, None, Some(&vec![0.0; 2 * 2 * 32]))), "c0");
    let mut bad = x.clone();
    bad[3] = f32::INFINITY;
    assert_eq!(name(model.forward(&bad, 4, None, None)), "x");
    assert!(matches!(model.output_to_host(), Err(Error::Input { name: "model", .. })));
    model.forward(&x, 4, None, None).expect("a valid call after refused ones");
}

// ---------------------------------------------------------------------------------------------
// Co-residency of two directions
// ---------------------------------------------------------------------------------------------

#[test]
fn co_residency_rule() {
    let h200 = DeviceInfo::h200();
    let small = CtaFootprint { grid: 36, threads: 256, registers_per_thread: 96, smem_bytes: 8 * 1024 };
    assert!(co_resident(&small, &small, &h200));
    // A layer filling the register file: 1024 threads x 72 registers = 73728 > 65536 / 2 each.
    let big = CtaFootprint { grid: 128, threads: 1024, registers_per_thread: 72, smem_bytes: 20 * 1024 };
    assert!(!co_resident(&big, &big, &h200));
    assert!(!co_resident(&small, &big, &h200));
    // Shared memory: 2 x (113 KiB + 1 KiB) = 228 KiB fits exactly, one byte more does not.
    let half = CtaFootprint { grid: 132, threads: 128, registers_per_thread: 64, smem_bytes: 113 * 1024 };
    assert!(co_resident(&half, &half, &h200));
    assert!(!co_resident(&half, &CtaFootprint { smem_bytes: 113 * 1024 + 1, ..half }, &h200));
    // More CTAs than SMs: never (the scheduler could stack them).
    assert!(!co_resident(&CtaFootprint { grid: 133, ..small }, &small, &h200));
    // Threads: 2 x 1024 fit, 1024 + 1056 do not; registers are rounded to 8 per thread.
    let t = CtaFootprint { grid: 10, threads: 1024, registers_per_thread: 32, smem_bytes: 0 };
    assert!(co_resident(&t, &t, &h200));
    assert!(!co_resident(&t, &CtaFootprint { threads: 1056, ..t }, &h200));
    assert!(!co_resident(&t, &CtaFootprint { registers_per_thread: 33, ..t }, &h200));
}

/// The device-faithful reference of a model whose layers of `cell` run their default plans.
pub(crate) fn device_faithful(cell: Cell) -> Precision {
    Precision::device_faithful(sprnn::layout::default_products(cell, false))
}
