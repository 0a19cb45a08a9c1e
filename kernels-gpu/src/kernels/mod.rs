//! The kernels: entry points exported to PTX.

pub mod cell;
pub mod concat;
pub mod dense;
pub mod probe;
pub mod projection;
pub mod recurrent;
pub mod smoke;
