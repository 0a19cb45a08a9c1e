//! The cluster-resident recurrent kernel (sm_90): a layer small enough for one thread-block
//! cluster runs on the 2–16 CTAs of that one cluster, one CTA per SM, and the hidden state never
//! goes through L2.
//!
//! The grid kernel ([`super::recurrent`]) publishes each CTA's share of `h_t` to global memory
//! and every CTA polls all of it back: at least one L2 round trip per step (about 1 µs on the
//! H200). Here every CTA writes its share straight into *every* peer's shared memory (its own
//! included) with 16-byte remote stores (`st.relaxed.cluster.shared::cluster.v4`, DSMEM) and
//! polls only its own shared memory. There is no cluster barrier per step: as in the grid
//! kernel, each fp16 value carries its step's tag in its last mantissa bit
//! (`format::tag_round`), so a value is its own flag.
//!
//! Phases (the grid kernel's, reused: [`super::recurrent`]'s `load_weights`, `warm_start`,
//! `multiply_tile(_f16)`, `reduce_scatter`/`butterfly`, `gated_cell`, `cell_phase`, `finish_h`):
//! 1. weights into registers; warm start (`h0` into the hidden state), then each CTA fills its two
//!    exchange buffers with the tag pattern their first expected step does not carry
//!    (`format::initial_tag_pattern32`), and a cluster barrier: no peer stores into a window
//!    before its owner has initialised it (and every CTA of the cluster is running);
//! 2. step loop, t = 1..=T (sequence step `s = first_step + t`):
//!    - [`gather`] (t ≥ 2): each thread polls its 16-byte chunks of exchange buffer `(s−1) % 2`
//!      *in its own shared memory* until every value carries the tag of step `s − 1`, and copies
//!      them to the hidden state (bounded by `timeout_ns`, with the status word checked every
//!      `SPINS_PER_CHECK` spins, as the grid kernel's wait); a barrier;
//!    - the product, the row reduction and the cell, as the grid kernel, but the packed words
//!      are `format::WordFormat::Offset`: each holds its column's byte offset in the hidden
//!      state, so a word costs three instructions at `BT = 1` (the address in one `LEA.HI`, the
//!      load, the pair FMA) instead of four (the planner keeps layers whose offsets do not fit
//!      16 bits in the grid mode);
//!    - a barrier, then [`publish`] (t < T): the CTA's staged values to buffer `s % 2` of every
//!      CTA of the cluster, 16 bytes per remote store;
//! 3. a cluster barrier before exit, on every path (the failure path too): no CTA leaves while a
//!    peer may still store into its shared memory.
//!
//! # Why two exchange buffers are enough
//!
//! Buffer `s % 2` of a CTA receives `h_s` from each peer and, two steps later, `h_{s+2}`. A peer
//! publishes `h_{s+2}` only after it has gathered `h_{s+1}` from *every* CTA, this one included;
//! this CTA publishes `h_{s+1}` after its end-of-step barrier of step `s + 1`, i.e. after all of
//! its threads have finished copying `h_s` out of buffer `s % 2` (the gather of step `s + 1`
//! precedes that barrier). So no value of `h_{s+2}` can land in the buffer while `h_s` may still
//! be read from it, and its tag bit (`tag_bit(s + 2) ≠ tag_bit(s)`) tells the two apart.
//!
//! # Memory model
//!
//! See the device layer's cluster section: the remote stores and the polls are strong
//! (relaxed) accesses at cluster scope, morally strong with each other, so a poll sees each
//! 32-bit piece whole, in coherence order, and in finite time; each value's own tag vouches for
//! it, with no order needed among the pieces of a vector store. The copy into the hidden state
//! is this CTA's own, ordered for the other threads by `bar.sync`.
//!
//! Only the fp16 hidden state is instantiated (the exchange buffers hold fp16); the sm_80 build
//! has no cluster kernels at all, and the host's planner never chooses the mode below compute
//! capability 9.0.

use crate::device::*;
use crate::format::{flags, initial_tag_pattern32, status, tag_pattern32, ClusterSmem, RecurrentParams, TAG_BITS32, VALUES_PER_POLL};

use super::recurrent::{load_weights, multiply_tile, multiply_tile_f16, report, spin_until_fresh, store_chunk, warm_start, Layer};
use super::row::Row;

/// Where this CTA's exchange buffers are and who it is in the cluster.
struct Exchange {
    /// Shared address of exchange buffer 0 (buffer 1 follows at `+ bytes`).
    base: u32,
    /// Bytes per buffer.
    bytes: u32,
    /// CTAs in the cluster (the whole grid).
    size: u32,
    /// This CTA's rank (= its index in the grid: the grid is one cluster).
    rank: u32,
    /// This thread's first store of [`publish`]: `(k, c)` of store `i = tid` (peer offset
    /// `k = i / chunks`, chunk `c = i % chunks`), divided once here instead of every step (an
    /// integer division is two dozen dependent instructions on the step's path).
    first: (u32, u32),
}

impl Exchange {
    /// The exchange of layer `l` (`p`'s parameters), or `None` when the launch is not one
    /// cluster whose CTAs publish whole 16-byte chunks.
    #[inline(always)]
    fn new(p: &RecurrentParams, l: &Layer) -> Option<Exchange> {
        let gates = l.gates as usize;
        let smem = ClusterSmem::new(p.columns as usize, p.batch as usize, p.slots_per_cta as usize, p.units_per_cta as usize * gates, p.units_per_cta as usize, l.cell);
        let (size, rank) = (cluster_nctarank(), cluster_ctarank());
        let bad = size != grid_dim_x() || rank != block_idx_x() || (l.slots * l.batch) % VALUES_PER_POLL as u32 != 0;
        if bad {
            return None;
        }
        let chunks = l.slots * l.batch / VALUES_PER_POLL as u32;
        let tid = thread_idx_x();
        Some(Exchange { base: dyn_smem_base() + smem.exchange as u32, bytes: smem.exchange_bytes as u32, size, rank, first: (tid / chunks, tid % chunks) })
    }

    /// Shared address of buffer `parity` (0 or 1).
    #[inline(always)]
    fn buffer(&self, parity: u32) -> u32 {
        self.base + (parity & 1) * self.bytes
    }
}

/// Fills both exchange buffers with the tag pattern their first expected step does not carry
/// (`format::initial_tag_pattern32`), 16 bytes per store.
///
/// # Safety
/// Kernel contract; no peer stores into this CTA's window yet (before the first cluster barrier).
#[inline(always)]
unsafe fn init_exchange(l: &Layer, x: &Exchange) {
    let chunks = x.bytes / 16;
    for parity in 0..2u32 {
        let pattern = initial_tag_pattern32(l.first_step, parity);
        let mut i = thread_idx_x();
        while i < chunks {
            // SAFETY: chunk `i` lies inside buffer `parity` (16-byte aligned).
            unsafe { st_shared_v4_u32(x.buffer(parity) + 16 * i, [pattern; 4]) };
            i += l.nt;
        }
    }
}

/// The grid kernel's wait ([`spin_until_fresh`]) on the full chunk at shared address `addr`
/// (this CTA's own window; strong loads at cluster scope).
///
/// # Safety
/// `addr` must be a 16-byte-aligned chunk of an exchange buffer; `status_word` the status word.
#[inline(always)]
unsafe fn wait_chunk(addr: u32, expect: u32, status_word: *const u32, timeout_ns: u64) -> Result<[u32; 4], u32> {
    // SAFETY: the caller guarantees the address and the status word.
    unsafe { spin_until_fresh(|| ld_relaxed_cluster_shared_v4_u32(addr), true, expect, status_word, timeout_ns) }
}

/// Gathers `h` of the launch's step `t` from exchange buffer `(first_step + t) % 2` of this
/// CTA's own shared memory into its hidden state: this thread's chunks, one wait after the
/// other. Reports a failed wait to the status word and returns whether it failed.
///
/// # Safety
/// Kernel contract.
#[inline(always)]
unsafe fn gather(p: &RecurrentParams, l: &Layer, x: &Exchange, t: u32) -> bool {
    let step = l.first_step.wrapping_add(t);
    let expect = tag_pattern32(step);
    let buf = x.buffer(step);
    // `columns · B` is a multiple of 8 (each CTA's share is whole chunks).
    let chunks = l.columns * l.batch / VALUES_PER_POLL as u32;
    let mut chunk = thread_idx_x();
    while chunk < chunks {
        // SAFETY: the chunk lies in the buffer.
        match unsafe { wait_chunk(buf + 16 * chunk, expect, p.status as *const u32, p.timeout_ns) } {
            // SAFETY: values `8·chunk ..` are inside the hidden state.
            Ok(v) => unsafe { store_chunk::<false>(l, chunk, v, true) },
            Err(code) => {
                // SAFETY: status is valid.
                unsafe { report(p, code) };
                return true;
            }
        }
        chunk += l.nt;
    }
    false
}

/// Publishes this CTA's staged values as the launch's step `t` (sequence step `s =
/// first_step + t`) into exchange buffer `s % 2` of every CTA of the cluster, its own included,
/// at the CTA's share (`rank · S · B` values in): 16 bytes per remote store, each value's last
/// bit set to the step's tag (already so for computed values; this tags the empty slots, and in
/// the exchange floor republishes the staged values). Store `i` goes to peer
/// `(rank + i / chunks) % size`, so the CTAs start on different peers; a thread's first
/// store's `(i / chunks, i % chunks)` is [`Exchange::first`].
///
/// # Safety
/// Kernel contract; the staged values are complete (after a barrier); every CTA of the cluster
/// is running (until the final cluster barrier).
#[inline(always)]
unsafe fn publish(p: &RecurrentParams, l: &Layer, x: &Exchange, t: u32) {
    if p.flags & flags::TEST_NEVER_PUBLISH != 0 && x.rank == 0 && t == 1 {
        return;
    }
    let step = l.first_step.wrapping_add(t);
    let pattern = tag_pattern32(step);
    let chunks = l.slots * l.batch / VALUES_PER_POLL as u32;
    let share = x.buffer(step) + x.rank * chunks * 16;
    let mut i = thread_idx_x();
    let (mut k, mut c) = x.first;
    while i < chunks * x.size {
        let peer = if x.rank + k >= x.size { x.rank + k - x.size } else { x.rank + k };
        // SAFETY: chunk `c` of the stage (S·B values, 16-byte aligned) and of this CTA's share of
        // the buffer, mapped into CTA `peer` of the cluster, which is running (caller).
        unsafe {
            let v = ld_shared_v4_u32(l.stage_smem + 16 * c);
            let v = [
                (v[0] & !TAG_BITS32) | pattern,
                (v[1] & !TAG_BITS32) | pattern,
                (v[2] & !TAG_BITS32) | pattern,
                (v[3] & !TAG_BITS32) | pattern,
            ];
            st_relaxed_cluster_shared_cluster_v4_u32(mapa_shared_cluster(share + 16 * c, peer), v);
        }
        i += l.nt;
        // Only a thread with another store divides (none where `chunks · size ≤ nt`).
        if i < chunks * x.size {
            (k, c) = (i / chunks, i % chunks);
        }
    }
}

/// The kernel body for list length `N`, batch tile `BT` and the kernel family (`GATED`, as the
/// grid kernel's), the hidden state in fp16.
///
/// # Safety
/// `p` must satisfy the contract in `format::RecurrentParams`, the launch must be exactly one
/// thread-block cluster of `grid` CTAs (1-D), and the dynamic shared memory
/// `format::ClusterSmem::total`.
#[inline(always)]
pub unsafe fn cluster<const N: usize, const BT: usize, const GATED: bool>(p: &RecurrentParams) {
    let tid = thread_idx_x();
    let parts = Layer::new::<BT, false, GATED>(p).and_then(|l| Exchange::new(p, &l).map(|x| (l, x)));
    let Some((l, x)) = parts else {
        if tid == 0 {
            // SAFETY: status is valid.
            unsafe { report(p, status::BAD_PARAMS) };
        }
        // The two cluster barriers every CTA passes (after the warm start, before exit), so a
        // peer that did accept the parameters is not left waiting.
        // SAFETY: every thread of every CTA reaches exactly two cluster barriers.
        unsafe {
            cluster_sync();
            cluster_sync();
        }
        return;
    };
    let exchange_only = p.flags & flags::EXCHANGE_ONLY != 0;

    // ---- Phase 1: weights into registers, and each thread's row (as the grid kernel).
    // SAFETY: kernel contract.
    let w = unsafe { load_weights::<N>(p, &l) };
    // SAFETY: kernel contract.
    let row = unsafe { Row::new::<BT, GATED>(p, &l, tid) };

    // ---- Phase 2: warm start, the exchange buffers, and the cluster barrier that lets peers in.
    // SAFETY: kernel contract; the hidden state holds the columns and the zero column. Every
    // thread of every CTA reaches this cluster barrier once.
    unsafe {
        warm_start::<false>(p, &l, (l.columns + 1) * l.batch);
        init_exchange(&l, &x);
        cluster_sync();
    }

    // ---- Phase 3: step loop.
    let mut t = 0;
    while t < l.steps {
        t += 1;
        // SAFETY: kernel contract.
        let inputs = unsafe { row.inputs::<GATED>(p, &l, t, exchange_only) };

        // Gather h_{t-1} from this CTA's own exchange buffer, then a barrier: h_{t-1} is complete.
        // SAFETY: kernel contract.
        let failed = t >= 2 && unsafe { gather(p, &l, &x, t - 1) };
        // SAFETY: every thread reaches this barrier once per step.
        if unsafe { sync_threads_or(failed) } {
            break;
        }

        if !exchange_only {
            for tile in 0..l.batch / BT as u32 {
                let acc = if l.f16_products {
                    // SAFETY: columns are inside the hidden state, which is fp16.
                    unsafe { multiply_tile_f16::<N, BT, true>(&w, &l, tile) }
                } else {
                    // SAFETY: columns are inside the hidden state.
                    unsafe { multiply_tile::<N, BT, false, true>(&w, &l, tile) }
                };
                // SAFETY: the whole warp reduces together; kernel contract.
                unsafe { row.finish_tile::<BT, false, GATED>(p, &l, t, tile, acc, &inputs) };
            }
            if !row.fused() {
                // SAFETY: uniform (`fused` is); kernel contract.
                unsafe { row.cell_phase::<false, GATED>(p, &l, t, &inputs) };
            }
        }
        // The staged outputs are complete, and nobody reads h_{t-1} any more. The last step's
        // values are nobody's input: not published.
        // SAFETY: uniform barrier; kernel contract; every peer runs until the final barrier.
        unsafe {
            sync_threads();
            if t < l.steps {
                publish(p, &l, &x, t);
            }
        }
    }
    // ---- Drain: no CTA leaves while a peer may still store into its shared memory.
    // SAFETY: every thread of every CTA reaches this second cluster barrier once (a failed step
    // leaves the loop on every thread of the CTA together, `sync_threads_or`).
    unsafe { cluster_sync() };
}

/// The entry points: for every list length and batch tile (`format::with_list_lengths`,
/// `format::with_batch_tiles`) and both families, a kernel named by
/// `format::cluster_kernel_name` (checked at compile time) that runs [`cluster`].
macro_rules! entries {
    ([$($n:literal),*]) => {
        $( crate::with_batch_tiles!(entries, $n); )*
    };
    ($n:literal, [$($bt:literal),*]) => {
        $(
            entries!(@one $n, $bt, false, "sprnn_cluster_n");
            entries!(@one $n, $bt, true, "sprnn_cluster_gated_n");
        )*
    };
    (@one $n:literal, $bt:literal, $gated:literal, $family:literal) => {
        const _: () = {
            /// Cluster-resident recurrent kernel entry point (family, list length and batch
            /// tile in the name).
            ///
            /// # Safety
            /// See [`cluster`].
            #[export_name = concat!($family, $n, "_bt", $bt)]
            pub unsafe extern "ptx-kernel" fn entry(p: RecurrentParams) {
                const _: () = assert!(crate::format::str_eq(
                    crate::format::cluster_kernel_name($n, $bt, $gated),
                    concat!($family, $n, "_bt", $bt)
                ));
                // SAFETY: forwarded contract.
                unsafe { cluster::<$n, $bt, $gated>(&p) }
            }
        };
    };
}

crate::with_list_lengths!(entries);
