//! Joining the two directions of a bidirectional layer: the forward states and the reverse
//! states, time-aligned, side by side in one `[T][B][2H]` output, as PyTorch returns them. The
//! host runs it for the last layer (the model's output) and for a layer whose next layer has a
//! sparse input projection (which reads f32 rows); a next layer with a dense projection joins
//! the directions while rounding them to fp16 instead (`projection::sprnn_projection_join_to_f16`,
//! same indexing). See `format::ConcatParams`.
//!
//! One thread per output value, grid-stride; consecutive threads write consecutive values.

use crate::device::*;
use crate::format::ConcatParams;

/// Entry point: see the module docs.
///
/// # Safety
/// `p` must satisfy `format::ConcatParams`: `forward` and `reverse` `[T][B][H]` f32, `out`
/// `[T][B][2H]` f32; any 1-D launch shape.
#[no_mangle]
pub unsafe extern "ptx-kernel" fn sprnn_concat_directions(p: ConcatParams) {
    let (h, b_n, t_n) = (p.hidden as u64, p.batch as u64, p.steps as u64);
    let width = 2 * h;
    let total = t_n * b_n * width;
    let stride = grid_dim_x() as u64 * block_dim_x() as u64;
    let mut idx = block_idx_x() as u64 * block_dim_x() as u64 + thread_idx_x() as u64;
    let (fwd, rev, out) = (p.forward as *const f32, p.reverse as *const f32, p.out as *mut f32);
    while idx < total {
        let (tb, e) = (idx / width, idx % width);
        let (t, b) = (tb / b_n, tb % b_n);
        // SAFETY: t < T, b < B, e < 2H: both sources are read inside [T][B][H], the store is
        // inside [T][B][2H].
        unsafe {
            let v = if e < h {
                ld_nc_f32(fwd.add(((t * b_n + b) * h + e) as usize))
            } else {
                ld_nc_f32(rev.add((((t_n - 1 - t) * b_n + b) * h + (e - h)) as usize))
            };
            st_global_f32(out.add(idx as usize), v);
        }
        idx += stride;
    }
}
