//! sprnn: sparse persistent recurrent layers for NVIDIA GPUs.
#![deny(missing_docs)]

pub mod layout;
pub mod reference;
pub mod sparse;
pub mod weights;

pub use sparse::{Csr, SparseError};
pub use sprnn_kernels::format::Cell;
