//! The library's random sparse-matrix generator: seeded, deterministic on every platform.
//!
//! Every matrix comes from a ChaCha8 generator seeded with the caller's `seed`, and every row is
//! drawn the same way: its columns first, then one value uniform in `[-1, 1)` per column, in
//! column order ([`draw_values`]). What differs is which columns a row keeps:
//!
//! - [`random_recurrent`]: exactly `round(density * cols)` columns per row, uniformly without
//!   replacement, then every `H × H` gate block scaled so the recurrence is stable. The recurrent
//!   matrices of examples, benchmarks and the CLI's `--random` layers.
//! - [`random_uniform`]: each entry kept with probability `density`, independently (unstructured
//!   pruning; row lengths vary).
//! - [`random_block_sparse`]: dense `block × block` tiles kept with probability `density` (block
//!   pruning; neighbouring rows share their columns).
//! - [`random_skewed`]: Bernoulli rows whose densities are skewed, a few far longer than the mean.
//!
//! The last three are the layout code's synthetic patterns (`layout::synthetic`). Same seed and
//! arguments, same matrix, bit for bit: tests pin their expectations to these matrices.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{check_density, Csr, SparseError};

/// Fills `out` with values uniform in `[-1, 1)`, in order: the values of one row, drawn after its
/// columns.
fn draw_values(rng: &mut ChaCha8Rng, out: &mut [f32]) {
    out.iter_mut().for_each(|v| *v = rng.gen_range(-1.0f32..1.0));
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
        draw_values(rng, row_vals);
    }
}

/// Power-iteration steps [`random_recurrent`] spends on each gate block.
pub const RADIUS_POWER_ITERATIONS: usize = 24;

/// Safety factor on the power-iteration estimate of `σ_max` in [`random_recurrent`]. The estimate
/// approaches `σ_max` from below; for square random sparse blocks of this generator's kind
/// (H = 64, 256, 1152, 2304; d = 0.01, 0.1, 0.3, 0.5) the exact `σ_max` (LAPACK SVD in numpy) was at
/// most 1.023 times the [`RADIUS_POWER_ITERATIONS`]-step estimate, and the spectral radius was
/// 0.40–0.57 times `σ_max`. The margin leaves room for larger H, where convergence is slower. The
/// `power_iteration_convergence` example prints the estimate against a 400-step run.
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

// ---------------------------------------------------------------------------------------------
// Synthetic patterns
// ---------------------------------------------------------------------------------------------

/// A `rows × cols` matrix whose row `r` keeps the columns `row_cols(r, rng)` (sorted and
/// deduplicated here), each with a value from [`draw_values`], all from one generator seeded with
/// `seed`.
fn from_rows(rows: usize, cols: usize, mut row_cols: impl FnMut(usize, &mut ChaCha8Rng) -> Vec<u32>, seed: u64) -> Csr {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut row_ptr = vec![0usize];
    let (mut col_idx, mut values) = (Vec::new(), Vec::new());
    for r in 0..rows {
        let mut cs = row_cols(r, &mut rng);
        cs.sort_unstable();
        cs.dedup();
        let first = values.len();
        values.resize(first + cs.len(), 0.0);
        draw_values(&mut rng, &mut values[first..]);
        col_idx.extend(cs);
        row_ptr.push(col_idx.len());
    }
    Csr::new(rows, cols, row_ptr, col_idx, values).expect("well-formed by construction")
}

/// A `rows × cols` matrix with each entry kept with probability `density`, independently
/// (unstructured magnitude pruning), from `seed`. A density outside `[0, 1]` is clamped to it.
pub fn random_uniform(rows: usize, cols: usize, density: f64, seed: u64) -> Csr {
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

/// A `rows × cols` matrix of `block × block` tiles, each kept with probability `density` (block
/// pruning), from `seed`; kept tiles are dense, so neighbouring rows share their columns. A density
/// outside `[0, 1]` is clamped to it.
pub fn random_block_sparse(rows: usize, cols: usize, density: f64, block: usize, seed: u64) -> Csr {
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

/// A `rows × cols` matrix with skewed row lengths, from `seed`: row `r`'s density is `density · 4 · x³` with `x` uniform in `[0, 1)`
/// (mean `density`, clamped to 1), so a few rows are far longer than the mean.
pub fn random_skewed(rows: usize, cols: usize, density: f64, seed: u64) -> Csr {
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

