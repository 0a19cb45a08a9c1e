//! The experiment behind `DEVICE_TOLERANCE` (see `sprnn::reference`'s docs): the CPU reference in
//! f64, f32 and with permuted summation orders against its device-faithful rounding, for every
//! cell over hidden sizes and densities, printed as a Markdown table. Slow (about 3 min on 2
//! cores):
//!
//! `cargo run --release -p sprnn --example tolerance_measurements`
//!
//! `SPRNN_SHAPES="H:T:B,H:T:B"` overrides the shapes, `SPRNN_RADIUS` the bound on every gate
//! block's largest singular value (0.95). `SPRNN_PRODUCTS=f16` measures against
//! `Precision::DeviceFaithfulF16` (fp16 group sums; the permuted runs sum in fp16 groups too),
//! the last column then being `Precision::DeviceFaithful` (f32 products) against it.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sprnn::reference::{compare_steps, forward_u, forward_u_permuted, Precision, Sequences};
use sprnn::sparse::random_recurrent;
use sprnn::Cell;

const CELLS: [Cell; 4] = [Cell::RnnRelu, Cell::RnnTanh, Cell::Gru, Cell::Lstm];

/// Uniform random values in `[-scale, scale)` from their own generator seeded with `seed`.
fn uniform(seed: u64, n: usize, scale: f32) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n).map(|_| rng.gen_range(-scale..scale)).collect()
}

fn main() {
    struct Case {
        cell: Cell,
        hidden: usize,
        density: f64,
        steps: usize,
        batch: usize,
        radius: f64,
    }
    let mut cases = Vec::new();
    let base = match std::env::var("SPRNN_PRODUCTS").as_deref() {
        Ok("f16") => Precision::DeviceFaithfulF16,
        _ => Precision::DeviceFaithful,
    };
    let radius: f64 = std::env::var("SPRNN_RADIUS").ok().and_then(|v| v.parse().ok()).unwrap_or(0.95);
    // SPRNN_SHAPES="H:T:B,H:T:B" overrides the shapes, SPRNN_RADIUS the sigma_max bound.
    let shapes: Vec<(usize, usize, usize)> = match std::env::var("SPRNN_SHAPES") {
        Ok(v) => v
            .split(',')
            .map(|s| {
                let n: Vec<usize> = s.split(':').map(|x| x.trim().parse().expect("SPRNN_SHAPES: H:T:B,...")).collect();
                (n[0], n[1], n[2])
            })
            .collect(),
        Err(_) => vec![(256, 1024, 4), (1152, 1024, 2), (2304, 256, 2)],
    };
    for &(hidden, steps, batch) in &shapes {
        for density in [0.1, 0.3] {
            for cell in CELLS {
                cases.push(Case { cell, hidden, density, steps, batch, radius });
            }
        }
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let rows = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(c) = cases.get(i) else { break };
                let g = c.cell.gates();
                let seed = i as u64 + 1;
                let w = random_recurrent(seed, g * c.hidden, c.hidden, c.density, c.radius).unwrap();
                let b_hh = uniform(seed + 100, g * c.hidden, 0.1);
                let u = uniform(seed + 200, c.steps * c.batch * g * c.hidden, 1.0);
                let h0 = uniform(seed + 300, c.batch * c.hidden, 0.5);
                let run = |p| forward_u(c.cell, &w, &b_hh, Sequences::new(&u, c.steps, c.batch).with_state(Some(&h0), None), p).unwrap().h;
                let df = run(base);
                let f64r = run(Precision::F64);
                let f32r = run(Precision::F32);
                let other = run(if base == Precision::DeviceFaithful { Precision::DeviceFaithfulF16 } else { Precision::DeviceFaithful });
                let perm8 = forward_u_permuted(c.cell, &w, &b_hh, Sequences::new(&u, c.steps, c.batch).with_state(Some(&h0), None), base, (seed + 400, 8)).unwrap().h;
                let perm4 = forward_u_permuted(c.cell, &w, &b_hh, Sequences::new(&u, c.steps, c.batch).with_state(Some(&h0), None), base, (seed + 500, 4)).unwrap().h;
                let cmp = |got: &[f32]| compare_steps(got, &df, c.steps, c.batch, c.hidden);
                let (e64, e32, p8, p4, eo) = (cmp(&f64r), cmp(&f32r), cmp(&perm8), cmp(&perm4), cmp(&other));
                let scale = df.iter().fold(0.0f32, |m, v| m.max(v.abs()));
                let line = format!(
                    "| {:?} | {} | {} | {} | {} | {:.3} | {:.2e} (t={}) | {:.2e} | {:.2e} (t={}) | {:.2e} (t={}) | {:.2e} |",
                    c.cell, c.hidden, c.density, c.steps, c.batch, scale, e64.worst, e64.worst_step, e32.worst,
                    p8.worst, p8.worst_step, p4.worst, p4.worst_step, eo.worst
                );
                println!("{line}");
                rows.lock().unwrap().push((i, line));
            });
        }
    });
    let mut rows = rows.into_inner().unwrap();
    rows.sort();
    println!("radius (sigma_max bound) {radius}, DF = {base:?}");
    println!("| cell | H | d | T | B | max abs h | F64 vs DF | F32 vs DF | permuted 8 lanes vs DF | permuted 4 lanes vs DF | other products vs DF |");
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    for (_, l) in rows {
        println!("{l}");
    }
}
