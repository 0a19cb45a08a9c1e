//! sprnn's GPU kernels and the host–kernel format.
//!
//! Built for `nvptx64-nvidia-cuda` by `cargo xtask build-ptx` (as a `cdylib`, linked to PTX);
//! on every other target only [`format`] is compiled, so the host crate shares its definitions.
//!
//! - [`format`]: packed weight words, exchange words, the kernels' parameter structs.
//! - `device` (nvptx only): the device layer — indices, barriers, warp collectives, shared and
//!   global memory with memory-model qualifiers, conversions, timers.
//! - `kernels` (nvptx only): the smoke kernel, the sparse persistent recurrent kernel, the
//!   input projection (tensor-core GEMM and CSR) and the kernel joining two directions.
#![no_std]
#![deny(missing_docs)]
// `format` is compiled into the sprnn crate, which builds on Rust 1.85; `is_multiple_of` is 1.87.
#![allow(clippy::manual_is_multiple_of)]
#![cfg_attr(
    target_arch = "nvptx64",
    feature(abi_ptx, asm_experimental_arch, stdarch_nvptx)
)]

pub mod format;

#[cfg(target_arch = "nvptx64")]
pub mod device;
#[cfg(target_arch = "nvptx64")]
pub mod kernels;

#[cfg(all(target_arch = "nvptx64", not(test)))]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    device::trap()
}
