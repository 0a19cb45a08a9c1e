//! Cell math in f32 with PyTorch's conventions (see `sprnn::reference` for the equations).

use crate::device::{sigmoid, tanh};
use crate::format::Cell;

/// The RNN cell (`tanh` for [`Cell::RnnTanh`], else `relu`) of pre-activation `x`: the fused
/// path's two-way choice instead of the general cell's four-way one.
#[inline(always)]
pub fn rnn(cell: Cell, x: f32) -> f32 {
    if cell == Cell::RnnTanh {
        tanh(x)
    } else if x > 0.0 {
        x
    } else {
        0.0
    }
}

/// One cell update. `pre[g]` is gate `g`'s recurrent sum plus `b_hh` (`W_hh h + b_hh`), `u[g]`
/// its input part (`W_ih x + b_ih`), `h_prev` the unit's previous state (fp16 value), `c_prev`
/// the LSTM cell state. Returns `(h, c)`; `c` is `c_prev` for cells without one.
#[inline(always)]
pub fn update(cell: Cell, pre: [f32; 4], u: [f32; 4], h_prev: f32, c_prev: f32) -> (f32, f32) {
    match cell {
        Cell::RnnRelu => {
            let x = u[0] + pre[0];
            (if x > 0.0 { x } else { 0.0 }, c_prev)
        }
        Cell::RnnTanh => (tanh(u[0] + pre[0]), c_prev),
        Cell::Gru => {
            let r = sigmoid(u[0] + pre[0]);
            let z = sigmoid(u[1] + pre[1]);
            let n = tanh(u[2] + r * pre[2]);
            ((1.0 - z) * n + z * h_prev, c_prev)
        }
        Cell::Lstm => {
            let i = sigmoid(u[0] + pre[0]);
            let f = sigmoid(u[1] + pre[1]);
            let g = tanh(u[2] + pre[2]);
            let o = sigmoid(u[3] + pre[3]);
            let c = f * c_prev + i * g;
            (o * tanh(c), c)
        }
    }
}
