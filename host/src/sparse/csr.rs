//! The CSR matrix: validated construction, accessors, dense conversion, products and statistics.

use super::{check_dense, SparseError};

/// A validated CSR matrix with `f32` values.
///
/// The fields are visible to the rest of `sparse` only, for the generators that build a matrix
/// well formed by construction; everywhere else a `Csr` comes from a validating constructor.
#[derive(Debug, Clone, PartialEq)]
pub struct Csr {
    pub(super) rows: usize,
    pub(super) cols: usize,
    pub(super) row_ptr: Vec<usize>,
    pub(super) col_idx: Vec<u32>,
    pub(super) values: Vec<f32>,
}

/// Summary statistics of a [`Csr`] matrix (see [`Csr::stats`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CsrStats {
    /// Stored nonzeros.
    pub nnz: usize,
    /// `nnz / (rows * cols)`; 0 for an empty shape.
    pub density: f64,
    /// Fewest nonzeros in a row (0 when there are no rows).
    pub min_row_nnz: usize,
    /// Most nonzeros in a row (0 when there are no rows).
    pub max_row_nnz: usize,
    /// Mean nonzeros per row (0 when there are no rows).
    pub mean_row_nnz: f64,
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
        // `rows + 1` is checked: `rows = usize::MAX` would wrap to 0 and match an empty row_ptr.
        if rows.checked_add(1) != Some(row_ptr.len()) {
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
        // Monotonicity first: with it (and the two ends checked above) every row's range lies
        // within the entries, so the loop below cannot index past them.
        if let Some(r) = (0..rows).find(|&r| row_ptr[r + 1] < row_ptr[r]) {
            let (a, b) = (row_ptr[r], row_ptr[r + 1]);
            return Err(SparseError::RowPtr { what: format!("decreases at row {r} ({a} then {b})") });
        }
        for r in 0..rows {
            let (a, b) = (row_ptr[r], row_ptr[r + 1]);
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

    /// Converts a row-major dense matrix, dropping exact zeros (`+0.0` and `-0.0`).
    ///
    /// Errors: [`SparseError::DenseShape`] when `data.len() != rows * cols`,
    /// [`SparseError::NonFinite`] for a NaN or infinite value.
    pub fn from_dense(data: &[f32], rows: usize, cols: usize) -> Result<Self, SparseError> {
        check_dense(data, rows, cols)?;
        let mut row_ptr = Vec::with_capacity(rows + 1);
        row_ptr.push(0);
        let mut col_idx = Vec::new();
        let mut values = Vec::new();
        for r in 0..rows {
            for c in 0..cols {
                let v = data[r * cols + c];
                if v != 0.0 {
                    col_idx.push(c as u32);
                    values.push(v);
                }
            }
            row_ptr.push(col_idx.len());
        }
        Csr::new(rows, cols, row_ptr, col_idx, values)
    }

    /// Row-major dense copy (`rows * cols` values, zeros where nothing is stored).
    pub fn to_dense(&self) -> Vec<f32> {
        let mut out = vec![0.0f32; self.rows * self.cols];
        for r in 0..self.rows {
            let (cols, vals) = self.row(r);
            for (&c, &v) in cols.iter().zip(vals) {
                out[r * self.cols + c as usize] = v;
            }
        }
        out
    }

    /// Nonzero counts and density.
    pub fn stats(&self) -> CsrStats {
        let counts = (0..self.rows).map(|r| self.row_nnz(r));
        let full = self.rows as f64 * self.cols as f64;
        CsrStats {
            nnz: self.nnz(),
            density: if full > 0.0 { self.nnz() as f64 / full } else { 0.0 },
            min_row_nnz: counts.clone().min().unwrap_or(0),
            max_row_nnz: counts.max().unwrap_or(0),
            mean_row_nnz: if self.rows > 0 { self.nnz() as f64 / self.rows as f64 } else { 0.0 },
        }
    }

    /// `y = self · x`, each row accumulated in `f64` in storage order and rounded to `f32` once.
    ///
    /// # Panics
    /// When `x.len() != self.cols()`.
    pub fn spmv(&self, x: &[f32]) -> Vec<f32> {
        self.spmv_f64(x).into_iter().map(|v| v as f32).collect()
    }

    /// `y = self · x` entirely in `f64` (used by the `f64` reference).
    ///
    /// # Panics
    /// When `x.len() != self.cols()`.
    pub fn spmv_f64<X: Copy + Into<f64>>(&self, x: &[X]) -> Vec<f64> {
        assert_eq!(x.len(), self.cols, "Csr::spmv: x has {} values, matrix has {} columns", x.len(), self.cols);
        (0..self.rows)
            .map(|r| {
                let (cols, vals) = self.row(r);
                cols.iter().zip(vals).map(|(&c, &v)| v as f64 * x[c as usize].into()).sum()
            })
            .collect()
    }

    /// `y = selfᵀ · x` in `f64`.
    fn spmv_transposed_f64(&self, x: &[f64]) -> Vec<f64> {
        let mut y = vec![0.0f64; self.cols];
        for (r, &xr) in x.iter().enumerate().take(self.rows) {
            let (cols, vals) = self.row(r);
            for (&c, &v) in cols.iter().zip(vals) {
                y[c as usize] += v as f64 * xr;
            }
        }
        y
    }

    /// Rows `first..first + count` as a matrix of their own.
    ///
    /// # Panics
    /// When the range goes past the last row.
    pub fn row_block(&self, first: usize, count: usize) -> Csr {
        assert!(first + count <= self.rows, "row_block {first}+{count} past {} rows", self.rows);
        let (a, b) = (self.row_ptr[first], self.row_ptr[first + count]);
        Csr {
            rows: count,
            cols: self.cols,
            row_ptr: self.row_ptr[first..=first + count].iter().map(|p| p - a).collect(),
            col_idx: self.col_idx[a..b].to_vec(),
            values: self.values[a..b].to_vec(),
        }
    }

    /// The same pattern with every value replaced by `f(value)`; errors with
    /// [`SparseError::NonFinite`] if `f` produces NaN or an infinity. Zeros produced by `f` stay
    /// stored (the pattern is unchanged).
    pub fn map_values(&self, f: impl Fn(f32) -> f32) -> Result<Csr, SparseError> {
        Csr::new(self.rows, self.cols, self.row_ptr.clone(), self.col_idx.clone(), self.values.iter().map(|&v| f(v)).collect())
    }

    /// Estimate of the largest singular value `σ_max` by `iterations` steps of power iteration on
    /// `AᵀA` from a fixed start vector (see [`random_recurrent`](super::random_recurrent)). The estimate approaches
    /// `σ_max` from below.
    pub fn largest_singular_value_estimate(&self, iterations: usize) -> f64 {
        if self.nnz() == 0 || self.cols == 0 {
            return 0.0;
        }
        // A fixed, non-symmetric start so no singular vector is missed by construction.
        let mut v: Vec<f64> = (0..self.cols).map(|i| 1.0 + ((i * 7919) % 101) as f64 / 101.0).collect();
        let mut sigma = 0.0;
        for _ in 0..iterations.max(1) {
            let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
            if norm == 0.0 {
                return 0.0;
            }
            v.iter_mut().for_each(|x| *x /= norm);
            let av = self.spmv_f64(&v);
            sigma = av.iter().map(|x| x * x).sum::<f64>().sqrt();
            v = self.spmv_transposed_f64(&av);
        }
        sigma
    }
}
