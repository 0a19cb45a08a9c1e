//! The cluster-resident mode (one thread-block cluster of 2–16 CTAs, the hidden state exchanged
//! in shared memory): the planner's choice and refusals on the presets (CPU), and the kernel
//! against the CPU reference for every cell and several cluster sizes, its timeout, tag
//! wrap-around, streaming and concurrent layers (GPU; "skipped: no CUDA device" without one).

use std::time::{Duration, Instant};

use sprnn::cust::stream::{Stream, StreamFlags};
use sprnn::layer::{DeviceInput, Input, Output};
use sprnn::layout::{check_fit, check_mode, plan, Cell, DeviceInfo, ExecMode, KernelKind, Plan, PlanError, PlanOptions, RowStats};
use sprnn::reference;
use sprnn::{Error, Gpu, LayerOptions, SparseRecurrentLayer, StreamingLayer};
use sprnn_kernels::format::{ClusterSmem, CLUSTER_SIZES, VALUES_PER_POLL};

use crate::common::{gpu, says, seed, Problem};
use crate::layout::{check_matvec, check_permutation};

const CELLS: [Cell; 4] = [Cell::RnnRelu, Cell::RnnTanh, Cell::Gru, Cell::Lstm];

/// Options forcing the cluster mode, with cluster size `size` (`None`: the planner's).
fn cluster(size: Option<usize>) -> PlanOptions {
    PlanOptions { mode: Some(ExecMode::Cluster), ctas: size, ..PlanOptions::default() }
}

fn grid() -> PlanOptions {
    PlanOptions { mode: Some(ExecMode::Grid), ..PlanOptions::default() }
}

fn random_layer(seed: u64, cell: Cell, hidden: usize, density: f64) -> sprnn::Csr {
    sprnn::sparse::random_recurrent(seed, cell.gates() * hidden, hidden, density, 0.9).expect("random W_hh")
}

// ---------------------------------------------------------------------------------------------
// CPU: the planner
// ---------------------------------------------------------------------------------------------

/// A cluster plan's invariants: one cluster is the grid, every CTA's share is whole 16-byte
/// chunks, its shared memory is the cluster layout's, and the layout is the layer's (every
/// nonzero once, `simulate_matvec` = W·h).
fn check_cluster_plan(p: &Plan, w: &sprnn::Csr, size: usize) {
    assert_eq!(p.mode(), ExecMode::Cluster);
    assert_eq!(p.cluster_size(), Some(size));
    assert_eq!(p.grid(), size);
    assert_eq!(p.ctas_per_sm(), 1);
    assert!(!p.hidden_f32() && p.dense().is_none());
    assert_eq!(p.slots_per_cta() * p.batch() % VALUES_PER_POLL, 0, "whole 16-byte remote stores");
    assert_eq!(p.columns(), size * p.slots_per_cta());
    let g = p.cell().gates();
    let smem = ClusterSmem::new(p.columns(), p.batch(), p.slots_per_cta(), p.units_per_cta() * g, p.units_per_cta(), p.cell()).total;
    assert_eq!(p.smem_bytes(), smem);
    assert!(p.smem_bytes() <= DeviceInfo::h200().shared_per_cta(1));
    assert!(p.registers_per_sm() <= DeviceInfo::h200().registers_per_sm);
    check_permutation(p, w);
    check_matvec(p, w, 7 + size as u64);
}

#[test]
fn forced_cluster_plans_hold_the_layer_for_every_size_and_cell() {
    let dev = DeviceInfo::h200();
    for (i, cell) in CELLS.into_iter().enumerate() {
        for batch in [1, 3, 4] {
            let w = random_layer(40 + i as u64, cell, 96, 0.2);
            for size in CLUSTER_SIZES {
                let p = plan(&w, cell, batch, &dev, &cluster(Some(size))).unwrap_or_else(|e| panic!("{cell:?} B={batch} size {size}: {e}"));
                check_cluster_plan(&p, &w, size);
                says(&p.mode_reason(), &["cluster", "forced"]);
            }
        }
    }
}

#[test]
fn planner_chooses_a_cluster_for_small_layers_on_the_h200() {
    let dev = DeviceInfo::h200();
    // RNN H = 1024 at d = 0.1 (105 K nonzeros), B = 1: the example, one cluster of 16.
    let w = random_layer(1, Cell::RnnTanh, 1024, 0.1);
    let p = plan(&w, Cell::RnnTanh, 1, &dev, &PlanOptions::default()).unwrap();
    println!("RNN H=1024 B=1 d=0.1: {} ({})", p.mode().name(), p.mode_reason());
    assert_eq!(p.mode(), ExecMode::Cluster, "{}", p.mode_reason());
    check_cluster_plan(&p, &w, p.cluster_size().unwrap());
    says(&p.mode_reason(), &["cluster of", "estimated", "grid"]);
    // A small GRU too.
    let w = random_layer(2, Cell::Gru, 256, 0.1);
    let p = plan(&w, Cell::Gru, 4, &dev, &PlanOptions::default()).unwrap();
    assert_eq!(p.mode(), ExecMode::Cluster, "{}", p.mode_reason());
    // The fit decision from row statistics agrees.
    let f = check_fit(&RowStats::of(&w), Cell::Gru, 4, &dev, &PlanOptions::default()).unwrap();
    assert_eq!(f, p.fit());
}

#[test]
fn planner_keeps_the_grid_for_layers_a_cluster_cannot_hold_or_would_slow() {
    let dev = DeviceInfo::h200();
    // The headline layer: far more than 16 SMs' registers.
    let stats = RowStats::uniform(Cell::RnnTanh, 2304, 691);
    let c = check_mode(&stats, Cell::RnnTanh, 4, &dev, &PlanOptions::default()).unwrap();
    assert_eq!(c.fit.cluster, None);
    println!("RNN H=2304 B=4 d=0.3: {}", c.reason);
    says(&c.reason, &["grid"]);
    // LSTM H = 1024 at d = 0.1, B = 4: 420 K nonzeros, but every list shape that holds its rows
    // needs more registers per SM than 16 SMs have, so the grid runs it.
    let stats = RowStats::uniform(Cell::Lstm, 1024, 102);
    let c = check_mode(&stats, Cell::Lstm, 4, &dev, &PlanOptions::default()).unwrap();
    println!("LSTM H=1024 B=4 d=0.1: {}", c.reason);
    assert_eq!(c.fit.cluster, None);
    // Options only the grid mode has keep it.
    let w = random_layer(3, Cell::RnnTanh, 256, 0.1);
    for opts in [
        PlanOptions { ctas: Some(8), ..PlanOptions::default() },
        PlanOptions { hidden_f32: Some(true), ..PlanOptions::default() },
        PlanOptions { kernel: Some(KernelKind::Dense), ..PlanOptions::default() },
        grid(),
    ] {
        let p = plan(&w, Cell::RnnTanh, 4, &dev, &opts).unwrap();
        assert_eq!(p.mode(), ExecMode::Grid, "{opts:?}: {}", p.mode_reason());
    }
}

/// The cluster kernel's words carry 16-bit byte offsets (`format::WordFormat::cluster`): a layer
/// whose zero column starts 64 KiB or more into the hidden state is refused the cluster mode
/// with that reason, and the planner's own choice is the grid.
#[test]
fn cluster_mode_needs_byte_offsets_that_fit_16_bits() {
    let dev = DeviceInfo::h200();
    // H = 2048, B = 16: 2048 columns of 32 bytes, the zero column at 65,536.
    let stats = RowStats::uniform(Cell::RnnTanh, 2048, 20);
    match check_mode(&stats, Cell::RnnTanh, 16, &dev, &cluster(Some(16))) {
        Err(PlanError::ClusterMode { reason, .. }) => says(&reason, &["16-bit byte offsets"]),
        other => panic!("expected the cluster mode refused, got {other:?}"),
    }
    let c = check_mode(&stats, Cell::RnnTanh, 16, &dev, &PlanOptions::default()).unwrap();
    assert_eq!(c.fit.cluster, None, "{}", c.reason);
    // One batch entry fewer per column fits: B = 8.
    let c = check_mode(&stats, Cell::RnnTanh, 8, &dev, &cluster(Some(16))).unwrap();
    assert_eq!(c.fit.cluster, Some(16));
}

#[test]
fn the_a100_never_gets_a_cluster_and_refuses_a_forced_one() {
    let dev = DeviceInfo::a100();
    let w = random_layer(4, Cell::Lstm, 128, 0.1);
    let p = plan(&w, Cell::Lstm, 4, &dev, &PlanOptions::default()).unwrap();
    assert_eq!(p.mode(), ExecMode::Grid);
    says(&p.mode_reason(), &["compute capability 8.0"]);
    let e = plan(&w, Cell::Lstm, 4, &dev, &cluster(None)).unwrap_err();
    assert!(matches!(e, PlanError::ClusterMode { .. }), "{e:?}");
    says(&e, &["cluster-resident mode is not possible on the NVIDIA A100", "compute capability 8.0", "sm_90"]);
}

#[test]
fn a_forced_cluster_that_cannot_hold_the_layer_is_refused_with_the_reason() {
    let dev = DeviceInfo::h200();
    // Registers: LSTM H = 2304 at d = 0.1 needs far more than 16 SMs.
    let stats = RowStats::uniform(Cell::Lstm, 2304, 230);
    let e = check_fit(&stats, Cell::Lstm, 4, &dev, &cluster(None)).unwrap_err();
    assert!(matches!(e, PlanError::ClusterMode { .. }), "{e:?}");
    says(&e, &["no cluster of [2, 4, 8, 16] CTAs holds the layer", "registers per SM", "65536 available"]);
    // A size that is not a cluster size.
    let w = random_layer(5, Cell::RnnTanh, 64, 0.2);
    let e = plan(&w, Cell::RnnTanh, 1, &dev, &cluster(Some(3))).unwrap_err();
    says(&e, &["ctas = 3 is not a cluster size", "[2, 4, 8, 16]"]);
    // More CTAs than units.
    let w = random_layer(6, Cell::RnnTanh, 12, 0.5);
    let e = plan(&w, Cell::RnnTanh, 1, &dev, &cluster(Some(16))).unwrap_err();
    says(&e, &["16 CTAs: more CTAs than H = 12 units"]);
    // Options the cluster kernel does not have.
    let w = random_layer(7, Cell::Gru, 64, 0.2);
    for (opts, why) in [
        (PlanOptions { hidden_f32: Some(true), ..cluster(None) }, "fp16"),
        (PlanOptions { kernel: Some(KernelKind::Dense), ..cluster(None) }, "dense slab"),
        (PlanOptions { ctas_per_sm: Some(2), ..cluster(None) }, "one CTA per SM"),
    ] {
        let e = plan(&w, Cell::Gru, 4, &dev, &opts).unwrap_err();
        assert!(matches!(e, PlanError::ClusterMode { .. }), "{e:?}");
        says(&e, &[why]);
    }
    // Shared memory: a hidden state and two exchange buffers larger than 227 KB.
    let stats = RowStats::uniform(Cell::RnnTanh, 4096, 1);
    let e = check_fit(&stats, Cell::RnnTanh, 16, &dev, &cluster(Some(16))).unwrap_err();
    says(&e, &["bytes of shared memory per CTA"]);
}

// ---------------------------------------------------------------------------------------------
// GPU: the kernel against the reference
// ---------------------------------------------------------------------------------------------

/// The problem of `seed` (`common::Problem`, this module's salt).
fn problem(cell: Cell, hidden: usize, batch: usize, density: f64, steps: usize, seed: u64, with_state: bool) -> Problem {
    Problem::random(cell, hidden, batch, density, steps, seed, 0xC1A5, with_state)
}

fn layer(gpu: &Gpu, p: &Problem, opts: PlanOptions, timeout: Duration) -> Result<SparseRecurrentLayer, Error> {
    SparseRecurrentLayer::new(gpu, p.cell, &p.w, &p.b, p.batch, &LayerOptions { plan: opts, timeout })
}

#[test]
fn cluster_mode_matches_the_reference_for_every_cell_and_cluster_size() {
    let Some(gpu) = gpu() else { return };
    if gpu.info().compute_capability.0 < 9 {
        println!("skipped: compute capability below 9.0 has no thread-block clusters");
        return;
    }
    let s = seed("cluster cells");
    let mut case = 0u64;
    for cell in CELLS {
        for size in CLUSTER_SIZES {
            for (batch, hidden) in [(1, 256), (4, 192), (3, 100)] {
                case += 1;
                let with_state = case.is_multiple_of(2);
                let p = problem(cell, hidden, batch, 0.1, 40, s + case, with_state);
                // A long bound: under compute-sanitizer (run.sh sanitize) the polls of shared
                // memory run orders of magnitude slower.
                let mut l = layer(&gpu, &p, cluster(Some(size)), Duration::from_secs(60)).unwrap_or_else(|e| panic!("{cell:?} size {size} B={batch}: {e}"));
                assert_eq!(l.mode(), ExecMode::Cluster);
                assert_eq!(l.cluster_size(), Some(size));
                let got = p.run_poisoned(&gpu, &mut l, None).unwrap_or_else(|e| panic!("{cell:?} size {size} B={batch}: {e}"));
                let worst = p.worst_error(&got, l.products()).0;
                let shape = l.shape();
                println!("{cell:?} cluster {size} H={hidden} B={batch} state={with_state}: worst {worst:.2e} ({} threads, {})", shape.threads_per_cta, shape.kernel);
                assert!(worst <= reference::DEVICE_TOLERANCE, "{cell:?} cluster {size} B={batch}: error {worst} > {}", reference::DEVICE_TOLERANCE);
            }
        }
    }
}

#[test]
fn cluster_and_grid_modes_agree_with_the_reference_on_the_planners_layers() {
    let Some(gpu) = gpu() else { return };
    if gpu.info().compute_capability.0 < 9 {
        println!("skipped: compute capability below 9.0 has no thread-block clusters");
        return;
    }
    let s = seed("cluster vs grid");
    for (i, (cell, hidden, batch)) in [(Cell::RnnTanh, 1024, 1), (Cell::Gru, 512, 4), (Cell::Lstm, 512, 2)].into_iter().enumerate() {
        let p = problem(cell, hidden, batch, 0.05, 64, s + i as u64, true);
        for opts in [grid(), cluster(None)] {
            let mut l = layer(&gpu, &p, opts, Duration::from_secs(1)).unwrap();
            let got = p.run_poisoned(&gpu, &mut l, None).unwrap();
            let worst = p.worst_error(&got, l.products()).0;
            println!("{cell:?} H={hidden} B={batch} {} {:?}: worst {worst:.2e}", l.mode().name(), l.cluster_size());
            assert!(worst <= reference::DEVICE_TOLERANCE, "{cell:?} {:?}: {worst}", l.mode());
        }
    }
}

#[test]
fn a_cluster_wait_that_never_ends_times_out_and_the_layer_still_runs() {
    let Some(gpu) = gpu() else { return };
    if gpu.info().compute_capability.0 < 9 {
        println!("skipped: compute capability below 9.0 has no thread-block clusters");
        return;
    }
    let s = seed("cluster timeout");
    for size in [2, 16] {
        let p = problem(Cell::Lstm, 256, 2, 0.1, 16, s + size as u64, false);
        let mut l = layer(&gpu, &p, cluster(Some(size)), Duration::from_millis(50)).unwrap();
        let u = DeviceInput::upload(&gpu, Input::F32(&p.u)).unwrap();
        let mut out = l.alloc_output(p.steps).unwrap();
        let start = Instant::now();
        let r = l.forward_never_publish(&u, &mut out);
        let took = start.elapsed();
        println!("cluster {size} never-publish: {r:?} after {took:?}");
        assert!(matches!(r, Err(Error::Timeout { .. })), "expected a timeout, got {r:?}");
        assert!(took < Duration::from_secs(5), "the timeout took {took:?}");
        // Every CTA left through the final cluster barrier: the context and the layer work.
        let got = p.run_poisoned(&gpu, &mut l, None).expect("run after a timeout");
        assert!(p.worst_error(&got, l.products()).0 <= reference::DEVICE_TOLERANCE);
    }
}

#[test]
fn cluster_tags_wrap_around_past_65536_steps() {
    let Some(gpu) = gpu() else { return };
    if gpu.info().compute_capability.0 < 9 {
        println!("skipped: compute capability below 9.0 has no thread-block clusters");
        return;
    }
    let s = seed("cluster wrap-around");
    let p = problem(Cell::RnnTanh, 128, 1, 0.1, 70_001, s, true);
    let mut l = layer(&gpu, &p, cluster(Some(4)), Duration::from_secs(1)).unwrap();
    let got = p.run_poisoned(&gpu, &mut l, None).unwrap();
    let worst = p.worst_error(&got, l.products()).0;
    println!("cluster T=70001: worst {worst:.2e}");
    assert!(worst <= reference::DEVICE_TOLERANCE);
}

#[test]
fn a_cluster_sequence_fed_in_chunks_equals_one_call_bit_for_bit() {
    let Some(gpu) = gpu() else { return };
    if gpu.info().compute_capability.0 < 9 {
        println!("skipped: compute capability below 9.0 has no thread-block clusters");
        return;
    }
    // Chunks start at every step number modulo 4, so each exchange buffer's initial tag pattern
    // (format::initial_tag_pattern32, filled by the kernel itself) is exercised.
    let chunks = [1, 2, 3, 5, 13];
    for (i, cell) in CELLS.into_iter().enumerate() {
        let p = problem(cell, 192, 4, 0.2, chunks.iter().sum(), 90 + i as u64, true);
        let mut whole_layer = layer(&gpu, &p, cluster(Some(8)), Duration::from_secs(1)).unwrap();
        let whole = p.run_poisoned(&gpu, &mut whole_layer, None).unwrap();
        let mut stream = StreamingLayer::new(layer(&gpu, &p, cluster(Some(8)), Duration::from_secs(1)).unwrap());
        stream.set_state(p.h0.as_deref().unwrap(), p.c0.as_deref()).unwrap();
        let per_step = p.batch * cell.gates() * p.hidden;
        let (mut t, mut h) = (0, Vec::new());
        let mut c = None;
        for n in chunks {
            let out = stream.forward(Input::F32(&p.u[t * per_step..(t + n) * per_step]), n).unwrap();
            h.extend_from_slice(&out.h);
            c = out.c;
            t += n;
        }
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<u32>>();
        assert_eq!(bits(&h), bits(&whole.h), "{cell:?}: chunked h differs from one call");
        assert_eq!(c.as_deref().map(bits), whole.c.as_deref().map(bits), "{cell:?}: chunked c differs");
    }
}

#[test]
fn cluster_exchange_floor_runs() {
    let Some(gpu) = gpu() else { return };
    if gpu.info().compute_capability.0 < 9 {
        println!("skipped: compute capability below 9.0 has no thread-block clusters");
        return;
    }
    let p = problem(Cell::RnnTanh, 1024, 1, 0.1, 256, 5, false);
    let mut l = layer(&gpu, &p, cluster(Some(16)), Duration::from_secs(1)).unwrap();
    let u = DeviceInput::upload(&gpu, Input::F32(&p.u)).unwrap();
    let mut out = l.alloc_output(p.steps).unwrap();
    let floor = l.forward_exchange_floor(&u, &mut out).expect("exchange floor") as f64 * 1e3 / p.steps as f64;
    let full = l.forward_device(&u, None, None, &mut out, None).expect("run") as f64 * 1e3 / p.steps as f64;
    println!("cluster of 16, RNN H=1024 B=1: {full:.2} us per step, exchange floor {floor:.2}");
}

#[test]
fn seven_cluster_layers_side_by_side_match_their_runs_alone_bit_for_bit() {
    let Some(gpu) = gpu() else { return };
    if gpu.info().compute_capability.0 < 9 {
        println!("skipped: compute capability below 9.0 has no thread-block clusters");
        return;
    }
    let k = (gpu.info().sm_count / 16).clamp(1, 7);
    let problems: Vec<Problem> = (0..k).map(|i| problem(Cell::Gru, 256, 4, 0.1, 48, 300 + i as u64, true)).collect();
    let mut layers: Vec<SparseRecurrentLayer> = problems.iter().map(|p| layer(&gpu, p, cluster(Some(16)), Duration::from_secs(1)).unwrap()).collect();
    let alone: Vec<Output> = layers.iter_mut().zip(&problems).map(|(l, p)| p.run_poisoned(&gpu, l, None).unwrap()).collect();
    gpu.make_current().unwrap();
    let streams: Vec<Stream> = (0..k).map(|_| Stream::new(StreamFlags::NON_BLOCKING, None).unwrap()).collect();
    let inputs: Vec<DeviceInput> = problems.iter().map(|p| DeviceInput::upload(&gpu, Input::F32(&p.u)).unwrap()).collect();
    let mut outs: Vec<_> = layers.iter().zip(&problems).map(|(l, p)| l.alloc_output(p.steps).unwrap()).collect();
    for (o, l) in outs.iter_mut().zip(&layers) {
        o.poison(l).unwrap();
    }
    let pending: Vec<_> = layers
        .iter_mut()
        .zip(&inputs)
        .zip(outs.iter_mut())
        .zip(&streams)
        .zip(&problems)
        .map(|((((l, u), o), s), p)| l.launch_on(u, p.h0.as_deref(), p.c0.as_deref(), o, s).unwrap())
        .collect();
    for f in pending {
        f.finish().unwrap();
    }
    for (i, ((o, l), a)) in outs.iter().zip(&layers).zip(&alone).enumerate() {
        let side = o.to_host(l).unwrap();
        assert!(side.h.iter().zip(&a.h).all(|(x, y)| x.to_bits() == y.to_bits()), "layer {i}: side by side differs from alone");
    }
    println!("{k} clusters of 16 side by side: bit-identical to their runs alone");
}
