//! The kernels: entry points exported to PTX.

pub mod cell;
pub mod recurrent;
pub mod smoke;
