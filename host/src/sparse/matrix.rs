//! A weight matrix of either kind, dense or sparse.

use super::{Csr, Dense};

/// A weight matrix that is either dense or sparse (input weights `W_ih` may be either).
#[derive(Debug, Clone, PartialEq)]
pub enum Matrix {
    /// Every entry stored.
    Dense(Dense),
    /// Only nonzeros stored.
    Sparse(Csr),
}

impl Matrix {
    /// Number of rows.
    pub fn rows(&self) -> usize {
        match self {
            Matrix::Dense(d) => d.rows(),
            Matrix::Sparse(s) => s.rows(),
        }
    }

    /// Number of columns.
    pub fn cols(&self) -> usize {
        match self {
            Matrix::Dense(d) => d.cols(),
            Matrix::Sparse(s) => s.cols(),
        }
    }

    /// Row-major dense values (`rows * cols`; zeros where a sparse matrix stores nothing).
    pub fn to_dense(&self) -> Vec<f32> {
        match self {
            Matrix::Dense(d) => d.data().to_vec(),
            Matrix::Sparse(s) => s.to_dense(),
        }
    }

    /// `y = self · x` with `f64` accumulation (see [`Dense::matvec`] and [`Csr::spmv`]).
    ///
    /// # Panics
    /// When `x.len() != self.cols()`.
    pub fn matvec(&self, x: &[f32]) -> Vec<f32> {
        match self {
            Matrix::Dense(d) => d.matvec(x),
            Matrix::Sparse(s) => s.spmv(x),
        }
    }

    /// Calls `f(row, col, value)` for every stored entry, row by row, columns increasing
    /// (every entry for a dense matrix, only nonzeros for a sparse one).
    pub fn for_each_entry(&self, mut f: impl FnMut(usize, usize, f32)) {
        match self {
            Matrix::Dense(d) => {
                for r in 0..d.rows() {
                    for c in 0..d.cols() {
                        f(r, c, d.data()[r * d.cols() + c]);
                    }
                }
            }
            Matrix::Sparse(s) => {
                for r in 0..s.rows() {
                    let (cols, vals) = s.row(r);
                    for (&c, &v) in cols.iter().zip(vals) {
                        f(r, c as usize, v);
                    }
                }
            }
        }
    }
}

impl From<Dense> for Matrix {
    fn from(d: Dense) -> Self {
        Matrix::Dense(d)
    }
}

impl From<Csr> for Matrix {
    fn from(s: Csr) -> Self {
        Matrix::Sparse(s)
    }
}
