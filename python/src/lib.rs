//! `sprnn._native`: the compiled half of the `sprnn` Python package.
//!
//! The pure-Python package (`python/sprnn/__init__.py`) turns `torch.nn.RNN/GRU/LSTM` modules
//! into per-layer, per-direction recurrent parts and does the dense work (the input projection
//! `W_ih x + b_ih`, reversing and joining directions) with the caller's own array library. This
//! module holds what needs the `sprnn` crate:
//!
//! - [`Recurrent`]: one pruned `W_hh` with its `b_hh`, on the host: the planner's answer for a
//!   batch ([`Recurrent::plan`], no GPU needed), the CPU reference ([`Recurrent::reference`]),
//!   and the upload to a GPU ([`Recurrent::to_gpu`]);
//! - [`GpuLayer`]: a layer resident on a GPU, run on device addresses and a raw stream that
//!   belong to the caller (PyTorch's tensors and current stream) through
//!   [`sprnn::SparseRecurrentLayer::forward_raw`], with the GIL released while the GPU works;
//! - the exceptions: every `sprnn::Error` becomes one of them with the same message, and a
//!   panic becomes [`SprnnError`] instead of crossing into Python.
//!
//! Arrays cross the boundary as little-endian f32 `bytes` (host data) or as integer device
//! addresses (GPU data), so the module needs neither numpy nor libtorch and one abi3 wheel
//! serves every CPython from 3.9.
#![deny(missing_docs)]

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Mutex;
use std::time::Duration;

use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};
use sprnn::layout::{self, DeviceInfo, Plan, PlanError, PlanOptions};
use sprnn::raw::{RawForward, RawStream};
use sprnn::reference::{self, Precision};
use sprnn::{Cell, Csr, Error, Gpu, LayerOptions, SparseRecurrentLayer};

create_exception!(_native, SprnnError, PyException, "Base class of every error sprnn raises; the message is the Rust library's.");
create_exception!(
    _native,
    DoesNotFit,
    SprnnError,
    "The layer does not fit on the GPU (registers, shared memory, co-residency); the message says by how much and what would fit."
);
create_exception!(_native, NoDevice, SprnnError, "No usable CUDA driver or device (or one older than sm_80).");
create_exception!(_native, InvalidInput, SprnnError, "An argument has the wrong shape, size or value; the message names it.");
create_exception!(_native, KernelTimeout, SprnnError, "A CTA of the persistent kernel waited longer than the layer's bound.");

/// The Python exception for a Rust error, with the same message.
fn py_err(e: Error) -> PyErr {
    let msg = e.to_string();
    // A model's error names its layer around the kernel's own: the class is the kernel's.
    match e.root() {
        Error::Plan(p) => plan_err(p, msg),
        Error::NotResident { .. } | Error::ClusterNotResident { .. } => DoesNotFit::new_err(msg),
        Error::NoDriver { .. } | Error::NoDevice { .. } | Error::UnsupportedGpu { .. } => NoDevice::new_err(msg),
        Error::Input { .. } | Error::Sparse(_) | Error::WrongDevice { .. } => InvalidInput::new_err(msg),
        Error::Timeout { .. } => KernelTimeout::new_err(msg),
        _ => SprnnError::new_err(msg),
    }
}

/// Refusals for lack of room are [`DoesNotFit`]; the rest are bad input.
fn plan_err(e: &PlanError, msg: String) -> PyErr {
    match e {
        PlanError::DoesNotFit { .. }
        | PlanError::SharedMemory { .. }
        | PlanError::NotCoResident { .. }
        | PlanError::RowTooLong { .. }
        | PlanError::ClusterMode { .. } => {
            DoesNotFit::new_err(msg)
        }
        _ => InvalidInput::new_err(msg),
    }
}

/// Runs `f`, turning a panic into [`SprnnError`] so that none unwinds into Python.
fn guarded<T>(f: impl FnOnce() -> PyResult<T>) -> PyResult<T> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|p| {
        let what = p.downcast_ref::<&str>().map(|s| s.to_string()).or_else(|| p.downcast_ref::<String>().cloned()).unwrap_or_default();
        Err(SprnnError::new_err(format!("internal error in sprnn (please report it): {what}")))
    })
}

fn input(name: &str, problem: String) -> PyErr {
    InvalidInput::new_err(format!("invalid {name}: {problem}"))
}

/// Little-endian f32 bytes as values, `want` of them.
fn f32s(name: &str, b: &[u8], want: usize) -> PyResult<Vec<f32>> {
    if b.len() != 4 * want {
        return Err(input(name, format!("{} bytes, expected {want} f32 values ({} bytes)", b.len(), 4 * want)));
    }
    Ok(b.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
}

fn to_bytes<'py>(py: Python<'py>, v: &[f32]) -> Bound<'py, PyBytes> {
    let raw: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    PyBytes::new(py, &raw)
}

fn cell_of(name: &str) -> PyResult<Cell> {
    Cell::from_name(name).ok_or_else(|| input("cell", format!("{name:?}; one of rnn_tanh, rnn_relu, gru, lstm")))
}

/// Every GPU opened so far, by ordinal: opening one loads the PTX, so layers share it.
static GPUS: Mutex<Vec<Gpu>> = Mutex::new(Vec::new());

fn gpu(ordinal: u32) -> Result<Gpu, Error> {
    let mut gpus = GPUS.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(g) = gpus.iter().find(|g| g.ordinal() == ordinal) {
        return Ok(g.clone());
    }
    let g = Gpu::new(ordinal)?;
    gpus.push(g.clone());
    Ok(g)
}

/// The device to plan for: a preset name (`"h200"`, `"a100"`), a CUDA ordinal, or `None`:
/// device 0 when there is one, else the H200 preset.
fn device_info(device: Option<&Bound<'_, PyAny>>) -> PyResult<(DeviceInfo, String)> {
    match device {
        None => match gpu(0) {
            Ok(g) => Ok((g.info().clone(), format!("cuda:0 ({})", g.info().name))),
            Err(Error::NoDevice { .. } | Error::NoDriver { .. }) => Ok((DeviceInfo::h200(), "h200 preset (no CUDA device)".into())),
            Err(e) => Err(py_err(e)),
        },
        Some(d) => {
            if let Ok(ordinal) = d.extract::<u32>() {
                let g = gpu(ordinal).map_err(py_err)?;
                return Ok((g.info().clone(), format!("cuda:{ordinal} ({})", g.info().name)));
            }
            match d.extract::<String>()?.as_str() {
                "h200" => Ok((DeviceInfo::h200(), "h200 preset".into())),
                "a100" => Ok((DeviceInfo::a100(), "a100 preset".into())),
                other => Err(input("device", format!("{other:?}; a CUDA ordinal, \"h200\" or \"a100\""))),
            }
        }
    }
}

fn plan_dict<'py>(py: Python<'py>, p: &Plan, d: &DeviceInfo) -> PyResult<Bound<'py, PyDict>> {
    let v = PyDict::new(py);
    v.set_item("fits", true)?;
    v.set_item("grid", p.grid())?;
    v.set_item("ctas_per_sm", p.ctas_per_sm())?;
    v.set_item("threads_per_cta", p.threads_per_cta())?;
    v.set_item("threads_per_row", p.threads_per_row())?;
    v.set_item("units_per_cta", p.units_per_cta())?;
    v.set_item("list_len", p.list_len())?;
    v.set_item("shared_words", p.shared_words())?;
    v.set_item("batch_limit", p.batch_limit())?;
    v.set_item("batch_tile", p.batch_tile())?;
    v.set_item("hidden_state", if p.hidden_f32() { "f32" } else { "f16" })?;
    v.set_item("products", if p.products() == layout::Products::F16 { "f16" } else { "f32" })?;
    v.set_item("smem_bytes", p.smem_bytes())?;
    v.set_item("smem_bytes_available", d.shared_per_cta(p.ctas_per_sm()))?;
    v.set_item("registers_per_thread", p.registers_per_thread())?;
    v.set_item("registers_per_sm_available", d.registers_per_sm)?;
    v.set_item("nnz", p.nnz())?;
    v.set_item("max_row_nnz", p.max_row_nnz())?;
    v.set_item("cta_nnz_max", p.cta_nnz().iter().copied().max().unwrap_or(0))?;
    Ok(v)
}

fn refusal_dict<'py>(py: Python<'py>, e: &PlanError) -> PyResult<Bound<'py, PyDict>> {
    let v = PyDict::new(py);
    v.set_item("fits", false)?;
    v.set_item("error", e.to_string())?;
    let kind = match e {
        PlanError::DoesNotFit { need_regs, have_regs, fit_density, fit_batch, .. } => {
            v.set_item("need_regs", need_regs)?;
            v.set_item("have_regs", have_regs)?;
            v.set_item("fit_density", fit_density)?;
            v.set_item("fit_batch", fit_batch)?;
            "DoesNotFit"
        }
        PlanError::SharedMemory { need_bytes, have_bytes, max_batch, .. } => {
            v.set_item("need_bytes", need_bytes)?;
            v.set_item("have_bytes", have_bytes)?;
            v.set_item("max_batch", max_batch)?;
            "SharedMemory"
        }
        PlanError::NotCoResident { .. } => "NotCoResident",
        PlanError::RowTooLong { .. } => "RowTooLong",
        PlanError::ValueOutOfRange { .. } => "ValueOutOfRange",
        PlanError::HiddenTooLarge { .. } => "HiddenTooLarge",
        PlanError::Shape { .. } => "Shape",
        PlanError::ZeroBatch => "ZeroBatch",
        _ => "Other",
    };
    v.set_item("kind", kind)?;
    Ok(v)
}

/// One direction of one recurrent layer on the host: the pruned `W_hh` (zeros dropped) and
/// `b_hh`, for a cell.
#[pyclass(module = "sprnn._native", frozen)]
struct Recurrent {
    cell: Cell,
    w_hh: Csr,
    b_hh: Vec<f32>,
}

#[pymethods]
impl Recurrent {
    /// `Recurrent(cell, hidden, w_hh, b_hh)`: `cell` one of `rnn_tanh`, `rnn_relu`, `gru`,
    /// `lstm`; `w_hh` PyTorch's `weight_hh` (`G·H × H`, row-major) and `b_hh` (`G·H`) as
    /// little-endian f32 bytes. Zeros of `w_hh` are the pruned entries.
    #[new]
    fn new(cell: &str, hidden: usize, w_hh: &[u8], b_hh: &[u8]) -> PyResult<Self> {
        guarded(|| {
            let cell = cell_of(cell)?;
            let rows = cell.gates() * hidden;
            let dense = f32s("w_hh", w_hh, rows * hidden)?;
            let b_hh = f32s("b_hh", b_hh, rows)?;
            if let Some(i) = dense.iter().chain(&b_hh).position(|x| !x.is_finite()) {
                let name = if i < dense.len() { "w_hh" } else { "b_hh" };
                return Err(input(name, format!("element {} is not finite", i % dense.len().max(1))));
            }
            let w_hh = Csr::from_dense(&dense, rows, hidden).map_err(|e| py_err(e.into()))?;
            Ok(Recurrent { cell, w_hh, b_hh })
        })
    }

    /// Cell name.
    #[getter]
    fn cell(&self) -> &'static str {
        self.cell.name()
    }

    /// Hidden size H.
    #[getter]
    fn hidden(&self) -> usize {
        self.w_hh.cols()
    }

    /// Nonzeros of `W_hh`.
    #[getter]
    fn nnz(&self) -> usize {
        self.w_hh.nnz()
    }

    /// The planner's answer for batch `batch` on `device` (a CUDA ordinal, `"h200"`, `"a100"`;
    /// default: device 0, or the H200 preset without a GPU): a dict with `fits` and either the
    /// launch shape and registers, or `error`, `kind` and what would fit. Needs no GPU for the
    /// presets.
    #[pyo3(signature = (batch, device = None))]
    fn plan<'py>(&self, py: Python<'py>, batch: usize, device: Option<&Bound<'py, PyAny>>) -> PyResult<Bound<'py, PyDict>> {
        guarded(|| {
            let (info, name) = device_info(device)?;
            let d = match layout::plan(&self.w_hh, self.cell, batch, &info, &PlanOptions::default()) {
                Ok(p) => plan_dict(py, &p, &info)?,
                Err(e) => refusal_dict(py, &e)?,
            };
            d.set_item("device", name)?;
            Ok(d)
        })
    }

    /// The CPU reference over `steps` steps of batch `batch`: `u` is `[T][B][G·H]` (`W_ih x +
    /// b_ih`), `h0`/`c0` `[B][H]` or `None` (zeros), all little-endian f32 bytes; `precision`
    /// `"f32"`, `"f64"` or `"device"` (the GPU's fp16 roundings); `steps_done` numbers the steps
    /// as a continuation (only `"device"` depends on it). Returns `(h, c)`: `h` `[T][B][H]`,
    /// `c` LSTM's final `[B][H]` or `None`, as bytes.
    #[pyo3(signature = (u, steps, batch, h0 = None, c0 = None, precision = "f32", steps_done = 0))]
    #[allow(clippy::too_many_arguments)]
    fn reference<'py>(
        &self,
        py: Python<'py>,
        u: &[u8],
        steps: usize,
        batch: usize,
        h0: Option<&[u8]>,
        c0: Option<&[u8]>,
        precision: &str,
        steps_done: u64,
    ) -> PyResult<(Bound<'py, PyBytes>, Option<Bound<'py, PyBytes>>)> {
        let precision = match precision {
            "f32" => Precision::F32,
            "f64" => Precision::F64,
            "device" => Precision::device_faithful(sprnn::layout::default_products(self.cell, false)),
            p => return Err(input("precision", format!("{p:?}; one of \"f32\", \"f64\", \"device\""))),
        };
        let h = self.w_hh.cols();
        let per_step = batch.checked_mul(self.w_hh.rows()).ok_or_else(|| input("batch", format!("{batch} overflows")))?;
        let u = f32s("u", u, steps.checked_mul(per_step).ok_or_else(|| input("steps", format!("{steps} overflows")))?)?;
        let h0 = h0.map(|b| f32s("h0", b, batch * h)).transpose()?;
        let c0 = c0.map(|b| f32s("c0", b, batch * h)).transpose()?;
        let (cell, w_hh, b_hh) = (self.cell, &self.w_hh, &self.b_hh[..]);
        let out = py.allow_threads(|| {
            guarded(|| {
                reference::forward_u(cell, w_hh, b_hh, reference::Sequences::new(&u, steps, batch).with_state(h0.as_deref(), c0.as_deref()).continuing(steps_done), precision)
                    .map_err(|e| InvalidInput::new_err(e.to_string()))
            })
        })?;
        Ok((to_bytes(py, &out.h), out.c.as_deref().map(|c| to_bytes(py, c))))
    }

    /// Plans and uploads the layer for batch `batch` on CUDA device `device` (the device's
    /// primary context, PyTorch's). Raises [`DoesNotFit`] when it cannot run there,
    /// [`NoDevice`] without a usable GPU.
    #[pyo3(signature = (batch, device = 0, timeout_ms = 1000.0))]
    fn to_gpu(&self, py: Python<'_>, batch: usize, device: u32, timeout_ms: f64) -> PyResult<GpuLayer> {
        if !(timeout_ms.is_finite() && timeout_ms > 0.0) {
            return Err(input("timeout_ms", format!("{timeout_ms}; must be positive")));
        }
        let (cell, w_hh, b_hh) = (self.cell, &self.w_hh, &self.b_hh[..]);
        let layer = py.allow_threads(|| {
            guarded(|| {
                let g = gpu(device).map_err(py_err)?;
                let opts = LayerOptions { timeout: Duration::from_secs_f64(timeout_ms / 1e3), ..LayerOptions::default() };
                SparseRecurrentLayer::new(&g, cell, w_hh, b_hh, batch, &opts).map_err(py_err)
            })
        })?;
        Ok(GpuLayer { layer: Mutex::new(layer), device })
    }
}

/// A recurrent layer resident on a GPU, for one batch size, run on the caller's device memory.
#[pyclass(module = "sprnn._native", frozen)]
struct GpuLayer {
    layer: Mutex<SparseRecurrentLayer>,
    device: u32,
}

#[pymethods]
impl GpuLayer {
    /// Batch size B.
    #[getter]
    fn batch(&self) -> usize {
        self.lock().batch()
    }

    /// Hidden size H.
    #[getter]
    fn hidden(&self) -> usize {
        self.lock().hidden()
    }

    /// CUDA ordinal.
    #[getter]
    fn device(&self) -> u32 {
        self.device
    }

    /// The launch: `{"grid", "threads_per_cta", "threads_per_row", "smem_bytes", "kernel",
    /// "registers_per_thread"}`.
    fn launch_shape<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let l = self.lock();
        let sprnn::LaunchShape { ctas: grid, threads_per_cta: threads, threads_per_row: tpr, smem_bytes: smem, kernel } = l.shape();
        let d = PyDict::new(py);
        d.set_item("grid", grid)?;
        d.set_item("threads_per_cta", threads)?;
        d.set_item("threads_per_row", tpr)?;
        d.set_item("smem_bytes", smem)?;
        d.set_item("kernel", kernel)?;
        d.set_item("registers_per_thread", l.registers_per_thread())?;
        Ok(d)
    }

    /// Runs `steps` steps on device memory (integer addresses, `0` for none; see
    /// `sprnn::raw::RawForward` for shapes): reads `u` (`[T][B][G·H]`, fp16 when `u_f16`, else
    /// f32), `h0`/`c0` (`[B][H]` f32), writes `h_out` (`[T][B][H]` f32) and LSTM's `c_out`
    /// (`[B][H]` f32) in place, on CUDA stream `stream` (a `cudaStream_t` as an integer, 0
    /// for the legacy default stream), after the work already queued there; waits for it with
    /// the GIL released. Returns the kernel's time in ms.
    ///
    /// The caller (the `sprnn` package) must pass live allocations of those sizes on this
    /// layer's device, untouched by other streams until the call returns.
    #[pyo3(signature = (steps, u, u_f16, h0, c0, h_out, c_out, stream, steps_done = 0))]
    #[allow(clippy::too_many_arguments)]
    fn forward(&self, py: Python<'_>, steps: usize, u: u64, u_f16: bool, h0: u64, c0: u64, h_out: u64, c_out: u64, stream: usize, steps_done: u64) -> PyResult<f32> {
        let args = RawForward { steps, u, u_f16, h0, c0, h_out, c_out, steps_done };
        self.run_raw(py, &args, stream, |run| run())
    }

    /// [`GpuLayer::forward`]'s work, `repeats` times in a loop on the Rust side: each call's
    /// wall time in seconds (kernel, launch preparation and the wait, without the Python
    /// boundary), measured with the GIL released. The benchmark compares it with the wall time
    /// of `forward` called from Python. Same contract as `forward`.
    #[pyo3(signature = (steps, u, u_f16, h0, c0, h_out, c_out, stream, repeats))]
    #[allow(clippy::too_many_arguments)]
    fn time_forward(&self, py: Python<'_>, steps: usize, u: u64, u_f16: bool, h0: u64, c0: u64, h_out: u64, c_out: u64, stream: usize, repeats: usize) -> PyResult<Vec<f64>> {
        let args = RawForward { steps, u, u_f16, h0, c0, h_out, c_out, steps_done: 0 };
        self.run_raw(py, &args, stream, |run| {
            (0..repeats)
                .map(|_| {
                    let start = std::time::Instant::now();
                    run()?;
                    Ok(start.elapsed().as_secs_f64())
                })
                .collect()
        })
    }
}

impl GpuLayer {
    fn lock(&self) -> std::sync::MutexGuard<'_, SparseRecurrentLayer> {
        self.layer.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `work` with the layer locked and the GIL released: `work` gets `run`, which runs `args`
    /// on CUDA stream `stream` once and waits for it (the kernel's time in ms), as often as it
    /// calls it. The contract of [`GpuLayer::forward`].
    fn run_raw<T: Send>(
        &self,
        py: Python<'_>,
        args: &RawForward,
        stream: usize,
        work: impl FnOnce(&mut dyn FnMut() -> PyResult<f32>) -> PyResult<T> + Send,
    ) -> PyResult<T> {
        py.allow_threads(|| {
            guarded(|| {
                let mut layer = self.lock();
                let mut run = || {
                    // SAFETY: the Python package passes the data pointers of CUDA tensors it
                    // keeps alive across this call, of the sizes RawForward needs (it checks
                    // shapes, dtypes and devices first), and PyTorch's current stream of the
                    // same device, whose runtime context is the primary context the layer's Gpu
                    // retains.
                    unsafe { layer.forward_raw(args, stream as RawStream) }.map_err(py_err)
                };
                work(&mut run)
            })
        })
    }
}

/// The CUDA device `ordinal` as a dict (name, compute capability, SMs, ...); raises
/// [`NoDevice`] without one.
#[pyfunction]
#[pyo3(signature = (ordinal = 0))]
fn device_info_dict(py: Python<'_>, ordinal: u32) -> PyResult<Bound<'_, PyDict>> {
    let g = guarded(|| gpu(ordinal).map_err(py_err))?;
    let i = g.info();
    let d = PyDict::new(py);
    d.set_item("name", &i.name)?;
    d.set_item("compute_capability", i.compute_capability)?;
    d.set_item("sm_count", i.sm_count)?;
    d.set_item("registers_per_sm", i.registers_per_sm)?;
    d.set_item("shared_per_sm", i.shared_per_sm)?;
    d.set_item("ptx", g.arch())?;
    Ok(d)
}

/// Whether a CUDA device sprnn can use is present (`False` without a driver or device).
#[pyfunction]
fn cuda_available() -> bool {
    guarded(|| Ok(gpu(0).is_ok())).unwrap_or(false)
}

/// The compiled half of the `sprnn` package.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add_class::<Recurrent>()?;
    m.add_class::<GpuLayer>()?;
    m.add_function(wrap_pyfunction!(device_info_dict, m)?)?;
    m.add_function(wrap_pyfunction!(cuda_available, m)?)?;
    m.add("SprnnError", py.get_type::<SprnnError>())?;
    m.add("DoesNotFit", py.get_type::<DoesNotFit>())?;
    m.add("NoDevice", py.get_type::<NoDevice>())?;
    m.add("InvalidInput", py.get_type::<InvalidInput>())?;
    m.add("KernelTimeout", py.get_type::<KernelTimeout>())?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
