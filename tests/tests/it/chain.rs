//! Whole models as one chain (`sprnn::model`): the stream-ordered forward pass, its per-layer
//! timing, its capture as a CUDA graph, the deferred status checks, and the schedule of a
//! bidirectional layer's two directions.
//!
//! CPU twins: the schedule's cost model on the H200 preset, which layers' joins are fused into
//! the next layer's projections, the timing report, the layer context of a model's errors. GPU
//! tests (printing "skipped: no CUDA device" without one): chained models of 1–3 layers, uni-
//! and bidirectional, every cell and every direction schedule, against the reference, into
//! NaN-poisoned buffers; fused joins bit for bit against the same model keeping every join,
//! directly and as a graph; graph replays bit for bit against `forward_device`, twice and with
//! new input; a forced timeout inside a chain and inside a graph, reported as the layer's
//! `Error::Timeout` within the wait bound.

use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use sprnn::cust::memory::DeviceBuffer;
use sprnn::layout::{check_mode, DeviceInfo, PlanOptions, RowStats};
use sprnn::model::{choose_schedule, fused_joins, half_device, DirectionSchedule, ModelOptions, ModelTiming, AT_ONCE_MARGIN};
use sprnn::weights::ModelWeights;
use sprnn::reference::{forward_model, Sequences, DEVICE_TOLERANCE};
use sprnn::{Cell, Error, LayerOptions, Model};

use crate::common::{gpu, random_vec, says, seed};
use crate::model::{assert_same_bits, bits, device_faithful, fp16, model_error, random_model, run_poisoned, InputWeights};

const CELLS: [Cell; 4] = [Cell::RnnRelu, Cell::RnnTanh, Cell::Gru, Cell::Lstm];

// ---------------------------------------------------------------------------------------------
// The schedule of two directions (CPU)
// ---------------------------------------------------------------------------------------------

/// The planner's estimate (µs per step) and grid of a layer on `device`, or its refusal.
fn try_estimate(stats: &RowStats, cell: Cell, batch: usize, device: &DeviceInfo) -> Option<(f64, usize)> {
    let m = check_mode(stats, cell, batch, device, &PlanOptions::default()).ok()?;
    let us = if m.fit.cluster.is_some() { m.cluster_us } else { m.grid_us };
    Some((us.expect("a sparse plan has an estimate"), m.fit.geometry.grid))
}

/// [`try_estimate`] of a layer that fits.
fn estimate(stats: &RowStats, cell: Cell, batch: usize, device: &DeviceInfo) -> (f64, usize) {
    try_estimate(stats, cell, batch, device).expect("the layer fits")
}

#[test]
fn the_schedule_follows_the_planners_estimates() {
    let h200 = DeviceInfo::h200();
    let opts = PlanOptions::default();
    // (cell, H, nonzeros per row, B): small layers whose whole-GPU grids fit side by side, and
    // large ones planned to fill the GPU.
    let cases = [
        (Cell::Gru, 256, 26, 4),
        (Cell::Lstm, 512, 51, 4),
        (Cell::RnnTanh, 2304, 691, 4),
        (Cell::Gru, 1024, 102, 4),
        (Cell::Lstm, 1152, 115, 4),
        (Cell::RnnTanh, 4608, 461, 1),
    ];
    for (cell, hidden, row, batch) in cases {
        let stats = RowStats::uniform(cell, hidden, row);
        let case = format!("{cell:?} H={hidden} row={row} B={batch}");
        let (full_us, full_grid) = estimate(&stats, cell, batch, &h200);
        let auto = choose_schedule([&stats, &stats], cell, batch, &h200, &opts, DirectionSchedule::Auto).unwrap();
        println!("{case}: {auto:?}");
        let in_turn = auto.in_turn_us.unwrap();
        assert!((in_turn - 2.0 * full_us).abs() < 1e-9, "{case}: in turn is the sum of both estimates");
        if 2 * full_grid <= h200.sm_count {
            assert!(auto.concurrent && !auto.half_sms, "{case}: grids that fit side by side run at once as planned");
            assert!((auto.at_once_us.unwrap() - full_us).abs() < 1e-9);
            says(&auto.reason, &["at once", "side by side"]);
        } else if let Some((half_us, half_grid)) = try_estimate(&stats, cell, batch, &half_device(&h200)) {
            assert!(2 * half_grid <= h200.sm_count, "{case}: half plans fit side by side");
            assert_eq!(auto.at_once_us, Some(half_us), "{case}: at once is the half plans' estimate");
            assert_eq!(auto.concurrent, half_us < AT_ONCE_MARGIN * in_turn, "{case}: the cheaper by the estimates, with the margin");
            assert_eq!(auto.half_sms, auto.concurrent, "{case}");
            says(&auto.reason, &[if auto.concurrent { "at once on half the SMs" } else { "in turn" }, "66 SMs"]);
        } else {
            assert!(!auto.concurrent && !auto.half_sms, "{case}: a layer that does not fit half the SMs runs in turn");
            says(&auto.reason, &["in turn", "does not fit on half the SMs"]);
            assert!(choose_schedule([&stats, &stats], cell, batch, &h200, &opts, DirectionSchedule::Concurrent).is_err(), "{case}");
            continue;
        }
        // Both ways forced, whatever the estimates say.
        let seq = choose_schedule([&stats, &stats], cell, batch, &h200, &opts, DirectionSchedule::Sequential).unwrap();
        assert!(!seq.concurrent && !seq.half_sms, "{case}");
        says(&seq.reason, &["in turn", "forced"]);
        let conc = choose_schedule([&stats, &stats], cell, batch, &h200, &opts, DirectionSchedule::Concurrent).unwrap();
        assert!(conc.concurrent, "{case}");
        assert_eq!(conc.half_sms, 2 * full_grid > h200.sm_count, "{case}: half the SMs only where needed");
        says(&conc.reason, &["at once", "forced"]);
    }
}

#[test]
fn the_schedule_refuses_what_the_planner_refuses() {
    let h200 = DeviceInfo::h200();
    // Too many nonzeros for one GPU: refused on the whole GPU whatever the schedule.
    let stats = RowStats::uniform(Cell::Lstm, 4608, 4608);
    for schedule in [DirectionSchedule::Auto, DirectionSchedule::Sequential, DirectionSchedule::Concurrent] {
        assert!(choose_schedule([&stats, &stats], Cell::Lstm, 4, &h200, &PlanOptions::default(), schedule).is_err(), "{schedule:?}");
    }
    assert_eq!(DirectionSchedule::Auto.name(), "auto");
    assert_eq!(DirectionSchedule::Sequential.name(), "in-turn");
    assert_eq!(DirectionSchedule::Concurrent.name(), "at-once");
}

// ---------------------------------------------------------------------------------------------
// Which joins run (CPU)
// ---------------------------------------------------------------------------------------------

/// Which directions of which layers have a dense `W_ih` (layer, direction).
type DensePattern = fn(usize, usize) -> bool;

/// A model of `layers` bidirectional layers whose layer `l`, direction `d` has a dense `W_ih`
/// where `dense(l, d)` (fp16 values), a sparse one elsewhere.
fn mixed_model(cell: Cell, layers: usize, dense: impl Fn(usize, usize) -> bool) -> ModelWeights {
    let (input, hidden) = (12, 16);
    let d = random_model(7, cell, input, hidden, layers, 2, InputWeights::DenseFp16);
    let sp = random_model(7, cell, input, hidden, layers, 2, InputWeights::Sparse);
    let stack = (0..layers).map(|l| (0..2).map(|k| if dense(l, k) { d.layer(l, k).clone() } else { sp.layer(l, k).clone() }).collect()).collect();
    ModelWeights::new(cell, stack).unwrap()
}

#[test]
fn joins_are_fused_only_below_a_dense_projection_and_never_for_the_last_layer() {
    let cell = Cell::Gru;
    // Unidirectional: no join at all, so nothing to fuse.
    assert_eq!(fused_joins(&random_model(1, cell, 12, 16, 3, 1, InputWeights::DenseFp16)), [false; 3]);
    // One bidirectional layer: its join is the model's output.
    assert_eq!(fused_joins(&random_model(2, cell, 12, 16, 1, 2, InputWeights::DenseFp16)), [false]);
    // Dense everywhere: every join but the last one's.
    assert_eq!(fused_joins(&random_model(3, cell, 12, 16, 3, 2, InputWeights::DenseFp16)), [true, true, false]);
    // Sparse everywhere: the CSR projections read the joined f32 rows.
    assert_eq!(fused_joins(&random_model(4, cell, 12, 16, 3, 2, InputWeights::Sparse)), [false; 3]);
    // (pattern of dense W_ih per layer and direction, expected): what counts is the layer
    // above's W_ih, both of its directions; a layer's own W_ih does not.
    let cases: [(&str, DensePattern, usize, &[bool]); 5] = [
        ("layer 0 sparse, the rest dense", |l, _| l > 0, 3, &[true, true, false]),
        ("layer 1 sparse", |l, _| l != 1, 3, &[false, true, false]),
        ("layer 2 sparse", |l, _| l != 2, 3, &[true, false, false]),
        ("layer 1's reverse direction sparse", |l, d| !(l == 1 && d == 1), 2, &[false, false]),
        ("layer 1's forward direction sparse", |l, d| !(l == 1 && d == 0), 3, &[false, true, false]),
    ];
    for (case, dense, layers, want) in cases {
        assert_eq!(fused_joins(&mixed_model(cell, layers, dense)), want, "{case}");
    }
}

// ---------------------------------------------------------------------------------------------
// Timing report and errors (CPU)
// ---------------------------------------------------------------------------------------------

#[test]
fn the_timing_report_has_every_layer_and_the_rest() {
    let t = ModelTiming {
        recurrent_ms: vec![2.0, 1.0],
        kernel_ms: vec![vec![1.0, 1.0], vec![0.5, 0.5]],
        projection_ms: vec![0.25, 0.125],
        join_ms: vec![0.125, 0.0625],
        concurrent: vec![false, true],
        gpu_ms: 3.75,
        total_ms: 4.0,
    };
    assert!((t.recurrent_total_ms() - 3.0).abs() < 1e-12);
    assert!((t.other_ms() - 0.4375).abs() < 1e-9);
    let r = t.report(1000);
    println!("{r}");
    let lines: Vec<&str> = r.lines().collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0], "layer 0: recurrent 2.000 (forward 1.000, reverse 1.000, in turn), projection 0.250, join 0.125 us per step");
    assert_eq!(lines[1], "layer 1: recurrent 1.000 (forward 0.500, reverse 0.500, at once), projection 0.125, join 0.062 us per step");
    assert_eq!(lines[2], "other: 0.438 us per step (10.9 % of the wall time); whole model 4.000 us per step (GPU span 3.750)");
    let uni = ModelTiming {
        recurrent_ms: vec![1.0],
        kernel_ms: vec![vec![1.0]],
        projection_ms: vec![0.5],
        join_ms: vec![0.0],
        concurrent: vec![false],
        gpu_ms: 1.5,
        total_ms: 2.0,
    };
    assert!(uni.report(10).starts_with("layer 0: recurrent 100.000, projection 50.000, join 0.000 us per step\n"));
}

#[test]
fn a_layer_error_names_the_layer_and_keeps_the_kernels_error() {
    let e = Error::InLayer { layer: 1, direction: 1, directions: 2, source: Box::new(Error::Timeout { cta: 3, timeout_ms: 50.0 }) };
    says(&e, &["layer 1 (reverse)", "timed out", "CTA 3"]);
    assert!(matches!(e.root(), Error::Timeout { cta: 3, .. }));
    let uni = Error::InLayer { layer: 0, direction: 0, directions: 1, source: Box::new(Error::KernelStatus { code: 9, cta: 0 }) };
    assert!(uni.to_string().starts_with("layer 0: "), "{uni}");
    let plain = Error::Timeout { cta: 0, timeout_ms: 1.0 };
    assert!(std::ptr::eq(plain.root(), &plain));
}

// ---------------------------------------------------------------------------------------------
// GPU: the chain, its timing, the graph, a timeout inside
// ---------------------------------------------------------------------------------------------

/// Checks the timing of a pass over a model of `layers` layers, whose layer `l`'s join is fused
/// into the next layer's projections where `fused[l]`.
fn check_timing(t: &ModelTiming, layers: usize, dirs: usize, fused: &[bool], case: &str) {
    assert_eq!(t.recurrent_ms.len(), layers, "{case}");
    assert_eq!(fused.len(), layers, "{case}");
    for (l, &fused) in fused.iter().enumerate() {
        assert_eq!(t.kernel_ms[l].len(), dirs, "{case}");
        assert!(t.recurrent_ms[l] > 0.0 && t.kernel_ms[l].iter().all(|&k| k > 0.0 && k <= t.recurrent_ms[l] * 1.001 + 1e-3), "{case}: {t:?}");
        assert!(t.projection_ms[l] >= 0.0 && t.join_ms[l] >= 0.0, "{case}: {t:?}");
        if dirs == 1 {
            assert_eq!(t.join_ms[l], 0.0, "{case}: a unidirectional layer has no join");
        } else if fused {
            assert_eq!(t.join_ms[l], 0.0, "{case}: layer {l}'s join is fused into the next projections: {t:?}");
        } else {
            assert!(t.join_ms[l] > 0.0, "{case}: the join takes a kernel: {t:?}");
        }
    }
    assert!(t.gpu_ms > 0.0 && (t.gpu_ms as f64) <= t.total_ms * 1.001 + 1e-3, "{case}: {t:?}");
    let parts: f64 = (0..layers).map(|l| (t.recurrent_ms[l] + t.projection_ms[l] + t.join_ms[l]) as f64).sum();
    assert!(parts <= t.gpu_ms as f64 * 1.001 + 1e-3, "{case}: the parts ({parts} ms) exceed the chain's span: {t:?}");
    assert!(t.other_ms() >= -1e-3, "{case}: {t:?}");
}

#[test]
fn chained_models_match_the_reference_with_every_schedule() {
    let Some(gpu) = gpu() else { return };
    let s = seed("chained models");
    let (input, hidden, batch, steps) = (37, 72, 3, 13);
    for (i, cell) in CELLS.into_iter().enumerate() {
        for layers in 1..=3 {
            for dirs in [1, 2] {
                let schedules: &[DirectionSchedule] =
                    if dirs == 2 { &[DirectionSchedule::Auto, DirectionSchedule::Sequential, DirectionSchedule::Concurrent] } else { &[DirectionSchedule::Auto] };
                let k = s + (100 * i + 10 * layers + dirs) as u64;
                let weights = random_model(k, cell, input, hidden, layers, dirs, InputWeights::DenseFp16);
                let mut rng = ChaCha8Rng::seed_from_u64(k ^ 0xC4A1);
                let x = fp16(&random_vec(&mut rng, steps * batch * input, 1.0));
                let n = layers * dirs * batch * hidden;
                let h0 = random_vec(&mut rng, n, 0.5);
                let c0 = (cell == Cell::Lstm).then(|| random_vec(&mut rng, n, 0.5));
                let want = forward_model(&weights, Sequences::new(&x, steps, batch).with_state(Some(&h0), c0.as_deref()), device_faithful(cell)).unwrap();
                for &schedule in schedules {
                    let case = format!("{cell:?} L={layers} D={dirs} {schedule:?}");
                    let mut model = Model::new(&gpu, &weights, batch, &ModelOptions { schedule, ..ModelOptions::default() }).expect("model");
                    let got = run_poisoned(&mut model, &x, steps, Some(&h0), c0.as_deref());
                    let e = model_error(&got, &want, steps, batch, dirs * hidden, hidden);
                    println!("{case}: worst {e:.2e}, at once {:?}", (0..layers).map(|l| model.concurrent(l)).collect::<Vec<_>>());
                    assert!(e <= DEVICE_TOLERANCE * layers as f64, "{case}: error {e:.3e}");
                    if dirs == 2 {
                        assert_eq!(model.concurrent(0), schedule != DirectionSchedule::Sequential, "{case}: small layers run at once unless forced in turn");
                        println!("  {}", model.schedule(0).expect("a bidirectional layer's schedule").reason);
                    }
                    // The timing of a pass on the device.
                    let d_x = DeviceBuffer::from_slice(&x).unwrap();
                    let t = model.forward_device(&d_x, steps, Some(&h0), c0.as_deref()).expect("forward_device");
                    let fused: Vec<bool> = (0..layers).map(|l| model.join_fused(l)).collect();
                    // Dense W_ih everywhere: every bidirectional join but the last is fused.
                    assert_eq!(fused, (0..layers).map(|l| dirs == 2 && l + 1 < layers).collect::<Vec<_>>(), "{case}");
                    check_timing(&t, layers, dirs, &fused, &case);
                    print!("{}", t.report(steps));
                }
            }
        }
    }
}

#[test]
fn fused_joins_equal_kept_joins_bit_for_bit() {
    let Some(gpu) = gpu() else { return };
    let s = seed("fused joins");
    // (cell, layers, input, hidden, batch, steps, schedule): H a multiple of 4 (16-byte loads
    // of both directions) and not (value by value, rows straddling a 16-byte chunk), both
    // schedules, 2 and 3 layers.
    let cases = [
        (Cell::Gru, 3, 37, 72, 3, 13, DirectionSchedule::Auto),
        (Cell::Lstm, 2, 29, 45, 2, 11, DirectionSchedule::Sequential),
        (Cell::RnnTanh, 3, 16, 50, 4, 9, DirectionSchedule::Concurrent),
        (Cell::RnnRelu, 2, 8, 33, 1, 17, DirectionSchedule::Auto),
    ];
    for (i, (cell, layers, input, hidden, batch, steps, schedule)) in cases.into_iter().enumerate() {
        let case = format!("{cell:?} L={layers} I={input} H={hidden} B={batch} T={steps} {schedule:?}");
        let k = s + 10 * i as u64;
        let weights = random_model(k, cell, input, hidden, layers, 2, InputWeights::DenseFp16);
        let mut rng = ChaCha8Rng::seed_from_u64(k ^ 0x501);
        let x = random_vec(&mut rng, steps * batch * input, 1.0);
        let n = layers * 2 * batch * hidden;
        let h0 = random_vec(&mut rng, n, 0.5);
        let c0 = (cell == Cell::Lstm).then(|| random_vec(&mut rng, n, 0.5));
        let mut model = Model::new(&gpu, &weights, batch, &ModelOptions { schedule, ..ModelOptions::default() }).expect("model");
        let fused: Vec<bool> = (0..layers).map(|l| model.join_fused(l)).collect();
        assert_eq!(fused, (0..layers).map(|l| l + 1 < layers).collect::<Vec<_>>(), "{case}");
        let fused_out = run_poisoned(&mut model, &x, steps, Some(&h0), c0.as_deref());
        // The same model, every join kept.
        model.set_keep_every_join(true);
        assert!((0..layers).all(|l| !model.join_fused(l)), "{case}");
        let kept = run_poisoned(&mut model, &x, steps, Some(&h0), c0.as_deref());
        let d_x = DeviceBuffer::from_slice(&x).unwrap();
        let t = model.forward_device(&d_x, steps, Some(&h0), c0.as_deref()).expect("forward_device, every join kept");
        check_timing(&t, layers, 2, &[false; 3][..layers], &case);
        println!("{case}: every join kept:\n{}", t.report(steps));
        assert_same_bits(&fused_out, &kept, &case);
        // Fused again: its timing, and the same bits from a graph.
        model.set_keep_every_join(false);
        let t = model.forward_device(&d_x, steps, Some(&h0), c0.as_deref()).expect("forward_device, fused joins");
        check_timing(&t, layers, 2, &fused, &case);
        println!("{case}: fused joins:\n{}", t.report(steps));
        let mut d_x = DeviceBuffer::from_slice(&x).unwrap();
        let mut graph = model.capture(&mut d_x, steps, Some(&h0), c0.as_deref()).expect("capture");
        graph.poison().unwrap();
        graph.replay().expect("replay");
        let replayed = graph.output_to_host().unwrap();
        assert_same_bits(&replayed, &kept, &format!("{case}: graph"));
    }
}

#[test]
fn graph_replays_equal_forward_device_bit_for_bit() {
    let Some(gpu) = gpu() else { return };
    let s = seed("graph replay");
    let (input, hidden, batch, steps) = (29, 96, 2, 11);
    for (i, cell) in CELLS.into_iter().enumerate() {
        for (layers, dirs, inputs) in [(1, 1, InputWeights::DenseFp16), (2, 2, InputWeights::Sparse), (3, 1, InputWeights::Sparse), (2, 2, InputWeights::DenseFp16)] {
            let case = format!("{cell:?} L={layers} D={dirs} {inputs:?}");
            let k = s + (100 * i + 10 * layers + dirs) as u64;
            let weights = random_model(k, cell, input, hidden, layers, dirs, inputs);
            let mut rng = ChaCha8Rng::seed_from_u64(k ^ 0x6AF);
            let x = random_vec(&mut rng, steps * batch * input, 1.0);
            let x2 = random_vec(&mut rng, steps * batch * input, 1.0);
            let n = layers * dirs * batch * hidden;
            let h0 = random_vec(&mut rng, n, 0.5);
            let c0 = (cell == Cell::Lstm).then(|| random_vec(&mut rng, n, 0.5));
            let mut model = Model::new(&gpu, &weights, batch, &ModelOptions::default()).expect("model");
            // Two bidirectional layers: layer 0's join is fused into a dense projection, kept
            // for a sparse one.
            assert_eq!(model.join_fused(0), dirs == 2 && inputs == InputWeights::DenseFp16, "{case}");
            // forward_device on both inputs, each into poisoned buffers.
            let direct = |model: &mut Model, x: &[f32]| {
                model.poison(steps).unwrap();
                let d_x = DeviceBuffer::from_slice(x).unwrap();
                model.forward_device(&d_x, steps, Some(&h0), c0.as_deref()).expect("forward_device");
                model.output_to_host().unwrap()
            };
            let (want, want2) = (direct(&mut model, &x), direct(&mut model, &x2));
            let mut d_x = DeviceBuffer::from_slice(&x).unwrap();
            let mut graph = model.capture(&mut d_x, steps, Some(&h0), c0.as_deref()).expect("capture");
            assert!(graph.output_to_host().is_err(), "{case}: nothing has run since the capture");
            for replay in 0..2 {
                graph.poison().unwrap();
                let t = graph.replay().expect("replay");
                let got = graph.output_to_host().unwrap();
                println!("{case}: replay {replay}: {:.3} ms on the GPU, {:.3} ms wall", t.gpu_ms, t.total_ms);
                assert!(t.gpu_ms > 0.0, "{case}");
                assert_same_bits(&got, &want, &format!("{case}: replay {replay}"));
            }
            // New input through the captured buffer.
            graph.write_input(&x2).unwrap();
            graph.poison().unwrap();
            graph.replay().expect("replay with new input");
            let got2 = graph.output_to_host().unwrap();
            assert_eq!(bits(&got2.output), bits(&want2.output), "{case}: new input: output");
            assert_eq!(bits(&got2.h_n), bits(&want2.h_n), "{case}: new input: h_n");
            assert!(matches!(graph.write_input(&x2[1..]), Err(Error::Input { name: "x", .. })));
            drop(graph);
            // The model works as before once the graph is gone.
            let again = direct(&mut model, &x);
            assert_eq!(bits(&again.output), bits(&want.output), "{case}: forward_device after the graph");
        }
    }
}

#[test]
fn a_timeout_inside_a_chain_names_its_layer_and_does_not_hang() {
    let Some(gpu) = gpu() else { return };
    let s = seed("timeout in a chain");
    let (input, hidden, batch, steps) = (16, 256, 2, 16);
    let layer = LayerOptions { timeout: Duration::from_millis(50), ..LayerOptions::default() };
    for (cell, layers, dirs, at) in [(Cell::RnnTanh, 3, 1, (1, 0)), (Cell::Gru, 2, 2, (1, 1)), (Cell::Lstm, 2, 2, (0, 0))] {
        let case = format!("{cell:?} L={layers} D={dirs} fault at layer {} direction {}", at.0, at.1);
        let weights = random_model(s + cell as u64, cell, input, hidden, layers, dirs, InputWeights::DenseFp16);
        let mut rng = ChaCha8Rng::seed_from_u64(s ^ 0x71);
        let x = fp16(&random_vec(&mut rng, steps * batch * input, 1.0));
        let mut model = Model::new(&gpu, &weights, batch, &ModelOptions { layer: layer.clone(), ..ModelOptions::default() }).unwrap();
        model.set_never_publish(Some(at));
        let d_x = DeviceBuffer::from_slice(&x).unwrap();
        let started = Instant::now();
        let r = model.forward_device(&d_x, steps, None, None);
        let took = started.elapsed();
        println!("{case}: {r:?} after {took:?}");
        match &r {
            Err(e @ Error::InLayer { layer, direction, .. }) => {
                assert_eq!((*layer, *direction), at, "{case}: {e}");
                assert!(matches!(e.root(), Error::Timeout { .. }), "{case}: {e}");
                says(e, &[&format!("layer {}", at.0), "timed out"]);
            }
            other => panic!("{case}: expected the layer's timeout, got {other:?}"),
        }
        assert!(took < Duration::from_secs(10), "{case}: the chain took {took:?}");
        assert!(model.output_to_host().is_err(), "{case}: a failed pass leaves no output");
        // The same fault inside a graph.
        {
            let mut d_x = DeviceBuffer::from_slice(&x).unwrap();
            let mut graph = model.capture(&mut d_x, steps, None, None).expect("capture");
            let started = Instant::now();
            let r = graph.replay();
            let took = started.elapsed();
            println!("{case}: graph: {r:?} after {took:?}");
            assert!(matches!(&r, Err(e @ Error::InLayer { .. }) if matches!(e.root(), Error::Timeout { .. })), "{case}: graph: {r:?}");
            assert!(took < Duration::from_secs(10), "{case}: the graph took {took:?}");
        }
        // Without the fault, the same model and context give the reference's answer.
        model.set_never_publish(None);
        let got = run_poisoned(&mut model, &x, steps, None, None);
        let want = forward_model(&weights, Sequences::new(&x, steps, batch), device_faithful(cell)).unwrap();
        let e = model_error(&got, &want, steps, batch, dirs * hidden, hidden);
        assert!(e <= DEVICE_TOLERANCE * layers as f64, "{case}: after the timeout: error {e:.3e}");
    }
}

#[test]
fn forced_at_once_refuses_grids_that_cannot_share_the_gpu() {
    // Two CTAs per SM on every SM for each direction: 2 x 264 CTAs can never be resident
    // together on the H200's 132 SMs, so forcing them at once is refused; in turn they run.
    let h200 = DeviceInfo::h200();
    let forced = PlanOptions { ctas: Some(2 * h200.sm_count), ctas_per_sm: Some(2), ..PlanOptions::default() };
    let stats = RowStats::uniform(Cell::Gru, 2048, 102);
    let fit = sprnn::layout::check_fit(&stats, Cell::Gru, 4, &h200, &forced).expect("the forced grid fits the H200 preset");
    assert_eq!(fit.geometry.grid, 2 * h200.sm_count);
    let choice = choose_schedule([&stats, &stats], Cell::Gru, 4, &h200, &forced, DirectionSchedule::Concurrent).unwrap();
    assert!(choice.concurrent && !choice.half_sms, "{choice:?}");
    let auto = choose_schedule([&stats, &stats], Cell::Gru, 4, &h200, &forced, DirectionSchedule::Auto).unwrap();
    assert!(!auto.concurrent, "{auto:?}");
    says(&auto.reason, &["in turn", "forced with ctas"]);
    let Some(gpu) = gpu() else { return };
    let sms = gpu.info().sm_count;
    let mut opts = ModelOptions { schedule: DirectionSchedule::Concurrent, ..ModelOptions::default() };
    opts.layer.plan = PlanOptions { ctas: Some(2 * sms), ctas_per_sm: Some(2), ..PlanOptions::default() };
    let weights = random_model(seed("forced at once"), Cell::Gru, 32, 2048, 1, 2, InputWeights::DenseFp16);
    match Model::new(&gpu, &weights, 4, &opts) {
        Err(e @ Error::Input { name: "schedule", .. }) => says(&e, &["layer 0", "cannot be resident together", "in turn"]),
        other => panic!("expected the schedule's refusal, got {other:?}"),
    }
    opts.schedule = DirectionSchedule::Sequential;
    let model = Model::new(&gpu, &weights, 4, &opts).expect("the same layer in turn");
    assert!(!model.concurrent(0));
}
