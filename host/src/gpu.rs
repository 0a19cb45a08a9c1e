//! Bootstrap: driver, device, context, the embedded PTX for the device's architecture, a stream.

use std::sync::Arc;

use cust::context::{Context, CurrentContext};
use cust::device::Device;
use cust::function::FunctionAttribute;
use sprnn_kernels::format::{
    cluster_kernel_name, dense_clocks_kernel_name, dense_kernel_name, projection_dense_kernel_name, recurrent_kernel_name, shared_kernel_name, BATCH_TILES, DENSE_SHAPES, GATED,
    HIDDEN_F32, LIST_LENGTHS, PROJECTION_VARIANTS, SHARED_LIST_LENGTHS,
};
use cust::module::Module;
use cust::stream::{Stream, StreamFlags};

use crate::driver::{self, attr};
use crate::error::{cust_err, Error, Result};
use crate::layout::DeviceInfo;
use crate::ptx;

/// One CUDA device, ready to run sprnn's kernels: its primary context, the module loaded from
/// the embedded PTX that matches its architecture, and a default stream.
///
/// Cheap to clone (shared handle). The context is made current on the calling thread by every
/// sprnn call that needs it, so a `Gpu` may move between threads.
#[derive(Clone)]
pub struct Gpu {
    inner: Arc<GpuInner>,
}

struct GpuInner {
    // Field order is drop order: stream and module before the context.
    stream: Stream,
    module: Module,
    context: Context,
    ordinal: u32,
    info: DeviceInfo,
    arch: ptx::Arch,
    kernel_local_bytes: Vec<(usize, usize, bool, bool, u32)>,
}

impl std::fmt::Debug for Gpu {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gpu").field("ordinal", &self.inner.ordinal).field("info", &self.inner.info).finish()
    }
}

impl Gpu {
    /// Opens device `ordinal`.
    ///
    /// Errors: [`Error::NoDriver`] when libcuda is missing or unusable, [`Error::NoDevice`]
    /// when there is no such device, [`Error::UnsupportedGpu`] below sm_80, and
    /// [`Error::Driver`] when a driver call fails (e.g. the PTX does not load).
    pub fn new(ordinal: u32) -> Result<Gpu> {
        driver::driver_library().map_err(|reason| Error::NoDriver { code: None, reason })?;
        driver::init().map_err(|e| Error::from_init(e, ordinal))?;
        let count = Device::num_devices().map_err(cust_err("cuDeviceGetCount"))?;
        if ordinal >= count {
            return Err(Error::NoDevice { ordinal });
        }
        let device = Device::get_device(ordinal).map_err(cust_err("cuDeviceGet"))?;
        let name = device.name().map_err(cust_err("cuDeviceGetName"))?;
        let a = |k| driver::device_attribute(ordinal, k);
        let (major, minor) = (a(attr::COMPUTE_CAPABILITY_MAJOR)? as u32, a(attr::COMPUTE_CAPABILITY_MINOR)? as u32);
        let arch = ptx::Arch::for_compute_capability(major, minor)
            .ok_or_else(|| Error::UnsupportedGpu { name: name.clone(), major, minor })?;
        if a(attr::COOPERATIVE_LAUNCH)? == 0 {
            return Err(Error::UnsupportedGpu { name, major, minor });
        }
        let context = Context::new(device).map_err(cust_err("cuDevicePrimaryCtxRetain"))?;
        let module = Module::from_ptx(arch.ptx(), &[]).map_err(cust_err("cuModuleLoadData"))?;
        let stream = Stream::new(StreamFlags::NON_BLOCKING, None).map_err(cust_err("cuStreamCreate"))?;
        // Registers as the driver compiled each variant: the planner must use these, not the
        // offline ptxas figures, or a plan could ask for more registers than an SM has.
        let optin = a(attr::MAX_SHARED_MEMORY_PER_BLOCK_OPTIN)? as usize;
        // Each persistent kernel: looked up, given the largest dynamic shared memory any layer
        // may ask for (set once here: a per-layer setting would race between layers built on
        // several threads), and asked for its registers and local memory.
        let prepare = |name: &'static str| -> Result<(u32, u32)> {
            let f = module.get_function(name).map_err(|_| Error::MissingKernel { name: name.to_string() })?;
            driver::set_max_dynamic_shared(&f, optin)?;
            driver::prefer_max_shared(&f)?;
            let regs = f.get_attribute(FunctionAttribute::NumRegisters).map_err(cust_err("cuFuncGetAttribute"))?;
            let local = f.get_attribute(FunctionAttribute::LocalSizeBytes).map_err(cust_err("cuFuncGetAttribute"))?;
            Ok((regs as u32, local as u32))
        };
        let mut kernel_registers = Vec::new();
        let mut kernel_local_bytes = Vec::new();
        let variants = GATED.into_iter().flat_map(|g| LIST_LENGTHS.into_iter().flat_map(move |n| BATCH_TILES.into_iter().flat_map(move |bt| HIDDEN_F32.map(|h| (n, bt, h, g)))));
        for (n, bt, h32, gated) in variants {
            let (regs, local) = prepare(recurrent_kernel_name(n, bt, h32, gated))?;
            kernel_registers.push((n, bt, h32, gated, regs));
            kernel_local_bytes.push((n, bt, h32, gated, local));
        }
        // The shared-weights family (both architectures).
        let mut shared_kernel_registers = Vec::new();
        let variants = GATED.into_iter().flat_map(|g| SHARED_LIST_LENGTHS.into_iter().flat_map(move |n| BATCH_TILES.map(|bt| (n, bt, g))));
        for (n, bt, gated) in variants {
            shared_kernel_registers.push((n, bt, gated, prepare(shared_kernel_name(n, bt, gated))?.0));
        }
        if arch == ptx::Arch::Sm90 {
            // The cluster-resident kernels (sm_90 PTX only), allowed clusters above the portable
            // size once here, for the same reason.
            let variants = GATED.into_iter().flat_map(|g| LIST_LENGTHS.into_iter().flat_map(move |n| BATCH_TILES.map(|bt| (n, bt, g))));
            for (n, bt, gated) in variants {
                let name = cluster_kernel_name(n, bt, gated);
                prepare(name)?;
                let f = module.get_function(name).map_err(|_| Error::MissingKernel { name: name.to_string() })?;
                driver::allow_non_portable_cluster_size(&f)?;
            }
        }
        // The input projection's GEMM variants: allowed the opt-in shared memory once here
        // (the host only launches a variant whose stages fit; see `projection::dense_variant`).
        for (cols, stages) in PROJECTION_VARIANTS {
            let name = projection_dense_kernel_name(cols, stages);
            let f = module.get_function(name).map_err(|_| Error::MissingKernel { name: name.to_string() })?;
            driver::set_max_dynamic_shared(&f, optin)?;
        }
        let mut dense_registers = Vec::new();
        for (mt, kw, half) in DENSE_SHAPES {
            dense_registers.push((mt, kw, half, prepare(dense_kernel_name(mt, kw, half))?.0));
            // The variant's phase-clock probe, where it has one (`SparseRecurrentLayer::forward_phase_clocks`).
            let probe = dense_clocks_kernel_name(mt, kw);
            if half && !probe.is_empty() {
                prepare(probe)?;
            }
        }
        let info = DeviceInfo {
            name,
            compute_capability: (major, minor),
            sm_count: a(attr::MULTIPROCESSOR_COUNT)? as usize,
            registers_per_sm: a(attr::MAX_REGISTERS_PER_MULTIPROCESSOR)? as usize,
            max_registers_per_thread: 255,
            shared_per_sm: a(attr::MAX_SHARED_MEMORY_PER_MULTIPROCESSOR)? as usize,
            shared_per_block_optin: a(attr::MAX_SHARED_MEMORY_PER_BLOCK_OPTIN)? as usize,
            max_threads_per_sm: a(attr::MAX_THREADS_PER_MULTIPROCESSOR)? as usize,
            max_threads_per_block: a(attr::MAX_THREADS_PER_BLOCK)? as usize,
            l2_bytes: a(attr::L2_CACHE_SIZE)? as usize,
            kernel_registers,
            dense_registers,
            shared_kernel_registers,
        };
        Ok(Gpu { inner: Arc::new(GpuInner { stream, module, context, ordinal, info, arch, kernel_local_bytes }) })
    }

    /// The device's properties, as the planner uses them.
    pub fn info(&self) -> &DeviceInfo {
        &self.inner.info
    }

    /// Local memory (bytes per thread: spills and stack) of each recurrent-kernel variant
    /// `(N, BT, H32, bytes)` as the driver's JIT compiled it on this GPU. The offline build checks
    /// that ptxas needs none; this is the same check for the compiler that actually runs.
    pub fn kernel_local_bytes(&self) -> &[(usize, usize, bool, bool, u32)] {
        &self.inner.kernel_local_bytes
    }

    /// Device ordinal.
    pub fn ordinal(&self) -> u32 {
        self.inner.ordinal
    }

    /// The PTX architecture loaded (`sm_90` or `sm_80`).
    pub fn arch(&self) -> &'static str {
        self.inner.arch.name()
    }

    /// The stream sprnn uses when the caller gives none.
    pub fn stream(&self) -> &Stream {
        &self.inner.stream
    }

    /// Makes this device's context current on the calling thread.
    pub fn make_current(&self) -> Result<()> {
        CurrentContext::set_current(&self.inner.context).map_err(cust_err("cuCtxSetCurrent"))
    }

    /// Free and total device memory, bytes.
    pub fn memory(&self) -> Result<(usize, usize)> {
        self.make_current()?;
        Ok(driver::mem_info()?)
    }

    /// A kernel of the loaded module.
    pub(crate) fn function(&self, name: &str) -> Result<cust::function::Function<'_>> {
        self.inner.module.get_function(name).map_err(|_| Error::MissingKernel { name: name.to_string() })
    }
}

/// Opens device 0, or says why not: `Ok(None)` when there is no driver or no device (so
/// callers can report "no CUDA device" and carry on), `Err` for real failures.
pub fn try_default_gpu() -> Result<Option<Gpu>> {
    match Gpu::new(0) {
        Ok(g) => Ok(Some(g)),
        Err(Error::NoDevice { .. } | Error::NoDriver { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}
