//! fp16 arithmetic exactly as the GPU does it, for the CPU twins of the kernel: the fused
//! multiply-add of `fma.rn.f16x2` ([`fma`]) and the group sums of
//! [`Products::F16`](sprnn_kernels::format::Products::F16) ([`GroupSum`]).
//!
//! `half`'s conversions from `f64` round through `f32` (or drop low bits), which rounds twice;
//! [`round_f64`] rounds once, as the hardware does.

use half::f16;
use sprnn_kernels::format::PRODUCT_GROUP;

/// `x` rounded once to the nearest fp16, ties to even; subnormals kept, ±inf past the largest
/// finite value.
pub fn round_f64(x: f64) -> f16 {
    f16::from_f32(round16(x) as f32)
}

/// [`round_f64`] as the fp16 value in `f64` (exact): the spacing of fp16 values around `x` is
/// `q = 2^max(e - 10, -24)` (`e` the exponent of `x`), and `(x + 1.5·2^52·q) − 1.5·2^52·q`
/// rounds `x` to a multiple of `q`, ties to even, in one `f64` rounding (`|x| < 2^51·q`).
#[inline]
fn round16(x: f64) -> f64 {
    if !x.is_finite() {
        return x;
    }
    // 1.5 · 2^(qe + 52): exponent field qe + 1075, the top mantissa bit set.
    let e = ((x.to_bits() >> 52) & 0x7FF) as i64;
    let qe_field = (e - 10).max(1023 - 24) + 52;
    let magic = f64::from_bits(((qe_field as u64) << 52) | (1 << 51));
    let r = (x + magic) - magic;
    if r.abs() > 65504.0 {
        f64::INFINITY.copysign(x)
    } else {
        // A result of zero keeps the sign of `x`, as the hardware's does.
        r.copysign(x)
    }
}

/// `a · b + c` rounded once to the nearest fp16 (ties to even), subnormals kept: one lane of
/// `fma.rn.f16x2`.
pub fn fma(a: f16, b: f16, c: f16) -> f16 {
    f16::from_f32(fma16(a.to_f64(), b.to_f64(), c.to_f64()) as f32)
}

/// [`fma`] on fp16 values held in `f64`. The product of two fp16 values has at most 22
/// significant bits, so `a · b` is exact in `f64`, and so is the sum wherever the rounding can
/// depend on it: the sum is inexact only when the operands lie more than 53 bits apart, and then
/// either `c` dominates (the `f64` sum is `c`, an fp16 value) or the product does, above 2^29,
/// where the fp16 result is infinite either way.
#[inline]
fn fma16(a: f64, b: f64, c: f64) -> f64 {
    round16(a * b + c)
}

/// The bound on the error of a row's sum with
/// [`Products::F16`](sprnn_kernels::format::Products::F16) against the exact sum of the same
/// fp16 products, beyond `f32` rounding: each group's fp16 sum is within `γ_8 = 8u / (1 − 8u)`
/// (`u = 2^-11`) of the sum of its products' magnitudes, plus `2^-25` per word where the sums
/// are below fp16's normal range. `magnitude` is `Σ |w·h|` of the row, `words` its packed words
/// (`N · TPR`).
pub fn group_sum_error_bound(magnitude: f64, words: usize) -> f64 {
    let u = f64::powi(2.0, -11);
    let gamma = PRODUCT_GROUP as f64 * u / (1.0 - PRODUCT_GROUP as f64 * u);
    gamma * magnitude + words as f64 * f64::powi(2.0, -25)
}

/// One thread's running sum of its products with
/// [`Products::F16`](sprnn_kernels::format::Products::F16): an fp16 sum over each group of
/// [`PRODUCT_GROUP`] consecutive words (one [`fma`] per word, from +0), added to an `f32` sum
/// at the end of the group.
#[derive(Clone, Copy, Debug, Default)]
pub struct GroupSum {
    group: f64,
    words: usize,
    total: f32,
}

impl GroupSum {
    /// Adds the product `w · h` of the next word (`w` and `h` fp16 values, here as `f32`).
    #[inline]
    pub fn add(&mut self, w: f32, h: f32) {
        self.group = fma16(w as f64, h as f64, self.group);
        self.words += 1;
        if self.words == PRODUCT_GROUP {
            self.flush();
        }
    }

    #[inline]
    fn flush(&mut self) {
        self.total += self.group as f32;
        self.group = 0.0;
        self.words = 0;
    }

    /// The sum: the `f32` total plus a group not yet complete (the kernel's lists are whole
    /// groups; the reference's rows need not be).
    pub fn total(mut self) -> f32 {
        if self.words > 0 {
            self.flush();
        }
        self.total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The rounding written out: the spacing of fp16 values around `x`, and ties to even.
    fn round_oracle(x: f64) -> f16 {
        let a = x.abs();
        let quantum = if a < f64::powi(2.0, -14) { f64::powi(2.0, -24) } else { f64::powi(2.0, ((a.to_bits() >> 52) & 0x7FF) as i32 - 1023 - 10) };
        let n = a / quantum;
        let (floor, frac) = (n.floor(), n - n.floor());
        let up = frac > 0.5 || (frac == 0.5 && floor % 2.0 != 0.0);
        let mag = (if up { floor + 1.0 } else { floor }) * quantum;
        let r = if mag > 65504.0 { f16::INFINITY } else { f16::from_f32(mag as f32) };
        if x.is_sign_negative() {
            -r
        } else {
            r
        }
    }

    /// Every fp16 value, every midpoint between neighbours and points just off it (by less than
    /// an f32 ulp, where a rounding through f32 alone would go wrong) round as written out.
    #[test]
    fn round_f64_rounds_once() {
        for bits in 0..0x7BFFu16 {
            for sign in [1.0, -1.0] {
                let v = f16::from_bits(bits).to_f64() * sign;
                let next = f16::from_bits(bits + 1).to_f64() * sign;
                let mid = (v + next) / 2.0;
                let tiny = mid.abs() * f64::EPSILON * 64.0;
                for x in [v, mid, mid + tiny, mid - tiny, v + tiny, next - tiny] {
                    assert_eq!(round_f64(x).to_bits(), round_oracle(x).to_bits(), "{x:e}");
                }
            }
        }
        assert_eq!(round_f64(65519.99).to_f32(), 65504.0);
        assert!(round_f64(65520.0).is_infinite());
        assert_eq!(round_f64(-1e-9).to_bits(), 0x8000);
    }

    /// `fma` agrees with the exact sum rounded once, on products and sums across fp16's range.
    #[test]
    fn fma_rounds_once() {
        let vals: Vec<f16> = (0..3000u32).map(|i| f16::from_bits((i.wrapping_mul(40503) % 0x7C00) as u16 | ((i & 1) << 15) as u16)).collect();
        for (i, &a) in vals.iter().enumerate() {
            for j in 0..7 {
                let b = vals[(i * 7 + 3 + j * 411) % vals.len()];
                let c = vals[(i * 13 + 5 + j * 97) % vals.len()];
                let exact = a.to_f64() * b.to_f64() + c.to_f64();
                assert_eq!(fma(a, b, c).to_bits(), round_oracle(exact).to_bits(), "{a} * {b} + {c}");
            }
        }
        // A tie rounds to even: 1 + 2^-11 lies halfway between 1 and 1 + 2^-10.
        let one = f16::ONE;
        let half_ulp = f16::from_f64(f64::powi(2.0, -11));
        assert_eq!(fma(one, one, half_ulp), one);
        // Subnormal products are kept: 2^-11 · 2^-10 = 2^-21.
        let x = fma(half_ulp, f16::from_f64(f64::powi(2.0, -10)), f16::ZERO);
        assert_eq!(x.to_f64(), f64::powi(2.0, -21));
    }

    /// Groups of eight: the fp16 sum restarts after every eighth word.
    #[test]
    fn group_sum_restarts_every_group() {
        let mut g = GroupSum::default();
        // 2048 + 1 is not an fp16 (spacing 2 there): in one group the ones are lost...
        g.add(2048.0, 1.0);
        for _ in 1..PRODUCT_GROUP {
            g.add(1.0, 1.0);
        }
        // ...(2049 is a tie, rounded to the even 2048) until the next group starts from zero.
        for _ in 0..PRODUCT_GROUP {
            g.add(1.0, 1.0);
        }
        assert_eq!(g.total(), 2048.0 + PRODUCT_GROUP as f32);
    }
}
