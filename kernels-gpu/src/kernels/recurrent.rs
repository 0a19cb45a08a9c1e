//! The sparse persistent recurrent kernel: one launch computes all T steps of an RNN, GRU or
//! LSTM layer whose pruned recurrent matrix stays in registers. Two families of entry points
//! (`format::GATED`): `sprnn_recurrent_*` for RNN cells and `sprnn_gated_*` for GRU and LSTM,
//! each compiled with its own register budget so the gated cell's registers are paid only where
//! it runs.
//!
//! Phases (each an `#[inline(always)]` function below; see `format` for every layout):
//! 1. [`load_weights`]: thread `tid` of CTA `c` loads its `N` packed nonzeros (coalesced) into
//!    the register array `w` — `N` registers, held for the whole sequence.
//! 2. [`warm_start`]: `h0` (or zeros) into shared memory, the zero column, the staged outputs,
//!    LSTM `c0`.
//! 3. Step loop, t = 1..=T:
//!    - `U_t` of this thread's first cell into registers, before the wait ([`load_inputs`]; the
//!      gated family keeps the loaded bits, [`load_input_bits`], and converts them in the cell, so
//!      that no warp waits for the loads before its first poll);
//!    - [`gather`] (t ≥ 2): copy `h_{t-1}` from exchange buffer `(t-1) % 2` into shared memory,
//!      16 bytes (eight tagged fp16 values) per load, spinning on each chunk until every value
//!      carries the tag of step `t-1` (bounded by `timeout_ns`; the clock and the status word are
//!      read only every `SPINS_PER_CHECK` spins). Then a barrier: `h_{t-1}` is complete;
//!    - [`multiply_tile`] (in the gated family only in warps that hold rows, [`warp_has_rows`]):
//!      per batch tile, `acc[j] += w * h[col][j]` over the `N` words (f32), `BT` accumulator
//!      registers; or, with `flags::F16_PRODUCTS` ([`multiply_tile_f16`],
//!      `format::Products::F16`), fp16 pair FMAs over each group of eight words, the group's
//!      sums then added to the f32 accumulators (two FMAs per word at `BT = 4` instead of four
//!      FMAs and five conversions); then the row's lanes add up:
//!      - RNN with `TPR ≥ BT`: [`reduce_scatter`], and the lane leading each entry's sum
//!        finishes it right there ([`finish_h`]); with `TPR < BT`: [`butterfly`], and lane `j`
//!        of the row finishes batch entry `j` (and `j + TPR`, …);
//!      - GRU and LSTM where a unit's gate rows share a warp and `TPR ≥ BT`
//!        (`format::gated_kernel`): [`reduce_scatter`] (each lane ends with one entry's sum), then
//!        [`gated_cell`]: the gate-row-0 lanes fetch the other gates' sums with shuffles and
//!        finish the cell — no shared-memory round trip, no barrier;
//!      - otherwise (and with `flags::SEPARATE_CELL`): [`butterfly`], lane 0 of the row writes
//!        its sums to shared memory, and after a barrier [`cell_phase`] runs one thread per
//!        (unit, batch) pair;
//!    - a barrier (the staged outputs are complete, and the next gather may overwrite `h`), then
//!      [`publish`]: the CTA's staged values go to exchange buffer `t % 2`, 8 bytes per store.
//! 4. Drain: LSTM writes its final `c` in the last step's cell.
//!
//! [`finish_h`] rounds `h_t` to the fp16 value whose last bit is the step's tag
//! (`format::tag_round`), stages it and writes it (as f32) to the output.
//!
//! The shared-weights family (`sprnn_sw_*`, `format::shared_kernel_name`) keeps the tail of each
//! thread's list, `M = shared_words` entries, in shared memory ([`load_shared_weights`] at
//! start-up, [`multiply_tile_shared`] / [`multiply_tile_shared_f16`] after the register words
//! of every tile): a layer about twice as large fits on the chip.
//!
//! Registers: `N` for the list, `BT` accumulators, the rest addresses, loop state and the cell;
//! each variant is compiled under `format::register_budget` (`.maxnreg`).

use crate::device::*;
use crate::format::{
    column_word_index, column_word_value, dense_rows, flags, gated_kernel, offset_word_offset, offset_word_value, row_threads, scatter_entry, status,
    tag_bit, tag_pattern32, tag_round, Cell, DenseSmem, RecurrentParams, RecurrentSmem, DENSE_MAX_BATCH, DENSE_TILE, NO_UNIT,
    PRODUCT_GROUP, SPINS_PER_CHECK, TAG_BITS32, VALUES_PER_STORE,
};

use super::cell;
use super::row::Row;

/// Read-only view of the parameters with derived values, computed once.
pub(super) struct Layer {
    pub(super) cell: Cell,
    pub(super) gates: u32,
    pub(super) hidden: u32,
    pub(super) batch: u32,
    pub(super) steps: u32,
    /// Threads per CTA.
    pub(super) nt: u32,
    /// Threads per row.
    pub(super) tpr: u32,
    /// Entries per CTA in the unit table.
    pub(super) upc: u32,
    /// Columns this CTA owns (`S`).
    pub(super) slots: u32,
    /// Columns of the hidden state (`grid · S`), the zero column's index.
    pub(super) columns: u32,
    pub(super) u_f16: bool,
    /// The products in fp16 pairs (`flags::F16_PRODUCTS`, `format::Products::F16`).
    pub(super) f16_products: bool,
    /// Shared address of the hidden state `h[columns + 1][B]`.
    pub(super) h_smem: u32,
    /// Shared address of the staged outputs `[S][B]` fp16.
    pub(super) stage_smem: u32,
    /// Shared address of the gate sums `[rows][B]` f32.
    pub(super) acc_smem: u32,
    /// Shared address of the LSTM cell state `[upc][B]` f32.
    pub(super) c_smem: u32,
    /// fp16 values in one exchange buffer.
    pub(super) xvalues: u32,
    /// Steps of the sequence before this launch (the tags number steps `first_step + t`).
    pub(super) first_step: u32,
}

/// The shared-weights family's part of a thread's list (two registers for the sequence): where
/// the CTA's `[M][nt]` words start in shared memory, and `M`.
pub(super) struct SharedList {
    /// Shared address of word `[0][0]` (`format::RecurrentSmem::weights`).
    w_smem: u32,
    /// Words per thread in shared memory (`M`).
    words: u32,
}

impl SharedList {
    /// The shared words of layer `l` (parameters `p`), or `None` when `M` is not a whole number
    /// of product groups.
    #[inline(always)]
    pub(super) fn new(p: &RecurrentParams, l: &Layer) -> Option<SharedList> {
        if p.shared_words % PRODUCT_GROUP as u32 != 0 {
            return None;
        }
        let smem = RecurrentSmem::new(
            p.columns as usize,
            p.batch as usize,
            p.slots_per_cta as usize,
            (p.units_per_cta * l.gates) as usize,
            p.units_per_cta as usize,
            l.cell,
            false,
        );
        Some(SharedList { w_smem: dyn_smem_base() + smem.weights() as u32, words: p.shared_words })
    }
}

impl Layer {
    /// The layer of `p` for hidden-state elements of f32 (`H32`) or fp16, or `None` when the
    /// parameters do not fit this kernel variant or launch.
    #[inline(always)]
    pub(super) fn new<const BT: usize, const H32: bool, const GATED: bool>(p: &RecurrentParams) -> Option<Layer> {
        let cell = Cell::from_u32(p.cell)?;
        let gates = cell.gates() as u32;
        let rows = p.units_per_cta * gates;
        let smem = RecurrentSmem::new(
            p.columns as usize,
            p.batch as usize,
            p.slots_per_cta as usize,
            rows as usize,
            p.units_per_cta as usize,
            cell,
            H32,
        );
        let base = dyn_smem_base();
        let tpr = p.threads_per_row;
        let bad = block_dim_x() != p.threads_per_cta
            || p.batch % BT as u32 != 0
            || tpr == 0
            || tpr > 32
            || tpr & (tpr - 1) != 0
            || (row_threads(p.units_per_cta as usize, gates as usize, tpr as usize, GATED) as u32) > p.threads_per_cta
            || (GATED && !gated_kernel(gates as usize, tpr as usize, BT))
            || (H32 && p.flags & flags::F16_PRODUCTS != 0)
            || p.slots_per_cta < p.units_per_cta
            || (p.slots_per_cta * p.batch) % VALUES_PER_STORE as u32 != 0
            || p.columns != p.slots_per_cta * grid_dim_x();
        if bad {
            return None;
        }
        Some(Layer::with_smem(p, cell, gates, tpr, base, base + smem.stage as u32, base + smem.acc as u32, base + smem.c as u32))
    }

    /// The layer of `p` (cell `cell` of `gates` gate rows, `tpr` threads per row) with its
    /// shared-memory parts at the given addresses.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn with_smem(p: &RecurrentParams, cell: Cell, gates: u32, tpr: u32, h_smem: u32, stage_smem: u32, acc_smem: u32, c_smem: u32) -> Layer {
        Layer {
            cell,
            gates,
            hidden: p.hidden,
            batch: p.batch,
            steps: p.steps,
            nt: p.threads_per_cta,
            tpr,
            upc: p.units_per_cta,
            slots: p.slots_per_cta,
            columns: p.columns,
            u_f16: p.flags & flags::U_F16 != 0,
            f16_products: p.flags & flags::F16_PRODUCTS != 0,
            h_smem,
            stage_smem,
            acc_smem,
            c_smem,
            xvalues: crate::format::exchange_values(p.columns as usize, p.batch as usize) as u32,
            first_step: p.first_step,
        }
    }

    /// The layer of `p` for the dense slab kernel with `MT` m-tiles (the last one half, for RNN
    /// cells only, when `HALF`) and `KW` k-tiles per warp, or `None` when the parameters do not
    /// fit that variant or launch.
    #[inline(always)]
    pub(super) fn dense<const MT: usize, const KW: usize, const HALF: bool>(p: &RecurrentParams) -> Option<(Layer, u32)> {
        let cell = Cell::from_u32(p.cell)?;
        let gates = cell.gates() as u32;
        let warps = block_dim_x() / 32;
        let smem = DenseSmem::new(
            warps as usize,
            KW,
            MT,
            p.batch as usize,
            p.slots_per_cta as usize,
            p.units_per_cta as usize,
            cell,
        );
        let base = dyn_smem_base();
        let bad = block_dim_x() != p.threads_per_cta
            || block_dim_x() % 32 != 0
            || p.batch == 0
            || p.batch as usize > DENSE_MAX_BATCH
            || p.units_per_cta * gates > dense_rows(MT, HALF) as u32
            || (HALF && gates != 1)
            || p.columns > warps * (KW * DENSE_TILE) as u32
            || p.slots_per_cta < p.units_per_cta
            || (p.slots_per_cta * p.batch) % VALUES_PER_STORE as u32 != 0
            || p.columns != p.slots_per_cta * grid_dim_x();
        if bad {
            return None;
        }
        let l = Layer::with_smem(p, cell, gates, 1, base, base + smem.stage as u32, base + smem.part as u32, base + smem.c as u32);
        Some((l, smem.columns as u32))
    }

    /// Bytes per hidden-state element in shared memory.
    #[inline(always)]
    const fn elem_bytes<const H32: bool>() -> u32 {
        if H32 {
            4
        } else {
            2
        }
    }
}

/// Records the first error of the launch (later ones keep the first).
#[inline(always)]
pub(super) unsafe fn report(p: &RecurrentParams, code: u32) {
    // SAFETY: `status` is a valid device word (kernel contract).
    unsafe { atom_cas_gpu_u32(p.status as *mut u32, status::OK, code | (block_idx_x() << status::CTA_SHIFT)) };
}

/// Phase 1: this thread's `N` packed nonzeros (`N` registers for the whole sequence).
///
/// # Safety
/// The weight buffer holds `N · grid · threads_per_cta` words.
#[inline(always)]
pub(super) unsafe fn load_weights<const N: usize>(p: &RecurrentParams, l: &Layer) -> [u32; N] {
    let total = grid_dim_x() * l.nt;
    let me = (block_idx_x() * l.nt + thread_idx_x()) as usize;
    let mut w = [0u32; N];
    for (k, wk) in w.iter_mut().enumerate() {
        // SAFETY: the caller guarantees the buffer's size.
        *wk = unsafe { ld_nc_u32((p.weights as *const u32).add(k * total as usize + me)) };
    }
    w
}

/// Phase 1 of the shared-weights family: this thread's list entries `N .. N + M` from the
/// weight buffer (coalesced) into shared memory at `[k - N][tid]` (`format::RecurrentSmem::weights`),
/// where only this thread reads them: no barrier is needed before its own first read.
///
/// # Safety
/// The weight buffer holds `(N + M) · grid · threads_per_cta` words; the dynamic shared memory
/// holds `M · threads_per_cta` words from `sl.w_smem`.
#[inline(always)]
pub(super) unsafe fn load_shared_weights<const N: usize>(p: &RecurrentParams, l: &Layer, sl: &SharedList) {
    let total = (grid_dim_x() * l.nt) as usize;
    let tid = thread_idx_x();
    let me = block_idx_x() as usize * l.nt as usize + tid as usize;
    let mut k = 0;
    while k < sl.words {
        // SAFETY: the caller guarantees both sizes.
        unsafe {
            let w = ld_nc_u32((p.weights as *const u32).add((N + k as usize) * total + me));
            st_shared_u32(sl.w_smem + 4 * (k * l.nt + tid), w);
        }
        k += 1;
    }
}

/// Stores one hidden value (fp16 bits) at element `i` of the shared hidden state.
///
/// # Safety
/// `i` must be inside the hidden state.
#[inline(always)]
unsafe fn store_h_elem<const H32: bool>(l: &Layer, i: u32, bits: u16) {
    // SAFETY: the caller guarantees the index.
    unsafe {
        if H32 {
            st_shared_f32(l.h_smem + 4 * i, f16_to_f32(bits));
        } else {
            st_shared_u16(l.h_smem + 2 * i, bits);
        }
    }
}

/// Loads one hidden value at element `i` of the shared hidden state as f32.
///
/// # Safety
/// `i` must be inside the hidden state.
#[inline(always)]
pub(super) unsafe fn load_h_elem<const H32: bool>(l: &Layer, i: u32) -> f32 {
    // SAFETY: the caller guarantees the index.
    unsafe {
        if H32 {
            ld_shared_f32(l.h_smem + 4 * i)
        } else {
            f16_to_f32(ld_shared_u16(l.h_smem + 2 * i))
        }
    }
}

/// Phase 2: `h0` rounded to fp16 (or zeros) at the first `elements` hidden-state elements
/// (`[column][b]`: the layer's columns, then the zero column or the dense slab's padding, all
/// zeros), zeroed staged outputs and (LSTM) `c0`; ends with a barrier.
///
/// # Safety
/// Kernel contract (`format::RecurrentParams`); `elements` fit the shared hidden state.
#[inline(always)]
pub(super) unsafe fn warm_start<const H32: bool>(p: &RecurrentParams, l: &Layer, elements: u32) {
    let tid = thread_idx_x();
    let units = p.units as *const u32;
    let has_h0 = p.flags & flags::HAS_H0 != 0;
    // SAFETY: every shared address below is inside the window sized by the host; global reads
    // are inside h0/c0 ([B][H]) and the unit table.
    unsafe {
        let mut i = tid;
        while i < elements {
            let (col, b) = (i / l.batch, i % l.batch);
            let (c, s) = (col / l.slots, col % l.slots);
            let unit = if has_h0 && col < l.columns && s < l.upc { ld_nc_u32(units.add((c * l.upc + s) as usize)) } else { NO_UNIT };
            let v = if unit != NO_UNIT { f32_to_f16(ld_nc_f32((p.h0 as *const f32).add((b * l.hidden + unit) as usize))) } else { 0 };
            store_h_elem::<H32>(l, i, v);
            i += l.nt;
        }
        let mut i = tid;
        while i < l.slots * l.batch {
            st_shared_u16(l.stage_smem + 2 * i, 0);
            i += l.nt;
        }
        if l.cell == Cell::Lstm {
            let unit_base = block_idx_x() * l.upc;
            let mut q = tid;
            while q < l.upc * l.batch {
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
}

/// Spins until the 16-byte chunk that `load` reads holds values tagged for the expected step
/// (`expect`, from `format::tag_pattern32`): all four 32-bit pieces, or the first two when
/// `full` is false (the last chunk of a vector of `8k + 4` values). Returns the pieces, or the
/// error code when the wait passes its bound or another CTA failed. The clock and the status
/// word are read only every `SPINS_PER_CHECK` spins, so a chunk that arrives in time costs loads
/// of the chunk alone; the bound starts at the first check. The grid kernel's chunks are in
/// global memory ([`wait_chunk`]), the cluster kernel's in the CTA's own shared memory.
///
/// # Safety
/// `load` reads a valid chunk; `status_word` is the status word.
#[inline(always)]
pub(super) unsafe fn spin_until_fresh(load: impl Fn() -> [u32; 4], full: bool, expect: u32, status_word: *const u32, timeout_ns: u64) -> Result<[u32; 4], u32> {
    let mut spins: u32 = 0;
    let mut deadline: u64 = 0;
    loop {
        let v = load();
        let mut stale = (v[0] ^ expect) | (v[1] ^ expect);
        if full {
            stale |= (v[2] ^ expect) | (v[3] ^ expect);
        }
        if stale & TAG_BITS32 == 0 {
            return Ok(v);
        }
        spins = spins.wrapping_add(1);
        if spins % SPINS_PER_CHECK == 0 {
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

/// [`spin_until_fresh`] on the global chunk at `p` (strong loads at GPU scope).
///
/// # Safety
/// `p` must be a 16-byte-aligned chunk of the exchange buffer; `status_word` the status word.
#[inline(always)]
pub(super) unsafe fn wait_chunk(p: *const u32, full: bool, expect: u32, status_word: *const u32, timeout_ns: u64) -> Result<[u32; 4], u32> {
    // SAFETY: the caller guarantees `p` is a valid chunk and the status word.
    unsafe { spin_until_fresh(|| ld_relaxed_gpu_v4_u32(p), full, expect, status_word, timeout_ns) }
}

/// Writes one gathered chunk (eight fp16 values as four 32-bit pieces; four values when not
/// `full`) to the shared hidden state at chunk index `chunk`.
///
/// # Safety
/// The chunk's values must be inside the hidden state.
#[inline(always)]
pub(super) unsafe fn store_chunk<const H32: bool>(l: &Layer, chunk: u32, v: [u32; 4], full: bool) {
    // SAFETY: the caller guarantees the chunk is inside; addresses are 16-byte aligned.
    unsafe {
        if H32 {
            let f = |x: u32| [f16_to_f32(x as u16).to_bits(), f16_to_f32((x >> 16) as u16).to_bits()];
            let (a, b) = (f(v[0]), f(v[1]));
            st_shared_v4_u32(l.h_smem + 32 * chunk, [a[0], a[1], b[0], b[1]]);
            if full {
                let (c, d) = (f(v[2]), f(v[3]));
                st_shared_v4_u32(l.h_smem + 32 * chunk + 16, [c[0], c[1], d[0], d[1]]);
            }
        } else if full {
            st_shared_v4_u32(l.h_smem + 16 * chunk, v);
        } else {
            st_shared_v2_u32(l.h_smem + 16 * chunk, [v[0], v[1]]);
        }
    }
}

/// Gathers `h_{t}` (the launch's step `t`, just published by every CTA) into shared memory: this thread's
/// chunks, one wait after the other. Returns the error code of a failed wait.
///
/// # Safety
/// Kernel contract (`format::RecurrentParams`).
#[inline(always)]
unsafe fn gather<const H32: bool>(p: &RecurrentParams, l: &Layer, t: u32) -> Result<(), u32> {
    let step = l.first_step.wrapping_add(t);
    let expect = tag_pattern32(step);
    let buf = (p.exchange as *const u32).wrapping_add(((step & 1) * l.xvalues / 2) as usize);
    let values = l.columns * l.batch;
    let mut chunk = thread_idx_x();
    while chunk * 8 < values {
        let full = values - chunk * 8 >= 8;
        // SAFETY: the chunk lies in the exchange buffer (rounded up to whole chunks).
        let v = unsafe { wait_chunk(buf.add(4 * chunk as usize), full, expect, p.status as *const u32, p.timeout_ns)? };
        // SAFETY: values `8·chunk ..` are inside the hidden state.
        unsafe { store_chunk::<H32>(l, chunk, v, full) };
        chunk += l.nt;
    }
    Ok(())
}

/// [`gather`] of one warp's share of the fp16 hidden state: the chunks of values
/// `start .. limit` (`start` a multiple of 8, `limit` at most the vector's `columns · B`),
/// lane-strided. (A loop of its own rather than [`gather`] with a span: that changed the code
/// of every measured sparse kernel.)
///
/// # Safety
/// Kernel contract (`format::RecurrentParams`).
#[inline(always)]
unsafe fn gather_warp(p: &RecurrentParams, l: &Layer, t: u32, start: u32, limit: u32) -> Result<(), u32> {
    let step = l.first_step.wrapping_add(t);
    let expect = tag_pattern32(step);
    let buf = (p.exchange as *const u32).wrapping_add(((step & 1) * l.xvalues / 2) as usize);
    let values = l.columns * l.batch;
    let mut chunk = start / 8 + lane_id();
    while chunk * 8 < limit {
        let full = values - chunk * 8 >= 8;
        // SAFETY: the chunk lies in the exchange buffer (rounded up to whole chunks).
        let v = unsafe { wait_chunk(buf.add(4 * chunk as usize), full, expect, p.status as *const u32, p.timeout_ns)? };
        // SAFETY: values `8·chunk ..` are inside the hidden state.
        unsafe { store_chunk::<false>(l, chunk, v, full) };
        chunk += 32;
    }
    Ok(())
}

/// [`gather`], reporting a failed wait to the status word; returns whether it failed (the
/// caller then leaves the kernel after the step's first barrier).
///
/// # Safety
/// Kernel contract (`format::RecurrentParams`).
#[inline(always)]
pub(super) unsafe fn gather_or_report<const H32: bool>(p: &RecurrentParams, l: &Layer, t: u32) -> bool {
    // SAFETY: forwarded contract.
    reported(p, unsafe { gather::<H32>(p, l, t) })
}

/// [`gather_warp`], reporting a failed wait (see [`gather_or_report`]): one warp's chunks of
/// values `start .. end` (`end` capped at the vector's end), lane-strided. Only this warp's
/// lanes wait for them. (The cap here and the span's end computed per step in the caller are
/// the measured code: moving either changed the half variants' PTX.)
///
/// # Safety
/// Kernel contract (`format::RecurrentParams`); `start` is a multiple of 8.
#[inline(always)]
pub(super) unsafe fn gather_warp_or_report(p: &RecurrentParams, l: &Layer, t: u32, start: u32, end: u32) -> bool {
    let limit = if end < l.columns * l.batch { end } else { l.columns * l.batch };
    // SAFETY: forwarded contract.
    reported(p, unsafe { gather_warp(p, l, t, start, limit) })
}

/// Reports a failed wait's code to the status word; returns whether it failed.
#[inline(always)]
fn reported(p: &RecurrentParams, r: Result<(), u32>) -> bool {
    match r {
        Ok(()) => false,
        Err(code) => {
            // SAFETY: status is valid (kernel contract).
            unsafe { report(p, code) };
            true
        }
    }
}

/// Loads `BT` hidden values at shared address `addr` as f32.
///
/// # Safety
/// `addr` must be a valid shared address aligned to the load (`BT` elements).
#[inline(always)]
unsafe fn load_h<const BT: usize, const H32: bool>(addr: u32) -> [f32; BT] {
    let mut out = [0.0f32; BT];
    // SAFETY: the caller guarantees `addr` is a valid, aligned shared address.
    unsafe {
        if H32 {
            match BT {
                1 => out[0] = ld_shared_f32(addr),
                2 => {
                    let v = ld_shared_v2_u32(addr);
                    for i in 0..2 {
                        out[i] = f32::from_bits(v[i]);
                    }
                }
                4 => {
                    let v = ld_shared_v4_u32(addr);
                    for i in 0..4 {
                        out[i] = f32::from_bits(v[i]);
                    }
                }
                _ => {
                    let v = ld_shared_v4_u32(addr);
                    let w = ld_shared_v4_u32(addr + 16);
                    for i in 0..4 {
                        out[i] = f32::from_bits(v[i]);
                        out[4 + i] = f32::from_bits(w[i]);
                    }
                }
            }
        } else {
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
    }
    out
}

/// Where register word `wk` locates its column (`format::WordFormat`): with `OFFSETS` its byte
/// offset (`wk >> 16`), otherwise its column index (`wk & 0xFFFF`).
#[inline(always)]
fn word_locator<const OFFSETS: bool>(wk: u32) -> u32 {
    if OFFSETS {
        offset_word_offset(wk)
    } else {
        column_word_index(wk)
    }
}

/// Shared address of the column that [`word_locator`] gave, in the batch tile at `tile_base`:
/// with `OFFSETS` the offset added to the base (one instruction with the shift, `LEA.HI`),
/// otherwise the index times `col_bytes` (a multiply-add after the mask).
#[inline(always)]
fn word_address<const OFFSETS: bool>(locator: u32, tile_base: u32, col_bytes: u32) -> u32 {
    if OFFSETS {
        tile_base + locator
    } else {
        tile_base + locator * col_bytes
    }
}

/// fp16 bits of register word `wk`'s value (`format::WordFormat`: the low half with `OFFSETS`,
/// the high half otherwise).
#[inline(always)]
fn word_value<const OFFSETS: bool>(wk: u32) -> u16 {
    if OFFSETS {
        offset_word_value(wk)
    } else {
        column_word_value(wk)
    }
}

/// This thread's partial sums of batch tile `tile`: its `N` words times the hidden state (`BT`
/// accumulators); [`butterfly`] or [`reduce_scatter`] then adds up the row's lanes.
///
/// # Safety
/// Every column of `w` is inside the hidden state.
#[inline(always)]
pub(super) unsafe fn multiply_tile<const N: usize, const BT: usize, const H32: bool, const OFFSETS: bool>(w: &[u32; N], l: &Layer, tile: u32) -> [f32; BT] {
    let eb = Layer::elem_bytes::<H32>();
    let mut acc = [0.0f32; BT];
    // Opaque per tile, so the N column addresses are not hoisted out of the tile loop (that
    // would hold N more registers).
    let tile_base = opaque_u32(l.h_smem + eb * tile * BT as u32);
    let col_bytes = opaque_u32(eb * l.batch);
    for wk in w.iter() {
        let wk = opaque_u32(*wk);
        let loc = word_locator::<OFFSETS>(wk);
        let v = f16_to_f32(word_value::<OFFSETS>(wk));
        // SAFETY: the word's column is ≤ columns, so the address is inside the hidden state.
        let h = unsafe { load_h::<BT, H32>(word_address::<OFFSETS>(loc, tile_base, col_bytes)) };
        for j in 0..BT {
            acc[j] = fma(v, h[j], acc[j]);
        }
    }
    acc
}

/// [`multiply_tile`] continued over this thread's `M` shared-memory words (the shared-weights
/// family, fp16 hidden state): `acc` holds the sums of the register words; each shared word
/// costs one more shared load (conflict-free: a warp reads 32 consecutive words) before its
/// `h` load. Same order of operations as one list of `N + M` words.
///
/// # Safety
/// `sl.w_smem` holds this thread's `M` words (`load_shared_weights`); every column is inside the
/// hidden state, which is fp16.
#[inline(always)]
pub(super) unsafe fn multiply_tile_shared<const BT: usize>(l: &Layer, sl: &SharedList, tile: u32, mut acc: [f32; BT]) -> [f32; BT] {
    let tile_base = opaque_u32(l.h_smem + 2 * tile * BT as u32);
    let col_bytes = opaque_u32(2 * l.batch);
    let stride = 4 * l.nt;
    let mut a = sl.w_smem + 4 * thread_idx_x();
    let end = a + sl.words * stride;
    while a < end {
        for _ in 0..PRODUCT_GROUP {
            // SAFETY: `a` is one of this thread's shared words (M is a multiple of the group).
            let wk = unsafe { ld_shared_u32(a) };
            a += stride;
            let col = wk & 0xFFFF;
            let v = f16_to_f32((wk >> 16) as u16);
            // SAFETY: col ≤ columns, so the address is inside the hidden state.
            let h = unsafe { load_h::<BT, false>(tile_base + col * col_bytes) };
            for j in 0..BT {
                acc[j] = fma(v, h[j], acc[j]);
            }
        }
    }
    acc
}

/// [`multiply_tile_f16`] continued over this thread's `M` shared-memory words: fp16 pair FMAs
/// over each group of `PRODUCT_GROUP` words (`N` and `M` are multiples of the group, so the
/// groups are those of one list of `N + M` words), each group's sums added to `acc`.
///
/// # Safety
/// As [`multiply_tile_shared`].
#[inline(always)]
pub(super) unsafe fn multiply_tile_shared_f16<const BT: usize>(l: &Layer, sl: &SharedList, tile: u32, mut acc: [f32; BT]) -> [f32; BT] {
    let pairs = BT.div_ceil(2);
    let tile_base = opaque_u32(l.h_smem + 2 * tile * BT as u32);
    let col_bytes = opaque_u32(2 * l.batch);
    let stride = 4 * l.nt;
    let mut a = sl.w_smem + 4 * thread_idx_x();
    let end = a + sl.words * stride;
    while a < end {
        let mut g = [0u32; 4];
        for _ in 0..PRODUCT_GROUP {
            // SAFETY: `a` is one of this thread's shared words (M is a multiple of the group).
            let wk = unsafe { ld_shared_u32(a) };
            a += stride;
            let col = wk & 0xFFFF;
            let v = f16x2_high_pair(wk);
            // SAFETY: col ≤ columns, so the address is inside the hidden state.
            let h = unsafe { load_h_pairs::<BT>(tile_base + col * col_bytes) };
            for i in 0..pairs {
                g[i] = fma_f16x2(v, h[i], g[i]);
            }
        }
        for i in 0..pairs {
            let s = f16x2_to_f32(g[i]);
            acc[2 * i] += s[0];
            if 2 * i + 1 < BT {
                acc[2 * i + 1] += s[1];
            }
        }
    }
    acc
}

/// Loads `BT` fp16 hidden values at shared address `addr` as fp16 pairs (`BT = 1`: the value in
/// the low half, +0 in the high half).
///
/// # Safety
/// `addr` must be a valid shared address aligned to the load (`BT` elements).
#[inline(always)]
unsafe fn load_h_pairs<const BT: usize>(addr: u32) -> [u32; 4] {
    // SAFETY: the caller guarantees `addr` is a valid, aligned shared address.
    unsafe {
        match BT {
            1 => [ld_shared_u16(addr) as u32, 0, 0, 0],
            2 => [ld_shared_u32(addr), 0, 0, 0],
            4 => {
                let v = ld_shared_v2_u32(addr);
                [v[0], v[1], 0, 0]
            }
            _ => ld_shared_v4_u32(addr),
        }
    }
}

/// [`multiply_tile`] with `format::Products::F16`: over each group of `PRODUCT_GROUP` words the
/// thread multiplies and adds in fp16 pairs (`fma.rn.f16x2`, the word's value in both halves),
/// then adds the group's sums to its f32 accumulators.
///
/// # Safety
/// Every column of `w` is inside the hidden state; the hidden state is fp16.
#[inline(always)]
pub(super) unsafe fn multiply_tile_f16<const N: usize, const BT: usize, const OFFSETS: bool>(w: &[u32; N], l: &Layer, tile: u32) -> [f32; BT] {
    let pairs = BT.div_ceil(2);
    let mut acc = [0.0f32; BT];
    let tile_base = opaque_u32(l.h_smem + 2 * tile * BT as u32);
    let col_bytes = opaque_u32(2 * l.batch);
    let mut g = [0u32; 4];
    for (k, wk) in w.iter().enumerate() {
        if k % PRODUCT_GROUP == 0 {
            g = [0; 4];
        }
        let wk = opaque_u32(*wk);
        let loc = word_locator::<OFFSETS>(wk);
        let v = if OFFSETS { f16x2_low_pair(wk) } else { f16x2_high_pair(wk) };
        // SAFETY: the word's column is ≤ columns, so the address is inside the hidden state.
        let h = unsafe { load_h_pairs::<BT>(word_address::<OFFSETS>(loc, tile_base, col_bytes)) };
        for i in 0..pairs {
            g[i] = fma_f16x2(v, h[i], g[i]);
        }
        if k % PRODUCT_GROUP == PRODUCT_GROUP - 1 {
            for i in 0..pairs {
                let s = f16x2_to_f32(g[i]);
                acc[2 * i] += s[0];
                if 2 * i + 1 < BT {
                    acc[2 * i + 1] += s[1];
                }
            }
        }
    }
    acc
}

/// The butterfly over the `TPR` lanes of a row: every lane ends with the row's `BT` sums.
///
/// # Safety
/// The whole warp calls this together (uniform `tpr`).
#[inline(always)]
pub(super) unsafe fn butterfly<const BT: usize>(mut acc: [f32; BT], tpr: u32) -> [f32; BT] {
    let mut m = 16;
    while m > 0 {
        if m < tpr {
            for a in acc.iter_mut() {
                // SAFETY: the whole warp runs this (uniform trip count).
                *a += unsafe { shfl_xor_f32(*a, m) };
            }
        }
        m >>= 1;
    }
    acc
}

/// The reduce-scatter butterfly over the `TPR` lanes of a row: halving stage `s` sends half of
/// the remaining sums to the lane `TPR >> (s + 1)` away and adds the half it keeps (the lane
/// with that bit set keeps the upper half), until one sum is left or the lanes run out; then
/// the lanes that share a sum add it up (`acc += shfl_xor(acc, m)` for the remaining `m`).
/// Afterwards lane `j` holds the row's sums of entries `j · BT / TPR ..` of the tile in `acc[0..]`
/// (one entry when `TPR ≥ BT`: `format::scatter_entry`). The sum of each entry is added up in
/// the same tree as the plain butterfly over all `BT` sums (distance `TPR / 2` first), so every
/// bit is the same; it costs `BT − 1 + log2(TPR / BT)` shuffles instead of `BT · log2(TPR)`.
///
/// # Safety
/// The whole warp calls this together (uniform `tpr`).
#[inline(always)]
pub(super) unsafe fn reduce_scatter<const BT: usize>(mut acc: [f32; BT], tpr: u32, lane: u32) -> [f32; BT] {
    let mut m = tpr >> 1;
    let mut half = BT / 2;
    while half >= 1 {
        if m >= 1 {
            let upper = lane & m != 0;
            for i in 0..half {
                let (keep, send) = if upper { (acc[i + half], acc[i]) } else { (acc[i], acc[i + half]) };
                // SAFETY: the whole warp runs this (uniform trip count).
                acc[i] = keep + unsafe { shfl_xor_f32(send, m) };
            }
            m >>= 1;
        }
        half /= 2;
    }
    while m >= 1 {
        // SAFETY: as above.
        acc[0] += unsafe { shfl_xor_f32(acc[0], m) };
        m >>= 1;
    }
    acc
}

/// A thread's part in the gated family's fused cell (`format::gated_kernel`): after
/// [`reduce_scatter`] each lane holds one sum (`TPR ≥ BT`), entry `first` of the tile, and the
/// lanes of gate row 0 that lead their sums finish the cell of their unit's entry. Computed
/// once; `unit` is [`NO_UNIT`] on every other lane.
pub(super) struct GatedLane {
    /// Local unit of the row.
    lu: u32,
    /// The tile's entry whose sum this lane holds (`format::scatter_entry`).
    pub(super) first: u32,
    /// The unit whose cell this lane finishes, or [`NO_UNIT`].
    pub(super) unit: u32,
    /// `b_hh` of the unit's gates (finishing lanes).
    bias: [f32; 4],
}

impl GatedLane {
    /// The lane of thread `tid`, whose row is gate `gate` of local unit `lu` (`usize::MAX`: a
    /// gap).
    ///
    /// # Safety
    /// Kernel contract (the unit table and `b_hh` have their documented sizes).
    #[inline(always)]
    pub(super) unsafe fn new<const BT: usize>(p: &RecurrentParams, l: &Layer, tid: u32, lu: usize, gate: usize) -> GatedLane {
        let (first, leads) = scatter_entry(tid & (l.tpr - 1), BT as u32, l.tpr);
        let lu = if lu < l.upc as usize { lu as u32 } else { u32::MAX };
        let unit = if leads && gate == 0 && lu != u32::MAX {
            // SAFETY: the unit table holds grid · upc entries.
            unsafe { ld_nc_u32((p.units as *const u32).add((block_idx_x() * l.upc + lu) as usize)) }
        } else {
            NO_UNIT
        };
        // SAFETY: unit < H when it is a unit.
        let bias = if unit != NO_UNIT { unsafe { load_bias(p, l, unit) } } else { [0.0; 4] };
        GatedLane { lu, first, unit, bias }
    }

    /// The lane of a thread that takes no part (RNN family, separate cell phase).
    #[inline(always)]
    pub(super) fn none() -> GatedLane {
        GatedLane { lu: u32::MAX, first: 0, unit: NO_UNIT, bias: [0.0; 4] }
    }
}

/// The gated family's fused cell for batch tile `tile`: after [`reduce_scatter`] this lane's
/// sum (`sum`) is gate row 0's, and the other gates' sums of the same entry are in the lanes
/// `g · TPR` above (`shfl.idx`; a unit's gate rows are side by side in the warp). The finishing
/// lanes add `b_hh` and `U_t` and finish the cell ([`finish_h`]; LSTM's `c` stays in shared
/// memory, owned by that lane). `input` is `U_t` of the lane's entry of tile 0, loaded before
/// the gather.
///
/// # Safety
/// Kernel contract; the whole warp calls this together; `TPR ≥ BT`.
#[inline(always)]
pub(super) unsafe fn gated_cell<const BT: usize, const H32: bool>(p: &RecurrentParams, l: &Layer, t: u32, tile: u32, row: &GatedLane, sum: f32, input: [f32; 4]) {
    let lane = lane_id();
    let mut pre = [sum, 0.0, 0.0, 0.0];
    for (g, x) in pre.iter_mut().enumerate().skip(1) {
        if (g as u32) < l.gates {
            // SAFETY: the whole warp runs this (`gates` is uniform); the lanes that use the
            // value read lanes of their own unit, inside the warp.
            *x = f32::from_bits(unsafe { shfl_idx_u32(sum.to_bits(), lane + g as u32 * l.tpr) });
        }
    }
    if row.unit != NO_UNIT {
        let b = tile * BT as u32 + row.first;
        // SAFETY: the unit is this row's (< H), b < B, lu < upc; this lane is the only writer of
        // (unit, b) and the only user of its cell state.
        unsafe {
            let inp = if tile == 0 { input } else { load_inputs(p, l, t, row.unit, b) };
            let h_prev = if l.cell == Cell::Gru { load_h_elem::<H32>(l, (block_idx_x() * l.slots + row.lu) * l.batch + b) } else { 0.0 };
            let c_at = l.c_smem + 4 * (row.lu * l.batch + b);
            let c_prev = if l.cell == Cell::Lstm { ld_shared_f32(c_at) } else { 0.0 };
            for (g, x) in pre.iter_mut().enumerate() {
                *x += row.bias[g];
            }
            let (h, c) = cell::update(l.cell, pre, inp, h_prev, c_prev);
            finish_h(p, l, t, row.unit, row.lu, b, h);
            if l.cell == Cell::Lstm {
                st_shared_f32(c_at, c);
                if t == l.steps {
                    st_global_f32((p.c_out as *mut f32).add((b * l.hidden + row.unit) as usize), c);
                }
            }
        }
    }
}

/// Input pre-activation `U[idx]` as f32 (stored as f32, or fp16 with `flags::U_F16`).
///
/// # Safety
/// `idx` must be inside `U`.
#[inline(always)]
pub(super) unsafe fn load_u(p: &RecurrentParams, f16: bool, idx: usize) -> f32 {
    // SAFETY: the caller guarantees `idx` is inside U, which is read-only for the launch.
    unsafe {
        if f16 {
            f16_to_f32(ld_nc_u16((p.u as *const u16).add(idx)))
        } else {
            ld_nc_f32((p.u as *const f32).add(idx))
        }
    }
}

/// `U[idx]` as stored, not yet converted: the fp16 bits (zero-extended) with `flags::U_F16`,
/// else the f32 bits; [`u_value`] converts them. The step loop loads its inputs before the
/// wait and converts them after it ([`super::row::Inputs`]): a conversion next to its load
/// would hold the warp until the load returns, before its first poll.
///
/// # Safety
/// `idx` must be inside `U`.
#[inline(always)]
pub(super) unsafe fn load_u_bits(p: &RecurrentParams, f16: bool, idx: usize) -> u32 {
    // SAFETY: the caller guarantees `idx` is inside U, which is read-only for the launch.
    unsafe {
        if f16 {
            ld_nc_u16((p.u as *const u16).add(idx)) as u32
        } else {
            ld_nc_u32((p.u as *const u32).add(idx))
        }
    }
}

/// The value of `U` bits from [`load_u_bits`]. The bits pass through [`opaque_u32`] first, so
/// the conversion stays where it is called (after the wait) instead of moving up to the load.
#[inline(always)]
pub(super) fn u_value(bits: u32, f16: bool) -> f32 {
    let bits = opaque_u32(bits);
    if f16 {
        f16_to_f32(bits as u16)
    } else {
        f32::from_bits(bits)
    }
}

/// The [`u_value`]s of four gate rows' bits.
#[inline(always)]
pub(super) fn u_values(bits: [u32; 4], f16: bool) -> [f32; 4] {
    bits.map(|b| u_value(b, f16))
}

/// `[$zero; 4]` with slot `g` set to `$load` (an expression of `g: u32`) for every gate row
/// `g < gates` of layer `$l`: four slots with static indices, unrolled, so the array stays in
/// registers. (A macro, not a function taking a closure: the closure changed the code of every
/// kernel variant and put one in local memory.)
macro_rules! per_gate {
    ($l:expr, $zero:expr, |$g:ident| $load:expr) => {{
        let mut v = [$zero; 4];
        for (g, x) in v.iter_mut().enumerate() {
            if (g as u32) < $l.gates {
                let $g = g as u32;
                *x = $load;
            }
        }
        v
    }};
}

/// `U_t` of the `gates` gate rows of `unit` for batch entry `b` (zeros beyond `gates`).
///
/// # Safety
/// `t ≥ 1`, `unit < H`, `b < B`.
#[inline(always)]
pub(super) unsafe fn load_inputs(p: &RecurrentParams, l: &Layer, t: u32, unit: u32, b: u32) -> [f32; 4] {
    let row0 = ((t - 1) * l.batch + b) * l.gates * l.hidden + unit;
    // SAFETY: U holds T·B·G·H values.
    per_gate!(l, 0.0f32, |g| unsafe { load_u(p, l.u_f16, (row0 + g * l.hidden) as usize) })
}

/// [`load_inputs`] not yet converted ([`load_u_bits`]; zero bits beyond `gates`, the value 0
/// in both formats).
///
/// # Safety
/// As [`load_inputs`].
#[inline(always)]
pub(super) unsafe fn load_input_bits(p: &RecurrentParams, l: &Layer, t: u32, unit: u32, b: u32) -> [u32; 4] {
    let row0 = ((t - 1) * l.batch + b) * l.gates * l.hidden + unit;
    // SAFETY: U holds T·B·G·H values.
    per_gate!(l, 0u32, |g| unsafe { load_u_bits(p, l.u_f16, (row0 + g * l.hidden) as usize) })
}

/// `b_hh` of the `gates` gate rows of `unit` (zeros beyond `gates`).
///
/// # Safety
/// `unit < H`.
#[inline(always)]
pub(super) unsafe fn load_bias(p: &RecurrentParams, l: &Layer, unit: u32) -> [f32; 4] {
    // SAFETY: b_hh holds G·H values.
    per_gate!(l, 0.0f32, |g| unsafe { ld_nc_f32((p.bias_hh as *const f32).add((g * l.hidden + unit) as usize)) })
}

/// Rounds `h_t[unit][b]` to the tagged fp16 value of the launch's step `t`, stages it for publication (local
/// slot `slot`) and writes it to the output.
///
/// # Safety
/// `unit < H`, `slot < units_per_cta`, `b < B`; this thread is the only writer of `(unit, b)`.
#[inline(always)]
pub(super) unsafe fn finish_h(p: &RecurrentParams, l: &Layer, t: u32, unit: u32, slot: u32, b: u32, h: f32) {
    let bits = tag_round(h, f32_to_f16(h), tag_bit(l.first_step.wrapping_add(t)), f16_to_f32);
    // SAFETY: the caller guarantees the indices; the buffers have the documented sizes.
    unsafe {
        st_shared_u16(l.stage_smem + 2 * (slot * l.batch + b), bits);
        st_global_f32((p.h_out as *mut f32).add((((t - 1) * l.batch + b) * l.hidden + unit) as usize), f16_to_f32(bits));
    }
}

/// The cell phase of GRU and LSTM (and of RNN with `flags::SEPARATE_CELL`, and of the dense
/// slab): one thread per (unit, batch) pair of the CTA takes the gate sums (`sums(lu, g, b)`:
/// gate `g` of local unit `lu`, batch entry `b`), adds `b_hh` and `U_t`, applies the cell and
/// finishes `h_t` (LSTM keeps `c` in shared memory and writes it out at the last step).
/// `h_prev(lu, b)` is the unit's previous state. Thread `tid`'s own pair uses its unit
/// (`unit_tid`, loaded once), the inputs loaded before the gather (`inp_tid`) and its bias
/// (`bias_tid`, loaded once).
///
/// # Safety
/// Kernel contract; the gate sums of this step are complete (after a barrier).
#[inline(always)]
pub(super) unsafe fn cell_phase(
    p: &RecurrentParams,
    l: &Layer,
    t: u32,
    unit_tid: u32,
    inp_tid: [f32; 4],
    bias_tid: [f32; 4],
    sums: impl Fn(u32, u32, u32) -> f32,
    h_prev: impl Fn(u32, u32) -> f32,
) {
    let tid = thread_idx_x();
    let units = p.units as *const u32;
    let unit_base = block_idx_x() * l.upc;
    let mut q = tid;
    while q < l.upc * l.batch {
        let (lu, b) = (q / l.batch, q % l.batch);
        // SAFETY: all indices below are inside their buffers (format contract).
        unsafe {
            // Thread `tid`'s own pair has its unit, inputs and bias in registers already: no
            // global load on the step's critical path.
            let u = if q == tid { unit_tid } else { ld_nc_u32(units.add((unit_base + lu) as usize)) };
            if u != NO_UNIT {
                let (inp, bias) = if q == tid { (inp_tid, bias_tid) } else { (load_inputs(p, l, t, u, b), load_bias(p, l, u)) };
                let mut pre = [0.0f32; 4];
                for (g, x) in pre.iter_mut().enumerate() {
                    if (g as u32) < l.gates {
                        *x = sums(lu, g as u32, b) + bias[g];
                    }
                }
                let c_prev = if l.cell == Cell::Lstm { ld_shared_f32(l.c_smem + 4 * q) } else { 0.0 };
                let (h, c) = cell::update(l.cell, pre, inp, h_prev(lu, b), c_prev);
                finish_h(p, l, t, u, lu, b, h);
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
}

/// Publishes this CTA's staged values as the launch's step `t` (sequence step `first_step + t`)
/// to exchange buffer `(first_step + t) % 2`: four values per
/// 8-byte relaxed store, each value's last bit set to the step's tag (already so for computed
/// values; this tags the empty slots, and in the exchange floor republishes the staged values).
///
/// # Safety
/// Kernel contract; the staged values are complete (after a barrier).
#[inline(always)]
pub(super) unsafe fn publish(p: &RecurrentParams, l: &Layer, t: u32) {
    if p.flags & flags::TEST_NEVER_PUBLISH != 0 && block_idx_x() == 0 && t == 1 {
        return;
    }
    let step = l.first_step.wrapping_add(t);
    let pattern = tag_pattern32(step);
    let base = ((step & 1) * l.xvalues + block_idx_x() * l.slots * l.batch) / 2;
    let stores = l.slots * l.batch / VALUES_PER_STORE as u32;
    let mut i = thread_idx_x();
    while i < stores {
        // SAFETY: store `i` covers staged values 4i..4i+4 of this CTA, inside the stage and
        // inside this CTA's share of the exchange buffer (8-byte aligned: S·B is a multiple of 4).
        unsafe {
            let v = ld_shared_v2_u32(l.stage_smem + 8 * i);
            let v = [(v[0] & !TAG_BITS32) | pattern, (v[1] & !TAG_BITS32) | pattern];
            st_relaxed_gpu_v2_u32((p.exchange as *mut u32).add((base + 2 * i) as usize), v);
        }
        i += l.nt;
    }
}

/// The kernel body for list length `N`, batch tile `BT`, the hidden state in f32 (`H32`) or
/// fp16 in shared memory, and the kernel family: `GATED` for GRU/LSTM layers whose rows are laid
/// out as whole units per warp, the cell finished in [`gated_cell`] (`format::gated_kernel`);
/// otherwise RNN cells finished in the row reduction and GRU/LSTM in a separate cell phase,
/// rows one after the other.
///
/// # Safety
/// `p` must satisfy the contract in `format::RecurrentParams` (buffers of the documented sizes,
/// every CTA of the grid co-resident, dynamic shared memory of `format::RecurrentSmem::total`).
#[inline(always)]
pub unsafe fn recurrent<const N: usize, const BT: usize, const H32: bool, const GATED: bool>(p: &RecurrentParams) {
    let tid = thread_idx_x();
    let Some(l) = Layer::new::<BT, H32, GATED>(p) else {
        if tid == 0 {
            // SAFETY: status is valid.
            unsafe { report(p, status::BAD_PARAMS) };
        }
        return;
    };
    let exchange_only = p.flags & flags::EXCHANGE_ONLY != 0;

    // ---- Phase 1: weights into registers (N registers per thread, whole sequence).
    // SAFETY: kernel contract.
    let w = unsafe { load_weights::<N>(p, &l) };
    // SAFETY: kernel contract.
    let row = unsafe { Row::new::<BT, GATED>(p, &l, tid) };
    let rows_here = warp_has_rows::<GATED>(&l, tid);

    // ---- Phase 2: warm start.
    // SAFETY: kernel contract; the hidden state holds the columns and the zero column.
    unsafe { warm_start::<H32>(p, &l, (l.columns + 1) * l.batch) };

    // ---- Phase 3: step loop.
    // A half-open count (`1..=steps` keeps an "exhausted" flag and its branches in the loop).
    let mut t = 0;
    while t < l.steps {
        t += 1;
        // Inputs of this thread's first cell, loaded before the wait.
        // SAFETY: kernel contract.
        let inputs = unsafe { row.inputs::<GATED>(p, &l, t, exchange_only) };

        // Gather h_{t-1} from every CTA, then a barrier: h_{t-1} is complete.
        // SAFETY: kernel contract.
        let failed = t >= 2 && unsafe { gather_or_report::<H32>(p, &l, t - 1) };
        // SAFETY: every thread reaches this barrier once per step.
        if unsafe { sync_threads_or(failed) } {
            return;
        }

        if !exchange_only {
            // Multiply: W h for this thread's slot, one batch tile at a time. In the gated
            // family, warps without rows only gather and publish ([`warp_has_rows`]).
            for tile in 0..if rows_here { l.batch / BT as u32 } else { 0 } {
                let acc = if !H32 && l.f16_products {
                    // SAFETY: columns are inside the hidden state, which is fp16.
                    unsafe { multiply_tile_f16::<N, BT, false>(&w, &l, tile) }
                } else {
                    // SAFETY: columns are inside the hidden state.
                    unsafe { multiply_tile::<N, BT, H32, false>(&w, &l, tile) }
                };
                // SAFETY: the whole warp reduces together; kernel contract.
                unsafe { row.finish_tile::<BT, H32, GATED>(p, &l, t, tile, acc, &inputs) };
            }
            if !row.fused() {
                // SAFETY: uniform (`fused` is); kernel contract.
                unsafe { row.cell_phase::<H32, GATED>(p, &l, t, &inputs) };
            }
        }
        // The staged outputs are complete, and nobody reads h_{t-1} any more.
        // SAFETY: uniform barrier; kernel contract.
        unsafe {
            sync_threads();
            publish(p, &l, t);
        }
    }
}

/// Whether thread `tid`'s warp multiplies: in the gated family the first `format::row_threads`
/// threads hold rows, and the planner may launch more, so that every thread polls fewer chunks
/// of the exchange; those warps only gather and publish (their lists are padding whose sums
/// nobody uses). The RNN family always multiplies: skipping there saved at most 0.01 µs per
/// step and its code shape cost the headline layer 0.08 µs (bench/RESULTS.md, session 10).
#[inline(always)]
fn warp_has_rows<const GATED: bool>(l: &Layer, tid: u32) -> bool {
    !GATED || ((tid & !31) as usize) < row_threads(l.upc as usize, l.gates as usize, l.tpr as usize, GATED)
}

/// [`recurrent`] for the shared-weights family: the same phases with each thread's list
/// continued in shared memory — `N` words in registers, then `M = p.shared_words` words loaded
/// once into shared memory at start-up ([`load_shared_weights`]) and read after the register
/// words of every batch tile ([`multiply_tile_shared`], [`multiply_tile_shared_f16`]). The
/// hidden state is fp16. (A body of its own rather than a const parameter of [`recurrent`]:
/// with the parameter, LLVM ordered the last product group of ten register-only variants
/// differently, and their code is meant to stay exactly what was measured.)
///
/// # Safety
/// As [`recurrent`]; besides, the weight buffer holds `N + M` words per thread and the dynamic
/// shared memory `format::RecurrentSmem::with_weights(M, threads_per_cta)` bytes.
#[inline(always)]
pub unsafe fn recurrent_shared<const N: usize, const BT: usize, const GATED: bool>(p: &RecurrentParams) {
    const H32: bool = false;
    let tid = thread_idx_x();
    // The shared words: M a whole number of product groups.
    let Some((l, sl)) = Layer::new::<BT, H32, GATED>(p).and_then(|l| SharedList::new(p, &l).map(|sl| (l, sl))) else {
        if tid == 0 {
            // SAFETY: status is valid.
            unsafe { report(p, status::BAD_PARAMS) };
        }
        return;
    };
    let exchange_only = p.flags & flags::EXCHANGE_ONLY != 0;

    // ---- Phase 1: weights into registers (N registers per thread, whole sequence), then the
    // list's tail into shared memory (M words per thread).
    // SAFETY: kernel contract (the shared-weights family's buffer and window sizes).
    let w = unsafe { load_weights::<N>(p, &l) };
    // SAFETY: as above.
    unsafe { load_shared_weights::<N>(p, &l, &sl) };
    // SAFETY: kernel contract.
    let row = unsafe { Row::new::<BT, GATED>(p, &l, tid) };
    let rows_here = warp_has_rows::<GATED>(&l, tid);

    // ---- Phase 2: warm start.
    // SAFETY: kernel contract; the hidden state holds the columns and the zero column.
    unsafe { warm_start::<H32>(p, &l, (l.columns + 1) * l.batch) };

    // ---- Phase 3: step loop.
    // A half-open count (`1..=steps` keeps an "exhausted" flag and its branches in the loop).
    let mut t = 0;
    while t < l.steps {
        t += 1;
        // Inputs of this thread's first cell, loaded before the wait.
        // SAFETY: kernel contract.
        let inputs = unsafe { row.inputs::<GATED>(p, &l, t, exchange_only) };

        // Gather h_{t-1} from every CTA, then a barrier: h_{t-1} is complete.
        // SAFETY: kernel contract.
        let failed = t >= 2 && unsafe { gather_or_report::<H32>(p, &l, t - 1) };
        // SAFETY: every thread reaches this barrier once per step.
        if unsafe { sync_threads_or(failed) } {
            return;
        }

        if !exchange_only {
            // Multiply: W h for this thread's slot, one batch tile at a time. In the gated
            // family, warps without rows only gather and publish ([`warp_has_rows`]).
            for tile in 0..if rows_here { l.batch / BT as u32 } else { 0 } {
                let acc = if !H32 && l.f16_products {
                    // SAFETY: columns are inside the hidden state, which is fp16.
                    unsafe { multiply_tile_f16::<N, BT, false>(&w, &l, tile) }
                } else {
                    // SAFETY: columns are inside the hidden state.
                    unsafe { multiply_tile::<N, BT, H32, false>(&w, &l, tile) }
                };
                // The list's tail, in shared memory.
                // SAFETY: the shared words were loaded in phase 1; their columns are inside the
                // hidden state, which is fp16.
                let acc = unsafe {
                    if l.f16_products {
                        multiply_tile_shared_f16::<BT>(&l, &sl, tile, acc)
                    } else {
                        multiply_tile_shared::<BT>(&l, &sl, tile, acc)
                    }
                };
                // SAFETY: the whole warp reduces together; kernel contract.
                unsafe { row.finish_tile::<BT, H32, GATED>(p, &l, t, tile, acc, &inputs) };
            }
            if !row.fused() {
                // SAFETY: uniform (`fused` is); kernel contract.
                unsafe { row.cell_phase::<H32, GATED>(p, &l, t, &inputs) };
            }
        }
        // The staged outputs are complete, and nobody reads h_{t-1} any more.
        // SAFETY: uniform barrier; kernel contract.
        unsafe {
            sync_threads();
            publish(p, &l, t);
        }
    }
}

/// The entry points: for every list length and batch tile (`format::with_list_lengths`,
/// `format::with_batch_tiles`), both hidden-state types and both families, a kernel named by
/// `format::recurrent_kernel_name` (checked at compile time) that runs [`recurrent`].
macro_rules! entries {
    ([$($n:literal),*]) => {
        $( crate::with_batch_tiles!(entries, $n); )*
    };
    ($n:literal, [$($bt:literal),*]) => {
        $(
            entries!(@one $n, $bt, false, false, "sprnn_recurrent_n", "_h16");
            entries!(@one $n, $bt, true, false, "sprnn_recurrent_n", "_h32");
            entries!(@one $n, $bt, false, true, "sprnn_gated_n", "_h16");
            entries!(@one $n, $bt, true, true, "sprnn_gated_n", "_h32");
        )*
    };
    (@one $n:literal, $bt:literal, $h32:literal, $gated:literal, $family:literal, $h:literal) => {
        const _: () = {
            /// Recurrent kernel entry point (family, list length, batch tile and hidden-state
            /// type in the name).
            ///
            /// # Safety
            /// See [`recurrent`].
            #[export_name = concat!($family, $n, "_bt", $bt, $h)]
            pub unsafe extern "ptx-kernel" fn entry(p: RecurrentParams) {
                const _: () = assert!(crate::format::str_eq(
                    crate::format::recurrent_kernel_name($n, $bt, $h32, $gated),
                    concat!($family, $n, "_bt", $bt, $h)
                ));
                // SAFETY: forwarded contract.
                unsafe { recurrent::<$n, $bt, $h32, $gated>(&p) }
            }
        };
    };
}

crate::with_list_lengths!(entries);

/// The shared-weights entry points: for every register-list length of
/// `format::with_shared_list_lengths` and batch tile, both families, the fp16 hidden state, a
/// kernel named by `format::shared_kernel_name` (checked at compile time) that runs
/// [`recurrent_shared`] with `M = p.shared_words` list entries in shared memory.
macro_rules! shared_entries {
    ([$($n:literal),*]) => {
        $( crate::with_batch_tiles!(shared_entries, $n); )*
    };
    ($n:literal, [$($bt:literal),*]) => {
        $(
            shared_entries!(@one $n, $bt, false, "sprnn_sw_recurrent_n");
            shared_entries!(@one $n, $bt, true, "sprnn_sw_gated_n");
        )*
    };
    (@one $n:literal, $bt:literal, $gated:literal, $family:literal) => {
        const _: () = {
            /// Shared-weights recurrent kernel entry point (family, register-list length and
            /// batch tile in the name; `M` in the parameters).
            ///
            /// # Safety
            /// See [`recurrent`]; the weight buffer holds `N + M` words per thread and the
            /// dynamic shared memory `format::RecurrentSmem::with_weights`.
            #[export_name = concat!($family, $n, "_bt", $bt)]
            pub unsafe extern "ptx-kernel" fn entry(p: RecurrentParams) {
                const _: () = assert!(crate::format::str_eq(
                    crate::format::shared_kernel_name($n, $bt, $gated),
                    concat!($family, $n, "_bt", $bt)
                ));
                // SAFETY: forwarded contract.
                unsafe { recurrent_shared::<$n, $bt, $gated>(&p) }
            }
        };
    };
}

crate::with_shared_list_lengths!(shared_entries);
