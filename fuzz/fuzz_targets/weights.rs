//! Fuzzes the weight-file loader: `ModelWeights::from_safetensors` and
//! `LayerWeights::from_safetensors` must return a model or a typed `WeightsError`, never panic
//! or abort, on any bytes.
//!
//! The first byte picks the mode: even, the rest is the file as is (seeded from
//! `tests/fixtures/*.safetensors` by `scripts/fuzz.sh`); odd, the rest describes a well-formed
//! safetensors file — PyTorch-like tensor names (CSR parts too), any dtype, small shapes, small
//! integers for the CSR index tensors, optional `sprnn.cell` metadata — so the loader's checks
//! past the parser are reached quickly. A model that loads must survive a save and a reload
//! unchanged.
#![no_main]

mod bytes;

use std::collections::HashMap;

use libfuzzer_sys::fuzz_target;
use safetensors::tensor::{Dtype, TensorView};
use sprnn::weights::{LayerWeights, ModelWeights, SaveOptions};
use sprnn::Cell;

use bytes::Bytes;

const CELLS: [Cell; 4] = [Cell::RnnRelu, Cell::RnnTanh, Cell::Gru, Cell::Lstm];
const KINDS: [&str; 5] = ["weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_hr"];
const PARTS: [&str; 5] = ["", ".csr_shape", ".csr_row_ptr", ".csr_col_idx", ".csr_values"];
const DTYPES: [Dtype; 7] = [Dtype::F32, Dtype::F16, Dtype::BF16, Dtype::I64, Dtype::I32, Dtype::F64, Dtype::U8];
const CELL_NAMES: [&str; 5] = ["rnn_relu", "rnn_tanh", "gru", "lstm", "bogus"];

fn dtype_size(d: Dtype) -> usize {
    match d {
        Dtype::F64 | Dtype::I64 => 8,
        Dtype::F32 | Dtype::I32 => 4,
        Dtype::F16 | Dtype::BF16 => 2,
        _ => 1,
    }
}

/// A well-formed safetensors file described by `b`.
fn structured(b: &mut Bytes<'_>) -> Vec<u8> {
    let n = b.u8() % 9;
    let mut tensors: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = Vec::new();
    for _ in 0..n {
        let k = b.u8();
        let name = format!(
            "{}_l{}{}{}",
            KINDS[k as usize % KINDS.len()],
            (k / 8) % 3,
            if k & 0x80 != 0 { "_reverse" } else { "" },
            PARTS[b.u8() as usize % PARTS.len()]
        );
        if tensors.iter().any(|t| t.0 == name) {
            continue;
        }
        let dtype = DTYPES[b.u8() as usize % DTYPES.len()];
        let rank = b.u8() % 4;
        let shape: Vec<usize> = (0..rank).map(|_| (b.u8() % 7) as usize).collect();
        let count: usize = shape.iter().product();
        let data: Vec<u8> = match dtype {
            // Index tensors: small (possibly negative) integers, so CSR encodings come close to valid.
            Dtype::I64 => (0..count).flat_map(|_| ((b.u8() as i8) as i64 % 8).to_le_bytes()).collect(),
            Dtype::I32 => (0..count).flat_map(|_| ((b.u8() as i8) as i32 % 8).to_le_bytes()).collect(),
            d => (0..count * dtype_size(d)).map(|_| b.u8()).collect(),
        };
        tensors.push((name, dtype, shape, data));
    }
    let meta = match b.u8() % 3 {
        0 => None,
        _ => Some(HashMap::from([("sprnn.cell".to_string(), CELL_NAMES[b.u8() as usize % CELL_NAMES.len()].to_string())])),
    };
    let views: Vec<(String, TensorView<'_>)> = tensors
        .iter()
        .map(|(n, d, s, data)| (n.clone(), TensorView::new(*d, s.clone(), data).expect("sizes computed from the shape")))
        .collect();
    safetensors::serialize(views, &meta).expect("serialize a well-formed file")
}

fuzz_target!(|data: &[u8]| {
    let Some((&head, rest)) = data.split_first() else { return };
    let cell = CELLS[(head >> 1) as usize % 4];
    let file = if head & 1 == 0 { rest.to_vec() } else { structured(&mut Bytes(rest)) };
    let model = ModelWeights::from_safetensors(&file, cell);
    let layer = LayerWeights::from_safetensors(&file, cell);
    assert_eq!(model.is_ok(), layer.is_ok(), "the model and its first layer disagree: {:?} vs {:?}", model.err(), layer.err());
    if let Ok(m) = model {
        let saved = m.to_safetensors(SaveOptions::default()).expect("an f32 save of a loaded model");
        let again = ModelWeights::from_safetensors(&saved, cell).expect("reload of a saved model");
        assert_eq!(again, m, "save and reload changed the model");
    }
});
