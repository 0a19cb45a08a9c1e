//! The dense tensor-core slab: when a layer is dense enough, each CTA holds its gate rows of
//! `W_hh` as dense fp16 `mma.m16n8k16` A fragments (pruned entries as zeros) instead of packed
//! nonzeros, and the kernel `sprnn_dense_mt{MT}_kw{KW}` (RNN cells with a half last m-tile:
//! `sprnn_dense_rnn_mt{MT}h_kw{KW}`) multiplies with tensor cores.
//!
//! # Fragment layout
//!
//! A CTA's local gate rows `lr = s` (slot `s` is gate `s % G` of local unit `s / G`, as in the
//! sparse layout) form `MT` m-tiles of 16 rows; the kernel's columns (the renamed columns of
//! [`Plan::columns`](super::Plan::columns), zero past them) form k-tiles of 16; warp `w` owns
//! k-tiles `w·KW .. (w+1)·KW` of every m-tile. Thread `lane` (`g = lane / 4`, `q = lane % 4`)
//! holds, for its warp's k-tile `kw` and m-tile `mt`, the four registers of the `mma` A fragment
//! (PTX ISA, `mma.m16n8k16` fragments): `A[g][2q..]`, `A[g+8][2q..]`, `A[g][2q+8..]`,
//! `A[g+8][2q+8..]` (two fp16, lower column in the low half), word
//! `k = kw·W + mt·4 + i` of the thread (`W = 4·MT` words per k-tile), stored at
//! `weights[k · grid·threads + cta·threads + tid]` as the sparse lists are (coalesced). A *half*
//! shape's last m-tile holds at most 8 rows, so its registers `i` = 1 and 3 (rows `g + 8`) would
//! be zeros: they are not stored (`W = 4·MT − 2`, that m-tile's words `i` = 0 and 2 at `mt·4`
//! and `mt·4 + 1`), which lets 18 warps of two m-tiles and eight k-tiles fit an SM.
//!
//! # Cost
//!
//! Registers: `W·KW` per thread for the fragments. The product of a step is `MT·KW` `mma`
//! per warp plus four 16-bit shared loads per k-tile; the warps' partial sums are added by the
//! cell's thread (`warps` loads per gate row). Each thread still gathers its share of the
//! exchange, so fewer warps mean more serial polls per thread.

use half::f16;
use sprnn_kernels::format::{dense_rows, dense_words_per_k_tile, DenseSmem, DENSE_MAX_BATCH, DENSE_SHAPES, DENSE_TILE, NO_UNIT};

use super::device::{registers_per_sm, DeviceInfo};
use crate::sparse::Csr;
use crate::Cell;

/// The launch shape of a dense slab: `m_tiles` (MT), `k_tiles_per_warp` (KW), `warps`, and
/// whether the last m-tile is `half` (at most 8 rows).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DenseShape {
    /// m-tiles of 16 gate rows per CTA (MT).
    pub m_tiles: usize,
    /// k-tiles of 16 columns per warp (KW).
    pub k_tiles_per_warp: usize,
    /// Warps per CTA.
    pub warps: usize,
    /// The last m-tile holds at most 8 rows, and its fragments' zero halves are not held (RNN
    /// cells only: `format::DENSE_SHAPES`).
    pub half: bool,
}

impl DenseShape {
    /// Fragment words per k-tile and thread (`W`: four per m-tile, two for a half one).
    pub fn words_per_k_tile(&self) -> usize {
        dense_words_per_k_tile(self.m_tiles, self.half)
    }

    /// Words (registers) of fragments per thread, `W·KW`.
    pub fn words_per_thread(&self) -> usize {
        self.words_per_k_tile() * self.k_tiles_per_warp
    }

    /// Gate rows a CTA may hold.
    pub fn rows(&self) -> usize {
        dense_rows(self.m_tiles, self.half)
    }

    /// Threads per CTA.
    pub fn threads(&self) -> usize {
        32 * self.warps
    }

    /// Dynamic shared memory per CTA.
    pub fn smem_bytes(&self, cell: Cell, batch: usize, slots: usize, units: usize) -> usize {
        DenseSmem::new(self.warps, self.k_tiles_per_warp, self.m_tiles, batch, slots, units, cell).total
    }
}

/// What [`fit`] decided: the shape and what it needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DenseFit {
    /// The shape.
    pub shape: DenseShape,
    /// Registers per thread of the variant on the device.
    pub registers_per_thread: u32,
    /// Registers per SM the launch needs (allocation granularity and scheduler split included).
    pub registers_per_sm: usize,
    /// Dynamic shared memory per CTA.
    pub smem_bytes: usize,
}

/// The dense shape for a layer whose CTAs hold `units_per_cta` units (`gates` rows each) and
/// `slots` columns each, `columns` columns in all, at batch `batch`, on `device` with one CTA
/// per SM: of the variants whose m-tiles cover the rows and whose registers, threads and shared
/// memory fit, the one with the most warps (the fewest serial polls per thread in the gather).
/// `None` when no variant fits (or `batch` > [`DENSE_MAX_BATCH`]).
pub fn fit(cell: Cell, units_per_cta: usize, slots: usize, columns: usize, batch: usize, device: &DeviceInfo) -> Option<DenseFit> {
    if batch == 0 || batch > DENSE_MAX_BATCH {
        return None;
    }
    let rows = units_per_cta * cell.gates();
    let m_tiles = rows.div_ceil(DENSE_TILE);
    let k_tiles = columns.div_ceil(DENSE_TILE);
    let have_smem = device.shared_per_cta(1);
    DENSE_SHAPES
        .iter()
        .filter(|&&(mt, _, half)| mt == m_tiles && rows <= dense_rows(mt, half) && (!half || cell.gates() == 1))
        .filter_map(|&(mt, kw, half)| {
            let warps = k_tiles.div_ceil(kw).max(1);
            let shape = DenseShape { m_tiles: mt, k_tiles_per_warp: kw, warps, half };
            let regs = device.dense_registers(mt, kw, half)?;
            let need = registers_per_sm(shape.threads(), 1, regs as usize);
            let smem = shape.smem_bytes(cell, batch, slots, units_per_cta);
            let ok = shape.threads() <= device.max_threads_per_block.min(device.max_threads_per_sm)
                && need <= device.registers_per_sm
                && regs as usize <= device.max_registers_per_thread
                && smem <= have_smem;
            ok.then_some(DenseFit { shape, registers_per_thread: regs, registers_per_sm: need, smem_bytes: smem })
        })
        .max_by_key(|f| (f.shape.warps, std::cmp::Reverse(f.shape.k_tiles_per_warp)))
}

/// The held words of m-tile `mt`'s fragment: `(j, i)` for word `mt·4 + j` of a k-tile holding
/// fragment register `i` (all four, or `i` = 0 and 2 for a half shape's last m-tile).
fn fragment_words(shape: DenseShape, mt: usize) -> impl Iterator<Item = (usize, usize)> {
    let half = shape.half && mt + 1 == shape.m_tiles;
    let regs: &'static [usize] = if half { &[0, 2] } else { &[0, 1, 2, 3] };
    regs.iter().copied().enumerate()
}

/// Packs the A fragments of every CTA (see the module docs). `w_cols` is `W_hh` with the
/// kernel's columns ([`Plan::columns`](super::Plan::columns) of them), `units` the unit table.
pub(crate) fn pack(w_cols: &Csr, cell: Cell, units: &[u32], grid: usize, units_per_cta: usize, shape: DenseShape) -> Vec<u32> {
    let gates = cell.gates();
    let hidden = w_cols.rows() / gates;
    let (mt_n, kw_n, warps) = (shape.m_tiles, shape.k_tiles_per_warp, shape.warps);
    let threads = shape.threads();
    let total = grid * threads;
    let (words, wk) = (shape.words_per_thread(), shape.words_per_k_tile());
    let cols = warps * kw_n * DENSE_TILE;
    let rows = mt_n * DENSE_TILE;
    let mut out = vec![0u32; words * total];
    let mut a = vec![0u16; rows * cols];
    for c in 0..grid {
        a.fill(0);
        for lr in 0..rows.min(units_per_cta * gates) {
            let unit = units[c * units_per_cta + lr / gates];
            if unit == NO_UNIT {
                continue;
            }
            let (ci, vals) = w_cols.row((lr % gates) * hidden + unit as usize);
            for (&col, &v) in ci.iter().zip(vals) {
                a[lr * cols + col as usize] = f16::from_f32(v).to_bits();
            }
        }
        let at = |r: usize, k: usize| (a[r * cols + k] as u32) | ((a[r * cols + k + 1] as u32) << 16);
        for warp in 0..warps {
            for lane in 0..32 {
                let (g, q) = (lane / 4, lane % 4);
                let tid = warp * 32 + lane;
                for kw in 0..kw_n {
                    let k0 = (warp * kw_n + kw) * DENSE_TILE + 2 * q;
                    for mt in 0..mt_n {
                        let r0 = mt * DENSE_TILE + g;
                        let frag = [at(r0, k0), at(r0 + 8, k0), at(r0, k0 + 8), at(r0 + 8, k0 + 8)];
                        for (j, i) in fragment_words(shape, mt) {
                            out[(kw * wk + mt * 4 + j) * total + c * threads + tid] = frag[i];
                        }
                    }
                }
            }
        }
    }
    out
}

/// The dense matrix a CTA's fragments hold, `[MT·16 rows][warps·KW·16 columns]` fp16 bits,
/// read back from a plan's weights (the inverse of the packing, for tests and the CPU twin).
pub fn unpack_cta(weights: &[u32], grid: usize, cta: usize, shape: DenseShape) -> Vec<u16> {
    let (mt_n, kw_n, warps) = (shape.m_tiles, shape.k_tiles_per_warp, shape.warps);
    let wk = shape.words_per_k_tile();
    let threads = shape.threads();
    let total = grid * threads;
    let cols = warps * kw_n * DENSE_TILE;
    let mut a = vec![0u16; mt_n * DENSE_TILE * cols];
    for warp in 0..warps {
        for lane in 0..32 {
            let (g, q) = (lane / 4, lane % 4);
            for kw in 0..kw_n {
                let k0 = (warp * kw_n + kw) * DENSE_TILE + 2 * q;
                for mt in 0..mt_n {
                    let r0 = mt * DENSE_TILE + g;
                    let places = [(r0, k0), (r0 + 8, k0), (r0, k0 + 8), (r0 + 8, k0 + 8)];
                    for (j, i) in fragment_words(shape, mt) {
                        let (r, k) = places[i];
                        let word = weights[(kw * wk + mt * 4 + j) * total + cta * threads + warp * 32 + lane];
                        a[r * cols + k] = word as u16;
                        a[r * cols + k + 1] = (word >> 16) as u16;
                    }
                }
            }
        }
    }
    a
}
