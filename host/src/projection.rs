//! [`InputProjection`]: the input half of a recurrent layer, `U = W_ih · x + b_ih`, on the GPU
//! for every step and sequence at once, written where the recurrent kernel reads it.
//!
//! A recurrent layer's input part has no dependence between steps, so it is one matrix product
//! over all `T·B` input rows, done before the persistent kernel starts. `x` is `[T][B][I]` f32 on
//! the device (the model input, or the previous layer's output); the result is a
//! [`DeviceInput::F32`] of `[T][B][G·H]` values, gates in PyTorch's order, **without** `b_hh`
//! (the recurrent kernel adds it) — exactly the `U` of [`SparseRecurrentLayer`](crate::SparseRecurrentLayer). With `reverse`
//! the steps are written in reverse order (input step `t` to slot `T-1-t`), which is what the
//! reverse direction of a bidirectional layer runs over.
//!
//! # Two kernels, chosen by the storage of `W_ih`
//!
//! - [`Matrix::Dense`]: a tensor-core GEMM (`mma.m16n8k16`). `W_ih` is converted to fp16 once,
//!   on upload; `x` is rounded to fp16 as the kernel loads it; products and sums are f32, and
//!   `b_ih` is added in f32. Any shape works (edges are padded with zeros inside the kernel).
//!   The result differs from an exact product by the fp16 rounding of `x` and `W_ih`: per
//!   output at most about `2⁻¹⁰ · Σ_k |W_ih[j][k] · x[k]|` plus the f32 summation error. Values
//!   of `W_ih` beyond the fp16 range are refused; values of `x` beyond it become infinite.
//! - [`Matrix::Sparse`] (a pruned `W_ih` in CSR form): one thread per output, f32 values and
//!   f32 fused multiply-adds in column order — no fp16 rounding at all.
//!
//! [`InputProjection::project`] checks every shape before anything is launched and returns a
//! typed [`Error::Input`] naming the argument.

use cust::event::{Event, EventFlags};
use cust::memory::DeviceBuffer;
use cust::stream::Stream;
use sprnn_kernels::format::{
    projection_flags, projection_grid, projection_smem_bytes, ProjectionParams, ELEMENTWISE_THREADS, PROJECTION_CSR_KERNEL,
    PROJECTION_DENSE_KERNEL, PROJECTION_THREADS,
};

use crate::driver;
use crate::error::{cust_err, Error, Result};
use crate::gpu::Gpu;
use crate::args::{check_finite, check_len};
use crate::sparse::Matrix;
use crate::tensors::DeviceInput;

/// `W_ih` on the device, in the form its kernel reads.
enum Weights {
    /// `[G·H][I]` fp16 bits.
    Dense(DeviceBuffer<u16>),
    /// CSR: row pointer, column indices, f32 values.
    Csr { row_ptr: DeviceBuffer<u32>, col_idx: DeviceBuffer<u32>, values: DeviceBuffer<f32> },
}

/// `W_ih` and `b_ih` of one layer direction, uploaded once, projecting any number of input
/// sequences (see the [module docs](self)).
pub struct InputProjection {
    gpu: Gpu,
    input_size: usize,
    outputs: usize,
    weights: Weights,
    bias: DeviceBuffer<f32>,
}

impl std::fmt::Debug for InputProjection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InputProjection")
            .field("input_size", &self.input_size)
            .field("outputs", &self.outputs)
            .field("sparse", &self.is_sparse())
            .finish()
    }
}

/// Largest grid of the grid-stride kernels (they loop over the rest).
const MAX_ELEMENTWISE_GRID: usize = 1 << 20;

/// CTAs for a grid-stride kernel over `n` elements.
pub(crate) fn elementwise_grid(n: usize) -> u32 {
    n.div_ceil(ELEMENTWISE_THREADS).clamp(1, MAX_ELEMENTWISE_GRID) as u32
}

impl InputProjection {
    /// Uploads `w_ih` (`G·H × I`, dense or CSR) and `b_ih` (`G·H` values) to `gpu`.
    ///
    /// Errors ([`Error::Input`]): `b_ih` has the wrong length (`"b_ih"`) or a non-finite value;
    /// a dense `w_ih` value is not finite or overflows fp16 (|w| > 65504, `"w_ih"`); a size
    /// beyond the kernels' 32-bit indices (`G·H`, `I` or the nonzero count ≥ 2³², `"w_ih"`).
    pub fn new(gpu: &Gpu, w_ih: &Matrix, b_ih: &[f32]) -> Result<InputProjection> {
        let (outputs, input_size) = (w_ih.rows(), w_ih.cols());
        check_len("b_ih", b_ih.len(), outputs, "G*H")?;
        check_finite("b_ih", b_ih)?;
        let limit = u32::MAX as usize;
        if outputs >= limit || input_size >= limit {
            return Err(Error::Input { name: "w_ih", problem: format!("{outputs} x {input_size}: each side must be below 2^32") });
        }
        gpu.make_current()?;
        let alloc = cust_err("cuMemAlloc");
        let weights = match w_ih {
            Matrix::Dense(d) => {
                let mut bits = Vec::with_capacity(d.data().len());
                for (i, &v) in d.data().iter().enumerate() {
                    let h = half::f16::from_f32(v);
                    if !h.is_finite() {
                        let (r, c) = (i / input_size.max(1), i % input_size.max(1));
                        return Err(Error::Input {
                            name: "w_ih",
                            problem: format!("element ({r}, {c}) is {v}: the dense projection needs values within fp16's range (|w| <= 65504)"),
                        });
                    }
                    bits.push(h.to_bits());
                }
                Weights::Dense(DeviceBuffer::from_slice(&bits).map_err(alloc)?)
            }
            Matrix::Sparse(c) => {
                if c.nnz() >= limit {
                    return Err(Error::Input { name: "w_ih", problem: format!("{} nonzeros: must be below 2^32", c.nnz()) });
                }
                let row_ptr: Vec<u32> = c.row_ptr().iter().map(|&p| p as u32).collect();
                Weights::Csr {
                    row_ptr: DeviceBuffer::from_slice(&row_ptr).map_err(cust_err("cuMemAlloc"))?,
                    col_idx: DeviceBuffer::from_slice(c.col_idx()).map_err(cust_err("cuMemAlloc"))?,
                    values: DeviceBuffer::from_slice(c.values()).map_err(cust_err("cuMemAlloc"))?,
                }
            }
        };
        let bias = DeviceBuffer::from_slice(b_ih).map_err(cust_err("cuMemAlloc"))?;
        Ok(InputProjection { gpu: gpu.clone(), input_size, outputs, weights, bias })
    }

    /// Input size `I` (columns of `W_ih`).
    pub fn input_size(&self) -> usize {
        self.input_size
    }

    /// Outputs per input row, `G·H` (rows of `W_ih`).
    pub fn outputs(&self) -> usize {
        self.outputs
    }

    /// Whether `W_ih` is sparse (CSR kernel) rather than dense (tensor-core kernel).
    pub fn is_sparse(&self) -> bool {
        matches!(self.weights, Weights::Csr { .. })
    }

    /// Checks `steps`, `batch` and the length of `x`; returns the number of input rows `T·B`.
    fn check_shape(&self, x_len: usize, steps: usize, batch: usize) -> Result<usize> {
        if steps == 0 {
            return Err(Error::Input { name: "steps", problem: "0; a sequence needs at least one step".into() });
        }
        if batch == 0 {
            return Err(Error::Input { name: "batch", problem: "0; a batch needs at least one sequence".into() });
        }
        let limit = u32::MAX as usize;
        let rows = steps.checked_mul(batch).filter(|&r| r <= limit);
        let Some(rows) = rows.filter(|r| r.checked_mul(self.outputs).is_some_and(|n| n <= limit)) else {
            return Err(Error::Input {
                name: "steps",
                problem: format!(
                    "{steps} steps x batch {batch} x {} outputs is over the kernels' 32-bit index limit {limit}",
                    self.outputs
                ),
            });
        };
        let want_x = rows.checked_mul(self.input_size).ok_or(Error::Input { name: "x", problem: "T*B*I overflows usize".into() })?;
        check_len("x", x_len, want_x, "T*B*I")?;
        Ok(rows)
    }

    /// Checks one projection's shapes (see [`Self::project`]).
    fn check(&self, x_len: usize, steps: usize, batch: usize, out: &DeviceInput) -> Result<()> {
        let rows = self.check_shape(x_len, steps, batch)?;
        match out {
            DeviceInput::F32(b) => check_len("u", b.len(), rows * self.outputs, "T*B*G*H"),
            DeviceInput::F16(_) => Err(Error::Input { name: "u", problem: "an fp16 buffer; the projection writes f32 (DeviceInput::alloc_f32)".into() }),
        }
    }

    /// Enqueues `out = W_ih · x + b_ih` on `stream` and returns at once (crate-internal: the
    /// caller keeps `x` and `out` alive and waits for the stream).
    pub(crate) fn enqueue(&self, x: &DeviceBuffer<f32>, steps: usize, batch: usize, reverse: bool, out: &mut DeviceInput, stream: &Stream) -> Result<()> {
        self.check(x.len(), steps, batch, out)?;
        self.gpu.make_current()?;
        let (w, row_ptr, col_idx, kernel) = match &self.weights {
            Weights::Dense(w) => (w.as_device_ptr().as_raw(), 0, 0, PROJECTION_DENSE_KERNEL),
            Weights::Csr { row_ptr, col_idx, values } => (
                values.as_device_ptr().as_raw(),
                row_ptr.as_device_ptr().as_raw(),
                col_idx.as_device_ptr().as_raw(),
                PROJECTION_CSR_KERNEL,
            ),
        };
        let params = ProjectionParams {
            x: x.as_device_ptr().as_raw(),
            w,
            row_ptr,
            col_idx,
            bias: self.bias.as_device_ptr().as_raw(),
            out: out.address(),
            steps: steps as u32,
            batch: batch as u32,
            input: self.input_size as u32,
            outputs: self.outputs as u32,
            flags: if reverse { projection_flags::REVERSE_TIME } else { 0 },
            pad: 0,
        };
        let f = self.gpu.function(kernel)?;
        let rows = steps * batch;
        let (grid, block, smem) = if self.is_sparse() {
            (elementwise_grid(rows * self.outputs), ELEMENTWISE_THREADS as u32, 0)
        } else {
            (projection_grid(rows, self.outputs) as u32, PROJECTION_THREADS as u32, projection_smem_bytes() as u32)
        };
        // SAFETY: `params` is the projection kernels' parameter struct; `x`, `out`, the weights
        // and the bias have the sizes it states (checked above), and the caller keeps `x` and
        // `out` alive until the stream has passed the kernel.
        Ok(unsafe { driver::launch(&f, grid, block, smem, stream, &params) }?)
    }

    /// Computes `out = W_ih · x + b_ih` for `steps` steps of `batch` sequences on `stream`
    /// (default: the GPU's stream) and waits for it. `x` is `[T][B][I]` f32; `out` a
    /// [`DeviceInput::F32`] of `[T][B][G·H]` values ([`DeviceInput::alloc_f32`]); with `reverse`
    /// input step `t` is written to step `T-1-t`. Returns the kernel's time in milliseconds
    /// (CUDA events around the launch).
    ///
    /// Errors ([`Error::Input`], before any launch): `steps` or `batch` is 0, or `T·B·G·H`
    /// exceeds the 32-bit index limit (`"steps"`/`"batch"`); `x` does not hold `T·B·I` values
    /// (`"x"`); `out` is fp16 or does not hold `T·B·G·H` values (`"u"`). Values of `x` are not
    /// inspected (a NaN propagates to its row).
    pub fn project(&self, x: &DeviceBuffer<f32>, steps: usize, batch: usize, reverse: bool, out: &mut DeviceInput, stream: Option<&Stream>) -> Result<f32> {
        let stream = stream.unwrap_or(self.gpu.stream());
        self.check(x.len(), steps, batch, out)?;
        self.gpu.make_current()?;
        let start = Event::new(EventFlags::DEFAULT).map_err(cust_err("cuEventCreate"))?;
        let stop = Event::new(EventFlags::DEFAULT).map_err(cust_err("cuEventCreate"))?;
        start.record(stream).map_err(cust_err("cuEventRecord"))?;
        let launched = self.enqueue(x, steps, batch, reverse, out, stream);
        // Wait even when the launch failed: earlier work on the stream may use the buffers.
        let waited = stop.record(stream).map_err(cust_err("cuEventRecord")).and_then(|()| Ok(driver::synchronize(stream)?));
        launched?;
        waited?;
        stop.elapsed_time_f32(&start).map_err(cust_err("cuEventElapsedTime"))
    }

    /// [`Self::project`] on host data: uploads `x` (`[T][B][I]`, finite values), projects and
    /// returns `U` (`[T][B][G·H]`) on the host.
    pub fn forward(&self, x: &[f32], steps: usize, batch: usize, reverse: bool) -> Result<Vec<f32>> {
        check_finite("x", x)?;
        let rows = self.check_shape(x.len(), steps, batch)?;
        self.gpu.make_current()?;
        let mut out = DeviceInput::alloc_f32(&self.gpu, rows * self.outputs)?;
        let d_x = DeviceBuffer::from_slice(x).map_err(cust_err("cuMemAlloc"))?;
        self.project(&d_x, steps, batch, reverse, &mut out, None)?;
        out.to_host(&self.gpu)
    }
}
