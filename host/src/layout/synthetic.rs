//! Synthetic pruned matrices, for tests and for measuring layouts (deterministic per seed).

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::sparse::Csr;

fn from_rows(rows: usize, cols: usize, mut row_cols: impl FnMut(usize, &mut ChaCha8Rng) -> Vec<u32>, seed: u64) -> Csr {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut row_ptr = vec![0usize];
    let (mut col_idx, mut values) = (Vec::new(), Vec::new());
    for r in 0..rows {
        let mut cs = row_cols(r, &mut rng);
        cs.sort_unstable();
        cs.dedup();
        for c in cs {
            col_idx.push(c);
            values.push(rng.gen_range(-1.0f32..1.0));
        }
        row_ptr.push(col_idx.len());
    }
    Csr::new(rows, cols, row_ptr, col_idx, values).expect("well-formed by construction")
}

/// Each entry kept with probability `density`, independently (unstructured magnitude pruning).
pub fn uniform(rows: usize, cols: usize, density: f64, seed: u64) -> Csr {
    from_rows(rows, cols, |_, rng| (0..cols as u32).filter(|_| rng.gen_bool(density.clamp(0.0, 1.0))).collect(), seed)
}

/// `block × block` tiles kept with probability `density` (block pruning); kept tiles are dense,
/// so neighbouring rows share their columns.
pub fn block_sparse(rows: usize, cols: usize, density: f64, block: usize, seed: u64) -> Csr {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5eed);
    let (br, bc) = (rows.div_ceil(block), cols.div_ceil(block));
    let keep: Vec<bool> = (0..br * bc).map(|_| rng.gen_bool(density.clamp(0.0, 1.0))).collect();
    from_rows(
        rows,
        cols,
        |r, _| {
            (0..bc)
                .filter(|&j| keep[(r / block) * bc + j])
                .flat_map(|j| (j * block..((j + 1) * block).min(cols)).map(|c| c as u32))
                .collect()
        },
        seed,
    )
}

/// Skewed row lengths: row `r`'s density is `density · 4 · x³` with `x` uniform in `[0, 1)`
/// (mean `density`, clamped to 1), so a few rows are far longer than the mean.
pub fn skewed(rows: usize, cols: usize, density: f64, seed: u64) -> Csr {
    from_rows(
        rows,
        cols,
        |_, rng| {
            let x: f64 = rng.gen();
            let d = (density * 4.0 * x * x * x).clamp(0.0, 1.0);
            (0..cols as u32).filter(|_| rng.gen_bool(d)).collect()
        },
        seed,
    )
}
