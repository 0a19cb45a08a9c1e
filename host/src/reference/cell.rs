//! Cell equations (PyTorch's conventions), generic over the arithmetic type.

use std::fmt::Debug;
use std::ops::{Add, Div, Mul, Neg, Sub};

use crate::Cell;

mod sealed {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for f64 {}
}

/// The floating-point types the reference computes in: `f32` and `f64` (sealed).
///
/// Every operation is the plain IEEE one of the type (`exp` and `tanh` from the platform's libm),
/// so an `f32` computation rounds after every operation, exactly like GPU `f32` code without
/// fused multiply-add contraction.
pub trait Scalar:
    sealed::Sealed
    + Copy
    + PartialOrd
    + Debug
    + Send
    + Sync
    + 'static
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
{
    /// Zero.
    const ZERO: Self;
    /// One.
    const ONE: Self;
    /// Conversion from `f32` (exact for both types).
    fn from_f32(v: f32) -> Self;
    /// Conversion from `f64` (rounds to nearest for `f32`).
    fn from_f64(v: f64) -> Self;
    /// Conversion to `f64` (exact for both types).
    fn to_f64(self) -> f64;
    /// `e^self`.
    fn exp(self) -> Self;
    /// Hyperbolic tangent.
    fn tanh(self) -> Self;
}

macro_rules! scalar {
    ($t:ty) => {
        impl Scalar for $t {
            const ZERO: Self = 0.0;
            const ONE: Self = 1.0;
            #[inline]
            fn from_f32(v: f32) -> Self {
                v as $t
            }
            #[inline]
            fn from_f64(v: f64) -> Self {
                v as $t
            }
            #[inline]
            fn to_f64(self) -> f64 {
                self as f64
            }
            #[inline]
            fn exp(self) -> Self {
                <$t>::exp(self)
            }
            #[inline]
            fn tanh(self) -> Self {
                <$t>::tanh(self)
            }
        }
    };
}
scalar!(f32);
scalar!(f64);

/// `σ(x) = 1 / (1 + e^(-x))`, evaluated literally in `S` (this is the GPU's formula too).
#[inline]
pub fn sigmoid<S: Scalar>(x: S) -> S {
    S::ONE / (S::ONE + (-x).exp())
}

/// `relu(x) = max(x, 0)`; NaN stays NaN, as in PyTorch.
#[inline]
pub fn relu<S: Scalar>(x: S) -> S {
    if x < S::ZERO {
        S::ZERO
    } else {
        x
    }
}

/// One cell step for one sequence, PyTorch's equations.
///
/// `gi` is the input part of the gate pre-activations, `W_ih x + b_ih` (`G * H` values, gate-major:
/// gate `g` of unit `j` at `g * H + j`), `gh` the hidden part, `W_hh h + b_hh` (same layout).
/// `h` (`H` values) holds `h_{t-1}` on entry and `h_t` on return; `c` holds the LSTM cell state
/// the same way and is ignored (may be empty) for the other cells. With gate slices named by
/// their order:
///
/// | cell | gates | equations |
/// | --- | --- | --- |
/// | RNN-ReLU | `[h]` | `h' = relu(gi + gh)` |
/// | RNN-tanh | `[h]` | `h' = tanh(gi + gh)` |
/// | GRU | `[r, z, n]` | `r = σ(gi_r + gh_r)`, `z = σ(gi_z + gh_z)`, `n = tanh(gi_n + r ⊙ gh_n)`, `h' = (1 − z) ⊙ n + z ⊙ h` |
/// | LSTM | `[i, f, g, o]` | `i = σ(gi_i + gh_i)`, `f = σ(gi_f + gh_f)`, `g = tanh(gi_g + gh_g)`, `o = σ(gi_o + gh_o)`, `c' = f ⊙ c + i ⊙ g`, `h' = o ⊙ tanh(c')` |
///
/// GRU's reset gate multiplies the whole hidden part of the candidate, `W_hn h + b_hn` (PyTorch,
/// unlike the original GRU paper, which applies it to `h` before the product).
///
/// # Panics
/// When `gi` or `gh` do not hold `G * H` values, or `c` (LSTM only) not `H`.
pub fn cell_step<S: Scalar>(cell: Cell, gi: &[S], gh: &[S], h: &mut [S], c: &mut [S]) {
    let hidden = h.len();
    let gates = cell.gates();
    assert_eq!(gi.len(), gates * hidden, "cell_step: gi has {} values, need G*H = {}", gi.len(), gates * hidden);
    assert_eq!(gh.len(), gates * hidden, "cell_step: gh has {} values, need G*H = {}", gh.len(), gates * hidden);
    let pre = |g: usize, j: usize| gi[g * hidden + j] + gh[g * hidden + j];
    match cell {
        Cell::RnnRelu => (0..hidden).for_each(|j| h[j] = relu(pre(0, j))),
        Cell::RnnTanh => (0..hidden).for_each(|j| h[j] = pre(0, j).tanh()),
        Cell::Gru => {
            for j in 0..hidden {
                let r = sigmoid(pre(0, j));
                let z = sigmoid(pre(1, j));
                let n = (gi[2 * hidden + j] + r * gh[2 * hidden + j]).tanh();
                h[j] = (S::ONE - z) * n + z * h[j];
            }
        }
        Cell::Lstm => {
            assert_eq!(c.len(), hidden, "cell_step: c has {} values, need H = {hidden}", c.len());
            for j in 0..hidden {
                let i = sigmoid(pre(0, j));
                let f = sigmoid(pre(1, j));
                let g = pre(2, j).tanh();
                let o = sigmoid(pre(3, j));
                c[j] = f * c[j] + i * g;
                h[j] = o * c[j].tanh();
            }
        }
    }
}
