//! fp16 arithmetic exactly as the GPU does it, for the CPU twins of the kernel: the fused
//! multiply-add of `fma.rn.f16x2` ([`fma`]) and the group sums of
//! [`Products::F16`](sprnn_kernels::format::Products::F16) ([`GroupSum`]).
//!
//! `half`'s conversions from `f64` round through `f32` (or drop low bits), which rounds twice;
//! [`round_f64`] rounds once, as the hardware does.

use half::f16;
use sprnn_kernels::format::PRODUCT_GROUP;

/// The exact value `x + below` (`|below|` at most half an `f64` ulp of `x`) rounded once to the
/// nearest fp16, ties to even; subnormals kept, ±inf past the largest finite value. `below`
/// only decides values that `x` puts exactly halfway between two fp16 values.
pub fn round_f64(x: f64, below: f64) -> f16 {
    if x.is_nan() {
        return f16::NAN;
    }
    let a = x.abs();
    let neg = x.is_sign_negative();
    if a.is_infinite() {
        return if neg { f16::NEG_INFINITY } else { f16::INFINITY };
    }
    // The spacing of fp16 values around `a`: 2^-24 below the normal range, else 2^(e - 10).
    let quantum = if a < f64::powi(2.0, -14) {
        f64::powi(2.0, -24)
    } else {
        let e = ((a.to_bits() >> 52) & 0x7FF) as i32 - 1023;
        f64::powi(2.0, e - 10)
    };
    let n = a / quantum;
    let floor = n.floor();
    let frac = n - floor;
    let up = if frac > 0.5 {
        true
    } else if frac < 0.5 {
        false
    } else if below != 0.0 {
        // A tie only in `x`: the exact value lies beyond it, away from zero or towards it.
        (below > 0.0) != neg
    } else {
        floor % 2.0 != 0.0
    };
    let mag = (if up { floor + 1.0 } else { floor }) * quantum;
    let r = if mag > 65504.0 { f16::INFINITY } else { f16::from_f32(mag as f32) };
    if neg {
        -r
    } else {
        r
    }
}

/// `a · b + c` rounded once to the nearest fp16 (ties to even), subnormals kept: one lane of
/// `fma.rn.f16x2`.
pub fn fma(a: f16, b: f16, c: f16) -> f16 {
    let (a, b, c) = (a.to_f64(), b.to_f64(), c.to_f64());
    // The product of two fp16 values has at most 22 significant bits: exact in f64.
    let p = a * b;
    let s = p + c;
    if !s.is_finite() {
        return round_f64(s, 0.0);
    }
    // TwoSum: `s + err` is `p + c` exactly.
    let v = s - p;
    let err = (p - (s - v)) + (c - v);
    round_f64(s, err)
}

/// One thread's running sum of its products with
/// [`Products::F16`](sprnn_kernels::format::Products::F16): an fp16 sum over each group of
/// [`PRODUCT_GROUP`] consecutive words (one [`fma`] per word, from +0), added to an `f32` sum
/// at the end of the group.
#[derive(Clone, Copy, Debug, Default)]
pub struct GroupSum {
    group: f16,
    words: usize,
    total: f32,
}

impl GroupSum {
    /// Adds the product `w · h` of the next word.
    pub fn add(&mut self, w: f16, h: f16) {
        self.group = fma(w, h, self.group);
        self.words += 1;
        if self.words == PRODUCT_GROUP {
            self.flush();
        }
    }

    fn flush(&mut self) {
        self.total += self.group.to_f32();
        self.group = f16::ZERO;
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

    /// Every fp16 value and every midpoint between neighbours rounds as `f32` → fp16 (a single
    /// correct rounding for values exact in `f32`).
    #[test]
    fn round_f64_agrees_with_single_roundings() {
        for bits in 0..=0x7BFFu16 {
            for sign in [0u16, 0x8000] {
                let v = f16::from_bits(bits | sign);
                assert_eq!(round_f64(v.to_f64(), 0.0).to_bits(), v.to_bits());
                if bits == 0x7BFF {
                    continue;
                }
                let next = f16::from_bits((bits + 1) | sign);
                let mid = (v.to_f64() + next.to_f64()) / 2.0;
                assert_eq!(round_f64(mid, 0.0).to_bits(), f16::from_f32(mid as f32).to_bits(), "{bits:#x}");
                // Just past the midpoint, either side, by less than an f64 ulp.
                let tiny = mid.abs() * f64::EPSILON / 4.0;
                let away = if sign == 0 { tiny } else { -tiny };
                assert_eq!(round_f64(mid, away).to_bits(), next.to_bits(), "{bits:#x} away");
                assert_eq!(round_f64(mid, -away).to_bits(), v.to_bits(), "{bits:#x} towards");
            }
        }
        assert_eq!(round_f64(65519.99, 0.0).to_f32(), 65504.0);
        assert!(round_f64(65520.0, 0.0).is_infinite());
        assert_eq!(round_f64(-1e-9, 0.0).to_bits(), 0x8000);
    }

    /// `fma` agrees with the exact sum rounded once.
    #[test]
    fn fma_rounds_once() {
        let vals: Vec<f16> = (0..2000u32).map(|i| f16::from_bits((i.wrapping_mul(40503) % 0x7C00) as u16 | ((i & 1) << 15) as u16)).collect();
        for (i, &a) in vals.iter().enumerate() {
            let b = vals[(i * 7 + 3) % vals.len()];
            let c = vals[(i * 13 + 5) % vals.len()];
            let exact = a.to_f64() * b.to_f64() + c.to_f64();
            // Exact in f64 here (exponents within range); round once from it.
            assert_eq!(fma(a, b, c).to_bits(), round_f64(exact, 0.0).to_bits());
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
        g.add(f16::from_f32(2048.0), f16::ONE);
        for _ in 1..PRODUCT_GROUP {
            g.add(f16::ONE, f16::ONE);
        }
        // ...(2049 is a tie, rounded to the even 2048) until the next group starts from zero.
        for _ in 0..PRODUCT_GROUP {
            g.add(f16::ONE, f16::ONE);
        }
        assert_eq!(g.total(), 2048.0 + PRODUCT_GROUP as f32);
    }
}
