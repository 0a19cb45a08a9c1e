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
//! 6. [`dense`]: the alternative for dense-enough layers — the CTA's rows as dense fp16 tensor-core
//!    fragments ([`DenseShape`]); [`plan()`] chooses it where the register-only sparse lists do
//!    not fit (over the split lists from [`DENSE_OVER_SPLIT_MIN_BATCH`] on, RNN layers on a
//!    half variant from [`DENSE_RNN_OVER_SPLIT_MIN_BATCH`]), for dense RNN layers on a half
//!    variant at large batches ([`DENSE_RNN_MIN_BATCH`], [`DENSE_RNN_MIN_DENSITY`]) or by
//!    [`DENSE_MIN_DENSITY`].
//!
//! [`contract`] holds the launch contract of a planned layer ([`LaunchContract`]): every check of
//! a forward call's arguments (step count, lengths, finite values, `c0` only for LSTM), pure, so
//! it runs without a GPU; the layer's entry points call it first.
//!
//! The fit decision alone — the launch shape, or the refusal — comes from [`check_fit`], which
//! needs only the layer's [`RowStats`] (size, nonzeros, longest row): it tells whether a layer
//! fits before the layer is generated, in microseconds ([`plan`] calls it first).
//!
//! # Reduction
//!
//! Each thread accumulates its `N` words in list order — in f32 with `Products::F32`, in fp16
//! group sums added in f32 with `Products::F16` ([`Plan::products`], [`default_products`]);
//! the `TPR` lanes of a row
//! (consecutive lanes of one warp) then run a shuffle butterfly `acc += shfl_xor(acc, m)` for
//! `m = 16, 8, 4, 2, 1` (those below `TPR`), after which every lane of the group holds the
//! row's sum, and one of them writes it to the gate-sum array in shared memory (where the cell is
//! finished in the warp, a reduce-scatter with the same additions in the same tree leaves each
//! lane one entry's sum, bit for bit the butterfly's). Padding words
//! (+0.0 at the zero column `H`, which holds +0.0) add exactly zero.
//!
//! # Heuristics
//!
//! - Grid: one CTA per SM, all SMs, unless a CTA would get fewer than
//!   [`MIN_UNITS_PER_CTA`] units; then the fewest CTAs holding `⌈H / SMs⌉` (≥ 2) units each.
//! - Threads per row `TPR` and list length `N`: the pair that fits (threads, registers) with the
//!   least [`step_cost`]; `N` is the smallest list length with `TPR·N ≥` the longest row.
//! - Mode ([`check_mode`]): grid-wide (every SM, the exchange through L2) or cluster-resident
//!   (the CTAs of one thread-block cluster of 2–16, the exchange in shared memory; sm_90) —
//!   the cluster where the layer fits one and the estimates ([`grid_step_us`],
//!   [`cluster_fit`]) say it is faster; [`PlanOptions::mode`] forces either.
//! - CTAs per SM: 1 (option). A layer that does not fit gets [`PlanError::DoesNotFit`] with a
//!   density that would, or [`PlanError::SharedMemory`] with the largest batch whose hidden
//!   state fits.
//!
//! Planning speed: ~40 M nonzeros (LSTM, H = 5760, d = 0.3, laid out with an oversized
//! 5760-thread CTA shape through [`layout_with`]) take about 2–4 s in release on 2 cores,
//! parallel over CTAs; the refusal [`plan`] gives for the same layer takes 0.1 s.
//!
//! On the H200 preset (registers from the estimated [`registers::KERNEL_REGISTERS`], random
//! pruning; `cargo run --release -p sprnn --example plan_table` prints the full table): every
//! layer at H ≤ 1152 fits for B ≤ 64; H = 2304 fits up to d = 0.5 (RNN), 0.1 (GRU, LSTM) for
//! B ≤ 16 — LSTM at d = 0.3 does not (72 rows of up to ~770 nonzeros per CTA: TPR 8 × N 96 at
//! 576 threads needs ~99 K registers per SM, TPR 16 needs 1152 threads); H = 4608/5760 fit at
//! d = 0.1 (RNN) and d = 0.01 (all cells). B = 64 exceeds shared memory for H ≥ 2304 (the
//! fp16 hidden state alone is 295 KB at H = 2304; B ≤ 49 fits).
//!
//! # Measured bank conflicts
//!
//! Wavefronts per warp instruction of the hidden-state loads (model in [`bank`]), mean / max
//! over every instruction of the layout, naive order → bank-aware order; the ideal is the phase
//! count (1, 2, 4, 4 for B = 1, 4, 16, 64). Layers: RNN, H = 1152, whole layer in the launch
//! shape the H200 plan picks at B = 4 (128 CTAs of 9 units); block = dense tiles kept with
//! probability d; skewed = row density `4d·x³`, x uniform. Regenerate with
//! `cargo run --release -p sprnn --example bank_conflicts`.
//!
//! | layer | B | TPR × N | naive mean | naive max | bank-aware mean | bank-aware max | ideal |
//! | --- | --- | --- | --- | --- | --- | --- | --- |
//! | uniform d=0.1 | 1 | 8 x 24 | 2.14 | 6 | 1.20 | 8 | 1 |
//! | uniform d=0.1 | 4 | 8 x 24 | 3.93 | 11 | 2.47 | 10 | 2 |
//! | uniform d=0.1 | 16 | 8 x 24 | 8.71 | 21 | 6.07 | 19 | 4 |
//! | uniform d=0.1 | 64 | 8 x 24 | 17.00 | 32 | 16.68 | 32 | 4 |
//! | uniform d=0.3 | 1 | 32 x 16 | 2.70 | 8 | 1.14 | 6 | 1 |
//! | uniform d=0.3 | 4 | 32 x 16 | 4.88 | 11 | 2.34 | 10 | 2 |
//! | uniform d=0.3 | 16 | 32 x 16 | 11.00 | 22 | 6.86 | 24 | 4 |
//! | uniform d=0.3 | 64 | 32 x 16 | 23.27 | 32 | 22.84 | 32 | 4 |
//! | block 16x16 d=0.1 | 1 | 32 x 8 | 1.80 | 5 | 1.01 | 2 | 1 |
//! | block 16x16 d=0.1 | 4 | 32 x 8 | 3.04 | 8 | 2.00 | 2 | 2 |
//! | block 16x16 d=0.1 | 16 | 32 x 8 | 9.46 | 32 | 5.66 | 8 | 4 |
//! | block 16x16 d=0.1 | 64 | 32 x 8 | 15.71 | 32 | 15.59 | 32 | 4 |
//! | block 4x4 d=0.3 | 1 | 32 x 16 | 2.95 | 8 | 1.01 | 5 | 1 |
//! | block 4x4 d=0.3 | 4 | 32 x 16 | 6.13 | 17 | 2.18 | 8 | 2 |
//! | block 4x4 d=0.3 | 16 | 32 x 16 | 13.12 | 32 | 6.71 | 8 | 4 |
//! | block 4x4 d=0.3 | 64 | 32 x 16 | 23.27 | 32 | 22.85 | 32 | 4 |
//! | skewed d=0.1 | 1 | 32 x 16 | 1.58 | 7 | 1.08 | 5 | 1 |
//! | skewed d=0.1 | 4 | 32 x 16 | 2.99 | 11 | 2.16 | 13 | 2 |
//! | skewed d=0.1 | 16 | 32 x 16 | 6.39 | 23 | 5.02 | 27 | 4 |
//! | skewed d=0.1 | 64 | 32 x 16 | 10.59 | 32 | 10.46 | 32 | 4 |
//!
//! Reading the table: at B = 1 and B = 4 the greedy removes 75–100 % of the excess over the
//! ideal (mean 1.01–1.20 against 1.6–3.0 naive; 2.00–2.47 against 3.0–6.1). At B = 16 eight
//! lanes share four bank groups per phase, so 2 wavefronts per phase (8 per instruction) is the
//! floor for distinct columns; padding lanes (which share one word) bring the mean below it, and
//! the order removes 40–60 % of the excess. Its *max* can exceed the naive max (a forced take at
//! the end of a list), but per warp the total is never worse: the cheaper of the two orders is
//! kept (tested per warp). At B = 64 the column
//! stride is 128 bytes and every column maps to banks 0–3: the cost is the number of distinct
//! columns per phase whatever the order, and nothing is gained (the hidden state layout, not the
//! order, would have to change — e.g. a padded or swizzled column stride).

pub mod assign;
pub mod bank;
pub mod contract;
pub mod dense;
pub mod device;
pub mod error;
pub mod pack;
pub mod partition;
mod plan;
pub mod registers;
pub mod synthetic;

pub use assign::WeightOrder;
pub use bank::{batch_tile, BankModel, BankStats};
pub use contract::{ArgumentError, LaunchContract};
pub use device::{registers_per_sm, DeviceInfo};
pub use error::PlanError;
pub use dense::DenseShape;
pub use plan::{
    check_fit, check_mode, cluster_exchange_us, cluster_fit, cluster_sizes, default_grid, default_products, gather_chunks, grid_step_us, layout_dense_with,
    layout_with, layout_with_hidden, plan, product_cycles, shared_word_cycles, slots_per_cta, step_cost, ExecMode, Fit, Geometry, KernelKind, ModeChoice, Plan, PlanOptions,
    RowStats, CELL_CYCLES, CLUSTER_CHUNK_CYCLES, CLUSTER_MARGIN, DENSE_MIN_DENSITY, DENSE_OVER_SPLIT_MIN_BATCH, DENSE_RNN_MIN_BATCH, DENSE_RNN_MIN_DENSITY, DENSE_RNN_OVER_SPLIT_MIN_BATCH, GRID_EXCHANGE_US, GRID_POLL_US, SEPARATE_CELL_CYCLES, SHARED_WORD_INSTRUCTIONS, MIN_UNITS_PER_CTA, SM_CLOCK_GHZ,
    THREADS_PER_ROW,
};
pub use sprnn_kernels::format::{Cell, Products};
