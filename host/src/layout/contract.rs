//! The launch contract of a planned layer: what the arguments of one forward call must satisfy
//! before anything reaches the GPU. That covers:
//! - the step count (at least one, with `T·B·G·H` within the kernel's 32-bit indices);
//! - the lengths of `U`, `h0`, `c0` and the outputs;
//! - finite values;
//! - `c0` only for LSTM.
//!
//! Pure: every check runs without a GPU, so the tests of the argument checks run on CPU-only
//! machines, and [`crate::SparseRecurrentLayer`] calls these same functions in each of its
//! entry points.

use thiserror::Error;

use super::Plan;
use crate::Cell;

/// An argument of a forward call that breaks the contract: which one, and what is wrong with
/// it (value and limit). The GPU entry points return it as `Error::Input`.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("invalid {name}: {problem}")]
pub struct ArgumentError {
    /// The argument (`"steps"`, `"u"`, `"h0"`, `"c0"`, `"output h"`, `"output c"`).
    pub name: &'static str,
    /// What is wrong, with the value and the limit.
    pub problem: String,
}

/// The shape a forward call of a layer must match: its cell, hidden size and batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LaunchContract {
    /// The cell (its gate count sets `U`'s width; only LSTM takes `c0`).
    pub cell: Cell,
    /// Hidden size `H`.
    pub hidden: usize,
    /// Batch size `B`.
    pub batch: usize,
}

/// The kernel indexes `U` (and the outputs) with 32-bit integers.
const INDEX_LIMIT: usize = u32::MAX as usize;

impl LaunchContract {
    /// The contract of a planned layer.
    pub fn of(plan: &Plan) -> LaunchContract {
        LaunchContract { cell: plan.cell(), hidden: plan.hidden(), batch: plan.batch() }
    }

    /// Values of `U` for `steps` steps, `T·B·G·H` (saturating).
    pub fn input_len(&self, steps: usize) -> usize {
        steps.saturating_mul(self.batch * self.cell.gates() * self.hidden)
    }

    /// At least one step, and `T·B·G·H` within the kernel's 32-bit indices (checked: a count
    /// whose product wraps around `usize` must not pass as a small one).
    pub fn check_steps(&self, steps: usize) -> Result<(), ArgumentError> {
        if steps == 0 {
            return Err(ArgumentError { name: "steps", problem: "0; a sequence needs at least one step".into() });
        }
        let per_step = self.batch * self.cell.gates() * self.hidden;
        if steps.checked_mul(per_step).is_none_or(|n| n > INDEX_LIMIT) {
            return Err(ArgumentError {
                name: "steps",
                problem: format!(
                    "{steps} steps make U {steps} x {per_step} values, over the kernel's 32-bit index limit {INDEX_LIMIT}; split the sequence (at most {} steps per call)",
                    INDEX_LIMIT / per_step
                ),
            });
        }
        Ok(())
    }

    /// [`Self::check_steps`], and `u_len` values of `U` for them (`T·B·G·H`).
    pub fn check_input(&self, steps: usize, u_len: usize) -> Result<(), ArgumentError> {
        self.check_steps(steps)?;
        check_len("u", u_len, self.input_len(steps), "T*B*G*H")
    }

    /// Output buffers for `steps` steps: `h` of `T·B·H` values and `c` of `B·H`.
    pub fn check_output(&self, steps: usize, h_len: usize, c_len: usize) -> Result<(), ArgumentError> {
        let bh = self.batch * self.hidden;
        check_len("output h", h_len, steps.saturating_mul(bh), "T*B*H")?;
        check_len("output c", c_len, bh, "B*H")
    }

    /// The initial state: `h0` and `c0` of `B·H` finite values each, `c0` only for LSTM.
    pub fn check_state(&self, h0: Option<&[f32]>, c0: Option<&[f32]>) -> Result<(), ArgumentError> {
        let bh = self.batch * self.hidden;
        if let Some(h0) = h0 {
            check_len("h0", h0.len(), bh, "B*H")?;
            check_finite("h0", h0.iter().copied())?;
        }
        if let Some(c0) = c0 {
            if self.cell != Cell::Lstm {
                return Err(ArgumentError { name: "c0", problem: format!("given for a {} layer; only LSTM has a cell state", self.cell.name()) });
            }
            check_len("c0", c0.len(), bh, "B*H")?;
            check_finite("c0", c0.iter().copied())?;
        }
        Ok(())
    }
}

/// [`ArgumentError`] unless `got == want`; `shape` names the expected shape (`"T*B*H"`).
pub fn check_len(name: &'static str, got: usize, want: usize, shape: &str) -> Result<(), ArgumentError> {
    if got == want {
        Ok(())
    } else {
        Err(ArgumentError { name, problem: format!("{got} values, expected {want} ({shape})") })
    }
}

/// [`ArgumentError`] naming the first value that is NaN or infinite.
pub fn check_finite<V: Into<f64> + Copy + std::fmt::Display>(name: &'static str, values: impl IntoIterator<Item = V>) -> Result<(), ArgumentError> {
    match first_not_finite(values) {
        None => Ok(()),
        Some((index, value)) => Err(ArgumentError { name, problem: not_finite_problem(index, value) }),
    }
}

/// The index and value of the first NaN or infinite value, if any: the one finiteness check of
/// every entry point (`crate::validate::finite` too).
pub fn first_not_finite<V: Into<f64> + Copy>(values: impl IntoIterator<Item = V>) -> Option<(usize, V)> {
    values.into_iter().enumerate().find(|&(_, v)| !v.into().is_finite())
}

/// What is wrong with a value that is not finite, in the words of every entry point.
pub fn not_finite_problem(index: usize, value: impl std::fmt::Display) -> String {
    format!("element {index} is {value} (values must be finite)")
}
