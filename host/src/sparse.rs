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
}

// ---------------------------------------------------------------------------------------------
// Conversions, pruning, random recurrent matrices, statistics and products.
// ---------------------------------------------------------------------------------------------

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// How [`Csr::from_dense_pruned`] and [`Csr::pruned`] choose the entries they keep.
///
/// Both keep entries by magnitude, largest first. Ties are broken deterministically: among entries
/// of equal magnitude, the one with the smaller row-major index (row first, then column) is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PruneMode {
    /// One threshold over the whole matrix: the `round(density * rows * cols)` entries of largest
    /// magnitude are kept, wherever they are. Rows may end up with very different counts.
    Global,
    /// Each row keeps its own `round(density * cols)` entries of largest magnitude, so every row
    /// has the same number of nonzeros (the layout of the GPU kernel balances best this way).
    PerRow,
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
                for r in 0..d.rows {
                    for c in 0..d.cols {
                        f(r, c, d.data[r * d.cols + c]);
                    }
                }
            }
            Matrix::Sparse(s) => {
                for r in 0..s.rows {
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

/// Orders candidate entries for pruning: larger magnitude first, then smaller index.
fn keep_order(a: (f32, usize), b: (f32, usize)) -> std::cmp::Ordering {
    b.0.abs().total_cmp(&a.0.abs()).then(a.1.cmp(&b.1))
}

impl Csr {
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

    /// Magnitude-prunes a row-major dense matrix to `density` (see [`PruneMode`]).
    ///
    /// The number of kept entries is `round(density * rows * cols)` ([`PruneMode::Global`]) or
    /// `round(density * cols)` per row ([`PruneMode::PerRow`]); kept entries that are exactly zero
    /// are not stored, so a matrix with many zeros can end up below the target.
    ///
    /// Errors: [`SparseError::Density`] unless `0 <= density <= 1`, plus those of
    /// [`Csr::from_dense`].
    pub fn from_dense_pruned(
        data: &[f32],
        rows: usize,
        cols: usize,
        density: f64,
        mode: PruneMode,
    ) -> Result<Self, SparseError> {
        check_dense(data, rows, cols)?;
        check_density(density)?;
        // Non-finite values must be reported even where they would be pruned away.
        if let Some(i) = data.iter().position(|v| !v.is_finite()) {
            return Err(SparseError::NonFinite { row: i / cols, col: i % cols, value: data[i] });
        }
        let mut keep = vec![false; data.len()];
        match mode {
            PruneMode::Global => {
                let k = (density * data.len() as f64).round() as usize;
                select_largest(data, 0, k, &mut keep);
            }
            PruneMode::PerRow => {
                let k = (density * cols as f64).round() as usize;
                for r in 0..rows {
                    let row = &data[r * cols..(r + 1) * cols];
                    select_largest(row, r * cols, k, &mut keep[r * cols..(r + 1) * cols]);
                }
            }
        }
        let masked: Vec<f32> =
            data.iter().zip(&keep).map(|(&v, &k)| if k { v } else { 0.0 }).collect();
        Csr::from_dense(&masked, rows, cols)
    }

    /// This matrix magnitude-pruned to `density` of its full shape (see
    /// [`Csr::from_dense_pruned`]); entries not stored count as zeros and are never kept.
    pub fn pruned(&self, density: f64, mode: PruneMode) -> Result<Self, SparseError> {
        Csr::from_dense_pruned(&self.to_dense(), self.rows, self.cols, density, mode)
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
    /// `AᵀA` from a fixed start vector (see [`random_recurrent`]). The estimate approaches
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

/// Marks in `keep` the `k` entries of `vals` with the largest magnitude (ties: lower index), using
/// selection (linear expected time), not a full sort.
fn select_largest(vals: &[f32], base: usize, k: usize, keep: &mut [bool]) {
    let k = k.min(vals.len());
    if k == 0 {
        return;
    }
    let mut idx: Vec<(f32, usize)> = vals.iter().enumerate().map(|(i, &v)| (v, base + i)).collect();
    if k < idx.len() {
        idx.select_nth_unstable_by(k - 1, |&a, &b| keep_order(a, b));
    }
    for &(_, i) in &idx[..k] {
        keep[i - base] = true;
    }
}

/// Rows [`random_recurrent`] draws from one generator stream (its unit of parallel work).
const RANDOM_CHUNK_ROWS: usize = 256;

/// Fills `cols_out` and `vals_out` (a whole number of rows of `k` nonzeros each) with rows of `k`
/// distinct sorted columns, drawn uniformly (Floyd's algorithm on a bitmap, over the complement
/// when `k > cols / 2`), and values uniform in `[-1, 1)`.
fn random_rows(rng: &mut ChaCha8Rng, cols: usize, k: usize, cols_out: &mut [u32], vals_out: &mut [f32]) {
    let words = cols.div_ceil(64);
    let mut bits = vec![0u64; words];
    let complement = k > cols / 2;
    let draw = if complement { cols - k } else { k };
    for (row_cols, row_vals) in cols_out.chunks_mut(k).zip(vals_out.chunks_mut(k)) {
        bits.iter_mut().for_each(|w| *w = 0);
        for j in (cols - draw)..cols {
            let t = rng.gen_range(0..=j as u32) as usize;
            let (w, b) = (t / 64, t % 64);
            if bits[w] >> b & 1 == 1 {
                bits[j / 64] |= 1 << (j % 64);
            } else {
                bits[w] |= 1 << b;
            }
        }
        let mut n = 0;
        for (w, &word) in bits.iter().enumerate() {
            let mut word = if complement { !word } else { word };
            if w == words - 1 && cols % 64 != 0 {
                word &= (1u64 << (cols % 64)) - 1;
            }
            while word != 0 {
                row_cols[n] = (w * 64 + word.trailing_zeros() as usize) as u32;
                n += 1;
                word &= word - 1;
            }
        }
        debug_assert_eq!(n, k);
        row_vals.iter_mut().for_each(|v| *v = rng.gen_range(-1.0f32..1.0));
    }
}

/// Power-iteration steps [`random_recurrent`] spends on each gate block.
pub const RADIUS_POWER_ITERATIONS: usize = 24;

/// Safety factor on the power-iteration estimate of `σ_max` in [`random_recurrent`]. The estimate
/// approaches `σ_max` from below; for square random sparse blocks of this generator's kind
/// (H = 64, 256, 1152, 2304; d = 0.01, 0.1, 0.3, 0.5) the exact `σ_max` (LAPACK SVD in numpy) was at
/// most 1.023 times the [`RADIUS_POWER_ITERATIONS`]-step estimate, and the spectral radius was
/// 0.40–0.57 times `σ_max`. The margin leaves room for larger H, where convergence is slower.
pub const RADIUS_MARGIN: f64 = 1.06;

/// A seeded random pruned recurrent matrix, scaled so that the recurrence is stable.
///
/// `rows` must be a multiple of `cols` (`rows = G * H`, `cols = H`: PyTorch's stacked
/// `weight_hh`). Every row gets exactly `round(density * cols)` nonzeros at columns drawn
/// uniformly without replacement (Floyd's algorithm on a per-row bitmap: time O(nnz + rows *
/// cols / 64)), values uniform in `[-1, 1)`, from a ChaCha8 generator seeded with `seed` (same
/// seed, same matrix, on every platform and for any number of threads: each block of 256 rows
/// uses its own stream of the generator, and blocks are generated in parallel).
///
/// Each `H × H` gate block is then scaled so that its **largest singular value** is at most
/// `radius`; the spectral radius is never larger than the largest singular value, so every block's
/// spectral radius is `≤ radius` too, and for `radius < 1` the map `h ↦ W_g h` is a contraction
/// in the 2-norm. σ_max is estimated by [`RADIUS_POWER_ITERATIONS`] steps of power iteration on
/// `W_gᵀ W_g` (blocks on separate threads) times [`RADIUS_MARGIN`]. For random sparse blocks
/// the spectral radius comes out near `σ_max / 2`.
///
/// Errors: [`SparseError::Density`] unless `0 <= density <= 1`; [`SparseError::NotGateBlocks`]
/// unless `rows` is a multiple of `cols` (or both are 0); [`SparseError::Radius`] unless `radius`
/// is finite and positive; [`SparseError::TooManyColumns`] when `cols > u32::MAX`.
pub fn random_recurrent(
    seed: u64,
    rows: usize,
    cols: usize,
    density: f64,
    radius: f64,
) -> Result<Csr, SparseError> {
    check_density(density)?;
    if !(radius.is_finite() && radius > 0.0) {
        return Err(SparseError::Radius { radius });
    }
    if cols == 0 && rows != 0 || cols != 0 && rows % cols != 0 {
        return Err(SparseError::NotGateBlocks { rows, cols });
    }
    if cols > u32::MAX as usize {
        return Err(SparseError::TooManyColumns { cols });
    }
    let k = (density * cols as f64).round() as usize;
    let nnz = rows.checked_mul(k).ok_or(SparseError::TooManyColumns { cols })?;
    let row_ptr: Vec<usize> = (0..=rows).map(|r| r * k).collect();
    let mut col_idx = vec![0u32; nnz];
    let mut values = vec![0.0f32; nnz];
    // Rows are generated in chunks of RANDOM_CHUNK_ROWS, chunk c from stream c of the seeded
    // generator, so the result does not depend on how many threads share the chunks.
    let chunk = RANDOM_CHUNK_ROWS * k;
    if chunk > 0 {
        let work: Vec<(usize, &mut [u32], &mut [f32])> = col_idx
            .chunks_mut(chunk)
            .zip(values.chunks_mut(chunk))
            .enumerate()
            .map(|(c, (ci, v))| (c, ci, v))
            .collect();
        let work = std::sync::Mutex::new(work);
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(rows.div_ceil(RANDOM_CHUNK_ROWS));
        std::thread::scope(|s| {
            for _ in 0..threads {
                s.spawn(|| loop {
                    let item = work.lock().expect("work queue poisoned").pop();
                    let Some((c, ci, v)) = item else { break };
                    let mut rng = ChaCha8Rng::seed_from_u64(seed);
                    rng.set_stream(c as u64);
                    random_rows(&mut rng, cols, k, ci, v);
                });
            }
        });
    }
    let mut m = Csr { rows, cols, row_ptr, col_idx, values };
    if cols == 0 {
        return Ok(m);
    }
    let blocks = rows / cols;
    let sigmas: Vec<f64> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..blocks)
            .map(|g| {
                let block = m.row_block(g * cols, cols);
                s.spawn(move || block.largest_singular_value_estimate(RADIUS_POWER_ITERATIONS))
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("power iteration thread panicked")).collect()
    });
    for (g, sigma) in sigmas.into_iter().enumerate() {
        if sigma > 0.0 {
            let scale = (radius / (sigma * RADIUS_MARGIN)) as f32;
            let (a, b) = (m.row_ptr[g * cols], m.row_ptr[(g + 1) * cols]);
            m.values[a..b].iter_mut().for_each(|v| *v *= scale);
        }
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Measures how far the power-iteration estimate is from a long run (run with `--ignored
    /// --nocapture` in release); the numbers justify [`RADIUS_MARGIN`].
    #[test]
    #[ignore]
    fn random_recurrent_timing() {
        let t = std::time::Instant::now();
        let m = random_recurrent(7, 4 * 5760, 5760, 0.5, 0.9).unwrap();
        println!("H=5760 G=4 d=0.5: {} nonzeros in {:.2?}", m.nnz(), t.elapsed());
        let t = std::time::Instant::now();
        let b = m.row_block(0, 5760);
        let _ = b.largest_singular_value_estimate(RADIUS_POWER_ITERATIONS);
        println!("one block's power iteration: {:.2?}", t.elapsed());
    }

    #[test]
    #[ignore]
    fn power_iteration_convergence() {
        for &h in &[64usize, 256, 1152, 2304] {
            for &d in &[0.01, 0.1, 0.3, 0.5] {
                let m = random_recurrent(h as u64, h, h, d, 1.0).unwrap();
                let short = m.largest_singular_value_estimate(RADIUS_POWER_ITERATIONS);
                let long = m.largest_singular_value_estimate(400);
                println!("H={h} d={d}: {} steps {short:.5}, 400 steps {long:.5}, ratio {:.5}", RADIUS_POWER_ITERATIONS, long / short);
            }
        }
    }
}
