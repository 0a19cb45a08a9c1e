//! Argument checks shared by the GPU entry points (layer, projection, model, streaming): each
//! refuses a bad argument with [`Error::Input`](crate::Error::Input) naming it.

use crate::error::{Error, Result};

/// [`Error::Input`] naming the first non-finite element of `v`.
pub(crate) fn check_finite(name: &'static str, v: &[f32]) -> Result<()> {
    Ok(crate::validate::finite(name, v)?)
}

/// [`Error::Input`] unless `got == want`; `shape` names the expected shape (`"T*B*H"`).
pub(crate) fn check_len(name: &'static str, got: usize, want: usize, shape: &str) -> Result<()> {
    if got == want {
        Ok(())
    } else {
        Err(Error::Input { name, problem: format!("{got} values, expected {want} ({shape})") })
    }
}
