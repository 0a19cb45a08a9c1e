//! The device layer: every intrinsic and every line of inline PTX the kernels use.
//!
//! Kernels call these named functions and never write `asm!` themselves. Each wrapper says which
//! PTX it emits and, for memory operations, which guarantee of the PTX memory model it gives.
//! All functions are `#[inline(always)]`: they exist for names and documentation, not for calls.

use core::arch::asm;
use core::arch::global_asm;

// The dynamic shared-memory window of every kernel in this module. Its size is the launch's
// dynamic shared-memory size; `dyn_smem_base` gives its 32-bit shared address.
global_asm!(".extern .shared .align 16 .b8 SPRNN_DYN_SMEM[];");

// ---------------------------------------------------------------------------------------------
// Indices

/// `%tid.x`: this thread's index in its CTA.
#[inline(always)]
pub fn thread_idx_x() -> u32 {
    // SAFETY: reading a special register has no preconditions.
    unsafe { core::arch::nvptx::_thread_idx_x() as u32 }
}

/// `%ntid.x`: threads per CTA.
#[inline(always)]
pub fn block_dim_x() -> u32 {
    // SAFETY: reading a special register has no preconditions.
    unsafe { core::arch::nvptx::_block_dim_x() as u32 }
}

/// `%ctaid.x`: this CTA's index in the grid.
#[inline(always)]
pub fn block_idx_x() -> u32 {
    // SAFETY: reading a special register has no preconditions.
    unsafe { core::arch::nvptx::_block_idx_x() as u32 }
}

/// `%nctaid.x`: CTAs in the grid.
#[inline(always)]
pub fn grid_dim_x() -> u32 {
    // SAFETY: reading a special register has no preconditions.
    unsafe { core::arch::nvptx::_grid_dim_x() as u32 }
}

/// `%laneid`: this thread's lane in its warp.
#[inline(always)]
pub fn lane_id() -> u32 {
    let r: u32;
    // SAFETY: reading a special register has no preconditions.
    unsafe { asm!("mov.u32 {r}, %laneid;", r = out(reg32) r, options(pure, nomem, nostack)) };
    r
}

/// `%globaltimer`: a nanosecond clock shared by all SMs (it ticks coarsely, about every µs).
#[inline(always)]
pub fn global_timer_ns() -> u64 {
    let r: u64;
    // SAFETY: reading a special register has no preconditions. Not `pure`: it changes.
    unsafe { asm!("mov.u64 {r}, %globaltimer;", r = out(reg64) r, options(nomem, nostack)) };
    r
}

// ---------------------------------------------------------------------------------------------
// Barriers, warp collectives, traps

/// `bar.sync 0`: block-wide barrier; orders this CTA's shared-memory accesses before and after it.
///
/// # Safety
/// Every thread of the CTA must reach the same barrier (no divergent call sites).
#[inline(always)]
pub unsafe fn sync_threads() {
    // SAFETY: the caller guarantees CTA-uniform control flow.
    unsafe { asm!("bar.sync 0;", options(nostack)) };
}

/// `bar.warp.sync` over the full warp (`__syncwarp`): the 32 lanes wait for each other, and
/// their shared-memory accesses before it are ordered before those after it.
///
/// # Safety
/// All 32 lanes of the warp must reach it.
#[inline(always)]
pub unsafe fn sync_warp() {
    // SAFETY: the caller guarantees the whole warp arrives.
    unsafe { asm!("bar.warp.sync -1;", options(nostack)) };
}

/// `bar.red.or.pred`: block-wide barrier that returns whether any thread passed `true`.
///
/// # Safety
/// As [`sync_threads`].
#[inline(always)]
pub unsafe fn sync_threads_or(pred: bool) -> bool {
    let r: u32;
    // SAFETY: the caller guarantees CTA-uniform control flow.
    unsafe {
        asm!(
            "{{ .reg .pred p, q;",
            "setp.ne.u32 p, {x}, 0;",
            "bar.red.or.pred q, 0, p;",
            "selp.u32 {r}, 1, 0, q; }}",
            x = in(reg32) pred as u32, r = out(reg32) r, options(nostack)
        )
    };
    r != 0
}

/// `shfl.sync.bfly.b32` over the full warp: the value of lane `lane ^ mask`.
///
/// # Safety
/// All 32 lanes of the warp must execute it together.
#[inline(always)]
pub unsafe fn shfl_xor_f32(v: f32, mask: u32) -> f32 {
    let r: f32;
    // SAFETY: the caller guarantees a converged full warp.
    unsafe {
        asm!("shfl.sync.bfly.b32 {r}, {v}, {m}, 0x1f, 0xffffffff;",
            r = out(reg32) r, v = in(reg32) v, m = in(reg32) mask, options(nomem, nostack))
    };
    r
}

/// `shfl.sync.idx.b32` over the full warp: the value of lane `src`.
///
/// # Safety
/// All 32 lanes of the warp must execute it together.
#[inline(always)]
pub unsafe fn shfl_idx_u32(v: u32, src: u32) -> u32 {
    let r: u32;
    // SAFETY: the caller guarantees a converged full warp.
    unsafe {
        asm!("shfl.sync.idx.b32 {r}, {v}, {s}, 0x1f, 0xffffffff;",
            r = out(reg32) r, v = in(reg32) v, s = in(reg32) src, options(nomem, nostack))
    };
    r
}

/// `vote.sync.all.pred` over the full warp: whether `pred` holds on every lane.
///
/// # Safety
/// All 32 lanes of the warp must execute it together.
#[inline(always)]
pub unsafe fn vote_all(pred: bool) -> bool {
    let r: u32;
    // SAFETY: the caller guarantees a converged full warp.
    unsafe {
        asm!(
            "{{ .reg .pred p, q;",
            "setp.ne.u32 p, {x}, 0;",
            "vote.sync.all.pred q, p, 0xffffffff;",
            "selp.u32 {r}, 1, 0, q; }}",
            x = in(reg32) pred as u32, r = out(reg32) r, options(nomem, nostack)
        )
    };
    r != 0
}

/// `vote.sync.ballot.b32` over the full warp: bit `i` set when lane `i` passed `true`.
///
/// # Safety
/// All 32 lanes of the warp must execute it together.
#[inline(always)]
pub unsafe fn vote_ballot(pred: bool) -> u32 {
    let r: u32;
    // SAFETY: the caller guarantees a converged full warp.
    unsafe {
        asm!(
            "{{ .reg .pred p;",
            "setp.ne.u32 p, {x}, 0;",
            "vote.sync.ballot.b32 {r}, p, 0xffffffff; }}",
            x = in(reg32) pred as u32, r = out(reg32) r, options(nomem, nostack)
        )
    };
    r
}

/// `trap`: aborts the kernel; the host sees `CUDA_ERROR_ILLEGAL_INSTRUCTION` (715).
#[inline(always)]
pub fn trap() -> ! {
    // SAFETY: `trap` ends the thread; nothing after it runs.
    unsafe { asm!("trap;", options(noreturn, nostack)) }
}

// ---------------------------------------------------------------------------------------------
// Shared memory (addresses are 32-bit `.shared` window offsets)

/// Shared-window address of the dynamic shared memory (`mov.u32 r, SPRNN_DYN_SMEM;`).
#[inline(always)]
pub fn dyn_smem_base() -> u32 {
    let r: u32;
    // SAFETY: taking a symbol's address has no preconditions.
    unsafe { asm!("mov.u32 {r}, SPRNN_DYN_SMEM;", r = out(reg32) r, options(pure, nomem, nostack)) };
    r
}

/// `ld.shared.u16`.
///
/// # Safety
/// `addr` must be a 2-byte-aligned address inside the CTA's shared memory.
#[inline(always)]
pub unsafe fn ld_shared_u16(addr: u32) -> u16 {
    let r: u16;
    // SAFETY: the caller guarantees the address is valid.
    unsafe { asm!("ld.shared.u16 {r}, [{a}];", r = out(reg16) r, a = in(reg32) addr, options(readonly, nostack)) };
    r
}

/// `ld.shared.u32`.
///
/// # Safety
/// `addr` must be a 4-byte-aligned address inside the CTA's shared memory.
#[inline(always)]
pub unsafe fn ld_shared_u32(addr: u32) -> u32 {
    let r: u32;
    // SAFETY: the caller guarantees the address is valid.
    unsafe { asm!("ld.shared.u32 {r}, [{a}];", r = out(reg32) r, a = in(reg32) addr, options(readonly, nostack)) };
    r
}

/// `ld.shared.v2.u32` (8 bytes).
///
/// # Safety
/// `addr` must be an 8-byte-aligned address inside the CTA's shared memory.
#[inline(always)]
pub unsafe fn ld_shared_v2_u32(addr: u32) -> [u32; 2] {
    let (a, b): (u32, u32);
    // SAFETY: the caller guarantees the address is valid.
    unsafe {
        asm!("ld.shared.v2.u32 {{{a}, {b}}}, [{p}];", a = out(reg32) a, b = out(reg32) b,
            p = in(reg32) addr, options(readonly, nostack))
    };
    [a, b]
}

/// `ld.shared.v4.u32` (16 bytes).
///
/// # Safety
/// `addr` must be a 16-byte-aligned address inside the CTA's shared memory.
#[inline(always)]
pub unsafe fn ld_shared_v4_u32(addr: u32) -> [u32; 4] {
    let (a, b, c, d): (u32, u32, u32, u32);
    // SAFETY: the caller guarantees the address is valid.
    unsafe {
        asm!("ld.shared.v4.u32 {{{a}, {b}, {c}, {d}}}, [{p}];", a = out(reg32) a, b = out(reg32) b,
            c = out(reg32) c, d = out(reg32) d, p = in(reg32) addr, options(readonly, nostack))
    };
    [a, b, c, d]
}

/// `st.shared.u16`.
///
/// # Safety
/// `addr` must be a 2-byte-aligned address inside the CTA's shared memory.
#[inline(always)]
pub unsafe fn st_shared_u16(addr: u32, v: u16) {
    // SAFETY: the caller guarantees the address is valid.
    unsafe { asm!("st.shared.u16 [{a}], {v};", a = in(reg32) addr, v = in(reg16) v, options(nostack)) };
}

/// `st.shared.u32`.
///
/// # Safety
/// `addr` must be a 4-byte-aligned address inside the CTA's shared memory.
#[inline(always)]
pub unsafe fn st_shared_u32(addr: u32, v: u32) {
    // SAFETY: the caller guarantees the address is valid.
    unsafe { asm!("st.shared.u32 [{a}], {v};", a = in(reg32) addr, v = in(reg32) v, options(nostack)) };
}

/// `st.shared.v2.u32` (8 bytes).
///
/// # Safety
/// `addr` must be an 8-byte-aligned address inside the CTA's shared memory.
#[inline(always)]
pub unsafe fn st_shared_v2_u32(addr: u32, v: [u32; 2]) {
    // SAFETY: the caller guarantees the address is valid.
    unsafe {
        asm!("st.shared.v2.u32 [{a}], {{{x}, {y}}};", a = in(reg32) addr, x = in(reg32) v[0],
            y = in(reg32) v[1], options(nostack))
    };
}

/// `st.shared.f32`.
///
/// # Safety
/// `addr` must be a 4-byte-aligned address inside the CTA's shared memory.
#[inline(always)]
pub unsafe fn st_shared_f32(addr: u32, v: f32) {
    // SAFETY: the caller guarantees the address is valid.
    unsafe { asm!("st.shared.f32 [{a}], {v};", a = in(reg32) addr, v = in(reg32) v, options(nostack)) };
}

/// `ld.shared.f32`.
///
/// # Safety
/// `addr` must be a 4-byte-aligned address inside the CTA's shared memory.
#[inline(always)]
pub unsafe fn ld_shared_f32(addr: u32) -> f32 {
    let r: f32;
    // SAFETY: the caller guarantees the address is valid.
    unsafe { asm!("ld.shared.f32 {r}, [{a}];", r = out(reg32) r, a = in(reg32) addr, options(readonly, nostack)) };
    r
}

/// Six `ld.volatile.shared.f32` at `addr + k · stride`, `k = 0..6`, in one `asm` block: ptxas
/// keeps volatile loads in order and issues all six before their first use, where plain loads
/// feeding one chain of adds are issued one at a time, each add waiting for its load, once
/// registers are short.
///
/// # Safety
/// The six addresses must be valid, 4-byte-aligned shared addresses.
#[inline(always)]
pub unsafe fn ld_volatile_shared_f32x6(addr: u32, stride: u32) -> [f32; 6] {
    let r: [f32; 6];
    // SAFETY: the caller guarantees the addresses are valid.
    unsafe {
        let (mut a1, mut a2, mut a3, mut a4, mut a5) = (0u32, 0u32, 0u32, 0u32, 0u32);
        let (r0, r1, r2, r3, r4, r5): (f32, f32, f32, f32, f32, f32);
        asm!(
            "add.u32 {a1}, {a}, {s};",
            "add.u32 {a2}, {a1}, {s};",
            "add.u32 {a3}, {a2}, {s};",
            "add.u32 {a4}, {a3}, {s};",
            "add.u32 {a5}, {a4}, {s};",
            "ld.volatile.shared.f32 {r0}, [{a}];",
            "ld.volatile.shared.f32 {r1}, [{a1}];",
            "ld.volatile.shared.f32 {r2}, [{a2}];",
            "ld.volatile.shared.f32 {r3}, [{a3}];",
            "ld.volatile.shared.f32 {r4}, [{a4}];",
            "ld.volatile.shared.f32 {r5}, [{a5}];",
            a = in(reg32) addr, s = in(reg32) stride,
            a1 = inout(reg32) a1, a2 = inout(reg32) a2, a3 = inout(reg32) a3, a4 = inout(reg32) a4, a5 = inout(reg32) a5,
            r0 = out(reg32) r0, r1 = out(reg32) r1, r2 = out(reg32) r2, r3 = out(reg32) r3, r4 = out(reg32) r4, r5 = out(reg32) r5,
            options(readonly, nostack)
        );
        let _ = (a1, a2, a3, a4, a5);
        r = [r0, r1, r2, r3, r4, r5];
    }
    r
}

// ---------------------------------------------------------------------------------------------
// Global memory with memory-model qualifiers

/// `ld.relaxed.gpu.global.u32`: a strong load at GPU scope. It is never served from a stale
/// L1 line, and being single-copy atomic it returns a whole value some thread stored.
///
/// # Safety
/// `p` must be a valid, 4-byte-aligned global address.
#[inline(always)]
pub unsafe fn ld_relaxed_gpu_u32(p: *const u32) -> u32 {
    let r: u32;
    // SAFETY: the caller guarantees the address is valid.
    unsafe { asm!("ld.relaxed.gpu.global.u32 {r}, [{p}];", r = out(reg32) r, p = in(reg64) p, options(nostack)) };
    r
}

/// `ld.relaxed.gpu.global.v4.u32`: one 16-byte strong load at GPU scope. The memory model treats
/// it as four 32-bit accesses, each single-copy atomic (the vector as a whole is not).
///
/// # Safety
/// `p` must be a valid, 16-byte-aligned global address.
#[inline(always)]
pub unsafe fn ld_relaxed_gpu_v4_u32(p: *const u32) -> [u32; 4] {
    let (a, b, c, d): (u32, u32, u32, u32);
    // SAFETY: the caller guarantees the address is valid.
    unsafe {
        asm!("ld.relaxed.gpu.global.v4.u32 {{{a}, {b}, {c}, {d}}}, [{p}];", a = out(reg32) a,
            b = out(reg32) b, c = out(reg32) c, d = out(reg32) d, p = in(reg64) p, options(nostack))
    };
    [a, b, c, d]
}

/// `st.relaxed.gpu.global.v2.u32`: one 8-byte strong store at GPU scope, seen by strong loads
/// of other CTAs without a fence. The memory model treats it as two 32-bit accesses, each
/// single-copy atomic (the pair as a whole is not), with no order between them.
///
/// # Safety
/// `p` must be a valid, 8-byte-aligned global address.
#[inline(always)]
pub unsafe fn st_relaxed_gpu_v2_u32(p: *mut u32, v: [u32; 2]) {
    // SAFETY: the caller guarantees the address is valid.
    unsafe {
        asm!("st.relaxed.gpu.global.v2.u32 [{p}], {{{x}, {y}}};", p = in(reg64) p, x = in(reg32) v[0],
            y = in(reg32) v[1], options(nostack))
    };
}

/// `ld.acquire.gpu.global.u32`: later accesses of this thread are ordered after it, and it
/// synchronises with a release store it reads from.
///
/// # Safety
/// `p` must be a valid, 4-byte-aligned global address.
#[inline(always)]
pub unsafe fn ld_acquire_gpu_u32(p: *const u32) -> u32 {
    let r: u32;
    // SAFETY: the caller guarantees the address is valid.
    unsafe { asm!("ld.acquire.gpu.global.u32 {r}, [{p}];", r = out(reg32) r, p = in(reg64) p, options(nostack)) };
    r
}

/// `st.relaxed.gpu.global.u32`: a strong, single-copy-atomic store at GPU scope.
///
/// # Safety
/// `p` must be a valid, 4-byte-aligned global address.
#[inline(always)]
pub unsafe fn st_relaxed_gpu_u32(p: *mut u32, v: u32) {
    // SAFETY: the caller guarantees the address is valid.
    unsafe { asm!("st.relaxed.gpu.global.u32 [{p}], {v};", p = in(reg64) p, v = in(reg32) v, options(nostack)) };
}

/// `st.release.gpu.global.u32`: earlier accesses of this thread are ordered before it.
///
/// # Safety
/// `p` must be a valid, 4-byte-aligned global address.
#[inline(always)]
pub unsafe fn st_release_gpu_u32(p: *mut u32, v: u32) {
    // SAFETY: the caller guarantees the address is valid.
    unsafe { asm!("st.release.gpu.global.u32 [{p}], {v};", p = in(reg64) p, v = in(reg32) v, options(nostack)) };
}

/// `atom.relaxed.gpu.global.cas.b32`: stores `new` if the word equals `expected`; returns the
/// old value.
///
/// # Safety
/// `p` must be a valid, 4-byte-aligned global address.
#[inline(always)]
pub unsafe fn atom_cas_gpu_u32(p: *mut u32, expected: u32, new: u32) -> u32 {
    let r: u32;
    // SAFETY: the caller guarantees the address is valid.
    unsafe {
        asm!("atom.relaxed.gpu.global.cas.b32 {r}, [{p}], {e}, {n};", r = out(reg32) r,
            p = in(reg64) p, e = in(reg32) expected, n = in(reg32) new, options(nostack))
    };
    r
}

/// `ld.global.nc.f32`: a load through the read-only (non-coherent) path. Only for data no
/// thread writes during the kernel.
///
/// # Safety
/// `p` must be a valid, 4-byte-aligned global address of data that is read-only for the launch.
#[inline(always)]
pub unsafe fn ld_nc_f32(p: *const f32) -> f32 {
    let r: f32;
    // SAFETY: the caller guarantees the address is valid and read-only.
    unsafe { asm!("ld.global.nc.f32 {r}, [{p}];", r = out(reg32) r, p = in(reg64) p, options(readonly, nostack)) };
    r
}

/// `ld.global.nc.u16`: as [`ld_nc_f32`] for 16-bit data.
///
/// # Safety
/// As [`ld_nc_f32`], 2-byte-aligned.
#[inline(always)]
pub unsafe fn ld_nc_u16(p: *const u16) -> u16 {
    let r: u16;
    // SAFETY: the caller guarantees the address is valid and read-only.
    unsafe { asm!("ld.global.nc.u16 {r}, [{p}];", r = out(reg16) r, p = in(reg64) p, options(readonly, nostack)) };
    r
}

/// `ld.global.nc.u32`: as [`ld_nc_f32`] for 32-bit words.
///
/// # Safety
/// As [`ld_nc_f32`].
#[inline(always)]
pub unsafe fn ld_nc_u32(p: *const u32) -> u32 {
    let r: u32;
    // SAFETY: the caller guarantees the address is valid and read-only.
    unsafe { asm!("ld.global.nc.u32 {r}, [{p}];", r = out(reg32) r, p = in(reg64) p, options(readonly, nostack)) };
    r
}

/// `ld.global.nc.v4.u32`: 16 bytes through the read-only path (as [`ld_nc_f32`]).
///
/// # Safety
/// As [`ld_nc_f32`], 16-byte-aligned.
#[inline(always)]
pub unsafe fn ld_nc_v4_u32(p: *const u32) -> [u32; 4] {
    let (a, b, c, d): (u32, u32, u32, u32);
    // SAFETY: the caller guarantees the address is valid, aligned and read-only.
    unsafe {
        asm!("ld.global.nc.v4.u32 {{{a}, {b}, {c}, {d}}}, [{p}];", a = out(reg32) a, b = out(reg32) b,
            c = out(reg32) c, d = out(reg32) d, p = in(reg64) p, options(readonly, nostack))
    };
    [a, b, c, d]
}

/// `st.shared.v4.u32` (16 bytes).
///
/// # Safety
/// `addr` must be a 16-byte-aligned address inside the CTA's shared memory.
#[inline(always)]
pub unsafe fn st_shared_v4_u32(addr: u32, v: [u32; 4]) {
    // SAFETY: the caller guarantees the address is valid.
    unsafe {
        asm!("st.shared.v4.u32 [{a}], {{{x}, {y}, {z}, {w}}};", a = in(reg32) addr, x = in(reg32) v[0],
            y = in(reg32) v[1], z = in(reg32) v[2], w = in(reg32) v[3], options(nostack))
    };
}

/// `prefetch.global.L1`: brings the line holding `p` toward this SM's L1. A hint: no effect on
/// results.
#[inline(always)]
pub fn prefetch_l1<T>(p: *const T) {
    // SAFETY: a prefetch of any address is harmless (PTX: no fault, no effect on memory).
    unsafe { asm!("prefetch.global.L1 [{p}];", p = in(reg64) p, options(nostack, readonly)) };
}

/// `st.global.u32` predicated on `store` inside one `asm` block, so the caller's code has no
/// branch around it: the compiler cannot move a barrier that follows into two copies on the
/// two sides of a branch (inline `asm` is not `convergent` to LLVM, and CTA barriers on
/// divergent paths hung the phase-clock probe).
///
/// # Safety
/// Where `store` is true, `p` must be a valid, 4-byte-aligned global address.
#[inline(always)]
pub unsafe fn st_global_u32_if(p: *mut u32, v: u32, store: bool) {
    // SAFETY: the store executes only where the caller guarantees the address is valid.
    unsafe {
        asm!("{{ .reg .pred s; setp.ne.u32 s, {c}, 0; @s st.global.u32 [{p}], {v}; }}", p = in(reg64) p, v = in(reg32) v,
            c = in(reg32) store as u32, options(nostack))
    };
}

/// Plain `st.global.f32` (weak): for outputs the host reads after the kernel.
///
/// # Safety
/// `p` must be a valid, 4-byte-aligned global address.
#[inline(always)]
pub unsafe fn st_global_f32(p: *mut f32, v: f32) {
    // SAFETY: the caller guarantees the address is valid.
    unsafe { asm!("st.global.f32 [{p}], {v};", p = in(reg64) p, v = in(reg32) v, options(nostack)) };
}

/// Returns `x` through a `mov` the optimizer cannot see through or move: values derived from
/// it are recomputed where they are used instead of being hoisted into registers.
#[inline(always)]
pub fn opaque_u32(x: u32) -> u32 {
    let r: u32;
    // SAFETY: a register move. Deliberately not `pure`, so it is neither hoisted nor merged.
    unsafe { asm!("mov.u32 {r}, {x};", r = out(reg32) r, x = in(reg32) x, options(nomem, nostack)) };
    r
}

// ---------------------------------------------------------------------------------------------
// Conversions and math

/// `cvt.f32.f16`: exact widening of fp16 bits to f32.
#[inline(always)]
pub fn f16_to_f32(h: u16) -> f32 {
    let r: f32;
    // SAFETY: pure register arithmetic.
    unsafe { asm!("cvt.f32.f16 {r}, {h};", r = out(reg32) r, h = in(reg16) h, options(pure, nomem, nostack)) };
    r
}

/// `cvt.rn.f16.f32`: f32 to fp16 bits, round to nearest even (overflow gives ±inf).
#[inline(always)]
pub fn f32_to_f16(x: f32) -> u16 {
    let r: u16;
    // SAFETY: pure register arithmetic.
    unsafe { asm!("cvt.rn.f16.f32 {r}, {x};", r = out(reg16) r, x = in(reg32) x, options(pure, nomem, nostack)) };
    r
}

/// `fma.rn.f16x2`: `a * b + c` on two fp16 pairs (low and high halves), each rounded once to
/// the nearest fp16 (ties to even), subnormals kept.
#[inline(always)]
pub fn fma_f16x2(a: u32, b: u32, c: u32) -> u32 {
    let r: u32;
    // SAFETY: pure register arithmetic.
    unsafe {
        asm!("fma.rn.f16x2 {r}, {a}, {b}, {c};", r = out(reg32) r, a = in(reg32) a, b = in(reg32) b,
            c = in(reg32) c, options(pure, nomem, nostack))
    };
    r
}

/// The fp16 in the high half of `x`, in both halves (an operand selector of the `f16x2`
/// instruction that uses it, not an instruction of its own).
#[inline(always)]
pub fn f16x2_high_pair(x: u32) -> u32 {
    let r: u32;
    // SAFETY: pure register moves.
    unsafe {
        asm!("{{ .reg .b16 sprnn_l, sprnn_h; mov.b32 {{sprnn_l, sprnn_h}}, {x}; mov.b32 {r}, {{sprnn_h, sprnn_h}}; }}",
            r = out(reg32) r, x = in(reg32) x, options(pure, nomem, nostack))
    };
    r
}

/// The fp16 in the low half of `x`, in both halves (an operand selector, as
/// [`f16x2_high_pair`]).
#[inline(always)]
pub fn f16x2_low_pair(x: u32) -> u32 {
    let r: u32;
    // SAFETY: pure register moves.
    unsafe {
        asm!("{{ .reg .b16 sprnn_l, sprnn_h; mov.b32 {{sprnn_l, sprnn_h}}, {x}; mov.b32 {r}, {{sprnn_l, sprnn_l}}; }}",
            r = out(reg32) r, x = in(reg32) x, options(pure, nomem, nostack))
    };
    r
}

/// Both fp16 halves of `x` widened exactly to f32: `[low, high]`.
#[inline(always)]
pub fn f16x2_to_f32(x: u32) -> [f32; 2] {
    [f16_to_f32(x as u16), f16_to_f32((x >> 16) as u16)]
}

/// `fma.rn.f32`: `a * b + c` with one rounding.
#[inline(always)]
pub fn fma(a: f32, b: f32, c: f32) -> f32 {
    let r: f32;
    // SAFETY: pure register arithmetic.
    unsafe {
        asm!("fma.rn.f32 {r}, {a}, {b}, {c};", r = out(reg32) r, a = in(reg32) a, b = in(reg32) b,
            c = in(reg32) c, options(pure, nomem, nostack))
    };
    r
}

/// `ex2.approx.ftz.f32`: 2^x (max relative error about 2^-22).
#[inline(always)]
pub fn exp2_approx(x: f32) -> f32 {
    let r: f32;
    // SAFETY: pure register arithmetic.
    unsafe { asm!("ex2.approx.ftz.f32 {r}, {x};", r = out(reg32) r, x = in(reg32) x, options(pure, nomem, nostack)) };
    r
}

/// e^x through [`exp2_approx`].
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    exp2_approx(x * core::f32::consts::LOG2_E)
}

/// `rcp.approx.ftz.f32`: `1 / x`, at most one ulp off (PTX ISA), subnormals flushed.
#[inline(always)]
pub fn rcp_approx(x: f32) -> f32 {
    let r: f32;
    // SAFETY: pure register arithmetic.
    unsafe { asm!("rcp.approx.ftz.f32 {r}, {x};", r = out(reg32) r, x = in(reg32) x, options(pure, nomem, nostack)) };
    r
}

/// Logistic sigmoid `1 / (1 + e^-x)` with [`exp`] and [`rcp_approx`]: relative error at most
/// `(|x| + 8) · 2^-24` for `|x| ≤ 80` (the argument's rounding in `exp`, `ex2.approx`, the add
/// and the reciprocal; `SIGMOID_BOUND` in the GPU tests), 0 or 1 beyond.
#[inline(always)]
pub fn sigmoid(x: f32) -> f32 {
    rcp_approx(1.0 + exp(-x))
}

/// `tanh(x) = 1 - 2 / (e^{2|x|} + 1)` with the sign of `x`, saturating cleanly at ±1, and its odd
/// series near 0 (`|x| < 2^-4`); both are computed and one is selected, so the lanes of a warp
/// never diverge here. Error at most `(2|x| + 8) · 2^-24` absolute away from 0 and `2^-22`
/// relative near it (`TANH_BOUND` in the GPU tests).
#[inline(always)]
pub fn tanh(x: f32) -> f32 {
    let ax = f32::from_bits(x.to_bits() & 0x7FFF_FFFF);
    let x2 = x * x;
    // x - x^3/3 + 2x^5/15 - 17x^7/315
    let series = x * fma(x2, fma(x2, fma(x2, -17.0 / 315.0, 2.0 / 15.0), -1.0 / 3.0), 1.0);
    let t = 1.0 - 2.0 * rcp_approx(exp(2.0 * ax) + 1.0);
    let t = f32::from_bits(t.to_bits() | (x.to_bits() & 0x8000_0000));
    if ax < 0.0625 {
        series
    } else {
        t
    }
}

// ---------------------------------------------------------------------------------------------
// Tensor cores

/// Two fp16 values as one `.f16x2` register: `lo` in the low half (the element with the lower
/// index, as the `mma` fragments expect), `hi` in the high half.
#[inline(always)]
pub const fn pack_f16x2(lo: u16, hi: u16) -> u32 {
    (lo as u32) | ((hi as u32) << 16)
}

/// `mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32`: `D = A · B + C` for one warp, A a
/// 16 × 16 fp16 tile (row-major), B a 16 × 8 fp16 tile (column-major), C and D 16 × 8 f32.
///
/// Fragments (PTX ISA, "matrix fragments for mma.m16n8k16", floating-point types), with
/// `g = lane / 4` and `q = lane % 4`:
/// - `a[0]` = A[g][2q, 2q+1], `a[1]` = A[g+8][2q, 2q+1], `a[2]` = A[g][2q+8, 2q+9],
///   `a[3]` = A[g+8][2q+8, 2q+9] (two fp16 per register, lower column in the low half);
/// - `b[0]` = B[2q, 2q+1][g], `b[1]` = B[2q+8, 2q+9][g] (lower row in the low half);
/// - `c`/result: `[0]` = C[g][2q], `[1]` = C[g][2q+1], `[2]` = C[g+8][2q], `[3]` = C[g+8][2q+1].
///
/// Products are exact in f32 and accumulated in f32.
///
/// # Safety
/// All 32 lanes of the warp must execute it together (`.sync.aligned`: converged, no lane
/// masked off); sm_80 or newer.
#[inline(always)]
pub unsafe fn mma_m16n8k16_f32_f16(a: [u32; 4], b: [u32; 2], c: [f32; 4]) -> [f32; 4] {
    let (d0, d1, d2, d3): (f32, f32, f32, f32);
    // SAFETY: the caller guarantees a converged full warp; the instruction touches registers only.
    unsafe {
        asm!(
            "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {{{d0}, {d1}, {d2}, {d3}}}, {{{a0}, {a1}, {a2}, {a3}}}, {{{b0}, {b1}}}, {{{c0}, {c1}, {c2}, {c3}}};",
            d0 = out(reg32) d0, d1 = out(reg32) d1, d2 = out(reg32) d2, d3 = out(reg32) d3,
            a0 = in(reg32) a[0], a1 = in(reg32) a[1], a2 = in(reg32) a[2], a3 = in(reg32) a[3],
            b0 = in(reg32) b[0], b1 = in(reg32) b[1],
            c0 = in(reg32) c[0], c1 = in(reg32) c[1], c2 = in(reg32) c[2], c3 = in(reg32) c[3],
            // Not `pure`: a warp-synchronous instruction must not be moved into divergent code.
            options(nomem, nostack)
        )
    };
    [d0, d1, d2, d3]
}

/// `cvt.rn.f16x2.f32`: two f32 rounded to fp16 (nearest even; overflow gives ±inf) and packed
/// into one `.f16x2` register, `lo` in the low half. (The PTX instruction takes its operands
/// high half first: `cvt.rn.f16x2.f32 d, hi, lo`.)
#[inline(always)]
pub fn f32x2_to_f16x2(lo: f32, hi: f32) -> u32 {
    let r: u32;
    // SAFETY: pure register arithmetic.
    unsafe {
        asm!("cvt.rn.f16x2.f32 {r}, {h}, {l};", r = out(reg32) r, h = in(reg32) hi, l = in(reg32) lo,
            options(pure, nomem, nostack))
    };
    r
}

/// `ldmatrix.sync.aligned.m8n8.x4.shared.b16`: four 8 × 8 matrices of 16-bit elements from
/// shared memory, one per group of eight lanes. Lane `8·i + r` gives the address of row `r` of
/// matrix `i` (16 contiguous bytes, 16-byte aligned); result register `i` of lane `l` holds
/// elements `2·(l % 4)` and `2·(l % 4) + 1` of row `l / 4` of matrix `i` (lower column in the low
/// half) — exactly an `mma.m16n8k16` A fragment when the four matrices are the tile's
/// (rows 0–7, k 0–7), (rows 8–15, k 0–7), (rows 0–7, k 8–15), (rows 8–15, k 8–15), and two B
/// fragments when they are (n 0–7, k 0–7), (n 0–7, k 8–15), (n 8–15, k 0–7), (n 8–15, k 8–15)
/// of a K-contiguous B tile. A read of shared memory ordered like a plain load (no memory-model
/// guarantee beyond this thread's program order and the CTA's barriers).
///
/// # Safety
/// All 32 lanes of the warp must execute it together (`.sync.aligned`); every lane's address
/// must be a 16-byte-aligned address of 16 bytes inside the CTA's shared memory; sm_75 or newer.
#[inline(always)]
pub unsafe fn ldmatrix_x4(addr: u32) -> [u32; 4] {
    let (a, b, c, d): (u32, u32, u32, u32);
    // SAFETY: the caller guarantees a converged warp and valid addresses.
    unsafe {
        asm!("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {{{a}, {b}, {c}, {d}}}, [{p}];", a = out(reg32) a,
            b = out(reg32) b, c = out(reg32) c, d = out(reg32) d, p = in(reg32) addr, options(readonly, nostack))
    };
    [a, b, c, d]
}

/// `ldmatrix.sync.aligned.m8n8.x2.shared.b16`: two 8 × 8 matrices, as [`ldmatrix_x4`]; lanes
/// 0–15 give the row addresses (lanes 16–31 give addresses that are not read but must still be
/// valid shared addresses, as the PTX ISA asks for `.x2`'s upper lanes' operands).
///
/// # Safety
/// As [`ldmatrix_x4`].
#[inline(always)]
pub unsafe fn ldmatrix_x2(addr: u32) -> [u32; 2] {
    let (a, b): (u32, u32);
    // SAFETY: the caller guarantees a converged warp and valid addresses.
    unsafe {
        asm!("ldmatrix.sync.aligned.m8n8.x2.shared.b16 {{{a}, {b}}}, [{p}];", a = out(reg32) a, b = out(reg32) b,
            p = in(reg32) addr, options(readonly, nostack))
    };
    [a, b]
}

// ---------------------------------------------------------------------------------------------
// Asynchronous copies global → shared (`cp.async`, sm_80 and newer)
//
// PTX ISA, "Data Movement and Conversion Instructions: cp.async": a `cp.async` is a weak memory
// operation that the issuing thread starts and that completes later, in no order relative to
// this thread's other `cp.async`s or its later plain accesses. `cp.async.commit_group` closes the
// thread's not-yet-committed copies into one *group*; `cp.async.wait_group N` waits until at most
// the `N` most recent groups of this thread are pending — every older group's writes to shared
// memory are then complete and visible to this thread. Other threads see them only after a
// further synchronisation: the kernels follow every wait with `bar.sync`, which orders this
// CTA's shared-memory accesses. Groups are per thread, so a thread commits a group even when
// it issued no copy in it, to keep the group counts of all threads in step.

/// `cp.async.cg.shared.global [dst], [src], 16, src_size;`: copies 16 bytes from global `src` to
/// shared `dst`, bypassing L1 (`.cg`: cached in L2 only). Only the first `src_bytes` bytes are
/// read; the rest of the 16 are written as zeros — `src_bytes = 0` zero-fills `dst` and reads
/// nothing (used for the tiles' edges). Asynchronous: see the section notes.
///
/// # Safety
/// `dst` must be a 16-byte-aligned address of 16 bytes inside the CTA's shared memory that no
/// thread accesses until a [`cp_async_wait_group`] covering this copy and a barrier; `src`
/// must be a 16-byte-aligned global address whose first `src_bytes` bytes (`src_bytes` ≤ 16) are
/// valid and not written during the kernel; sm_80 or newer.
#[inline(always)]
pub unsafe fn cp_async_cg_16(dst: u32, src: *const u8, src_bytes: u32) {
    // SAFETY: the caller guarantees both addresses and the byte count.
    unsafe {
        asm!("cp.async.cg.shared.global [{d}], [{s}], 16, {n};", d = in(reg32) dst, s = in(reg64) src,
            n = in(reg32) src_bytes, options(nostack))
    };
}

/// `cp.async.commit_group`: closes this thread's pending [`cp_async_cg_16`] copies into one
/// group (an empty group when there are none).
#[inline(always)]
pub fn cp_async_commit_group() {
    // SAFETY: commits this thread's own copies; no memory is accessed.
    unsafe { asm!("cp.async.commit_group;", options(nostack)) };
}

/// `cp.async.wait_group N`: waits until at most the `N` most recently committed groups of this
/// thread are pending; the copies of every older group are then complete and visible to this
/// thread (a barrier makes them visible to the CTA). Not `nomem`: the compiler must not move
/// shared-memory reads across it.
#[inline(always)]
pub fn cp_async_wait_group<const N: u32>() {
    // SAFETY: waits on this thread's own copies.
    unsafe { asm!("cp.async.wait_group {n};", n = const N, options(nostack)) };
}

/// `st.global.v2.f32` (weak): two adjacent f32 outputs the host reads after the kernel.
///
/// # Safety
/// `p` must be a valid, 8-byte-aligned global address of two f32.
#[inline(always)]
pub unsafe fn st_global_v2_f32(p: *mut f32, v: [f32; 2]) {
    // SAFETY: the caller guarantees the address is valid.
    unsafe {
        asm!("st.global.v2.f32 [{p}], {{{x}, {y}}};", p = in(reg64) p, x = in(reg32) v[0], y = in(reg32) v[1],
            options(nostack))
    };
}

/// `st.global.v4.u32` (weak): 16 bytes for a later kernel to read.
///
/// # Safety
/// `p` must be a valid, 16-byte-aligned global address of 16 bytes.
#[inline(always)]
pub unsafe fn st_global_v4_u32(p: *mut u32, v: [u32; 4]) {
    // SAFETY: the caller guarantees the address is valid.
    unsafe {
        asm!("st.global.v4.u32 [{p}], {{{x}, {y}, {z}, {w}}};", p = in(reg64) p, x = in(reg32) v[0],
            y = in(reg32) v[1], z = in(reg32) v[2], w = in(reg32) v[3], options(nostack))
    };
}

// ---------------------------------------------------------------------------------------------
// 64-bit exchange words, the SM clock

/// `%clock64`: this SM's cycle counter (it runs at the SM clock; not synchronised between SMs).
#[inline(always)]
pub fn clock64() -> u64 {
    let r: u64;
    // SAFETY: reading a special register has no preconditions. Not `pure`: it changes.
    unsafe { asm!("mov.u64 {r}, %clock64;", r = out(reg64) r, options(nomem, nostack)) };
    r
}

/// `ld.relaxed.gpu.global.v2.u64`: one 16-byte strong load at GPU scope. The memory model treats
/// it as two 64-bit accesses, each single-copy atomic (the pair as a whole is not): each word
/// returned is whole as some thread stored it.
///
/// # Safety
/// `p` must be a valid, 16-byte-aligned global address.
#[inline(always)]
pub unsafe fn ld_relaxed_gpu_v2_u64(p: *const u64) -> [u64; 2] {
    let (a, b): (u64, u64);
    // SAFETY: the caller guarantees the address is valid.
    unsafe {
        asm!("ld.relaxed.gpu.global.v2.u64 {{{a}, {b}}}, [{p}];", a = out(reg64) a, b = out(reg64) b,
            p = in(reg64) p, options(nostack))
    };
    [a, b]
}

/// `st.relaxed.gpu.global.u64`: a strong, single-copy-atomic 64-bit store at GPU scope.
///
/// # Safety
/// `p` must be a valid, 8-byte-aligned global address.
#[inline(always)]
pub unsafe fn st_relaxed_gpu_u64(p: *mut u64, v: u64) {
    // SAFETY: the caller guarantees the address is valid.
    unsafe { asm!("st.relaxed.gpu.global.u64 [{p}], {v};", p = in(reg64) p, v = in(reg64) v, options(nostack)) };
}

/// Plain `st.global.u64` (weak): for outputs the host reads after the kernel.
///
/// # Safety
/// `p` must be a valid, 8-byte-aligned global address.
#[inline(always)]
pub unsafe fn st_global_u64(p: *mut u64, v: u64) {
    // SAFETY: the caller guarantees the address is valid.
    unsafe { asm!("st.global.u64 [{p}], {v};", p = in(reg64) p, v = in(reg64) v, options(nostack)) };
}

// ---------------------------------------------------------------------------------------------
// Thread-block clusters and distributed shared memory (sm_90 and newer)
//
// The memory model of the cluster-resident exchange (PTX ISA, "Memory Consistency Model"):
//
// - `st.relaxed.cluster.shared::cluster.v4.u32` ([`st_relaxed_cluster_shared_cluster_v4_u32`]) is
//   a *strong* store at cluster scope; as a vector access it is four 32-bit accesses, each
//   single-copy atomic, with no order among them. A 32-bit piece holds two tagged fp16 values,
//   each read whole by a 32-bit (or wider) load, so a reader checking every value's tag bit can
//   never accept a torn or stale value, whatever order the pieces land in.
// - `ld.relaxed.cluster.shared.v4.u32` ([`ld_relaxed_cluster_shared_v4_u32`]) on the CTA's own
//   window is a strong load at cluster scope. Writer and reader are in one cluster, so the two
//   are *morally strong*: the load returns a value in the location's coherence order, never one
//   older than a value this thread has already seen there, and a value another CTA stored
//   becomes visible to the spinning load in finite time (no fence is needed for progress).
// - A value seen by the poll is copied to the CTA's hidden state by the polling thread and read
//   by the others after `bar.sync`, which orders the CTA's shared-memory accesses (the same as
//   the grid kernel's gather from global memory).
// - Cluster barriers ([`cluster_sync`], `barrier.cluster.arrive.release` +
//   `wait.acquire`) order everything before them, in any CTA's shared memory, before
//   everything after them in every CTA of the cluster: the kernel uses one after its warm start
//   (no peer stores into a window before its owner has initialised it, and every CTA of the
//   cluster is running) and one before exit (no CTA leaves while a peer may still store into
//   its shared memory, the failure path included).

/// `%cluster_ctarank`: this CTA's rank in its cluster.
#[cfg(target_feature = "sm_90")]
#[inline(always)]
pub fn cluster_ctarank() -> u32 {
    let r: u32;
    // SAFETY: reading a special register has no preconditions.
    unsafe { asm!("mov.u32 {r}, %cluster_ctarank;", r = out(reg32) r, options(pure, nomem, nostack)) };
    r
}

/// `%cluster_nctarank`: CTAs in this CTA's cluster.
#[cfg(target_feature = "sm_90")]
#[inline(always)]
pub fn cluster_nctarank() -> u32 {
    let r: u32;
    // SAFETY: reading a special register has no preconditions.
    unsafe { asm!("mov.u32 {r}, %cluster_nctarank;", r = out(reg32) r, options(pure, nomem, nostack)) };
    r
}

/// `mapa.shared::cluster.u32`: the `.shared::cluster` address of shared address `addr` (this
/// CTA's window) in the CTA of rank `rank` of the same cluster. Address arithmetic only.
#[cfg(target_feature = "sm_90")]
#[inline(always)]
pub fn mapa_shared_cluster(addr: u32, rank: u32) -> u32 {
    let r: u32;
    // SAFETY: computes an address; nothing is accessed.
    unsafe {
        asm!("mapa.shared::cluster.u32 {r}, {a}, {k};", r = out(reg32) r, a = in(reg32) addr, k = in(reg32) rank,
            options(pure, nomem, nostack))
    };
    r
}

/// `barrier.cluster.arrive.release.aligned` then `barrier.cluster.wait.acquire.aligned`: waits
/// until every thread of every CTA of the cluster has arrived. Release/acquire at cluster scope:
/// every memory access before the barrier (shared memory of any CTA of the cluster included)
/// happens before every access after it. Also a barrier for this CTA's threads.
///
/// # Safety
/// Every thread of every CTA of the cluster must reach the same barrier the same number of
/// times (`.aligned`: no divergent call sites within a warp); every CTA of the cluster must
/// still be running (a CTA that exits early leaves its peers waiting).
#[cfg(target_feature = "sm_90")]
#[inline(always)]
pub unsafe fn cluster_sync() {
    // SAFETY: the caller guarantees cluster-uniform control flow.
    unsafe { asm!("barrier.cluster.arrive.release.aligned;", "barrier.cluster.wait.acquire.aligned;", options(nostack)) };
}

/// `st.relaxed.cluster.shared::cluster.v4.u32`: 16 bytes into the shared memory of a CTA of this
/// cluster. Four 32-bit strong stores at cluster scope, each single-copy atomic.
///
/// # Safety
/// `addr` must be a 16-byte-aligned `.shared::cluster` address ([`mapa_shared_cluster`]) of a
/// CTA of the cluster that is running and stays running until the store is complete.
#[cfg(target_feature = "sm_90")]
#[inline(always)]
pub unsafe fn st_relaxed_cluster_shared_cluster_v4_u32(addr: u32, v: [u32; 4]) {
    // SAFETY: the caller guarantees the address and the target CTA.
    unsafe {
        asm!("st.relaxed.cluster.shared::cluster.v4.u32 [{a}], {{{x}, {y}, {z}, {w}}};", a = in(reg32) addr,
            x = in(reg32) v[0], y = in(reg32) v[1], z = in(reg32) v[2], w = in(reg32) v[3], options(nostack))
    };
}

/// `st.relaxed.cluster.shared::cluster.v2.u64`: 16 bytes into the shared memory of a CTA of this
/// cluster. Two 64-bit strong stores at cluster scope, each single-copy atomic.
///
/// # Safety
/// As [`st_relaxed_cluster_shared_cluster_v4_u32`].
#[cfg(target_feature = "sm_90")]
#[inline(always)]
pub unsafe fn st_relaxed_cluster_shared_cluster_v2_u64(addr: u32, v: [u64; 2]) {
    // SAFETY: the caller guarantees the address and the target CTA.
    unsafe {
        asm!("st.relaxed.cluster.shared::cluster.v2.u64 [{a}], {{{x}, {y}}};", a = in(reg32) addr,
            x = in(reg64) v[0], y = in(reg64) v[1], options(nostack))
    };
}

/// Plain `st.shared::cluster.u32` (weak): one word into the shared memory of a CTA of this
/// cluster, for data read only after a [`cluster_sync`].
///
/// # Safety
/// As [`st_relaxed_cluster_shared_cluster_v4_u32`], 4-byte-aligned.
#[cfg(target_feature = "sm_90")]
#[inline(always)]
pub unsafe fn st_shared_cluster_u32(addr: u32, v: u32) {
    // SAFETY: the caller guarantees the address and the target CTA.
    unsafe { asm!("st.shared::cluster.u32 [{a}], {v};", a = in(reg32) addr, v = in(reg32) v, options(nostack)) };
}

/// `ld.relaxed.cluster.shared.v4.u32`: 16 bytes of this CTA's shared memory as four strong
/// 32-bit loads at cluster scope, each single-copy atomic: polls words that a peer CTA stores
/// with [`st_relaxed_cluster_shared_cluster_v4_u32`].
///
/// # Safety
/// `addr` must be a 16-byte-aligned address inside the CTA's shared memory.
#[cfg(target_feature = "sm_90")]
#[inline(always)]
pub unsafe fn ld_relaxed_cluster_shared_v4_u32(addr: u32) -> [u32; 4] {
    let (a, b, c, d): (u32, u32, u32, u32);
    // SAFETY: the caller guarantees the address is valid.
    unsafe {
        asm!("ld.relaxed.cluster.shared.v4.u32 {{{a}, {b}, {c}, {d}}}, [{p}];", a = out(reg32) a, b = out(reg32) b,
            c = out(reg32) c, d = out(reg32) d, p = in(reg32) addr, options(nostack))
    };
    [a, b, c, d]
}

/// `ld.relaxed.cluster.shared.v2.u64`: 16 bytes of this CTA's shared memory as two strong 64-bit
/// loads at cluster scope, each single-copy atomic (see [`st_relaxed_cluster_shared_cluster_v2_u64`]).
///
/// # Safety
/// As [`ld_relaxed_cluster_shared_v4_u32`].
#[cfg(target_feature = "sm_90")]
#[inline(always)]
pub unsafe fn ld_relaxed_cluster_shared_v2_u64(addr: u32) -> [u64; 2] {
    let (a, b): (u64, u64);
    // SAFETY: the caller guarantees the address is valid.
    unsafe {
        asm!("ld.relaxed.cluster.shared.v2.u64 {{{a}, {b}}}, [{p}];", a = out(reg64) a, b = out(reg64) b,
            p = in(reg32) addr, options(nostack))
    };
    [a, b]
}
