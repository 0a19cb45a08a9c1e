//! The error metric GPU results are judged by.

/// Largest per-step relative error ([`compare_steps`]) a GPU result may have against the
/// [`Precision::DeviceFaithful`](super::Precision::DeviceFaithful) reference.
///
/// Set from the permuted-summation-order experiment in the [module docs](super#tolerance): the
/// worst error measured there was 1.00e-3 (one fp16 ulp of an `h` value near the step's maximum,
/// over H = 256..2304, T up to 1024, every cell, d = 0.1 and 0.3); this is four times that.
pub const DEVICE_TOLERANCE: f64 = 4.0e-3;

/// Floor of the per-step scale in [`compare_steps`], so that steps whose reference is (nearly)
/// all zeros are judged in absolute terms instead of dividing by zero.
pub const SCALE_FLOOR: f64 = 1.0e-3;

/// Result of [`compare_steps`].
#[derive(Debug, Clone, PartialEq)]
pub struct StepErrors {
    /// Largest per-step error (`f64::INFINITY` when a NaN was met); 0 for zero steps.
    pub worst: f64,
    /// Step (0-based) where `worst` occurred; the first such step on ties, 0 for zero steps.
    pub worst_step: usize,
    /// Error of every step.
    pub per_step: Vec<f64>,
}

impl StepErrors {
    /// Whether the worst step is within `tolerance` (never true after a NaN).
    pub fn within(&self, tolerance: f64) -> bool {
        self.worst <= tolerance
    }
}

/// Per-step relative error of `got` against `want`, both `[steps][batch][hidden]`.
///
/// The error of step `t` is `max |got − want| / max(max |want|, SCALE_FLOOR)`, both maxima over
/// that step's `batch * hidden` values; the verdict is the worst step. A NaN in `got` or `want`
/// counts as an infinite error (so it can never pass), as does an infinity in `got` that `want`
/// does not have at the same place.
///
/// # Panics
/// When `got` or `want` does not hold `steps * batch * hidden` values.
pub fn compare_steps(got: &[f32], want: &[f32], steps: usize, batch: usize, hidden: usize) -> StepErrors {
    let n = steps.checked_mul(batch).and_then(|v| v.checked_mul(hidden)).expect("compare_steps: size overflows");
    assert_eq!(got.len(), n, "compare_steps: got has {} values, expected {steps} x {batch} x {hidden}", got.len());
    assert_eq!(want.len(), n, "compare_steps: want has {} values, expected {steps} x {batch} x {hidden}", want.len());
    let per = batch * hidden;
    let mut per_step = Vec::with_capacity(steps);
    for t in 0..steps {
        let (g, w) = (&got[t * per..(t + 1) * per], &want[t * per..(t + 1) * per]);
        let mut diff = 0.0f64;
        let mut scale = SCALE_FLOOR;
        for (&a, &b) in g.iter().zip(w) {
            let d = if a.is_nan() || b.is_nan() {
                f64::INFINITY
            } else if a == b {
                0.0 // equal infinities are no error
            } else {
                (a as f64 - b as f64).abs()
            };
            diff = diff.max(d);
            scale = scale.max((b as f64).abs());
        }
        // An infinite reference with a finite difference elsewhere would give 0: keep it honest.
        let e = if diff.is_infinite() { f64::INFINITY } else if scale.is_infinite() { 0.0 } else { diff / scale };
        per_step.push(e);
    }
    let (mut worst, mut worst_step) = (0.0f64, 0usize);
    for (t, &e) in per_step.iter().enumerate() {
        if e > worst {
            worst = e;
            worst_step = t;
        }
    }
    StepErrors { worst, worst_step, per_step }
}
