//! Weights in registers and shared memory (the shared-weights kernel family): the layout with
//! shared words (every nonzero once, `simulate_matvec` = W·h with both product arithmetics),
//! the planner's split and its batch limit, the capacity it reaches on the H200 preset, and the
//! GPU twins (the new variants against the reference, the largest capacity point per cell),
//! which print "skipped: no CUDA device" without a GPU.

use std::time::Duration;

use rand::SeedableRng;
use sprnn::layout::{check_fit, layout_with, plan, synthetic, Cell, DeviceInfo, ExecMode, Geometry, PlanError, PlanOptions, Products, RowStats, WeightOrder};
use sprnn::reference::{self, Precision};
use sprnn::SparseRecurrentLayer;
use sprnn_kernels::format::{exchange_slots, gated_kernel, row_threads, Cell as FormatCell, RecurrentSmem, BATCH_TILES, PRODUCT_GROUP, SHARED_LIST_LENGTHS};

use crate::common::{gpu, random_vec, seed, Problem};
use sprnn_bench::{verified_capacity, Candidates};
use crate::layout::{check_matvec, check_permutation};

/// `(cell, density, hidden)`: the H200 preset's capacity at B = 4 before shared weights
/// (`sprnn-bench --capacity --plan-only --preset h200`, main at 1add6a9), every row
/// `round(d·H)` nonzeros. The planner must now hold at least twice these nonzeros.
const CAPACITY_BEFORE: [(Cell, f64, usize, usize); 15] = [
    (Cell::RnnTanh, 0.01, 16896, 2855424),
    (Cell::RnnTanh, 0.05, 7680, 2949120),
    (Cell::RnnTanh, 0.1, 5120, 2621440),
    (Cell::RnnTanh, 0.3, 3168, 3009600),
    (Cell::RnnTanh, 0.5, 2304, 2654208),
    (Cell::Gru, 0.01, 9632, 2774016),
    (Cell::Gru, 0.05, 4224, 2673792),
    (Cell::Gru, 0.1, 2752, 2270400),
    (Cell::Gru, 0.3, 1696, 2589792),
    (Cell::Gru, 0.5, 1536, 3538944),
    (Cell::Lstm, 0.01, 8448, 2838528),
    (Cell::Lstm, 0.05, 3840, 2949120),
    (Cell::Lstm, 0.1, 2560, 2621440),
    (Cell::Lstm, 0.3, 1568, 2947840),
    (Cell::Lstm, 0.5, 1536, 4718592),
];

/// A geometry with `m` shared words per thread for a random layer of `hidden` units: `grid`
/// CTAs, `tpr` threads per row, `n` register words.
fn shared_geometry(cell: Cell, hidden: usize, batch: usize, grid: usize, (tpr, n, m): (usize, usize, usize)) -> Geometry {
    let upc = hidden.div_ceil(grid);
    let gated = gated_kernel(cell.gates(), tpr, sprnn::layout::batch_tile(batch));
    Geometry { grid, units_per_cta: upc, threads_per_cta: row_threads(upc, cell.gates(), tpr, gated), threads_per_row: tpr, list_len: n, shared_words: m, gated_kernel: gated }
}

/// Every cell, every register-list length of the family, shared words from one group to
/// several, both orders, every batch tile: each nonzero exactly once across registers and
/// shared memory, and `simulate_matvec` (the kernel's order, both product arithmetics) = W·h.
#[test]
fn shared_words_layout_is_a_permutation_and_reproduces_matvec() {
    let mut case = 0u64;
    for cell in [Cell::RnnTanh, Cell::RnnRelu, Cell::Gru, Cell::Lstm] {
        for &n in &SHARED_LIST_LENGTHS {
            for (m, tpr, batch) in [(8, 1, 1), (24, 2, 4), (64, 4, 8), (16, 8, 2)] {
                case += 1;
                let hidden = 48 + 8 * (case as usize % 5);
                // Rows long enough to reach the shared words: about (n + m/2)·tpr nonzeros.
                let d = (((n + m / 2) * tpr) as f64 / hidden as f64).min(1.0);
                let w = synthetic::uniform(cell.gates() * hidden, hidden, d, case);
                let g = shared_geometry(cell, hidden, batch, 6, (tpr, n, m));
                for order in [WeightOrder::BankAware, WeightOrder::Naive] {
                    let p = match layout_with(&w, cell, batch, &g, order) {
                        Ok(p) => p,
                        Err(PlanError::RowTooLong { .. }) => continue,
                        Err(e) => panic!("{cell:?} n={n} m={m} tpr={tpr}: {e}"),
                    };
                    assert_eq!((p.list_len(), p.shared_words(), p.words_per_thread()), (n, m, n + m));
                    check_permutation(&p, &w);
                    check_matvec(&p, &w, case);
                    if p.products() == Products::F16 {
                        check_matvec(&p.clone().with_products(Products::F32).unwrap(), &w, case ^ 7);
                    }
                }
            }
        }
    }
}

/// Some nonzeros really land in shared memory (entries from `N` on), and the words from `N`
/// on are laid out exactly as the registers' (`[k][thread]`), so the kernel's start-up copy
/// is one coalesced load per word.
#[test]
fn shared_words_hold_real_nonzeros() {
    let (cell, hidden) = (Cell::RnnTanh, 96);
    let w = synthetic::uniform(hidden, hidden, 0.9, 5);
    let g = shared_geometry(cell, hidden, 4, 8, (1, 16, 80));
    let p = layout_with(&w, cell, 4, &g, WeightOrder::BankAware).unwrap();
    let total = p.total_threads();
    let pad = p.word_format().pad(p.columns());
    let in_shared = p.weights()[16 * total..].iter().filter(|&&x| x != pad).count();
    assert!(in_shared >= w.nnz() - 16 * total, "{in_shared} nonzeros in shared memory");
    assert_eq!(p.weights().len(), 96 * total);
}

/// The planner keeps every weight in registers where that fits (the headline's plan is the
/// one it was before), and splits only where it must.
#[test]
fn planner_keeps_registers_only_where_they_fit() {
    let dev = DeviceInfo::h200();
    let w = synthetic::uniform(2304, 2304, 0.3, 31);
    let p = plan(&w, Cell::RnnTanh, 4, &dev, &PlanOptions::default()).unwrap();
    assert_eq!(p.shared_words(), 0, "the headline stays in registers");
    let forced = plan(&w, Cell::RnnTanh, 4, &dev, &PlanOptions { shared_words: Some(0), ..PlanOptions::default() }).unwrap();
    assert_eq!(p.fit(), forced.fit());
    assert_eq!(p.weights(), forced.weights());
    // LSTM H = 2304 d = 0.3 did not fit in registers; now it splits.
    let w = synthetic::uniform(4 * 2304, 2304, 0.3, 32);
    assert!(matches!(
        plan(&w, Cell::Lstm, 4, &dev, &PlanOptions { shared_words: Some(0), ..PlanOptions::default() }),
        Err(PlanError::DoesNotFit { .. })
    ));
    let p = plan(&w, Cell::Lstm, 4, &dev, &PlanOptions::default()).expect("registers and shared memory hold it");
    assert!(p.shared_words() > 0 && p.shared_words().is_multiple_of(PRODUCT_GROUP));
    assert!(SHARED_LIST_LENGTHS.contains(&p.list_len()));
    assert!(p.smem_bytes() <= dev.shared_per_cta(1));
    assert!(p.registers_per_sm() <= dev.registers_per_sm);
    assert!(p.batch_limit() >= 4);
    assert!(p.threads_per_row() * p.words_per_thread() >= p.max_row_nnz());
    check_permutation(&p, &w);
    check_matvec(&p, &w, 33);
    // The shared memory it reports: the kernel's parts and the words, 16-byte aligned.
    let slots = exchange_slots(p.units_per_cta(), 4);
    let base = RecurrentSmem::new(p.grid() * slots, 4, slots, 4 * p.units_per_cta(), p.units_per_cta(), FormatCell::Lstm, false);
    assert_eq!(p.smem_bytes(), base.weights() + 4 * p.shared_words() * p.threads_per_cta());
}

/// The batch limit: the largest batch whose hidden state fits beside the plan's shared
/// words, and a refusal at a larger batch names a smaller one that fits.
#[test]
fn batch_limit_trades_hidden_state_for_weights() {
    let dev = DeviceInfo::h200();
    let have = dev.shared_per_cta(1);
    let (cell, h, d) = (Cell::RnnTanh, 5120, 0.3);
    let stats = RowStats::uniform(cell, h, (d * h as f64).round() as usize);
    let fit = check_fit(&stats, cell, 4, &dev, &PlanOptions::default()).expect("fits at B = 4");
    let g = fit.geometry;
    assert!(g.shared_words > 0);
    let smem = |b: usize| {
        let slots = exchange_slots(g.units_per_cta, b);
        RecurrentSmem::new(g.grid * slots, b, slots, g.units_per_cta, g.units_per_cta, FormatCell::RnnTanh, false).with_weights(g.shared_words, g.threads_per_cta)
    };
    assert!(fit.batch_limit >= 4);
    assert!(smem(fit.batch_limit) <= have);
    assert!(smem(fit.batch_limit + 1) > have, "batch limit {} is not the largest", fit.batch_limit);
    // Sixteen sequences' hidden state leaves too little room for the weights.
    let err = check_fit(&stats, cell, 16, &dev, &PlanOptions::default()).unwrap_err();
    let PlanError::DoesNotFit { fit_batch, max_row_fit, .. } = err.clone() else { panic!("expected DoesNotFit, got {err}") };
    assert!(max_row_fit < stats.max_row_nnz);
    let b = fit_batch.expect("a smaller batch fits");
    assert!(b < 16);
    check_fit(&stats, cell, b, &dev, &PlanOptions::default()).expect("the suggested batch fits");
    assert!(err.to_string().contains(&format!("batch {b}")), "{err}");
}

/// Forced shared words: obeyed, and refused where the kernels cannot run them.
#[test]
fn forced_shared_words_are_obeyed_or_refused() {
    let dev = DeviceInfo::h200();
    let w = synthetic::uniform(256, 256, 0.2, 41);
    let grid = |o: PlanOptions| PlanOptions { mode: Some(ExecMode::Grid), ..o };
    let p = plan(&w, Cell::RnnTanh, 4, &dev, &grid(PlanOptions { shared_words: Some(16), list_len: Some(32), threads_per_row: Some(2), ..PlanOptions::default() })).unwrap();
    assert_eq!((p.list_len(), p.shared_words(), p.threads_per_row()), (32, 16, 2));
    check_matvec(&p, &w, 42);
    for (o, option) in [
        (PlanOptions { shared_words: Some(12), ..PlanOptions::default() }, "shared_words"),
        (PlanOptions { shared_words: Some(16), hidden_f32: Some(true), ..PlanOptions::default() }, "shared_words"),
        (PlanOptions { shared_words: Some(16), list_len: Some(96), ..PlanOptions::default() }, "list_len"),
    ] {
        match plan(&w, Cell::RnnTanh, 4, &dev, &grid(o.clone())) {
            Err(PlanError::BadOption { option: got, .. }) => assert_eq!(got, option, "{o:?}"),
            r => panic!("{o:?}: expected BadOption, got {:?}", r.map(|p| p.fit())),
        }
    }
    // `list_len` alone keeps every word in registers, as before.
    let long = synthetic::uniform(256, 256, 0.9, 43);
    assert!(matches!(
        plan(&long, Cell::RnnTanh, 4, &dev, &grid(PlanOptions { list_len: Some(16), threads_per_row: Some(1), ..PlanOptions::default() })),
        Err(PlanError::RowTooLong { .. })
    ));
}

/// Capacity on the H200 preset at B = 4: at least twice the nonzeros of before wherever the
/// hidden state leaves room (every density from 0.05; at 0.01 the fp16 hidden state of a layer
/// twice as large takes most of the shared memory itself: 1.4× for RNN, 1.9× for GRU and LSTM
/// with this margin; LSTM at d = 0.5, whose capacity was the dense slab's, 1.8×),
/// with the two named points (RNN-tanh d = 0.3 to H = 4480, LSTM d = 0.1 to H = 3616).
/// Rows carry 10 % more than `d·H` nonzeros, the spread of a random layer's longest row.
#[test]
fn h200_capacity_doubles() {
    let dev = DeviceInfo::h200();
    let fits = |cell: Cell, d: f64, h: usize| {
        let row = ((d * h as f64) * 1.1).ceil() as usize;
        check_fit(&RowStats::uniform(cell, h, row.min(h)), cell, 4, &dev, &PlanOptions::default()).is_ok()
    };
    assert!(fits(Cell::RnnTanh, 0.3, 4480), "RNN-tanh d = 0.3, H = 4480");
    assert!(fits(Cell::Lstm, 0.1, 3616), "LSTM d = 0.1, H = 3616");
    for (cell, d, _, before) in CAPACITY_BEFORE {
        let factor = match (cell, d) {
            (Cell::RnnTanh, 0.01) => 1.4,
            (_, 0.01) => 1.9,
            // Before: the dense slab's H = 1536; now the sparse split to H = 2112 (1.89x).
            (Cell::Lstm, 0.5) => 1.8,
            _ => 2.0,
        };
        // The hidden size with `factor` times the nonzeros (d·G·H² = factor · before).
        let h = ((factor * before as f64 / (d * cell.gates() as f64)).sqrt() / 32.0).ceil() as usize * 32;
        assert!(fits(cell, d, h), "{cell:?} d = {d}: H = {h} ({factor}x the nonzeros) does not fit");
    }
}

/// The new variants on the GPU against the device-faithful reference: every register-list
/// length of the shared-weights family and every batch tile, RNN-tanh, GRU and LSTM, both
/// product arithmetics, about half of each thread's list in shared memory.
#[test]
fn every_shared_weights_variant_matches_the_reference() {
    shared_variants_match(&[Cell::RnnTanh, Cell::Gru, Cell::Lstm], &[Products::F16, Products::F32]);
}

/// Each shared-weights entry point once (RNN-tanh for the RNN family, LSTM for the gated one,
/// fp16 products): the subset `run.sh sanitize racecheck` runs, where the whole set above takes
/// minutes.
#[test]
fn each_shared_weights_entry_point_matches_the_reference() {
    shared_variants_match(&[Cell::RnnTanh, Cell::Lstm], &[Products::F16]);
}

/// [`every_shared_weights_variant_matches_the_reference`] for these cells and products.
fn shared_variants_match(cells: &[Cell], all_products: &[Products]) {
    let Some(gpu) = gpu() else { return };
    let s = seed("shared variants");
    let (h, steps) = (256, 12);
    let mut index = 0;
    for &n in &SHARED_LIST_LENGTHS {
        for &bt in &BATCH_TILES {
            for &cell in cells {
                index += 1;
                let g = cell.gates();
                let seed = s + index;
                let tpr = bt.max(if g > 1 { 4 } else { 1 });
                // Rows of about 2·N·TPR nonzeros: half of each list in shared memory.
                let d = ((2 * n * tpr) as f64 / h as f64).min(0.9);
                let w = sprnn::sparse::random_recurrent(seed, g * h, h, d, 0.9).unwrap();
                let max_row = RowStats::of(&w).max_row_nnz;
                let m = (max_row.div_ceil(tpr).saturating_sub(n)).div_ceil(PRODUCT_GROUP).max(1) * PRODUCT_GROUP;
                let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
                let b = random_vec(&mut rng, g * h, 0.2);
                let u = random_vec(&mut rng, steps * bt * g * h, 1.0);
                let h0 = random_vec(&mut rng, bt * h, 0.5);
                for &products in all_products {
                    let opts = PlanOptions {
                        list_len: Some(n),
                        shared_words: Some(m),
                        threads_per_row: Some(tpr),
                        products: Some(products),
                        mode: Some(ExecMode::Grid),
                        ..PlanOptions::default()
                    };
                    let plan = plan(&w, cell, bt, gpu.info(), &opts).expect("plan");
                    assert_eq!((plan.list_len(), plan.shared_words(), plan.batch_tile()), (n, m, bt));
                    let want = reference::forward_u(cell, &w, &b, reference::Sequences::new(&u, steps, bt).with_state(Some(&h0), None), Precision::device_faithful(products)).unwrap();
                    let mut layer = SparseRecurrentLayer::from_plan(&gpu, &plan, &b, Duration::from_secs(1)).unwrap();
                    let got = layer.forward(sprnn::layer::Input::F32(&u), steps, Some(&h0), None).unwrap();
                    let e = reference::compare_steps(&got.h, &want.h, steps, bt, h);
                    println!("{cell:?} N={n} M={m} BT={bt} TPR={tpr} {products:?}: worst {:.2e} ({})", e.worst, layer.shape().kernel);
                    assert!(e.worst <= reference::DEVICE_TOLERANCE, "{cell:?} N={n} M={m} BT={bt} TPR={tpr} {products:?}: {}", e.worst);
                }
            }
        }
    }
}

/// Every capacity point of the benchmark's search (`sprnn-bench --capacity`: RNN-tanh, GRU and
/// LSTM at d = 0.01, 0.05, 0.1, 0.3 and 0.5, B = 4, every row `round(d·H)` nonzeros) on this
/// GPU against the device-faithful reference, output poisoned first (a few steps: these layers
/// hold 4–9 M nonzeros).
#[test]
fn capacity_points_match_the_reference() {
    let Some(gpu) = gpu() else { return };
    let s = seed("shared capacity");
    let (steps, batch) = (4, 4);
    let candidates = Candidates { step: 32, max_hidden: sprnn::MAX_HIDDEN, attempts: 3 };
    let mut index = 0;
    for cell in [Cell::RnnTanh, Cell::Gru, Cell::Lstm] {
        for d in [0.01, 0.05, 0.1, 0.3, 0.5] {
            index += 1;
            let seed = s + index;
            let Some(cap) = verified_capacity(seed, cell, d, batch, gpu.info(), candidates).unwrap() else { panic!("{cell:?} d = {d}: nothing fits") };
            let (h, (w, b), plan) = (cap.hidden, cap.layer, cap.plan);
            let problem = Problem::from_layer(cell, w, b, batch, steps, seed, true);
            let mut layer = SparseRecurrentLayer::from_plan(&gpu, &plan, &problem.b, Duration::from_secs(2)).unwrap();
            let got = problem.run_poisoned(&gpu, &mut layer, None).unwrap();
            let (worst, _) = problem.worst_error(&got, plan.products());
            println!(
                "{cell:?} d={d} H={h}: {} nonzeros, N={} M={} threads {}: worst {worst:.2e} ({})",
                problem.w.nnz(),
                plan.list_len(),
                plan.shared_words(),
                plan.threads_per_cta(),
                layer.shape().kernel
            );
            assert!(worst <= reference::DEVICE_TOLERANCE, "{cell:?} d = {d} H = {h}: {worst}");
        }
    }
}

/// A layer too large for registers and shared memory together is refused, and the refusal
/// counts the shared words: the longest row that fits is longer than in registers alone.
#[test]
fn too_big_even_with_shared_memory_gives_does_not_fit() {
    let dev = DeviceInfo::h200();
    let stats = RowStats::uniform(Cell::Lstm, 4608, 4147);
    let sparse = PlanOptions { kernel: Some(sprnn::layout::KernelKind::Sparse), ..PlanOptions::default() };
    let max_row_fit = |o: &PlanOptions| match check_fit(&stats, Cell::Lstm, 4, &dev, o) {
        Err(PlanError::DoesNotFit { max_row_fit, fit_density, density, .. }) => {
            assert!(fit_density > 0.0 && fit_density < density, "{fit_density} vs {density}");
            max_row_fit
        }
        r => panic!("expected DoesNotFit, got {:?}", r.map(|f| f.geometry)),
    };
    let with_shared = max_row_fit(&sparse);
    let registers_only = max_row_fit(&PlanOptions { shared_words: Some(0), ..sparse.clone() });
    assert!(with_shared > registers_only && with_shared < 4147, "{with_shared} vs {registers_only}");
}

/// Both named families (shared weights, cluster) read their names back: every variant, and
/// nothing else (a name of the other family, an unknown list length or batch tile).
#[test]
fn kernel_names_read_back() {
    use sprnn_kernels::format::{cluster_kernel_name, parse_cluster_kernel_name, parse_shared_kernel_name, shared_kernel_name, LIST_LENGTHS};
    for gated in [false, true] {
        for &bt in &BATCH_TILES {
            for &n in &SHARED_LIST_LENGTHS {
                let name = shared_kernel_name(n, bt, gated);
                assert_eq!(parse_shared_kernel_name(name), Some((n, bt, gated)), "{name}");
                assert_eq!(parse_cluster_kernel_name(name), None, "{name}");
            }
            for &n in &LIST_LENGTHS {
                let name = cluster_kernel_name(n, bt, gated);
                assert_eq!(parse_cluster_kernel_name(name), Some((n, bt, gated)), "{name}");
                assert_eq!(parse_shared_kernel_name(name), None, "{name}");
            }
        }
    }
    for odd in ["sprnn_sw_recurrent_n96_bt4", "sprnn_sw_gated_n16_bt3", "sprnn_cluster_n10_bt4", "sprnn_cluster_gated_n8_bt", "sprnn_recurrent_n8_bt1", ""] {
        assert_eq!((parse_shared_kernel_name(odd), parse_cluster_kernel_name(odd)), (None, None), "{odd}");
    }
}
