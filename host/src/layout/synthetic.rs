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
    from_rows(rows, cols, |_, rng| bernoulli_cols(cols, density, rng), seed)
}

/// Columns `0..cols` each kept with probability `d`, drawn by geometric gaps (cost ∝ kept).
fn bernoulli_cols(cols: usize, d: f64, rng: &mut ChaCha8Rng) -> Vec<u32> {
    let d = d.clamp(0.0, 1.0);
    if d <= 0.0 {
        return Vec::new();
    }
    if d >= 1.0 {
        return (0..cols as u32).collect();
    }
    let ln_q = (1.0 - d).ln();
    if ln_q >= 0.0 {
        // `d` below f64's resolution next to 1: no column is ever drawn (and the geometric
        // skip below would be -inf, an endless loop).
        return Vec::new();
    }
    let mut out = Vec::with_capacity((cols as f64 * d * 1.2) as usize + 4);
    let mut c = 0f64;
    loop {
        let u: f64 = rng.gen_range(f64::MIN_POSITIVE..1.0);
        c += (u.ln() / ln_q).floor();
        if c >= cols as f64 {
            return out;
        }
        out.push(c as u32);
        c += 1.0;
    }
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
            bernoulli_cols(cols, density * 4.0 * x * x * x, rng)
        },
        seed,
    )
}
