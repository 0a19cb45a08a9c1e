//! A thread's row, shared by the grid kernel ([`super::recurrent`]) and the cluster kernel
//! ([`super::cluster`]): which gate row of which unit the thread's list belongs to, how the
//! row's lanes add up their sums, who finishes the cell, and what each thread keeps in registers
//! for that over the whole sequence. The two kernels differ only in how `h` reaches shared
//! memory and leaves it; after the gather's barrier each runs the same tile loop of products
//! and hands every tile's sums to [`Row::finish_tile`]. (Moving that loop here too changed
//! ptxas's code for 37 variants, GRU and LSTM at batch tiles 1 and 2 among them, so it stays
//! in the kernels until it can be measured.)
//!
//! Per step the kernel calls [`Row::inputs`] before its wait (the `U_t` of the thread's first
//! cell, so no global load sits on the critical path after the gather), [`Row::finish_tile`]
//! after each batch tile's product, and [`Row::cell_phase`] once after the tiles when the cell
//! is not fused.

use crate::device::*;
use crate::format::{flags, row_of_slot, scatter_entry, RecurrentParams, NO_UNIT};

use super::cell;
use super::recurrent::{
    butterfly, cell_phase, finish_h, gated_cell, load_bias, load_h_elem, load_input_bits, load_inputs, load_u, reduce_scatter, u_values, GatedLane, Layer,
};

/// A thread's row and its part in the reduction and the cell, computed once (a few registers
/// for the whole sequence: the unit, `b_hh` and the flags below).
pub(super) struct Row {
    /// Row slot of the thread (`tid / TPR`).
    slot: u32,
    /// Lane of the thread within its row.
    lane_in_row: u32,
    /// Lane 0 of a row that writes its sums for the separate cell phase.
    writes_sum: bool,
    /// Row of the sums array this row writes (separate cell phase).
    sums_row: u32,
    /// The cell finished in the row reduction (RNN by the lanes of its row, GRU and LSTM where a
    /// unit's gate rows share a warp, [`gated_cell`]), with no shared-memory round trip and no
    /// barrier; otherwise [`Row::cell_phase`].
    fused: bool,
    /// RNN rows with `TPR ≥ BT`: the reduce-scatter butterfly, lane `lane · BT / TPR` of each
    /// `TPR / BT` ending with one entry's sum, the leading one finishing it.
    scatter: bool,
    scatter_first: u32,
    scatter_leads: bool,
    /// The batch entry of tile 0 whose input this thread loads before the wait, and whether it
    /// finishes one.
    my_entry: u32,
    my_finishes: bool,
    /// The gated family's fused cell ([`GatedLane`]).
    gated_row: GatedLane,
    /// RNN: the row's unit and its `b_hh`.
    my_unit: u32,
    my_bias: f32,
    /// The separate cell phase: thread `tid`'s own (unit, batch) pair, its unit and `b_hh`.
    cell_unit: u32,
    cell_bias: [f32; 4],
}

/// The inputs of a thread's first cell of a step (`U_t`), loaded before the wait. The gated
/// family's (`gated`, `cell`) stay as loaded (`recurrent::load_u_bits`) and are converted where
/// the cell uses them, after the wait: converted next to their loads, they held every warp at
/// the loop top until the loads returned, before its first poll. The RNN row's single input
/// (`my`) is converted as it is loaded (the same code as measured before; deferring it made no
/// difference there), and so are the RNN family's separate-cell inputs (`cell`), so that the
/// RNN family's code stays what was measured.
pub(super) struct Inputs {
    my: f32,
    /// The separate cell phase's: the bits of the converted values in the RNN family, the
    /// loaded bits in the gated family.
    cell: [u32; 4],
    gated: [u32; 4],
}

impl Row {
    /// Thread `tid`'s row in layer `l` of family `GATED` at batch tile `BT`.
    ///
    /// # Safety
    /// Kernel contract (`format::RecurrentParams`: the unit table and `b_hh` have their
    /// documented sizes).
    #[inline(always)]
    pub(super) unsafe fn new<const BT: usize, const GATED: bool>(p: &RecurrentParams, l: &Layer, tid: u32) -> Row {
        let units = p.units as *const u32;
        let unit_base = block_idx_x() * l.upc;
        let cells = l.upc * l.batch;
        let slot = tid / l.tpr;
        let lane_in_row = tid & (l.tpr - 1);
        // This thread's row: gate `row_gate` of local unit `row_lu` (`format::row_of_slot`; for
        // RNN the slot itself), and where its sums go in the separate cell phase.
        let (row_lu, row_gate) = if GATED { row_of_slot(slot as usize, l.gates as usize, l.tpr as usize, true) } else { (slot as usize, 0) };
        let writes_sum = lane_in_row == 0 && if GATED { row_lu < l.upc as usize } else { slot < l.upc * l.gates };
        let sums_row = if GATED { (row_lu as u32).wrapping_mul(l.gates).wrapping_add(row_gate as u32) } else { slot };
        let fused = p.flags & flags::SEPARATE_CELL == 0 && (GATED || l.gates == 1);
        let scatter = !GATED && fused && l.tpr >= BT as u32;
        let (scatter_first, scatter_leads) = scatter_entry(lane_in_row, BT as u32, l.tpr);
        let (my_entry, my_finishes) = if scatter { (scatter_first, scatter_leads) } else { (lane_in_row, lane_in_row < BT as u32) };
        // SAFETY: kernel contract.
        let gated_row = if GATED && fused { unsafe { GatedLane::new::<BT>(p, l, tid, row_lu, row_gate) } } else { GatedLane::none() };
        let my_unit = if !GATED && slot < l.upc {
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
        let cell_unit = if !fused && tid < cells {
            // SAFETY: the unit table holds grid * upc entries.
            unsafe { ld_nc_u32(units.add((unit_base + tid / l.batch) as usize)) }
        } else {
            NO_UNIT
        };
        // SAFETY: cell_unit < H when it is a unit.
        let cell_bias = if cell_unit != NO_UNIT { unsafe { load_bias(p, l, cell_unit) } } else { [0.0; 4] };
        Row { slot, lane_in_row, writes_sum, sums_row, fused, scatter, scatter_first, scatter_leads, my_entry, my_finishes, gated_row, my_unit, my_bias, cell_unit, cell_bias }
    }

    /// Whether the cell is finished in the row reduction (else [`Row::cell_phase`] runs).
    #[inline(always)]
    pub(super) fn fused(&self) -> bool {
        self.fused
    }

    /// `U_t` of this thread's first cell, loaded before the wait (zeros in the exchange floor).
    ///
    /// # Safety
    /// Kernel contract; `1 ≤ t ≤ steps`.
    #[inline(always)]
    pub(super) unsafe fn inputs<const GATED: bool>(&self, p: &RecurrentParams, l: &Layer, t: u32, exchange_only: bool) -> Inputs {
        let mut inputs = Inputs { my: 0.0, cell: [0; 4], gated: [0; 4] };
        if !exchange_only {
            if self.gated_row.unit != NO_UNIT {
                // SAFETY: the row's unit < H, its first entry < BT ≤ B.
                inputs.gated = unsafe { load_input_bits(p, l, t, self.gated_row.unit, self.gated_row.first) };
            }
            if self.fused && self.my_unit != NO_UNIT && self.my_finishes {
                // SAFETY: U holds T*B*H values (G = 1), my_unit < H, my_entry < BT ≤ B.
                inputs.my = unsafe { load_u(p, l.u_f16, (((t - 1) * l.batch + self.my_entry) * l.hidden + self.my_unit) as usize) };
            }
            if self.cell_unit != NO_UNIT {
                if GATED {
                    // SAFETY: cell_unit < H, tid % B < B.
                    inputs.cell = unsafe { load_input_bits(p, l, t, self.cell_unit, thread_idx_x() % l.batch) };
                } else {
                    // SAFETY: cell_unit < H, tid % B < B.
                    inputs.cell = unsafe { load_inputs(p, l, t, self.cell_unit, thread_idx_x() % l.batch) }.map(f32::to_bits);
                }
            }
        }
        inputs
    }

    /// The row's lanes add up batch tile `tile`'s sums (`acc`, this thread's part) and, where
    /// the cell is fused, finish it; otherwise lane 0 writes the row's sums for the cell phase.
    ///
    /// # Safety
    /// Kernel contract; the whole warp calls this together.
    #[inline(always)]
    pub(super) unsafe fn finish_tile<const BT: usize, const H32: bool, const GATED: bool>(&self, p: &RecurrentParams, l: &Layer, t: u32, tile: u32, acc: [f32; BT], inputs: &Inputs) {
        if GATED && self.fused {
            // SAFETY: the whole warp reduces and runs the cell together; kernel contract.
            unsafe { gated_cell::<BT, H32>(p, l, t, tile, &self.gated_row, reduce_scatter::<BT>(acc, l.tpr, self.lane_in_row)[0], u_values(inputs.gated, l.u_f16)) };
            return;
        }
        if self.scatter {
            // SAFETY: the whole warp reduces together.
            let a = unsafe { reduce_scatter::<BT>(acc, l.tpr, self.lane_in_row)[0] };
            if self.my_unit != NO_UNIT && self.scatter_leads {
                let b = tile * BT as u32 + self.scatter_first;
                // SAFETY: U holds T*B*H values (G = 1) and my_unit < H.
                let inp = if tile == 0 { inputs.my } else { unsafe { load_u(p, l.u_f16, (((t - 1) * l.batch + b) * l.hidden + self.my_unit) as usize) } };
                let h = cell::rnn(l.cell, inp + (a + self.my_bias));
                // SAFETY: (my_unit, b) is this row's output; slot < upc.
                unsafe { finish_h(p, l, t, self.my_unit, self.slot, b, h) };
            }
            return;
        }
        // SAFETY: the whole warp reduces together.
        let acc = unsafe { butterfly::<BT>(acc, l.tpr) };
        if self.fused && self.my_unit != NO_UNIT {
            // Lane `j` of the row (and `j + TPR`, … when TPR < BT) finishes batch entry `j` of
            // the tile: the lanes run one cell together instead of BT divergent ones.
            let mut j = self.lane_in_row;
            while j < BT as u32 {
                let mut a = acc[0];
                for (jj, v) in acc.iter().enumerate().skip(1) {
                    if jj as u32 == j {
                        a = *v;
                    }
                }
                let b = tile * BT as u32 + j;
                let inp = if tile == 0 && j == self.lane_in_row {
                    inputs.my
                } else {
                    // SAFETY: U holds T*B*H values (G = 1) and my_unit < H.
                    unsafe { load_u(p, l.u_f16, (((t - 1) * l.batch + b) * l.hidden + self.my_unit) as usize) }
                };
                let h = cell::rnn(l.cell, inp + (a + self.my_bias));
                // SAFETY: (my_unit, b) is this row's output; slot < upc.
                unsafe { finish_h(p, l, t, self.my_unit, self.slot, b, h) };
                j += l.tpr;
            }
        } else if self.writes_sum {
            for (j, a) in acc.iter().enumerate() {
                // SAFETY: the row's unit < upc, gate < G: inside the sums array.
                unsafe { st_shared_f32(l.acc_smem + 4 * (self.sums_row * l.batch + tile * BT as u32 + j as u32), *a) };
            }
        }
    }

    /// The separate cell phase (the cell not fused): a barrier, then one thread per (unit,
    /// batch) pair finishes the cell from the sums [`Row::finish_tile`] wrote.
    ///
    /// # Safety
    /// Kernel contract; every thread of the CTA calls this together (`fused` is uniform).
    #[inline(always)]
    pub(super) unsafe fn cell_phase<const H32: bool, const GATED: bool>(&self, p: &RecurrentParams, l: &Layer, t: u32, inputs: &Inputs) {
        let cta_col = block_idx_x() * l.slots;
        // SAFETY: uniform barrier; the sums are complete after it. The closures get the cell
        // phase's indices (lu < upc, g < G, b < B), inside the sums array and the hidden state.
        unsafe {
            sync_threads();
            cell_phase(
                p,
                l,
                t,
                self.cell_unit,
                if GATED { u_values(inputs.cell, l.u_f16) } else { inputs.cell.map(f32::from_bits) },
                self.cell_bias,
                |lu, g, b| ld_shared_f32(l.acc_smem + 4 * ((lu * l.gates + g) * l.batch + b)),
                |lu, b| load_h_elem::<H32>(l, (cta_col + lu) * l.batch + b),
            );
        }
    }
}
