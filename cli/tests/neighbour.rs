//! A layer on a GPU that another process keeps busy with its own persistent launches.
//!
//! The neighbour is the `sprnn` program's `bench` (a separate process, so a separate CUDA
//! context: the GPU time-slices between the two, and each cooperative launch must still find
//! its CTAs co-resident). While it runs, this test runs a layer many times: every call must
//! end within its wait bound — with the right answer, or with a typed [`Error::Timeout`] — and
//! never hang; the layer must give the right answer once the neighbour has gone. Prints
//! "skipped: no CUDA device" without a GPU.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sprnn::layer::Input;
use sprnn::reference::{self, Precision};
use sprnn::{Cell, Error, LayerOptions, SparseRecurrentLayer};

#[path = "../../tests/tests/it/common/device.rs"]
mod common;
use common::gpu;

/// Kills the neighbour however the test ends.
struct Neighbour(Child);

impl Drop for Neighbour {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_neighbour() -> Neighbour {
    let bin = std::env::var("SPRNN_CLI_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_sprnn").to_string());
    // A persistent layer over the whole GPU (H = 2304, d = 0.3: 128 CTAs), long sequences, many
    // repeats: tens of seconds of back-to-back cooperative launches.
    let child = Command::new(bin)
        .args(["bench", "--cells", "rnn_tanh", "--hidden", "2304", "--batch", "4", "--density", "0.3"])
        .args(["--steps", "8192", "--repeats", "2000", "--warmup", "0"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the sprnn binary starts");
    Neighbour(child)
}

#[test]
fn a_busy_neighbour_process_does_not_hang_a_layer() {
    let Some(gpu) = gpu() else { return };
    let (cell, h, b, steps) = (Cell::Lstm, 1152, 4, 512);
    let g = cell.gates();
    let w = sprnn::sparse::random_recurrent(91, g * h, h, 0.1, 0.9).unwrap();
    let bias: Vec<f32> = (0..g * h).map(|i| ((i * 7919) % 200) as f32 * 1e-3 - 0.1).collect();
    let u: Vec<f32> = (0..steps * b * g * h).map(|i| ((i * 104_729) % 2000) as f32 * 1e-3 - 1.0).collect();
    let want = reference::forward_u(cell, &w, &bias, reference::Sequences::new(&u, steps, b), Precision::device_faithful(sprnn::layout::default_products(cell, false))).unwrap();
    let bound = Duration::from_secs(2);
    let opts = LayerOptions { timeout: bound, ..LayerOptions::default() };
    let mut layer = SparseRecurrentLayer::new(&gpu, cell, &w, &bias, b, &opts).unwrap();
    let check = |got: &[f32], what: &str| {
        let e = reference::compare_steps(got, &want.h, steps, b, h);
        assert!(e.within(reference::DEVICE_TOLERANCE), "{what}: worst step error {:.2e}", e.worst);
    };

    let mut neighbour = start_neighbour();
    // Let the neighbour create its context and start launching.
    std::thread::sleep(Duration::from_millis(1500));
    assert!(neighbour.0.try_wait().unwrap().is_none(), "the neighbour exited before the test ran");
    let (mut ok, mut timeouts, mut slowest) = (0, 0, Duration::ZERO);
    for i in 0..40 {
        let t0 = Instant::now();
        let r = layer.forward(Input::F32(&u), steps, None, None);
        let took = t0.elapsed();
        slowest = slowest.max(took);
        // The wait bound covers one wait; a whole call adds the upload, the launch and the copy.
        assert!(took < bound + Duration::from_secs(3), "call {i} took {took:?} (bound {bound:?})");
        match r {
            Ok(out) => {
                check(&out.h, &format!("call {i} next to the neighbour"));
                ok += 1;
            }
            Err(Error::Timeout { .. }) => timeouts += 1,
            Err(e) => panic!("call {i}: unexpected error {e}"),
        }
    }
    let still_busy = neighbour.0.try_wait().unwrap().is_none();
    drop(neighbour);
    println!("next to a busy neighbour: {ok} correct, {timeouts} timed out, slowest call {slowest:?}, neighbour still running at the end: {still_busy}");
    assert!(still_busy, "the neighbour finished during the test, so part of it ran on an idle GPU; lengthen its work");
    let out = layer.forward(Input::F32(&u), steps, None, None).expect("the layer runs once the neighbour has gone");
    check(&out.h, "after the neighbour");
}
