//! The host–kernel format: everything the `sprnn` host crate and the kernels must agree on,
//! defined once and compiled into both (the kernel crate for `nvptx64-nvidia-cuda`, the host
//! crate for the CPU).
//!
//! # Packed nonzero word
//!
//! Each nonzero of the recurrent matrix W is one `u32` holding the fp16 bits of the value and
//! where its column is in the hidden state, in one of two layouts ([`WordFormat`]):
//! - [`WordFormat::Column`] (the grid kernels): the value in the high half, the column *index*
//!   in the low half; the kernel masks the index and multiplies it by the column stride (two
//!   instructions before the shared load);
//! - [`WordFormat::Offset`] (the cluster kernel): the value in the low half, the column's *byte
//!   offset* in the hidden state (`col · B · 2`) in the high half; the kernel adds `word >> 16`
//!   to the tile's base in one instruction (`LEA.HI` on sm_90). Offsets are 16-bit, so the
//!   format only holds layers whose hidden state, zero column included, starts every column
//!   below 64 KiB ([`WordFormat::fits`]); the planner's cluster mode requires it.
//!
//! A thread keeps `N` words in registers for the whole sequence. Padding words
//! ([`WordFormat::pad`]) point at the *zero column* (index `H` of the shared-memory hidden
//! state, which always holds +0.0) with value +0.0, so they contribute exactly zero even when a
//! hidden value is infinite.
//!
//! # Weight buffer
//!
//! `weights[k * total_threads + cta * threads_per_cta + tid]` is list entry `k` of thread
//! `tid` of CTA `cta`: the `k`-th load of every warp is coalesced. Entries `0 .. N` live in
//! registers; on the shared-weights family ([`shared_kernel_name`]) entries `N .. N + M`
//! (`M` = `RecurrentParams::shared_words`) are copied once, at start-up, into shared memory at
//! [`RecurrentSmem::weights`], laid out `[k - N][tid]`: a warp's read of entry `k` is 32
//! consecutive 4-byte words, one per bank, so it never conflicts. A thread runs its list in
//! order `k = 0 .. N + M` (registers, then shared memory), with two shared loads per shared
//! entry (the word, then `h`).
//!
//! # Threads, rows and units
//!
//! Thread `tid` of a CTA works on *row slot* `tid / threads_per_row`; the `threads_per_row`
//! threads of one slot are consecutive lanes of one warp (a power of two ≤ 32) and their partial
//! sums are reduced with a shuffle butterfly. Each slot is gate `g` of the CTA's local unit `u`
//! ([`row_of_slot`]), i.e. row `g * H + unit` of PyTorch's stacked `weight_hh` (gate order: RNN
//! `[h]`, GRU `[r, z, n]`, LSTM `[i, f, g, o]`). Slot `s` is gate `s % G` of unit `s / G`,
//! except on the gated kernel family ([`gated_kernel`]): there every warp holds
//! [`units_per_warp`] whole units, their gate rows side by side, the lanes left over (GRU only:
//! 3 does not divide 32) being *gaps* with no row, and the kernel finishes each unit's cell
//! inside its warp. The hidden units of CTA `c`
//! are `units[c * units_per_cta .. (c + 1) * units_per_cta]`, [`NO_UNIT`] marking unused
//! entries.
//!
//! # Hidden state in shared memory
//!
//! `h[col][b]` as fp16, `B` values per column, `(H + 1) * B` values in all (column `H` is the zero
//! column). A thread reads batch tile `j` (batch entries `j*BT .. (j+1)*BT`) of column `col` with
//! one `2*BT`-byte load at byte offset [`h_smem_offset`]`(col, j, B, BT)`.
//!
//! # Exchange (Lamport timestamps carried by the values themselves)
//!
//! Every CTA owns [`exchange_slots`]`(units_per_cta, B)` consecutive *columns* of the hidden
//! state (its units, then empty slots up to a multiple that makes its share a whole number of
//! 8-byte stores). The planner renames the columns of `W_hh` accordingly: unit `units[c·upc +
//! s]` becomes column `c·S + s` ([`column_of_slot`]). The hidden state, in shared memory and in
//! the exchange, is `h[column][b]`, `columns · B` values, column `columns` being the zero column
//! in shared memory.
//!
//! `h_t` is published as fp16 values whose **last mantissa bit is the step's tag**, [`tag_bit`]
//! `(t)`: each value is rounded to the nearest fp16 whose last bit is the tag ([`tag_round`],
//! error ≤ 1 fp16 ulp instead of ½). A value is a 16-bit single-copy-atomic piece of every
//! wider access, so a reader may load 16 bytes (eight values) at once and check each value's
//! own tag bit: no torn read can pass the check. Two buffers alternate by step parity
//! (buffer `t % 2`); a buffer holds either step `t` or step `t − 2` (a CTA cannot publish
//! `t + 2` before every CTA has read `t`), and [`tag_bit`] differs between `t` and `t − 2`, and
//! from the zeroed start for `t = 1, 2`. Each CTA stages its values in shared memory during the
//! step and publishes them after the step's last barrier, 8 bytes (four values) per store.
//!
//! # Cluster-resident mode (sm_90)
//!
//! A layer small enough for one thread-block cluster (2–16 CTAs, [`CLUSTER_SIZES`], one CTA
//! per SM) can keep the exchange off L2: the grid is one cluster, and every CTA writes its
//! staged values, tagged exactly as above, into *every* peer's shared memory (its own
//! included) with 16-byte remote stores; each CTA polls only its own shared memory
//! ([`ClusterSmem`]: two exchange buffers by step parity). A CTA's share is then a whole number
//! of 16-byte stores: `S` = [`cluster_exchange_slots`]. Entry points:
//! [`cluster_kernel_name`]; the kernel is `sprnn_kernels::kernels::cluster`.

/// Cell type of a layer, with PyTorch's conventions.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Cell {
    /// `h' = relu(W_ih x + b_ih + W_hh h + b_hh)`.
    RnnRelu = 0,
    /// `h' = tanh(W_ih x + b_ih + W_hh h + b_hh)`.
    RnnTanh = 1,
    /// PyTorch GRU, gates `[r, z, n]`.
    Gru = 2,
    /// PyTorch LSTM, gates `[i, f, g, o]`.
    Lstm = 3,
}

impl Cell {
    /// Number of gate rows per hidden unit (G).
    pub const fn gates(self) -> usize {
        match self {
            Cell::RnnRelu | Cell::RnnTanh => 1,
            Cell::Gru => 3,
            Cell::Lstm => 4,
        }
    }

    /// The cell's name in files, command lines and benchmark rows: `rnn_relu`, `rnn_tanh`,
    /// `gru`, `lstm`.
    pub const fn name(self) -> &'static str {
        match self {
            Cell::RnnRelu => "rnn_relu",
            Cell::RnnTanh => "rnn_tanh",
            Cell::Gru => "gru",
            Cell::Lstm => "lstm",
        }
    }

    /// The cell named `name` (see [`Cell::name`]; `rnn` also means `rnn_tanh`, as in PyTorch).
    pub fn from_name(name: &str) -> Option<Cell> {
        match name {
            "rnn_relu" => Some(Cell::RnnRelu),
            "rnn_tanh" | "rnn" => Some(Cell::RnnTanh),
            "gru" => Some(Cell::Gru),
            "lstm" => Some(Cell::Lstm),
            _ => None,
        }
    }

    /// The cell for a raw `Params::cell` value.
    pub const fn from_u32(v: u32) -> Option<Cell> {
        match v {
            0 => Some(Cell::RnnRelu),
            1 => Some(Cell::RnnTanh),
            2 => Some(Cell::Gru),
            3 => Some(Cell::Lstm),
            _ => None,
        }
    }
}

/// Whole units one warp holds when a unit's `gates · threads_per_row` lanes fit in it (the
/// kernel then fuses the cell into the row reduction), or 0 when they do not.
#[inline(always)]
pub const fn units_per_warp(gates: usize, threads_per_row: usize) -> usize {
    let lanes = gates * threads_per_row;
    if lanes == 0 || lanes > 32 {
        0
    } else {
        32 / lanes
    }
}

/// Whether a GRU or LSTM layer runs on the gated kernel family (`sprnn_gated_*`): its cell of
/// `gates` gate rows with `threads_per_row` lanes per row and batch tile `batch_tile` can be
/// finished inside the row reduction — a unit's rows share a warp ([`units_per_warp`]) and every
/// lane holds at most one sum after the reduce-scatter (`threads_per_row ≥ batch_tile`). Such a
/// layer's rows are laid out as whole units per warp ([`row_of_slot`]); every other layer runs
/// on the RNN family (`sprnn_recurrent_*`, GRU and LSTM with a separate cell phase) with the
/// rows of a CTA one after the other.
#[inline(always)]
pub const fn gated_kernel(gates: usize, threads_per_row: usize, batch_tile: usize) -> bool {
    gates > 1 && units_per_warp(gates, threads_per_row) > 0 && threads_per_row >= batch_tile
}

/// The row of row slot `slot` (thread `tid / threads_per_row`): `(local unit, gate)`. With
/// `whole_units` (the gated family) each warp holds [`units_per_warp`] whole units and the
/// lanes left over are gaps, unit `usize::MAX`; otherwise slot `s` is gate `s % G` of unit
/// `s / G`.
#[inline(always)]
pub const fn row_of_slot(slot: usize, gates: usize, threads_per_row: usize, whole_units: bool) -> (usize, usize) {
    // (`checked_*` instead of `/` and `%`: no panicking path in the kernel for a zero that the
    // launch checks already exclude.)
    let upw = if whole_units { units_per_warp(gates, threads_per_row) } else { 0 };
    let (Some(unit), Some(gate)) = (slot.checked_div(gates), slot.checked_rem(gates)) else {
        return (usize::MAX, 0);
    };
    if upw == 0 {
        return (unit, gate);
    }
    let (Some(spw), Some(upw_slots)) = (32usize.checked_div(threads_per_row), upw.checked_mul(gates)) else {
        return (usize::MAX, 0);
    };
    let (Some(warp), Some(within)) = (slot.checked_div(spw), slot.checked_rem(spw)) else {
        return (usize::MAX, 0);
    };
    if within >= upw_slots {
        (usize::MAX, 0)
    } else {
        (warp * upw + within / gates, within % gates)
    }
}

/// Threads that hold the rows of `units_per_cta` units (a multiple of 32; see [`row_of_slot`]
/// for `whole_units`): the threads per CTA are at least this many.
#[inline(always)]
pub const fn row_threads(units_per_cta: usize, gates: usize, threads_per_row: usize, whole_units: bool) -> usize {
    match if whole_units { units_per_warp(gates, threads_per_row) } else { 0 } {
        0 => round_up(units_per_cta * gates * threads_per_row, 32),
        upw => units_per_cta.div_ceil(upw) * 32,
    }
}

/// The batch entry of a tile whose sum lane `lane` of a row holds after the reduce-scatter
/// butterfly with `TPR ≥ BT` (the gated family's case), `lane · BT / TPR`, and whether the lane
/// *leads* it (`lane · BT` a multiple of `TPR`; `TPR / BT` lanes hold each sum): halving stage
/// `s` exchanges half of the remaining sums with the lane `TPR >> (s + 1)` away, the lane with
/// that bit set keeping the upper half.
#[inline(always)]
pub const fn scatter_entry(lane: u32, batch_tile: u32, threads_per_row: u32) -> (u32, bool) {
    match ((lane * batch_tile).checked_div(threads_per_row), (lane * batch_tile).checked_rem(threads_per_row)) {
        (Some(first), Some(rem)) => (first, rem == 0),
        _ => (0, false),
    }
}

/// Largest hidden size: column indices are 16-bit and index `H` is the zero column.
pub const MAX_HIDDEN: usize = u16::MAX as usize;

/// Marks an unused entry of the per-CTA unit table.
pub const NO_UNIT: u32 = u32::MAX;

/// The layout of a packed nonzero word (see the module's *Packed nonzero word*).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WordFormat {
    /// Value (fp16 bits) in the high half, column index in the low half.
    Column,
    /// Value (fp16 bits) in the low half, the column's byte offset in the hidden state
    /// (`col · column_bytes`) in the high half.
    Offset {
        /// Bytes per hidden-state column (`B · 2` for the fp16 hidden state).
        column_bytes: u32,
    },
}

impl WordFormat {
    /// The cluster kernel's format at batch `batch` (fp16 hidden state, `h[col][b]`).
    pub const fn cluster(batch: usize) -> WordFormat {
        WordFormat::Offset { column_bytes: 2 * batch as u32 }
    }

    /// Whether every column `0 ..= columns` (the zero column included) can be located: the
    /// column index or the byte offset fits 16 bits.
    pub const fn fits(self, columns: usize) -> bool {
        match self {
            WordFormat::Column => columns <= u16::MAX as usize,
            WordFormat::Offset { column_bytes } => columns * column_bytes as usize <= u16::MAX as usize,
        }
    }

    /// Packs one nonzero: fp16 bits of the value and its column (which must [`fits`](Self::fits)).
    #[inline(always)]
    pub const fn pack(self, value_f16_bits: u16, col: u32) -> u32 {
        match self {
            WordFormat::Column => ((value_f16_bits as u32) << 16) | (col & 0xFFFF),
            WordFormat::Offset { column_bytes } => ((col * column_bytes) << 16) | value_f16_bits as u32,
        }
    }

    /// Column of a packed nonzero.
    #[inline(always)]
    pub const fn column(self, word: u32) -> u32 {
        match self {
            WordFormat::Column => column_word_index(word),
            WordFormat::Offset { column_bytes } => offset_word_offset(word) / column_bytes,
        }
    }

    /// fp16 bits of the value of a packed nonzero.
    #[inline(always)]
    pub const fn value_bits(self, word: u32) -> u16 {
        match self {
            WordFormat::Column => column_word_value(word),
            WordFormat::Offset { .. } => offset_word_value(word),
        }
    }

    /// A padding word for a layer of `columns` columns: value +0.0 at the zero column.
    #[inline(always)]
    pub const fn pad(self, columns: usize) -> u32 {
        self.pack(0, columns as u32)
    }
}

/// The column index of a [`WordFormat::Column`] word (its low half).
#[inline(always)]
pub const fn column_word_index(word: u32) -> u32 {
    word & 0xFFFF
}

/// fp16 bits of a [`WordFormat::Column`] word's value (its high half).
#[inline(always)]
pub const fn column_word_value(word: u32) -> u16 {
    (word >> 16) as u16
}

/// The byte offset of an [`WordFormat::Offset`] word's column, as the kernel adds it to the
/// tile's base (`word >> 16`: one `LEA.HI` with the add on sm_90).
#[inline(always)]
pub const fn offset_word_offset(word: u32) -> u32 {
    word >> 16
}

/// fp16 bits of an [`WordFormat::Offset`] word's value (its low half).
#[inline(always)]
pub const fn offset_word_value(word: u32) -> u16 {
    word as u16
}

/// Tag bit of step `t` (1-based: `h_1` is the first computed state): `⌊(t + 1) / 2⌋ mod 2`,
/// i.e. 1, 1, 0, 0, 1, 1, … Steps `t` and `t − 2` (the two contents of one exchange buffer)
/// always differ, and steps 1 and 2 differ from the zeroed buffers.
#[inline(always)]
pub const fn tag_bit(t: u32) -> u32 {
    (t.wrapping_add(1) >> 1) & 1
}

/// The tag bits of the two fp16 values of a 32-bit exchange piece.
pub const TAG_BITS32: u32 = 0x0001_0001;

/// The two tag bits of a 32-bit exchange piece holding values of step `t`.
#[inline(always)]
pub const fn tag_pattern32(t: u32) -> u32 {
    if tag_bit(t) == 1 {
        TAG_BITS32
    } else {
        0
    }
}

/// The exchanged fp16 value of `x` at a step with tag bit `bit`: of the fp16 values whose last
/// mantissa bit is `bit`, the one nearest to `x`, never an infinity for a finite `x`.
///
/// `rne` must be `x` rounded to fp16 to nearest even and `to_f32` the exact fp16 → f32
/// conversion (the kernel passes `cvt`, the host `half`), so both sides compute the same bits.
/// If `rne`'s last bit already is `bit` it is returned. Otherwise the neighbour on `x`'s side
/// (`rne ± 1` in magnitude) is taken, so the error is at most one fp16 ulp (the plain rounding
/// error is at most ½): zeros go to the smallest subnormal of their sign, the largest finite
/// magnitude and ±∞ step down, NaN stays NaN.
#[inline(always)]
pub fn tag_round(x: f32, rne: u16, bit: u32, to_f32: impl Fn(u16) -> f32) -> u16 {
    if (rne as u32 & 1) == bit {
        return rne;
    }
    let mag = rne & 0x7FFF;
    let abs = |v: f32| f32::from_bits(v.to_bits() & 0x7FFF_FFFF);
    let up = mag == 0 || (mag < 0x7BFF && abs(x) > abs(to_f32(rne)));
    if up {
        rne + 1
    } else {
        rne - 1
    }
}

/// The 32-bit pattern an exchange buffer of parity `buffer` (0 or 1) is filled with before a
/// launch whose first step is `first_step + 1`: the tag bits of the step two before its first
/// use, which can never be taken for that step's.
#[inline(always)]
pub const fn initial_tag_pattern32(first_step: u32, buffer: u32) -> u32 {
    let next = first_step.wrapping_add(1);
    let first_use = if next & 1 == buffer { next } else { next.wrapping_add(1) };
    tag_pattern32(first_use.wrapping_sub(2))
}

/// Byte offset in shared memory of batch tile `tile` (of `batch_tile` values) of column `col`,
/// for hidden-state elements of `elem_bytes` bytes (2: fp16, 4: f32).
#[inline(always)]
pub const fn h_smem_offset(col: u32, tile: u32, batch: u32, batch_tile: u32, elem_bytes: u32) -> u32 {
    (col * batch + tile * batch_tile) * elem_bytes
}

/// Values one publishing store carries (8 bytes of fp16).
pub const VALUES_PER_STORE: usize = 4;

/// Columns `S` each CTA owns in the hidden state: `units_per_cta` rounded up until `S · B` is a
/// multiple of [`VALUES_PER_STORE`], so every CTA publishes whole 8-byte stores.
#[inline(always)]
pub const fn exchange_slots(units_per_cta: usize, batch: usize) -> usize {
    slots_in_whole(units_per_cta, batch, VALUES_PER_STORE)
}

/// `units_per_cta` rounded up until `S · B` is a multiple of `values` (the values of one store).
#[inline(always)]
const fn slots_in_whole(units_per_cta: usize, batch: usize, values: usize) -> usize {
    let mut s = units_per_cta;
    while (s * batch) % values != 0 {
        s += 1;
    }
    s
}

/// Column of local unit slot `slot` of CTA `cta` (see the module docs).
#[inline(always)]
pub const fn column_of_slot(cta: usize, slot: usize, slots_per_cta: usize) -> usize {
    cta * slots_per_cta + slot
}

/// Tagged fp16 values one 16-byte poll of the gather reads.
pub const VALUES_PER_POLL: usize = 8;

/// fp16 values in one of the two exchange buffers for `columns` columns (`grid · S`) and batch
/// `B`, rounded up to whole 16-byte reads ([`VALUES_PER_POLL`] values).
#[inline(always)]
pub const fn exchange_values(columns: usize, batch: usize) -> usize {
    round_up(columns * batch, VALUES_PER_POLL)
}

/// Busy-wait iterations between two checks of the clock and of the launch's status word while a
/// thread waits for an exchange chunk: an ordinary step never pays for them.
pub const SPINS_PER_CHECK: u32 = 1024;

/// Calls `$m!($args…, [8, 16, 24, 32, 48, 64, 96])`: the list lengths `N` the recurrent
/// kernel is instantiated for, written once. [`LIST_LENGTHS`], [`recurrent_kernel_name`] and
/// the kernel crate's entry points are generated from it.
#[macro_export]
macro_rules! with_list_lengths {
    ($m:ident $(, $arg:tt)*) => {
        $m! { $($arg,)* [8, 16, 24, 32, 48, 64, 96] }
    };
}

/// The entry-point name of variant `(n, bt, gated)` of a kernel family whose names are
/// `{plain}{N}_bt{BT}` and `{gated}{N}_bt{BT}`, `""` where there is none: called as
/// `with_…_list_lengths!(family_kernel_name, (n, bt, gated, "plain prefix", "gated prefix"))`,
/// which hands over the family's list lengths, then the batch tiles ([`with_batch_tiles`]).
macro_rules! family_kernel_name {
    (($n:ident, $bt:ident, $gated:ident, $plain:literal, $gp:literal), [$($len:literal),*]) => {
        with_batch_tiles!(family_kernel_name, ($n, $bt, $gated, $plain, $gp), [$($len),*])
    };
    ($args:tt, [$($len:literal),*], $tiles:tt) => {
        family_kernel_name!(@lengths $args [$($len),*] $tiles)
    };
    (@lengths ($n:ident, $bt:ident, $gated:ident, $plain:literal, $gp:literal) [$($len:literal),*] $tiles:tt) => {
        match $n {
            $( $len => family_kernel_name!(@tiles ($bt, $gated, $plain, $gp) $len $tiles), )*
            _ => "",
        }
    };
    (@tiles ($bt:ident, $gated:ident, $plain:literal, $gp:literal) $len:literal [$($t:literal),*]) => {
        match ($bt, $gated) {
            $(
                ($t, false) => concat!($plain, $len, "_bt", $t),
                ($t, true) => concat!($gp, $len, "_bt", $t),
            )*
            _ => "",
        }
    };
}

/// The variant `(n, bt, gated)` that `name` denotes in a family named by `namer`
/// ([`family_kernel_name`]'s `{plain}{N}_bt{BT}` / `{gated}{N}_bt{BT}`), when it is one.
fn parse_family_kernel_name(name: &str, plain: &str, gated: &str, namer: fn(usize, usize, bool) -> &'static str) -> Option<(usize, usize, bool)> {
    let (is_gated, rest) = match name.strip_prefix(gated) {
        Some(r) => (true, r),
        None => (false, name.strip_prefix(plain)?),
    };
    let (n, bt) = rest.split_once("_bt")?;
    let (n, bt) = (n.parse().ok()?, bt.parse().ok()?);
    let want = namer(n, bt, is_gated);
    (!want.is_empty() && str_eq(want, name)).then_some((n, bt, is_gated))
}

/// Calls `$m!($args…, [1, 2, 4, 8])`: the batch tiles `BT` the recurrent kernel is instantiated
/// for, written once ([`BATCH_TILES`], [`recurrent_kernel_name`], the entry points).
#[macro_export]
macro_rules! with_batch_tiles {
    ($m:ident $(, $arg:tt)*) => {
        $m! { $($arg,)* [1, 2, 4, 8] }
    };
}

/// `[a, b, …]` of a list handed over by [`with_list_lengths`] or [`with_batch_tiles`].
macro_rules! as_array {
    ([$($v:literal),*]) => {
        [$($v),*]
    };
}

/// Register-list lengths `N` the recurrent kernel is instantiated for. (`N` = 128 is not among
/// them: ptxas 12.9 spills 48–96 bytes of it to local memory even at 255 registers.)
pub const LIST_LENGTHS: [usize; 7] = with_list_lengths!(as_array);

/// List entries per fp16 group with [`Products::F16`]: every list length is a multiple.
pub const PRODUCT_GROUP: usize = 8;

const _: () = {
    let mut i = 0;
    while i < LIST_LENGTHS.len() {
        assert!(LIST_LENGTHS[i] % PRODUCT_GROUP == 0);
        i += 1;
    }
};

/// The arithmetic of a thread's products `w_k · h[col_k][b]` and their running sums.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Products {
    /// Each product and sum in f32 (the product of two fp16 values is exact in f32; the sums
    /// round to f32): four conversions and four FMAs per nonzero at a batch tile of four.
    F32,
    /// fp16 pairs: over each group of [`PRODUCT_GROUP`] consecutive list entries a thread runs
    /// `g = fma(w_k, h[col_k][b], g)` in fp16 (`fma.rn.f16x2`, one rounding to the nearest fp16
    /// per step, subnormals kept, starting from `g = +0`), then adds `f32(g)` to its f32
    /// accumulator. Two FMAs per nonzero at a batch tile of four. A group's sum carries a
    /// relative error of at most `γ_8 ≈ 8 · 2^-11` of the sum of its products' magnitudes (plus
    /// `2^-25` per step below fp16's normal range), and overflows to ±inf where it passes 65504.
    F16,
}

/// Batch tiles `BT` the recurrent kernel is instantiated for (batch values per shared load).
pub const BATCH_TILES: [usize; 4] = with_batch_tiles!(as_array);

/// Register budget of recurrent-kernel variant `(n, bt, h32, gated)`: the `.maxnreg` directive
/// the PTX linker gives it, so ptxas and the driver's JIT compiler both stay within it and the
/// planner can count on it. `N` weight registers plus room for addresses, accumulators and the
/// cell: `N + 64 + 2·BT` rounded up to 8 covers the short lists; for `N` ≥ 64 the values are the
/// smallest multiples of 8 at which ptxas 12.9 (sm_80 and sm_90) keeps the kernel free of
/// local memory, found by compiling each variant at increasing budgets (`cargo xtask
/// build-ptx` fails on any spill, so a budget that becomes too small is caught there). The
/// gated family (GRU, LSTM) finishes its cell inside the warp: the gate sums, inputs and biases
/// of up to four gates live in the tile loop, eight registers more; at a batch tile of eight and
/// `N` ≥ 48 the fp16 products' four pair sums ([`Products::F16`]) need eight more again (sixteen
/// at `N` = 64), and so does the RNN family at a batch tile of eight from `N` = 24 (sixteen at
/// `N` = 64).
pub const fn register_budget(n: usize, bt: usize, h32: bool, gated: bool) -> u32 {
    let r = match (n, bt, h32) {
        (64, 1, _) | (64, 8, _) => 144,
        (64, _, _) => 136,
        (96, 1, _) => 208,
        (96, _, _) => 200,
        // One batch value per load: the fused RNN cell's registers are the larger share.
        (_, 1, _) => round_up(n + 72, 8),
        _ => round_up(n + 64 + 2 * bt, 8),
    };
    let r = if gated { r + 8 } else { r };
    let r = match (gated, bt, n) {
        (_, 8, 64) => r + 16,
        (true, 8, 48..) | (false, 8, 24..) => r + 8,
        _ => r,
    };
    if r > 255 { 255 } else { r as u32 }
}

/// The recurrent kernel's two families: `false` for RNN cells (one gate: the cell is finished
/// by the lanes of its row), `true` for the gated cells GRU and LSTM (a unit's gate rows
/// share a warp where they fit, which finishes the cell; otherwise a separate cell phase).
/// Each family has every `(N, BT, H32)` variant, with its own register budget.
pub const GATED: [bool; 2] = [false, true];

/// Hidden-state element types in shared memory the recurrent kernel is instantiated for:
/// `false` fp16 (2 bytes, converted at every use), `true` f32 (4 bytes, converted once by the
/// gather; needs twice the shared memory).
pub const HIDDEN_F32: [bool; 2] = [false, true];

/// Entry-point name of the recurrent kernel for list length `n`, batch tile `bt` and the hidden
/// state in f32 (`h32`) or fp16 in shared memory.
///
/// Names look like `sprnn_recurrent_n32_bt4_h16`; the host looks kernels up by this name, and
/// the kernel crate checks at compile time that each entry point is named by this function.
pub const fn recurrent_kernel_name(n: usize, bt: usize, h32: bool, gated: bool) -> &'static str {
    macro_rules! names {
        ([$($n:literal),*]) => {
            with_batch_tiles!(names, [$($n),*])
        };
        ([$($n:literal),*], [$($bt:literal),*]) => {
            names!(@each [$($n),*] [$($bt),*])
        };
        (@each [$($n:literal),*] $bts:tt) => {
            match (n, bt, h32, gated) {
                $( (_, _, _, _) if n == $n => names!(@tile $n $bts), )*
                _ => "",
            }
        };
        (@tile $n:literal [$($bt:literal),*]) => {
            match (bt, h32, gated) {
                $(
                    ($bt, false, false) => concat!("sprnn_recurrent_n", $n, "_bt", $bt, "_h16"),
                    ($bt, true, false) => concat!("sprnn_recurrent_n", $n, "_bt", $bt, "_h32"),
                    ($bt, false, true) => concat!("sprnn_gated_n", $n, "_bt", $bt, "_h16"),
                    ($bt, true, true) => concat!("sprnn_gated_n", $n, "_bt", $bt, "_h32"),
                )*
                _ => "",
            }
        };
    }
    with_list_lengths!(names)
}

/// The variant `(n, bt, h32, gated)` a kernel name denotes (the inverse of
/// [`recurrent_kernel_name`]).
pub fn parse_recurrent_kernel_name(name: &str) -> Option<(usize, usize, bool, bool)> {
    let (gated, rest) = match name.strip_prefix("sprnn_recurrent_n") {
        Some(rest) => (false, rest),
        None => (true, name.strip_prefix("sprnn_gated_n")?),
    };
    let (n, rest) = rest.split_once("_bt")?;
    let (bt, h) = rest.split_once("_h")?;
    let h32 = match h {
        "16" => false,
        "32" => true,
        _ => return None,
    };
    let (n, bt) = (n.parse().ok()?, bt.parse().ok()?);
    (recurrent_kernel_name(n, bt, h32, gated).len() == name.len()).then_some((n, bt, h32, gated))
}

/// Byte-wise string equality usable in constants (the kernel crate's name check).
pub const fn str_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// Error codes the kernel writes to `Params::status` (0 means success).
pub mod status {
    /// The kernel completed.
    pub const OK: u32 = 0;
    /// A wait for another CTA's hidden state passed `Params::timeout_ns`.
    pub const TIMEOUT: u32 = 1;
    /// Another CTA reported an error, so this one stopped.
    pub const ABORTED: u32 = 2;
    /// The parameters were inconsistent with the kernel variant (a host bug).
    pub const BAD_PARAMS: u32 = 3;
    /// Bits above this shift carry the CTA index that reported the error.
    pub const CTA_SHIFT: u32 = 8;
}

/// Bits of `Params::flags`.
pub mod flags {
    /// `U` is fp16 (otherwise f32).
    pub const U_F16: u32 = 1 << 0;
    /// `h0` is given (otherwise zeros).
    pub const HAS_H0: u32 = 1 << 1;
    /// `c0` is given (LSTM; otherwise zeros).
    pub const HAS_C0: u32 = 1 << 2;
    /// Exchange floor: skip the product and the cell; each CTA republishes its staged values
    /// with the new step's tag. Measures the gather, the barriers and the publication alone
    /// (benchmarks only).
    pub const EXCHANGE_ONLY: u32 = 1 << 3;
    /// Finish the cell in a separate phase after a barrier (one thread per unit and batch
    /// entry) even where a unit's gate rows share a warp and the cell could be fused into the
    /// row reduction (for A/B measurements).
    pub const SEPARATE_CELL: u32 = 1 << 5;
    /// fp16 products ([`Products::F16`](super::Products::F16)): each thread multiplies and adds
    /// in fp16 pairs over groups of [`PRODUCT_GROUP`](super::PRODUCT_GROUP) list entries and
    /// adds each group's sums to its f32 accumulators. Only with the hidden state in fp16.
    pub const F16_PRODUCTS: u32 = 1 << 6;
    /// Test switch: CTA 0 never publishes step 1, so every other CTA's wait must time out.
    pub const TEST_NEVER_PUBLISH: u32 = 1 << 31;
}

/// Every argument of the recurrent kernel, passed by value as one `.param` struct.
///
/// Pointers are device addresses (`u64`). Shapes: `U` is `[T][B][G*H]`, `h_out` is `[T][B][H]`
/// (f32 of the fp16 state that was exchanged), `c_out` is `[B][H]` (f32, LSTM only), `h0`/`c0`
/// are `[B][H]` f32, `bias_hh` is `[G*H]` f32.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RecurrentParams {
    /// Packed nonzeros, `[N][total_threads]` (see the module docs).
    pub weights: u64,
    /// Hidden units of each CTA, `[grid][units_per_cta]` u32, [`NO_UNIT`] for unused.
    pub units: u64,
    /// Input pre-activations `W_ih x_t + b_ih`, `[T][B][G*H]`, f32 or f16 (`flags::U_F16`).
    pub u: u64,
    /// Recurrent bias `b_hh`, `[G*H]` f32.
    pub bias_hh: u64,
    /// Initial hidden state, `[B][H]` f32 (when `flags::HAS_H0`).
    pub h0: u64,
    /// Initial cell state, `[B][H]` f32 (LSTM, when `flags::HAS_C0`).
    pub c0: u64,
    /// Output hidden states, `[T][B][H]` f32.
    pub h_out: u64,
    /// Final cell state, `[B][H]` f32 (LSTM).
    pub c_out: u64,
    /// Two exchange buffers of [`exchange_values`] tagged fp16 values each, zeroed before launch
    /// (unused by the cluster-resident kernel, whose buffers are in shared memory).
    pub exchange: u64,
    /// Status word, zeroed before launch; see [`status`].
    pub status: u64,
    /// Per-wait bound in nanoseconds (`%globaltimer`).
    pub timeout_ns: u64,
    /// Hidden size H.
    pub hidden: u32,
    /// Batch size B.
    pub batch: u32,
    /// Sequence length T.
    pub steps: u32,
    /// [`Cell`] as u32.
    pub cell: u32,
    /// Threads per CTA (must equal the launch's block size).
    pub threads_per_cta: u32,
    /// Threads sharing one row (power of two, ≤ 32).
    pub threads_per_row: u32,
    /// Entries per CTA in the unit table.
    pub units_per_cta: u32,
    /// Columns each CTA owns in the hidden state, [`exchange_slots`]`(units_per_cta, B)`
    /// ([`cluster_exchange_slots`] in the cluster-resident mode).
    pub slots_per_cta: u32,
    /// Columns of the hidden state, `grid · slots_per_cta` (also the zero column's index).
    pub columns: u32,
    /// Bits from [`flags`].
    pub flags: u32,
    /// Steps of the sequence before this launch's first (a stream continuing a sequence): the
    /// launch's step `t` is step `first_step + t` for the tags and hence for the rounding of the
    /// exchanged values, so chunks give one long call's bits. Before the launch the host fills
    /// each exchange buffer with the tag bit its first step does *not* carry,
    /// [`initial_tag_pattern32`].
    pub first_step: u32,
    /// Words per thread in shared memory (`M`, a multiple of [`PRODUCT_GROUP`]): list entries
    /// `N .. N + M` of every thread, read by the shared-weights family
    /// ([`shared_kernel_name`]) from [`RecurrentSmem::weights`]; 0 for every other kernel, which
    /// ignores it. (It takes the four bytes of padding the struct had, so its size is unchanged.)
    pub shared_words: u32,
}

/// Arguments of the smoke kernel that exercises the device layer.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SmokeParams {
    /// `[n]` f32 input.
    pub input: u64,
    /// `[n]` u32 output words, see the smoke kernel's docs.
    pub output: u64,
    /// A `[4]` u32 scratch buffer for the memory-model loads and stores.
    pub scratch: u64,
    /// Number of elements.
    pub n: u32,
    /// Padding (keeps the struct's size a multiple of 8).
    pub pad: u32,
}

// ---------------------------------------------------------------------------------------------
// The dense tensor-core slab

/// Batch columns of one `mma.m16n8k16` (`N` = 8): the dense slab kernel runs batches up to this.
pub const DENSE_MAX_BATCH: usize = 8;

/// Rows of one `mma.m16n8k16` tile (`M` = 16) and columns of one k-tile (`K` = 16).
pub const DENSE_TILE: usize = 16;

/// The dense slab kernel's variants `(MT, KW, HALF)`: `MT` m-tiles (16 gate rows each) per CTA,
/// `KW` k-tiles (16 hidden columns each) per warp, and whether the last m-tile is half (`HALF`:
/// at most 8 rows, so the two of its four A-fragment registers that hold rows 8..16 are zeros and
/// not held). A thread holds [`dense_words_per_k_tile`]` · KW` registers of `W_hh` as `mma` A
/// fragments (fp16 pairs, pruned entries as zeros). The half variants run the RNN cells only
/// (one gate row per unit): their cell phase is the RNN's alone, which with the half m-tile
/// lets `(2, 8)` fit 96 registers, so 18 warps per SM (the headline layer's 18 rows per CTA at
/// 576 threads, two serial polls per thread in the gather, as the sparse kernel).
pub const DENSE_SHAPES: [(usize, usize, bool); 14] = [
    (1, 4, false),
    (1, 8, false),
    (1, 12, false),
    (1, 16, false),
    (2, 4, false),
    (2, 8, false),
    (2, 12, false),
    (2, 16, false),
    (3, 4, false),
    (3, 8, false),
    (4, 4, false),
    (4, 8, false),
    (2, 8, true),
    (3, 8, true),
];

/// A-fragment registers per k-tile of the dense variant `(mt, _, half)`: four per m-tile, two
/// for a half last m-tile.
pub const fn dense_words_per_k_tile(mt: usize, half: bool) -> usize {
    4 * mt - if half { 2 } else { 0 }
}

/// Gate rows a CTA of the dense variant `(mt, _, half)` holds at most.
pub const fn dense_rows(mt: usize, half: bool) -> usize {
    mt * DENSE_TILE - if half { DENSE_TILE / 2 } else { 0 }
}

/// Entry-point name of the dense slab kernel with `mt` m-tiles (the last one half when `half`:
/// RNN cells only) and `kw` k-tiles per warp, e.g. `sprnn_dense_mt2_kw8`,
/// `sprnn_dense_rnn_mt2h_kw8`; `""` for a shape that has no variant.
pub const fn dense_kernel_name(mt: usize, kw: usize, half: bool) -> &'static str {
    match (mt, kw, half) {
        (1, 4, false) => "sprnn_dense_mt1_kw4",
        (1, 8, false) => "sprnn_dense_mt1_kw8",
        (1, 12, false) => "sprnn_dense_mt1_kw12",
        (1, 16, false) => "sprnn_dense_mt1_kw16",
        (2, 4, false) => "sprnn_dense_mt2_kw4",
        (2, 8, false) => "sprnn_dense_mt2_kw8",
        (2, 12, false) => "sprnn_dense_mt2_kw12",
        (2, 16, false) => "sprnn_dense_mt2_kw16",
        (3, 4, false) => "sprnn_dense_mt3_kw4",
        (3, 8, false) => "sprnn_dense_mt3_kw8",
        (4, 4, false) => "sprnn_dense_mt4_kw4",
        (4, 8, false) => "sprnn_dense_mt4_kw8",
        (2, 8, true) => "sprnn_dense_rnn_mt2h_kw8",
        (3, 8, true) => "sprnn_dense_rnn_mt3h_kw8",
        _ => "",
    }
}

/// Entry-point name of the phase-clock probe of the half dense variant `(mt, kw, true)`
/// (`kernels::dense`'s module docs), e.g. `sprnn_clocks_dense_rnn_mt2h_kw8`: the kernel's name
/// with `sprnn_` made [`CLOCKS_PREFIX`]; `""` where the variant has no probe.
pub const fn dense_clocks_kernel_name(mt: usize, kw: usize) -> &'static str {
    match (mt, kw) {
        (2, 8) => "sprnn_clocks_dense_rnn_mt2h_kw8",
        // (3, 8) has no probe: at its 128 registers the probe's records spilled.
        _ => "",
    }
}

/// The prefix of the phase-clock probes' names ([`dense_clocks_kernel_name`]).
pub const CLOCKS_PREFIX: &str = "sprnn_clocks_";

/// Clock records per warp and step of the phase-clock probe, one at each point of [`phase`].
pub const PHASE_CLOCK_POINTS: u32 = 8;

/// The points of a step at which the phase-clock probe records a warp's clock, in order.
pub mod phase {
    /// The top of the step, before the inputs are loaded.
    pub const TOP: u32 = 0;
    /// The warp's columns of `h_{t-1}` gathered (after the warp barrier).
    pub const GATHERED: u32 = 1;
    /// The warp's `mma` done and its partial sums stored.
    pub const MULTIPLIED: u32 = 2;
    /// Past the barrier after which every warp's partial sums are complete.
    pub const SUMS_READY: u32 = 3;
    /// A cell thread's partial sums added (recorded by the warps that run the cell only).
    pub const SUMMED: u32 = 4;
    /// The cell done (its values staged), before the end-of-step barrier.
    pub const CELL_DONE: u32 = 5;
    /// Past the end-of-step barrier.
    pub const STAGED: u32 = 6;
    /// The CTA's values published.
    pub const PUBLISHED: u32 = 7;
}

/// The variant `(mt, kw, half)` a dense kernel name denotes (the inverse of
/// [`dense_kernel_name`]).
pub fn parse_dense_kernel_name(name: &str) -> Option<(usize, usize, bool)> {
    let (rest, half) = match name.strip_prefix("sprnn_dense_rnn_mt") {
        Some(rest) => (rest, true),
        None => (name.strip_prefix("sprnn_dense_mt")?, false),
    };
    let (mt, kw) = rest.split_once("_kw")?;
    let mt = if half { mt.strip_suffix('h')? } else { mt };
    let (mt, kw) = (mt.parse().ok()?, kw.parse().ok()?);
    (dense_kernel_name(mt, kw, half).len() == name.len()).then_some((mt, kw, half))
}

/// Register budget (`.maxnreg`) of dense variant `(mt, kw, half)`: its fragment registers plus
/// 64 for the rest (the accumulators, addresses and the cell); 48 for the RNN-only half
/// variants, so that `(2, 8, half)` comes to 96 and 18 warps fit an SM.
pub const fn dense_register_budget(mt: usize, kw: usize, half: bool) -> u32 {
    let r = round_up(dense_words_per_k_tile(mt, half) * kw + if half { 48 } else { 64 }, 8);
    if r > 255 { 255 } else { r as u32 }
}

/// Where the dense slab kernel keeps things in its dynamic shared memory (byte offsets).
///
/// In order: the hidden state `h[column][b]` fp16 as the sparse kernel keeps it (the gather is
/// the same), for [`DenseSmem::columns`] = `warps · KW · 16` columns, those past the layer's
/// zero; the staged outputs `[S][B]` fp16; the per-warp partial sums `[warps][MT · 16][8]` f32;
/// (LSTM) the cell state `[units][B]` f32.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DenseSmem {
    /// Columns of the hidden state the k-tiles cover.
    pub columns: usize,
    /// Offset of the staged outputs.
    pub stage: usize,
    /// Offset of the partial sums.
    pub part: usize,
    /// Offset of the LSTM cell state.
    pub c: usize,
    /// Bytes in all.
    pub total: usize,
}

impl DenseSmem {
    /// The layout for `warps` warps of `kw` k-tiles, `mt` m-tiles, batch `batch`, `slots`
    /// columns per CTA and `units` units per CTA.
    pub const fn new(warps: usize, kw: usize, mt: usize, batch: usize, slots: usize, units: usize, cell: Cell) -> DenseSmem {
        let columns = warps * kw * DENSE_TILE;
        let stage = round_up(columns * batch * 2, 16);
        let part = stage + round_up(slots * batch * 2, 16);
        let c = part + warps * mt * DENSE_TILE * DENSE_MAX_BATCH * 4;
        let total = c + match cell {
            Cell::Lstm => units * batch * 4,
            _ => 0,
        };
        DenseSmem { columns, stage, part, c, total }
    }
}

/// Bits of `ProjectionParams::flags`.
pub mod projection_flags {
    /// Write time-reversed: input row `t·B + b` goes to output slot `(T-1-t)·B + b` (the reverse
    /// direction of a bidirectional layer reads its sequence backwards).
    pub const REVERSE_TIME: u32 = 1 << 0;
}

/// Entry point of the kernel that rounds the projection's input rows to fp16 (the first of the
/// dense projection's two launches).
pub const PROJECTION_TO_F16_KERNEL: &str = "sprnn_projection_x_to_f16";
/// Entry point of the kernel that rounds the projection's input rows to fp16 while joining them
/// from the two directions of a bidirectional layer (the first of the dense projection's two
/// launches when the layer below keeps no joined output; see [`ProjectionParams::split`]).
pub const PROJECTION_JOIN_TO_F16_KERNEL: &str = "sprnn_projection_join_to_f16";
/// Entry point of the sparse input projection (CSR `W_ih` × dense `x`, f32).
pub const PROJECTION_CSR_KERNEL: &str = "sprnn_projection_csr";
/// Entry point of the kernel that joins the two directions of a bidirectional layer.
pub const CONCAT_KERNEL: &str = "sprnn_concat_directions";

/// Output rows (`x` rows, i.e. `t·B + b`) per CTA of the dense projection GEMM.
pub const PROJECTION_TILE_ROWS: usize = 128;
/// Input values (`k`) per shared-memory stage of the dense projection GEMM: four `k = 16`
/// steps of `mma.m16n8k16`; a tile row is 128 bytes of fp16, eight 16-byte chunks.
pub const PROJECTION_TILE_K: usize = 64;
/// Threads per CTA of the dense projection GEMM: eight warps in a 2 (rows) × 4 (columns)
/// arrangement, each computing `64 × tile_cols / 4` outputs.
pub const PROJECTION_THREADS: usize = 256;
/// Warps of the dense projection GEMM along the rows (`x`) and the columns (`W_ih`) of a tile.
pub const PROJECTION_WARPS: (usize, usize) = (2, 4);
/// The input size the dense projection's fp16 operands are padded to a multiple of (with
/// zeros): one 16-byte `cp.async` chunk, so every chunk of a row is aligned and either wholly
/// inside the row or wholly outside it.
pub const PROJECTION_K_ALIGN: usize = 8;
/// The dense projection GEMM's variants `(tile_cols, stages)`: output columns (`W_ih` rows) per
/// CTA, a multiple of 32 (`8 · tile_cols / 32` per warp, in `mma` n-tiles of 8), and
/// shared-memory stages of the `cp.async` pipeline. The host picks one per problem
/// (`sprnn::projection`); the last needs the least shared memory.
pub const PROJECTION_VARIANTS: [(usize, usize); 4] = [(256, 4), (160, 4), (128, 4), (128, 2)];
/// Threads per CTA of the sparse projection, of the fp16 rounding of the input and of the
/// direction-joining kernel.
pub const ELEMENTWISE_THREADS: usize = 256;

/// Entry point of the dense projection GEMM variant `(tile_cols, stages)`
/// ([`PROJECTION_VARIANTS`]); `""` for a pair that has no variant.
pub const fn projection_dense_kernel_name(tile_cols: usize, stages: usize) -> &'static str {
    match (tile_cols, stages) {
        (256, 4) => "sprnn_projection_dense_n256_s4",
        (160, 4) => "sprnn_projection_dense_n160_s4",
        (128, 4) => "sprnn_projection_dense_n128_s4",
        (128, 2) => "sprnn_projection_dense_n128_s2",
        _ => "",
    }
}

/// The input size `I` rounded up to [`PROJECTION_K_ALIGN`]: the row length, in fp16 values, of
/// the dense projection's `W_ih` and rounded `x` (zeros past `I`).
pub const fn projection_padded_input(input: usize) -> usize {
    round_up(input, PROJECTION_K_ALIGN)
}

/// Bytes of dynamic shared memory of the dense projection GEMM with `tile_cols` columns and
/// `stages` stages: per stage an `x` tile and a `W_ih` tile of [`PROJECTION_TILE_K`] fp16 per
/// row (128 bytes, no padding: the 16-byte chunks are swizzled instead).
pub const fn projection_smem_bytes(tile_cols: usize, stages: usize) -> usize {
    stages * (PROJECTION_TILE_ROWS + tile_cols) * PROJECTION_TILE_K * 2
}

/// CTAs of the dense projection GEMM for `rows` input rows (`T·B`), `cols` outputs (`G·H`) and
/// `tile_cols` columns per CTA: CTA `c` computes row tile `c % row_tiles` of column tile
/// `c / row_tiles` (consecutive CTAs share a `W_ih` tile).
pub const fn projection_grid(rows: usize, cols: usize, tile_cols: usize) -> usize {
    rows.div_ceil(PROJECTION_TILE_ROWS) * cols.div_ceil(tile_cols)
}

/// Every argument of the input-projection kernels, passed by value as one `.param` struct.
///
/// Computes `out[slot(t, b)][j] = Σ_k W_ih[j][k] · x[t·B + b][k] + bias[j]` for every step
/// `t < T`, sequence `b < B` and output `j < G·H`, where `slot(t, b) = t·B + b`, or
/// `(T-1-t)·B + b` with [`projection_flags::REVERSE_TIME`]. `x` is `[T·B][I]` f32 and `out` is
/// `[T][B][G·H]` f32 (the recurrent kernel's `U`), row-major.
///
/// Dense projection: first [`PROJECTION_TO_F16_KERNEL`] writes `x` rounded to fp16 into `x16`
/// (`[T·B][I8]`, `I8` = [`projection_padded_input`]`(I)`, zeros past `I`), then a GEMM variant
/// ([`projection_dense_kernel_name`]) multiplies it with `w`, `W_ih` as fp16 bits `[G·H][I8]`
/// (zeros past `I`); products are accumulated in f32 by `mma.m16n8k16`, then `bias` is added
/// (f32). Sparse kernel ([`PROJECTION_CSR_KERNEL`]): `W_ih` in CSR form —
/// `row_ptr` `[G·H + 1]` u32, `col_idx` `[nnz]` u32, `w` the values `[nnz]` f32 — and every
/// product and sum in f32, in column order.
///
/// Joined input ([`PROJECTION_JOIN_TO_F16_KERNEL`], dense projection only): the input rows are
/// the two directions of the bidirectional layer below, joined as the direction-joining kernel
/// ([`ConcatParams`]) would join them, without that kernel's `[T][B][2H]` copy: `x` is the
/// forward direction's `[T][B][split]` f32 and `x_reverse` the reverse direction's
/// `[T][B][I - split]` f32 in its own (reversed) step order, and the rounding kernel writes
/// `x16[t·B + b][k] = fp16(x[t][b][k])` for `k < split` and
/// `fp16(x_reverse[T-1-t][b][k - split])` for `split ≤ k < I` — the same fp16 rows the plain
/// rounding kernel writes from the joined copy, so the GEMM that follows is unchanged.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProjectionParams {
    /// Input rows, `[T·B][I]` f32. Joined input: the forward direction's states, `[T][B][split]`
    /// f32, columns `0..split` of every input row.
    pub x: u64,
    /// Joined input only: the reverse direction's states, `[T][B][I - split]` f32 in the
    /// reverse direction's own step order (its step `T-1-t` belongs to input step `t`), columns
    /// `split..I` of every input row; 0 otherwise.
    pub x_reverse: u64,
    /// Dense: `W_ih` `[G·H][I8]` fp16 bits. Sparse: the nonzero values `[nnz]` f32.
    pub w: u64,
    /// Sparse: row pointer `[G·H + 1]` u32 (unused by the dense kernel).
    pub row_ptr: u64,
    /// Sparse: column indices `[nnz]` u32 (unused by the dense kernel).
    pub col_idx: u64,
    /// Input bias `b_ih`, `[G·H]` f32.
    pub bias: u64,
    /// Dense: `x` rounded to fp16, `[T·B][I8]` (written by [`PROJECTION_TO_F16_KERNEL`], read by
    /// the GEMM); unused by the sparse kernel.
    pub x16: u64,
    /// Output `U`, `[T][B][G·H]` f32.
    pub out: u64,
    /// Sequence length T.
    pub steps: u32,
    /// Batch size B.
    pub batch: u32,
    /// Input size I.
    pub input: u32,
    /// Outputs G·H.
    pub outputs: u32,
    /// Bits from [`projection_flags`].
    pub flags: u32,
    /// Joined input only ([`PROJECTION_JOIN_TO_F16_KERNEL`]): the columns of every input row
    /// read from `x` (the forward direction's `H`), `0 < split < I`; 0 otherwise.
    pub split: u32,
}

/// Arguments of the kernel that joins the two directions of a bidirectional layer into the
/// layer's output, as PyTorch lays it out:
/// `out[t][b][0..H] = forward[t][b][..]`, `out[t][b][H..2H] = reverse[T-1-t][b][..]`
/// (the reverse direction ran over the time-reversed sequence, so its step `T-1-t` belongs to
/// input step `t`). `forward` and `reverse` are `[T][B][H]` f32, `out` is `[T][B][2H]` f32.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ConcatParams {
    /// The forward direction's hidden states, `[T][B][H]` f32.
    pub forward: u64,
    /// The reverse direction's hidden states in its own (reversed) step order, `[T][B][H]` f32.
    pub reverse: u64,
    /// The layer's output, `[T][B][2H]` f32.
    pub out: u64,
    /// Sequence length T.
    pub steps: u32,
    /// Batch size B.
    pub batch: u32,
    /// Hidden size H.
    pub hidden: u32,
    /// Padding (keeps the struct's size a multiple of 8).
    pub pad: u32,
}

/// Where the recurrent kernel keeps things in its dynamic shared memory (byte offsets).
///
/// In order: the hidden state `h[(columns + 1)][B]` (fp16 or f32, column `columns` is the zero
/// column), the staged outputs `[S][B]` fp16 (this CTA's next values, published after the step's
/// last barrier), the reduced gate sums `[rows][B]` f32 (GRU, LSTM and the separate RNN cell),
/// and (LSTM) the cell state `[units][B]` f32. Each part starts 16-byte aligned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecurrentSmem {
    /// Bytes per hidden-state element (2 or 4).
    pub elem_bytes: usize,
    /// Offset of the staged outputs.
    pub stage: usize,
    /// Offset of the gate sums.
    pub acc: usize,
    /// Offset of the LSTM cell state.
    pub c: usize,
    /// Bytes in all.
    pub total: usize,
}

impl RecurrentSmem {
    /// The layout for `columns` hidden-state columns, batch `batch`, `slots` columns per CTA,
    /// `rows` gate rows and `units` units per CTA, with the hidden state in f32 (`h32`) or fp16.
    pub const fn new(columns: usize, batch: usize, slots: usize, rows: usize, units: usize, cell: Cell, h32: bool) -> RecurrentSmem {
        let elem_bytes = if h32 { 4 } else { 2 };
        let stage = round_up((columns + 1) * batch * elem_bytes, 16);
        let acc = stage + round_up(slots * batch * 2, 16);
        let c = acc + round_up(rows * batch * 4, 16);
        let total = c + match cell {
            Cell::Lstm => units * batch * 4,
            _ => 0,
        };
        RecurrentSmem { elem_bytes, stage, acc, c, total }
    }
}

impl RecurrentSmem {
    /// Offset of the shared-weights family's weight words (`[M][threads_per_cta]` u32, see the
    /// module docs): after everything else, 16-byte aligned.
    pub const fn weights(&self) -> usize {
        round_up(self.total, 16)
    }

    /// Bytes in all with `m` weight words per thread for `threads` threads in shared memory.
    pub const fn with_weights(&self, m: usize, threads: usize) -> usize {
        if m == 0 {
            self.total
        } else {
            self.weights() + shared_weight_bytes(m, threads)
        }
    }
}

/// Bytes of shared memory `m` weight words per thread take for `threads` threads.
pub const fn shared_weight_bytes(m: usize, threads: usize) -> usize {
    m * threads * 4
}

/// Calls `$m!($args…, [16, 32, 48, 64])`: the register-list lengths `N` of the shared-weights
/// family (a thread's list is `N` words in registers and `M` in shared memory, `M` at run time).
/// 96 is not among them: at 208 registers a CTA holds only eight warps, too few threads for a
/// layer large enough to need shared memory.
#[macro_export]
macro_rules! with_shared_list_lengths {
    ($m:ident $(, $arg:tt)*) => {
        $m! { $($arg,)* [16, 32, 48, 64] }
    };
}

/// Register-list lengths `N` of the shared-weights family ([`shared_kernel_name`]).
pub const SHARED_LIST_LENGTHS: [usize; 4] = with_shared_list_lengths!(as_array);

/// Register budget (`.maxnreg`) of shared-weights variant `(n, bt, gated)`: the register-only
/// variant's with the fp16 hidden state ([`register_budget`]) plus eight for the shared loop
/// (its shared address, bound and step).
pub const fn shared_register_budget(n: usize, bt: usize, gated: bool) -> u32 {
    let r = register_budget(n, bt, false, gated) + 8;
    if r > 255 { 255 } else { r }
}

/// Entry-point name of the shared-weights variant for register-list length `n`, batch tile
/// `bt` and family (`gated`), e.g. `sprnn_sw_recurrent_n48_bt4` or `sprnn_sw_gated_n48_bt4`;
/// `""` where there is none. The hidden state is fp16; `M` is `RecurrentParams::shared_words`.
/// (The `sprnn_sw_` prefix sorts after every other entry point, so adding the family leaves the
/// other kernels' PTX, whose label and call numbers follow the module's order, as it was.)
pub const fn shared_kernel_name(n: usize, bt: usize, gated: bool) -> &'static str {
    with_shared_list_lengths!(family_kernel_name, (n, bt, gated, "sprnn_sw_recurrent_n", "sprnn_sw_gated_n"))
}

/// The variant `(n, bt, gated)` a shared-weights kernel name denotes (the inverse of
/// [`shared_kernel_name`]).
pub fn parse_shared_kernel_name(name: &str) -> Option<(usize, usize, bool)> {
    parse_family_kernel_name(name, "sprnn_sw_recurrent_n", "sprnn_sw_gated_n", shared_kernel_name)
}

const _: () = {
    assert!(str_eq(shared_kernel_name(48, 4, false), "sprnn_sw_recurrent_n48_bt4"));
    assert!(str_eq(shared_kernel_name(16, 1, true), "sprnn_sw_gated_n16_bt1"));
    assert!(shared_kernel_name(96, 4, false).is_empty() && shared_kernel_name(8, 4, false).is_empty());
    let mut i = 0;
    while i < SHARED_LIST_LENGTHS.len() {
        assert!(SHARED_LIST_LENGTHS[i] % PRODUCT_GROUP == 0);
        i += 1;
    }
    assert!(RecurrentSmem::new(64, 4, 4, 4, 4, Cell::Lstm, false).weights() % 16 == 0);
};

// ---------------------------------------------------------------------------------------------
// Cluster-resident mode (sm_90 and newer)

/// Cluster sizes (CTAs per thread-block cluster) the cluster-resident mode runs: the whole
/// layer on the CTAs of one cluster, one CTA per SM. 16 is above the portable limit of 8: the
/// host allows it per kernel (`CU_FUNC_ATTRIBUTE_NON_PORTABLE_CLUSTER_SIZE_ALLOWED`), and the
/// driver's occupancy answer decides whether it fits.
pub const CLUSTER_SIZES: [usize; 4] = [2, 4, 8, 16];

/// Largest portable cluster size: larger clusters need the non-portable attribute.
pub const PORTABLE_CLUSTER_SIZE: usize = 8;

/// Columns `S` each CTA owns in the cluster-resident mode: `units_per_cta` rounded up until
/// `S · B` is a multiple of [`VALUES_PER_POLL`], so every CTA's share of the hidden state is a
/// whole number of 16-byte remote stores (the grid mode's [`exchange_slots`] rounds to 8 bytes).
#[inline(always)]
pub const fn cluster_exchange_slots(units_per_cta: usize, batch: usize) -> usize {
    slots_in_whole(units_per_cta, batch, VALUES_PER_POLL)
}

/// Where the cluster-resident kernel keeps things in its dynamic shared memory (byte offsets):
/// the grid kernel's parts ([`RecurrentSmem`], fp16 hidden state), then the two exchange buffers
/// of [`exchange_values`]`(columns, B)` tagged fp16 values each, buffer `p` at
/// `exchange + p · exchange_bytes`. Peers write the buffers with remote (DSMEM) stores; the CTA
/// polls them and copies each chunk into its hidden state, as the grid kernel's gather does from
/// global memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClusterSmem {
    /// The grid kernel's layout (hidden state, staged outputs, gate sums, LSTM cell state).
    pub base: RecurrentSmem,
    /// Offset of exchange buffer 0.
    pub exchange: usize,
    /// Bytes per exchange buffer (16-byte multiple).
    pub exchange_bytes: usize,
    /// Bytes in all.
    pub total: usize,
}

impl ClusterSmem {
    /// The layout for `columns` hidden-state columns, batch `batch`, `slots` columns per CTA,
    /// `rows` gate rows and `units` units per CTA (the hidden state is fp16).
    pub const fn new(columns: usize, batch: usize, slots: usize, rows: usize, units: usize, cell: Cell) -> ClusterSmem {
        let base = RecurrentSmem::new(columns, batch, slots, rows, units, cell, false);
        let exchange = round_up(base.total, 16);
        let exchange_bytes = exchange_values(columns, batch) * 2;
        ClusterSmem { base, exchange, exchange_bytes, total: exchange + 2 * exchange_bytes }
    }
}

/// Register budget (`.maxnreg`) of cluster-kernel variant `(n, bt, gated)`: the grid variant's
/// with the fp16 hidden state ([`register_budget`]), eight more where ptxas 12.9 (sm_90) spilled
/// at that budget (`N` = 64 at a batch tile of four and `N` = 16, 24 and 32 at eight on the RNN
/// family, `N` = 64 at four and `N` = 48 and 96 at eight on the gated one: 4 bytes each, the
/// publication's loop state and its first store's peer and chunk).
pub const fn cluster_register_budget(n: usize, bt: usize, gated: bool) -> u32 {
    let r = register_budget(n, bt, false, gated);
    let r = match (n, bt, gated) {
        (64, 4, false) | (16, 8, false) | (24, 8, false) | (32, 8, false) | (48, 8, true) | (64, 4, true) | (96, 8, true) => r + 8,
        _ => r,
    };
    if r > 255 { 255 } else { r }
}

/// Entry-point name of the cluster-resident kernel for list length `n`, batch tile `bt` and
/// family (`gated`: GRU and LSTM finished in the warp), e.g. `sprnn_cluster_n32_bt4` or
/// `sprnn_cluster_gated_n32_bt4`; `""` where there is no variant. The hidden state is fp16
/// (the exchange buffers hold it so). Only the sm_90 PTX has these kernels.
pub const fn cluster_kernel_name(n: usize, bt: usize, gated: bool) -> &'static str {
    with_list_lengths!(family_kernel_name, (n, bt, gated, "sprnn_cluster_n", "sprnn_cluster_gated_n"))
}

/// The variant `(n, bt, gated)` a cluster kernel name denotes (the inverse of
/// [`cluster_kernel_name`]).
pub fn parse_cluster_kernel_name(name: &str) -> Option<(usize, usize, bool)> {
    parse_family_kernel_name(name, "sprnn_cluster_n", "sprnn_cluster_gated_n", cluster_kernel_name)
}

const _: () = {
    assert!(str_eq(cluster_kernel_name(32, 4, false), "sprnn_cluster_n32_bt4"));
    assert!(str_eq(cluster_kernel_name(8, 1, true), "sprnn_cluster_gated_n8_bt1"));
    assert!(cluster_kernel_name(10, 4, false).is_empty());
    assert!(cluster_exchange_slots(18, 4) == 18 && cluster_exchange_slots(18, 1) == 24 && cluster_exchange_slots(3, 2) == 4);
    assert!(ClusterSmem::new(64, 4, 4, 4, 4, Cell::Lstm).exchange % 16 == 0);
    assert!(CLUSTER_SIZES[CLUSTER_SIZES.len() - 1] == 16 && PORTABLE_CLUSTER_SIZE == 8);
};

/// `x` rounded up to a multiple of `m`.
pub const fn round_up(x: usize, m: usize) -> usize {
    x.div_ceil(m) * m
}

const _: () = {
    assert!(core::mem::size_of::<RecurrentParams>() % 8 == 0);
    assert!(core::mem::size_of::<SmokeParams>() % 8 == 0);
    assert!(core::mem::size_of::<ProjectionParams>() % 8 == 0);
    assert!(core::mem::size_of::<ConcatParams>() % 8 == 0);
    // The warps cover the CTA's tile; 64 rows per warp, column tiles of whole n8-tile pairs
    // per warp (or one odd n-tile); each thread copies whole 16-byte chunks per stage.
    assert!(PROJECTION_WARPS.0 * PROJECTION_WARPS.1 * 32 == PROJECTION_THREADS);
    assert!(PROJECTION_TILE_ROWS == 64 * PROJECTION_WARPS.0 && PROJECTION_TILE_K == 64);
    assert!((PROJECTION_TILE_ROWS * PROJECTION_TILE_K / 8).is_multiple_of(PROJECTION_THREADS));
    let mut i = 0;
    while i < PROJECTION_VARIANTS.len() {
        let (n, s) = PROJECTION_VARIANTS[i];
        assert!(n.is_multiple_of(8 * PROJECTION_WARPS.1) && (n * PROJECTION_TILE_K / 8).is_multiple_of(PROJECTION_THREADS));
        assert!(s >= 2 && !projection_dense_kernel_name(n, s).is_empty());
        // Within the 227 KB a Hopper CTA may opt into; the host skips variants beyond a GPU's.
        assert!(projection_smem_bytes(n, s) <= 227 * 1024);
        i += 1;
    }
    // The smallest variant fits every sm_80-class GPU (at least 99 KB per CTA).
    assert!(projection_smem_bytes(128, 2) <= 99 * 1024);
    assert!(MAX_HIDDEN < 1 << 16);
    assert!(str_eq(recurrent_kernel_name(32, 4, true, false), "sprnn_recurrent_n32_bt4_h32"));
    assert!(str_eq(recurrent_kernel_name(8, 1, false, true), "sprnn_gated_n8_bt1_h16"));
    // Steps t and t - 2 share a buffer; their tags differ, and steps 1 and 2 differ from the
    // zeroed buffers.
    assert!(tag_bit(1) == 1 && tag_bit(2) == 1 && tag_bit(3) == 0 && tag_bit(4) == 0);
    // A fresh launch starts from zeroed buffers.
    assert!(initial_tag_pattern32(0, 0) == 0 && initial_tag_pattern32(0, 1) == 0);
    assert!(exchange_slots(18, 4) == 18 && exchange_slots(18, 1) == 20 && exchange_slots(3, 2) == 4);
};

// ---------------------------------------------------------------------------------------------
// Exchange probe (a benchmark of the hidden-state exchange alone; `sprnn-probe`)

/// Threads per CTA of the exchange probe: the headline layer's (H = 2304, B = 4, 128 CTAs).
pub const PROBE_THREADS: usize = 576;
/// CTAs of the exchange probe's headline geometry.
pub const PROBE_CTAS: usize = 128;
/// Hidden units each CTA publishes in the headline geometry (`2304 / 128`).
pub const PROBE_ROWS_PER_CTA: usize = 18;
/// Batch lanes of the headline geometry.
pub const PROBE_BATCH: usize = 4;

/// How the exchange probe packs values into tagged words.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProbeWord {
    /// The 32-bit word of the earlier exchange: fp16 value in the low half, 16-bit step tag in the high half
    /// (fp16 value | 16-bit step tag, the 32-bit word format this probe compares against). A 16-byte chunk holds four words.
    Tagged32 = 0,
    /// A 64-bit word: three fp16 values in bits 0..48, the 16-bit step tag in bits 48..64. An
    /// aligned 64-bit access is single-copy atomic, so the tag vouches for all three values;
    /// a 16-byte chunk holds two words, polled as two 64-bit accesses.
    Tagged64 = 1,
}

impl ProbeWord {
    /// Bytes per word.
    pub const fn bytes(self) -> usize {
        match self {
            ProbeWord::Tagged32 => 4,
            ProbeWord::Tagged64 => 8,
        }
    }

    /// fp16 values per word.
    pub const fn values(self) -> usize {
        match self {
            ProbeWord::Tagged32 => 1,
            ProbeWord::Tagged64 => 3,
        }
    }

    /// `w32` or `w64`, as in kernel names and the probe's rows.
    pub const fn name(self) -> &'static str {
        match self {
            ProbeWord::Tagged32 => "w32",
            ProbeWord::Tagged64 => "w64",
        }
    }
}

/// How the CTAs of the exchange probe share the vector.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProbeExchange {
    /// Every CTA polls the whole vector in global memory (L2), as the recurrent kernel does.
    Global = 0,
    /// Clusters of two CTAs (sm_90): each polls half of the vector and forwards every chunk
    /// into its partner's shared memory (DSMEM); one cluster barrier per step publishes it.
    ClusterBarrier = 1,
    /// Clusters of two CTAs (sm_90): as `ClusterBarrier`, but the forwarded chunks keep their
    /// tags and the partner polls its own shared memory for them: no cluster barrier per step.
    ClusterTagged = 2,
}

impl ProbeExchange {
    /// CTAs per thread-block cluster (1: no cluster).
    pub const fn cluster_size(self) -> usize {
        match self {
            ProbeExchange::Global => 1,
            ProbeExchange::ClusterBarrier | ProbeExchange::ClusterTagged => 2,
        }
    }
}

/// Entry-point name of the exchange probe for a word format and an exchange.
pub const fn probe_kernel_name(word: ProbeWord, exchange: ProbeExchange) -> &'static str {
    match (exchange, word) {
        (ProbeExchange::Global, ProbeWord::Tagged32) => "sprnn_probe_global_w32",
        (ProbeExchange::Global, ProbeWord::Tagged64) => "sprnn_probe_global_w64",
        (ProbeExchange::ClusterBarrier, ProbeWord::Tagged32) => "sprnn_probe_cluster_barrier_w32",
        (ProbeExchange::ClusterBarrier, ProbeWord::Tagged64) => "sprnn_probe_cluster_barrier_w64",
        (ProbeExchange::ClusterTagged, ProbeWord::Tagged32) => "sprnn_probe_cluster_tagged_w32",
        (ProbeExchange::ClusterTagged, ProbeWord::Tagged64) => "sprnn_probe_cluster_tagged_w64",
    }
}

/// Bits of `ProbeParams::flags`.
pub mod probe_flags {
    /// Test switch: CTA 0 never publishes step 1, so every wait for it must end with
    /// `status::TIMEOUT` (or `status::ABORTED` once another CTA has failed), never hang.
    pub const NEVER_PUBLISH: u32 = 1 << 0;
}

/// Every argument of the exchange probe, passed by value as one `.param` struct.
///
/// Step `t` = 1..=`steps`: (t ≥ 2) every thread polls its chunks of the vector in exchange buffer
/// `(t-1) % 2` until each word carries tag `t-1` and copies them to shared memory; barrier; the
/// first `words_per_cta` threads publish their CTA's words (each value one more than the value
/// gathered for it, so after step `t` every value is `t mod 2^16`) with tag `t` into buffer
/// `t % 2`; barrier. Dynamic shared memory: [`probe_smem_bytes`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProbeParams {
    /// Two exchange buffers of `chunks * 16` bytes each (buffer `p` at `exchange + p·chunks·16`),
    /// zeroed before launch.
    pub exchange: u64,
    /// Status word, zeroed before launch; see [`status`].
    pub status: u64,
    /// Four u64 written by thread 0 of CTA 0: `%clock64` and `%globaltimer` before the step
    /// loop, then both after it (the SM clock while the probe runs).
    pub clocks: u64,
    /// Per-wait bound in nanoseconds (`%globaltimer`), counted from the wait's first check.
    pub timeout_ns: u64,
    /// Steps (at most 65535, so tags never wrap to the zeroed start).
    pub steps: u32,
    /// Words each CTA publishes (its words are `cta·words_per_cta ..`).
    pub words_per_cta: u32,
    /// 16-byte chunks in the vector: `grid · words_per_cta · word bytes / 16`.
    pub chunks: u32,
    /// A wait reads `%globaltimer` and the status word when `spins & check_mask == check_phase`
    /// (spins counted from 1): mask 31, phase 1 is the recurrent kernel's (first miss, then every
    /// 32 spins); mask 1023, phase 0 checks every 1024 spins only.
    pub check_mask: u32,
    /// See `check_mask`.
    pub check_phase: u32,
    /// Bits from [`probe_flags`].
    pub flags: u32,
}

/// Dynamic shared memory of the exchange probe for a vector of `chunks` 16-byte chunks: two
/// copies of the vector (by step parity) and one 16-byte cluster flag.
pub const fn probe_smem_bytes(chunks: usize) -> usize {
    2 * chunks * 16 + 16
}

const _: () = {
    assert!(core::mem::size_of::<ProbeParams>().is_multiple_of(8));
    assert!(PROBE_CTAS * PROBE_ROWS_PER_CTA == 2304);
    // The headline vector is whole chunks in both word formats.
    assert!((PROBE_ROWS_PER_CTA * PROBE_BATCH * 4).is_multiple_of(16));
    assert!((PROBE_CTAS * PROBE_ROWS_PER_CTA * PROBE_BATCH / 3 * 8).is_multiple_of(16));
};
