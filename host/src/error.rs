//! The crate's error type, and the mapping of the driver's raw codes onto it.

use thiserror::Error;

use crate::driver::{self, CallFailed};
use crate::layout::PlanError;
use crate::sparse::SparseError;

/// Everything that can go wrong in sprnn. Each variant says when it occurs.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum Error {
    /// No usable NVIDIA driver: libcuda could not be loaded (`code` is `None`; `reason` is the
    /// dynamic loader's message), or `cuInit` failed with `code` (for example 34, stub library,
    /// or 35, a driver older than the runtime needs).
    #[error("no NVIDIA driver: {reason}")]
    NoDriver {
        /// Raw `CUresult` of `cuInit`, when the library loaded.
        code: Option<u32>,
        /// Why: the loader's message, or the failed call with the driver's name for its code.
        reason: String,
    },
    /// The driver works but sees no CUDA device (or none with the ordinal asked for).
    #[error("no CUDA device{}", if *.ordinal > 0 { format!(" with ordinal {}", .ordinal) } else { String::new() })]
    NoDevice {
        /// The ordinal asked for.
        ordinal: u32,
    },
    /// The GPU is older than sm_80, the oldest architecture sprnn's PTX targets.
    #[error("{name} has compute capability {major}.{minor}; sprnn needs 8.0 (Ampere) or newer")]
    UnsupportedGpu {
        /// Device name.
        name: String,
        /// Compute capability, major.
        major: u32,
        /// Compute capability, minor.
        minor: u32,
    },
    /// A CUDA driver call failed; `code` is the raw `CUresult` (kept even where cust has no
    /// name for it, e.g. 720, cooperative launch too large).
    #[error("CUDA driver call {call} failed: {name} ({code})")]
    Driver {
        /// The call.
        call: &'static str,
        /// Raw `CUresult`.
        code: u32,
        /// The driver's name for it.
        name: String,
    },
    /// The embedded PTX lacks a kernel the plan needs (a build mismatch).
    #[error("kernel {name} is missing from the embedded PTX (rebuild with `cargo xtask build-ptx`)")]
    MissingKernel {
        /// Entry-point name.
        name: String,
    },
    /// The layer cannot be laid out on this GPU.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// A sparse matrix was malformed.
    #[error(transparent)]
    Sparse(#[from] SparseError),
    /// A weights file could not be read or holds a malformed model
    /// ([`crate::weights`]), so a program can `?` a load and a run through one error type.
    #[error(transparent)]
    Weights(#[from] crate::weights::WeightsError),
    /// The CPU reference refused its inputs ([`crate::reference`]).
    #[error(transparent)]
    Reference(#[from] crate::reference::ReferenceError),
    /// An argument has the wrong size, range or value; the message names it and the limit. A
    /// value that is not finite ([`crate::validate::NotFinite`]) comes as this variant, with the
    /// message the CPU reference gives for it.
    #[error("invalid {name}: {problem}")]
    Input {
        /// The argument.
        name: &'static str,
        /// What is wrong, with the value and the limit.
        problem: String,
    },
    /// The plan was made for another GPU than the one it is used on.
    #[error("plan made for {planned} ({planned_sms} SMs) cannot run on {actual} ({actual_sms} SMs)")]
    WrongDevice {
        /// Device the plan was made for.
        planned: String,
        /// Its SM count.
        planned_sms: usize,
        /// Device it was used on.
        actual: String,
        /// Its SM count.
        actual_sms: usize,
    },
    /// The GPU cannot keep every CTA of the plan resident at once, so the persistent kernel
    /// was not started (it could deadlock).
    #[error("cannot keep all {grid} CTAs resident ({per_sm} per SM fit on {sms} SMs; {threads} threads, {registers} registers per thread and {smem} bytes of shared memory each)")]
    NotResident {
        /// CTAs the plan needs.
        grid: usize,
        /// CTAs per SM the occupancy calculator allows.
        per_sm: usize,
        /// SMs.
        sms: usize,
        /// Threads per CTA.
        threads: usize,
        /// Dynamic shared memory per CTA.
        smem: usize,
        /// Registers per thread of the kernel as loaded.
        registers: usize,
    },
    /// `cuOccupancyMaxActiveClusters` says no cluster of the plan's size fits on the GPU (with
    /// what else is resident or reserved), so the cluster-resident kernel was not started: the
    /// CTAs of a cluster are co-scheduled, and a cluster that cannot be placed could only wait.
    #[error("cannot place one cluster of {cluster} CTAs ({clusters} fit; {threads} threads, {registers} registers per thread and {smem} bytes of shared memory each)")]
    ClusterNotResident {
        /// CTAs in the plan's cluster.
        cluster: usize,
        /// Clusters of that size the occupancy calculator allows (0).
        clusters: usize,
        /// Threads per CTA.
        threads: usize,
        /// Dynamic shared memory per CTA.
        smem: usize,
        /// Registers per thread of the kernel as loaded.
        registers: usize,
    },
    /// A CTA waited longer than the layer's bound for another CTA's hidden state (a CTA that
    /// never ran, or a GPU shared with work that starved the layer). The context stays usable.
    #[error("recurrent kernel timed out: CTA {cta} waited more than {timeout_ms} ms for the hidden state of another CTA")]
    Timeout {
        /// CTA that reported it.
        cta: u32,
        /// The bound per wait.
        timeout_ms: f64,
    },
    /// A bidirectional model was asked to run chunk by chunk
    /// ([`crate::stream::StreamingModel`]): its reverse direction starts from the end of the
    /// sequence, so it needs the whole sequence in one call.
    #[error("a bidirectional model cannot stream: its reverse direction needs the whole sequence in one call (run it in one call, without chunks)")]
    NotStreamable {
        /// The model's number of directions.
        directions: usize,
    },
    /// A layer of a [`crate::Model`] failed: which layer and direction, and the error it gave
    /// (for example [`Error::Timeout`]). A model's forward pass runs every layer as one chain
    /// of stream-ordered work and reads the layers' status words after it, so this names the
    /// first layer, in the chain's order, whose kernel failed (the layers after it ran on its
    /// unfinished output). [`Error::root`] gives the error inside.
    #[error("layer {layer}{}: {source}", direction_label(*.directions, *.direction))]
    InLayer {
        /// The layer, from 0.
        layer: usize,
        /// The direction: 0 forward, 1 reverse.
        direction: usize,
        /// The model's number of directions (1 or 2), for the message.
        directions: usize,
        /// What the layer's kernel (or its launch) reported.
        source: Box<Error>,
    },
    /// The kernel rejected its parameters (a bug in sprnn: please report it).
    #[error("recurrent kernel rejected its parameters (status {code}, CTA {cta})")]
    KernelStatus {
        /// Status code (see `format::status`).
        code: u32,
        /// CTA that reported it.
        cta: u32,
    },
}

impl From<crate::layout::ArgumentError> for Error {
    fn from(e: crate::layout::ArgumentError) -> Error {
        Error::Input { name: e.name, problem: e.problem }
    }
}

impl From<crate::validate::NotFinite> for Error {
    fn from(e: crate::validate::NotFinite) -> Error {
        Error::Input { name: e.name, problem: crate::layout::contract::not_finite_problem(e.index, e.value) }
    }
}

/// Result with [`Error`](enum@Error).
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A failed driver call as [`Error::Driver`], with the driver's name for its raw code.
impl From<CallFailed> for Error {
    fn from(e: CallFailed) -> Error {
        Error::Driver { call: e.call, code: e.code, name: driver::error_name(e.code) }
    }
}

/// `""` for a unidirectional model, `" (forward)"` or `" (reverse)"` for a bidirectional one.
fn direction_label(directions: usize, direction: usize) -> &'static str {
    match (directions, direction) {
        (1, _) => "",
        (_, 0) => " (forward)",
        _ => " (reverse)",
    }
}

impl Error {
    /// The error inside any [`Error::InLayer`] context: what the failing kernel itself
    /// reported (the error unchanged when it carries no context).
    pub fn root(&self) -> &Error {
        match self {
            Error::InLayer { source, .. } => source.root(),
            e => e,
        }
    }

    /// `self` with the context of layer `layer`, direction `direction` of a model of
    /// `directions` directions.
    pub(crate) fn in_layer(self, layer: usize, direction: usize, directions: usize) -> Error {
        Error::InLayer { layer, direction, directions, source: Box::new(self) }
    }

    /// `cuInit`'s failure as the error a caller of [`crate::Gpu::new`] sees: "no device"
    /// (code 100) becomes [`Error::NoDevice`] for the `ordinal` asked for, any other code
    /// [`Error::NoDriver`] with that code.
    pub(crate) fn from_init(e: CallFailed, ordinal: u32) -> Error {
        match e.code {
            driver::ERROR_NO_DEVICE => Error::NoDevice { ordinal },
            c => Error::NoDriver { code: Some(c), reason: format!("{} failed with {} ({c})", e.call, driver::error_name(c)) },
        }
    }
}

/// Maps a cust error to [`Error::Driver`]. The code is cust's, which equals the driver's only
/// for the codes cust knows: any other (e.g. 720, cooperative launch too large) arrives as
/// cust's `UnknownError` (999). Calls whose raw code matters go through [`crate::driver`],
/// which keeps it.
pub(crate) fn cust_err(call: &'static str) -> impl FnOnce(cust::error::CudaError) -> Error {
    move |e| {
        let code = e as u32;
        Error::Driver { call, code, name: driver::error_name(code) }
    }
}
