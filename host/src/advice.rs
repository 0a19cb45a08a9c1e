//! Refusals a user can act on: the planner's refusal with its advice re-checked against every
//! budget, and the refusals decidable from sizes alone, before any weight exists.
//!
//! [`layout::check_fit`] decides from a layer's sizes and row lengths ([`RowStats`]) what
//! [`layout::plan`] would decide, in microseconds. This module builds on it:
//!
//! - [`precheck`]: the refusal of a layer of hidden size `H` whose rows hold `row_nnz` nonzeros,
//!   before it is generated or loaded (bounded memory, microseconds; `H = 1 000 000` is refused
//!   at once instead of after minutes of generation).
//! - [`Refusal`]: a [`PlanError`] with a message that names no sentinel value and advice (a
//!   smaller batch, a lower density) that [`check_fit`](layout::check_fit) was asked about and
//!   accepted: every budget — registers, shared memory, threads, the CTA shape — is counted,
//!   not only the one that refused.

use std::fmt;

use crate::layout::{self, DeviceInfo, PlanError, PlanOptions, RowStats};
use crate::Cell;

/// A planner refusal, with advice re-checked against every budget.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    /// The planner's refusal.
    pub error: PlanError,
    /// The largest batch size below the one asked for at which this layer fits (checked), if any.
    pub fitting_batch: Option<usize>,
    /// The most nonzeros per row at which a layer of this cell, hidden size and batch fits
    /// (checked, rows of equal length), if fewer than now; `Some(0)`: none fits at all.
    pub fitting_row_nnz: Option<usize>,
    /// Hidden size, for the density in the advice.
    hidden: usize,
}

/// Longest linear search below a candidate batch size that turned out not to fit.
const BATCH_SCAN: usize = 64;

impl Refusal {
    /// The refusal of `check_fit(stats, cell, batch, device, opts)`, with checked advice; `None`
    /// when the layer fits.
    pub fn check(stats: &RowStats, cell: Cell, batch: usize, device: &DeviceInfo, opts: &PlanOptions) -> Option<Refusal> {
        let error = layout::check_fit(stats, cell, batch, device, opts).err()?;
        Some(Refusal::explain(error, stats, cell, batch, device, opts))
    }

    /// `error` (a refusal of a layer with statistics `stats`) with checked advice.
    pub fn explain(error: PlanError, stats: &RowStats, cell: Cell, batch: usize, device: &DeviceInfo, opts: &PlanOptions) -> Refusal {
        let budget_refusal = matches!(error, PlanError::DoesNotFit { .. } | PlanError::SharedMemory { .. });
        let fits = |b: usize, s: &RowStats| layout::check_fit(s, cell, b, device, opts).is_ok();
        let fitting_batch = if budget_refusal && batch > 1 { largest_fitting(1, batch - 1, |b| fits(b, stats)) } else { None };
        let fitting_row_nnz = match error {
            PlanError::DoesNotFit { .. } if stats.max_row_nnz > 0 => {
                let with_rows = |r: usize| RowStats::uniform(cell, stats.hidden, r);
                Some(largest_fitting(0, stats.max_row_nnz - 1, |r| fits(batch, &with_rows(r))).unwrap_or(0))
            }
            _ => None,
        };
        Refusal { error, fitting_batch, fitting_row_nnz, hidden: stats.hidden }
    }

    /// The density of [`fitting_row_nnz`](Refusal::fitting_row_nnz) (nonzeros per row / H).
    pub fn fitting_density(&self) -> Option<f64> {
        self.fitting_row_nnz.map(|r| r as f64 / self.hidden.max(1) as f64)
    }
}

/// The largest `x` in `lo..=hi` with `fits(x)`, searching as if `fits` were monotone (true up to
/// a point) and confirming the answer: a candidate that does not fit is followed by a short
/// linear scan downwards. `None` when nothing found fits.
fn largest_fitting(lo: usize, hi: usize, fits: impl Fn(usize) -> bool) -> Option<usize> {
    if lo > hi {
        return None;
    }
    let (mut a, mut b) = (lo, hi);
    if fits(b) {
        return Some(b);
    }
    // Invariant: b does not fit; find the boundary.
    while a < b {
        let mid = a + (b - a) / 2;
        if fits(mid) {
            a = mid + 1;
        } else {
            b = mid;
        }
    }
    // `a` is the first candidate that does not fit; the one below it should.
    (a.saturating_sub(BATCH_SCAN).max(lo)..a).rev().find(|&x| fits(x))
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.error {
            PlanError::DoesNotFit { device, need_regs, have_regs, need_threads, have_threads, max_row_nnz, density, .. } => {
                write!(f, "does not fit on the {device}: ")?;
                // A need the planner could not compute (no shape holds the longest row at all).
                if *need_regs == usize::MAX || *need_regs as u64 == u64::MAX {
                    write!(f, "no launch shape holds a row of {max_row_nnz} nonzeros")?;
                } else {
                    let over = need_regs.saturating_sub(*have_regs);
                    write!(f, "the best launch shape needs {need_regs} registers per SM, {have_regs} available")?;
                    if over > 0 {
                        write!(f, " ({over} too many, {:.0}% over)", 100.0 * (*need_regs as f64 / *have_regs as f64 - 1.0))?;
                    }
                    write!(f, " with {need_threads} threads per CTA (at most {have_threads})")?;
                }
                write!(f, "; ")?;
                match self.fitting_row_nnz {
                    Some(0) | None => write!(f, "no density fits this hidden size with this cell and batch")?,
                    Some(r) => write!(
                        f,
                        "the longest row has {max_row_nnz} nonzeros, rows of at most {r} would fit (density <= {:.4}, now {density:.4})",
                        r as f64 / self.hidden.max(1) as f64
                    )?,
                }
                match self.fitting_batch {
                    Some(b) => write!(f, ", or batch <= {b} at this density"),
                    None => Ok(()),
                }
            }
            PlanError::SharedMemory { need_bytes, have_bytes, batch, .. } => {
                write!(f, "shared memory: {need_bytes} bytes per CTA needed for batch {batch}, {have_bytes} available ({} too many); ", need_bytes.saturating_sub(*have_bytes))?;
                match self.fitting_batch {
                    Some(b) => write!(f, "batch <= {b} fits"),
                    None => write!(f, "no batch size fits this layer"),
                }
            }
            PlanError::Shape { cell, rows, cols, expected_rows } => {
                write!(f, "W_hh is {rows} x {cols}, but a {} layer of hidden size {cols} needs {expected_rows} x {cols}", cell.name())
            }
            e => write!(f, "{e}"),
        }
    }
}

/// The refusal of a layer decidable before its weights exist: hidden size `hidden`, every row
/// of `W_hh` with `row_nnz` nonzeros (a random layer of density `d` has `round(d·H)`; pass 0
/// when the row lengths are not known yet: then only the checks that need no row length can
/// refuse), batch `batch`, for `device`. `None` when nothing decidable from sizes refuses it.
///
/// Bounded memory and microseconds, whatever the sizes.
pub fn precheck(cell: Cell, hidden: usize, row_nnz: usize, batch: usize, device: &DeviceInfo, opts: &PlanOptions) -> Option<Refusal> {
    let stats = RowStats::uniform(cell, hidden, row_nnz);
    let refusal = Refusal::check(&stats, cell, batch, device, opts)?;
    // With unknown row lengths, only the refusals that do not depend on them count.
    if row_nnz == 0 && matches!(refusal.error, PlanError::DoesNotFit { .. } | PlanError::RowTooLong { .. }) {
        return None;
    }
    Some(refusal)
}

/// The refusals decidable from the hidden size alone, on any device: `H = 0` and `H` above the
/// kernel's 16-bit column indices.
pub fn check_hidden(hidden: usize) -> Result<(), PlanError> {
    if hidden == 0 {
        return Err(PlanError::EmptyHidden);
    }
    if hidden > sprnn_kernels::format::MAX_HIDDEN {
        return Err(PlanError::HiddenTooLarge { hidden, max: sprnn_kernels::format::MAX_HIDDEN });
    }
    Ok(())
}
