//! Tests of the CPU reference, the sparse-matrix utilities and the weight files
//! (`sprnn::reference`, `sprnn::sparse`, `sprnn::weights`).


use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use safetensors::tensor::{Dtype, SafeTensors};

use sprnn::reference::{
    compare_steps, forward_model, forward_u, forward_u_permuted, forward_x, Precision, Sequences, DEVICE_TOLERANCE,
};
use sprnn::sparse::{random_recurrent, Dense, Matrix, PruneMode};
use sprnn::weights::{DType, LayerWeights, ModelWeights, SaveOptions, Storage, WeightsError};
use sprnn::{Cell, Csr, SparseError};

use crate::common::{f32s, file, fixture, fixture_cell, fixture_floats, i64s, random_vec, rnn_tensors, T};

const CELLS: [Cell; 4] = [Cell::RnnRelu, Cell::RnnTanh, Cell::Gru, Cell::Lstm];

/// Uniform random values in `[-scale, scale)` from their own generator seeded with `seed`.
fn uniform(seed: u64, n: usize, scale: f32) -> Vec<f32> {
    random_vec(&mut ChaCha8Rng::seed_from_u64(seed), n, scale)
}

/// The random layers of the tolerance tests (density 0.3, σ_max ≤ 0.95), one per cell, and
/// their inputs: `(cell, seed, (W_hh, b_hh, U))` with the `i`-th cell's seed `first + i`
/// (`b_hh` from `seed + 1`, `U` from `seed + 2`).
fn tolerance_layers(first: u64, hidden: usize, steps: usize, batch: usize) -> impl Iterator<Item = (Cell, u64, (Csr, Vec<f32>, Vec<f32>))> {
    CELLS.into_iter().enumerate().map(move |(i, cell)| {
        let (g, seed) = (cell.gates(), first + i as u64);
        let w = random_recurrent(seed, g * hidden, hidden, 0.3, 0.95).unwrap();
        let b = uniform(seed + 1, g * hidden, 0.1);
        let u = uniform(seed + 2, steps * batch * g * hidden, 1.0);
        (cell, seed, (w, b, u))
    })
}

// ---------------------------------------------------------------------------------------------
// PyTorch parity (fixtures made by tests/fixtures/make_fixtures.py)
// ---------------------------------------------------------------------------------------------

/// Every fixture with its expected (layers, directions).
const FIXTURES: [(&str, usize, usize); 9] = [
    ("rnn_relu", 1, 1),
    ("rnn_tanh", 1, 1),
    ("gru", 1, 1),
    ("lstm", 1, 1),
    ("gru_bidirectional", 1, 2),
    ("lstm_2layer", 2, 1),
    ("rnn_tanh_2layer_bidirectional", 2, 2),
    ("gru_f16", 1, 1),
    ("lstm_bf16_nobias", 1, 1),
];

fn max_abs_diff(a: &[f32], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(&x, &y)| (x as f64 - y).abs()).fold(0.0, f64::max)
}

#[test]
fn matches_pytorch_on_every_fixture() {
    for (name, layers, dirs) in FIXTURES {
        let bytes = fixture(name);
        let cell = fixture_cell(&bytes);
        let model = ModelWeights::from_safetensors(&bytes, cell).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!((model.num_layers(), model.directions()), (layers, dirs), "{name}");
        let st = SafeTensors::deserialize(&bytes).unwrap();
        let x: Vec<f32> = fixture_floats(&st, "input").iter().map(|&v| v as f32).collect();
        let shape = st.tensor("input").unwrap().shape().to_vec();
        let (steps, batch) = (shape[0], shape[1]);
        let h0: Vec<f32> = fixture_floats(&st, "h0").iter().map(|&v| v as f32).collect();
        let c0: Option<Vec<f32>> = (cell == Cell::Lstm).then(|| fixture_floats(&st, "c0").iter().map(|&v| v as f32).collect());
        let (want_out, want_h) = (fixture_floats(&st, "output"), fixture_floats(&st, "h_n"));
        for (precision, tol) in [(Precision::F64, 1e-6), (Precision::F32, 1e-5), (Precision::DeviceFaithful, 5e-3)] {
            let got = forward_model(&model, Sequences::new(&x, steps, batch).with_state(Some(&h0), c0.as_deref()), precision).unwrap();
            let (eo, eh) = (max_abs_diff(&got.output, &want_out), max_abs_diff(&got.h_n, &want_h));
            assert!(eo <= tol && eh <= tol, "{name} {precision:?}: output off by {eo:.2e}, h_n by {eh:.2e} (tolerance {tol:.0e})");
            if let Some(c_n) = &got.c_n {
                let ec = max_abs_diff(c_n, &fixture_floats(&st, "c_n"));
                assert!(ec <= tol, "{name} {precision:?}: c_n off by {ec:.2e}");
            }
        }
    }
}

#[test]
fn single_layer_forward_x_matches_pytorch() {
    // The one-layer fixtures again, through forward_x and the layer API.
    for name in ["rnn_relu", "rnn_tanh", "gru", "lstm"] {
        let bytes = fixture(name);
        let cell = fixture_cell(&bytes);
        let layer = LayerWeights::from_safetensors(&bytes, cell).unwrap();
        let st = SafeTensors::deserialize(&bytes).unwrap();
        let x: Vec<f32> = fixture_floats(&st, "input").iter().map(|&v| v as f32).collect();
        let shape = st.tensor("input").unwrap().shape().to_vec();
        let h0: Vec<f32> = fixture_floats(&st, "h0").iter().map(|&v| v as f32).collect();
        let c0: Option<Vec<f32>> = (cell == Cell::Lstm).then(|| fixture_floats(&st, "c0").iter().map(|&v| v as f32).collect());
        let out = forward_x(cell, layer.w_ih(), layer.b_ih(), layer.w_hh(), layer.b_hh(), Sequences::new(&x, shape[0], shape[1]).with_state(Some(&h0), c0.as_deref()), Precision::F64)
        .unwrap();
        let e = max_abs_diff(&out.h, &fixture_floats(&st, "output"));
        assert!(e < 1e-6, "{name}: off by {e:.2e}");
        if let Some(c) = out.c {
            assert!(max_abs_diff(&c, &fixture_floats(&st, "c_n")) < 1e-6, "{name}: c_n");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Reference properties and the comparison metric
// ---------------------------------------------------------------------------------------------

#[test]
fn precisions_agree_and_the_permuted_order_stays_within_tolerance() {
    // Small version of the tolerance experiment, every cell: H = 64, T = 48, B = 2, d = 0.3.
    let (hidden, steps, batch) = (64, 48, 2);
    for (cell, seed, (w, b, u)) in tolerance_layers(10, hidden, steps, batch) {
        let h0 = uniform(seed + 3, batch * hidden, 0.5);
        let c0 = (cell == Cell::Lstm).then(|| uniform(seed + 4, batch * hidden, 0.5));
        let run = |p| forward_u(cell, &w, &b, Sequences::new(&u, steps, batch).with_state(Some(&h0), c0.as_deref()), p).unwrap();
        let (f64r, f32r, df) = (run(Precision::F64), run(Precision::F32), run(Precision::DeviceFaithful));
        let e32 = compare_steps(&f32r.h, &f64r.h, steps, batch, hidden);
        assert!(e32.within(1e-5), "{cell:?}: F32 vs F64 {e32:?}");
        let edf = compare_steps(&df.h, &f64r.h, steps, batch, hidden);
        assert!(edf.within(DEVICE_TOLERANCE), "{cell:?}: DF vs F64 {}", edf.worst);
        // fp16 outputs: every DF value is an fp16 value.
        assert!(df.h.iter().all(|&v| half::f16::from_f32(v).to_f32() == v));
        for lanes in [1, 8, 32] {
            let p = forward_u_permuted(cell, &w, &b, Sequences::new(&u, steps, batch).with_state(Some(&h0), c0.as_deref()), Precision::DeviceFaithful, (seed, lanes)).unwrap();
            let e = compare_steps(&p.h, &df.h, steps, batch, hidden);
            assert!(e.within(DEVICE_TOLERANCE), "{cell:?} lanes {lanes}: {e:?}");
        }
        // fp16 group sums (`Products::F16`): against the f64 answer, and in another order
        // against themselves, within the same tolerance.
        let df16 = run(Precision::DeviceFaithfulF16);
        let e16 = compare_steps(&df16.h, &f64r.h, steps, batch, hidden);
        assert!(e16.within(DEVICE_TOLERANCE), "{cell:?}: DF-F16 vs F64 {}", e16.worst);
        assert_ne!(df16.h, df.h, "{cell:?}: the fp16 group sums round differently somewhere");
        for lanes in [1, 8, 32] {
            let p = forward_u_permuted(cell, &w, &b, Sequences::new(&u, steps, batch).with_state(Some(&h0), c0.as_deref()), Precision::DeviceFaithfulF16, (seed, lanes)).unwrap();
            let e = compare_steps(&p.h, &df16.h, steps, batch, hidden);
            assert!(e.within(DEVICE_TOLERANCE), "{cell:?} F16 lanes {lanes}: {e:?}");
        }
        assert_eq!(df.c.is_some(), cell == Cell::Lstm);
    }
}

#[test]
fn compare_steps_judges_each_step_by_its_own_scale() {
    // 3 steps, B = 1, H = 2.
    let want = [1.0, -2.0, /* t1 */ 0.0, 0.0, /* t2 */ 0.5, 0.25];
    let got = [1.0, -2.01, /* t1 */ 0.0, 2e-4, /* t2 */ 0.5, 0.2];
    let e = compare_steps(&got, &want, 3, 1, 2);
    // t0: 0.01 / 2 = 5e-3 (f32 rounding of 2.01 makes it approximate)
    assert!((e.per_step[0] - 5e-3).abs() < 1e-6, "{:?}", e.per_step);
    // t1: the reference is all zeros: scale floor 1e-3, so 2e-4 / 1e-3 = 0.2
    assert!((e.per_step[1] - 0.2).abs() < 1e-6);
    // t2: 0.05 / 0.5 = 0.1
    assert!((e.per_step[2] - 0.1).abs() < 1e-6);
    assert_eq!(e.worst_step, 1);
    assert_eq!(e.worst, e.per_step[1]);
    assert!(!e.within(0.1) && e.within(0.25));
}

#[test]
fn nan_in_the_result_always_fails() {
    let want = [0.5f32, 0.5, 0.5, 0.5];
    let mut got = want;
    got[3] = f32::NAN;
    let e = compare_steps(&got, &want, 2, 1, 2);
    assert_eq!(e.per_step[0], 0.0);
    assert!(e.per_step[1].is_infinite());
    assert_eq!(e.worst_step, 1);
    assert!(!e.within(f64::MAX));
    // An infinity where the reference is finite fails too.
    got[3] = f32::INFINITY;
    assert!(!compare_steps(&got, &want, 2, 1, 2).within(1e30));
    // Zero steps: nothing to compare, passes.
    let e = compare_steps(&[], &[], 0, 4, 4);
    assert_eq!((e.worst, e.worst_step, e.per_step.len()), (0.0, 0, 0));
}

#[test]
#[should_panic(expected = "got has 3 values")]
fn compare_steps_rejects_wrong_lengths() {
    compare_steps(&[0.0; 3], &[0.0; 4], 2, 1, 2);
}

#[test]
fn bidirectional_reverse_direction_reads_the_sequence_backwards() {
    // A bidirectional model whose two directions are identical: the reverse output at step t
    // equals the forward output of the time-reversed input at step T-1-t.
    let (i, h, steps, batch) = (3, 4, 5, 2);
    let w_hh = random_recurrent(1, 3 * h, h, 0.5, 0.9).unwrap();
    let w_ih = Matrix::Dense(Dense::new(3 * h, i, uniform(2, 3 * h * i, 0.5)).unwrap());
    let layer = LayerWeights::new(Cell::Gru, w_ih, w_hh, uniform(3, 3 * h, 0.1), uniform(4, 3 * h, 0.1)).unwrap();
    let model = ModelWeights::new(Cell::Gru, vec![vec![layer.clone(), layer.clone()]]).unwrap();
    let x = uniform(5, steps * batch * i, 1.0);
    let rev: Vec<f32> = (0..steps).rev().flat_map(|t| x[t * batch * i..(t + 1) * batch * i].to_vec()).collect();
    let bi = forward_model(&model, Sequences::new(&x, steps, batch), Precision::F64).unwrap();
    let single = ModelWeights::single(layer);
    let fwd_rev = forward_model(&single, Sequences::new(&rev, steps, batch), Precision::F64).unwrap();
    for t in 0..steps {
        for b in 0..batch {
            let got = &bi.output[(t * batch + b) * 2 * h + h..(t * batch + b) * 2 * h + 2 * h];
            let want = &fwd_rev.output[((steps - 1 - t) * batch + b) * h..((steps - 1 - t) * batch + b + 1) * h];
            assert_eq!(got, want, "t={t} b={b}");
        }
    }
    // h_n of the reverse direction is its state after reading x_0.
    assert_eq!(&bi.h_n[batch * h..], &fwd_rev.h_n[..]);
}

// ---------------------------------------------------------------------------------------------
// Sparse matrices and pruning
// ---------------------------------------------------------------------------------------------

/// A small dense matrix whose entries are often exactly zero and often tie in magnitude.
fn dense_matrix() -> impl Strategy<Value = (usize, usize, Vec<f32>)> {
    (1usize..9, 1usize..9).prop_flat_map(|(r, c)| {
        let value = prop_oneof![
            2 => Just(0.0f32),
            2 => prop::sample::select(vec![-2.0f32, -1.0, 1.0, 2.0, 3.0]),
            5 => -10.0f32..10.0,
        ];
        (Just(r), Just(c), prop::collection::vec(value, r * c))
    })
}

/// Like [`dense_matrix`] without zeros, so pruning can reach its target exactly.
fn nonzero_matrix() -> impl Strategy<Value = (usize, usize, Vec<f32>)> {
    (1usize..9, 1usize..9).prop_flat_map(|(r, c)| {
        let value = prop_oneof![
            prop::sample::select(vec![-2.0f32, -1.0, 1.0, 2.0, 3.0]),
            (0.01f32..10.0, any::<bool>()).prop_map(|(v, neg)| if neg { -v } else { v }),
        ];
        (Just(r), Just(c), prop::collection::vec(value, r * c))
    })
}

/// Checks that `kept` is the `|kept|` largest-magnitude entries with ties to the lower index,
/// within `group` (flat indices).
fn assert_keeps_largest(data: &[f32], group: &[usize], kept: &[bool]) {
    for &i in group {
        for &j in group {
            if kept[i] && !kept[j] {
                let (a, b) = (data[i].abs(), data[j].abs());
                assert!(a > b || (a == b && i < j), "kept {i} ({}) but dropped {j} ({})", data[i], data[j]);
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn dense_to_csr_to_dense_loses_nothing((rows, cols, data) in dense_matrix()) {
        let m = Csr::from_dense(&data, rows, cols).unwrap();
        prop_assert_eq!(m.to_dense(), data.clone());
        prop_assert_eq!(m.nnz(), data.iter().filter(|&&v| v != 0.0).count());
        prop_assert!(m.values().iter().all(|&v| v != 0.0));
        let s = m.stats();
        prop_assert_eq!(s.nnz, m.nnz());
        prop_assert!((s.density - m.nnz() as f64 / (rows * cols) as f64).abs() < 1e-12);
        prop_assert!(s.min_row_nnz <= s.max_row_nnz && s.mean_row_nnz <= s.max_row_nnz as f64);
        // spmv in f64 equals the dense product in f64.
        let x: Vec<f32> = (0..cols).map(|i| (i as f32 - 2.5) / 3.0).collect();
        let y = m.spmv(&x);
        for r in 0..rows {
            let want: f64 = (0..cols).map(|c| data[r * cols + c] as f64 * x[c] as f64).sum();
            prop_assert_eq!(y[r], want as f32);
        }
    }

    #[test]
    fn per_row_pruning_reaches_density_and_keeps_the_largest(
        (rows, cols, data) in nonzero_matrix(),
        density in 0.0f64..=1.0,
    ) {
        let m = Csr::from_dense_pruned(&data, rows, cols, density, PruneMode::PerRow).unwrap();
        let target = density * cols as f64;
        let dense = m.to_dense();
        let kept: Vec<bool> = dense.iter().map(|&v| v != 0.0).collect();
        for r in 0..rows {
            prop_assert!((m.row_nnz(r) as f64 - target).abs() <= 0.5 + 1e-9, "row {} has {} for target {}", r, m.row_nnz(r), target);
            let group: Vec<usize> = (r * cols..(r + 1) * cols).collect();
            assert_keeps_largest(&data, &group, &kept);
        }
        // Kept values are unchanged.
        for (i, &v) in dense.iter().enumerate() {
            prop_assert!(v == 0.0 || v == data[i]);
        }
        // Pruning a Csr gives the same as pruning its dense form.
        let again = Csr::from_dense(&data, rows, cols).unwrap().pruned(density, PruneMode::PerRow).unwrap();
        prop_assert_eq!(again, m);
    }

    #[test]
    fn global_pruning_reaches_density_and_keeps_the_largest(
        (rows, cols, data) in nonzero_matrix(),
        density in 0.0f64..=1.0,
    ) {
        let m = Csr::from_dense_pruned(&data, rows, cols, density, PruneMode::Global).unwrap();
        prop_assert_eq!(m.nnz(), (density * (rows * cols) as f64).round() as usize);
        let kept: Vec<bool> = m.to_dense().iter().map(|&v| v != 0.0).collect();
        let all: Vec<usize> = (0..rows * cols).collect();
        assert_keeps_largest(&data, &all, &kept);
    }

    #[test]
    fn pruning_with_zeros_never_stores_a_zero((rows, cols, data) in dense_matrix(), density in 0.0f64..=1.0) {
        for mode in [PruneMode::Global, PruneMode::PerRow] {
            let m = Csr::from_dense_pruned(&data, rows, cols, density, mode).unwrap();
            prop_assert!(m.values().iter().all(|&v| v != 0.0));
            let d = m.to_dense();
            prop_assert!(d.iter().zip(&data).all(|(&a, &b)| a == 0.0 || a == b));
        }
    }
}

#[test]
fn sparse_errors_name_the_problem() {
    assert_eq!(Csr::from_dense(&[1.0; 5], 2, 3).unwrap_err(), SparseError::DenseShape { rows: 2, cols: 3, len: 5 });
    assert!(matches!(
        Csr::from_dense(&[1.0, f32::NAN], 1, 2).unwrap_err(),
        SparseError::NonFinite { row: 0, col: 1, .. }
    ));
    // A NaN is reported even where pruning would have dropped it.
    assert!(matches!(
        Csr::from_dense_pruned(&[5.0, f32::NAN], 1, 2, 0.5, PruneMode::PerRow).unwrap_err(),
        SparseError::NonFinite { row: 0, col: 1, .. }
    ));
    assert_eq!(
        Csr::from_dense_pruned(&[1.0], 1, 1, 1.5, PruneMode::Global).unwrap_err(),
        SparseError::Density { density: 1.5 }
    );
    assert!(matches!(random_recurrent(0, 4, 4, f64::NAN, 1.0).unwrap_err(), SparseError::Density { .. }));
    assert_eq!(random_recurrent(0, 10, 4, 0.5, 1.0).unwrap_err(), SparseError::NotGateBlocks { rows: 10, cols: 4 });
    assert_eq!(random_recurrent(0, 8, 4, 0.5, 0.0).unwrap_err(), SparseError::Radius { radius: 0.0 });
}

#[test]
fn random_recurrent_is_seeded_uniform_per_row_and_stable() {
    let (h, g) = (96, 3);
    let a = random_recurrent(42, g * h, h, 0.25, 0.8).unwrap();
    assert_eq!(a, random_recurrent(42, g * h, h, 0.25, 0.8).unwrap());
    assert_ne!(a, random_recurrent(43, g * h, h, 0.25, 0.8).unwrap());
    let s = a.stats();
    assert_eq!((s.min_row_nnz, s.max_row_nnz, s.nnz), (24, 24, 24 * g * h));
    // Dense complement path (d > 1/2) and the extremes.
    for (d, k) in [(0.75, 72), (1.0, 96), (0.0, 0)] {
        let m = random_recurrent(1, h, h, d, 0.8).unwrap();
        assert_eq!((m.stats().min_row_nnz, m.stats().max_row_nnz), (k, k), "d={d}");
    }
    // Each gate block: largest singular value ≤ radius (long power iteration as the check),
    // and not far below it.
    for blk in 0..g {
        let sigma = a.row_block(blk * h, h).largest_singular_value_estimate(300);
        assert!(sigma <= 0.8 && sigma > 0.7, "block {blk}: sigma {sigma}");
    }
    // Columns are spread over the whole range: every column is used by some row.
    let mut used = vec![false; h];
    a.col_idx().iter().for_each(|&c| used[c as usize] = true);
    assert!(used.iter().all(|&u| u));
}

// ---------------------------------------------------------------------------------------------
// Weight files
// ---------------------------------------------------------------------------------------------

/// Values exactly representable in f16 and bf16: multiples of 1/16 in [-2, 2] (zeros included).
fn exact_values(seed: u64, n: usize) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n).map(|_| rng.gen_range(-32i32..=32) as f32 / 16.0).collect()
}

fn random_layer(seed: u64, cell: Cell, input: usize, hidden: usize, sparse_ih: bool) -> LayerWeights {
    let gh = cell.gates() * hidden;
    let w_hh = Csr::from_dense(&exact_values(seed, gh * hidden), gh, hidden).unwrap();
    let ih = exact_values(seed + 1, gh * input);
    let w_ih = if sparse_ih {
        Matrix::Sparse(Csr::from_dense(&ih, gh, input).unwrap())
    } else {
        Matrix::Dense(Dense::new(gh, input, ih).unwrap())
    };
    LayerWeights::new(cell, w_ih, w_hh, exact_values(seed + 2, gh), exact_values(seed + 3, gh)).unwrap()
}

fn random_model(seed: u64, cell: Cell, input: usize, hidden: usize, layers: usize, dirs: usize, sparse_ih: bool) -> ModelWeights {
    let stack = (0..layers)
        .map(|l| {
            (0..dirs)
                .map(|d| {
                    let i = if l == 0 { input } else { dirs * hidden };
                    random_layer(seed + 10 * (l * 2 + d) as u64, cell, i, hidden, sparse_ih)
                })
                .collect()
        })
        .collect();
    ModelWeights::new(cell, stack).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn save_then_load_gives_the_same_model(
        seed in any::<u64>(),
        cell in prop::sample::select(CELLS.to_vec()),
        input in 1usize..5,
        hidden in 1usize..6,
        layers in 1usize..4,
        dirs in 1usize..3,
        sparse_ih in any::<bool>(),
        dtype in prop::sample::select(vec![DType::F32, DType::F16, DType::BF16]),
        storage in prop::sample::select(vec![Storage::Dense, Storage::Csr]),
    ) {
        let model = random_model(seed, cell, input, hidden, layers, dirs, sparse_ih);
        let bytes = model.to_safetensors(SaveOptions { dtype, storage }).unwrap();
        let back = ModelWeights::from_safetensors(&bytes, cell).unwrap();
        if sparse_ih && storage == Storage::Dense {
            // A sparse W_ih written densely comes back dense, with the same values.
            for l in 0..layers {
                for d in 0..dirs {
                    prop_assert_eq!(back.layer(l, d).w_ih().to_dense(), model.layer(l, d).w_ih().to_dense());
                    prop_assert_eq!(back.layer(l, d).w_hh(), model.layer(l, d).w_hh());
                    prop_assert_eq!(back.layer(l, d).b_ih(), model.layer(l, d).b_ih());
                }
            }
        } else {
            prop_assert_eq!(back, model);
        }
    }
}

#[test]
fn layer_save_load_through_a_file() {
    let layer = random_layer(9, Cell::Lstm, 3, 5, false);
    let path = std::env::temp_dir().join(format!("sprnn-layer-{}.safetensors", std::process::id()));
    layer.save(&path, SaveOptions::default()).unwrap();
    let back = LayerWeights::load(&path, Cell::Lstm).unwrap();
    std::fs::remove_file(&path).ok();
    assert_eq!(back, layer);
    assert!(matches!(LayerWeights::load(&path, Cell::Lstm), Err(WeightsError::Io { .. })));
}


fn load(tensors: &[T]) -> Result<ModelWeights, WeightsError> {
    ModelWeights::from_safetensors(&file(tensors, None), Cell::RnnTanh)
}

#[test]
fn a_valid_hand_made_file_loads() {
    let m = load(&rnn_tensors("_l0", 2, 3)).unwrap();
    assert_eq!((m.input_size(), m.hidden(), m.num_layers(), m.directions()), (2, 3, 1, 1));
    assert_eq!(m.layer(0, 0).w_hh().nnz(), 9);
}

#[test]
fn missing_tensors_are_named() {
    let mut t = rnn_tensors("_l0", 2, 3);
    t.remove(3);
    assert!(matches!(load(&t), Err(WeightsError::MissingTensor { name }) if name == "bias_hh_l0"));
    // Layer 1 present only through its biases: its weights are missing.
    let mut t = rnn_tensors("_l0", 2, 3);
    t.push(f32s("bias_ih_l1", &[3], &[0.0; 3]));
    assert!(matches!(load(&t), Err(WeightsError::MissingTensor { name }) if name == "weight_hh_l1"));
    // A reverse tensor makes the model bidirectional: every reverse tensor is then required.
    let mut t = rnn_tensors("_l0", 2, 3);
    t.push(f32s("bias_hh_l0_reverse", &[3], &[0.0; 3]));
    assert!(matches!(load(&t), Err(WeightsError::MissingTensor { name }) if name == "weight_hh_l0_reverse"));
    // An empty file has no layer 0.
    assert!(matches!(load(&[]), Err(WeightsError::MissingTensor { name }) if name == "weight_hh_l0"));
}

#[test]
fn no_bias_tensors_means_zero_biases() {
    let mut t = rnn_tensors("_l0", 2, 3);
    t.truncate(2);
    let m = load(&t).unwrap();
    assert_eq!(m.layer(0, 0).b_ih(), &[0.0; 3]);
}

#[test]
fn wrong_shapes_are_named() {
    let mut t = rnn_tensors("_l0", 2, 3);
    t[2] = f32s("bias_ih_l0", &[4], &[0.0; 4]);
    assert!(matches!(load(&t), Err(WeightsError::WrongShape { name, got, .. }) if name == "bias_ih_l0" && got == vec![4]));
    let mut t = rnn_tensors("_l0", 2, 3);
    t[0] = f32s("weight_ih_l0", &[6], &[0.0; 6]);
    assert!(matches!(load(&t), Err(WeightsError::WrongShape { name, .. }) if name == "weight_ih_l0"));
    let mut t = rnn_tensors("_l0", 2, 3);
    t[0] = f32s("weight_ih_l0", &[4, 2], &[0.0; 8]);
    assert!(matches!(load(&t), Err(WeightsError::WrongShape { name, got, .. }) if name == "weight_ih_l0" && got == vec![4, 2]));
}

#[test]
fn wrong_dtypes_are_named() {
    let mut t = rnn_tensors("_l0", 2, 3);
    t[1] = T { name: "weight_hh_l0".into(), dtype: Dtype::I32, shape: vec![3, 3], data: vec![0; 36] };
    assert!(matches!(load(&t), Err(WeightsError::WrongDtype { name, dtype, .. }) if name == "weight_hh_l0" && dtype == "I32"));
    let mut t = rnn_tensors("_l0", 2, 3);
    t[2] = T { name: "bias_ih_l0".into(), dtype: Dtype::F64, shape: vec![3], data: vec![0; 24] };
    assert!(matches!(load(&t), Err(WeightsError::WrongDtype { name, .. }) if name == "bias_ih_l0"));
}

#[test]
fn non_finite_values_are_named_with_their_index() {
    let mut t = rnn_tensors("_l0", 2, 3);
    let mut w = vec![0.25f32; 9];
    w[5] = f32::NAN;
    t[1] = f32s("weight_hh_l0", &[3, 3], &w);
    match load(&t) {
        Err(WeightsError::NonFinite { name, index, position, value }) => {
            assert_eq!((name.as_str(), index, position, value.is_nan()), ("weight_hh_l0", 5, vec![1, 2], true));
        }
        other => panic!("{other:?}"),
    }
    let mut t = rnn_tensors("_l0", 2, 3);
    t[3] = f32s("bias_hh_l0", &[3], &[0.0, f32::NEG_INFINITY, 0.0]);
    assert!(matches!(load(&t), Err(WeightsError::NonFinite { name, index: 1, .. }) if name == "bias_hh_l0"));
    // Saving a value that overflows f16 is refused too.
    let layer = LayerWeights::new(
        Cell::RnnTanh,
        Matrix::Dense(Dense::new(1, 1, vec![1e6]).unwrap()),
        Csr::from_dense(&[1.0], 1, 1).unwrap(),
        vec![0.0],
        vec![0.0],
    )
    .unwrap();
    let e = layer.to_safetensors(SaveOptions { dtype: DType::F16, storage: Storage::Dense }).unwrap_err();
    assert!(matches!(e, WeightsError::NotRepresentable { name, index: 0, .. } if name == "weight_ih_l0"));
}

#[test]
fn hidden_beyond_the_format_limit_is_refused() {
    // H = 65536 through the CSR encoding (a dense tensor of that size would be 16 GiB): an empty
    // 65536 x 65536 matrix.
    let h: i64 = 65536;
    let t = vec![
        f32s("weight_ih_l0", &[1, 1], &[0.0]),
        i64s("weight_hh_l0.csr_shape", &[2], &[h, h]),
        i64s("weight_hh_l0.csr_row_ptr", &[1], &[0]),
        i64s("weight_hh_l0.csr_col_idx", &[0], &[]),
        f32s("weight_hh_l0.csr_values", &[0], &[]),
    ];
    match load(&t) {
        Err(WeightsError::HiddenTooLarge { name, hidden, max }) => {
            assert_eq!((name.as_str(), hidden, max), ("weight_hh_l0", 65536, 65535));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn truncated_and_corrupt_files_are_refused() {
    let bytes = file(&rnn_tensors("_l0", 2, 3), None);
    for cut in [0, 7, 8, 20, bytes.len() - 1] {
        let e = ModelWeights::from_safetensors(&bytes[..cut], Cell::RnnTanh).unwrap_err();
        assert!(matches!(e, WeightsError::Corrupt { .. }), "cut at {cut}: {e}");
    }
    let mut garbage = bytes.clone();
    garbage[8] = b'#'; // the opening brace of the JSON header
    assert!(matches!(ModelWeights::from_safetensors(&garbage, Cell::RnnTanh), Err(WeightsError::Corrupt { .. })));
    let mut long = bytes;
    long.extend_from_slice(&[0; 4]); // data section longer than the header says
    assert!(matches!(ModelWeights::from_safetensors(&long, Cell::RnnTanh), Err(WeightsError::Corrupt { .. })));
}

#[test]
fn inconsistent_layers_are_refused() {
    // Layer 1 with hidden 4 on top of layer 0 with hidden 3.
    let mut t = rnn_tensors("_l0", 2, 3);
    t.extend(rnn_tensors("_l1", 3, 4));
    assert!(matches!(load(&t), Err(WeightsError::InconsistentLayers { name, .. }) if name == "weight_hh_l1"));
    // Layer 1 taking 2 inputs where layer 0 gives 3.
    let mut t = rnn_tensors("_l0", 2, 3);
    t.extend(rnn_tensors("_l1", 2, 3));
    assert!(matches!(load(&t), Err(WeightsError::InconsistentLayers { name, .. }) if name == "weight_ih_l1"));
    // Bidirectional: layer 1 must take D * H = 6 inputs; 3 is inconsistent, 6 loads.
    let mut t = rnn_tensors("_l0", 2, 3);
    t.extend(rnn_tensors("_l0_reverse", 2, 3));
    t.extend(rnn_tensors("_l1", 3, 3));
    t.extend(rnn_tensors("_l1_reverse", 3, 3));
    assert!(matches!(load(&t), Err(WeightsError::InconsistentLayers { name, .. }) if name == "weight_ih_l1"));
    let mut t = rnn_tensors("_l0", 2, 3);
    t.extend(rnn_tensors("_l0_reverse", 2, 3));
    t.extend(rnn_tensors("_l1", 6, 3));
    t.extend(rnn_tensors("_l1_reverse", 6, 3));
    assert_eq!(load(&t).unwrap().directions(), 2);
    // The two directions of layer 0 disagreeing on the input size.
    let mut t = rnn_tensors("_l0", 2, 3);
    t.extend(rnn_tensors("_l0_reverse", 5, 3));
    assert!(matches!(load(&t), Err(WeightsError::InconsistentLayers { name, .. }) if name == "weight_ih_l0_reverse"));
    // Through the constructor.
    let a = random_layer(1, Cell::Gru, 2, 3, false);
    let b = random_layer(2, Cell::Gru, 2, 4, false);
    assert!(matches!(ModelWeights::new(Cell::Gru, vec![vec![a.clone()], vec![b]]), Err(WeightsError::InconsistentLayers { .. })));
    assert!(matches!(ModelWeights::new(Cell::Lstm, vec![vec![a]]), Err(WeightsError::InconsistentLayers { .. })));
    assert!(matches!(ModelWeights::new(Cell::Gru, vec![]), Err(WeightsError::InconsistentLayers { .. })));
}

#[test]
fn the_cell_must_fit_the_shapes() {
    // A GRU file (3 gate blocks) read as LSTM (4) or RNN (1).
    let bytes = random_model(3, Cell::Gru, 2, 4, 1, 1, false).to_safetensors(SaveOptions::default()).unwrap();
    let mut stripped = ModelWeights::from_safetensors(&bytes, Cell::Gru).unwrap().into_layers();
    let layer = stripped.remove(0).remove(0);
    // Without the sprnn.cell metadata (as PyTorch writes it), the shapes decide.
    let t = vec![
        f32s("weight_ih_l0", &[12, 2], &layer.w_ih().to_dense()),
        f32s("weight_hh_l0", &[12, 4], &layer.w_hh().to_dense()),
        f32s("bias_ih_l0", &[12], layer.b_ih()),
        f32s("bias_hh_l0", &[12], layer.b_hh()),
    ];
    let e = ModelWeights::from_safetensors(&file(&t, None), Cell::Lstm).unwrap_err();
    assert!(matches!(e, WeightsError::GateMismatch { rows: 12, hidden: 4, gates: 4, .. }), "{e}");
    assert!(ModelWeights::from_safetensors(&file(&t, None), Cell::Gru).is_ok());
    // With it, the metadata is checked first.
    let e = ModelWeights::from_safetensors(&bytes, Cell::RnnTanh).unwrap_err();
    assert!(matches!(e, WeightsError::CellMismatch { ref file, given: Cell::RnnTanh } if file == "gru"), "{e}");
}

#[test]
fn invalid_csr_encodings_and_unsupported_tensors_are_refused() {
    let csr = |cols: &[i64]| {
        let mut t = vec![f32s("weight_ih_l0", &[2, 1], &[1.0, 1.0])];
        t.push(i64s("weight_hh_l0.csr_shape", &[2], &[2, 2]));
        t.push(i64s("weight_hh_l0.csr_row_ptr", &[3], &[0, 2, 2]));
        t.push(T { name: "weight_hh_l0.csr_col_idx".into(), dtype: Dtype::I32, shape: vec![2], data: cols.iter().flat_map(|&c| (c as i32).to_le_bytes()).collect() });
        t.push(f32s("weight_hh_l0.csr_values", &[2], &[1.0, 2.0]));
        t
    };
    let m = load(&csr(&[0, 1])).unwrap();
    assert_eq!(m.layer(0, 0).w_hh().to_dense(), vec![1.0, 2.0, 0.0, 0.0]);
    let e = load(&csr(&[1, 0])).unwrap_err();
    assert!(matches!(e, WeightsError::InvalidCsr { ref name, source: SparseError::Unsorted { .. } } if name == "weight_hh_l0"), "{e}");
    let e = load(&csr(&[0, 5])).unwrap_err();
    assert!(matches!(e, WeightsError::InvalidCsr { source: SparseError::ColumnOutOfRange { col: 5, .. }, .. }), "{e}");
    // LSTM projections.
    let mut t = rnn_tensors("_l0", 2, 3);
    t.push(f32s("weight_hr_l0", &[2, 3], &[0.0; 6]));
    assert!(matches!(load(&t), Err(WeightsError::Unsupported { name, .. }) if name == "weight_hr_l0"));
}

#[test]
fn layer_weights_new_checks_its_parts() {
    let w_hh = Csr::from_dense(&[1.0; 4], 2, 2).unwrap();
    let ih = || Matrix::Dense(Dense::new(2, 1, vec![1.0, 1.0]).unwrap());
    assert!(matches!(
        LayerWeights::new(Cell::Gru, ih(), w_hh.clone(), vec![0.0; 2], vec![0.0; 2]),
        Err(WeightsError::GateMismatch { gates: 3, .. })
    ));
    assert!(matches!(
        LayerWeights::new(Cell::RnnRelu, ih(), w_hh.clone(), vec![0.0; 3], vec![0.0; 2]),
        Err(WeightsError::WrongShape { name, .. }) if name == "b_ih"
    ));
    assert!(matches!(
        LayerWeights::new(Cell::RnnRelu, Matrix::Dense(Dense::new(2, 1, vec![f32::NAN, 0.0]).unwrap()), w_hh, vec![0.0; 2], vec![0.0; 2]),
        Err(WeightsError::NonFinite { name, index: 0, .. }) if name == "w_ih"
    ));
}

#[test]
fn tolerance_catches_typical_bugs() {
    // H = 64, T = 32, B = 2, d = 0.3, σ_max ≤ 0.95: each simulated bug must exceed the tolerance.
    let (hidden, steps, batch) = (64, 32, 2);
    for (cell, _, (w, b, u)) in tolerance_layers(50, hidden, steps, batch) {
        let g = cell.gates();
        let run = |w: &Csr, u: &[f32]| forward_u(cell, w, &b, Sequences::new(u, steps, batch), Precision::DeviceFaithful).unwrap().h;
        let want = run(&w, &u);
        let judge = |got: &[f32], what: &str| {
            let e = compare_steps(got, &want, steps, batch, hidden);
            println!("{cell:?}: {what}: error {:.2e}", e.worst);
            assert!(!e.within(DEVICE_TOLERANCE), "{cell:?}: {what} not caught (error {:.2e})", e.worst);
        };
        // A lost nonzero: the largest one.
        let big = (0..w.nnz()).max_by(|&a, &c| w.values()[a].abs().total_cmp(&w.values()[c].abs())).unwrap();
        let lost = Csr::new(w.rows(), w.cols(), w.row_ptr().to_vec(), w.col_idx().to_vec(), {
            let mut v = w.values().to_vec();
            v[big] = 0.0;
            v
        })
        .unwrap();
        judge(&run(&lost, &u), "a lost nonzero");
        // Two gates swapped (RNN: the sign of the input part flipped, its only "gate").
        let swapped: Vec<f32> = (0..u.len())
            .map(|k| {
                let (row, j) = (k / (g * hidden), k % (g * hidden));
                if g == 1 {
                    -u[k]
                } else {
                    let (gate, unit) = (j / hidden, j % hidden);
                    let other = [1, 0, 2, 3][gate.min(3)];
                    u[row * g * hidden + other * hidden + unit]
                }
            })
            .collect();
        judge(&run(&w, &swapped), "swapped gates");
        // A stale state: every step reads h_{t-2} (simulated by running each step from the state
        // two steps back through a one-step call).
        let mut stale = Vec::with_capacity(want.len());
        let bh = batch * hidden;
        for t in 0..steps {
            let h_prev2 = if t >= 2 { Some(&want[(t - 2) * bh..(t - 1) * bh]) } else { None };
            let ut = &u[t * batch * g * hidden..(t + 1) * batch * g * hidden];
            let step = forward_u(cell, &w, &b, Sequences::new(ut, 1, batch).with_state(h_prev2, None), Precision::DeviceFaithful).unwrap();
            stale.extend(step.h);
        }
        judge(&stale, "a stale h");
    }
}

/// A layer without state (H = 0, or B = 0) is refused at once, as the GPU refuses it, even for a
/// step count the loop over steps could not finish.
#[test]
fn empty_state_is_refused_at_once_for_any_step_count() {
    for cell in [Cell::RnnTanh, Cell::Lstm] {
        let w = Csr::new(0, 0, vec![0], vec![], vec![]).unwrap();
        let t0 = std::time::Instant::now();
        let e = sprnn::reference::forward_u(cell, &w, &[], sprnn::reference::Sequences::new(&[], 1 << 40, 4), Precision::F64).unwrap_err();
        assert_eq!(e, sprnn::reference::ReferenceError::Layer(sprnn::layout::PlanError::EmptyHidden));
        let g = cell.gates();
        let w = sprnn::sparse::random_recurrent(1, g * 8, 8, 0.5, 0.9).unwrap();
        let e = sprnn::reference::forward_u(cell, &w, &vec![0.0; g * 8], sprnn::reference::Sequences::new(&[], 1 << 40, 0), Precision::F64).unwrap_err();
        assert_eq!(e, sprnn::reference::ReferenceError::Layer(sprnn::layout::PlanError::ZeroBatch));
        assert!(t0.elapsed() < std::time::Duration::from_secs(1), "took {:?}", t0.elapsed());
    }
}

/// Every fixture file is embedded in the test executable, so the GPU bundle's tests (run where
/// there is no source tree) read the same files. Where the source tree is present, the list is
/// checked against the folder.
#[test]
fn every_fixture_is_embedded() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let Ok(entries) = std::fs::read_dir(&dir) else { return };
    for e in entries {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        if let Some(stem) = name.strip_suffix(".safetensors") {
            let embedded = crate::common::FIXTURES.iter().find(|(n, _)| *n == stem).map(|(_, b)| *b);
            let on_disk = std::fs::read(dir.join(&name)).unwrap();
            assert_eq!(embedded, Some(&on_disk[..]), "{name}: not embedded in common::FIXTURES, or stale");
        }
    }
}
