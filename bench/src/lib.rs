//! Shared pieces of sprnn's benchmark and demo programs: the timing protocol (seeded random
//! layers and inputs, median per-step times; [`sprnn::timing`], re-exported here) and the
//! capacity search.
//!
//! # Capacity search
//!
//! [`random_layer`] gives every row of `W_hh` exactly [`row_nnz`]`(H, d)` nonzeros, so whether
//! the planner accepts it depends on `(cell, H, B, d)` and the device alone, and
//! [`precheck`] answers exactly that from row statistics ([`sprnn::layout::check_fit`]) in
//! microseconds, with the planner's own typed refusal. [`fitting_hidden_sizes`] scans every
//! multiple of a step up to the kernel's largest hidden size (no monotonicity is assumed: a
//! larger H can fit where a smaller one does not, when the grid or list length changes), and
//! [`verified_capacity`] confirms the largest with a real random layer that [`sprnn::layout::plan`]
//! accepts, stepping down if it is refused.

use sprnn::layout::{check_fit, plan, DeviceInfo, Fit, Plan, PlanError, PlanOptions, RowStats};
use sprnn::{Cell, Csr};

pub use sprnn::timing::{median, random_input, random_layer, time_layer};

/// Nonzeros in every row of [`random_layer`]`(…, hidden, density)`: `round(density · hidden)`
/// (the count [`sprnn::sparse::random_recurrent`] draws).
pub fn row_nnz(hidden: usize, density: f64) -> usize {
    (density * hidden as f64).round() as usize
}

/// Dense-equivalent parameters of a recurrent matrix: `G · H²`.
pub fn dense_params(cell: Cell, hidden: usize) -> usize {
    cell.gates() * hidden * hidden
}

/// The planner's decision for [`random_layer`]`(_, cell, hidden, density)` at `batch` on `device`,
/// without generating the layer: the launch shape [`plan`] would choose, or the error it would
/// return ([`PlanError::DoesNotFit`], [`PlanError::SharedMemory`], …).
pub fn precheck(cell: Cell, hidden: usize, density: f64, batch: usize, device: &DeviceInfo) -> Result<Fit, PlanError> {
    check_fit(&RowStats::uniform(cell, hidden, row_nnz(hidden, density)), cell, batch, device, &PlanOptions::default())
}

/// Every hidden size `k · step ≤ max_hidden` (k ≥ 1) at which [`precheck`] accepts the layer,
/// largest first, with the launch shape.
pub fn fitting_hidden_sizes(cell: Cell, density: f64, batch: usize, device: &DeviceInfo, step: usize, max_hidden: usize) -> Vec<(usize, Fit)> {
    let step = step.max(1);
    (1..=max_hidden / step)
        .rev()
        .map(|k| k * step)
        .filter_map(|h| precheck(cell, h, density, batch, device).ok().map(|f| (h, f)))
        .collect()
}

/// The largest layer that was generated and planned, and the larger candidates the planner
/// refused once the real layer existed.
pub struct Capacity {
    /// Hidden size.
    pub hidden: usize,
    /// The random layer (`W_hh`, `b_hh`).
    pub layer: (Csr, Vec<f32>),
    /// Its plan.
    pub plan: Plan,
    /// Larger hidden sizes [`precheck`] accepted but [`plan`] refused, with the reason.
    pub refused: Vec<(usize, String)>,
}

/// Which hidden sizes a capacity search tries: multiples of `step` up to `max_hidden`, at most
/// `attempts` of them generated and planned for real.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Candidates {
    /// H is a multiple of it.
    pub step: usize,
    /// The largest H tried.
    pub max_hidden: usize,
    /// At most this many layers are generated and planned (at least one).
    pub attempts: usize,
}

/// The largest hidden size (one of the `candidates`) whose
/// [`random_layer`]`(seed, cell, H, density)` the planner accepts at `batch` on `device`:
/// candidates from [`fitting_hidden_sizes`], largest first, each generated and planned for
/// real until one plans (at most `candidates.attempts` of them). `None` when none does.
pub fn verified_capacity(seed: u64, cell: Cell, density: f64, batch: usize, device: &DeviceInfo, candidates: Candidates) -> sprnn::Result<Option<Capacity>> {
    let Candidates { step, max_hidden, attempts } = candidates;
    let mut refused = Vec::new();
    for (h, _) in fitting_hidden_sizes(cell, density, batch, device, step, max_hidden).into_iter().take(attempts.max(1)) {
        let (w, b) = random_layer(seed, cell, h, density)?;
        match plan(&w, cell, batch, device, &PlanOptions::default()) {
            Ok(p) => return Ok(Some(Capacity { hidden: h, layer: (w, b), plan: p, refused })),
            Err(e) => refused.push((h, e.to_string())),
        }
    }
    Ok(None)
}

/// Opens the rows file `path` of `program`'s `--out` for appending, writing `header` first when
/// it is new or empty; exits the program with status 1 when it cannot be opened.
pub fn open_rows(program: &str, path: &str, header: &str) -> std::fs::File {
    use std::io::Write as _;
    let new = std::fs::metadata(path).map_or(true, |m| m.len() == 0);
    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(path).unwrap_or_else(|e| {
        eprintln!("{program}: --out {path}: {e}");
        std::process::exit(1)
    });
    if new {
        writeln!(f, "{header}").unwrap();
    }
    f
}

/// `field` as one CSV field: quoted (with `"` doubled) when it holds a comma, a quote or a line
/// break, as the refusal notes of a row can.
pub fn csv_field(field: &str) -> std::borrow::Cow<'_, str> {
    if field.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", field.replace('"', "\"\"")).into()
    } else {
        field.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sprnn::MAX_HIDDEN;

    #[test]
    fn csv_fields_with_commas_are_quoted() {
        assert_eq!(csv_field("grid 8 threads 128"), "grid 8 threads 128");
        assert_eq!(csv_field("not run: no cluster of [2, 4] CTAs"), "\"not run: no cluster of [2, 4] CTAs\"");
        assert_eq!(csv_field("a \"b\", c"), "\"a \"\"b\"\", c\"");
    }

    #[test]
    fn precheck_matches_plan_of_the_generated_layer() {
        let dev = DeviceInfo::h200();
        for (cell, h, d, b) in [(Cell::RnnTanh, 2304, 0.3, 4), (Cell::Lstm, 2304, 0.3, 4), (Cell::Gru, 512, 1.0, 4), (Cell::Lstm, 4608, 0.01, 64)] {
            let (w, _) = random_layer(9, cell, h, d).unwrap();
            let real = plan(&w, cell, b, &dev, &PlanOptions::default()).map(|p| (p.grid(), p.threads_per_cta(), p.list_len()));
            let pre = precheck(cell, h, d, b, &dev).map(|f| (f.geometry.grid, f.geometry.threads_per_cta, f.geometry.list_len));
            assert_eq!(real, pre, "{cell:?} H={h} d={d} B={b}");
        }
    }

    /// The search returns the largest fitting multiple of the step: it fits, and no larger
    /// multiple up to the kernel's limit does (checked independently, one by one).
    #[test]
    fn capacity_search_finds_the_largest_fitting_hidden_size() {
        let dev = DeviceInfo::h200();
        for (cell, d) in [(Cell::RnnTanh, 0.3), (Cell::Lstm, 0.1), (Cell::Gru, 1.0), (Cell::RnnTanh, 0.01)] {
            let sizes = fitting_hidden_sizes(cell, d, 4, &dev, 32, MAX_HIDDEN);
            let (h, _) = sizes[0];
            assert!(sizes.windows(2).all(|w| w[0].0 > w[1].0), "largest first");
            assert!(precheck(cell, h, d, 4, &dev).is_ok());
            let mut above = h + 32;
            while above <= MAX_HIDDEN {
                assert!(precheck(cell, above, d, 4, &dev).is_err(), "{cell:?} d={d}: {above} fits above the capacity {h}");
                above += 32;
            }
        }
        // Known points (bench/RESULTS.md, Capacity; with weights in shared memory too): the RNN
        // at d = 0.3 fits H = 4480 (it held 3168 in registers alone), the LSTM at d = 0.3 fits
        // 2304 (it held 1568) but not 4480.
        let rnn = fitting_hidden_sizes(Cell::RnnTanh, 0.3, 4, &dev, 32, MAX_HIDDEN)[0].0;
        let lstm = fitting_hidden_sizes(Cell::Lstm, 0.3, 4, &dev, 32, MAX_HIDDEN)[0].0;
        assert!(rnn >= 4480 && (2304..4480).contains(&lstm), "rnn {rnn}, lstm {lstm}");
        // Sparser layers hold more dense-equivalent parameters (a fully dense layer runs as the
        // dense tensor-core slab, which a layer at d = 0.3 can use too).
        let dense = fitting_hidden_sizes(Cell::RnnTanh, 1.0, 4, &dev, 32, MAX_HIDDEN)[0].0;
        assert!(dense_params(Cell::RnnTanh, rnn) > dense_params(Cell::RnnTanh, dense), "rnn {rnn}, dense {dense}");
    }

    #[test]
    fn verified_capacity_plans_a_real_layer() {
        let dev = DeviceInfo::h200();
        let c = verified_capacity(5, Cell::Gru, 1.0, 4, &dev, Candidates { step: 32, max_hidden: MAX_HIDDEN, attempts: 3 }).unwrap().expect("a dense GRU fits somewhere");
        assert_eq!(c.hidden, fitting_hidden_sizes(Cell::Gru, 1.0, 4, &dev, 32, MAX_HIDDEN)[0].0);
        assert_eq!(c.plan.hidden(), c.hidden);
        assert_eq!(c.layer.0.nnz(), 3 * c.hidden * c.hidden);
        assert!(c.refused.is_empty());
    }
}
