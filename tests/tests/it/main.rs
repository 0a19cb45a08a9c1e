//! sprnn's integration tests: one binary, one module per area.

mod layout;
mod reference;
