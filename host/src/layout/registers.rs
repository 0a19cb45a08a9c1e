//! Registers per thread of each recurrent-kernel variant `(N, BT)`.
//!
//! **Estimate, to be replaced by ptxas's figures** (`ptxas -arch=sm_90 -v`): `N` words of the
//! register list, `2·BT` for the batch-tile accumulators and the loaded hidden values, and 40 for
//! indices, addresses, loop state and the cell, capped at 255 (the ISA's limit per thread).
//! The planner ([`super::plan`]) reads only [`kernel_registers`].

/// `(N, BT, registers per thread)` for every kernel variant (`N` in
/// [`LIST_LENGTHS`](sprnn_kernels::format::LIST_LENGTHS), `BT` in
/// [`BATCH_TILES`](sprnn_kernels::format::BATCH_TILES)).
pub const KERNEL_REGISTERS: &[(usize, usize, u32)] = &[
    (8, 1, 50),
    (8, 2, 52),
    (8, 4, 56),
    (8, 8, 64),
    (16, 1, 58),
    (16, 2, 60),
    (16, 4, 64),
    (16, 8, 72),
    (24, 1, 66),
    (24, 2, 68),
    (24, 4, 72),
    (24, 8, 80),
    (32, 1, 74),
    (32, 2, 76),
    (32, 4, 80),
    (32, 8, 88),
    (48, 1, 90),
    (48, 2, 92),
    (48, 4, 96),
    (48, 8, 104),
    (64, 1, 106),
    (64, 2, 108),
    (64, 4, 112),
    (64, 8, 120),
    (96, 1, 138),
    (96, 2, 140),
    (96, 4, 144),
    (96, 8, 152),
    (128, 1, 170),
    (128, 2, 172),
    (128, 4, 176),
    (128, 8, 184),
];

/// Registers per thread of the kernel variant with list length `n` and batch tile `bt`, or
/// `None` when there is no such variant.
pub fn kernel_registers(n: usize, bt: usize) -> Option<u32> {
    KERNEL_REGISTERS.iter().find(|&&(vn, vbt, _)| vn == n && vbt == bt).map(|&(_, _, r)| r)
}
