//! Integration tests of sprnn live in `tests/it`.
