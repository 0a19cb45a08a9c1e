//! GPU tests: the smoke kernel and the recurrent kernel against the device-faithful CPU
//! reference, on fresh random weights and inputs, with outputs poisoned before every run.
//!
//! On a machine without a CUDA device each test prints "skipped: no CUDA device" and returns;
//! with `SPRNN_REQUIRE_GPU=1` (the GPU bundle sets it) a missing device fails instead.
//! `SPRNN_SEED` fixes the seed (printed by every test); `SPRNN_RESULTS_DIR` receives the
//! correctness table of the sweep as CSV.

use std::time::{Duration, Instant};

use rand::SeedableRng;
use sprnn::cust::stream::Stream;
use sprnn::layer::{DeviceInput, Input};
use sprnn::layout::{check_fit, ExecMode, Fit, PlanOptions, Products, RowStats};
use sprnn::reference::{self, Precision};
use sprnn::{Cell, Error, Gpu, LayerOptions, SparseRecurrentLayer};

use crate::common::{gpu, random_vec, run_poisoned, seed, Problem};

struct Case {
    cell: Cell,
    hidden: usize,
    batch: usize,
    density: f64,
    steps: usize,
}

struct Outcome {
    worst: f64,
    worst_step: usize,
    shape: String,
}

/// Builds a random layer, runs it on poisoned outputs and compares with the reference.
fn run_case(gpu: &Gpu, c: &Case, seed: u64, with_state: bool) -> Result<Outcome, Error> {
    let p = Problem::try_random(c.cell, c.hidden, c.batch, c.density, c.steps, seed, 0x5EED, with_state)?;
    let mut layer = SparseRecurrentLayer::new(gpu, c.cell, &p.w, &p.b, c.batch, &LayerOptions::default())?;
    let got = p.run_poisoned(gpu, &mut layer, None)?;
    let (worst, worst_step) = p.worst_error(&got, layer.products());
    let sprnn::LaunchShape { ctas: grid, threads_per_cta: threads, threads_per_row: tpr, kernel, .. } = layer.shape();
    Ok(Outcome { worst, worst_step, shape: format!("{grid}x{threads} tpr{tpr} {kernel}") })
}

#[test]
fn smoke_kernel_exercises_the_device_layer() {
    let Some(gpu) = gpu() else { return };
    let r = sprnn::smoke::run(&gpu, 10_007, seed("smoke")).expect("smoke run");
    assert!(r.passed(), "smoke kernel: {r:?}");
    println!("smoke: {} elements, 0 mismatches, scalar checks passed", r.elements);
}

#[test]
fn every_cell_matches_the_reference_small() {
    let Some(gpu) = gpu() else { return };
    let s = seed("small");
    for (i, cell) in [Cell::RnnRelu, Cell::RnnTanh, Cell::Gru, Cell::Lstm].into_iter().enumerate() {
        for batch in [1, 2, 3, 4, 8] {
            for with_state in [false, true] {
                let c = Case { cell, hidden: 256, batch, density: 0.1, steps: 40 };
                let o = run_case(&gpu, &c, s + (i * 100 + batch) as u64 + with_state as u64, with_state).expect("run");
                println!("{cell:?} H=256 B={batch} state={with_state}: worst {:.2e} at step {} ({})", o.worst, o.worst_step, o.shape);
                assert!(o.worst <= reference::DEVICE_TOLERANCE, "{cell:?} B={batch}: error {} > {}", o.worst, reference::DEVICE_TOLERANCE);
            }
        }
    }
}

#[test]
fn fp16_input_matches_the_reference_on_rounded_input() {
    let Some(gpu) = gpu() else { return };
    let s = seed("fp16 input");
    let (cell, h, batch, steps) = (Cell::Gru, 512, 4, 32);
    let w = sprnn::sparse::random_recurrent(s, 3 * h, h, 0.2, 0.9).unwrap();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(s);
    let b = random_vec(&mut rng, 3 * h, 0.2);
    let u16: Vec<half::f16> = random_vec(&mut rng, steps * batch * 3 * h, 1.0).into_iter().map(half::f16::from_f32).collect();
    let u32: Vec<f32> = u16.iter().map(|x| x.to_f32()).collect();
    let mut layer = SparseRecurrentLayer::new(&gpu, cell, &w, &b, batch, &LayerOptions::default()).unwrap();
    let got = layer.forward(Input::F16(&u16), steps, None, None).unwrap();
    let want = reference::forward_u(cell, &w, &b, reference::Sequences::new(&u32, steps, batch), Precision::device_faithful(layer.products())).unwrap();
    let e = reference::compare_steps(&got.h, &want.h, steps, batch, h);
    println!("fp16 U: worst {:.2e}", e.worst);
    assert!(e.worst <= reference::DEVICE_TOLERANCE);
}

#[test]
fn tags_wrap_around_past_65536_steps() {
    let Some(gpu) = gpu() else { return };
    let s = seed("wrap-around");
    let c = Case { cell: Cell::RnnTanh, hidden: 256, batch: 1, density: 0.1, steps: 70_001 };
    let o = run_case(&gpu, &c, s, true).expect("run");
    println!("T=70001: worst {:.2e} at step {} ({})", o.worst, o.worst_step, o.shape);
    assert!(o.worst <= reference::DEVICE_TOLERANCE);
}

#[test]
fn a_wait_that_never_ends_times_out_and_the_context_survives() {
    let Some(gpu) = gpu() else { return };
    let s = seed("timeout");
    let (cell, h, batch, steps) = (Cell::RnnTanh, 1024, 2, 16);
    let w = sprnn::sparse::random_recurrent(s, h, h, 0.1, 0.9).unwrap();
    let b = vec![0.0; h];
    // The grid kernel's wait (the cluster kernel's: cluster::a_cluster_wait_that_never_ends_…).
    let grid = PlanOptions { mode: Some(ExecMode::Grid), ..PlanOptions::default() };
    let opts = LayerOptions { timeout: Duration::from_millis(50), plan: grid };
    let mut layer = SparseRecurrentLayer::new(&gpu, cell, &w, &b, batch, &opts).unwrap();
    let u = DeviceInput::upload(&gpu, Input::F32(&vec![0.5; layer.input_len(steps)])).unwrap();
    let mut out = layer.alloc_output(steps).unwrap();
    let start = Instant::now();
    let r = layer.forward_never_publish(&u, &mut out);
    let took = start.elapsed();
    println!("never-publish: {r:?} after {took:?}");
    assert!(matches!(r, Err(Error::Timeout { .. })), "expected a timeout, got {r:?}");
    assert!(took < Duration::from_secs(5), "the timeout took {took:?}");
    // The same layer and context still work.
    out.poison(&layer).unwrap();
    layer.forward_device(&u, None, None, &mut out, None).expect("run after a timeout");
    let got = out.to_host(&layer).unwrap();
    let uh = vec![0.5; layer.input_len(steps)];
    let want = reference::forward_u(cell, &w, &b, reference::Sequences::new(&uh, steps, batch), Precision::device_faithful(layer.products())).unwrap();
    assert!(reference::compare_steps(&got.h, &want.h, steps, batch, h).worst <= reference::DEVICE_TOLERANCE);
}

/// The dense slab's warps wait for their own columns only (no CTA barrier before the product):
/// a producer that never publishes still ends every wait in `Error::Timeout`, and the layer
/// then runs correctly.
#[test]
fn a_dense_slab_wait_that_never_ends_times_out() {
    let Some(gpu) = gpu() else { return };
    let s = seed("dense timeout");
    let (cell, batch, steps, grid) = (Cell::RnnTanh, 4, 16, 6);
    let upc = sprnn_kernels::format::dense_rows(2, true);
    let h = grid * upc;
    let warps = (grid * sprnn_kernels::format::exchange_slots(upc, batch)).div_ceil(16 * 8);
    let shape = sprnn::layout::DenseShape { m_tiles: 2, k_tiles_per_warp: 8, warps, half: true };
    let w = sprnn::sparse::random_recurrent(s, h, h, 0.3, 0.9).unwrap();
    let b = vec![0.1; h];
    let plan = sprnn::layout::layout_dense_with(&w, cell, batch, grid, upc, shape).expect("dense layout");
    let mut layer = SparseRecurrentLayer::from_plan(&gpu, &plan, &b, Duration::from_millis(50)).unwrap();
    let uh = vec![0.5; layer.input_len(steps)];
    let u = DeviceInput::upload(&gpu, Input::F32(&uh)).unwrap();
    let mut out = layer.alloc_output(steps).unwrap();
    let start = Instant::now();
    let r = layer.forward_never_publish(&u, &mut out);
    let took = start.elapsed();
    println!("dense never-publish: {r:?} after {took:?} ({})", layer.shape().kernel);
    assert!(matches!(r, Err(Error::Timeout { .. })), "expected a timeout, got {r:?}");
    assert!(took < Duration::from_secs(5), "the timeout took {took:?}");
    let got = run_poisoned(&gpu, &mut layer, &uh, steps, (None, None), None).unwrap();
    let want = reference::forward_u(cell, &w, &b, reference::Sequences::new(&uh, steps, batch), Precision::DeviceFaithful).unwrap();
    assert!(reference::compare_steps(&got.h, &want.h, steps, batch, h).worst <= reference::DEVICE_TOLERANCE);
}

#[test]
fn a_grid_that_cannot_be_resident_is_refused() {
    let Some(gpu) = gpu() else { return };
    let h = 2048;
    let w = sprnn::sparse::random_recurrent(3, h, h, 0.05, 0.9).unwrap();
    // Plan two CTAs per SM on every SM for a GPU with twice this one's shared memory and
    // registers per SM, at a batch whose CTAs need more than half of this GPU's shared memory
    // (but no more than one CTA may have): here only one of them fits per SM.
    let real = gpu.info();
    let mut roomy = real.clone();
    roomy.shared_per_sm *= 2;
    roomy.registers_per_sm *= 2;
    let opts = PlanOptions { ctas_per_sm: Some(2), ctas: Some(2 * real.sm_count), ..PlanOptions::default() };
    let stats = RowStats::of(&w);
    let over_half = |f: Fit| f.smem_bytes > real.shared_per_sm / 2 && f.smem_bytes <= real.shared_per_block_optin;
    let batch = (1..=64)
        .find(|&b| check_fit(&stats, Cell::RnnTanh, b, &roomy, &opts).is_ok_and(over_half))
        .expect("a batch whose CTAs need more than half an SM's shared memory");
    let plan = sprnn::layout::plan(&w, Cell::RnnTanh, batch, &roomy, &opts).unwrap();
    assert_eq!((plan.ctas_per_sm(), plan.grid()), (2, 2 * real.sm_count));
    let r = SparseRecurrentLayer::from_plan(&gpu, &plan, &vec![0.0; h], Duration::from_secs(1));
    println!("over-subscribed plan (B = {batch}, {} bytes per CTA): {:?}", plan.smem_bytes(), r.as_ref().err());
    assert!(matches!(r, Err(Error::NotResident { .. })), "expected NotResident, got {:?}", r.err());
}

#[test]
fn bad_forward_input_gets_typed_errors() {
    let Some(gpu) = gpu() else { return };
    let h = 256;
    let w = sprnn::sparse::random_recurrent(5, h, h, 0.1, 0.9).unwrap();
    let mut layer = SparseRecurrentLayer::new(&gpu, Cell::RnnTanh, &w, &vec![0.0; h], 2, &LayerOptions::default()).unwrap();
    let n = layer.input_len(4);
    let u = vec![0.1f32; n];
    let is_input = |r: sprnn::Result<sprnn::layer::Output>, name: &str| match r {
        Err(Error::Input { name: n, .. }) => assert_eq!(n, name),
        other => panic!("expected Input error for {name}, got {other:?}"),
    };
    is_input(layer.forward(Input::F32(&u), 0, None, None), "steps");
    is_input(layer.forward(Input::F32(&u[..n - 1]), 4, None, None), "u");
    let mut bad = u.clone();
    bad[7] = f32::NAN;
    is_input(layer.forward(Input::F32(&bad), 4, None, None), "u");
    is_input(layer.forward(Input::F32(&u), 4, Some(&[0.0; 3]), None), "h0");
    is_input(layer.forward(Input::F32(&u), 4, None, Some(&vec![0.0; 2 * h])), "c0");
    is_input(layer.forward(Input::F32(&u), 4, Some(&vec![f32::INFINITY; 2 * h]), None), "h0");
    let b = SparseRecurrentLayer::new(&gpu, Cell::RnnTanh, &w, &[0.0; 3], 2, &LayerOptions::default());
    assert!(matches!(b, Err(Error::Input { name: "b_hh", .. })), "{b:?}");
    // The layer still works after rejected calls.
    layer.forward(Input::F32(&u), 4, None, None).expect("valid call");
}

/// The correctness sweep of the kernel issue: every cell × B × H × density, T chosen so the CPU
/// reference stays affordable (up to 1024), each configuration on fresh weights and inputs.
/// Configurations that do not fit on the chip are listed with the planner's reason.
/// Configurations of [`sweep_matches_the_reference`] that must run (not "does not fit"), full
/// sweep. On the H200 (bench/results/2026-11-29-h200-correctness.csv, before B = 32 and
/// H = 5760 joined the sweep) 178 of 256 ran, all at H = 256; a minimum a little below leaves
/// room for another GPU of that class, never for a sweep that silently runs nothing.
const SWEEP_MIN_RAN: usize = 160;
/// The same for the quick sweep (`SPRNN_SWEEP=quick`, H = 256 and 2304): 98 of 128 ran then.
const SWEEP_MIN_RAN_QUICK: usize = 90;

#[test]
fn sweep_matches_the_reference() {
    let Some(gpu) = gpu() else { return };
    let s = seed("sweep");
    let quick = std::env::var("SPRNN_SWEEP").is_ok_and(|v| v == "quick");
    // 5760: the largest H in the benchmark sweep; it fits at low density only (the rest are
    // listed with the planner's reason).
    let hs: &[usize] = if quick { &[256, 2304] } else { &[256, 1152, 2304, 4608, 5760] };
    let mut cases = Vec::new();
    for cell in [Cell::RnnRelu, Cell::RnnTanh, Cell::Gru, Cell::Lstm] {
        for &hidden in hs {
            for batch in [1, 4, 16, 32, 64] {
                for density in [0.01, 0.1, 0.3, 0.5] {
                    let nnz = (cell.gates() * hidden * hidden) as f64 * density;
                    // The reference's emulated fp16 group sums (tanh, GRU, LSTM) cost about
                    // three times its f32 sums: half the budget of products for those layers.
                    let budget = if sprnn::layout::default_products(cell, false) == sprnn::layout::Products::F16 { 1.5e9 } else { 3e9 };
                    let steps = ((budget / (nnz * batch as f64)) as usize).clamp(8, 1024);
                    cases.push(Case { cell, hidden, batch, density, steps });
                }
            }
        }
    }
    let mut lines = vec!["cell,H,B,density,T,max_step_error,worst_step,verdict,launch".to_string()];
    let mut failures = Vec::new();
    let workers = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1).min(8);
    // Cases run on `workers` threads: planning and the reference on the CPU overlap; the GPU
    // runs one launch at a time per layer (each thread owns its layer).
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|sc| {
        for _ in 0..workers {
            sc.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= cases.len() {
                    break;
                }
                let r = run_case(&gpu, &cases[i], s + i as u64 * 7919, i % 2 == 1);
                results.lock().unwrap().push((i, r));
            });
        }
    });
    let mut results = results.into_inner().unwrap();
    results.sort_by_key(|(i, _)| *i);
    let (mut ran, mut skipped) = (0, 0);
    for (i, r) in results {
        let c = &cases[i];
        let head = format!("{:?},{},{},{},{}", c.cell, c.hidden, c.batch, c.density, c.steps);
        match r {
            Ok(o) => {
                ran += 1;
                let ok = o.worst <= reference::DEVICE_TOLERANCE;
                lines.push(format!("{head},{:.3e},{},{},{}", o.worst, o.worst_step, if ok { "pass" } else { "FAIL" }, o.shape));
                if !ok {
                    failures.push(head);
                }
            }
            Err(Error::Plan(e)) => {
                skipped += 1;
                lines.push(format!("{head},,,does not fit,{}", e.to_string().replace(',', ";")));
            }
            Err(e) => {
                lines.push(format!("{head},,,ERROR,{}", e.to_string().replace(',', ";")));
                failures.push(format!("{head}: {e}"));
            }
        }
    }
    let table = lines.join("\n");
    println!("{table}");
    println!("sweep: {ran} configurations ran, {skipped} do not fit, {} failed", failures.len());
    if let Ok(dir) = std::env::var("SPRNN_RESULTS_DIR") {
        std::fs::write(std::path::Path::new(&dir).join("correctness.csv"), &table).unwrap();
    }
    assert!(failures.is_empty(), "failed: {failures:#?}");
    // "Does not fit" is an answer, not a pass: at least this many configurations must have run.
    let min_ran = if quick { SWEEP_MIN_RAN_QUICK } else { SWEEP_MIN_RAN };
    assert!(ran >= min_ran, "only {ran} of {} configurations ran (at least {min_ran} must)", cases.len());
}

/// One sparse kernel variant as the variant twins force it: list length `N`, batch tile `BT`,
/// the cell that exercises it, and its index (`10·i + j` over the lists of `N` and `BT`: the
/// seed).
struct KernelVariant {
    index: u64,
    list_len: usize,
    batch_tile: usize,
    cell: Cell,
}

/// Every `(N, BT)` of the sparse kernels, each with a cell, in the same order for both twins
/// ([`every_kernel_variant_matches_the_reference`] on the GPU,
/// [`every_kernel_variant_plans_on_the_h200_preset`] on the CPU).
fn kernel_variants() -> impl Iterator<Item = KernelVariant> {
    use sprnn_kernels::format::{BATCH_TILES, LIST_LENGTHS};
    LIST_LENGTHS.into_iter().enumerate().flat_map(|(i, list_len)| {
        BATCH_TILES.into_iter().enumerate().flat_map(move |(j, batch_tile)| {
            // One cell of each kernel family per (N, BT).
            [[Cell::RnnTanh, Cell::RnnRelu][(i + j) % 2], [Cell::Lstm, Cell::Gru][(i + j) % 2]]
                .into_iter()
                .enumerate()
                .map(move |(k, cell)| KernelVariant { index: (i * 10 + j) as u64 + 100 * k as u64, list_len, batch_tile, cell })
        })
    })
}

/// The forced shapes each variant runs with: `(threads_per_row, h32, fuse)`. RNN: both
/// hidden-state types with the fused cell and the separate phase; GRU and LSTM: 8 threads per
/// row (a unit's gate rows share a warp: the fused cell, both types, and the separate phase)
/// and 32 (the rows do not fit one warp: the separate phase).
fn variant_shapes(cell: Cell) -> &'static [(usize, bool, bool, Products)] {
    use Products::{F16, F32};
    if cell.gates() > 1 {
        &[(8, true, true, F32), (8, false, true, F16), (8, false, false, F16), (8, false, true, F32), (32, false, true, F16)]
    } else {
        &[(32, true, true, F32), (32, false, true, F16), (32, false, true, F32), (32, true, false, F32), (32, false, false, F16)]
    }
}

/// Every kernel variant `(N, BT, H32)` against the reference and (RNN) both cell placements: the
/// list length and the hidden-state type are forced through `PlanOptions` and the batch tile
/// through the batch size. Small enough to run under compute-sanitizer
/// (`bundle/run.sh sanitize`).
#[test]
fn every_kernel_variant_matches_the_reference() {
    let Some(gpu) = gpu() else { return };
    let s = seed("variants");
    let (h, steps) = (256, 12);
    for KernelVariant { index, list_len: n, batch_tile: bt, cell } in kernel_variants() {
        let g = cell.gates();
        let seed = s + index;
        let w = sprnn::sparse::random_recurrent(seed, g * h, h, 0.2, 0.9).unwrap();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let b = random_vec(&mut rng, g * h, 0.2);
        let u = random_vec(&mut rng, steps * bt * g * h, 1.0);
        for &(tpr, h32, fuse, products) in variant_shapes(cell) {
            let want = reference::forward_u(cell, &w, &b, reference::Sequences::new(&u, steps, bt), Precision::device_faithful(products)).unwrap();
            let opts = PlanOptions { list_len: Some(n), threads_per_row: Some(tpr), hidden_f32: Some(h32), products: Some(products), mode: Some(ExecMode::Grid), ..PlanOptions::default() };
            let plan = sprnn::layout::plan(&w, cell, bt, gpu.info(), &opts).expect("plan");
            assert_eq!((plan.list_len(), plan.batch_tile(), plan.hidden_f32(), plan.products()), (n, bt, h32, products));
            let mut layer = SparseRecurrentLayer::from_plan_variant(&gpu, &plan, &b, Duration::from_secs(1), sprnn::KernelVariant { fuse_cell: fuse }).unwrap();
            let got = run_poisoned(&gpu, &mut layer, &u, steps, (None, None), None).unwrap();
            let e = reference::compare_steps(&got.h, &want.h, steps, bt, h);
            println!("{cell:?} N={n} BT={bt} TPR={tpr} h32={h32} fused={fuse} {products:?}: worst {:.2e} ({})", e.worst, layer.shape().kernel);
            assert!(e.worst <= reference::DEVICE_TOLERANCE, "{cell:?} N={n} BT={bt} TPR={tpr} h32={h32} fused={fuse} {products:?}: {}", e.worst);
        }
    }
}

/// The cell's `tanh` and `sigmoid` as the GPU computes them (`ex2.approx` and `rcp.approx`)
/// within the bounds their docs state against `f64` (`sprnn_kernels::device::{tanh, sigmoid}`):
/// `tanh` at most `(2|x| + 8) · 2^-24` absolute (`|x|` capped at 20, where it is 1 within
/// `2^-24`) and `2^-22` relative below `|x| = 2^-4`; `sigmoid` at most `(|x| + 8) · 2^-24`
/// relative up to `|x| = 80` and below `2^-126` beyond. Four million points on [-40, 40], the
/// series' edge, powers of two, infinities and the extremes.
#[test]
fn gpu_tanh_and_sigmoid_are_within_their_bounds() {
    let Some(gpu) = gpu() else { return };
    let mut xs: Vec<f32> = (0..=4_000_000).map(|i| -40.0 + 80.0 * (i as f64 / 4e6) as f32).collect();
    for e in -30..8 {
        let p = 2f32.powi(e);
        for v in [p, -p, p * (1.0 + f32::EPSILON), p * (1.0 - f32::EPSILON / 2.0)] {
            xs.push(v);
        }
    }
    xs.extend([0.0, -0.0, 0.0625, -0.0625, 0.062_499_996, 80.0, -80.0, 100.0, -100.0, f32::INFINITY, f32::NEG_INFINITY, f32::MAX, f32::MIN]);
    let got = sprnn::smoke::math(&gpu, &xs).expect("math kernel");
    let ulp = 2f64.powi(-24);
    let (mut worst_t, mut worst_s) = (0f64, 0f64);
    for (&x, &(t, s)) in xs.iter().zip(&got) {
        let xd = x as f64;
        let ax = xd.abs();
        let (tw, sw) = (xd.tanh(), 1.0 / (1.0 + (-xd).exp()));
        assert!(!t.is_nan() && !s.is_nan(), "x = {x:e}: tanh {t}, sigmoid {s}");
        let dt = (t as f64 - tw).abs();
        let tb = if ax < 0.0625 { 2f64.powi(-22) * tw.abs() } else { (2.0 * ax.min(20.0) + 8.0) * ulp };
        assert!(dt <= tb, "tanh({x:e}) = {t:e}, f64 {tw:e}: error {dt:.3e} > {tb:.3e}");
        let ds = (s as f64 - sw).abs();
        let sb = if ax <= 80.0 { (ax + 8.0) * ulp * sw } else { 2f64.powi(-126) };
        assert!(ds <= sb, "sigmoid({x:e}) = {s:e}, f64 {sw:e}: error {ds:.3e} > {sb:.3e}");
        if ax.is_finite() && ax <= 20.0 {
            worst_t = worst_t.max(dt / tb);
            worst_s = worst_s.max(ds / sb);
        }
    }
    println!("tanh: worst error {worst_t:.3} of its bound; sigmoid: {worst_s:.3} of its bound ({} points)", xs.len());
}

/// `Products::F16` on the GPU is bit for bit its CPU twin, `Plan::simulate_matvec`: one step of
/// an RNN-ReLU layer with zero inputs and bias gives `h_1 = relu(W·h0)` rounded to step 1's
/// tagged fp16 value, with no other rounding between the product and the output; every list
/// length and batch tile of the RNN family, the output poisoned first.
#[test]
fn fp16_products_are_their_cpu_twin_bit_for_bit() {
    use sprnn_kernels::format::{BATCH_TILES, LIST_LENGTHS};
    let Some(gpu) = gpu() else { return };
    let s = seed("fp16 products");
    let mut ran = 0;
    for (i, &n) in LIST_LENGTHS.iter().enumerate() {
        for &bt in &BATCH_TILES {
            let (differ, of) = fp16_products_against_their_twin(&gpu, s + (i * 8 + bt) as u64, n, bt);
            assert_eq!(differ, 0, "N={n} BT={bt}: {differ} of {of} values differ from the CPU twin");
            ran += 1;
        }
    }
    assert_eq!(ran, LIST_LENGTHS.len() * BATCH_TILES.len());
}

/// One step of a random RNN-ReLU layer (H = 256, `h0` from `seed`) with list length `n`, batch
/// tile `bt` and fp16 products on the GPU against `Plan::simulate_matvec`: how many of `h_1`'s
/// values differ in their bits, of how many.
fn fp16_products_against_their_twin(gpu: &Gpu, seed: u64, n: usize, bt: usize) -> (usize, usize) {
    use sprnn_kernels::format::{tag_bit, tag_round};
    let h = 256;
    let w = sprnn::sparse::random_recurrent(seed, h, h, 0.2, 0.9).unwrap();
    let opts = PlanOptions { list_len: Some(n), threads_per_row: Some(32), products: Some(Products::F16), mode: Some(ExecMode::Grid), ..PlanOptions::default() };
    let plan = sprnn::layout::plan(&w, Cell::RnnRelu, bt, gpu.info(), &opts).expect("plan");
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let h0 = random_vec(&mut rng, bt * h, 1.0);
    let mut layer = SparseRecurrentLayer::from_plan(gpu, &plan, &vec![0.0; h], Duration::from_secs(1)).unwrap();
    let got = run_poisoned(gpu, &mut layer, &vec![0.0; bt * h], 1, (Some(&h0), None), None).unwrap();
    let want: Vec<f32> = plan
        .simulate_matvec(&h0)
        .into_iter()
        .map(|a| {
            let x = if a > 0.0 { a } else { 0.0 };
            let bits = tag_round(x, half::f16::from_f32(x).to_bits(), tag_bit(1), |b| half::f16::from_bits(b).to_f32());
            half::f16::from_bits(bits).to_f32()
        })
        .collect();
    (got.h.iter().zip(&want).filter(|(g, w)| g.to_bits() != w.to_bits()).count(), want.len())
}

/// Every dense slab variant `(MT, KW)` against the reference: a layer whose CTAs hold between
/// `16·(MT-1)` and `16·MT` gate rows, laid out with that variant, every cell and B = 1, 2, 4, 8,
/// with `h0` (and LSTM `c0`).
#[test]
fn every_dense_variant_matches_the_reference() {
    let Some(gpu) = gpu() else { return };
    let s = seed("dense variants");
    let steps = 12;
    let mut ran = 0;
    // The half variants (RNN cells only) at every batch they run: each stores the gathered
    // chunks its own way (B = 1, 2, 4, 8).
    let cases = sprnn_kernels::format::DENSE_SHAPES.into_iter().enumerate().flat_map(|(i, (mt, kw, half))| {
        let batches: Vec<usize> = if half { vec![1, 2, 4, 8] } else { vec![[1usize, 2, 4, 8][(i / 4) % 4]] };
        batches.into_iter().enumerate().map(move |(j, batch)| (i + j, mt, kw, half, batch))
    });
    let mut cases_run = 0;
    for (i, mt, kw, half, batch) in cases {
        cases_run += 1;
        let cell = if half { [Cell::RnnTanh, Cell::RnnRelu][i % 2] } else { [Cell::RnnTanh, Cell::Lstm, Cell::Gru, Cell::RnnRelu][i % 4] };
        let g = cell.gates();
        let upc = sprnn_kernels::format::dense_rows(mt, half) / g;
        let grid = 6;
        let h = grid * upc;
        let slots = sprnn_kernels::format::exchange_slots(upc, batch);
        let warps = (grid * slots).div_ceil(16 * kw);
        let shape = sprnn::layout::DenseShape { m_tiles: mt, k_tiles_per_warp: kw, warps, half };
        let seed = s + i as u64;
        let w = sprnn::sparse::random_recurrent(seed, g * h, h, 0.3, 0.9).unwrap();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let b = random_vec(&mut rng, g * h, 0.2);
        let u = random_vec(&mut rng, steps * batch * g * h, 1.0);
        let h0 = random_vec(&mut rng, batch * h, 0.5);
        let c0 = (cell == Cell::Lstm).then(|| random_vec(&mut rng, batch * h, 0.5));
        let plan = sprnn::layout::layout_dense_with(&w, cell, batch, grid, upc, shape).expect("dense layout");
        let want = reference::forward_u(cell, &w, &b, reference::Sequences::new(&u, steps, batch).with_state(Some(&h0), c0.as_deref()), Precision::DeviceFaithful).unwrap();
        let mut layer = SparseRecurrentLayer::from_plan(&gpu, &plan, &b, Duration::from_secs(1)).unwrap();
        let got = run_poisoned(&gpu, &mut layer, &u, steps, (Some(&h0), c0.as_deref()), None).unwrap();
        let e = reference::compare_steps(&got.h, &want.h, steps, batch, h);
        println!("{cell:?} MT={mt} KW={kw} half={half} warps={warps} B={batch} H={h}: worst {:.2e} ({})", e.worst, layer.shape().kernel);
        assert!(e.worst <= reference::DEVICE_TOLERANCE, "MT={mt} KW={kw} half={half}: {}", e.worst);
        if let (Some(gc), Some(wc)) = (&got.c, &want.c) {
            let ec = gc.iter().zip(wc).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
            assert!(ec <= 1e-2, "MT={mt} KW={kw} half={half}: c off by {ec}");
        }
        ran += 1;
    }
    assert_eq!(ran, cases_run);
    assert!(ran >= sprnn_kernels::format::DENSE_SHAPES.len());
}

/// The driver's JIT (not only the offline ptxas of `cargo xtask build-ptx`) compiles every
/// recurrent variant without local memory: no spills in the step loop on the GPU that runs it.
#[test]
fn the_driver_compiles_every_variant_without_local_memory() {
    let Some(gpu) = gpu() else { return };
    let regs = &gpu.info().kernel_registers;
    for (&(n, bt, h32, gated, local), &(_, _, _, _, r)) in gpu.kernel_local_bytes().iter().zip(regs) {
        println!("N={n:<3} BT={bt} h32={h32} gated={gated}: {r} registers (budget {}), {local} bytes local memory", sprnn_kernels::format::register_budget(n, bt, h32, gated));
    }
    let spilled: Vec<_> = gpu.kernel_local_bytes().iter().filter(|v| v.4 > 0).collect();
    assert!(spilled.is_empty(), "variants with local memory under the driver's JIT: {spilled:?}");
    assert_eq!(
        gpu.kernel_local_bytes().len(),
        sprnn_kernels::format::LIST_LENGTHS.len()
            * sprnn_kernels::format::BATCH_TILES.len()
            * sprnn_kernels::format::HIDDEN_F32.len()
            * sprnn_kernels::format::GATED.len()
    );
}

/// CPU twin of [`every_kernel_variant_matches_the_reference`]: the same forced plans on the H200
/// preset exist for every variant, and each plan's product (simulated from its packed words)
/// matches `W·h` on the fp16-rounded weights: within f32 rounding with `Products::F32`, and
/// within the stated bound of `Products::F16` (`γ_8 = 8u / (1 − 8u)`, `u = 2^-11`, of the sum of
/// the products' magnitudes, plus `2^-25` per word for fp16's subnormal range).
#[test]
fn every_kernel_variant_plans_on_the_h200_preset() {
    let h = 256;
    for KernelVariant { index, list_len: n, batch_tile: bt, cell } in kernel_variants() {
        let g = cell.gates();
        let w = sprnn::sparse::random_recurrent(index, g * h, h, 0.2, 0.9).unwrap();
        for &(tpr, h32, _, products) in variant_shapes(cell) {
            let opts = PlanOptions { list_len: Some(n), threads_per_row: Some(tpr), hidden_f32: Some(h32), products: Some(products), mode: Some(ExecMode::Grid), ..PlanOptions::default() };
            let plan = sprnn::layout::plan(&w, cell, bt, &sprnn::layout::DeviceInfo::h200(), &opts).expect("plan");
            assert_eq!((plan.list_len(), plan.batch_tile(), plan.products()), (n, bt, products));
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
            let hv: Vec<f32> = random_vec(&mut rng, bt * h, 1.0).into_iter().map(|x| half::f16::from_f32(x).to_f32()).collect();
            let got = plan.simulate_matvec(&hv);
            let w16 = w.map_values(|v| half::f16::from_f32(v).to_f32()).unwrap();
            let w_abs = w16.map_values(f32::abs).unwrap();
            for b in 0..bt {
                let hb = &hv[b * h..(b + 1) * h];
                let want = w16.spmv(hb);
                let mag = w_abs.spmv(&hb.iter().map(|v| v.abs()).collect::<Vec<_>>());
                for r in 0..g * h {
                    let d = (got[b * g * h + r] - want[r]).abs() as f64;
                    let bound = match products {
                        Products::F32 => 1e-4 * (1.0 + want[r].abs() as f64),
                        Products::F16 => sprnn::fp16::group_sum_error_bound(mag[r] as f64, n * tpr) + 1e-6 * (1.0 + mag[r] as f64),
                    };
                    assert!(d <= bound, "{cell:?} N={n} BT={bt} TPR={tpr} {products:?} b={b} row {r}: {} vs {} (bound {bound:.2e})", got[b * g * h + r], want[r]);
                }
            }
        }
    }
}

/// Resident set size of this process, bytes (Linux).
fn rss_bytes() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: usize = statm.split_whitespace().nth(1).and_then(|v| v.parse().ok()).unwrap_or(0);
    pages * 4096
}

/// Building and dropping a layer 10,000 times leaves device and host memory flat.
#[test]
fn building_and_dropping_layers_does_not_leak() {
    let Some(gpu) = gpu() else { return };
    let h = 512;
    let w = sprnn::sparse::random_recurrent(11, 4 * h, h, 0.1, 0.9).unwrap();
    let b = vec![0.01; 4 * h];
    let plan = sprnn::layout::plan(&w, Cell::Lstm, 4, gpu.info(), &PlanOptions::default()).unwrap();
    let build = || {
        let l = SparseRecurrentLayer::from_plan(&gpu, &plan, &b, Duration::from_secs(1)).unwrap();
        drop(l);
    };
    for _ in 0..50 {
        build();
    }
    let (free0, _) = gpu.memory().unwrap();
    let rss0 = rss_bytes();
    for _ in 0..10_000 {
        build();
    }
    let (free1, _) = gpu.memory().unwrap();
    let rss1 = rss_bytes();
    println!("device free {free0} -> {free1} bytes; host RSS {rss0} -> {rss1} bytes");
    // Allocation granularity leaves small differences; a leak of one layer per build would be
    // 10,000 × (weights + buffers) ≫ 8 MiB.
    assert!(free0.abs_diff(free1) < 8 << 20, "device memory moved by {} bytes", free0.abs_diff(free1));
    assert!(rss1 < rss0 + (16 << 20), "host memory grew by {} bytes", rss1.saturating_sub(rss0));
}

/// Several layers on several threads and streams at once give bit-identical results to
/// sequential runs.
#[test]
fn concurrent_layers_match_sequential_runs_bit_for_bit() {
    let Some(gpu) = gpu() else { return };
    let s = seed("concurrency");
    let (h, batch, steps) = (768, 2, 64);
    let cells = [Cell::RnnTanh, Cell::Gru, Cell::Lstm, Cell::RnnRelu];
    let setups: Vec<_> = cells
        .iter()
        .enumerate()
        .map(|(i, &cell)| {
            let g = cell.gates();
            let w = sprnn::sparse::random_recurrent(s + i as u64, g * h, h, 0.1, 0.9).unwrap();
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(s + 100 + i as u64);
            let b = random_vec(&mut rng, g * h, 0.2);
            let u = random_vec(&mut rng, steps * batch * g * h, 1.0);
            (cell, w, b, u)
        })
        .collect();
    let run = |(cell, w, b, u): &(Cell, sprnn::Csr, Vec<f32>, Vec<f32>), stream: Option<&Stream>| {
        let mut layer = SparseRecurrentLayer::new(&gpu, *cell, w, b, batch, &LayerOptions::default()).unwrap();
        run_poisoned(&gpu, &mut layer, u, steps, (None, None), stream).unwrap()
    };
    let sequential: Vec<_> = setups.iter().map(|x| run(x, None)).collect();
    for round in 0..3 {
        let concurrent: Vec<_> = std::thread::scope(|sc| {
            let handles: Vec<_> = setups
                .iter()
                .map(|x| {
                    let gpu = gpu.clone();
                    let run = &run;
                    sc.spawn(move || {
                        gpu.make_current().unwrap();
                        let stream = sprnn::cust::stream::Stream::new(sprnn::cust::stream::StreamFlags::NON_BLOCKING, None).unwrap();
                        run(x, Some(&stream))
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for (i, (a, b)) in sequential.iter().zip(&concurrent).enumerate() {
            assert!(a.h.iter().zip(&b.h).all(|(x, y)| x.to_bits() == y.to_bits()), "round {round}, layer {i}: h differs");
            assert_eq!(a.c.as_ref().map(|c| c.iter().map(|v| v.to_bits()).collect::<Vec<_>>()), b.c.as_ref().map(|c| c.iter().map(|v| v.to_bits()).collect::<Vec<_>>()));
        }
    }
    println!("4 layers on 4 threads and streams, 3 rounds: bit-identical to sequential runs");
}

#[test]
fn handles_are_send_and_sync() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Gpu>();
    send_sync::<SparseRecurrentLayer>();
}

/// The launch shapes that counting the padded exchange gave more threads (bench/RESULTS.md,
/// session 13: B = 1–3 layers whose CTAs' shares are padded to whole stores; the padding
/// threads only gather in the gather-heavy gated family and multiply padding words in the RNN
/// family), each against the reference on poisoned outputs; the grid plans of the first five
/// give every thread one poll.
#[test]
fn plans_widened_for_the_padded_exchange_match_the_reference() {
    let Some(gpu) = gpu() else { return };
    let s = seed("padded exchange");
    let cases = [
        (Case { cell: Cell::Lstm, hidden: 768, batch: 1, density: 0.1, steps: 48 }, true),
        (Case { cell: Cell::Gru, hidden: 768, batch: 1, density: 0.1, steps: 48 }, true),
        (Case { cell: Cell::RnnTanh, hidden: 1152, batch: 1, density: 0.3, steps: 48 }, true),
        (Case { cell: Cell::Lstm, hidden: 1152, batch: 2, density: 0.1, steps: 32 }, true),
        (Case { cell: Cell::RnnTanh, hidden: 1760, batch: 3, density: 0.1, steps: 32 }, true),
        (Case { cell: Cell::Gru, hidden: 4608, batch: 1, density: 0.01, steps: 32 }, false),
        (Case { cell: Cell::Lstm, hidden: 4608, batch: 1, density: 0.1, steps: 8 }, false),
    ];
    for (i, (c, one_poll)) in cases.iter().enumerate() {
        let o = run_case(&gpu, c, s + i as u64, i % 2 == 0).expect("run");
        println!("{:?} H={} B={} d={}: worst {:.2e} at step {} ({})", c.cell, c.hidden, c.batch, c.density, o.worst, o.worst_step, o.shape);
        assert!(o.worst <= reference::DEVICE_TOLERANCE, "{:?} H={} B={}: {}", c.cell, c.hidden, c.batch, o.worst);
        let w = sprnn::sparse::random_recurrent(s + i as u64, c.cell.gates() * c.hidden, c.hidden, c.density, 0.9).unwrap();
        let p = sprnn::layout::plan(&w, c.cell, c.batch, gpu.info(), &PlanOptions::default()).unwrap();
        if *one_poll && p.cluster_size().is_none() {
            let polls = sprnn::layout::gather_chunks(p.columns(), c.batch, p.threads_per_cta());
            assert_eq!(polls, 1, "{:?} H={} B={}: {} threads", c.cell, c.hidden, c.batch, p.threads_per_cta());
        }
    }
}
