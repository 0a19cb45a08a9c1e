//! sprnn's integration tests: one binary, one module per area.

mod advice;
mod chain;
mod cluster;
mod common;
mod gpu;
mod layout;
mod model;
mod reference;
mod shared;
mod validation;
mod validation_gpu;
mod stream;
