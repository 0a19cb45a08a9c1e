//! Where a layer comes from: a safetensors file with PyTorch's names, or a seeded random one.

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use sprnn::weights::{LoadOptions, ModelWeights, WeightsError};
use sprnn::{Cell, Csr};

use crate::{progress, CliResult, Failure};

/// Cell type on the command line (PyTorch's `nonlinearity` for RNN).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum CellArg {
    /// `torch.nn.RNN(nonlinearity="relu")`.
    #[value(name = "rnn_relu", alias = "rnn-relu")]
    RnnRelu,
    /// `torch.nn.RNN` (tanh).
    #[value(name = "rnn_tanh", aliases = ["rnn-tanh", "rnn"])]
    RnnTanh,
    /// `torch.nn.GRU`, gates [r, z, n].
    #[value(name = "gru")]
    Gru,
    /// `torch.nn.LSTM`, gates [i, f, g, o].
    #[value(name = "lstm")]
    Lstm,
}

impl From<CellArg> for Cell {
    fn from(c: CellArg) -> Cell {
        match c {
            CellArg::RnnRelu => Cell::RnnRelu,
            CellArg::RnnTanh => Cell::RnnTanh,
            CellArg::Gru => Cell::Gru,
            CellArg::Lstm => Cell::Lstm,
        }
    }
}

/// The layer's source: `--weights FILE` or `--random`.
#[derive(Args, Debug, Clone)]
pub struct LayerSource {
    /// Safetensors file with PyTorch's parameter names (`weight_hh_l0`, `bias_hh_l0`, ...; as
    /// `safetensors.torch.save_file(rnn.state_dict(), FILE)` writes it). Zeros of weight_hh are
    /// the pruned entries.
    #[arg(long, value_name = "FILE", required_unless_present = "random", conflicts_with = "random")]
    pub weights: Option<PathBuf>,
    /// Module prefix of the tensor names, for the state dict of a bigger model: `--prefix rnn.`
    /// reads `rnn.weight_hh_l0`, `rnn.bias_hh_l0`, ...
    #[arg(long, value_name = "PREFIX", default_value = "", hide_default_value = true)]
    pub prefix: String,
    /// Cell type (not stored in a state dict).
    #[arg(long, value_enum)]
    pub cell: CellArg,
    /// Layer of the file to use.
    #[arg(long, default_value_t = 0, value_name = "L")]
    pub layer: usize,
    /// Use the reverse direction of a bidirectional layer (`weight_hh_l{L}_reverse`).
    #[arg(long)]
    pub reverse: bool,
    /// Generate a random pruned layer instead (every gate block's largest singular value ≤ 0.9,
    /// b_hh in ±0.1; the generator of `sprnn-bench`).
    #[arg(long)]
    pub random: bool,
    /// Hidden size H of the random layer.
    #[arg(long, value_name = "H", required_if_eq("random", "true"))]
    pub hidden: Option<usize>,
    /// Density of the random layer's W_hh (nonzeros per row / H).
    #[arg(long, value_name = "D", default_value_t = 0.1)]
    pub density: f64,
    /// Seed of the random layer.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

impl LayerSource {
    /// How to read the weights file.
    pub fn load_options(&self) -> LoadOptions {
        LoadOptions { prefix: self.prefix.clone() }
    }
}

/// A layer's recurrent part, ready to plan or run.
pub struct Layer {
    /// Cell type.
    pub cell: Cell,
    /// `W_hh`, `G·H × H`.
    pub w_hh: Csr,
    /// `b_hh`, `G·H`.
    pub b_hh: Vec<f32>,
    /// Where it came from, for messages.
    pub source: String,
    /// The other direction's `W_hh` when the layer is one of a bidirectional model's (the
    /// schedule of the two directions depends on both).
    pub partner: Option<Csr>,
}

impl Layer {
    /// Hidden size H.
    pub fn hidden(&self) -> usize {
        self.w_hh.cols()
    }
}

/// Nonzeros per row of the random layer `src` names: `round(d·H)`, as the generator makes it.
pub fn random_row_nnz(src: &LayerSource) -> Option<usize> {
    let hidden = src.hidden?;
    (src.random && (0.0..=1.0).contains(&src.density)).then(|| (src.density * hidden as f64).round() as usize)
}

/// The hidden size of the layer `src` names, read from the weights file's header only (no
/// tensor data is read), or `None` when the header does not say (the full load then reports
/// why). For a random layer, `--hidden`.
pub fn peek_hidden(src: &LayerSource) -> Option<usize> {
    if src.random {
        return src.hidden;
    }
    let path = src.weights.as_ref()?;
    let suffix = format!("{}weight_hh_l{}{}", src.prefix, src.layer, if src.reverse { "_reverse" } else { "" });
    let header = crate::tensors::read_header(path).ok()?;
    let obj = header.as_object()?;
    let shapes: Vec<&serde_json::Value> = obj
        .iter()
        .filter(|(name, _)| name.as_str() == suffix || name.ends_with(&format!(".{suffix}")))
        .map(|(_, v)| &v["shape"])
        .collect();
    match shapes[..] {
        [shape] => shape.as_array().filter(|s| s.len() == 2).and_then(|s| s[1].as_u64()).map(|h| h as usize),
        _ => None,
    }
}

/// Where the layer comes from, for messages (before it is loaded).
pub fn describe(src: &LayerSource) -> String {
    match &src.weights {
        Some(path) if !src.random => format!("{} layer {}{}", path.display(), src.layer, if src.reverse { " reverse" } else { "" }),
        _ => format!("random {} H={} d={} seed {}", Cell::from(src.cell).name(), src.hidden.unwrap_or(0), src.density, src.seed),
    }
}

/// Loads or generates the layer `src` names.
pub fn load(src: &LayerSource) -> CliResult<Layer> {
    let cell = Cell::from(src.cell);
    if src.random {
        let hidden = src.hidden.ok_or_else(|| Failure::new("--random needs --hidden H"))?;
        if hidden == 0 {
            return Err(Failure::new("--hidden must be at least 1"));
        }
        if !(0.0..=1.0).contains(&src.density) {
            return Err(Failure::new(format!("--density {} is not in [0, 1]", src.density)));
        }
        if src.layer != 0 || src.reverse {
            return Err(Failure::new("--layer and --reverse select a layer of a --weights file; a --random layer has only one"));
        }
        // Refused from its size before anything is generated.
        sprnn::advice::check_hidden(hidden).map_err(|e| Failure::new(format!("--hidden {hidden}: {e}")))?;
        let (w_hh, b_hh) = progress::spin("generating a random layer", || {
            sprnn::timing::random_layer(src.seed, cell, hidden, src.density)
        })?;
        let source = format!("random {} H={hidden} d={} seed {}", cell.name(), src.density, src.seed);
        return Ok(Layer { cell, w_hh, b_hh, source, partner: None });
    }
    let path = src.weights.as_ref().ok_or_else(|| Failure::new("give --weights FILE or --random"))?;
    let model = progress::spin("loading weights", || ModelWeights::load_with(path, cell, &src.load_options())).map_err(|e| match e {
        WeightsError::Io { .. } => Failure::from(e),
        e => Failure::new(format!("{}: {e}", path.display())),
    })?;
    if src.layer >= model.num_layers() {
        return Err(Failure::new(format!(
            "{}: --layer {} but the file has {} layer{} (0..{})",
            path.display(),
            src.layer,
            model.num_layers(),
            if model.num_layers() == 1 { "" } else { "s" },
            model.num_layers() - 1
        )));
    }
    if src.reverse && !model.bidirectional() {
        return Err(Failure::new(format!("{}: --reverse but the model is not bidirectional (no weight_hh_l{}_reverse)", path.display(), src.layer)));
    }
    let lw = model.layer(src.layer, usize::from(src.reverse));
    let source = format!("{} layer {}{}", path.display(), src.layer, if src.reverse { " reverse" } else { "" });
    let partner = model.bidirectional().then(|| model.layer(src.layer, usize::from(!src.reverse)).w_hh().clone());
    Ok(Layer { cell, w_hh: lw.w_hh().clone(), b_hh: lw.b_hh().to_vec(), source, partner })
}
