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
//! - [`Matrix::Dense`]: a tensor-core GEMM (`mma.m16n8k16`, fp16 operands, f32 sums). `W_ih` is
//!   converted to fp16 once, on upload, and stored with its rows padded with zeros to `I8`, `I`
//!   rounded up to a multiple of 8 (so every 16-byte piece of a row is aligned for the kernel's
//!   `cp.async` copies). Each projection is two launches on the stream: a small kernel rounds
//!   `x` to fp16 into a scratch buffer of `T·B × I8` values that the projection keeps (grown
//!   when a call needs more), then the GEMM reads both fp16 operands and adds `b_ih` in f32.
//!   The GEMM computes one `128 × C` tile of `U` per CTA (128 input rows × `C` gate rows, eight
//!   warps of `64 × C/4`), streaming k-tiles of 64 through an `S`-stage `cp.async` pipeline in
//!   shared memory; `(C, S)` is one of [`PROJECTION_VARIANTS`], chosen per call for the shape
//!   and the GPU ([`InputProjection::dense_variant`]): among the variants whose shared memory
//!   fits a CTA, the fewest rounds of CTAs over the SMs, each round costed as `C + 64` (wider
//!   tiles on ties). How fast each variant runs is measured by `sprnn-bench --projection
//!   --projection-variants`, not assumed here.
//!   Any shape works: rows, columns and `k` past the edges are zeros in the kernel. The result
//!   differs from an exact product by the fp16 rounding of `x` and `W_ih`: per output at most
//!   about `2⁻¹⁰ · Σ_k |W_ih[j][k] · x[k]|` plus the f32 summation error. Values of `W_ih`
//!   beyond the fp16 range are refused; values of `x` beyond it become infinite.
//! - [`Matrix::Sparse`] (a pruned `W_ih` in CSR form): one thread per output, f32 values and
//!   f32 fused multiply-adds in column order — no fp16 rounding at all.
//!
//! # Joined input (crate-internal)
//!
//! A [`Model`](crate::Model)'s layer above a bidirectional layer reads that layer's two
//! directions joined, `[T][B][2H]`. Where the dense kernel projects it, the model keeps no
//! joined copy: the crate-internal `ProjectionInput::Directions` hands the projection both directions' states,
//! and the rounding launch joins them while rounding (`sprnn_projection_join_to_f16`: forward
//! states in columns `..H`, the reverse direction's step `T-1-t` in columns `H..` of input row
//! `t`), writing the very fp16 rows the plain rounding writes from the joined copy; the GEMM is
//! the same launch. The sparse kernel reads f32 rows and takes only `ProjectionInput::Rows`.
//!
//! [`InputProjection::project`] checks every shape before anything is launched and returns a
//! typed [`Error::Input`] naming the argument.

use cust::event::{Event, EventFlags};
use cust::memory::DeviceBuffer;
use cust::stream::Stream;
use std::sync::Mutex;

use sprnn_kernels::format::{
    projection_dense_kernel_name, projection_flags, projection_grid, projection_padded_input, projection_smem_bytes, ProjectionParams,
    ELEMENTWISE_THREADS, PROJECTION_CSR_KERNEL, PROJECTION_JOIN_TO_F16_KERNEL, PROJECTION_THREADS, PROJECTION_TO_F16_KERNEL,
    PROJECTION_VARIANTS,
};

use crate::driver;
use crate::error::{cust_err, Error, Result};
use crate::gpu::Gpu;
use crate::args::{check_finite, check_len};
use crate::sparse::Matrix;
use crate::tensors::DeviceInput;

/// The input rows a projection reads (crate-internal; see the [module
/// docs](self#joined-input-crate-internal)).
#[derive(Clone, Copy, Debug)]
pub(crate) enum ProjectionInput<'a> {
    /// `[T][B][I]` f32 rows.
    Rows(&'a DeviceBuffer<f32>),
    /// The two directions of a bidirectional layer, each `[T][B][I/2]` f32 (`I` even), the
    /// reverse one in its own (reversed) step order: input row `t·B + b` is
    /// `forward[t][b] ++ reverse[T-1-t][b]`. Dense `W_ih` only.
    Directions { forward: &'a DeviceBuffer<f32>, reverse: &'a DeviceBuffer<f32> },
}

impl ProjectionInput<'_> {
    /// Values of the input, `T·B·I` when the shapes are right.
    fn len(&self) -> usize {
        match self {
            ProjectionInput::Rows(x) => x.len(),
            ProjectionInput::Directions { forward, reverse } => forward.len() + reverse.len(),
        }
    }
}

/// `W_ih` on the device, in the form its kernel reads.
enum Weights {
    /// `[G·H][I8]` fp16 bits, zeros past column `I` ([`projection_padded_input`]).
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
    /// Dense kernel: `x` rounded to fp16, `[T·B][I8]`, for the largest `T·B` so far. Locked for
    /// the whole of a projection's use of it (see [`InputProjection::enqueue`]).
    x16: Mutex<Option<DeviceBuffer<u16>>>,
    /// Dense kernel: the GEMM variant pinned by [`InputProjection::pin_dense_variant`].
    pinned: Option<(usize, usize)>,
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

/// Tile width (in columns) that models a CTA's fixed cost in [`dense_variant`]: the `x` tile's
/// copies and fragment loads, which do not shrink with the tile's columns.
const TILE_OVERHEAD_COLS: usize = 64;

/// The dense GEMM variant `(C, S)` (columns per CTA, pipeline stages) for `rows × cols` outputs
/// on a GPU with `sms` SMs and `smem_per_cta` bytes of opt-in shared memory per CTA, or `None`
/// when no variant's shared memory fits.
///
/// Every variant runs one CTA per SM (256 threads, at least 64 KB of shared memory), so CTAs
/// run in rounds of `sms`; a round of `C`-column tiles is costed as `C + 64`. The variant with
/// the cheapest `rounds · (C + 64)` wins; ties go to the wider tile (fewer copies per output),
/// then to more stages.
pub(crate) fn dense_variant(rows: usize, cols: usize, sms: usize, smem_per_cta: usize) -> Option<(usize, usize)> {
    PROJECTION_VARIANTS.into_iter().filter(|&(c, s)| projection_smem_bytes(c, s) <= smem_per_cta).min_by_key(|&(c, s)| {
        let rounds = projection_grid(rows, cols, c).div_ceil(sms.max(1));
        (rounds * (c + TILE_OVERHEAD_COLS), std::cmp::Reverse(c), std::cmp::Reverse(s))
    })
}

/// `bits` (`rows × cols`, row-major) as `rows × padded` with zeros past column `cols`
/// (`padded ≥ cols`): the dense kernel's `W_ih` rows of [`projection_padded_input`] values.
pub(crate) fn pad_rows(bits: &[u16], cols: usize, padded: usize) -> Vec<u16> {
    assert!(padded >= cols && (cols == 0 || bits.len() % cols == 0));
    let rows = bits.len().checked_div(cols).unwrap_or(0);
    let mut out = vec![0u16; rows * padded];
    for (dst, src) in out.chunks_exact_mut(padded.max(1)).zip(bits.chunks_exact(cols.max(1))) {
        dst[..cols].copy_from_slice(src);
    }
    out
}

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
                let padded = pad_rows(&bits, input_size, projection_padded_input(input_size));
                Weights::Dense(DeviceBuffer::from_slice(&padded).map_err(alloc)?)
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
        Ok(InputProjection { gpu: gpu.clone(), input_size, outputs, weights, bias, x16: Mutex::new(None), pinned: None })
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

    /// The dense GEMM variant `(C, S)` (columns per CTA, pipeline stages; one of
    /// [`PROJECTION_VARIANTS`]) a projection of `rows = T·B` input rows runs: the pinned one, or
    /// the module's choice for this shape and GPU. `None` for a sparse `W_ih`, or when no
    /// variant's shared memory fits this GPU.
    pub fn dense_variant(&self, rows: usize) -> Option<(usize, usize)> {
        if self.is_sparse() {
            return None;
        }
        let info = self.gpu.info();
        self.pinned.or_else(|| dense_variant(rows, self.outputs, info.sm_count, info.shared_per_block_optin))
    }

    /// Pins the dense GEMM variant `(C, S)` for every later call (`None`: choose per call
    /// again), for tests and measurements of each variant. Every variant gives the same bits:
    /// each output's sums run through the same `mma` k-steps in the same order.
    ///
    /// Errors ([`Error::Input`], `"variant"`): not one of [`PROJECTION_VARIANTS`], its shared
    /// memory exceeds this GPU's per-CTA limit, or `W_ih` is sparse.
    pub fn pin_dense_variant(&mut self, variant: Option<(usize, usize)>) -> Result<()> {
        if let Some((c, st)) = variant {
            let problem = if self.is_sparse() {
                Some("W_ih is sparse: the CSR kernel has no variants".to_string())
            } else if !PROJECTION_VARIANTS.contains(&(c, st)) {
                Some(format!("({c}, {st}) is not one of {PROJECTION_VARIANTS:?}"))
            } else if projection_smem_bytes(c, st) > self.gpu.info().shared_per_block_optin {
                Some(format!("({c}, {st}) needs {} bytes of shared memory; this GPU allows {} per CTA", projection_smem_bytes(c, st), self.gpu.info().shared_per_block_optin))
            } else {
                None
            };
            if let Some(problem) = problem {
                return Err(Error::Input { name: "variant", problem });
            }
        }
        self.pinned = variant;
        Ok(())
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
    /// caller keeps `x` and `out` alive and waits for the stream). The dense kernel's fp16 copy of
    /// `x` is this projection's one scratch buffer: calls on the same projection must run in
    /// order on the GPU (one stream, or waited for in between), as the model's are.
    ///
    /// `x` may be a bidirectional layer's two directions ([`ProjectionInput::Directions`]) for a
    /// dense `W_ih`: they are joined while being rounded to fp16 (see the [module
    /// docs](self#joined-input-crate-internal)). Errors ([`Error::Input`], `"x"`): the two
    /// directions differ in length or `I` is odd, or `W_ih` is sparse.
    pub(crate) fn enqueue(&self, x: ProjectionInput<'_>, steps: usize, batch: usize, reverse: bool, out: &mut DeviceInput, stream: &Stream) -> Result<()> {
        let mut x16 = self.x16.lock().unwrap_or_else(|e| e.into_inner());
        self.enqueue_with(x, steps, batch, reverse, out, stream, &mut x16)
    }

    /// [`Self::enqueue`] with the scratch buffer's lock held by the caller.
    #[allow(clippy::too_many_arguments)]
    fn enqueue_with(
        &self,
        x: ProjectionInput<'_>,
        steps: usize,
        batch: usize,
        reverse: bool,
        out: &mut DeviceInput,
        stream: &Stream,
        x16: &mut Option<DeviceBuffer<u16>>,
    ) -> Result<()> {
        self.check(x.len(), steps, batch, out)?;
        let (x, x_reverse, split) = match x {
            ProjectionInput::Rows(x) => (x, 0, 0),
            ProjectionInput::Directions { forward, reverse } => {
                let problem = if self.is_sparse() {
                    Some("two directions to join: only the dense projection joins them (the sparse one reads f32 rows)".to_string())
                } else if forward.len() != reverse.len() || self.input_size % 2 != 0 || self.input_size == 0 {
                    Some(format!("two directions of {} and {} values for I = {}: each must hold half of every row", forward.len(), reverse.len(), self.input_size))
                } else {
                    None
                };
                if let Some(problem) = problem {
                    return Err(Error::Input { name: "x", problem });
                }
                (forward, reverse.as_device_ptr().as_raw(), self.input_size / 2)
            }
        };
        self.gpu.make_current()?;
        let rows = steps * batch;
        let mut params = ProjectionParams {
            x: x.as_device_ptr().as_raw(),
            x_reverse,
            w: 0,
            row_ptr: 0,
            col_idx: 0,
            bias: self.bias.as_device_ptr().as_raw(),
            x16: 0,
            out: out.address(),
            steps: steps as u32,
            batch: batch as u32,
            input: self.input_size as u32,
            outputs: self.outputs as u32,
            flags: if reverse { projection_flags::REVERSE_TIME } else { 0 },
            split: split as u32,
        };
        match &self.weights {
            Weights::Csr { row_ptr, col_idx, values } => {
                params.w = values.as_device_ptr().as_raw();
                params.row_ptr = row_ptr.as_device_ptr().as_raw();
                params.col_idx = col_idx.as_device_ptr().as_raw();
                let f = self.gpu.function(PROJECTION_CSR_KERNEL)?;
                // SAFETY: `params` is the projection kernels' parameter struct; `x`, `out`, the
                // CSR arrays and the bias have the sizes it states (checked above), and the
                // caller keeps `x` and `out` alive until the stream has passed the kernel.
                Ok(unsafe { driver::launch(&f, elementwise_grid(rows * self.outputs), ELEMENTWISE_THREADS as u32, 0, stream, &params) }?)
            }
            Weights::Dense(w) => {
                let info = self.gpu.info();
                let Some((cols, stages)) = self.dense_variant(rows) else {
                    let (major, minor) = info.compute_capability;
                    return Err(Error::UnsupportedGpu { name: info.name.clone(), major, minor });
                };
                let padded = projection_padded_input(self.input_size);
                let need = rows * padded;
                if x16.as_ref().is_none_or(|b| b.len() < need) {
                    // The old buffer may still be read by a kernel in flight (on any stream):
                    // wait for the device before it is freed.
                    cust::context::CurrentContext::synchronize().map_err(cust_err("cuCtxSynchronize"))?;
                    *x16 = None;
                    // SAFETY: u16 has no invalid bit patterns; the rounding kernel writes every
                    // value the GEMM reads before it reads them (stream order).
                    *x16 = Some(unsafe { DeviceBuffer::uninitialized(need) }.map_err(cust_err("cuMemAlloc"))?);
                }
                let scratch = x16.as_ref().expect("allocated above");
                params.w = w.as_device_ptr().as_raw();
                params.x16 = scratch.as_device_ptr().as_raw();
                let round = self.gpu.function(if split == 0 { PROJECTION_TO_F16_KERNEL } else { PROJECTION_JOIN_TO_F16_KERNEL })?;
                let gemm = self.gpu.function(projection_dense_kernel_name(cols, stages))?;
                // SAFETY: as for the CSR kernel; `x16` holds `T·B × I8` fp16 and `w` `G·H × I8`
                // (padded on upload); joined input: `x` and `x_reverse` hold `T·B × I/2` f32 each
                // (checked above, `0 < split < I`); the rounding kernel runs before the GEMM on the stream, and
                // the caller holds the scratch buffer's lock until the stream has passed both
                // (or, for the model, orders its calls on one stream). The GEMM's launch shape is
                // the one its contract names; its shared memory was allowed in `Gpu::new`.
                unsafe {
                    driver::launch(&round, elementwise_grid(need / 8), ELEMENTWISE_THREADS as u32, 0, stream, &params)?;
                    driver::launch(
                        &gemm,
                        projection_grid(rows, self.outputs, cols) as u32,
                        PROJECTION_THREADS as u32,
                        projection_smem_bytes(cols, stages) as u32,
                        stream,
                        &params,
                    )?;
                }
                Ok(())
            }
        }
    }

    /// Computes `out = W_ih · x + b_ih` for `steps` steps of `batch` sequences on `stream`
    /// (default: the GPU's stream) and waits for it. `x` is `[T][B][I]` f32; `out` a
    /// [`DeviceInput::F32`] of `[T][B][G·H]` values ([`DeviceInput::alloc_f32`]); with `reverse`
    /// input step `t` is written to step `T-1-t`. Returns the kernels' time in milliseconds
    /// (CUDA events around the launches: for a dense `W_ih` the rounding of `x` to fp16 and
    /// the GEMM).
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
        // The scratch buffer stays locked until the stream has passed the kernels.
        let mut x16 = self.x16.lock().unwrap_or_else(|e| e.into_inner());
        start.record(stream).map_err(cust_err("cuEventRecord"))?;
        let launched = self.enqueue_with(ProjectionInput::Rows(x), steps, batch, reverse, out, stream, &mut x16);
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

#[cfg(test)]
mod tests {
    use super::*;
    use sprnn_kernels::format::{PROJECTION_K_ALIGN, PROJECTION_TILE_ROWS};

    /// H200: 132 SMs, 227 KB of shared memory per CTA.
    const H200: (usize, usize) = (132, 227 * 1024);
    /// A100: 108 SMs, 163 KB.
    const A100: (usize, usize) = (108, 163 * 1024);
    /// sm_86/sm_89 parts: 99 KB per CTA.
    const SMALL: (usize, usize) = (84, 99 * 1024);

    #[test]
    fn dense_variant_fills_the_h200_on_the_benchmark_shapes() {
        let (sms, smem) = H200;
        // One round of 128 tiles of 256 columns.
        assert_eq!(dense_variant(1024, 4096, sms, smem), Some((256, 4)));
        // 5280 = 33 · 160: 264 tiles, exactly two rounds (256 columns would be 168 tiles, 1.3).
        assert_eq!(dense_variant(1024, 5280, sms, smem), Some((160, 4)));
        // 256 tiles of 256 columns, two rounds.
        assert_eq!(dense_variant(1024, 8192, sms, smem), Some((256, 4)));
        // A small problem: one round whatever the width, so the narrowest tile.
        assert_eq!(dense_variant(16, 72, sms, smem), Some((128, 4)));
    }

    #[test]
    fn dense_variant_fits_the_shared_memory_and_is_the_cheapest() {
        for (sms, smem) in [H200, A100, SMALL] {
            for rows in [1, 7, 128, 129, 1000, 1024, 4096, 30000] {
                for cols in [1, 8, 100, 160, 257, 1024, 3 * 1152, 4096, 5280, 4 * 2304, 20000] {
                    let (c, s) = dense_variant(rows, cols, sms, smem).expect("a variant fits");
                    assert!(PROJECTION_VARIANTS.contains(&(c, s)));
                    assert!(projection_smem_bytes(c, s) <= smem, "{rows}x{cols}: ({c}, {s}) needs {} bytes", projection_smem_bytes(c, s));
                    let cost = |c: usize| projection_grid(rows, cols, c).div_ceil(sms) * (c + TILE_OVERHEAD_COLS);
                    for (c2, s2) in PROJECTION_VARIANTS.into_iter().filter(|&(c2, s2)| projection_smem_bytes(c2, s2) <= smem) {
                        assert!(cost(c) <= cost(c2), "{rows}x{cols}: ({c}, {s}) costs {} > ({c2}, {s2}) {}", cost(c), cost(c2));
                    }
                    // The grid covers every output exactly: tiles of 128 rows × c columns.
                    let grid = projection_grid(rows, cols, c);
                    assert_eq!(grid, rows.div_ceil(PROJECTION_TILE_ROWS) * cols.div_ceil(c));
                    assert!(grid * PROJECTION_TILE_ROWS * c >= rows * cols);
                }
            }
        }
        // On a 99 KB GPU only the two-stage variant fits; below 64 KB none does.
        assert_eq!(dense_variant(1024, 4096, SMALL.0, SMALL.1), Some((128, 2)));
        assert_eq!(dense_variant(1024, 4096, 132, 48 * 1024), None);
    }

    #[test]
    fn padded_input_is_the_next_multiple_of_eight() {
        for (i, want) in [(1, 8), (7, 8), (8, 8), (9, 16), (37, 40), (513, 520), (1024, 1024), (1760, 1760), (3520, 3520)] {
            assert_eq!(projection_padded_input(i), want, "I = {i}");
            assert_eq!(projection_padded_input(i) % PROJECTION_K_ALIGN, 0);
        }
    }

    #[test]
    fn pad_rows_keeps_every_value_and_zeros_the_rest() {
        for (rows, cols) in [(1, 1), (3, 8), (5, 37), (2, 9), (4, 0)] {
            let padded = projection_padded_input(cols);
            let bits: Vec<u16> = (0..rows * cols).map(|i| 1 + i as u16).collect();
            let out = pad_rows(&bits, cols, padded);
            assert_eq!(out.len(), rows * padded);
            for r in 0..rows {
                for c in 0..padded {
                    let want = if c < cols { bits[r * cols + c] } else { 0 };
                    assert_eq!(out[r * padded + c], want, "{rows}x{cols}: ({r}, {c})");
                }
            }
        }
    }
}
