//! The planner's decisions for the H200 over hidden sizes, cells, densities and batch sizes
//! (random unstructured pruning).
//!
//! `cargo run --release -p sprnn --example plan_table`

use sprnn::layout::{plan, synthetic, Cell, DeviceInfo, PlanError, PlanOptions};

fn main() {
    let h200 = DeviceInfo::h200();
    println!("| H | cell | d | B=1 | B=4 | B=16 | B=64 |");
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    for hidden in [256, 1152, 2304, 4608, 5760] {
        for cell in [Cell::RnnTanh, Cell::Gru, Cell::Lstm] {
            for density in [0.01, 0.1, 0.3, 0.5] {
                let w = synthetic::uniform(cell.gates() * hidden, hidden, density, hidden as u64);
                let cells: Vec<String> = [1, 4, 16, 64]
                    .into_iter()
                    .map(|b| match plan(&w, cell, b, &h200, &PlanOptions::default()) {
                        Ok(p) => format!("{}x{} TPR{} N{}", p.grid(), p.threads_per_cta(), p.threads_per_row(), p.list_len()),
                        Err(PlanError::DoesNotFit { need_regs, fit_density, .. }) => {
                            format!("no: regs {}K, d<={fit_density:.3}", need_regs / 1024)
                        }
                        Err(PlanError::SharedMemory { max_batch, .. }) => format!("no: smem, B<={max_batch}"),
                        Err(e) => format!("error: {e}"),
                    })
                    .collect();
                let name = match cell {
                    Cell::Lstm => "LSTM",
                    Cell::Gru => "GRU",
                    _ => "RNN",
                };
                println!("| {hidden} | {name} | {density} | {} |", cells.join(" | "));
            }
        }
    }
}
