//! `sprnn-probe`: the hidden-state exchange alone, in the geometry of the headline layer
//! (H = 2304, B = 4: 128 CTAs × 576 threads, each CTA publishing 18 rows × 4 batch lanes), timed
//! per step — the measurement that decides how the recurrent kernel should exchange `h`.
//!
//! The kernels are `sprnn_probe_*` (`kernels-gpu/src/kernels/probe.rs`): every step, each CTA
//! publishes its tagged words into exchange buffer `t % 2`, then every thread polls its chunks of
//! the whole vector, one after the other, until every word carries the step's tag (gather →
//! barrier → publish → barrier, as the recurrent kernel). Both exchange buffers are zeroed before
//! each launch; one launch runs `--steps` steps (default 4000); a point's time is the median of
//! `--repeats` launches after `--warmup`, by CUDA events, in µs per step. Thread 0 of CTA 0 also
//! reads `%clock64` and `%globaltimer` around its step loop: `sm_clock_mhz` is their ratio (the
//! SM clock while the probe ran) and `timer_us_per_step` that CTA's loop time per step. After the
//! last launch of a point the host checks the final exchange buffer: every word must carry the
//! last step's tag and every value must equal the step count (each step adds one to what was
//! gathered), so a point that measured a broken exchange is reported, not timed.
//!
//! # Sweeps (`--all`, or a list with `--sweeps`)
//!
//! - `check`: how often a wait reads `%globaltimer` and the status word — today's recurrent kernel
//!   (first miss, then every 32 spins; `check = 32`) against every 1024 spins only (`check =
//!   1024`; the deadline starts at the first check) — for both word formats at the headline size.
//! - `timeout`: the forced-timeout mode (CTA 0 never publishes step 1) for each exchange; a point
//!   passes when the launch ends with `TIMEOUT`/`ABORTED` in the status word within the bound
//!   (`--forced-timeout-ms`), and fails on a normal end. A hang is impossible by construction
//!   (every wait is bounded); the host still gives up on a launch after `--launch-timeout-s`.
//! - `polls`: serial 16-byte polls per thread k = 1, 2, 3, 4, 6 at 576 threads (the vector is
//!   k · 576 chunks: k · 9 KB), 32-bit and 64-bit words.
//! - `ctas`: 32, 64 and 128 CTAs reading the same vector at fixed k (32-bit k = 4, 64-bit k = 3;
//!   fewer CTAs each publish more words).
//! - `cluster`: clusters of 2 CTAs (`cuLaunchKernelEx` with a cluster-dimension attribute): each
//!   CTA polls half of the vector from L2 (k/2 serial polls per thread) and forwards every chunk
//!   into its partner's shared memory (DSMEM), published by a cluster barrier (`cluster_barrier`)
//!   or by the tags themselves, polled in shared memory (`cluster_tagged`); k = 1, 2, 3, 4, 6 and
//!   the headline size, both word formats.
//!
//! Word formats: `w32` = today's 32-bit word (`fp16 | 16-bit tag`), four per 16-byte poll; `w64` =
//! a 64-bit word of three fp16 and the tag (an aligned 64-bit access is single-copy atomic), two
//! per 16-byte poll (`ld.relaxed.gpu.v2.u64`, each word's own tag checked). The headline layer's
//! 9216 values are 36 KB as `w32` (k = 4) and 24 KB as `w64` (1536 chunks: k = 3 for two thirds
//! of the threads, 2 for the rest); those points are `variant = headline`.
//!
//! Co-residency: the global exchange is a cooperative launch (refused, not hung, when the grid
//! does not fit); the cluster launches are checked with `cuOccupancyMaxActiveClusters` first.
//! Every CTA asks for more than half of an SM's shared memory, so each SM holds one CTA.
//!
//! Rows: `sweep,variant,exchange,format,check,ctas,threads,k,l2_polls,chunks,bytes_per_cta,steps,
//! us_per_step,timer_us_per_step,sm_clock_mhz,gpu,driver,date,commit,note` (`k` = the vector's
//! chunks per thread, rounded up; `l2_polls` = serial L2 polls per thread; `bytes_per_cta` =
//! bytes each CTA publishes). A point that fails keeps its row with an empty time and the error
//! in `note`, and the sweep goes on. Without a GPU the program says so and exits with code 2.
//!
//! # Prediction (written before the first run)
//!
//! From DESIGN §4 (512 threads, serial spin per 16-byte load: 1.30 µs at 9 KB, 1.45 at 18 KB,
//! 1.90 at 36 KB) and §7 (the cost follows serial polls per thread: about 1 µs plus 0.2–0.3 µs per
//! further poll; sprnn's floor is 1.6 µs at one chunk per thread, 2.4–2.5 µs at four), and because
//! this probe has the floor's structure minus its `U` prefetch and unit-table reads, µs per step:
//!
//! | sweep | point | w32 | w64 |
//! | --- | --- | --- | --- |
//! | polls | k = 1 | 1.40 | 1.40 |
//! | polls | k = 2 | 1.65 | 1.65 |
//! | polls | k = 3 | 1.90 | 1.90 |
//! | polls | k = 4 | 2.15 | 2.15 |
//! | polls | k = 6 | 2.65 | 2.65 |
//! | headline | 36 KB w32 (k = 4) / 24 KB w64 (k ≤ 3) | 2.15 | 1.90 |
//! | check | check every 1024 spins, headline | 1.95 | 1.75 |
//! | ctas | 32 / 64 / 128 CTAs (w32 k = 4, w64 k = 3) | 1.95 / 2.05 / 2.15 | 1.75 / 1.80 / 1.90 |
//! | cluster_barrier | k = 1 / 2 / 3 / 4 / 6 | 1.70 / 1.70 / 1.95 / 1.95 / 2.20 | same as w32 |
//! | cluster_tagged | k = 1 / 2 / 3 / 4 / 6 | 1.60 / 1.60 / 1.85 / 1.85 / 2.10 | same as w32 |
//! | cluster | headline barrier / tagged | 1.95 / 1.85 | 1.95 / 1.85 |
//!
//! Reasoning: a 16-byte poll costs the same L2 round trip whatever its words, so at equal k the
//! formats tie and `w64` wins only by needing fewer chunks for the same values (headline: k ≤ 3
//! instead of 4, about −0.25 µs). Today's wait spends its first miss on a `%globaltimer` read and a
//! status load from one hot L2 line by all 73,728 threads: one extra round trip before the re-poll
//! that usually finds the data, about 0.2 µs per step that the 1024-spin check saves. Fewer
//! reading CTAs poll the same 36 KB with less L2 traffic (4.6 MB per step at 128 CTAs): a small
//! gain, not a change of regime. Clusters of two halve the serial L2 polls but add a DSMEM store
//! and either a cluster barrier (~0.3 µs) or a shared-memory poll of the forwarded chunks (~0.2
//! µs): no gain at k ≤ 2, about 0.2–0.5 µs saved at k = 4–6, the tagged form ahead of the
//! barrier. The SM clock should read about 1980 MHz (H200 boost) unless the GPU is power-capped.

use std::ffi::{c_void, CString};
use std::io::Write;
use std::os::raw::{c_char, c_int, c_uint};
use std::time::{Duration, Instant};

use clap::Parser;
use sprnn::driver::error_name;
use sprnn_kernels::format::{
    probe_flags, probe_kernel_name, probe_smem_bytes, status, ProbeExchange, ProbeParams, ProbeWord, PROBE_BATCH, PROBE_CTAS,
    PROBE_ROWS_PER_CTA, PROBE_THREADS,
};

/// CSV header of the rows file.
const HEADER: &str = "sweep,variant,exchange,format,check,ctas,threads,k,l2_polls,chunks,bytes_per_cta,steps,us_per_step,timer_us_per_step,sm_clock_mhz,gpu,driver,date,commit,note";

/// Every sweep, in the order `--all` runs them.
const SWEEPS: [&str; 5] = ["check", "timeout", "polls", "ctas", "cluster"];

#[derive(Parser, Debug)]
#[command(
    about = "Measure the hidden-state exchange alone (tagged words, serial polls, clusters) in the headline layer's geometry",
    args_override_self = true
)]
struct Args {
    /// Run every sweep (check, timeout, polls, ctas, cluster).
    #[arg(long)]
    all: bool,
    /// Sweeps to run (any of check, timeout, polls, ctas, cluster).
    #[arg(long, value_delimiter = ',')]
    sweeps: Vec<String>,
    /// Steps per launch (at most 65535: tags are 16-bit).
    #[arg(long, default_value_t = 4000)]
    steps: u32,
    /// Timed launches per point (median reported; at least 5).
    #[arg(long, default_value_t = 7)]
    repeats: usize,
    /// Untimed launches first.
    #[arg(long, default_value_t = 2)]
    warmup: usize,
    /// Bound of one wait in the timed points, milliseconds (a step takes microseconds).
    #[arg(long, default_value_t = 100)]
    timeout_ms: u64,
    /// Bound of one wait in the forced-timeout points, milliseconds.
    #[arg(long, default_value_t = 20)]
    forced_timeout_ms: u64,
    /// The host gives up on a launch that has not finished after this many seconds (it cannot
    /// happen while every wait is bounded; the program then stops, as the GPU is still busy).
    #[arg(long, default_value_t = 20)]
    launch_timeout_s: u64,
    /// CSV file to append to (header written when new).
    #[arg(long)]
    out: Option<String>,
    /// GPU name for the rows (default: the device's).
    #[arg(long)]
    gpu_name: Option<String>,
    /// Driver version for the rows (default: from nvidia-smi).
    #[arg(long)]
    driver: Option<String>,
    /// Date for the rows (default: today, UTC).
    #[arg(long)]
    date: Option<String>,
    /// Commit for the rows.
    #[arg(long, default_value = "")]
    commit: String,
}

// ---------------------------------------------------------------------------------------------
// Driver calls, raw: every failure keeps its `CUresult`.

type CuContext = *mut c_void;
type CuModule = *mut c_void;
type CuFunction = *mut c_void;
type CuStream = *mut c_void;
type CuEvent = *mut c_void;

/// `CUlaunchAttribute`: an id, padding, and a 64-byte value union (8-byte aligned).
#[repr(C)]
struct LaunchAttribute {
    id: c_uint,
    pad: [u8; 4],
    value: [u64; 8],
}

/// `CUlaunchConfig`.
#[repr(C)]
struct LaunchConfig {
    grid: [c_uint; 3],
    block: [c_uint; 3],
    shared_bytes: c_uint,
    stream: CuStream,
    attrs: *mut LaunchAttribute,
    num_attrs: c_uint,
}

/// `CU_LAUNCH_ATTRIBUTE_CLUSTER_DIMENSION`.
const ATTR_CLUSTER_DIMENSION: c_uint = 4;
/// `CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES`.
const FUNC_MAX_DYNAMIC_SHARED: c_int = 8;
/// `CU_FUNC_ATTRIBUTE_PREFERRED_SHARED_MEMORY_CARVEOUT`.
const FUNC_PREFERRED_CARVEOUT: c_int = 9;
/// `CUDA_ERROR_NOT_READY`.
const NOT_READY: c_uint = 600;
/// `CUDA_ERROR_NO_DEVICE`.
const NO_DEVICE: c_uint = 100;
/// Launch errors that refuse a configuration without harming the context: invalid value, out
/// of memory, launch out of resources, cooperative launch too large, not supported, invalid
/// cluster size.
const REFUSED_LAUNCH: [c_uint; 6] = [1, 2, 701, 720, 801, 912];

/// `CUdevice_attribute` values read here.
mod attr {
    pub const MULTIPROCESSOR_COUNT: i32 = 16;
    pub const COMPUTE_CAPABILITY_MAJOR: i32 = 75;
    pub const COMPUTE_CAPABILITY_MINOR: i32 = 76;
    pub const MAX_SHARED_MEMORY_PER_MULTIPROCESSOR: i32 = 81;
    pub const MAX_SHARED_MEMORY_PER_BLOCK_OPTIN: i32 = 97;
}

/// Defines each listed driver function as a Rust function that calls libcuda's function of that
/// name, resolved at run time (so the probe starts, and says there is no driver, on a machine
/// without one; `SPRNN_LIBCUDA` names another library file, as for the `sprnn` crate). Returns
/// the raw `CUresult`, `CUDA_ERROR_NOT_INITIALIZED` (3) when the library or symbol is missing.
macro_rules! driver_fns {
    ($(fn $name:ident($($arg:ident: $ty:ty),* $(,)?) -> c_uint;)*) => {$(
        #[allow(non_snake_case, clippy::too_many_arguments)]
        unsafe fn $name($($arg: $ty),*) -> c_uint {
            static SLOT: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
            let p = *SLOT.get_or_init(|| driver_symbol(concat!(stringify!($name), "\0")));
            if p == 0 {
                return 3;
            }
            // SAFETY: `p` is libcuda's function of this name, whose C signature is the one
            // declared here.
            let f = unsafe { std::mem::transmute::<usize, unsafe extern "C" fn($($ty),*) -> c_uint>(p) };
            // SAFETY: the caller upholds the driver function's contract.
            unsafe { f($($arg),*) }
        }
    )*};
}

/// The address of libcuda's symbol `name` (NUL-terminated), 0 when there is none.
fn driver_symbol(name: &str) -> usize {
    static LIBRARY: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    let library = *LIBRARY.get_or_init(|| {
        let path = std::env::var("SPRNN_LIBCUDA").unwrap_or_else(|_| "libcuda.so.1".to_string());
        let Ok(path) = std::ffi::CString::new(path) else { return 0 };
        // SAFETY: `path` is NUL-terminated; dlopen has no other precondition.
        unsafe { libc::dlopen(path.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) as usize }
    });
    if library == 0 {
        return 0;
    }
    // SAFETY: `library` is a live dlopen handle (never closed); `name` is NUL-terminated.
    unsafe { libc::dlsym(library as *mut c_void, name.as_ptr() as *const c_char) as usize }
}

driver_fns! {
    fn cuInit(flags: c_uint) -> c_uint;
    fn cuDeviceGetCount(count: *mut c_int) -> c_uint;
    fn cuDeviceGetName(name: *mut c_char, len: c_int, device: c_int) -> c_uint;
    fn cuDeviceGetAttribute(value: *mut c_int, attr: c_int, device: c_int) -> c_uint;
    fn cuDevicePrimaryCtxRetain(ctx: *mut CuContext, device: c_int) -> c_uint;
    fn cuDevicePrimaryCtxRelease_v2(device: c_int) -> c_uint;
    fn cuDevicePrimaryCtxReset_v2(device: c_int) -> c_uint;
    fn cuCtxSetCurrent(ctx: CuContext) -> c_uint;
    fn cuModuleLoadData(module: *mut CuModule, image: *const c_void) -> c_uint;
    fn cuModuleUnload(module: CuModule) -> c_uint;
    fn cuModuleGetFunction(f: *mut CuFunction, module: CuModule, name: *const c_char) -> c_uint;
    fn cuFuncSetAttribute(f: CuFunction, attr: c_int, value: c_int) -> c_uint;
    fn cuOccupancyMaxActiveBlocksPerMultiprocessor(blocks: *mut c_int, f: CuFunction, block: c_int, smem: usize) -> c_uint;
    fn cuOccupancyMaxActiveClusters(clusters: *mut c_int, f: CuFunction, config: *const LaunchConfig) -> c_uint;
    fn cuStreamCreate(stream: *mut CuStream, flags: c_uint) -> c_uint;
    fn cuStreamDestroy_v2(stream: CuStream) -> c_uint;
    fn cuEventCreate(event: *mut CuEvent, flags: c_uint) -> c_uint;
    fn cuEventDestroy_v2(event: CuEvent) -> c_uint;
    fn cuEventRecord(event: CuEvent, stream: CuStream) -> c_uint;
    fn cuEventQuery(event: CuEvent) -> c_uint;
    fn cuEventElapsedTime(ms: *mut f32, start: CuEvent, end: CuEvent) -> c_uint;
    fn cuMemAlloc_v2(dptr: *mut u64, bytes: usize) -> c_uint;
    fn cuMemFree_v2(dptr: u64) -> c_uint;
    fn cuMemsetD32Async(dst: u64, value: c_uint, n: usize, stream: CuStream) -> c_uint;
    fn cuMemcpyDtoH_v2(dst: *mut c_void, src: u64, bytes: usize) -> c_uint;
    fn cuLaunchCooperativeKernel(
        f: CuFunction,
        grid_x: c_uint,
        grid_y: c_uint,
        grid_z: c_uint,
        block_x: c_uint,
        block_y: c_uint,
        block_z: c_uint,
        shared_bytes: c_uint,
        stream: CuStream,
        params: *mut *mut c_void,
    ) -> c_uint;
    fn cuLaunchKernelEx(config: *const LaunchConfig, f: CuFunction, params: *mut *mut c_void, extra: *mut *mut c_void) -> c_uint;
}

/// A failed driver call: its name and raw `CUresult`.
#[derive(Debug, Clone)]
struct DriverError {
    call: &'static str,
    code: u32,
}

impl std::fmt::Display for DriverError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} failed: {} ({})", self.call, error_name(self.code), self.code)
    }
}

fn check(call: &'static str, code: c_uint) -> Result<(), DriverError> {
    if code == 0 {
        Ok(())
    } else {
        Err(DriverError { call, code })
    }
}

/// Device 0 as the probe uses it.
struct Device {
    name: String,
    sm_count: u32,
    cc: (u32, u32),
    smem_per_sm: u32,
    smem_optin: u32,
}

/// Opens device 0: `Ok(None)` when there is no driver or no device.
fn open_device() -> Result<Option<Device>, DriverError> {
    // SAFETY: cuInit has no preconditions.
    let code = unsafe { cuInit(0) };
    if code != 0 {
        eprintln!("sprnn-probe: cuInit: {} ({code})", error_name(code));
        return if code == NO_DEVICE || code == 35 || code == 34 || code == 999 || code == 3 { Ok(None) } else { Err(DriverError { call: "cuInit", code }) };
    }
    let mut n: c_int = 0;
    // SAFETY: valid out pointer.
    check("cuDeviceGetCount", unsafe { cuDeviceGetCount(&mut n) })?;
    if n < 1 {
        return Ok(None);
    }
    let mut buf = [0 as c_char; 256];
    // SAFETY: the buffer holds 256 bytes; the driver NUL-terminates within them.
    check("cuDeviceGetName", unsafe { cuDeviceGetName(buf.as_mut_ptr(), 256, 0) })?;
    // SAFETY: NUL-terminated by the driver.
    let name = unsafe { std::ffi::CStr::from_ptr(buf.as_ptr()) }.to_string_lossy().into_owned();
    let a = |k: i32| -> Result<u32, DriverError> {
        let mut v: c_int = 0;
        // SAFETY: valid out pointer; the driver checks the attribute.
        check("cuDeviceGetAttribute", unsafe { cuDeviceGetAttribute(&mut v, k, 0) })?;
        Ok(v.max(0) as u32)
    };
    Ok(Some(Device {
        name,
        sm_count: a(attr::MULTIPROCESSOR_COUNT)?,
        cc: (a(attr::COMPUTE_CAPABILITY_MAJOR)?, a(attr::COMPUTE_CAPABILITY_MINOR)?),
        smem_per_sm: a(attr::MAX_SHARED_MEMORY_PER_MULTIPROCESSOR)?,
        smem_optin: a(attr::MAX_SHARED_MEMORY_PER_BLOCK_OPTIN)?,
    }))
}

/// The probe entry points of the embedded PTX, with the PTX header: a small module the driver
/// compiles in milliseconds instead of the whole library. `None` when an entry is missing or
/// calls another function (then the whole PTX is loaded).
fn probe_module_ptx(full: &str, names: &[&str]) -> Option<String> {
    let mut out = String::new();
    for line in full.lines() {
        let l = line.trim_start();
        if l.starts_with(".func") || l.starts_with(".visible") || l.starts_with(".global") || l.starts_with(".weak") || l.starts_with(".extern .func") {
            break;
        }
        if l.starts_with('.') {
            out.push_str(l);
            out.push('\n');
        }
    }
    for name in names {
        let head = format!(".visible .entry {name}(");
        let start = full.find(&head)?;
        let len = full[start..].find("\n}\n")? + 3;
        let body = &full[start..start + len];
        if body.contains("call.") || body.contains("call ") {
            return None;
        }
        out.push_str(body);
        out.push('\n');
    }
    Some(out)
}

/// Context, module and stream of one run; rebuilt after a failure that leaves the context
/// unusable.
struct Session {
    module: CuModule,
    stream: CuStream,
    start: CuEvent,
    stop: CuEvent,
}

impl Session {
    fn open(cc: (u32, u32)) -> Result<(Session, bool), DriverError> {
        let mut ctx: CuContext = std::ptr::null_mut();
        // SAFETY: valid out pointer; device 0 exists (checked by open_device).
        check("cuDevicePrimaryCtxRetain", unsafe { cuDevicePrimaryCtxRetain(&mut ctx, 0) })?;
        // SAFETY: a retained context.
        check("cuCtxSetCurrent", unsafe { cuCtxSetCurrent(ctx) })?;
        let sm90 = cc.0 >= 9;
        let full = if sm90 { sprnn::ptx::SM90.as_str() } else { sprnn::ptx::SM80.as_str() };
        let names: Vec<&str> = kernels(sm90).iter().map(|&(w, e)| probe_kernel_name(w, e)).collect();
        let mut module: CuModule = std::ptr::null_mut();
        let mut small = false;
        if let Some(ptx) = probe_module_ptx(full, &names) {
            let c = CString::new(ptx).expect("PTX has no NUL");
            // SAFETY: a NUL-terminated PTX image; valid out pointer.
            small = unsafe { cuModuleLoadData(&mut module, c.as_ptr() as *const c_void) } == 0;
        }
        if !small {
            let c = CString::new(full).expect("PTX has no NUL");
            // SAFETY: as above.
            check("cuModuleLoadData", unsafe { cuModuleLoadData(&mut module, c.as_ptr() as *const c_void) })?;
        }
        let mut stream: CuStream = std::ptr::null_mut();
        // SAFETY: valid out pointer; flag 1 = CU_STREAM_NON_BLOCKING.
        check("cuStreamCreate", unsafe { cuStreamCreate(&mut stream, 1) })?;
        let (mut start, mut stop): (CuEvent, CuEvent) = (std::ptr::null_mut(), std::ptr::null_mut());
        // SAFETY: valid out pointers; flag 0 = timing events.
        check("cuEventCreate", unsafe { cuEventCreate(&mut start, 0) })?;
        // SAFETY: as above.
        check("cuEventCreate", unsafe { cuEventCreate(&mut stop, 0) })?;
        Ok((Session { module, stream, start, stop }, small))
    }

    fn function(&self, name: &str) -> Result<CuFunction, String> {
        let c = CString::new(name).unwrap();
        let mut f: CuFunction = std::ptr::null_mut();
        // SAFETY: a loaded module; valid out pointer.
        check("cuModuleGetFunction", unsafe { cuModuleGetFunction(&mut f, self.module, c.as_ptr()) }).map_err(|e| format!("kernel {name}: {e}"))?;
        Ok(f)
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        // Errors here are ignored: the context may be the reason the session is being dropped.
        // SAFETY: handles created by `open`, destroyed once.
        unsafe {
            cuEventDestroy_v2(self.start);
            cuEventDestroy_v2(self.stop);
            cuStreamDestroy_v2(self.stream);
            cuModuleUnload(self.module);
            cuDevicePrimaryCtxRelease_v2(0);
        }
    }
}

/// A device allocation freed on drop.
struct DeviceMem(u64);

impl DeviceMem {
    fn new(bytes: usize) -> Result<DeviceMem, DriverError> {
        let mut p = 0u64;
        // SAFETY: valid out pointer.
        check("cuMemAlloc", unsafe { cuMemAlloc_v2(&mut p, bytes.max(16)) })?;
        Ok(DeviceMem(p))
    }

    /// `n` values from the start of the allocation.
    fn read<T: Copy + Default>(&self, n: usize) -> Result<Vec<T>, DriverError> {
        self.read_at(0, n)
    }

    /// `n` values from byte `offset` of the allocation (callers keep it inside).
    fn read_at<T: Copy + Default>(&self, offset: u64, n: usize) -> Result<Vec<T>, DriverError> {
        let mut v = vec![T::default(); n];
        // SAFETY: the callers' sizes keep `offset + n` values inside the allocation; plain data.
        check("cuMemcpyDtoH", unsafe { cuMemcpyDtoH_v2(v.as_mut_ptr() as *mut c_void, self.0 + offset, n * std::mem::size_of::<T>()) })?;
        Ok(v)
    }
}

impl Drop for DeviceMem {
    fn drop(&mut self) {
        // SAFETY: freed once; an error (dead context) is ignored.
        unsafe { cuMemFree_v2(self.0) };
    }
}

// ---------------------------------------------------------------------------------------------
// Points

/// When a wait reads the timer and the status word.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Check {
    /// The recurrent kernel's: first miss, then every 32 spins.
    Every32,
    /// Every 1024 spins only (the deadline starts at the first check).
    Every1024,
}

impl Check {
    fn mask_phase(self) -> (u32, u32) {
        match self {
            Check::Every32 => (31, 1),
            Check::Every1024 => (1023, 0),
        }
    }
    fn name(self) -> &'static str {
        match self {
            Check::Every32 => "32",
            Check::Every1024 => "1024",
        }
    }
}

/// One launch configuration.
#[derive(Clone, Debug)]
struct Point {
    sweep: &'static str,
    variant: String,
    exchange: ProbeExchange,
    word: ProbeWord,
    check: Check,
    ctas: u32,
    chunks: u32,
    forced_timeout: bool,
}

impl Point {
    fn exchange_name(&self) -> &'static str {
        match self.exchange {
            ProbeExchange::Global => "global",
            ProbeExchange::ClusterBarrier => "cluster_barrier",
            ProbeExchange::ClusterTagged => "cluster_tagged",
        }
    }
    fn threads(&self) -> u32 {
        PROBE_THREADS as u32
    }
    fn k(&self) -> u32 {
        self.chunks.div_ceil(self.threads())
    }
    fn l2_polls(&self) -> u32 {
        (self.chunks / self.exchange.cluster_size() as u32).div_ceil(self.threads())
    }
    fn words_per_cta(&self) -> u32 {
        self.chunks * 16 / self.word.bytes() as u32 / self.ctas
    }
    fn bytes_per_cta(&self) -> u32 {
        self.words_per_cta() * self.word.bytes() as u32
    }
    /// Why the point cannot run as described, if it cannot.
    fn invalid(&self) -> Option<String> {
        let total = self.chunks as usize * 16;
        if !total.is_multiple_of(self.word.bytes() * self.ctas as usize) {
            return Some(format!("{total} bytes do not split into whole {}-bit words over {} CTAs", 8 * self.word.bytes(), self.ctas));
        }
        if self.exchange != ProbeExchange::Global && (!self.ctas.is_multiple_of(2) || !self.chunks.is_multiple_of(2)) {
            return Some("clusters of two need an even grid and an even number of chunks".into());
        }
        None
    }
}

/// The kernels of the module: all six on sm_90, the global ones on sm_80.
fn kernels(sm90: bool) -> Vec<(ProbeWord, ProbeExchange)> {
    let mut v = Vec::new();
    for e in [ProbeExchange::Global, ProbeExchange::ClusterBarrier, ProbeExchange::ClusterTagged] {
        if e != ProbeExchange::Global && !sm90 {
            continue;
        }
        for w in [ProbeWord::Tagged32, ProbeWord::Tagged64] {
            v.push((w, e));
        }
    }
    v
}

/// Chunks of the headline vector (9216 fp16 values) in a word format.
fn headline_chunks(word: ProbeWord) -> u32 {
    let values = PROBE_CTAS * PROBE_ROWS_PER_CTA * PROBE_BATCH;
    (values / word.values() * word.bytes() / 16) as u32
}

/// The points of one sweep.
fn sweep_points(sweep: &'static str) -> Vec<Point> {
    let t = PROBE_THREADS as u32;
    let ctas = PROBE_CTAS as u32;
    let words = [ProbeWord::Tagged32, ProbeWord::Tagged64];
    let p = |variant: String, exchange, word, check, ctas, chunks, forced_timeout| Point { sweep, variant, exchange, word, check, ctas, chunks, forced_timeout };
    let mut v = Vec::new();
    match sweep {
        "check" => {
            for check in [Check::Every32, Check::Every1024] {
                for w in words {
                    v.push(p("headline".into(), ProbeExchange::Global, w, check, ctas, headline_chunks(w), false));
                }
            }
        }
        "timeout" => {
            for (e, w, check) in [
                (ProbeExchange::Global, ProbeWord::Tagged32, Check::Every32),
                (ProbeExchange::Global, ProbeWord::Tagged32, Check::Every1024),
                (ProbeExchange::Global, ProbeWord::Tagged64, Check::Every32),
                (ProbeExchange::ClusterBarrier, ProbeWord::Tagged32, Check::Every32),
                (ProbeExchange::ClusterTagged, ProbeWord::Tagged32, Check::Every32),
                (ProbeExchange::ClusterTagged, ProbeWord::Tagged64, Check::Every1024),
            ] {
                v.push(p("forced_timeout".into(), e, w, check, ctas, headline_chunks(w), true));
            }
        }
        "polls" => {
            for w in words {
                for k in [1, 2, 3, 4, 6] {
                    v.push(p(format!("k{k}"), ProbeExchange::Global, w, Check::Every32, ctas, k * t, false));
                }
            }
        }
        "ctas" => {
            for (w, k) in [(ProbeWord::Tagged32, 4), (ProbeWord::Tagged64, 3)] {
                for c in [32, 64, 128] {
                    v.push(p(format!("ctas{c}_k{k}"), ProbeExchange::Global, w, Check::Every32, c, k * t, false));
                }
            }
        }
        "cluster" => {
            for e in [ProbeExchange::ClusterBarrier, ProbeExchange::ClusterTagged] {
                for w in words {
                    for k in [1, 2, 3, 4, 6] {
                        v.push(p(format!("k{k}"), e, w, Check::Every32, ctas, k * t, false));
                    }
                    v.push(p("headline".into(), e, w, Check::Every32, ctas, headline_chunks(w), false));
                }
            }
        }
        _ => unreachable!("sweep names are checked in main"),
    }
    v
}

/// What a point measured.
struct Measured {
    us_per_step: f64,
    timer_us_per_step: f64,
    sm_clock_mhz: f64,
    note: String,
}

/// Why a point has no time.
enum Failure {
    /// The point failed; the context is still usable.
    Point(String),
    /// A driver call failed: the context may be unusable, so the session is rebuilt.
    Driver(String),
}

impl From<DriverError> for Failure {
    fn from(e: DriverError) -> Failure {
        Failure::Driver(e.to_string())
    }
}

fn status_text(word: u32) -> String {
    let code = word & ((1 << status::CTA_SHIFT) - 1);
    let cta = word >> status::CTA_SHIFT;
    let name = match code {
        status::TIMEOUT => "TIMEOUT",
        status::ABORTED => "ABORTED",
        status::BAD_PARAMS => "BAD_PARAMS",
        _ => "unknown",
    };
    format!("{name} ({code}) first reported by CTA {cta}")
}

/// Waits for the stop event, bounded by `limit`; a launch that is still running then ends the
/// program (its rows are already written).
fn wait_event(ev: CuEvent, limit: Duration) -> Result<(), DriverError> {
    let t0 = Instant::now();
    loop {
        // SAFETY: a live event.
        let code = unsafe { cuEventQuery(ev) };
        if code == 0 {
            return Ok(());
        }
        if code != NOT_READY {
            return Err(DriverError { call: "kernel (cuEventQuery)", code });
        }
        if t0.elapsed() > limit {
            eprintln!("sprnn-probe: a launch is still running after {} s although every wait in it is bounded; giving up", limit.as_secs());
            std::process::exit(3);
        }
        std::thread::sleep(Duration::from_micros(200));
    }
}

/// Gives `f` the shared memory that leaves room for exactly one CTA per SM (more than half of
/// the SM's, and at least what the copies need) and checks that one CTA of `pt` fits per SM
/// and that the device has an SM for each; returns the shared memory per CTA.
fn one_cta_per_sm(f: CuFunction, dev: &Device, pt: &Point) -> Result<u32, Failure> {
    // One CTA per SM: more than half of the SM's shared memory, and at least what the copies need.
    let need = probe_smem_bytes(pt.chunks as usize) as u32;
    let smem = need.max(dev.smem_per_sm / 2 + 1024).min(dev.smem_optin);
    if need > smem {
        return Err(Failure::Point(format!("needs {need} B of shared memory, the device allows {}", dev.smem_optin)));
    }
    // SAFETY: a live function handle.
    check("cuFuncSetAttribute", unsafe { cuFuncSetAttribute(f, FUNC_MAX_DYNAMIC_SHARED, smem as c_int) })?;
    // SAFETY: as above.
    check("cuFuncSetAttribute", unsafe { cuFuncSetAttribute(f, FUNC_PREFERRED_CARVEOUT, 100) })?;
    let mut per_sm: c_int = 0;
    // SAFETY: valid out pointer, live function.
    check("cuOccupancyMaxActiveBlocksPerMultiprocessor", unsafe {
        cuOccupancyMaxActiveBlocksPerMultiprocessor(&mut per_sm, f, pt.threads() as c_int, smem as usize)
    })?;
    if per_sm != 1 {
        return Err(Failure::Point(format!("{per_sm} CTAs fit on one SM (need exactly 1)")));
    }
    if pt.ctas > dev.sm_count {
        return Err(Failure::Point(format!("{} CTAs but only {} SMs", pt.ctas, dev.sm_count)));
    }
    Ok(smem)
}

/// The probe kernel's parameters for `pt`: `steps` steps, waits bounded by `timeout_ms`, on
/// the exchange, status and clock buffers.
fn probe_params(pt: &Point, steps: u32, timeout_ms: u64, (exchange, status, clocks): (&DeviceMem, &DeviceMem, &DeviceMem)) -> ProbeParams {
    let (mask, phase) = pt.check.mask_phase();
    ProbeParams {
        exchange: exchange.0,
        status: status.0,
        clocks: clocks.0,
        timeout_ns: timeout_ms * 1_000_000,
        steps,
        words_per_cta: pt.words_per_cta(),
        chunks: pt.chunks,
        check_mask: mask,
        check_phase: phase,
        flags: if pt.forced_timeout { probe_flags::NEVER_PUBLISH } else { 0 },
    }
}

/// A forced-timeout launch's result: it must have ended with TIMEOUT (or ABORTED, a CTA that
/// saw another's timeout) within `ms`, the bound per wait being `timeout_ms`.
fn forced_timeout_verdict(st: u32, ms: f32, timeout_ms: u64) -> Result<Measured, Failure> {
    let code = st & ((1 << status::CTA_SHIFT) - 1);
    if code == status::TIMEOUT || code == status::ABORTED {
        Ok(Measured {
            us_per_step: f64::NAN,
            timer_us_per_step: f64::NAN,
            sm_clock_mhz: f64::NAN,
            note: format!("forced timeout: ended as expected with {} after {ms:.1} ms (bound {timeout_ms} ms per wait)", status_text(st)),
        })
    } else {
        Err(Failure::Point(format!("forced timeout: the launch ended with status {st} after {ms:.1} ms, expected TIMEOUT")))
    }
}

/// Runs one point: `warmup + repeats` launches (one launch for a forced timeout).
fn run_point(s: &Session, dev: &Device, pt: &Point, args: &Args) -> Result<Measured, Failure> {
    if let Some(why) = pt.invalid() {
        return Err(Failure::Point(why));
    }
    let name = probe_kernel_name(pt.word, pt.exchange);
    let f = s.function(name).map_err(Failure::Point)?;
    let smem = one_cta_per_sm(f, dev, pt)?;
    let threads = pt.threads();
    let words_bytes = pt.chunks as usize * 16;
    let exchange = DeviceMem::new(2 * words_bytes)?;
    let status_mem = DeviceMem::new(16)?;
    let clocks = DeviceMem::new(32)?;
    let timeout_ms = if pt.forced_timeout { args.forced_timeout_ms } else { args.timeout_ms };
    let params = probe_params(pt, args.steps, timeout_ms, (&exchange, &status_mem, &clocks));
    let cluster = pt.exchange.cluster_size() as u32;
    let mut attr = LaunchAttribute { id: ATTR_CLUSTER_DIMENSION, pad: [0; 4], value: [0; 8] };
    attr.value[0] = cluster as u64 | (1u64 << 32); // x = cluster, y = 1
    attr.value[1] = 1; // z = 1
    let config = LaunchConfig { grid: [pt.ctas, 1, 1], block: [threads, 1, 1], shared_bytes: smem, stream: s.stream, attrs: &mut attr, num_attrs: 1 };
    if cluster > 1 {
        let mut n: c_int = 0;
        // SAFETY: a valid launch configuration and out pointer.
        check("cuOccupancyMaxActiveClusters", unsafe { cuOccupancyMaxActiveClusters(&mut n, f, &config) })?;
        if (n as u32) < pt.ctas / cluster {
            return Err(Failure::Point(format!("only {n} clusters of {cluster} can be co-resident, need {}", pt.ctas / cluster)));
        }
    }
    let launches = if pt.forced_timeout { 1 } else { args.warmup + args.repeats.max(5) };
    let mut samples = Samples::default();
    let mut note = String::new();
    for r in 0..launches {
        for (mem, words) in [(&exchange, 2 * words_bytes / 4), (&status_mem, 4), (&clocks, 8)] {
            // SAFETY: allocations of at least `words` 32-bit words, on this session's stream.
            check("cuMemsetD32Async", unsafe { cuMemsetD32Async(mem.0, 0, words, s.stream) })?;
        }
        let mut arg: *mut c_void = &params as *const ProbeParams as *mut c_void;
        // SAFETY: live events and stream.
        check("cuEventRecord", unsafe { cuEventRecord(s.start, s.stream) })?;
        // SAFETY: `params` is the kernel's parameter struct, its buffers live until the launch
        // completes (we wait for it below); the driver copies the parameters before returning.
        let launched = unsafe {
            if cluster > 1 {
                cuLaunchKernelEx(&config, f, &mut arg, std::ptr::null_mut())
            } else {
                cuLaunchCooperativeKernel(f, pt.ctas, 1, 1, threads, 1, 1, smem, s.stream, &mut arg)
            }
        };
        if launched != 0 {
            let call = if cluster > 1 { "cuLaunchKernelEx" } else { "cuLaunchCooperativeKernel" };
            let e = DriverError { call, code: launched }.to_string();
            // A refused configuration leaves the context usable; anything else may be a sticky
            // error of an earlier launch.
            return Err(if REFUSED_LAUNCH.contains(&launched) { Failure::Point(e) } else { Failure::Driver(e) });
        }
        // SAFETY: live events and stream.
        check("cuEventRecord", unsafe { cuEventRecord(s.stop, s.stream) })?;
        wait_event(s.stop, Duration::from_secs(args.launch_timeout_s))?;
        let mut ms = 0f32;
        // SAFETY: both events completed.
        check("cuEventElapsedTime", unsafe { cuEventElapsedTime(&mut ms, s.start, s.stop) })?;
        let st = status_mem.read::<u32>(1)?[0];
        if pt.forced_timeout {
            return forced_timeout_verdict(st, ms, timeout_ms);
        }
        if st != status::OK {
            return Err(Failure::Point(format!("status {}", status_text(st))));
        }
        let c = clocks.read::<u64>(4)?;
        if r >= args.warmup {
            samples.add(ms, &c, args.steps);
        }
        if r + 1 == launches {
            note = verify(&exchange, pt, args.steps)?.map_err(Failure::Point)?;
        }
    }
    Ok(samples.measured(note))
}

/// The timed launches of a point: µs per step by the CUDA events, and by the kernel's global
/// timer with the SM clock it saw.
#[derive(Default)]
struct Samples {
    us: Vec<f64>,
    timer_us: Vec<f64>,
    mhz: Vec<f64>,
}

impl Samples {
    /// One launch of `steps` steps: `ms` by the events, `clocks` the kernel's
    /// `[clock start, timer start, clock end, timer end]`.
    fn add(&mut self, ms: f32, clocks: &[u64], steps: u32) {
        self.us.push(ms as f64 * 1e3 / steps as f64);
        let dns = clocks[3].saturating_sub(clocks[1]) as f64;
        if dns > 0.0 {
            self.timer_us.push(dns / 1e3 / steps as f64);
            self.mhz.push(clocks[2].saturating_sub(clocks[0]) as f64 / dns * 1e3);
        }
    }

    /// The medians (NaN where there is no sample), with `note`.
    fn measured(self, note: String) -> Measured {
        let med = |v: Vec<f64>| if v.is_empty() { f64::NAN } else { sprnn_bench::median(v) };
        Measured { us_per_step: med(self.us), timer_us_per_step: med(self.timer_us), sm_clock_mhz: med(self.mhz), note }
    }
}

/// Checks the final exchange buffer: every word tagged with the last step, every value equal to
/// it. `Ok(Err(..))` describes a wrong word.
fn verify(exchange: &DeviceMem, pt: &Point, steps: u32) -> Result<Result<String, String>, DriverError> {
    let words = pt.chunks as usize * 16 / pt.word.bytes();
    let want = (steps & 0xFFFF) as u64;
    let offset = (steps % 2) as u64 * pt.chunks as u64 * 16;
    match pt.word {
        ProbeWord::Tagged32 => {
            for (i, w) in exchange.read_at::<u32>(offset, words)?.into_iter().enumerate() {
                if (w >> 16) as u64 != want || (w & 0xFFFF) as u64 != want {
                    return Ok(Err(format!("word {i} is {w:#010x}, expected tag and value {want}")));
                }
            }
        }
        ProbeWord::Tagged64 => {
            for (i, w) in exchange.read_at::<u64>(offset, words)?.into_iter().enumerate() {
                if (0..4).any(|lane| (w >> (16 * lane)) & 0xFFFF != want) {
                    return Ok(Err(format!("word {i} is {w:#018x}, expected tag and values {want}")));
                }
            }
        }
    }
    Ok(Ok(format!("checked: {words} words tagged {want} with values {want}")))
}

// ---------------------------------------------------------------------------------------------

/// Today's date, UTC, as YYYY-MM-DD.
fn utc_date() -> String {
    let days = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() / 86_400).unwrap_or(0) as i64;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + if m <= 2 { 1 } else { 0 };
    format!("{y:04}-{m:02}-{d:02}")
}

/// One line of `nvidia-smi --query-gpu=FIELDS` for GPU 0, if nvidia-smi runs.
fn smi(fields: &str) -> Option<String> {
    let out = std::process::Command::new("nvidia-smi").args([&format!("--query-gpu={fields}"), "--format=csv,noheader", "-i", "0"]).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).lines().next().unwrap_or("").trim().to_string())
}

fn fmt(x: f64, digits: usize) -> String {
    if x.is_finite() { format!("{x:.digits$}") } else { String::new() }
}

/// The sweeps `--all` or `--sweeps` names; exits with status 2 on an unknown name or none.
fn chosen_sweeps(args: &Args) -> Vec<&'static str> {
    let sweeps: Vec<&'static str> = if args.all {
        SWEEPS.to_vec()
    } else {
        let mut v = Vec::new();
        for s in &args.sweeps {
            match SWEEPS.iter().find(|&&n| n == s.as_str()) {
                Some(&n) => v.push(n),
                None => {
                    eprintln!("sprnn-probe: unknown sweep {s} (any of {})", SWEEPS.join(", "));
                    std::process::exit(2);
                }
            }
        }
        v
    };
    if sweeps.is_empty() {
        eprintln!("sprnn-probe: nothing to do: give --all or --sweeps LIST (see --help)");
        std::process::exit(2);
    }
    sweeps
}

/// Runs `pt` in `session` (opened on first use; exits with status 1 when it cannot be): the
/// measurement and its note, or `None` and why not. After a driver error the context is reset
/// and `session` emptied, so the next point starts a new one.
fn measure_point(session: &mut Option<Session>, dev: &Device, pt: &Point, args: &Args) -> (Option<Measured>, String) {
    let result = if pt.exchange != ProbeExchange::Global && dev.cc.0 < 9 {
        Err(Failure::Point("not run: thread-block clusters need sm_90".into()))
    } else {
        if session.is_none() {
            match Session::open(dev.cc) {
                Ok((s, small)) => {
                    if !small {
                        eprintln!("sprnn-probe: loaded the whole PTX (the probe entries alone did not load)");
                    }
                    *session = Some(s)
                }
                Err(e) => {
                    eprintln!("sprnn-probe: cannot set up the device: {e}");
                    std::process::exit(1);
                }
            }
        }
        run_point(session.as_ref().unwrap(), dev, pt, args)
    };
    match result {
        Ok(m) => {
            let note = m.note.clone();
            (Some(m), note)
        }
        Err(Failure::Point(e)) => (None, e),
        Err(Failure::Driver(e)) => {
            // The context may be broken (a sticky error): reset it and start a new one for the
            // next point.
            *session = None;
            // SAFETY: no handle of the old context is used after this.
            let reset = unsafe { cuDevicePrimaryCtxReset_v2(0) };
            (None, format!("{e} (context reset: {})", error_name(reset)))
        }
    }
}

/// The rows-file row and the table line of `pt`'s measurement `m` (or `note` saying why
/// none), with the run's `[gpu, driver, date]`.
fn point_report(pt: &Point, m: Option<&Measured>, note: &str, args: &Args, [gpu, driver, date]: [&str; 3]) -> (String, String) {
    let (us, tus, mhz) = m.map_or((f64::NAN, f64::NAN, f64::NAN), |m| (m.us_per_step, m.timer_us_per_step, m.sm_clock_mhz));
    let (us, tus, mhz) = (fmt(us, 3), fmt(tus, 3), fmt(mhz, 0));
    let (sweep, variant, exchange, word, check) = (pt.sweep, &pt.variant, pt.exchange_name(), pt.word.name(), pt.check.name());
    let (ctas, threads, k, l2, chunks, bytes) = (pt.ctas, pt.threads(), pt.k(), pt.l2_polls(), pt.chunks, pt.bytes_per_cta());
    let (steps, commit, csv) = (args.steps, &args.commit, |s: &str| s.replace(',', ";"));
    let row = format!(
        "{sweep},{variant},{exchange},{word},{check},{ctas},{threads},{k},{l2},{chunks},{bytes},{steps},{us},{tus},{mhz},{},{},{date},{commit},{}",
        csv(gpu),
        csv(driver),
        csv(note)
    );
    let shown = if m.is_some() && !pt.forced_timeout { "" } else { note };
    let line = format!("{sweep:<8} {variant:<14} {exchange:<15} {word:<4} {check:>5} {ctas:>4} {k:>2} {l2:>3} {chunks:>6} {bytes:>8} {us:>9} {tus:>9} {mhz:>6}  {shown}");
    (row, line)
}


fn main() {
    let args = Args::parse();
    let sweeps = chosen_sweeps(&args);
    if args.steps < 2 || args.steps > 65_535 {
        eprintln!("sprnn-probe: --steps must be in 2..=65535 (16-bit tags)");
        std::process::exit(2);
    }
    let dev = match open_device() {
        Ok(Some(d)) => d,
        Ok(None) => {
            eprintln!("sprnn-probe: no CUDA device: nothing to measure");
            std::process::exit(2);
        }
        Err(e) => {
            eprintln!("sprnn-probe: {e}");
            std::process::exit(1);
        }
    };
    let gpu = args.gpu_name.clone().unwrap_or_else(|| dev.name.clone());
    let driver = args.driver.clone().unwrap_or_else(|| smi("driver_version").unwrap_or_default());
    let date = args.date.clone().unwrap_or_else(utc_date);
    let clocks = smi("clocks.sm,clocks.max.sm,clocks.applications.graphics,power.limit").unwrap_or_else(|| "nvidia-smi not available".into());
    println!(
        "sprnn-probe on {} (sm_{}{}, {} SMs, {} KB shared per SM); nvidia-smi clocks.sm, clocks.max.sm, application clock, power limit: {clocks}",
        dev.name,
        dev.cc.0,
        dev.cc.1,
        dev.sm_count,
        dev.smem_per_sm / 1024
    );
    let mut file = args.out.as_ref().map(|p| sprnn_bench::open_rows("sprnn-probe", p, HEADER));
    let mut session: Option<Session> = None;
    let mut table = Vec::new();
    let mut failures = 0;
    let t0 = Instant::now();
    for sweep in sweeps {
        for pt in sweep_points(sweep) {
            let (m, note) = measure_point(&mut session, &dev, &pt, &args);
            failures += usize::from(m.is_none());
            let (row, line) = point_report(&pt, m.as_ref(), &note, &args, [&gpu, &driver, &date]);
            if let Some(f) = file.as_mut() {
                writeln!(f, "{row}").unwrap();
                f.flush().unwrap();
            }
            eprintln!("{line}");
            table.push(line);
        }
    }
    drop(session);
    println!("{:<8} {:<14} {:<15} {:<4} {:>5} {:>4} {:>2} {:>3} {:>6} {:>8} {:>9} {:>9} {:>6}  note", "sweep", "variant", "exchange", "word", "check", "ctas", "k", "l2", "chunks", "B/CTA", "us/step", "timer_us", "MHz");
    for l in &table {
        println!("{l}");
    }
    println!("{} points, {failures} failed, {:.1} s", table.len(), t0.elapsed().as_secs_f64());
    if failures > 0 {
        std::process::exit(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_point_is_valid_and_in_the_headline_geometry() {
        for sweep in SWEEPS {
            for pt in sweep_points(sweep) {
                assert_eq!(pt.invalid(), None, "{pt:?}");
                assert!(probe_smem_bytes(pt.chunks as usize) <= 200 * 1024, "{pt:?}");
                assert!(pt.words_per_cta() * pt.word.bytes() as u32 * pt.ctas == pt.chunks * 16, "{pt:?}");
            }
        }
        // The headline vector: 9216 values; w32 = 36 KB, 18 rows x 4 lanes per CTA; w64 = 24 KB.
        assert_eq!(headline_chunks(ProbeWord::Tagged32), 2304);
        assert_eq!(headline_chunks(ProbeWord::Tagged64), 1536);
        let h = sweep_points("check").into_iter().find(|p| p.word == ProbeWord::Tagged32).unwrap();
        assert_eq!((h.words_per_cta(), h.k(), h.bytes_per_cta()), (72, 4, 288));
        let h = sweep_points("check").into_iter().find(|p| p.word == ProbeWord::Tagged64).unwrap();
        assert_eq!((h.words_per_cta(), h.k(), h.bytes_per_cta()), (24, 3, 192));
        let c = sweep_points("cluster").into_iter().find(|p| p.variant == "k4").unwrap();
        assert_eq!((c.k(), c.l2_polls()), (4, 2));
    }

    #[test]
    fn the_probe_entries_extract_from_the_embedded_ptx() {
        for (ptx, sm90) in [(sprnn::ptx::SM90.as_str(), true), (sprnn::ptx::SM80.as_str(), false)] {
            let names: Vec<&str> = kernels(sm90).iter().map(|&(w, e)| probe_kernel_name(w, e)).collect();
            assert_eq!(names.len(), if sm90 { 6 } else { 2 });
            let small = probe_module_ptx(ptx, &names).expect("probe entries extract");
            for n in &names {
                assert!(small.contains(&format!(".visible .entry {n}(")), "{n}");
            }
            assert!(small.contains(".extern .shared .align 16 .b8 SPRNN_DYN_SMEM[];"));
            assert!(small.contains(".target sm_"));
            assert!(!small.contains("sprnn_recurrent"));
            assert!(small.len() < ptx.len() / 10);
            // Where ptxas is at hand (`PTXAS`, as `scripts/setup.sh` sets it), the small module
            // must assemble on its own.
            if let Some(ptxas) = std::env::var_os("PTXAS").filter(|p| !p.is_empty()) {
                let arch = if sm90 { "sm_90" } else { "sm_80" };
                let file = std::env::temp_dir().join(format!("sprnn-probe-{}-{arch}.ptx", std::process::id()));
                std::fs::write(&file, &small).unwrap();
                let out = std::process::Command::new(ptxas).arg(format!("-arch={arch}")).arg(&file).arg("-o").arg(file.with_extension("cubin")).output().unwrap();
                let _ = std::fs::remove_file(&file);
                let _ = std::fs::remove_file(file.with_extension("cubin"));
                assert!(out.status.success(), "ptxas {arch}: {}", String::from_utf8_lossy(&out.stderr));
            }
        }
        assert!(probe_module_ptx(&sprnn::ptx::SM80, &["sprnn_probe_cluster_tagged_w32"]).is_none());
    }

    #[test]
    fn dates_and_launch_structs() {
        assert_eq!(utc_date().len(), 10);
        assert_eq!(std::mem::size_of::<LaunchAttribute>(), 72);
        assert_eq!(std::mem::size_of::<LaunchConfig>(), 56);
        assert_eq!(std::mem::offset_of!(LaunchConfig, stream), 32);
    }
}
