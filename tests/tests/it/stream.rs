//! Streaming state ([`sprnn::StreamingLayer`], [`sprnn::StreamState`]): a sequence fed chunk by
//! chunk gives, bit for bit, what one long call gives.
//!
//! The twins run one body, [`chunked_equals_one_call`], over a [`LayerStream`]: on the CPU the
//! same [`StreamState`] drives the deterministic CPU reference chunk by chunk and is compared
//! with one long reference run, which checks the hand-over convention (last `h_t`, final `c`)
//! independently of the GPU; on the GPU a [`StreamingLayer`] is compared with one long call. On a machine
//! without a CUDA device the GPU tests print "skipped: no CUDA device" and return.


use sprnn::layer::Input;
use sprnn::reference::{self, Precision};
use sprnn::{Cell, Error, Gpu, LayerOptions, SparseRecurrentLayer, StreamState, StreamingLayer};

use crate::common::{gpu, Problem};
use crate::model::bits;

const CELLS: [Cell; 4] = [Cell::RnnRelu, Cell::RnnTanh, Cell::Gru, Cell::Lstm];

/// Chunkings of `T = 24` steps, each named: one chunk, single steps, uneven pieces.
const CHUNKINGS: [(&str, &[usize]); 4] =
    [("whole", &[24]), ("single steps", &[1; 24]), ("uneven", &[1, 3, 7, 13]), ("halves", &[12, 12])];

/// The problem of `seed` (`common::Problem` at density 0.2, this module's salt).
fn problem(cell: Cell, hidden: usize, batch: usize, steps: usize, seed: u64, with_state: bool) -> Problem {
    Problem::random(cell, hidden, batch, 0.2, steps, seed, 0x57EA, with_state)
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

/// A stream of one layer, on the CPU reference or on the GPU: the twin tests feed both the same
/// chunkings through [`chunked_equals_one_call`].
trait LayerStream {
    /// Starts a new sequence from `h0`/`c0` (`None`: zeros).
    fn restart(&mut self, h0: Option<&[f32]>, c0: Option<&[f32]>);
    /// Runs the next `n` steps of `u`; returns their `h` and LSTM's final `c`.
    fn chunk(&mut self, u: &[f32], n: usize) -> (Vec<f32>, Option<Vec<f32>>);
    /// The state carried now, and the steps run since the restart.
    fn carried(&self) -> ((Vec<f32>, Option<Vec<f32>>), u64);
}

/// The CPU reference run chunk by chunk through a [`StreamState`].
struct ReferenceStream<'a> {
    p: &'a Problem,
    precision: Precision,
    state: StreamState,
}

impl<'a> ReferenceStream<'a> {
    fn new(p: &'a Problem, precision: Precision) -> ReferenceStream<'a> {
        ReferenceStream { p, precision, state: StreamState::new(p.cell, p.batch, p.hidden) }
    }
}

impl LayerStream for ReferenceStream<'_> {
    fn restart(&mut self, h0: Option<&[f32]>, c0: Option<&[f32]>) {
        self.state.reset();
        if let Some(h0) = h0 {
            self.state.set_state(h0, c0).expect("initial state");
        }
    }

    fn chunk(&mut self, u: &[f32], n: usize) -> (Vec<f32>, Option<Vec<f32>>) {
        let p = self.p;
        let (h0, c0) = self.state.initial();
        let out = reference::forward_u(p.cell, &p.w, &p.b, reference::Sequences::new(u, n, p.batch).with_state(h0, c0).continuing(self.state.steps()), self.precision).expect("reference chunk");
        self.state.advance(n, &out.h, out.c.as_deref()).expect("advance");
        assert_eq!(out.h.len(), n * p.batch * p.hidden);
        (out.h, out.c)
    }

    fn carried(&self) -> ((Vec<f32>, Option<Vec<f32>>), u64) {
        (self.state.state(), self.state.steps())
    }
}

impl LayerStream for StreamingLayer {
    fn restart(&mut self, h0: Option<&[f32]>, c0: Option<&[f32]>) {
        self.reset();
        if let Some(h0) = h0 {
            self.set_state(h0, c0).expect("set_state");
        }
    }

    fn chunk(&mut self, u: &[f32], n: usize) -> (Vec<f32>, Option<Vec<f32>>) {
        let out = self.forward(Input::F32(u), n).expect("chunk");
        (out.h, out.c)
    }

    fn carried(&self) -> ((Vec<f32>, Option<Vec<f32>>), u64) {
        (self.state(), self.steps())
    }
}

/// `p`'s input fed to `stream` in `chunks`, from `p`'s initial state: the outputs, one after
/// the other, and LSTM's last `c`.
fn run_chunked(stream: &mut impl LayerStream, p: &Problem, chunks: &[usize]) -> (Vec<f32>, Option<Vec<f32>>) {
    let gbh = p.batch * p.cell.gates() * p.hidden;
    stream.restart(p.h0.as_deref(), p.c0.as_deref());
    let mut h = Vec::new();
    let mut c = None;
    for (t0, n) in chunk_bounds(chunks) {
        let (hn, cn) = stream.chunk(&p.u[t0 * gbh..(t0 + n) * gbh], n);
        h.extend_from_slice(&hn);
        c = cn;
    }
    (h, c)
}

/// The twins' body: every chunking of [`CHUNKINGS`] through `stream` gives, bit for bit, the
/// one-call outputs `whole_h`/`whole_c`, and leaves the one call's final state after all of
/// `p`'s steps.
fn chunked_equals_one_call(stream: &mut impl LayerStream, p: &Problem, whole_h: &[f32], whole_c: Option<&[f32]>, label: &str) {
    for (name, chunks) in CHUNKINGS {
        let (h, c) = run_chunked(stream, p, chunks);
        let case = format!("{label} chunks={name}");
        assert_eq!(bits(&h), bits(whole_h), "{case}: h differs");
        assert_eq!(c.as_deref().map(bits), whole_c.map(bits), "{case}: c differs");
        let ((sh, sc), steps) = stream.carried();
        assert_eq!(steps, p.steps as u64, "{case}: steps");
        assert_eq!(bits(&sh), bits(&whole_h[(p.steps - 1) * p.batch * p.hidden..]), "{case}: state h");
        assert_eq!(sc.as_deref().map(bits), whole_c.map(bits), "{case}: state c");
    }
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
                let whole = reference::forward_u(p.cell, &p.w, &p.b, reference::Sequences::new(&p.u, p.steps, p.batch).with_state(p.h0.as_deref(), p.c0.as_deref()), precision)
                    .expect("reference");
                let label = format!("{cell:?} {precision:?} state={with_state}");
                chunked_equals_one_call(&mut ReferenceStream::new(&p, precision), &p, &whole.h, whole.c.as_deref(), &label);
            }
        }
    }
}

#[test]
fn reference_chunked_f64_differs_only_by_rounding() {
    // The documented exception: within f32 rounding of the one-call run.
    let p = problem(Cell::Lstm, 48, 2, 24, 99, true);
    let whole = reference::forward_u(p.cell, &p.w, &p.b, reference::Sequences::new(&p.u, p.steps, p.batch).with_state(p.h0.as_deref(), p.c0.as_deref()), Precision::F64)
        .expect("reference");
    let (h, _) = run_chunked(&mut ReferenceStream::new(&p, Precision::F64), &p, &[5, 19]);
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
            let want = reference::forward_u(p.cell, &p.w, &p.b, reference::Sequences::new(&p.u, p.steps, p.batch).with_state(p.h0.as_deref(), p.c0.as_deref()), Precision::DeviceFaithful)
                .expect("reference");
            let e = reference::compare_steps(&whole.h, &want.h, p.steps, p.batch, p.hidden);
            assert!(e.within(reference::DEVICE_TOLERANCE), "{cell:?}: one call vs reference {}", e.worst);
            let label = format!("{cell:?} state={with_state}");
            chunked_equals_one_call(&mut StreamingLayer::new(layer), &p, &whole.h, whole.c.as_deref(), &label);
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
