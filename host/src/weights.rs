//! Weight files: layers and stacks of layers in safetensors, with PyTorch's parameter names.
//!
//! # Types
//!
//! [`LayerWeights`] is one direction of one layer: `W_ih` (`G*H × I`, dense or sparse, a
//! [`Matrix`]), `W_hh` (`G*H × H`, a [`Csr`]), `b_ih` and `b_hh` (`G*H` each), gate-major in
//! PyTorch's order (RNN `[h]`, GRU `[r, z, n]`, LSTM `[i, f, g, o]`). [`ModelWeights`] is a stack
//! of `L` layers of one or two directions, `layers[l][d]` with `d = 0` forward and `d = 1`
//! reverse; layer 0 reads the model input (`I` values), layer `l > 0` the previous layer's output
//! (`D * H` values). Both constructors check every shape, so a value of either type is consistent.
//!
//! # File format
//!
//! A safetensors file as PyTorch's `state_dict()` of `torch.nn.RNN/GRU/LSTM` writes it
//! (`safetensors.torch.save_file(rnn.state_dict(), path)`): tensors `weight_ih_l{l}`,
//! `weight_hh_l{l}`, `bias_ih_l{l}`, `bias_hh_l{l}`, with the suffix `_reverse` for the reverse
//! direction. Loading:
//!
//! * dtypes F32, F16 and BF16 are read (converted exactly to `f32`); anything else is
//!   [`WeightsError::WrongDtype`].
//! * The cell type is not in a state dict: it is an argument. `G` follows from `weight_hh`'s shape
//!   (`G*H × H`) and must equal the cell's ([`WeightsError::GateMismatch`]).
//! * A pruned weight is the dense tensor with zeros (what PyTorch holds); zeros of `weight_hh`
//!   are dropped into a [`Csr`]. `weight_ih` stays [`Matrix::Dense`] unless stored in the CSR
//!   encoding below, which loads as [`Matrix::Sparse`].
//! * Without any `bias_*` tensor (PyTorch's `bias=False`) the biases are zeros; with some but not
//!   all, the missing one is [`WeightsError::MissingTensor`].
//! * Other tensors (inputs or outputs stored alongside, for example) are ignored, except
//!   `weight_hr_l*` (LSTM `proj_size`), which is [`WeightsError::Unsupported`].
//! * If the metadata holds `sprnn.cell`, it must name the cell given ([`WeightsError::CellMismatch`]).
//!
//! **CSR encoding** (optional, sprnn's own; written with [`Storage::Csr`]): instead of the dense
//! tensor `NAME`, four tensors
//!
//! | tensor | dtype | shape |
//! | --- | --- | --- |
//! | `NAME.csr_shape` | I64 | `[2]`: rows, cols |
//! | `NAME.csr_row_ptr` | I64 (or I32) | `[rows + 1]` |
//! | `NAME.csr_col_idx` | I32 (or I64) | `[nnz]`, increasing within a row |
//! | `NAME.csr_values` | F32, F16 or BF16 | `[nnz]` |
//!
//! Saving writes metadata `format = pt` (as `safetensors.torch` does) and `sprnn.cell`. Values
//! are converted to the chosen [`DType`]; a finite value that overflows it is
//! [`WeightsError::NotRepresentable`]. A nonzero that rounds to zero in F16/BF16 is stored as zero
//! and therefore dropped from `W_hh` when the file is read back.
//!
//! Every malformed file gets a [`WeightsError`] naming the tensor and what is wrong with it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use half::{bf16, f16};
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use thiserror::Error;

use crate::sparse::{Dense, Matrix};
use crate::{Cell, Csr, SparseError};
use sprnn_kernels::format::MAX_HIDDEN;

/// Why a weight file or a set of weights was rejected.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum WeightsError {
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The bytes are not a valid safetensors file (truncated, bad header, data offsets that do not
    /// match the shapes, ...).
    #[error("not a valid safetensors file: {reason}")]
    Corrupt {
        /// What the parser reported.
        reason: String,
    },
    /// The file has the tensors a model needs only under a module prefix (`rnn.weight_hh_l0`, as
    /// the state dict of a bigger model names them), and no [`LoadOptions::prefix`] was given.
    #[error("no tensor weight_hh_l0, but the file has it as {prefix}weight_hh_l0 (the state dict of a bigger model): give the prefix \"{prefix}\" (LoadOptions::prefix; on the command line, --prefix {prefix})")]
    Prefixed {
        /// The prefix the file's names carry, e.g. `"rnn."`.
        prefix: String,
    },
    /// A tensor the model needs is not in the file.
    #[error("missing tensor {name}")]
    MissingTensor {
        /// Its name.
        name: String,
    },
    /// A tensor (or, for [`LayerWeights::new`], an argument) has the wrong shape.
    #[error("{name} has shape {got:?}, expected {expected}")]
    WrongShape {
        /// Tensor or argument name.
        name: String,
        /// The shape expected, in words (e.g. `"[G*H=12, H=4]"`).
        expected: String,
        /// The shape found.
        got: Vec<usize>,
    },
    /// A tensor has a dtype that cannot be read for its role.
    #[error("{name} has dtype {dtype}, expected {expected}")]
    WrongDtype {
        /// Tensor name.
        name: String,
        /// The dtype found.
        dtype: String,
        /// What is accepted.
        expected: &'static str,
    },
    /// A value is NaN or infinite.
    #[error("{name}[{position:?}] (flat index {index}) is {value}")]
    NonFinite {
        /// Tensor (or argument) name.
        name: String,
        /// Flat index of the value (in the dense tensor, or in `csr_values`).
        index: usize,
        /// Multi-dimensional position of the value in the (dense) tensor.
        position: Vec<usize>,
        /// The value.
        value: f32,
    },
    /// The hidden size exceeds what the kernel format can index ([`MAX_HIDDEN`]).
    #[error("{name}: hidden size {hidden} exceeds the maximum {max}")]
    HiddenTooLarge {
        /// Tensor (or argument) it was read from.
        name: String,
        /// The hidden size.
        hidden: usize,
        /// [`MAX_HIDDEN`].
        max: usize,
    },
    /// `weight_hh`'s rows are not `G * H` for the cell given.
    #[error("{name} is {rows} x {hidden}: a {} layer needs {gates} * {hidden} rows", .cell.name())]
    GateMismatch {
        /// Tensor name.
        name: String,
        /// Rows found.
        rows: usize,
        /// Columns found (H).
        hidden: usize,
        /// The cell given.
        cell: Cell,
        /// Its gate count G.
        gates: usize,
    },
    /// Layers or directions of one model disagree (hidden size, input size of a layer, cell,
    /// directions), or a layer or direction is missing.
    #[error("{name}: {what}")]
    InconsistentLayers {
        /// The tensor (or layer) where the inconsistency was found.
        name: String,
        /// What disagrees with what.
        what: String,
    },
    /// A CSR-encoded tensor does not form a valid matrix.
    #[error("{name}: invalid CSR encoding: {source}")]
    InvalidCsr {
        /// Base tensor name.
        name: String,
        /// What [`Csr::new`] rejected.
        source: SparseError,
    },
    /// The file's `sprnn.cell` metadata names another cell than the one given.
    #[error("file says cell \"{file}\", but {} was asked for", .given.name())]
    CellMismatch {
        /// Cell named in the file.
        file: String,
        /// Cell given.
        given: Cell,
    },
    /// The file holds something this library does not implement.
    #[error("{name}: unsupported: {what}")]
    Unsupported {
        /// Tensor name.
        name: String,
        /// What is not supported.
        what: String,
    },
    /// A finite value does not fit the dtype chosen for saving.
    #[error("{name}[{index}] = {value} overflows {dtype:?}")]
    NotRepresentable {
        /// Tensor name.
        name: String,
        /// Flat index in the written tensor.
        index: usize,
        /// The value.
        value: f32,
        /// The dtype.
        dtype: DType,
    },
}

/// Floating-point dtype of saved tensors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum DType {
    /// IEEE single precision.
    #[default]
    F32,
    /// IEEE half precision (rounded to nearest even).
    F16,
    /// bfloat16 (rounded to nearest even).
    BF16,
}

impl DType {
    fn safetensors(self) -> Dtype {
        match self {
            DType::F32 => Dtype::F32,
            DType::F16 => Dtype::F16,
            DType::BF16 => Dtype::BF16,
        }
    }
}

/// How sparse weights are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Storage {
    /// Dense tensors with zeros, exactly what PyTorch's `state_dict` holds (loadable by
    /// `load_state_dict`).
    #[default]
    Dense,
    /// `weight_hh` (and a sparse `weight_ih`) in the CSR encoding of the [module docs](self).
    Csr,
}

/// Options of [`ModelWeights::from_safetensors_with`] and [`ModelWeights::load_with`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct LoadOptions {
    /// Prepended to every tensor name: `"rnn."` reads `rnn.weight_hh_l0` and so on, as the
    /// state dict of a model holding the recurrent module as `rnn` names them. Empty: PyTorch's
    /// names of the module itself.
    pub prefix: String,
}

/// Options of [`ModelWeights::to_safetensors`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SaveOptions {
    /// Dtype of every floating-point tensor.
    pub dtype: DType,
    /// How sparse weights are stored.
    pub storage: Storage,
}

/// One direction of one layer (see the [module docs](self)).
#[derive(Debug, Clone, PartialEq)]
pub struct LayerWeights {
    cell: Cell,
    input_size: usize,
    hidden: usize,
    w_ih: Matrix,
    w_hh: Csr,
    b_ih: Vec<f32>,
    b_hh: Vec<f32>,
}

fn check_finite(name: &str, values: &[f32], shape: &[usize]) -> Result<(), WeightsError> {
    if let Some(index) = values.iter().position(|v| !v.is_finite()) {
        let mut position = vec![0; shape.len()];
        let mut rest = index;
        for (p, &d) in position.iter_mut().zip(shape).rev() {
            *p = rest % d.max(1);
            rest /= d.max(1);
        }
        return Err(WeightsError::NonFinite { name: name.to_string(), index, position, value: values[index] });
    }
    Ok(())
}

impl LayerWeights {
    /// Builds a layer from its parts, checking: `W_hh` is `G*H × H` for `cell`
    /// ([`WeightsError::GateMismatch`]), `H ≤ MAX_HIDDEN` ([`WeightsError::HiddenTooLarge`]),
    /// `W_ih` has `G*H` rows and the biases `G*H` values ([`WeightsError::WrongShape`], named
    /// `w_ih`, `b_ih`, `b_hh`), and every value is finite ([`WeightsError::NonFinite`]).
    pub fn new(cell: Cell, w_ih: Matrix, w_hh: Csr, b_ih: Vec<f32>, b_hh: Vec<f32>) -> Result<Self, WeightsError> {
        let hidden = w_hh.cols();
        let gates = cell.gates();
        if hidden > MAX_HIDDEN {
            return Err(WeightsError::HiddenTooLarge { name: "w_hh".into(), hidden, max: MAX_HIDDEN });
        }
        if w_hh.rows() != gates * hidden {
            return Err(WeightsError::GateMismatch { name: "w_hh".into(), rows: w_hh.rows(), hidden, cell, gates });
        }
        let gh = gates * hidden;
        if w_ih.rows() != gh {
            return Err(WeightsError::WrongShape {
                name: "w_ih".into(),
                expected: format!("[G*H={gh}, I]"),
                got: vec![w_ih.rows(), w_ih.cols()],
            });
        }
        for (name, b) in [("b_ih", &b_ih), ("b_hh", &b_hh)] {
            if b.len() != gh {
                return Err(WeightsError::WrongShape { name: name.into(), expected: format!("[G*H={gh}]"), got: vec![b.len()] });
            }
            check_finite(name, b, &[gh])?;
        }
        if let Matrix::Dense(d) = &w_ih {
            check_finite("w_ih", d.data(), &[d.rows(), d.cols()])?;
        } // A Csr is finite by construction.
        Ok(LayerWeights { cell, input_size: w_ih.cols(), hidden, w_ih, w_hh, b_ih, b_hh })
    }

    /// Cell type.
    pub fn cell(&self) -> Cell {
        self.cell
    }

    /// Input size `I` (columns of `W_ih`).
    pub fn input_size(&self) -> usize {
        self.input_size
    }

    /// Hidden size `H`.
    pub fn hidden(&self) -> usize {
        self.hidden
    }

    /// Input weights, `G*H × I`.
    pub fn w_ih(&self) -> &Matrix {
        &self.w_ih
    }

    /// Recurrent weights, `G*H × H`.
    pub fn w_hh(&self) -> &Csr {
        &self.w_hh
    }

    /// Input bias, `G*H`.
    pub fn b_ih(&self) -> &[f32] {
        &self.b_ih
    }

    /// Recurrent bias, `G*H`.
    pub fn b_hh(&self) -> &[f32] {
        &self.b_hh
    }

    /// Reads layer 0, forward direction (`*_l0`) of a safetensors file (see
    /// [`ModelWeights::from_safetensors`]; the whole file is checked).
    pub fn from_safetensors(bytes: &[u8], cell: Cell) -> Result<Self, WeightsError> {
        let mut m = ModelWeights::from_safetensors(bytes, cell)?;
        Ok(m.layers.swap_remove(0).swap_remove(0))
    }

    /// Writes this layer as a one-layer, one-direction model (`*_l0`).
    pub fn to_safetensors(&self, options: SaveOptions) -> Result<Vec<u8>, WeightsError> {
        ModelWeights::single(self.clone()).to_safetensors(options)
    }

    /// [`LayerWeights::from_safetensors`] on a file.
    pub fn load(path: impl AsRef<Path>, cell: Cell) -> Result<Self, WeightsError> {
        Self::from_safetensors(&read(path.as_ref())?, cell)
    }

    /// [`LayerWeights::to_safetensors`] to a file.
    pub fn save(&self, path: impl AsRef<Path>, options: SaveOptions) -> Result<(), WeightsError> {
        write(path.as_ref(), &self.to_safetensors(options)?)
    }
}

/// A stack of `L` layers of `D` = 1 or 2 directions (see the [module docs](self)).
#[derive(Debug, Clone, PartialEq)]
pub struct ModelWeights {
    cell: Cell,
    layers: Vec<Vec<LayerWeights>>,
}

impl ModelWeights {
    /// Builds a model from `layers[l][d]`, checking that there is at least one layer, that every
    /// layer has the same number of directions (1 or 2), the same cell and hidden size, that the
    /// directions of layer 0 agree on the input size, and that layer `l > 0` takes `D * H` inputs
    /// (all [`WeightsError::InconsistentLayers`]).
    pub fn new(cell: Cell, layers: Vec<Vec<LayerWeights>>) -> Result<Self, WeightsError> {
        let first = layers.first().and_then(|l| l.first()).ok_or_else(|| WeightsError::InconsistentLayers {
            name: "layer 0".into(),
            what: "a model needs at least one layer with at least one direction".into(),
        })?;
        let (hidden, input) = (first.hidden, first.input_size);
        let dirs = layers[0].len();
        for (l, layer) in layers.iter().enumerate() {
            let bad = |what: String| WeightsError::InconsistentLayers { name: format!("layer {l}"), what };
            if layer.len() != dirs || dirs > 2 {
                return Err(bad(format!("{} directions, layer 0 has {dirs} (must be 1 or 2 for all)", layer.len())));
            }
            for (d, w) in layer.iter().enumerate() {
                if w.cell != cell {
                    return Err(bad(format!("direction {d} is {}, model is {}", w.cell.name(), cell.name())));
                }
                if w.hidden != hidden {
                    return Err(bad(format!("direction {d} has hidden size {}, layer 0 has {hidden}", w.hidden)));
                }
                let want = if l == 0 { input } else { dirs * hidden };
                if w.input_size != want {
                    return Err(bad(format!("direction {d} takes {} inputs, expected {want}", w.input_size)));
                }
            }
        }
        Ok(ModelWeights { cell, layers })
    }

    /// A model of one layer and one direction.
    pub fn single(layer: LayerWeights) -> Self {
        ModelWeights { cell: layer.cell, layers: vec![vec![layer]] }
    }

    /// Cell type.
    pub fn cell(&self) -> Cell {
        self.cell
    }

    /// Input size `I` of layer 0.
    pub fn input_size(&self) -> usize {
        self.layers[0][0].input_size
    }

    /// Hidden size `H` (the same for all layers).
    pub fn hidden(&self) -> usize {
        self.layers[0][0].hidden
    }

    /// Number of layers `L`.
    pub fn num_layers(&self) -> usize {
        self.layers.len()
    }

    /// Number of directions `D` (1, or 2 when bidirectional).
    pub fn directions(&self) -> usize {
        self.layers[0].len()
    }

    /// Whether the model is bidirectional.
    pub fn bidirectional(&self) -> bool {
        self.directions() == 2
    }

    /// Layer `l`, direction `d` (0 forward, 1 reverse).
    ///
    /// # Panics
    /// When `l >= num_layers()` or `d >= directions()`.
    pub fn layer(&self, l: usize, d: usize) -> &LayerWeights {
        &self.layers[l][d]
    }

    /// All layers, `[l][d]`.
    pub fn layers(&self) -> &[Vec<LayerWeights>] {
        &self.layers
    }

    /// Consumes the model and returns its layers, `[l][d]`.
    pub fn into_layers(self) -> Vec<Vec<LayerWeights>> {
        self.layers
    }

    /// Reads a model from the bytes of a safetensors file (see the [module docs](self)).
    ///
    /// The number of layers is one more than the largest `l` of any `weight_*_l{l}` /
    /// `bias_*_l{l}` tensor; the model is bidirectional when any `_reverse` tensor is present.
    /// Every tensor of every layer and direction must then be there.
    pub fn from_safetensors(bytes: &[u8], cell: Cell) -> Result<Self, WeightsError> {
        Self::from_safetensors_with(bytes, cell, &LoadOptions::default())
    }

    /// [`ModelWeights::from_safetensors`] with options: a [`LoadOptions::prefix`] for the state
    /// dict of a bigger model (`rnn.weight_hh_l0`). Without one, a file whose names all carry a
    /// prefix is refused with [`WeightsError::Prefixed`], which names the prefix to give.
    pub fn from_safetensors_with(bytes: &[u8], cell: Cell, options: &LoadOptions) -> Result<Self, WeightsError> {
        let (_, meta) = SafeTensors::read_metadata(bytes).map_err(corrupt)?;
        if let Some(file_cell) = meta.metadata().as_ref().and_then(|m| m.get("sprnn.cell")) {
            if file_cell != cell.name() {
                return Err(WeightsError::CellMismatch { file: file_cell.clone(), given: cell });
            }
        }
        let st = SafeTensors::deserialize(bytes).map_err(corrupt)?;
        let prefix = options.prefix.as_str();
        let file = File { st: &st, prefix };
        let mut max_layer: Option<usize> = None;
        let mut reverse = false;
        let mut has_bias = false;
        let mut prefixed: Option<String> = None;
        for full in st.names() {
            let Some(name) = full.strip_prefix(prefix) else { continue };
            let base = name.split(".csr_").next().unwrap_or(name);
            if prefixed.is_none() && parse_name(base).is_none() {
                // `rnn.weight_hh_l0`: the name of a tensor sprnn reads, after a module path.
                if let Some((module, last)) = base.rsplit_once('.') {
                    if parse_name(last).is_some() {
                        prefixed = Some(format!("{prefix}{module}."));
                    }
                }
            }
            if base.starts_with("weight_hr_l") {
                return Err(WeightsError::Unsupported {
                    name: full.clone(),
                    what: "LSTM projections (proj_size > 0)".into(),
                });
            }
            if let Some((kind, l, rev)) = parse_name(base) {
                max_layer = Some(max_layer.map_or(l, |m: usize| m.max(l)));
                reverse |= rev;
                has_bias |= kind.starts_with("bias");
            }
        }
        if let (None, Some(prefix)) = (max_layer, prefixed) {
            return Err(WeightsError::Prefixed { prefix });
        }
        // The layer count comes from tensor names (`weight_hh_l4000000000` is a valid name), so
        // nothing is allocated from it: a gap fails at the first missing layer's tensors.
        let layers_n = max_layer.map_or(1, |m| m.saturating_add(1));
        let dirs = if reverse { 2 } else { 1 };
        let mut hidden0: Option<usize> = None;
        let mut input0: Option<usize> = None;
        let mut layers = Vec::new();
        for l in 0..layers_n {
            let mut layer = Vec::with_capacity(dirs);
            for d in 0..dirs {
                let suffix = format!("_l{l}{}", if d == 1 { "_reverse" } else { "" });
                let w = file.layer(cell, &suffix, has_bias, l, dirs, &mut hidden0, &mut input0)?;
                layer.push(w);
            }
            layers.push(layer);
        }
        ModelWeights::new(cell, layers)
    }

    /// Writes the model as a safetensors file's bytes with PyTorch's names.
    pub fn to_safetensors(&self, options: SaveOptions) -> Result<Vec<u8>, WeightsError> {
        let mut tensors: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = Vec::new();
        for (l, layer) in self.layers.iter().enumerate() {
            for (d, w) in layer.iter().enumerate() {
                let suffix = format!("_l{l}{}", if d == 1 { "_reverse" } else { "" });
                match (&w.w_ih, options.storage) {
                    (Matrix::Sparse(s), Storage::Csr) => put_csr(&mut tensors, &format!("weight_ih{suffix}"), s, options.dtype)?,
                    (m, _) => put_float(&mut tensors, format!("weight_ih{suffix}"), vec![m.rows(), m.cols()], &m.to_dense(), options.dtype)?,
                }
                match options.storage {
                    Storage::Csr => put_csr(&mut tensors, &format!("weight_hh{suffix}"), &w.w_hh, options.dtype)?,
                    Storage::Dense => {
                        let dense = w.w_hh.to_dense();
                        put_float(&mut tensors, format!("weight_hh{suffix}"), vec![w.w_hh.rows(), w.w_hh.cols()], &dense, options.dtype)?
                    }
                }
                put_float(&mut tensors, format!("bias_ih{suffix}"), vec![w.b_ih.len()], &w.b_ih, options.dtype)?;
                put_float(&mut tensors, format!("bias_hh{suffix}"), vec![w.b_hh.len()], &w.b_hh, options.dtype)?;
            }
        }
        let views: Vec<(String, TensorView<'_>)> = tensors
            .iter()
            .map(|(n, dt, shape, data)| {
                let v = TensorView::new(*dt, shape.clone(), data).expect("tensor sizes are computed from their shapes");
                (n.clone(), v)
            })
            .collect();
        let meta: HashMap<String, String> =
            [("format".to_string(), "pt".to_string()), ("sprnn.cell".to_string(), self.cell.name().to_string())].into();
        safetensors::serialize(views, &Some(meta)).map_err(corrupt)
    }

    /// [`ModelWeights::from_safetensors`] on a file.
    pub fn load(path: impl AsRef<Path>, cell: Cell) -> Result<Self, WeightsError> {
        Self::from_safetensors(&read(path.as_ref())?, cell)
    }

    /// [`ModelWeights::from_safetensors_with`] on a file.
    pub fn load_with(path: impl AsRef<Path>, cell: Cell, options: &LoadOptions) -> Result<Self, WeightsError> {
        Self::from_safetensors_with(&read(path.as_ref())?, cell, options)
    }

    /// [`ModelWeights::to_safetensors`] to a file.
    pub fn save(&self, path: impl AsRef<Path>, options: SaveOptions) -> Result<(), WeightsError> {
        write(path.as_ref(), &self.to_safetensors(options)?)
    }
}

fn read(path: &Path) -> Result<Vec<u8>, WeightsError> {
    std::fs::read(path).map_err(|source| WeightsError::Io { path: path.to_path_buf(), source })
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), WeightsError> {
    std::fs::write(path, bytes).map_err(|source| WeightsError::Io { path: path.to_path_buf(), source })
}

fn corrupt(e: safetensors::SafeTensorError) -> WeightsError {
    WeightsError::Corrupt { reason: e.to_string() }
}

/// Splits `weight_ih_l3_reverse` into (`"weight_ih"`, 3, true).
fn parse_name(name: &str) -> Option<(&'static str, usize, bool)> {
    for kind in ["weight_ih", "weight_hh", "bias_ih", "bias_hh"] {
        if let Some(rest) = name.strip_prefix(kind).and_then(|r| r.strip_prefix("_l")) {
            let (num, rev) = match rest.strip_suffix("_reverse") {
                Some(n) => (n, true),
                None => (rest, false),
            };
            if !num.is_empty() && num.bytes().all(|b| b.is_ascii_digit()) {
                return num.parse().ok().map(|l| (kind, l, rev));
            }
        }
    }
    None
}

fn encode(name: &str, values: &[f32], dtype: DType) -> Result<Vec<u8>, WeightsError> {
    let mut out = Vec::with_capacity(values.len() * 4);
    for (index, &v) in values.iter().enumerate() {
        let overflow = |ok: bool| {
            if ok || !v.is_finite() {
                Ok(())
            } else {
                Err(WeightsError::NotRepresentable { name: name.to_string(), index, value: v, dtype })
            }
        };
        match dtype {
            DType::F32 => out.extend_from_slice(&v.to_le_bytes()),
            DType::F16 => {
                let h = f16::from_f32(v);
                overflow(h.is_finite())?;
                out.extend_from_slice(&h.to_le_bytes());
            }
            DType::BF16 => {
                let h = bf16::from_f32(v);
                overflow(h.is_finite())?;
                out.extend_from_slice(&h.to_le_bytes());
            }
        }
    }
    Ok(out)
}

type Tensors = Vec<(String, Dtype, Vec<usize>, Vec<u8>)>;

fn put_float(t: &mut Tensors, name: String, shape: Vec<usize>, values: &[f32], dtype: DType) -> Result<(), WeightsError> {
    let data = encode(&name, values, dtype)?;
    t.push((name, dtype.safetensors(), shape, data));
    Ok(())
}

fn put_csr(t: &mut Tensors, name: &str, m: &Csr, dtype: DType) -> Result<(), WeightsError> {
    let i64s = |v: &mut dyn Iterator<Item = i64>| v.flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
    t.push((format!("{name}.csr_shape"), Dtype::I64, vec![2], i64s(&mut [m.rows() as i64, m.cols() as i64].into_iter())));
    t.push((format!("{name}.csr_row_ptr"), Dtype::I64, vec![m.rows() + 1], i64s(&mut m.row_ptr().iter().map(|&p| p as i64))));
    let cols: Vec<u8> = m.col_idx().iter().flat_map(|&c| (c as i32).to_le_bytes()).collect();
    t.push((format!("{name}.csr_col_idx"), Dtype::I32, vec![m.nnz()], cols));
    put_float(t, format!("{name}.csr_values"), vec![m.nnz()], m.values(), dtype)
}

/// A weight matrix as found in the file, before it becomes a [`Matrix`].
enum Stored {
    Dense(Vec<f32>),
    Csr(Csr),
}

/// Reading helpers over a parsed file.
struct File<'a, 'b> {
    st: &'a SafeTensors<'b>,
    /// Prepended to every tensor name looked up ([`LoadOptions::prefix`]).
    prefix: &'a str,
}

impl File<'_, '_> {
    fn get(&self, name: &str) -> Option<TensorView<'_>> {
        self.st.tensor(&format!("{}{name}", self.prefix)).ok()
    }

    fn require(&self, name: &str) -> Result<TensorView<'_>, WeightsError> {
        self.get(name).ok_or_else(|| WeightsError::MissingTensor { name: format!("{}{name}", self.prefix) })
    }

    /// Float tensor as `f32`, checked finite.
    fn floats(&self, name: &str, view: &TensorView<'_>) -> Result<Vec<f32>, WeightsError> {
        let data = view.data();
        let values: Vec<f32> = match view.dtype() {
            Dtype::F32 => data.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect(),
            Dtype::F16 => data.chunks_exact(2).map(|b| f16::from_le_bytes([b[0], b[1]]).to_f32()).collect(),
            Dtype::BF16 => data.chunks_exact(2).map(|b| bf16::from_le_bytes([b[0], b[1]]).to_f32()).collect(),
            other => {
                return Err(WeightsError::WrongDtype { name: name.into(), dtype: format!("{other:?}"), expected: "F32, F16 or BF16" })
            }
        };
        check_finite(name, &values, view.shape())?;
        Ok(values)
    }

    /// Integer tensor as `i64`.
    fn ints(&self, name: &str) -> Result<(Vec<i64>, Vec<usize>), WeightsError> {
        let view = self.require(name)?;
        let data = view.data();
        let values = match view.dtype() {
            Dtype::I64 => data.chunks_exact(8).map(|b| i64::from_le_bytes(b.try_into().expect("8 bytes"))).collect(),
            Dtype::I32 => data.chunks_exact(4).map(|b| i32::from_le_bytes(b.try_into().expect("4 bytes")) as i64).collect(),
            other => return Err(WeightsError::WrongDtype { name: name.into(), dtype: format!("{other:?}"), expected: "I64 or I32" }),
        };
        Ok((values, view.shape().to_vec()))
    }

    /// Shape `[rows, cols]` of matrix `name`, dense or CSR-encoded.
    fn matrix_shape(&self, name: &str) -> Result<[usize; 2], WeightsError> {
        let dense = self.get(name);
        let csr = self.get(&format!("{name}.csr_shape")).is_some();
        let shape = match (dense, csr) {
            (Some(_), true) => {
                return Err(WeightsError::Unsupported { name: name.into(), what: "both a dense and a CSR encoding".into() })
            }
            (Some(v), false) => v.shape().to_vec(),
            (None, true) => {
                let sname = format!("{name}.csr_shape");
                let (s, shape) = self.ints(&sname)?;
                if shape != [2] || s.iter().any(|&v| v < 0) {
                    return Err(WeightsError::WrongShape { name: sname, expected: "[2] of non-negative sizes".into(), got: shape });
                }
                s.iter().map(|&v| v as usize).collect()
            }
            (None, false) => return Err(WeightsError::MissingTensor { name: name.into() }),
        };
        match shape[..] {
            [r, c] => Ok([r, c]),
            _ => Err(WeightsError::WrongShape { name: name.into(), expected: "a matrix (2 dimensions)".into(), got: shape }),
        }
    }

    /// The values of matrix `name` (shape already checked by [`File::matrix_shape`]).
    fn matrix(&self, name: &str, [rows, cols]: [usize; 2]) -> Result<Stored, WeightsError> {
        if let Some(v) = self.get(name) {
            return Ok(Stored::Dense(self.floats(name, &v)?));
        }
        let pname = format!("{name}.csr_row_ptr");
        let (ptr, pshape) = self.ints(&pname)?;
        if pshape != [rows + 1] {
            return Err(WeightsError::WrongShape { name: pname, expected: format!("[rows + 1 = {}]", rows + 1), got: pshape });
        }
        let cname = format!("{name}.csr_col_idx");
        let (cols_i, cshape) = self.ints(&cname)?;
        let vname = format!("{name}.csr_values");
        let vview = self.require(&vname)?;
        let values = self.floats(&vname, &vview)?;
        if cshape.len() != 1 || vview.shape().len() != 1 {
            return Err(WeightsError::WrongShape { name: cname, expected: "[nnz]".into(), got: cshape });
        }
        let bad = |source| WeightsError::InvalidCsr { name: name.into(), source };
        if let Some(&p) = ptr.iter().find(|&&p| p < 0) {
            return Err(bad(SparseError::RowPtr { what: format!("negative entry {p}") }));
        }
        if let Some((i, &c)) = cols_i.iter().enumerate().find(|(_, &c)| c < 0 || c > u32::MAX as i64) {
            let row = ptr.iter().rposition(|&p| p as usize <= i).unwrap_or(0);
            return Err(bad(SparseError::ColumnOutOfRange { row, col: c.max(0) as usize, cols }));
        }
        Csr::new(rows, cols, ptr.iter().map(|&p| p as usize).collect(), cols_i.iter().map(|&c| c as u32).collect(), values)
            .map(Stored::Csr)
            .map_err(bad)
    }

    fn bias(&self, name: &str, gh: usize, has_bias: bool) -> Result<Vec<f32>, WeightsError> {
        if !has_bias {
            return Ok(vec![0.0; gh]);
        }
        let v = self.require(name)?;
        if v.shape() != [gh] {
            return Err(WeightsError::WrongShape { name: name.into(), expected: format!("[G*H={gh}]"), got: v.shape().to_vec() });
        }
        self.floats(name, &v)
    }

    /// Reads one direction of one layer (`suffix` like `_l1_reverse`).
    #[allow(clippy::too_many_arguments)]
    fn layer(
        &self,
        cell: Cell,
        suffix: &str,
        has_bias: bool,
        l: usize,
        dirs: usize,
        hidden0: &mut Option<usize>,
        input0: &mut Option<usize>,
    ) -> Result<LayerWeights, WeightsError> {
        let gates = cell.gates();
        let hh = format!("weight_hh{suffix}");
        let [rows, hidden] = self.matrix_shape(&hh)?;
        if hidden > MAX_HIDDEN {
            return Err(WeightsError::HiddenTooLarge { name: hh, hidden, max: MAX_HIDDEN });
        }
        if rows != gates * hidden {
            return Err(WeightsError::GateMismatch { name: hh, rows, hidden, cell, gates });
        }
        match *hidden0 {
            Some(h) if h != hidden => {
                return Err(WeightsError::InconsistentLayers {
                    name: hh,
                    what: format!("hidden size {hidden}, but weight_hh_l0 has {h}"),
                })
            }
            _ => *hidden0 = Some(hidden),
        }
        let gh = rows;
        let ih = format!("weight_ih{suffix}");
        let [ih_rows, input] = self.matrix_shape(&ih)?;
        if ih_rows != gh {
            return Err(WeightsError::WrongShape { name: ih, expected: format!("[G*H={gh}, I]"), got: vec![ih_rows, input] });
        }
        let want_input = if l == 0 { *input0 } else { Some(dirs * hidden) };
        match want_input {
            Some(want) if want != input => {
                return Err(WeightsError::InconsistentLayers {
                    name: ih,
                    what: format!("{input} inputs, expected {want} ({})", if l == 0 { "as weight_ih_l0" } else { "D * H of the layer below" }),
                })
            }
            _ => *input0 = if l == 0 { Some(input) } else { *input0 },
        }
        let w_hh = match self.matrix(&hh, [rows, hidden])? {
            Stored::Dense(v) => Csr::from_dense(&v, rows, hidden).map_err(|source| WeightsError::InvalidCsr { name: hh.clone(), source })?,
            Stored::Csr(c) => c,
        };
        let w_ih = match self.matrix(&ih, [gh, input])? {
            Stored::Dense(v) => Matrix::Dense(Dense::new(gh, input, v).map_err(|source| WeightsError::InvalidCsr { name: ih.clone(), source })?),
            Stored::Csr(c) => Matrix::Sparse(c),
        };
        let b_ih = self.bias(&format!("bias_ih{suffix}"), gh, has_bias)?;
        let b_hh = self.bias(&format!("bias_hh{suffix}"), gh, has_bias)?;
        LayerWeights::new(cell, w_ih, w_hh, b_ih, b_hh)
    }
}

/// Names of the tensors a model of `layers` layers and `directions` directions has in a state
/// dict, in PyTorch's order (useful for error messages and tests).
pub fn tensor_names(layers: usize, directions: usize, bias: bool) -> Vec<String> {
    let mut out = Vec::new();
    for l in 0..layers {
        for d in 0..directions {
            let suffix = format!("_l{l}{}", if d == 1 { "_reverse" } else { "" });
            let kinds: &[&str] = if bias { &["weight_ih", "weight_hh", "bias_ih", "bias_hh"] } else { &["weight_ih", "weight_hh"] };
            out.extend(kinds.iter().map(|k| format!("{k}{suffix}")));
        }
    }
    out
}
