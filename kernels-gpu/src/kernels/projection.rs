//! The input projection `U = W_ih · x + b_ih` for all `T·B` input rows at once, written in the
//! layout the recurrent kernel reads (`[T][B][G·H]` f32), optionally time-reversed for the
//! reverse direction of a bidirectional layer. See `format::ProjectionParams` for the contract.
//!
//! # Dense projection (tensor cores): two launches
//!
//! 1. **Round `x` to fp16** ([`sprnn_projection_x_to_f16`]): `x` (`[T·B][I]` f32) to `x16`
//!    (`[T·B][I8]` fp16, `I8` = `I` rounded up to 8, zeros past `I`), one 16-byte chunk of
//!    output per thread. Streaming `x` once is a small fraction of the GEMM's time, and it lets
//!    the GEMM's main loop copy both operands with `cp.async` straight into shared memory, at
//!    half the bytes an f32 operand would cost every CTA that reads it.
//!    For a bidirectional layer below whose joined output is not kept, the rounding reads the
//!    two directions' states directly instead ([`sprnn_projection_join_to_f16`]: the forward
//!    states, and the reverse ones at the mirrored step), writing the same `x16` rows: the join
//!    costs no launch and no `[T][B][2H]` round trip through memory.
//! 2. **GEMM** `U = x16 · W_ihᵀ` (`sprnn_projection_dense_n{C}_s{S}`): both operands are
//!    K-contiguous fp16 rows of `I8` values (the host pads `W_ih` with zeros on upload), so every
//!    16-byte chunk is aligned and lies wholly inside or wholly outside a row. Each CTA computes
//!    a `128 × C` output tile (128 input rows × `C` gate rows) with eight warps in a 2 × 4
//!    arrangement, each warp `64 × C/4` outputs as `4 × C/32` `mma.m16n8k16` accumulators
//!    (f32, in registers for the whole loop). Per k-tile of 64 values:
//!    - **Copy** (`S`-stage pipeline): the tiles of k-tile `kt + S - 1` are issued as 16-byte
//!      `cp.async.cg` copies into stage `(kt + S - 1) % S` and committed as one group; chunks
//!      past the matrices' edges (rows ≥ `T·B` or ≥ `G·H`, k ≥ `I8`) are zero-filled by the
//!      copy itself (source size 0). A tile row is 128 bytes, eight chunks; chunk `c` of row `r`
//!      is stored at chunk `c ^ (r % 8)` (an XOR swizzle), so the eight rows an `ldmatrix`
//!      phase reads, and the eight chunks a row's copies write, fall in distinct banks.
//!    - **Wait**: `cp.async.wait_group S-2` (k-tile `kt` has landed for this thread), then one
//!      barrier (for every thread, and no warp still reads the stage the next copy overwrites).
//!    - **Multiply**: four `k = 16` steps, each `ldmatrix.x4` for the warp's four A fragments
//!      and `C/64` (`.x4`, two n-tiles each; one `.x2` for an odd n-tile) for its B fragments,
//!      then `4 · C/32` `mma`.
//!
//!    **Epilogue**: add `b_ih` (f32) and store each lane's pairs of adjacent outputs (8-byte
//!    stores where `G·H` is even) to their slot (`t·B + b`, or `(T-1-t)·B + b` when
//!    time-reversed), skipping rows and columns outside the matrix.
//!
//! The host picks the variant (`C`, `S`) for the problem: see `sprnn::projection`.
//!
//! # Sparse kernel (CSR)
//!
//! One thread per output `(row t·B + b, gate row j)`, grid-stride: it walks row `j` of the CSR
//! `W_ih` and sums `value · x[t·B + b][col]` with f32 fused multiply-adds in column order, then
//! adds `b_ih`. Consecutive threads take consecutive `j` of one input row, so the stores are
//! coalesced and the `x` gathers stay within one row.

use crate::device::*;
use crate::format::{
    projection_dense_kernel_name, projection_flags, projection_padded_input, str_eq, ProjectionParams, PROJECTION_THREADS,
    PROJECTION_TILE_K, PROJECTION_TILE_ROWS, PROJECTION_WARPS,
};

/// Input rows per CTA tile.
const BM: u32 = PROJECTION_TILE_ROWS as u32;
/// Bytes of one tile row in shared memory: `TILE_K` fp16.
const ROW_BYTES: u32 = 2 * PROJECTION_TILE_K as u32;
/// 16-byte chunks per tile row.
const CHUNKS: u32 = ROW_BYTES / 16;
/// Tile rows the CTA's threads copy in one pass, one chunk each.
const ROWS_PER_PASS: u32 = PROJECTION_THREADS as u32 / CHUNKS;
/// Copy passes over the `x` tile per k-tile.
const A_PASSES: usize = (BM / ROWS_PER_PASS) as usize;
/// `k = 16` steps per k-tile.
const K_STEPS: u32 = PROJECTION_TILE_K as u32 / 16;
/// `m = 16` fragments per warp (64 rows).
const M_FRAGS: usize = 4;
const _: () = assert!(CHUNKS == 8 && M_FRAGS * 16 * PROJECTION_WARPS.0 == PROJECTION_TILE_ROWS);

/// Shared-memory offset, inside a tile, of 16-byte chunk `c` of tile row `r`: the row's chunk
/// `c ^ (r % 8)` (the XOR swizzle of the module docs).
#[inline(always)]
const fn swizzle(r: u32, c: u32) -> u32 {
    r * ROW_BYTES + ((c ^ (r % 8)) << 4)
}

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

/// Rounds the input rows to fp16 for the dense projection (see the module docs): `x16[n][k] =
/// fp16(x[n][k])` for `k < I`, 0 for `I ≤ k < I8`. Grid-stride over 16-byte output chunks;
/// 32-byte loads where `I` is a multiple of 4 (16-byte-aligned rows), value by value elsewhere.
///
/// # Safety
/// `p.x` holds `[T·B][I]` f32 and `p.x16` `[T·B][I8]` fp16 (16-byte aligned), not overlapping;
/// any 1-D launch shape.
#[no_mangle]
pub unsafe extern "ptx-kernel" fn sprnn_projection_x_to_f16(p: ProjectionParams) {
    let rows = p.steps as u64 * p.batch as u64;
    let input = p.input as u64;
    let row_chunks = projection_padded_input(p.input as usize) as u64 / 8;
    let total = rows * row_chunks;
    let stride = grid_dim_x() as u64 * block_dim_x() as u64;
    let mut e = block_idx_x() as u64 * block_dim_x() as u64 + thread_idx_x() as u64;
    let (x, x16) = (p.x as *const f32, p.x16 as *mut u32);
    let aligned = input % 4 == 0;
    while e < total {
        let (n, c) = (e / row_chunks, e % row_chunks);
        let k = 8 * c;
        let src = x.wrapping_add((n * input + k) as usize);
        let mut v = [0.0f32; 8];
        // SAFETY: the vector loads read x[n][k..k + 8] (k + 8 ≤ I), 16-byte aligned (I and k
        // multiples of 4); the scalar loads stay below I; the store is chunk c of row n of x16
        // (16-byte aligned: I8 and k multiples of 8).
        unsafe {
            if aligned && k + 8 <= input {
                let (lo, hi) = (ld_nc_v4_u32(src as *const u32), ld_nc_v4_u32(src.add(4) as *const u32));
                for i in 0..4 {
                    v[i] = f32::from_bits(lo[i]);
                    v[i + 4] = f32::from_bits(hi[i]);
                }
            } else {
                for (i, vi) in v.iter_mut().enumerate() {
                    if k + (i as u64) < input {
                        *vi = ld_nc_f32(src.add(i));
                    }
                }
            }
            let h = [f32x2_to_f16x2(v[0], v[1]), f32x2_to_f16x2(v[2], v[3]), f32x2_to_f16x2(v[4], v[5]), f32x2_to_f16x2(v[6], v[7])];
            st_global_v4_u32(x16.add((n * row_chunks + c) as usize * 4), h);
        }
        e += stride;
    }
}

/// Values `k..k + 4` (`k` a multiple of 4) of one joined input row, whose columns `..split` are
/// `f_row[..]` and columns `split..input` are `r_row[..]`; 0 past `input`. One 16-byte load where
/// `aligned` (both widths multiples of 4: the four values then lie in one part, 16-byte aligned),
/// value by value elsewhere.
///
/// # Safety
/// `f_row` points to `split` readable f32 and `r_row` to `input - split`, 16-byte aligned where
/// `aligned`.
#[inline(always)]
unsafe fn joined_quad(f_row: *const f32, r_row: *const f32, k: u64, split: u64, input: u64, aligned: bool) -> [f32; 4] {
    let mut v = [0.0f32; 4];
    // SAFETY: with `aligned`, k and split are multiples of 4, so k + 4 ≤ split (forward part) or
    // split ≤ k with k + 4 ≤ input (reverse part): four values inside the part, 16-byte aligned.
    // The scalar loads read column k + i of the forward part when below split, of the reverse
    // part when below input, nothing past input.
    unsafe {
        if aligned && k + 4 <= input {
            let src = if k < split { f_row.add(k as usize) } else { r_row.add((k - split) as usize) };
            let w = ld_nc_v4_u32(src as *const u32);
            v = [f32::from_bits(w[0]), f32::from_bits(w[1]), f32::from_bits(w[2]), f32::from_bits(w[3])];
        } else {
            for (i, vi) in v.iter_mut().enumerate() {
                let kk = k + i as u64;
                if kk < split {
                    *vi = ld_nc_f32(f_row.add(kk as usize));
                } else if kk < input {
                    *vi = ld_nc_f32(r_row.add((kk - split) as usize));
                }
            }
        }
    }
    v
}

/// Rounds the joined input rows of a bidirectional layer's two directions to fp16 for the
/// dense projection (see `format::ProjectionParams`, joined input): `x16[t·B + b][k]` is
/// `fp16(x[t][b][k])` for `k < split`, `fp16(x_reverse[T-1-t][b][k - split])` for
/// `split ≤ k < I` and 0 for `I ≤ k < I8` — exactly the rows [`sprnn_projection_x_to_f16`]
/// writes from the directions' joined copy. Grid-stride over 16-byte output chunks, each as two
/// groups of four values; a group is one 16-byte load where both directions' widths are
/// multiples of 4 (every group then lies in one direction, 16-byte aligned), value by value
/// elsewhere.
///
/// # Safety
/// `p.x` holds `[T·B][split]` f32, `p.x_reverse` `[T·B][I - split]` f32 and `p.x16` `[T·B][I8]`
/// fp16 (16-byte aligned), `x16` overlapping neither; `0 < split < I`; any 1-D launch shape.
#[no_mangle]
pub unsafe extern "ptx-kernel" fn sprnn_projection_join_to_f16(p: ProjectionParams) {
    let (steps, batch) = (p.steps as u64, p.batch as u64);
    let rows = steps * batch;
    let (input, split) = (p.input as u64, p.split as u64);
    let rest = input - split;
    let row_chunks = projection_padded_input(p.input as usize) as u64 / 8;
    let total = rows * row_chunks;
    let stride = grid_dim_x() as u64 * block_dim_x() as u64;
    let mut e = block_idx_x() as u64 * block_dim_x() as u64 + thread_idx_x() as u64;
    let (fwd, rev, x16) = (p.x as *const f32, p.x_reverse as *const f32, p.x16 as *mut u32);
    let aligned = split % 4 == 0 && rest % 4 == 0;
    while e < total {
        let (n, c) = (e / row_chunks, e % row_chunks);
        let (t, b) = (n / batch, n % batch);
        // Row n of the joined input: its forward part, and its reverse part (step T-1-t).
        let f_row = fwd.wrapping_add((n * split) as usize);
        let r_row = rev.wrapping_add((((steps - 1 - t) * batch + b) * rest) as usize);
        let k = 8 * c;
        // SAFETY: f_row is row n of x (`split` values) and r_row row (T-1-t)·B + b of x_reverse
        // (`I - split` values), n < T·B; with `aligned` both widths are multiples of 4, so both
        // rows start 16-byte aligned.
        let (lo, hi) = unsafe { (joined_quad(f_row, r_row, k, split, input, aligned), joined_quad(f_row, r_row, k + 4, split, input, aligned)) };
        let h = [f32x2_to_f16x2(lo[0], lo[1]), f32x2_to_f16x2(lo[2], lo[3]), f32x2_to_f16x2(hi[0], hi[1]), f32x2_to_f16x2(hi[2], hi[3])];
        // SAFETY: chunk c of row n of x16 (16-byte aligned: I8 and 8·c multiples of 8).
        unsafe { st_global_v4_u32(x16.add((n * row_chunks + c) as usize * 4), h) };
        e += stride;
    }
}

/// `cp.async.wait_group S - 2`: the oldest of the `S - 1` k-tiles in flight has landed.
#[inline(always)]
fn wait_oldest_stage<const S: usize>() {
    match S {
        2 => cp_async_wait_group::<0>(),
        3 => cp_async_wait_group::<1>(),
        4 => cp_async_wait_group::<2>(),
        _ => cp_async_wait_group::<3>(),
    }
}

/// The dense projection GEMM with `NT` n-tiles of 8 columns per warp (`32 · NT` columns per
/// CTA) and `S` pipeline stages (see the module docs).
///
/// # Safety
/// `p` satisfies `format::ProjectionParams` for the dense projection: `x16` `[T·B][I8]` and `w`
/// `[G·H][I8]` fp16 (16-byte aligned, zeros past `I`), `bias` `[G·H]` f32, `out` `[T·B][G·H]`
/// f32; `T·B`, `G·H` and `I8` below 2³¹. The launch has `format::PROJECTION_THREADS` threads,
/// `format::projection_grid(T·B, G·H, 32·NT)` CTAs and `format::projection_smem_bytes(32·NT, S)`
/// bytes of dynamic shared memory.
#[inline(always)]
unsafe fn dense_gemm<const NT: usize, const S: usize>(p: &ProjectionParams) {
    let tile_cols = 32 * NT as u32;
    let tid = thread_idx_x();
    let (warp, lane) = (tid / 32, tid % 32);
    let rows = p.steps * p.batch;
    let cols = p.outputs;
    let kp = projection_padded_input(p.input as usize) as u32;
    let row_tiles = rows.div_ceil(BM);
    let (row0, col0) = ((block_idx_x() % row_tiles) * BM, (block_idx_x() / row_tiles) * tile_cols);
    let a_bytes = BM * ROW_BYTES;
    let stage_bytes = (BM + tile_cols) * ROW_BYTES;
    let smem = dyn_smem_base();

    // ---- Copy assignment: chunk `cc` of rows `cr + 32·i` of both tiles.
    let (cr, cc) = (tid / CHUNKS, tid % CHUNKS);
    let dst = swizzle(cr, cc);
    let row_bytes = 2 * kp as usize;
    let (x16, w) = (p.x16 as *const u8, p.w as *const u8);
    let a_src = x16.wrapping_add((row0 + cr) as usize * row_bytes + 16 * cc as usize);
    let b_src = w.wrapping_add((col0 + cr) as usize * row_bytes + 16 * cc as usize);
    let pass = ROWS_PER_PASS as usize * row_bytes;
    // Bit i: row cr + 32·i is inside the matrix.
    let (mut a_in, mut b_in) = (0u32, 0u32);
    for i in 0..A_PASSES as u32 {
        a_in |= ((row0 + cr + ROWS_PER_PASS * i < rows) as u32) << i;
    }
    for i in 0..NT as u32 {
        b_in |= ((col0 + cr + ROWS_PER_PASS * i < cols) as u32) << i;
    }
    let k_tiles = kp.div_ceil(PROJECTION_TILE_K as u32);
    // Issues the copies of k-tile `kt` into stage `stage` (not committed).
    let copy = |kt: u32, stage: u32| {
        let in_k = kt * PROJECTION_TILE_K as u32 + 8 * cc < kp;
        let k_off = kt as usize * ROW_BYTES as usize;
        let base = smem + stage * stage_bytes + dst;
        for i in 0..A_PASSES {
            let ok = in_k && a_in & (1 << i) != 0;
            let src = if ok { a_src.wrapping_add(k_off + i * pass) } else { x16 };
            // SAFETY: the destination is chunk cc of row cr + 32·i of the stage's x tile; a
            // source inside the matrix is a whole aligned chunk of x16 (I8 multiple of 8);
            // outside, nothing is read (size 0) from the valid base address.
            unsafe { cp_async_cg_16(base + ROWS_PER_PASS * ROW_BYTES * i as u32, src, 16 * ok as u32) };
        }
        for i in 0..NT {
            let ok = in_k && b_in & (1 << i) != 0;
            let src = if ok { b_src.wrapping_add(k_off + i * pass) } else { w };
            // SAFETY: as for x, in the stage's W_ih tile (32·NT rows).
            unsafe { cp_async_cg_16(base + a_bytes + ROWS_PER_PASS * ROW_BYTES * i as u32, src, 16 * ok as u32) };
        }
    };

    // ---- Prologue: k-tiles 0 .. S-2 in flight, one group each (empty past the end).
    for s in 0..S as u32 - 1 {
        if s < k_tiles {
            copy(s, s);
        }
        cp_async_commit_group();
    }

    // ---- Fragment addresses (ldmatrix): this warp's 64 rows of the x tile and 8·NT rows of
    // the W_ih tile. Every fragment row is ≡ lane (mod 8), so the swizzle's XOR is this lane's
    // constant, further XORed with the k step's chunk pair (kk << 5).
    let (wm, wn) = ((warp / PROJECTION_WARPS.1 as u32) * 64, (warp % PROJECTION_WARPS.1 as u32) * 8 * NT as u32);
    let a_frag = (wm + lane % 16) * ROW_BYTES;
    let a_xor = ((lane / 16) ^ (lane % 8)) << 4;
    let b_frag = a_bytes + (wn + lane % 8 + (lane / 16) * 8) * ROW_BYTES;
    let b_odd = a_bytes + (wn + lane % 8) * ROW_BYTES;
    let b_xor = (((lane / 8) % 2) ^ (lane % 8)) << 4;

    // acc[mi][ni]: rows wm + 16·mi .., columns wn + 8·ni .. of the tile (16 · NT registers).
    let mut acc = [[[0.0f32; 4]; NT]; M_FRAGS];
    let mut kt = 0;
    while kt < k_tiles {
        wait_oldest_stage::<S>();
        // SAFETY: every thread runs every iteration (uniform bounds).
        unsafe { sync_threads() };
        // Refill the stage the previous iteration read (every warp has passed the barrier).
        let next = kt + S as u32 - 1;
        if next < k_tiles {
            copy(next, next % S as u32);
        }
        cp_async_commit_group();
        let stage = smem + (kt % S as u32) * stage_bytes;
        for kk in 0..K_STEPS {
            let mut a = [[0u32; 4]; M_FRAGS];
            for (mi, am) in a.iter_mut().enumerate() {
                // SAFETY: rows wm + 16·mi + (lane % 16) < 128 of the x tile, chunk 2·kk +
                // lane / 16 (swizzled): whole aligned chunks; a converged warp.
                *am = unsafe { ldmatrix_x4(stage + a_frag + 16 * ROW_BYTES * mi as u32 + (a_xor ^ (kk << 5))) };
            }
            let mut b = [[0u32; 2]; NT];
            for pair in 0..NT / 2 {
                // SAFETY: rows wn + 16·pair + (lane % 8) + 8·(lane / 16) < 32·NT of the W_ih
                // tile, chunk 2·kk + (lane / 8) % 2; a converged warp.
                let r = unsafe { ldmatrix_x4(stage + b_frag + 16 * ROW_BYTES * pair as u32 + (b_xor ^ (kk << 5))) };
                b[2 * pair] = [r[0], r[1]];
                b[2 * pair + 1] = [r[2], r[3]];
            }
            if NT % 2 == 1 {
                // SAFETY: rows wn + 8·(NT-1) + lane % 8 of the W_ih tile; a converged warp.
                b[NT - 1] = unsafe { ldmatrix_x2(stage + b_odd + 16 * ROW_BYTES * (NT / 2) as u32 + (b_xor ^ (kk << 5))) };
            }
            for (am, accm) in a.iter().zip(acc.iter_mut()) {
                for (bn, accn) in b.iter().zip(accm.iter_mut()) {
                    // SAFETY: the whole warp runs this (uniform control flow).
                    *accn = unsafe { mma_m16n8k16_f32_f16(*am, *bn, *accn) };
                }
            }
        }
        kt += 1;
    }
    // No copy is pending past the last k-tile (the groups after it are empty), and the shared
    // memory is not reused: no final wait or barrier is needed.

    // ---- Epilogue: bias, bounds, time order.
    let (g, q) = (lane / 4, lane % 4);
    let out = p.out as *mut f32;
    let bias = p.bias as *const f32;
    let mut bias_pairs = [[0.0f32; 2]; NT];
    for (ni, bp) in bias_pairs.iter_mut().enumerate() {
        let j = col0 + wn + 8 * ni as u32 + 2 * q;
        for (e, be) in bp.iter_mut().enumerate() {
            if j + (e as u32) < cols {
                // SAFETY: j + e < G·H.
                *be = unsafe { ld_nc_f32(bias.add((j + e as u32) as usize)) };
            }
        }
    }
    let pairs = cols % 2 == 0;
    for (mi, accm) in acc.iter().enumerate() {
        for half in 0..2u32 {
            let n = row0 + wm + 16 * mi as u32 + g + 8 * half;
            if n >= rows {
                continue;
            }
            let row_out = out.wrapping_add(slot(p, n) as usize * cols as usize);
            for (ni, accn) in accm.iter().enumerate() {
                let j = col0 + wn + 8 * ni as u32 + 2 * q;
                let v = [accn[2 * half as usize] + bias_pairs[ni][0], accn[2 * half as usize + 1] + bias_pairs[ni][1]];
                let dst = row_out.wrapping_add(j as usize);
                // SAFETY: n < T·B and j (+ 1) < G·H: inside `out`; the pair is 8-byte aligned
                // when G·H and j are even.
                unsafe {
                    if pairs && j + 1 < cols {
                        st_global_v2_f32(dst, v);
                    } else {
                        if j < cols {
                            st_global_f32(dst, v[0]);
                        }
                        if j + 1 < cols {
                            st_global_f32(dst.add(1), v[1]);
                        }
                    }
                }
            }
        }
    }
}

macro_rules! projection_entries {
    ($($name:ident = ($cols:literal, $stages:literal);)*) => {
        $(
            /// Dense projection GEMM entry point (columns per CTA and pipeline stages in the
            /// name; see the module docs).
            ///
            /// # Safety
            /// See `dense_gemm`: the dense projection's `format::ProjectionParams` contract and
            /// this variant's launch shape.
            #[no_mangle]
            pub unsafe extern "ptx-kernel" fn $name(p: ProjectionParams) {
                const _: () = assert!(str_eq(projection_dense_kernel_name($cols, $stages), stringify!($name)));
                // SAFETY: forwarded contract.
                unsafe { dense_gemm::<{ $cols / 32 }, $stages>(&p) }
            }
        )*
    };
}

projection_entries! {
    sprnn_projection_dense_n256_s4 = (256, 4);
    sprnn_projection_dense_n160_s4 = (160, 4);
    sprnn_projection_dense_n128_s4 = (128, 4);
    sprnn_projection_dense_n128_s2 = (128, 2);
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
