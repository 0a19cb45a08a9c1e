//! Sparse matrices in compressed sparse row (CSR) form, and the dense and either-kind matrices
//! that weights come in.
//!
//! [`Csr`] holds a pruned recurrent matrix `W_hh` (`G*H` rows × `H` columns) with `f32` values.
//! Constructors validate their input, so every `Csr` in the program is well formed: column
//! indices in range and strictly increasing within a row, `row_ptr` monotone, values finite.
//!
//! The module is one file per idea:
//! - `csr`: [`Csr`] itself (construction, conversions, products, statistics) and [`CsrStats`];
//! - `dense`: [`Dense`], a row-major matrix (input weights `W_ih` are usually not pruned);
//! - `matrix`: [`Matrix`], either of the two;
//! - `prune`: magnitude pruning of a dense matrix ([`Csr::from_dense_pruned`], [`PruneMode`]);
//! - `random`: the library's random sparse-matrix generator ([`random_recurrent`], and the
//!   synthetic patterns [`random_uniform`], [`random_block_sparse`], [`random_skewed`]).
//!
//! Every constructor reports a rejected input as a [`SparseError`].

mod csr;
mod dense;
mod matrix;
mod prune;
mod random;

use thiserror::Error;

pub use csr::{Csr, CsrStats};
pub use dense::Dense;
pub use matrix::Matrix;
pub use prune::PruneMode;
pub use random::{
    random_block_sparse, random_recurrent, random_skewed, random_uniform, RADIUS_MARGIN, RADIUS_POWER_ITERATIONS,
};

/// Why a sparse matrix was rejected.
#[derive(Debug, Clone, PartialEq, Error)]
#[non_exhaustive]
pub enum SparseError {
    /// `row_ptr` does not have `rows + 1` entries, does not start at 0, decreases, or does not end
    /// at the number of nonzeros.
    #[error("malformed row pointer: {what}")]
    RowPtr {
        /// What is wrong.
        what: String,
    },
    /// `col_idx` and `values` have different lengths.
    #[error("{cols} column indices but {values} values")]
    LengthMismatch {
        /// Number of column indices.
        cols: usize,
        /// Number of values.
        values: usize,
    },
    /// A column index is not below the number of columns.
    #[error("row {row}: column index {col} out of range (matrix has {cols} columns)")]
    ColumnOutOfRange {
        /// Row of the offending entry.
        row: usize,
        /// The column index.
        col: usize,
        /// Number of columns.
        cols: usize,
    },
    /// Column indices of a row are not strictly increasing (unsorted or duplicated).
    #[error("row {row}: column indices not strictly increasing ({prev} then {col})")]
    Unsorted {
        /// Row of the offending entry.
        row: usize,
        /// The previous column index.
        prev: usize,
        /// The column index that does not exceed it.
        col: usize,
    },
    /// A value is NaN or infinite.
    #[error("row {row}, column {col}: value {value} is not finite")]
    NonFinite {
        /// Row of the offending entry.
        row: usize,
        /// Column of the offending entry.
        col: usize,
        /// The value.
        value: f32,
    },
    /// A dense matrix's data length is not `rows * cols`.
    #[error("dense data has {len} values, expected {rows} x {cols}")]
    DenseShape {
        /// Rows.
        rows: usize,
        /// Columns.
        cols: usize,
        /// Values given.
        len: usize,
    },
    /// A target density is not a number in `[0, 1]`.
    #[error("density {density} is not in [0, 1]")]
    Density {
        /// The density asked for.
        density: f64,
    },
    /// A spectral-radius bound is not finite and positive.
    #[error("radius {radius} is not a finite positive number")]
    Radius {
        /// The radius asked for.
        radius: f64,
    },
    /// A recurrent matrix's rows are not a whole number of `cols × cols` gate blocks.
    #[error("{rows} rows are not a multiple of {cols} columns (expected G * H rows for H columns)")]
    NotGateBlocks {
        /// Rows asked for.
        rows: usize,
        /// Columns asked for.
        cols: usize,
    },
    /// More columns than a 32-bit column index can address.
    #[error("{cols} columns do not fit 32-bit column indices")]
    TooManyColumns {
        /// Columns asked for.
        cols: usize,
    },
}

/// Checks that `density` is a number in `[0, 1]`.
fn check_density(density: f64) -> Result<(), SparseError> {
    if !(0.0..=1.0).contains(&density) {
        return Err(SparseError::Density { density });
    }
    Ok(())
}

/// Checks the shape of a row-major dense slice.
fn check_dense(data: &[f32], rows: usize, cols: usize) -> Result<(), SparseError> {
    if rows.checked_mul(cols) != Some(data.len()) {
        return Err(SparseError::DenseShape { rows, cols, len: data.len() });
    }
    if cols > u32::MAX as usize {
        return Err(SparseError::TooManyColumns { cols });
    }
    Ok(())
}
