//! Why a layer could not be planned.

use sprnn_kernels::format::Cell;
use thiserror::Error;

/// Why [`plan`](super::plan) (or [`layout_with`](super::layout_with)) refused a layer.
#[derive(Debug, Clone, PartialEq, Error)]
#[non_exhaustive]
pub enum PlanError {
    /// `W_hh` is not `G·H × H` for the cell (`G` gate rows per unit, PyTorch stacking).
    #[error("W_hh is {rows} x {cols}, but a {cell:?} layer of hidden size {cols} needs {expected_rows} x {cols}")]
    Shape {
        /// The cell asked for.
        cell: Cell,
        /// Rows of the matrix given.
        rows: usize,
        /// Columns of the matrix given (the hidden size).
        cols: usize,
        /// `G · cols`.
        expected_rows: usize,
    },
    /// The hidden size is 0.
    #[error("hidden size is 0 (W_hh has 0 columns); a layer needs at least 1 hidden unit")]
    EmptyHidden,
    /// The hidden size is larger than the 16-bit column index allows.
    #[error("hidden size {hidden} exceeds the largest supported, {max} (16-bit column indices)")]
    HiddenTooLarge {
        /// The hidden size.
        hidden: usize,
        /// `format::MAX_HIDDEN`.
        max: usize,
    },
    /// The batch size is 0.
    #[error("batch size is 0; a layer needs a batch of at least 1")]
    ZeroBatch,
    /// An option of [`PlanOptions`](super::PlanOptions), a field of a
    /// [`Geometry`](super::Geometry), or the batch size (above the kernel's 32-bit parameter)
    /// has a value the kernel does not support.
    #[error("{option} = {value} is not supported: {allowed}")]
    BadOption {
        /// Name of the option.
        option: &'static str,
        /// The value given.
        value: usize,
        /// What is allowed.
        allowed: String,
    },
    /// More CTAs were asked for than can be resident at once, so the persistent kernel would
    /// deadlock.
    #[error("{ctas} CTAs cannot all be resident: at most {sm_count} SMs x {ctas_per_sm} CTAs per SM = {}", sm_count * ctas_per_sm)]
    NotCoResident {
        /// CTAs asked for.
        ctas: usize,
        /// CTAs per SM.
        ctas_per_sm: usize,
        /// SMs of the device.
        sm_count: usize,
    },
    /// A weight is outside the fp16 range (|w| > 65504), so it would become infinite.
    #[error("weight at row {row}, column {col} is {value}, outside the fp16 range (|w| <= 65504)")]
    ValueOutOfRange {
        /// Row of the weight.
        row: usize,
        /// Column of the weight.
        col: usize,
        /// The value.
        value: f32,
    },
    /// A row has more nonzeros than the forced `threads_per_row × list_len` can hold.
    #[error("row {row} has {nnz} nonzeros but {threads_per_row} threads x {list_len} words hold only {}; raise threads_per_row or list_len", threads_per_row * list_len)]
    RowTooLong {
        /// The row.
        row: usize,
        /// Its nonzeros.
        nnz: usize,
        /// Threads per row.
        threads_per_row: usize,
        /// Words per thread.
        list_len: usize,
    },
    /// The hidden state and gate sums do not fit in one CTA's shared memory.
    #[error("shared memory: {need_bytes} bytes per CTA needed for batch {batch}, {have_bytes} available ({} too many); {}", need_bytes - have_bytes, batch_hint(*max_batch))]
    SharedMemory {
        /// Bytes of dynamic shared memory the kernel would need per CTA.
        need_bytes: usize,
        /// Bytes available per CTA.
        have_bytes: usize,
        /// The batch size asked for.
        batch: usize,
        /// The largest batch size whose shared memory fits (0: none does).
        max_batch: usize,
    },
    /// No launch shape holds the layer in registers: every choice of threads per row and list
    /// length needs more registers (or threads) per SM than the device has.
    #[error(
        "does not fit on the {device}: the best launch shape needs {need_regs} registers per SM, \
         {have_regs} available ({} too many, {:.0}% over) with {need_threads} threads per CTA \
         (at most {have_threads}); the longest row has {max_row_nnz} nonzeros, at most {max_row_fit} \
         fit: {}",
        need_regs.saturating_sub(*have_regs),
        100.0 * (*need_regs as f64 / *have_regs as f64 - 1.0),
        fit_hint(*density, *fit_density, *fit_batch)
    )]
    DoesNotFit {
        /// Device name.
        device: String,
        /// Registers per SM the cheapest launch shape needs (allocation granularity included).
        need_regs: usize,
        /// Registers per SM the device has.
        have_regs: usize,
        /// Threads per CTA of that launch shape.
        need_threads: usize,
        /// Most threads per CTA the device allows with this many CTAs per SM.
        have_threads: usize,
        /// Nonzeros of the longest row of `W_hh`.
        max_row_nnz: usize,
        /// The longest row any launch shape that fits could hold (0: none fits at all).
        max_row_fit: usize,
        /// Density of `W_hh` (nonzeros / (G·H·H)).
        density: f64,
        /// Density at which a layer like this one would fit (0: none): an estimate that keeps the
        /// relative spread of row lengths, with a margin; conservative for random pruning.
        fit_density: f64,
        /// A smaller batch size at which this layer fits, if one does.
        fit_batch: Option<usize>,
    },
    /// Cluster-resident mode was asked for ([`PlanOptions::mode`](super::PlanOptions::mode))
    /// but cannot run this layer on this device: a GPU without thread-block clusters (compute
    /// capability below 9.0), an option only the grid mode has, or no cluster of
    /// [`CLUSTER_SIZES`](sprnn_kernels::format::CLUSTER_SIZES) CTAs (one per SM) holds the
    /// layer's weights in registers, its hidden state and exchange buffers in shared memory.
    #[error("cluster-resident mode is not possible on the {device}: {reason}")]
    ClusterMode {
        /// Device name.
        device: String,
        /// Why, with the numbers (the closest cluster size's registers or shared memory).
        reason: String,
    },
}

impl PlanError {
    /// The layer or the device cannot run the cluster-resident mode that
    /// [`PlanOptions::mode`](super::PlanOptions::mode) asked for.
    pub(crate) fn cluster(device: &str, reason: String) -> PlanError {
        PlanError::ClusterMode { device: device.to_string(), reason }
    }
}

fn batch_hint(max_batch: usize) -> String {
    if max_batch == 0 {
        "no batch size fits this hidden size".to_string()
    } else {
        format!("batch <= {max_batch} fits")
    }
}

fn fit_hint(density: f64, fit_density: f64, fit_batch: Option<usize>) -> String {
    let mut s = if fit_density > 0.0 {
        format!("density <= {fit_density:.4} would fit (now {density:.4})")
    } else {
        "no density fits this hidden size with this cell".to_string()
    };
    if let Some(b) = fit_batch {
        s.push_str(&format!(", or batch {b} at this density"));
    }
    s
}
