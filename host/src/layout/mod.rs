//! Weight layout and capacity planning: from a pruned layer and a GPU's properties to a launch
//! plan and packed weight buffers, in exactly the order the recurrent kernel reads them.
//!
//! [`plan`] is the entry point: it takes `W_hh` as a [`Csr`](crate::Csr) (`G·H` rows in
//! PyTorch's gate stacking × `H` columns), the [`Cell`], the batch size, a [`DeviceInfo`] and
//! [`PlanOptions`], and returns a [`Plan`] — or a [`PlanError`] saying why the layer does not
//! fit and what would. The kernel contract is `sprnn_kernels::format`; this module only
//! produces data in that format. Steps, one submodule each:
//!
//! 1. [`partition`]: hidden units → CTAs (all gate rows of a unit in one CTA, capped LPT).
//! 2. [`assign`]: each row's nonzeros → its `TPR` threads, `N` words each, in an order.
//! 3. [`bank`]: the shared-memory bank model the order is optimised for, and its measure.
//! 4. [`pack`](mod@pack): entries → packed fp16|column words in the kernel's buffer layout.
//! 5. [`plan()`]: launch shape (grid, threads, TPR, N), fit checks against [`DeviceInfo`] and
//!    [`registers::KERNEL_REGISTERS`], and [`Plan::simulate_matvec`], the CPU twin of the
//!    kernel's product.
//!
//! # Reduction
//!
//! Each thread accumulates its `N` words in f32 in list order; the `TPR` lanes of a row
//! (consecutive lanes of one warp) then run a shuffle butterfly `acc += shfl_xor(acc, m)` for
//! `m = 16, 8, 4, 2, 1` (those below `TPR`), after which every lane of the group holds the
//! row's sum, and one of them writes it to the gate-sum array in shared memory. Padding words
//! (+0.0 at the zero column `H`, which holds +0.0) add exactly zero.
//!
//! # Measured bank conflicts
//!
//! Wavefronts per warp instruction of the hidden-state loads (model in [`bank`]), mean / max
//! over every instruction of the layout, naive order → bank-aware order; the ideal is the phase
//! count (1, 2, 4, 4 for B = 1, 4, 16, 64). Layers: RNN H = 1152, 8 CTAs of the H200 plan's
//! shape (regenerate with `cargo run --release -p sprnn --example bank_conflicts`).
//!
//! BANK_TABLE_PLACEHOLDER
//!
//! Reading the table: at B = 1 and B = 4 the greedy gets almost every instruction to the ideal.
//! At B = 16 eight lanes share four bank groups per phase, so 2 wavefronts per phase (8 per
//! instruction) is the floor for distinct columns; the order reaches it. At B = 64 the column
//! stride is 128 bytes and every column maps to banks 0–3: the cost is the number of distinct
//! columns per phase whatever the order, and nothing is gained (the hidden state layout, not the
//! order, would have to change — e.g. a padded or swizzled column stride).

pub mod assign;
pub mod bank;
pub mod device;
pub mod error;
pub mod pack;
pub mod partition;
mod plan;
pub mod registers;
pub mod synthetic;

pub use assign::WeightOrder;
pub use bank::{batch_tile, BankModel, BankStats};
pub use device::DeviceInfo;
pub use error::PlanError;
pub use plan::{
    default_grid, layout_with, plan, step_cost, Geometry, Plan, PlanOptions, MIN_UNITS_PER_CTA, THREADS_PER_ROW,
};
pub use sprnn_kernels::format::Cell;
