//! The driver calls cust does not wrap (or wraps losing the raw code), declared here with
//! `CUresult` as a plain `u32` so an unknown code is kept, never mapped to "unknown".
//!
//! A failed call returns [`CallFailed`]: the call and its raw code, nothing more. Turning codes
//! into sprnn's errors is [`crate::error`]'s work, so this module depends on no other of the
//! crate's but the library loader.
//!
//! libcuda itself is opened at run time ([`crate::libcuda`]), so these calls, like cust's, work
//! only after [`init`] has found it.

use std::ffi::c_void;
use std::sync::atomic::AtomicPtr;
use std::os::raw::{c_char, c_int, c_uint};

use thiserror::Error;

use crate::libcuda;

/// A driver call that failed: which call, and the raw `CUresult` it returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
#[error("{call} returned CUresult {code}")]
pub struct CallFailed {
    /// The driver function.
    pub call: &'static str,
    /// Its raw `CUresult`, as the driver returned it.
    pub code: u32,
}

/// Result of a driver call.
pub type Result<T> = std::result::Result<T, CallFailed>;

type CuFunction = *mut c_void;
type CuStream = *mut c_void;
type CuEvent = *mut c_void;
type CuGraph = *mut c_void;
type CuGraphExec = *mut c_void;

/// Defines each listed driver function as a private Rust function that calls libcuda's function
/// of that name (looked up once, see [`crate::libcuda`]) and returns the raw `CUresult`;
/// `CUDA_ERROR_NOT_INITIALIZED` (3) when the library or the symbol is missing.
macro_rules! raw_driver_fns {
    ($($(#[$attr:meta])* fn $name:ident = $sym:literal ($($arg:ident: $ty:ty),*);)*) => {$(
        $(#[$attr])*
        #[allow(clippy::too_many_arguments)] // the driver's signature
        unsafe fn $name($($arg: $ty),*) -> c_uint {
            static SLOT: AtomicPtr<c_void> = AtomicPtr::new(std::ptr::null_mut());
            match libcuda::resolve(&SLOT, libcuda::c_name!($sym)) {
                Some(p) => {
                    // SAFETY: `p` is libcuda's `$sym`, whose C signature is the one declared here.
                    let f = unsafe { std::mem::transmute::<*mut c_void, unsafe extern "C" fn($($ty),*) -> c_uint>(p) };
                    // SAFETY: the caller upholds the driver function's contract.
                    unsafe { f($($arg),*) }
                }
                None => ERROR_NOT_INITIALIZED,
            }
        }
    )*};
}

raw_driver_fns! {
    fn cu_init = "cuInit"(flags: c_uint);
    fn cu_memcpy_dtod_async = "cuMemcpyDtoDAsync_v2"(dst: u64, src: u64, bytes: usize, stream: CuStream);
    fn cu_get_error_name = "cuGetErrorName"(error: c_uint, name: *mut *const c_char);
    fn cu_launch_cooperative_kernel = "cuLaunchCooperativeKernel"(
        f: CuFunction, grid_x: c_uint, grid_y: c_uint, grid_z: c_uint, block_x: c_uint, block_y: c_uint,
        block_z: c_uint, shared_bytes: c_uint, stream: CuStream, params: *mut *mut c_void
    );
    fn cu_launch_kernel = "cuLaunchKernel"(
        f: CuFunction, grid_x: c_uint, grid_y: c_uint, grid_z: c_uint, block_x: c_uint, block_y: c_uint,
        block_z: c_uint, shared_bytes: c_uint, stream: CuStream, params: *mut *mut c_void, extra: *mut *mut c_void
    );
    fn cu_func_set_attribute = "cuFuncSetAttribute"(f: CuFunction, attr: c_int, value: c_int);
    fn cu_launch_kernel_ex = "cuLaunchKernelEx"(
        config: *const LaunchConfig, f: CuFunction, params: *mut *mut c_void, extra: *mut *mut c_void
    );
    fn cu_occupancy_max_active_clusters = "cuOccupancyMaxActiveClusters"(
        clusters: *mut c_int, f: CuFunction, config: *const LaunchConfig
    );
    fn cu_occupancy_max_active_blocks_per_multiprocessor = "cuOccupancyMaxActiveBlocksPerMultiprocessor"(
        blocks: *mut c_int, f: CuFunction, block: c_int, smem: usize
    );
    fn cu_memset_d32_async = "cuMemsetD32Async"(dst: u64, value: c_uint, n: usize, stream: CuStream);
    #[cfg(feature = "test-hooks")]
    fn cu_memset_d16_async = "cuMemsetD16Async"(dst: u64, value: u16, n: usize, stream: CuStream);
    fn cu_mem_get_info = "cuMemGetInfo_v2"(free: *mut usize, total: *mut usize);
    fn cu_stream_synchronize = "cuStreamSynchronize"(stream: CuStream);
    fn cu_device_get_attribute = "cuDeviceGetAttribute"(value: *mut c_int, attr: c_int, device: c_int);
    fn cu_event_create = "cuEventCreate"(event: *mut CuEvent, flags: c_uint);
    fn cu_event_destroy = "cuEventDestroy_v2"(event: CuEvent);
    fn cu_event_record = "cuEventRecord"(event: CuEvent, stream: CuStream);
    fn cu_event_elapsed_time = "cuEventElapsedTime"(ms: *mut f32, start: CuEvent, end: CuEvent);
    fn cu_stream_wait_event = "cuStreamWaitEvent"(stream: CuStream, event: CuEvent, flags: c_uint);
    fn cu_stream_begin_capture = "cuStreamBeginCapture_v2"(stream: CuStream, mode: c_uint);
    fn cu_stream_end_capture = "cuStreamEndCapture"(stream: CuStream, graph: *mut CuGraph);
    fn cu_graph_instantiate_with_flags = "cuGraphInstantiateWithFlags"(exec: *mut CuGraphExec, graph: CuGraph, flags: u64);
    fn cu_graph_launch = "cuGraphLaunch"(exec: CuGraphExec, stream: CuStream);
    fn cu_graph_exec_destroy = "cuGraphExecDestroy"(exec: CuGraphExec);
    fn cu_graph_destroy = "cuGraphDestroy"(graph: CuGraph);
}

/// `CUdevice_attribute` values read by [`device_attribute`].
#[allow(missing_docs)]
pub(crate) mod attr {
    pub const MAX_THREADS_PER_BLOCK: i32 = 1;
    pub const MULTIPROCESSOR_COUNT: i32 = 16;
    pub const L2_CACHE_SIZE: i32 = 38;
    pub const MAX_THREADS_PER_MULTIPROCESSOR: i32 = 39;
    pub const COMPUTE_CAPABILITY_MAJOR: i32 = 75;
    pub const COMPUTE_CAPABILITY_MINOR: i32 = 76;
    pub const MAX_SHARED_MEMORY_PER_MULTIPROCESSOR: i32 = 81;
    pub const MAX_REGISTERS_PER_MULTIPROCESSOR: i32 = 82;
    pub const COOPERATIVE_LAUNCH: i32 = 95;
    pub const MAX_SHARED_MEMORY_PER_BLOCK_OPTIN: i32 = 97;
}

/// One attribute of device `ordinal`.
pub(crate) fn device_attribute(ordinal: u32, attr: i32) -> Result<i64> {
    let mut v: c_int = 0;
    // SAFETY: valid out pointer; the driver checks the ordinal and attribute.
    check("cuDeviceGetAttribute", unsafe { cu_device_get_attribute(&mut v, attr, ordinal as c_int) })?;
    Ok(v as i64)
}

/// `CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES`.
const ATTR_MAX_DYNAMIC_SHARED: c_int = 8;
/// `CUDA_ERROR_NOT_INITIALIZED`: what a driver function returns when libcuda or the symbol is
/// missing.
const ERROR_NOT_INITIALIZED: u32 = 3;
/// `CUDA_ERROR_NO_DEVICE`.
pub(crate) const ERROR_NO_DEVICE: u32 = 100;
/// `CUDA_ERROR_COOPERATIVE_LAUNCH_TOO_LARGE`.
pub(crate) const ERROR_COOPERATIVE_LAUNCH_TOO_LARGE: u32 = 720;

/// The driver's name for a raw `CUresult` (`CUDA_ERROR_…`), or `CUDA error N`.
pub fn error_name(code: u32) -> String {
    let mut p: *const c_char = std::ptr::null();
    // SAFETY: cuGetErrorName only writes a pointer to a static string (or fails).
    let rc = unsafe { cu_get_error_name(code, &mut p) };
    if rc == 0 && !p.is_null() {
        // SAFETY: the driver returns a NUL-terminated static string.
        unsafe { std::ffi::CStr::from_ptr(p) }.to_string_lossy().into_owned()
    } else {
        format!("CUDA error {code}")
    }
}

fn check(call: &'static str, code: c_uint) -> Result<()> {
    if code == 0 {
        Ok(())
    } else {
        Err(CallFailed { call, code })
    }
}

/// Calls `cuInit(0)`. Open the library first ([`driver_library`]): without it the call fails
/// with `CUDA_ERROR_NOT_INITIALIZED` (3) and the loader's reason is lost.
pub(crate) fn init() -> Result<()> {
    // SAFETY: cuInit has no preconditions.
    check("cuInit", unsafe { cu_init(0) })
}

/// Whether the NVIDIA driver library can be loaded (it is opened once, on the first call);
/// `Err` holds the dynamic loader's reason. Says nothing about devices: see [`crate::Gpu::new`].
pub fn driver_library() -> std::result::Result<(), String> {
    libcuda::library().map(|_| ()).map_err(str::to_string)
}

/// Raises a kernel's dynamic shared-memory limit to `bytes`.
pub(crate) fn set_max_dynamic_shared(f: &cust::function::Function<'_>, bytes: usize) -> Result<()> {
    // SAFETY: `f` is a live function handle of the current context.
    check("cuFuncSetAttribute", unsafe { cu_func_set_attribute(f.to_raw() as CuFunction, ATTR_MAX_DYNAMIC_SHARED, bytes as c_int) })
}

/// `CU_FUNC_ATTRIBUTE_PREFERRED_SHARED_MEMORY_CARVEOUT`.
const ATTR_PREFERRED_CARVEOUT: c_int = 9;

/// Asks for the largest shared-memory carveout (the rest of the unified L1 stays cache).
pub(crate) fn prefer_max_shared(f: &cust::function::Function<'_>) -> Result<()> {
    // SAFETY: `f` is a live function handle of the current context.
    check("cuFuncSetAttribute", unsafe { cu_func_set_attribute(f.to_raw() as CuFunction, ATTR_PREFERRED_CARVEOUT, 100) })
}

/// CTAs of `f` that fit on one SM with `threads` threads and `smem` bytes of dynamic shared memory.
pub(crate) fn max_active_ctas_per_sm(f: &cust::function::Function<'_>, threads: usize, smem: usize) -> Result<usize> {
    let mut n: c_int = 0;
    // SAFETY: `f` is a live function handle; `n` is a valid out pointer.
    check("cuOccupancyMaxActiveBlocksPerMultiprocessor", unsafe {
        cu_occupancy_max_active_blocks_per_multiprocessor(&mut n, f.to_raw() as CuFunction, threads as c_int, smem)
    })?;
    Ok(n.max(0) as usize)
}

/// Launches `f` cooperatively (every CTA co-resident, or the launch fails with code 720) with
/// one by-value parameter struct.
///
/// # Safety
/// `P` must be the `#[repr(C)]` parameter struct the kernel expects, and every device address in
/// it must be valid for the kernel's accesses until the launch completes.
pub(crate) unsafe fn launch_cooperative<P>(
    f: &cust::function::Function<'_>,
    grid: u32,
    block: u32,
    smem: u32,
    stream: &cust::stream::Stream,
    params: &P,
) -> std::result::Result<(), u32> {
    let mut arg: *mut c_void = params as *const P as *mut c_void;
    // SAFETY: the caller guarantees the parameter struct matches; the driver copies it before
    // returning.
    let code = unsafe {
        cu_launch_cooperative_kernel(f.to_raw() as CuFunction, grid, 1, 1, block, 1, 1, smem, stream.as_inner() as CuStream, &mut arg)
    };
    if code == 0 {
        Ok(())
    } else {
        Err(code)
    }
}

/// Launches `f` (an ordinary launch: CTAs may run in any order and need not be co-resident)
/// with one by-value parameter struct.
///
/// # Safety
/// `P` must be the `#[repr(C)]` parameter struct the kernel expects, and every device address in
/// it must be valid for the kernel's accesses until the launch completes.
pub(crate) unsafe fn launch<P>(f: &cust::function::Function<'_>, grid: u32, block: u32, smem: u32, stream: &cust::stream::Stream, params: &P) -> Result<()> {
    let mut arg: *mut c_void = params as *const P as *mut c_void;
    // SAFETY: the caller guarantees the parameter struct matches; the driver copies it before
    // returning.
    check("cuLaunchKernel", unsafe {
        cu_launch_kernel(f.to_raw() as CuFunction, grid, 1, 1, block, 1, 1, smem, stream.as_inner() as CuStream, &mut arg, std::ptr::null_mut())
    })
}

/// `CUlaunchAttribute` (CUDA 12): an id, padding, and a 64-byte value union (8-byte aligned).
#[repr(C)]
struct LaunchAttribute {
    id: c_uint,
    pad: [u8; 4],
    value: [u64; 8],
}

/// `CUlaunchConfig` (CUDA 12): grid and block dimensions, dynamic shared memory, stream, and
/// the launch attributes.
#[repr(C)]
struct LaunchConfig {
    grid: [c_uint; 3],
    block: [c_uint; 3],
    shared_bytes: c_uint,
    stream: CuStream,
    attrs: *mut LaunchAttribute,
    num_attrs: c_uint,
}

const _: () = {
    assert!(std::mem::size_of::<LaunchAttribute>() == 72);
    assert!(std::mem::size_of::<LaunchConfig>() == 56);
    assert!(std::mem::offset_of!(LaunchConfig, stream) == 32);
};

/// `CU_LAUNCH_ATTRIBUTE_CLUSTER_DIMENSION`.
const LAUNCH_ATTRIBUTE_CLUSTER_DIMENSION: c_uint = 4;
/// `CU_FUNC_ATTRIBUTE_NON_PORTABLE_CLUSTER_SIZE_ALLOWED`.
const ATTR_NON_PORTABLE_CLUSTER_SIZE_ALLOWED: c_int = 14;

/// A launch of one thread-block cluster of `cluster` CTAs (1-D), the whole grid, with the
/// cluster-dimension attribute; `attr` must stay where it is while `config` is used.
fn cluster_config(cluster: u32, block: u32, smem: u32, stream: &cust::stream::Stream, attr: &mut LaunchAttribute) -> LaunchConfig {
    // The union's `clusterDim` is three unsigned ints: x, y, z.
    attr.value[0] = cluster as u64 | (1u64 << 32);
    attr.value[1] = 1;
    LaunchConfig {
        grid: [cluster, 1, 1],
        block: [block, 1, 1],
        shared_bytes: smem,
        stream: stream.as_inner() as CuStream,
        attrs: attr,
        num_attrs: 1,
    }
}

/// Lets `f` run in clusters above the portable size of 8 CTAs (16 on the H100 and H200).
pub(crate) fn allow_non_portable_cluster_size(f: &cust::function::Function<'_>) -> Result<()> {
    // SAFETY: `f` is a live function handle of the current context.
    check("cuFuncSetAttribute", unsafe { cu_func_set_attribute(f.to_raw() as CuFunction, ATTR_NON_PORTABLE_CLUSTER_SIZE_ALLOWED, 1) })
}

/// Clusters of `cluster` CTAs of `f` (`threads` threads and `smem` bytes of dynamic shared
/// memory each) that the GPU can hold at once (`cuOccupancyMaxActiveClusters`); 0 when none fits.
pub(crate) fn max_active_clusters(f: &cust::function::Function<'_>, cluster: u32, threads: u32, smem: u32, stream: &cust::stream::Stream) -> Result<usize> {
    let mut attr = LaunchAttribute { id: LAUNCH_ATTRIBUTE_CLUSTER_DIMENSION, pad: [0; 4], value: [0; 8] };
    let config = cluster_config(cluster, threads, smem, stream, &mut attr);
    let mut n: c_int = 0;
    // SAFETY: `f` is a live function handle; `config` and its attribute outlive the call; `n`
    // is a valid out pointer.
    check("cuOccupancyMaxActiveClusters", unsafe { cu_occupancy_max_active_clusters(&mut n, f.to_raw() as CuFunction, &config) })?;
    Ok(n.max(0) as usize)
}

/// Launches `f` as one thread-block cluster of `cluster` CTAs (the whole grid) with
/// `cuLaunchKernelEx` and one by-value parameter struct. The driver refuses a cluster size the
/// function or the GPU does not allow (e.g. `CUDA_ERROR_INVALID_CLUSTER_SIZE`, 912); the raw
/// code is kept.
///
/// # Safety
/// `P` must be the `#[repr(C)]` parameter struct the kernel expects, and every device address in
/// it must be valid for the kernel's accesses until the launch completes.
pub(crate) unsafe fn launch_cluster<P>(
    f: &cust::function::Function<'_>,
    cluster: u32,
    block: u32,
    smem: u32,
    stream: &cust::stream::Stream,
    params: &P,
) -> Result<()> {
    let mut attr = LaunchAttribute { id: LAUNCH_ATTRIBUTE_CLUSTER_DIMENSION, pad: [0; 4], value: [0; 8] };
    let config = cluster_config(cluster, block, smem, stream, &mut attr);
    let mut arg: *mut c_void = params as *const P as *mut c_void;
    // SAFETY: the caller guarantees the parameter struct matches; `config` and its attribute
    // outlive the call; the driver copies the parameters before returning.
    check("cuLaunchKernelEx", unsafe { cu_launch_kernel_ex(&config, f.to_raw() as CuFunction, &mut arg, std::ptr::null_mut()) })
}

/// Fills `n` 32-bit words at device address `dst` with `value`, ordered on `stream`.
pub(crate) fn memset_u32(dst: u64, value: u32, n: usize, stream: &cust::stream::Stream) -> Result<()> {
    // SAFETY: the caller passes a device allocation of at least `n` words (checked by the
    // callers' buffer types).
    check("cuMemsetD32Async", unsafe { cu_memset_d32_async(dst, value, n, stream.as_inner() as CuStream) })
}

/// Fills `n` 16-bit values at device address `dst` with `value`, ordered on `stream`.
#[cfg(feature = "test-hooks")]
pub(crate) fn memset_u16(dst: u64, value: u16, n: usize, stream: &cust::stream::Stream) -> Result<()> {
    // SAFETY: the caller passes a device allocation of at least `n` 16-bit values.
    check("cuMemsetD16Async", unsafe { cu_memset_d16_async(dst, value, n, stream.as_inner() as CuStream) })
}

/// Waits for `stream`.
pub(crate) fn synchronize(stream: &cust::stream::Stream) -> Result<()> {
    // SAFETY: a live stream handle.
    check("cuStreamSynchronize", unsafe { cu_stream_synchronize(stream.as_inner() as CuStream) })
}

/// Free and total device memory of the current context, bytes.
pub fn mem_info() -> Result<(usize, usize)> {
    let (mut free, mut total) = (0usize, 0usize);
    // SAFETY: valid out pointers.
    check("cuMemGetInfo", unsafe { cu_mem_get_info(&mut free, &mut total) })?;
    Ok((free, total))
}

/// Copies `bytes` bytes from device address `src` to device address `dst`, ordered on `stream`.
pub(crate) fn memcpy_dtod(dst: u64, src: u64, bytes: usize, stream: &cust::stream::Stream) -> Result<()> {
    // SAFETY: the caller passes two device allocations of at least `bytes` bytes each that do
    // not overlap.
    check("cuMemcpyDtoDAsync", unsafe { cu_memcpy_dtod_async(dst, src, bytes, stream.as_inner() as CuStream) })
}

// ---------------------------------------------------------------------------------------------
// Events: ordering between streams and timing, with the raw codes kept

/// `CU_EVENT_DISABLE_TIMING`.
const EVENT_DISABLE_TIMING: c_uint = 2;

/// A CUDA event of the current context, destroyed on drop. cust's `Event` hides its handle,
/// which [`wait_event`] needs, so sprnn's chains use this one.
#[derive(Debug)]
pub(crate) struct Event(CuEvent);

// SAFETY: a CUevent is a handle the driver lets any thread use while its context is current.
unsafe impl Send for Event {}
// SAFETY: as above; recording and waiting go through the driver, which serialises them.
unsafe impl Sync for Event {}

impl Event {
    /// A new event; `timing` keeps its timestamp for [`Event::elapsed_ms`] (otherwise it only
    /// orders streams, which is cheaper).
    pub(crate) fn new(timing: bool) -> Result<Event> {
        let mut e: CuEvent = std::ptr::null_mut();
        let flags = if timing { 0 } else { EVENT_DISABLE_TIMING };
        // SAFETY: valid out pointer; the driver checks the flags.
        check("cuEventCreate", unsafe { cu_event_create(&mut e, flags) })?;
        Ok(Event(e))
    }

    /// Records the event on `stream` (during a stream capture: a point of the graph that other
    /// captured streams can wait for).
    pub(crate) fn record(&self, stream: &cust::stream::Stream) -> Result<()> {
        // SAFETY: a live event and stream of the current context.
        check("cuEventRecord", unsafe { cu_event_record(self.0, stream.as_inner() as CuStream) })
    }

    /// Milliseconds from `start` to this event; both must have completed, with timing.
    pub(crate) fn elapsed_ms(&self, start: &Event) -> Result<f32> {
        let mut ms = 0f32;
        // SAFETY: valid out pointer and two live events.
        check("cuEventElapsedTime", unsafe { cu_event_elapsed_time(&mut ms, start.0, self.0) })?;
        Ok(ms)
    }
}

impl Drop for Event {
    fn drop(&mut self) {
        // SAFETY: the handle is live and dropped once; the driver releases an event still
        // pending on a stream when that work completes. An error has nowhere to go.
        let _ = unsafe { cu_event_destroy(self.0) };
    }
}

/// Makes all later work on `stream` wait until `event`'s recorded work has completed.
pub(crate) fn wait_event(stream: &cust::stream::Stream, event: &Event) -> Result<()> {
    // SAFETY: a live stream and event of the current context.
    check("cuStreamWaitEvent", unsafe { cu_stream_wait_event(stream.as_inner() as CuStream, event.0, 0) })
}

// ---------------------------------------------------------------------------------------------
// CUDA graphs: stream capture, instantiation and launch

/// `CU_STREAM_CAPTURE_MODE_THREAD_LOCAL`: while this thread captures, it may not make calls
/// that could synchronise implicitly (allocations, blocking copies); other threads are free.
const CAPTURE_MODE_THREAD_LOCAL: c_uint = 1;

/// Starts capturing `stream`: work enqueued on it (and on streams that wait for events
/// recorded on it) is recorded into a graph instead of run, until [`end_capture`].
pub(crate) fn begin_capture(stream: &cust::stream::Stream) -> Result<()> {
    // SAFETY: a live stream, not the legacy default stream (sprnn's streams are created
    // non-blocking) and not capturing already (the callers begin and end in pairs).
    check("cuStreamBeginCapture", unsafe { cu_stream_begin_capture(stream.as_inner() as CuStream, CAPTURE_MODE_THREAD_LOCAL) })
}

/// A graph captured from streams, not yet instantiated; destroyed on drop.
#[derive(Debug)]
pub(crate) struct Graph(CuGraph);

impl Drop for Graph {
    fn drop(&mut self) {
        // SAFETY: a live graph, dropped once; executable graphs made from it are independent.
        let _ = unsafe { cu_graph_destroy(self.0) };
    }
}

/// Ends the capture [`begin_capture`] started on `stream` and returns the graph. When the
/// capture failed (an operation refused while capturing, a stream left unjoined), the driver
/// says so here, and the stream leaves the capture state either way.
pub(crate) fn end_capture(stream: &cust::stream::Stream) -> Result<Graph> {
    let mut g: CuGraph = std::ptr::null_mut();
    // SAFETY: valid out pointer; a live stream in capture.
    let code = unsafe { cu_stream_end_capture(stream.as_inner() as CuStream, &mut g) };
    if code != 0 {
        if !g.is_null() {
            drop(Graph(g));
        }
        return Err(CallFailed { call: "cuStreamEndCapture", code });
    }
    Ok(Graph(g))
}

/// An executable graph, launched as one unit of work on a stream; destroyed on drop.
#[derive(Debug)]
pub(crate) struct GraphExec {
    exec: CuGraphExec,
    _graph: Graph,
}

// SAFETY: graph handles may be used from any thread with their context current; sprnn launches
// a graph only through `&mut` access to its owner.
unsafe impl Send for GraphExec {}

impl Graph {
    /// Instantiates the graph for launching (`cuGraphInstantiateWithFlags`, no flags).
    pub(crate) fn instantiate(self) -> Result<GraphExec> {
        let mut exec: CuGraphExec = std::ptr::null_mut();
        // SAFETY: valid out pointer and a live graph.
        check("cuGraphInstantiateWithFlags", unsafe { cu_graph_instantiate_with_flags(&mut exec, self.0, 0) })?;
        Ok(GraphExec { exec, _graph: self })
    }
}

impl GraphExec {
    /// Enqueues one run of the whole graph on `stream`.
    ///
    /// # Safety
    /// Every device address the captured work uses must still be valid, for the sizes it was
    /// captured with, until the run completes.
    pub(crate) unsafe fn launch(&self, stream: &cust::stream::Stream) -> Result<()> {
        // SAFETY: a live executable graph and stream; the caller keeps the buffers alive.
        check("cuGraphLaunch", unsafe { cu_graph_launch(self.exec, stream.as_inner() as CuStream) })
    }
}

impl Drop for GraphExec {
    fn drop(&mut self) {
        // SAFETY: a live executable graph, dropped once; its owner waited for its last run.
        let _ = unsafe { cu_graph_exec_destroy(self.exec) };
    }
}
