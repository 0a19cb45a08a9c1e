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

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) {
        assert!((a - b).abs() < 1e-12, "{a} != {b}");
    }

    #[test]
    fn rnn_cells_add_both_parts() {
        // H = 2. Pre-activations gi + gh = [0.5 + 0.25, -1.0 + 1.0] = [0.75, 0.0]
        // (ReLU case: [0.5 + 0.25, -1.0 + 0.5] = [0.75, -0.5]).
        let mut h = [9.0f64, 9.0];
        cell_step(Cell::RnnTanh, &[0.5, -1.0], &[0.25, 1.0], &mut h, &mut []);
        close(h[0], 0.6351489523872873); // tanh(0.75)
        close(h[1], 0.0); // tanh(0)
        cell_step(Cell::RnnRelu, &[0.5, -1.0], &[0.25, 0.5], &mut h, &mut []);
        assert_eq!(h, [0.75, 0.0]);
    }

    #[test]
    fn gru_reset_gate_scales_the_hidden_part_of_n() {
        // H = 1, gates [r, z, n].
        // r = σ(0.3 − 0.3) = σ(0) = 0.5;  z = σ(1.0 − 1.0) = 0.5
        // n = tanh(gi_n + r · gh_n) = tanh(0.2 + 0.5 · 0.6) = tanh(0.5) = 0.46211715726000974
        // h' = (1 − z) · n + z · h = 0.5 · 0.46211715726000974 + 0.5 · 0.8 = 0.6310585786300049
        // (reset applied to h before the product instead would need W_hn, which gh_n already holds:
        //  tanh(0.2 + 0.6) would give 0.7719 and h' = 0.7859.)
        let mut h = [0.8f64];
        cell_step(Cell::Gru, &[0.3, 1.0, 0.2], &[-0.3, -1.0, 0.6], &mut h, &mut []);
        close(h[0], 0.6310585786300049);
    }

    #[test]
    fn lstm_gate_order_is_i_f_g_o() {
        // H = 1, gates [i, f, g, o].
        // i = σ(1 − 1) = 0.5;  f = σ(ln 3) = 3 / 4;  g = tanh(ln 2) = 3 / 5;  o = σ(0) = 0.5
        // c' = f · c + i · g = 0.75 · 0.4 + 0.5 · 0.6 = 0.6
        // h' = o · tanh(c') = 0.5 · tanh(0.6) = 0.26852478349901765
        let mut h = [0.123f64];
        let mut c = [0.4f64];
        let gi = [1.0, 3f64.ln(), 2f64.ln(), 0.0];
        cell_step(Cell::Lstm, &gi, &[-1.0, 0.0, 0.0, 0.0], &mut h, &mut c);
        close(c[0], 0.6);
        close(h[0], 0.26852478349901765);
    }

    #[test]
    fn sigmoid_and_relu_edges() {
        assert_eq!(sigmoid(0.0f32), 0.5);
        assert_eq!(sigmoid(-1000.0f32), 0.0); // exp overflows to inf: 1 / inf
        assert_eq!(sigmoid(1000.0f64), 1.0);
        assert!(relu(f32::NAN).is_nan());
        assert_eq!(relu(-0.5f64), 0.0);
    }

    #[test]
    #[should_panic(expected = "gi has 3 values")]
    fn wrong_gate_slice_panics() {
        cell_step(Cell::Lstm, &[0.0f32; 3], &[0.0; 4], &mut [0.0], &mut [0.0]);
    }
}
