//! Argument checks shared by the GPU entry points (layer, projection, model, streaming): each
//! refuses a bad argument with [`Error::Input`](crate::Error::Input) naming it.

use crate::error::Result;

/// [`Error::Input`](crate::Error::Input) naming the first non-finite element of `v`, by the
/// launch contract's check ([`crate::layout::contract::check_finite`]).
pub(crate) fn check_finite(name: &'static str, v: &[f32]) -> Result<()> {
    Ok(crate::layout::contract::check_finite(name, v.iter().copied())?)
}

/// [`Error::Input`](crate::Error::Input) unless `got == want`; `shape` names the expected shape (`"T*B*H"`), in the
/// words of the launch contract's check ([`crate::layout::contract::check_len`]).
pub(crate) fn check_len(name: &'static str, got: usize, want: usize, shape: &str) -> Result<()> {
    Ok(crate::layout::contract::check_len(name, got, want, shape)?)
}
