//! Zero-copy entry: run a [`SparseRecurrentLayer`] on device memory and a stream that belong to
//! other CUDA code (PyTorch, cudarc, candle, a CUDA C++ program), without copying anything
//! through the host.
//!
//! The caller hands over plain device addresses (`CUdeviceptr`, `u64`) and a raw `CUstream`:
//!
//! ```text
//! u   [T][B][G·H]  f32 or fp16   (W_ih x_t + b_ih, as SparseRecurrentLayer::forward takes it)
//! h0  [B][H]       f32, optional ─┐ copied on the stream into the layer's own
//! c0  [B][H]       f32, optional ─┘ initial-state buffers (device to device)
//! h   [T][B][H]    f32            written by the kernel in place
//! c   [B][H]       f32            LSTM's final cell state, written in place
//! ```
//!
//! [`SparseRecurrentLayer::forward_raw`] enqueues everything on the caller's stream, after
//! whatever the caller enqueued there before (so `u` may still be in the making when the call
//! starts), then waits for that stream and checks the kernel's status word, as
//! [`SparseRecurrentLayer::forward_device`] does. Nothing is allocated per call and no buffer
//! of the caller is copied: the kernel reads `u` and writes `h` and `c` where they are.
//!
//! # Context
//!
//! The layer's [`Gpu`](crate::Gpu) holds the device's **primary context**
//! ([`crate::Gpu::new`] retains it with `cuDevicePrimaryCtxRetain`), the context the CUDA
//! runtime (and so PyTorch) uses for that device; addresses and streams of the runtime are valid
//! in it. Code that works in a context of its own (`cuCtxCreate`) cannot share its memory
//! with a layer this way.
//!
//! # Example
//!
//! ```no_run
//! use sprnn::raw::RawForward;
//! use sprnn::{Cell, Gpu, LayerOptions, SparseRecurrentLayer};
//!
//! # fn main() -> sprnn::Result<()> {
//! # let (w_hh, b_hh) = (sprnn::sparse::random_recurrent(1, 1024, 1024, 0.1, 0.9)?, vec![0.0; 1024]);
//! # let (u, h, stream): (u64, u64, sprnn::raw::RawStream) = (0, 0, std::ptr::null_mut());
//! let gpu = Gpu::new(0)?;
//! let mut layer = SparseRecurrentLayer::new(&gpu, Cell::RnnTanh, &w_hh, &b_hh, 4, &LayerOptions::default())?;
//! // `u`, `h`: device addresses of f32 tensors [256][4][1024] owned by other CUDA code;
//! // `stream`: its CUstream.
//! let args = RawForward { u, h_out: h, ..RawForward::new(256) };
//! // SAFETY: the addresses are live allocations of the sizes RawForward documents, in the
//! // device's primary context, and `stream` is a live stream of that context.
//! let kernel_ms = unsafe { layer.forward_raw(&args, stream)? };
//! # let _ = kernel_ms;
//! # Ok(())
//! # }
//! ```

use std::mem::ManuallyDrop;

use cust::memory::{DeviceBuffer, DevicePointer};
use cust::stream::Stream;
use sprnn_kernels::format::{flags, Cell};

use crate::driver;
use crate::error::{Error, Result};
use crate::layer::SparseRecurrentLayer;
use crate::tensors::DeviceOutput;

/// A raw CUDA stream handle (`CUstream`; null is the legacy default stream). A CUDA runtime
/// `cudaStream_t` is the same handle (PyTorch: `torch.cuda.current_stream().cuda_stream`).
pub type RawStream = cust::sys::CUstream;

/// The device addresses and sizes of one [`SparseRecurrentLayer::forward_raw`] call. Every
/// address is a `CUdeviceptr` in the layer's device's primary context; `0` means "none" where
/// a field allows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RawForward {
    /// Steps `T` (≥ 1, `T·B·G·H` below 2^32).
    pub steps: usize,
    /// Input pre-activations `U = W_ih x + b_ih`, `[T][B][G·H]` values, f32, or fp16 when
    /// `u_f16`. Read only.
    pub u: u64,
    /// Whether `u` holds fp16 values (else f32).
    pub u_f16: bool,
    /// Initial hidden state `[B][H]` f32, or `0` for zeros. Read only (copied on the stream
    /// before the kernel starts), so it may alias `h_out`'s last step of an earlier call.
    pub h0: u64,
    /// LSTM's initial cell state `[B][H]` f32, or `0` for zeros; must be `0` for other cells.
    /// Read only (copied like `h0`), so it may be the same memory as `c_out`.
    pub c0: u64,
    /// Output: every hidden state, `[T][B][H]` f32, written in place.
    pub h_out: u64,
    /// Output: LSTM's final cell state `[B][H]` f32, written in place. Required for LSTM;
    /// ignored (may be `0`) for the other cells.
    pub c_out: u64,
    /// Steps of the same sequence that earlier calls already ran (0 for a new sequence): numbers
    /// this call's steps as their continuation, as [`SparseRecurrentLayer::set_steps_done`]
    /// does, so chunks give one long call's bits. The layer keeps this numbering for its later
    /// calls of any kind.
    pub steps_done: u64,
}

impl RawForward {
    /// `steps` steps with every address `0` (none), f32 input and a new sequence: fill in at
    /// least `u` and `h_out` (and LSTM's `c_out`).
    pub fn new(steps: usize) -> RawForward {
        RawForward { steps, u: 0, u_f16: false, h0: 0, c0: 0, h_out: 0, c_out: 0, steps_done: 0 }
    }
}

const _: () = assert!(std::mem::size_of::<Stream>() == std::mem::size_of::<RawStream>());

/// A `cust` stream value for a foreign handle, never destroyed (`ManuallyDrop`).
///
/// # Safety
/// `raw` must be a live stream of the current context (or null) for as long as the value is used.
unsafe fn borrow_stream(raw: RawStream) -> ManuallyDrop<Stream> {
    // SAFETY: `cust::stream::Stream` is a struct whose one field is the `CUstream` handle (cust
    // 0.3.2, pinned by this crate; the size is asserted above), so its value is the handle's.
    // It is wrapped in `ManuallyDrop` at once, so `cuStreamDestroy` never runs on a stream
    // that belongs to the caller.
    ManuallyDrop::new(unsafe { std::mem::transmute::<RawStream, Stream>(raw) })
}

/// A device buffer value for foreign memory, never freed (`ManuallyDrop`).
///
/// # Safety
/// `addr` must be a live device allocation of at least `len` f32 values.
unsafe fn borrow_f32(addr: u64, len: usize) -> ManuallyDrop<DeviceBuffer<f32>> {
    // SAFETY: the caller's guarantee; `ManuallyDrop` keeps `cuMemFree` from running on it.
    ManuallyDrop::new(unsafe { DeviceBuffer::from_raw_parts(DevicePointer::from_raw(addr), len) })
}

fn missing(name: &'static str, what: &str) -> Error {
    Error::Input { name, problem: format!("address 0; {what}") }
}

impl SparseRecurrentLayer {
    /// Runs the layer on foreign device memory and a foreign stream: reads `args.u`, writes
    /// `args.h_out` (and LSTM's `args.c_out`) in place, with every operation on `stream` after
    /// the work the caller enqueued there; then waits for `stream` and checks the kernel's
    /// status. Returns the kernel's time in milliseconds (CUDA events around the launch). See
    /// the [module docs](self) for shapes and the context.
    ///
    /// Errors (before anything is enqueued, [`Error::Input`]): `steps` is 0 or beyond the
    /// kernel's 32-bit indices, `u` or `h_out` is 0, `c_out` is 0 for an LSTM, `c0` is given
    /// for another cell. Then the errors of [`Self::forward_device`] ([`Error::Timeout`],
    /// [`Error::NotResident`], [`Error::Driver`], ...). The values are not inspected: a NaN in
    /// `u`, `h0` or `c0` propagates through the recurrence.
    ///
    /// # Safety
    /// The behaviour is undefined unless all of the following hold until this call returns:
    /// - `stream` is a live stream (or null, the legacy default stream) of the primary context
    ///   of the layer's device;
    /// - `args.u` is a live device allocation of that context holding at least `T·B·G·H`
    ///   values of the type `args.u_f16` names;
    /// - `args.h_out` holds at least `T·B·H` f32 values and, for LSTM, `args.c_out` at least
    ///   `B·H`; `args.h0` and `args.c0`, when not 0, hold `B·H` f32 values each;
    /// - no other code writes `u`, `h0` or `c0`, or reads or writes `h_out` and `c_out`,
    ///   concurrently with the call (work ordered on `stream` before or after it is fine), and
    ///   `h_out` does not overlap `u`, `c_out` or the layer's buffers.
    pub unsafe fn forward_raw(&mut self, args: &RawForward, stream: RawStream) -> Result<f32> {
        self.check_steps(args.steps)?;
        if args.u == 0 {
            return Err(missing("u", "the input pre-activations are required"));
        }
        if args.h_out == 0 {
            return Err(missing("h_out", "the output hidden states are required"));
        }
        let lstm = self.cell() == Cell::Lstm;
        if lstm && args.c_out == 0 {
            return Err(missing("c_out", "an LSTM layer writes its final cell state there"));
        }
        if !lstm && args.c0 != 0 {
            return Err(Error::Input { name: "c0", problem: format!("given for a {} layer; only LSTM has a cell state", self.cell().name()) });
        }
        let bh = self.batch() * self.hidden();
        self.gpu().make_current()?;
        // SAFETY: the caller guarantees `stream` is a live stream of the layer's context.
        let stream = unsafe { borrow_stream(stream) };
        let mut fl = if args.u_f16 { flags::U_F16 } else { 0 };
        if args.h0 != 0 {
            driver::memcpy_dtod(self.h0.as_device_ptr().as_raw(), args.h0, 4 * bh, &stream)?;
            fl |= flags::HAS_H0;
        }
        if args.c0 != 0 {
            driver::memcpy_dtod(self.c0.as_device_ptr().as_raw(), args.c0, 4 * bh, &stream)?;
            fl |= flags::HAS_C0;
        }
        // The other cells never write `c`: their `c_out` points at the layer's own (unread)
        // initial cell-state buffer, so 0 from the caller is fine.
        let c_out = if lstm { args.c_out } else { self.c0.as_device_ptr().as_raw() };
        // SAFETY: the caller guarantees the sizes of `h_out` and (LSTM) `c_out`; the layer's
        // `c0` holds `B·H` values. The buffers are never dropped (`ManuallyDrop`).
        let mut out = ManuallyDrop::new(DeviceOutput {
            h: ManuallyDrop::into_inner(unsafe { borrow_f32(args.h_out, args.steps * bh) }),
            c: ManuallyDrop::into_inner(unsafe { borrow_f32(c_out, bh) }),
            steps: args.steps,
        });
        self.set_steps_done(args.steps_done);
        let (start, stop) = self.enqueue(args.u, &mut out, fl, &stream)?;
        self.complete(&stream, &start, &stop)
    }
}
