//! The sparse persistent recurrent kernel: one launch computes all T steps of an RNN, GRU or
//! LSTM layer whose pruned recurrent matrix stays in registers.
//!
//! Phases (see `format` for every layout):
//! 1. **Load weights**: thread `tid` of CTA `c` loads its `N` packed nonzeros (coalesced) into
//!    the register array `w` — `N` registers, held for the whole sequence.
//! 2. **Warm start**: `h0` (or zeros) into shared memory as fp16, the zero column, LSTM `c0`.
//! 3. **Step loop**, t = 1..=T:
//!    - *prefetch* `U_t` of this thread's cells toward L1;
//!    - *gather* (t ≥ 2): copy `h_{t-1}` from the exchange buffer `(t-1) % 2` into shared
//!      memory, spinning on each 16-byte chunk until every word carries tag `t-1` (bounded by
//!      `timeout_ns`; an error or another CTA's error ends the kernel for the whole CTA);
//!    - *multiply*: per batch tile, `acc[j] += w * h[col][j]` over the `N` words (fp32), then a
//!      shuffle butterfly over the `threads_per_row` lanes of the row — `BT` accumulator
//!      registers. RNN (one gate): lane `j` of the row finishes batch entry `j` of the tile
//!      right there (adds `U_t` and `b_hh`, applies the cell, publishes). GRU and LSTM (or RNN
//!      with `flags::SEPARATE_CELL`): lane 0 of the row writes its sums to shared memory;
//!    - *cell* (GRU, LSTM): after a barrier, one thread per (unit, batch) pair adds `U_t` and
//!      `b_hh`, applies the cell, rounds `h_t` to fp16, publishes the tagged word to exchange
//!      buffer `t % 2` and writes `h_t` to the output.
//! 4. **Drain**: LSTM writes its final `c`.
//!
//! Barriers per step: after the gather (h complete); GRU/LSTM also after the multiply (sums
//! complete); and at the end of the step (the next gather overwrites h and the sums) unless
//! the hidden state is double-buffered (`flags::DOUBLE_BUFFER_H`). Registers: `N` for the list,
//! `BT` accumulators, the rest addresses, loop state and the cell; each variant is compiled
//! under `format::register_budget` (`.maxnreg`).

use crate::device::*;
use crate::format::{
    exchange_words, flags, h_smem_bytes, smem_acc_offset, status, step_tag, tag_word, Cell, RecurrentParams, NO_UNIT,
};

use super::cell;

/// Read-only view of the parameters with derived values, computed once.
struct Layer {
    cell: Cell,
    gates: u32,
    hidden: u32,
    batch: u32,
    steps: u32,
    nt: u32,
    tpr: u32,
    upc: u32,
    u_f16: bool,
    /// Shared address of hidden-state buffer 0.
    h_smem: u32,
    /// Bytes between the two hidden-state buffers (0 when single-buffered).
    h_stride: u32,
    acc_smem: u32,
    c_smem: u32,
    xwords: u32,
}

/// Spins until the 16-byte chunk at `p` holds `valid` words tagged `tag`; returns the words,
/// or the error code when the wait passes its bound or another CTA failed.
///
/// # Safety
/// `p` must be a 16-byte-aligned chunk of the exchange buffer; `status_word` the status word.
#[inline(always)]
unsafe fn wait_chunk(p: *const u32, valid: u32, tag: u32, status_word: *const u32, timeout_ns: u64) -> Result<[u32; 4], u32> {
    let mut spins: u32 = 0;
    let mut deadline: u64 = 0;
    loop {
        // SAFETY: the caller guarantees `p` is a valid chunk.
        let v = unsafe { ld_relaxed_gpu_v4_u32(p) };
        let fresh = |i: u32| i >= valid || (v[i as usize] >> 16) == tag;
        if fresh(0) && fresh(1) && fresh(2) && fresh(3) {
            return Ok(v);
        }
        spins = spins.wrapping_add(1);
        if spins % 32 == 1 {
            let now = global_timer_ns();
            if deadline == 0 {
                deadline = now + timeout_ns;
            } else if now > deadline {
                return Err(status::TIMEOUT);
            }
            // SAFETY: the caller guarantees `status_word` is valid.
            if unsafe { ld_relaxed_gpu_u32(status_word) } != status::OK {
                return Err(status::ABORTED);
            }
        }
    }
}

/// Records the first error of the launch (later ones keep the first).
#[inline(always)]
unsafe fn report(p: &RecurrentParams, code: u32) {
    // SAFETY: `status` is a valid device word (kernel contract).
    unsafe { atom_cas_gpu_u32(p.status as *mut u32, status::OK, code | (block_idx_x() << status::CTA_SHIFT)) };
}

/// Loads `BT` fp16 hidden values at shared address `addr` as f32.
#[inline(always)]
unsafe fn load_h<const BT: usize>(addr: u32) -> [f32; BT] {
    let mut out = [0.0f32; BT];
    // SAFETY: the caller guarantees `addr` is a valid, `2*BT`-aligned shared address.
    unsafe {
        match BT {
            1 => out[0] = f16_to_f32(ld_shared_u16(addr)),
            2 => {
                let v = ld_shared_u32(addr);
                out[0] = f16_to_f32(v as u16);
                out[1] = f16_to_f32((v >> 16) as u16);
            }
            4 => {
                let v = ld_shared_v2_u32(addr);
                for i in 0..2 {
                    out[2 * i] = f16_to_f32(v[i] as u16);
                    out[2 * i + 1] = f16_to_f32((v[i] >> 16) as u16);
                }
            }
            _ => {
                let v = ld_shared_v4_u32(addr);
                for i in 0..4 {
                    out[2 * i] = f16_to_f32(v[i] as u16);
                    out[2 * i + 1] = f16_to_f32((v[i] >> 16) as u16);
                }
            }
        }
    }
    out
}

/// Stores four fp16 values (the low halves of exchange words) at shared word index `i`
/// (`valid` of them, the rest are past the end of the vector).
#[inline(always)]
unsafe fn store_h4(h_smem: u32, i: u32, v: [u32; 4], valid: u32) {
    let addr = h_smem + 2 * i;
    // SAFETY: the caller guarantees the `valid` halves at `addr` are inside the hidden state;
    // `i` is a multiple of 4, so `addr` is 8-byte aligned.
    unsafe {
        if valid == 4 {
            st_shared_v2_u32(addr, [(v[0] & 0xFFFF) | (v[1] << 16), (v[2] & 0xFFFF) | (v[3] << 16)]);
        } else {
            for (k, word) in v.iter().enumerate() {
                if (k as u32) < valid {
                    st_shared_u16(addr + 2 * k as u32, *word as u16);
                }
            }
        }
    }
}

/// The kernel body for list length `N` and batch tile `BT`.
///
/// # Safety
/// `p` must satisfy the contract in `format::RecurrentParams` (buffers of the documented sizes,
/// every CTA of the grid co-resident, dynamic shared memory of `format::recurrent_smem_bytes`).
#[inline(always)]
pub unsafe fn recurrent<const N: usize, const BT: usize>(p: &RecurrentParams) {
    let tid = thread_idx_x();
    let cta = block_idx_x();
    let Some(cell_kind) = Cell::from_u32(p.cell) else {
        // SAFETY: status is valid.
        unsafe { report(p, status::BAD_PARAMS) };
        return;
    };
    let gates = cell_kind.gates() as u32;
    let base = dyn_smem_base();
    let double = p.flags & flags::DOUBLE_BUFFER_H != 0;
    let l = Layer {
        cell: cell_kind,
        gates,
        hidden: p.hidden,
        batch: p.batch,
        steps: p.steps,
        nt: p.threads_per_cta,
        tpr: p.threads_per_row,
        upc: p.units_per_cta,
        u_f16: p.flags & flags::U_F16 != 0,
        h_smem: base,
        h_stride: if double { h_smem_bytes(p.hidden as usize, p.batch as usize) as u32 } else { 0 },
        acc_smem: base + smem_acc_offset(p.hidden as usize, p.batch as usize, double) as u32,
        c_smem: base
            + smem_acc_offset(p.hidden as usize, p.batch as usize, double) as u32
            + p.units_per_cta * gates * p.batch * 4,
        xwords: exchange_words(p.hidden as usize, p.batch as usize) as u32,
    };
    let bad = block_dim_x() != l.nt
        || l.batch % BT as u32 != 0
        || l.tpr == 0
        || l.tpr > 32
        || l.tpr & (l.tpr - 1) != 0
        || l.upc * gates * l.tpr > l.nt;
    if bad {
        if tid == 0 {
            // SAFETY: status is valid.
            unsafe { report(p, status::BAD_PARAMS) };
        }
        return;
    }
    let units = p.units as *const u32;
    let unit_base = cta * l.upc;
    let hb = l.hidden * l.batch;
    let gh = l.gates * l.hidden;
    let cells = l.upc * l.batch;

    // ---- Phase 1: weights into registers (N registers per thread, whole sequence).
    let total = grid_dim_x() * l.nt;
    let mut w = [0u32; N];
    for (k, wk) in w.iter_mut().enumerate() {
        // SAFETY: the weight buffer holds N * total words.
        *wk = unsafe { ld_nc_u32((p.weights as *const u32).add(k * total as usize + (cta * l.nt + tid) as usize)) };
    }
    let slot = tid / l.tpr;
    let lane_in_row = tid & (l.tpr - 1);
    let writes_sum = lane_in_row == 0 && slot < l.upc * gates;
    // RNN (one gate): the lanes of a row finish the cell themselves after the butterfly, with
    // no shared-memory round trip and no barrier; `my_unit`/`my_bias` are then this row's.
    let fused = gates == 1 && p.flags & flags::SEPARATE_CELL == 0;
    let my_unit = if slot < l.upc {
        // SAFETY: the unit table holds grid * upc entries.
        unsafe { ld_nc_u32(units.add((unit_base + slot) as usize)) }
    } else {
        NO_UNIT
    };
    let my_bias = if fused && my_unit != NO_UNIT {
        // SAFETY: b_hh holds G*H values and my_unit < H.
        unsafe { ld_nc_f32((p.bias_hh as *const f32).add(my_unit as usize)) }
    } else {
        0.0
    };

    // ---- Phase 2: warm start.
    // SAFETY: all shared addresses below are inside the dynamic window sized by the host;
    // global reads are inside h0/c0 ([B][H]).
    unsafe {
        let mut i = tid;
        while i < hb + l.batch {
            // i < hb: h[col][b] with col = i / B; i ≥ hb: the zero column.
            let v = if i < hb && p.flags & flags::HAS_H0 != 0 {
                let (col, b) = (i / l.batch, i % l.batch);
                f32_to_f16(ld_nc_f32((p.h0 as *const f32).add((b * l.hidden + col) as usize)))
            } else {
                0
            };
            st_shared_u16(l.h_smem + 2 * i, v);
            if i >= hb {
                st_shared_u16(l.h_smem + l.h_stride + 2 * i, 0);
            }
            i += l.nt;
        }
        if cell_kind == Cell::Lstm {
            let mut q = tid;
            while q < cells {
                let u = ld_nc_u32(units.add((unit_base + q / l.batch) as usize));
                let c = if u != NO_UNIT && p.flags & flags::HAS_C0 != 0 {
                    ld_nc_f32((p.c0 as *const f32).add(((q % l.batch) * l.hidden + u) as usize))
                } else {
                    0.0
                };
                st_shared_f32(l.c_smem + 4 * q, c);
                q += l.nt;
            }
        }
        sync_threads();
    }

    let status_word = p.status as *const u32;
    let exchange_only = p.flags & flags::EXCHANGE_ONLY != 0;
    let exchange = p.exchange as *mut u32;
    let mut failed = false;

    // ---- Phase 3: step loop.
    for t in 1..=l.steps {
        // Prefetch U_t of this thread's cells.
        let mut q = tid;
        while q < cells {
            // SAFETY: the unit table holds grid * upc entries.
            let u = unsafe { ld_nc_u32(units.add((unit_base + q / l.batch) as usize)) };
            if u != NO_UNIT {
                let row0 = ((t - 1) * l.batch + q % l.batch) * gh + u;
                for g in 0..gates {
                    let idx = (row0 + g * l.hidden) as usize;
                    if l.u_f16 {
                        prefetch_l1((p.u as *const u16).wrapping_add(idx));
                    } else {
                        prefetch_l1((p.u as *const f32).wrapping_add(idx));
                    }
                }
            }
            q += l.nt;
        }

        // This step's hidden-state buffer: h_{t-1} (buffer (t-1) % 2 when double-buffered).
        let h_cur = l.h_smem + ((t - 1) & 1) * l.h_stride;
        // Gather h_{t-1} from the other CTAs.
        if t >= 2 {
            let tag = step_tag(t - 1);
            let buf = exchange.wrapping_add((((t - 1) & 1) * l.xwords) as usize);
            let mut chunk = tid;
            while chunk * 4 < hb {
                let valid = if hb - chunk * 4 < 4 { hb - chunk * 4 } else { 4 };
                // SAFETY: the chunk lies in the exchange buffer; status is valid.
                match unsafe { wait_chunk(buf.add(4 * chunk as usize), valid, tag, status_word, p.timeout_ns) } {
                    Ok(v) => unsafe { store_h4(h_cur, 4 * chunk, v, valid) },
                    Err(code) => {
                        // SAFETY: status is valid.
                        unsafe { report(p, code) };
                        failed = true;
                        break;
                    }
                }
                chunk += l.nt;
            }
        }
        // SAFETY: every thread reaches this barrier once per step.
        if unsafe { sync_threads_or(failed) } {
            return;
        }

        // Multiply: W h for this thread's slot, one batch tile at a time.
        let mut tile = 0;
        // The exchange floor skips the product, and with several gates the whole tile loop (the
        // cell phase republishes); the fused RNN path still runs it to republish.
        let tiles = if exchange_only && !fused { 0 } else { l.batch / BT as u32 };
        while tile < tiles {
            let mut acc = [0.0f32; BT];
            // Opaque per tile, so the N column addresses are not hoisted out of the tile loop
            // (that would hold N more registers).
            let tile_base = opaque_u32(h_cur + 2 * tile * BT as u32);
            let col_bytes = opaque_u32(2 * l.batch);
            for k in 0..if exchange_only { 0 } else { N } {
                let wk = opaque_u32(w[k]);
                let col = wk & 0xFFFF;
                let v = f16_to_f32((wk >> 16) as u16);
                // SAFETY: col ≤ H, so the address is inside the hidden state.
                let h = unsafe { load_h::<BT>(tile_base + col * col_bytes) };
                for j in 0..BT {
                    acc[j] = fma(v, h[j], acc[j]);
                }
            }
            let mut m = 16;
            while m > 0 {
                if m < l.tpr {
                    for a in acc.iter_mut() {
                        // SAFETY: the whole warp runs this (uniform trip count).
                        *a += unsafe { shfl_xor_f32(*a, m) };
                    }
                }
                m >>= 1;
            }
            if fused && my_unit != NO_UNIT {
                // Lane `j` of the row (and `j + TPR`, … when TPR < BT) finishes batch entry `j`
                // of the tile: the lanes run one cell together instead of BT divergent ones.
                let mut j = lane_in_row;
                while j < BT as u32 {
                    let mut a = acc[0];
                    for (jj, v) in acc.iter().enumerate().skip(1) {
                        if jj as u32 == j {
                            a = *v;
                        }
                    }
                    let b = tile * BT as u32 + j;
                    // SAFETY: U holds T*B*H values (G = 1) and my_unit < H.
                    let inp = unsafe { load_u(p, l.u_f16, (((t - 1) * l.batch + b) * gh + my_unit) as usize) };
                    let h = if exchange_only {
                        // SAFETY: inside the hidden state.
                        f16_to_f32(unsafe { ld_shared_u16(h_cur + 2 * (my_unit * l.batch + b)) })
                    } else {
                        cell::update(l.cell, [a + my_bias, 0.0, 0.0, 0.0], [inp, 0.0, 0.0, 0.0], 0.0, 0.0).0
                    };
                    // SAFETY: (my_unit, b) is one of this CTA's outputs.
                    unsafe { emit_h(p, &l, t, my_unit, b, h) };
                    j += l.tpr;
                }
            } else if writes_sum {
                for (j, a) in acc.iter().enumerate() {
                    // SAFETY: slot < upc * G, inside the sums array.
                    unsafe { st_shared_f32(l.acc_smem + 4 * (slot * l.batch + tile * BT as u32 + j as u32), *a) };
                }
            }
            tile += 1;
        }
        if !fused {
            // SAFETY: uniform barrier (`fused` is uniform).
            unsafe { sync_threads() };
        }

        // Cell: one thread per (unit, batch) pair (cells with several gates).
        let mut q = if fused { cells } else { tid };
        while q < cells {
            let (lu, b) = (q / l.batch, q % l.batch);
            // SAFETY: all indices below are inside their buffers (format contract).
            unsafe {
                let u = ld_nc_u32(units.add((unit_base + lu) as usize));
                if u != NO_UNIT {
                    let row0 = ((t - 1) * l.batch + b) * gh + u;
                    let mut pre = [0.0f32; 4];
                    let mut inp = [0.0f32; 4];
                    for g in 0..if exchange_only { 0 } else { gates } {
                        pre[g as usize] = ld_shared_f32(l.acc_smem + 4 * ((lu * gates + g) * l.batch + b))
                            + ld_nc_f32((p.bias_hh as *const f32).add((g * l.hidden + u) as usize));
                        let idx = (row0 + g * l.hidden) as usize;
                        inp[g as usize] = load_u(p, l.u_f16, idx);
                    }
                    let h_prev = f16_to_f32(ld_shared_u16(h_cur + 2 * (u * l.batch + b)));
                    let c_prev = if l.cell == Cell::Lstm { ld_shared_f32(l.c_smem + 4 * q) } else { 0.0 };
                    let (h, c) = if exchange_only { (h_prev, c_prev) } else { cell::update(l.cell, pre, inp, h_prev, c_prev) };
                    emit_h(p, &l, t, u, b, h);
                    if l.cell == Cell::Lstm {
                        st_shared_f32(l.c_smem + 4 * q, c);
                        if t == l.steps {
                            st_global_f32((p.c_out as *mut f32).add((b * l.hidden + u) as usize), c);
                        }
                    }
                }
            }
            q += l.nt;
        }
        if l.h_stride == 0 {
            // Single-buffered: the next gather overwrites the state this step still reads.
            // SAFETY: uniform barrier.
            unsafe { sync_threads() };
        }
    }
}

/// Input pre-activation `U[idx]` as f32 (stored as f32, or fp16 with `flags::U_F16`).
///
/// # Safety
/// `idx` must be inside `U`.
#[inline(always)]
unsafe fn load_u(p: &RecurrentParams, f16: bool, idx: usize) -> f32 {
    // SAFETY: the caller guarantees `idx` is inside U, which is read-only for the launch.
    unsafe {
        if f16 {
            f16_to_f32(ld_nc_u16((p.u as *const u16).add(idx)))
        } else {
            ld_nc_f32((p.u as *const f32).add(idx))
        }
    }
}

/// Rounds `h_t[unit][b]` to fp16, publishes it with step tag `t` in exchange buffer `t % 2`
/// (unless the never-publish test switch holds it back) and writes it to the output.
///
/// # Safety
/// `unit < H`, `b < B`, and this thread is the only writer of `(unit, b)` at step `t`.
#[inline(always)]
unsafe fn emit_h(p: &RecurrentParams, l: &Layer, t: u32, unit: u32, b: u32, h: f32) {
    let hbits = f32_to_f16(h);
    let never = p.flags & flags::TEST_NEVER_PUBLISH != 0 && block_idx_x() == 0 && t == 1;
    // SAFETY: the caller guarantees the indices; the buffers have the documented sizes.
    unsafe {
        if !never {
            let x = (p.exchange as *mut u32).add(((t & 1) * l.xwords + unit * l.batch + b) as usize);
            st_relaxed_gpu_u32(x, tag_word(t, hbits));
        }
        st_global_f32((p.h_out as *mut f32).add((((t - 1) * l.batch + b) * l.hidden + unit) as usize), f16_to_f32(hbits));
    }
}

macro_rules! entries {
    ($($name:ident = ($n:literal, $bt:literal);)*) => {
        $(
            /// Recurrent kernel entry point (list length and batch tile in the name).
            ///
            /// # Safety
            /// See [`recurrent`].
            #[no_mangle]
            pub unsafe extern "ptx-kernel" fn $name(p: RecurrentParams) {
                const _: () = assert!(crate::format::recurrent_kernel_name($n, $bt).len() == stringify!($name).len());
                // SAFETY: forwarded contract.
                unsafe { recurrent::<$n, $bt>(&p) }
            }
        )*
    };
}

entries! {
    sprnn_recurrent_n8_bt1 = (8, 1); sprnn_recurrent_n8_bt2 = (8, 2); sprnn_recurrent_n8_bt4 = (8, 4); sprnn_recurrent_n8_bt8 = (8, 8);
    sprnn_recurrent_n16_bt1 = (16, 1); sprnn_recurrent_n16_bt2 = (16, 2); sprnn_recurrent_n16_bt4 = (16, 4); sprnn_recurrent_n16_bt8 = (16, 8);
    sprnn_recurrent_n24_bt1 = (24, 1); sprnn_recurrent_n24_bt2 = (24, 2); sprnn_recurrent_n24_bt4 = (24, 4); sprnn_recurrent_n24_bt8 = (24, 8);
    sprnn_recurrent_n32_bt1 = (32, 1); sprnn_recurrent_n32_bt2 = (32, 2); sprnn_recurrent_n32_bt4 = (32, 4); sprnn_recurrent_n32_bt8 = (32, 8);
    sprnn_recurrent_n48_bt1 = (48, 1); sprnn_recurrent_n48_bt2 = (48, 2); sprnn_recurrent_n48_bt4 = (48, 4); sprnn_recurrent_n48_bt8 = (48, 8);
    sprnn_recurrent_n64_bt1 = (64, 1); sprnn_recurrent_n64_bt2 = (64, 2); sprnn_recurrent_n64_bt4 = (64, 4); sprnn_recurrent_n64_bt8 = (64, 8);
    sprnn_recurrent_n96_bt1 = (96, 1); sprnn_recurrent_n96_bt2 = (96, 2); sprnn_recurrent_n96_bt4 = (96, 4); sprnn_recurrent_n96_bt8 = (96, 8);
}
