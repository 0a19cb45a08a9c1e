//! [`SparseRecurrentLayer`]: a pruned recurrent layer uploaded once and run many times.
//!
//! Building a layer plans it ([`crate::layout::plan`]), uploads the packed weights, the unit
//! table and `b_hh`, and checks that every CTA of the plan can be resident at once (otherwise
//! the persistent kernel could deadlock, so it is refused with [`Error::NotResident`]).
//!
//! Each forward pass zeroes the two exchange buffers and the status word on the stream, launches
//! the kernel cooperatively (the driver refuses a grid that cannot be co-resident), waits, and
//! turns the kernel's status word into a typed error ([`Error::Timeout`] when a wait for another
//! CTA passed the layer's bound).
//!
//! A plan in the cluster-resident mode ([`ExecMode::Cluster`], sm_90 and newer) runs the
//! `sprnn_cluster_*` kernel as one thread-block cluster instead (`cuLaunchKernelEx` with a
//! cluster-dimension attribute; clusters above 8 CTAs are allowed per kernel with the
//! non-portable attribute). Its exchange buffers live in the CTAs' shared memory, so only the
//! status word is reset; before every launch `cuOccupancyMaxActiveClusters` must place at least
//! one cluster of the plan's size, or the launch is refused with [`Error::ClusterNotResident`].
//!
//! Shapes: `U` is `[T][B][G·H]` (`W_ih x_t + b_ih`, gates in PyTorch's order), `h0`/`c0` are
//! `[B][H]`, the output `h` is `[T][B][H]` and LSTM's final `c` is `[B][H]`, all row-major.
//! Non-finite values in host inputs are rejected; device inputs are not inspected, and a NaN or
//! infinity there propagates through the recurrence as IEEE arithmetic does.

use std::time::Duration;

use cust::memory::{CopyDestination, DeviceBuffer};
use cust::stream::Stream;
use sprnn_kernels::format::{
    cluster_kernel_name, dense_clocks_kernel_name, dense_kernel_name, exchange_values, flags, initial_tag_pattern32, parse_dense_kernel_name, recurrent_kernel_name, shared_kernel_name,
    status, Cell, RecurrentParams, PHASE_CLOCK_POINTS,
};

use crate::args::{check_finite, check_len};
use crate::driver::{self, Event};
use crate::error::{cust_err, Error, Result};
use crate::gpu::Gpu;
use crate::layout::{self, contract, ExecMode, Plan, PlanError, PlanOptions, Products};
use crate::sparse::Csr;
pub use crate::tensors::{DeviceInput, DeviceOutput, Input, Output};

/// Options for building a layer.
#[derive(Clone, Debug)]
pub struct LayerOptions {
    /// Planner overrides (default: all automatic).
    pub plan: PlanOptions,
    /// Bound on any single wait of one CTA for another's hidden state. A healthy step takes
    /// microseconds; the default, 1 s, leaves room for a GPU time-sliced with other work.
    pub timeout: Duration,
}

impl Default for LayerOptions {
    fn default() -> Self {
        LayerOptions { plan: PlanOptions::default(), timeout: Duration::from_secs(1) }
    }
}

/// A pruned recurrent layer resident on one GPU, ready to run sequences of batch `B`.
///
/// Not `Clone`: a layer owns its exchange buffers, so two concurrent forward passes need two
/// layers (`forward` takes `&mut self`). Layers on one [`Gpu`] may run on different streams and
/// threads at once.
pub struct SparseRecurrentLayer {
    gpu: Gpu,
    cell: Cell,
    hidden: usize,
    batch: usize,
    grid: usize,
    cluster: Option<usize>,
    /// Words per thread in shared memory (`M`; 0 for the register-only kernels).
    shared_words: usize,
    threads_per_cta: usize,
    threads_per_row: usize,
    units_per_cta: usize,
    slots_per_cta: usize,
    columns: usize,
    smem_bytes: usize,
    registers: usize,
    fuse_cell: bool,
    products: Products,
    first_step: u32,
    kernel: &'static str,
    timeout: Duration,
    weights: DeviceBuffer<u32>,
    units: DeviceBuffer<u32>,
    bias_hh: DeviceBuffer<f32>,
    exchange: DeviceBuffer<u32>,
    status: DeviceBuffer<u32>,
    pub(crate) h0: DeviceBuffer<f32>,
    pub(crate) c0: DeviceBuffer<f32>,
}

impl std::fmt::Debug for SparseRecurrentLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SparseRecurrentLayer")
            .field("cell", &self.cell)
            .field("hidden", &self.hidden)
            .field("batch", &self.batch)
            .field("grid", &self.grid)
            .field("threads_per_cta", &self.threads_per_cta)
            .field("kernel", &self.kernel)
            .finish()
    }
}

impl SparseRecurrentLayer {
    /// Plans `w_hh` (PyTorch's `weight_hh`, `G·H × H`, pruned) for `gpu` and batch `batch`, and
    /// uploads it with `b_hh` (`G·H` values).
    pub fn new(gpu: &Gpu, cell: Cell, w_hh: &Csr, b_hh: &[f32], batch: usize, opts: &LayerOptions) -> Result<Self> {
        crate::validate::layer(cell, w_hh, batch)?;
        let plan = layout::plan(w_hh, cell, batch, gpu.info(), &opts.plan)?;
        Self::from_plan(gpu, &plan, b_hh, opts.timeout)
    }

    /// Uploads a plan made with [`layout::plan`] (for this GPU's [`crate::layout::DeviceInfo`]).
    ///
    /// A [`Plan`] is consistent in itself (only the planner builds one); what is checked here is
    /// what depends on the GPU it runs on: its SMs and shared memory
    /// ([`Error::WrongDevice`]), the kernel variant ([`Error::MissingKernel`]) and whether the
    /// whole grid can be resident at once ([`Error::NotResident`]).
    pub fn from_plan(gpu: &Gpu, plan: &Plan, b_hh: &[f32], timeout: Duration) -> Result<Self> {
        Self::from_plan_with(gpu, plan, b_hh, timeout, true)
    }

    /// [`Self::from_plan`] with the kernel-structure choice exposed for measurements:
    /// `fuse_cell` finishes the cell inside the row reduction where the kernel can: RNN always,
    /// GRU and LSTM where a unit's gate rows share a warp (default `true`; `false` runs it in a
    /// separate phase after a barrier).
    pub(crate) fn from_plan_with(gpu: &Gpu, plan: &Plan, b_hh: &[f32], timeout: Duration, fuse_cell: bool) -> Result<Self> {
        let (g, h, b) = (plan.cell().gates(), plan.hidden(), plan.batch());
        check_len("b_hh", b_hh.len(), g * h, "G*H")?;
        check_finite("b_hh", b_hh)?;
        if timeout.is_zero() || timeout > Duration::from_secs(3600) {
            return Err(Error::Input { name: "timeout", problem: format!("{timeout:?}; must be in (0, 1 h]") });
        }
        let info = gpu.info();
        if plan.grid() > info.sm_count * plan.ctas_per_sm() || plan.smem_bytes() > info.shared_per_block_optin {
            return Err(Error::WrongDevice {
                planned: format!("a GPU with at least {} SMs / {} bytes of shared memory per CTA", plan.grid().div_ceil(plan.ctas_per_sm()), plan.smem_bytes()),
                planned_sms: plan.grid().div_ceil(plan.ctas_per_sm()),
                actual: info.name.clone(),
                actual_sms: info.sm_count,
            });
        }
        let cluster = plan.cluster_size();
        if cluster.is_some() && info.compute_capability.0 < 9 {
            let (major, minor) = info.compute_capability;
            let reason = format!("compute capability {major}.{minor} has no thread-block clusters (sm_90 or newer); plan the layer for this GPU");
            return Err(PlanError::ClusterMode { device: info.name.clone(), reason }.into());
        }
        let kernel = match (plan.dense(), cluster) {
            (Some(s), _) => dense_kernel_name(s.m_tiles, s.k_tiles_per_warp, s.half),
            (None, Some(_)) => cluster_kernel_name(plan.list_len(), plan.batch_tile(), plan.gated_kernel()),
            (None, None) if plan.shared_words() > 0 => shared_kernel_name(plan.list_len(), plan.batch_tile(), plan.gated_kernel()),
            (None, None) => recurrent_kernel_name(plan.list_len(), plan.batch_tile(), plan.hidden_f32(), plan.gated_kernel()),
        };
        // A planned layout names an instantiated variant; the module lookup below still reports a
        // kernel the PTX lacks (`Error::MissingKernel`).
        gpu.make_current()?;
        let f = gpu.function(kernel)?;
        let registers = f.get_attribute(cust::function::FunctionAttribute::NumRegisters).map_err(cust_err("cuFuncGetAttribute"))? as usize;
        let smem_bytes = plan.smem_bytes();
        if let Some(c) = cluster {
            check_cluster_resident(&f, c, plan.threads_per_cta(), smem_bytes, registers, gpu.stream())?;
        }
        let per_sm = driver::max_active_ctas_per_sm(&f, plan.threads_per_cta(), smem_bytes)?;
        if cluster.is_none() && per_sm * info.sm_count < plan.grid() {
            return Err(Error::NotResident {
                grid: plan.grid(),
                per_sm,
                sms: info.sm_count,
                threads: plan.threads_per_cta(),
                smem: smem_bytes,
                registers,
            });
        }
        // The buffers match the launch shape: only the planner builds a `Plan`, and it lays the
        // weights and the unit table out for exactly that shape.
        let columns = plan.columns();
        Ok(SparseRecurrentLayer {
            gpu: gpu.clone(),
            cell: plan.cell(),
            hidden: h,
            batch: b,
            grid: plan.grid(),
            cluster,
            shared_words: plan.shared_words(),
            threads_per_cta: plan.threads_per_cta(),
            threads_per_row: plan.threads_per_row(),
            units_per_cta: plan.units_per_cta(),
            slots_per_cta: plan.slots_per_cta(),
            columns,
            smem_bytes,
            registers,
            fuse_cell,
            products: plan.products(),
            first_step: 0,
            kernel,
            timeout,
            weights: DeviceBuffer::from_slice(plan.weights()).map_err(cust_err("cuMemAlloc"))?,
            units: DeviceBuffer::from_slice(plan.units()).map_err(cust_err("cuMemAlloc"))?,
            bias_hh: DeviceBuffer::from_slice(b_hh).map_err(cust_err("cuMemAlloc"))?,
            // Two buffers of tagged fp16 values, held as 32-bit words (in the cluster mode they are
            // in shared memory: one unused chunk).
            exchange: DeviceBuffer::zeroed(if cluster.is_some() { 4 } else { exchange_values(columns, b) }).map_err(cust_err("cuMemAlloc"))?,
            status: DeviceBuffer::zeroed(1).map_err(cust_err("cuMemAlloc"))?,
            h0: DeviceBuffer::zeroed(b * h).map_err(cust_err("cuMemAlloc"))?,
            c0: DeviceBuffer::zeroed(b * h).map_err(cust_err("cuMemAlloc"))?,
        })
    }

    /// Cell type.
    pub fn cell(&self) -> Cell {
        self.cell
    }

    /// The arithmetic of the sparse product ([`Plan::products`]); the CPU reference that rounds
    /// where this layer does is `reference::Precision::device_faithful(layer.products())`.
    pub fn products(&self) -> Products {
        self.products
    }

    /// Hidden size H.
    pub fn hidden(&self) -> usize {
        self.hidden
    }

    /// Batch size B.
    pub fn batch(&self) -> usize {
        self.batch
    }

    /// The GPU the layer lives on.
    pub fn gpu(&self) -> &Gpu {
        &self.gpu
    }

    /// Launch shape: `(CTAs, threads per CTA, threads per row, dynamic shared bytes, kernel)`
    /// (the public form is [`Self::shape`]).
    pub(crate) fn launch_shape(&self) -> (usize, usize, usize, usize, &'static str) {
        (self.grid, self.threads_per_cta, self.threads_per_row, self.smem_bytes, self.kernel)
    }

    /// Numbers the next launch's steps from `steps_done + 1`, as the continuation of a sequence
    /// of which `steps_done` steps have run (default 0: every launch starts a sequence).
    ///
    /// The number of a step decides how its hidden state is rounded to fp16 for the exchange
    /// (the last mantissa bit carries the step's tag, see [`crate::reference`]), so a sequence
    /// run in chunks gives one long call's bits only when each chunk is numbered where the
    /// previous one ended; [`crate::StreamingLayer`] does this.
    pub fn set_steps_done(&mut self, steps_done: u64) {
        // The tags repeat every four steps.
        self.first_step = (steps_done % 4) as u32;
    }

    /// Grid-wide or cluster-resident execution (the plan's [`Plan::mode`]).
    pub fn mode(&self) -> ExecMode {
        if self.cluster.is_some() {
            ExecMode::Cluster
        } else {
            ExecMode::Grid
        }
    }

    /// CTAs of the one thread-block cluster in the cluster-resident mode.
    pub fn cluster_size(&self) -> Option<usize> {
        self.cluster
    }

    /// Registers per thread of the kernel variant as the driver compiled it.
    pub fn registers_per_thread(&self) -> usize {
        self.registers
    }

    /// Length of `U` for `steps` steps: `T·B·G·H` (saturating at `usize::MAX`).
    pub fn input_len(&self, steps: usize) -> usize {
        self.contract().input_len(steps)
    }

    /// Allocates device outputs for `steps` steps (checked as [`Self::forward`] checks them:
    /// at least 1, `T·B·G·H` within the kernel's 32-bit indices).
    pub fn alloc_output(&self, steps: usize) -> Result<DeviceOutput> {
        self.check_steps(steps)?;
        self.gpu.make_current()?;
        Ok(DeviceOutput {
            h: DeviceBuffer::zeroed(steps * self.batch * self.hidden).map_err(cust_err("cuMemAlloc"))?,
            c: DeviceBuffer::zeroed(self.batch * self.hidden).map_err(cust_err("cuMemAlloc"))?,
            steps,
        })
    }

    pub(crate) fn check_steps(&self, steps: usize) -> Result<()> {
        Ok(self.contract().check_steps(steps)?)
    }

    /// The layer's launch contract ([`layout::LaunchContract`]): every argument check of its
    /// entry points, runnable without a GPU.
    pub fn contract(&self) -> layout::LaunchContract {
        layout::LaunchContract { cell: self.cell, hidden: self.hidden, batch: self.batch }
    }

    /// Runs `steps` steps on host data and returns the outputs on the host.
    pub fn forward(&mut self, u: Input<'_>, steps: usize, h0: Option<&[f32]>, c0: Option<&[f32]>) -> Result<Output> {
        self.contract().check_input(steps, u.len())?;
        match u {
            Input::F32(v) => contract::check_finite("u", v.iter().copied())?,
            Input::F16(v) => contract::check_finite("u", v.iter().copied())?,
        }
        let d_u = DeviceInput::upload(&self.gpu, u)?;
        let mut out = self.alloc_output(steps)?;
        self.forward_device(&d_u, h0, c0, &mut out, None)?;
        out.to_host(self)
    }

    /// Runs on device input, writing `out` (whose step count sets `T`), on `stream` (default:
    /// the GPU's stream); waits for the kernel and checks its status. Returns the kernel's time
    /// in milliseconds, measured with CUDA events around the launch.
    pub fn forward_device(
        &mut self,
        u: &DeviceInput,
        h0: Option<&[f32]>,
        c0: Option<&[f32]>,
        out: &mut DeviceOutput,
        stream: Option<&Stream>,
    ) -> Result<f32> {
        let gpu = self.gpu.clone();
        let ms = self.launch_on(u, h0, c0, out, stream.unwrap_or(gpu.stream()))?.finish();
        ms
    }

    /// Starts a forward pass on device input without waiting for it: checks every argument as
    /// [`Self::forward_device`] does, copies `h0`/`c0`, enqueues the kernel on `stream` and
    /// returns at once. [`PendingForward::finish`] then waits and checks the kernel's status.
    ///
    /// This is how two layers run concurrently (the two directions of a bidirectional layer on
    /// two streams): launch both, then finish both. Both grids must then fit on the GPU
    /// together, or the second waits for the first's CTAs to leave (see [`crate::model`]).
    /// The handle borrows the layer, `u` and `out` until it is finished; dropping it unfinished
    /// waits for the stream (no error is reported then).
    pub fn launch_on<'a>(
        &'a mut self,
        u: &'a DeviceInput,
        h0: Option<&[f32]>,
        c0: Option<&[f32]>,
        out: &'a mut DeviceOutput,
        stream: &'a Stream,
    ) -> Result<PendingForward<'a>> {
        let steps = out.steps;
        let contract = self.contract();
        contract.check_input(steps, u.len())?;
        contract.check_output(steps, out.h.len(), out.c.len())?;
        contract.check_state(h0, c0)?;
        let fl = if matches!(u, DeviceInput::F16(_)) { flags::U_F16 } else { 0 };
        self.gpu.make_current()?;
        let fl = fl | self.load_state(h0, c0)?;
        let (start, stop) = self.enqueue(u.address(), out, fl, stream)?;
        Ok(PendingForward { layer: self, stream, start, stop, finished: false, _buffers: std::marker::PhantomData })
    }

    /// The exchange floor for benchmarks: the same launch with the product and the cell left
    /// out (`flags::EXCHANGE_ONLY`): each CTA republishes its units' previous values, so only the
    /// hidden-state exchange and the barriers remain. Returns the kernel time in ms; the outputs
    /// are meaningless.
    pub fn forward_exchange_floor(&mut self, u: &DeviceInput, out: &mut DeviceOutput) -> Result<f32> {
        self.contract().check_input(out.steps, u.len())?;
        self.gpu.make_current()?;
        self.launch(u.address(), out, flags::EXCHANGE_ONLY, None)
    }

    /// The dense slab's phase-clock probe, for benchmarks: one launch of the layer with its
    /// kernel's phase-clock twin (`format::dense_clocks_kernel_name`), which is the same kernel
    /// plus, in CTA 0, lane 0 of every warp writing its SM clock at the step's
    /// `format::PHASE_CLOCK_POINTS` points (`format::phase`). Returns the clock words
    /// `[s][warp][point]` for the last `s = 0, 1, …` steps (step `T - s`) that `c_out`'s `B·H`
    /// words hold, whole steps only; the outputs are meaningless. Only layers planned on
    /// `sprnn_dense_rnn_mt2h_kw8` have a probe ([`Error::Input`] otherwise).
    pub fn forward_phase_clocks(&mut self, u: &DeviceInput, out: &mut DeviceOutput) -> Result<PhaseClocks> {
        let probe = match parse_dense_kernel_name(self.kernel) {
            Some((mt, kw, true)) => dense_clocks_kernel_name(mt, kw),
            _ => "",
        };
        if probe.is_empty() {
            return Err(Error::Input { name: "layer", problem: format!("kernel {} has no phase-clock probe (only `sprnn_dense_rnn_mt2h_kw8` has one)", self.kernel) });
        }
        self.contract().check_input(out.steps, u.len())?;
        self.gpu.make_current()?;
        let fl = if matches!(u, DeviceInput::F16(_)) { flags::U_F16 } else { 0 };
        let kernel = std::mem::replace(&mut self.kernel, probe);
        let launched = self.launch(u.address(), out, fl, None);
        self.kernel = kernel;
        launched?;
        let mut words = vec![0f32; out.c.len()];
        out.c.copy_to(&mut words[..]).map_err(cust_err("cuMemcpyDtoH"))?;
        let warps = self.threads_per_cta / 32;
        let per_step = warps * PHASE_CLOCK_POINTS as usize;
        let steps = (words.len() / per_step).min(out.steps);
        Ok(PhaseClocks { warps, steps, clocks: words[..steps * per_step].iter().map(|w| w.to_bits()).collect() })
    }

    /// Test hook: runs with `flags::TEST_NEVER_PUBLISH`, so CTA 0 never publishes step 1 and
    /// every wait must end in [`Error::Timeout`].
    #[cfg(feature = "test-hooks")]
    pub fn forward_never_publish(&mut self, u: &DeviceInput, out: &mut DeviceOutput) -> Result<f32> {
        self.contract().check_input(out.steps, u.len())?;
        self.gpu.make_current()?;
        self.launch(u.address(), out, flags::TEST_NEVER_PUBLISH, None)
    }

    fn launch(&mut self, u: u64, out: &mut DeviceOutput, fl: u32, stream: Option<&Stream>) -> Result<f32> {
        let gpu = self.gpu.clone();
        let stream = stream.unwrap_or(gpu.stream());
        let (start, stop) = self.enqueue(u, out, fl, stream)?;
        self.complete(stream, &start, &stop)
    }

    /// Copies `h0`/`c0` (each `[B][H]`, checked by the caller) into the layer's initial-state
    /// buffers, synchronously, and returns the kernel flags saying which were given. The
    /// context must be current.
    pub(crate) fn load_state(&mut self, h0: Option<&[f32]>, c0: Option<&[f32]>) -> Result<u32> {
        let mut fl = 0;
        if let Some(h0) = h0 {
            self.h0.copy_from(h0).map_err(cust_err("cuMemcpyHtoD"))?;
            fl |= flags::HAS_H0;
        }
        if let Some(c0) = c0 {
            self.c0.copy_from(c0).map_err(cust_err("cuMemcpyHtoD"))?;
            fl |= flags::HAS_C0;
        }
        Ok(fl)
    }

    /// Zeroes the exchange buffers and the status word and launches the kernel on `stream`
    /// between two recorded events; returns at once.
    pub(crate) fn enqueue(&mut self, u: u64, out: &mut DeviceOutput, fl: u32, stream: &Stream) -> Result<(Event, Event)> {
        let start = Event::new(true)?;
        let stop = Event::new(true)?;
        self.enqueue_between(u, out, fl, stream, Some((&start, &stop)), Launch::Checked)?;
        Ok((start, stop))
    }

    /// Enqueues one run of the kernel on `stream`: the resets of the exchange buffers and of
    /// the status word, then the launch, with `span`'s events recorded right before and after
    /// the launch. Everything is stream-ordered work, so a stream capture records all of it
    /// and every replay starts from clean buffers. With [`Launch::Captured`] the cluster
    /// occupancy question (a host call, not stream work) is left out: the capturing caller
    /// asked it before the capture ([`Self::check_launchable`]).
    pub(crate) fn enqueue_between(
        &mut self,
        u: u64,
        out: &mut DeviceOutput,
        fl: u32,
        stream: &Stream,
        span: Option<(&Event, &Event)>,
        launch: Launch,
    ) -> Result<()> {
        let gpu = self.gpu.clone();
        let params = RecurrentParams {
            weights: self.weights.as_device_ptr().as_raw(),
            units: self.units.as_device_ptr().as_raw(),
            u,
            bias_hh: self.bias_hh.as_device_ptr().as_raw(),
            h0: self.h0.as_device_ptr().as_raw(),
            c0: self.c0.as_device_ptr().as_raw(),
            h_out: out.h.as_device_ptr().as_raw(),
            c_out: out.c.as_device_ptr().as_raw(),
            exchange: self.exchange.as_device_ptr().as_raw(),
            status: self.status.as_device_ptr().as_raw(),
            timeout_ns: self.timeout.as_nanos().min(u64::MAX as u128) as u64,
            hidden: self.hidden as u32,
            batch: self.batch as u32,
            steps: out.steps as u32,
            cell: self.cell as u32,
            threads_per_cta: self.threads_per_cta as u32,
            threads_per_row: self.threads_per_row as u32,
            units_per_cta: self.units_per_cta as u32,
            slots_per_cta: self.slots_per_cta as u32,
            columns: self.columns as u32,
            flags: fl
                | if self.fuse_cell { 0 } else { flags::SEPARATE_CELL }
                | if self.products == Products::F16 { flags::F16_PRODUCTS } else { 0 },
            first_step: self.first_step,
            shared_words: self.shared_words as u32,
        };
        if self.cluster.is_none() {
            let half = self.exchange.len() / 2;
            for buffer in 0..2u32 {
                let pattern = initial_tag_pattern32(self.first_step, buffer);
                driver::memset_u32(params.exchange + 4 * (buffer as u64) * half as u64, pattern, half, stream)?;
            }
        }
        driver::memset_u32(params.status, 0, 1, stream)?;
        let f = gpu.function(self.kernel)?;
        let mark = |e: Option<&Event>| -> Result<()> {
            if let Some(e) = e {
                e.record(stream)?;
            }
            Ok(())
        };
        if let Some(c) = self.cluster {
            if launch == Launch::Checked {
                check_cluster_resident(&f, c, self.threads_per_cta, self.smem_bytes, self.registers, stream)?;
            }
            mark(span.map(|s| s.0))?;
            // SAFETY: as for the cooperative launch below; the grid is the one cluster.
            unsafe { driver::launch_cluster(&f, c as u32, self.threads_per_cta as u32, self.smem_bytes as u32, stream, &params)? };
            return mark(span.map(|s| s.1));
        }
        mark(span.map(|s| s.0))?;
        // SAFETY: `params` is the kernel's parameter struct; every address in it belongs to a
        // buffer of this layer or of `out`/`u`, sized as the format requires (checked by the
        // callers), and all of them outlive the kernel: the callers wait for the stream before
        // giving up their borrows (`complete`, or `PendingForward`'s finish or drop).
        let launched = unsafe {
            driver::launch_cooperative(&f, self.grid as u32, self.threads_per_cta as u32, self.smem_bytes as u32, stream, &params)
        };
        if let Err(code) = launched {
            return Err(if code == driver::ERROR_COOPERATIVE_LAUNCH_TOO_LARGE {
                let per_sm = driver::max_active_ctas_per_sm(&f, self.threads_per_cta, self.smem_bytes).unwrap_or(0);
                let registers = f.get_attribute(cust::function::FunctionAttribute::NumRegisters).unwrap_or(0) as usize;
                Error::NotResident {
                    grid: self.grid,
                    per_sm,
                    sms: gpu.info().sm_count,
                    threads: self.threads_per_cta,
                    smem: self.smem_bytes,
                    registers,
                }
            } else {
                Error::Driver { call: "cuLaunchCooperativeKernel", code, name: driver::error_name(code) }
            });
        }
        mark(span.map(|s| s.1))
    }

    /// What a capturing caller asks before a stream capture, since it cannot be asked during
    /// one: for the cluster mode, whether one cluster of the plan fits now
    /// ([`Error::ClusterNotResident`] if not). The grid mode needs nothing (the cooperative
    /// launch itself refuses a grid that cannot be resident).
    pub(crate) fn check_launchable(&self) -> Result<()> {
        if let Some(c) = self.cluster {
            let f = self.gpu.function(self.kernel)?;
            check_cluster_resident(&f, c, self.threads_per_cta, self.smem_bytes, self.registers, self.gpu.stream())?;
        }
        Ok(())
    }

    /// Waits for `stream`, then turns the kernel's status word into a result; the kernel time
    /// in ms on success.
    pub(crate) fn complete(&self, stream: &Stream, start: &Event, stop: &Event) -> Result<f32> {
        self.gpu.make_current()?;
        driver::synchronize(stream)?;
        let ms = stop.elapsed_ms(start)?;
        self.check_status()?;
        Ok(ms)
    }

    /// Reads the status word of the last run (which the caller has waited for) and turns it
    /// into a result: [`Error::Timeout`] when a wait passed the layer's bound,
    /// [`Error::KernelStatus`] for any other code. The context must be current.
    pub(crate) fn check_status(&self) -> Result<()> {
        let mut st = [0u32; 1];
        self.status.copy_to(&mut st[..]).map_err(cust_err("cuMemcpyDtoH"))?;
        let (code, cta) = (st[0] & ((1 << status::CTA_SHIFT) - 1), st[0] >> status::CTA_SHIFT);
        match code {
            status::OK => Ok(()),
            status::TIMEOUT => Err(Error::Timeout { cta, timeout_ms: self.timeout.as_secs_f64() * 1e3 }),
            _ => Err(Error::KernelStatus { code, cta }),
        }
    }
}

/// Whether a launch asks the host-side questions first (the cluster occupancy) or is being
/// recorded into a graph, where they were asked before the capture.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Launch {
    /// An ordinary launch: check, then launch.
    Checked,
    /// Inside a stream capture: stream work only.
    Captured,
}

/// Asks the driver whether one cluster of `cluster` CTAs of `f` fits now
/// (`cuOccupancyMaxActiveClusters`; clusters above `format::PORTABLE_CLUSTER_SIZE` were allowed for
/// every cluster kernel when the [`Gpu`] loaded the module): [`Error::ClusterNotResident`] if not.
fn check_cluster_resident(f: &cust::function::Function<'_>, cluster: usize, threads: usize, smem: usize, registers: usize, stream: &Stream) -> Result<()> {
    let clusters = driver::max_active_clusters(f, cluster as u32, threads as u32, smem as u32, stream)?;
    if clusters == 0 {
        return Err(Error::ClusterNotResident { cluster, clusters, threads, smem, registers });
    }
    Ok(())
}

/// What [`SparseRecurrentLayer::forward_phase_clocks`] recorded: CTA 0's SM clock (low 32 bits,
/// wrapping) at each phase point of the last `steps` steps, for each warp.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhaseClocks {
    /// Warps of the CTA.
    pub warps: usize,
    /// Steps recorded: the layer's last, `T - s` for `s` in `0..steps`.
    pub steps: usize,
    /// `[s][warp][point]`, `point` as `format::phase` numbers them.
    pub clocks: Vec<u32>,
}

impl PhaseClocks {
    /// The clock of `warp` at `point` of step `T - s`.
    pub fn at(&self, s: usize, warp: usize, point: u32) -> u32 {
        self.clocks[(s * self.warps + warp) * PHASE_CLOCK_POINTS as usize + point as usize]
    }
}

/// A forward pass started with [`SparseRecurrentLayer::launch_on`] and not yet checked.
///
/// It borrows the layer, the input and the output until [`finish`](Self::finish) (or drop)
/// has waited for the stream, so none of them can be freed or reused while the kernel runs.
#[must_use = "a launched forward pass must be finished to learn whether it succeeded"]
pub struct PendingForward<'a> {
    layer: &'a mut SparseRecurrentLayer,
    stream: &'a Stream,
    start: Event,
    stop: Event,
    finished: bool,
    _buffers: std::marker::PhantomData<(&'a DeviceInput, &'a mut DeviceOutput)>,
}

impl std::fmt::Debug for PendingForward<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingForward").field("layer", &self.layer).finish()
    }
}

impl PendingForward<'_> {
    /// Waits for the kernel and checks its status, as [`SparseRecurrentLayer::forward_device`]
    /// does; returns the kernel's time in milliseconds (CUDA events around the launch).
    pub fn finish(mut self) -> Result<f32> {
        self.finished = true;
        self.layer.complete(self.stream, &self.start, &self.stop)
    }

}

impl Drop for PendingForward<'_> {
    fn drop(&mut self) {
        if !self.finished {
            // The kernel may still read `u` and write `out`: wait before the borrows end. An
            // error here has nowhere to go (and the next call on the context reports it).
            let _ = self.layer.gpu.make_current();
            let _ = driver::synchronize(self.stream);
        }
    }
}

/// A layer's outputs on the device, read (or poisoned) through the layer that writes them: its
/// device and cell.
impl DeviceOutput {
    /// Fills the outputs with NaN, so a value the kernel does not write cannot pass a check.
    /// (Test hook.)
    #[cfg(feature = "test-hooks")]
    pub fn poison(&mut self, layer: &SparseRecurrentLayer) -> Result<()> {
        layer.gpu().make_current()?;
        let nan = f32::NAN.to_bits();
        driver::memset_u32(self.h.as_device_ptr().as_raw(), nan, self.h.len(), layer.gpu().stream())?;
        driver::memset_u32(self.c.as_device_ptr().as_raw(), nan, self.c.len(), layer.gpu().stream())?;
        Ok(driver::synchronize(layer.gpu().stream())?)
    }

    /// Copies the outputs to the host.
    pub fn to_host(&self, layer: &SparseRecurrentLayer) -> Result<Output> {
        layer.gpu().make_current()?;
        let mut h = vec![0f32; self.h.len()];
        self.h.copy_to(&mut h[..]).map_err(cust_err("cuMemcpyDtoH"))?;
        let c = if layer.cell() == Cell::Lstm {
            let mut c = vec![0f32; self.c.len()];
            self.c.copy_to(&mut c[..]).map_err(cust_err("cuMemcpyDtoH"))?;
            Some(c)
        } else {
            None
        };
        Ok(Output { h, c })
    }
}
