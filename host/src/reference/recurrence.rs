//! The time loop shared by every precision: `h_t = cell(U_t, W_hh h_{t-1} + b_hh)`.

use half::f16;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use sprnn_kernels::format::{tag_bit, tag_round};

use super::cell::{cell_step, Scalar};
use super::Sequences;
use crate::fp16::GroupSum;
use crate::{Cell, Csr};

/// How each row's products are summed.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Order {
    /// Storage (column) order, one running sum.
    Sequential,
    /// Each row's nonzeros shuffled with a seeded generator, dealt round-robin to `lanes` partial
    /// sums (one per GPU lane), which are then added by a butterfly (halving) tree.
    Permuted { seed: u64, lanes: usize },
}

/// `W_hh` in the arithmetic type, with the nonzeros of each row in summation order.
struct Recurrent<S> {
    row_ptr: Vec<usize>,
    col_idx: Vec<u32>,
    values: Vec<S>,
    lanes: usize,
    /// Sum each lane's products in fp16 groups ([`GroupSum`]); values and `h` are fp16 values.
    f16_products: bool,
}

impl<S: Scalar> Recurrent<S> {
    fn new(w: &Csr, value: impl Fn(f32) -> S, order: Order, f16_products: bool) -> Self {
        let mut col_idx = w.col_idx().to_vec();
        let mut values: Vec<S> = w.values().iter().map(|&v| value(v)).collect();
        let lanes = match order {
            Order::Sequential => 1,
            Order::Permuted { seed, lanes } => {
                let mut rng = ChaCha8Rng::seed_from_u64(seed);
                let mut perm: Vec<usize> = Vec::new();
                for r in 0..w.rows() {
                    let (a, b) = (w.row_ptr()[r], w.row_ptr()[r + 1]);
                    perm.clear();
                    perm.extend(0..b - a);
                    perm.shuffle(&mut rng);
                    let c: Vec<u32> = perm.iter().map(|&i| col_idx[a + i]).collect();
                    let v: Vec<S> = perm.iter().map(|&i| values[a + i]).collect();
                    col_idx[a..b].copy_from_slice(&c);
                    values[a..b].copy_from_slice(&v);
                }
                lanes
            }
        };
        Recurrent { row_ptr: w.row_ptr().to_vec(), col_idx, values, lanes, f16_products }
    }

    /// `out[r] = Σ_k W[r, k] h[k]` in `S`, in this matrix's summation order (`f32` products;
    /// [`Recurrent::product_batch`] has the fp16 group sums).
    fn product(&self, h: &[S], out: &mut [S]) {
        let mut partial = [S::ZERO; 32];
        for (r, o) in out.iter_mut().enumerate() {
            let (a, b) = (self.row_ptr[r], self.row_ptr[r + 1]);
            let cols = &self.col_idx[a..b];
            let vals = &self.values[a..b];
            if self.lanes == 1 {
                let mut acc = S::ZERO;
                for (&c, &v) in cols.iter().zip(vals) {
                    acc = acc + v * h[c as usize];
                }
                *o = acc;
            } else {
                let lanes = self.lanes;
                partial[..lanes].iter_mut().for_each(|p| *p = S::ZERO);
                for (i, (&c, &v)) in cols.iter().zip(vals).enumerate() {
                    let p = &mut partial[i % lanes];
                    *p = *p + v * h[c as usize];
                }
                *o = halving_sum(&mut partial[..lanes]);
            }
        }
    }
}

/// The lanes' partial sums added by a halving tree (lane `l` takes `l + width / 2`, as a
/// warp's shuffle reduction does); returns the total (`partial` is overwritten).
fn halving_sum<S: Scalar>(partial: &mut [S]) -> S {
    let mut width = partial.len();
    while width > 1 {
        width /= 2;
        for l in 0..width {
            partial[l] = partial[l] + partial[l + width];
        }
    }
    partial[0]
}

impl<S: Scalar> Recurrent<S> {
    /// `W_hh · h_b` for every batch entry `b` of `h` (`[B][H]`) into `out` (`[B][G·H]`): with fp16
    /// group sums all entries' sums of a row at once (their fp16 chains are independent, so the
    /// CPU overlaps them), large products split by rows over the machine's cores (the emulated
    /// fp16 rounding costs about ten times an `f32` FMA); otherwise [`Recurrent::product`] per
    /// entry. Each sum's arithmetic is the same either way.
    fn product_batch(&self, h: &[S], hidden: usize, out: &mut [S]) {
        let batch = h.len() / hidden.max(1);
        let rows = self.row_ptr.len() - 1;
        if !self.f16_products {
            for (hb, ob) in h.chunks(hidden).zip(out.chunks_mut(rows)) {
                self.product(hb, ob);
            }
            return;
        }
        let work = self.col_idx.len() * batch;
        let threads = if work < 1 << 16 { 1 } else { std::thread::available_parallelism().map_or(1, |n| n.get()).min(16) };
        let chunk = rows.div_ceil(threads);
        // Rows `r0..r1` of every entry, written to `part[b][r - r0]`.
        let run = |r0: usize, r1: usize| -> Vec<S> {
            let mut part = vec![S::ZERO; batch * (r1 - r0)];
            self.rows_f16(h, hidden, batch, r0..r1, &mut part);
            part
        };
        let parts: Vec<(usize, Vec<S>)> = if threads == 1 {
            vec![(0, run(0, rows))]
        } else {
            std::thread::scope(|s| {
                let handles: Vec<_> = (0..rows).step_by(chunk).map(|r0| (r0, s.spawn(move || run(r0, (r0 + chunk).min(rows))))).collect();
                handles.into_iter().map(|(r0, j)| (r0, j.join().expect("reference thread"))).collect()
            })
        };
        for (r0, part) in parts {
            let n = part.len() / batch.max(1);
            for b in 0..batch {
                out[b * rows + r0..b * rows + r0 + n].copy_from_slice(&part[b * n..(b + 1) * n]);
            }
        }
    }

    /// Rows `range` of [`Recurrent::product_batch`] with fp16 group sums (`Products::F16`): each
    /// lane's products of a row in [`GroupSum`]s, the lanes' sums added in `S` by the butterfly
    /// tree; `part[b][r - range.start]`.
    fn rows_f16(&self, h: &[S], hidden: usize, batch: usize, range: std::ops::Range<usize>, part: &mut [S]) {
        // Weights and `h` are fp16 values already (`fp16_state`), exact in `f32`.
        let h32: Vec<f32> = h.iter().map(|v| v.to_f64() as f32).collect();
        let lanes = self.lanes;
        let n = range.len();
        let mut sums = vec![GroupSum::default(); lanes * batch];
        let mut partial = [S::ZERO; 32];
        for (i, r) in range.enumerate() {
            let (a, e) = (self.row_ptr[r], self.row_ptr[r + 1]);
            sums.iter_mut().for_each(|g| *g = GroupSum::default());
            let mut lane = 0;
            for (&c, &v) in self.col_idx[a..e].iter().zip(&self.values[a..e]) {
                let w = v.to_f64() as f32;
                for b in 0..batch {
                    sums[b * lanes + lane].add(w, h32[b * hidden + c as usize]);
                }
                lane += 1;
                if lane == lanes {
                    lane = 0;
                }
            }
            for b in 0..batch {
                for l in 0..lanes {
                    partial[l] = S::from_f32(sums[b * lanes + l].total());
                }
                part[b * n + i] = halving_sum(&mut partial[..lanes]);
            }
        }
    }
}

/// Rounds an `f32` to the nearest fp16 (ties to even) and back.
#[inline]
pub(crate) fn round_f16(v: f32) -> f32 {
    f16::from_f32(v).to_f32()
}

/// Rounds an `f32` to the fp16 value the kernel exchanges at step `step` (1-based): the nearest
/// fp16 whose last mantissa bit is the step's tag bit (`sprnn_kernels::format::tag_round`,
/// error at most one fp16 ulp), and back.
#[inline]
pub(crate) fn round_f16_tagged(v: f32, step: u32) -> f32 {
    let rne = f16::from_f32(v).to_bits();
    f16::from_bits(tag_round(v, rne, tag_bit(step), |b| f16::from_bits(b).to_f32())).to_f32()
}

/// What the loop rounds.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rounding {
    /// Round `W_hh` values and `h0` to fp16, and every `h_t` to the tagged fp16 value the GPU
    /// exchanges ([`round_f16_tagged`]).
    pub fp16_state: bool,
    /// Sum the products in fp16 groups (`Products::F16`; with `fp16_state` only).
    pub f16_products: bool,
}

/// Everything the loop needs, already validated by the caller. The sequences hold `f64` as a
/// transport type (exact for `f32` values); the loop converts to `S`.
pub(crate) struct Problem<'a> {
    pub cell: Cell,
    pub w_hh: &'a Csr,
    pub b_hh: &'a [f32],
    /// `U` (`[T][B][G*H]`) with the initial state (`[B][H]` each) and the steps before it.
    pub u: Sequences<'a, f64>,
}

/// Every `h_t` (`[T][B][H]`) and the final `c` (`[B][H]`, zeros for non-LSTM cells).
pub(crate) struct Trajectory {
    pub h: Vec<f64>,
    pub c: Vec<f64>,
}

/// Runs the recurrence in `S` with the given rounding and summation order.
pub(crate) fn run<S: Scalar>(p: &Problem<'_>, rounding: Rounding, order: Order) -> Trajectory {
    let hidden = p.w_hh.cols();
    let gates = p.cell.gates();
    let gh_len = gates * hidden;
    let state = |v: f64| -> S {
        if rounding.fp16_state {
            S::from_f32(round_f16(v as f32))
        } else {
            S::from_f64(v)
        }
    };
    let w = Recurrent::<S>::new(
        p.w_hh,
        |v| if rounding.fp16_state { S::from_f32(round_f16(v)) } else { S::from_f32(v) },
        order,
        rounding.fp16_state && rounding.f16_products,
    );
    let b_hh: Vec<S> = p.b_hh.iter().map(|&v| S::from_f32(v)).collect();
    let mut h: Vec<S> = match p.u.h0 {
        Some(h0) => h0.iter().map(|&v| state(v)).collect(),
        None => vec![S::ZERO; p.u.batch * hidden],
    };
    // The cell state is never rounded (the GPU keeps it in f32 registers).
    let mut c: Vec<S> = match p.u.c0 {
        Some(c0) => c0.iter().map(|&v| S::from_f64(v)).collect(),
        None => vec![S::ZERO; p.u.batch * hidden],
    };
    let mut out = Vec::with_capacity(p.u.steps * p.u.batch * hidden);
    let mut gi = vec![S::ZERO; gh_len];
    let mut gh_all = vec![S::ZERO; p.u.batch * gh_len];
    for t in 0..p.u.steps {
        // Every entry's product from `h_{t-1}` first, then the cells.
        w.product_batch(&h, hidden, &mut gh_all);
        for b in 0..p.u.batch {
            let hb = &mut h[b * hidden..(b + 1) * hidden];
            let gh = &mut gh_all[b * gh_len..(b + 1) * gh_len];
            gh.iter_mut().zip(&b_hh).for_each(|(g, &bias)| *g = *g + bias);
            let u = &p.u.values[(t * p.u.batch + b) * gh_len..(t * p.u.batch + b + 1) * gh_len];
            gi.iter_mut().zip(u).for_each(|(g, &v)| *g = S::from_f64(v));
            let cb: &mut [S] = if p.cell == Cell::Lstm { &mut c[b * hidden..(b + 1) * hidden] } else { &mut [] };
            cell_step(p.cell, &gi, gh, hb, cb);
            if rounding.fp16_state {
                // The tags repeat every four steps.
                let step = ((p.u.steps_done % 4) as usize + t + 1) as u32 % 4;
                hb.iter_mut().for_each(|v| *v = S::from_f32(round_f16_tagged(v.to_f64() as f32, step)));
            }
        }
        out.extend(h.iter().map(|v| v.to_f64()));
    }
    Trajectory { h: out, c: c.iter().map(|v| v.to_f64()).collect() }
}
