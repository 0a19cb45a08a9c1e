//! The kernels: entry points exported to PTX.

pub mod cell;
/// The cluster-resident kernel needs thread-block clusters: the sm_90 build only.
#[cfg(target_feature = "sm_90")]
pub mod cluster;
pub mod concat;
pub mod dense;
pub mod probe;
pub mod projection;
pub mod recurrent;
mod row;
pub mod smoke;
