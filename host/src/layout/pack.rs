//! Packing: lists of entries → the kernel's weight buffer.
//!
//! Each entry becomes [`WordFormat::pack`]`(fp16 bits, col)` in the launch's word format (the
//! column's index for the grid kernels, its byte offset for the cluster kernel), the value
//! rounded to fp16 to nearest even (`half::f16::from_f32`); padding becomes
//! [`WordFormat::pad`]`(columns)`, value +0.0 at the zero column, so it adds exactly zero. Word `k` of thread `tid` of CTA `c` goes to
//! `weights[k * (grid * NT) + c * NT + tid]`, for `k < N + M` (`M` words in shared memory on the
//! shared-weights family; the kernel copies entries `N ..` there at start-up). CTAs are laid out in parallel on the available
//! cores; the result does not depend on how many there are.

use half::f16;
use sprnn_kernels::format::{row_of_slot, WordFormat, NO_UNIT};

use super::assign::{Assigner, WeightOrder, PAD};
use super::bank::{BankModel, BankStats};
use super::Geometry;
use crate::sparse::Csr;

/// The packed weights and their bank statistics.
pub(crate) struct Packed {
    pub weights: Vec<u32>,
    pub bank: BankStats,
    pub bank_naive: BankStats,
}

/// What [`pack`] needs to know about the launch shape: the layer's gates, the geometry (on the
/// gated kernel family the rows are laid out as whole units per warp; `format::row_of_slot`)
/// and the kernel's word format.
#[derive(Clone, Copy)]
pub(crate) struct PackShape {
    pub gates: usize,
    pub geometry: Geometry,
    pub words: WordFormat,
}

/// Lays out every CTA and packs the words.
pub(crate) fn pack(w: &Csr, units: &[u32], shape: PackShape, model: BankModel, order: WeightOrder) -> Packed {
    let Geometry { grid, threads_per_cta: nt, .. } = shape.geometry;
    let n = shape.geometry.list_len + shape.geometry.shared_words;
    let workers = std::thread::available_parallelism().map_or(1, |p| p.get()).min(grid).max(1);
    let per = grid.div_ceil(workers);
    let results: Vec<(usize, Vec<u32>, BankStats, BankStats)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..grid)
            .step_by(per)
            .map(|c0| {
                let c1 = (c0 + per).min(grid);
                scope.spawn(move || {
                    let (buf, bank, naive) = pack_ctas(w, units, shape, model, order, c0..c1);
                    (c0, buf, bank, naive)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("layout worker panicked")).collect()
    });
    let total = grid * nt;
    let mut weights = vec![0u32; n * total];
    let mut bank = BankStats::new(&model);
    let mut bank_naive = BankStats::new(&model);
    for (c0, buf, b, bn) in results {
        bank.merge(&b);
        bank_naive.merge(&bn);
        // buf is [cta][k][tid].
        for (i, chunk) in buf.chunks(nt).enumerate() {
            let (c, k) = (c0 + i / n, i % n);
            weights[k * total + c * nt..k * total + (c + 1) * nt].copy_from_slice(chunk);
        }
    }
    Packed { weights, bank, bank_naive }
}

/// Lays out CTAs `ctas`; returns their words as `[cta][k][tid]` and the bank statistics of the
/// chosen and of the naive order.
fn pack_ctas(
    w: &Csr,
    units: &[u32],
    shape: PackShape,
    model: BankModel,
    order: WeightOrder,
    ctas: std::ops::Range<usize>,
) -> (Vec<u32>, BankStats, BankStats) {
    let gates = shape.gates;
    let Geometry { units_per_cta: upc, threads_per_cta: nt, threads_per_row: tpr, gated_kernel: whole_units, .. } = shape.geometry;
    // A thread's whole list: its register words, then its shared-memory words. One bank-aware
    // order covers both: the shared word's own load never conflicts (a warp reads 32
    // consecutive words), so only the `h` loads of each position are ordered.
    let n = shape.geometry.list_len + shape.geometry.shared_words;
    // Rows are `gate · H + unit`; columns are the kernel's (`w.cols()` of them, the last + 1 is
    // the zero column).
    let h = w.rows() / gates;
    assert!(shape.words.fits(w.cols()), "the planner checks that the word format locates every column");
    let pad = shape.words.pad(w.cols());
    let mut asg = Assigner::new(w, tpr, n, model);
    let mut buf = vec![pad; ctas.len() * n * nt];
    let mut bank = BankStats::new(&model);
    let mut bank_naive = BankStats::new(&model);
    let mut naive = vec![PAD; 32 * n];
    let mut aware = vec![PAD; 32 * n];
    let slots_per_warp = 32 / tpr;
    for (ci, c) in ctas.enumerate() {
        for warp in 0..nt / 32 {
            let slots: Vec<Option<u32>> = (0..slots_per_warp)
                .map(|i| {
                    let (u, g) = row_of_slot((warp * 32) / tpr + i, gates, tpr, whole_units);
                    if u >= upc {
                        return None;
                    }
                    let unit = units[c * upc + u];
                    (unit != NO_UNIT).then(|| (g * h) as u32 + unit)
                })
                .collect();
            asg.naive(&slots, &mut naive);
            let naive_cost = asg.measure(&naive, &mut bank_naive);
            let chosen = match order {
                WeightOrder::Naive => {
                    bank.merge(&{
                        let mut s = BankStats::new(&model);
                        asg.measure(&naive, &mut s);
                        s
                    });
                    &naive
                }
                WeightOrder::BankAware => {
                    asg.bank_aware(&slots, &mut aware);
                    let mut s = BankStats::new(&model);
                    let cost = asg.measure(&aware, &mut s);
                    if cost <= naive_cost {
                        bank.merge(&s);
                        &aware
                    } else {
                        let mut s = BankStats::new(&model);
                        asg.measure(&naive, &mut s);
                        bank.merge(&s);
                        &naive
                    }
                }
            };
            for lane in 0..32 {
                let tid = warp * 32 + lane;
                for k in 0..n {
                    let e = chosen[lane * n + k];
                    if e != PAD {
                        let col = w.col_idx()[e as usize];
                        let v = f16::from_f32(w.values()[e as usize]).to_bits();
                        buf[(ci * n + k) * nt + tid] = shape.words.pack(v, col);
                    }
                }
            }
        }
    }
    (buf, bank, bank_naive)
}
