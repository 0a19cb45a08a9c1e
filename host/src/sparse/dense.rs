//! A dense row-major matrix.

use super::SparseError;

/// A dense row-major `f32` matrix (used for input weights `W_ih`, which are usually not pruned).
#[derive(Debug, Clone, PartialEq)]
pub struct Dense {
    rows: usize,
    cols: usize,
    data: Vec<f32>,
}

impl Dense {
    /// Wraps row-major `data` of a `rows` × `cols` matrix.
    ///
    /// Errors with [`SparseError::DenseShape`] when `data.len() != rows * cols`. Values are not
    /// checked (a dense input matrix may legitimately be tested with NaN propagation).
    pub fn new(rows: usize, cols: usize, data: Vec<f32>) -> Result<Self, SparseError> {
        if rows.checked_mul(cols) != Some(data.len()) {
            return Err(SparseError::DenseShape { rows, cols, len: data.len() });
        }
        Ok(Dense { rows, cols, data })
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Number of columns.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Row-major values (`rows * cols`).
    pub fn data(&self) -> &[f32] {
        &self.data
    }

    /// Consumes the matrix and returns its row-major values.
    pub fn into_data(self) -> Vec<f32> {
        self.data
    }

    /// `y = self · x`, accumulated in `f64` in column order and rounded to `f32` once.
    ///
    /// # Panics
    /// When `x.len() != self.cols()`.
    pub fn matvec(&self, x: &[f32]) -> Vec<f32> {
        assert_eq!(x.len(), self.cols, "Dense::matvec: x has {} values, matrix has {} columns", x.len(), self.cols);
        (0..self.rows)
            .map(|r| {
                let row = &self.data[r * self.cols..(r + 1) * self.cols];
                row.iter().zip(x).map(|(&w, &v)| w as f64 * v as f64).sum::<f64>() as f32
            })
            .collect()
    }
}
