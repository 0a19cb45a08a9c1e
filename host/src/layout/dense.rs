//! The dense tensor-core slab: when a layer is dense enough, each CTA holds its gate rows of
//! `W_hh` as dense fp16 `mma.m16n8k16` A fragments (pruned entries as zeros) instead of packed
//! nonzeros, and the kernel `sprnn_dense_mt{MT}_kw{KW}` multiplies with tensor cores.
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
//! `k = (kw·MT + mt)·4 + i` of the thread, stored at `weights[k · grid·threads + cta·threads +
//! tid]` as the sparse lists are (coalesced).
//!
//! # Cost
//!
//! Registers: `4·MT·KW` per thread for the fragments. The product of a step is `MT·KW` `mma`
//! per warp plus four 16-bit shared loads per k-tile; the warps' partial sums are added by the
//! cell's thread (`warps` loads per gate row). Each thread still gathers its share of the
//! exchange, so fewer warps mean more serial polls per thread.

use half::f16;
use sprnn_kernels::format::{DenseSmem, DENSE_MAX_BATCH, DENSE_SHAPES, DENSE_TILE, NO_UNIT};

use super::device::{registers_per_sm, DeviceInfo};
use crate::sparse::Csr;
use crate::Cell;

/// The launch shape of a dense slab: `m_tiles` (MT), `k_tiles_per_warp` (KW), `warps`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DenseShape {
    /// m-tiles of 16 gate rows per CTA (MT).
    pub m_tiles: usize,
    /// k-tiles of 16 columns per warp (KW).
    pub k_tiles_per_warp: usize,
    /// Warps per CTA.
    pub warps: usize,
}

impl DenseShape {
    /// Words (registers) of fragments per thread, `4·MT·KW`.
    pub fn words_per_thread(&self) -> usize {
        4 * self.m_tiles * self.k_tiles_per_warp
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
        .filter(|&&(mt, _)| mt == m_tiles)
        .filter_map(|&(mt, kw)| {
            let warps = k_tiles.div_ceil(kw).max(1);
            let shape = DenseShape { m_tiles: mt, k_tiles_per_warp: kw, warps };
            let regs = device.dense_registers(mt, kw)?;
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

/// Packs the A fragments of every CTA (see the module docs). `w_cols` is `W_hh` with the
/// kernel's columns ([`Plan::columns`](super::Plan::columns) of them), `units` the unit table.
pub(crate) fn pack(w_cols: &Csr, cell: Cell, units: &[u32], grid: usize, units_per_cta: usize, shape: DenseShape) -> Vec<u32> {
    let gates = cell.gates();
    let hidden = w_cols.rows() / gates;
    let (mt_n, kw_n, warps) = (shape.m_tiles, shape.k_tiles_per_warp, shape.warps);
    let threads = shape.threads();
    let total = grid * threads;
    let words = shape.words_per_thread();
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
                        for (i, f) in frag.into_iter().enumerate() {
                            let k = (kw * mt_n + mt) * 4 + i;
                            out[k * total + c * threads + tid] = f;
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
                    for (i, (r, k)) in places.into_iter().enumerate() {
                        let word = weights[((kw * mt_n + mt) * 4 + i) * total + cta * threads + warp * 32 + lane];
                        a[r * cols + k] = word as u16;
                        a[r * cols + k + 1] = (word >> 16) as u16;
                    }
                }
            }
        }
    }
    a
}
