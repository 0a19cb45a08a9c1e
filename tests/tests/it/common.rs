//! Tools shared by the test modules: the GPU handle with its visible skip, seeds, message
//! checks, the embedded PyTorch fixtures and their readers, and hand-made safetensors files.

mod device;

use std::collections::HashMap;

use rand::Rng;
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use sprnn::Cell;

pub use device::gpu;

// ---------------------------------------------------------------------------------------------
// Seeds, random values and messages
// ---------------------------------------------------------------------------------------------

/// A fresh seed per run (time-based), or `SPRNN_SEED`; printed with the test's name so a
/// failing run can be repeated.
pub fn seed(test: &str) -> u64 {
    let s = std::env::var("SPRNN_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64
    });
    println!("{test}: seed {s} (SPRNN_SEED={s} repeats it)");
    s
}

/// `n` values uniform in `[-scale, scale)` from `rng`.
pub fn random_vec(rng: &mut impl Rng, n: usize, scale: f32) -> Vec<f32> {
    (0..n).map(|_| rng.gen_range(-scale..scale)).collect()
}

/// A random recurrent problem: `W_hh` (every row `round(d·H)` nonzeros, the benchmark's
/// generator), `b_hh` in ±0.2, `T·B` steps of `U` in ±1, and (with state) `h0`, LSTM `c0` in ±0.5.
pub struct Problem {
    pub cell: Cell,
    pub hidden: usize,
    pub batch: usize,
    pub steps: usize,
    pub w: sprnn::Csr,
    pub b: Vec<f32>,
    pub u: Vec<f32>,
    pub h0: Option<Vec<f32>>,
    pub c0: Option<Vec<f32>>,
}

impl Problem {
    /// The problem of `seed`: `W_hh` from `seed`, the vectors from `seed ^ salt` (each test
    /// module its own salt).
    #[allow(clippy::too_many_arguments)]
    pub fn random(cell: Cell, hidden: usize, batch: usize, density: f64, steps: usize, seed: u64, salt: u64, with_state: bool) -> Problem {
        Problem::try_random(cell, hidden, batch, density, steps, seed, salt, with_state).expect("random W_hh")
    }

    /// [`Problem::random`], or the generator's refusal of the shape.
    #[allow(clippy::too_many_arguments)]
    pub fn try_random(cell: Cell, hidden: usize, batch: usize, density: f64, steps: usize, seed: u64, salt: u64, with_state: bool) -> Result<Problem, sprnn::SparseError> {
        use rand::SeedableRng;
        let g = cell.gates();
        let w = sprnn::sparse::random_recurrent(seed, g * hidden, hidden, density, 0.9)?;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ salt);
        let b = random_vec(&mut rng, g * hidden, 0.2);
        Ok(Problem::with_inputs(cell, w, b, batch, steps, &mut rng, with_state))
    }

    /// A problem for a given layer (`W_hh`, `b_hh`, e.g. a capacity search's): `U` and the
    /// initial state drawn from `seed` as [`Problem::random`] draws them.
    pub fn from_layer(cell: Cell, w: sprnn::Csr, b: Vec<f32>, batch: usize, steps: usize, seed: u64, with_state: bool) -> Problem {
        use rand::SeedableRng;
        Problem::with_inputs(cell, w, b, batch, steps, &mut rand_chacha::ChaCha8Rng::seed_from_u64(seed), with_state)
    }

    /// The problem of `W_hh`, `b_hh` with `U` in ±1 and (with state) `h0`, LSTM `c0` in ±0.5,
    /// drawn from `rng` in that order.
    fn with_inputs(cell: Cell, w: sprnn::Csr, b: Vec<f32>, batch: usize, steps: usize, rng: &mut impl Rng, with_state: bool) -> Problem {
        let hidden = w.cols();
        let u = random_vec(rng, steps * batch * cell.gates() * hidden, 1.0);
        let h0 = with_state.then(|| random_vec(rng, batch * hidden, 0.5));
        let c0 = (with_state && cell == Cell::Lstm).then(|| random_vec(rng, batch * hidden, 0.5));
        Problem { cell, hidden, batch, steps, w, b, u, h0, c0 }
    }

    /// The worst error of `got` (h, and LSTM's final c, counted as the last step's) against the
    /// device-faithful reference with products `products`, and the step where it is.
    pub fn worst_error(&self, got: &sprnn::layer::Output, products: sprnn::layout::Products) -> (f64, usize) {
        use sprnn::reference::{self, Precision};
        let sequences = reference::Sequences::new(&self.u, self.steps, self.batch).with_state(self.h0.as_deref(), self.c0.as_deref());
        let want = reference::forward_u(self.cell, &self.w, &self.b, sequences, Precision::device_faithful(products)).expect("reference");
        let e = reference::compare_steps(&got.h, &want.h, self.steps, self.batch, self.hidden);
        let (mut worst, mut step) = (e.worst, e.worst_step);
        if let (Some(gc), Some(wc)) = (&got.c, &want.c) {
            let ec = reference::compare_steps(gc, wc, 1, self.batch, self.hidden);
            if ec.worst > worst {
                (worst, step) = (ec.worst, self.steps - 1);
            }
        }
        (worst, step)
    }

    /// Runs `layer` on this problem into outputs poisoned first ([`run_poisoned`]).
    pub fn run_poisoned(&self, gpu: &sprnn::Gpu, layer: &mut sprnn::SparseRecurrentLayer, stream: Option<&sprnn::cust::stream::Stream>) -> Result<sprnn::layer::Output, sprnn::Error> {
        run_poisoned(gpu, layer, &self.u, self.steps, (self.h0.as_deref(), self.c0.as_deref()), stream)
    }
}

/// Runs `layer` on `u` (`steps` steps of f32 values, uploaded first) from `(h0, c0)` on `stream`
/// (`None`: the layer's own) into outputs poisoned first, and copies them back.
pub fn run_poisoned(
    gpu: &sprnn::Gpu,
    layer: &mut sprnn::SparseRecurrentLayer,
    u: &[f32],
    steps: usize,
    (h0, c0): (Option<&[f32]>, Option<&[f32]>),
    stream: Option<&sprnn::cust::stream::Stream>,
) -> Result<sprnn::layer::Output, sprnn::Error> {
    use sprnn::layer::{DeviceInput, Input};
    let d_u = DeviceInput::upload(gpu, Input::F32(u))?;
    let mut out = layer.alloc_output(steps)?;
    out.poison(layer)?;
    layer.forward_device(&d_u, h0, c0, &mut out, stream)?;
    out.to_host(layer)
}

/// Asserts that `e`'s message contains every part (the value and the limit, usually).
#[track_caller]
pub fn says(e: &impl std::fmt::Display, parts: &[&str]) {
    let m = e.to_string();
    for p in parts {
        assert!(m.contains(p), "message {m:?} does not contain {p:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// PyTorch fixtures
// ---------------------------------------------------------------------------------------------

/// The fixtures made by tests/fixtures/make_fixtures.py, embedded so the GPU bundle's test
/// executable needs no source tree (every test that reads a fixture reads it from here).
pub const FIXTURES: [(&str, &[u8]); 9] = [
    ("rnn_relu", include_bytes!("../../fixtures/rnn_relu.safetensors")),
    ("rnn_tanh", include_bytes!("../../fixtures/rnn_tanh.safetensors")),
    ("gru", include_bytes!("../../fixtures/gru.safetensors")),
    ("lstm", include_bytes!("../../fixtures/lstm.safetensors")),
    ("gru_bidirectional", include_bytes!("../../fixtures/gru_bidirectional.safetensors")),
    ("lstm_2layer", include_bytes!("../../fixtures/lstm_2layer.safetensors")),
    ("rnn_tanh_2layer_bidirectional", include_bytes!("../../fixtures/rnn_tanh_2layer_bidirectional.safetensors")),
    ("gru_f16", include_bytes!("../../fixtures/gru_f16.safetensors")),
    ("lstm_bf16_nobias", include_bytes!("../../fixtures/lstm_bf16_nobias.safetensors")),
];

/// A fixture's bytes, by name.
pub fn fixture(name: &str) -> Vec<u8> {
    let (_, bytes) = FIXTURES
        .iter()
        .find(|(n, _)| *n == name)
        .unwrap_or_else(|| panic!("no fixture {name} (run tests/fixtures/make_fixtures.py and list it in common::FIXTURES)"));
    bytes.to_vec()
}

/// The cell a fixture was made for (its `sprnn.cell` metadata).
pub fn fixture_cell(bytes: &[u8]) -> Cell {
    let (_, meta) = SafeTensors::read_metadata(bytes).unwrap();
    let name = &meta.metadata().as_ref().unwrap()["sprnn.cell"];
    Cell::from_name(name).unwrap_or_else(|| panic!("unknown cell {name}"))
}

/// A fixture's f32 or f64 tensor `name` as f64 values.
pub fn fixture_floats(st: &SafeTensors<'_>, name: &str) -> Vec<f64> {
    let v = st.tensor(name).unwrap_or_else(|e| panic!("{name}: {e}"));
    match v.dtype() {
        Dtype::F32 => v.data().chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap()) as f64).collect(),
        Dtype::F64 => v.data().chunks_exact(8).map(|b| f64::from_le_bytes(b.try_into().unwrap())).collect(),
        d => panic!("{name}: dtype {d:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Hand-made safetensors files (for the weight-file tests)
// ---------------------------------------------------------------------------------------------

/// One tensor of a hand-made file.
pub struct T {
    pub name: String,
    pub dtype: Dtype,
    pub shape: Vec<usize>,
    pub data: Vec<u8>,
}

/// An f32 tensor.
pub fn f32s(name: &str, shape: &[usize], v: &[f32]) -> T {
    T { name: name.into(), dtype: Dtype::F32, shape: shape.to_vec(), data: v.iter().flat_map(|x| x.to_le_bytes()).collect() }
}

/// An i64 tensor.
pub fn i64s(name: &str, shape: &[usize], v: &[i64]) -> T {
    T { name: name.into(), dtype: Dtype::I64, shape: shape.to_vec(), data: v.iter().flat_map(|x| x.to_le_bytes()).collect() }
}

/// A tensor of any dtype from raw bytes.
pub fn raw(name: &str, dtype: Dtype, shape: &[usize], data: Vec<u8>) -> T {
    T { name: name.into(), dtype, shape: shape.to_vec(), data }
}

/// The serialized file.
pub fn file(tensors: &[T], meta: Option<HashMap<String, String>>) -> Vec<u8> {
    let views: Vec<(String, TensorView<'_>)> =
        tensors.iter().map(|t| (t.name.clone(), TensorView::new(t.dtype, t.shape.clone(), &t.data).unwrap())).collect();
    safetensors::serialize(views, &meta).unwrap()
}

/// A valid one-layer RNN-tanh layer (`input` inputs, `hidden` units), tensors named with
/// `suffix`, for breaking one at a time.
pub fn rnn_tensors(suffix: &str, input: usize, hidden: usize) -> Vec<T> {
    vec![
        f32s(&format!("weight_ih{suffix}"), &[hidden, input], &vec![0.5; hidden * input]),
        f32s(&format!("weight_hh{suffix}"), &[hidden, hidden], &vec![0.25; hidden * hidden]),
        f32s(&format!("bias_ih{suffix}"), &[hidden], &vec![0.1; hidden]),
        f32s(&format!("bias_hh{suffix}"), &[hidden], &vec![0.2; hidden]),
    ]
}
