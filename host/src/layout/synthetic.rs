//! Synthetic pruned matrices, for tests and for measuring layouts (deterministic per seed).
//!
//! The patterns of the library's one random sparse-matrix generator (`sparse`'s random module),
//! under the names the layout code uses.

pub use crate::sparse::{random_block_sparse as block_sparse, random_skewed as skewed, random_uniform as uniform};
