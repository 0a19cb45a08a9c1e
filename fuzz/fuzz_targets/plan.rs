//! Fuzzes the layout planner: `sprnn::layout::plan` on small arbitrary layers must return a
//! plan that holds every nonzero exactly once, or a typed `PlanError`, never panic.
//!
//! The input is decoded into: a cell, H in 1..=48 (sometimes a row count that is not G·H), the
//! rows of `W_hh` built through the validated `Csr::new` (columns from bitmaps, values sometimes
//! beyond the fp16 range), a batch (mostly 1..=64, sometimes absurd: 0, 2^32, usize::MAX), every
//! `PlanOptions` field (valid and invalid values, both execution modes) and a device: the H200 or A100 preset, or the
//! H200 cut down (fewer SMs, registers, shared memory) so small layers reach the "does not fit"
//! and "shared memory" refusals. Sizes are capped so one run takes well under a millisecond.
#![no_main]

mod bytes;

use libfuzzer_sys::fuzz_target;
use sprnn::layout::{plan, DeviceInfo, ExecMode, KernelKind, PlanOptions, Products, WeightOrder};
use sprnn::{Cell, Csr};
use sprnn_kernels::format::NO_UNIT;

use bytes::Bytes;

const CELLS: [Cell; 4] = [Cell::RnnRelu, Cell::RnnTanh, Cell::Gru, Cell::Lstm];

impl Bytes<'_> {
    fn pick<T: Copy>(&mut self, from: &[T]) -> T {
        from[self.u8() as usize % from.len()]
    }

    /// `None` half the time, else a value from `from`.
    fn option<T: Copy>(&mut self, from: &[T]) -> Option<T> {
        if self.u8() & 1 == 0 { None } else { Some(self.pick(from)) }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut b = Bytes(data);
    let cell = b.pick(&CELLS);
    let hidden = 1 + b.u8() as usize % 48;
    let rows = match b.u8() % 16 {
        0 => cell.gates() * hidden + 1,
        1 => (cell.gates() * hidden).saturating_sub(1),
        _ => cell.gates() * hidden,
    };
    let big_values = b.u8() % 8 == 0;
    let (mut row_ptr, mut cols, mut vals) = (vec![0usize], Vec::new(), Vec::new());
    for _ in 0..rows {
        // Density per row from one byte; columns where a fresh byte passes it.
        let density = b.u8();
        for c in 0..hidden {
            if b.u8() < density {
                cols.push(c as u32);
                let v = (b.u8() as i8) as f32 / 16.0;
                vals.push(if big_values && v > 7.0 { 70000.0 } else { v });
            }
        }
        row_ptr.push(cols.len());
    }
    let w = Csr::new(rows, hidden, row_ptr, cols, vals).expect("a well-formed CSR");
    let batch = match b.u8() % 16 {
        0 => b.pick(&[0, 65, 1000, 1 << 20, 1 << 32, usize::MAX]),
        _ => 1 + b.u8() as usize % 64,
    };
    let opts = PlanOptions {
        ctas: b.option(&[0, 1, 2, 3, 7, 16, 48, 132, 133, 300]),
        threads_per_row: b.option(&[0, 1, 2, 3, 4, 8, 16, 32, 64]),
        list_len: b.option(&[0, 8, 10, 16, 24, 32, 48, 64, 96, 128, 256]),
        ctas_per_sm: b.option(&[0, 1, 2, 4, 32, 64, 65, usize::MAX]),
        order: if b.u8() & 1 == 0 { WeightOrder::BankAware } else { WeightOrder::Naive },
        hidden_f32: [None, Some(false), Some(true)][b.u8() as usize % 3],
        kernel: [None, Some(KernelKind::Sparse), Some(KernelKind::Dense)][b.u8() as usize % 3],
        products: [None, Some(Products::F16), Some(Products::F32)][b.u8() as usize % 3],
        mode: [None, Some(ExecMode::Grid), Some(ExecMode::Cluster)][b.u8() as usize % 3],
        shared_words: b.option(&[0, 4, 8, 16, 64, 65536, usize::MAX]),
    };
    let device = match b.u8() % 4 {
        0 => DeviceInfo::a100(),
        1 => {
            let mut d = DeviceInfo::h200();
            d.sm_count = 1 + b.u8() as usize % 132;
            d.registers_per_sm = b.pick(&[8192, 16384, 32768, 65536]);
            d.shared_per_sm = 2048 + (b.u8() as usize) * 900;
            d.shared_per_block_optin = d.shared_per_sm.saturating_sub(1024);
            d
        }
        _ => DeviceInfo::h200(),
    };
    let Ok(p) = plan(&w, cell, batch, &device, &opts) else { return };
    // fp16 products only with the fp16 state on the sparse kernel, and as asked.
    if let Some(asked) = opts.products {
        assert_eq!(p.products(), asked);
    }
    assert!(p.products() == Products::F32 || (!p.hidden_f32() && p.dense().is_none()), "fp16 products on {:?}", p.dense());
    // What the plan promises.
    let cps = p.ctas_per_sm();
    assert!(p.grid() >= 1 && p.grid() <= device.sm_count * cps, "grid {} on {} SMs x {cps}", p.grid(), device.sm_count);
    assert!(p.threads_per_cta() <= device.max_threads_per_block && p.threads_per_cta() % 32 == 0);
    assert!(p.smem_bytes() <= device.shared_per_cta(cps), "{} bytes of shared memory", p.smem_bytes());
    assert_eq!(p.weights().len(), p.words_per_thread() * p.grid() * p.threads_per_cta());
    // Words in shared memory: whole product groups, the fp16 state, the grid mode's sparse kernel.
    if p.shared_words() > 0 {
        assert!(p.shared_words() % 8 == 0 && !p.hidden_f32() && p.dense().is_none() && p.cluster_size().is_none());
        assert!(p.batch_limit() >= batch, "batch limit {} below the batch {batch}", p.batch_limit());
    }
    if let Some(m) = opts.shared_words.filter(|_| p.dense().is_none() && p.cluster_size().is_none()) {
        assert_eq!(p.shared_words(), m);
    }
    assert_eq!(p.units().len(), p.grid() * p.units_per_cta());
    // The cluster mode: one cluster of a supported size is the grid, on sm_90, as asked.
    if let Some(c) = p.cluster_size() {
        assert!(device.compute_capability.0 >= 9 && opts.mode != Some(ExecMode::Grid));
        assert!(sprnn_kernels::format::CLUSTER_SIZES.contains(&c) && p.grid() == c && cps == 1);
        assert_eq!(p.slots_per_cta() * batch % sprnn_kernels::format::VALUES_PER_POLL, 0);
    } else {
        assert_ne!(opts.mode, Some(ExecMode::Cluster), "a forced cluster planned as a grid");
    }
    let mut seen = vec![false; hidden];
    for &u in p.units().iter().filter(|&&u| u != NO_UNIT) {
        assert!(!std::mem::replace(&mut seen[u as usize], true), "unit {u} placed twice");
    }
    assert!(seen.iter().all(|&s| s), "a unit has no CTA");
    if p.dense().is_none() {
        // Packed nonzeros: every word not pointing at the zero column is a nonzero of W.
        let words = p.word_format();
        assert!(words.fits(p.columns()), "the word format locates every column");
        let placed = p.weights().iter().filter(|&&x| words.column(x) as usize != p.columns()).count();
        assert_eq!(placed, w.nnz(), "nonzeros placed vs stored");
    } else {
        // Dense fragments: fp16 pairs, zeros where W has none (a nonzero may round to +0.0).
        let placed = p.weights().iter().map(|&x| (x & 0xFFFF != 0) as usize + (x >> 16 != 0) as usize).sum::<usize>();
        assert!(placed <= w.nnz(), "{placed} fragment values for {} nonzeros", w.nnz());
    }
});
