//! Streaming state ([`sprnn::StreamingLayer`], [`sprnn::StreamState`]): a sequence fed chunk by
//! chunk gives, bit for bit, what one long call gives.
//!
//! CPU twin: the same [`StreamState`] drives the deterministic CPU reference chunk by chunk and
//! is compared with one long reference run; this checks the hand-over convention (last `h_t`,
//! final `c`) independently of the GPU. GPU: the same comparison on the device. On a machine
//! without a CUDA device the GPU tests print "skipped: no CUDA device" and return.


use rand::{Rng, SeedableRng};
use sprnn::layer::Input;
use sprnn::reference::{self, Precision};
use sprnn::{Cell, Error, Gpu, LayerOptions, SparseRecurrentLayer, StreamState, StreamingLayer};

use crate::common::gpu;

const CELLS: [Cell; 4] = [Cell::RnnRelu, Cell::RnnTanh, Cell::Gru, Cell::Lstm];

/// Chunkings of `T = 24` steps, each named: one chunk, single steps, uneven pieces.
const CHUNKINGS: [(&str, &[usize]); 4] =
    [("whole", &[24]), ("single steps", &[1; 24]), ("uneven", &[1, 3, 7, 13]), ("halves", &[12, 12])];

struct Problem {
    cell: Cell,
    hidden: usize,
    batch: usize,
    steps: usize,
    w: sprnn::Csr,
    b: Vec<f32>,
    u: Vec<f32>,
    h0: Option<Vec<f32>>,
    c0: Option<Vec<f32>>,
}

fn problem(cell: Cell, hidden: usize, batch: usize, steps: usize, seed: u64, with_state: bool) -> Problem {
    let g = cell.gates();
    let w = sprnn::sparse::random_recurrent(seed, g * hidden, hidden, 0.2, 0.9).expect("random W_hh");
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ 0x57EA);
    let mut v = |n: usize, s: f32| -> Vec<f32> { (0..n).map(|_| rng.gen_range(-s..s)).collect() };
    let b = v(g * hidden, 0.2);
    let u = v(steps * batch * g * hidden, 1.0);
    let h0 = with_state.then(|| v(batch * hidden, 0.5));
    let c0 = (with_state && cell == Cell::Lstm).then(|| v(batch * hidden, 0.5));
    Problem { cell, hidden, batch, steps, w, b, u, h0, c0 }
}

fn chunk_bounds(chunks: &[usize]) -> Vec<(usize, usize)> {
    let mut t = 0;
    chunks
        .iter()
        .map(|&n| {
            t += n;
            (t - n, n)
        })
        .collect()
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// The CPU reference run chunk by chunk through a [`StreamState`].
fn reference_chunked(p: &Problem, chunks: &[usize], precision: Precision) -> (Vec<f32>, Option<Vec<f32>>) {
    let (bh, gbh) = (p.batch * p.hidden, p.batch * p.cell.gates() * p.hidden);
    let mut state = StreamState::new(p.cell, p.batch, p.hidden);
    if let Some(h0) = &p.h0 {
        state.set_state(h0, p.c0.as_deref()).expect("initial state");
    }
    let mut h = Vec::new();
    let mut c = None;
    for (t0, n) in chunk_bounds(chunks) {
        let (h0, c0) = state.initial();
        let out = reference::forward_u_continuing(p.cell, &p.w, &p.b, &p.u[t0 * gbh..(t0 + n) * gbh], n, p.batch, h0, c0, precision, state.steps())
            .expect("reference chunk");
        state.advance(n, &out.h, out.c.as_deref()).expect("advance");
        assert_eq!(out.h.len(), n * bh);
        h.extend_from_slice(&out.h);
        c = out.c;
    }
    assert_eq!(state.steps(), p.steps as u64);
    (h, c)
}

#[test]
fn reference_chunked_equals_one_call_bit_for_bit() {
    // F64 is not in the list: it carries h in f64 inside a run but returns it rounded to f32,
    // so a chunk boundary rounds where one long run does not. The GPU's arithmetic is the
    // device-faithful one, whose h is fp16-exact.
    for precision in [Precision::DeviceFaithful, Precision::F32] {
        for cell in CELLS {
            for with_state in [false, true] {
                let p = problem(cell, 48, 3, 24, 7 + cell as u64, with_state);
                let whole = reference::forward_u(p.cell, &p.w, &p.b, &p.u, p.steps, p.batch, p.h0.as_deref(), p.c0.as_deref(), precision)
                    .expect("reference");
                for (name, chunks) in CHUNKINGS {
                    let (h, c) = reference_chunked(&p, chunks, precision);
                    let case = format!("{cell:?} {precision:?} state={with_state} chunks={name}");
                    assert_eq!(bits(&h), bits(&whole.h), "{case}: h differs");
                    assert_eq!(c.as_deref().map(bits), whole.c.as_deref().map(bits), "{case}: c differs");
                }
            }
        }
    }
}

#[test]
fn reference_chunked_f64_differs_only_by_rounding() {
    // The documented exception: within f32 rounding of the one-call run.
    let p = problem(Cell::Lstm, 48, 2, 24, 99, true);
    let whole = reference::forward_u(p.cell, &p.w, &p.b, &p.u, p.steps, p.batch, p.h0.as_deref(), p.c0.as_deref(), Precision::F64)
        .expect("reference");
    let (h, _) = reference_chunked(&p, &[5, 19], Precision::F64);
    let e = reference::compare_steps(&h, &whole.h, p.steps, p.batch, p.hidden);
    assert!(e.worst < 1e-6, "worst {}", e.worst);
}

fn gpu_layer(gpu: &Gpu, p: &Problem) -> SparseRecurrentLayer {
    SparseRecurrentLayer::new(gpu, p.cell, &p.w, &p.b, p.batch, &LayerOptions::default()).expect("layer")
}

#[test]
fn gpu_chunked_equals_one_call_bit_for_bit() {
    let Some(gpu) = gpu() else { return };
    for cell in CELLS {
        for with_state in [false, true] {
            let p = problem(cell, 256, 4, 24, 11 + cell as u64, with_state);
            let mut layer = gpu_layer(&gpu, &p);
            let whole = layer.forward(Input::F32(&p.u), p.steps, p.h0.as_deref(), p.c0.as_deref()).expect("one call");
            let want = reference::forward_u(p.cell, &p.w, &p.b, &p.u, p.steps, p.batch, p.h0.as_deref(), p.c0.as_deref(), Precision::DeviceFaithful)
                .expect("reference");
            let e = reference::compare_steps(&whole.h, &want.h, p.steps, p.batch, p.hidden);
            assert!(e.within(reference::DEVICE_TOLERANCE), "{cell:?}: one call vs reference {}", e.worst);
            let mut stream = StreamingLayer::new(layer);
            let gbh = p.batch * cell.gates() * p.hidden;
            for (name, chunks) in CHUNKINGS {
                stream.reset();
                if let Some(h0) = &p.h0 {
                    stream.set_state(h0, p.c0.as_deref()).expect("set_state");
                }
                let mut h = Vec::new();
                let mut c = None;
                for (t0, n) in chunk_bounds(chunks) {
                    let out = stream.forward(Input::F32(&p.u[t0 * gbh..(t0 + n) * gbh]), n).expect("chunk");
                    h.extend_from_slice(&out.h);
                    c = out.c;
                }
                let case = format!("{cell:?} state={with_state} chunks={name}");
                assert_eq!(bits(&h), bits(&whole.h), "{case}: h differs");
                assert_eq!(c.as_deref().map(bits), whole.c.as_deref().map(bits), "{case}: c differs");
                let (sh, sc) = stream.state();
                assert_eq!(bits(&sh), bits(&whole.h[(p.steps - 1) * p.batch * p.hidden..]), "{case}: state h");
                assert_eq!(sc.as_deref().map(bits), whole.c.as_deref().map(bits), "{case}: state c");
            }
        }
    }
}

#[test]
fn gpu_stream_errors_leave_the_state() {
    let Some(gpu) = gpu() else { return };
    let p = problem(Cell::Lstm, 128, 2, 8, 5, false);
    let mut stream = StreamingLayer::new(gpu_layer(&gpu, &p));
    let gbh = p.batch * 4 * p.hidden;
    stream.forward(Input::F32(&p.u[..4 * gbh]), 4).expect("first chunk");
    let before = stream.state();
    // Wrong length, zero steps, non-finite input: refused, state kept.
    assert!(matches!(stream.forward(Input::F32(&p.u[..3 * gbh]), 4), Err(Error::Input { .. })));
    assert!(matches!(stream.forward(Input::F32(&[]), 0), Err(Error::Input { .. })));
    let mut bad = p.u[4 * gbh..].to_vec();
    bad[1] = f32::NAN;
    assert!(matches!(stream.forward(Input::F32(&bad), 4), Err(Error::Input { .. })));
    assert_eq!(stream.state(), before);
    assert_eq!(stream.steps(), 4);
    assert!(matches!(stream.set_state(&before.0[1..], None), Err(Error::Input { name: "h", .. })));
    assert_eq!(stream.state(), before);
}
