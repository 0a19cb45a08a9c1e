//! What the planner needs to know about a GPU, with presets for the H200 and the A100.

/// The properties of a GPU that decide whether a layer fits and how it is launched.
///
/// The figures are those `cudaGetDeviceProperties` reports; [`DeviceInfo::h200`] and
/// [`DeviceInfo::a100`] are presets for planning without a device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceInfo {
    /// Marketing name, for messages.
    pub name: String,
    /// Compute capability `(major, minor)`.
    pub compute_capability: (u32, u32),
    /// Number of streaming multiprocessors.
    pub sm_count: usize,
    /// 32-bit registers per SM.
    pub registers_per_sm: usize,
    /// Most registers one thread may use.
    pub max_registers_per_thread: usize,
    /// Shared memory per SM, bytes.
    pub shared_per_sm: usize,
    /// Most dynamic shared memory one CTA may opt in to, bytes.
    pub shared_per_block_optin: usize,
    /// Most resident threads per SM.
    pub max_threads_per_sm: usize,
    /// Most threads per CTA.
    pub max_threads_per_block: usize,
    /// L2 cache, bytes.
    pub l2_bytes: usize,
    /// Registers per thread of each recurrent-kernel variant `(N, BT, H32, registers)` as compiled
    /// for this device. The presets carry ptxas's figures ([`KERNEL_REGISTERS`]); a
    /// [`crate::Gpu`] reads them from the module the driver loaded, whose JIT compiler may
    /// allocate more registers than the offline ptxas did.
    pub kernel_registers: Vec<(usize, usize, bool, bool, u32)>,
    /// Registers per thread of each dense slab variant `(MT, KW, HALF, registers)`, likewise
    /// ([`DENSE_REGISTERS`] in the presets).
    pub dense_registers: Vec<(usize, usize, bool, u32)>,
    /// Registers per thread of each shared-weights variant `(N, BT, GATED, registers)` (the
    /// fp16 hidden state; `sprnn_kernels::format::shared_kernel_name`), likewise
    /// ([`SHARED_REGISTERS`] in the presets).
    pub shared_kernel_registers: Vec<(usize, usize, bool, u32)>,
}

use super::registers::{DENSE_REGISTERS, KERNEL_REGISTERS, SHARED_REGISTERS};

/// Shared memory the driver reserves per resident CTA (bytes), on sm_80 and later.
pub const SHARED_RESERVED_PER_CTA: usize = 1024;

/// Register allocation granularity per thread: a thread's registers are rounded up to this.
pub const REGISTER_ALLOCATION_UNIT: usize = 8;

/// Registers of an SM's file that `ctas_per_sm` resident CTAs of `threads_per_cta` threads,
/// `registers_per_thread` each, take: the occupancy count of the planner and of
/// [`crate::model::co_resident`].
///
/// A thread's registers are rounded up to [`REGISTER_ALLOCATION_UNIT`], and warps are counted in
/// multiples of four: the register file is split over the SM's four schedulers and the warps are
/// dealt to them in turn, so the busiest scheduler holds `⌈warps / 4⌉` of them (measured on the
/// H200, 2026-11-29: 18 warps of 101 registers did not fit although 18 · 32 · 104 < 65536).
pub fn registers_per_sm(threads_per_cta: usize, ctas_per_sm: usize, registers_per_thread: usize) -> usize {
    let warps = (threads_per_cta.div_ceil(32) * ctas_per_sm).div_ceil(4) * 4;
    warps * 32 * registers_per_thread.div_ceil(REGISTER_ALLOCATION_UNIT) * REGISTER_ALLOCATION_UNIT
}

impl DeviceInfo {
    /// NVIDIA H200 (sm_90): 132 SMs, 64 K registers and 228 KB shared memory per SM, 227 KB
    /// opt-in per CTA, 60 MB L2.
    pub fn h200() -> DeviceInfo {
        DeviceInfo {
            name: "NVIDIA H200".to_string(),
            compute_capability: (9, 0),
            sm_count: 132,
            registers_per_sm: 65536,
            max_registers_per_thread: 255,
            shared_per_sm: 228 * 1024,
            shared_per_block_optin: 227 * 1024,
            max_threads_per_sm: 2048,
            max_threads_per_block: 1024,
            l2_bytes: 60 * 1024 * 1024,
            kernel_registers: KERNEL_REGISTERS.to_vec(),
            dense_registers: DENSE_REGISTERS.to_vec(),
            shared_kernel_registers: SHARED_REGISTERS.to_vec(),
        }
    }

    /// NVIDIA A100 (sm_80): 108 SMs, 64 K registers and 164 KB shared memory per SM, 163 KB
    /// opt-in per CTA, 40 MB L2.
    pub fn a100() -> DeviceInfo {
        DeviceInfo {
            name: "NVIDIA A100".to_string(),
            compute_capability: (8, 0),
            sm_count: 108,
            registers_per_sm: 65536,
            max_registers_per_thread: 255,
            shared_per_sm: 164 * 1024,
            shared_per_block_optin: 163 * 1024,
            max_threads_per_sm: 2048,
            max_threads_per_block: 1024,
            l2_bytes: 40 * 1024 * 1024,
            kernel_registers: KERNEL_REGISTERS.to_vec(),
            dense_registers: DENSE_REGISTERS.to_vec(),
            shared_kernel_registers: SHARED_REGISTERS.to_vec(),
        }
    }

    /// Registers per thread of kernel variant `(n, bt, h32, gated)` on this device, `None` if it
    /// has none.
    pub fn registers(&self, n: usize, bt: usize, h32: bool, gated: bool) -> Option<u32> {
        self.kernel_registers.iter().find(|&&(vn, vbt, vh, vg, _)| vn == n && vbt == bt && vh == h32 && vg == gated).map(|&(_, _, _, _, r)| r)
    }

    /// Registers per thread of shared-weights variant `(n, bt, gated)` on this device, `None`
    /// if it has none.
    pub fn shared_registers(&self, n: usize, bt: usize, gated: bool) -> Option<u32> {
        self.shared_kernel_registers.iter().find(|&&(vn, vbt, vg, _)| vn == n && vbt == bt && vg == gated).map(|&(_, _, _, r)| r)
    }

    /// Registers per thread of dense slab variant `(mt, kw, half)` on this device, `None` if it
    /// has none.
    pub fn dense_registers(&self, mt: usize, kw: usize, half: bool) -> Option<u32> {
        self.dense_registers.iter().find(|&&(m, k, h, _)| m == mt && k == kw && h == half).map(|&(_, _, _, r)| r)
    }

    /// Dynamic shared memory one CTA may use when `ctas_per_sm` CTAs share an SM.
    pub fn shared_per_cta(&self, ctas_per_sm: usize) -> usize {
        let per_sm = (self.shared_per_sm / ctas_per_sm.max(1)).saturating_sub(SHARED_RESERVED_PER_CTA);
        per_sm.min(self.shared_per_block_optin)
    }
}
