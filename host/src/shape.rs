//! Named values instead of bare tuples and flags for a layer's launch shape and kernel variant.
//!
//! [`SparseRecurrentLayer::shape`] gives the launch shape as a [`LaunchShape`];
//! [`SparseRecurrentLayer::from_plan_variant`] builds a layer with a chosen [`KernelVariant`]
//! (the variants the benchmarks compare; [`SparseRecurrentLayer::from_plan`] uses the default).

use std::time::Duration;

use crate::error::Result;
use crate::gpu::Gpu;
use crate::layer::SparseRecurrentLayer;
use crate::layout::Plan;

/// How a layer's persistent kernel is launched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LaunchShape {
    /// CTAs in the grid.
    pub ctas: usize,
    /// Threads per CTA.
    pub threads_per_cta: usize,
    /// Threads sharing one row of `W_hh`.
    pub threads_per_row: usize,
    /// Dynamic shared memory per CTA, bytes.
    pub smem_bytes: usize,
    /// The kernel variant's entry point.
    pub kernel: &'static str,
}

/// Which variant of the recurrent kernel a layer runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KernelVariant {
    /// Apply the cell inside the row reduction where the plan allows it (the default): RNN
    /// always, GRU and LSTM where a unit's gate rows share a warp (`threads_per_row · G ≤ 32`).
    pub fuse_cell: bool,
}

impl Default for KernelVariant {
    /// The variant [`SparseRecurrentLayer::from_plan`] runs.
    fn default() -> Self {
        KernelVariant { fuse_cell: true }
    }
}

impl SparseRecurrentLayer {
    /// The launch shape of the layer's kernel.
    pub fn shape(&self) -> LaunchShape {
        let (ctas, threads_per_cta, threads_per_row, smem_bytes, kernel) = self.launch_shape();
        LaunchShape { ctas, threads_per_cta, threads_per_row, smem_bytes, kernel }
    }

    /// [`SparseRecurrentLayer::from_plan`] with a chosen kernel variant and wait bound.
    pub fn from_plan_variant(gpu: &Gpu, plan: &Plan, b_hh: &[f32], timeout: Duration, variant: KernelVariant) -> Result<Self> {
        Self::from_plan_with(gpu, plan, b_hh, timeout, variant.fuse_cell)
    }
}
