//! How far [`random_recurrent`]'s power-iteration estimate of a block's largest singular value
//! ([`RADIUS_POWER_ITERATIONS`] steps) is from a long run (400 steps), over hidden sizes and
//! densities; the ratios justify [`sprnn::sparse::RADIUS_MARGIN`].
//!
//! `cargo run --release -p sprnn --example power_iteration_convergence`

use sprnn::sparse::{random_recurrent, RADIUS_POWER_ITERATIONS};

fn main() {
    for &h in &[64usize, 256, 1152, 2304] {
        for &d in &[0.01, 0.1, 0.3, 0.5] {
            let m = random_recurrent(h as u64, h, h, d, 1.0).unwrap();
            let short = m.largest_singular_value_estimate(RADIUS_POWER_ITERATIONS);
            let long = m.largest_singular_value_estimate(400);
            println!("H={h} d={d}: {} steps {short:.5}, 400 steps {long:.5}, ratio {:.5}", RADIUS_POWER_ITERATIONS, long / short);
        }
    }
}
