//! Partition: which hidden units each CTA owns.
//!
//! All `G` gate rows of a unit go to the same CTA (the cell needs them together). Units are
//! assigned by **capped LPT** (longest processing time first): sorted by their nonzeros (sum over
//! the `G` rows) in decreasing order, each goes to the CTA with the fewest nonzeros among those
//! holding fewer than `units_per_cta` units. Like plain LPT, the most loaded CTA ends within one
//! unit of the mean: `max ≤ mean + max_unit_nnz` (tested).

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use sprnn_kernels::format::NO_UNIT;

use crate::sparse::Csr;

/// The unit table and the nonzeros each CTA received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Partition {
    /// `[grid][units_per_cta]` hidden units, [`NO_UNIT`] for unused entries; within a CTA the
    /// units are in increasing order, unused entries last.
    pub units: Vec<u32>,
    /// Nonzeros (all `G` rows) of each CTA.
    pub cta_nnz: Vec<usize>,
}

/// Nonzeros of each hidden unit: the sum over its `gates` rows `gate * H + unit`.
pub fn unit_nnz(w_hh: &Csr, gates: usize) -> Vec<usize> {
    let h = w_hh.cols();
    (0..h).map(|u| (0..gates).map(|g| w_hh.row_nnz(g * h + u)).sum()).collect()
}

/// Assigns the `unit_nnz.len()` units to `grid` CTAs of at most `units_per_cta` units each, by
/// capped LPT. Needs `grid * units_per_cta >= unit_nnz.len()`.
pub fn partition(unit_nnz: &[usize], grid: usize, units_per_cta: usize) -> Partition {
    let h = unit_nnz.len();
    assert!(grid * units_per_cta >= h, "{grid} CTAs x {units_per_cta} units < {h}");
    let mut order: Vec<u32> = (0..h as u32).collect();
    // Decreasing nonzeros, ties by unit index: deterministic.
    order.sort_by_key(|&u| (Reverse(unit_nnz[u as usize]), u));
    let mut members: Vec<Vec<u32>> = vec![Vec::with_capacity(units_per_cta); grid];
    let mut load = vec![0usize; grid];
    let mut heap: BinaryHeap<Reverse<(usize, usize)>> = (0..grid).map(|c| Reverse((0, c))).collect();
    for &u in &order {
        let Reverse((l, c)) = heap.pop().expect("capacity checked above");
        members[c].push(u);
        load[c] = l + unit_nnz[u as usize];
        if members[c].len() < units_per_cta {
            heap.push(Reverse((load[c], c)));
        }
    }
    let mut units = vec![NO_UNIT; grid * units_per_cta];
    for (c, m) in members.iter_mut().enumerate() {
        m.sort_unstable();
        units[c * units_per_cta..c * units_per_cta + m.len()].copy_from_slice(m);
    }
    Partition { units, cta_nnz: load }
}
