//! `sprnn plan`: the capacity planner's answer for one layer, batch size and device.

use clap::{Args, ValueEnum};
use serde_json::json;
use sprnn::advice::{self, Refusal};
use sprnn::layout::{self, DeviceInfo, ExecMode, KernelKind, Plan, PlanError, PlanOptions, Products, RowStats, WeightOrder};
use sprnn::model::{choose_schedule, half_device, DirectionSchedule, ScheduleChoice};
use sprnn::Gpu;

use crate::layer::{self, LayerSource};
use crate::{progress, CliResult, Failure, EXIT_DOES_NOT_FIT};

/// Which device to plan for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum DeviceArg {
    /// The NVIDIA H200 preset (sm_90, 132 SMs).
    H200,
    /// The NVIDIA A100 preset (sm_80, 108 SMs).
    A100,
    /// The CUDA device 0 of this machine, with the registers its driver gave each kernel.
    Gpu,
}

/// Order of the nonzeros in each thread's list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OrderArg {
    /// Greedy bank-conflict avoidance (default).
    BankAware,
    /// CSR order.
    Naive,
}

/// Element type of the hidden state in shared memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum HiddenArg {
    /// fp16: half the shared memory, converted at every use.
    F16,
    /// f32: converted once per step.
    F32,
}

/// The arithmetic of the sparse product.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ProductsArg {
    /// fp16 FMAs over groups of eight nonzeros, the groups' sums added in f32.
    F16,
    /// Every product and sum in f32.
    F32,
}

/// The kernel a plan runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum KernelArg {
    /// Packed nonzeros in registers.
    Sparse,
    /// Dense fp16 tensor-core fragments in registers.
    Dense,
}

/// How the layer's CTAs exchange the hidden state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ModeArg {
    /// Every SM, the exchange through global memory (L2).
    Grid,
    /// One thread-block cluster of 2-16 CTAs (sm_90), the exchange in shared memory; with
    /// --ctas, the cluster size.
    Cluster,
}

impl From<ModeArg> for ExecMode {
    fn from(m: ModeArg) -> ExecMode {
        match m {
            ModeArg::Grid => ExecMode::Grid,
            ModeArg::Cluster => ExecMode::Cluster,
        }
    }
}

/// How the two directions of a bidirectional layer run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum DirectionsArg {
    /// The cost model's choice: at once where the planner's estimates favour it.
    Auto,
    /// One after the other, each direction on the whole GPU.
    InTurn,
    /// Both at once on two streams (each on half the SMs where the whole-GPU plans do not fit
    /// side by side).
    AtOnce,
}

impl From<DirectionsArg> for DirectionSchedule {
    fn from(d: DirectionsArg) -> DirectionSchedule {
        match d {
            DirectionsArg::Auto => DirectionSchedule::Auto,
            DirectionsArg::InTurn => DirectionSchedule::Sequential,
            DirectionsArg::AtOnce => DirectionSchedule::Concurrent,
        }
    }
}

/// Arguments of `sprnn plan`.
#[derive(Args, Debug)]
pub struct PlanArgs {
    #[command(flatten)]
    pub layer: LayerSource,
    /// Batch size B.
    #[arg(long, default_value_t = 4)]
    pub batch: usize,
    /// Device to plan for.
    #[arg(long, value_enum, default_value = "h200")]
    pub device: DeviceArg,
    /// Force the number of CTAs.
    #[arg(long)]
    pub ctas: Option<usize>,
    /// Force threads per row (1, 2, 4, 8, 16 or 32).
    #[arg(long)]
    pub threads_per_row: Option<usize>,
    /// Force the list length N (words per thread in registers; alone, it keeps every word in
    /// registers).
    #[arg(long)]
    pub list_len: Option<usize>,
    /// Force the words per thread in shared memory M (a multiple of 8; 0: registers only).
    #[arg(long)]
    pub shared_words: Option<usize>,
    /// CTAs resident per SM.
    #[arg(long)]
    pub ctas_per_sm: Option<usize>,
    /// Order of the nonzeros in the lists.
    #[arg(long, value_enum, default_value = "bank-aware")]
    pub order: OrderArg,
    /// Hidden state in shared memory: f32 or fp16 (default: fp16).
    #[arg(long, value_enum)]
    pub hidden_state: Option<HiddenArg>,
    /// Arithmetic of the sparse product: f16 group sums or f32 (default: f16 for tanh, GRU and
    /// LSTM with the fp16 hidden state, else f32).
    #[arg(long, value_enum)]
    pub products: Option<ProductsArg>,
    /// Kernel: sparse lists or the dense tensor-core slab (default: sparse; dense where only it
    /// fits).
    #[arg(long, value_enum)]
    pub kernel: Option<KernelArg>,
    /// Execution mode: grid-wide or cluster-resident (default: the planner's choice, shown with
    /// its reason).
    #[arg(long, value_enum)]
    pub mode: Option<ModeArg>,
    /// Plan a --random layer as one of a bidirectional model (its reverse direction another
    /// random layer of the same shape, seed + 1), to see how the two directions are scheduled.
    /// A layer of a bidirectional --weights file is planned so without it.
    #[arg(long)]
    pub bidirectional: bool,
    /// How the two directions of a bidirectional layer run (default: the cost model's choice,
    /// shown with its reason); at-once plans each direction on half the SMs where needed.
    #[arg(long, value_enum, default_value = "auto")]
    pub directions: DirectionsArg,
    /// Machine-readable output (one JSON object).
    #[arg(long)]
    pub json: bool,
}

/// Registers per SM a plan uses (allocation granularity included).
fn registers_per_sm(p: &Plan) -> usize {
    // The planner's own count (allocation unit and the four schedulers' warp split included).
    layout::registers_per_sm(p.threads_per_cta(), p.ctas_per_sm(), p.registers_per_thread() as usize)
}

fn plan_json(p: &Plan, d: &DeviceInfo) -> serde_json::Value {
    let (min, max) = nnz_range(p);
    json!({
        "mode": p.mode().name(),
        "cluster_size": p.cluster_size(),
        "mode_reason": p.mode_reason(),
        "grid": p.grid(),
        "ctas_per_sm": p.ctas_per_sm(),
        "threads_per_cta": p.threads_per_cta(),
        "threads_per_row": p.threads_per_row(),
        "units_per_cta": p.units_per_cta(),
        "list_len": p.list_len(),
        "shared_words": p.shared_words(),
        "words_per_thread": p.words_per_thread(),
        "batch_limit": p.batch_limit(),
        "batch_tile": p.batch_tile(),
        "kernel": if p.dense().is_some() { "dense" } else { "sparse" },
        "dense_m_tiles": p.dense().map(|s| s.m_tiles),
        "dense_k_tiles_per_warp": p.dense().map(|s| s.k_tiles_per_warp),
        "hidden_state": if p.hidden_f32() { "f32" } else { "f16" },
        "products": match p.products() {
            Products::F16 => "f16",
            Products::F32 => "f32",
        },
        "columns": p.columns(),
        "slots_per_cta": p.slots_per_cta(),
        "smem_bytes": p.smem_bytes(),
        "smem_bytes_available": d.shared_per_cta(p.ctas_per_sm()),
        "registers_per_thread": p.registers_per_thread(),
        "registers_per_sm": registers_per_sm(p),
        "registers_per_sm_available": d.registers_per_sm,
        "cta_nnz_min": min,
        "cta_nnz_max": max,
        "order": match p.order() {
            WeightOrder::BankAware => "bank-aware",
            WeightOrder::Naive => "naive",
        },
        "bank": bank_json(&p.bank()),
        "bank_naive": bank_json(&p.bank_naive()),
    })
}

/// How a bidirectional layer's two directions run, as JSON.
fn schedule_json(c: &ScheduleChoice) -> serde_json::Value {
    json!({
        "schedule": if c.concurrent { "at-once" } else { "in-turn" },
        "half_sms": c.half_sms,
        "in_turn_us_per_step": c.in_turn_us,
        "at_once_us_per_step": c.at_once_us,
        "reason": c.reason,
    })
}

/// How a bidirectional layer's two directions run, as `plan`'s text lines (the plan below is
/// then each direction's, on half the SMs where they run at once on halves).
fn schedule_text(c: &ScheduleChoice, device: &DeviceInfo) -> String {
    let how = match (c.concurrent, c.half_sms) {
        (false, _) => "in turn, one after the other, each on the whole GPU".to_string(),
        (true, false) => "at once on two streams, as planned for the whole GPU".to_string(),
        (true, true) => format!("at once on two streams, each planned for half the SMs ({} of {})", half_device(device).sm_count, device.sm_count),
    };
    format!("directions:         {how}\nwhy:                {}", c.reason)
}

fn bank_json(b: &layout::BankStats) -> serde_json::Value {
    json!({ "mean_wavefronts": b.mean(), "max_wavefronts": b.max, "ideal": b.ideal, "instructions": b.instructions })
}

fn nnz_range(p: &Plan) -> (usize, usize) {
    (p.cta_nnz().iter().copied().min().unwrap_or(0), p.cta_nnz().iter().copied().max().unwrap_or(0))
}

/// The refusal as JSON: its message, its kind and the checked suggestions (no sentinel values:
/// a need the planner could not compute is `null`).
fn error_json(r: &Refusal) -> serde_json::Value {
    let mut v = json!({ "error": r.to_string() });
    let kind = match &r.error {
        PlanError::DoesNotFit { need_regs, have_regs, .. } => {
            v["need_regs"] = if *need_regs == usize::MAX { serde_json::Value::Null } else { json!(need_regs) };
            v["have_regs"] = json!(have_regs);
            v["fit_density"] = json!(r.fitting_density());
            v["fit_row_nnz"] = json!(r.fitting_row_nnz);
            v["fit_batch"] = json!(r.fitting_batch);
            "does-not-fit"
        }
        PlanError::SharedMemory { need_bytes, have_bytes, .. } => {
            v["need_bytes"] = json!(need_bytes);
            v["have_bytes"] = json!(have_bytes);
            v["max_batch"] = json!(r.fitting_batch.unwrap_or(0));
            v["fit_batch"] = json!(r.fitting_batch);
            "shared-memory"
        }
        PlanError::Shape { .. } => "shape",
        PlanError::EmptyHidden => "empty-hidden",
        PlanError::HiddenTooLarge { .. } => "hidden-too-large",
        PlanError::ZeroBatch => "zero-batch",
        PlanError::BadOption { .. } => "bad-option",
        PlanError::NotCoResident { .. } => "not-co-resident",
        PlanError::ValueOutOfRange { .. } => "value-out-of-range",
        PlanError::RowTooLong { .. } => "row-too-long",
        PlanError::ClusterMode { .. } => "cluster-mode",
        _ => "other",
    };
    v["kind"] = json!(kind);
    v
}

fn print_plan(p: &Plan, d: &DeviceInfo) {
    let (min, max) = nnz_range(p);
    let mean = p.nnz() as f64 / p.grid().max(1) as f64;
    println!("fits:               yes");
    match p.cluster_size() {
        Some(c) => println!("mode:               cluster-resident, one cluster of {c} CTAs (exchange in shared memory)"),
        None => println!("mode:               grid-wide (exchange through L2)"),
    }
    println!("why this mode:      {}", p.mode_reason());
    println!("grid:               {} CTAs ({} per SM, {} hidden units each)", p.grid(), p.ctas_per_sm(), p.units_per_cta());
    println!("threads:            {} per CTA, {} per row", p.threads_per_cta(), p.threads_per_row());
    if p.shared_words() > 0 {
        println!(
            "list length:        {} words per thread: {} in registers, {} in shared memory ({} bytes per CTA)",
            p.words_per_thread(),
            p.list_len(),
            p.shared_words(),
            p.shared_words() * p.threads_per_cta() * 4
        );
    } else {
        println!("list length:        {} words per thread, all in registers", p.list_len());
    }
    match p.dense() {
        Some(s) => println!(
            "kernel:             dense tensor-core slab{}: {} m-tiles of 16 rows{}, {} k-tiles of 16 columns per warp, {} warps{}",
            if s.half { " (RNN-only half variant)" } else { "" },
            s.m_tiles,
            if s.half { " (the last of at most 8 rows, multiplied transposed)" } else { "" },
            s.k_tiles_per_warp,
            s.warps,
            if s.half { ", each gathering its own columns" } else { "" }
        ),
        None => {
            let cell = match (p.cell().gates(), p.gated_kernel()) {
                (1, _) => "cell finished in the row reduction",
                (_, true) => "gated family: a unit's gate rows share a warp, cell finished in the row reduction",
                (_, false) => "separate cell phase after a barrier (RNN kernel family)",
            };
            println!("kernel:             sparse lists, batch tile {}, {cell}", p.batch_tile())
        }
    }
    println!(
        "hidden state:       {} in shared memory, {} columns ({} per CTA)",
        if p.hidden_f32() { "f32" } else { "fp16" },
        p.columns(),
        p.slots_per_cta()
    );
    println!(
        "products:           {}",
        match p.products() {
            Products::F16 => "fp16 FMAs over groups of 8 nonzeros, group sums added in f32",
            Products::F32 => "every product and sum in f32",
        }
    );
    println!("shared memory:      {} bytes per CTA (of {})", p.smem_bytes(), d.shared_per_cta(p.ctas_per_sm()));
    if p.dense().is_none() {
        println!(
            "batch limit:        {} (the largest batch whose hidden state fits beside {})",
            p.batch_limit(),
            if p.shared_words() > 0 { "the weights in shared memory" } else { "the kernel's other parts" }
        );
    }
    println!(
        "registers:          {} per thread, {} per SM (of {})",
        p.registers_per_thread(),
        registers_per_sm(p),
        d.registers_per_sm
    );
    println!("nonzeros per CTA:   min {min}, max {max}, mean {mean:.0}");
    println!("bank conflicts:     wavefronts per warp instruction of the h loads (ideal {}):", p.bank().ideal);
    println!("  bank-aware order: mean {:.2}, max {}", p.bank().mean(), p.bank().max);
    println!("  naive order:      mean {:.2}, max {}", p.bank_naive().mean(), p.bank_naive().max);
}

/// Runs `sprnn plan`.
pub fn main(args: &PlanArgs) -> CliResult {
    let device = match args.device {
        DeviceArg::H200 => DeviceInfo::h200(),
        DeviceArg::A100 => DeviceInfo::a100(),
        DeviceArg::Gpu => {
            let gpu = Gpu::new(0).map_err(|e| {
                let mut f = Failure::from(e);
                f.message.push_str("; plan for a preset with --device h200 or --device a100");
                f
            })?;
            gpu.info().clone()
        }
    };
    let opts = PlanOptions {
        ctas: args.ctas,
        threads_per_row: args.threads_per_row,
        list_len: args.list_len,
        ctas_per_sm: args.ctas_per_sm,
        order: match args.order {
            OrderArg::BankAware => WeightOrder::BankAware,
            OrderArg::Naive => WeightOrder::Naive,
        },
        hidden_f32: args.hidden_state.map(|h| h == HiddenArg::F32),
        kernel: args.kernel.map(|k| match k {
            KernelArg::Sparse => KernelKind::Sparse,
            KernelArg::Dense => KernelKind::Dense,
        }),
        products: args.products.map(|p| match p {
            ProductsArg::F16 => Products::F16,
            ProductsArg::F32 => Products::F32,
        }),
        mode: args.mode.map(ExecMode::from),
        shared_words: args.shared_words,
    };
    let cell = sprnn::Cell::from(args.layer.cell);
    // What sizes alone decide, before any weight is generated or loaded.
    if let Some(hidden) = layer::peek_hidden(&args.layer) {
        let row_nnz = layer::random_row_nnz(&args.layer).unwrap_or(0);
        if let Some(refusal) = advice::precheck(cell, hidden, row_nnz, args.batch, &device, &opts) {
            let summary = Summary {
                cell: cell.name(),
                source: layer::describe(&args.layer),
                hidden,
                nnz: args.layer.random.then(|| cell.gates() * hidden * row_nnz),
                max_row_nnz: args.layer.random.then_some(row_nnz),
            };
            return report(args, &summary, &device, None, Err(refusal));
        }
    }
    let mut l = layer::load(&args.layer)?;
    if args.bidirectional && l.partner.is_none() {
        if !args.layer.random {
            return Err(Failure::new("--bidirectional makes a --random layer one of a bidirectional model; a --weights file says itself whether it is bidirectional"));
        }
        let hidden = l.hidden();
        let (w, _) = progress::spin("generating the reverse direction", || sprnn::timing::random_layer(args.layer.seed + 1, l.cell, hidden, args.layer.density))?;
        l.partner = Some(w);
    }
    // A bidirectional layer: how its two directions run decides the device each is planned for.
    let schedule = match &l.partner {
        Some(partner) => {
            let stats = [RowStats::of(&l.w_hh), RowStats::of(partner)];
            match choose_schedule([&stats[0], &stats[1]], l.cell, args.batch, &device, &opts, args.directions.into()) {
                Ok(c) => Some(c),
                Err(e) => {
                    let refusal = Refusal::explain(e, &stats[0], l.cell, args.batch, &device, &opts);
                    let s = l.w_hh.stats();
                    let summary = Summary { cell: l.cell.name(), source: l.source.clone(), hidden: l.hidden(), nnz: Some(s.nnz), max_row_nnz: Some(s.max_row_nnz) };
                    return report(args, &summary, &device, None, Err(refusal));
                }
            }
        }
        None => None,
    };
    let planned_on = if schedule.as_ref().is_some_and(|c| c.half_sms) { half_device(&device) } else { device.clone() };
    let result = progress::spin("planning", || layout::plan(&l.w_hh, l.cell, args.batch, &planned_on, &opts));
    let result = result.map_err(|e| Refusal::explain(e, &RowStats::of(&l.w_hh), l.cell, args.batch, &device, &opts));
    let s = l.w_hh.stats();
    let summary = Summary { cell: l.cell.name(), source: l.source.clone(), hidden: l.hidden(), nnz: Some(s.nnz), max_row_nnz: Some(s.max_row_nnz) };
    report(args, &summary, &device, schedule.as_ref(), result)
}

/// The layer as `plan` describes it (from its sizes when it was refused before it existed).
struct Summary {
    cell: &'static str,
    source: String,
    hidden: usize,
    nnz: Option<usize>,
    max_row_nnz: Option<usize>,
}

impl Summary {
    fn density(&self, gates: usize) -> Option<f64> {
        self.nnz.map(|n| n as f64 / (gates * self.hidden * self.hidden).max(1) as f64)
    }
}

/// Prints the plan or the refusal (text or JSON) and gives the exit status.
fn report(args: &PlanArgs, l: &Summary, device: &DeviceInfo, schedule: Option<&ScheduleChoice>, result: Result<Plan, Refusal>) -> CliResult {
    let gates = sprnn::Cell::from(args.layer.cell).gates();
    if args.json {
        let mut v = json!({
            "layer": {
                "source": l.source,
                "cell": l.cell,
                "hidden": l.hidden,
                "nnz": l.nnz,
                "density": l.density(gates),
                "max_row_nnz": l.max_row_nnz,
            },
            "device": device.name,
            "batch": args.batch,
            "fits": result.is_ok(),
        });
        if let Some(c) = schedule {
            v["directions"] = schedule_json(c);
        }
        match &result {
            Ok(p) => v["plan"] = plan_json(p, device),
            Err(e) => v["refusal"] = error_json(e),
        }
        println!("{}", serde_json::to_string_pretty(&v).expect("JSON"));
    } else {
        let rows = match (l.nnz, l.max_row_nnz, l.density(gates)) {
            (Some(nnz), Some(longest), Some(d)) => format!(", {nnz} nonzeros (density {d:.4}), longest row {longest}"),
            _ => String::new(),
        };
        println!("layer:              {} ({}), H = {}{rows}", l.cell, l.source, l.hidden);
        println!("device:             {} ({} SMs), batch {}", device.name, device.sm_count, args.batch);
        if let Some(c) = schedule {
            println!("{}", schedule_text(c, device));
        }
        match &result {
            Ok(p) => print_plan(p, device),
            Err(e) => {
                println!("fits:               no");
                println!("why:                {e}");
            }
        }
    }
    match result {
        Ok(_) => Ok(()),
        // The reason is on stdout (text or JSON) already.
        Err(_) => Err(Failure { code: EXIT_DOES_NOT_FIT, message: "the planner refused the layer (reason above)".into() }),
    }
}
