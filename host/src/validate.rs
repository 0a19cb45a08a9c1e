//! The checks the GPU layer and the CPU reference share, in one place, so both refuse the same
//! inputs with the same error.
//!
//! - [`layer`]: a recurrent layer's sizes and weights — `H ≥ 1`, `H` within the kernel's 16-bit
//!   column indices, `W_hh` `G·H × H` for the cell, a batch of at least 1 that fits the kernel's
//!   32-bit parameter, every weight within the fp16 range the kernel stores it in. Refusals are
//!   [`PlanError`]s, exactly as [`crate::layout::plan`] gives them.
//! - [`finite`]: every value of an input (`U`, `x`, `b_hh`, `b_ih`, `h0`, `c0`) is finite: a NaN
//!   or an infinity would otherwise spread through the whole sequence.
//!
//! [`crate::SparseRecurrentLayer::new`] and every entry point of [`crate::reference`] call these
//! first.

use half::f16;

use crate::layout::PlanError;
use crate::sparse::Csr;
use crate::Cell;
use sprnn_kernels::format::MAX_HIDDEN;

/// An input value that is not finite: `name[index]` (flat index) is `value`.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
#[error("invalid {name}: {}", crate::layout::contract::not_finite_problem(*index, value))]
pub struct NotFinite {
    /// The argument (`"u"`, `"x"`, `"b_hh"`, `"b_ih"`, `"h0"`, `"c0"`).
    pub name: &'static str,
    /// Flat index of the first value that is not finite.
    pub index: usize,
    /// The value (NaN or ±infinity).
    pub value: f32,
}

/// Checks a recurrent layer's sizes and weights for `cell` and batch `batch`; returns `H`.
pub fn layer(cell: Cell, w_hh: &Csr, batch: usize) -> Result<usize, PlanError> {
    let hidden = w_hh.cols();
    let gates = cell.gates();
    if hidden == 0 {
        return Err(PlanError::EmptyHidden);
    }
    if hidden > MAX_HIDDEN {
        return Err(PlanError::HiddenTooLarge { hidden, max: MAX_HIDDEN });
    }
    if w_hh.rows() != gates * hidden {
        return Err(PlanError::Shape { cell, rows: w_hh.rows(), cols: hidden, expected_rows: gates * hidden });
    }
    if batch == 0 {
        return Err(PlanError::ZeroBatch);
    }
    if batch > u32::MAX as usize {
        return Err(PlanError::BadOption { option: "batch", value: batch, allowed: format!("at most {} (32-bit kernel parameter)", u32::MAX) });
    }
    if let Some(i) = w_hh.values().iter().position(|&v| f16::from_f32(v).is_infinite()) {
        let row = w_hh.row_ptr().partition_point(|&p| p <= i) - 1;
        return Err(PlanError::ValueOutOfRange { row, col: w_hh.col_idx()[i] as usize, value: w_hh.values()[i] });
    }
    Ok(hidden)
}

/// Checks that every value of input `name` is finite.
pub fn finite(name: &'static str, values: &[f32]) -> Result<(), NotFinite> {
    match crate::layout::contract::first_not_finite(values.iter().copied()) {
        None => Ok(()),
        Some((index, value)) => Err(NotFinite { name, index, value }),
    }
}
