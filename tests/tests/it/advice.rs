//! Refusals decided from sizes, and the advice of a refusal re-planned: every suggestion the
//! planner's refusal makes (a smaller batch, fewer nonzeros per row) fits when it is planned, and
//! no sentinel value reaches a message.

use std::time::{Duration, Instant};

use proptest::prelude::*;
use sprnn::advice::{self, Refusal};
use sprnn::layout::{self, DeviceInfo, PlanError, PlanOptions, RowStats};
use sprnn::Cell;

const CELLS: [Cell; 4] = [Cell::RnnRelu, Cell::RnnTanh, Cell::Gru, Cell::Lstm];

fn no_sentinel(text: &str) {
    for s in [u64::MAX.to_string(), (u64::MAX / 1000).to_string()[..10].to_string(), usize::MAX.to_string()] {
        assert!(!text.contains(&s), "a sentinel value in {text:?}");
    }
}

/// Re-plans each suggestion of the refusal (if any) of `(cell, H, rows of row_nnz, batch)`.
fn suggestions_fit(cell: Cell, hidden: usize, row_nnz: usize, batch: usize, device: &DeviceInfo, opts: &PlanOptions) {
    let stats = RowStats::uniform(cell, hidden, row_nnz);
    let Some(r) = Refusal::check(&stats, cell, batch, device, opts) else { return };
    let case = format!("{cell:?} H={hidden} row_nnz={row_nnz} B={batch} {} {opts:?}: {r}", device.name);
    no_sentinel(&r.to_string());
    if let Some(b) = r.fitting_batch {
        assert!(b >= 1 && b < batch, "{case}");
        layout::check_fit(&stats, cell, b, device, opts).unwrap_or_else(|e| panic!("{case}: suggested batch {b} is refused: {e}"));
        assert!(r.to_string().contains(&format!("batch <= {b}")), "{case}");
    }
    if let Some(n) = r.fitting_row_nnz.filter(|&n| n > 0) {
        assert!(n < row_nnz, "{case}");
        let fewer = RowStats::uniform(cell, hidden, n);
        layout::check_fit(&fewer, cell, batch, device, opts).unwrap_or_else(|e| panic!("{case}: suggested {n} nonzeros per row are refused: {e}"));
    }
    if let PlanError::SharedMemory { .. } | PlanError::DoesNotFit { .. } = r.error {
        if r.fitting_batch.is_none() && batch > 1 {
            // "No batch fits": batch 1 is refused too.
            assert!(layout::check_fit(&stats, cell, 1, device, opts).is_err(), "{case}: batch 1 fits but was not suggested");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Every suggestion of a refusal fits when it is planned, on both presets, with and without
    /// two CTAs per SM.
    #[test]
    fn every_suggestion_replans_and_fits(
        cell in 0usize..4, hidden in 1usize..24_000, density in 0.0f64..0.6, batch in 1usize..300,
        a100 in any::<bool>(), two_per_sm in any::<bool>(),
    ) {
        let device = if a100 { DeviceInfo::a100() } else { DeviceInfo::h200() };
        let opts = PlanOptions { ctas_per_sm: two_per_sm.then_some(2), ..PlanOptions::default() };
        let row_nnz = ((density * hidden as f64).round() as usize).min(hidden);
        suggestions_fit(CELLS[cell], hidden, row_nnz, batch, &device, &opts);
    }
}

/// The cases that used to take minutes (or abort) are refused from their sizes at once.
#[test]
fn size_refusals_are_immediate() {
    let h200 = DeviceInfo::h200();
    let a100 = DeviceInfo::a100();
    let opts = PlanOptions::default();
    let cases: [(Cell, usize, f64, usize, &DeviceInfo, &str); 5] = [
        (Cell::RnnTanh, 1_000_000, 1e-4, 4, &h200, "exceeds the largest supported, 65535"),
        (Cell::RnnTanh, 100_000, 0.01, 4, &h200, "exceeds the largest supported"),
        (Cell::Lstm, 20_000, 0.1, 4, &h200, "does not fit on the NVIDIA H200"),
        (Cell::Lstm, 20_000, 0.01, 4, &a100, "no batch size fits"),
        (Cell::Gru, 9632, 0.5, 64, &h200, "no batch size fits"),
    ];
    for (cell, hidden, density, batch, device, want) in cases {
        let t = Instant::now();
        let row_nnz = (density * hidden as f64).round() as usize;
        let r = advice::precheck(cell, hidden, row_nnz, batch, device, &opts).expect("refused");
        assert!(t.elapsed() < Duration::from_secs(1), "{cell:?} H={hidden}: {:?}", t.elapsed());
        let text = r.to_string();
        assert!(text.contains(want), "{cell:?} H={hidden} d={density}: {text}");
        no_sentinel(&text);
    }
    // A layer that fits is not refused, and unknown row lengths refuse only by sizes.
    assert!(advice::precheck(Cell::RnnTanh, 2304, 691, 4, &h200, &opts).is_none());
    assert!(advice::precheck(Cell::Lstm, 20_000, 0, 4, &h200, &opts).is_none());
    assert!(advice::precheck(Cell::Lstm, 20_000, 0, 4, &a100, &opts).is_some());
    assert!(matches!(advice::check_hidden(0), Err(PlanError::EmptyHidden)));
    assert!(matches!(advice::check_hidden(65_536), Err(PlanError::HiddenTooLarge { .. })));
    assert!(advice::check_hidden(65_535).is_ok());
}

/// A row longer than any launch shape holds: the refusal names the row, not a register count the
/// planner could not compute.
#[test]
fn a_need_that_cannot_be_computed_is_not_printed() {
    let h200 = DeviceInfo::h200();
    for (cell, hidden, row_nnz, batch) in [(Cell::RnnTanh, 40_000, 40_000, 1), (Cell::Lstm, 8192, 8192, 1), (Cell::Gru, 30_000, 20_000, 1)] {
        let stats = RowStats::uniform(cell, hidden, row_nnz);
        if let Some(r) = Refusal::check(&stats, cell, batch, &h200, &PlanOptions::default()) {
            no_sentinel(&r.to_string());
        }
    }
}
