//! Reference forward passes on the CPU: the numbers every GPU result is checked against.
//!
//! # What is computed
//!
//! A layer with `G` gates (1 RNN, 3 GRU, 4 LSTM; [`Cell::gates`]) and hidden size `H` runs, for
//! `t = 1..T` and every sequence `b` of a batch of `B`,
//!
//! ```text
//! gi_t = U_t = W_ih x_t + b_ih                  (G*H values, gate-major: gate g of unit j at g*H + j)
//! gh_t = W_hh h_{t-1} + b_hh                    (W_hh: G*H rows x H columns, sparse)
//! h_t, c_t = cell(gi_t, gh_t, h_{t-1}, c_{t-1})
//! ```
//!
//! with PyTorch's cells (`torch.nn.RNN`, `GRU`, `LSTM`): gate order RNN `[h]`, GRU `[r, z, n]`,
//! LSTM `[i, f, g, o]`, separate `b_ih` and `b_hh`, and GRU's reset gate applied to
//! `W_hn h + b_hn`. The equations are in [`cell_step`]. `h_0` and `c_0` default to zeros.
//!
//! Data layouts (row-major, as the GPU kernel takes them): `U` is `[T][B][G*H]` and does **not**
//! include `b_hh`; `x` is `[T][B][I]`; `h0`, `c0` and the final `c` are `[B][H]`; the output `h`
//! is `[T][B][H]` (every step's state).
//!
//! Entry points: [`forward_u`] (from precomputed `U`), [`forward_x`] (from `x` and `W_ih`),
//! [`forward_model`] (a stack of layers from [`ModelWeights`], bidirectional too, with PyTorch's
//! output layout), and [`forward_u_permuted`] (device numerics with a GPU-like summation order).
//! Each takes its inputs as [`Sequences`]: the values, `T` and `B`, the initial state, and for
//! a chunk of a longer sequence the steps that ran before it.
//! [`compare_steps`] and [`DEVICE_TOLERANCE`] are how GPU tests judge a result.
//!
//! # Precisions
//!
//! * [`Precision::F64`]: everything in `f64` (weights and inputs converted exactly from `f32`).
//!   The "true" answer.
//! * [`Precision::F32`]: everything in `f32`, no other rounding: what a plain `f32` CPU
//!   implementation gives.
//! * [`Precision::DeviceFaithful`]: rounds exactly where the GPU kernel does (the contract between
//!   kernel and tests):
//!   1. `W_hh` values are rounded to fp16 (round to nearest, ties to even); `h0` is rounded to
//!      fp16 before the first step.
//!   2. Each step, `acc_r = Σ f32(w_fp16) · f32(h_prev_fp16)` accumulated in `f32` (for a layer
//!      with `Products::F32`; [`Precision::DeviceFaithfulF16`] below for fp16 group sums) (here in column
//!      order; on the GPU in another order — the only permitted difference). Every product of two
//!      fp16 values is exact in `f32`, so FMA or not makes no difference.
//!   3. Hidden part `gh = acc + b_hh` (`f32`); pre-activation `U + gh` (`f32`; `U` is the `f32`
//!      given, or the fp16 value converted exactly when the kernel is given fp16 `U`). GRU:
//!      `n = tanh(U_n + r · (acc_n + b_hn))`, `h' = (1 − z) · n + z · h_prev` with `h_prev` the
//!      fp16-rounded previous state as `f32`.
//!   4. `σ(x) = 1 / (1 + exp(−x))` and `tanh` in `f32`. LSTM `c_t = f · c + i · g` stays in `f32`
//!      (never rounded; `c0` is used as given), `h = o · tanh(c)`.
//!   5. `h_t` is rounded to the fp16 value the kernel exchanges at step `t`: the nearest fp16
//!      whose last mantissa bit is the step's tag bit (`sprnn_kernels::format::tag_round`; the
//!      exchange carries its Lamport timestamp in that bit), so the rounding error is at most one
//!      fp16 ulp (2^-10 relative) instead of half of one. That value is both the next step's
//!      `h_prev` and the output (returned as `f32`, exactly representable).
//!
//!   [`forward_x`] computes `U` for this mode in `f64` and rounds it to `f32` once (the kernel's
//!   contract starts at `U`).
//! * [`Precision::DeviceFaithfulF16`]: the same, for a layer whose sparse product runs
//!   `Products::F16` (the planner's default where `h` is fp16 and bounded:
//!   [`crate::layout::default_products`]): in step 2 each row's products are summed in fp16 over
//!   groups of eight nonzeros (`g = fma(w, h, g)`, one rounding to fp16 per step) and each
//!   group's sum is added to the `f32` sum ([`crate::fp16::GroupSum`], exact to the bit as the
//!   GPU's `fma.rn.f16x2`). [`Precision::device_faithful`] picks the one of a plan.
//!
//! # Tolerance
//!
//! GPU results are compared with [`compare_steps`]: per step, `max |gpu − ref| / max(max |ref|,
//! 1e-3)` over that step's `B * H` values; the verdict is the worst step, which must be at most
//! [`DEVICE_TOLERANCE`] against the device-faithful precision of the layer's products
//! ([`Precision::device_faithful`]). NaN always fails.
//!
//! With fp16 group sums the grouping matters more than an `f32` order does: the GPU groups each
//! thread's list (bank-aware order), the reference eight consecutive nonzeros of a row. The
//! `tolerance_measurements` example with `SPRNN_PRODUCTS=f16` (fp16 group sums in the permuted
//! runs too; H = 256, T = 512, B = 4 and H = 2304, T = 128, B = 2, d = 0.1 and 0.3, every
//! cell) measured at most 1.81e-3 between two orders (permuted 8 or 4 lanes against
//! [`Precision::DeviceFaithfulF16`]), 1.53e-3 between DF-F16 and F64, and 1.81e-3 between the
//! `f32` and fp16 products: about twice the `f32` products' figures below, and under half of
//! [`DEVICE_TOLERANCE`]. The product itself is bounded per row by `γ_8 = 8u / (1 − 8u)` (`u =
//! 2^-11`) of the sum of its products' magnitudes, plus `2^-25` per word in fp16's subnormal
//! range (tested on every kernel variant's plan, `every_kernel_variant_plans_on_the_h200_preset`),
//! and the GPU's product is its CPU twin bit for bit (`fp16_products_are_their_cpu_twin_bit_for_bit`).
//!
//! The GPU differs from the device-faithful reference only in the order of the `f32` sums (and
//! the last bit of `exp`/`tanh`, which is smaller). [`forward_u_permuted`] models that: every row
//! summed in a random order over 8 lanes plus a butterfly. A different order changes `acc` by a
//! few `f32` ulps; that only matters when it moves an `h` value across an fp16 rounding boundary,
//! which changes `h` by one fp16 ulp (2^-11 relative); the change is then carried forward by the
//! recurrence, which is contracting (spectral norm of each gate block ≤ radius < 1) and so keeps
//! such errors from growing without bound.
//!
//! Measured with the `tolerance_measurements` example (`cargo run --release -p sprnn --example
//! tolerance_measurements`):
//! `W_hh` from [`random_recurrent`](crate::sparse::random_recurrent) with every gate block's
//! largest singular value ≤ 0.95, `U` uniform in ±1, `b_hh` in ±0.1, `h0` in ±0.5; every column is
//! the worst step of [`compare_steps`] against the device-faithful run (`t` = that step).
//! "Permuted" is [`forward_u_permuted`] with 8 and 4 lanes (other seeds per column). B = 4 for
//! H = 256, B = 2 otherwise.
//!
//! | cell | H | d | T | max \|h\| | F64 vs DF | F32 vs DF | permuted, 8 lanes | permuted, 4 lanes |
//! | --- | --- | --- | --- | --- | --- | --- | --- | --- |
//! | RnnRelu | 256 | 0.1 | 1024 | 1.985 | 5.33e-4 (t=781) | 5.33e-4 | 6.75e-4 (t=832) | 6.75e-4 (t=832) |
//! | RnnTanh | 256 | 0.1 | 1024 | 0.963 | 5.02e-4 (t=141) | 5.02e-4 | 5.57e-4 (t=930) | 5.57e-4 (t=930) |
//! | Gru | 256 | 0.1 | 1024 | 0.794 | 7.10e-4 (t=446) | 7.10e-4 | 7.22e-4 (t=468) | 7.28e-4 (t=222) |
//! | Lstm | 256 | 0.1 | 1024 | 0.587 | 4.75e-4 (t=561) | 4.75e-4 | 5.28e-4 (t=654) | 5.28e-4 (t=654) |
//! | RnnRelu | 256 | 0.3 | 1024 | 1.911 | 5.01e-4 (t=686) | 5.01e-4 | 7.63e-4 (t=218) | 7.57e-4 (t=1013) |
//! | RnnTanh | 256 | 0.3 | 1024 | 0.959 | 4.87e-4 (t=964) | 4.87e-4 | 5.64e-4 (t=503) | 5.64e-4 (t=503) |
//! | Gru | 256 | 0.3 | 1024 | 0.793 | 6.89e-4 (t=77) | 6.89e-4 | 7.36e-4 (t=382) | 7.39e-4 (t=121) |
//! | Lstm | 256 | 0.3 | 1024 | 0.597 | 4.87e-4 (t=714) | 4.87e-4 | 5.83e-4 (t=84) | 5.81e-4 (t=804) |
//! | RnnRelu | 1152 | 0.1 | 1024 | 1.888 | 4.87e-4 (t=330) | 4.87e-4 | 7.55e-4 (t=504) | 7.55e-4 (t=504) |
//! | RnnTanh | 1152 | 0.1 | 1024 | 0.967 | 4.98e-4 (t=33) | 4.98e-4 | 5.46e-4 (t=894) | 5.46e-4 (t=894) |
//! | Gru | 1152 | 0.1 | 1024 | 0.835 | 7.05e-4 (t=786) | 7.05e-4 | 7.36e-4 (t=860) | 7.36e-4 (t=860) |
//! | Lstm | 1152 | 0.1 | 1024 | 0.604 | 4.85e-4 (t=144) | 4.85e-4 | 5.64e-4 (t=543) | 5.64e-4 (t=543) |
//! | RnnRelu | 1152 | 0.3 | 1024 | 1.807 | 4.95e-4 (t=965) | 4.95e-4 | 7.52e-4 (t=534) | 7.52e-4 (t=534) |
//! | RnnTanh | 1152 | 0.3 | 1024 | 0.962 | 5.02e-4 (t=279) | 5.02e-4 | 5.49e-4 (t=98) | 5.49e-4 (t=98) |
//! | Gru | 1152 | 0.3 | 1024 | 0.791 | 7.53e-4 (t=208) | 7.53e-4 | 7.27e-4 (t=463) | 7.27e-4 (t=463) |
//! | Lstm | 1152 | 0.3 | 1024 | 0.602 | 5.02e-4 (t=597) | 5.02e-4 | 5.81e-4 (t=515) | 5.81e-4 (t=515) |
//! | RnnRelu | 2304 | 0.1 | 256 | 1.798 | 4.45e-4 (t=6) | 4.45e-4 | 6.93e-4 (t=41) | 6.93e-4 (t=41) |
//! | RnnTanh | 2304 | 0.1 | 256 | 0.973 | 4.72e-4 (t=32) | 4.72e-4 | 5.37e-4 (t=170) | 5.37e-4 (t=170) |
//! | Gru | 2304 | 0.1 | 256 | 0.792 | 6.72e-4 (t=247) | 6.72e-4 | 7.10e-4 (t=230) | 7.10e-4 (t=230) |
//! | Lstm | 2304 | 0.1 | 256 | 0.584 | 4.77e-4 (t=60) | 4.77e-4 | 9.16e-4 (t=194) | 9.47e-4 (t=94) |
//! | RnnRelu | 2304 | 0.3 | 256 | 1.843 | 4.67e-4 (t=71) | 4.67e-4 | 7.21e-4 (t=169) | 7.21e-4 (t=169) |
//! | RnnTanh | 2304 | 0.3 | 256 | 0.964 | 5.03e-4 (t=215) | 5.04e-4 | 5.42e-4 (t=21) | 5.42e-4 (t=21) |
//! | Gru | 2304 | 0.3 | 256 | 0.816 | 7.10e-4 (t=38) | 7.10e-4 | 7.14e-4 (t=19) | 7.14e-4 (t=19) |
//! | Lstm | 2304 | 0.3 | 256 | 0.601 | 4.86e-4 (t=52) | 4.86e-4 | 5.48e-4 (t=101) | 5.48e-4 (t=101) |
//! | RnnRelu | 2304 | 0.1 | 1024 | 1.843 | 4.75e-4 (t=17) | 4.75e-4 | 7.23e-4 (t=53) | 7.23e-4 (t=53) |
//! | RnnTanh | 2304 | 0.1 | 1024 | 0.964 | 4.88e-4 (t=957) | 4.88e-4 | 5.42e-4 (t=838) | 5.42e-4 (t=838) |
//! | Gru | 2304 | 0.1 | 1024 | 0.811 | 7.11e-4 (t=771) | 7.11e-4 | 7.12e-4 (t=998) | 7.12e-4 (t=998) |
//! | Lstm | 2304 | 0.1 | 1024 | 0.613 | 4.84e-4 (t=234) | 4.84e-4 | 9.48e-4 (t=730) | 5.73e-4 (t=403) |
//! | RnnRelu | 2304 | 0.3 | 1024 | 1.898 | 4.75e-4 (t=32) | 4.75e-4 | 7.17e-4 (t=589) | 7.17e-4 (t=589) |
//! | RnnTanh | 2304 | 0.3 | 1024 | 0.965 | 4.67e-4 (t=330) | 4.67e-4 | 5.43e-4 (t=372) | 5.43e-4 (t=372) |
//! | Gru | 2304 | 0.3 | 1024 | 0.812 | 7.14e-4 (t=238) | 7.14e-4 | 7.14e-4 (t=98) | 7.14e-4 (t=98) |
//! | Lstm | 2304 | 0.3 | 1024 | 0.604 | 4.86e-4 (t=428) | 4.86e-4 | 9.71e-4 (t=687) | 9.71e-4 (t=687) |
//!
//! A repeat of the first 24 rows with other random draws (after `random_recurrent` moved to
//! per-chunk generator streams) gave at most 9.46e-4 permuted vs DF and 9.13e-4 F64 vs DF.
//!
//! With σ_max ≤ 2.0 instead (spectral radius ≈ 1, the edge of stability), H = 256 and 1152, T =
//! 1024, all cells and both densities: permuted vs DF at most 1.00e-03, F64 vs DF at most 1.07e-03.
//!
//! Reading: the permuted order differs from the device-faithful run by one fp16 ulp of an `h`
//! value that sat on a rounding boundary (2^-11 relative in `[0.5, 1)`, up to 2^-10 of the step's
//! maximum in the worst case), and that difference does not grow over 1024 steps. F64 and F32 differ
//! from DF by the same order (DF's own fp16 rounding of `h` dominates; `W_hh`'s fp16 rounding is
//! smaller). The worst permuted-order error measured is 9.71e-4 (σ_max ≤ 0.95) and 1.00e-3
//! (σ_max ≤ 2). [`DEVICE_TOLERANCE`] = 4e-3 is four times that, enough for a GPU `exp`/`tanh` a
//! few `f32` ulps off. The bugs it is meant to catch are far above it: the integration test
//! `tolerance_catches_typical_bugs` checks that dropping the largest nonzero of `W_hh`, swapping
//! two gates, or reading `h_{t-2}` instead of `h_{t-1}` each fail it, for every cell.
//!
//! [`ModelWeights`]: crate::weights::ModelWeights

mod cell;
mod compare;
mod recurrence;

pub use cell::{cell_step, relu, sigmoid, Scalar};
pub use compare::{compare_steps, StepErrors, DEVICE_TOLERANCE, SCALE_FLOOR};
pub use crate::tensors::ModelOutput;

use sprnn_kernels::format::Products;
use thiserror::Error;

use crate::sparse::Matrix;
use crate::weights::{LayerWeights, ModelWeights};
use crate::{Cell, Csr};
use recurrence::{run, Order, Problem, Rounding, Trajectory};

/// Arithmetic of a reference run (see the [module docs](self#precisions)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Precision {
    /// Everything in `f64`.
    F64,
    /// Everything in `f32`, no other rounding.
    F32,
    /// `f32` arithmetic with fp16 weights and fp16 hidden state, exactly where the GPU rounds,
    /// for a layer with `Products::F32` (each product and sum in `f32`).
    DeviceFaithful,
    /// [`Precision::DeviceFaithful`] for a layer with `Products::F16` (the default where the
    /// hidden state is bounded): each row's products summed in fp16 over groups of eight
    /// nonzeros, the groups' sums added in `f32` ([`crate::fp16::GroupSum`]).
    DeviceFaithfulF16,
}

impl Precision {
    /// The device-faithful precision of a layer whose sparse product runs `products`
    /// ([`crate::layout::Plan::products`]).
    pub fn device_faithful(products: Products) -> Precision {
        match products {
            Products::F32 => Precision::DeviceFaithful,
            Products::F16 => Precision::DeviceFaithfulF16,
        }
    }
}

/// Output of a single-layer reference run.
#[derive(Debug, Clone, PartialEq)]
pub struct RefOutput {
    /// Every step's hidden state, `[T][B][H]` (for `F64` rounded to `f32` once, at the end).
    pub h: Vec<f32>,
    /// Final LSTM cell state `c_T`, `[B][H]`; `None` for the other cells.
    pub c: Option<Vec<f32>>,
}

/// Why a reference run was refused.
#[derive(Debug, Clone, PartialEq, Error)]
#[non_exhaustive]
pub enum ReferenceError {
    /// A slice argument has the wrong number of values.
    #[error("{what} has {got} values, expected {expected} ({shape})")]
    Length {
        /// Which argument (`"u"`, `"x"`, `"b_hh"`, `"b_ih"`, `"h0"`, `"c0"`).
        what: &'static str,
        /// Values expected.
        expected: usize,
        /// Values given.
        got: usize,
        /// The expected shape in words, e.g. `"[T=4][B=2][G*H=12]"`.
        shape: String,
    },
    /// `W_ih` does not have as many rows as `W_hh`.
    #[error("W_ih has {rows} rows, W_hh has {expected}")]
    InputRows {
        /// Rows of `W_ih`.
        rows: usize,
        /// Rows of `W_hh` (G * H).
        expected: usize,
    },
    /// An initial cell state was given for a cell without one.
    #[error("c0 given for a {} layer, which has no cell state", .cell.name())]
    CellStateNotLstm {
        /// The cell.
        cell: Cell,
    },
    /// `T * B * G * H` (or another size) does not fit in `usize`.
    #[error("size of {what} overflows: more than usize::MAX = {} values", usize::MAX)]
    SizeOverflow {
        /// Which size.
        what: &'static str,
    },
    /// The lane count of [`forward_u_permuted`] is not a power of two from 1 to 32.
    #[error("{lanes} lanes: must be a power of two from 1 to 32")]
    Lanes {
        /// Lanes asked for.
        lanes: usize,
    },
    /// The layer is refused exactly as the GPU refuses it ([`crate::validate::layer`]): `H = 0`,
    /// `H` beyond the 16-bit column indices, `W_hh` not `G·H × H`, batch 0, or a weight outside
    /// the fp16 range.
    #[error(transparent)]
    Layer(#[from] crate::layout::PlanError),
    /// An input value is NaN or infinite, refused as the GPU refuses it
    /// ([`crate::validate::finite`]).
    #[error(transparent)]
    NotFinite(#[from] crate::validate::NotFinite),
}

fn mul(values: &[usize], what: &'static str) -> Result<usize, ReferenceError> {
    values.iter().try_fold(1usize, |a, &b| a.checked_mul(b)).ok_or(ReferenceError::SizeOverflow { what })
}

fn check_len(what: &'static str, got: usize, expected: usize, shape: impl FnOnce() -> String) -> Result<(), ReferenceError> {
    if got != expected {
        return Err(ReferenceError::Length { what, expected, got, shape: shape() });
    }
    Ok(())
}

/// The sequences of one reference run: their inputs, sizes and initial state, and where they
/// stand in a longer sequence.
///
/// `values` holds each step's inputs, `[steps][batch][n]`: `U = W_ih x_t + b_ih` (`n = G·H`,
/// **without** `b_hh`) for [`forward_u`] and [`forward_u_permuted`], `x` (`n = I`) for
/// [`forward_x`] and [`forward_model`]. `h0` and `c0` (LSTM only) default to zeros; they are
/// `[batch][H]` for one layer and `[L*D][batch][H]` for a model.
///
/// `steps_done` is how many steps of the sequence ran before these (0 for a whole sequence):
/// their steps are numbered from `steps_done + 1`. Only the device-faithful precisions depend on
/// it (each step's `h` is rounded with that step's tag bit, as the GPU exchanges it), so chunks
/// numbered this way give one long call's bits, as [`crate::StreamingLayer`] and
/// [`crate::StreamingModel`] do on the GPU.
///
/// `V` is `f32` at every entry point; the reference carries the sequences to its time loop as
/// `f64` (exact for `f32` values).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Sequences<'a, V = f32> {
    /// Each step's inputs, `[steps][batch][n]`.
    pub values: &'a [V],
    /// Steps `T`.
    pub steps: usize,
    /// Sequences `B`.
    pub batch: usize,
    /// Initial hidden state; zeros when `None`.
    pub h0: Option<&'a [V]>,
    /// Initial LSTM cell state; zeros when `None`.
    pub c0: Option<&'a [V]>,
    /// Steps of the sequence that ran before these.
    pub steps_done: u64,
}

impl<'a, V> Sequences<'a, V> {
    /// `steps` steps of `batch` sequences with the inputs `values`, from zero state at the start
    /// of a sequence.
    pub fn new(values: &'a [V], steps: usize, batch: usize) -> Sequences<'a, V> {
        Sequences { values, steps, batch, h0: None, c0: None, steps_done: 0 }
    }

    /// These sequences from the initial state `h0` and `c0`.
    pub fn with_state(self, h0: Option<&'a [V]>, c0: Option<&'a [V]>) -> Sequences<'a, V> {
        Sequences { h0, c0, ..self }
    }

    /// These sequences as the continuation of a sequence of which `steps_done` steps have run.
    pub fn continuing(self, steps_done: u64) -> Sequences<'a, V> {
        Sequences { steps_done, ..self }
    }
}

/// Checks `W_hh`, `b_hh` and the initial state of `s` against the cell and batch; returns `H`.
fn check_recurrent(cell: Cell, w_hh: &Csr, b_hh: &[f32], s: &Sequences<'_>) -> Result<usize, ReferenceError> {
    let batch = s.batch;
    // The GPU's checks first, so both refuse the same layers with the same error.
    let hidden = crate::validate::layer(cell, w_hh, batch)?;
    check_len("b_hh", b_hh.len(), w_hh.rows(), || format!("[G*H={}]", w_hh.rows()))?;
    crate::validate::finite("b_hh", b_hh)?;
    let bh = mul(&[batch, hidden], "B * H")?;
    if let Some(h0) = s.h0 {
        check_len("h0", h0.len(), bh, || format!("[B={batch}][H={hidden}]"))?;
        crate::validate::finite("h0", h0)?;
    }
    if let Some(c0) = s.c0 {
        if cell != Cell::Lstm {
            return Err(ReferenceError::CellStateNotLstm { cell });
        }
        check_len("c0", c0.len(), bh, || format!("[B={batch}][H={hidden}]"))?;
        crate::validate::finite("c0", c0)?;
    }
    Ok(hidden)
}

fn widen(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| x as f64).collect()
}

/// Runs the recurrence from `U` (as `f64` transport values) at `precision`.
fn recur(p: &Problem<'_>, precision: Precision, order: Order) -> Trajectory {
    match precision {
        Precision::F64 => run::<f64>(p, Rounding { fp16_state: false, f16_products: false }, order),
        Precision::F32 => run::<f32>(p, Rounding { fp16_state: false, f16_products: false }, order),
        Precision::DeviceFaithful => run::<f32>(p, Rounding { fp16_state: true, f16_products: false }, order),
        Precision::DeviceFaithfulF16 => run::<f32>(p, Rounding { fp16_state: true, f16_products: true }, order),
    }
}

/// One layer's recurrence on `U` (`f64` transport values) for the sizes, initial state and
/// step numbers of `s`, checked before.
fn run_layer(cell: Cell, w_hh: &Csr, b_hh: &[f32], u: &[f64], s: &Sequences<'_>, precision: Precision, order: Order) -> RefOutput {
    let (h0, c0) = (s.h0.map(widen), s.c0.map(widen));
    let u = Sequences::new(u, s.steps, s.batch).with_state(h0.as_deref(), c0.as_deref()).continuing(s.steps_done);
    output(cell, recur(&Problem { cell, w_hh, b_hh, u }, precision, order))
}

fn output(cell: Cell, t: Trajectory) -> RefOutput {
    RefOutput {
        h: t.h.iter().map(|&v| v as f32).collect(),
        c: (cell == Cell::Lstm).then(|| t.c.iter().map(|&v| v as f32).collect()),
    }
}

/// Reference forward of one layer from precomputed input pre-activations.
///
/// `w_hh` is `G*H × H`, `b_hh` has `G*H` values, `u` holds `U = W_ih x_t + b_ih` (**without**
/// `b_hh`) as `[steps][batch][G*H]` with the initial state `[batch][H]` ([`Sequences`]). Returns
/// every `h_t` and, for LSTM, the final `c`. Every shape is checked first
/// ([`ReferenceError::Length`], [`ReferenceError::Layer`],
/// [`ReferenceError::CellStateNotLstm`], [`ReferenceError::SizeOverflow`]), then the values
/// ([`ReferenceError::NotFinite`]; weights outside fp16's range are [`ReferenceError::Layer`]):
/// the reference refuses exactly what the GPU layer refuses ([`crate::validate`]).
pub fn forward_u(cell: Cell, w_hh: &Csr, b_hh: &[f32], u: Sequences<'_>, precision: Precision) -> Result<RefOutput, ReferenceError> {
    forward_u_order(cell, w_hh, b_hh, &u, precision, Order::Sequential)
}

/// [`forward_u`] at `precision`, but with each row of `W_hh · h` summed in a
/// GPU-like order: the row's nonzeros shuffled by a ChaCha8 generator seeded with `seed`, dealt
/// round-robin to `lanes` partial sums (at [`Precision::DeviceFaithfulF16`] each lane's in fp16
/// groups of eight), which a butterfly tree then adds (as a warp's shuffle reduction does). `lanes` must be a power of two from 1 to 32
/// ([`ReferenceError::Lanes`]). This is the experiment behind [`DEVICE_TOLERANCE`], and a CPU
/// stand-in for the GPU in tests of the comparison itself.
pub fn forward_u_permuted(
    cell: Cell,
    w_hh: &Csr,
    b_hh: &[f32],
    u: Sequences<'_>,
    precision: Precision,
    (seed, lanes): (u64, usize),
) -> Result<RefOutput, ReferenceError> {
    if !(lanes.is_power_of_two() && lanes <= 32) {
        return Err(ReferenceError::Lanes { lanes });
    }
    forward_u_order(cell, w_hh, b_hh, &u, precision, Order::Permuted { seed, lanes })
}

fn forward_u_order(cell: Cell, w_hh: &Csr, b_hh: &[f32], u: &Sequences<'_>, precision: Precision, order: Order) -> Result<RefOutput, ReferenceError> {
    check_recurrent(cell, w_hh, b_hh, u)?;
    let (gh, steps, batch) = (w_hh.rows(), u.steps, u.batch);
    check_len("u", u.values.len(), mul(&[steps, batch, gh], "T * B * G * H")?, || {
        format!("[T={steps}][B={batch}][G*H={gh}]")
    })?;
    crate::validate::finite("u", u.values)?;
    if batch * w_hh.cols() == 0 {
        // No state: every output is empty, however many steps (no loop over them).
        return Ok(RefOutput { h: Vec::new(), c: (cell == Cell::Lstm).then(Vec::new) });
    }
    Ok(run_layer(cell, w_hh, b_hh, &widen(u.values), u, precision, order))
}

/// `U = W_ih x + b_ih` for `n` input vectors of `I` values, in the arithmetic of `precision`
/// (`F64`: `f64`; `F32`: `f32` in column order; `DeviceFaithful`: `f64` rounded once to `f32`).
fn project(w_ih: &Matrix, b_ih: &[f32], x: &[f64], n: usize, precision: Precision) -> Vec<f64> {
    let (rows, cols) = (w_ih.rows(), w_ih.cols());
    let mut entries: Vec<(usize, usize, f32)> = Vec::new();
    w_ih.for_each_entry(|r, c, v| entries.push((r, c, v)));
    let mut u = vec![0.0f64; n * rows];
    for i in 0..n {
        let xi = &x[i * cols..(i + 1) * cols];
        let ui = &mut u[i * rows..(i + 1) * rows];
        match precision {
            Precision::F32 => {
                let mut acc = vec![0.0f32; rows];
                for &(r, c, v) in &entries {
                    acc[r] += v * xi[c] as f32;
                }
                for r in 0..rows {
                    ui[r] = (acc[r] + b_ih[r]) as f64;
                }
            }
            Precision::F64 | Precision::DeviceFaithful | Precision::DeviceFaithfulF16 => {
                let mut acc = vec![0.0f64; rows];
                for &(r, c, v) in &entries {
                    acc[r] += v as f64 * xi[c];
                }
                for r in 0..rows {
                    let v = acc[r] + b_ih[r] as f64;
                    ui[r] = if precision == Precision::F64 { v } else { v as f32 as f64 };
                }
            }
        }
    }
    u
}

/// Reference forward of one layer from its inputs.
///
/// `w_ih` is `G*H × I` (dense or sparse), `b_ih` has `G*H` values, `x` holds the inputs as
/// `[steps][batch][I]` with the initial state ([`Sequences`]); the rest is as in [`forward_u`].
/// `U = W_ih x_t + b_ih` is formed in the arithmetic of `precision` (for
/// [`Precision::DeviceFaithful`] in `f64`, rounded to `f32` once). Errors as [`forward_u`], plus
/// [`ReferenceError::InputRows`] and lengths of `b_ih` and `x`.
pub fn forward_x(
    cell: Cell,
    w_ih: &Matrix,
    b_ih: &[f32],
    w_hh: &Csr,
    b_hh: &[f32],
    x: Sequences<'_>,
    precision: Precision,
) -> Result<RefOutput, ReferenceError> {
    check_recurrent(cell, w_hh, b_hh, &x)?;
    check_input(w_ih, b_ih, w_hh.rows(), &x)?;
    crate::validate::finite("b_ih", b_ih)?;
    crate::validate::finite("x", x.values)?;
    let u = project(w_ih, b_ih, &widen(x.values), x.steps * x.batch, precision);
    Ok(run_layer(cell, w_hh, b_hh, &u, &x, precision, Order::Sequential))
}

fn check_input(w_ih: &Matrix, b_ih: &[f32], gh: usize, x: &Sequences<'_>) -> Result<(), ReferenceError> {
    if w_ih.rows() != gh {
        return Err(ReferenceError::InputRows { rows: w_ih.rows(), expected: gh });
    }
    check_len("b_ih", b_ih.len(), gh, || format!("[G*H={gh}]"))?;
    check_x_len(x, w_ih.cols())
}

/// `x` holds `[T][B][I]` values.
fn check_x_len(x: &Sequences<'_>, input: usize) -> Result<(), ReferenceError> {
    let (steps, batch) = (x.steps, x.batch);
    check_len("x", x.values.len(), mul(&[steps, batch, input], "T * B * I")?, || format!("[T={steps}][B={batch}][I={input}]"))
}

/// Runs one direction of one layer on `x` (`[T][B][I]`, `f64` transport) for the sizes and
/// step numbers of `s` from the initial state `(h0, c0)`; `reverse` runs the sequence backwards
/// and returns the states in input order.
fn layer_pass(layer: &LayerWeights, x: &[f64], s: &Sequences<'_>, reverse: bool, (h0, c0): (Option<&[f64]>, Option<&[f64]>), precision: Precision) -> Trajectory {
    let (steps, batch) = (s.steps, s.batch);
    let i = layer.input_size();
    let flip = |v: &[f64], width: usize| -> Vec<f64> {
        (0..steps).rev().flat_map(|t| v[t * width..(t + 1) * width].iter().copied()).collect()
    };
    let xs = if reverse { flip(x, batch * i) } else { x.to_vec() };
    let u = project(layer.w_ih(), layer.b_ih(), &xs, steps * batch, precision);
    let u = Sequences::new(&u[..], steps, batch).with_state(h0, c0).continuing(s.steps_done);
    let mut t = recur(&Problem { cell: layer.cell(), w_hh: layer.w_hh(), b_hh: layer.b_hh(), u }, precision, Order::Sequential);
    if reverse {
        t.h = flip(&t.h, batch * layer.hidden());
    }
    t
}

/// Reference forward of a stack of layers, like `torch.nn.RNN/GRU/LSTM` with
/// `batch_first = False`.
///
/// `x` holds the inputs `[T][B][I]` with `h0` and `c0` (LSTM only) as `[L*D][B][H]` (index
/// `l * D + d`), zeros by default ([`Sequences`]; a chunk that continues a sequence numbers its
/// steps as [`crate::StreamingModel`] does on the GPU). Layer `l > 0` takes the previous layer's
/// output `[T][B][D*H]` as input; the reverse direction reads the sequence from `t = T-1` down
/// to 0, and its state for input step `t` is stored at output step `t`. Between layers the
/// values are carried in the arithmetic of `precision` (no extra rounding for `F64`). Errors
/// with [`ReferenceError::Length`] for `x`, `h0` or `c0`, [`ReferenceError::CellStateNotLstm`]
/// for `c0` on another cell.
pub fn forward_model(model: &ModelWeights, x: Sequences<'_>, precision: Precision) -> Result<ModelOutput, ReferenceError> {
    let state_len = check_model(model, &x)?;
    let (cell, hidden, dirs) = (model.cell(), model.hidden(), model.directions());
    let (steps, batch) = (x.steps, x.batch);
    let bh = batch * hidden;
    let (h0, c0) = (x.h0.map(widen), x.c0.map(widen));
    let mut input = widen(x.values);
    let mut h_n = Vec::with_capacity(state_len);
    let mut c_n = Vec::with_capacity(state_len);
    for l in 0..model.num_layers() {
        let mut out = vec![0.0f64; steps * batch * dirs * hidden];
        for d in 0..dirs {
            let k = l * dirs + d;
            let init = |v: &Option<Vec<f64>>| v.as_ref().map(|v| v[k * bh..(k + 1) * bh].to_vec());
            let (h0k, c0k) = (init(&h0), init(&c0));
            let t = layer_pass(model.layer(l, d), &input, &x, d == 1, (h0k.as_deref(), c0k.as_deref()), precision);
            for s in 0..steps {
                for b in 0..batch {
                    let src = &t.h[(s * batch + b) * hidden..(s * batch + b + 1) * hidden];
                    let dst = (s * batch + b) * dirs * hidden + d * hidden;
                    out[dst..dst + hidden].copy_from_slice(src);
                }
            }
            // Final state: last step for the forward direction, input step 0 for the reverse one.
            let last = if d == 1 { 0 } else { steps.saturating_sub(1) };
            if steps == 0 {
                h_n.extend(h0k.unwrap_or_else(|| vec![0.0; bh]).iter().map(|&v| v as f32));
            } else {
                h_n.extend(t.h[last * bh..(last + 1) * bh].iter().map(|&v| v as f32));
            }
            c_n.extend(t.c.iter().map(|&v| v as f32));
        }
        input = out;
    }
    Ok(ModelOutput {
        output: input.iter().map(|&v| v as f32).collect(),
        h_n,
        c_n: (cell == Cell::Lstm).then_some(c_n),
    })
}

/// The checks of [`forward_model`]: the lengths of `x`, `h0` and `c0`, then the GPU's checks
/// (every layer and direction as a layer of this batch, every input finite). Returns the length
/// of the state, `L * D * B * H`.
fn check_model(model: &ModelWeights, x: &Sequences<'_>) -> Result<usize, ReferenceError> {
    let (cell, hidden, dirs, layers) = (model.cell(), model.hidden(), model.directions(), model.num_layers());
    let batch = x.batch;
    check_x_len(x, model.input_size())?;
    let bh = mul(&[batch, hidden], "B * H")?;
    let state_len = mul(&[layers, dirs, bh], "L * D * B * H")?;
    let shape = || format!("[L*D={}][B={batch}][H={hidden}]", layers * dirs);
    if let Some(h0) = x.h0 {
        check_len("h0", h0.len(), state_len, shape)?;
    }
    if let Some(c0) = x.c0 {
        if cell != Cell::Lstm {
            return Err(ReferenceError::CellStateNotLstm { cell });
        }
        check_len("c0", c0.len(), state_len, shape)?;
    }
    for l in 0..layers {
        for d in 0..dirs {
            crate::validate::layer(cell, model.layer(l, d).w_hh(), batch)?;
        }
    }
    crate::validate::finite("x", x.values)?;
    for (name, v) in [("h0", x.h0), ("c0", x.c0)] {
        if let Some(v) = v {
            crate::validate::finite(name, v)?;
        }
    }
    Ok(state_len)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// W_hh = [[0.1, 0], [0.3, −0.7]], b_hh = [0.01, −0.02], h0 = [0.3, −0.2], U = [0.2, 0.1].
    fn tiny() -> (Csr, Vec<f32>, Vec<f32>, Vec<f32>) {
        let w = Csr::from_dense(&[0.1, 0.0, 0.3, -0.7], 2, 2).unwrap();
        (w, vec![0.01, -0.02], vec![0.3, -0.2], vec![0.2, 0.1])
    }

    #[test]
    fn device_faithful_rounds_where_the_gpu_does() {
        // fp16: 0.1 → 0.0999755859375, 0.3 → 0.300048828125, −0.7 → −0.7001953125;
        //       h0 = [0.300048828125, −0.199951171875].
        // acc (f32) = [0.0999755859375 · 0.300048828125, 0.300048828125 · 0.300048828125
        //             + (−0.7001953125) · (−0.199951171875)] = [0.0299975574, 0.2300341725]
        // pre = U + (acc + b_hh) = [0.2399975657, 0.3100341856]
        // tanh = [0.2354934365, 0.3004682064] → fp16 [0.2354736328125, 0.300537109375].
        let (w, b, h0, u) = tiny();
        let out = forward_u(Cell::RnnTanh, &w, &b, Sequences::new(&u, 1, 1).with_state(Some(&h0), None), Precision::DeviceFaithful).unwrap();
        #[allow(clippy::excessive_precision)] // exact fp16 values, written out in full
        let want = vec![0.2354736328125f32, 0.300537109375];
        assert_eq!(out.h, want);
        assert_eq!(out.c, None);
        // f64: tanh(0.2 + 0.1·0.3 + 0.01) = tanh(0.24) and tanh(0.1 + 0.09 + 0.14 − 0.02) = tanh(0.31).
        let exact = forward_u(Cell::RnnTanh, &w, &b, Sequences::new(&u, 1, 1).with_state(Some(&h0), None), Precision::F64).unwrap();
        let want = [0.24f64.tanh(), 0.31f64.tanh()];
        for (g, w) in exact.h.iter().zip(want) {
            assert!((*g as f64 - w).abs() < 1e-7, "{g} vs {w}");
        }
    }

    #[test]
    fn device_faithful_never_rounds_c() {
        // LSTM, H = 1, one nonzero-free W_hh (all zero): c_1 = f·c0 + i·g with c0 = 0.1234567 kept exact.
        // i = f = o = σ(0) = 0.5, g = tanh(0) = 0  =>  c_1 = 0.5 · c0 (exact in f32), h = 0.5 tanh(c_1).
        let w = Csr::new(4, 1, vec![0, 0, 0, 0, 0], vec![], vec![]).unwrap();
        let c0 = [0.1234567f32];
        let out = forward_u(Cell::Lstm, &w, &[0.0; 4], Sequences::new(&[0.0; 4], 1, 1).with_state(None, Some(&c0)), Precision::DeviceFaithful).unwrap();
        assert_eq!(out.c.unwrap()[0], 0.5 * c0[0]);
        let h = 0.5 * (0.5 * c0[0]).tanh();
        // h_1 is exchanged with step 1's tag bit (1) as its last mantissa bit.
        assert_eq!(out.h[0], recurrence::round_f16_tagged(h, 1));
        assert_eq!(half::f16::from_f32(out.h[0]).to_bits() & 1, 1);
        assert!((out.h[0] - h).abs() <= half::f16::from_f32(h).to_f32() * 2f32.powi(-10));
    }

    #[test]
    fn tagged_rounding_is_the_nearest_value_with_the_tag_bit() {
        use half::f16;
        use sprnn_kernels::format::tag_round;
        let to_f32 = |b: u16| f16::from_bits(b).to_f32();
        let tagged = |x: f32, bit: u32| tag_round(x, f16::from_f32(x).to_bits(), bit, to_f32);
        // Every finite fp16 magnitude and the points between neighbours, both signs, both bits.
        for bits in 0u16..0x7BFF {
            for sign in [0u16, 0x8000] {
                let (lo, hi) = (to_f32(bits | sign), to_f32((bits + 1) | sign));
                for x in [lo, (lo + hi) / 2.0, lo + (hi - lo) * 0.3, lo + (hi - lo) * 0.7] {
                    for bit in [0, 1] {
                        let t = tagged(x, bit);
                        assert_eq!(t as u32 & 1, bit, "{x}: last bit");
                        let err = (to_f32(t) as f64 - x as f64).abs();
                        // The nearest fp16 with that last bit: no other candidate is closer.
                        for c in [t.wrapping_sub(2), t.wrapping_add(2)] {
                            if c & 0x7FFF < 0x7C00 && (c ^ t) & 0x8000 == 0 {
                                assert!(err <= (to_f32(c) as f64 - x as f64).abs(), "{x} bit {bit}: {t:#x} vs {c:#x}");
                            }
                        }
                        let ulp = (hi - lo).abs() as f64;
                        assert!(err <= ulp, "{x} bit {bit}: error {err} over one ulp {ulp}");
                    }
                }
            }
        }
        // Zeros go to the smallest subnormal of their sign; the largest finite value and
        // infinities step down, never up to an infinity; NaN stays NaN.
        assert_eq!(tagged(0.0, 1), 0x0001);
        assert_eq!(tagged(-0.0, 1), 0x8001);
        assert_eq!(tagged(65504.0, 0), 0x7BFE);
        assert_eq!(tagged(65510.0, 0), 0x7BFE);
        assert_eq!(tagged(f32::INFINITY, 1), 0x7BFF);
        assert_eq!(tagged(f32::NEG_INFINITY, 1), 0xFBFF);
        assert_eq!(tagged(f32::INFINITY, 0), 0x7C00);
        for bit in [0, 1] {
            assert!(f16::from_bits(tagged(f32::NAN, bit)).is_nan());
        }
    }

    #[test]
    fn every_shape_is_checked() {
        let (w, b, h0, u) = tiny();
        let run = |cell, b: &[f32], u: &[f32], h0: Option<&[f32]>, c0: Option<&[f32]>| {
            forward_u(cell, &w, b, Sequences::new(u, 1, 1).with_state(h0, c0), Precision::F32).unwrap_err()
        };
        assert!(matches!(run(Cell::Gru, &b, &u, None, None), ReferenceError::Layer(crate::layout::PlanError::Shape { expected_rows: 6, rows: 2, cols: 2, .. })));
        assert!(matches!(run(Cell::RnnTanh, &b[..1], &u, None, None), ReferenceError::Length { what: "b_hh", expected: 2, got: 1, .. }));
        assert!(matches!(run(Cell::RnnTanh, &b, &[0.0; 3], None, None), ReferenceError::Length { what: "u", expected: 2, got: 3, .. }));
        assert!(matches!(run(Cell::RnnTanh, &b, &u, Some(&h0[..1]), None), ReferenceError::Length { what: "h0", .. }));
        assert!(matches!(run(Cell::RnnTanh, &b, &u, None, Some(&h0)), ReferenceError::CellStateNotLstm { cell: Cell::RnnTanh }));
        let e = forward_u(Cell::RnnTanh, &w, &b, Sequences::new(&u, usize::MAX, 3), Precision::F64).unwrap_err();
        assert!(matches!(e, ReferenceError::SizeOverflow { .. }), "{e}");
        let e = forward_u_permuted(Cell::RnnTanh, &w, &b, Sequences::new(&u, 1, 1), Precision::DeviceFaithful, (0, 3)).unwrap_err();
        assert_eq!(e, ReferenceError::Lanes { lanes: 3 });
        let wih = Matrix::Dense(crate::sparse::Dense::new(3, 1, vec![0.0; 3]).unwrap());
        let e = forward_x(Cell::RnnTanh, &wih, &[0.0; 3], &w, &b, Sequences::new(&[0.0], 1, 1), Precision::F64).unwrap_err();
        assert_eq!(e, ReferenceError::InputRows { rows: 3, expected: 2 });
    }

    #[test]
    fn forward_x_equals_forward_u_of_the_projection() {
        // U = W_ih x + b_ih with W_ih = [[1, 2], [0, −1]], b_ih = [0.5, 0], x = [0.25, −0.5]:
        // U = [0.25 − 1 + 0.5, 0.5] = [−0.25, 0.5] (exact in every precision).
        let (w, b, h0, _) = tiny();
        let wih = Matrix::Sparse(Csr::from_dense(&[1.0, 2.0, 0.0, -1.0], 2, 2).unwrap());
        for p in [Precision::F64, Precision::F32, Precision::DeviceFaithful] {
            let a = forward_x(Cell::RnnRelu, &wih, &[0.5, 0.0], &w, &b, Sequences::new(&[0.25, -0.5], 1, 1).with_state(Some(&h0), None), p).unwrap();
            let b2 = forward_u(Cell::RnnRelu, &w, &b, Sequences::new(&[-0.25, 0.5], 1, 1).with_state(Some(&h0), None), p).unwrap();
            assert_eq!(a, b2, "{p:?}");
        }
    }

    #[test]
    fn permuted_order_with_one_lane_and_short_rows_matches() {
        // Rows of at most 2 nonzeros: any order of a 2-term f32 sum from 0 is the same sum.
        let (w, b, h0, u) = tiny();
        let a = forward_u(Cell::RnnTanh, &w, &b, Sequences::new(&u, 1, 1).with_state(Some(&h0), None), Precision::DeviceFaithful).unwrap();
        let p = forward_u_permuted(Cell::RnnTanh, &w, &b, Sequences::new(&u, 1, 1).with_state(Some(&h0), None), Precision::DeviceFaithful, (7, 1)).unwrap();
        assert_eq!(a, p);
    }
}
