//! sprnn: sparse persistent recurrent layers for NVIDIA GPUs.
//!
//! A pruned recurrent layer (RNN, GRU or LSTM) runs as one *persistent* kernel launch for all T
//! steps: each thread keeps its share of the nonzero recurrent weights in registers (or, for
//! dense-enough layers that the sparse lists cannot hold or where the dense slab measured
//! faster, dense fp16 tensor-core fragments), and
//! CTAs hand each other the hidden state every step through global memory as fp16 values that
//! carry their step's Lamport tag in their last mantissa bit.
//!
//! How data flows:
//! - [`Csr`] (module [`sparse`]) holds the pruned recurrent matrix `W_hh`; [`weights`] loads
//!   and saves PyTorch-named safetensors files.
//! - [`layout::plan`] turns it, for a [`layout::DeviceInfo`], into a [`layout::Plan`]: rows to
//!   CTAs, nonzeros to threads and registers in bank-aware order, packed words (or the dense
//!   slab's fragments, [`layout::dense`]), or a typed [`layout::PlanError`] saying why the layer
//!   does not fit.
//! - [`Gpu`] opens a device and loads the embedded PTX; [`SparseRecurrentLayer`] uploads a plan
//!   once and runs it many times ([`SparseRecurrentLayer::forward`], or
//!   [`SparseRecurrentLayer::forward_device`] with inputs and outputs on the GPU and the
//!   caller's stream); [`StreamingLayer`] carries `h` (and LSTM's `c`) across calls so a
//!   sequence can be fed chunk by chunk; [`raw`] runs a layer on device memory and a stream
//!   owned by other CUDA code (PyTorch, cudarc, ...) without copies.
//! - Whole models: [`InputProjection`] computes `U = W_ih x + b_ih` for all steps on the GPU
//!   (tensor cores for a dense `W_ih`, a CSR kernel for a pruned one); [`Model`] chains
//!   projection and recurrent layer for every layer and direction of a
//!   [`weights::ModelWeights`] stack, bidirectional layers included, keeping everything on the
//!   device: one forward pass is one chain of stream-ordered work with one wait at its end
//!   ([`model::ModelTiming`] times its parts per layer), and [`Model::capture`] records it once
//!   as a CUDA graph that [`model::ModelGraph::replay`] runs; [`StreamingModel`] feeds a
//!   unidirectional model chunk by chunk.
//! - [`reference`](mod@reference) computes the same layer on the CPU (f64, f32 and the device-faithful
//!   rounding), the oracle every GPU result is tested against.
//! - [`timing`] is the timing protocol (seeded random layers and inputs, median per-step time)
//!   that the CLI's `sprnn bench` and the benchmark programs share.
//!
//! # The house before the rooms
//!
//! ```text
//! crates   sprnn-cli, sprnn-bench, sprnn-tests, sprnn-python   (users of the library)
//!              │
//!          sprnn (this crate) ──────────────► sprnn-kernels::format  (host–kernel format,
//!              │                                   ▲                   compiled into both)
//!          host/kernels/*.ptx.z ◄── cargo xtask build-ptx ── sprnn-kernels (no_std, nvptx)
//!
//! modules  public API   layer · model · stream · projection · raw · shape · timing · smoke (test hook)
//!              │ uses
//!          device       tensors (inputs and outputs of a forward pass, host and device)
//!                       gpu (opens a device, its DeviceInfo) · driver (raw CUresult codes;
//!                       events, stream capture, graphs) ·
//!                       libcuda · ptx
//!              │ uses
//!          checks       validate (checks shared by GPU and CPU) · args (the GPU side's checks,
//!                       in the launch contract's words)
//!              │ uses
//!          planning     layout (plan, dense, assign, bank, pack, partition, registers, contract,
//!                       device) · advice
//!              │ uses
//!          data         sparse · weights
//!                       fp16 (the kernel's fp16 arithmetic, exactly, for the CPU twins)
//!
//!          oracle       reference (CPU, f64 / f32 / device-faithful): uses data, the checks
//!                       and their error (layout::PlanError), and tensors::ModelOutput; used by
//!                       tests, never by the GPU path
//!          errors       error (one error type for all; maps the driver's codes)
//! ```
//!
//! Imports run downwards only (a module may use those of its own row), with one exception:
//! `error` imports from most modules to wrap their errors (and `driver` to name its codes),
//! while `driver` imports nothing of the crate's but the library loader, and none of the
//! modules `error` wraps imports `error`, so there is no cycle. Planning needs no device: a
//! [`layout::DeviceInfo`] is plain data (preset or read by [`Gpu`]), so plans, launch
//! contracts and refusals are computed and tested without a GPU. The checks sit above planning
//! because they speak its language ([`layout::PlanError`], [`layout::LaunchContract`]); the
//! reference runs them so it refuses what the GPU refuses. The GPU path never imports
//! `reference`; both return [`tensors::ModelOutput`].
//!
//! Errors are [`Error`](enum@Error) (every bad input is listed in `docs/VALIDATION.md`); the
//! host–kernel format is `sprnn_kernels::format`, shared with the kernel crate. The NVIDIA
//! driver library is loaded at run time (`docs/DRIVER.md`): every program that uses sprnn starts
//! without it, and [`Gpu::new`] says [`Error::NoDriver`] when it is missing
//! ([`driver_library`] asks without opening a device).
#![deny(missing_docs)]

pub mod advice;
mod args;
#[cfg(feature = "test-hooks")]
pub mod driver;
#[cfg(not(feature = "test-hooks"))]
pub(crate) mod driver;
pub mod error;
pub mod fp16;
pub mod gpu;
pub mod layer;
mod libcuda;
pub mod layout;
pub mod model;
pub mod projection;
pub mod ptx;
pub mod raw;
pub mod reference;
pub mod shape;
#[cfg(feature = "test-hooks")]
pub mod smoke;
pub mod sparse;
pub mod stream;
pub mod tensors;
pub mod timing;
pub mod validate;
pub mod weights;

/// The `cust` crate sprnn is built on (streams for `forward_device`, device buffers).
pub use cust;
pub use driver::driver_library;
pub use error::{Error, Result};
pub use gpu::{try_default_gpu, Gpu};
pub use layer::{LayerOptions, PhaseClocks, SparseRecurrentLayer};
pub use shape::{KernelVariant, LaunchShape};
pub use sparse::{Csr, SparseError};
pub use model::{DirectionSchedule, Model, ModelGraph, ModelOptions, ModelTiming};
pub use projection::InputProjection;
pub use stream::{ModelStreamState, StreamState, StreamingLayer, StreamingModel};
pub use sprnn_kernels::format::{Cell, MAX_HIDDEN};
