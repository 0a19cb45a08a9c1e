//! How long [`random_recurrent`] takes for the largest layer the kernel format indexes (an LSTM's
//! `4·H × H` matrix at H = 5760, d = 0.5), and how long one gate block's power iteration takes.
//!
//! `cargo run --release -p sprnn --example random_recurrent_timing`

use sprnn::sparse::{random_recurrent, RADIUS_POWER_ITERATIONS};

fn main() {
    let t = std::time::Instant::now();
    let m = random_recurrent(7, 4 * 5760, 5760, 0.5, 0.9).unwrap();
    println!("H=5760 G=4 d=0.5: {} nonzeros in {:.2?}", m.nnz(), t.elapsed());
    let t = std::time::Instant::now();
    let b = m.row_block(0, 5760);
    let _ = b.largest_singular_value_estimate(RADIUS_POWER_ITERATIONS);
    println!("one block's power iteration: {:.2?}", t.elapsed());
}
