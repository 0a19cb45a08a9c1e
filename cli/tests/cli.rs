//! The `sprnn` program end to end: each test runs the built binary (`CARGO_BIN_EXE_sprnn`) and
//! checks its exit status and output against the library called directly.
//!
//! CPU tests: `info` without a GPU, `plan` on the presets (random layers and a weights file),
//! `run --reference` round trips, argument errors. GPU tests print "skipped: no CUDA device"
//! and return on a machine without one.

use std::collections::HashMap;
use std::path::Path;
use std::process::Output;
use std::sync::OnceLock;

use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use sprnn::layout::{self, DeviceInfo, PlanOptions};
use sprnn::reference::{self, Precision};
use sprnn::sparse::{Dense, Matrix};
use sprnn::weights::{LayerWeights, ModelWeights, SaveOptions};
use sprnn::Cell;

// The GPU helper of the integration tests (same skip line, same SPRNN_REQUIRE_GPU rule).
#[path = "../../tests/tests/it/common/device.rs"]
mod common;
use common::gpu;

/// Whether this machine has a CUDA device (without the "skipped" notice).
fn has_gpu() -> bool {
    static HAS: OnceLock<bool> = OnceLock::new();
    *HAS.get_or_init(|| matches!(sprnn::try_default_gpu(), Ok(Some(_))))
}

fn sprnn(args: &[&str]) -> Output {
    // `SPRNN_CLI_BIN` points at the binary where the build path does not exist (the GPU bundle).
    let bin = std::env::var("SPRNN_CLI_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_sprnn").to_string());
    std::process::Command::new(bin).args(args).output().expect("the sprnn binary runs")
}

fn text(o: &Output) -> (String, String) {
    (String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned())
}

/// Runs and checks the exit status; returns (stdout, stderr).
fn expect(args: &[&str], code: i32) -> (String, String) {
    let o = sprnn(args);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(code), "sprnn {}\nstdout:\n{out}\nstderr:\n{err}", args.join(" "));
    (out, err)
}

/// Runs a command that needs a GPU on a machine without one: exit status 4 and "no NVIDIA driver"
/// without the driver library, 5 and "no CUDA device" with a driver but no device. Returns stderr.
fn expect_no_gpu(args: &[&str]) -> String {
    let o = sprnn(args);
    let (out, err) = text(&o);
    match o.status.code() {
        Some(4) => assert!(err.contains("sprnn: error: no NVIDIA driver"), "{err}"),
        Some(5) => assert!(err.contains("sprnn: error: no CUDA device"), "{err}"),
        other => panic!("sprnn {}: exit status {other:?}, expected 4 or 5\nstdout:\n{out}\nstderr:\n{err}", args.join(" ")),
    }
    err
}

/// Whether `s` starts with what sprnn says when there is no GPU to use.
fn says_no_gpu(s: &str) -> bool {
    s.starts_with("no NVIDIA driver") || s.starts_with("no CUDA device")
}

fn json(s: &str) -> serde_json::Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("not JSON ({e}):\n{s}"))
}

// ---------------------------------------------------------------------------------------------
// info

#[test]
fn info_exits_0_and_says_whether_there_is_a_gpu() {
    let (out, _) = expect(&["info"], 0);
    if has_gpu() {
        assert!(out.contains("compute capability") && out.contains("on-chip capacity"), "{out}");
    } else {
        assert!(says_no_gpu(&out), "{out}");
        for want in ["NVIDIA H200", "NVIDIA A100", "on-chip capacity", "SMs                  132", "SMs                  108"] {
            assert!(out.contains(want), "missing {want:?} in\n{out}");
        }
        // 132 × (256 KiB + 228 KiB) = 62.4 MiB; 108 × (256 KiB + 164 KiB) = 44.3 MiB.
        assert!(out.contains("62.4 MiB") && out.contains("44.3 MiB"), "{out}");
    }
    let (out, _) = expect(&["info", "--json"], 0);
    let v = json(&out);
    if !has_gpu() {
        assert!(says_no_gpu(v["no_device"].as_str().expect("a string")), "{v}");
        let h200 = DeviceInfo::h200();
        assert_eq!(v["presets"][0]["on_chip_bytes"], h200.sm_count * (h200.registers_per_sm * 4 + h200.shared_per_sm));
    }
}

// ---------------------------------------------------------------------------------------------
// plan

#[test]
fn plan_random_on_the_presets() {
    // (cell, H, density, B, device, fits, text that must appear)
    let cases: [(&str, &str, &str, &str, &str, bool, &str); 7] = [
        ("rnn_tanh", "2304", "0.3", "4", "h200", true, "grid:               128 CTAs"),
        ("rnn_tanh", "2304", "0.3", "4", "a100", true, "fits:               yes"),
        ("rnn_tanh", "2304", "0.1", "40", "h200", true, "fits:               yes"),
        ("rnn_tanh", "2304", "0.1", "40", "a100", false, "batch <= 32 fits"),
        ("lstm", "2304", "0.3", "4", "h200", true, "in shared memory"),
        ("lstm", "2304", "0.5", "4", "h200", false, "density <= "),
        ("gru", "256", "0.1", "1", "a100", true, "bank-aware order"),
    ];
    for (cell, h, d, b, dev, fits, want) in cases {
        let case = format!("{cell} H={h} d={d} B={b} {dev}");
        let args = ["plan", "--random", "--cell", cell, "--hidden", h, "--density", d, "--batch", b, "--device", dev];
        let (out, err) = expect(&args, if fits { 0 } else { 3 });
        assert!(out.contains(want), "{case}: missing {want:?} in\n{out}");
        if !fits {
            assert!(out.contains("fits:               no"), "{case}:\n{out}");
            assert!(err.contains("the planner refused the layer"), "{case}:\n{err}");
        }
        // The JSON agrees with the library on the same random layer (seed 1, the generator of sprnn::timing).
        let mut jargs = args.to_vec();
        jargs.push("--json");
        let (out, _) = expect(&jargs, if fits { 0 } else { 3 });
        let v = json(&out);
        assert_eq!(v["fits"], fits, "{case}");
        let c = match cell {
            "rnn_tanh" => Cell::RnnTanh,
            "gru" => Cell::Gru,
            _ => Cell::Lstm,
        };
        let (w, _) = sprnn::timing::random_layer(1, c, h.parse().unwrap(), d.parse().unwrap()).unwrap();
        let device = if dev == "h200" { DeviceInfo::h200() } else { DeviceInfo::a100() };
        match layout::plan(&w, c, b.parse().unwrap(), &device, &PlanOptions::default()) {
            Ok(p) => {
                let j = &v["plan"];
                assert_eq!(j["grid"], p.grid(), "{case}");
                assert_eq!(j["order"], "bank-aware", "{case}: names in the CLI's words");
                assert_eq!(j["threads_per_cta"], p.threads_per_cta(), "{case}");
                assert_eq!(j["threads_per_row"], p.threads_per_row(), "{case}");
                assert_eq!(j["list_len"], p.list_len(), "{case}");
                assert_eq!(j["shared_words"], p.shared_words(), "{case}");
                assert_eq!(j["batch_limit"], p.batch_limit(), "{case}");
                assert_eq!(j["batch_tile"], p.batch_tile(), "{case}");
                assert_eq!(j["smem_bytes"], p.smem_bytes(), "{case}");
                assert_eq!(j["registers_per_thread"], p.registers_per_thread(), "{case}");
                assert_eq!(j["cta_nnz_max"], *p.cta_nnz().iter().max().unwrap(), "{case}");
                assert_eq!(j["bank"]["max_wavefronts"], p.bank().max, "{case}");
                assert_eq!(j["bank_naive"]["max_wavefronts"], p.bank_naive().max, "{case}");
                assert_eq!(v["layer"]["nnz"], w.nnz(), "{case}");
            }
            Err(e) => {
                let r = sprnn::advice::Refusal::explain(e, &layout::RowStats::of(&w), c, b.parse().unwrap(), &device, &PlanOptions::default());
                assert_eq!(v["refusal"]["error"], r.to_string(), "{case}");
            }
        }
    }
}

fn lstm_layer(seed: u64, input: usize, hidden: usize, density: f64) -> LayerWeights {
    let g = 4 * hidden;
    let w_hh = sprnn::sparse::random_recurrent(seed, g, hidden, density, 0.9).unwrap();
    let w_ih = Dense::new(g, input, sprnn::timing::random_input(seed + 1, g * input)).unwrap();
    let b: Vec<f32> = sprnn::timing::random_input(seed + 2, 2 * g).iter().map(|x| 0.1 * x).collect();
    LayerWeights::new(Cell::Lstm, Matrix::Dense(w_ih), w_hh, b[..g].to_vec(), b[g..].to_vec()).unwrap()
}

/// A two-layer bidirectional LSTM (H = 64, I = 16), each direction at another density.
fn write_lstm_model(dir: &Path) -> (std::path::PathBuf, ModelWeights) {
    let (i, h) = (16, 64);
    let layers = vec![
        vec![lstm_layer(1, i, h, 0.10), lstm_layer(2, i, h, 0.20)],
        vec![lstm_layer(3, 2 * h, h, 0.30), lstm_layer(4, 2 * h, h, 0.40)],
    ];
    save_lstm_model(dir, "lstm.safetensors", layers)
}

/// The LSTM model of `layers` saved as `dir/name`.
fn save_lstm_model(dir: &Path, name: &str, layers: Vec<Vec<LayerWeights>>) -> (std::path::PathBuf, ModelWeights) {
    let model = ModelWeights::new(Cell::Lstm, layers).unwrap();
    let path = dir.join(name);
    model.save(&path, SaveOptions::default()).unwrap();
    (path, model)
}

#[test]
fn plan_lstm_weights_file() {
    let dir = tempfile::tempdir().unwrap();
    let (path, model) = write_lstm_model(dir.path());
    let file = path.to_str().unwrap();
    for (l, reverse) in [(0, false), (0, true), (1, false), (1, true)] {
        let mut args = vec!["plan", "--weights", file, "--cell", "lstm", "--layer", if l == 0 { "0" } else { "1" }, "--batch", "8", "--json"];
        if reverse {
            args.push("--reverse");
        }
        let (out, _) = expect(&args, 0);
        let v = json(&out);
        let w = model.layer(l, usize::from(reverse)).w_hh();
        let p = layout::plan(w, Cell::Lstm, 8, &DeviceInfo::h200(), &PlanOptions::default()).unwrap();
        let case = format!("layer {l} reverse {reverse}");
        assert_eq!(v["layer"]["nnz"], w.nnz(), "{case}");
        assert_eq!(v["layer"]["hidden"], 64, "{case}");
        assert_eq!(v["plan"]["grid"], p.grid(), "{case}");
        assert_eq!(v["plan"]["list_len"], p.list_len(), "{case}");
        assert_eq!(v["plan"]["cta_nnz_min"], *p.cta_nnz().iter().min().unwrap(), "{case}");
    }
    let (out, _) = expect(&["plan", "--weights", file, "--cell", "lstm", "--device", "a100"], 0);
    assert!(out.contains("fits:               yes") && out.contains("NVIDIA A100") && out.contains("lstm"), "{out}");
}

#[test]
fn plan_says_how_the_directions_of_a_bidirectional_layer_run() {
    use sprnn::layout::RowStats;
    use sprnn::model::{choose_schedule, DirectionSchedule};
    let (cell, h, d) = (Cell::Lstm, 1152, 0.1);
    let base = ["plan", "--random", "--cell", "lstm", "--hidden", "1152", "--density", "0.1", "--bidirectional"];
    let stats = [sprnn::timing::random_layer(1, cell, h, d).unwrap().0, sprnn::timing::random_layer(2, cell, h, d).unwrap().0].map(|w| RowStats::of(&w));
    for (arg, schedule) in [("auto", DirectionSchedule::Auto), ("in-turn", DirectionSchedule::Sequential), ("at-once", DirectionSchedule::Concurrent)] {
        let want = choose_schedule([&stats[0], &stats[1]], cell, 4, &DeviceInfo::h200(), &PlanOptions::default(), schedule).unwrap();
        let mut args = base.to_vec();
        args.extend(["--directions", arg, "--json"]);
        let (out, _) = expect(&args, 0);
        let v = json(&out);
        let case = format!("--directions {arg}");
        assert_eq!(v["directions"]["schedule"], if want.concurrent { "at-once" } else { "in-turn" }, "{case}: {out}");
        assert_eq!(v["directions"]["half_sms"], want.half_sms, "{case}");
        assert_eq!(v["directions"]["reason"], want.reason.as_str(), "{case}");
        let mut text = base.to_vec();
        text.extend(["--directions", arg]);
        let (out, _) = expect(&text, 0);
        assert!(out.contains("directions:") && out.contains(&format!("why:                {}", want.reason)), "{case}:\n{out}");
        if want.half_sms {
            assert!(out.contains("half the SMs (66 of 132)"), "{case}:\n{out}");
        }
    }
    // A unidirectional layer has no directions line; --bidirectional wants a random layer.
    let (out, _) = expect(&base[..base.len() - 1], 0);
    assert!(!out.contains("directions:"), "{out}");
}

// ---------------------------------------------------------------------------------------------
// run

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// Writes tensors (name, dtype F32 or F16, shape, values) to a safetensors file.
fn write_tensors(path: &Path, tensors: &[(&str, Dtype, Vec<usize>, &[f32])]) {
    let bytes: Vec<Vec<u8>> = tensors
        .iter()
        .map(|(_, dt, _, v)| match dt {
            Dtype::F16 => v.iter().flat_map(|x| half::f16::from_f32(*x).to_le_bytes()).collect(),
            _ => f32_bytes(v),
        })
        .collect();
    let views: Vec<(&str, TensorView<'_>)> =
        tensors.iter().zip(&bytes).map(|((n, dt, s, _), b)| (*n, TensorView::new(*dt, s.clone(), b).unwrap())).collect();
    std::fs::write(path, safetensors::serialize(views, &None::<HashMap<String, String>>).unwrap()).unwrap();
}

/// Reads F32 tensor `name`: (shape, values).
fn read_tensor(path: &Path, name: &str) -> Option<(Vec<usize>, Vec<f32>)> {
    let bytes = std::fs::read(path).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let t = st.tensor(name).ok()?;
    assert_eq!(t.dtype(), Dtype::F32);
    Some((t.shape().to_vec(), t.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()))
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// A model file of one layer and an input file for it, with what they hold.
struct RunCase {
    dir: tempfile::TempDir,
    weights: std::path::PathBuf,
    input: std::path::PathBuf,
    layer: LayerWeights,
    u: Vec<f32>,
    h0: Option<Vec<f32>>,
    c0: Option<Vec<f32>>,
    steps: usize,
    batch: usize,
}

impl RunCase {
    /// `sprnn::reference` on the case's layer and input, at `precision`.
    fn reference(&self, precision: Precision) -> reference::RefOutput {
        let u = reference::Sequences::new(&self.u, self.steps, self.batch).with_state(self.h0.as_deref(), self.c0.as_deref());
        let l = &self.layer;
        reference::forward_u(l.cell(), l.w_hh(), l.b_hh(), u, precision).unwrap()
    }
}

/// A single-layer model file and an input file for `cell` (H = 32).
fn run_case(cell: Cell, steps: usize, batch: usize, with_state: bool, dtype: Dtype) -> RunCase {
    let dir = tempfile::tempdir().unwrap();
    let (i, h, g) = (8, 32, cell.gates());
    let w_hh = sprnn::sparse::random_recurrent(5, g * h, h, 0.25, 0.9).unwrap();
    let w_ih = Matrix::Dense(Dense::new(g * h, i, vec![0.0; g * h * i]).unwrap());
    let b: Vec<f32> = sprnn::timing::random_input(6, 2 * g * h).iter().map(|x| 0.1 * x).collect();
    let layer = LayerWeights::new(cell, w_ih, w_hh, b[..g * h].to_vec(), b[g * h..].to_vec()).unwrap();
    let weights = dir.path().join("model.safetensors");
    ModelWeights::single(layer.clone()).save(&weights, SaveOptions::default()).unwrap();
    let mut u = sprnn::timing::random_input(7, steps * batch * g * h);
    if dtype == Dtype::F16 {
        // What the file will hold: the program reads F16 exactly.
        u.iter_mut().for_each(|x| *x = half::f16::from_f32(*x).to_f32());
    }
    let h0 = with_state.then(|| sprnn::timing::random_input(8, batch * h).iter().map(|x| 0.5 * x).collect::<Vec<f32>>());
    let c0 = (with_state && cell == Cell::Lstm).then(|| sprnn::timing::random_input(9, batch * h));
    let input = dir.path().join("u.safetensors");
    let mut tensors: Vec<(&str, Dtype, Vec<usize>, &[f32])> = vec![("u", dtype, vec![steps, batch, g * h], &u)];
    if let Some(h0) = &h0 {
        tensors.push(("h0", Dtype::F32, vec![batch, h], h0));
    }
    if let Some(c0) = &c0 {
        tensors.push(("c0", Dtype::F32, vec![batch, h], c0));
    }
    write_tensors(&input, &tensors);
    RunCase { dir, weights, input, layer, u, h0, c0, steps, batch }
}

fn cell_arg(c: Cell) -> &'static str {
    match c {
        Cell::RnnRelu => "rnn_relu",
        Cell::RnnTanh => "rnn_tanh",
        Cell::Gru => "gru",
        Cell::Lstm => "lstm",
    }
}

#[test]
fn run_reference_round_trip() {
    let cases = [
        (Cell::Lstm, true, Dtype::F32),
        (Cell::Lstm, false, Dtype::F16),
        (Cell::Gru, true, Dtype::F32),
        (Cell::RnnTanh, false, Dtype::F32),
        (Cell::RnnRelu, true, Dtype::F16),
    ];
    for (cell, with_state, dtype) in cases {
        let c = run_case(cell, 10, 3, with_state, dtype);
        let case = format!("{cell:?} state={with_state} {dtype:?}");
        let want = c.reference(device_faithful(cell));
        for (k, extra) in [&[][..], &["--chunk", "3"][..], &["--chunk", "1", "--batch", "3"][..]].into_iter().enumerate() {
            let out = c.dir.path().join(format!("out{k}.safetensors"));
            let mut args = vec![
                "run",
                "--reference",
                "--weights",
                c.weights.to_str().unwrap(),
                "--cell",
                cell_arg(cell),
                "--input",
                c.input.to_str().unwrap(),
                "--output",
                out.to_str().unwrap(),
            ];
            args.extend_from_slice(extra);
            let (stdout, _) = expect(&args, 0);
            assert!(stdout.contains("the CPU reference (device-faithful arithmetic)") && stdout.contains("CPU wall time"), "{case}: {stdout}");
            let (shape, h) = read_tensor(&out, "h").expect("h");
            assert_eq!(shape, vec![10, 3, 32], "{case}");
            assert_eq!(bits(&h), bits(&want.h), "{case} {extra:?}: h differs from sprnn::reference");
            let c_out = read_tensor(&out, "c");
            assert_eq!(c_out.as_ref().map(|(s, _)| s.clone()), want.c.as_ref().map(|_| vec![3, 32]), "{case}");
            assert_eq!(c_out.map(|(_, v)| bits(&v)), want.c.as_deref().map(bits), "{case} {extra:?}: c differs");
        }
    }
    // Another precision goes through as well.
    let c = run_case(Cell::Gru, 6, 2, false, Dtype::F32);
    let out = c.dir.path().join("f32.safetensors");
    let args = ["run", "--reference", "--precision", "f32", "--weights", c.weights.to_str().unwrap(), "--cell", "gru", "--input", c.input.to_str().unwrap(), "--output", out.to_str().unwrap()];
    expect(&args, 0);
    let want = c.reference(Precision::F32);
    assert_eq!(bits(&read_tensor(&out, "h").unwrap().1), bits(&want.h));
}

#[test]
fn run_on_the_gpu_matches_the_reference() {
    let Some(_gpu) = gpu() else { return };
    for cell in [Cell::RnnTanh, Cell::Gru, Cell::Lstm] {
        let c = run_case(cell, 12, 4, true, Dtype::F32);
        let want = c.reference(device_faithful(cell));
        let mut previous: Option<Vec<u32>> = None;
        for (k, chunk) in ["12", "5"].into_iter().enumerate() {
            let out = c.dir.path().join(format!("gpu{k}.safetensors"));
            let args = ["run", "--weights", c.weights.to_str().unwrap(), "--cell", cell_arg(cell), "--input", c.input.to_str().unwrap(), "--output", out.to_str().unwrap(), "--chunk", chunk];
            let (stdout, _) = expect(&args, 0);
            assert!(stdout.contains("gpu: "), "{stdout}");
            let h = read_tensor(&out, "h").unwrap().1;
            let e = reference::compare_steps(&h, &want.h, c.steps, c.batch, 32);
            assert!(e.within(reference::DEVICE_TOLERANCE), "{cell:?}: worst {}", e.worst);
            // Chunked and whole runs agree bit for bit.
            if let Some(p) = &previous {
                assert_eq!(p, &bits(&h), "{cell:?}: --chunk {chunk} differs from one call");
            }
            previous = Some(bits(&h));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// run: whole models

/// A model input file: "x" [T, B, I] and optional "h0"/"c0" [L*D, B, H].
fn write_model_input(path: &Path, x: &[f32], shape: [usize; 3], h0: Option<(&[f32], [usize; 3])>, c0: Option<&[f32]>) {
    let mut tensors: Vec<(&str, Dtype, Vec<usize>, &[f32])> = vec![("x", Dtype::F32, shape.to_vec(), x)];
    if let Some((h0, s)) = h0 {
        tensors.push(("h0", Dtype::F32, s.to_vec(), h0));
        if let Some(c0) = c0 {
            tensors.push(("c0", Dtype::F32, s.to_vec(), c0));
        }
    }
    write_tensors(path, &tensors);
}

/// A unidirectional two-layer LSTM (I = 16, H = 64).
fn write_unidirectional_model(dir: &Path) -> (std::path::PathBuf, ModelWeights) {
    let layers = vec![vec![lstm_layer(11, 16, 64, 0.2)], vec![lstm_layer(12, 64, 64, 0.3)]];
    save_lstm_model(dir, "lstm_uni.safetensors", layers)
}

#[test]
fn run_model_reference_matches_the_library() {
    let dir = tempfile::tempdir().unwrap();
    let (steps, batch) = (9, 3);
    for (k, (weights, model)) in [write_lstm_model(dir.path()), write_unidirectional_model(dir.path())].into_iter().enumerate() {
        let ld = model.num_layers() * model.directions();
        let x = sprnn::timing::random_input(20 + k as u64, steps * batch * 16);
        let h0: Vec<f32> = sprnn::timing::random_input(30, ld * batch * 64).iter().map(|v| 0.5 * v).collect();
        let c0 = sprnn::timing::random_input(31, ld * batch * 64);
        let input = dir.path().join(format!("x{k}.safetensors"));
        write_model_input(&input, &x, [steps, batch, 16], Some((&h0, [ld, batch, 64])), Some(&c0));
        let want = reference::forward_model(&model, reference::Sequences::new(&x, steps, batch).with_state(Some(&h0), Some(&c0)), device_faithful(Cell::Lstm)).unwrap();
        let chunked: &[&[&str]] = if model.directions() == 1 { &[&[], &["--chunk", "4"], &["--chunk", "1", "--batch", "3"]] } else { &[&[]] };
        for (j, extra) in chunked.iter().enumerate() {
            let out = dir.path().join(format!("out{k}{j}.safetensors"));
            let mut args = vec!["run", "--reference", "--weights", weights.to_str().unwrap(), "--cell", "lstm", "--input", input.to_str().unwrap(), "--output", out.to_str().unwrap()];
            args.extend_from_slice(extra);
            let (stdout, _) = expect(&args, 0);
            assert!(stdout.contains("the CPU reference (device-faithful arithmetic)") && stdout.contains(&format!("{}-layer", model.num_layers())), "{stdout}");
            let case = format!("model {k} {extra:?}");
            let (shape, output) = read_tensor(&out, "output").expect("output");
            assert_eq!(shape, vec![steps, batch, model.directions() * 64], "{case}");
            assert_eq!(bits(&output), bits(&want.output), "{case}: output differs from sprnn::reference");
            let (shape, h_n) = read_tensor(&out, "h_n").expect("h_n");
            assert_eq!(shape, vec![ld, batch, 64], "{case}");
            assert_eq!(bits(&h_n), bits(&want.h_n), "{case}: h_n");
            assert_eq!(bits(&read_tensor(&out, "c_n").expect("c_n").1), bits(want.c_n.as_ref().unwrap()), "{case}: c_n");
        }
    }
}

/// PyTorch's fixture `lstm_2layer` through `sprnn run` (reference here, the GPU where there is
/// one): its input, h0 and c0 in, PyTorch's output, h_n and c_n out.
#[test]
fn run_model_on_a_pytorch_fixture() {
    let dir = tempfile::tempdir().unwrap();
    // Embedded, so the GPU bundle's test executable needs no source tree.
    let bytes = include_bytes!("../../tests/fixtures/lstm_2layer.safetensors");
    let fixture = dir.path().join("lstm_2layer.safetensors");
    std::fs::write(&fixture, bytes).unwrap();
    let st = SafeTensors::deserialize(bytes).unwrap();
    let get = |n: &str| -> (Vec<usize>, Vec<f64>) {
        let t = st.tensor(n).unwrap();
        let v = match t.dtype() {
            Dtype::F32 => t.data().chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap()) as f64).collect(),
            Dtype::F64 => t.data().chunks_exact(8).map(|b| f64::from_le_bytes(b.try_into().unwrap())).collect(),
            d => panic!("{n}: {d:?}"),
        };
        (t.shape().to_vec(), v)
    };
    let f32s = |v: &[f64]| v.iter().map(|&x| x as f32).collect::<Vec<f32>>();
    let ((xs, x), (hs, h0), (_, c0)) = (get("input"), get("h0"), get("c0"));
    let input = dir.path().join("x.safetensors");
    write_model_input(&input, &f32s(&x), [xs[0], xs[1], xs[2]], Some((&f32s(&h0), [hs[0], hs[1], hs[2]])), Some(&f32s(&c0)));
    let mut engines = vec![vec!["--reference"]];
    if has_gpu() {
        engines.push(vec![]);
    }
    for engine in engines {
        let out = dir.path().join("out.safetensors");
        let mut args = vec!["run", "--weights", fixture.to_str().unwrap(), "--cell", "lstm", "--input", input.to_str().unwrap(), "--output", out.to_str().unwrap()];
        args.extend_from_slice(&engine);
        expect(&args, 0);
        for name in ["output", "h_n", "c_n"] {
            let (shape, got) = read_tensor(&out, name).unwrap_or_else(|| panic!("{name} missing"));
            let (want_shape, want) = get(name);
            assert_eq!(shape, want_shape, "{name}");
            let e = got.iter().zip(&want).map(|(&a, &b)| (a as f64 - b).abs()).fold(0.0, f64::max);
            assert!(e <= 5e-3, "{engine:?} {name}: off PyTorch by {e:.2e}");
        }
    }
}

#[test]
fn run_model_on_the_gpu_matches_the_reference() {
    let Some(_gpu) = gpu() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (steps, batch) = (12, 4);
    for (k, (weights, model)) in [write_lstm_model(dir.path()), write_unidirectional_model(dir.path())].into_iter().enumerate() {
        // fp16-representable x: the dense projection's rounding of x is then exact.
        let x: Vec<f32> = sprnn::timing::random_input(40 + k as u64, steps * batch * 16).iter().map(|&v| half::f16::from_f32(v).to_f32()).collect();
        let input = dir.path().join(format!("gx{k}.safetensors"));
        write_model_input(&input, &x, [steps, batch, 16], None, None);
        // The files' W_ih are not fp16-representable: compare with the reference on the
        // rounded weights the GPU multiplies.
        let rounded = ModelWeights::new(
            Cell::Lstm,
            model
                .layers()
                .iter()
                .map(|d| {
                    d.iter()
                        .map(|w| {
                            let wi: Vec<f32> = w.w_ih().to_dense().iter().map(|&v| half::f16::from_f32(v).to_f32()).collect();
                            let wi = Matrix::Dense(Dense::new(w.w_ih().rows(), w.w_ih().cols(), wi).unwrap());
                            LayerWeights::new(Cell::Lstm, wi, w.w_hh().clone(), w.b_ih().to_vec(), w.b_hh().to_vec()).unwrap()
                        })
                        .collect()
                })
                .collect(),
        )
        .unwrap();
        let want = reference::forward_model(&rounded, reference::Sequences::new(&x, steps, batch), device_faithful(Cell::Lstm)).unwrap();
        let chunks: &[&str] = if model.directions() == 1 { &["12", "5"] } else { &["12"] };
        let mut previous: Option<Vec<u32>> = None;
        for chunk in chunks {
            let out = dir.path().join(format!("gout{k}{chunk}.safetensors"));
            let args = ["run", "--weights", weights.to_str().unwrap(), "--cell", "lstm", "--input", input.to_str().unwrap(), "--output", out.to_str().unwrap(), "--chunk", chunk];
            let (stdout, _) = expect(&args, 0);
            assert!(stdout.contains("gpu: "), "{stdout}");
            let output = read_tensor(&out, "output").unwrap().1;
            let e = reference::compare_steps(&output, &want.output, steps, batch, model.directions() * 64);
            let tol = reference::DEVICE_TOLERANCE * model.num_layers() as f64;
            assert!(e.within(tol), "model {k} --chunk {chunk}: worst {}", e.worst);
            if let Some(p) = &previous {
                assert_eq!(p, &bits(&output), "model {k}: --chunk {chunk} differs from one call");
            }
            previous = Some(bits(&output));
        }
    }
}

#[test]
fn run_model_argument_errors() {
    let dir = tempfile::tempdir().unwrap();
    let (weights, _) = write_lstm_model(dir.path());
    let (uni, _) = write_unidirectional_model(dir.path());
    let (weights, uni) = (weights.to_str().unwrap(), uni.to_str().unwrap());
    let out = dir.path().join("out.safetensors");
    let out = out.to_str().unwrap();
    let x = vec![0.1f32; 5 * 2 * 16];
    let path = |n: &str| dir.path().join(n).to_str().unwrap().to_string();
    let good = path("x.safetensors");
    write_model_input(Path::new(&good), &x, [5, 2, 16], None, None);
    let wrong_i = path("xi.safetensors");
    write_tensors(Path::new(&wrong_i), &[("x", Dtype::F32, vec![5, 4, 8], &x)]);
    let both = path("both.safetensors");
    write_tensors(Path::new(&both), &[("x", Dtype::F32, vec![5, 2, 16], &x), ("u", Dtype::F32, vec![5, 2, 16], &x)]);
    let bad_h0 = path("h0.safetensors");
    write_model_input(Path::new(&bad_h0), &x, [5, 2, 16], Some((&vec![0.0; 2 * 2 * 64], [2, 2, 64])), None);
    let base = |w: &str, input: &str, extra: &[&str]| -> Vec<String> {
        let cell = if extra.contains(&"gru") { "gru" } else { "lstm" };
        let mut v: Vec<String> = ["run", "--reference", "--cell", cell, "--weights", w, "--input", input, "--output", out].iter().map(|s| s.to_string()).collect();
        v.extend(extra.iter().filter(|&&e| e != "gru").map(|s| s.to_string()));
        v
    };
    let cases: Vec<(Vec<String>, &str)> = vec![
        (base(weights, &wrong_i, &[]), "\"x\" has shape [5, 4, 8]; the model's first layer takes [T, B, I] = [T, B, 16]"),
        (base(weights, &both, &[]), "holds both \"x\""),
        (base(weights, &good, &["--chunk", "2"]), "bidirectional model cannot stream"),
        (base(weights, &good, &["--layer", "1"]), "runs every layer and direction"),
        (base(weights, &good, &["--batch", "3"]), "--batch 3, but \"x\""),
        (base(weights, &bad_h0, &[]), "\"h0\" has shape [2, 2, 64], expected [L*D, B, H] = [4, 2, 64]"),
        (base(uni, &good, &["gru"]), "lstm"),
    ];
    for (args, want) in &cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (_, err) = expect(&args, 1);
        assert!(err.contains(want), "sprnn {}: stderr lacks {want:?}:\n{err}", args.join(" "));
    }
    let (_, err) = expect(&["run", "--reference", "--random", "--hidden", "8", "--cell", "lstm", "--input", &good, "--output", out], 1);
    assert!(err.contains("needs --weights FILE"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// errors

#[test]
fn bad_arguments_give_clear_errors() {
    let c = run_case(Cell::Lstm, 4, 2, false, Dtype::F32);
    let (weights, input) = (c.weights.to_str().unwrap(), c.input.to_str().unwrap());
    let out = c.dir.path().join("out.safetensors");
    let out = out.to_str().unwrap();
    let bad_shape = c.dir.path().join("bad.safetensors");
    write_tensors(&bad_shape, &[("u", Dtype::F32, vec![4, 2, 100], &vec![0.0; 800])]);
    let bad_shape = bad_shape.to_str().unwrap();
    let missing = c.dir.path().join("missing.safetensors");
    let missing = missing.to_str().unwrap();
    let not_st = c.dir.path().join("junk.safetensors");
    std::fs::write(&not_st, b"not a safetensors file").unwrap();
    let not_st = not_st.to_str().unwrap();
    let run = |extra: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = ["run", "--reference", "--cell", "lstm", "--output", out].iter().map(|s| s.to_string()).collect();
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let owned = |v: &[&str]| -> Vec<String> { v.iter().map(|s| s.to_string()).collect() };
    // (arguments, exit status, text stderr must contain)
    let cases: Vec<(Vec<String>, i32, &str)> = vec![
        (owned(&["frobnicate"]), 2, "unrecognized subcommand"),
        (owned(&["plan", "--random", "--cell", "lsm", "--hidden", "8"]), 2, "possible values: rnn_relu, rnn_tanh, gru, lstm"),
        (owned(&["plan", "--cell", "lstm"]), 2, "--weights <FILE>"),
        (owned(&["plan", "--random", "--cell", "gru"]), 2, "--hidden <H>"),
        (owned(&["plan", "--random", "--cell", "gru", "--hidden", "8", "--device", "h100"]), 2, "possible values: h200, a100, gpu"),
        (owned(&["plan", "--random", "--cell", "gru", "--hidden", "8", "--density", "1.5"]), 1, "--density 1.5 is not in [0, 1]"),
        (owned(&["plan", "--random", "--cell", "gru", "--hidden", "8", "--batch", "0"]), 3, "the planner refused"),
        (owned(&["plan", "--random", "--cell", "gru", "--hidden", "8", "--threads-per-row", "3"]), 3, "the planner refused"),
        (owned(&["plan", "--weights", missing, "--cell", "lstm"]), 1, "No such file"),
        (owned(&["plan", "--weights", not_st, "--cell", "lstm"]), 1, "not a valid safetensors file"),
        (owned(&["plan", "--weights", weights, "--cell", "gru"]), 1, "lstm"),
        (owned(&["plan", "--weights", weights, "--cell", "lstm", "--layer", "3"]), 1, "--layer 3 but the file has 1 layer"),
        (owned(&["plan", "--weights", weights, "--cell", "lstm", "--reverse"]), 1, "not bidirectional"),
        (run(&["--weights", weights, "--input", bad_shape]), 1, "\"u\" has shape [4, 2, 100]; a lstm layer of H = 32 needs [T, B, G*H] = [T, B, 128]"),
        (run(&["--weights", weights, "--input", input, "--batch", "7"]), 1, "--batch 7, but \"u\""),
        (run(&["--weights", weights, "--input", missing]), 1, "No such file"),
        (run(&["--weights", weights, "--input", weights]), 1, "no tensor \"u\""),
        (run(&["--weights", weights, "--input", input, "--chunk", "0"]), 1, "--chunk must be at least 1"),
        (run(&["--weights", weights]), 2, "--input <FILE>"),
        (owned(&["run", "--precision", "f32", "--weights", weights, "--cell", "lstm", "--input", input, "--output", out]), 2, "--reference"),
    ];
    for (args, code, want) in &cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (_, err) = expect(&args, *code);
        assert!(err.contains(want), "sprnn {}: stderr lacks {want:?}:\n{err}", args.join(" "));
    }
    if !has_gpu() {
        let err = expect_no_gpu(&["run", "--weights", weights, "--cell", "lstm", "--input", input, "--output", out]);
        assert!(err.contains("--reference"), "{err}");
        expect_no_gpu(&["bench", "--cells", "rnn_tanh", "--hidden", "256"]);
        let err = expect_no_gpu(&["plan", "--random", "--cell", "gru", "--hidden", "8", "--device", "gpu"]);
        assert!(err.contains("--device h200"), "{err}");
        assert!(!Path::new(out).exists(), "no output is written on failure");
    }
}

#[test]
fn help_everywhere() {
    for sub in [&[][..], &["info"], &["plan"], &["run"], &["bench"], &["help", "plan"]] {
        let mut args = sub.to_vec();
        if sub.first() != Some(&"help") {
            args.push("--help");
        }
        let (out, _) = expect(&args, 0);
        assert!(out.contains("Usage: sprnn"), "sprnn {}:\n{out}", args.join(" "));
    }
    let (out, _) = expect(&["run", "--help"], 0);
    assert!(out.contains("[T, B, G*H]") && out.contains("\"h\", F32 [T, B, H]"), "{out}");
    let (out, _) = expect(&["--help"], 0);
    assert!(out.contains("Exit status"), "{out}");
}

// ---------------------------------------------------------------------------------------------
// no driver library, output files

/// `sprnn` with `SPRNN_LIBCUDA` naming a library that does not exist: the program starts, the
/// commands that need no GPU work, and the GPU commands fail with exit status 4 and "no NVIDIA
/// driver" (on a GPU machine too: the variable replaces the loader's search).
#[test]
fn without_the_driver_library_gpu_free_commands_work_and_gpu_commands_say_so() {
    let c = run_case(Cell::Gru, 4, 2, false, Dtype::F32);
    let out_file = c.dir.path().join("out.safetensors");
    let (w, i, o) = (c.weights.to_str().unwrap(), c.input.to_str().unwrap(), out_file.to_str().unwrap());
    let run_without = |args: &[&str]| {
        let o = std::process::Command::new(std::env::var("SPRNN_CLI_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_sprnn").to_string()))
            .args(args)
            .env("SPRNN_LIBCUDA", "/nonexistent/libcuda.so.1")
            .output()
            .expect("the sprnn binary runs");
        let (out, err) = text(&o);
        (o.status.code(), out, err)
    };
    let (code, out, _) = run_without(&["--help"]);
    assert_eq!(code, Some(0));
    assert!(out.contains("4  no NVIDIA driver"), "{out}");
    let (code, out, _) = run_without(&["info"]);
    assert_eq!(code, Some(0));
    assert!(out.starts_with("no NVIDIA driver: /nonexistent/libcuda.so.1"), "{out}");
    let (code, out, _) = run_without(&["plan", "--random", "--cell", "gru", "--hidden", "64", "--device", "h200"]);
    assert_eq!(code, Some(0), "{out}");
    let (code, _, err) = run_without(&["run", "--reference", "--weights", w, "--cell", "gru", "--input", i, "--output", o]);
    assert_eq!(code, Some(0), "{err}");
    assert!(read_tensor(&out_file, "h").is_some());
    for args in [
        &["run", "--weights", w, "--cell", "gru", "--input", i, "--output", o][..],
        &["plan", "--random", "--cell", "gru", "--hidden", "64", "--device", "gpu"][..],
        &["bench", "--cells", "gru", "--hidden", "64"][..],
    ] {
        let (code, _, err) = run_without(args);
        assert_eq!(code, Some(4), "sprnn {}: {err}", args.join(" "));
        assert!(err.starts_with("sprnn: error: no NVIDIA driver: "), "{err}");
    }
}

/// `--output` naming the input or the weights file (directly, through a symbolic link, or by
/// another relative path) is refused before anything runs, and the file is left as it was.
#[test]
fn output_that_is_an_input_is_refused() {
    let c = run_case(Cell::Lstm, 4, 2, false, Dtype::F32);
    let (w, i) = (c.weights.to_str().unwrap(), c.input.to_str().unwrap());
    let before_w = std::fs::read(&c.weights).unwrap();
    let before_i = std::fs::read(&c.input).unwrap();
    let link = c.dir.path().join("link.safetensors");
    #[cfg(unix)]
    std::os::unix::fs::symlink(&c.weights, &link).unwrap();
    #[cfg(not(unix))]
    std::fs::copy(&c.weights, &link).unwrap();
    let dotted = c.dir.path().join(".").join(c.input.file_name().unwrap());
    let cases: Vec<(String, &str)> = vec![
        (i.to_string(), "is the --input file"),
        (w.to_string(), "is the --weights file"),
        (dotted.to_str().unwrap().to_string(), "is the --input file"),
        #[cfg(unix)]
        (link.to_str().unwrap().to_string(), "is the --weights file"),
    ];
    for reference in [true, false] {
        for (output, want) in &cases {
            let mut args = vec!["run", "--weights", w, "--cell", "lstm", "--input", i, "--output", output];
            if reference {
                args.push("--reference");
            }
            let (_, err) = expect(&args, 1);
            assert!(err.contains(want) && err.contains("would destroy"), "{output}: {err}");
        }
    }
    assert_eq!(std::fs::read(&c.weights).unwrap(), before_w);
    assert_eq!(std::fs::read(&c.input).unwrap(), before_i);
}

/// The output is written beside the target and renamed into place: an existing output is
/// replaced whole, a symbolic link's target is replaced (the link stays), no temporary file is
/// left behind, and a write that fails leaves the previous output as it was.
#[test]
fn output_is_replaced_atomically() {
    let c = run_case(Cell::RnnTanh, 4, 2, false, Dtype::F32);
    let (w, i) = (c.weights.to_str().unwrap(), c.input.to_str().unwrap());
    let out = c.dir.path().join("out.safetensors");
    std::fs::write(&out, vec![7u8; 1 << 20]).unwrap();
    expect(&["run", "--reference", "--weights", w, "--cell", "rnn_tanh", "--input", i, "--output", out.to_str().unwrap()], 0);
    assert_eq!(read_tensor(&out, "h").unwrap().0, vec![4, 2, 32]);
    let leftovers: Vec<_> = std::fs::read_dir(c.dir.path()).unwrap().map(|e| e.unwrap().file_name()).filter(|n| n.to_string_lossy().ends_with(".tmp")).collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    #[cfg(unix)]
    {
        let target = c.dir.path().join("target.safetensors");
        std::fs::write(&target, b"old").unwrap();
        let link = c.dir.path().join("out-link.safetensors");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        expect(&["run", "--reference", "--weights", w, "--cell", "rnn_tanh", "--input", i, "--output", link.to_str().unwrap()], 0);
        assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink(), "the link is kept");
        assert!(read_tensor(&target, "h").is_some(), "the link's target holds the output");
    }
    // A folder that cannot be written (here: one that does not exist) fails without leaving
    // anything, and an output that is a folder is refused without touching it.
    let missing = c.dir.path().join("no-such-folder").join("out.safetensors");
    let (_, err) = expect(&["run", "--reference", "--weights", w, "--cell", "rnn_tanh", "--input", i, "--output", missing.to_str().unwrap()], 1);
    assert!(err.contains("no-such-folder"), "{err}");
    let (_, err) = expect(&["run", "--reference", "--weights", w, "--cell", "rnn_tanh", "--input", i, "--output", c.dir.path().to_str().unwrap()], 1);
    assert!(!err.is_empty());
    assert!(c.dir.path().is_dir());
}

/// Refusals decidable from sizes come before any weight is generated: each of these took seconds
/// to minutes (or aborted) when the layer was generated first. No sentinel value in text or JSON.
#[test]
fn size_refusals_come_before_generation() {
    let cases: [(&[&str], &str); 4] = [
        (&["--cell", "rnn_tanh", "--hidden", "1000000", "--density", "1e-4"], "exceeds the largest supported, 65535"),
        (&["--cell", "rnn_tanh", "--hidden", "100000", "--density", "0.01"], "exceeds the largest supported, 65535"),
        (&["--cell", "lstm", "--hidden", "20000", "--density", "0.1"], "does not fit on the NVIDIA H200"),
        (&["--cell", "lstm", "--hidden", "20000", "--density", "0.01", "--device", "a100"], "no batch size fits"),
    ];
    for (extra, want) in cases {
        for json_out in [false, true] {
            let mut args = vec!["plan", "--random"];
            args.extend_from_slice(extra);
            if json_out {
                args.push("--json");
            }
            let t = std::time::Instant::now();
            let (out, _) = expect(&args, 3);
            assert!(t.elapsed() < std::time::Duration::from_secs(1), "sprnn {}: {:?}", args.join(" "), t.elapsed());
            assert!(out.contains(want), "sprnn {}: {out}", args.join(" "));
            assert!(!out.contains("18446744073709551615") && !out.contains("2814749767"), "{out}");
            if json_out {
                assert_eq!(json(&out)["fits"], false);
            }
        }
    }
    // `run` refuses a random layer's impossible hidden size before generating it, too.
    let dir = tempfile::tempdir().unwrap();
    let u = dir.path().join("u.safetensors");
    write_tensors(&u, &[("u", Dtype::F32, vec![1, 1, 3], &[0.0; 3])]);
    let out = dir.path().join("out.safetensors");
    let t = std::time::Instant::now();
    let (_, err) = expect(&["run", "--reference", "--random", "--cell", "gru", "--hidden", "1000000", "--input", u.to_str().unwrap(), "--output", out.to_str().unwrap()], 1);
    assert!(t.elapsed() < std::time::Duration::from_secs(1));
    assert!(err.contains("--hidden 1000000: hidden size 1000000 exceeds the largest supported"), "{err}");
}

/// The CPU reference refuses a weight beyond fp16's range as `plan` and the GPU do (it used to
/// give all-NaN output and exit 0).
#[test]
fn run_reference_refuses_what_plan_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let (i, h) = (2, 4);
    let mut dense = vec![0.0f32; h * h];
    dense[5] = 70_000.0;
    dense[0] = 0.5;
    let w_hh = sprnn::Csr::from_dense(&dense, h, h).unwrap();
    let w_ih = Matrix::Dense(Dense::new(h, i, vec![0.1; h * i]).unwrap());
    let layer = LayerWeights::new(Cell::RnnTanh, w_ih, w_hh, vec![0.0; h], vec![0.0; h]).unwrap();
    let weights = dir.path().join("big.safetensors");
    ModelWeights::single(layer).save(&weights, SaveOptions::default()).unwrap();
    let u = dir.path().join("u.safetensors");
    write_tensors(&u, &[("u", Dtype::F32, vec![2, 1, h], &[0.1; 8])]);
    let x = dir.path().join("x.safetensors");
    write_tensors(&x, &[("x", Dtype::F32, vec![2, 1, i], &[0.1; 4])]);
    let out = dir.path().join("out.safetensors");
    let want = "weight at row 1, column 1 is 70000, outside the fp16 range";
    let (plan_out, _) = expect(&["plan", "--weights", weights.to_str().unwrap(), "--cell", "rnn_tanh"], 3);
    assert!(plan_out.contains(want), "{plan_out}");
    for input in [&u, &x] {
        let (_, err) = expect(&["run", "--reference", "--weights", weights.to_str().unwrap(), "--cell", "rnn_tanh", "--input", input.to_str().unwrap(), "--output", out.to_str().unwrap()], 1);
        assert!(err.contains(want), "{err}");
        assert!(!out.exists());
    }
}

/// A state dict whose names carry a module prefix (`rnn.weight_hh_l0`): without `--prefix` the
/// refusal names the prefix to give; with it, `plan` and `run` read the file.
#[test]
fn prefixed_state_dict_needs_and_takes_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let (path, model) = write_lstm_model(dir.path());
    let bytes = std::fs::read(&path).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let renamed: Vec<(String, TensorView<'_>)> = st
        .tensors()
        .into_iter()
        .map(|(n, t)| (format!("encoder.rnn.{n}"), TensorView::new(t.dtype(), t.shape().to_vec(), t.data()).unwrap()))
        .collect();
    let prefixed = dir.path().join("prefixed.safetensors");
    std::fs::write(&prefixed, safetensors::serialize(renamed, &None::<HashMap<String, String>>).unwrap()).unwrap();
    let p = prefixed.to_str().unwrap();
    let (_, err) = expect(&["plan", "--weights", p, "--cell", "lstm"], 1);
    assert!(err.contains("--prefix encoder.rnn.") && err.contains("encoder.rnn.weight_hh_l0"), "{err}");
    let (out, _) = expect(&["plan", "--weights", p, "--cell", "lstm", "--prefix", "encoder.rnn."], 0);
    assert!(out.contains("fits:               yes"), "{out}");
    // A wrong prefix names the tensor it looked for.
    let (_, err) = expect(&["plan", "--weights", p, "--cell", "lstm", "--prefix", "decoder."], 1);
    assert!(err.contains("missing tensor decoder.weight_hh_l0") || err.contains("prefix"), "{err}");
    // The model reads the same through the prefix.
    let opts = sprnn::weights::LoadOptions { prefix: "encoder.rnn.".into() };
    assert_eq!(ModelWeights::load_with(&prefixed, Cell::Lstm, &opts).unwrap(), model);
    let e = ModelWeights::load(&prefixed, Cell::Lstm).unwrap_err();
    assert!(matches!(&e, sprnn::weights::WeightsError::Prefixed { prefix } if prefix == "encoder.rnn."), "{e:?}");
}

/// The device-faithful reference of `sprnn run --precision device-faithful` for layers of `cell`:
/// the default plan's product arithmetic.
fn device_faithful(cell: Cell) -> Precision {
    Precision::device_faithful(sprnn::layout::default_products(cell, false))
}
