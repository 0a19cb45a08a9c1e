//! `sprnn-demo`: the main job in one program. Builds a pruned RNN layer (H = 2304, 30% dense,
//! batch 4, T = 256 by default), plans it for the GPU, runs it, checks it against the CPU
//! reference and prints the time per step next to the exchange floor.
//!
//! Without a CUDA device it says so and runs what it can: the planner (for the H200 preset) and
//! the CPU reference.

use clap::Parser;
use sprnn::layer::Input;
use sprnn::layout::{self, DeviceInfo, PlanOptions};
use sprnn::reference::{self, Precision};
use sprnn::{Cell, LayerOptions, SparseRecurrentLayer};
use sprnn_bench::{random_input, random_layer, time_layer};

#[derive(Parser, Debug)]
#[command(about = "Run one sparse persistent recurrent layer and check it against the CPU reference")]
struct Args {
    /// Cell: rnn_relu, rnn_tanh, gru, lstm.
    #[arg(long, default_value = "rnn_tanh")]
    cell: String,
    /// Hidden size.
    #[arg(long, default_value_t = 2304)]
    hidden: usize,
    /// Density of the recurrent matrix.
    #[arg(long, default_value_t = 0.3)]
    density: f64,
    /// Batch size.
    #[arg(long, default_value_t = 4)]
    batch: usize,
    /// Sequence length.
    #[arg(long, default_value_t = 256)]
    steps: usize,
    /// Hidden state in shared memory: `f16` or `f32` (default: the planner's choice, fp16).
    #[arg(long)]
    hidden_state: Option<String>,
    /// Threads per row (default: the planner's choice).
    #[arg(long)]
    threads_per_row: Option<usize>,
    /// Kernel: `sparse` or `dense` (default: the planner's choice).
    #[arg(long)]
    kernel: Option<String>,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let a = Args::parse();
    let cell = Cell::from_name(&a.cell).ok_or_else(|| format!("unknown cell {}", a.cell))?;
    println!("layer: {}, H = {}, density {}, batch {}, T = {}", cell.name(), a.hidden, a.density, a.batch, a.steps);
    let (w, b) = random_layer(1, cell, a.hidden, a.density)?;
    let st = w.stats();
    println!("W_hh: {} x {}, {} nonzeros (density {:.4}, {}..{} per row)", w.rows(), w.cols(), st.nnz, st.density, st.min_row_nnz, st.max_row_nnz);
    let u = random_input(2, a.steps * a.batch * cell.gates() * a.hidden);

    let gpu = sprnn::try_default_gpu()?;
    let Some(gpu) = gpu else {
        println!("no CUDA device: running the planner (H200 preset) and the CPU reference only");
        let mut fits = true;
        match layout::plan(&w, cell, a.batch, &DeviceInfo::h200(), &PlanOptions::default()) {
            Ok(p) => println!(
                "plan for H200: {} CTAs x {} threads, {} threads per row, {} words per thread, {} B shared memory, {} registers",
                p.grid(), p.threads_per_cta(), p.threads_per_row(), p.list_len(), p.smem_bytes(), p.registers_per_thread()
            ),
            Err(e) => {
                println!("plan for H200: {}", sprnn::advice::Refusal::explain(e, &layout::RowStats::of(&w), cell, a.batch, &DeviceInfo::h200(), &PlanOptions::default()));
                fits = false;
            }
        }
        let t = a.steps.min(32);
        let start = std::time::Instant::now();
        let r = reference::forward_u(cell, &w, &b, reference::Sequences::new(&u[..t * a.batch * cell.gates() * a.hidden], t, a.batch), Precision::DeviceFaithful)?;
        let last = &r.h[(t - 1) * a.batch * a.hidden..];
        let norm = last.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
        println!("CPU reference (device-faithful), {t} steps: {:.1} ms, |h_T| = {norm:.4}", start.elapsed().as_secs_f64() * 1e3);
        if !fits {
            eprintln!("sprnn-demo: the layer does not fit on the H200 preset (reason above)");
            std::process::exit(3);
        }
        return Ok(());
    };
    println!("GPU: {} (sm_{}{}), {} SMs, PTX {}", gpu.info().name, gpu.info().compute_capability.0, gpu.info().compute_capability.1, gpu.info().sm_count, gpu.arch());
    let hidden_f32 = match a.hidden_state.as_deref() {
        None => None,
        Some("f16") => Some(false),
        Some("f32") => Some(true),
        Some(other) => return Err(format!("--hidden-state {other}: expected f16 or f32").into()),
    };
    let kernel = match a.kernel.as_deref() {
        None => None,
        Some("sparse") => Some(layout::KernelKind::Sparse),
        Some("dense") => Some(layout::KernelKind::Dense),
        Some(other) => return Err(format!("--kernel {other}: expected sparse or dense").into()),
    };
    let opts = LayerOptions {
        plan: PlanOptions { hidden_f32, threads_per_row: a.threads_per_row, kernel, ..PlanOptions::default() },
        ..LayerOptions::default()
    };
    let mut layer = SparseRecurrentLayer::new(&gpu, cell, &w, &b, a.batch, &opts)?;
    let sprnn::LaunchShape { ctas: grid, threads_per_cta: threads, threads_per_row: tpr, smem_bytes: smem, kernel } = layer.shape();
    println!("plan: {grid} CTAs x {threads} threads, {tpr} threads per row, {smem} B shared memory, kernel {kernel}");
    let out = layer.forward(Input::F32(&u), a.steps, None, None)?;
    let r = reference::forward_u(cell, &w, &b, reference::Sequences::new(&u, a.steps, a.batch), Precision::DeviceFaithful)?;
    let err = reference::compare_steps(&out.h, &r.h, a.steps, a.batch, a.hidden);
    let ok = err.worst <= reference::DEVICE_TOLERANCE;
    println!(
        "check against the CPU reference: worst step error {:.2e} at step {} (tolerance {:.0e}): {}",
        err.worst, err.worst_step, reference::DEVICE_TOLERANCE, if ok { "PASS" } else { "FAIL" }
    );
    let (us, floor) = time_layer(&gpu, &mut layer, a.steps, 20, 3, 3, 9)?;
    println!("time per step: {us:.3} us (exchange floor {floor:.3} us, {:.2}x the floor)", us / floor);
    if !ok {
        std::process::exit(1);
    }
    Ok(())
}
