//! The capacity planner: launch shape, fit checks, and the [`Plan`] it returns.

use half::f16;
use sprnn_kernels::format::{
    cluster_exchange_slots, column_of_slot, exchange_slots, round_up, WordFormat, row_of_slot, row_threads, gated_kernel, Cell,
    cluster_register_budget, ClusterSmem, Products, RecurrentSmem, BATCH_TILES, CLUSTER_SIZES, PRODUCT_GROUP, VALUES_PER_POLL, DENSE_MAX_BATCH, DENSE_TILE, LIST_LENGTHS, MAX_HIDDEN, NO_UNIT,
    SHARED_LIST_LENGTHS,
};

use super::assign::WeightOrder;
use super::bank::{batch_tile, BankModel, BankStats};
use super::dense::{self, DenseFit, DenseShape};
use super::device::{registers_per_sm, DeviceInfo};
use super::error::PlanError;
use super::pack::{pack, PackShape, Packed};
use super::partition::{partition, unit_nnz, Partition};
use super::registers::{kernel_registers, shared_kernel_registers};
use crate::fp16::GroupSum;
use crate::sparse::Csr;

/// The planner never gives a CTA fewer hidden units than this (unless `H` is smaller): small
/// layers run on fewer CTAs, which exchange less.
pub const MIN_UNITS_PER_CTA: usize = 2;

/// Threads-per-row values the kernel supports (powers of two up to a warp).
pub const THREADS_PER_ROW: [usize; 6] = [1, 2, 4, 8, 16, 32];

/// Choices the planner would otherwise make itself. `Default` leaves every choice automatic.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PlanOptions {
    /// Number of CTAs (≤ `sm_count × ctas_per_sm`, ≤ `H`).
    pub ctas: Option<usize>,
    /// Threads per row, a power of two ≤ 32.
    pub threads_per_row: Option<usize>,
    /// Words per thread, one of [`LIST_LENGTHS`].
    pub list_len: Option<usize>,
    /// CTAs resident per SM (default 1).
    pub ctas_per_sm: Option<usize>,
    /// Order of the nonzeros in the lists (default bank-aware).
    pub order: WeightOrder,
    /// Hidden state in shared memory as f32 (`Some(true)`, one conversion per value per step
    /// instead of one per use, twice the shared memory and its bandwidth) or fp16 (`Some(false)`,
    /// the default: measured faster). Sparse kernel only.
    pub hidden_f32: Option<bool>,
    /// The kernel: sparse lists or the dense tensor-core slab (default: the sparse lists, and the
    /// dense slab where only it fits, where the sparse lists fit only split over registers and
    /// shared memory and the batch is at least [`DENSE_OVER_SPLIT_MIN_BATCH`] (RNN layers on a
    /// half variant: [`DENSE_RNN_OVER_SPLIT_MIN_BATCH`]), for RNN layers on a half variant from
    /// [`DENSE_RNN_MIN_BATCH`] and [`DENSE_RNN_MIN_DENSITY`], or where the density is at least
    /// [`DENSE_MIN_DENSITY`]).
    pub kernel: Option<KernelKind>,
    /// The arithmetic of the sparse product (default: [`default_products`]). `Products::F16`
    /// needs the hidden state in fp16 and the sparse kernel.
    pub products: Option<Products>,
    /// Words per thread in shared memory (`M`, a multiple of [`PRODUCT_GROUP`]): `Some(0)` keeps
    /// every weight in registers, `Some(m)` puts `m` words of each thread's list in shared memory
    /// (the shared-weights kernel family; fp16 hidden state, grid mode). Default: registers only
    /// where that fits, otherwise the cheapest split that fits; 0 when `list_len` is forced
    /// alone.
    pub shared_words: Option<usize>,
    /// Grid-wide or cluster-resident execution (default: the planner's choice, [`check_mode`]).
    /// With [`ExecMode::Cluster`], `ctas` (if set) is the cluster size, one of
    /// [`CLUSTER_SIZES`]; with `ctas` set and no mode, the planner keeps the grid mode.
    pub mode: Option<ExecMode>,
}

/// How a layer's CTAs exchange the hidden state each step.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ExecMode {
    /// Every SM (or as many CTAs as the layer needs), cooperative launch, the exchange through
    /// global memory (L2): any layer that fits on the chip.
    Grid,
    /// The CTAs of one thread-block cluster (2–16, one per SM; sm_90 and newer), each writing
    /// its share of `h` into every peer's shared memory: no L2 in the step, for layers small
    /// enough for one cluster (`sprnn_kernels::format`'s cluster section).
    Cluster,
}

impl ExecMode {
    /// `grid` or `cluster`, as on command lines and in `sprnn plan`.
    pub fn name(self) -> &'static str {
        match self {
            ExecMode::Grid => "grid",
            ExecMode::Cluster => "cluster",
        }
    }
}

/// The product arithmetic a plan gets unless told otherwise: fp16 pair sums
/// ([`Products::F16`], half the instructions per nonzero) where the hidden state is fp16 and
/// bounded — tanh, GRU and LSTM keep `|h| ≤ 1` (GRU: `≤ max(1, |h0|)`), so a group of eight
/// products stays far from fp16's overflow at 65504 for any weights below 8000 in magnitude —
/// and f32 for ReLU (unbounded `h`) and the f32 hidden state.
pub fn default_products(cell: Cell, hidden_f32: bool) -> Products {
    if hidden_f32 || cell == Cell::RnnRelu {
        Products::F32
    } else {
        Products::F16
    }
}

/// Which kernel a plan runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KernelKind {
    /// Packed nonzeros in registers, the sparse product (`sprnn_recurrent_*`).
    Sparse,
    /// Dense fp16 tensor-core fragments in registers (`sprnn_dense_*`, [`super::dense`]).
    Dense,
}

/// Density from which the planner prefers the dense slab where both kernels fit, for every
/// cell: above 1, i.e. never — measured on the H200 (bench/RESULTS.md, sessions 4 and 14), the
/// dense slab was slower than the register-only sparse lists at every point both could run for
/// GRU and LSTM (H = 1152, d = 0.1–0.3) and for RNN layers below [`DENSE_RNN_MIN_BATCH`]
/// (RNN-tanh H = 2304 B = 4 d = 0.3: 2.40 against 2.29, session 15), so it is used there only
/// where those do not fit (see [`DENSE_OVER_SPLIT_MIN_BATCH`]), or on request.
pub const DENSE_MIN_DENSITY: f64 = 1.5;

/// Batch from which the planner prefers the dense slab to the sparse lists split over registers
/// and shared memory, where both fit, for GRU and LSTM. Measured on the H200 (bench/RESULTS.md,
/// session 14): LSTM H = 1152 d = 0.5 B = 1, the split lists 2.01 µs per step against the dense
/// slab's 3.49; RNN-tanh H = 2304 d = 0.5 B = 4 (then on the same rule) 2.63 against 2.90.
pub const DENSE_OVER_SPLIT_MIN_BATCH: usize = 4;

/// The same for RNN layers whose dense slab is a half variant (`DenseShape::half`: those gather
/// per warp). Measured on the H200 (session 15, RNN-tanh H = 2304 d = 0.5): at B = 2 the dense
/// slab 2.04 against the split lists' 2.12, at B = 4 2.41 against 2.90; at B = 1 2.07 against
/// 1.82.
pub const DENSE_RNN_OVER_SPLIT_MIN_BATCH: usize = 2;

/// Batch from which RNN layers of at least [`DENSE_RNN_MIN_DENSITY`] whose dense slab is a half
/// variant take it over the register-only sparse lists. Measured on the H200 (session 15): at
/// RNN-tanh H = 2304 B = 8 d = 0.3 the dense slab 3.12 µs per step against the sparse lists'
/// 4.24 (d = 0.2: 3.15 against 3.08); at B = 4 d = 0.3 2.40 against 2.29. The dense slab's step
/// hardly depends on the density; the sparse lists' grows with it and with the batch. The other
/// dense variants lost at B = 8 (H = 1152 d = 0.3, `mt1_kw4`: 2.59 against 2.38; H = 256: 1.99
/// against the cluster mode's 1.30), so they keep the old rules.
pub const DENSE_RNN_MIN_BATCH: usize = 8;

/// See [`DENSE_RNN_MIN_BATCH`]: between the densities measured (0.2: the sparse lists, 0.3: the
/// dense slab), below 0.3 so that a nominal d = 0.3 layer of a little less takes the dense slab.
pub const DENSE_RNN_MIN_DENSITY: f64 = 0.25;

/// A launch shape: grid, threads, units, list length. [`plan`] chooses one for a device;
/// [`layout_with`] lays a layer out for a given one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Geometry {
    /// CTAs.
    pub grid: usize,
    /// Entries per CTA in the unit table.
    pub units_per_cta: usize,
    /// Threads per CTA (a multiple of 32, ≥ `units_per_cta · G · threads_per_row`).
    pub threads_per_cta: usize,
    /// Threads per row (power of two ≤ 32).
    pub threads_per_row: usize,
    /// Words per thread in registers (one of [`LIST_LENGTHS`]; of `SHARED_LIST_LENGTHS` when
    /// `shared_words > 0`).
    pub list_len: usize,
    /// Words per thread in shared memory (`M`, a multiple of `PRODUCT_GROUP`; 0 for the
    /// register-only kernels). A thread's list is `list_len + shared_words` words; with `M > 0`
    /// the layer runs on the shared-weights family (`format::shared_kernel_name`).
    pub shared_words: usize,
    /// GRU and LSTM: run on the gated kernel family — rows laid out as whole units per warp and
    /// the cell finished in the row reduction; allowed only where
    /// `sprnn_kernels::format::gated_kernel(G, threads_per_row, batch tile)`. `false`: the RNN
    /// family (rows one after the other, GRU and LSTM with a separate cell phase).
    pub gated_kernel: bool,
}

/// A layer laid out for the recurrent kernel: launch shape, unit table, packed weights.
///
/// Only the planner builds one ([`plan`], [`layout_with`], [`layout_with_hidden`],
/// [`layout_dense_with`]), and it checks the shape against the layer first, so a `Plan`'s
/// buffers always match its [`Geometry`]: `(list_len + shared_words) × grid × threads_per_cta` packed words,
/// `grid × units_per_cta` unit-table entries naming units below `H`, and packed columns no
/// larger than [`Plan::columns`]. The launch shape and what it needs of the device are the
/// plan's [`Fit`] ([`Plan::fit`], which holds its [`Geometry`]); the fields are read through
/// methods of the same names.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    cell: Cell,
    hidden: usize,
    batch: usize,
    fit: Fit,
    nnz: usize,
    max_row_nnz: usize,
    cta_nnz: Vec<usize>,
    units: Vec<u32>,
    weights: Vec<u32>,
    order: WeightOrder,
    bank: BankStats,
    bank_naive: BankStats,
    mode_reason: String,
}

impl Plan {
    /// Cell type.
    pub fn cell(&self) -> Cell {
        self.cell
    }

    /// Hidden size H.
    pub fn hidden(&self) -> usize {
        self.hidden
    }

    /// Batch size B.
    pub fn batch(&self) -> usize {
        self.batch
    }

    /// The launch shape this plan was laid out for and what it needs of the device.
    pub fn fit(&self) -> Fit {
        self.fit
    }

    /// The launch shape of this plan: grid, units per CTA, threads per CTA and per row, list
    /// length, kernel family.
    pub fn geometry(&self) -> Geometry {
        self.fit.geometry
    }

    /// CTAs in the grid (all resident at once).
    pub fn grid(&self) -> usize {
        self.fit.geometry.grid
    }

    /// CTAs per SM the fit was checked for.
    pub fn ctas_per_sm(&self) -> usize {
        self.fit.ctas_per_sm
    }

    /// Threads per CTA.
    pub fn threads_per_cta(&self) -> usize {
        self.fit.geometry.threads_per_cta
    }

    /// Threads sharing one row.
    pub fn threads_per_row(&self) -> usize {
        self.fit.geometry.threads_per_row
    }

    /// Entries per CTA in [`Plan::units`].
    pub fn units_per_cta(&self) -> usize {
        self.fit.geometry.units_per_cta
    }

    /// Words per thread (`N`, the kernel variant; `4·MT·KW` for the dense slab).
    pub fn list_len(&self) -> usize {
        self.fit.geometry.list_len
    }

    /// Words per thread in shared memory (`M`; 0 when every weight is in registers).
    pub fn shared_words(&self) -> usize {
        self.fit.geometry.shared_words
    }

    /// Words per thread in all: [`Plan::list_len`] in registers plus [`Plan::shared_words`].
    pub fn words_per_thread(&self) -> usize {
        self.fit.geometry.list_len + self.fit.geometry.shared_words
    }

    /// The largest batch this launch shape has shared memory for, the hidden state and the
    /// shared weight words together ([`Fit::batch_limit`]).
    pub fn batch_limit(&self) -> usize {
        self.fit.batch_limit
    }

    /// Runs on the gated kernel family (GRU or LSTM, a unit's gate rows in one warp, the cell
    /// finished in the row reduction; see [`Geometry::gated_kernel`]). Never for the dense slab.
    pub fn gated_kernel(&self) -> bool {
        self.fit.geometry.gated_kernel
    }

    /// Batch values per shared-memory load (`BT`, the kernel variant).
    pub fn batch_tile(&self) -> usize {
        self.fit.batch_tile
    }

    /// Hidden state in shared memory as f32 (else fp16; the kernel variant).
    pub fn hidden_f32(&self) -> bool {
        self.fit.hidden_f32
    }

    /// The arithmetic of the sparse product (`Products::F32` for the dense slab).
    pub fn products(&self) -> Products {
        self.fit.products
    }

    /// This plan with the product arithmetic `products`, or [`PlanError::BadOption`] where the
    /// plan cannot run it (`Products::F16` with an f32 hidden state or on the dense slab).
    pub fn with_products(mut self, products: Products) -> Result<Plan, PlanError> {
        check_products(products, self.fit.hidden_f32, self.fit.dense.is_some())?;
        self.fit.products = products;
        Ok(self)
    }

    /// Dynamic shared memory per CTA, bytes.
    pub fn smem_bytes(&self) -> usize {
        self.fit.smem_bytes
    }

    /// Registers per thread of the kernel variant `(N, BT, hidden_f32)` (from [`kernel_registers`]).
    pub fn registers_per_thread(&self) -> u32 {
        self.fit.registers_per_thread
    }

    /// Registers per SM the launch needs at [`Plan::ctas_per_sm`] ([`registers_per_sm`]).
    pub fn registers_per_sm(&self) -> usize {
        self.fit.registers_per_sm
    }

    /// Nonzeros of `W_hh`.
    pub fn nnz(&self) -> usize {
        self.nnz
    }

    /// Nonzeros of the longest row.
    pub fn max_row_nnz(&self) -> usize {
        self.max_row_nnz
    }

    /// Nonzeros each CTA holds.
    pub fn cta_nnz(&self) -> &[usize] {
        &self.cta_nnz
    }

    /// `[grid][units_per_cta]` hidden units, [`NO_UNIT`] for unused entries.
    pub fn units(&self) -> &[u32] {
        &self.units
    }

    /// `[list_len + shared_words][grid * threads_per_cta]` packed words (entries from
    /// `list_len` on go to shared memory), in [`Plan::word_format`].
    pub fn weights(&self) -> &[u32] {
        &self.weights
    }

    /// The layout of the packed words ([`WordFormat`]): byte offsets in the cluster mode,
    /// column indices in the grid mode (not meaningful for the dense slab).
    pub fn word_format(&self) -> WordFormat {
        word_format(self.fit.cluster.is_some(), self.batch)
    }

    /// Order the lists were built in.
    pub fn order(&self) -> WeightOrder {
        self.order
    }

    /// Bank conflicts of the weights as laid out.
    pub fn bank(&self) -> BankStats {
        self.bank
    }

    /// Bank conflicts the naive order would have had (same launch shape).
    pub fn bank_naive(&self) -> BankStats {
        self.bank_naive
    }

    /// The dense slab's shape when the plan runs the dense kernel (then `weights` holds its
    /// fragments, `list_len` is its fragment words per thread, and `threads_per_row`,
    /// `batch_tile`, `hidden_f32` and the bank statistics do not apply).
    pub fn dense(&self) -> Option<DenseShape> {
        self.fit.dense
    }

    /// Grid-wide or cluster-resident execution.
    pub fn mode(&self) -> ExecMode {
        if self.fit.cluster.is_some() {
            ExecMode::Cluster
        } else {
            ExecMode::Grid
        }
    }

    /// CTAs of the thread-block cluster in cluster-resident mode (then the whole grid).
    pub fn cluster_size(&self) -> Option<usize> {
        self.fit.cluster
    }

    /// Why the planner chose the mode (forced, or its estimates of both).
    pub fn mode_reason(&self) -> &str {
        &self.mode_reason
    }
}

/// Plans a layer for a device: chooses the launch shape, checks that everything fits and stays
/// resident, and lays the weights out.
///
/// `w_hh` is PyTorch's `weight_hh` after pruning: `G·H` rows (row `gate·H + unit`) × `H`.
///
/// Decisions (each can be overridden by `opts`):
///
/// - **CTAs per SM**: 1.
/// - **Grid**: every SM, unless that would give a CTA fewer than [`MIN_UNITS_PER_CTA`] units;
///   then `units_per_cta = ⌈H / (SMs·ctas_per_sm)⌉` (at least 2) and the grid is the fewest CTAs
///   holding `H` units at that many per CTA (e.g. H = 2304 on 132 SMs: 18 units, 128 CTAs).
/// - **Units**: capped LPT over unit nonzeros (see [`partition`](super::partition)).
/// - **Threads per row and list length**: for each `TPR` the smallest `N` with
///   `TPR·N ≥` the longest row; of the shapes that fit (threads ≤ 1024 and per-SM limits,
///   registers ≤ 255 per thread and ≤ the register file per SM, see [`kernel_registers`]), the one
///   with the least estimated time per step, [`step_cost`].
/// - **Words in shared memory** (the fp16 hidden state, grid mode): only where no register-only
///   shape fits, each `TPR` with each register list of the shared-weights family and the
///   shared words `M` that make up the longest row; a shape fits when its hidden state, the
///   kernel's other parts and `M · threads` words fit the shared memory per CTA. The cheapest
///   ([`step_cost`] plus [`shared_word_cycles`]) wins, and [`Fit::batch_limit`] says how far
///   the batch can grow beside those words. Where the dense slab holds a layer that only such a
///   split holds, the slab runs (as before the split existed).
pub fn plan(w_hh: &Csr, cell: Cell, batch: usize, device: &DeviceInfo, opts: &PlanOptions) -> Result<Plan, PlanError> {
    validate(w_hh, cell, batch)?;
    let ModeChoice { fit, reason, .. } = check_mode(&RowStats::of(w_hh), cell, batch, device, opts)?;
    if fit.dense.is_some() {
        return Ok(build_dense(w_hh, cell, batch, fit, opts.order, reason));
    }
    check_geometry(w_hh, cell, batch, &fit.geometry, fit.cluster.is_some())?;
    Ok(build(w_hh, cell, batch, fit, opts.order, reason))
}

/// The dense slab [`plan`] could use: its fit, grid and units per CTA, or `None` (options that
/// only the sparse kernel has, more than one CTA per SM, or no variant fits). Errors only for
/// options that are wrong for either kernel (as [`check_fit`] reports them).
fn dense_fit(stats: &RowStats, cell: Cell, batch: usize, device: &DeviceInfo, opts: &PlanOptions) -> Result<Option<(DenseFit, usize, usize)>, PlanError> {
    let sparse_only = opts.kernel == Some(KernelKind::Sparse)
        || opts.ctas_per_sm.is_some_and(|c| c != 1)
        || opts.threads_per_row.is_some()
        || opts.list_len.is_some()
        || opts.hidden_f32 == Some(true)
        || opts.products == Some(Products::F16)
        || opts.shared_words.is_some_and(|m| m > 0);
    validate_sizes(stats.hidden, stats.rows, cell, batch)?;
    if sparse_only {
        return Ok(None);
    }
    let (grid, upc) = match opts.ctas {
        Some(c) if c == 0 || c > device.sm_count || c > stats.hidden => return Ok(None),
        Some(c) => (c, stats.hidden.div_ceil(c)),
        None => default_grid(stats.hidden, device.sm_count),
    };
    if check_columns(stats.hidden, grid, upc, batch).is_err() {
        return Ok(None);
    }
    let slots = exchange_slots(upc, batch);
    Ok(dense::fit(cell, upc, slots, grid * slots, batch, device).map(|f| (f, grid, upc)))
}

/// Hidden-state columns each CTA owns: [`exchange_slots`] (whole 8-byte stores) in the grid
/// mode, [`cluster_exchange_slots`] (whole 16-byte remote stores) in the cluster mode.
pub fn slots_per_cta(units_per_cta: usize, batch: usize, cluster: bool) -> usize {
    if cluster {
        cluster_exchange_slots(units_per_cta, batch)
    } else {
        exchange_slots(units_per_cta, batch)
    }
}

/// The units of each CTA (capped LPT over unit nonzeros) and `w_hh` with the kernel's columns
/// ([`Plan::columns`]) for `grid` CTAs of `upc` units at batch `batch`, `slots` columns each.
fn partition_columns(w_hh: &Csr, gates: usize, grid: usize, upc: usize, slots: usize) -> (Partition, Csr) {
    let part = partition(&unit_nnz(w_hh, gates), grid, upc);
    let w_cols = rename_columns(w_hh, &part.units, upc, slots, grid * slots);
    (part, w_cols)
}

/// Lays a layer out as the dense slab of `fit` (a [`Fit::dense`]).
fn build_dense(w_hh: &Csr, cell: Cell, batch: usize, fit: Fit, order: WeightOrder, mode_reason: String) -> Plan {
    let shape = fit.dense.expect("a dense fit");
    let (grid, upc) = (fit.geometry.grid, fit.geometry.units_per_cta);
    let (part, w_cols) = partition_columns(w_hh, cell.gates(), grid, upc, exchange_slots(upc, batch));
    let weights = dense::pack(&w_cols, cell, &part.units, grid, upc, shape);
    let packed = Packed { weights, bank: BankStats::default(), bank_naive: BankStats::default() };
    Plan::laid_out(w_hh, cell, batch, fit, part, packed, order, mode_reason)
}

/// What the fit decision of [`plan`] needs to know about `W_hh`: its shape and row lengths.
///
/// [`RowStats::of`] reads it from a matrix; a caller that knows the row lengths of a layer it has
/// not built yet (e.g. [`crate::sparse::random_recurrent`] gives every row `round(d·H)`
/// nonzeros) can fill it in directly and ask [`check_fit`] without building the layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RowStats {
    /// Hidden size H (columns of `W_hh`).
    pub hidden: usize,
    /// Rows of `W_hh` (`G·H` for a well-formed layer).
    pub rows: usize,
    /// Nonzeros of `W_hh`.
    pub nnz: usize,
    /// Nonzeros of the longest row.
    pub max_row_nnz: usize,
    /// Index of a row with `max_row_nnz` nonzeros (reported by [`PlanError::RowTooLong`]).
    pub longest_row: usize,
}

impl RowStats {
    /// The statistics of a matrix.
    pub fn of(w_hh: &Csr) -> RowStats {
        let (mut longest_row, mut max_row_nnz) = (0, 0);
        for r in 0..w_hh.rows() {
            if w_hh.row_nnz(r) > max_row_nnz {
                (longest_row, max_row_nnz) = (r, w_hh.row_nnz(r));
            }
        }
        RowStats { hidden: w_hh.cols(), rows: w_hh.rows(), nnz: w_hh.nnz(), max_row_nnz, longest_row }
    }

    /// The statistics of a layer whose `G·H` rows (`G = cell.gates()`) all hold `row_nnz`
    /// nonzeros, such as [`crate::sparse::random_recurrent`]`(seed, G·H, H, d, r)` with
    /// `row_nnz = round(d·H)`.
    pub fn uniform(cell: Cell, hidden: usize, row_nnz: usize) -> RowStats {
        let rows = cell.gates() * hidden;
        RowStats { hidden, rows, nnz: rows.saturating_mul(row_nnz), max_row_nnz: row_nnz, longest_row: 0 }
    }
}

/// The launch shape [`plan`] chooses for a layer and what it needs of the device, without laying
/// the weights out ([`check_fit`]); a [`Plan`] carries the one it was laid out for
/// ([`Plan::fit`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fit {
    /// Grid, units per CTA, threads per CTA and per row, list length (`N`), kernel family.
    pub geometry: Geometry,
    /// Batch values per shared-memory load (`BT`).
    pub batch_tile: usize,
    /// Hidden state in shared memory as f32 (else fp16).
    pub hidden_f32: bool,
    /// The arithmetic of the sparse product (`Products::F32` on the dense slab).
    pub products: Products,
    /// CTAs per SM the fit was checked for.
    pub ctas_per_sm: usize,
    /// Registers per thread of the kernel variant `(N, BT)` on the device.
    pub registers_per_thread: u32,
    /// Registers per SM the launch needs (allocation granularity and scheduler split included).
    pub registers_per_sm: usize,
    /// Dynamic shared memory per CTA, bytes (the shared weight words included).
    pub smem_bytes: usize,
    /// The largest batch for which this launch shape (the same threads and lists, the same
    /// shared weight words) still has the shared memory: the hidden state and the weights share
    /// it. Equal to the batch where nothing is left over; 0 when it was not computed (a layout
    /// made without a device).
    pub batch_limit: usize,
    /// The dense slab's shape when the layer runs the dense kernel (then `list_len` is its
    /// fragment words per thread and `threads_per_row`, `batch_tile`, `hidden_f32` do not apply).
    pub dense: Option<DenseShape>,
    /// Cluster-resident mode: the CTAs of the one thread-block cluster (= `geometry.grid`);
    /// `None` in the grid mode.
    pub cluster: Option<usize>,
}

impl Fit {
    /// The dense slab `f` on `grid` CTAs of `upc` units at batch `batch`.
    fn dense(f: DenseFit, grid: usize, upc: usize, batch: usize) -> Fit {
        let geometry = Geometry { grid, units_per_cta: upc, threads_per_cta: f.shape.threads(), threads_per_row: 1, list_len: f.shape.words_per_thread(), shared_words: 0, gated_kernel: false };
        Fit {
            geometry,
            batch_tile: batch,
            hidden_f32: false,
            products: Products::F32,
            ctas_per_sm: 1,
            registers_per_thread: f.registers_per_thread,
            registers_per_sm: f.registers_per_sm,
            smem_bytes: f.smem_bytes,
            batch_limit: 0,
            dense: Some(f.shape),
            cluster: None,
        }
    }

    /// The sparse kernel on `geometry` at batch `batch`, one CTA per SM, with the registers
    /// ptxas reported for its variant (0 for a variant the kernel does not have): the fit of a
    /// layout made without a device ([`layout_with_hidden`]). `geometry` must have been checked
    /// against the layer.
    fn sparse_unchecked(cell: Cell, batch: usize, geometry: Geometry, hidden_f32: bool) -> Fit {
        let registers_per_thread = if geometry.shared_words > 0 {
            shared_kernel_registers(geometry.list_len, batch_tile(batch), geometry.gated_kernel).unwrap_or(0)
        } else {
            kernel_registers(geometry.list_len, batch_tile(batch), hidden_f32, geometry.gated_kernel).unwrap_or(0)
        };
        Fit {
            geometry,
            batch_tile: batch_tile(batch),
            hidden_f32,
            products: default_products(cell, hidden_f32),
            ctas_per_sm: 1,
            registers_per_thread,
            registers_per_sm: registers_per_sm(geometry.threads_per_cta, 1, registers_per_thread as usize),
            smem_bytes: smem_bytes_for(cell, geometry.grid, geometry.units_per_cta, batch, hidden_f32)
                .with_weights(geometry.shared_words, geometry.threads_per_cta),
            batch_limit: 0,
            dense: None,
            cluster: None,
        }
    }
}

/// The fit decision of [`plan`] from a layer's [`RowStats`]: the launch shape `plan` would choose,
/// or the same [`PlanError`] it would return, without building or laying out any weights (cost:
/// a few dozen candidate shapes, microseconds).
///
/// For a matrix `w`, `check_fit(&RowStats::of(&w), …)` agrees with `plan(&w, …)` on every
/// outcome except the checks that need the values themselves ([`PlanError::ValueOutOfRange`])
/// or the shape of the matrix beyond its row and column counts.
pub fn check_fit(stats: &RowStats, cell: Cell, batch: usize, device: &DeviceInfo, opts: &PlanOptions) -> Result<Fit, PlanError> {
    check_mode(stats, cell, batch, device, opts).map(|c| c.fit)
}

/// The grid mode's fit decision (the sparse lists or the dense slab; see [`check_fit`]).
fn grid_fit(stats: &RowStats, cell: Cell, batch: usize, device: &DeviceInfo, opts: &PlanOptions) -> Result<Fit, PlanError> {
    let dense = dense_fit(stats, cell, batch, device, opts)?;
    let dense_as_fit = |(f, grid, upc): (DenseFit, usize, usize)| Fit::dense(f, grid, upc, batch);
    if opts.kernel == Some(KernelKind::Dense) {
        return dense.map(dense_as_fit).ok_or_else(|| PlanError::BadOption {
            option: "kernel",
            value: 1,
            allowed: format!(
                "sparse: the dense slab needs B <= {DENSE_MAX_BATCH}, one CTA per SM, at most 64 gate rows per CTA, no sparse-only option, and registers and shared memory on the {}",
                device.name
            ),
        });
    }
    // `dense` is `None` when the sparse kernel was asked for.
    let sparse = sparse_fit(stats, cell, batch, device, opts);
    let density = stats.nnz as f64 / (stats.rows as f64 * stats.hidden.max(1) as f64);
    // Where only a split of registers and shared memory holds the sparse lists, the dense slab
    // (where it fits) runs the layer from batch DENSE_OVER_SPLIT_MIN_BATCH on (RNN layers on a
    // half variant, which gathers per warp: DENSE_RNN_OVER_SPLIT_MIN_BATCH): its product costs
    // the same at every batch up to 8, the split's grows with the batch. Dense RNN layers on a
    // half variant take it over the register-only lists too at large batches (measured: the
    // other variants lost there, RNN-tanh H = 1152 and 256 at B = 8).
    let half = dense.as_ref().is_some_and(|(f, _, _)| f.shape.half);
    let split_min_batch = if half { DENSE_RNN_OVER_SPLIT_MIN_BATCH } else { DENSE_OVER_SPLIT_MIN_BATCH };
    let split_only = sparse.as_ref().is_ok_and(|f| f.geometry.shared_words > 0) && opts.shared_words.is_none() && batch >= split_min_batch;
    let dense_rnn = half && batch >= DENSE_RNN_MIN_BATCH && density >= DENSE_RNN_MIN_DENSITY && opts.shared_words.is_none();
    match dense {
        Some(d) if sparse.is_err() || split_only || dense_rnn || density >= DENSE_MIN_DENSITY => Ok(dense_as_fit(d)),
        _ => sparse,
    }
}

/// The sparse kernel's fit decision (see [`check_fit`]).
fn sparse_fit(stats: &RowStats, cell: Cell, batch: usize, device: &DeviceInfo, opts: &PlanOptions) -> Result<Fit, PlanError> {
    let hidden = stats.hidden;
    validate_sizes(hidden, stats.rows, cell, batch)?;
    let cps = sparse_options(device, opts)?;
    let (grid, upc) = sparse_grid(hidden, device, cps, opts)?;
    check_columns(hidden, grid, upc, batch)?;
    // fp16 by default: measured faster than f32 at every point but one (H200, bench/RESULTS.md):
    // the f32 state's 16-byte loads need twice the shared-memory wavefronts of the fp16 ones,
    // which costs more than the conversions they save.
    let hidden_f32 = opts.hidden_f32.unwrap_or(false);
    let products = opts.products.unwrap_or(default_products(cell, hidden_f32));
    check_products(products, hidden_f32, false)?;
    sparse_smem(cell, hidden, batch, device, cps, (grid, upc), hidden_f32)?;
    check_shared_words(opts, hidden_f32)?;

    // Registers, threads and the words in shared memory.
    let max_row_nnz = stats.max_row_nnz;
    let bt = batch_tile(batch);
    let limits = Limits::new(device, cps);
    let shapes = candidate_shapes(device, cell, (grid_columns(grid, upc, batch), grid, upc, batch, cps), max_row_nnz, (hidden_f32, products), opts, true);
    if let (Some(tpr), Some(n)) = (opts.threads_per_row, opts.list_len) {
        let m = forced_shared_words(opts).unwrap_or(0);
        if tpr * (n + m) < max_row_nnz {
            return Err(PlanError::RowTooLong { row: stats.longest_row, nnz: max_row_nnz, threads_per_row: tpr, list_len: n + m });
        }
    }
    let Some(best) = best_shape(&shapes, max_row_nnz, &limits) else {
        return Err(does_not_fit(stats, batch, device, cps, grid, upc, cell, (hidden_f32, products), &shapes, opts, &limits));
    };
    let geometry = Geometry { grid, units_per_cta: upc, threads_per_cta: best.nt, threads_per_row: best.tpr, list_len: best.n, shared_words: best.m, gated_kernel: best.gated };
    let have_smem = device.shared_per_cta(cps);
    let smem_at = |b: usize| smem_bytes_for(cell, grid, upc, b, hidden_f32).with_weights(best.m, best.nt);
    Ok(Fit {
        geometry,
        batch_tile: bt,
        hidden_f32,
        products,
        ctas_per_sm: cps,
        registers_per_thread: best.regs,
        registers_per_sm: best.need_regs,
        smem_bytes: best.smem,
        batch_limit: batch_limit(batch, hidden, have_smem, smem_at),
        dense: None,
        cluster: None,
    })
}

/// Of the shapes that hold the longest row and fit the device, the one [`plan`] runs: the
/// cheapest ([`step_cost`]) that keeps every weight in registers, and only where none does,
/// the cheapest with words in shared memory. (Register-only shapes come first although the cost
/// model could prefer a split, e.g. more threads for the gather: a split's shared loads are
/// not measured yet, and the layers that fitted before keep their plans.)
fn best_shape(shapes: &[Shape], max_row_nnz: usize, limits: &Limits) -> Option<Shape> {
    let fitting: Vec<&Shape> = shapes.iter().filter(|s| (s.n + s.m) * s.tpr >= max_row_nnz && limits.fits(s)).collect();
    let cheapest = |shared: bool| {
        fitting.iter().filter(|s| (s.m > 0) == shared).min_by(|a, b| a.cost.total_cmp(&b.cost).then(a.nt.cmp(&b.nt))).map(|s| **s)
    };
    cheapest(false).or_else(|| cheapest(true))
}

/// The largest batch from `batch` up whose shared memory (`smem_at(b)`: the hidden state, the
/// rest of the kernel's parts and the shared weight words) fits `have_smem`: how far the batch
/// can grow before the hidden state crowds the weights out. `batch` itself where nothing is
/// left over.
fn batch_limit(batch: usize, hidden: usize, have_smem: usize, smem_at: impl Fn(usize) -> usize) -> usize {
    // The hidden state alone takes 2·(H + 1) bytes per batch entry: no larger batch can fit.
    let top = (have_smem / (2 * (hidden + 1))).max(batch);
    (batch..=top).take_while(|&b| smem_at(b) <= have_smem).last().unwrap_or(batch)
}

/// The shared words per thread the options force: `opts.shared_words`, or 0 where only the
/// register list's length is forced (`list_len` alone keeps its meaning: every word in
/// registers); `None` leaves the choice to the planner.
fn forced_shared_words(opts: &PlanOptions) -> Option<usize> {
    opts.shared_words.or(opts.list_len.map(|_| 0))
}

/// [`PlanError::BadOption`] for a forced `shared_words` the kernels do not have: a multiple of
/// [`PRODUCT_GROUP`], with the fp16 hidden state.
fn check_shared_words(opts: &PlanOptions, hidden_f32: bool) -> Result<(), PlanError> {
    match opts.shared_words {
        Some(m) if m % PRODUCT_GROUP != 0 || m > u16::MAX as usize => Err(PlanError::BadOption {
            option: "shared_words",
            value: m,
            allowed: format!("a multiple of {PRODUCT_GROUP} up to {}", u16::MAX as usize / PRODUCT_GROUP * PRODUCT_GROUP),
        }),
        Some(m) if m > 0 && hidden_f32 => Err(PlanError::BadOption {
            option: "shared_words",
            value: m,
            allowed: "0 with the hidden state in f32 (the shared-weights kernels keep it in fp16)".into(),
        }),
        Some(m) if m > 0 && opts.list_len.is_some_and(|n| !SHARED_LIST_LENGTHS.contains(&n)) => Err(PlanError::BadOption {
            option: "list_len",
            value: opts.list_len.unwrap_or(0),
            allowed: format!("one of {SHARED_LIST_LENGTHS:?} with words in shared memory"),
        }),
        _ => Ok(()),
    }
}

/// The sparse kernel's options checked against the device: CTAs per SM (returned), threads per
/// row, list length.
fn sparse_options(device: &DeviceInfo, opts: &PlanOptions) -> Result<usize, PlanError> {
    let cps = opts.ctas_per_sm.unwrap_or(1);
    // At least one warp per CTA: more CTAs per SM than `max_threads_per_sm / 32` can never be
    // resident (and the bound keeps `sm_count * ctas_per_sm` from overflowing).
    let max_cps = (device.max_threads_per_sm / 32).max(1);
    if cps == 0 || cps > max_cps {
        return Err(PlanError::BadOption {
            option: "ctas_per_sm",
            value: cps,
            allowed: format!("1 to {max_cps} (one warp per CTA on the {})", device.name),
        });
    }
    if let Some(t) = opts.threads_per_row {
        if !THREADS_PER_ROW.contains(&t) {
            return Err(PlanError::BadOption { option: "threads_per_row", value: t, allowed: "1, 2, 4, 8, 16 or 32".into() });
        }
    }
    if let Some(n) = opts.list_len {
        if !LIST_LENGTHS.contains(&n) {
            return Err(PlanError::BadOption { option: "list_len", value: n, allowed: format!("one of {LIST_LENGTHS:?}") });
        }
    }
    Ok(cps)
}

/// The grid and units per CTA: forced by `opts.ctas` (checked against co-residency and `H`) or
/// [`default_grid`].
fn sparse_grid(hidden: usize, device: &DeviceInfo, cps: usize, opts: &PlanOptions) -> Result<(usize, usize), PlanError> {
    let max_ctas = device.sm_count * cps;
    match opts.ctas {
        Some(0) => Err(PlanError::BadOption { option: "ctas", value: 0, allowed: "at least 1".into() }),
        Some(c) if c > max_ctas => Err(PlanError::NotCoResident { ctas: c, ctas_per_sm: cps, sm_count: device.sm_count }),
        Some(c) if c > hidden => Err(PlanError::BadOption { option: "ctas", value: c, allowed: format!("at most H = {hidden}") }),
        Some(c) => Ok((c, hidden.div_ceil(c))),
        None => Ok(default_grid(hidden, max_ctas)),
    }
}

/// Shared memory per CTA of the sparse kernel, or [`PlanError::SharedMemory`] with the largest
/// batch that fits.
fn sparse_smem(cell: Cell, hidden: usize, batch: usize, device: &DeviceInfo, cps: usize, (grid, upc): (usize, usize), hidden_f32: bool) -> Result<usize, PlanError> {
    let have_smem = device.shared_per_cta(cps);
    let smem = |b: usize| smem_bytes_for(cell, grid, upc, b, hidden_f32).total;
    let smem_bytes = smem(batch);
    if smem_bytes > have_smem {
        // The largest b such that every batch up to b fits ("batch <= b fits" must hold for
        // each smaller one too: shared memory is not monotone in b, since each CTA's columns
        // are padded until S·b is a multiple of 4). At most `have_smem / 2H` candidates.
        let top = (batch - 1).min(have_smem / (2 * (hidden + 1)));
        let lo = (1..=top).take_while(|&b| smem(b) <= have_smem).last().unwrap_or(0);
        return Err(PlanError::SharedMemory { need_bytes: smem_bytes, have_bytes: have_smem, batch, max_batch: lo });
    }
    Ok(smem_bytes)
}

/// Every candidate launch shape: each threads-per-row (or the forced one) with the shortest list
/// that holds the longest row (or the forced one), on both kernel families where the gated one
/// can run it, bare or widened by padding threads for the gather. With `shared` (the grid
/// mode's sparse kernel, fp16 hidden state) also, for each threads-per-row and each register
/// list of the shared-weights family too short for the longest row, the shared words that make
/// up the rest (`M`, whole groups of [`PRODUCT_GROUP`]); or exactly the forced
/// `opts.shared_words`.
#[allow(clippy::too_many_arguments)]
fn candidate_shapes(device: &DeviceInfo, cell: Cell, (columns, grid, upc, batch, cps): (usize, usize, usize, usize, usize), max_row_nnz: usize, state: (bool, Products), opts: &PlanOptions, shared: bool) -> Vec<Shape> {
    let bt = batch_tile(batch);
    let gates = cell.gates();
    let tprs: Vec<usize> = opts.threads_per_row.map_or(THREADS_PER_ROW.to_vec(), |t| vec![t]);
    let shared = shared && !state.0;
    let lists = |tpr: usize| -> Vec<(usize, usize)> {
        let mut out = Vec::new();
        let forced_m = forced_shared_words(opts).unwrap_or(0);
        if forced_m == 0 {
            let n = match opts.list_len {
                Some(n) => Some(n),
                None => LIST_LENGTHS.into_iter().find(|&n| tpr * n >= max_row_nnz),
            };
            out.extend(n.map(|n| (n, 0)));
        }
        if shared && forced_shared_words(opts) != Some(0) {
            let ns: Vec<usize> = opts.list_len.map_or(SHARED_LIST_LENGTHS.to_vec(), |n| vec![n]);
            for n in ns.into_iter().filter(|n| SHARED_LIST_LENGTHS.contains(n)) {
                let m = if forced_m > 0 { forced_m } else { round_up(max_row_nnz.div_ceil(tpr).saturating_sub(n), PRODUCT_GROUP) };
                if m > 0 {
                    out.push((n, m));
                }
            }
        }
        out
    };
    tprs.iter()
        .flat_map(|&tpr| lists(tpr).into_iter().map(move |(n, m)| (tpr, n, m)))
        .flat_map(|(tpr, n, m)| {
            // GRU and LSTM on either family where the gated one can run the shape.
            let families: &[bool] = if gated_kernel(gates, tpr, bt) { &[true, false] } else { &[false] };
            families.iter().map(move |&gated| (tpr, n, m, gated))
        })
        .flat_map(|(tpr, n, m, gated)| {
            // Padding threads only help the gather; offer the bare shape, wider ones, and the
            // widths at which every thread makes one or two serial polls (of the `columns`
            // exchanged: the grid mode pads each CTA's share to whole stores, `exchange_slots`).
            let polls = (columns * batch).div_ceil(VALUES_PER_POLL);
            [0, 256, 512, 768, 1024, round_up(polls, 32), round_up(polls.div_ceil(2), 32)]
                .into_iter()
                .map(move |extra| Shape::new(device, cell, columns, (grid, upc), (tpr, n, m, gated), bt, state, batch, cps, extra))
        })
        .collect()
}

/// Lays a layer out for a given launch shape, without checking it against any device (threads
/// per CTA may exceed 1024, registers are not counted). Checks the shape is consistent with the
/// layer: every unit has a slot, every row fits in `threads_per_row × list_len` words. The hidden
/// state is fp16 in shared memory ([`layout_with_hidden`] chooses).
pub fn layout_with(w_hh: &Csr, cell: Cell, batch: usize, geometry: &Geometry, order: WeightOrder) -> Result<Plan, PlanError> {
    layout_with_hidden(w_hh, cell, batch, geometry, order, false)
}

/// [`layout_with`] with the hidden state in shared memory as f32 (`hidden_f32`) or fp16.
pub fn layout_with_hidden(w_hh: &Csr, cell: Cell, batch: usize, geometry: &Geometry, order: WeightOrder, hidden_f32: bool) -> Result<Plan, PlanError> {
    validate(w_hh, cell, batch)?;
    check_geometry(w_hh, cell, batch, geometry, false)?;
    if geometry.shared_words > 0 && hidden_f32 {
        return Err(PlanError::BadOption { option: "shared_words", value: geometry.shared_words, allowed: "0 with the hidden state in f32".into() });
    }
    Ok(build(w_hh, cell, batch, Fit::sparse_unchecked(cell, batch, *geometry, hidden_f32), order, LAID_OUT_REASON.to_string()))
}

/// [`Plan::mode_reason`] of a layout made for a given geometry, without a device.
const LAID_OUT_REASON: &str = "grid: laid out for a given launch shape";

/// Lays a layer out as a dense slab of a given shape on `grid` CTAs of `units_per_cta` units,
/// without checking it against any device (for tests of every variant); registers are the
/// offline ptxas figures. Errors when the shape cannot hold the layer (rows, columns, batch).
pub fn layout_dense_with(w_hh: &Csr, cell: Cell, batch: usize, grid: usize, units_per_cta: usize, shape: DenseShape) -> Result<Plan, PlanError> {
    validate(w_hh, cell, batch)?;
    let hidden = w_hh.cols();
    let bad = |option: &'static str, value: usize, allowed: String| Err(PlanError::BadOption { option, value, allowed });
    if grid == 0 || units_per_cta == 0 || grid.saturating_mul(units_per_cta) < hidden || grid > hidden {
        return bad("grid", grid, format!("grid x units_per_cta >= H = {hidden}, grid <= H"));
    }
    if batch > DENSE_MAX_BATCH {
        return bad("batch", batch, format!("at most {DENSE_MAX_BATCH} for the dense slab"));
    }
    check_columns(hidden, grid, units_per_cta, batch)?;
    let slots = exchange_slots(units_per_cta, batch);
    if shape.half && cell.gates() != 1 {
        return bad("dense shape", shape.m_tiles, "a half last m-tile with the RNN cells only".into());
    }
    if units_per_cta * cell.gates() > shape.rows() || grid * slots > shape.warps * shape.k_tiles_per_warp * DENSE_TILE {
        return bad("dense shape", shape.m_tiles, "m-tiles covering the CTA's rows and k-tiles covering the columns".into());
    }
    let registers_per_thread = super::registers::dense_kernel_registers(shape.m_tiles, shape.k_tiles_per_warp, shape.half).unwrap_or(0);
    let registers_per_sm = registers_per_sm(shape.threads(), 1, registers_per_thread as usize);
    let fit = DenseFit { shape, registers_per_thread, registers_per_sm, smem_bytes: shape.smem_bytes(cell, batch, slots, units_per_cta) };
    Ok(build_dense(w_hh, cell, batch, Fit::dense(fit, grid, units_per_cta, batch), WeightOrder::BankAware, LAID_OUT_REASON.to_string()))
}

/// [`PlanError::BadOption`] where `products` cannot run: `Products::F16` needs the hidden state
/// in fp16 and the sparse kernel.
fn check_products(products: Products, hidden_f32: bool, dense: bool) -> Result<(), PlanError> {
    if products == Products::F16 && (hidden_f32 || dense) {
        return Err(PlanError::BadOption {
            option: "products",
            value: 16,
            allowed: "f32 with the hidden state in f32 or the dense slab (fp16 products need the fp16 hidden state and the sparse kernel)".into(),
        });
    }
    Ok(())
}

/// The dynamic shared memory layout of a layer with `grid` CTAs of `upc` units at batch `batch`
/// (without shared weight words: [`RecurrentSmem::with_weights`] adds them).
fn smem_bytes_for(cell: Cell, grid: usize, upc: usize, batch: usize, hidden_f32: bool) -> RecurrentSmem {
    let slots = exchange_slots(upc, batch);
    RecurrentSmem::new(grid.saturating_mul(slots), batch, slots, upc * cell.gates(), upc, cell, hidden_f32)
}

/// The grid mode's hidden-state columns as exchanged, `grid · exchange_slots(upc, batch)`:
/// each CTA's units and the slots that pad its share to whole stores (what [`Plan::columns`]
/// reports of a grid-mode plan).
fn grid_columns(grid: usize, upc: usize, batch: usize) -> usize {
    grid.saturating_mul(exchange_slots(upc, batch))
}

/// The packed words index `grid · S` columns (16 bits, the zero column included).
fn check_columns(hidden: usize, grid: usize, upc: usize, batch: usize) -> Result<(), PlanError> {
    check_slot_columns(hidden, grid, exchange_slots(upc, batch))
}

/// [`check_columns`] for `slots` columns per CTA.
fn check_slot_columns(hidden: usize, grid: usize, slots: usize) -> Result<(), PlanError> {
    let columns = grid.saturating_mul(slots);
    if columns > MAX_HIDDEN {
        return Err(PlanError::HiddenTooLarge { hidden, max: MAX_HIDDEN.saturating_sub(columns - hidden) });
    }
    Ok(())
}

/// The default grid: `(grid, units_per_cta)` for `hidden` units on at most `max_ctas` CTAs.
pub fn default_grid(hidden: usize, max_ctas: usize) -> (usize, usize) {
    let upc = hidden.div_ceil(max_ctas.max(1)).max(MIN_UNITS_PER_CTA).min(hidden).max(1);
    (hidden.div_ceil(upc), upc)
}

fn validate(w_hh: &Csr, cell: Cell, batch: usize) -> Result<(usize, usize), PlanError> {
    let hidden = w_hh.cols();
    validate_sizes(hidden, w_hh.rows(), cell, batch)?;
    if let Some(i) = w_hh.values().iter().position(|&v| f16::from_f32(v).is_infinite()) {
        let row = w_hh.row_ptr().partition_point(|&p| p <= i) - 1;
        return Err(PlanError::ValueOutOfRange { row, col: w_hh.col_idx()[i] as usize, value: w_hh.values()[i] });
    }
    Ok((hidden, cell.gates()))
}

/// The checks of [`validate`] that need only the sizes.
fn validate_sizes(hidden: usize, rows: usize, cell: Cell, batch: usize) -> Result<(), PlanError> {
    let gates = cell.gates();
    if hidden == 0 {
        return Err(PlanError::EmptyHidden);
    }
    if hidden > MAX_HIDDEN {
        return Err(PlanError::HiddenTooLarge { hidden, max: MAX_HIDDEN });
    }
    if rows != gates * hidden {
        return Err(PlanError::Shape { cell, rows, cols: hidden, expected_rows: gates * hidden });
    }
    if batch == 0 {
        return Err(PlanError::ZeroBatch);
    }
    // The kernel takes B as a 32-bit parameter; the bound also keeps every size computed from B
    // (shared memory, exchange words) from overflowing.
    if batch > u32::MAX as usize {
        return Err(PlanError::BadOption { option: "batch", value: batch, allowed: format!("at most {} (32-bit kernel parameter)", u32::MAX) });
    }
    Ok(())
}

/// Checks a launch shape against the layer: options the kernel has, a grid that holds every
/// unit, threads for every row (whole units per warp on the gated family), 32-bit sizes, rows
/// that fit their lists, and columns within the format's limit.
fn check_geometry(w_hh: &Csr, cell: Cell, batch: usize, g: &Geometry, cluster: bool) -> Result<(), PlanError> {
    let hidden = w_hh.cols();
    let gates = cell.gates();
    let bad = |option: &'static str, value: usize, allowed: String| Err(PlanError::BadOption { option, value, allowed });
    if !THREADS_PER_ROW.contains(&g.threads_per_row) {
        return bad("threads_per_row", g.threads_per_row, "1, 2, 4, 8, 16 or 32".into());
    }
    if g.shared_words == 0 && !LIST_LENGTHS.contains(&g.list_len) {
        return bad("list_len", g.list_len, format!("one of {LIST_LENGTHS:?}"));
    }
    if g.shared_words > 0 && !SHARED_LIST_LENGTHS.contains(&g.list_len) {
        return bad("list_len", g.list_len, format!("one of {SHARED_LIST_LENGTHS:?} with words in shared memory"));
    }
    if g.shared_words % PRODUCT_GROUP != 0 || g.shared_words > u16::MAX as usize || (g.shared_words > 0 && cluster) {
        return bad("shared_words", g.shared_words, format!("a multiple of {PRODUCT_GROUP} up to {}, 0 in the cluster mode", u16::MAX));
    }
    if g.grid == 0 || g.units_per_cta == 0 || g.grid.checked_mul(g.units_per_cta).is_none_or(|n| n < hidden) {
        return bad("grid", g.grid, format!("grid x units_per_cta >= H = {hidden}, both >= 1"));
    }
    // Every unit of a CTA needs a distinct hidden unit, so more than H units per CTA (or CTAs)
    // only add empty slots; the bound also keeps the thread and word counts below from overflowing.
    if g.units_per_cta > hidden {
        return bad("units_per_cta", g.units_per_cta, format!("at most H = {hidden}"));
    }
    if g.grid > hidden {
        return bad("grid", g.grid, format!("at most H = {hidden}"));
    }
    // The gated kernel family (`format::gated_kernel`) lays rows out as whole units per warp.
    let whole_units = g.gated_kernel;
    if whole_units && !gated_kernel(gates, g.threads_per_row, batch_tile(batch)) {
        return bad("gated_kernel", 1, format!("0: the gated family needs GRU or LSTM, G x threads_per_row <= 32 and threads_per_row >= batch tile {}", batch_tile(batch)));
    }
    let min_nt = row_threads(g.units_per_cta, gates, g.threads_per_row, whole_units);
    // Threads beyond the rows' own are padding for the gather; the planner never offers more
    // than 1024 in all, and the bound keeps the weight buffer proportional to the layer.
    let max_nt = min_nt.max(1024);
    if g.threads_per_cta % 32 != 0 || g.threads_per_cta < min_nt || g.threads_per_cta > max_nt {
        return bad("threads_per_cta", g.threads_per_cta, format!("a multiple of 32 from {min_nt} to {max_nt}"));
    }
    // The kernel counts the grid's threads in 32 bits.
    if g.grid * g.threads_per_cta > u32::MAX as usize {
        return bad("threads_per_cta", g.threads_per_cta, format!("grid {} x threads_per_cta <= {}", g.grid, u32::MAX));
    }
    if (hidden + 1) as u64 * batch as u64 * 2 > u32::MAX as u64 {
        return bad("batch", batch, "a hidden state under 4 GiB".into());
    }
    let words = g.list_len + g.shared_words;
    if let Some(row) = (0..w_hh.rows()).find(|&r| w_hh.row_nnz(r) > g.threads_per_row * words) {
        return Err(PlanError::RowTooLong {
            row,
            nnz: w_hh.row_nnz(row),
            threads_per_row: g.threads_per_row,
            list_len: words,
        });
    }
    check_slot_columns(hidden, g.grid, slots_per_cta(g.units_per_cta, batch, cluster))
}

/// The word format of the sparse kernels: the cluster kernel's byte offsets, the grid kernels'
/// column indices (`format::WordFormat`).
fn word_format(cluster: bool, batch: usize) -> WordFormat {
    if cluster {
        WordFormat::cluster(batch)
    } else {
        WordFormat::Column
    }
}

/// Lays a layer out for the sparse kernel as `fit` says, whose geometry was checked against the
/// layer ([`check_geometry`]).
fn build(w_hh: &Csr, cell: Cell, batch: usize, fit: Fit, order: WeightOrder, mode_reason: String) -> Plan {
    let g = &fit.geometry;
    let slots = slots_per_cta(g.units_per_cta, batch, fit.cluster.is_some());
    let (part, w_cols) = partition_columns(w_hh, cell.gates(), g.grid, g.units_per_cta, slots);
    let model = BankModel::new(batch, if fit.hidden_f32 { 4 } else { 2 });
    let words = word_format(fit.cluster.is_some(), batch);
    let packed = pack(&w_cols, &part.units, PackShape { gates: cell.gates(), geometry: *g, words }, model, order);
    Plan::laid_out(w_hh, cell, batch, fit, part, packed, order, mode_reason)
}

/// `w_hh` with its columns renamed to the kernel's: unit `units[c · upc + s]` becomes column
/// [`column_of_slot`]`(c, s, slots)`; `columns` columns in all (each row re-sorted).
fn rename_columns(w_hh: &Csr, units: &[u32], upc: usize, slots: usize, columns: usize) -> Csr {
    let mut column = vec![u32::MAX; w_hh.cols()];
    for (i, &u) in units.iter().enumerate() {
        if u != NO_UNIT {
            column[u as usize] = column_of_slot(i / upc, i % upc, slots) as u32;
        }
    }
    let mut col_idx = Vec::with_capacity(w_hh.nnz());
    let mut values = Vec::with_capacity(w_hh.nnz());
    let mut row: Vec<(u32, f32)> = Vec::new();
    for r in 0..w_hh.rows() {
        let (cols, vals) = w_hh.row(r);
        row.clear();
        row.extend(cols.iter().zip(vals).map(|(&c, &v)| (column[c as usize], v)));
        row.sort_unstable_by_key(|e| e.0);
        col_idx.extend(row.iter().map(|e| e.0));
        values.extend(row.iter().map(|e| e.1));
    }
    Csr::new(w_hh.rows(), columns, w_hh.row_ptr().to_vec(), col_idx, values)
        .expect("renaming the columns of a valid matrix by a bijection onto fewer than `columns` keeps it valid")
}

/// Device limits for a given number of CTAs per SM.
struct Limits {
    threads_per_cta: usize,
    regs_per_sm: usize,
    regs_per_thread: usize,
    smem_per_cta: usize,
}

impl Limits {
    fn new(d: &DeviceInfo, cps: usize) -> Limits {
        Limits {
            threads_per_cta: d.max_threads_per_block.min(d.max_threads_per_sm / cps),
            regs_per_sm: d.registers_per_sm,
            regs_per_thread: d.max_registers_per_thread,
            smem_per_cta: d.shared_per_cta(cps),
        }
    }

    fn fits(&self, s: &Shape) -> bool {
        s.nt <= self.threads_per_cta && (s.regs as usize) <= self.regs_per_thread && s.need_regs <= self.regs_per_sm && s.smem <= self.smem_per_cta
    }
}

/// One candidate launch shape for a CTA.
#[derive(Clone, Copy, Debug)]
struct Shape {
    tpr: usize,
    /// Words per thread in registers.
    n: usize,
    /// Words per thread in shared memory (0: the register-only kernels).
    m: usize,
    /// On the gated kernel family (whole units per warp, the cell in the reduction).
    gated: bool,
    nt: usize,
    regs: u32,
    need_regs: usize,
    /// Dynamic shared memory per CTA, bytes (the hidden state, the kernel's other parts and the
    /// `m · nt` shared words).
    smem: usize,
    cost: f64,
}

impl Shape {
    /// A shape with the threads of `upc` units' rows ([`row_threads`]: whole warps, and whole
    /// units per warp where a unit's gate rows fit one), or `extra_threads` if that is more
    /// (padding threads that only help with the gather).
    #[allow(clippy::too_many_arguments)]
    fn new(device: &DeviceInfo, cell: Cell, columns: usize, (grid, upc): (usize, usize), (tpr, n, m, gated): (usize, usize, usize, bool), bt: usize, (h32, products): (bool, Products), batch: usize, cps: usize, extra_threads: usize) -> Shape {
        let nt = row_threads(upc, cell.gates(), tpr, gated).max(extra_threads);
        let regs = if m > 0 {
            if h32 { None } else { device.shared_registers(n, bt, gated) }
        } else {
            device.registers(n, bt, h32, gated)
        };
        let regs = regs.unwrap_or(u32::MAX);
        let need_regs = registers_per_sm(nt, cps, regs as usize);
        let fused = cell.gates() == 1 || gated;
        let smem = smem_bytes_for(cell, grid, upc, batch, h32).with_weights(m, nt);
        let cost = step_cost(columns, nt, tpr, n + m, (bt, products), batch, fused) + shared_word_cycles(nt, m, bt, batch);
        Shape { tpr, n, m, gated, nt, regs, need_regs, smem, cost }
    }
}

/// Estimated issue cycles of one step's product for one CTA; the planner picks the fitting
/// launch shape that minimises it.
///
/// Per batch tile (`B / BT` of them), each thread runs `N` words. A word costs `3 + 2·BT`
/// instructions with `Products::F32` (unpack, address, shared load, value convert; per batch
/// value a convert and an FMA) and `3 + ⌈BT / 2⌉ + BT / 4` with `Products::F16` (unpack,
/// address, shared load, an FMA per pair of batch values, and per group of eight words a
/// convert and an add per batch value). An SM has 4 schedulers, each issuing about one instruction every two cycles (measured)
/// for its `⌈warps / 4⌉` warps; a thread's dependent FMA chain takes at least 4 cycles per word.
/// The butterfly adds `log2(TPR)` stages of about `30 + 2·BT` cycles. So:
/// `tiles · (max(2 · ⌈warps / 4⌉ · N · word, 4·N) + log2(TPR) · (30 + 2·BT))`. It trades
/// padding (more words in all) against parallelism (shorter lists, all 4 schedulers busy).
///
/// Where the kernel fuses the cell (`fused`: RNN, and GRU and LSTM on the gated family, a
/// unit's `G · TPR` lanes in one warp and `TPR ≥ BT`) it is finished in the tile loop: after
/// the reduction, a lane of gate row 0 runs its `⌈BT / TPR⌉` batch entries of the tile one after the other (input, bias, the cell, fp16
/// rounding, publish, output store), so each tile adds `⌈BT / TPR⌉ ·` [`CELL_CYCLES`]. Otherwise
/// the cell runs in a separate phase after a barrier, [`SEPARATE_CELL_CYCLES`] per step.
///
/// `columns` is the hidden state as exchanged: `H` and the slots that pad each CTA's share to
/// whole stores (`grid · exchange_slots(units_per_cta, B)`). Counting `H` alone hid a poll at
/// LSTM H = 768 B = 1 (6 units per CTA, 8 slots: 1024 columns, 128 chunks for 96 threads), where
/// the grid mode measured 0.28 µs slower than at H = 1024 (bench/RESULTS.md, session 13).
pub fn step_cost(columns: usize, threads_per_cta: usize, threads_per_row: usize, list_len: usize, (batch_tile, products): (usize, Products), batch: usize, fused: bool) -> f64 {
    // The gather: every thread copies its share of the `columns·B` exchange values in 16-byte
    // chunks, one L2 round trip (about GATHER_CHUNK_CYCLES) after another. Measured on the H200
    // (2026-11-29): the exchange floor at H = 2304, B = 4 was 8.5 µs with 96 threads per CTA
    // and 2.5 µs with 576, so too few threads makes the gather, not the product, the cost.
    let chunks = gather_chunks(columns, batch, threads_per_cta) as f64;
    chunks * GATHER_CHUNK_CYCLES + product_cycles(threads_per_cta, threads_per_row, list_len, (batch_tile, products), batch, fused)
}

/// 16-byte chunks of a hidden state of `columns` exchanged columns (`H` and each CTA's padding
/// slots) at batch `batch` that each of `threads_per_cta` threads polls per step.
pub fn gather_chunks(columns: usize, batch: usize, threads_per_cta: usize) -> usize {
    (columns * batch).div_ceil(VALUES_PER_POLL).div_ceil(threads_per_cta.max(1))
}

/// [`step_cost`] without the gather: the product, the row reduction and the cell.
pub fn product_cycles(threads_per_cta: usize, threads_per_row: usize, list_len: usize, (batch_tile, products): (usize, Products), batch: usize, fused: bool) -> f64 {
    let tiles = (batch / batch_tile.max(1)).max(1) as f64;
    let warps_per_scheduler = (threads_per_cta / 32).div_ceil(4) as f64;
    let (n, bt) = (list_len as f64, batch_tile as f64);
    // Two cycles per instruction: measured, a scheduler issues about one instruction every two
    // cycles in the step (ncu at the headline: 0.53 issued warps per scheduler and cycle), and
    // GRU/LSTM shapes with twice the list length ran 0.48 µs slower, not the 0.22 µs that one
    // cycle per instruction predicts (bench/RESULTS.md, "Session 5").
    let word = match products {
        Products::F32 => 3.0 + 2.0 * bt,
        Products::F16 => 3.0 + (batch_tile.div_ceil(2)) as f64 + bt * 2.0 / PRODUCT_GROUP as f64,
    };
    let issue = 2.0 * warps_per_scheduler * n * word;
    let chain = 4.0 * n;
    let reduce = (threads_per_row as f64).log2() * (30.0 + 2.0 * bt);
    if fused {
        let cells = batch_tile.div_ceil(threads_per_row.max(1)) as f64 * CELL_CYCLES;
        tiles * (issue.max(chain) + reduce + cells)
    } else {
        tiles * (issue.max(chain) + reduce) + SEPARATE_CELL_CYCLES
    }
}

/// Issue cycles the shared words of a list add to one step's product ([`product_cycles`]
/// counts them as list words already): per word one more shared load and its address
/// ([`SHARED_WORD_INSTRUCTIONS`]), at two cycles per instruction for the busiest scheduler's
/// `⌈warps / 4⌉` warps, per batch tile. The word's load never conflicts (a warp reads 32
/// consecutive words), so it costs one wavefront beside the `h` load's.
pub fn shared_word_cycles(threads_per_cta: usize, shared_words: usize, batch_tile: usize, batch: usize) -> f64 {
    let tiles = (batch / batch_tile.max(1)).max(1) as f64;
    let warps_per_scheduler = (threads_per_cta / 32).div_ceil(4) as f64;
    tiles * 2.0 * warps_per_scheduler * shared_words as f64 * SHARED_WORD_INSTRUCTIONS
}

/// Instructions a shared-memory word adds to a list word's: the `ld.shared` of the word and
/// the advance of its address (an estimate from the PTX; not yet measured on the GPU).
pub const SHARED_WORD_INSTRUCTIONS: f64 = 2.0;

/// Cycles of the separate cell phase (a barrier, the gate sums through shared memory, the
/// cells of a CTA's units), in place of the fused cell's [`CELL_CYCLES`] per tile. Measured on
/// the H200 (2026-11-30, bench/RESULTS.md "Session 5"): the same GRU/LSTM plans on the gated
/// family with the cell fused and with `flags::SEPARATE_CELL` differed by 0.13–0.41 µs per step
/// (mean ≈ 560 cycles at 1980 MHz) at B = 4, one tile: 560 + 700 ≈ 1300.
pub const SEPARATE_CELL_CYCLES: f64 = 1300.0;

/// Cycles of one RNN cell in the tile loop, as measured on the H200 (2026-11-29): RNN-tanh
/// H = 1152 with the same grid, threads and list length ran 0.35, 2.25 and 8.5 µs per step
/// slower at B = 4, 16 and 64 with TPR = 2 than with TPR = 8 — 2, 6 and 24 more cells one after
/// the other, ≈ 700 cycles each. (Not the load of `U_t`: it is prefetched, and `ncu` samples no
/// stall on it.)
pub const CELL_CYCLES: f64 = 700.0;

/// Cycles one thread spends per 16-byte chunk of the gather (an L2 round trip of a strong load).
pub const GATHER_CHUNK_CYCLES: f64 = 600.0;

// ---------------------------------------------------------------------------------------------
// Grid-wide or cluster-resident: the mode decision

/// SM clock the estimates of [`check_mode`] convert cycles with, GHz (the H200's boost clock,
/// measured with `%clock64` against `%globaltimer` during the step loop).
pub const SM_CLOCK_GHZ: f64 = 1.98;

/// The grid mode's exchange floor with one serial poll per thread, µs per step: one L2 round
/// trip for the publication and the gather. Measured on the H200 (2026-12-01, `bench/RESULTS.md`
/// session 8): 0.80–0.87 µs for layers of H = 512–1024 at B = 1 and 4.
pub const GRID_EXCHANGE_US: f64 = 0.85;

/// Each further serial poll of the grid mode's gather, µs (DESIGN §7: 0.2–0.3).
pub const GRID_POLL_US: f64 = 0.25;

/// The cluster mode's exchange floor, µs per step, for a cluster of `cluster` CTAs exchanging
/// `bytes` bytes of hidden state: `0.36 + 0.0025·cluster + 0.13·log2(KB)` (KB at least 1), fitted
/// to the cluster kernel's own floor measured on the H200 (2026-12-01, session 8: 0.39 µs for
/// 1 KB, 0.52–0.54 for 2 KB in 8 and 16 CTAs, 0.66 for 4 KB, 0.78–0.79 for 8 KB; within
/// ±0.02 µs of each). The probe's simpler push (DESIGN §7) was 0.1–0.15 µs faster at 4–8 KB.
pub fn cluster_exchange_us(cluster: usize, bytes: usize) -> f64 {
    let kb = (bytes as f64 / 1024.0).max(1.0);
    0.36 + 0.0025 * cluster as f64 + 0.13 * kb.log2()
}

/// The cluster mode is chosen only where its estimate is below this fraction of the grid
/// mode's: the estimates were off by up to 0.05 µs (3–4 %) at the layers measured when they
/// were calibrated (H200, 2026-12-01, session 8: RNN-tanh H = 1024 B = 4 d = 0.05, cluster
/// estimated 1.40 µs against the grid's 1.46, measured 1.42 against 1.37).
pub const CLUSTER_MARGIN: f64 = 0.95;

/// Cycles per further 16-byte chunk a thread of the cluster mode copies from its own shared
/// memory after the first (a shared-memory load and store; the wait is the first chunk's).
pub const CLUSTER_CHUNK_CYCLES: f64 = 40.0;

/// The mode [`check_mode`] chose, its fit, why, and the estimates it compared.
#[derive(Clone, Debug, PartialEq)]
pub struct ModeChoice {
    /// The launch shape (with [`Fit::cluster`] set in the cluster mode).
    pub fit: Fit,
    /// Why this mode: forced, or the estimates of both, or why the other cannot run.
    pub reason: String,
    /// The grid mode's estimated time per step, µs, where it was estimated.
    pub grid_us: Option<f64>,
    /// The cluster mode's estimated time per step, µs, where it fits.
    pub cluster_us: Option<f64>,
}

/// The mode decision of [`plan`]: the grid mode's fit ([`check_fit`]'s decision before clusters)
/// and, where the device has thread-block clusters, the best cluster-resident fit; the faster by
/// the estimates [`grid_step_us`] and [`cluster_fit`]'s, or the one `opts.mode` forces.
///
/// - `opts.mode = Some(ExecMode::Grid)`: the grid mode (its refusal as [`check_fit`] gives it).
/// - `opts.mode = Some(ExecMode::Cluster)`: the cluster mode, or [`PlanError::ClusterMode`]
///   saying why not (no clusters below compute capability 9.0; the dense slab, f32 hidden
///   state or more than one CTA per SM; no cluster size whose registers and shared memory hold
///   the layer).
/// - `None`: the cluster mode where it fits and its estimate is lower, otherwise the grid mode.
///   A forced `ctas`, `ctas_per_sm ≠ 1`, the f32 hidden state or the dense kernel keep the grid
///   mode.
pub fn check_mode(stats: &RowStats, cell: Cell, batch: usize, device: &DeviceInfo, opts: &PlanOptions) -> Result<ModeChoice, PlanError> {
    let forced_reason = |mode: ExecMode| format!("{}: forced (PlanOptions::mode)", mode.name());
    match opts.mode {
        Some(ExecMode::Grid) => {
            let fit = grid_fit(stats, cell, batch, device, opts)?;
            let grid_us = grid_step_us(&fit, cell, batch);
            let reason = match grid_us {
                Some(us) => format!("{}, estimated {us:.2} us per step", forced_reason(ExecMode::Grid)),
                None => forced_reason(ExecMode::Grid),
            };
            Ok(ModeChoice { grid_us, fit, reason, cluster_us: None })
        }
        Some(ExecMode::Cluster) => {
            let (fit, us) = cluster_fit(stats, cell, batch, device, opts)?;
            let reason = format!("{}, cluster of {} CTAs, estimated {us:.2} us per step", forced_reason(ExecMode::Cluster), fit.geometry.grid);
            Ok(ModeChoice { fit, reason, grid_us: None, cluster_us: Some(us) })
        }
        None => {
            let grid = grid_fit(stats, cell, batch, device, opts);
            let cluster_allowed = opts.ctas.is_none()
                && opts.shared_words.is_none_or(|m| m == 0)
                && opts.ctas_per_sm.is_none_or(|c| c == 1)
                && opts.hidden_f32 != Some(true)
                && opts.kernel != Some(KernelKind::Dense);
            if !cluster_allowed {
                let fit = grid?;
                let reason = "grid: the options given (ctas, ctas_per_sm, hidden_f32, shared_words or the dense kernel) are the grid mode's".to_string();
                return Ok(ModeChoice { grid_us: grid_step_us(&fit, cell, batch), fit, reason, cluster_us: None });
            }
            let cluster = cluster_fit(stats, cell, batch, device, opts);
            match (grid, cluster) {
                (Ok(g), Err(e)) => {
                    let why = match e {
                        PlanError::ClusterMode { reason, .. } => reason,
                        other => other.to_string(),
                    };
                    let grid_us = grid_step_us(&g, cell, batch);
                    let estimate = grid_us.map(|us| format!(", estimated {us:.2} us per step")).unwrap_or_default();
                    Ok(ModeChoice { grid_us, fit: g, reason: format!("grid{estimate}: no cluster mode ({why})"), cluster_us: None })
                }
                (Err(_), Ok((c, us))) => {
                    let reason = format!("cluster of {} CTAs: the grid mode does not fit; estimated {us:.2} us per step", c.geometry.grid);
                    Ok(ModeChoice { fit: c, reason, grid_us: None, cluster_us: Some(us) })
                }
                (Err(e), Err(_)) => Err(e),
                (Ok(g), Ok((c, cu))) => {
                    let gu = grid_step_us(&g, cell, batch);
                    match gu {
                        Some(gu) if cu < CLUSTER_MARGIN * gu => {
                            let reason = format!(
                                "cluster of {} CTAs: estimated {cu:.2} us per step, grid {gu:.2} (hidden state exchanged in shared memory, {:.2} us, instead of through L2)",
                                c.geometry.grid,
                                cluster_exchange_us(c.geometry.grid, c.geometry.grid * slots_per_cta(c.geometry.units_per_cta, batch, true) * batch * 2)
                            );
                            Ok(ModeChoice { fit: c, reason, grid_us: Some(gu), cluster_us: Some(cu) })
                        }
                        Some(gu) => {
                            let reason = format!(
                                "grid: estimated {gu:.2} us per step, a cluster of {} CTAs {cu:.2} (too much work per SM for 16 SMs or fewer; a cluster needs to be estimated {:.0} % faster)",
                                c.geometry.grid,
                                (1.0 - CLUSTER_MARGIN) * 100.0
                            );
                            Ok(ModeChoice { fit: g, reason, grid_us: Some(gu), cluster_us: Some(cu) })
                        }
                        None => Ok(ModeChoice { fit: g, reason: "grid: the dense slab runs in the grid mode only".to_string(), grid_us: None, cluster_us: Some(cu) }),
                    }
                }
            }
        }
    }
}

/// The grid mode's estimated time per step, µs: the exchange ([`GRID_EXCHANGE_US`], plus
/// [`GRID_POLL_US`] per further serial poll) plus [`product_cycles`] at [`SM_CLOCK_GHZ`].
/// `None` for the dense slab (no estimate of its product).
pub fn grid_step_us(fit: &Fit, cell: Cell, batch: usize) -> Option<f64> {
    if fit.dense.is_some() {
        return None;
    }
    let g = &fit.geometry;
    let polls = gather_chunks(grid_columns(g.grid, g.units_per_cta, batch), batch, g.threads_per_cta).max(1);
    let fused = cell.gates() == 1 || g.gated_kernel;
    let product = product_cycles(g.threads_per_cta, g.threads_per_row, g.list_len + g.shared_words, (fit.batch_tile, fit.products), batch, fused)
        + shared_word_cycles(g.threads_per_cta, g.shared_words, fit.batch_tile, batch);
    Some(GRID_EXCHANGE_US + GRID_POLL_US * (polls - 1) as f64 + product / (SM_CLOCK_GHZ * 1e3))
}

/// Cluster sizes the device can run, smallest first: [`CLUSTER_SIZES`] up to the SM count on
/// compute capability 9.0 and newer (none before). Whether a size fits with the kernel's
/// registers and shared memory, next to what else runs, is the driver's to say at launch
/// (`cuOccupancyMaxActiveClusters`).
pub fn cluster_sizes(device: &DeviceInfo) -> Vec<usize> {
    if device.compute_capability.0 < 9 {
        return Vec::new();
    }
    CLUSTER_SIZES.iter().copied().filter(|&c| c <= device.sm_count).collect()
}

/// The cluster mode's fit decision: for each cluster size ([`cluster_sizes`], or the forced
/// `opts.ctas`), one CTA per SM with `⌈H / size⌉` units each, the launch shapes that fit the
/// registers (counted at the variant's `.maxnreg` budget, `format::cluster_register_budget`, which the
/// cluster kernel is compiled under) and the shared memory (`format::ClusterSmem`); of all, the
/// one with the least estimated time per step: [`cluster_exchange_us`] plus the product
/// ([`product_cycles`], and [`CLUSTER_CHUNK_CYCLES`] per further chunk copied). Returns the fit
/// and its estimate, or [`PlanError::ClusterMode`] with the closest size's shortfall.
pub fn cluster_fit(stats: &RowStats, cell: Cell, batch: usize, device: &DeviceInfo, opts: &PlanOptions) -> Result<(Fit, f64), PlanError> {
    let why = |reason: String| PlanError::cluster(&device.name, reason);
    validate_sizes(stats.hidden, stats.rows, cell, batch)?;
    let (major, minor) = device.compute_capability;
    if major < 9 {
        return Err(why(format!("compute capability {major}.{minor} has no thread-block clusters (sm_90 or newer)")));
    }
    if opts.kernel == Some(KernelKind::Dense) {
        return Err(why("the dense slab runs in the grid mode only".into()));
    }
    if opts.hidden_f32 == Some(true) {
        return Err(why("the cluster kernel keeps the hidden state in fp16 (hidden_f32 = false)".into()));
    }
    if opts.ctas_per_sm.is_some_and(|c| c != 1) {
        return Err(why("a cluster runs one CTA per SM (ctas_per_sm = 1)".into()));
    }
    if opts.shared_words.is_some_and(|m| m > 0) {
        return Err(why("weights in shared memory run in the grid mode only (shared_words = 0)".into()));
    }
    sparse_options(device, opts)?;
    let sizes = match opts.ctas {
        Some(c) if cluster_sizes(device).contains(&c) => vec![c],
        Some(c) => return Err(why(format!("ctas = {c} is not a cluster size of this device: one of {:?}", cluster_sizes(device)))),
        None => cluster_sizes(device),
    };
    let products = opts.products.unwrap_or(default_products(cell, false));
    check_products(products, false, false)?;
    let (hidden, gates, bt) = (stats.hidden, cell.gates(), batch_tile(batch));
    let limits = Limits::new(device, 1);
    let have_smem = device.shared_per_cta(1);
    let mut best: Option<(Fit, f64)> = None;
    let mut shortfall = String::from("no cluster size");
    for c in sizes {
        if c > hidden {
            shortfall = format!("{c} CTAs: more CTAs than H = {hidden} units");
            continue;
        }
        let upc = hidden.div_ceil(c);
        let slots = cluster_exchange_slots(upc, batch);
        let columns = c * slots;
        if columns > MAX_HIDDEN {
            shortfall = format!("{c} CTAs: {columns} hidden-state columns, the 16-bit column index allows {MAX_HIDDEN}");
            continue;
        }
        let smem = ClusterSmem::new(columns, batch, slots, upc * gates, upc, cell).total;
        if smem > have_smem {
            shortfall = format!("{c} CTAs: {smem} bytes of shared memory per CTA (hidden state and two exchange buffers), {have_smem} available");
            continue;
        }
        if !WordFormat::cluster(batch).fits(columns) {
            let bytes = columns * 2 * batch;
            shortfall = format!("{c} CTAs: the zero column starts {bytes} bytes into the hidden state, past the packed words' 16-bit byte offsets");
            continue;
        }
        // The candidates' widths from `H·B` (the cluster's measured choices); their costs are
        // recomputed below from the cluster's own `columns`.
        let shapes: Vec<Shape> = candidate_shapes(device, cell, (hidden, c, upc, batch, 1), stats.max_row_nnz, (false, products), opts, false)
            .into_iter()
            .map(|s| {
                let regs = cluster_register_budget(s.n, bt, s.gated);
                let fused = gates == 1 || s.gated;
                let chunks = gather_chunks(columns, batch, s.nt).max(1);
                let cost = product_cycles(s.nt, s.tpr, s.n, (bt, products), batch, fused) + CLUSTER_CHUNK_CYCLES * (chunks - 1) as f64;
                Shape { regs, need_regs: registers_per_sm(s.nt, 1, regs as usize), smem, cost, ..s }
            })
            .collect();
        let fitting = shapes.iter().filter(|s| s.n * s.tpr >= stats.max_row_nnz && limits.fits(s));
        let Some(s) = fitting.min_by(|a, b| a.cost.total_cmp(&b.cost).then(a.nt.cmp(&b.nt))).copied() else {
            let closest = shapes.iter().filter(|s| s.n * s.tpr >= stats.max_row_nnz).min_by_key(|s| (s.need_regs, s.nt));
            shortfall = match closest {
                Some(s) => format!(
                    "{c} CTAs: the best launch shape ({} threads, {} x {} words per row) needs {} registers per SM, {} available",
                    s.nt, s.tpr, s.n, s.need_regs, limits.regs_per_sm
                ),
                None => format!("{c} CTAs: no list length holds the longest row ({} nonzeros)", stats.max_row_nnz),
            };
            continue;
        };
        let us = cluster_exchange_us(c, columns * batch * 2) + s.cost / (SM_CLOCK_GHZ * 1e3);
        let geometry = Geometry { grid: c, units_per_cta: upc, threads_per_cta: s.nt, threads_per_row: s.tpr, list_len: s.n, shared_words: 0, gated_kernel: s.gated };
        let fit = Fit {
            geometry,
            batch_tile: bt,
            hidden_f32: false,
            products,
            ctas_per_sm: 1,
            registers_per_thread: s.regs,
            registers_per_sm: s.need_regs,
            smem_bytes: smem,
            batch_limit: batch_limit(batch, columns, have_smem, |b| {
                let slots = cluster_exchange_slots(upc, b);
                ClusterSmem::new(c * slots, b, slots, upc * gates, upc, cell).total
            }),
            dense: None,
            cluster: Some(c),
        };
        if best.as_ref().is_none_or(|(_, b)| us < *b) {
            best = Some((fit, us));
        }
    }
    best.ok_or_else(|| why(format!("no cluster of {:?} CTAs holds the layer; {shortfall}", cluster_sizes(device))))
}

#[allow(clippy::too_many_arguments)]
fn does_not_fit(
    stats: &RowStats,
    batch: usize,
    device: &DeviceInfo,
    cps: usize,
    grid: usize,
    upc: usize,
    cell: Cell,
    state: (bool, Products),
    shapes: &[Shape],
    opts: &PlanOptions,
    limits: &Limits,
) -> PlanError {
    let hidden = stats.hidden;
    let max_row_nnz = stats.max_row_nnz;
    let bt = batch_tile(batch);
    // The register-only candidate closest to fitting: within the thread limit if any is, least
    // registers.
    let shapes: Vec<Shape> = shapes.iter().filter(|s| s.m == 0).copied().collect();
    let within: Vec<&Shape> = shapes.iter().filter(|s| s.nt <= limits.threads_per_cta).collect();
    let pool: Vec<&Shape> = if within.is_empty() { shapes.iter().collect() } else { within };
    let closest = pool.iter().min_by_key(|s| (s.need_regs, s.nt)).copied().copied();
    // Longest row any fitting shape can hold at batch `b`: in registers alone, or with as many
    // words in shared memory as it has room for beside the hidden state of `b` sequences.
    let tprs: Vec<usize> = opts.threads_per_row.map_or(THREADS_PER_ROW.to_vec(), |t| vec![t]);
    let ns: Vec<usize> = opts.list_len.map_or(LIST_LENGTHS.to_vec(), |n| vec![n]);
    let forced_m = forced_shared_words(opts);
    let shared_ns: Vec<usize> = if state.0 || forced_m == Some(0) {
        Vec::new()
    } else {
        opts.list_len.map_or(SHARED_LIST_LENGTHS.to_vec(), |n| vec![n]).into_iter().filter(|n| SHARED_LIST_LENGTHS.contains(n)).collect()
    };
    let fit_row = |b: usize| {
        let bt = batch_tile(b);
        let registers_only = tprs
            .iter()
            .flat_map(|&t| ns.iter().map(move |&n| (t, n)))
            .filter(|_| forced_m.is_none_or(|m| m == 0))
            .filter(|&(t, n)| limits.fits(&Shape::new(device, cell, grid_columns(grid, upc, b), (grid, upc), (t, n, 0, false), bt, state, b, cps, 0)))
            .map(|(t, n)| t * n);
        let base = smem_bytes_for(cell, grid, upc, b, state.0);
        let with_shared = tprs.iter().flat_map(|&t| shared_ns.iter().map(move |&n| (t, n))).filter_map(|(t, n)| {
            let nt = row_threads(upc, cell.gates(), t, false);
            let room = limits.smem_per_cta.checked_sub(base.weights())? / (4 * nt.max(1));
            let m = forced_m.unwrap_or(room / PRODUCT_GROUP * PRODUCT_GROUP);
            (m > 0 && limits.fits(&Shape::new(device, cell, grid_columns(grid, upc, b), (grid, upc), (t, n, m, false), bt, state, b, cps, 0))).then_some(t * (n + m))
        });
        registers_only.chain(with_shared).max().unwrap_or(0)
    };
    let max_row_fit = fit_row(batch);
    let density = stats.nnz as f64 / (stats.rows as f64 * hidden as f64);
    let fit_density = if max_row_fit == 0 {
        0.0
    } else {
        // Rows spread like a binomial: max ≈ mean + a·sqrt(mean·(1 − d)). Keep a (with a 30 %
        // margin for the sample's luck), take the spread at density → 0 (the widest), and solve
        // for the mean whose max is max_row_fit.
        let mean = stats.nnz as f64 / stats.rows as f64;
        let spread = (mean * (1.0 - density)).max(1e-9).sqrt();
        let a = if mean > 0.0 { 1.3 * (max_row_nnz as f64 - mean).max(0.0) / spread } else { 0.0 };
        let x = (-a + (a * a + 4.0 * max_row_fit as f64).sqrt()) / 2.0;
        let d = (x * x / hidden as f64).min(density);
        (d * 1e4).floor() / 1e4
    };
    // A smaller batch with a smaller tile (fewer registers), if that fits.
    let have_smem = device.shared_per_cta(cps);
    let fit_batch = BATCH_TILES
        .iter()
        .rev()
        .filter(|&&t| t < bt)
        .filter_map(|&t| (1..batch).rev().find(|&b| batch_tile(b) == t))
        .find(|&b| smem_bytes_for(cell, grid, upc, b, state.0).total <= have_smem && fit_row(b) >= max_row_nnz)
        // A smaller batch whose hidden state leaves room for more words in shared memory.
        .or_else(|| (1..batch).rev().take(1024).find(|&b| fit_row(b) >= max_row_nnz));
    let c = closest.unwrap_or(Shape {
        tpr: 32,
        n: LIST_LENGTHS[LIST_LENGTHS.len() - 1],
        m: 0,
        gated: false,
        nt: 0,
        regs: 0,
        need_regs: usize::MAX,
        smem: 0,
        cost: 0.0,
    });
    PlanError::DoesNotFit {
        device: device.name.clone(),
        need_regs: c.need_regs,
        have_regs: limits.regs_per_sm,
        need_threads: c.nt,
        have_threads: limits.threads_per_cta,
        max_row_nnz,
        max_row_fit,
        density,
        fit_density,
        fit_batch,
    }
}

impl Plan {
    /// The plan of `w_hh` laid out as `fit` says: each CTA's units (`part`) and the words packed
    /// in `order`.
    #[allow(clippy::too_many_arguments)]
    fn laid_out(w_hh: &Csr, cell: Cell, batch: usize, fit: Fit, part: Partition, packed: Packed, order: WeightOrder, mode_reason: String) -> Plan {
        Plan {
            cell,
            hidden: w_hh.cols(),
            batch,
            fit,
            nnz: w_hh.nnz(),
            max_row_nnz: (0..w_hh.rows()).map(|r| w_hh.row_nnz(r)).max().unwrap_or(0),
            cta_nnz: part.cta_nnz,
            units: part.units,
            weights: packed.weights,
            order,
            bank: packed.bank,
            bank_naive: packed.bank_naive,
            mode_reason,
        }
    }

    /// Threads of the whole grid (`grid × threads_per_cta`).
    pub fn total_threads(&self) -> usize {
        self.grid() * self.threads_per_cta()
    }

    /// Gate rows (`G·H`).
    pub fn rows(&self) -> usize {
        self.cell.gates() * self.hidden
    }

    /// Hidden-state columns each CTA owns (`S`: its units, then empty slots up to whole 8-byte
    /// stores, 16-byte in the cluster mode; see [`sprnn_kernels::format`]'s exchange section).
    pub fn slots_per_cta(&self) -> usize {
        slots_per_cta(self.units_per_cta(), self.batch, self.fit.cluster.is_some())
    }

    /// Hidden-state columns, `grid · slots_per_cta`: unit `units[c · units_per_cta + s]` is column
    /// `c · slots_per_cta + s`, and the packed words index these columns (`columns` itself is the
    /// zero column).
    pub fn columns(&self) -> usize {
        self.grid().saturating_mul(self.slots_per_cta())
    }


    /// The hidden unit of each column of the packed words (`columns + 1` entries; [`NO_UNIT`]
    /// for empty slots and the zero column `columns`).
    pub fn unit_of_column(&self) -> Vec<u32> {
        let mut unit_of = vec![NO_UNIT; self.columns() + 1];
        for (i, &u) in self.units.iter().enumerate() {
            if u != NO_UNIT {
                unit_of[column_of_slot(i / self.units_per_cta(), i % self.units_per_cta(), self.slots_per_cta())] = u;
            }
        }
        unit_of
    }

    /// The recurrent product `W·h` exactly as the kernel computes it from [`Plan::weights`] and
    /// [`Plan::units`]: `h` is `[B][H]` f32, the result `[B][G·H]` in PyTorch row order.
    ///
    /// `h` is rounded to fp16 (the shared-memory state). Each thread sums its words in list
    /// order `k = 0..N`: with `Products::F32` in f32, `acc += f32(w_k) · f32(h[col_k][b])` (the
    /// product of two fp16 values is exact in f32, so FMA or multiply-then-add give the same
    /// sum); with `Products::F16` as [`crate::fp16::GroupSum`] (fp16 FMAs over groups of eight
    /// words, each group's sum added in f32), bit for bit as the kernel. Then the `TPR`
    /// partial sums of a row are reduced by the butterfly `acc += shfl_xor(acc, m)` for
    /// `m = 16, 8, 4, 2, 1` (those below `TPR`), and lane 0 of the row's group holds the row's
    /// sum.
    pub fn simulate_matvec(&self, h: &[f32]) -> Vec<f32> {
        let (hd, b_n, g_n) = (self.hidden, self.batch, self.cell.gates());
        assert_eq!(h.len(), b_n * hd, "h must be [B][H]");
        let h16: Vec<f32> = h.iter().map(|&v| f16::from_f32(v).to_f32()).collect();
        let unit_of = self.unit_of_column();
        if let Some(shape) = self.fit.dense {
            return self.simulate_dense(shape, &h16, &unit_of);
        }
        let rows = g_n * hd;
        let mut out = vec![0f32; b_n * rows];
        let (nt, tpr, n, total) = (self.threads_per_cta(), self.threads_per_row(), self.words_per_thread(), self.total_threads());
        let words = self.word_format();
        let mut part = vec![0f32; tpr];
        for c in 0..self.grid() {
            for s in 0..nt / tpr {
                let (u, g) = row_of_slot(s, g_n, tpr, self.gated_kernel());
                if u >= self.units_per_cta() {
                    continue;
                }
                let unit = self.units[c * self.units_per_cta() + u];
                if unit == NO_UNIT {
                    continue;
                }
                let row = g * hd + unit as usize;
                for b in 0..b_n {
                    for (j, p) in part.iter_mut().enumerate() {
                        let tid = s * tpr + j;
                        let mut acc = 0f32;
                        let mut groups = GroupSum::default();
                        for k in 0..n {
                            let w = self.weights[k * total + c * nt + tid];
                            let hv = match unit_of[words.column(w) as usize] {
                                NO_UNIT => 0.0,
                                unit => h16[b * hd + unit as usize],
                            };
                            let wv = f16::from_bits(words.value_bits(w));
                            match self.fit.products {
                                Products::F32 => acc += wv.to_f32() * hv,
                                Products::F16 => groups.add(wv.to_f32(), hv),
                            }
                        }
                        *p = if self.fit.products == Products::F16 { groups.total() } else { acc };
                    }
                    let mut m = 16;
                    while m >= 1 {
                        if m < tpr {
                            let prev = part.clone();
                            for (j, p) in part.iter_mut().enumerate() {
                                *p = prev[j] + prev[j ^ m];
                            }
                        }
                        m /= 2;
                    }
                    out[b * rows + row] = part[0];
                }
            }
        }
        out
    }

    /// [`Plan::simulate_matvec`] for the dense slab: per warp, its k-tiles' products summed in
    /// column order (the tensor cores' order within a k-tile is the hardware's), then the warps'
    /// partial sums added in warp order, as the cell's thread does.
    fn simulate_dense(&self, shape: DenseShape, h16: &[f32], unit_of: &[u32]) -> Vec<f32> {
        let (hd, b_n, g_n) = (self.hidden, self.batch, self.cell.gates());
        let rows = g_n * hd;
        let mut out = vec![0f32; b_n * rows];
        let cols = shape.warps * shape.k_tiles_per_warp * DENSE_TILE;
        let per_warp = shape.k_tiles_per_warp * DENSE_TILE;
        for c in 0..self.grid() {
            let a = dense::unpack_cta(&self.weights, self.grid(), c, shape);
            for lr in 0..self.units_per_cta() * g_n {
                let unit = self.units[c * self.units_per_cta() + lr / g_n];
                if unit == NO_UNIT {
                    continue;
                }
                let row = (lr % g_n) * hd + unit as usize;
                for b in 0..b_n {
                    let mut sum = 0f32;
                    for w in 0..shape.warps {
                        let mut part = 0f32;
                        for k in w * per_warp..(w + 1) * per_warp {
                            let hv = match unit_of.get(k).copied().unwrap_or(NO_UNIT) {
                                NO_UNIT => 0.0,
                                u => h16[b * hd + u as usize],
                            };
                            part += f16::from_bits(a[lr * cols + k]).to_f32() * hv;
                        }
                        sum += part;
                    }
                    out[b * rows + row] = sum;
                }
            }
        }
        out
    }

    /// Wavefronts of the hidden-state loads summed over the `N` positions, for each warp of the
    /// grid (`[grid][threads_per_cta / 32]`), recomputed from [`Plan::weights`].
    pub fn warp_wavefronts(&self) -> Vec<u64> {
        if self.fit.dense.is_some() {
            return Vec::new();
        }
        let model = BankModel::new(self.batch, if self.fit.hidden_f32 { 4 } else { 2 });
        let (nt, total) = (self.threads_per_cta(), self.total_threads());
        let words = self.word_format();
        let mut out = Vec::with_capacity(total / 32);
        let mut cols = [0u32; 32];
        for c in 0..self.grid() {
            for warp in 0..nt / 32 {
                let mut sum = 0u64;
                for k in 0..self.words_per_thread() {
                    for (lane, col) in cols.iter_mut().enumerate() {
                        *col = words.column(self.weights[k * total + c * nt + warp * 32 + lane]);
                    }
                    sum += model.wavefronts(&cols) as u64;
                }
                out.push(sum);
            }
        }
        out
    }
}
