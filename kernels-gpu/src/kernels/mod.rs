//! The kernels: entry points exported to PTX.

pub mod smoke;
