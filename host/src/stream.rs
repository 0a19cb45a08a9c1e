//! Streaming: a recurrent layer that carries its state across calls, so a sequence can be fed
//! chunk by chunk.
//!
//! [`StreamingLayer`] wraps a [`SparseRecurrentLayer`] and keeps the hidden state `h` (and, for
//! LSTM, the cell state `c`) between [`forward`](StreamingLayer::forward) calls: running `T`
//! steps as chunks of `T₁, T₂, …` steps gives, bit for bit, the outputs of one call of `T`
//! steps. Uses: input that arrives in pieces (speech, telemetry), sequences longer than the
//! kernel's 32-bit index limit per call, or a state to save and restore between requests.
//!
//! # State hand-over
//!
//! [`StreamState`] is the convention, kept apart from the GPU so the CPU reference can be driven
//! by the very same code (the tests do): after a chunk,
//!
//! - `h` becomes the **last step** of the chunk's output `h` (`[T][B][H]` → its final `[B][H]`
//!   block). The kernel writes every `h_t` as the fp16 value it carries forward, converted to
//!   `f32` exactly, and rounds `h0` to fp16 when it starts, so passing that block back as `h0`
//!   loses nothing;
//! - LSTM's `c` becomes the chunk's final cell state, which the kernel returns in `f32` and takes
//!   back as `c0` unchanged.
//!
//! A fresh (or [`reset`](StreamingLayer::reset)) stream passes no initial state at all, exactly
//! like a plain call with `h0 = c0 = None` (zeros). A call that fails leaves the state as it was,
//! so the chunk can be retried.
//!
//! # Whole models
//!
//! [`StreamingModel`] does the same for a unidirectional stack of layers ([`Model`]): after a
//! chunk, every layer's state becomes its final `h` (`h_n`, fp16-exact) and, for LSTM, its
//! final `c` (`c_n`, f32), passed back as the next chunk's `h0`/`c0` (`[L][B][H]`), so a chunked
//! run equals one long call exactly; [`ModelStreamState`] is that rule as host data, usable
//! with [`crate::reference::forward_model`] too. Each layer's input projection works row by
//! row, so it does not care where a chunk starts. A bidirectional model cannot stream (its
//! reverse direction starts at the end of the sequence): [`StreamingModel::new`] refuses it
//! with [`Error::NotStreamable`].
//!
//! # Example
//!
//! ```no_run
//! use sprnn::layer::Input;
//! use sprnn::{Cell, Gpu, LayerOptions, SparseRecurrentLayer, StreamingLayer};
//!
//! # fn main() -> sprnn::Result<()> {
//! let gpu = Gpu::new(0)?;
//! let (h, b) = (1152, 4);
//! let w_hh = sprnn::sparse::random_recurrent(1, 4 * h, h, 0.1, 0.9)?;
//! let layer = SparseRecurrentLayer::new(&gpu, Cell::Lstm, &w_hh, &vec![0.0; 4 * h], b, &LayerOptions::default())?;
//! let mut stream = StreamingLayer::new(layer);
//! for _ in 0..10 {
//!     let chunk = vec![0.1f32; 32 * b * 4 * h]; // 32 steps of U = W_ih x + b_ih, [32][B][4H]
//!     let out = stream.forward(Input::F32(&chunk), 32)?; // continues where the last chunk ended
//!     assert_eq!(out.h.len(), 32 * b * h);
//! }
//! let (h_now, c_now) = stream.state(); // save it; `set_state` restores it later
//! # let _ = (h_now, c_now);
//! # Ok(())
//! # }
//! ```

use std::marker::PhantomData;

use crate::args::{check_finite, check_len};
use crate::error::{Error, Result};
use crate::layer::SparseRecurrentLayer;
use crate::model::Model;
use crate::tensors::{Input, ModelOutput, Output};
use crate::Cell;

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::OneLayer {}
    impl Sealed for super::Stack {}
    impl Sealed for crate::layer::SparseRecurrentLayer {}
    impl Sealed for crate::model::Model {}
}

/// What a stream's state covers: one layer ([`OneLayer`]) or a stack of layers ([`Stack`]).
/// Names the state's shape and its owner in the messages of [`Error::Input`].
pub trait Scope: sealed::Sealed {
    /// The state's shape, e.g. `"B*H"`.
    const SHAPE: &'static str;
    /// What the state belongs to, e.g. `"layer"`.
    const OWNER: &'static str;
}

/// The scope of [`StreamState`]: one layer, state `[B][H]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OneLayer;

/// The scope of [`ModelStreamState`]: a unidirectional stack of `L` layers, state `[L][B][H]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stack;

impl Scope for OneLayer {
    const SHAPE: &'static str = "B*H";
    const OWNER: &'static str = "layer";
}

impl Scope for Stack {
    const SHAPE: &'static str = "L*B*H";
    const OWNER: &'static str = "model";
}

/// The state a stream carries between chunks, and the rule that advances it (see the
/// [module docs](self#state-hand-over)): `h` and (LSTM) `c` of every layer in scope `S`. Pure
/// host data: [`Streaming`] uses it around the GPU, and the same value can drive the CPU
/// reference chunk by chunk ([`crate::reference::forward_u`], [`crate::reference::forward_model`]).
#[derive(Clone, Debug, PartialEq)]
pub struct ChunkState<S: Scope> {
    cell: Cell,
    layers: usize,
    batch: usize,
    hidden: usize,
    /// `[L][B][H]`; `None` until the first chunk (or after a reset): zeros, not passed.
    h: Option<Vec<f32>>,
    /// LSTM `[L][B][H]`; `None` for other cells and for a fresh LSTM stream.
    c: Option<Vec<f32>>,
    steps: u64,
    scope: PhantomData<S>,
}

/// The state of one layer's stream ([`StreamingLayer`]), `[B][H]` each.
pub type StreamState = ChunkState<OneLayer>;

/// The state a stream of a whole unidirectional model carries between chunks ([`StreamingModel`]):
/// `h` and (LSTM) `c` of every layer, `[L][B][H]` each (see the [module docs](self#whole-models)).
pub type ModelStreamState = ChunkState<Stack>;

impl<S: Scope> ChunkState<S> {
    fn fresh(cell: Cell, layers: usize, batch: usize, hidden: usize) -> ChunkState<S> {
        ChunkState { cell, layers, batch, hidden, h: None, c: None, steps: 0, scope: PhantomData }
    }

    /// Values in `h` (and in `c`): `L·B·H`.
    fn len(&self) -> usize {
        self.layers * self.batch * self.hidden
    }

    /// The initial state to pass to the next chunk, `(h0, c0)` as `forward` takes them: `None`
    /// where the state is still the implicit zeros.
    pub fn initial(&self) -> (Option<&[f32]>, Option<&[f32]>) {
        (self.h.as_deref(), self.c.as_deref())
    }

    /// The current state `(h, c)` (`c` for LSTM only), zeros when fresh.
    pub fn state(&self) -> (Vec<f32>, Option<Vec<f32>>) {
        let zeros = || vec![0.0f32; self.len()];
        let h = self.h.clone().unwrap_or_else(zeros);
        let c = (self.cell == Cell::Lstm).then(|| self.c.clone().unwrap_or_else(zeros));
        (h, c)
    }

    /// Replaces the state. `h` is `[B][H]` (a model's `[L][B][H]`); `c` is LSTM's cell state of
    /// the same shape (`None`: zeros) and must be `None` for the other cells. Every value must be
    /// finite.
    ///
    /// Errors ([`Error::Input`]) name the argument and the expected size; the state is unchanged
    /// then. The GPU rounds `h` to fp16 when it starts (as it does for any `h0`).
    pub fn set_state(&mut self, h: &[f32], c: Option<&[f32]>) -> Result<()> {
        check_len("h", h.len(), self.len(), S::SHAPE)?;
        check_finite("h", h)?;
        if let Some(c) = c {
            if self.cell != Cell::Lstm {
                return Err(Error::Input { name: "c", problem: format!("given for a {} {}; only LSTM has a cell state", self.cell.name(), S::OWNER) });
            }
            check_len("c", c.len(), self.len(), S::SHAPE)?;
            check_finite("c", c)?;
        }
        self.h = Some(h.to_vec());
        self.c = c.map(<[f32]>::to_vec);
        Ok(())
    }

    /// Back to the fresh state (zeros, not passed) and a step count of 0.
    pub fn reset(&mut self) {
        self.h = None;
        self.c = None;
        self.steps = 0;
    }

    /// Steps run since the state was made or last reset ([`Self::set_state`] keeps the count).
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// Cell type.
    pub fn cell(&self) -> Cell {
        self.cell
    }

    /// Batch size B.
    pub fn batch(&self) -> usize {
        self.batch
    }

    /// Hidden size H.
    pub fn hidden(&self) -> usize {
        self.hidden
    }

    /// Takes on the final state `h` (checked by the caller) and `c` of a chunk of `steps` steps
    /// after checking `c` (named `c_name`; `final_c` is what an LSTM chunk returns): missing for
    /// LSTM, present for other cells, or of the wrong length is [`Error::Input`] and changes
    /// nothing.
    fn take(&mut self, steps: usize, h: &[f32], c_name: &'static str, final_c: &str, c: Option<&[f32]>) -> Result<()> {
        match (self.cell, c) {
            (Cell::Lstm, Some(c)) => check_len(c_name, c.len(), self.len(), S::SHAPE)?,
            (Cell::Lstm, None) => return Err(Error::Input { name: c_name, problem: format!("missing; an LSTM chunk returns its {final_c}") }),
            (_, None) => {}
            (cell, Some(_)) => return Err(Error::Input { name: c_name, problem: format!("given for a {} {}; only LSTM has a cell state", cell.name(), S::OWNER) }),
        }
        self.h = Some(h.to_vec());
        self.c = c.map(<[f32]>::to_vec);
        self.steps += steps as u64;
        Ok(())
    }
}

/// [`Error::Input`] for a chunk of no steps.
fn check_chunk_steps(steps: usize) -> Result<()> {
    if steps == 0 {
        return Err(Error::Input { name: "steps", problem: "0; a chunk needs at least one step".into() });
    }
    Ok(())
}

impl StreamState {
    /// A fresh state (zeros) for a layer of `cell`, batch `batch` and hidden size `hidden`.
    pub fn new(cell: Cell, batch: usize, hidden: usize) -> StreamState {
        ChunkState::fresh(cell, 1, batch, hidden)
    }

    /// Advances the state past a chunk of `steps` steps whose output `h` (`[steps][B][H]`) and
    /// final LSTM cell state `c` (`[B][H]`) are given.
    ///
    /// Errors ([`Error::Input`]): `steps` is 0, `h` is not `steps·B·H` values, or `c` is
    /// missing (LSTM), present (other cells) or not `B·H` values. The state is unchanged then.
    pub fn advance(&mut self, steps: usize, h: &[f32], c: Option<&[f32]>) -> Result<()> {
        let bh = self.batch * self.hidden;
        check_chunk_steps(steps)?;
        check_len("h", h.len(), steps * bh, "T*B*H")?;
        self.take(steps, &h[(steps - 1) * bh..], "c", "final cell state", c)
    }
}

impl ModelStreamState {
    /// A fresh state (zeros) for a unidirectional model of `layers` layers.
    pub fn new(cell: Cell, layers: usize, batch: usize, hidden: usize) -> ModelStreamState {
        ChunkState::fresh(cell, layers, batch, hidden)
    }

    /// Advances past a chunk of `steps` steps that ended in `h_n` and (LSTM) `c_n`
    /// (`[L][B][H]`). Errors ([`Error::Input`]) leave the state unchanged: `steps` is 0, a
    /// length is wrong, `c_n` is missing for LSTM or given for another cell.
    pub fn advance(&mut self, steps: usize, h_n: &[f32], c_n: Option<&[f32]>) -> Result<()> {
        check_chunk_steps(steps)?;
        check_len("h_n", h_n.len(), self.len(), "L*B*H")?;
        self.take(steps, h_n, "c_n", "final cell states", c_n)
    }
}

/// What a [`Streaming`] wraps: a layer ([`SparseRecurrentLayer`]) or a unidirectional
/// [`Model`], run one chunk at a time from the state its stream carries.
pub trait Chunked: sealed::Sealed {
    /// What the state covers: one layer or a stack.
    type Scope: Scope;
    /// A chunk's input.
    type Input<'a>;
    /// A chunk's outputs.
    type Output;
    /// Runs `steps` steps of `input` from `state` (as the wrapped type's `forward` does).
    fn run(&mut self, state: &ChunkState<Self::Scope>, input: Self::Input<'_>, steps: usize) -> Result<Self::Output>;
    /// Advances `state` past the chunk that gave `out`.
    fn carry(state: &mut ChunkState<Self::Scope>, steps: usize, out: &Self::Output) -> Result<()>;
}

impl Chunked for SparseRecurrentLayer {
    type Scope = OneLayer;
    type Input<'a> = Input<'a>;
    type Output = Output;

    fn run(&mut self, state: &StreamState, u: Input<'_>, steps: usize) -> Result<Output> {
        let (h0, c0) = state.initial();
        self.set_steps_done(state.steps());
        self.forward(u, steps, h0, c0)
    }

    fn carry(state: &mut StreamState, steps: usize, out: &Output) -> Result<()> {
        state.advance(steps, &out.h, out.c.as_deref())
    }
}

impl Chunked for Model {
    type Scope = Stack;
    type Input<'a> = &'a [f32];
    type Output = ModelOutput;

    fn run(&mut self, state: &ModelStreamState, x: &[f32], steps: usize) -> Result<ModelOutput> {
        let (h0, c0) = state.initial();
        self.set_steps_done(state.steps());
        self.forward(x, steps, h0, c0)
    }

    fn carry(state: &mut ModelStreamState, steps: usize, out: &ModelOutput) -> Result<()> {
        state.advance(steps, &out.h_n, out.c_n.as_deref())
    }
}

/// A layer or unidirectional model that carries `h` (and LSTM's `c`) from one
/// [`forward`](Streaming::forward) call to the next: feeding a sequence chunk by chunk gives
/// exactly what one long call gives. See the [module docs](self).
#[derive(Debug)]
pub struct Streaming<T: Chunked> {
    inner: T,
    state: ChunkState<T::Scope>,
}

/// A [`SparseRecurrentLayer`] that streams ([`Streaming`]).
pub type StreamingLayer = Streaming<SparseRecurrentLayer>;

/// A unidirectional [`Model`] that streams ([`Streaming`]; see the
/// [module docs](self#whole-models)).
pub type StreamingModel = Streaming<Model>;

impl<T: Chunked> Streaming<T> {
    /// Runs the next `steps` steps of `input`, starting from the state the previous chunk left
    /// (zeros at first), and returns the chunk's outputs as the wrapped type's `forward` does:
    /// a layer takes `[steps][B][G·H]` input pre-activations (`W_ih x_t + b_ih`) and returns
    /// every `h_t` (`[steps][B][H]`) and LSTM's final `c`; a model takes `x` (`[steps][B][I]`)
    /// and returns its `output` (`[steps][B][H]`) and final states ([`Model::forward`]). On
    /// error the state is unchanged.
    pub fn forward(&mut self, input: T::Input<'_>, steps: usize) -> Result<T::Output> {
        let out = self.inner.run(&self.state, input, steps)?;
        T::carry(&mut self.state, steps, &out)?;
        Ok(out)
    }

    /// Forgets the state: the next chunk starts from zeros, as a new sequence.
    pub fn reset(&mut self) {
        self.state.reset();
    }

    /// The current state `(h, c)`: `h` is `[B][H]` (a model's `[L][B][H]`; the last step's
    /// output, zeros when fresh), `c` LSTM's cell state of the same shape (`None` for the other
    /// cells).
    pub fn state(&self) -> (Vec<f32>, Option<Vec<f32>>) {
        self.state.state()
    }

    /// Sets the state the next chunk starts from (to resume a saved stream, or to start from a
    /// given `h0`/`c0`). Checked as [`ChunkState::set_state`] does: sizes, finite values, `c`
    /// only for LSTM (`None`: zeros); an error leaves the state unchanged.
    pub fn set_state(&mut self, h: &[f32], c: Option<&[f32]>) -> Result<()> {
        self.state.set_state(h, c)
    }

    /// Steps run since the stream was made or last reset.
    pub fn steps(&self) -> u64 {
        self.state.steps()
    }

    /// Unwraps the layer or model, dropping the state.
    pub fn into_inner(self) -> T {
        self.inner
    }
}

impl StreamingLayer {
    /// Wraps `layer` with a fresh (zero) state.
    pub fn new(layer: SparseRecurrentLayer) -> StreamingLayer {
        let state = StreamState::new(layer.cell(), layer.batch(), layer.hidden());
        Streaming { inner: layer, state }
    }

    /// The wrapped layer (for its shape and launch figures).
    pub fn layer(&self) -> &SparseRecurrentLayer {
        &self.inner
    }
}

impl StreamingModel {
    /// Wraps `model` with a fresh (zero) state; [`Error::NotStreamable`] for a bidirectional
    /// model.
    pub fn new(model: Model) -> Result<StreamingModel> {
        if model.directions() != 1 {
            return Err(Error::NotStreamable { directions: model.directions() });
        }
        let state = ModelStreamState::new(model.cell(), model.num_layers(), model.batch(), model.hidden());
        Ok(Streaming { inner: model, state })
    }

    /// The wrapped model.
    pub fn model(&self) -> &Model {
        &self.inner
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advance_keeps_the_last_step_and_c() {
        let mut s = StreamState::new(Cell::Lstm, 2, 3);
        assert_eq!(s.initial(), (None, None));
        let h: Vec<f32> = (0..12).map(|i| i as f32).collect();
        let c = [9.0f32; 6];
        s.advance(2, &h, Some(&c)).unwrap();
        assert_eq!(s.initial(), (Some(&h[6..]), Some(&c[..])));
        assert_eq!(s.steps(), 2);
        s.reset();
        assert_eq!(s.state(), (vec![0.0; 6], Some(vec![0.0; 6])));
        assert_eq!(s.steps(), 0);
    }

    #[test]
    fn bad_state_is_refused_and_changes_nothing() {
        let mut s = StreamState::new(Cell::Gru, 2, 3);
        s.set_state(&[0.5; 6], None).unwrap();
        let before = s.clone();
        for (h, c, name) in [
            (&[0.0f32; 5][..], None, "h"),
            (&[0.0f32; 6][..], Some(&[0.0f32; 6][..]), "c"),
            (&[f32::NAN, 0.0, 0.0, 0.0, 0.0, 0.0][..], None, "h"),
        ] {
            match s.set_state(h, c) {
                Err(Error::Input { name: n, .. }) => assert_eq!(n, name),
                other => panic!("expected an input error for {name}, got {other:?}"),
            }
            assert_eq!(s, before);
        }
        assert!(s.advance(0, &[], None).is_err());
        assert!(s.advance(1, &[0.0; 6], Some(&[0.0; 6])).is_err());
        assert_eq!(s, before);

        let mut l = StreamState::new(Cell::Lstm, 1, 2);
        assert!(l.set_state(&[0.0; 2], Some(&[f32::INFINITY, 0.0])).is_err());
        assert!(l.advance(1, &[0.0; 2], None).is_err());
        assert!(l.set_state(&[0.0; 2], Some(&[1.0, 2.0])).is_ok());
    }
}
