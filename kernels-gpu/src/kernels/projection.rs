//! The input projection `U = W_ih · x + b_ih` for all `T·B` input rows at once, written in the
//! layout the recurrent kernel reads (`[T][B][G·H]` f32), optionally time-reversed for the
//! reverse direction of a bidirectional layer. See `format::ProjectionParams` for the contract.
//!
//! # Dense kernel (tensor cores)
//!
//! A GEMM `U = X · W_ihᵀ` with `X` the `[T·B][I]` input rows. Each CTA computes one
//! `64 × 64` output tile (64 input rows × 64 gate rows) with four warps, each a `32 × 32`
//! sub-tile of `2 × 4` `mma.m16n8k16` accumulators (32 f32 registers). Phases, per stage of
//! `TILE_K = 32` input values:
//! 1. **Load**: the CTA's 64 × 32 slice of `X` (f32 from global memory, rounded to fp16) and of
//!    `W_ih` (fp16) into shared memory, in 16-byte pieces where the rows allow (`I` a multiple of
//!    4 for `X`, of 8 for `W_ih`) and value by value elsewhere, zeros past the edges of either
//!    matrix, so any shape works (nothing needs to be a multiple of 16);
//! 2. **Multiply**: two `k = 16` steps; each lane reads its A and B fragments with 32-bit
//!    shared loads (the padded row stride puts the 32 lanes in 32 banks) and issues 8 `mma`;
//!
//! and finally the **epilogue**: add `b_ih` (f32) and store every output inside the matrix to
//! its slot (`t·B + b`, or `(T-1-t)·B + b` when time-reversed).
//!
//! # Sparse kernel (CSR)
//!
//! One thread per output `(row t·B + b, gate row j)`, grid-stride: it walks row `j` of the CSR
//! `W_ih` and sums `value · x[t·B + b][col]` with f32 fused multiply-adds in column order, then
//! adds `b_ih`. Consecutive threads take consecutive `j` of one input row, so the stores are
//! coalesced and the `x` gathers stay within one row.

use crate::device::*;
use crate::format::{
    projection_flags, ProjectionParams, PROJECTION_SMEM_STRIDE, PROJECTION_THREADS, PROJECTION_TILE_COLS,
    PROJECTION_TILE_K, PROJECTION_TILE_ROWS,
};

const STRIDE: u32 = PROJECTION_SMEM_STRIDE as u32;
const TILE_K: u32 = PROJECTION_TILE_K as u32;

/// The output slot of input row `n = t·B + b`: `n`, or `(T-1-t)·B + b` when time-reversed.
#[inline(always)]
fn slot(p: &ProjectionParams, n: u32) -> u32 {
    if p.flags & projection_flags::REVERSE_TIME != 0 {
        let (t, b) = (n / p.batch, n % p.batch);
        (p.steps - 1 - t) * p.batch + b
    } else {
        n
    }
}

/// Dense input projection on tensor cores (see the module docs).
///
/// # Safety
/// `p` must satisfy `format::ProjectionParams` for the dense kernel: `x` `[T·B][I]` f32, `w`
/// `[G·H][I]` fp16 bits, `bias` `[G·H]` f32, `out` `[T·B][G·H]` f32 (addresses are computed in
/// 64 bits; `T·B` and the tile indices must fit in `u32`). The launch has `format::PROJECTION_THREADS` threads, `format::projection_grid` CTAs and
/// `format::projection_smem_bytes()` bytes of dynamic shared memory.
#[no_mangle]
pub unsafe extern "ptx-kernel" fn sprnn_projection_dense(p: ProjectionParams) {
    let tid = thread_idx_x();
    let (warp, lane) = (tid / 32, tid % 32);
    let (g, q) = (lane / 4, lane % 4);
    let rows = p.steps * p.batch;
    let (k_total, cols) = (p.input, p.outputs);
    let col_tiles = cols.div_ceil(PROJECTION_TILE_COLS as u32);
    let tile = block_idx_x();
    let row0 = (tile / col_tiles) * PROJECTION_TILE_ROWS as u32;
    let col0 = (tile % col_tiles) * PROJECTION_TILE_COLS as u32;
    // Shared tiles: x as [64][STRIDE] fp16, then W_ih as [64][STRIDE] fp16 (rows j, columns k).
    let xs = dyn_smem_base();
    let ws = xs + PROJECTION_TILE_ROWS as u32 * STRIDE * 2;
    let at = |base: u32, r: u32, c: u32| base + 2 * (r * STRIDE + c);
    // This warp's 32 × 32 sub-tile.
    let (wm, wn) = ((warp / 2) * 32, (warp % 2) * 32);
    let x = p.x as *const f32;
    let w = p.w as *const u16;
    // acc[mi][ni]: rows wm + 16·mi .., columns wn + 8·ni .. (32 registers).
    let mut acc = [[[0.0f32; 4]; 4]; 2];
    let mut k0 = 0;
    while k0 < k_total {
        // ---- Load: 16 values of each tile per thread as 16-byte pieces (4 f32 of x, 8 fp16
        // of W_ih), coalesced along k. A piece past an edge of its matrix, or whose rows are
        // not 16-byte aligned (I not a multiple of 4, resp. 8), is loaded value by value with
        // zeros outside the matrix.
        let (x_vec, w_vec) = (k_total % 4 == 0, k_total % 8 == 0);
        for i in 0..(PROJECTION_TILE_ROWS * PROJECTION_TILE_K / 4 / PROJECTION_THREADS) as u32 {
            let e = tid + PROJECTION_THREADS as u32 * i;
            let (r, c) = (e / (TILE_K / 4), 4 * (e % (TILE_K / 4)));
            let (n, k) = (row0 + r, k0 + c);
            let src = x.wrapping_add(n as usize * k_total as usize + k as usize);
            // SAFETY: the vector load is inside row n of x (k + 3 < I) and 16-byte aligned
            // (I and k multiples of 4, allocations 16-byte aligned); scalar reads are bounded;
            // the 8-byte shared store lies in the x tile (r < 64, c + 3 < 32), 8-byte aligned.
            unsafe {
                let v = if n < rows && k + 3 < k_total && x_vec {
                    let w = ld_nc_v4_u32(src as *const u32);
                    [f32::from_bits(w[0]), f32::from_bits(w[1]), f32::from_bits(w[2]), f32::from_bits(w[3])]
                } else {
                    let mut v = [0.0f32; 4];
                    for (t, vt) in v.iter_mut().enumerate() {
                        if n < rows && k + (t as u32) < k_total {
                            *vt = ld_nc_f32(src.add(t));
                        }
                    }
                    v
                };
                let h = [pack_f16x2(f32_to_f16(v[0]), f32_to_f16(v[1])), pack_f16x2(f32_to_f16(v[2]), f32_to_f16(v[3]))];
                st_shared_v2_u32(at(xs, r, c), h);
            }
        }
        for i in 0..(PROJECTION_TILE_COLS * PROJECTION_TILE_K / 8 / PROJECTION_THREADS) as u32 {
            let e = tid + PROJECTION_THREADS as u32 * i;
            let (r, c) = (e / (TILE_K / 8), 8 * (e % (TILE_K / 8)));
            let (j, k) = (col0 + r, k0 + c);
            let src = w.wrapping_add(j as usize * k_total as usize + k as usize);
            // SAFETY: as for x, with 8 fp16 per piece (I and k multiples of 8); the 16-byte
            // shared store lies in the W_ih tile (c + 7 < 32), 16-byte aligned (row stride 80).
            unsafe {
                let v = if j < cols && k + 7 < k_total && w_vec {
                    ld_nc_v4_u32(src as *const u32)
                } else {
                    let mut h = [0u16; 8];
                    for (t, ht) in h.iter_mut().enumerate() {
                        if j < cols && k + (t as u32) < k_total {
                            *ht = ld_nc_u16(src.add(t));
                        }
                    }
                    [pack_f16x2(h[0], h[1]), pack_f16x2(h[2], h[3]), pack_f16x2(h[4], h[5]), pack_f16x2(h[6], h[7])]
                };
                st_shared_v4_u32(at(ws, r, c), v);
            }
        }
        // SAFETY: every thread reaches this barrier (uniform loop bounds).
        unsafe { sync_threads() };
        // ---- Multiply: two k = 16 steps of 2 × 4 mma per warp.
        let mut kk = 0;
        while kk < TILE_K {
            let c = kk + 2 * q;
            let mut a = [[0u32; 4]; 2];
            for (mi, am) in a.iter_mut().enumerate() {
                let r = wm + 16 * mi as u32 + g;
                // SAFETY: r + 8 < 64 and c + 9 < 32: inside the x tile, 4-byte aligned (c even).
                *am = unsafe {
                    [
                        ld_shared_u32(at(xs, r, c)),
                        ld_shared_u32(at(xs, r + 8, c)),
                        ld_shared_u32(at(xs, r, c + 8)),
                        ld_shared_u32(at(xs, r + 8, c + 8)),
                    ]
                };
            }
            for ni in 0..4 {
                let j = wn + 8 * ni as u32 + g;
                // SAFETY: j < 64 and c + 9 < 32: inside the W_ih tile, 4-byte aligned.
                let b = unsafe { [ld_shared_u32(at(ws, j, c)), ld_shared_u32(at(ws, j, c + 8))] };
                for mi in 0..2 {
                    // SAFETY: the whole warp runs this (uniform control flow).
                    acc[mi][ni] = unsafe { mma_m16n8k16_f32_f16(a[mi], b, acc[mi][ni]) };
                }
            }
            kk += 16;
        }
        // SAFETY: uniform barrier: the next stage overwrites the tiles.
        unsafe { sync_threads() };
        k0 += TILE_K;
    }
    // ---- Epilogue: bias, bounds, time order.
    let out = p.out as *mut f32;
    let bias = p.bias as *const f32;
    for (mi, accm) in acc.iter().enumerate() {
        for (ni, accn) in accm.iter().enumerate() {
            for half in 0..2u32 {
                let n = row0 + wm + 16 * mi as u32 + g + 8 * half;
                if n >= rows {
                    continue;
                }
                let dst = slot(&p, n) as usize * cols as usize;
                for e in 0..2u32 {
                    let j = col0 + wn + 8 * ni as u32 + 2 * q + e;
                    if j < cols {
                        // SAFETY: n < T·B and j < G·H: inside `bias` and `out`.
                        unsafe {
                            let v = accn[(2 * half + e) as usize] + ld_nc_f32(bias.add(j as usize));
                            st_global_f32(out.add(dst + j as usize), v);
                        }
                    }
                }
            }
        }
    }
}

/// Sparse (CSR) input projection (see the module docs).
///
/// # Safety
/// `p` must satisfy `format::ProjectionParams` for the sparse kernel: `x` `[T·B][I]` f32,
/// `row_ptr` `[G·H + 1]` u32 (monotone, ending at nnz), `col_idx` `[nnz]` u32 (each `< I`), `w`
/// `[nnz]` f32, `bias` `[G·H]` f32, `out` `[T·B][G·H]` f32; any 1-D launch shape.
#[no_mangle]
pub unsafe extern "ptx-kernel" fn sprnn_projection_csr(p: ProjectionParams) {
    let rows = p.steps * p.batch;
    let cols = p.outputs as u64;
    let total = rows as u64 * cols;
    let stride = grid_dim_x() as u64 * block_dim_x() as u64;
    let mut idx = block_idx_x() as u64 * block_dim_x() as u64 + thread_idx_x() as u64;
    let (row_ptr, col_idx) = (p.row_ptr as *const u32, p.col_idx as *const u32);
    let (values, x, bias, out) = (p.w as *const f32, p.x as *const f32, p.bias as *const f32, p.out as *mut f32);
    while idx < total {
        let (n, j) = ((idx / cols) as u32, (idx % cols) as usize);
        let xrow = n as usize * p.input as usize;
        // SAFETY: j < G·H, so row_ptr[j + 1] exists; the entries of row j index `col_idx` and
        // `values`, and every column is < I, inside row n of x; the store is inside `out`.
        unsafe {
            let (a, b) = (ld_nc_u32(row_ptr.add(j)), ld_nc_u32(row_ptr.add(j + 1)));
            let mut s = 0.0f32;
            let mut e = a;
            while e < b {
                let col = ld_nc_u32(col_idx.add(e as usize)) as usize;
                s = fma(ld_nc_f32(values.add(e as usize)), ld_nc_f32(x.add(xrow + col)), s);
                e += 1;
            }
            let v = s + ld_nc_f32(bias.add(j));
            st_global_f32(out.add(slot(&p, n) as usize * cols as usize + j), v);
        }
        idx += stride;
    }
}
