//! Runs the smoke kernel, which touches every function of the kernel crate's device layer, and
//! checks every word it writes against values computed here.

use cust::memory::{CopyDestination, DeviceBuffer};
use rand::{Rng, SeedableRng};
use sprnn_kernels::format::SmokeParams;

use crate::driver;
use crate::error::{cust_err, Error, Result};
use crate::gpu::Gpu;

/// Threads per CTA of the smoke launch.
const THREADS: usize = 128;

/// What the smoke kernel got right and wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmokeReport {
    /// Elements checked.
    pub elements: usize,
    /// Output words that differ from the expected value (4 per element).
    pub mismatches: usize,
    /// The first few mismatches as `(word index, got, want)`.
    pub first: Vec<(usize, u32, u32)>,
    /// Whether the single-thread memory-model checks (release/acquire, relaxed, CAS, v4 load,
    /// `%globaltimer`, math) passed.
    pub scalar_checks: bool,
}

impl SmokeReport {
    /// Whether everything matched.
    pub fn passed(&self) -> bool {
        self.mismatches == 0 && self.scalar_checks
    }
}

/// The words the smoke kernel must write for `input` (see the kernel's docs).
pub fn expected(input: &[f32]) -> Vec<u32> {
    let n = input.len();
    let x = |i: usize| if i < n { input[i] } else { 0.0 };
    let mut out = vec![0u32; 4 * n];
    for i in 0..n {
        let tid = (i % THREADS) as u32;
        let j = (tid + 1) % THREADS as u32;
        let smem = j
            .wrapping_add(j + 1)
            .wrapping_add(j + 2)
            .wrapping_add(j + 3)
            .wrapping_add(j ^ (j + 1))
            .wrapping_add((j + 3) & 0xFFFF)
            .wrapping_add(j + 2);
        let warp = i / 32 * 32;
        let ballot = (0..32).fold(0u32, |b, l| b | (((x(warp + l) > 0.0) as u32) << l));
        out[4 * i] = half::f16::from_f32(x(i)).to_f32().to_bits();
        out[4 * i + 1] = x(i ^ 1).to_bits();
        out[4 * i + 2] = smem;
        out[4 * i + 3] = ballot;
    }
    out
}

/// Runs the smoke kernel on `n` random values (seeded) and checks the result.
pub fn run(gpu: &Gpu, n: usize, seed: u64) -> Result<SmokeReport> {
    if n == 0 || n > 1 << 24 {
        return Err(Error::Input { name: "n", problem: format!("{n} elements; must be 1..=16777216") });
    }
    gpu.make_current()?;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let input: Vec<f32> = (0..n).map(|_| rng.gen_range(-3.0f32..3.0)).collect();
    let d_in = DeviceBuffer::from_slice(&input).map_err(cust_err("cuMemAlloc"))?;
    // Poisoned output: an unwritten word cannot pass.
    let d_out = DeviceBuffer::from_slice(&vec![0xDEAD_BEEFu32; 4 * n]).map_err(cust_err("cuMemAlloc"))?;
    let d_scratch = DeviceBuffer::from_slice(&[0u32; 4]).map_err(cust_err("cuMemAlloc"))?;
    let params = SmokeParams {
        input: d_in.as_device_ptr().as_raw(),
        output: d_out.as_device_ptr().as_raw(),
        scratch: d_scratch.as_device_ptr().as_raw(),
        n: n as u32,
        pad: 0,
    };
    let f = gpu.function("sprnn_smoke")?;
    let grid = n.div_ceil(THREADS) as u32;
    // SAFETY: SmokeParams is the kernel's parameter struct; the buffers above have the sizes
    // the kernel's contract asks for and outlive the synchronisation below.
    unsafe { driver::launch_cooperative(&f, grid, THREADS as u32, (16 * THREADS) as u32, gpu.stream(), &params) }
        .map_err(|code| Error::from(driver::CallFailed { call: "cuLaunchCooperativeKernel", code }))?;
    driver::synchronize(gpu.stream())?;
    let mut got = vec![0u32; 4 * n];
    d_out.copy_to(&mut got[..]).map_err(cust_err("cuMemcpyDtoH"))?;
    let mut scratch = [0u32; 4];
    d_scratch.copy_to(&mut scratch[..]).map_err(cust_err("cuMemcpyDtoH"))?;
    let want = expected(&input);
    let bad: Vec<(usize, u32, u32)> =
        got.iter().zip(&want).enumerate().filter(|(_, (g, w))| g != w).map(|(i, (g, w))| (i, *g, *w)).collect();
    Ok(SmokeReport {
        elements: n,
        mismatches: bad.len(),
        first: bad.into_iter().take(8).collect(),
        scalar_checks: scratch == [42, 43, 44, 1],
    })
}

/// The cell's `tanh` and `sigmoid` as the GPU computes them (the `sprnn_math` kernel), for each
/// value of `input`: `(tanh, sigmoid)`.
pub fn math(gpu: &Gpu, input: &[f32]) -> Result<Vec<(f32, f32)>> {
    let n = input.len();
    if n == 0 || n > 1 << 24 {
        return Err(Error::Input { name: "input", problem: format!("{n} values; must be 1..=16777216") });
    }
    gpu.make_current()?;
    let d_in = DeviceBuffer::from_slice(input).map_err(cust_err("cuMemAlloc"))?;
    // Poisoned output: an unwritten word cannot pass for a value.
    let d_out = DeviceBuffer::from_slice(&vec![0x7FC0_DEADu32; 2 * n]).map_err(cust_err("cuMemAlloc"))?;
    let params = SmokeParams {
        input: d_in.as_device_ptr().as_raw(),
        output: d_out.as_device_ptr().as_raw(),
        scratch: 0,
        n: n as u32,
        pad: 0,
    };
    let f = gpu.function("sprnn_math")?;
    let grid = n.div_ceil(THREADS) as u32;
    // SAFETY: SmokeParams is the kernel's parameter struct; the buffers above have the sizes the
    // kernel's contract asks for and outlive the synchronisation below.
    unsafe { driver::launch(&f, grid, THREADS as u32, 0, gpu.stream(), &params)? };
    driver::synchronize(gpu.stream())?;
    let mut got = vec![0u32; 2 * n];
    d_out.copy_to(&mut got[..]).map_err(cust_err("cuMemcpyDtoH"))?;
    Ok(got.chunks_exact(2).map(|w| (f32::from_bits(w[0]), f32::from_bits(w[1]))).collect())
}
