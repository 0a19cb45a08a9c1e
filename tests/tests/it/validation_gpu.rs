//! The bad-input table, GPU part: one test per row of `docs/VALIDATION.md` whose entry point
//! needs a CUDA device (`Gpu::new` with a device present, `SparseRecurrentLayer::new`,
//! `from_plan`, `forward`, `forward_device`, `alloc_output`, `forward_exchange_floor`,
//! `smoke::run`). Each test checks the typed error and that its message names the bad value and
//! the limit it broke; every rejection happens before anything is launched.
//!
//! On a machine without a CUDA device each test prints "skipped: no CUDA device" and returns;
//! with `SPRNN_REQUIRE_GPU=1` a missing device fails instead (as in `gpu.rs`).

use std::time::Duration;

use sprnn::layer::{DeviceInput, Input};
use sprnn::layout::PlanOptions;
use sprnn::layout::PlanError;
use sprnn::{Cell, Error, Gpu, LayerOptions, SparseRecurrentLayer};

use crate::common::{gpu, says};

/// Asserts `r` is `Error::Input` for argument `name` and returns it.
#[track_caller]
fn input_err<T: std::fmt::Debug>(r: sprnn::Result<T>, name: &str) -> Error {
    match r {
        Err(e @ Error::Input { .. }) => {
            let Error::Input { name: n, .. } = &e else { unreachable!() };
            assert_eq!(*n, name, "{e}");
            e
        }
        other => panic!("expected Error::Input for {name}, got {other:?}"),
    }
}

/// One row of the table as a test, skipped without a GPU: `name: |gpu| { statements } call =>
/// "argument", [parts]` opens the device as `gpu`, runs the statements (a layer to call, its
/// inputs), and checks that `call` is refused with `Error::Input` for `argument` and a message
/// that contains every part.
macro_rules! input_refused {
    ($(#[$m:meta])* $name:ident: |$gpu:ident| { $($setup:tt)* } $call:expr => $arg:literal, [$($part:expr),* $(,)?]) => {
        $(#[$m])*
        #[test]
        fn $name() {
            let Some($gpu) = gpu() else { return };
            $($setup)*
            let e = input_err($call, $arg);
            says(&e, &[$($part),*]);
        }
    };
}

const H: usize = 256;
const B: usize = 2;

fn w_hh(cell: Cell) -> sprnn::Csr {
    sprnn::sparse::random_recurrent(11, cell.gates() * H, H, 0.1, 0.9).unwrap()
}

/// A small valid layer (H = 256, B = 2) of `cell`.
fn layer(gpu: &Gpu, cell: Cell) -> SparseRecurrentLayer {
    SparseRecurrentLayer::new(gpu, cell, &w_hh(cell), &vec![0.0; cell.gates() * H], B, &LayerOptions::default()).unwrap()
}

#[test]
fn gpu_new_ordinal_past_the_last_device() {
    let Some(_gpu) = gpu() else { return };
    let e = Gpu::new(u32::MAX).unwrap_err();
    assert!(matches!(e, Error::NoDevice { ordinal: u32::MAX }), "{e:?}");
    says(&e, &[&format!("ordinal {}", u32::MAX)]);
}

// ---------------------------------------------------------------------------------------------
// SparseRecurrentLayer::new / from_plan
// ---------------------------------------------------------------------------------------------

input_refused!(layer_new_b_hh_wrong_length: |gpu| {} SparseRecurrentLayer::new(&gpu, Cell::Gru, &w_hh(Cell::Gru), &[0.0; 3], B, &LayerOptions::default())
    => "b_hh", ["3 values", &format!("expected {}", 3 * H), "G*H"]);

input_refused!(layer_new_b_hh_not_finite: |gpu| {
    let mut b = vec![0.0; H];
    b[17] = f32::NAN;
} SparseRecurrentLayer::new(&gpu, Cell::RnnTanh, &w_hh(Cell::RnnTanh), &b, B, &LayerOptions::default())
    => "b_hh", ["element 17 is NaN", "must be finite"]);

input_refused!(layer_new_timeout_zero: |gpu| { let o = LayerOptions { timeout: Duration::ZERO, ..LayerOptions::default() }; }
    SparseRecurrentLayer::new(&gpu, Cell::RnnTanh, &w_hh(Cell::RnnTanh), &[0.0; H], B, &o) => "timeout", ["0ns", "(0, 1 h]"]);

input_refused!(layer_new_timeout_over_an_hour: |gpu| { let o = LayerOptions { timeout: Duration::from_secs(7200), ..LayerOptions::default() }; }
    SparseRecurrentLayer::new(&gpu, Cell::RnnTanh, &w_hh(Cell::RnnTanh), &[0.0; H], B, &o) => "timeout", ["7200s", "(0, 1 h]"]);

#[test]
fn layer_new_w_hh_wrong_shape() {
    let Some(gpu) = gpu() else { return };
    let r = SparseRecurrentLayer::new(&gpu, Cell::Lstm, &w_hh(Cell::Gru), &[0.0; 4 * H], B, &LayerOptions::default());
    let e = r.unwrap_err();
    assert!(matches!(e, Error::Plan(PlanError::Shape { rows, cols: H, .. }) if rows == 3 * H), "{e:?}");
    says(&e, &[&format!("{} x {H}", 3 * H), &format!("{} x {H}", 4 * H)]);
}

#[test]
fn layer_new_batch_zero() {
    let Some(gpu) = gpu() else { return };
    let r = SparseRecurrentLayer::new(&gpu, Cell::RnnTanh, &w_hh(Cell::RnnTanh), &[0.0; H], 0, &LayerOptions::default());
    let e = r.unwrap_err();
    assert!(matches!(e, Error::Plan(PlanError::ZeroBatch)), "{e:?}");
    says(&e, &["batch size is 0", "at least 1"]);
}

#[test]
fn from_plan_made_for_a_gpu_with_more_sms() {
    let Some(gpu) = gpu() else { return };
    let sms = gpu.info().sm_count;
    let mut bigger = gpu.info().clone();
    bigger.sm_count = 2 * sms;
    let h = 4 * sms;
    let w = sprnn::sparse::random_recurrent(12, h, h, 0.05, 0.9).unwrap();
    let o = PlanOptions { ctas: Some(2 * sms), ..PlanOptions::default() };
    let plan = sprnn::layout::plan(&w, Cell::RnnTanh, 1, &bigger, &o).unwrap();
    let e = SparseRecurrentLayer::from_plan(&gpu, &plan, &vec![0.0; h], Duration::from_secs(1)).unwrap_err();
    assert!(matches!(e, Error::WrongDevice { planned_sms, actual_sms, .. } if planned_sms == 2 * sms && actual_sms == sms), "{e:?}");
    says(&e, &[&format!("at least {} SMs", 2 * sms), &format!("({sms} SMs)")]);
}

#[test]
fn from_plan_made_for_a_gpu_with_more_shared_memory() {
    let Some(gpu) = gpu() else { return };
    let mut bigger = gpu.info().clone();
    bigger.shared_per_sm *= 4;
    bigger.shared_per_block_optin *= 4;
    let h = 2304;
    let w = sprnn::sparse::random_recurrent(13, h, h, 0.01, 0.9).unwrap();
    let plan = sprnn::layout::plan(&w, Cell::RnnTanh, 64, &bigger, &PlanOptions::default()).unwrap();
    assert!(plan.smem_bytes() > gpu.info().shared_per_block_optin);
    let e = SparseRecurrentLayer::from_plan(&gpu, &plan, &vec![0.0; h], Duration::from_secs(1)).unwrap_err();
    assert!(matches!(e, Error::WrongDevice { .. }), "{e:?}");
    says(&e, &[&format!("{} bytes of shared memory", plan.smem_bytes()), &gpu.info().name]);
}

// ---------------------------------------------------------------------------------------------
// forward / forward_device / alloc_output / forward_exchange_floor
// ---------------------------------------------------------------------------------------------

input_refused!(forward_steps_zero: |gpu| { let mut l = layer(&gpu, Cell::RnnTanh); } l.forward(Input::F32(&[]), 0, None, None)
    => "steps", ["0", "at least one step"]);

input_refused!(forward_too_many_steps_for_32_bit_indices: |gpu| {
    let mut l = layer(&gpu, Cell::Lstm);
    let per_step = B * 4 * H;
    let max = u32::MAX as usize / per_step;
} l.forward(Input::F32(&[]), max + 1, None, None)
    => "steps", [&format!("{} steps", max + 1), &u32::MAX.to_string(), &format!("at most {max} steps")]);

#[test]
fn forward_steps_whose_size_wraps_around() {
    let Some(gpu) = gpu() else { return };
    let mut l = layer(&gpu, Cell::RnnTanh);
    // 2^64 / (B·H) steps: T·B·G·H wraps to 0, which matches an empty U if unchecked.
    let steps = (1usize << 63) / (B * H) * 2;
    let e = input_err(l.forward(Input::F32(&[]), steps, None, None), "steps");
    says(&e, &[&format!("{steps} steps"), &u32::MAX.to_string()]);
}

input_refused!(forward_u_wrong_length: |gpu| {
    let mut l = layer(&gpu, Cell::RnnTanh);
    let n = l.input_len(4);
} l.forward(Input::F32(&vec![0.1; n - 1]), 4, None, None)
    => "u", [&format!("{} values", n - 1), &format!("expected {n}"), "T*B*G*H"]);

input_refused!(forward_u_nan: |gpu| {
    let mut l = layer(&gpu, Cell::RnnTanh);
    let mut u = vec![0.1f32; l.input_len(4)];
    u[7] = f32::NAN;
} l.forward(Input::F32(&u), 4, None, None)
    => "u", ["element 7 is NaN", "must be finite"]);

input_refused!(forward_u_f16_infinite: |gpu| {
    let mut l = layer(&gpu, Cell::Gru);
    let mut u = vec![half::f16::from_f32(0.1); l.input_len(2)];
    u[100] = half::f16::NEG_INFINITY;
} l.forward(Input::F16(&u), 2, None, None)
    => "u", ["element 100 is -inf", "must be finite"]);

input_refused!(forward_h0_wrong_length: |gpu| {
    let mut l = layer(&gpu, Cell::RnnTanh);
    let u = vec![0.1f32; l.input_len(2)];
} l.forward(Input::F32(&u), 2, Some(&[0.0; 3]), None)
    => "h0", ["3 values", &format!("expected {}", B * H), "B*H"]);

input_refused!(forward_h0_infinite: |gpu| {
    let mut l = layer(&gpu, Cell::RnnTanh);
    let u = vec![0.1f32; l.input_len(2)];
} l.forward(Input::F32(&u), 2, Some(&vec![f32::INFINITY; B * H]), None)
    => "h0", ["element 0 is inf", "must be finite"]);

input_refused!(forward_c0_for_a_non_lstm: |gpu| {
    let mut l = layer(&gpu, Cell::Gru);
    let u = vec![0.1f32; l.input_len(2)];
} l.forward(Input::F32(&u), 2, None, Some(&vec![0.0; B * H]))
    => "c0", ["gru layer", "only LSTM has a cell state"]);

input_refused!(forward_c0_wrong_length: |gpu| {
    let mut l = layer(&gpu, Cell::Lstm);
    let u = vec![0.1f32; l.input_len(2)];
} l.forward(Input::F32(&u), 2, None, Some(&[0.0; 5]))
    => "c0", ["5 values", &format!("expected {}", B * H)]);

input_refused!(forward_c0_nan: |gpu| {
    let mut l = layer(&gpu, Cell::Lstm);
    let u = vec![0.1f32; l.input_len(2)];
    let mut c0 = vec![0.0; B * H];
    c0[B * H - 1] = f32::NAN;
} l.forward(Input::F32(&u), 2, None, Some(&c0))
    => "c0", [&format!("element {} is NaN", B * H - 1), "must be finite"]);

input_refused!(forward_device_u_wrong_length: |gpu| {
    let mut l = layer(&gpu, Cell::RnnTanh);
    let u = DeviceInput::upload(&gpu, Input::F32(&vec![0.1; l.input_len(3)])).unwrap();
    let mut out = l.alloc_output(4).unwrap();
} l.forward_device(&u, None, None, &mut out, None)
    => "u", [&format!("{} values", l.input_len(3)), &format!("expected {}", l.input_len(4))]);

input_refused!(forward_device_h0_wrong_length: |gpu| {
    let mut l = layer(&gpu, Cell::Lstm);
    let u = DeviceInput::upload(&gpu, Input::F32(&vec![0.1; l.input_len(2)])).unwrap();
    let mut out = l.alloc_output(2).unwrap();
} l.forward_device(&u, Some(&[0.0; 1]), None, &mut out, None)
    => "h0", ["1 values", &format!("expected {}", B * H)]);

input_refused!(forward_device_c0_for_a_non_lstm: |gpu| {
    let mut l = layer(&gpu, Cell::RnnRelu);
    let u = DeviceInput::upload(&gpu, Input::F32(&vec![0.1; l.input_len(2)])).unwrap();
    let mut out = l.alloc_output(2).unwrap();
} l.forward_device(&u, None, Some(&vec![0.0; B * H]), &mut out, None)
    => "c0", ["rnn_relu layer", "only LSTM"]);

input_refused!(alloc_output_steps_zero: |gpu| { let l = layer(&gpu, Cell::RnnTanh); } l.alloc_output(0)
    => "steps", ["0", "at least one step"]);

input_refused!(alloc_output_too_many_steps: |gpu| { let l = layer(&gpu, Cell::RnnTanh); } l.alloc_output(usize::MAX)
    => "steps", [&usize::MAX.to_string(), &u32::MAX.to_string()]);

input_refused!(forward_exchange_floor_u_wrong_length: |gpu| {
    let mut l = layer(&gpu, Cell::RnnTanh);
    let u = DeviceInput::upload(&gpu, Input::F32(&[0.1; 5])).unwrap();
    let mut out = l.alloc_output(2).unwrap();
} l.forward_exchange_floor(&u, &mut out)
    => "u", ["5 values", &format!("expected {}", l.input_len(2))]);

#[test]
fn a_layer_still_runs_after_rejected_calls() {
    // Not a row of the table: the rejections above leave the layer usable.
    let Some(gpu) = gpu() else { return };
    let mut l = layer(&gpu, Cell::Lstm);
    let u = vec![0.1f32; l.input_len(3)];
    assert!(l.forward(Input::F32(&u), 0, None, None).is_err());
    assert!(l.forward(Input::F32(&u), 3, None, Some(&[f32::NAN; B * H])).is_err());
    let out = l.forward(Input::F32(&u), 3, None, None).expect("valid call");
    assert!(out.h.iter().all(|v| v.is_finite()) && out.h.len() == 3 * B * H);
}

// ---------------------------------------------------------------------------------------------
// smoke::run
// ---------------------------------------------------------------------------------------------

input_refused!(smoke_run_zero_elements: |gpu| {} sprnn::smoke::run(&gpu, 0, 1)
    => "n", ["0 elements", "1..=16777216"]);

input_refused!(smoke_run_too_many_elements: |gpu| {} sprnn::smoke::run(&gpu, (1 << 24) + 1, 1)
    => "n", ["16777217 elements", "1..=16777216"]);

/// The GPU layer refuses every case of the CPU reference's parity list with the reference's
/// message (one validation path, `sprnn::validate`): at `SparseRecurrentLayer::new` for the
/// layer, at `forward` for the inputs.
#[test]
fn gpu_refuses_what_the_reference_refuses_with_the_same_message() {
    let Some(gpu) = gpu() else { return };
    for (name, cell, w, b, u, steps, batch, h0, c0) in crate::validation::parity_cases() {
        let want = sprnn::reference::forward_u(cell, &w, &b, sprnn::reference::Sequences::new(&u, steps, batch).with_state(h0.as_deref(), c0.as_deref()), sprnn::reference::Precision::DeviceFaithful)
            .expect_err(name)
            .to_string();
        let got = match SparseRecurrentLayer::new(&gpu, cell, &w, &b, batch, &LayerOptions::default()) {
            Err(e) => e.to_string(),
            Ok(mut l) => l.forward(Input::F32(&u), steps, h0.as_deref(), c0.as_deref()).expect_err(name).to_string(),
        };
        assert_eq!(got, want, "{name}");
    }
}
