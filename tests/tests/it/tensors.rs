//! Hand-made safetensors files for the weight-file tests.

use std::collections::HashMap;

use safetensors::tensor::{Dtype, TensorView};

/// One tensor of a hand-made file.
pub struct T {
    pub name: String,
    pub dtype: Dtype,
    pub shape: Vec<usize>,
    pub data: Vec<u8>,
}

/// An f32 tensor.
pub fn f32s(name: &str, shape: &[usize], v: &[f32]) -> T {
    T { name: name.into(), dtype: Dtype::F32, shape: shape.to_vec(), data: v.iter().flat_map(|x| x.to_le_bytes()).collect() }
}

/// An i64 tensor.
pub fn i64s(name: &str, shape: &[usize], v: &[i64]) -> T {
    T { name: name.into(), dtype: Dtype::I64, shape: shape.to_vec(), data: v.iter().flat_map(|x| x.to_le_bytes()).collect() }
}

/// A tensor of any dtype from raw bytes.
pub fn raw(name: &str, dtype: Dtype, shape: &[usize], data: Vec<u8>) -> T {
    T { name: name.into(), dtype, shape: shape.to_vec(), data }
}

/// The serialized file.
pub fn file(tensors: &[T], meta: Option<HashMap<String, String>>) -> Vec<u8> {
    let views: Vec<(String, TensorView<'_>)> =
        tensors.iter().map(|t| (t.name.clone(), TensorView::new(t.dtype, t.shape.clone(), &t.data).unwrap())).collect();
    safetensors::serialize(views, &meta).unwrap()
}
