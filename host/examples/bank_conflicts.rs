//! Measures the bank conflicts of the naive and the bank-aware weight order (the figures in the
//! `sprnn::layout` docs) and times the planner on a large layer.
//!
//! `cargo run --release -p sprnn --example bank_conflicts`

use std::time::Instant;

use sprnn::layout::{layout_with, plan, synthetic, Cell, DeviceInfo, Geometry, PlanOptions, WeightOrder};

fn main() {
    let h200 = DeviceInfo::h200();
    let hidden = 1152;
    // The whole layer, in the launch shape the H200 plan chooses at B = 4, for every B.
    let layers: [(&str, sprnn::Csr); 5] = [
        ("uniform d=0.1", synthetic::uniform(hidden, hidden, 0.1, 1)),
        ("uniform d=0.3", synthetic::uniform(hidden, hidden, 0.3, 2)),
        ("block 16x16 d=0.1", synthetic::block_sparse(hidden, hidden, 0.1, 16, 3)),
        ("block 4x4 d=0.3", synthetic::block_sparse(hidden, hidden, 0.3, 4, 4)),
        ("skewed d=0.1", synthetic::skewed(hidden, hidden, 0.1, 5)),
    ];
    println!("| layer | B | TPR x N | naive mean | naive max | bank-aware mean | bank-aware max | ideal |");
    println!("| --- | --- | --- | --- | --- | --- | --- | --- |");
    for (name, w) in &layers {
        for batch in [1, 4, 16, 64] {
            let full = match plan(w, Cell::RnnTanh, 4, &h200, &PlanOptions::default()) {
                Ok(p) => p.geometry(),
                Err(e) => {
                    println!("| {name} | {batch} | {e} |");
                    continue;
                }
            };
            let sub = full;
            let run = |order| layout_with(w, Cell::RnnTanh, batch, &sub, order).expect("layout");
            let (naive, aware) = (run(WeightOrder::Naive), run(WeightOrder::BankAware));
            println!(
                "| {name} | {batch} | {} x {} | {:.2} | {} | {:.2} | {} | {} |",
                sub.threads_per_row,
                sub.list_len,
                naive.bank().mean(),
                naive.bank().max,
                aware.bank().mean(),
                aware.bank().max,
                aware.bank().ideal
            );
        }
    }

    // Planner speed on ~40 M nonzeros (LSTM, H = 5760, d = 0.3). It does not fit the H200, so
    // time both the refusal and a layout of the same layer with an oversized CTA shape.
    let t = Instant::now();
    let w = synthetic::uniform(4 * 5760, 5760, 0.3, 9);
    println!("\ngenerated {} nonzeros in {:.1?}", w.nnz(), t.elapsed());
    let t = Instant::now();
    let r = plan(&w, Cell::Lstm, 4, &h200, &PlanOptions::default());
    println!("plan: {:?} in {:.1?}", r.as_ref().map(|p| p.grid()).map_err(|e| e.to_string()), t.elapsed());
    let max_row = (0..w.rows()).map(|r| w.row_nnz(r)).max().unwrap_or(0);
    let n = [8, 16, 24, 32, 48, 64, 96, 128].into_iter().find(|&n| 32 * n >= max_row).expect("row fits 32x128");
    let g = Geometry { grid: 128, units_per_cta: 45, threads_per_cta: 45 * 4 * 32, threads_per_row: 32, list_len: n, shared_words: 0, gated_kernel: false };
    let t = Instant::now();
    let p = layout_with(&w, Cell::Lstm, 4, &g, WeightOrder::BankAware).expect("layout");
    println!(
        "layout_with (128 CTAs x {} threads, N = {n}): {} words in {:.1?}, wavefronts mean {:.3} (naive {:.3})",
        g.threads_per_cta,
        p.weights().len(),
        t.elapsed(),
        p.bank().mean(),
        p.bank_naive().mean()
    );
}

