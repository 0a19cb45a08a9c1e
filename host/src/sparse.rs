//! Sparse matrices in compressed sparse row (CSR) form.
//!
//! [`Csr`] holds a pruned recurrent matrix `W_hh` (`G*H` rows × `H` columns) with `f32` values.
//! Constructors validate their input, so every `Csr` in the program is well formed: column
//! indices in range and strictly increasing within a row, `row_ptr` monotone, values finite.

use thiserror::Error;

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
}

/// A validated CSR matrix with `f32` values.
#[derive(Debug, Clone, PartialEq)]
pub struct Csr {
    rows: usize,
    cols: usize,
    row_ptr: Vec<usize>,
    col_idx: Vec<u32>,
    values: Vec<f32>,
}

impl Csr {
    /// Builds a CSR matrix from its parts, checking every invariant (see [`SparseError`]).
    pub fn new(
        rows: usize,
        cols: usize,
        row_ptr: Vec<usize>,
        col_idx: Vec<u32>,
        values: Vec<f32>,
    ) -> Result<Self, SparseError> {
        if row_ptr.len() != rows + 1 {
            return Err(SparseError::RowPtr {
                what: format!("{} entries for {} rows (need rows + 1)", row_ptr.len(), rows),
            });
        }
        if col_idx.len() != values.len() {
            return Err(SparseError::LengthMismatch { cols: col_idx.len(), values: values.len() });
        }
        if row_ptr[0] != 0 {
            return Err(SparseError::RowPtr { what: format!("starts at {}, not 0", row_ptr[0]) });
        }
        if row_ptr[rows] != col_idx.len() {
            return Err(SparseError::RowPtr {
                what: format!("ends at {} but there are {} nonzeros", row_ptr[rows], col_idx.len()),
            });
        }
        for r in 0..rows {
            let (a, b) = (row_ptr[r], row_ptr[r + 1]);
            if b < a {
                return Err(SparseError::RowPtr { what: format!("decreases at row {r} ({a} then {b})") });
            }
            let mut prev: Option<usize> = None;
            for i in a..b {
                let c = col_idx[i] as usize;
                if c >= cols {
                    return Err(SparseError::ColumnOutOfRange { row: r, col: c, cols });
                }
                if let Some(p) = prev {
                    if c <= p {
                        return Err(SparseError::Unsorted { row: r, prev: p, col: c });
                    }
                }
                prev = Some(c);
                if !values[i].is_finite() {
                    return Err(SparseError::NonFinite { row: r, col: c, value: values[i] });
                }
            }
        }
        Ok(Csr { rows, cols, row_ptr, col_idx, values })
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Number of columns.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Number of stored nonzeros.
    pub fn nnz(&self) -> usize {
        self.values.len()
    }

    /// Row pointer (`rows + 1` entries).
    pub fn row_ptr(&self) -> &[usize] {
        &self.row_ptr
    }

    /// Column indices of all nonzeros, row by row.
    pub fn col_idx(&self) -> &[u32] {
        &self.col_idx
    }

    /// Values of all nonzeros, row by row.
    pub fn values(&self) -> &[f32] {
        &self.values
    }

    /// Column indices and values of row `r`.
    pub fn row(&self, r: usize) -> (&[u32], &[f32]) {
        let (a, b) = (self.row_ptr[r], self.row_ptr[r + 1]);
        (&self.col_idx[a..b], &self.values[a..b])
    }

    /// Number of nonzeros in row `r`.
    pub fn row_nnz(&self, r: usize) -> usize {
        self.row_ptr[r + 1] - self.row_ptr[r]
    }
}
