//! sprnn's GPU kernels and the host–kernel format.
//!
//! Built for `nvptx64-nvidia-cuda` by `cargo xtask build-ptx`; on every other target only
//! [`format`] is compiled, so the host crate shares its definitions.
#![no_std]
#![deny(missing_docs)]

pub mod format;
