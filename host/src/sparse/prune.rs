//! Magnitude pruning: a dense matrix to a CSR matrix of a target density.

use super::{check_dense, check_density, Csr, SparseError};

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

/// Orders candidate entries for pruning: larger magnitude first, then smaller index.
fn keep_order(a: (f32, usize), b: (f32, usize)) -> std::cmp::Ordering {
    b.0.abs().total_cmp(&a.0.abs()).then(a.1.cmp(&b.1))
}

impl Csr {
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
