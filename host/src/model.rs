//! [`Model`]: a whole recurrent network — a stack of layers, unidirectional or bidirectional —
//! on the GPU, from its input `x` to PyTorch's `output`, `h_n` and `c_n`.
//!
//! # Data flow
//!
//! For layer `l` and direction `d` (0 forward, 1 reverse), everything stays on the device:
//!
//! ```text
//! x_l [T][B][I_l] ──InputProjection──▶ U_{l,d} [T][B][G·H] ──SparseRecurrentLayer──▶ h_{l,d} [T][B][H]
//!                   (reverse: written                         (the persistent kernel)
//!                    time-reversed)
//! D = 1: x_{l+1} = h_{l,0}
//! D = 2: x_{l+1} = concat(h_{l,0}[t], h_{l,1}[T-1-t])  [T][B][2H]   (sprnn_concat_directions)
//!        or, where it is not kept, joined by layer l+1's projections as they read it
//! ```
//!
//! The reverse direction runs the ordinary forward kernel over the time-reversed sequence (its
//! projection writes input step `t` to step `T-1-t`), so its step `s` belongs to input step
//! `T-1-s`; joining the directions puts it back in input order, forward states in `[..H]` and
//! reverse states in `[H..2H]` of each step, as `torch.nn.RNN/GRU/LSTM(bidirectional=True)`
//! return them. The last layer's joined states are the model's `output` `[T][B][D·H]`; `h_n`
//! and `c_n` are `[L·D][B][H]` (index `l·D + d`), the reverse direction's final state being the
//! one after input step 0, as in PyTorch. Initial states `h0`/`c0` use the same `[L·D][B][H]`
//! order and default to zeros.
//!
//! # Which joins run
//!
//! The joined states of a layer below the last exist only as the next layer's input. Where both
//! of the next layer's directions have a dense `W_ih`, no join runs and no `[T][B][2H]` buffer
//! is kept: the dense projection rounds its input to fp16 in a launch of its own anyway, and
//! that launch reads the two directions' states directly (the forward states, and the reverse
//! ones at step `T-1-t`) and writes the same fp16 rows it would write from the joined copy (see
//! [`crate::projection`]). The result is the same bit for bit. The last layer keeps its join
//! (its joined states are the model's `output`), and so does a layer whose next layer has a
//! sparse `W_ih` in either direction (the CSR kernel reads f32 rows). [`fused_joins`] says which
//! layers' joins are fused, [`Model::join_fused`] asks a built model.
//!
//! # One chain of stream-ordered work
//!
//! A forward pass enqueues every projection, recurrent kernel and join of every layer without
//! waiting on the host in between: each step is ordered after the one it reads by its stream
//! (one main stream) and, where two streams meet, by CUDA events. The reverse direction of a
//! layer whose directions run at once forks from the main stream at the layer's start (it
//! waits for an event recorded there) and joins back before the layer's join (the main stream
//! waits for the event after the reverse kernel); the next layer's projections are ordered
//! after the join by the main stream. The host synchronises once, at the end, then reads every
//! layer's status word and reports the first failing layer, in the chain's order, as
//! [`Error::InLayer`] around the kernel's own error (for example [`Error::Timeout`]). The
//! events also time every part of the chain: [`ModelTiming`] has, per layer, the recurrent
//! kernels, the projections and the join (0 for a layer whose join is fused into the next
//! layer's projections, where the joining is part of that layer's projection time), and the
//! rest of the wall time.
//!
//! Because the chain is stream work only, it can be captured as one CUDA graph
//! ([`Model::capture`], [`ModelGraph::replay`]): every memset that resets a kernel's exchange
//! buffers and status word is part of the graph, so each replay starts clean; what the host
//! does per call (copying `h0`/`c0` into the layers' initial-state buffers, asking whether a
//! cluster fits) is done once, at capture time.
//!
//! # Two directions: at once or in turn
//!
//! Each direction is a persistent kernel whose CTAs must all be resident together. The two
//! directions of a bidirectional layer run either **at once**, on two streams, or **in turn**,
//! on one stream, each with the whole GPU. [`choose_schedule`] decides from the planner's
//! estimates of the time per step ([`crate::layout::check_mode`]): in turn costs the sum of
//! both directions' estimates; at once costs the larger, with each direction planned for half
//! the SMs when the whole-GPU plans cannot run side by side (a layer planned to fill the GPU).
//! [`DirectionSchedule`] forces either way, so both can be measured. Running at once needs
//! both grids resident together, which holds when their CTAs fit on distinct SMs
//! ([`side_by_side`]) or one CTA of each fits on an SM ([`co_resident`]); it relies on the CTA
//! scheduler placing every CTA where there is room (it does); should two grids ever be left
//! partly resident, their bounded waits end in [`Error::Timeout`], never in a hang.
//!
//! # Numbers
//!
//! The projections round `x` and a dense `W_ih` to fp16 (tensor cores, f32 sums; see
//! [`crate::projection`]); the recurrent layers compute as [`SparseRecurrentLayer`] does. Each
//! layer's `h` output is fp16-exact, so the input of every layer after the first loses nothing
//! to the fp16 rounding: with a sparse `W_ih` (f32 kernel) or with fp16-representable `x` and
//! `W_ih`, a model matches [`crate::reference::forward_model`] at
//! [`Precision::DeviceFaithful`](crate::reference::Precision::DeviceFaithful) within
//! [`DEVICE_TOLERANCE`](crate::reference::DEVICE_TOLERANCE) per layer.

use std::time::Instant;

use cust::memory::{CopyDestination, DeviceBuffer};
use cust::stream::{Stream, StreamFlags};
use sprnn_kernels::format::{ConcatParams, Cell, CONCAT_KERNEL, ELEMENTWISE_THREADS};

use crate::driver::{self, Event, GraphExec};
use crate::error::{cust_err, Error, Result};
use crate::gpu::Gpu;
use crate::args::{check_finite, check_len};
use crate::layer::{Launch, LayerOptions, SparseRecurrentLayer};
use crate::layout::device::{registers_per_sm, DeviceInfo, SHARED_RESERVED_PER_CTA};
use crate::layout::{self, check_mode, PlanError, PlanOptions, RowStats};
use crate::projection::{elementwise_grid, InputProjection, ProjectionInput};
use crate::sparse::Matrix;
use crate::tensors::{DeviceInput, DeviceOutput, ModelOutput};
use crate::weights::ModelWeights;

/// How the two directions of a bidirectional layer are scheduled (see the [module
/// docs](self#two-directions-at-once-or-in-turn)).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum DirectionSchedule {
    /// The cost model's choice, [`choose_schedule`]: at once where its estimate is lower, else
    /// in turn.
    #[default]
    Auto,
    /// Always in turn, on one stream, each direction planned for the whole GPU.
    Sequential,
    /// Always at once, on two streams: with the whole-GPU plans where they run side by side,
    /// otherwise each direction planned for half the SMs. [`Model::new`] refuses a layer whose
    /// two grids still cannot be resident together ([`Error::Input`], `"schedule"`).
    Concurrent,
}

impl DirectionSchedule {
    /// The name the command line uses: `auto`, `in-turn`, `at-once`.
    pub fn name(self) -> &'static str {
        match self {
            DirectionSchedule::Auto => "auto",
            DirectionSchedule::Sequential => "in-turn",
            DirectionSchedule::Concurrent => "at-once",
        }
    }
}

/// Options for building a [`Model`].
#[derive(Clone, Debug, Default)]
pub struct ModelOptions {
    /// Options of every recurrent layer (planner overrides apply to each layer and direction).
    pub layer: LayerOptions,
    /// Scheduling of the two directions of bidirectional layers.
    pub schedule: DirectionSchedule,
}

/// Per layer of `weights`, whether its join is fused into the next layer's input projections (see
/// the [module docs](self#which-joins-run)): `true` for a layer of a bidirectional model below
/// the last whose next layer has a dense `W_ih` in both directions; `false` for the last layer,
/// for a layer below a sparse `W_ih`, and for every layer of a unidirectional model (which has
/// no join).
pub fn fused_joins(weights: &ModelWeights) -> Vec<bool> {
    let layers = weights.num_layers();
    let dense_above = |l: usize| l + 1 < layers && (0..weights.directions()).all(|d| matches!(weights.layer(l + 1, d).w_ih(), Matrix::Dense(_)));
    (0..layers).map(|l| weights.directions() == 2 && dense_above(l)).collect()
}

/// Running both directions at once on half the SMs each is chosen only where its estimate is
/// below this fraction of running them in turn: two grids side by side share L2 and memory
/// bandwidth, which the single-layer estimates do not see. Measured with [`DirectionSchedule`]'s
/// forced choices on the H200 (2026-12-01, bench/RESULTS.md session 9): a DeepSpeech-like GRU
/// H = 1760 B = 4 layer ran 3.66 µs per step at once against 5.43 in turn, where the estimates
/// were 2.66 and 4.19 (both low by a quarter), so the margin has not decided a case yet.
pub const AT_ONCE_MARGIN: f64 = 0.9;

/// The decision of [`choose_schedule`] for one bidirectional layer.
#[derive(Clone, Debug, PartialEq)]
pub struct ScheduleChoice {
    /// Both directions at once, on two streams (else in turn, on one).
    pub concurrent: bool,
    /// Each direction planned for half the SMs ([`half_device`]) instead of the whole GPU.
    pub half_sms: bool,
    /// Estimated µs per step of the two directions in turn (the sum of the whole-GPU plans'
    /// estimates), where the planner has an estimate.
    pub in_turn_us: Option<f64>,
    /// Estimated µs per step of the two directions at once (the larger of the two plans'
    /// estimates, on the whole GPU or on half the SMs), where it was estimated.
    pub at_once_us: Option<f64>,
    /// Why: forced, or the estimates compared, or why one way cannot run.
    pub reason: String,
}

/// `device` with half its SMs: what each direction of a layer run at once is planned for (its
/// name says so, for the planner's messages).
pub fn half_device(device: &DeviceInfo) -> DeviceInfo {
    let sm_count = (device.sm_count / 2).max(1);
    DeviceInfo { name: format!("{} (half: {sm_count} of {} SMs)", device.name, device.sm_count), sm_count, ..device.clone() }
}

/// The planner's estimate of a layer's time per step on `device`, µs (`None` for the dense
/// slab, which has none), and its grid.
fn estimate(stats: &RowStats, cell: Cell, batch: usize, device: &DeviceInfo, opts: &PlanOptions) -> std::result::Result<(Option<f64>, usize), PlanError> {
    let m = check_mode(stats, cell, batch, device, opts)?;
    let us = if m.fit.cluster.is_some() { m.cluster_us } else { m.grid_us };
    Ok((us, m.fit.geometry.grid))
}

fn us(v: Option<f64>) -> String {
    v.map_or_else(|| "no estimate".to_string(), |v| format!("{v:.2} us"))
}

/// Whether the two directions of a bidirectional layer (`stats` of their `W_hh`) run at once or
/// in turn on `device`, and on how many SMs each is planned — the cost model of
/// [`DirectionSchedule::Auto`], or what a forced schedule implies, with the estimates.
///
/// - In turn: each direction planned for the whole GPU; estimated time per step the sum of both
///   plans' estimates ([`check_mode`]'s, for the mode the planner picks).
/// - At once with the whole-GPU plans, where their grids fit on distinct SMs together
///   (`grid₀ + grid₁ ≤ SMs`, e.g. small layers or cluster-resident ones): the larger estimate.
///   Never slower than in turn by the estimates, so `Auto` takes it.
/// - Otherwise at once on half the SMs each ([`half_device`]): the larger of the half plans'
///   estimates; `Auto` takes it where it is below [`AT_ONCE_MARGIN`] times the in-turn estimate.
///   A forced CTA count (`opts.ctas`) is each direction's own and is not halved.
///
/// Errors: the planner's refusal of a direction on the whole GPU; with
/// [`DirectionSchedule::Concurrent`], its refusal on half the SMs. (Whether the grids as the
/// driver compiled them can be resident together is checked again when the layers are built,
/// [`Model::new`].)
pub fn choose_schedule(
    stats: [&RowStats; 2],
    cell: Cell,
    batch: usize,
    device: &DeviceInfo,
    opts: &PlanOptions,
    schedule: DirectionSchedule,
) -> std::result::Result<ScheduleChoice, PlanError> {
    let full = [estimate(stats[0], cell, batch, device, opts)?, estimate(stats[1], cell, batch, device, opts)?];
    let in_turn_us = full[0].0.zip(full[1].0).map(|(a, b)| a + b);
    let grids = (full[0].1, full[1].1);
    let fits_side_by_side = grids.0 + grids.1 <= device.sm_count;
    let full_at_once = full[0].0.zip(full[1].0).map(|(a, b)| a.max(b));
    let sms = device.sm_count;
    if schedule == DirectionSchedule::Sequential {
        let reason = format!("in turn: forced; estimated {} per step in turn, whole GPU each", us(in_turn_us));
        return Ok(ScheduleChoice { concurrent: false, half_sms: false, in_turn_us, at_once_us: None, reason });
    }
    let forced = if schedule == DirectionSchedule::Concurrent { "forced; " } else { "" };
    if fits_side_by_side {
        let reason = format!(
            "at once: {forced}both grids ({} + {} CTAs) fit side by side on {sms} SMs; estimated {} per step at once, {} in turn",
            grids.0,
            grids.1,
            us(full_at_once),
            us(in_turn_us)
        );
        return Ok(ScheduleChoice { concurrent: true, half_sms: false, in_turn_us, at_once_us: full_at_once, reason });
    }
    let in_turn = |why: String| ScheduleChoice {
        concurrent: false,
        half_sms: false,
        in_turn_us,
        at_once_us: None,
        reason: format!("in turn: {why}; estimated {} per step in turn, whole GPU each", us(in_turn_us)),
    };
    if opts.ctas.is_some() {
        if schedule == DirectionSchedule::Concurrent {
            // The grids as forced: at once only if the driver's registers let them share SMs.
            let reason = format!("at once: forced; {} + {} CTAs as forced (ctas), resident together only where one CTA of each fits on an SM", grids.0, grids.1);
            return Ok(ScheduleChoice { concurrent: true, half_sms: false, in_turn_us, at_once_us: full_at_once, reason });
        }
        return Ok(in_turn(format!("the grids ({} + {} CTAs, forced with ctas) do not fit side by side on {sms} SMs", grids.0, grids.1)));
    }
    let half = half_device(device);
    let halves = estimate(stats[0], cell, batch, &half, opts).and_then(|a| Ok((a, estimate(stats[1], cell, batch, &half, opts)?)));
    let (h0, h1) = match halves {
        Ok(h) => h,
        Err(e) if schedule == DirectionSchedule::Concurrent => return Err(e),
        Err(e) => return Ok(in_turn(format!("a direction does not fit on half the SMs ({e})"))),
    };
    let at_once_us = h0.0.zip(h1.0).map(|(a, b)| a.max(b));
    let half_sms = half.sm_count;
    let detail = format!("estimated {} per step at once on {half_sms} SMs each, {} in turn on {sms}", us(at_once_us), us(in_turn_us));
    let choice = |concurrent: bool, reason: String| ScheduleChoice { concurrent, half_sms: concurrent, in_turn_us, at_once_us, reason };
    if schedule == DirectionSchedule::Concurrent {
        return Ok(choice(true, format!("at once on half the SMs: forced; {detail}")));
    }
    Ok(match (at_once_us, in_turn_us) {
        (Some(a), Some(t)) if a < AT_ONCE_MARGIN * t => choice(true, format!("at once on half the SMs: {detail}")),
        (Some(_), Some(_)) => choice(
            false,
            format!("in turn: {detail} (at once needs to be estimated {:.0} % faster)", (1.0 - AT_ONCE_MARGIN) * 100.0),
        ),
        _ => in_turn("the dense slab has no estimate to compare".to_string()),
    })
}

/// What one CTA of a persistent grid holds on its SM, and the grid's size: the inputs of
/// [`co_resident`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CtaFootprint {
    /// CTAs in the grid.
    pub grid: usize,
    /// Threads per CTA.
    pub threads: usize,
    /// Registers per thread (as the driver compiled the kernel).
    pub registers_per_thread: usize,
    /// Dynamic shared memory per CTA, bytes.
    pub smem_bytes: usize,
}

impl CtaFootprint {
    /// The footprint of `layer`'s launches.
    pub fn of(layer: &SparseRecurrentLayer) -> CtaFootprint {
        let (grid, threads, _, smem_bytes, _) = layer.launch_shape();
        CtaFootprint { grid, threads, registers_per_thread: layer.registers_per_thread(), smem_bytes }
    }

    /// Registers one CTA takes from the SM's file, counted as the planner counts them
    /// ([`registers_per_sm`]: allocation unit, warps in multiples of four).
    fn registers(&self) -> usize {
        registers_per_sm(self.threads, 1, self.registers_per_thread)
    }
}

/// Whether two persistent grids can be resident at the same time on `device`: both grids have
/// at most one CTA per SM (`grid ≤ SMs`), and one CTA of each fits on one SM together —
/// registers (each CTA's counted as the planner counts them, [`registers_per_sm`]: since warps
/// are dealt to the four schedulers in turn, the busiest one holds `⌈warps / 4⌉` of each CTA's),
/// shared memory (plus the driver's per-CTA reserve) and threads.
pub fn co_resident(a: &CtaFootprint, b: &CtaFootprint, device: &DeviceInfo) -> bool {
    a.grid <= device.sm_count
        && b.grid <= device.sm_count
        && a.registers() + b.registers() <= device.registers_per_sm
        && a.smem_bytes + b.smem_bytes + 2 * SHARED_RESERVED_PER_CTA <= device.shared_per_sm
        && a.threads + b.threads <= device.max_threads_per_sm
}


/// Whether two persistent grids fit on distinct SMs together (`grid_a + grid_b ≤ SMs`): every
/// CTA of a plan fits on an empty SM, so both grids are resident at once wherever the CTA
/// scheduler puts them.
pub fn side_by_side(a: &CtaFootprint, b: &CtaFootprint, device: &DeviceInfo) -> bool {
    a.grid + b.grid <= device.sm_count
}

/// Times of one [`Model::forward_device`] call, from CUDA events recorded in its chain (read
/// after the one synchronisation at its end) and the host's clock. Per-layer vectors have one
/// entry per layer.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelTiming {
    /// Per layer: the recurrent kernels' span in milliseconds, from the first direction's
    /// launch to the last one's end (both directions when bidirectional, whether they ran at
    /// once or in turn).
    pub recurrent_ms: Vec<f32>,
    /// Per layer and direction (`[l][d]`): each recurrent kernel's own time, milliseconds.
    pub kernel_ms: Vec<Vec<f32>>,
    /// Per layer: the input projections, milliseconds, from the first projection's start to
    /// the first recurrent kernel's start (both projections when the directions run in turn;
    /// when they run at once, the reverse projection may overlap the forward kernel).
    pub projection_ms: Vec<f32>,
    /// Per layer: the join of a bidirectional layer's two directions (the concatenation, and
    /// the wait for the later direction), milliseconds, from the last recurrent kernel's end;
    /// 0 for a unidirectional layer, and 0 for a layer whose join is fused into the next
    /// layer's projections ([`Model::join_fused`]): no join kernel runs, the next layer's
    /// projection time includes the joining, and the wait for the later direction falls in
    /// the rest of the wall time ([`Self::other_ms`]).
    pub join_ms: Vec<f32>,
    /// Per layer: whether its two directions ran at once (`false` when unidirectional).
    pub concurrent: Vec<bool>,
    /// The chain's span on the GPU, from its first event to its last, milliseconds.
    pub gpu_ms: f32,
    /// Wall time of the whole call on the host, milliseconds: the checks, the initial-state
    /// copies, enqueueing the chain, the GPU's work, the one wait and the status checks.
    pub total_ms: f64,
}

impl ModelTiming {
    /// The sum of the layers' recurrent spans, milliseconds.
    pub fn recurrent_total_ms(&self) -> f64 {
        self.recurrent_ms.iter().map(|&v| v as f64).sum()
    }

    /// The wall time not spent in a recurrent kernel, a projection or a join, milliseconds:
    /// launch latencies and gaps between the chain's steps, and the host's own work.
    pub fn other_ms(&self) -> f64 {
        let parts: f64 = (0..self.recurrent_ms.len()).map(|l| (self.recurrent_ms[l] + self.projection_ms[l] + self.join_ms[l]) as f64).sum();
        self.total_ms - parts
    }

    /// The per-layer report in µs per step of a sequence of `steps` steps: one line per layer
    /// (recurrent, each direction's kernel when bidirectional, projection, join — 0.000 where
    /// the join is fused into the next layer's projection, see [`Self::join_ms`]) and one for
    /// the rest and the whole call.
    pub fn report(&self, steps: usize) -> String {
        let per = |ms: f64| ms * 1e3 / steps.max(1) as f64;
        let mut out = String::new();
        for l in 0..self.recurrent_ms.len() {
            let kernels = match self.kernel_ms[l][..] {
                [f, r] => format!(
                    " (forward {:.3}, reverse {:.3}, {})",
                    per(f as f64),
                    per(r as f64),
                    if self.concurrent[l] { "at once" } else { "in turn" }
                ),
                _ => String::new(),
            };
            out.push_str(&format!(
                "layer {l}: recurrent {:.3}{kernels}, projection {:.3}, join {:.3} us per step\n",
                per(self.recurrent_ms[l] as f64),
                per(self.projection_ms[l] as f64),
                per(self.join_ms[l] as f64)
            ));
        }
        let total = per(self.total_ms);
        let other = per(self.other_ms());
        let share = if total > 0.0 { 100.0 * other / total } else { 0.0 };
        out.push_str(&format!(
            "other: {other:.3} us per step ({share:.1} % of the wall time); whole model {total:.3} us per step (GPU span {:.3})\n",
            per(self.gpu_ms as f64)
        ));
        out
    }
}

/// Times of one [`ModelGraph::replay`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ReplayTiming {
    /// The graph's run on the GPU, milliseconds (CUDA events around its launch).
    pub gpu_ms: f32,
    /// Wall time of the replay on the host, milliseconds: the launch, the one wait and the
    /// status checks.
    pub total_ms: f64,
}

/// Block `k` of `bh` values of an `[L·D][B][H]` state, if given.
fn block(v: Option<&[f32]>, k: usize, bh: usize) -> Option<&[f32]> {
    v.map(|v| &v[k * bh..(k + 1) * bh])
}

/// One direction of one layer: its projection, its recurrent layer and their buffers.
struct Direction {
    projection: InputProjection,
    layer: SparseRecurrentLayer,
    /// `U`, `[T][B][G·H]` f32 (reallocated when `T` changes).
    u: DeviceInput,
    /// `h` `[T][B][H]` and `c` `[B][H]`.
    out: DeviceOutput,
}

/// The events one layer's part of the chain records (timing enabled: they both order streams
/// and time the steps).
struct LayerEvents {
    /// Per direction, before its projection (direction 0's is also where the reverse
    /// direction's stream forks from the main stream when they run at once).
    projection: Vec<Event>,
    /// Per direction, around its recurrent kernel (the reverse direction's end is where the
    /// main stream joins it back).
    kernel: Vec<(Event, Event)>,
    /// After the join of a bidirectional layer (not recorded where the join is fused into the
    /// next layer's projections).
    join: Event,
}

/// The events of a model's chain, made once with the model and recorded by every pass.
struct ChainEvents {
    start: Event,
    end: Event,
    layers: Vec<LayerEvents>,
    /// Recorded on the side stream to join it back when a capture is abandoned half-way.
    rejoin: Event,
}

impl ChainEvents {
    fn new(layers: usize, directions: usize) -> Result<ChainEvents> {
        let timed = || Event::new(true);
        let layers = (0..layers)
            .map(|_| {
                Ok(LayerEvents {
                    projection: (0..directions).map(|_| timed()).collect::<Result<_, _>>()?,
                    kernel: (0..directions).map(|_| Ok((timed()?, timed()?))).collect::<Result<_, driver::CallFailed>>()?,
                    join: timed()?,
                })
            })
            .collect::<Result<_, driver::CallFailed>>()?;
        Ok(ChainEvents { start: timed()?, end: timed()?, layers, rejoin: Event::new(false)? })
    }
}

/// A stack of recurrent layers resident on one GPU, for batch `B` (see the [module
/// docs](self)). Built once from [`ModelWeights`]; runs sequences of any length.
pub struct Model {
    gpu: Gpu,
    cell: Cell,
    hidden: usize,
    input_size: usize,
    batch: usize,
    layers: Vec<Vec<Direction>>,
    /// Per layer: whether its two directions run at once.
    concurrent: Vec<bool>,
    /// Per bidirectional layer: the schedule's decision and reason.
    schedules: Vec<Option<ScheduleChoice>>,
    /// Per layer and direction (`l·D + d`): kernel flags added to every launch (test hooks).
    extra_flags: Vec<u32>,
    /// Per layer: whether its join is fused into the next layer's projections, as
    /// [`fused_joins`] decides from the weights.
    fusable: Vec<bool>,
    /// Test hook ([`Model::set_keep_every_join`]): every bidirectional layer keeps its join.
    keep_every_join: bool,
    /// Per layer: the joined output `[T][B][2H]` of a bidirectional layer that keeps its join
    /// (`None` for a fused join and for unidirectional layers).
    joined: Vec<Option<DeviceBuffer<f32>>>,
    /// Steps the buffers hold, and of the last successful run (0: none yet).
    steps: usize,
    ran: bool,
    events: ChainEvents,
    streams: [Stream; 2],
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("Model");
        d.field("cell", &self.cell).field("layers", &self.layers.len()).field("directions", &self.directions());
        d.field("hidden", &self.hidden).field("input_size", &self.input_size).field("batch", &self.batch);
        d.field("concurrent", &self.concurrent).finish()
    }
}

/// Builds one direction's recurrent layer, planned for `device` (the GPU's own, or half of it).
fn build_layer(gpu: &Gpu, cell: Cell, w: &crate::weights::LayerWeights, batch: usize, opts: &LayerOptions, half: bool) -> Result<SparseRecurrentLayer> {
    if !half {
        return SparseRecurrentLayer::new(gpu, cell, w.w_hh(), w.b_hh(), batch, opts);
    }
    crate::validate::layer(cell, w.w_hh(), batch)?;
    let plan = layout::plan(w.w_hh(), cell, batch, &half_device(gpu.info()), &opts.plan)?;
    SparseRecurrentLayer::from_plan(gpu, &plan, w.b_hh(), opts.timeout)
}

impl Model {
    /// Plans and uploads every layer and direction of `weights` for batch `batch` on `gpu`;
    /// decides for each bidirectional layer whether its directions run at once or in turn
    /// ([`choose_schedule`] with `opts.schedule`; [`Self::schedule`] says what and why).
    ///
    /// Errors: those of [`SparseRecurrentLayer::new`] (a layer the planner refuses, a grid
    /// that cannot be resident, ...) and of [`InputProjection::new`], for the first layer and
    /// direction that fails; with [`DirectionSchedule::Concurrent`], [`Error::Input`]
    /// (`"schedule"`) for a layer whose two grids cannot be resident together.
    pub fn new(gpu: &Gpu, weights: &ModelWeights, batch: usize, opts: &ModelOptions) -> Result<Model> {
        let (cell, hidden) = (weights.cell(), weights.hidden());
        gpu.make_current()?;
        let info = gpu.info();
        let mut layers = Vec::with_capacity(weights.num_layers());
        let (mut concurrent, mut schedules) = (Vec::new(), Vec::new());
        for l in 0..weights.num_layers() {
            let bidirectional = weights.directions() == 2;
            let mut choice = if bidirectional {
                let stats = [RowStats::of(weights.layer(l, 0).w_hh()), RowStats::of(weights.layer(l, 1).w_hh())];
                match choose_schedule([&stats[0], &stats[1]], cell, batch, info, &opts.layer.plan, opts.schedule) {
                    Ok(c) => Some(c),
                    // A refusal on the whole GPU is reported by the layer's own build below.
                    Err(e) if opts.schedule != DirectionSchedule::Concurrent => {
                        let _ = e;
                        None
                    }
                    Err(e) => return Err(e.into()),
                }
            } else {
                None
            };
            let half = choice.as_ref().is_some_and(|c| c.half_sms);
            let mut dirs = Vec::with_capacity(weights.directions());
            for d in 0..weights.directions() {
                let w = weights.layer(l, d);
                let layer = build_layer(gpu, cell, w, batch, &opts.layer, half)?;
                let projection = InputProjection::new(gpu, w.w_ih(), w.b_ih())?;
                let out = layer.alloc_output(1)?;
                let u = DeviceInput::alloc_f32(gpu, layer.input_len(1))?;
                dirs.push(Direction { projection, layer, u, out });
            }
            let at_once = match (&mut choice, bidirectional) {
                (_, false) => false,
                (c, true) => {
                    let (a, b) = (CtaFootprint::of(&dirs[0].layer), CtaFootprint::of(&dirs[1].layer));
                    let (beside, shared) = (side_by_side(&a, &b, info), co_resident(&a, &b, info));
                    let together = beside || shared;
                    match (opts.schedule, c.as_mut()) {
                        (DirectionSchedule::Sequential, _) => false,
                        (DirectionSchedule::Concurrent, _) if !together => {
                            return Err(Error::Input {
                                name: "schedule",
                                problem: format!(
                                    "layer {l}: its directions ({} and {} CTAs of {} and {} threads, {} and {} registers per thread) cannot be resident together on {} SMs; run them in turn",
                                    a.grid, b.grid, a.threads, b.threads, a.registers_per_thread, b.registers_per_thread, info.sm_count
                                ),
                            })
                        }
                        (DirectionSchedule::Concurrent, _) => true,
                        (DirectionSchedule::Auto, Some(c)) if c.concurrent && !together => {
                            c.concurrent = false;
                            c.reason.push_str("; in turn after all: the grids as built cannot be resident together");
                            false
                        }
                        (DirectionSchedule::Auto, Some(c)) if !c.concurrent && shared => {
                            c.concurrent = true;
                            c.reason = format!("at once: one CTA of each direction fits on an SM together (co-resident); {}", c.reason);
                            true
                        }
                        (DirectionSchedule::Auto, Some(c)) => c.concurrent,
                        (DirectionSchedule::Auto, None) => shared,
                    }
                }
            };
            concurrent.push(at_once);
            schedules.push(choice);
            layers.push(dirs);
        }
        let stream = || Stream::new(StreamFlags::NON_BLOCKING, None).map_err(cust_err("cuStreamCreate"));
        let streams = [stream()?, stream()?];
        let directions = weights.directions();
        Ok(Model {
            gpu: gpu.clone(),
            cell,
            hidden,
            input_size: weights.input_size(),
            batch,
            extra_flags: vec![0; layers.len() * directions],
            events: ChainEvents::new(layers.len(), directions)?,
            layers,
            concurrent,
            schedules,
            fusable: fused_joins(weights),
            keep_every_join: false,
            joined: Vec::new(),
            steps: 1,
            ran: false,
            streams,
        })
    }

    /// Cell type.
    pub fn cell(&self) -> Cell {
        self.cell
    }

    /// Hidden size H.
    pub fn hidden(&self) -> usize {
        self.hidden
    }

    /// Input size I of the first layer.
    pub fn input_size(&self) -> usize {
        self.input_size
    }

    /// Batch size B.
    pub fn batch(&self) -> usize {
        self.batch
    }

    /// Number of layers L.
    pub fn num_layers(&self) -> usize {
        self.layers.len()
    }

    /// Number of directions D (1, or 2 when bidirectional).
    pub fn directions(&self) -> usize {
        self.layers[0].len()
    }

    /// Whether the two directions of layer `l` run at once (`false` for unidirectional
    /// layers).
    ///
    /// # Panics
    /// When `l >= num_layers()`.
    pub fn concurrent(&self, l: usize) -> bool {
        self.concurrent[l]
    }

    /// Whether layer `l`'s join is fused into layer `l + 1`'s input projections (see the [module
    /// docs](self#which-joins-run)): no join kernel runs for it, its
    /// [`ModelTiming::join_ms`] is 0. `false` for the last layer, for unidirectional layers and
    /// for a layer below a sparse `W_ih`.
    ///
    /// # Panics
    /// When `l >= num_layers()`.
    pub fn join_fused(&self, l: usize) -> bool {
        self.fusable[l] && !self.keep_every_join
    }

    /// The schedule of bidirectional layer `l`'s directions: the decision, the estimates and
    /// why (`None` for a unidirectional model, or where the planner gave no estimate because
    /// it refused a direction).
    ///
    /// # Panics
    /// When `l >= num_layers()`.
    pub fn schedule(&self, l: usize) -> Option<&ScheduleChoice> {
        self.schedules[l].as_ref()
    }

    /// The recurrent layer of layer `l`, direction `d` (for its launch shape).
    ///
    /// # Panics
    /// When `l` or `d` is out of range.
    pub fn layer(&self, l: usize, d: usize) -> &SparseRecurrentLayer {
        &self.layers[l][d].layer
    }

    /// The GPU the model lives on.
    pub fn gpu(&self) -> &Gpu {
        &self.gpu
    }

    /// Values in `h0`/`c0`/`h_n`/`c_n`: `L·D·B·H`.
    pub fn state_len(&self) -> usize {
        self.layers.len() * self.directions() * self.batch * self.hidden
    }

    /// Numbers the next forward pass's steps as the continuation of a sequence of which
    /// `steps_done` steps have run (see [`SparseRecurrentLayer::set_steps_done`]); used by
    /// [`crate::StreamingModel`].
    pub fn set_steps_done(&mut self, steps_done: u64) {
        for dir in self.layers.iter_mut().flatten() {
            dir.layer.set_steps_done(steps_done);
        }
    }

    /// Makes the kernel of layer `at.0`, direction `at.1` never publish its first step, so
    /// every wait of it ends in [`Error::Timeout`] (`None`: no fault). (Test hook.)
    ///
    /// # Panics
    /// When the layer or direction is out of range.
    #[cfg(feature = "test-hooks")]
    pub fn set_never_publish(&mut self, at: Option<(usize, usize)>) {
        let dn = self.directions();
        self.extra_flags.iter_mut().for_each(|f| *f = 0);
        if let Some((l, d)) = at {
            assert!(l < self.layers.len() && d < dn, "layer {l} direction {d} is out of range");
            self.extra_flags[l * dn + d] = sprnn_kernels::format::flags::TEST_NEVER_PUBLISH;
        }
    }

    /// With `keep`, every bidirectional layer keeps its join (as though every `W_ih` were
    /// sparse), so a fused-join model can be compared with the same model joining every layer;
    /// without, the joins of [`fused_joins`] are fused again. Takes effect from the next pass or
    /// capture (the buffers are sized again). (Test hook.)
    #[cfg(feature = "test-hooks")]
    pub fn set_keep_every_join(&mut self, keep: bool) {
        if keep != self.keep_every_join {
            self.keep_every_join = keep;
            self.ran = false;
        }
    }

    /// Runs the model on host input `x` (`[T][B][I]`, finite) from `h0`/`c0` (`[L·D][B][H]`,
    /// zeros when `None`; `c0` for LSTM only) and returns PyTorch's `output`, `h_n` and (LSTM)
    /// `c_n`. Errors as [`Self::forward_device`], plus a non-finite `x` (`"x"`).
    pub fn forward(&mut self, x: &[f32], steps: usize, h0: Option<&[f32]>, c0: Option<&[f32]>) -> Result<ModelOutput> {
        check_finite("x", x)?;
        self.check_x(x.len(), steps)?;
        self.gpu.make_current()?;
        let d_x = DeviceBuffer::from_slice(x).map_err(cust_err("cuMemAlloc"))?;
        self.forward_device(&d_x, steps, h0, c0)?;
        self.output_to_host()
    }

    fn check_x(&self, len: usize, steps: usize) -> Result<()> {
        if steps == 0 {
            return Err(Error::Input { name: "steps", problem: "0; a sequence needs at least one step".into() });
        }
        let want = steps.checked_mul(self.batch * self.input_size).ok_or(Error::Input { name: "steps", problem: format!("{steps} steps overflow T*B*I") })?;
        check_len("x", len, want, "T*B*I")
    }

    /// The checks of a forward pass or a capture, before anything is enqueued.
    fn check_call(&self, x_len: usize, steps: usize, h0: Option<&[f32]>, c0: Option<&[f32]>) -> Result<()> {
        self.check_x(x_len, steps)?;
        let n = self.state_len();
        for (name, v) in [("h0", h0), ("c0", c0)] {
            if let Some(v) = v {
                check_len(name, v.len(), n, "L*D*B*H")?;
                check_finite(name, v)?;
            }
        }
        if c0.is_some() && self.cell != Cell::Lstm {
            return Err(Error::Input { name: "c0", problem: format!("given for a {} model; only LSTM has a cell state", self.cell.name()) });
        }
        Ok(())
    }

    /// Per layer: whether it keeps its join (a bidirectional layer whose join is not fused).
    fn keeps_join(&self) -> Vec<bool> {
        let dn = self.directions();
        (0..self.layers.len()).map(|l| dn == 2 && !self.join_fused(l)).collect()
    }

    /// Makes every buffer hold `steps` steps (a joined output for each layer that keeps its
    /// join, none for the others).
    fn ensure_steps(&mut self, steps: usize) -> Result<()> {
        let keeps = self.keeps_join();
        if self.steps == steps && self.joined.len() == keeps.len() && self.joined.iter().map(Option::is_some).eq(keeps.iter().copied()) {
            return Ok(());
        }
        self.ran = false;
        // Until every buffer holds `steps` steps, no size is valid: a failure below leaves the
        // next call to reallocate them all.
        self.steps = 0;
        for dirs in &mut self.layers {
            for dir in dirs.iter_mut() {
                // Checked as a forward pass checks T (32-bit indices): a typed error, no allocation.
                let out = dir.layer.alloc_output(steps)?;
                dir.out = out;
                dir.u = DeviceInput::alloc_f32(&self.gpu, dir.layer.input_len(steps))?;
            }
        }
        self.joined.clear();
        for keep in keeps {
            let joined = if keep { Some(DeviceBuffer::zeroed(steps * self.batch * 2 * self.hidden).map_err(cust_err("cuMemAlloc"))?) } else { None };
            self.joined.push(joined);
        }
        self.steps = steps;
        Ok(())
    }

    /// Copies each layer's block of `h0`/`c0` into its initial-state buffers (on the host's
    /// side of the chain: before anything is enqueued) and returns each layer's kernel flags
    /// (`l·D + d`).
    fn load_states(&mut self, h0: Option<&[f32]>, c0: Option<&[f32]>) -> Result<Vec<u32>> {
        let (dn, bh) = (self.directions(), self.batch * self.hidden);
        let mut flags = self.extra_flags.clone();
        for (l, dirs) in self.layers.iter_mut().enumerate() {
            for (d, dir) in dirs.iter_mut().enumerate() {
                let k = l * dn + d;
                flags[k] |= dir.layer.load_state(block(h0, k, bh), block(c0, k, bh)).map_err(|e| e.in_layer(l, d, dn))?;
            }
        }
        Ok(flags)
    }

    /// Enqueues the whole forward pass as one chain on the model's streams (see the [module
    /// docs](self#one-chain-of-stream-ordered-work)); returns at once. On error, what was
    /// enqueued before stays enqueued (the caller waits for it, or ends the capture), and the
    /// side stream has been joined back to the main one.
    fn enqueue_chain(&mut self, x: &DeviceBuffer<f32>, steps: usize, flags: &[u32], launch: Launch) -> Result<()> {
        let mut forked = false;
        let r = self.enqueue_chain_steps(x, steps, flags, launch, &mut forked);
        if r.is_err() && forked {
            // Join the side stream back (a capture cannot end with it forked).
            let _ = self.events.rejoin.record(&self.streams[1]);
            let _ = driver::wait_event(&self.streams[0], &self.events.rejoin);
        }
        r
    }

    fn enqueue_chain_steps(&mut self, x: &DeviceBuffer<f32>, steps: usize, flags: &[u32], launch: Launch, forked: &mut bool) -> Result<()> {
        let Model { gpu, layers, concurrent, joined, events, streams, batch, hidden, .. } = self;
        let (s0, s1) = (&streams[0], &streams[1]);
        let (dn, batch, hidden) = (layers[0].len(), *batch, *hidden);
        events.start.record(s0)?;
        for l in 0..layers.len() {
            let (below, rest) = layers.split_at_mut(l);
            let dirs = &mut rest[0];
            let input = match l {
                0 => ProjectionInput::Rows(x),
                // A layer below that keeps no joined output: its directions, joined as they are
                // read (dense projections only, `fused_joins`).
                _ if dn == 2 => match &joined[l - 1] {
                    Some(j) => ProjectionInput::Rows(j),
                    None => ProjectionInput::Directions { forward: &below[l - 1][0].out.h, reverse: &below[l - 1][1].out.h },
                },
                _ => ProjectionInput::Rows(&below[l - 1][0].out.h),
            };
            let at_once = concurrent[l];
            let stream_of = |d: usize| if at_once && d == 1 { s1 } else { s0 };
            let ev = &events.layers[l];
            let ctx = |d: usize| move |e: Error| e.in_layer(l, d, dn);
            for (d, dir) in dirs.iter_mut().enumerate() {
                if at_once && d == 1 {
                    // Fork: the reverse direction starts where the layer starts on the main stream.
                    driver::wait_event(s1, &ev.projection[0])?;
                    *forked = true;
                }
                let s = stream_of(d);
                ev.projection[d].record(s)?;
                dir.projection.enqueue(input, steps, batch, d == 1, &mut dir.u, s).map_err(ctx(d))?;
            }
            for (d, dir) in dirs.iter_mut().enumerate() {
                let (before, after) = &ev.kernel[d];
                dir.layer.enqueue_between(dir.u.address(), &mut dir.out, flags[l * dn + d], stream_of(d), Some((before, after)), launch).map_err(ctx(d))?;
            }
            if dn == 2 {
                if at_once {
                    // Join: the main stream waits for the reverse direction's kernel.
                    driver::wait_event(s0, &ev.kernel[1].1)?;
                    *forked = false;
                }
                // A fused join: the next layer's projections, ordered after this point on the
                // main stream, read both directions' states themselves.
                let Some(out) = &joined[l] else { continue };
                let params = ConcatParams {
                    forward: dirs[0].out.h.as_device_ptr().as_raw(),
                    reverse: dirs[1].out.h.as_device_ptr().as_raw(),
                    out: out.as_device_ptr().as_raw(),
                    steps: steps as u32,
                    batch: batch as u32,
                    hidden: hidden as u32,
                    pad: 0,
                };
                let f = gpu.function(CONCAT_KERNEL)?;
                let total = steps * batch * 2 * hidden;
                // SAFETY: both sources are [T][B][H] and the destination [T][B][2H] (buffers
                // sized by `ensure_steps` for `steps`); the caller waits for the stream (or
                // keeps the buffers for the graph's life) before any of them is freed.
                unsafe { driver::launch(&f, elementwise_grid(total), ELEMENTWISE_THREADS as u32, 0, s0, &params) }?;
                ev.join.record(s0)?;
            }
        }
        events.end.record(s0)?;
        Ok(())
    }

    /// After the chain's one synchronisation: every layer's status, the first failing layer
    /// (in the chain's order) as [`Error::InLayer`].
    fn check_statuses(&self) -> Result<()> {
        let dn = self.directions();
        for (l, dirs) in self.layers.iter().enumerate() {
            for (d, dir) in dirs.iter().enumerate() {
                dir.layer.check_status().map_err(|e| e.in_layer(l, d, dn))?;
            }
        }
        Ok(())
    }

    /// The chain's times, from its events (after the synchronisation).
    fn read_timing(&self, started: Instant) -> Result<ModelTiming> {
        let ev = &self.events;
        let dn = self.directions();
        let mut t = ModelTiming {
            recurrent_ms: Vec::new(),
            kernel_ms: Vec::new(),
            projection_ms: Vec::new(),
            join_ms: Vec::new(),
            concurrent: self.concurrent.clone(),
            gpu_ms: ev.end.elapsed_ms(&ev.start)?,
            total_ms: 0.0,
        };
        let keeps = self.keeps_join();
        for (le, keep) in ev.layers.iter().zip(keeps) {
            // Every time relative to the layer's first event.
            let origin = &le.projection[0];
            let at = |e: &Event| e.elapsed_ms(origin);
            let (mut first_kernel, mut last_end, mut first_projection) = (f32::INFINITY, f32::NEG_INFINITY, f32::INFINITY);
            let mut kernels = Vec::with_capacity(dn);
            for d in 0..dn {
                let (k0, k1) = (at(&le.kernel[d].0)?, at(&le.kernel[d].1)?);
                first_projection = first_projection.min(at(&le.projection[d])?);
                first_kernel = first_kernel.min(k0);
                last_end = last_end.max(k1);
                kernels.push(k1 - k0);
            }
            t.recurrent_ms.push(last_end - first_kernel);
            t.kernel_ms.push(kernels);
            t.projection_ms.push((first_kernel - first_projection).max(0.0));
            t.join_ms.push(if keep { (at(&le.join)? - last_end).max(0.0) } else { 0.0 });
        }
        t.total_ms = started.elapsed().as_secs_f64() * 1e3;
        Ok(t)
    }

    /// Runs the model on device input `x` (`[T][B][I]` f32) with everything on the GPU; the
    /// results stay there until [`Self::output_to_host`] (or the next call). `h0`/`c0` are
    /// `[L·D][B][H]` host values (zeros when `None`; `c0` for LSTM only).
    ///
    /// The whole pass is one chain of stream-ordered work with one wait at its end (see the
    /// [module docs](self#one-chain-of-stream-ordered-work)); the returned [`ModelTiming`] has
    /// every layer's parts.
    ///
    /// Errors, before anything is launched ([`Error::Input`]): `steps` is 0 or beyond the
    /// kernels' 32-bit indices, `x` is not `T·B·I` values, `h0`/`c0` are not `L·D·B·H` finite
    /// values, `c0` is given for a cell without a cell state. Then the errors of the kernels
    /// ([`Error::Timeout`], [`Error::NotResident`], ...) as [`Error::InLayer`] naming the
    /// first failing layer and direction in the chain's order, or [`Error::Driver`] for a
    /// failure the driver does not tie to a layer.
    pub fn forward_device(&mut self, x: &DeviceBuffer<f32>, steps: usize, h0: Option<&[f32]>, c0: Option<&[f32]>) -> Result<ModelTiming> {
        let started = Instant::now();
        self.check_call(x.len(), steps, h0, c0)?;
        self.gpu.make_current()?;
        self.ensure_steps(steps)?;
        self.ran = false;
        let flags = self.load_states(h0, c0)?;
        let enqueued = self.enqueue_chain(x, steps, &flags, Launch::Checked);
        // The one wait of the pass (the side stream joins the main one inside the chain; after
        // a failed enqueue it is waited for too).
        let waited = driver::synchronize(&self.streams[0]);
        if enqueued.is_err() {
            let _ = driver::synchronize(&self.streams[1]);
        }
        enqueued?;
        waited?;
        self.check_statuses()?;
        let timing = self.read_timing(started)?;
        self.ran = true;
        Ok(timing)
    }

    /// Captures the forward pass over `x` (`steps` steps, from `h0`/`c0`) as one CUDA graph,
    /// checked as [`Self::forward_device`] checks its arguments; [`ModelGraph::replay`] then
    /// runs it, as often as wanted, with one launch and one wait, and gives the same outputs as
    /// `forward_device` bit for bit.
    ///
    /// Done once, here, and not per replay: sizing the buffers for `steps`, copying `h0`/`c0`
    /// into the layers' initial-state buffers (every replay starts from these), asking the
    /// driver whether each cluster-resident layer's cluster fits. In the graph, per replay:
    /// every memset that resets an exchange buffer or a status word, every projection, kernel
    /// and join. New input goes in through [`ModelGraph::write_input`] (the graph reads `x`'s
    /// memory), a new initial state needs a new capture. The graph borrows the model and `x`:
    /// neither can be changed otherwise, or freed, while it lives.
    ///
    /// Errors: as `forward_device` before anything is launched; then [`Error::InLayer`] for a
    /// layer whose launch the driver refuses while capturing, or [`Error::Driver`] naming the
    /// capture call that failed (`cuStreamEndCapture`, `cuGraphInstantiateWithFlags`).
    pub fn capture<'a>(&'a mut self, x: &'a mut DeviceBuffer<f32>, steps: usize, h0: Option<&[f32]>, c0: Option<&[f32]>) -> Result<ModelGraph<'a>> {
        self.check_call(x.len(), steps, h0, c0)?;
        self.gpu.make_current()?;
        self.ensure_steps(steps)?;
        self.ran = false;
        let dn = self.directions();
        for (l, dirs) in self.layers.iter().enumerate() {
            for (d, dir) in dirs.iter().enumerate() {
                dir.layer.check_launchable().map_err(|e| e.in_layer(l, d, dn))?;
            }
        }
        let flags = self.load_states(h0, c0)?;
        // Nothing else may be in flight on the streams while they are captured.
        driver::synchronize(&self.streams[0])?;
        driver::synchronize(&self.streams[1])?;
        let (start, stop) = (Event::new(true)?, Event::new(true)?);
        driver::begin_capture(&self.streams[0])?;
        let enqueued = self.enqueue_chain(x, steps, &flags, Launch::Captured);
        let ended = driver::end_capture(&self.streams[0]);
        enqueued?;
        let exec = ended?.instantiate()?;
        Ok(ModelGraph { model: self, x, steps, exec, start, stop })
    }

    /// Sizes every buffer for `steps` steps and fills all of them (each direction's `U`, `h`
    /// and `c`, the joined outputs) with NaN, so a value a kernel does not write cannot pass a
    /// check; the next [`Self::forward_device`] of `steps` steps runs on these buffers. (Test
    /// hook.)
    #[cfg(feature = "test-hooks")]
    pub fn poison(&mut self, steps: usize) -> Result<()> {
        if steps == 0 {
            return Err(Error::Input { name: "steps", problem: "0; a sequence needs at least one step".into() });
        }
        self.gpu.make_current()?;
        self.ensure_steps(steps)?;
        self.ran = false;
        self.poison_buffers()
    }

    /// Fills every buffer with NaN (see [`Self::poison`]).
    #[cfg(feature = "test-hooks")]
    fn poison_buffers(&mut self) -> Result<()> {
        let nan = f32::NAN.to_bits();
        let stream = &self.streams[0];
        for dir in self.layers.iter_mut().flatten() {
            dir.u.poison(&self.gpu)?;
            driver::memset_u32(dir.out.h.as_device_ptr().as_raw(), nan, dir.out.h.len(), stream)?;
            driver::memset_u32(dir.out.c.as_device_ptr().as_raw(), nan, dir.out.c.len(), stream)?;
        }
        for j in self.joined.iter().flatten() {
            driver::memset_u32(j.as_device_ptr().as_raw(), nan, j.len(), stream)?;
        }
        Ok(driver::synchronize(stream)?)
    }

    /// The last layer's output of the last successful run on the device, `[T][B][D·H]`
    /// (`None` before the first one).
    pub fn output_device(&self) -> Option<&DeviceBuffer<f32>> {
        let last = self.layers.len() - 1;
        // The last layer always keeps its join (`fused_joins`).
        self.ran.then(|| self.joined[last].as_ref().unwrap_or(&self.layers[last][0].out.h))
    }

    /// Copies the results of the last successful run to the host: `output` `[T][B][D·H]`,
    /// `h_n` and (LSTM) `c_n` `[L·D][B][H]`. [`Error::Input`] (`"model"`) before any run.
    pub fn output_to_host(&self) -> Result<ModelOutput> {
        let Some(out) = self.output_device() else {
            return Err(Error::Input { name: "model", problem: "no successful run yet: nothing to copy".into() });
        };
        self.gpu.make_current()?;
        let mut output = vec![0f32; out.len()];
        out.copy_to(&mut output[..]).map_err(cust_err("cuMemcpyDtoH"))?;
        let bh = self.batch * self.hidden;
        let (mut h_n, mut c_n) = (vec![0f32; self.state_len()], vec![0f32; self.state_len()]);
        for (k, dir) in self.layers.iter().flatten().enumerate() {
            let last = (self.steps - 1) * bh;
            dir.out.h.index(last..last + bh).copy_to(&mut h_n[k * bh..(k + 1) * bh]).map_err(cust_err("cuMemcpyDtoH"))?;
            if self.cell == Cell::Lstm {
                dir.out.c.copy_to(&mut c_n[k * bh..(k + 1) * bh]).map_err(cust_err("cuMemcpyDtoH"))?;
            }
        }
        Ok(ModelOutput { output, h_n, c_n: (self.cell == Cell::Lstm).then_some(c_n) })
    }
}

/// A [`Model`]'s forward pass captured as one CUDA graph ([`Model::capture`]), replayed with
/// one launch and one wait. It borrows the model (whose buffers the graph writes) and the
/// input buffer (which the graph reads) for its whole life.
pub struct ModelGraph<'a> {
    model: &'a mut Model,
    x: &'a mut DeviceBuffer<f32>,
    steps: usize,
    exec: GraphExec,
    start: Event,
    stop: Event,
}

impl std::fmt::Debug for ModelGraph<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelGraph").field("model", &self.model).field("steps", &self.steps).finish()
    }
}

impl ModelGraph<'_> {
    /// Runs the captured forward pass once and waits for it; then checks every layer's status
    /// as [`Model::forward_device`] does (the first failing layer as [`Error::InLayer`]). The
    /// outputs are the model's ([`Self::output_to_host`], [`Model::output_device`] through
    /// [`Self::model`]).
    pub fn replay(&mut self) -> Result<ReplayTiming> {
        let started = Instant::now();
        let model = &mut *self.model;
        model.gpu.make_current()?;
        model.ran = false;
        let s0 = &model.streams[0];
        self.start.record(s0)?;
        // SAFETY: every address the graph uses belongs to the model's buffers (sized for
        // `steps` when captured) or to `x`; both are borrowed by the graph, so none can be
        // reallocated or freed, and the stream is waited for below before this returns.
        let launched = unsafe { self.exec.launch(s0) };
        let recorded = self.stop.record(s0);
        driver::synchronize(s0)?;
        launched?;
        recorded?;
        model.check_statuses()?;
        let gpu_ms = self.stop.elapsed_ms(&self.start)?;
        model.ran = true;
        Ok(ReplayTiming { gpu_ms, total_ms: started.elapsed().as_secs_f64() * 1e3 })
    }

    /// Copies new input `x` (`[T][B][I]` host values, finite, `T` the captured steps) into the
    /// buffer the graph reads, for the next replay.
    pub fn write_input(&mut self, x: &[f32]) -> Result<()> {
        check_finite("x", x)?;
        check_len("x", x.len(), self.x.len(), "T*B*I")?;
        self.model.gpu.make_current()?;
        self.model.ran = false;
        self.x.copy_from(x).map_err(cust_err("cuMemcpyHtoD"))
    }

    /// Steps of the captured sequence.
    pub fn steps(&self) -> usize {
        self.steps
    }

    /// The model the graph runs.
    pub fn model(&self) -> &Model {
        self.model
    }

    /// The results of the last successful replay ([`Model::output_to_host`]).
    pub fn output_to_host(&self) -> Result<ModelOutput> {
        self.model.output_to_host()
    }

    /// Fills every buffer of the model with NaN before the next replay (see
    /// [`Model::poison`]). (Test hook.)
    #[cfg(feature = "test-hooks")]
    pub fn poison(&mut self) -> Result<()> {
        self.model.gpu.make_current()?;
        self.model.ran = false;
        self.model.poison_buffers()
    }
}
