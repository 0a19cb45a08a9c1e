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
//! # Two directions at once
//!
//! Each direction is a persistent kernel whose CTAs must all be resident together. When one
//! CTA of each direction's grid fits on an SM at the same time ([`co_resident`]: registers,
//! shared memory, threads, with both grids no larger than the SM count), the two directions
//! run **concurrently** on two streams. Otherwise — the usual case for large layers, each
//! planned to fill the GPU — they run **one after the other** ([`DirectionSchedule`]), which
//! gives the same result. Running them concurrently relies on the CTA scheduler spreading a
//! grid no larger than the SM count one CTA per SM (it does); if two grids were ever left
//! partly resident, their bounded waits would end in [`Error::Timeout`], never in a hang.
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

use crate::driver;
use crate::error::{cust_err, Error, Result};
use crate::gpu::Gpu;
use crate::args::{check_finite, check_len};
use crate::layer::{LayerOptions, SparseRecurrentLayer};
use crate::layout::device::{registers_per_sm, DeviceInfo, SHARED_RESERVED_PER_CTA};
use crate::projection::{elementwise_grid, InputProjection};
use crate::tensors::{DeviceInput, DeviceOutput, ModelOutput};
use crate::weights::ModelWeights;

/// How the two directions of a bidirectional layer are scheduled.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum DirectionSchedule {
    /// Concurrently on two streams when their grids can be resident together ([`co_resident`]),
    /// else one after the other.
    #[default]
    Auto,
    /// Always one after the other, on one stream.
    Sequential,
}

/// Options for building a [`Model`].
#[derive(Clone, Debug, Default)]
pub struct ModelOptions {
    /// Options of every recurrent layer (planner overrides apply to each layer and direction:
    /// for example `layer.plan.ctas = Some(SMs / 2)` with `layer.plan.ctas_per_sm = Some(2)`
    /// plans each direction on half the SMs with CTAs of at most half an SM, so that the two
    /// directions of a large layer are co-resident and run concurrently).
    pub layer: LayerOptions,
    /// Scheduling of the two directions of bidirectional layers.
    pub schedule: DirectionSchedule,
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

/// Times of one [`Model::forward_device`] call.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelTiming {
    /// Per layer: the recurrent kernels' span in milliseconds, from the first direction's
    /// launch to the last one's end (CUDA events; both directions when bidirectional, whether
    /// they ran concurrently or in turn). Projections and joins are not included.
    pub recurrent_ms: Vec<f32>,
    /// Per layer and direction (`[l][d]`): each recurrent kernel's own time, milliseconds.
    pub kernel_ms: Vec<Vec<f32>>,
    /// Wall time of the whole call on the host, milliseconds: projections, recurrent kernels,
    /// joins and the host's waits between layers.
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

/// A stack of recurrent layers resident on one GPU, for batch `B` (see the [module
/// docs](self)). Built once from [`ModelWeights`]; runs sequences of any length.
pub struct Model {
    gpu: Gpu,
    cell: Cell,
    hidden: usize,
    input_size: usize,
    batch: usize,
    layers: Vec<Vec<Direction>>,
    /// Per layer: whether its two directions run concurrently.
    concurrent: Vec<bool>,
    /// Per bidirectional layer: the joined output `[T][B][2H]`.
    joined: Vec<DeviceBuffer<f32>>,
    /// Steps the buffers hold, and of the last successful run (0: none yet).
    steps: usize,
    ran: bool,
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

impl Model {
    /// Plans and uploads every layer and direction of `weights` for batch `batch` on `gpu`.
    ///
    /// Errors: those of [`SparseRecurrentLayer::new`] (a layer the planner refuses, a grid
    /// that cannot be resident, ...) and of [`InputProjection::new`], for the first layer and
    /// direction that fails.
    pub fn new(gpu: &Gpu, weights: &ModelWeights, batch: usize, opts: &ModelOptions) -> Result<Model> {
        let (cell, hidden) = (weights.cell(), weights.hidden());
        gpu.make_current()?;
        let mut layers = Vec::with_capacity(weights.num_layers());
        let mut concurrent = Vec::new();
        for l in 0..weights.num_layers() {
            let mut dirs = Vec::with_capacity(weights.directions());
            for d in 0..weights.directions() {
                let w = weights.layer(l, d);
                let layer = SparseRecurrentLayer::new(gpu, cell, w.w_hh(), w.b_hh(), batch, &opts.layer)?;
                let projection = InputProjection::new(gpu, w.w_ih(), w.b_ih())?;
                let out = layer.alloc_output(1)?;
                let u = DeviceInput::alloc_f32(gpu, layer.input_len(1))?;
                dirs.push(Direction { projection, layer, u, out });
            }
            concurrent.push(
                dirs.len() == 2
                    && opts.schedule == DirectionSchedule::Auto
                    && co_resident(&CtaFootprint::of(&dirs[0].layer), &CtaFootprint::of(&dirs[1].layer), gpu.info()),
            );
            layers.push(dirs);
        }
        let stream = || Stream::new(StreamFlags::NON_BLOCKING, None).map_err(cust_err("cuStreamCreate"));
        let streams = [stream()?, stream()?];
        Ok(Model {
            gpu: gpu.clone(),
            cell,
            hidden,
            input_size: weights.input_size(),
            batch,
            layers,
            concurrent,
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

    /// Whether the two directions of layer `l` run concurrently (`false` for unidirectional
    /// layers).
    ///
    /// # Panics
    /// When `l >= num_layers()`.
    pub fn concurrent(&self, l: usize) -> bool {
        self.concurrent[l]
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

    /// Runs the model on host input `x` (`[T][B][I]`, finite) from `h0`/`c0` (`[L·D][B][H]`,
    /// zeros when `None`; `c0` for LSTM only) and returns PyTorch's `output`, `h_n` and (LSTM)
    /// Numbers the next forward pass's steps as the continuation of a sequence of which
    /// `steps_done` steps have run (see [`SparseRecurrentLayer::set_steps_done`]); used by
    /// [`crate::StreamingModel`].
    pub fn set_steps_done(&mut self, steps_done: u64) {
        for dir in self.layers.iter_mut().flatten() {
            dir.layer.set_steps_done(steps_done);
        }
    }

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

    /// Makes every buffer hold `steps` steps.
    fn ensure_steps(&mut self, steps: usize) -> Result<()> {
        if self.steps == steps && (self.joined.len() == self.layers.len() || self.directions() == 1) {
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
        if self.directions() == 2 {
            for _ in 0..self.layers.len() {
                self.joined.push(DeviceBuffer::zeroed(steps * self.batch * 2 * self.hidden).map_err(cust_err("cuMemAlloc"))?);
            }
        }
        self.steps = steps;
        Ok(())
    }

    /// Runs the model on device input `x` (`[T][B][I]` f32) with everything on the GPU; the
    /// results stay there until [`Self::output_to_host`] (or the next call). `h0`/`c0` are
    /// `[L·D][B][H]` host values (zeros when `None`; `c0` for LSTM only).
    ///
    /// Errors, before anything is launched ([`Error::Input`]): `steps` is 0 or beyond the
    /// kernels' 32-bit indices, `x` is not `T·B·I` values, `h0`/`c0` are not `L·D·B·H` finite
    /// values, `c0` is given for a cell without a cell state. Then the errors of the kernels
    /// ([`Error::Timeout`], [`Error::Driver`], ...), for the first layer that fails.
    pub fn forward_device(&mut self, x: &DeviceBuffer<f32>, steps: usize, h0: Option<&[f32]>, c0: Option<&[f32]>) -> Result<ModelTiming> {
        let started = Instant::now();
        self.check_x(x.len(), steps)?;
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
        self.gpu.make_current()?;
        self.ensure_steps(steps)?;
        self.ran = false;
        let (dirs_n, bh, batch) = (self.directions(), self.batch * self.hidden, self.batch);
        let mut timing = ModelTiming { recurrent_ms: Vec::new(), kernel_ms: Vec::new(), total_ms: 0.0 };
        for l in 0..self.layers.len() {
            let (below, rest) = self.layers.split_at_mut(l);
            let dirs = &mut rest[0];
            let input: &DeviceBuffer<f32> = match l {
                0 => x,
                _ if dirs_n == 2 => &self.joined[l - 1],
                _ => &below[l - 1][0].out.h,
            };
            let concurrent = self.concurrent[l];
            let stream_of = |d: usize| if concurrent { &self.streams[d] } else { &self.streams[0] };
            let init = |v, d| block(v, l * dirs_n + d, bh);
            for (d, dir) in dirs.iter_mut().enumerate() {
                dir.projection.enqueue(input, steps, batch, d == 1, &mut dir.u, stream_of(d))?;
            }
            let (span, kernels) = if concurrent {
                let (first, second) = dirs.split_at_mut(1);
                let (a, b) = (&mut first[0], &mut second[0]);
                let pa = a.layer.launch_on(&a.u, init(h0, 0), init(c0, 0), &mut a.out, stream_of(0))?;
                let pb = b.layer.launch_on(&b.u, init(h0, 1), init(c0, 1), &mut b.out, stream_of(1))?;
                let span = {
                    let (sa, ea) = pa.wait()?;
                    let (sb, eb) = pb.wait()?;
                    let rel = |e: &cust::event::Event| e.elapsed_time_f32(sa).map_err(cust_err("cuEventElapsedTime"));
                    let (start_b, end_a, end_b) = (rel(sb)?, rel(ea)?, rel(eb)?);
                    end_a.max(end_b) - start_b.min(0.0)
                };
                let (ka, kb) = (pa.finish(), pb.finish());
                (span, vec![ka?, kb?])
            } else {
                let mut ks = Vec::new();
                for (d, dir) in dirs.iter_mut().enumerate() {
                    ks.push(dir.layer.launch_on(&dir.u, init(h0, d), init(c0, d), &mut dir.out, stream_of(d))?.finish()?);
                }
                (ks.iter().sum(), ks)
            };
            timing.recurrent_ms.push(span);
            timing.kernel_ms.push(kernels);
            if dirs_n == 2 {
                let params = ConcatParams {
                    forward: dirs[0].out.h.as_device_ptr().as_raw(),
                    reverse: dirs[1].out.h.as_device_ptr().as_raw(),
                    out: self.joined[l].as_device_ptr().as_raw(),
                    steps: steps as u32,
                    batch: batch as u32,
                    hidden: self.hidden as u32,
                    pad: 0,
                };
                let f = self.gpu.function(CONCAT_KERNEL)?;
                let total = steps * batch * 2 * self.hidden;
                // SAFETY: both sources are [T][B][H] and the destination [T][B][2H] (buffers
                // sized by `ensure_steps` for `steps`); the stream is waited for right after.
                let launched = unsafe { driver::launch(&f, elementwise_grid(total), ELEMENTWISE_THREADS as u32, 0, &self.streams[0], &params) };
                driver::synchronize(&self.streams[0])?;
                launched?;
            }
        }
        self.ran = true;
        timing.total_ms = started.elapsed().as_secs_f64() * 1e3;
        Ok(timing)
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
        let nan = f32::NAN.to_bits();
        let stream = &self.streams[0];
        for dir in self.layers.iter_mut().flatten() {
            dir.u.poison(&self.gpu)?;
            driver::memset_u32(dir.out.h.as_device_ptr().as_raw(), nan, dir.out.h.len(), stream)?;
            driver::memset_u32(dir.out.c.as_device_ptr().as_raw(), nan, dir.out.c.len(), stream)?;
        }
        for j in &self.joined {
            driver::memset_u32(j.as_device_ptr().as_raw(), nan, j.len(), stream)?;
        }
        Ok(driver::synchronize(stream)?)
    }

    /// The last layer's output of the last successful run on the device, `[T][B][D·H]`
    /// (`None` before the first one).
    pub fn output_device(&self) -> Option<&DeviceBuffer<f32>> {
        let last = self.layers.len() - 1;
        self.ran.then(|| if self.directions() == 2 { &self.joined[last] } else { &self.layers[last][0].out.h })
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
