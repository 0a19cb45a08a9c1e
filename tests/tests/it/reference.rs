//! Reference tests.
