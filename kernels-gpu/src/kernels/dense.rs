//! The dense tensor-core slab: the persistent recurrent kernel with the CTA's rows of `W_hh` held
//! as dense fp16 `mma.m16n8k16` A fragments in registers (pruned entries as zeros) instead of
//! packed nonzeros. Where a layer is dense enough, `mma` does the product with a small fraction of
//! the instructions of the sparse loop, so the step is the exchange plus little else.
//!
//! Same contract, exchange and cell as [`super::recurrent`]; phases:
//! 1. **Load fragments**: warp `w` owns k-tiles `w·KW .. (w+1)·KW` (16 hidden columns each) of
//!    all `MT` m-tiles (16 gate rows each): `W = format::dense_words_per_k_tile(MT, HALF)`
//!    registers per k-tile and thread (four per m-tile; two for a half last m-tile, whose rows
//!    8..16 are zeros), held for the whole sequence (`format::DenseSmem` and the host's
//!    `layout::dense` define the order).
//! 2. **Warm start**: the hidden state `h[column][b]` fp16 (zeros past the layer's columns),
//!    staged outputs, LSTM `c0`.
//! 3. Step loop:
//!    - inputs `U_t` of this thread's cell before the wait;
//!    - **gather** `h_{t-1}` exactly as the sparse kernel does (one 16-byte store per chunk, no
//!      work between a thread's serial polls); barrier. The RNN-only half variants gather per
//!      warp instead: a warp's `mma` reads only its own k-tiles' columns, so each warp polls just
//!      those chunks (lane-strided, the same wait and store) and, after a warp barrier,
//!      multiplies at once; no CTA barrier between the exchange and the product, and a warp whose
//!      columns came early works while the others still wait;
//!    - **mma**: per k-tile four 16-bit shared loads give the B fragment, then one `mma` per
//!      m-tile into `MT` accumulator fragments; the fragments go to the warp's partial sums;
//!      barrier (in the half variants it also ends the kernel after a failed wait). A half last
//!      m-tile is multiplied transposed (its 8 rows as the `mma`'s N, the batch as its M): its
//!      two held words per k-tile are then a whole B fragment, and the lane's h pairs with two
//!      zero registers the A fragment, so no register holds a zero weight (held as an A
//!      fragment, the 8 missing rows would take two zero registers per k-tile, 16 at `KW` = 8);
//!    - **cell**: one thread per (unit, batch) pair adds the warps' partial sums of its gate rows
//!      (warp order), then `b_hh`, `U_t`, the cell and the tagged rounding; barrier; publish.
//!      The RNN-only half variants run this for their one gate row inline, with the pair's
//!      output index and partial-sum address in two registers.
//!
//! The phase-clock probe (`CLOCKS`, entry point `format::dense_clocks_kernel_name`; only
//! `mt2h_kw8` has one) is the same kernel with lane 0 of every warp of CTA 0 writing the low
//! word of `%clock64` at each of the step's `format::PHASE_CLOCK_POINTS` phase boundaries into
//! `c_out` (`[T - t][warp][point]`, the last steps first, as many as `c_out`'s `B·H` words
//! hold). It shows where one CTA's step goes, warp by warp; every thread reads the clock and the
//! recording lanes store (a few instructions per phase). At the kernel's 96 registers it may
//! spill a few words, reloaded right after its own clock reads (`cargo xtask build-ptx` allows
//! local memory for the probe alone).

use crate::device::*;
use crate::format::{dense_words_per_k_tile, flags, phase, status, tag_bit, tag_round, RecurrentParams, DENSE_MAX_BATCH, DENSE_TILE, NO_UNIT, PHASE_CLOCK_POINTS};

use super::cell;
use super::recurrent::{cell_phase, gather_or_report, gather_warp_or_report, load_bias, load_inputs, load_u, publish, report, warm_start, Layer};

/// The phase-clock probe's record: lane 0 of each warp of CTA 0 stores the low word of
/// `%clock64` as point `point` of step `t` (`c_out[((T - t)·warps + warp)·POINTS + point]`,
/// dropped past `c_out`'s `B·H` words). Nothing at all unless `CLOCKS`.
///
/// # Safety
/// `c_out` must hold `B·H` words.
#[inline(always)]
unsafe fn phase_clock<const CLOCKS: bool>(p: &RecurrentParams, l: &Layer, t: u32, point: u32) {
    if CLOCKS {
        // Every thread reads the clock and only the recording lanes store, with no branch: a
        // branch here lets the compiler copy the barrier that follows into both of its sides.
        // The thread index is read again here, so that the probe holds no register of its own
        // for the whole sequence.
        let tid = thread_idx_x();
        let idx = ((l.steps - t) * (l.nt / 32) + tid / 32) * PHASE_CLOCK_POINTS + point;
        let record = block_idx_x() == 0 && tid % 32 == 0 && idx < l.hidden * l.batch;
        // SAFETY: the store happens only for idx < B·H, inside c_out.
        unsafe { st_global_u32_if((p.c_out as *mut u32).wrapping_add(idx as usize), clock64() as u32, record) };
    }
}

/// The dense kernel body for `MT` m-tiles per CTA (the last one half when `HALF`), `KW` k-tiles
/// per warp and `W` = `format::dense_words_per_k_tile(MT, HALF)` fragment registers per k-tile;
/// `CLOCKS` adds the phase-clock probe's records ([`phase_clock`]).
///
/// # Safety
/// `p` must satisfy the contract in `format::RecurrentParams`, with `weights` holding the A
/// fragments (`W · KW` words per thread, `[k][grid · threads]`), every CTA of the grid
/// co-resident and dynamic shared memory of `format::DenseSmem::total`.
#[inline(always)]
pub unsafe fn dense<const MT: usize, const KW: usize, const W: usize, const HALF: bool, const CLOCKS: bool>(p: &RecurrentParams) {
    const { assert!(W == dense_words_per_k_tile(MT, HALF)) };
    const { assert!(!CLOCKS || HALF) };
    let tid = thread_idx_x();
    let (warp, lane) = (tid / 32, tid % 32);
    let Some((l, cols_pad)) = Layer::dense::<MT, KW, HALF>(p) else {
        if tid == 0 {
            // SAFETY: status is valid.
            unsafe { report(p, status::BAD_PARAMS) };
        }
        return;
    };
    let units = p.units as *const u32;
    let unit_base = block_idx_x() * l.upc;
    let cells = l.upc * l.batch;
    let exchange_only = p.flags & flags::EXCHANGE_ONLY != 0;

    // ---- Phase 1: A fragments (W · KW registers per thread, whole sequence).
    let total = (grid_dim_x() * l.nt) as usize;
    let me = (block_idx_x() * l.nt + tid) as usize;
    let mut a = [[0u32; W]; KW];
    for (kw, words) in a.iter_mut().enumerate() {
        for (i, r) in words.iter_mut().enumerate() {
            // SAFETY: the weight buffer holds W · KW words per thread.
            *r = unsafe { ld_nc_u32((p.weights as *const u32).add((kw * W + i) * total + me)) };
        }
    }
    // The cell phase: thread `tid`'s own (unit, batch) pair, its unit and b_hh (all gates; the
    // RNN-only half variants use the first).
    let cell_unit = if tid < cells {
        // SAFETY: the unit table holds grid * upc entries.
        unsafe { ld_nc_u32(units.add((unit_base + tid / l.batch) as usize)) }
    } else {
        NO_UNIT
    };
    let cell_bias = match (cell_unit != NO_UNIT, HALF) {
        // SAFETY: cell_unit < H; b_hh holds G·H values (G = 1 for the half variants).
        (true, true) => [unsafe { ld_nc_f32((p.bias_hh as *const f32).add(cell_unit as usize)) }, 0.0, 0.0, 0.0],
        // SAFETY: as above.
        (true, false) => unsafe { load_bias(p, &l, cell_unit) },
        (false, _) => [0.0; 4],
    };
    // The RNN-only variants' cell thread (local unit tid / B, batch entry tid % B), in two
    // registers: the index of its output in a step's `[B][H]` block (`u32::MAX`: no unit), and
    // the shared address of its row's partial sum in warp 0's block.
    let part_of = |lu: u32, b: u32| l.acc_smem + 4 * (lu * DENSE_MAX_BATCH as u32 + b);
    let (cell_b, cell_lu) = (tid % l.batch, tid / l.batch);
    let cell_out = if cell_unit != NO_UNIT { cell_b * l.hidden + cell_unit } else { u32::MAX };
    let cell_part = part_of(cell_lu, cell_b);

    // ---- Phase 2: warm start (the k-tiles' padding columns past the layer's are zeros).
    // SAFETY: kernel contract; the hidden state holds `cols_pad` columns.
    unsafe { warm_start::<false>(p, &l, cols_pad * l.batch) };

    // Shared addresses of this lane's B-fragment values (column 2q of k-tile 0 of its warp, batch
    // entry g — a batch column past B reads entry B - 1, whose products land in columns of the
    // result nobody reads) and of its partial sums (row g of m-tile 0, batch columns 2q, 2q + 1).
    let (g, q4) = (lane / 4, lane % 4);
    let gb = if g < l.batch { g } else { l.batch - 1 };
    let col_bytes = 2 * l.batch;
    let b_base = l.h_smem + 2 * gb + col_bytes * (warp * (KW * DENSE_TILE) as u32 + 2 * q4);
    let part_rows = (MT * DENSE_TILE) as u32;
    let part_base = l.acc_smem + 4 * ((warp * part_rows + g) * DENSE_MAX_BATCH as u32 + 2 * q4);
    let warps = l.nt / 32;
    // This warp's share of the hidden state: the values of its k-tiles' columns.
    let span = (KW * DENSE_TILE) as u32 * l.batch;
    let span_start = warp * span;

    // ---- Phase 3: step loop.
    for t in 1..=l.steps {
        // SAFETY (every `phase_clock`): c_out holds B·H words.
        unsafe { phase_clock::<CLOCKS>(p, &l, t, phase::TOP) };
        let cell_input = if !exchange_only && cell_unit != NO_UNIT {
            if HALF {
                // SAFETY: U holds T·B·H values (G = 1); cell_out < B·H.
                [unsafe { load_u(p, l.u_f16, ((t - 1) * l.batch * l.hidden + cell_out) as usize) }, 0.0, 0.0, 0.0]
            } else {
                // SAFETY: cell_unit < H, tid % B < B.
                unsafe { load_inputs(p, &l, t, cell_unit, tid % l.batch) }
            }
        } else {
            [0.0; 4]
        };

        let failed = if HALF {
            // Gather this warp's columns of h_{t-1} (the only ones its `mma` reads); no CTA
            // barrier: each warp multiplies as soon as its own columns have arrived.
            // SAFETY: kernel contract; the span starts at a multiple of 16 values.
            let failed = t >= 2 && unsafe { gather_warp_or_report(p, &l, t - 1, span_start, span_start + span) };
            // SAFETY: every lane of the warp reaches this once per step.
            unsafe { sync_warp() };
            unsafe { phase_clock::<CLOCKS>(p, &l, t, phase::GATHERED) };
            failed
        } else {
            // Gather h_{t-1} from every CTA (as the sparse kernel does), then a barrier.
            // SAFETY: kernel contract.
            let failed = t >= 2 && unsafe { gather_or_report::<false>(p, &l, t - 1) };
            // SAFETY: every thread reaches this barrier once per step.
            if unsafe { sync_threads_or(failed) } {
                return;
            }
            false
        };

        if !exchange_only {
            // mma over this warp's k-tiles, then its partial sums to shared memory.
            let mut c = [[0.0f32; 4]; MT];
            // Opaque per step, so the KW · 4 load addresses are not hoisted out of the step
            // loop (that would hold them in registers for the whole sequence).
            let (base, col_bytes) = (opaque_u32(b_base), opaque_u32(col_bytes));
            for (kw, words) in a.iter().enumerate() {
                let addr = base + col_bytes * (kw * DENSE_TILE) as u32;
                // SAFETY: inside h (warps · KW · 16 columns of B values); a converged warp.
                unsafe {
                    let pair = |a: u32| ld_shared_u16(a) as u32 | (ld_shared_u16(a + col_bytes) as u32) << 16;
                    let b = [pair(addr), pair(addr + 8 * col_bytes)];
                    for (mt, cm) in c.iter_mut().enumerate() {
                        *cm = if HALF && mt == MT - 1 {
                            // The half m-tile transposed: its 8 rows are the product's N and the
                            // batch its M (`D[b][row] = h_bᵀ · W_rowᵀ`), so the two held words
                            // are a B fragment (`W[row g][2q..]`, `W[row g][2q + 8..]` are
                            // `Wᵀ[2q..][g]`, `Wᵀ[2q + 8..][g]`) and the lane's h pairs, with
                            // zeros for batch rows 8..16, the A fragment.
                            mma_m16n8k16_f32_f16([b[0], 0, b[1], 0], [words[4 * mt], words[4 * mt + 1]], *cm)
                        } else {
                            mma_m16n8k16_f32_f16([words[4 * mt], words[4 * mt + 1], words[4 * mt + 2], words[4 * mt + 3]], b, *cm)
                        };
                    }
                }
            }
            for (mt, cm) in c.iter().enumerate() {
                let row = part_base + 4 * ((mt * DENSE_TILE) as u32 * DENSE_MAX_BATCH as u32);
                // SAFETY: rows g and g + 8 of m-tile mt, columns 2q and 2q + 1 of this warp's
                // partial sums; for the transposed half m-tile, rows 2q and 2q + 1 of it, column
                // g (< 8; its D rows 8..16 are zeros nobody reads).
                unsafe {
                    if HALF && mt == MT - 1 {
                        let half_row = l.acc_smem + 4 * (((warp * part_rows) + (mt * DENSE_TILE) as u32 + 2 * q4) * DENSE_MAX_BATCH as u32 + g);
                        st_shared_f32(half_row, cm[0]);
                        st_shared_f32(half_row + 4 * DENSE_MAX_BATCH as u32, cm[1]);
                    } else {
                        st_shared_v2_u32(row, [cm[0].to_bits(), cm[1].to_bits()]);
                        st_shared_v2_u32(row + 4 * 8 * DENSE_MAX_BATCH as u32, [cm[2].to_bits(), cm[3].to_bits()]);
                    }
                }
            }
        }
        unsafe { phase_clock::<CLOCKS>(p, &l, t, phase::MULTIPLIED) };
        // The half variants: every warp's partial sums are complete; a failed wait ends the
        // kernel here.
        // SAFETY: every thread reaches this barrier once per step (`HALF` is uniform).
        if HALF && unsafe { sync_threads_or(failed) } {
            return;
        }
        unsafe { phase_clock::<CLOCKS>(p, &l, t, phase::SUMS_READY) };
        if !exchange_only {
            if HALF {
                // The RNN cell of this thread's (unit, batch) pair: the warps' partial sums of
                // its row in warp order, b_hh, U_t, the activation (as `cell_phase` computes it).
                // The tagged rounding, staging and output as `finish_h` (stage slot q = lu·B + b).
                // Pairs past the CTA's threads (q ≥ nt: few warps, large batch) are computed from
                // scratch, with their inputs and b_hh loaded here.
                // SAFETY: after the barrier; the partial sums of row lu < rows, entry b < B; the
                // stage and output indices are the pair's; U and b_hh hold T·B·H and H values.
                unsafe {
                    let mut q = tid;
                    while q < cells {
                        let (out, part, inp, bias) = if q == tid {
                            (cell_out, cell_part, cell_input[0], cell_bias[0])
                        } else {
                            let (b, lu) = (q % l.batch, q / l.batch);
                            let u = ld_nc_u32(units.add((unit_base + lu) as usize));
                            let out = if u != NO_UNIT { b * l.hidden + u } else { u32::MAX };
                            let inp = if out != u32::MAX { load_u(p, l.u_f16, ((t - 1) * l.batch * l.hidden + out) as usize) } else { 0.0 };
                            let bias = if out != u32::MAX { ld_nc_f32((p.bias_hh as *const f32).add(u as usize)) } else { 0.0 };
                            (out, part_of(lu, b), inp, bias)
                        };
                        if out != u32::MAX {
                            // In warp order; six volatile loads issued together at a time (plain
                            // loads were issued one at a time, each add waiting for its load).
                            let stride = 4 * part_rows * DENSE_MAX_BATCH as u32;
                            let (mut sum, mut w) = (0.0f32, 0);
                            while w + 6 <= warps {
                                let v = ld_volatile_shared_f32x6(part + stride * w, stride);
                                sum = sum + v[0] + v[1] + v[2] + v[3] + v[4] + v[5];
                                w += 6;
                            }
                            while w < warps {
                                sum += ld_shared_f32(part + stride * w);
                                w += 1;
                            }
                            phase_clock::<CLOCKS>(p, &l, t, phase::SUMMED);
                            let h = cell::rnn(l.cell, (sum + bias) + inp);
                            let bits = tag_round(h, f32_to_f16(h), tag_bit(l.first_step.wrapping_add(t)), f16_to_f32);
                            st_shared_u16(l.stage_smem + 2 * q, bits);
                            st_global_f32((p.h_out as *mut f32).add(((t - 1) * l.batch * l.hidden + out) as usize), f16_to_f32(bits));
                        }
                        q += l.nt;
                    }
                }
            } else {
                let cta_col = block_idx_x() * l.slots;
                // SAFETY: uniform barrier; the closures read the partial sums of rows lu·G + g
                // < MT·16 (checked in `Layer::dense`) and h inside its bounds.
                unsafe {
                    sync_threads();
                    cell_phase(
                        p,
                        &l,
                        t,
                        cell_unit,
                        cell_input,
                        cell_bias,
                        |lu, g, b| {
                            let row = lu * l.gates + g;
                            let mut sum = 0.0f32;
                            for w in 0..warps {
                                sum += ld_shared_f32(l.acc_smem + 4 * ((w * part_rows + row) * DENSE_MAX_BATCH as u32 + b));
                            }
                            sum
                        },
                        |lu, b| f16_to_f32(ld_shared_u16(l.h_smem + 2 * ((cta_col + lu) * l.batch + b))),
                    );
                }
            }
        }
        unsafe { phase_clock::<CLOCKS>(p, &l, t, phase::CELL_DONE) };
        // SAFETY: uniform barrier; kernel contract.
        unsafe {
            sync_threads();
            phase_clock::<CLOCKS>(p, &l, t, phase::STAGED);
            publish(p, &l, t);
            phase_clock::<CLOCKS>(p, &l, t, phase::PUBLISHED);
        }
    }
}

macro_rules! entries {
    ($($name:ident = ($mt:literal, $kw:literal, $half:literal);)*) => {
        $(
            /// Dense slab kernel entry point (m-tiles, `h` for a half last m-tile, and k-tiles
            /// per warp in the name).
            ///
            /// # Safety
            /// See [`dense`].
            #[no_mangle]
            pub unsafe extern "ptx-kernel" fn $name(p: RecurrentParams) {
                const _: () = assert!(crate::format::str_eq(crate::format::dense_kernel_name($mt, $kw, $half), stringify!($name)));
                // SAFETY: forwarded contract.
                unsafe { dense::<$mt, $kw, { dense_words_per_k_tile($mt, $half) }, $half, false>(&p) }
            }
        )*
    };
}

macro_rules! clock_entries {
    ($($name:ident = ($mt:literal, $kw:literal);)*) => {
        $(
            /// The phase-clock probe of a half variant (see the module docs).
            ///
            /// # Safety
            /// See [`dense`]; `c_out` must hold `B·H` words.
            #[no_mangle]
            pub unsafe extern "ptx-kernel" fn $name(p: RecurrentParams) {
                const _: () = assert!(crate::format::str_eq(crate::format::dense_clocks_kernel_name($mt, $kw), stringify!($name)));
                // SAFETY: forwarded contract.
                unsafe { dense::<$mt, $kw, { dense_words_per_k_tile($mt, true) }, true, true>(&p) }
            }
        )*
    };
}

clock_entries! {
    sprnn_clocks_dense_rnn_mt2h_kw8 = (2, 8);
}

entries! {
    sprnn_dense_mt1_kw4 = (1, 4, false); sprnn_dense_mt1_kw8 = (1, 8, false); sprnn_dense_mt1_kw12 = (1, 12, false); sprnn_dense_mt1_kw16 = (1, 16, false);
    sprnn_dense_mt2_kw4 = (2, 4, false); sprnn_dense_mt2_kw8 = (2, 8, false); sprnn_dense_mt2_kw12 = (2, 12, false); sprnn_dense_mt2_kw16 = (2, 16, false);
    sprnn_dense_mt3_kw4 = (3, 4, false); sprnn_dense_mt3_kw8 = (3, 8, false);
    sprnn_dense_mt4_kw4 = (4, 4, false); sprnn_dense_mt4_kw8 = (4, 8, false);
    sprnn_dense_rnn_mt2h_kw8 = (2, 8, true); sprnn_dense_rnn_mt3h_kw8 = (3, 8, true);
}
