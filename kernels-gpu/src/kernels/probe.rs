//! The exchange probe: the recurrent kernel's hidden-state exchange alone, with no weights and
//! no arithmetic, so its cost per step can be measured for other word formats, polling policies
//! and thread-block clusters before the recurrent kernel adopts one (`sprnn-probe` runs it).
//!
//! Every CTA owns `words_per_cta` consecutive tagged words of a vector of `chunks` 16-byte
//! chunks ([`ProbeWord`](crate::format::ProbeWord): 32-bit `fp16 | tag` or 64-bit
//! `3 × fp16 | tag`). Step `t` = 1..=`steps` has the recurrent kernel's structure:
//! 1. **gather** (t ≥ 2): each thread takes chunks `tid, tid + ntid, …` of its share and, one
//!    after the other, spins on each until every word carries tag `t-1` (the serial poll of
//!    `wait_chunk` in `recurrent.rs`, bounded the same way), then copies it to shared memory
//!    buffer `(t-1) % 2`;
//! 2. **barrier**;
//! 3. **publish**: thread `w < words_per_cta` reads its CTA's word `w` from the gathered copy
//!    and stores it, every value plus one, with tag `t` into exchange buffer `t % 2` — so the
//!    values after step `t` are all `t mod 2^16`, which the host checks;
//! 4. **barrier**.
//!
//! Exchanges ([`ProbeExchange`](crate::format::ProbeExchange)):
//! - *global*: every CTA polls the whole vector in L2;
//! - *cluster, barrier* (sm_90, clusters of 2): CTA rank `r` polls half `r` of the vector and
//!   stores each chunk into its own copy and into its partner's (DSMEM); the gather barrier is a
//!   cluster barrier, which also carries a failure flag so both CTAs leave the loop together;
//! - *cluster, tagged* (sm_90, clusters of 2): the forwarded chunks keep their tags; after its
//!   own half, each thread polls its own shared memory for the chunks its partner forwards (the
//!   same thread index of the partner), so the step needs no cluster barrier. A final cluster
//!   barrier keeps each CTA alive until its partner has stopped writing into it.
//!
//! Waits read `%globaltimer` and the status word on the spins `ProbeParams::check_mask` selects;
//! a wait past `timeout_ns` writes `status::TIMEOUT` (or `status::ABORTED` after another CTA's
//! error), with the CTA index, and ends the launch — never a hang. Registers: a handful of
//! addresses and loop counters; no register-resident state.

use crate::device::*;
use crate::format::{probe_flags, status, ProbeParams};

/// Exchange through L2 only (`ProbeExchange::Global`).
const GLOBAL: u32 = 0;
/// Clusters of two, DSMEM forward, cluster barrier (`ProbeExchange::ClusterBarrier`).
const BARRIER: u32 = 1;
/// Clusters of two, DSMEM forward of tagged chunks polled in shared memory
/// (`ProbeExchange::ClusterTagged`).
const TAGGED: u32 = 2;

/// One 16-byte chunk as four 32-bit halves (a 64-bit word `i` is `[2i]` low, `[2i + 1]` high).
type Chunk = [u32; 4];

/// The cluster operations, from the device layer on sm_90. The sm_80 build has no cluster
/// entry points, so there these are never called; they exist so the generic body compiles.
#[cfg(target_feature = "sm_90")]
mod dsmem {
    pub use crate::device::{
        cluster_ctarank, cluster_sync, ld_relaxed_cluster_shared_v2_u64, ld_relaxed_cluster_shared_v4_u32,
        mapa_shared_cluster, st_relaxed_cluster_shared_cluster_v2_u64, st_relaxed_cluster_shared_cluster_v4_u32,
        st_shared_cluster_u32,
    };
}

/// Stand-ins for sm_80 (no clusters): never reached, each traps.
#[cfg(not(target_feature = "sm_90"))]
#[allow(clippy::missing_safety_doc)]
mod dsmem {
    use crate::device::trap;
    pub fn cluster_ctarank() -> u32 {
        trap()
    }
    pub fn mapa_shared_cluster(_: u32, _: u32) -> u32 {
        trap()
    }
    pub unsafe fn cluster_sync() {
        trap()
    }
    pub unsafe fn st_relaxed_cluster_shared_cluster_v4_u32(_: u32, _: [u32; 4]) {
        trap()
    }
    pub unsafe fn st_relaxed_cluster_shared_cluster_v2_u64(_: u32, _: [u64; 2]) {
        trap()
    }
    pub unsafe fn st_shared_cluster_u32(_: u32, _: u32) {
        trap()
    }
    pub unsafe fn ld_relaxed_cluster_shared_v4_u32(_: u32) -> [u32; 4] {
        trap()
    }
    pub unsafe fn ld_relaxed_cluster_shared_v2_u64(_: u32) -> [u64; 2] {
        trap()
    }
}

/// Two 64-bit words as a chunk.
#[inline(always)]
fn chunk_of_u64(v: [u64; 2]) -> Chunk {
    [v[0] as u32, (v[0] >> 32) as u32, v[1] as u32, (v[1] >> 32) as u32]
}

/// Whether every word of `v` carries `tag`: four 32-bit tags, or the tags of two 64-bit words
/// (bits 48..64 of each, i.e. the high half of its high 32 bits; each 64-bit word was read by one
/// single-copy-atomic access, so its tag vouches for its three values).
#[inline(always)]
fn fresh<const WIDE: bool>(v: &Chunk, tag: u32) -> bool {
    if WIDE {
        (v[1] >> 16) == tag && (v[3] >> 16) == tag
    } else {
        (v[0] >> 16) == tag && (v[1] >> 16) == tag && (v[2] >> 16) == tag && (v[3] >> 16) == tag
    }
}

/// One strong 16-byte read of the exchange buffer: `v4.u32` or `v2.u64`.
///
/// # Safety
/// `p` must be a 16-byte-aligned chunk of an exchange buffer.
#[inline(always)]
unsafe fn load_global<const WIDE: bool>(p: *const u32) -> Chunk {
    // SAFETY: the caller guarantees the chunk.
    unsafe {
        if WIDE {
            chunk_of_u64(ld_relaxed_gpu_v2_u64(p as *const u64))
        } else {
            ld_relaxed_gpu_v4_u32(p)
        }
    }
}

/// One strong 16-byte read of this CTA's shared memory at cluster scope (chunks a partner
/// forwards).
///
/// # Safety
/// `addr` must be a 16-byte-aligned chunk of this CTA's dynamic shared memory.
#[inline(always)]
unsafe fn load_forwarded<const WIDE: bool>(addr: u32) -> Chunk {
    // SAFETY: the caller guarantees the chunk.
    unsafe {
        if WIDE {
            chunk_of_u64(dsmem::ld_relaxed_cluster_shared_v2_u64(addr))
        } else {
            dsmem::ld_relaxed_cluster_shared_v4_u32(addr)
        }
    }
}

/// Spins on `load` until its chunk is [`fresh`] for `tag`; returns the chunk, or the error
/// code when the wait passes its bound or another CTA has failed. On the spins where
/// `spins & check_mask == check_phase` it reads `%globaltimer` (the first such read starts the
/// deadline) and the status word.
///
/// # Safety
/// `status_word` must be the launch's status word; `load` must be safe to call.
#[inline(always)]
unsafe fn wait<const WIDE: bool>(load: impl Fn() -> Chunk, tag: u32, p: &ProbeParams) -> Result<Chunk, u32> {
    let mut spins: u32 = 0;
    let mut deadline: u64 = 0;
    loop {
        let v = load();
        if fresh::<WIDE>(&v, tag) {
            return Ok(v);
        }
        spins = spins.wrapping_add(1);
        if spins & p.check_mask == p.check_phase {
            let now = global_timer_ns();
            if deadline == 0 {
                deadline = now + p.timeout_ns;
            } else if now > deadline {
                return Err(status::TIMEOUT);
            }
            // SAFETY: `status` is a valid device word (kernel contract).
            if unsafe { ld_relaxed_gpu_u32(p.status as *const u32) } != status::OK {
                return Err(status::ABORTED);
            }
        }
    }
}

/// Records the first error of the launch (later ones keep the first).
///
/// # Safety
/// `p.status` must be a valid device word.
#[inline(always)]
unsafe fn report(p: &ProbeParams, code: u32) {
    // SAFETY: the caller guarantees the status word.
    unsafe { atom_cas_gpu_u32(p.status as *mut u32, status::OK, code | (block_idx_x() << status::CTA_SHIFT)) };
}

/// Publishes this CTA's words for step `t` into `buf` (exchange buffer `t % 2`): word `w` is the
/// gathered word at shared address `gathered + w·bytes` with every value plus one and tag `t`.
///
/// # Safety
/// `buf` must be an exchange buffer and `gathered` the shared copy of the previous step's vector
/// (both of `chunks` chunks), and this thread the only writer of its words.
#[inline(always)]
unsafe fn publish<const WIDE: bool>(p: &ProbeParams, buf: *mut u32, gathered: u32, t: u32) {
    let never = p.flags & probe_flags::NEVER_PUBLISH != 0 && block_idx_x() == 0 && t == 1;
    if never {
        return;
    }
    let tag = t & 0xFFFF;
    let first = block_idx_x() * p.words_per_cta;
    let mut w = thread_idx_x();
    while w < p.words_per_cta {
        let g = first + w;
        // SAFETY: g < grid · words_per_cta = the vector's words; both copies hold the vector.
        unsafe {
            if WIDE {
                let [lo, hi] = ld_shared_v2_u32(gathered + 8 * g);
                let old = lo as u64 | (hi as u64) << 32;
                let mut new = (tag as u64) << 48;
                for lane in 0..3 {
                    new |= (((old >> (16 * lane)) + 1) & 0xFFFF) << (16 * lane);
                }
                st_relaxed_gpu_u64((buf as *mut u64).add(g as usize), new);
            } else {
                let old = ld_shared_u32(gathered + 4 * g);
                st_relaxed_gpu_u32(buf.add(g as usize), (tag << 16) | ((old + 1) & 0xFFFF));
            }
        }
        w += block_dim_x();
    }
}

/// The probe body for word format `WIDE` (64-bit words) and exchange `MODE`.
///
/// # Safety
/// `p` must satisfy the contract of [`ProbeParams`]: two zeroed exchange buffers of `chunks`
/// chunks, `chunks · 16 = grid · words_per_cta · word bytes`, a zeroed status word, a 32-byte
/// clock buffer, dynamic shared memory of `probe_smem_bytes(chunks)`, every CTA of the grid
/// co-resident; for the cluster modes clusters of two CTAs and `chunks` even.
#[inline(always)]
unsafe fn probe<const WIDE: bool, const MODE: u32>(p: &ProbeParams) {
    let tid = thread_idx_x();
    let nt = block_dim_x();
    let base = dyn_smem_base();
    let vector_bytes = p.chunks * 16;
    // The cluster flag: set (to 1) when any thread of either CTA of a cluster failed.
    let flag = base + 2 * vector_bytes;
    // This CTA's share of the vector: all of it, or half `rank` in a cluster of two.
    let (rank, half) = if MODE == GLOBAL { (0, p.chunks) } else { (dsmem::cluster_ctarank(), p.chunks / 2) };
    let partner = rank ^ 1;
    let partner_base = if MODE == GLOBAL { 0 } else { dsmem::mapa_shared_cluster(base, partner) };
    let exchange = p.exchange as *mut u32;

    // Both parity copies and the flag start at zero (tag 0 is never awaited).
    let mut i = tid;
    while i <= 2 * p.chunks {
        // SAFETY: chunk `i` ≤ 2·chunks lies in the dynamic window (probe_smem_bytes).
        unsafe { st_shared_v4_u32(base + 16 * i, [0; 4]) };
        i += nt;
    }
    // SAFETY: every thread reaches this once; in a cluster it also guarantees the partner runs
    // and has zeroed its copies before any forward into them.
    unsafe {
        if MODE == GLOBAL {
            sync_threads()
        } else {
            dsmem::cluster_sync()
        }
    };

    let timing = block_idx_x() == 0 && tid == 0;
    let (clock_start, ns_start) = if timing { (clock64(), global_timer_ns()) } else { (0, 0) };
    let mut failed = false;
    for t in 1..=p.steps {
        // The copy of h_{t-1}: shared buffer (t-1) % 2, from exchange buffer (t-1) % 2.
        let gathered = base + ((t - 1) & 1) * vector_bytes;
        if t >= 2 {
            let tag = (t - 1) & 0xFFFF;
            let buf = exchange.wrapping_add((((t - 1) & 1) * p.chunks * 4) as usize);
            let mut c = rank * half + tid;
            while c < (rank + 1) * half {
                let at = buf.wrapping_add(4 * c as usize);
                // SAFETY: chunk c lies in the exchange buffer; status is valid.
                match unsafe { wait::<WIDE>(|| load_global::<WIDE>(at), tag, p) } {
                    // SAFETY: chunk c lies in both CTAs' copies; the partner runs (see above).
                    Ok(v) => unsafe {
                        st_shared_v4_u32(gathered + 16 * c, v);
                        let there = partner_base + (gathered - base) + 16 * c;
                        if MODE != GLOBAL && WIDE {
                            dsmem::st_relaxed_cluster_shared_cluster_v2_u64(
                                there,
                                [v[0] as u64 | (v[1] as u64) << 32, v[2] as u64 | (v[3] as u64) << 32],
                            );
                        } else if MODE != GLOBAL {
                            dsmem::st_relaxed_cluster_shared_cluster_v4_u32(there, v);
                        }
                    },
                    Err(code) => {
                        // SAFETY: status is valid.
                        unsafe { report(p, code) };
                        failed = true;
                        break;
                    }
                }
                c += nt;
            }
            if MODE == TAGGED && !failed {
                // The partner's half, forwarded by the partner's thread of the same index.
                let mut c = partner * half + tid;
                while c < (partner + 1) * half {
                    let at = gathered + 16 * c;
                    // SAFETY: chunk c lies in this CTA's copy; status is valid.
                    if let Err(code) = unsafe { wait::<WIDE>(|| load_forwarded::<WIDE>(at), tag, p) } {
                        // SAFETY: status is valid.
                        unsafe { report(p, code) };
                        failed = true;
                        break;
                    }
                    c += nt;
                }
            }
        }
        if MODE == BARRIER {
            // SAFETY: the flag lies in both CTAs' windows; the cluster barrier is reached by every
            // thread of both CTAs once per step, and both read the same flag value after it (each
            // failing thread set both copies before it), so both leave together.
            unsafe {
                if failed {
                    st_shared_u32(flag, 1);
                    dsmem::st_shared_cluster_u32(partner_base + 2 * vector_bytes, 1);
                }
                dsmem::cluster_sync();
                if ld_shared_u32(flag) != 0 {
                    break;
                }
            }
        } else {
            // SAFETY: every thread reaches this barrier once per step.
            if unsafe { sync_threads_or(failed) } {
                break;
            }
        }
        let out = exchange.wrapping_add(((t & 1) * p.chunks * 4) as usize);
        // SAFETY: buffer t % 2 and the copy of h_{t-1} (kernel contract).
        unsafe { publish::<WIDE>(p, out, gathered, t) };
        // SAFETY: every thread reaches this barrier once per step.
        unsafe { sync_threads() };
    }
    if timing {
        let clocks = p.clocks as *mut u64;
        // SAFETY: the clock buffer holds four u64 (kernel contract).
        unsafe {
            st_global_u64(clocks, clock_start);
            st_global_u64(clocks.add(1), ns_start);
            st_global_u64(clocks.add(2), clock64());
            st_global_u64(clocks.add(3), global_timer_ns());
        }
    }
    if MODE == TAGGED {
        // The partner may still forward into this CTA until it leaves its loop.
        // SAFETY: every thread of both CTAs reaches this once, after the loop.
        unsafe { dsmem::cluster_sync() };
    }
}

macro_rules! entries {
    ($($(#[$cfg:meta])* $name:ident = ($wide:literal, $mode:ident, $word:ident, $exchange:ident);)*) => {
        $(
            $(#[$cfg])*
            /// Exchange-probe entry point (word format and exchange in the name).
            ///
            /// # Safety
            /// See [`probe`].
            #[no_mangle]
            pub unsafe extern "ptx-kernel" fn $name(p: ProbeParams) {
                const _: () = assert!(crate::format::probe_kernel_name(
                    crate::format::ProbeWord::$word,
                    crate::format::ProbeExchange::$exchange
                ).len() == stringify!($name).len());
                const _: () = assert!(crate::format::ProbeExchange::$exchange as u32 == $mode);
                // SAFETY: forwarded contract.
                unsafe { probe::<$wide, $mode>(&p) }
            }
        )*
    };
}

entries! {
    sprnn_probe_global_w32 = (false, GLOBAL, Tagged32, Global);
    sprnn_probe_global_w64 = (true, GLOBAL, Tagged64, Global);
    #[cfg(target_feature = "sm_90")]
    sprnn_probe_cluster_barrier_w32 = (false, BARRIER, Tagged32, ClusterBarrier);
    #[cfg(target_feature = "sm_90")]
    sprnn_probe_cluster_barrier_w64 = (true, BARRIER, Tagged64, ClusterBarrier);
    #[cfg(target_feature = "sm_90")]
    sprnn_probe_cluster_tagged_w32 = (false, TAGGED, Tagged32, ClusterTagged);
    #[cfg(target_feature = "sm_90")]
    sprnn_probe_cluster_tagged_w64 = (true, TAGGED, Tagged64, ClusterTagged);
}
