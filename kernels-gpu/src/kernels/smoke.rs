//! The smoke kernel: touches every function of the device layer once and writes results the
//! host can check exactly (see `sprnn::smoke` for the checks).
//!
//! For global thread `i < n`, with `x = input[i]`, lane `l`, CTA-local thread `tid`:
//! - `out[4i]`   = bits of `f16_to_f32(f32_to_f16(x))`;
//! - `out[4i+1]` = bits of `input[i ^ 1]` obtained with a butterfly shuffle (warp-local);
//! - `out[4i+2]` = sum of the four words `[j, j+1, j+2, j+3]`, `j = (tid + 1) % ntid`, written
//!   by the neighbour thread with a 16-byte shared store pair and read back with a 16-byte load,
//!   plus the 8-byte and 2-byte shared loads of the same words (checked by the host formula);
//! - `out[4i+3]` = ballot of `x > 0` over the warp, or `0xFFFF_FFFF` if `vote_all` disagrees
//!   or an index shuffle from lane 0 does not give lane 0's index.
//!
//! Thread 0 of CTA 0 also checks the global memory-model wrappers on `scratch`.
//!
//! [`sprnn_math`] evaluates the cell's `tanh` and `sigmoid` on given inputs, for the host to
//! check their error bounds against `f64`.

use crate::device::*;
use crate::format::SmokeParams;

/// Entry point: see the module docs.
///
/// # Safety
/// `p` must describe valid device buffers: `input` of `n` f32, `output` of `4n` u32, `scratch`
/// of 4 u32 zeroed; dynamic shared memory of `16 * ntid` bytes; `ntid` a multiple of 32.
#[no_mangle]
pub unsafe extern "ptx-kernel" fn sprnn_smoke(p: SmokeParams) {
    let tid = thread_idx_x();
    let ntid = block_dim_x();
    let i = block_idx_x() * ntid + tid;
    let active = i < p.n;
    let input = p.input as *const f32;
    let out = p.output as *mut u32;
    let x = if active {
        // SAFETY: i < n and input holds n values.
        unsafe { ld_nc_f32(input.add(i as usize)) }
    } else {
        0.0
    };

    // f16 round trip.
    let rt = f16_to_f32(f32_to_f16(x));
    // Warp shuffle: every lane takes part.
    // SAFETY: all lanes of the warp execute this (ntid is a multiple of 32).
    let nb = unsafe { shfl_xor_f32(x, 1) };
    // Votes.
    // SAFETY: as above.
    let (ballot, all) = unsafe { (vote_ballot(x > 0.0), vote_all(x > 0.0)) };
    // SAFETY: as above.
    let lane0 = unsafe { shfl_idx_u32(i, 0) };
    let consistent = all == (ballot == u32::MAX) && lane0 == i - lane_id();
    let vote_word = if consistent { ballot } else { u32::MAX };

    // Shared memory: thread tid stores [tid, tid+1, tid+2, tid+3] at 16*tid.
    let base = dyn_smem_base();
    // SAFETY: the launch gives 16 * ntid bytes of dynamic shared memory.
    unsafe {
        st_shared_v2_u32(base + 16 * tid, [tid, tid + 1]);
        st_shared_u32(base + 16 * tid + 8, tid + 2);
        st_shared_u16(base + 16 * tid + 12, (tid + 3) as u16);
        st_shared_u16(base + 16 * tid + 14, ((tid + 3) >> 16) as u16);
        sync_warp();
        sync_threads();
    }
    let j = (tid + 1) % ntid;
    // SAFETY: as above; every thread reached the barrier.
    let smem_word = unsafe {
        let v = ld_shared_v4_u32(base + 16 * j);
        let w = ld_shared_v2_u32(base + 16 * j);
        let lo = ld_shared_u16(base + 16 * j + 12) as u32;
        let f = ld_shared_u32(base + 16 * j + 8);
        v[0].wrapping_add(v[1]).wrapping_add(v[2]).wrapping_add(v[3])
            .wrapping_add(w[0] ^ w[1])
            .wrapping_add(lo)
            .wrapping_add(f)
    };
    // SAFETY: same barrier for every thread.
    let any = unsafe { sync_threads_or(active && x > 0.0) };
    let _ = any;

    if active {
        // SAFETY: out holds 4n words.
        unsafe {
            let o = out.add(4 * i as usize);
            *o = rt.to_bits();
            *o.add(1) = nb.to_bits();
            *o.add(2) = smem_word;
            *o.add(3) = vote_word;
        }
    }

    if i == 0 {
        let s = p.scratch as *mut u32;
        // SAFETY: scratch holds 4 words, 16-byte aligned.
        unsafe {
            let t0 = global_timer_ns();
            st_release_gpu_u32(s, 42);
            let a = ld_acquire_gpu_u32(s);
            st_relaxed_gpu_u32(s.add(1), a + 1);
            let b = ld_relaxed_gpu_u32(s.add(1));
            let old = atom_cas_gpu_u32(s.add(2), 0, b + 1);
            let v = ld_relaxed_gpu_v4_u32(s);
            let t1 = global_timer_ns();
            prefetch_l1(s);
            let g = ld_nc_u32(p.input as *const u32) ^ (ld_nc_u16(p.input as *const u16) as u32);
            let _ = g;
            let m = fma(2.0, 3.0, sigmoid(0.0)) + tanh(0.0) + exp(0.0);
            // scratch = [42, 43, 44, check]: check = 1 if the v4 load saw the stores, the CAS
            // saw 0, time did not run backwards and fma(2,3,0.5)+0+1 == 7.5.
            let ok = v[0] == 42 && v[1] == 43 && v[2] == 44 && old == 0 && t1 >= t0 && m == 7.5;
            st_relaxed_gpu_u32(s.add(3), ok as u32 + grid_dim_x() * 0);
        }
    }
}

/// For `i < n`: `output[2i]` = bits of [`tanh`]`(input[i])`, `output[2i + 1]` = bits of
/// [`sigmoid`]`(input[i])` (`scratch` unused).
///
/// # Safety
/// `p` must describe valid device buffers: `input` of `n` f32, `output` of `2n` u32.
#[no_mangle]
pub unsafe extern "ptx-kernel" fn sprnn_math(p: SmokeParams) {
    let i = block_idx_x() * block_dim_x() + thread_idx_x();
    if i < p.n {
        // SAFETY: i < n; the buffers have the sizes of the contract.
        unsafe {
            let x = ld_nc_f32((p.input as *const f32).add(i as usize));
            let o = (p.output as *mut u32).add(2 * i as usize);
            *o = tanh(x).to_bits();
            *o.add(1) = sigmoid(x).to_bits();
        }
    }
}
