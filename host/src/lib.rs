//! sprnn: sparse persistent recurrent layers for NVIDIA GPUs.
#![deny(missing_docs)]

pub mod sparse;

pub use sparse::{Csr, SparseError};
